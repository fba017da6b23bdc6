"""Inputs shared by the epistatic stages: the loci and their codes, traits, covariates, the background.

Everything here reads the run's results file or the cross; nothing computes a statistic.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence

import numpy as np

from qtlhpc.errors import ConfigError, InputError


@dataclass
class Loci:
    """The loci of the epistatic model and their codes ``additive, dominance (n_individuals, n_loci)``."""

    names: np.ndarray
    chromosomes: np.ndarray
    positions: np.ndarray
    additive: np.ndarray
    dominance: np.ndarray
    dominance_informative: bool

    @property
    def n_loci(self) -> int:
        return len(self.names)


def loci_from_cross_or_genoprob(context, results, positions: str = "markers", x_chromosome: str = "exclude") -> Loci:
    """Codes at the markers (or the genoprob grid): user codes as given, else from genotype probabilities."""
    from qtlhpc.methods.pepis.kernels.coding import additive_dominance_codes, codes_from_cross, dominance_is_informative

    cross = context.cross()
    if cross.additive_codes is not None or cross.cross_type == "generic":
        codes = codes_from_cross(cross)
        return Loci(cross.markers, cross.chromosomes, cross.positions, codes.additive, codes.dominance,
                    codes.dominance_informative)
    if results.stage_status("genoprob") != "complete":
        raise InputError(f"{context.output}: the epistatic codes of a {cross.cross_type} cross come from its "
                         "genotype probabilities, and the genoprob stage is not complete",
                         hint="run `qtlhpc run genoprob CONFIG` first, or put genoprob first in run.stages")
    keep = results.read("genoprob/is_marker") if positions == "markers" else None
    columns = np.flatnonzero(keep) if keep is not None else slice(None)
    probs = results.read("genoprob/probs")[:, columns, :]
    states = [str(s) for s in results.read("genoprob/genotype_states")]
    names = results.read("genoprob/position_names")[columns]
    chromosomes = results.read("genoprob/position_chromosomes")[columns]
    positions_cm = results.read("genoprob/positions_cM")[columns]
    if cross.x_chromosome is not None and x_chromosome == "exclude":
        # R/qtl's X (hemizygous males, sex/direction classes) has no additive/dominance coding of the
        # epistatic model: the kinships and their scans use the autosomes only
        autosomal = np.asarray(chromosomes).astype(str) != str(cross.x_chromosome)
        context.log.info("kinship: the X chromosome %r (%d positions) is left out: autosomes only "
                         "(kinship.x_chromosome = 'include' keeps it as if autosomal)", cross.x_chromosome,
                         int((~autosomal).sum()))
        probs, names, chromosomes, positions_cm = (probs[:, autosomal], names[autosomal], chromosomes[autosomal],
                                                   positions_cm[autosomal])
    additive, dominance = additive_dominance_codes(probs, states)
    return Loci(names, chromosomes, positions_cm, additive, dominance, dominance_is_informative(dominance))


def require_stage(results, stage: str, needed_for: str, output) -> None:
    """A clear error when an upstream stage is absent or unfinished in the run's results file."""
    status = results.stage_status(stage)
    if status != "complete":
        state = "absent" if status is None else f"not complete (status {status!r})"
        raise InputError(f"{output}: the {needed_for} needs the {stage} stage, which is {state}",
                         hint=f"run `qtlhpc run {stage} CONFIG` first (or list it earlier in run.stages)")


def loci_from_kinship_stage(results) -> Loci:
    from qtlhpc.methods.pepis.kernels.coding import dominance_is_informative

    dominance = results.read("kinship/dominance_codes")
    return Loci(results.read("kinship/locus_names"), results.read("kinship/locus_chromosomes"),
                results.read("kinship/locus_positions_cM"), results.read("kinship/additive_codes"),
                dominance, dominance_is_informative(dominance))


def select_traits(cross, requested: Sequence[str]) -> List[int]:
    """Column indices of the requested traits (all when empty), with a clear error for unknown names."""
    names = [str(n) for n in cross.phenotype_names]
    if not names:
        raise InputError("the cross has no phenotypes to analyse", hint="add phenotype columns to the input")
    if not requested:
        return list(range(len(names)))
    indices = []
    for name in requested:
        if name not in names:
            import difflib

            close = difflib.get_close_matches(name, names, n=1)
            raise ConfigError(f"trait {name!r} is not a phenotype of the cross"
                              + (f"; did you mean {close[0]!r}?" if close else "")
                              + f" (phenotypes: {', '.join(names[:20])})")
        indices.append(names.index(name))
    return indices


