"""Sparse LU through PETSc (KSP ``preonly`` + PC ``lu``) with MUMPS, SuperLU_dist, UMFPACK, ...

Importing this module imports petsc4py, and raises :class:`~qtlhpc.errors.BackendUnavailableError`
when it is missing.  Matrices and right-hand sides are given whole on every rank; on a communicator
of several ranks each rank hands PETSc its block of rows, and solutions come back whole on every rank.

``log|det|`` is available from these LU solvers only (see :data:`LOGDET_SOLVERS`):

* ``mumps``: MUMPS computes it during the factorisation (``ICNTL(33) = 1``, always set here), read
  back as ``RINFOG(12) * 2**INFOG(34)``; serial and parallel.
* ``petsc``: PETSc's own serial LU, from the diagonal of ``U`` in the factored matrix.  Its default
  fill orderings permute rows and columns alike, so they do not change the sign; it does not pivot.

SuperLU, SuperLU_dist, UMFPACK and KLU keep their factors inside the external package and petsc4py
gives no access to them: :meth:`PetscLUFactorization.logabsdet` raises
:class:`~qtlhpc.solvers.sparse_lu.LogDetUnsupportedError` for them.

``refactor`` puts new values into the same PETSc matrix; PETSc then runs the numeric factorisation only
(MUMPS, UMFPACK, KLU, PETSc's LU: one ``MatLUFactorNum`` event, no ``MatLUFactorSym``; SuperLU and
SuperLU_dist do both phases inside PETSc's numeric one, unlogged, and reuse theirs with ``SamePattern``).

SuperLU_dist without MC64 (Debian's build) pivots statically only: a matrix that needs row pivoting
fails with a zero pivot, and one with a diagonal entry not stored would end the process inside
SuperLU_dist, so that is refused beforehand with :class:`numpy.linalg.LinAlgError`.
"""

from __future__ import annotations

import functools
import itertools
import math
import sys
from typing import Dict, List, Mapping, Optional, Tuple

import numpy as np
import scipy.sparse as sp

from qtlhpc.errors import BackendUnavailableError
from qtlhpc.solvers.sparse_lu import LogDetUnsupportedError, as_rhs, as_square_csr, check_same_pattern


def _initialise_petsc_and_slepc():
    """Initialise SLEPc (when importable) and PETSc once per process, with no command-line options.

    petsc4py 3.18 registers a collective clean-up on ``MPI_COMM_WORLD`` at exit for every ``init`` call
    (and SLEPc's first import): ranks with different counts hang at exit.  So ``init`` is called only
    when not done yet, and SLEPc is loaded together with PETSc, never on only some ranks.
    """
    try:
        import slepc4py

        if "slepc4py.SLEPc" not in sys.modules:
            slepc4py.init([])
    except ImportError:
        pass
    import petsc4py

    if "petsc4py.PETSc" not in sys.modules:
        petsc4py.init([])


try:
    _initialise_petsc_and_slepc()
    import petsc4py
    from petsc4py import PETSc
except ImportError as _error:
    raise BackendUnavailableError(
        f"petsc4py is not importable ({_error}): install python3-petsc4py-real (`make setup`) and set "
        f"PETSC_DIR, or use the scipy backend"
    ) from _error

CANDIDATE_LU_SOLVERS = ("mumps", "superlu_dist", "superlu", "umfpack", "klu", "petsc", "strumpack",
                        "mkl_pardiso", "mkl_cpardiso", "pastix", "lusol")
PARALLEL_LU_SOLVERS = ("mumps", "superlu_dist", "strumpack", "mkl_cpardiso", "pastix")
LOGDET_SOLVERS = ("mumps", "petsc")
_NONSYMMETRIC_ORDERING_OPTIONS = ("pc_factor_nonzeros_along_diagonal",)
_NONSYMMETRIC_ORDERINGS = ("wbm", "external")
_ERR_MISSING_FACTOR = 92
_NO_PIVOTING_HINTS = {
    "petsc": "PETSc's own LU does not pivot: use mumps, superlu or umfpack. ",
    "superlu_dist": ("SuperLU_dist pivots statically only (rows permuted by MC64, which some builds such as "
                     "Debian's lack): use mumps. "),
}
_prefix_counter = itertools.count()


def petsc_comm(comm) -> "PETSc.Comm":
    """The PETSc communicator for ``comm`` (mpi4py or PETSc): ``COMM_SELF`` for ``None`` or a serial stand-in."""
    if comm is None or getattr(comm, "is_mpi", True) is False:
        return PETSc.COMM_SELF
    return comm if isinstance(comm, PETSc.Comm) else PETSc.Comm(comm)


