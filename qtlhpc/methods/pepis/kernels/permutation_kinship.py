"""Genome-wide maxima under permuted phenotypes for the kinship models (PEPIS random and fixed).

Each permutation reorders the phenotype only (genotypes, covariates and kinships stay with their
individuals, as R/qtl does for covariates); the polygenic variance ratios are held at the estimates of
the observed data, so the rotation ``K0 = U diag(d) U'`` is computed once. Permutation ``i`` uses
:func:`qtlhpc.methods.pepis.kernels.permutation.permutation_order` with its global id, so any split of the ids gives
the same maxima.

Many permutations per pass: of the reduction of a tile of tested columns ``G`` (see
:func:`qtlhpc.methods.pepis.kernels.null_model.reduce_columns`), the triangular product ``T G`` and the covariate
loadings ``Q'L G`` do not depend on the phenotype; only the scores ``G' P0 y`` do. So each tile is
reduced once, the scores of all permutations of the batch come from one GEMM, and only the small per-unit
fits are repeated per permutation.
"""

from __future__ import annotations

from typing import List, Sequence

import numpy as np
import scipy.linalg

from qtlhpc.methods.pepis.kernels.null_model import NullBackground, NullRotation, null_background, rotate_columns
from qtlhpc.methods.pepis.kernels.permutation import PermutationMaxima, permutation_order
from qtlhpc.parallel.partition import triangle_row_blocks

TILE_UNITS = 1024


def permuted_backgrounds(rotation: NullRotation, phenotype, design, run_seed: int, ids) -> List[NullBackground]:
    """The null fit of each permuted phenotype (same rotation and covariates)."""
    phenotype = np.asarray(phenotype, dtype=float)
    x_rot = rotate_columns(rotation, design)
    n = phenotype.shape[0]
    return [null_background(rotation, rotate_columns(rotation, phenotype[permutation_order(run_seed, i, n)])[:, 0],
                            x_rot) for i in ids]


def _tile_maxima(columns_t: np.ndarray, backgrounds: List[NullBackground], model: str, maxima: np.ndarray) -> None:
    """Update ``maxima (n_permutations,)`` with the LODs of one tile ``columns_t (q, n_units, n)``."""
    from qtlhpc.methods.pepis.kernels.scan1d import fit_units

    q, n_units, n = columns_t.shape
    if n_units == 0:
        return
    n_cov = backgrounds[0].n_covariates
    flat = np.ascontiguousarray(columns_t, dtype=np.float64).reshape(q * n_units, n)
    # [Q'L | L'r_1 | ... | L'r_P]: the covariate loadings are the same for every permutation
    loadings = np.hstack([backgrounds[0].side[:, :n_cov]] + [b.side[:, n_cov:] for b in backgrounds])
    sides = flat @ loadings
    rotated = scipy.linalg.blas.dtrmm(1.0, backgrounds[0].triangle, flat.T, side=0, lower=0, overwrite_b=1)
    rotated = flat.reshape(q, n_units, n) if np.shares_memory(rotated, flat) else np.ascontiguousarray(
        rotated.T).reshape(q, n_units, n)
    for p, background in enumerate(backgrounds):
        side = np.empty((q * n_units, n_cov + 1))
        side[:, :n_cov] = sides[:, :n_cov]
        side[:, n_cov] = sides[:, n_cov + p]
        result = fit_units((rotated, side.reshape(q, n_units, n_cov + 1)), background, model, with_effects=False)
        if result.lod.size:
            maxima[p] = max(maxima[p], float(np.nanmax(result.lod)))


def max_lod_kinship_1d(rotation: NullRotation, phenotype, design, additive, dominance, run_seed: int,
                       ids: Sequence[int], *, model: str = "random", block_markers: int = TILE_UNITS
                       ) -> PermutationMaxima:
    """Maximum 1D LOD over all loci for each permutation id (all ids of ``ids`` in one pass).

    ``phenotype (n,)``, ``design (n, c)`` (intercept first), ``additive``/``dominance (n, n_loci)``.
    """
    ids = np.asarray(ids, dtype=np.int64)
    backgrounds = permuted_backgrounds(rotation, phenotype, design, run_seed, ids)
    maxima = np.full(len(ids), -np.inf)
    additive, dominance = np.asarray(additive, float), np.asarray(dominance, float)
    for start in range(0, additive.shape[1], block_markers):
        stop = min(start + block_markers, additive.shape[1])
        columns_t = np.stack([additive[:, start:stop].T, dominance[:, start:stop].T])
        _tile_maxima(columns_t, backgrounds, model, maxima)
    return PermutationMaxima(ids, {"lod": maxima})


def max_lod_kinship_2d(rotation: NullRotation, phenotype, design, additive, dominance, run_seed: int,
                       ids: Sequence[int], *, model: str = "random", pairs_per_block: int = 65536
                       ) -> PermutationMaxima:
    """Maximum 2D (epistatic) LOD over all locus pairs for each permutation id (one pass for all ids)."""
    from qtlhpc.methods.pepis.kernels.scan2d import fill_epistatic_columns, transposed_codes

    ids = np.asarray(ids, dtype=np.int64)
    backgrounds = permuted_backgrounds(rotation, phenotype, design, run_seed, ids)
    maxima = np.full(len(ids), -np.inf)
    n = backgrounds[0].n_individuals if backgrounds else 0
    z_t, w_t = transposed_codes(additive, dominance, n)
    for block in triangle_row_blocks(additive.shape[1], pairs_per_block):
        first, second = block.pairs()
        for start in range(0, first.size, TILE_UNITS):
            stop = min(start + TILE_UNITS, first.size)
            tile = np.empty((4, stop - start, n))
            fill_epistatic_columns(z_t, w_t, np.ascontiguousarray(first[start:stop], dtype=np.int64),
                                   np.ascontiguousarray(second[start:stop], dtype=np.int64), tile)
            _tile_maxima(tile, backgrounds, model, maxima)
    return PermutationMaxima(ids, {"lod": maxima})
