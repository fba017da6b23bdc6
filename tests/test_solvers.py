"""qtlhpc.solvers against numpy: sparse LU (scipy; PETSc with every LU solver here) and largest eigenpairs
(scipy; SLEPc), serial and under mpirun."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from mpi_helpers import run_mpi
from requirements import require
from qtlhpc.errors import BackendUnavailableError, ConfigError
from qtlhpc.solvers import (LogDetUnsupportedError, ScipyEigen, ScipySparseLU, available_lu_solvers,
                            canonical_signs, describe_solvers, eigensolver, sparse_lu)
from qtlhpc.solvers.sparse_lu import permutation_sign

SCRIPT = Path(__file__).parent / "mpi_scripts" / "solvers.py"
TOLERANCE = 1e-10
NO_PIVOTING = ("petsc",)  # PETSc's own LU; SuperLU_dist pivots only statically (MC64, missing in Debian)


def _lu_backend(name):
    if name == "scipy":
        return ScipySparseLU()
    require("petsc")
    return sparse_lu("petsc", solver=name)


def _eigen_backend(name):
    if name == "slepc":
        require("slepc")
        return eigensolver("slepc")
    return ScipyEigen(dense_below=0 if name == "scipy-eigsh" else 500)


def off_diagonal_pattern(n, seed):
    """A random ``(n, n)`` pattern (density 5%) without diagonal, nor entries (0, 1) and (1, 0)."""
    rng = np.random.default_rng(seed)
    pattern = sp.random(n, n, density=0.05, random_state=rng, format="coo")
    keep = (pattern.row != pattern.col) & ~np.isin(pattern.row * n + pattern.col, [1, n])
    return sp.coo_matrix((np.ones(keep.sum()), (pattern.row[keep], pattern.col[keep])), shape=(n, n)).tocsr()


def nonsymmetric(pattern, seed, flipped_rows=(), swap_first_rows=False):
    """Values on ``pattern`` plus a dominant diagonal; rows ``flipped_rows`` negated (det sign -1 each);
    rows 0 and 1 swapped if asked (det sign -1, and zero diagonal: needs pivoting)."""
    rng = np.random.default_rng(seed)
    off = pattern.copy()
    off.data = rng.uniform(-1.0, 1.0, off.nnz)
    diagonal = np.asarray(abs(off).sum(axis=1)).ravel() + rng.uniform(1.0, 2.0, off.shape[0])
    signs = np.ones(off.shape[0])
    signs[list(flipped_rows)] = -1.0
    matrix = sp.diags(signs) @ (off + sp.diags(diagonal))
    if swap_first_rows:
        order = np.r_[1, 0, 2:off.shape[0]]
        matrix = sp.csr_matrix(matrix)[order]
    return sp.csr_matrix(matrix)


# name: (n, pattern seed, flipped rows, swap rows 0 and 1)
MATRICES = {
    "n50": (50, 1, (), False),
    "n120_negative_det": (120, 2, (7,), False),
    "n200_three_flips": (200, 3, (0, 50, 199), False),
    "n90_needs_pivoting": (90, 4, (), True),
}


def lu_backends():
    """scipy, PETSc's MUMPS (always listed: it fails under CI when missing), and every other LU solver here."""
    others = [name for name in available_lu_solvers() if name != "mumps"]
    return ["scipy", "mumps", *others]


def relative(value, reference):
    return np.max(np.abs(value - reference)) / np.max(np.abs(reference))


def check_against_numpy(factors, matrix, solver):
    dense = matrix.toarray()
    rhs = np.random.default_rng(99).standard_normal((dense.shape[0], 3))
    assert relative(factors.solve(rhs[:, 0]), np.linalg.solve(dense, rhs[:, 0])) < TOLERANCE
    assert factors.solve(rhs[:, 0]).shape == (dense.shape[0],)
    assert relative(factors.solve(rhs), np.linalg.solve(dense, rhs)) < TOLERANCE
    sign_ref, logdet_ref = np.linalg.slogdet(dense)
    if solver in ("scipy", "mumps", "petsc"):
        sign, logdet = factors.logabsdet()
        assert sign == sign_ref
        assert abs(logdet - logdet_ref) <= TOLERANCE * abs(logdet_ref)
    else:
        with pytest.raises(LogDetUnsupportedError, match="cannot give log"):
            factors.logabsdet()


def factor_counts(solver):
    if solver == "scipy":
        return None
    from qtlhpc.solvers.petsc import lu_event_counts

    return lu_event_counts()