def unique_prefix(kind: str) -> str:
    """A fresh PETSc options prefix, ``qtlhpc_<kind>_<n>_``."""
    return f"qtlhpc_{kind}_{next(_prefix_counter)}_"


def push_options(prefix: str, options: Optional[Mapping[str, object]]) -> List[str]:
    """Write ``options`` into PETSc's options database under ``prefix``; return the full names written."""
    database = PETSc.Options()
    names = []
    for key, value in (options or {}).items():
        name = prefix + str(key).lstrip("-")
        database[name] = value
        names.append(name)
    return names


def clear_options(names: List[str]) -> None:
    database = PETSc.Options()
    for name in names:
        if database.hasName(name):
            database.delValue(name)


def petsc_error_message(error: "PETSc.Error") -> str:
    """The last line of PETSc's error trace (the reason), without the ``[rank]`` tag."""
    lines = [line.split("]", 1)[-1].strip() for line in str(error).splitlines() if line.strip()]
    return lines[-1] if lines else f"PETSc error {error.args}"


def owned_rows(n: int, comm) -> Tuple[int, int]:
    """``(start, stop)`` of the rows this rank owns in PETSc's default split of ``n`` rows."""
    n_ranks, rank = comm.getSize(), comm.getRank()
    base, extra = divmod(n, n_ranks)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


def distributed_aij(matrix: sp.csr_matrix, comm) -> "PETSc.Mat":
    """A PETSc AIJ matrix on ``comm`` (a PETSc comm) from the whole ``(n, n)`` CSR ``matrix`` on each rank."""
    n = matrix.shape[0]
    start, stop = owned_rows(n, comm)
    local = matrix[start:stop]
    csr = (local.indptr.astype(PETSc.IntType), local.indices.astype(PETSc.IntType), local.data)
    return PETSc.Mat().createAIJ(size=((stop - start, n), (stop - start, n)), csr=csr, comm=comm)


def set_csr_values(petsc_matrix: "PETSc.Mat", matrix: sp.csr_matrix) -> None:
    """Overwrite the values of ``petsc_matrix`` with those of the whole ``matrix`` (same pattern)."""
    start, stop = petsc_matrix.getOwnershipRange()
    local = matrix[start:stop]
    petsc_matrix.setValuesCSR(local.indptr.astype(PETSc.IntType), local.indices.astype(PETSc.IntType),
                              local.data)
    petsc_matrix.assemble()


class VectorGather:
    """Copies a whole vector into a distributed PETSc vector and gathers a distributed one on all ranks."""

    def __init__(self, template: "PETSc.Vec"):
        self._scatter, self._whole = PETSc.Scatter.toAll(template)
        self.start, self.stop = template.getOwnershipRange()

    def set_local(self, vector: "PETSc.Vec", values: np.ndarray) -> None:
        vector.setArray(values[self.start:self.stop])

    def gather(self, vector: "PETSc.Vec") -> np.ndarray:
        self._scatter.scatter(vector, self._whole, addv=PETSc.InsertMode.INSERT,
                              mode=PETSc.ScatterMode.FORWARD)
        return self._whole.getArray().copy()

    def destroy(self) -> None:
        self._scatter.destroy()
        self._whole.destroy()


class MissingLUSolverError(BackendUnavailableError):
    """PETSc has no such LU solver for this matrix type (not built in, or serial only)."""


