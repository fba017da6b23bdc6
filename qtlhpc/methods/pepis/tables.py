"""Derived tables for `qtlhpc export`: joins of several datasets into one table a user reads.

``scan2d/top_pairs``: the reported pairs with both loci's names, chromosomes and positions, the LOD,
p-value, and aa/ad/da/dd effects with standard errors. ``scan1d/peaks``: the highest locus of each
trait on each chromosome with LOD, p-value and a/d effects with standard errors.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Tuple

import numpy as np

from qtlhpc.store import open_results
from qtlhpc.store.export import format_value

Table = Tuple[List[str], List[List[object]]]


def top_pairs(results) -> Table:
    traits = results.read("scan2d/trait_names")
    names = results.read("scan2d/locus_names")
    chromosomes = results.read("scan2d/locus_chromosomes")
    positions = results.read("scan2d/locus_positions_cM")
    trait, first, second = (results.read(f"scan2d/{n}") for n in ("top_trait", "top_locus_1", "top_locus_2"))
    lod, pvalue = results.read("scan2d/top_lod"), results.read("scan2d/top_pvalue")
    effects, errors = results.read("scan2d/top_effects"), results.read("scan2d/top_effect_se")
    effect_names = [str(e) for e in results.read("scan2d/effect_names")]
    header = ["trait", "locus_1", "chromosome_1", "position_1_cM", "locus_2", "chromosome_2", "position_2_cM",
              "lod", "pvalue"] + [f"{e}{suffix}" for e in effect_names for suffix in ("", "_se")]
    rows = []
    for i in range(len(trait)):
        k, l = int(first[i]), int(second[i])
        row = [traits[trait[i]], names[k], chromosomes[k], positions[k], names[l], chromosomes[l], positions[l],
               lod[i], pvalue[i]]
        for j in range(len(effect_names)):
            row += [effects[i, j], errors[i, j]]
        rows.append(row)
    return header, rows


def peaks_1d(results) -> Table:
    traits = results.read("scan1d/trait_names")
    names = results.read("scan1d/locus_names")
    chromosomes = results.read("scan1d/locus_chromosomes")
    positions = results.read("scan1d/locus_positions_cM")
    lod, pvalue = results.read("scan1d/lod"), results.read("scan1d/pvalue")
    effects, errors = results.read("scan1d/effects"), results.read("scan1d/effect_se")
    header = ["trait", "chromosome", "locus", "position_cM", "lod", "pvalue", "a", "a_se", "d", "d_se"]
    rows = []
    for t, trait in enumerate(traits):
        for chromosome in dict.fromkeys(chromosomes):
            loci = np.flatnonzero(chromosomes == chromosome)
            k = int(loci[np.nanargmax(lod[t, loci])]) if np.any(np.isfinite(lod[t, loci])) else int(loci[0])
            rows.append([trait, chromosome, names[k], positions[k], lod[t, k], pvalue[t, k], effects[t, k, 0],
                         errors[t, k, 0], effects[t, k, 1], errors[t, k, 1]])
    rows.sort(key=lambda row: (str(row[0]), -np.nan_to_num(float(row[4]), nan=-np.inf)))
    return header, rows


TABLES: Dict[str, Callable] = {"scan2d/top_pairs": top_pairs, "scan1d/peaks": peaks_1d}


def export_table(results_path, name: str, handle) -> int:
    """Write derived table ``name`` as TSV to an open text ``handle``; returns the number of rows."""
    with open_results(results_path) as results:
        header, rows = TABLES[name](results)
    handle.write("\t".join(header) + "\n")
    for row in rows:
        handle.write("\t".join(format_value(value) for value in row) + "\n")
    return len(rows)