@pytest.mark.parametrize("matrix_name", list(MATRICES))
@pytest.mark.parametrize("solver", lu_backends())
def test_lu_solve_logdet_and_refactor_equal_numpy(solver, matrix_name):
    backend = _lu_backend(solver)
    n, seed, flips, swap = MATRICES[matrix_name]
    pattern = off_diagonal_pattern(n, seed)
    matrix = nonsymmetric(pattern, seed, flips, swap)
    if swap and solver in NO_PIVOTING:
        with pytest.raises(np.linalg.LinAlgError, match="does not pivot"):
            backend.factor(matrix)
        return
    if swap and solver == "superlu_dist":
        try:
            backend.factor(matrix).destroy()
        except np.linalg.LinAlgError as error:
            assert "pivots statically" in str(error)
            return
    factor_counts(solver)
    with backend.factor(matrix) as factors:
        check_against_numpy(factors, matrix, solver)
        refactored = nonsymmetric(pattern, seed + 100, tuple(flips) + (3,), swap)
        before = factor_counts(solver)
        factors.refactor(refactored)
        after = factor_counts(solver)
        check_against_numpy(factors, refactored, solver)
    if before is not None:
        assert after["symbolic"] == before["symbolic"], "refactor repeated the symbolic factorisation"
        unlogged = solver in ("superlu", "superlu_dist")  # PETSc logs no factor events for these two
        assert after["numeric"] == before["numeric"] + (0 if unlogged else 1)


def test_negative_determinants_are_exercised():
    signs = {name: np.linalg.slogdet(nonsymmetric(off_diagonal_pattern(n, seed), seed, flips, swap).toarray())[0]
             for name, (n, seed, flips, swap) in MATRICES.items()}
    assert signs == {"n50": 1.0, "n120_negative_det": -1.0, "n200_three_flips": -1.0, "n90_needs_pivoting": -1.0}


@pytest.mark.parametrize("solver", ["scipy", "mumps"])
def test_refactor_rejects_another_pattern_and_factor_a_non_square(solver):
    backend = _lu_backend(solver)
    matrix = nonsymmetric(off_diagonal_pattern(40, 5), 5)
    with backend.factor(matrix) as factors:
        with pytest.raises(ValueError, match="sparsity pattern"):
            factors.refactor(nonsymmetric(off_diagonal_pattern(40, 6), 6))
        with pytest.raises(ValueError, match=r"shape \(40,\) or \(40, n_rhs\)"):
            factors.solve(np.ones(39))
    with pytest.raises(ValueError, match="must be square"):
        backend.factor(sp.random(4, 5, density=0.5, format="csr"))


def test_missing_lu_solver_names_those_that_work():
    require("petsc")
    with pytest.raises(BackendUnavailableError, match="no LU solver 'not_a_solver'.*LU solvers that work here: mumps"):
        sparse_lu("petsc", solver="not_a_solver").factor(nonsymmetric(off_diagonal_pattern(10, 1), 1))


def test_petsc_options_go_under_the_prefix_and_are_removed():
    require("petsc")
    from qtlhpc.solvers.petsc import PETSc

    backend = sparse_lu("petsc", solver="mumps", options={"mat_mumps_icntl_14": 45}, prefix="qtlhpc_test_")
    with backend.factor(nonsymmetric(off_diagonal_pattern(30, 1), 1)) as factors:
        assert factors._ksp.getPC().getFactorMatrix().getMumpsIcntl(14) == 45
    assert not PETSc.Options().hasName("qtlhpc_test_mat_mumps_icntl_14")


def test_permutation_sign_counts_transpositions():
    assert permutation_sign(np.arange(5)) == 1.0
    assert permutation_sign(np.array([1, 0, 2])) == -1.0
    assert permutation_sign(np.array([1, 2, 0])) == 1.0
    assert permutation_sign(np.array([3, 2, 1, 0])) == 1.0


def symmetric(n, seed, dense=False):
    """A sparse symmetric ``(n, n)`` matrix whose top eigenvalues are well separated."""
    rng = np.random.default_rng(seed)
    upper = sp.random(n, n, density=0.05, random_state=rng, format="csr")
    matrix = (upper + upper.T + sp.diags(np.linspace(0.0, n / 2, n))).tocsr()
    return matrix.toarray() if dense else matrix


@pytest.mark.parametrize("k", [1, 4])
@pytest.mark.parametrize("dense", [False, True], ids=["sparse", "dense"])
@pytest.mark.parametrize("backend_name", ["scipy-eigh", "scipy-eigsh", "slepc"])
def test_largest_eigenpairs_equal_numpy(backend_name, dense, k):
    backend = _eigen_backend(backend_name)
    matrix = symmetric(120, seed=7, dense=dense)
    values_ref, vectors_ref = np.linalg.eigh(matrix.toarray() if sp.issparse(matrix) else matrix)
    values, vectors = backend.largest(matrix, k)
    assert values.shape == (k,) and vectors.shape == (120, k)
    assert np.all(np.diff(values) <= 0)
    assert relative(values, values_ref[::-1][:k]) < 1e-8
    np.testing.assert_allclose(vectors, canonical_signs(vectors_ref[:, ::-1][:, :k]), atol=1e-7)
    assert np.all(vectors[np.argmax(np.abs(vectors), axis=0), np.arange(k)] > 0)


