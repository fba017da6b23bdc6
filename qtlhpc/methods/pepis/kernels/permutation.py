"""Genome-wide permutation thresholds: maxima of scan statistics under permuted phenotypes.

Conventions (as R/qtl's ``scanone``/``scantwo`` with ``n.perm``):

* only the phenotype is permuted; covariates (and genotypes) stay with their individuals, so the
  covariate effects are refitted under every permutation (R/qtl permutes the phenotype alone too);
* permutation ``i`` (a global integer id ``0..N-1``) reorders individuals with
  ``unit_rng(run_seed, "permutation", i)``: any split of the ids over ranks or SLURM array tasks
  gives the same permutations and, merged, the same maxima;
* thresholds are the ``1 - alpha`` quantiles of the maxima with R's default ``quantile`` (type 7,
  linear interpolation; numpy's ``method="linear"``), as ``summary.scanoneperm`` and
  ``summary.scantwoperm`` use;
* genome-wide adjusted p-value of an observed LOD: ``k / N``, the proportion of the ``N``
  permutation maxima that are ``>=`` it (R/qtl's ``summary(scanone, perms=..., pvalues=TRUE)``).

Two-QTL statistics (R/qtl ``summary.scantwo(for.perm=TRUE)``), with chromosome pairs ``(c, d)``,
``full[c,d]`` and ``add[c,d]`` the maxima of ``lod_full`` / ``lod_add`` over pairs on them and
``one[c]`` the best single-QTL LOD on chromosome ``c``: ``full = max full[c,d]``,
``fv1 = max (full[c,d] - max(one[c], one[d]))``, ``int = max (full[c,d] - add[c,d])``,
``add = max add[c,d]``, ``av1 = max (add[c,d] - max(one[c], one[d]))``, ``one = max one[c]``.
Without chromosome labels all positions form one chromosome.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Iterable, Optional, Sequence

import numpy as np

from qtlhpc.genetics import hk
from qtlhpc.errors import InputError
from qtlhpc.parallel.partition import pair_blocks
from qtlhpc.parallel.rng import unit_rng

STATISTICS_1D = ("lod",)
STATISTICS_2D = ("full", "fv1", "int", "add", "av1", "one")


def permutation_order(run_seed: int, permutation_id: int, n_individuals: int) -> np.ndarray:
    """The reordering ``(n_individuals,)`` of permutation ``permutation_id`` (a function of its id only)."""
    return unit_rng(run_seed, "permutation", int(permutation_id)).permutation(n_individuals)


def permuted_phenotypes(phenotype, run_seed: int, ids: Sequence[int]) -> np.ndarray:
    """Permuted copies of one trait ``phenotype (n_individuals,)``: ``(n_individuals, len(ids))``.

    Column ``i`` is ``phenotype[permutation_order(run_seed, ids[i], n_individuals)]``.
    """
    phenotype = np.asarray(phenotype, dtype=float)
    if phenotype.ndim != 1:
        raise InputError(f"permutations take one trait at a time: phenotype has shape {phenotype.shape}, "
                         "expected (n_individuals,)")
    n = phenotype.shape[0]
    out = np.empty((n, len(ids)))
    for column, permutation_id in enumerate(ids):
        out[:, column] = phenotype[permutation_order(run_seed, permutation_id, n)]
    return out


@dataclass
class PermutationMaxima:
    """Genome-wide maxima per permutation: ``ids (n_permutations,)`` and one array per statistic."""

    ids: np.ndarray
    maxima: Dict[str, np.ndarray] = field(default_factory=dict)

    def __post_init__(self):
        self.ids = np.asarray(self.ids, dtype=np.int64)
        self.maxima = {k: np.asarray(v, dtype=float) for k, v in self.maxima.items()}
        for name, values in self.maxima.items():
            assert values.shape == self.ids.shape, (name, values.shape, self.ids.shape)


def _check_ids(ids) -> np.ndarray:
    ids = np.asarray(list(ids) if not isinstance(ids, np.ndarray) else ids, dtype=np.int64)
    if ids.ndim != 1 or np.any(ids < 0):
        raise InputError(f"permutation ids must be non-negative integers, got {ids!r}")
    return ids


def _check_one_trait(y):
    y = np.asarray(y, dtype=float)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1:
        raise InputError(f"permutations take one trait at a time: phenotype has shape {y.shape}, expected (n_individuals,)")
    return y


def max_lod_hk_1d(probs, phenotype, covariates, run_seed: int, ids, *, batch: int = 256) -> PermutationMaxima:
    """Genome-wide maximum single-QTL HK LOD for each permutation id (``batch`` permutations per GEMM pass).

    ``probs (n_individuals, n_positions, n_states)``, ``phenotype (n_individuals,)``,
    ``covariates (n_individuals, n_covariates)`` or None (not permuted).  Statistic ``"lod"``.
    """
    ids = _check_ids(ids)
    phenotype = _check_one_trait(phenotype)
    maxima = np.empty(len(ids))
    for start in range(0, len(ids), batch):
        chunk = ids[start:start + batch]
        lod = hk.scan1d_hk(probs, permuted_phenotypes(phenotype, run_seed, chunk), covariates)
        maxima[start:start + batch] = lod.max(axis=0)
    return PermutationMaxima(ids, {"lod": maxima})


def _chromosome_codes(chromosomes, n_positions) -> np.ndarray:
    if chromosomes is None:
        return np.zeros(n_positions, dtype=np.int64)
    chromosomes = np.asarray(chromosomes)
    if chromosomes.shape != (n_positions,):
        raise InputError(f"chromosomes has shape {chromosomes.shape}; expected ({n_positions},), one label per position")
    _, codes = np.unique(chromosomes, return_inverse=True)
    return codes.astype(np.int64)


def _scan2d_maxima(probs, phenotypes, covariates, chromosome, tile, chromosomes=None,
                   pair_probs=None) -> Dict[str, np.ndarray]:
    """R/qtl's six scantwo permutation statistics for each column of ``phenotypes (n, n_traits)``."""
    n_positions = probs.shape[1]
    n_traits = phenotypes.shape[1]
    n_chrom = int(chromosome.max()) + 1
    lod1 = hk.scan1d_hk(probs, phenotypes, covariates)
    one = np.full((n_chrom, n_traits), -np.inf)
    np.maximum.at(one, chromosome, lod1)
    full = np.full((n_chrom, n_chrom, n_traits), -np.inf)
    add = np.full((n_chrom, n_chrom, n_traits), -np.inf)
    for block in pair_blocks(n_positions, tile):
        pairs = hk.scan2d_hk(probs, phenotypes, covariates, block, single_qtl_lod=lod1, chromosomes=chromosomes,
                             pair_probs=pair_probs)
        c1, c2 = chromosome[pairs.first], chromosome[pairs.second]
        lo, hi = np.minimum(c1, c2), np.maximum(c1, c2)
        np.maximum.at(full, (lo, hi), pairs.lod_full)
        np.maximum.at(add, (lo, hi), pairs.lod_add)
    upper = np.triu_indices(n_chrom)
    full_cp, add_cp = full[upper], add[upper]
    one_cp = np.maximum(one[upper[0]], one[upper[1]])
    present = np.isfinite(full_cp[:, 0])  # chromosome pairs with at least one position pair
    full_cp, add_cp, one_cp = full_cp[present], add_cp[present], one_cp[present]
    return {"full": full_cp.max(axis=0), "fv1": (full_cp - one_cp).max(axis=0),
            "int": (full_cp - add_cp).max(axis=0), "add": add_cp.max(axis=0),
            "av1": (add_cp - one_cp).max(axis=0), "one": one.max(axis=0)}


