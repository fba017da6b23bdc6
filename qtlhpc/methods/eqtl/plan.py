"""Problem sizes of an eQTL config for ``qtlhpc plan``: genes and samples from the expression file, variants
from the VCF of ``[cis]`` / ``[trans]`` (or the markers of the cross of ``[input]``), and the mean number of
variants in a gene's cis window.

``problem_sizes(config, stages)`` returns the fields of :class:`qtlhpc.cluster.plan.ProblemSize` for the stages
planned, or ``None`` when the config has no ``[expression]`` section (not an eQTL config).
"""

from __future__ import annotations

from typing import Dict, Optional, Sequence

import numpy as np

from qtlhpc.errors import InputError


def _variant_positions(path) -> Dict[str, np.ndarray]:
    """Sorted positions of the VCF's records by chromosome (one pass over CHROM and POS)."""
    from qtlhpc.methods.eqtl.drivers.trans import _chromosomes_and_positions

    by_chromosome: Dict[str, list] = {}
    for chromosome, position in _chromosomes_and_positions(path):
        by_chromosome.setdefault(chromosome, []).append(position)
    return {name: np.sort(np.asarray(values, dtype=np.int64)) for name, values in by_chromosome.items()}


def mean_window_variants(expression, positions: Dict[str, np.ndarray], window: int) -> float:
    """Mean number of variants within ``window`` bp of a gene's TSS (FastQTL's cis window)."""
    if expression.n_genes == 0:
        return 0.0
    tss = np.where(expression.strands == "-", expression.ends, expression.starts)
    counts = np.zeros(expression.n_genes)
    for chromosome in np.unique(expression.chromosomes):
        genes = np.flatnonzero(expression.chromosomes == chromosome)
        found = positions.get(str(chromosome), positions.get(str(chromosome).removeprefix("chr"),
                                                             positions.get("chr" + str(chromosome))))
        if found is None:
            continue
        counts[genes] = (np.searchsorted(found, tss[genes] + window, side="right")
                         - np.searchsorted(found, tss[genes] - window, side="left"))
    return float(counts.mean())


def problem_sizes(config, stages: Sequence[str]) -> Optional[dict]:
    """The sizes ``qtlhpc plan`` needs for the eQTL ``stages`` of ``config`` (``None``: no ``[expression]``)."""
    if not config.has_section("expression"):
        return None
    from qtlhpc.io.drivers import load_expression

    expression = load_expression(config.section("expression"), config)[0]
    sizes = {"n_traits": expression.n_genes, "n_individuals": expression.n_samples}
    vcf_section = next((name for name in ("cis", "trans") if name in stages and config.has_section(name)), None)
    if vcf_section is not None:
        options = config.section(vcf_section)
        if not options["genotypes"]:
            raise InputError(f"{config.source}: [{vcf_section}] genotypes is empty: name the VCF/BCF to plan for")
        positions = _variant_positions(config.path(options["genotypes"]))
        sizes["n_markers"] = int(sum(values.size for values in positions.values()))
        if vcf_section == "cis":
            sizes["n_window_variants"] = mean_window_variants(expression, positions, int(options["window"]))
            sizes["n_permutations"] = int(options["permutations"][-1])
    elif config.has_section("input"):
        from qtlhpc.io.loader import load_cross

        cross = load_cross(dict(config.raw["input"]), config.base_dir)
        sizes["n_markers"] = cross.n_markers
        sizes["n_individuals"] = min(expression.n_samples, cross.n_individuals)
    else:
        sizes["n_markers"] = 1
    return sizes
