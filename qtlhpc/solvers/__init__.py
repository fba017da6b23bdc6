"""Sparse LU and symmetric eigensolvers, each with a scipy backend and a PETSc / SLEPc one.

This is the only package that imports petsc4py and slepc4py (in :mod:`qtlhpc.solvers.petsc`, which
loads both, and :mod:`qtlhpc.solvers.slepc`); importing ``qtlhpc.solvers`` imports neither.
``backend="auto"`` takes PETSc / SLEPc when they import, and scipy otherwise (PETSc-only settings are
then not used).

Under MPI the first call that loads PETSc (a factory with a PETSc backend, :func:`available_lu_solvers`,
:func:`describe_solvers`) must be made on every rank: PETSc's initialisation and its clean-up at exit
are collective on ``MPI_COMM_WORLD``.
"""

from __future__ import annotations

import difflib
from typing import List, Mapping, Optional, Tuple

from qtlhpc.errors import BackendUnavailableError, ConfigError
from qtlhpc.solvers.eigen import EigenConvergenceError, Eigensolver, ScipyEigen, canonical_signs
from qtlhpc.solvers.sparse_lu import LogDetUnsupportedError, LUFactorization, ScipySparseLU, SparseLU

__all__ = [
    "EigenConvergenceError", "Eigensolver", "LUFactorization", "LogDetUnsupportedError", "ScipyEigen",
    "ScipySparseLU", "SparseLU", "available_lu_solvers", "canonical_signs", "describe_solvers",
    "eigensolver", "sparse_lu",
]

LU_BACKENDS = ("auto", "scipy", "petsc")
EIGEN_BACKENDS = ("auto", "scipy", "slepc")


def _petsc_backend():
    from qtlhpc.solvers import petsc

    return petsc


def _slepc_backend():
    from qtlhpc.solvers import slepc

    return slepc


def _importable(loader) -> Tuple[object, str]:
    """``(module, "")``, or ``(None, reason)`` when the backend does not import."""
    try:
        return loader(), ""
    except BackendUnavailableError as error:
        return None, str(error)


def _check_backend(backend: str, choices: Tuple[str, ...], what: str) -> None:
    if backend not in choices:
        nearest = difflib.get_close_matches(str(backend), choices, n=1)
        hint = f"; did you mean {nearest[0]!r}?" if nearest else ""
        raise ConfigError(f"unknown {what} backend {backend!r}: choose one of {', '.join(choices)}{hint}")


def available_lu_solvers() -> Tuple[str, ...]:
    """PETSc's LU solvers that factor a tiny system here (``()`` without petsc4py), e.g. ``("mumps", ...)``."""
    petsc, _ = _importable(_petsc_backend)
    return () if petsc is None else petsc.available_lu_solvers()


def _default_lu_solver(petsc, comm) -> Optional[str]:
    available = petsc.available_lu_solvers()
    if comm is not None and getattr(comm, "is_mpi", True) and comm.Get_size() > 1:
        available = [name for name in available if name in petsc.PARALLEL_LU_SOLVERS]
    return "mumps" if "mumps" in available else (available[0] if available else None)


def sparse_lu(backend: str = "auto", comm=None, solver: Optional[str] = None,
              options: Optional[Mapping[str, object]] = None, prefix: Optional[str] = None) -> SparseLU:
    """A sparse LU backend: ``"petsc"`` (``solver`` default MUMPS), ``"scipy"`` (SuperLU), or ``"auto"``.

    ``comm``: PETSc factors one distributed matrix on it (default: each rank alone); scipy ignores it.
    ``options``: PETSc options without ``-`` under ``prefix``.
    """
    _check_backend(backend, LU_BACKENDS, "sparse LU")
    if backend == "scipy":
        if solver is not None or options:
            raise ConfigError("solver and options choose PETSc's LU: give backend='petsc' (or 'auto') with them")
        return ScipySparseLU()
    petsc, reason = _importable(_petsc_backend)
    if petsc is None:
        if backend == "petsc":
            raise BackendUnavailableError(reason)
        return ScipySparseLU()
    chosen = solver or _default_lu_solver(petsc, comm)
    if chosen is None:
        if backend == "petsc":
            raise BackendUnavailableError("PETSc here has no LU solver that works on this communicator")
        return ScipySparseLU()
    return petsc.PetscSparseLU(comm=comm, solver=chosen, options=options, prefix=prefix)


def eigensolver(backend: str = "auto", comm=None, options: Optional[Mapping[str, object]] = None,
                prefix: Optional[str] = None, tol: float = 1e-10) -> Eigensolver:
    """A symmetric eigensolver: ``"slepc"``, ``"scipy"``, or ``"auto"``; ``options`` are SLEPc's."""
    _check_backend(backend, EIGEN_BACKENDS, "eigensolver")
    if backend == "scipy":
        if options:
            raise ConfigError("options are SLEPc's: give backend='slepc' (or 'auto') with them")
        return ScipyEigen(tol=tol)
    slepc, reason = _importable(_slepc_backend)
    if slepc is None:
        if backend == "slepc":
            raise BackendUnavailableError(reason)
        return ScipyEigen(tol=tol)
    return slepc.SlepcEigen(comm=comm, options=options, prefix=prefix, tol=tol)


def describe_solvers() -> List[str]:
    """Two lines for ``qtlhpc info``: the sparse LU and the eigensolver that ``"auto"`` uses here."""
    petsc, reason = _importable(_petsc_backend)
    if petsc is None:
        lu_line = f"sparse LU: scipy (SuperLU; PETSc not used: {reason.split(':')[0]})"
    else:
        solvers = petsc.available_lu_solvers()
        default = _default_lu_solver(petsc, None)
        others = [name for name in solvers if name != default]
        logdet = [name for name in solvers if name in petsc.LOGDET_SOLVERS]
        lu_line = (f"sparse LU: petsc ({default}; also: {', '.join(others) or 'none'}; "
                   f"log|det|: {', '.join(logdet) or 'none'})" if default else
                   "sparse LU: scipy (SuperLU; PETSc has no working LU solver here)")
    slepc, reason = _importable(_slepc_backend)
    eigen_line = ("eigen: slepc" if slepc is not None else
                  f"eigen: scipy (LAPACK eigh / ARPACK eigsh; SLEPc not used: {reason.split(':')[0]})")
    return [lu_line, eigen_line]
