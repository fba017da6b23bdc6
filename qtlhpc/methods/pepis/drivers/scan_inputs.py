"""What the 1D and 2D scans and the permutations share: traits, loci and the null background per trait.

Kinship models (``random``, ``fixed``) test the loci of the kinship stage with the polygenic
background of the varcomp stage (one eigendecomposition of ``K0 = sum lambda_i K_i`` per trait).
The ``hk`` model tests every genoprob position by Haley-Knott regression, without kinships.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import List, Optional

import numpy as np

from qtlhpc.errors import InputError
from qtlhpc.methods.pepis.drivers.epistasis_inputs import (Loci, check_trait, design_matrix, loci_from_kinship_stage, require_stage,
                                            select_traits, trait_problem)


@dataclass
class TraitData:
    """One trait with its usable individuals and, for kinship models, its null background."""

    name: str
    keep: np.ndarray
    phenotype: np.ndarray  # (n_kept,)
    design: np.ndarray  # (n_kept, n_fixed), intercept first
    background: Optional[object] = None  # qtlhpc.methods.pepis.kernels.null_model.NullBackground
    rotation: Optional[object] = None  # qtlhpc.methods.pepis.kernels.null_model.NullRotation
    additive: Optional[np.ndarray] = None  # kinship models: the loci's codes of the kept individuals
    dominance: Optional[np.ndarray] = None


@dataclass
class ScanInputs:
    model: str
    traits: List[TraitData]
    loci: Loci  # kinship models: the kinship stage's loci; hk: the genoprob positions (codes unused)
    probs: Optional[np.ndarray] = None  # hk: (n_individuals, n_positions, n_states)
    cross_type: str = ""
    variance_ratios: Optional[np.ndarray] = None  # kinship models: (n_traits, n_components) from varcomp
    components: Optional[List[str]] = None  # kinship names of the background, in variance_ratios order
    kinship_names: Optional[List[str]] = None  # kinships in the order stored by the kinship stage
    #: hk: joint probabilities of same-chromosome position pairs (qtlhpc.genetics.genoprob.GenomePairProbabilities)
    pair_probs: Optional[object] = None
    #: (name, reason) of each trait the model cannot be fitted to: left out of ``traits``
    skipped: List[tuple] = field(default_factory=list)
    #: hk: R/qtl's X model, ``(chromosome name, sex (n,) or None, pgm (n,) or None)``; None without an X
    x_model: Optional[tuple] = None

    @property
    def trait_names(self):
        return np.array([t.name for t in self.traits], dtype=str)


def require_scan_stages(context, results, model: str, needed_for: str) -> None:
    """The stages a scan with ``model`` reads must be complete: checked before the scan's stage begins, so a
    missing prerequisite leaves no "running" stage behind."""
    if model == "hk":
        require_stage(results, "genoprob", needed_for, context.output)
        return
    require_stage(results, "kinship", needed_for, context.output)
    require_stage(results, "varcomp", needed_for, context.output)


def scan_inputs(context, results, model: str, needed_for: str, pairs: bool = False) -> ScanInputs:
    """Traits, loci and backgrounds for a scan with ``model`` (read collectively from the results).

    ``pairs``: a 2D scan; with the HK model and ``scan2d.same_chromosome = "joint"`` the joint two-locus
    probabilities are prepared too.
    """
    cross = context.cross()
    varcomp = context.config.section("varcomp")
    if model == "hk":
        if cross.cross_type == "generic" or cross.additive_codes is not None:
            raise InputError(f"the {needed_for} with model 'hk' regresses on genotype probabilities, and a cross "
                             "given as numeric codes (generic or PEPIS input) has none",
                             hint="use model = 'random' or 'fixed', or give the genotypes as a cross (rqtl-csv, plink)")
        require_stage(results, "genoprob", needed_for, context.output)
        trait_indices = select_traits(cross, varcomp["traits"])
        design, _ = design_matrix(cross, varcomp["covariates"])
        probs = results.read("genoprob/probs")
        loci = Loci(results.read("genoprob/position_names"), results.read("genoprob/position_chromosomes"),
                    results.read("genoprob/positions_cM"), None, None, False)
        traits, skipped = [], []
        n_states = probs.shape[2]
        for j in trait_indices:  # each trait checked once, up front: one that cannot be fitted is skipped
            name = str(cross.phenotype_names[j])
            keep, reason = trait_problem(name, cross.phenotypes[:, j], design, context.log, n_variance=1,
                                         n_tested=n_states * n_states - 1 if pairs else n_states - 1,
                                         model=f"HK {'2D' if pairs else '1D'} scan")
            if reason:
                context.log.warning("%s: trait %s is skipped: %s", needed_for, name, reason)
                skipped.append((name, reason))
                continue
            traits.append(TraitData(name, keep, cross.phenotypes[keep, j], design[keep]))
        _require_some(traits, skipped, needed_for)
        joint = pairs and context.config.section("scan2d")["same_chromosome"] == "joint"
        x_model = None if cross.x_chromosome is None else (cross.x_chromosome, cross.sex, cross.pgm)
        return ScanInputs(model, traits, loci, probs, cross.cross_type,
                          pair_probs=genome_pair_probabilities(context, cross, loci) if joint else None,
                          skipped=skipped, x_model=x_model)

    require_stage(results, "kinship", needed_for, context.output)
    require_stage(results, "varcomp", needed_for, context.output)
    loci = loci_from_kinship_stage(results)
    trait_names = [str(t) for t in results.read("varcomp/trait_names")]
    ratios = results.read("varcomp/variance_ratios")
    components = [str(c) for c in results.read("varcomp/component_names")][:-1]
    covariates = [str(c) for c in results.read("varcomp/covariate_names")][1:]
    stored = [str(k) for k in results.read("kinship/kinship_names")]
    matrices = {c: results.read("kinship/matrices", (slice(stored.index(c), stored.index(c) + 1),))[0]
                for c in components}
    design, _ = design_matrix(cross, covariates)
    phenotype_names = [str(p) for p in cross.phenotype_names]
    # traits the varcomp stage skipped (checked there once, up front) are left out, with its reason
    if any(d.path == "varcomp/skipped" for info in results.describe() if info.name == "varcomp" for d in info.datasets):
        skip_flags = results.read("varcomp/skipped")
        skip_reasons = [str(r) for r in results.read("varcomp/skip_reasons")]
    else:  # a results file written before skipping existed
        skip_flags, skip_reasons = np.zeros(len(trait_names), dtype=bool), [""] * len(trait_names)
    traits, skipped, kept_rows = [], [], []
    for t, name in enumerate(trait_names):
        if skip_flags[t]:
            context.log.warning("%s: trait %s is skipped (see varcomp/skip_reasons): %s", needed_for, name,
                                skip_reasons[t])
            skipped.append((name, skip_reasons[t]))
            continue
        kept_rows.append(t)
        y_all = cross.phenotypes[:, phenotype_names.index(name)]
        keep = check_trait(name, y_all, design, context.log)
        trait = TraitData(name, keep, y_all[keep], design[keep])
        # selected once per trait (a view when every individual has the trait), not once per block
        trait.additive = loci.additive if keep.all() else loci.additive[keep]
        trait.dominance = loci.dominance if keep.all() else loci.dominance[keep]
        set_background(trait, ratios[t], [matrices[c] for c in components])
        traits.append(trait)
    del matrices
    _require_some(traits, skipped, needed_for)
    return ScanInputs(model, traits, loci, None, cross.cross_type, ratios[kept_rows], components, stored,
                      skipped=skipped)


def _require_some(traits, skipped, needed_for: str) -> None:
    if not traits:
        raise InputError(f"the {needed_for} has no trait the model can be fitted to: "
                         + "; ".join(f"{name}: {reason}" for name, reason in skipped),
                         hint="give more individuals with data, or fewer covariates")


def genome_pair_probabilities(context, cross, loci: Loci):
    """The joint two-position probabilities of the genoprob grid (computed per chromosome when first used).

    Uses the ``genoprob`` options of the configuration; the grid must be the stored genoprob stage's.
    """
    from qtlhpc.genetics.genoprob import GenomePairProbabilities

    options = context.config.section("genoprob")
    pair_probs = GenomePairProbabilities(cross, step=options["step"], error_prob=options["error_prob"],
                                         map_function=options["map_function"])
    stored = np.asarray(loci.chromosomes).astype(str)
    if pair_probs.chromosomes.shape != stored.shape or np.any(pair_probs.chromosomes.astype(str) != stored):
        raise InputError(f"the stored genoprob positions ({len(stored)}) are not the grid of the configured "
                         f"genoprob options ({len(pair_probs.chromosomes)} positions, step {options['step']} cM)",
                         hint="rerun the genoprob stage with this configuration")
    return pair_probs


def set_background(trait: TraitData, ratios, kernels) -> None:
    """The trait's null rotation and background from ``K0 = sum ratios_i kernels_i`` (full n x n kernels)."""
    from qtlhpc.methods.pepis.kernels.null_model import null_background, rotate, rotate_columns
    from qtlhpc.methods.pepis.kernels.reml import combined_kinship

    keep = trait.keep
    subset = kernels if keep.all() else [kernel[np.ix_(keep, keep)] for kernel in kernels]
    trait.rotation = rotate(combined_kinship(ratios, subset), trait.design)
    y_rot = rotate_columns(trait.rotation, trait.phenotype)[:, 0]
    trait.background = null_background(trait.rotation, y_rot, rotate_columns(trait.rotation, trait.design))


def write_scan_labels(stage, inputs: ScanInputs) -> None:
    """The trait and locus labels every scan stage stores beside its statistics."""
    stage.write("trait_names", inputs.trait_names)
    stage.write("locus_names", inputs.loci.names)
    stage.write("locus_chromosomes", inputs.loci.chromosomes)
    stage.write("locus_positions_cM", inputs.loci.positions)
    stage.write("skipped_traits", np.array([name for name, _ in inputs.skipped], dtype=str))
    stage.write("skip_reasons", np.array([reason for _, reason in inputs.skipped], dtype=str))


def stack_traits(per_trait, shapes, columns: slice):
    """Block pieces ``{name: (selection, array)}`` from per-trait results: traits first, ``columns`` second."""
    pieces = {}
    for name, shape in shapes.items():
        stacked = np.stack([np.asarray(values[name]) for values in per_trait])
        pieces[name] = ((slice(None), columns) + (slice(None),) * (len(shape) - 2), stacked)
    return pieces
