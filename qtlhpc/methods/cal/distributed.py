"""The middle layer of CAL: work units (replicate, topology, target block) -> kernels -> results.

A unit's numbers depend only on its ids and the run seed: replicate ``b`` permutes the strains with
``unit_rng(seed, "cal-permutation", b)`` (one permutation shared by every target: it keeps the correlation
between targets), replicate 0 is the observed data.  So any split over ranks, claimed or static, and over SLURM
array tasks gives the same numbers.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Dict, Sequence

import numpy as np

from qtlhpc.methods.cal import kernels as K
from qtlhpc.methods.cal.topology import Topology
from qtlhpc.parallel import schedule
from qtlhpc.parallel.rng import unit_rng

PERMUTATION_STREAM = "cal-permutation"
RESULT_FIELDS = ("score", "censored", "inputs", "output", "nodes", "seconds")


def permutation(seed: int, replicate: int, n_strains: int) -> np.ndarray:
    """Strain order of replicate ``replicate`` (identity for 0)."""
    if replicate == 0:
        return np.arange(n_strains)
    return unit_rng(seed, PERMUTATION_STREAM, replicate).permutation(n_strains)


@dataclass
class SearchProblem:
    """One CAL search: ``targets (S, T)`` (the searched targets), ``loci (T, L)`` binary, the topologies,
    the score options and the tolerance; replicates ``first_replicate ..`` ``+ n_replicates``."""

    targets: np.ndarray
    loci: np.ndarray
    topologies: Sequence[Topology]
    eta: int
    tstat: str
    score: str
    tolerance: float
    seed: int
    first_replicate: int
    n_replicates: int
    target_block: int

    def __post_init__(self):
        self.targets = np.asarray(self.targets, dtype=float)
        self.words = K.LocusWords(self.loci)
        self.plans = [K.search_plan(t) for t in self.topologies]
        self._permutations: Dict[int, np.ndarray] = {}

    @property
    def n_targets(self) -> int:
        return self.targets.shape[0]

    @property
    def n_target_blocks(self) -> int:
        return max(1, -(-self.n_targets // self.target_block))

    @property
    def n_blocks(self) -> int:
        return self.n_replicates * len(self.topologies) * self.n_target_blocks

    def block_ids(self):
        """Blocks in the order the ranks should claim them: three-input topologies (the costliest) first."""
        ids = range(self.n_blocks)
        return sorted(ids, key=lambda b: (-self.topologies[self.unpack(b)[1]].n_inputs, b))

    def unpack(self, block: int):
        """``(replicate row, topology, target block)`` of a block id."""
        rest, k = divmod(int(block), self.n_target_blocks)
        r, j = divmod(rest, len(self.topologies))
        return r, j, k

    def targets_of(self, k: int) -> range:
        return range(k * self.target_block, min(self.n_targets, (k + 1) * self.target_block))

    def compute_block(self, block: int) -> Dict[str, np.ndarray]:
        """The results of one block: arrays over its targets (``inputs`` ``(n, 3)``)."""
        r, j, k = self.unpack(block)
        replicate = self.first_replicate + r
        if replicate not in self._permutations:
            self._permutations[replicate] = permutation(self.seed, replicate, self.targets.shape[1])
        order = self._permutations[replicate]
        rows = self.targets_of(k)
        out = {"score": np.empty(len(rows)), "censored": np.zeros(len(rows), dtype=bool),
               "inputs": np.full((len(rows), 3), -1, dtype=np.int32), "output": np.zeros(len(rows), dtype=np.uint64),
               "nodes": np.zeros(len(rows), dtype=np.int64), "seconds": np.zeros(len(rows))}
        for i, target in enumerate(rows):
            started = time.perf_counter()
            tables = K.gene_tables(self.targets[target][order])
            found = K.search(tables, self.words, self.topologies[j], eta=self.eta, tstat=self.tstat,
                             score_kind=self.score, tolerance=self.tolerance, plan=self.plans[j])
            out["seconds"][i] = time.perf_counter() - started
            out["score"][i] = found.score
            out["censored"][i] = found.censored
            out["inputs"][i] = found.inputs
            out["output"][i] = np.uint64(found.output)
            out["nodes"][i] = found.nodes
        return out


def search_all(problem: SearchProblem, comm=None) -> Dict[str, np.ndarray]:
    """Every block of ``problem`` over ``comm`` (claimed units), gathered on every rank:
    ``{field: (n_replicates, n_targets, n_topologies[, 3])}``."""
    found = schedule.map_units(problem.compute_block, problem.block_ids(), comm, claimed=True)
    shape = (problem.n_replicates, problem.n_targets, len(problem.topologies))
    out = {"score": np.empty(shape), "censored": np.zeros(shape, dtype=bool),
           "inputs": np.full(shape + (3,), -1, dtype=np.int32), "output": np.zeros(shape, dtype=np.uint64),
           "nodes": np.zeros(shape, dtype=np.int64), "seconds": np.zeros(shape)}
    for block, values in found.items():
        r, j, k = problem.unpack(block)
        rows = problem.targets_of(k)
        for name in RESULT_FIELDS:
            out[name][r, rows.start:rows.stop, j] = values[name]
    return out