class PetscLUFactorization:
    """The LU factors of one ``(n, n)`` matrix held by a PETSc KSP; see the module docstring.

    Every method is collective on the communicator.  Free it with :meth:`destroy` or a ``with`` block
    (garbage collection runs at different times on different ranks).
    """

    def __init__(self, matrix, comm, solver: str, options: Optional[Mapping[str, object]], prefix: str):
        self._matrix = as_square_csr(matrix)
        self.n = self._matrix.shape[0]
        self.solver = solver
        self._options = dict(options or {})
        self._refuse_superlu_dist_abort()
        self._petsc_matrix = distributed_aij(self._matrix, comm)
        self._ksp = PETSc.KSP().create(comm=comm)
        self._rhs, self._solution = self._petsc_matrix.createVecs()
        self._gather = VectorGather(self._solution)
        option_names = push_options(prefix, self._options)
        try:
            self._setup(prefix)
        except BaseException:
            self.destroy()
            raise
        finally:
            clear_options(option_names)

    def _refuse_superlu_dist_abort(self) -> None:
        """SuperLU_dist without a row permutation ends the process on a structurally zero diagonal entry."""
        row_permutation = str(self._options.get("mat_superlu_dist_rowperm", "NOROWPERM")).upper()
        if self.solver != "superlu_dist" or row_permutation != "NOROWPERM":
            return
        rows = np.repeat(np.arange(self.n), np.diff(self._matrix.indptr))
        has_diagonal = np.zeros(self.n, dtype=bool)
        has_diagonal[rows[self._matrix.indices == rows]] = True
        if not has_diagonal.all():
            raise np.linalg.LinAlgError(
                f"superlu_dist without a row permutation would abort the process: diagonal entry "
                f"{int(np.argmin(has_diagonal))} is not stored. {_NO_PIVOTING_HINTS['superlu_dist']}"
                f"(or set options mat_superlu_dist_rowperm where SuperLU_dist has MC64)"
            )

    def _setup(self, prefix: str) -> None:
        ksp = self._ksp
        ksp.setOptionsPrefix(prefix)
        ksp.setOperators(self._petsc_matrix)
        ksp.setType(PETSc.KSP.Type.PREONLY)
        ksp.setErrorIfNotConverged(True)
        pc = ksp.getPC()
        pc.setType(PETSc.PC.Type.LU)
        pc.setFactorSolverType(self.solver)
        ksp.setFromOptions()
        self.solver = pc.getFactorSolverType()
        try:
            pc.setFactorSetUpSolverType()
        except PETSc.Error as error:
            if error.args and error.args[0] == _ERR_MISSING_FACTOR:
                raise MissingLUSolverError(
                    f"PETSc here has no LU solver {self.solver!r} for a {self._petsc_matrix.getType()} matrix"
                ) from error
            raise
        if self.solver == "mumps":
            pc.getFactorMatrix().setMumpsIcntl(33, 1)
        self._numeric_factor()

    def _numeric_factor(self) -> None:
        try:
            self._ksp.setUp()
        except PETSc.Error as error:
            raise np.linalg.LinAlgError(
                f"PETSc's LU ({self.solver}) failed on the {self.n} x {self.n} matrix: is it singular? "
                f"{_NO_PIVOTING_HINTS.get(self.solver, '')}({petsc_error_message(error)})"
            ) from error

    def _ksp_alive(self) -> "PETSc.KSP":
        if self._ksp is None:
            raise ValueError("this LU factorisation was destroyed")
        return self._ksp

    def refactor(self, matrix) -> None:
        new = as_square_csr(matrix)
        check_same_pattern(self._matrix, new)
        ksp = self._ksp_alive()
        set_csr_values(self._petsc_matrix, new)
        ksp.setOperators(self._petsc_matrix)
        self._matrix = new
        self._numeric_factor()

    def solve(self, rhs) -> np.ndarray:
        rhs = as_rhs(rhs, self.n)
        ksp = self._ksp_alive()
        columns = rhs.reshape(self.n, -1)
        solution = np.empty_like(columns)
        for column in range(columns.shape[1]):
            self._gather.set_local(self._rhs, columns[:, column])
            try:
                ksp.solve(self._rhs, self._solution)
            except PETSc.Error as error:
                raise np.linalg.LinAlgError(
                    f"PETSc's LU solve ({self.solver}) failed ({petsc_error_message(error)})") from error
            solution[:, column] = self._gather.gather(self._solution)
        if not np.all(np.isfinite(solution)):
            raise np.linalg.LinAlgError(f"PETSc's LU solve ({self.solver}) gave non-finite values: the "
                                        f"matrix is singular to working precision")
        return solution.reshape(rhs.shape)

    def logabsdet(self) -> Tuple[float, float]:
        factored = self._ksp_alive().getPC().getFactorMatrix()
        if self.solver == "mumps":
            mantissa, exponent = factored.getMumpsRinfog(12), factored.getMumpsInfog(34)
            if mantissa == 0:
                return 0.0, -math.inf
            return float(np.sign(mantissa)), math.log(abs(mantissa)) + exponent * math.log(2.0)
        if self.solver == "petsc":
            self._check_symmetric_ordering()
            diagonal = factored.getDiagonal().getArray()
            return float(np.prod(np.sign(diagonal))), float(np.sum(np.log(np.abs(diagonal))))
        raise LogDetUnsupportedError(
            f"the LU solver {self.solver!r} cannot give log|det| through PETSc: solve with it, but use "
            f"{' or '.join(LOGDET_SOLVERS)} (or the scipy backend) for the determinant"
        )

    def _check_symmetric_ordering(self) -> None:
        ordering = str(self._options.get("pc_factor_mat_ordering_type", ""))
        if ordering in _NONSYMMETRIC_ORDERINGS or any(key.lstrip("-") in _NONSYMMETRIC_ORDERING_OPTIONS
                                                      for key in self._options):
            raise LogDetUnsupportedError(
                "log|det| from PETSc's own LU needs a symmetric ordering (rows and columns permuted alike); "
                f"options {self._options} permute rows alone"
            )

    def destroy(self) -> None:
        if self._ksp is None:
            return
        for item in (self._ksp, self._gather, self._rhs, self._solution, self._petsc_matrix):
            item.destroy()
        self._ksp = None

    def __enter__(self) -> "PetscLUFactorization":
        return self

    def __exit__(self, *exc) -> None:
        self.destroy()


