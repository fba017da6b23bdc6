"""The middle layer of GaneSh co-clustering: runs as work units, F by row blocks, fuzzy extraction on ranks.

* Runs: each run ``r`` is a work unit with its own stream ``unit_rng(seed, "cocluster-run", r)``, spread
  over ranks by :mod:`qtlhpc.parallel.schedule`; which rank ran it never changes its numbers.
* ``F`` ([J] eq. (5) averaged over runs): each rank owns the rows ``block_range(G, rank, size)`` (PETSc's
  default split) and accumulates them from the label samples of every run; no rank holds all of ``F``.
* Fuzzy clusters ([J] §2.3): every deflation scales the local rows; the two largest eigenpairs come from
  the ``solvers`` eigen interface (SLEPc on the communicator with the row blocks as one PETSc matrix, or
  scipy on the gathered matrix).
"""

from __future__ import annotations

from typing import Callable, Dict, Sequence, Tuple

import numpy as np
import scipy.sparse as sp

from qtlhpc.methods.cocluster import fuzzy
from qtlhpc.methods.cocluster.kernels import ChainResult, Prior, cooccurrence_rows, run_chain
from qtlhpc.parallel import unit_rng
from qtlhpc.parallel.comm import allreduce_max, allreduce_sum, as_comm
from qtlhpc.parallel.partition import block_range, chunk_ranges
from qtlhpc.parallel.schedule import map_units

RUN_STREAM = "cocluster-run"


def own_rows(n_genes: int, comm) -> Tuple[int, int]:
    """This rank's rows of ``F`` (PETSc's default split)."""
    comm = as_comm(comm)
    return block_range(n_genes, comm.Get_rank(), comm.Get_size())


def one_run(expression: np.ndarray, seed: int, run: int, **chain_options) -> ChainResult:
    """Run ``run`` of the co-clustering: a Gibbs chain on its own keyed stream."""
    return run_chain(expression, unit_rng(seed, RUN_STREAM, run), **chain_options)


def runs(expression: np.ndarray, seed: int, run_ids: Sequence[int], comm=None, **chain_options) -> Dict[int, ChainResult]:
    """``{run: ChainResult}`` for every run (the same dict on every rank; collective)."""
    return map_units(lambda run: one_run(expression, seed, run, **chain_options), list(run_ids), comm,
                     claimed=False)


def f_rows(samples: Sequence[np.ndarray], row_start: int, row_stop: int, chunk: int = 256) -> sp.csr_matrix:
    """Rows ``row_start:row_stop`` of ``F = mean over all samples`` (CSR, G columns) from label arrays ``(S_r, G)``.

    Rows are built ``chunk`` at a time (dense only for ``chunk x G``), so memory is the CSR block.
    """
    n_genes = samples[0].shape[1]
    n_samples = sum(s.shape[0] for s in samples)
    parts = []
    for start, stop in chunk_ranges(row_stop - row_start, chunk) or [(0, 0)]:
        counts = np.zeros((stop - start, n_genes))
        for labels in samples:
            counts += cooccurrence_rows(labels, row_start + start, row_start + stop)
        parts.append(sp.csr_matrix(counts / n_samples))
    return sp.vstack(parts, format="csr") if parts else sp.csr_matrix((0, n_genes))


def f_sums(first: sp.csr_matrix, second: sp.csr_matrix, comm=None) -> Tuple[float, float, float]:
    """``(sum a b, sum a^2, sum b^2)`` over all ranks' row blocks of two matrices (for rho, eq. (4))."""
    local = np.array([first.multiply(second).sum(), first.multiply(first).sum(), second.multiply(second).sum()])
    total = allreduce_sum(as_comm(comm), local)
    return float(total[0]), float(total[1]), float(total[2])


def entropy_sum(rows: sp.csr_matrix, comm=None) -> float:
    """``sum_ij h(F_ij)`` over all ranks' rows (divide by ``G^2`` for eq. (6))."""
    from qtlhpc.methods.cocluster.kernels import binary_entropy_sum

    return float(allreduce_sum(as_comm(comm), np.array([binary_entropy_sum(rows.data)]))[0])


def eigenpairs_on(comm, backend: str = "auto", n_genes: int = 0, tol: float = 1e-10,
                  options=None) -> Callable:
    """``block -> (values (2,), vectors (G, 2))`` for :func:`fuzzy.extract` over this rank's row blocks."""
    from qtlhpc.solvers import eigensolver

    comm = as_comm(comm)
    mpi = comm if getattr(comm, "is_mpi", True) is not False and comm.Get_size() > 1 else None
    solver = eigensolver(backend, comm=mpi, options=options, tol=tol)
    if hasattr(solver, "largest_from_rows"):
        return lambda block: solver.largest_from_rows(block, n_genes, 2)
    if comm.Get_size() == 1:
        return lambda block: two_largest_on_support(solver, block)
    return lambda block: two_largest_on_support(solver, sp.vstack(comm.allgather(block), format="csr"))


def two_largest_on_support(solver, matrix: sp.csr_matrix):
    """The two largest eigenpairs of a symmetric ``matrix`` whose empty rows (exhausted genes) are left out of
    the solve: they only add eigenvalue 0, and a large null space stalls ARPACK's Lanczos."""
    matrix = sp.csr_matrix(matrix)
    n = matrix.shape[0]
    support = np.flatnonzero(np.diff(matrix.indptr) > 0)
    values = np.zeros(2)
    vectors = np.zeros((n, 2))
    if support.size == 0:
        return values, vectors
    sub = matrix[support][:, support]
    k = min(2, support.size)
    found_values, found_vectors = solver.largest(sub, k)
    values[:k] = found_values
    vectors[support, :k] = found_vectors
    if support.size < n:
        values[1] = max(values[1], 0.0) if k == 2 else 0.0
    return values, vectors


def fuzzy_clusters(rows: sp.csr_matrix, row_start: int, comm=None, backend: str = "auto", tol: float = 1e-10,
                   **extract_options) -> fuzzy.FuzzyResult:
    """Fuzzy clusters of ``F`` given as this rank's rows (``own_rows``); the same result on every rank (collective)."""
    comm = as_comm(comm)
    eigenpairs = eigenpairs_on(comm, backend, rows.shape[1], tol)
    gather = (lambda local: local) if comm.Get_size() == 1 else (lambda local: np.concatenate(comm.allgather(local)))
    return fuzzy.extract(rows, row_start, eigenpairs, lambda value: allreduce_max(comm, value), gather=gather,
                         **extract_options)
