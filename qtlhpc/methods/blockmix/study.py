"""The paper's simulation study, one replicate at a time (Wang et al. 2016, "Result validation by computer
simulation"): simulate, choose K by CL-BIC, fit the null, scan the linkage group, take the position of the
largest LR.  Used by the tests, bench/bench_blockmix_paper.py and the ``paper`` test.

A replicate is a work unit: its data and starts come from ``unit_rng`` streams keyed by the replicate id, so any
split of the replicates over ranks or array tasks gives the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Sequence

import numpy as np

from qtlhpc.genetics.genoprob import genoprob_chromosome
from qtlhpc.methods.blockmix.fitting import EMSettings, best_per_k, fit_null, fit_position, fit_start
from qtlhpc.methods.blockmix.simulate import Design, simulate


@dataclass
class ReplicateResult:
    replicate: int
    k_hat: int
    bic: Dict[int, float]
    agreement: float              # adjusted Rand index of the K-hat clusters with the planted ones
    position_cM: float            # position of the largest LR
    oracle_position_cM: float     # the same estimator with the true eQTL genotypes known (the precision limit)
    max_lr: float
    lr: np.ndarray
    positions_cM: np.ndarray


def adjusted_rand(a: np.ndarray, b: np.ndarray) -> float:
    """Adjusted Rand index of two labellings (Hubert & Arabie 1985)."""
    _, a = np.unique(a, return_inverse=True)
    _, b = np.unique(b, return_inverse=True)
    table = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(table, (a, b), 1)

    def pairs(x):
        return (x * (x - 1) / 2).sum()

    total = pairs(np.array([a.size]))
    index, rows, cols = pairs(table), pairs(table.sum(axis=1)), pairs(table.sum(axis=0))
    expected = rows * cols / total
    maximum = (rows + cols) / 2
    return float((index - expected) / (maximum - expected)) if maximum != expected else 1.0


def analyse_replicate(design: Design, seed: int, replicate: int, k_grid: Sequence[int], starts: int = 2,
                      step: float = 1.0, select: EMSettings = EMSettings(tol=1e-7, max_iter=300),
                      scan: EMSettings = EMSettings()) -> ReplicateResult:
    data = simulate(design, seed, replicate)
    Y = data.expression
    YT = np.ascontiguousarray(Y.T)
    Q = data.mu.shape[0]
    fits = [fit_start(Y, k, Q, seed, s, select, YT) for k in k_grid for s in range(starts)]
    best = best_per_k(fits)
    k_hat = min(best, key=lambda k: (best[k].bic, k))
    chosen = best[k_hat]
    geno = genoprob_chromosome(data.genotypes, data.marker_positions, design.cross_type, step=step)
    null = fit_null(Y, chosen.mu, chosen.var, chosen.rho, chosen.pi, scan, YT)
    lr = np.array([fit_position(Y, np.ascontiguousarray(geno.probs[:, p, :]), null, scan, YT).lr
                   for p in range(geno.probs.shape[1])])
    oracle = np.log(np.maximum(geno.probs[np.arange(Y.shape[0]), :, data.qtl_genotype], 1e-300)).sum(axis=0)
    return ReplicateResult(replicate, k_hat, {k: float(b.bic) for k, b in best.items()},
                           adjusted_rand(chosen.labels, data.gene_cluster), float(geno.positions[np.argmax(lr)]),
                           float(geno.positions[np.argmax(oracle)]), float(lr.max()), lr, geno.positions)
