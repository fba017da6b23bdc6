"""The middle layer of the block-mixture method: work units from ``qtlhpc.parallel.schedule`` to the per-unit
fits of :mod:`qtlhpc.methods.blockmix.fitting`, results gathered on every rank.  ``comm=None`` runs serially.

Units and their random streams are keyed by ids alone ((K, start) pairs, positions, permutation ids), so any
number of ranks gives the same numbers.  The stage drivers use the same per-unit functions with checkpointed
block writes instead of gathering.
"""

from __future__ import annotations

from typing import Dict, List, Sequence

import numpy as np

from qtlhpc.methods.blockmix.fitting import (
    EMSettings, NullFit, PositionFit, StartResult, bootstrap_lr, fit_position, fit_start, permutation_maximum)
from qtlhpc.parallel.schedule import map_units


def select_starts(Y: np.ndarray, k_grid: Sequence[int], n_genotypes: int, seed: int, starts: int,
                  settings: EMSettings = EMSettings(tol=1e-7, max_iter=300), comm=None) -> List[StartResult]:
    """Every (K, start) unit of stage 1, in unit order (unit u: K = k_grid[u // starts], start u % starts);
    units are claimed by the ranks as they free up (the cost grows with K)."""
    YT = np.ascontiguousarray(Y.T)
    ks = list(k_grid)

    def compute(unit: int):
        return fit_start(Y, ks[unit // starts], n_genotypes, seed, unit % starts, settings, YT)

    found = map_units(compute, range(len(ks) * starts), comm, claimed=True)
    return [found[u] for u in range(len(ks) * starts)]


def scan_positions(Y: np.ndarray, probs: np.ndarray, null: NullFit, settings: EMSettings = EMSettings(),
                   comm=None) -> Dict[int, PositionFit]:
    """Test (i) at every position of ``probs (n, n_positions, Q)``: ``{position: PositionFit}`` on every rank."""
    YT = np.ascontiguousarray(Y.T)
    return map_units(lambda p: fit_position(Y, np.ascontiguousarray(probs[:, p, :]), null, settings, YT),
                     range(probs.shape[1]), comm, claimed=True)


def permutation_maxima(Y: np.ndarray, probs: np.ndarray, null: NullFit, seed: int, permutation_ids: Sequence[int],
                       settings: EMSettings = EMSettings(), comm=None) -> np.ndarray:
    """``(len(permutation_ids), 2)``: max LR and its position index of each permutation, in the order given."""
    YT = np.ascontiguousarray(Y.T)
    found = map_units(lambda r: permutation_maximum(Y, probs, null, seed, r, settings, YT), permutation_ids, comm,
                      claimed=True)
    return np.array([found[int(r)] for r in permutation_ids], dtype=float)


def bootstrap_replicates(pi: np.ndarray, constrained_mu: np.ndarray, constrained_var: np.ndarray,
                         constrained_rho: np.ndarray, n_genes: int, test: Sequence, seed: int, position: int,
                         test_id: int, replicates: Sequence[int], settings: EMSettings = EMSettings(),
                         comm=None) -> np.ndarray:
    """The bootstrap LRs of one stage-4 test (``test = (kind, cluster, other, genotype)``) at one position, one
    per replicate id in the order given; replicates are claimed by the ranks (stream keyed by (position,
    test_id, replicate), see :func:`qtlhpc.methods.blockmix.fitting.bootstrap_lr`)."""
    found = map_units(lambda r: bootstrap_lr(pi, constrained_mu, constrained_var, constrained_rho, n_genes, *test,
                                             seed, position, test_id, r, settings), replicates, comm, claimed=True)
    return np.array([found[int(r)] for r in replicates], dtype=float)
