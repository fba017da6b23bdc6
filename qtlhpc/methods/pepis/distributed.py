"""The PEPIS computations over a communicator: work units to kernels to results on every rank.

Each function takes arrays and ``comm`` (``None``: serial) and returns arrays, the same on every rank,
whatever the number of ranks: the units (row blocks of a kinship, traits, blocks of loci, blocks of
pairs) depend only on the problem and the block sizes, and :func:`qtlhpc.parallel.schedule.map_units`
decides which rank computes which.  No TOML, no HDF5: the stage drivers add checkpointing and the
results file on top of the same kernels.

Memory per rank is that of the gathered result (the kinships are ``k n^2`` floats on every rank); the
stage drivers, which write blocks to the results file instead, are the route for problems where that
does not fit.
"""

from __future__ import annotations

from typing import Dict, List, Optional, Sequence

import numpy as np

from qtlhpc.parallel import chunk_ranges, n_pairs, pair_from_index, schedule
from qtlhpc.methods.pepis.kernels.kinship import KINSHIP_NAMES, KinshipSet, kinship_rows, kinship_scales
from qtlhpc.methods.pepis.kernels.null_model import NullBackground
from qtlhpc.methods.pepis.kernels.reml import RemlFit, fit_reml
from qtlhpc.methods.pepis.kernels.scan1d import ScanResult, concatenate_results, scan1d as scan1d_kernel
from qtlhpc.methods.pepis.kernels.scan2d import scan_pairs, transposed_codes


def kinships(additive: np.ndarray, dominance: np.ndarray, which: Sequence[str] = KINSHIP_NAMES, *, comm=None,
             block_rows: int = 128, marker_block: int = 16,
             marker_mask: Optional[np.ndarray] = None) -> KinshipSet:
    """The scaled kinships ``(n, n)`` of ``Z = additive``, ``W = dominance`` ``(n, n_markers)``.

    Units: blocks of ``block_rows`` rows (:func:`kinship_rows`), assembled on every rank.
    """
    which = tuple(which)
    n = np.asarray(additive).shape[0]
    blocks = chunk_ranges(n, block_rows)
    scales = kinship_scales(additive, dominance, which, marker_mask)
    rows = schedule.map_units(
        lambda b: kinship_rows(additive, dominance, blocks[b][0], blocks[b][1], which, marker_block=marker_block,
                               marker_mask=marker_mask), range(len(blocks)), comm)
    matrices = {name: np.concatenate([rows[b][name] for b in range(len(blocks))]) / scales[name] for name in which}
    return KinshipSet(matrices, scales, True)


def fit_traits(phenotypes: np.ndarray, fixed: Optional[np.ndarray], kernels: Dict[str, np.ndarray], *,
               comm=None, **options) -> List[RemlFit]:
    """:func:`fit_reml` of every column of ``phenotypes (n, n_traits)`` (complete cases), traits as units."""
    phenotypes = np.asarray(phenotypes, dtype=float).reshape(np.shape(phenotypes)[0], -1)
    fits = schedule.map_units(lambda t: fit_reml(phenotypes[:, t], fixed, kernels, **options),
                              range(phenotypes.shape[1]), comm)
    return [fits[t] for t in range(phenotypes.shape[1])]


def scan1d(background: NullBackground, Z: np.ndarray, W: np.ndarray, *, comm=None, model: str = "random",
           block_markers: int = 256) -> ScanResult:
    """The 2-df test of every locus (:func:`qtlhpc.methods.pepis.kernels.scan1d.scan1d`), blocks of loci as units."""
    blocks = chunk_ranges(np.shape(Z)[1], block_markers)
    parts = schedule.map_units(
        lambda b: scan1d_kernel(background, Z[:, blocks[b][0]:blocks[b][1]], W[:, blocks[b][0]:blocks[b][1]],
                                model=model, block_markers=block_markers), range(len(blocks)), comm)
    return concatenate_results([parts[b] for b in range(len(blocks))])


def scan2d(background: NullBackground, Z: np.ndarray, W: np.ndarray, *, comm=None, model: str = "random",
           pairs_per_unit: int = 65536, with_effects: bool = False) -> ScanResult:
    """The epistatic test of every locus pair ``k < l`` in packed row-major order (``pair_index``).

    Units: runs of ``pairs_per_unit`` consecutive packed pairs, claimed by ranks as they become free.
    """
    n_markers = np.shape(Z)[1]
    z_t, w_t = transposed_codes(Z, W, background.n_individuals)
    runs = chunk_ranges(n_pairs(n_markers), pairs_per_unit)

    def compute(unit):
        first, second = pair_from_index(np.arange(*runs[unit]), n_markers)
        return scan_pairs(background, z_t, w_t, first, second, model=model, with_effects=with_effects)

    parts = schedule.map_units(compute, range(len(runs)), comm, claimed=True)
    if not runs:
        return scan_pairs(background, z_t, w_t, np.empty(0, np.int64), np.empty(0, np.int64), model=model,
                          with_effects=with_effects)
    return concatenate_results([parts[u] for u in range(len(runs))])
