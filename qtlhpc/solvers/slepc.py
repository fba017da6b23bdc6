"""The largest eigenpairs of a symmetric matrix with SLEPc (EPS, Hermitian problem, Krylov-Schur default).

Importing this module imports slepc4py, and raises :class:`~qtlhpc.errors.BackendUnavailableError`
when it is missing.  The matrix is given whole on every rank; each rank hands SLEPc its block of rows,
and eigenvectors come back whole on every rank.
"""

from __future__ import annotations

from typing import Mapping, Optional, Tuple

import numpy as np
import scipy.sparse as sp

from qtlhpc.errors import BackendUnavailableError
from qtlhpc.solvers.eigen import EigenConvergenceError, as_symmetric, descending
from qtlhpc.solvers.petsc import (PETSc, VectorGather, clear_options, distributed_aij, owned_rows, petsc_comm,
                                  push_options, unique_prefix)

try:
    import slepc4py
    from slepc4py import SLEPc  # initialised with PETSc in qtlhpc.solvers.petsc
except ImportError as _error:
    raise BackendUnavailableError(
        f"slepc4py is not importable ({_error}): install python3-slepc4py-real (`make setup`) and set "
        f"SLEPC_DIR, or use the scipy backend"
    ) from _error


def distributed_dense(matrix: np.ndarray, comm) -> "PETSc.Mat":
    """A PETSc dense matrix on ``comm`` from the whole ``(n, n)`` array on each rank."""
    n = matrix.shape[0]
    start, stop = owned_rows(n, comm)
    dense = PETSc.Mat().createDense(size=((stop - start, n), (stop - start, n)), comm=comm)
    dense.setUp()
    dense.setValues(np.arange(start, stop, dtype=PETSc.IntType), np.arange(n, dtype=PETSc.IntType),
                    matrix[start:stop])
    dense.assemble()
    return dense


class SlepcEigen:
    """Largest eigenpairs with SLEPc on ``comm`` (``None``: each rank alone, ``COMM_SELF``).

    ``tol``: SLEPc's relative residual tolerance.  ``options`` (SLEPc option names without ``-``, e.g.
    ``{"eps_type": "lanczos"}``) go in under ``prefix`` (unique by default) and are removed after use.
    """

    name = "slepc"

    def __init__(self, comm=None, options: Optional[Mapping[str, object]] = None, prefix: Optional[str] = None,
                 tol: float = 1e-10, max_iterations: Optional[int] = None):
        self.comm = petsc_comm(comm)
        self.options = dict(options or {})
        self.prefix = unique_prefix("eps") if prefix is None else prefix
        self.tol = tol
        self.max_iterations = max_iterations

    def largest(self, matrix, k: int) -> Tuple[np.ndarray, np.ndarray]:
        matrix = as_symmetric(matrix, k)
        petsc_matrix = (distributed_aij(matrix, self.comm) if sp.issparse(matrix)
                        else distributed_dense(matrix, self.comm))
        eps = SLEPc.EPS().create(comm=self.comm)
        option_names = push_options(self.prefix, self.options)
        try:
            return self._solve(eps, petsc_matrix, k)
        finally:
            clear_options(option_names)
            eps.destroy()
            petsc_matrix.destroy()

    def largest_from_rows(self, local_rows: sp.csr_matrix, n: int, k: int) -> Tuple[np.ndarray, np.ndarray]:
        """As :meth:`largest`, for a symmetric ``(n, n)`` matrix of which each rank gives only its own rows.

        ``local_rows``: CSR ``(stop - start, n)`` with ``(start, stop) = owned_rows(n, comm)`` (PETSc's default
        split, the same as ``qtlhpc.parallel.partition.block_range``).  Symmetry is the caller's promise.
        """
        start, stop = owned_rows(n, self.comm)
        local = sp.csr_matrix(local_rows, dtype=np.float64)
        if local.shape != (stop - start, n):
            raise ValueError(f"this rank owns rows {start}:{stop} of {n}: expected a ({stop - start}, {n}) block, "
                             f"got {local.shape}")
        local.sum_duplicates()
        local.sort_indices()
        csr = (local.indptr.astype(PETSc.IntType), local.indices.astype(PETSc.IntType), local.data)
        petsc_matrix = PETSc.Mat().createAIJ(size=((stop - start, n), (stop - start, n)), csr=csr, comm=self.comm)
        eps = SLEPc.EPS().create(comm=self.comm)
        option_names = push_options(self.prefix, self.options)
        try:
            return self._solve(eps, petsc_matrix, k)
        finally:
            clear_options(option_names)
            eps.destroy()
            petsc_matrix.destroy()

    def _solve(self, eps, petsc_matrix, k: int) -> Tuple[np.ndarray, np.ndarray]:
        eps.setOptionsPrefix(self.prefix)
        eps.setOperators(petsc_matrix)
        eps.setProblemType(SLEPc.EPS.ProblemType.HEP)
        eps.setWhichEigenpairs(SLEPc.EPS.Which.LARGEST_REAL)
        eps.setDimensions(nev=k)
        eps.setTolerances(tol=self.tol, max_it=self.max_iterations)
        eps.setFromOptions()
        eps.solve()
        n_converged = eps.getConverged()
        if n_converged < k:
            raise EigenConvergenceError(
                f"SLEPc converged {n_converged} of {k} eigenpairs ({eps.getConvergedReason()!r}): raise "
                f"max_iterations or tol, or give eps_ncv in options"
            )
        vector = petsc_matrix.createVecRight()
        gather = VectorGather(vector)
        n = petsc_matrix.getSize()[0]
        values = np.empty(n_converged)
        vectors = np.empty((n, n_converged))
        for index in range(n_converged):
            values[index] = eps.getEigenpair(index, vector).real
            vectors[:, index] = gather.gather(vector)
        gather.destroy()
        vector.destroy()
        return descending(values, vectors / np.linalg.norm(vectors, axis=0), k)

    def __repr__(self) -> str:
        return f"SlepcEigen(tol={self.tol}, prefix={self.prefix!r}, options={self.options!r})"


def versions() -> dict:
    """SLEPc's and slepc4py's versions (for ``qtlhpc info``)."""
    return {"slepc": "%d.%d.%d" % SLEPc.Sys.getVersion(), "slepc4py": slepc4py.__version__}