@pytest.mark.parametrize("backend_name", ["scipy-eigh", "slepc"])
def test_eigen_rejects_asymmetric_matrix_and_bad_k(backend_name):
    backend = _eigen_backend(backend_name)
    matrix = symmetric(20, seed=1, dense=True)
    matrix[0, 1] += 1.0
    with pytest.raises(ValueError, match="must be symmetric"):
        backend.largest(matrix, 2)
    with pytest.raises(ValueError, match="k must be between 1 and n = 20"):
        backend.largest(symmetric(20, seed=1), 21)


def test_factories_choose_by_name_and_describe():
    with pytest.raises(ConfigError, match="did you mean 'petsc'"):
        sparse_lu("pets")
    with pytest.raises(ConfigError, match="backend='petsc'"):
        sparse_lu("scipy", solver="mumps")
    assert isinstance(sparse_lu("scipy"), ScipySparseLU)
    assert isinstance(eigensolver("scipy"), ScipyEigen)
    lu_line, eigen_line = describe_solvers()
    assert lu_line.startswith("sparse LU: ") and eigen_line.startswith("eigen: ")
    if available_lu_solvers():
        assert lu_line.startswith("sparse LU: petsc (mumps; also: ") and "log|det|: mumps, petsc" in lu_line
        assert type(sparse_lu()).__name__ == "PetscSparseLU"


HIDE_PETSC = """
import sys
class _Missing:
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("petsc4py", "slepc4py"):
            raise ImportError(f"No module named {name!r} (hidden by the test)")
        return None
sys.meta_path.insert(0, _Missing())
"""

CHECK_IMPORTS = """
import sys
import numpy as np
import qtlhpc.solvers as solvers
from qtlhpc.errors import BackendUnavailableError
assert "petsc4py" not in sys.modules and "slepc4py" not in sys.modules, "importing qtlhpc.solvers imported PETSc"
if sys.argv[1] == "hidden":
    print(*solvers.describe_solvers(), sep="\\n")
    assert type(solvers.sparse_lu()).__name__ == "ScipySparseLU"
    assert type(solvers.eigensolver()).__name__ == "ScipyEigen"
    for make in (lambda: solvers.sparse_lu("petsc"), lambda: solvers.eigensolver("slepc")):
        try:
            make()
        except BackendUnavailableError as error:
            print("UNAVAILABLE", error)
    with solvers.sparse_lu().factor(np.diag([2.0, -3.0])) as factors:
        print("LOGDET", *factors.logabsdet())
"""


def test_import_is_lazy_and_scipy_serves_without_petsc(tmp_path):
    (tmp_path / "sitecustomize.py").write_text(HIDE_PETSC)
    script = tmp_path / "check.py"
    script.write_text(CHECK_IMPORTS)
    subprocess.run([sys.executable, script, "visible"], check=True, capture_output=True, text=True)
    env = dict(os.environ, PYTHONPATH=str(tmp_path) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    proc = subprocess.run([sys.executable, script, "hidden"], env=env, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    assert "sparse LU: scipy (SuperLU; PETSc not used: petsc4py is not importable" in proc.stdout
    assert "eigen: scipy" in proc.stdout
    assert proc.stdout.count("UNAVAILABLE") == 2
    logdet_line = [line.split()[1:] for line in proc.stdout.splitlines() if line.startswith("LOGDET ")]
    assert len(logdet_line) == 1
    sign, logdet = map(float, logdet_line[0])
    assert sign == -1.0 and abs(logdet - np.log(6.0)) < 1e-14


@pytest.mark.mpi
@pytest.mark.parametrize("n_ranks", [1, 2])
def test_distributed_lu_and_eigenpairs_equal_numpy_on_every_rank(n_ranks):
    require("petsc")
    require("slepc")
    proc = run_mpi(n_ranks, [SCRIPT], timeout=120)
    lines = [line.split(None, 1)[1] for line in proc.stdout.splitlines() if line.startswith("RESULT ")]
    assert len(lines) == 1, proc.stdout
    result = json.loads(lines[0])
    assert result["ranks"] == n_ranks
    expected = ["mumps"] + (["superlu_dist"] if "superlu_dist" in available_lu_solvers() else [])
    assert result["solvers"] == expected
    assert any(name.startswith("mumps refactor logdet") for name in result["errors"])
    for name, error in result["errors"].items():
        assert error < (1e-7 if name.endswith("eigenvectors") else TOLERANCE), name


@pytest.mark.mpi
def test_slepc_on_one_rank_only_lets_the_job_end():
    require("petsc")
    require("slepc")
    proc = run_mpi(2, [SCRIPT, "--eigen-on-rank-0-only"], timeout=60)
    assert "RANK0_EIGEN 3.0" in proc.stdout
