"""Pure kernels of GaneSh co-clustering (Joshi, Van de Peer & Michoel 2008): arrays in, arrays out.

* :func:`coclustering_score`: the Bayesian score ``sum_kl S_kl`` of a co-clustering ([J] eqs. (1)-(2)),
  recomputed from scratch (the reference of the incremental statistics);
* :func:`run_chain`: one Gibbs run ([J] §2.2) from a keyed random generator: gene moves, condition moves
  inside each gene cluster, clusters opened and closed; one-way mode (Qin 2006, conditions singletons);
* :func:`cooccurrence_rows`: rows of the pairwise co-clustering counts ([J] eq. (5)) over samples;
* :func:`rho` ([J] eq. (4), cosine reading, spec B2.2) and :func:`fuzziness_entropy` ([J] eq. (6)).

No MPI, files or configuration here.  The compiled loops are in :mod:`.gibbs_kernels`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional

import numpy as np

from qtlhpc.methods.cocluster import gibbs_kernels as gk


@dataclass(frozen=True)
class Prior:
    """Normal-gamma prior of every co-cluster ([J] §2.1): ``mu | tau ~ N(mu0, 1/(lambda0 tau))``, ``tau ~ Gamma(alpha0, beta0)``."""

    mu0: float = 0.0
    lambda0: float = 0.1
    alpha0: float = 0.1
    beta0: float = 0.1

    def array(self) -> np.ndarray:
        return np.array([self.mu0, self.lambda0, self.alpha0, self.beta0], dtype=np.float64)


def ng_score(n: float, s1: float, s2: float, prior: Prior = Prior()) -> float:
    """The log marginal likelihood ``S(T0, T1, T2)`` of ``n`` cells with sum ``s1`` and sum of squares ``s2``."""
    return float(gk.ng_score(float(n), float(s1), float(s2), prior.mu0, prior.lambda0, prior.alpha0, prior.beta0))


def prepare(expression: np.ndarray):
    """``(values, observed, squares)`` each ``(G, C)`` float64 from ``expression (G, C)`` (NaN: missing, weight 0)."""
    expression = np.asarray(expression, dtype=np.float64)
    if expression.ndim != 2:
        raise ValueError(f"expression must be 2-D (genes, conditions), got shape {expression.shape}")
    observed = np.isfinite(expression).astype(np.float64)
    values = np.where(observed > 0, expression, 0.0)
    return np.ascontiguousarray(values), np.ascontiguousarray(observed), np.ascontiguousarray(values * values)


def coclustering_score(expression: np.ndarray, gene_labels: np.ndarray, condition_labels: np.ndarray,
                       prior: Prior = Prior()) -> float:
    """``sum_k sum_l S(T_kl)`` from scratch: ``gene_labels (G,)``, ``condition_labels (K, C)`` indexed by gene label.

    ``condition_labels[k]`` is the condition partition of gene cluster ``k`` (``k`` a value of ``gene_labels``).
    """
    expression = np.asarray(expression, dtype=np.float64)
    total = 0.0
    for k in np.unique(gene_labels):
        block = expression[gene_labels == k]
        for l in np.unique(condition_labels[k]):
            cells = block[:, condition_labels[k] == l].ravel()
            cells = cells[np.isfinite(cells)]
            total += ng_score(cells.size, cells.sum(), (cells * cells).sum(), prior)
    return total


class ChainState:
    """The state of one chain (slot arrays of :mod:`.gibbs_kernels`) and its data."""

    def __init__(self, expression: np.ndarray, gene_labels: np.ndarray, condition_labels: np.ndarray,
                 prior: Prior = Prior(), one_way: bool = False):
        """``gene_labels (G,)`` in ``0..G-1``; ``condition_labels (G, C)``: row ``k`` the partition of cluster ``k``."""
        self.values, self.observed, self.squares = prepare(expression)
        n_genes, n_conditions = self.values.shape
        self.prior = prior
        self.prior_array = prior.array()
        self.table = gk.score_table(int(self.observed.sum()), self.prior_array)
        self.one_way = bool(one_way)
        self.gene_slot = np.asarray(gene_labels, dtype=np.int64).copy()
        self.gene_count = np.bincount(self.gene_slot, minlength=n_genes).astype(np.int64)
        self.active = np.zeros(n_genes, dtype=np.int64)
        open_slots = np.flatnonzero(self.gene_count)
        self.n_active = np.array([open_slots.size], dtype=np.int64)
        self.active[:open_slots.size] = open_slots
        self.cond_slot = np.zeros((n_genes, n_conditions), dtype=np.int64)
        self.cond_count = np.zeros((n_genes, n_conditions), dtype=np.int64)
        self.cond_active = np.zeros((n_genes, n_conditions), dtype=np.int64)
        self.n_cond_active = np.zeros(n_genes, dtype=np.int64)
        for k in open_slots:
            row = np.arange(n_conditions) if one_way else np.asarray(condition_labels[k], dtype=np.int64)
            self.cond_slot[k] = row
            self.cond_count[k] = np.bincount(row, minlength=n_conditions)
            blocks = np.flatnonzero(self.cond_count[k])
            self.cond_active[k, :blocks.size] = blocks
            self.n_cond_active[k] = blocks.size
        self.t0, self.t1, self.t2 = self.recomputed_statistics()
        self.score = np.zeros_like(self.t0)
        for k in open_slots:
            for l in self.cond_active[k, :self.n_cond_active[k]]:
                self.score[k, l] = ng_score(self.t0[k, l], self.t1[k, l], self.t2[k, l], prior)

    def recomputed_statistics(self):
        """``(t0, t1, t2)`` each ``(G, C)`` recomputed from the labels (reference of the incremental ones)."""
        n_genes, n_conditions = self.values.shape
        stats = [np.zeros((n_genes, n_conditions)) for _ in range(3)]
        rows = np.repeat(self.gene_slot, n_conditions)
        cols = self.cond_slot[self.gene_slot].ravel()
        for target, source in zip(stats, (self.observed, self.values, self.squares)):
            np.add.at(target, (rows, cols), source.ravel())
        return tuple(stats)

    def open_clusters(self) -> np.ndarray:
        return np.sort(self.active[:self.n_active[0]])

    def score_total(self) -> float:
        return float(gk.total_score(self.active, self.n_active[0], self.cond_active, self.n_cond_active, self.score))

    def gene_labels(self) -> np.ndarray:
        """``(G,)`` int32 labels numbered by first appearance (0, 1, ...)."""
        _, first, inverse = np.unique(self.gene_slot, return_index=True, return_inverse=True)
        rank = np.argsort(np.argsort(first))
        return rank[inverse].astype(np.int32)

    def condition_partitions(self) -> np.ndarray:
        """``(K, C)`` int32: the condition labels (by first appearance) of each gene cluster, in the order of :meth:`gene_labels`."""
        _, first = np.unique(self.gene_slot, return_index=True)
        slots = self.gene_slot[np.sort(first)]
        out = np.empty((slots.size, self.values.shape[1]), dtype=np.int32)
        for row, k in enumerate(slots):
            _, f, inv = np.unique(self.cond_slot[k], return_index=True, return_inverse=True)
            out[row] = np.argsort(np.argsort(f))[inv]
        return out

    def gene_sweep(self, rng: np.random.Generator, n_moves: Optional[int] = None, log_bias: float = 0.0) -> None:
        """``n_moves`` (default G) gene moves at genes drawn uniformly with replacement ([J] §2.2 step 2)."""
        n_genes = self.values.shape[0]
        n_moves = n_genes if n_moves is None else n_moves
        order = rng.integers(0, n_genes, n_moves)
        uniforms = rng.random(n_moves)
        gk.gene_step(order, uniforms, self.one_way, float(log_bias), self.values, self.observed, self.squares,
                     self.prior_array, self.table, self.gene_slot, self.gene_count, self.active, self.n_active, self.cond_slot,
                     self.cond_count, self.cond_active, self.n_cond_active, self.t0, self.t1, self.t2, self.score)

    def condition_sweep(self, rng: np.random.Generator) -> None:
        """For each open gene cluster (increasing slot), C condition moves ([J] §2.2 step 3); none one-way."""
        if self.one_way:
            return
        n_genes, n_conditions = self.values.shape
        h0, h1, h2 = gk.column_statistics(self.values, self.observed, self.squares, self.gene_slot, n_genes)
        for k in self.open_clusters():
            order = rng.integers(0, n_conditions, n_conditions)
            uniforms = rng.random(n_conditions)
            gk.condition_step(k, order, uniforms, h0, h1, h2, self.prior_array, self.table, self.cond_slot, self.cond_count,
                              self.cond_active, self.n_cond_active, self.t0, self.t1, self.t2, self.score)


def initial_labels(rng: np.random.Generator, n_genes: int, n_conditions: int,
                   initial_clusters: int = 0, initial_condition_clusters: int = 0):
    """Random initial co-clustering ([J] §2.2 step 1; spec B2.1 defaults ``K0 = floor(sqrt G)``, ``L0 = floor(sqrt C)``).

    Returns ``(gene_labels (G,), condition_labels (G, C))``; empty clusters simply do not occur in the labels.
    """
    k0 = initial_clusters or max(1, int(math.isqrt(n_genes)))
    l0 = initial_condition_clusters or max(1, int(math.isqrt(n_conditions)))
    gene_labels = rng.integers(0, min(k0, n_genes), n_genes)
    condition_labels = rng.integers(0, min(l0, n_conditions), (n_genes, n_conditions))
    return gene_labels.astype(np.int64), condition_labels.astype(np.int64)


@dataclass
class ChainResult:
    """One run: ``samples (S, G)`` int32 gene labels after burn-in, ``score_trace (T,)``, ``n_clusters (T,)``,
    the final ``gene_labels (G,)`` and ``condition_partitions (K, C)``."""

    samples: np.ndarray
    score_trace: np.ndarray
    n_clusters: np.ndarray
    gene_labels: np.ndarray
    condition_partitions: np.ndarray


def run_chain(expression: np.ndarray, rng: np.random.Generator, n_iterations: int = 100, burn_in: int = 50,
              thin: int = 1, one_way: bool = False, prior: Prior = Prior(), initial_clusters: int = 0,
              initial_condition_clusters: int = 0, log_bias: float = 0.0) -> ChainResult:
    """One Gibbs run of ``n_iterations`` iterations (gene sweep then condition sweep); keeps iterations
    ``t > burn_in`` with ``(t - burn_in) % thin == 0`` (1-based ``t``)."""
    expression = np.asarray(expression, dtype=np.float64)
    n_genes, n_conditions = expression.shape
    gene_labels, condition_labels = initial_labels(rng, n_genes, n_conditions, initial_clusters,
                                                   initial_condition_clusters)
    state = ChainState(expression, gene_labels, condition_labels, prior, one_way)
    samples: List[np.ndarray] = []
    trace = np.empty(n_iterations)
    n_clusters = np.empty(n_iterations, dtype=np.int32)
    for t in range(1, n_iterations + 1):
        state.gene_sweep(rng, log_bias=log_bias)
        state.condition_sweep(rng)
        trace[t - 1] = state.score_total()
        n_clusters[t - 1] = state.n_active[0]
        if t > burn_in and (t - burn_in) % thin == 0:
            samples.append(state.gene_labels())
    kept = np.array(samples, dtype=np.int32).reshape(len(samples), n_genes)
    return ChainResult(kept, trace, n_clusters, state.gene_labels(), state.condition_partitions())


def cooccurrence_rows(samples: np.ndarray, row_start: int, row_stop: int) -> np.ndarray:
    """Counts ``(row_stop - row_start, G)`` of samples ``(S, G)`` in which genes ``i`` (rows) and ``j`` co-cluster."""
    samples = np.ascontiguousarray(samples, dtype=np.int64)
    return gk.cooccurrence_rows(samples, int(row_start), int(row_stop))


def rho(first, second) -> float:
    """[J] eq. (4), cosine reading (spec B2.2): ``sum a b / sqrt(sum a^2 sum b^2)`` over all entries."""
    a = np.asarray(first.toarray() if hasattr(first, "toarray") else first, dtype=np.float64).ravel()
    b = np.asarray(second.toarray() if hasattr(second, "toarray") else second, dtype=np.float64).ravel()
    return rho_from_sums(float(a @ b), float(a @ a), float(b @ b))


def rho_from_sums(cross: float, first_squares: float, second_squares: float) -> float:
    """eq. (4) from its three sums (each reducible over row blocks)."""
    if first_squares == 0.0 or second_squares == 0.0:
        return 0.0
    return cross / math.sqrt(first_squares * second_squares)


def binary_entropy_sum(values: np.ndarray) -> float:
    """``sum h(p)`` with ``h(p) = -p log2 p - (1-p) log2 (1-p)``, ``h(0) = h(1) = 0`` (entries of ``values``)."""
    p = np.asarray(values, dtype=np.float64).ravel()
    p = p[(p > 0.0) & (p < 1.0)]
    return float(-(p * np.log2(p) + (1.0 - p) * np.log2(1.0 - p)).sum())


def fuzziness_entropy(matrix) -> float:
    """[J] eq. (6) (spec B2.3): ``(1/G^2) sum_ij h(F_ij)``; 0 for hard clusterings, 1 when every entry is 0.5."""
    n = matrix.shape[0]
    data = matrix.data if hasattr(matrix, "data") and hasattr(matrix, "indptr") else np.asarray(matrix)
    return binary_entropy_sum(data) / float(n * n)