def design_matrix(cross, covariate_names: Sequence[str]):
    """Intercept plus the named covariates ``(n_individuals, 1 + n_covariates)`` and the column names."""
    columns = [np.ones(cross.n_individuals)]
    names = ["intercept"]
    available = [str(n) for n in cross.covariate_names]
    phenotype_names = [str(n) for n in cross.phenotype_names]
    for name in covariate_names:
        dummies = [k for k, c in enumerate(available) if c.startswith(f"{name}=")]
        if name in available:
            columns.append(cross.covariates[:, available.index(name)])
        elif dummies:  # a text covariate, dummy-coded by the reader (qtlhpc.io.rqtl_columns): all its columns
            columns.extend(cross.covariates[:, k] for k in dummies)
            names.extend(available[k] for k in dummies[:-1])
            name = available[dummies[-1]]
        elif name in phenotype_names:
            columns.append(cross.phenotypes[:, phenotype_names.index(name)])
        else:
            raise ConfigError(f"covariate {name!r} is neither a covariate nor a phenotype column of the input "
                              f"(covariates: {', '.join(available) or 'none'})")
        names.append(name)
    return np.column_stack(columns), names


def usable_individuals(phenotype: np.ndarray, design: np.ndarray) -> np.ndarray:
    """Individuals with the phenotype and every covariate present."""
    return np.isfinite(phenotype) & np.all(np.isfinite(design), axis=1)


#: effects the largest model of a kinship-model run tests for one trait: the 2D scan's aa, ad, da, dd
KINSHIP_MODEL_TESTED = 4
#: beyond this magnitude the squares of a trait's values overflow double precision (sums of squares are inf)
LARGEST_VALUE = 1e150


def trait_problem(name: str, phenotype: np.ndarray, design: np.ndarray, log, *, n_variance: int, n_tested: int,
                  model: str) -> tuple:
    """``(keep, reason)``: the mask of usable individuals of one trait and why the model cannot be fitted to
    it (None when it can).  Checked once per trait, before any fit, so a trait that cannot be fitted is
    skipped (with the reason recorded) and the others go on.

    The model has ``design.shape[1]`` fixed effects, ``n_variance`` variance components (the residual
    included) and tests ``n_tested`` effects; a trait needs ``n_fixed + max(n_variance, n_tested + 1) + 1``
    individuals with data: every parameter of the largest fit, plus one degree of freedom left over.
    """
    keep = usable_individuals(phenotype, design)
    dropped = int((~keep).sum())
    if dropped:
        log.warning("trait %s: %d of %d individuals have a missing phenotype or covariate and are dropped",
                    name, dropped, len(keep))
    n_used, n_fixed = int(keep.sum()), design.shape[1]
    needed = n_fixed + max(n_variance, n_tested + 1) + 1
    if n_used < needed:
        return keep, (f"{n_used} individuals with data; the {model} needs at least {needed} ({n_fixed} fixed "
                      f"effect(s), {n_variance} variance component(s), {n_tested} tested effects and one degree "
                      f"of freedom left)")
    values = phenotype[keep]
    largest = float(np.max(np.abs(values)))
    if largest > LARGEST_VALUE:
        return keep, (f"values as large as {largest:.3g}: their squares overflow double precision; rescale the "
                      f"trait (e.g. divide it by {10.0 ** np.floor(np.log10(largest) - 3):.0e})")
    if np.ptp(values) == 0:
        return keep, f"constant ({values[0]!r}) over the {n_used} individuals with data: nothing to map"
    return keep, None


def check_trait(name: str, phenotype: np.ndarray, design: np.ndarray, log) -> np.ndarray:
    """The mask of usable individuals for one trait; clear errors for what cannot be analysed."""
    keep = usable_individuals(phenotype, design)
    dropped = int((~keep).sum())
    if dropped:
        log.warning("trait %s: %d of %d individuals have a missing phenotype or covariate and are dropped",
                    name, dropped, len(keep))
    n_used, n_fixed = int(keep.sum()), design.shape[1]
    if n_used <= n_fixed + 1:
        raise InputError(f"trait {name!r}: {n_used} individuals with data, fewer than the {n_fixed + 2} needed "
                         f"for {n_fixed} fixed effects and a variance")
    values = phenotype[keep]
    if np.ptp(values) == 0:
        raise InputError(f"trait {name!r} is constant ({values[0]!r}) over the {n_used} individuals with data: "
                         "nothing to map", hint="drop it from varcomp.traits")
    return keep