def max_lod_hk_2d(probs, phenotype, covariates, run_seed: int, ids, *, chromosomes=None, tile: int = 256,
                  batch: int = 16, pair_probs=None) -> PermutationMaxima:
    """Genome-wide maxima of the two-QTL HK statistics (``full, fv1, int, add, av1, one``; see module doc).

    All pairs ``j < k`` of the ``n_positions`` positions, in tiles of ``tile`` positions, ``batch``
    permutations per pass.  ``chromosomes (n_positions,)``: chromosome label per position (default:
    one chromosome).  ``pair_probs(first, second)``: joint genotype probabilities of same-chromosome pairs
    (see :func:`qtlhpc.genetics.hk.scan2d_hk`; only the phenotype is permuted, so they serve every
    permutation).  Returns :class:`PermutationMaxima`.
    """
    ids = _check_ids(ids)
    phenotype = _check_one_trait(phenotype)
    probs = np.asarray(probs, dtype=float)
    if probs.ndim != 3:
        raise InputError(f"genotype probabilities have shape {probs.shape}; expected (n_individuals, n_positions, n_states)")
    chromosome = _chromosome_codes(chromosomes, probs.shape[1])
    maxima = {name: np.empty(len(ids)) for name in STATISTICS_2D}
    for start in range(0, len(ids), batch):
        chunk = ids[start:start + batch]
        stats = _scan2d_maxima(probs, permuted_phenotypes(phenotype, run_seed, chunk), covariates, chromosome, tile,
                               chromosomes if pair_probs is not None else None, pair_probs)
        for name in STATISTICS_2D:
            maxima[name][start:start + batch] = stats[name]
    return PermutationMaxima(ids, maxima)


def missing_ids(present, n_total: int) -> np.ndarray:
    """Permutation ids in ``0..n_total-1`` not in ``present`` (sorted), e.g. to resume a run."""
    return np.setdiff1d(np.arange(n_total, dtype=np.int64), np.asarray(present, dtype=np.int64))


def _describe(ids: np.ndarray, limit: int = 10) -> str:
    shown = ", ".join(str(i) for i in ids[:limit])
    return shown + (f", ... ({len(ids)} in all)" if len(ids) > limit else "")


def merge_permutations(parts: Iterable[PermutationMaxima], n_total: Optional[int] = None) -> PermutationMaxima:
    """Concatenate chunks of permutations, sorted by id.

    Raises :class:`InputError` naming the ids present twice, the ids missing from ``0..n_total-1``
    (when ``n_total`` is given, else from ``0..max id``), or a statistic missing from some chunk.
    """
    parts = list(parts)
    if not parts:
        raise InputError("no permutation results to merge")
    names = set(parts[0].maxima)
    for index, part in enumerate(parts):
        if set(part.maxima) != names:
            raise InputError(f"permutation chunk {index} has statistics {sorted(part.maxima)}; "
                             f"chunk 0 has {sorted(names)}")
    ids = np.concatenate([p.ids for p in parts])
    unique, counts = np.unique(ids, return_counts=True)
    if np.any(counts > 1):
        raise InputError(f"permutation ids present more than once: {_describe(unique[counts > 1])}")
    total = int(ids.max()) + 1 if n_total is None else int(n_total)
    absent = missing_ids(ids, total)
    if len(absent):
        raise InputError(f"permutation ids missing (of 0..{total - 1}): {_describe(absent)}; "
                         "rerun them (the run resumes) or merge the chunk that holds them")
    extra = ids[ids >= total]
    if len(extra):
        raise InputError(f"permutation ids beyond the {total} expected: {_describe(np.sort(extra))}")
    order = np.argsort(ids)
    return PermutationMaxima(ids[order], {k: np.concatenate([p.maxima[k] for p in parts])[order] for k in names})


