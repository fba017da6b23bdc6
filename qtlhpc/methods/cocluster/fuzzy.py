"""Fuzzy clusters from successive largest eigenvectors of the co-clustering matrix ([J] §2.3; spec B2.4).

Inoue & Urahama's sequential extraction, normalised as in [J]: with residual masses ``r`` (all 1 at the
start), cluster ``k`` comes from the largest eigenpair of ``F^(k) = diag(r) F diag(r)``::

    i_max = argmax_i v_i                         (ties within a relative 1e-9: the lowest index)
    p_ik  = min(r_{i_max} v_i / v_{i_max}, r_i)  (k = 1: v_i / max v; k = 2: [J]'s min rule)
    r    <- r - p_.k

The extraction stops ([J] §2.3) when every entry of ``F^(k)`` is ``<= eps_zero`` (criterion 1, ``"exhausted"``),
when the largest eigenvalue is not simple, ``lambda1 - lambda2 <= eps_degenerate * lambda1`` (criterion 2,
``"degenerate"``), when the eigenvector has a negative entry below ``-eps_negative * max v`` (criterion 2,
``"negative"``), or after ``max_clusters`` clusters (``"max_clusters"``).

The matrix comes as this rank's block of rows (CSR, columns global); ``eigenpairs`` and ``reduce_max``
are supplied by the caller (serial: a solver's ``largest`` and the identity), so this module is pure.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, List, Tuple

import numpy as np
import scipy.sparse as sp

STOP_REASONS = ("exhausted", "degenerate", "negative", "max_clusters")
PROTOTYPE_TIE = 1e-9


@dataclass
class FuzzyResult:
    """Memberships ``p (G, K_f)`` as triplets above ``threshold``; per cluster ``lambda1, lambda2, prototype, size``."""

    genes: np.ndarray               # (n_entries,) int64
    clusters: np.ndarray            # (n_entries,) int64
    values: np.ndarray              # (n_entries,) float64, p_ik > threshold
    lambda1: np.ndarray             # (K_f,)
    lambda2: np.ndarray             # (K_f,)
    prototype: np.ndarray           # (K_f,) int64
    size: np.ndarray                # (K_f,) sum_i p_ik (all entries, not only those kept)
    coverage: np.ndarray            # (G,) sum_k p_ik = 1 - r_i
    stop_reason: str
    stop_lambda: Tuple[float, float] = (np.nan, np.nan)

    @property
    def n_clusters(self) -> int:
        return int(self.lambda1.size)

    def dense(self) -> np.ndarray:
        """``(G, K_f)`` memberships (entries at or below the threshold are 0)."""
        out = np.zeros((self.coverage.size, self.n_clusters))
        out[self.genes, self.clusters] = self.values
        return out


def prototype_index(vector: np.ndarray, tie: float = PROTOTYPE_TIE) -> int:
    """``argmax_i v_i``, the lowest index among entries within ``tie`` (relative) of the maximum."""
    top = float(vector.max())
    return int(np.flatnonzero(vector >= top * (1.0 - tie))[0])


def memberships(vector: np.ndarray, residual: np.ndarray) -> Tuple[np.ndarray, int]:
    """``(p (G,), i_max)`` by the rule above from a nonnegative eigenvector and the residual masses."""
    i_max = prototype_index(vector)
    p = np.minimum(residual[i_max] * vector / vector[i_max], residual)
    p[i_max] = residual[i_max]
    return p, i_max


def deflated_rows(rows: sp.csr_matrix, row_start: int, residual: np.ndarray, entry_rows=None) -> sp.csr_matrix:
    """``diag(r) F diag(r)`` restricted to this rank's rows ``row_start:row_start + rows.shape[0]`` (entries that
    become 0 are dropped).  ``entry_rows``: the global row of each stored entry (computed when not given)."""
    if entry_rows is None:
        entry_rows = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr)) + row_start
    data = rows.data * residual[entry_rows] * residual[rows.indices]
    scaled = sp.csr_matrix((data, rows.indices.copy(), rows.indptr.copy()), shape=rows.shape)
    scaled.eliminate_zeros()
    return scaled


def component_of(block: sp.csr_matrix, row_start: int, gather: Callable) -> np.ndarray:
    """``(G,)`` 0/1: the connected component (graph of the nonzero entries) of the lowest-index gene that has one.

    ``block``: this rank's rows; ``gather(local (n_local,)) -> (G,)``: the rows of all ranks in order."""
    has = gather((np.diff(block.indptr) > 0).astype(np.float64))
    seed = int(np.argmax(has))
    member = np.zeros(has.size)
    member[seed] = 1.0
    while True:
        local = member[row_start:row_start + block.shape[0]]
        reached = ((abs(block) @ member) > 0) | (local > 0)
        grown = gather(reached.astype(np.float64))
        if np.array_equal(grown, member):
            return member
        member = grown


