"""Derived tables of the eQTL stages for ``qtlhpc export RESULTS TABLE`` (TSV with a header line).

``cis/table``: one row per gene of the population cis scan, with FastQTL's permutation-output column names
where FastQTL has the column (``pid nvar shape1 shape2 true_df pval_true_df variant_id tss_distance maf
pval_nominal slope slope_se pval_perm pval_beta``) and ``chromosome``, ``tss``, ``variant_position``,
``num_perm``, ``qval`` (Storey), ``qval_bh`` besides.  A gene without a variant in its window has an empty
``variant_id`` and NaN statistics.

``cross-trans/pairs``: the trans pairs of a cross kept at q <= ``cross_trans.fdr``, with the regulator's and
target's gene ids, the effects, standard errors and p-values of model (1), ``p_iut`` and ``q_iut``.

``cross-eqtl/cis``: one row per gene of a cross's cis mapping: its cis p, BH q, significance and peak marker.
The results file stores no marker names: the peak marker is given by its index in the stage's physical map
(``cross-eqtl/marker_*``, 0-based, -1 for an untested gene), its chromosome and position (bp).
"""

from __future__ import annotations

from typing import Callable, Dict, List, Tuple

import numpy as np

Table = Tuple[List[str], List[List[object]]]

CIS_COLUMNS = (  # (column, dataset of cis/ or None for the columns from expression/)
    ("pid", "gene_ids"), ("chromosome", None), ("tss", None), ("nvar", "num_var"), ("variant_id", "variant_ids"),
    ("variant_position", "variant_positions"), ("tss_distance", "tss_distance"), ("maf", "maf"),
    ("pval_nominal", "pval_nominal"), ("slope", "slope"), ("slope_se", "slope_se"), ("shape1", "beta_shape1"),
    ("shape2", "beta_shape2"), ("true_df", "true_df"), ("pval_true_df", "pval_true_df"),
    ("num_perm", "num_perm"), ("pval_perm", "pval_perm"), ("pval_beta", "pval_beta"), ("qval", "qvalue"),
    ("qval_bh", "qvalue_bh"))

TRANS_PAIR_COLUMNS = ("b1", "b2", "se_b1", "se_b2", "p_b1", "p_b2", "p_iut", "q_iut")


def _columns_to_rows(columns: List[np.ndarray]) -> List[List[object]]:
    return [list(row) for row in zip(*columns)]


def cis_table(results) -> Table:
    """``cis/table``: one row per gene of the cis scan (see the module docstring)."""
    index = results.read("cis/gene_index")
    columns = []
    for name, dataset in CIS_COLUMNS:
        if name == "chromosome":
            columns.append(results.read("expression/gene_chromosomes")[index])
        elif name == "tss":
            columns.append(results.read("expression/gene_tss")[index])
        else:
            columns.append(results.read(f"cis/{dataset}"))
    return [name for name, _ in CIS_COLUMNS], _columns_to_rows(columns)


def trans_pairs(results) -> Table:
    """``cross-trans/pairs``: the kept regulator-target pairs of model (1), by regulator then target."""
    gene_ids = results.read("expression/gene_ids")
    columns = [gene_ids[results.read("cross-trans/pair_regulator")], gene_ids[results.read("cross-trans/pair_target")]]
    columns += [results.read(f"cross-trans/pair_{name}") for name in TRANS_PAIR_COLUMNS]
    return ["regulator", "target"] + list(TRANS_PAIR_COLUMNS), _columns_to_rows(columns)


def cross_cis(results) -> Table:
    """``cross-eqtl/cis``: one row per gene of the cross's cis mapping."""
    peak = results.read("cross-eqtl/cis_peak_marker")
    chromosomes = results.read("cross-eqtl/marker_chromosomes")
    positions = results.read("cross-eqtl/marker_positions_bp")
    tested = peak >= 0
    peak_chromosome = np.where(tested, chromosomes[np.where(tested, peak, 0)], "")
    peak_position = np.where(tested, positions[np.where(tested, peak, 0)], np.nan)
    columns = [results.read("expression/gene_ids"), results.read("cross-eqtl/cis_pvalue"),
               results.read("cross-eqtl/cis_qvalue"), results.read("cross-eqtl/cis_significant"),
               peak, peak_chromosome, peak_position]
    header = ["gene", "cis_pvalue", "cis_qvalue", "cis_significant", "peak_marker", "peak_chromosome",
              "peak_position_bp"]
    return header, _columns_to_rows(columns)


TABLES: Dict[str, Callable] = {"cis/table": cis_table, "cross-trans/pairs": trans_pairs, "cross-eqtl/cis": cross_cis}
