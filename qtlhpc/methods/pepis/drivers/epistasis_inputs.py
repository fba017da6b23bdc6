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


def loci_from_cross_or_genoprob(context, results, positions: str = "markers") -> Loci:
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
    additive, dominance = additive_dominance_codes(probs, states)
    return Loci(results.read("genoprob/position_names")[columns],
                results.read("genoprob/position_chromosomes")[columns],
                results.read("genoprob/positions_cM")[columns],
                additive, dominance, dominance_is_informative(dominance))


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
        if name in available:
            columns.append(cross.covariates[:, available.index(name)])
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