def extract(rows: sp.csr_matrix, row_start: int, eigenpairs: Callable, reduce_max: Callable = float,
            max_clusters: int = 500, eps_zero: float = 1e-12, eps_degenerate: float = 1e-8,
            eps_negative: float = 1e-8, threshold: float = 1e-12, on_degenerate: str = "stop",
            gather: Callable = lambda local: local) -> FuzzyResult:
    """Successive fuzzy clusters of the symmetric nonnegative ``F`` given by its row block ``rows``.

    ``rows``: CSR ``(n_local, G)``, rows ``row_start..`` of ``F``.  ``eigenpairs(block) -> (values (2,),
    vectors (G, 2))``: the two largest eigenpairs of the matrix whose row blocks are ``block`` (the same
    result on every rank).  ``reduce_max(x)``: the maximum of ``x`` over ranks.  ``on_degenerate``:
    ``"stop"`` ([J]'s criterion 2) or ``"component"`` (beyond the paper: when the largest eigenvalue is not
    simple, or its eigenvector has negative entries (a near tie mixes components), the cluster is taken from
    the connected component of the lowest-index gene left, whose largest eigenvalue is simple; ``gather``
    joins the ranks' row-indexed vectors).
    """
    rows = sp.csr_matrix(rows, dtype=np.float64)
    rows.sum_duplicates()
    entry_rows = np.repeat(np.arange(rows.shape[0]), np.diff(rows.indptr)) + row_start
    n_genes = rows.shape[1]
    residual = np.ones(n_genes)
    genes: List[np.ndarray] = []
    clusters: List[np.ndarray] = []
    values: List[np.ndarray] = []
    lambda1: List[float] = []
    lambda2: List[float] = []
    prototypes: List[int] = []
    sizes: List[float] = []
    stop_reason = "max_clusters"
    stop_lambda = (np.nan, np.nan)
    for k in range(max_clusters):
        block = deflated_rows(rows, row_start, residual, entry_rows)
        largest_entry = reduce_max(float(block.data.max()) if block.nnz else 0.0)
        if largest_entry <= eps_zero:
            stop_reason = "exhausted"
            break
        eigenvalues, eigenvectors = eigenpairs(block)
        first, second = float(eigenvalues[0]), float(eigenvalues[1])
        vector = np.array(eigenvectors[:, 0], dtype=np.float64)
        if vector.sum() < 0:
            vector = -vector
        tied = first - second <= eps_degenerate * abs(first)
        mixed = vector.min() < -eps_negative * vector.max()
        if (tied or mixed) and on_degenerate == "component":
            member = component_of(block, row_start, gather)
            local_member = member[row_start:row_start + block.shape[0]]
            entry_member = np.repeat(local_member, np.diff(block.indptr))
            restricted = sp.csr_matrix((block.data * entry_member * member[block.indices], block.indices.copy(),
                                        block.indptr.copy()), shape=block.shape)
            restricted.eliminate_zeros()
            eigenvalues, eigenvectors = eigenpairs(restricted)
            first, second = float(eigenvalues[0]), float(eigenvalues[1])
            vector = np.array(eigenvectors[:, 0], dtype=np.float64)
            if vector.sum() < 0:
                vector = -vector
            vector = vector * member          # a vector of the zero rows outside the component means no cluster
            if not vector.max() > 0:
                stop_reason, stop_lambda = "degenerate", (first, second)
                break
        if first - second <= eps_degenerate * abs(first):
            stop_reason, stop_lambda = "degenerate", (first, second)
            break
        if vector.min() < -eps_negative * vector.max():
            stop_reason, stop_lambda = "negative", (first, second)
            break
        vector = np.maximum(vector, 0.0)
        p, i_max = memberships(vector, residual)
        residual = np.maximum(residual - p, 0.0)
        residual[i_max] = 0.0
        kept = np.flatnonzero(p > threshold)
        genes.append(kept)
        clusters.append(np.full(kept.size, k, dtype=np.int64))
        values.append(p[kept])
        lambda1.append(first)
        lambda2.append(second)
        prototypes.append(i_max)
        sizes.append(float(p.sum()))
    cat = lambda parts, dtype: np.concatenate(parts).astype(dtype) if parts else np.zeros(0, dtype=dtype)
    return FuzzyResult(cat(genes, np.int64), cat(clusters, np.int64), cat(values, np.float64),
                       np.array(lambda1), np.array(lambda2), np.array(prototypes, dtype=np.int64),
                       np.array(sizes), 1.0 - residual, stop_reason, stop_lambda)


def layout_counts(result: FuzzyResult, cutoffs=(0.1, 0.3, 0.5)) -> np.ndarray:
    """[J] Table 3 layout: ``(len(cutoffs), 2)``: genes in at least one / at least two clusters with ``p >= cutoff``."""
    out = np.zeros((len(cutoffs), 2), dtype=np.int64)
    for row, cutoff in enumerate(cutoffs):
        hits = np.bincount(result.genes[result.values >= cutoff], minlength=result.coverage.size)
        out[row] = (int((hits >= 1).sum()), int((hits >= 2).sum()))
    return out
