"""What the 1D and 2D scans and the permutations share: traits, loci and the null background per trait.

Kinship models (``random``, ``fixed``) test the loci of the kinship stage with the polygenic
background of the varcomp stage (one eigendecomposition of ``K0 = sum lambda_i K_i`` per trait).
The ``hk`` model tests every genoprob position by Haley-Knott regression, without kinships.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from qtlhpc.errors import InputError
from qtlhpc.methods.pepis.drivers.epistasis_inputs import (Loci, check_trait, design_matrix, loci_from_kinship_stage, require_stage,
                                            select_traits)


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

    @property
    def trait_names(self):
        return np.array([t.name for t in self.traits], dtype=str)


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
        traits = []
        for j in trait_indices:
            name = str(cross.phenotype_names[j])
            keep = check_trait(name, cross.phenotypes[:, j], design, context.log)
            traits.append(TraitData(name, keep, cross.phenotypes[keep, j], design[keep]))
        joint = pairs and context.config.section("scan2d")["same_chromosome"] == "joint"
        return ScanInputs(model, traits, loci, probs, cross.cross_type,
                          pair_probs=genome_pair_probabilities(context, cross, loci) if joint else None)

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
    traits = []
    for t, name in enumerate(trait_names):
        y_all = cross.phenotypes[:, phenotype_names.index(name)]
        keep = check_trait(name, y_all, design, context.log)
        trait = TraitData(name, keep, y_all[keep], design[keep])
        # selected once per trait (a view when every individual has the trait), not once per block
        trait.additive = loci.additive if keep.all() else loci.additive[keep]
        trait.dominance = loci.dominance if keep.all() else loci.dominance[keep]
        set_background(trait, ratios[t], [matrices[c] for c in components])
        traits.append(trait)
    del matrices
    return ScanInputs(model, traits, loci, None, cross.cross_type, ratios, components, stored)


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


def stack_traits(per_trait, shapes, columns: slice):
    """Block pieces ``{name: (selection, array)}`` from per-trait results: traits first, ``columns`` second."""
    pieces = {}
    for name, shape in shapes.items():
        stacked = np.stack([np.asarray(values[name]) for values in per_trait])
        pieces[name] = ((slice(None), columns) + (slice(None),) * (len(shape) - 2), stacked)
    return pieces
