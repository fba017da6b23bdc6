"""Genome-wide maxima under permuted phenotypes for the kinship models (PEPIS random and fixed).

Each permutation reorders the phenotype only (genotypes, covariates and kinships stay with their
individuals, as R/qtl does for covariates); the polygenic variance ratios are held at the estimates of
the observed data, so the rotation ``K0 = U diag(d) U'`` is computed once and every permutation costs one
null fit plus one scan. Permutation ``i`` uses :func:`qtlhpc.epistasis.permutation.permutation_order`
with its global id, so any split of the ids gives the same maxima.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from qtlhpc.epistasis.null_model import NullRotation, null_background, rotate_columns
from qtlhpc.epistasis.permutation import PermutationMaxima, permutation_order
from qtlhpc.parallel.partition import triangle_row_blocks


def _backgrounds(rotation: NullRotation, phenotype: np.ndarray, design: np.ndarray, run_seed: int, ids):
    x_rot = rotate_columns(rotation, design)
    n = phenotype.shape[0]
    for permutation_id in ids:
        permuted = phenotype[permutation_order(run_seed, permutation_id, n)]
        yield null_background(rotation, rotate_columns(rotation, permuted)[:, 0], x_rot)


def max_lod_kinship_1d(rotation: NullRotation, phenotype, design, additive, dominance, run_seed: int,
                       ids: Sequence[int], *, model: str = "random") -> PermutationMaxima:
    """Maximum 1D LOD over all loci for each permutation id.

    ``phenotype (n,)``, ``design (n, c)`` (intercept first), ``additive``/``dominance (n, n_loci)``.
    """
    from qtlhpc.epistasis.scan1d import scan1d

    ids = np.asarray(ids, dtype=np.int64)
    maxima = np.empty(len(ids))
    for i, background in enumerate(_backgrounds(rotation, np.asarray(phenotype, float), design, run_seed, ids)):
        result = scan1d(background, additive, dominance, model=model)
        maxima[i] = np.nanmax(result.lod) if result.lod.size else np.nan
    return PermutationMaxima(ids, {"lod": maxima})


def max_lod_kinship_2d(rotation: NullRotation, phenotype, design, additive, dominance, run_seed: int,
                       ids: Sequence[int], *, model: str = "random", pairs_per_block: int = 4096) -> PermutationMaxima:
    """Maximum 2D (epistatic) LOD over all locus pairs for each permutation id."""
    from qtlhpc.epistasis.scan2d import scan2d_block

    ids = np.asarray(ids, dtype=np.int64)
    blocks = triangle_row_blocks(additive.shape[1], pairs_per_block)
    maxima = np.full(len(ids), -np.inf)
    for i, background in enumerate(_backgrounds(rotation, np.asarray(phenotype, float), design, run_seed, ids)):
        for block in blocks:
            result = scan2d_block(None, None, None, additive, dominance, block, model=model, background=background)
            if result.lod.size:
                maxima[i] = max(maxima[i], float(np.nanmax(result.lod)))
    return PermutationMaxima(ids, {"lod": maxima})