class PetscSparseLU:
    """Sparse LU with PETSc's ``solver`` on ``comm`` (``None``: each rank alone, ``COMM_SELF``).

    ``options`` (PETSc option names without ``-``, e.g. ``{"mat_mumps_icntl_14": 50}``) apply to this
    backend only: they go in under ``prefix`` (unique by default) and are removed after the set-up.
    """

    def __init__(self, comm=None, solver: str = "mumps", options: Optional[Mapping[str, object]] = None,
                 prefix: Optional[str] = None):
        self.comm = petsc_comm(comm)
        self.solver = solver
        self.options = dict(options or {})
        self.prefix = unique_prefix("lu") if prefix is None else prefix
        if not self.prefix or self.prefix.startswith("-"):
            raise ValueError(f"a PETSc options prefix must be non-empty and not start with '-', got {prefix!r}")

    @property
    def name(self) -> str:
        return f"petsc-{self.solver}"

    def factor(self, matrix) -> PetscLUFactorization:
        """Factor the ``(n, n)`` matrix (scipy.sparse, the same whole matrix on every rank)."""
        try:
            return PetscLUFactorization(matrix, self.comm, self.solver, self.options, self.prefix)
        except MissingLUSolverError as error:
            parallel = [name for name in available_lu_solvers() if name in PARALLEL_LU_SOLVERS]
            raise MissingLUSolverError(
                f"{error}; LU solvers that work here: {', '.join(available_lu_solvers()) or 'none'} "
                f"(on several ranks: {', '.join(parallel) or 'none'})"
            ) from error.__cause__

    def __repr__(self) -> str:
        return f"PetscSparseLU(solver={self.solver!r}, prefix={self.prefix!r}, options={self.options!r})"


def _tiny_system():
    matrix = sp.csr_matrix(np.array([[4.0, 1.0, 0.0, 0.0], [2.0, 5.0, 1.0, 0.0],
                                     [0.0, 1.0, 6.0, 2.0], [0.0, 0.0, 3.0, 7.0]]))
    return matrix, matrix @ np.arange(1.0, 5.0)


@functools.lru_cache(maxsize=1)
def available_lu_solvers() -> Tuple[str, ...]:
    """The LU solvers of :data:`CANDIDATE_LU_SOLVERS` that factor and solve a tiny 4 x 4 system here."""
    matrix, rhs = _tiny_system()
    found = []
    for solver in CANDIDATE_LU_SOLVERS:
        try:
            with PetscLUFactorization(matrix, PETSc.COMM_SELF, solver, None, unique_prefix("probe")) as factors:
                if np.allclose(factors.solve(rhs), np.arange(1.0, 5.0), rtol=1e-10):
                    found.append(solver)
        except (PETSc.Error, BackendUnavailableError, np.linalg.LinAlgError):
            continue
    return tuple(found)


def lu_event_counts() -> Dict[str, int]:
    """How many symbolic and numeric LU factorisations PETSc logged in this process so far.

    The first call switches PETSc's event logging on; only factorisations after it are counted.
    """
    if not PETSc.Log.isActive():
        PETSc.Log.begin()
    return {"symbolic": PETSc.Log.Event("MatLUFactorSym").getPerfInfo()["count"],
            "numeric": PETSc.Log.Event("MatLUFactorNum").getPerfInfo()["count"]}


def versions() -> Dict[str, str]:
    """PETSc's and petsc4py's versions (for ``qtlhpc info``)."""
    return {"petsc": "%d.%d.%d" % PETSc.Sys.getVersion(), "petsc4py": petsc4py.__version__}
