"""PETSc LU and SLEPc eigenpairs of one matrix distributed over all ranks (run by tests/test_solvers.py).

usage: solvers.py [--eigen-on-rank-0-only]
Every rank checks its gathered results against numpy and asserts; rank 0 then prints one line
"RESULT <json>" with the ranks, the LU solvers tried and the largest relative error of each check.
With --eigen-on-rank-0-only, all ranks factor with MUMPS and only rank 0 asks SLEPc (on COMM_SELF)
for eigenpairs; rank 0 prints "RANK0_EIGEN <largest eigenvalue>" and the program must end.
"""

import json
import sys

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from qtlhpc.solvers import LogDetUnsupportedError, canonical_signs
from qtlhpc.solvers.petsc import LOGDET_SOLVERS, PetscSparseLU, available_lu_solvers, lu_event_counts

TOLERANCE = 1e-10


def nonsymmetric(n, seed, flipped_rows):
    """A diagonally dominant ``(n, n)`` CSR matrix with the sign of ``flipped_rows`` reversed."""
    rng = np.random.default_rng(seed)
    off = sp.random(n, n, density=0.05, random_state=rng, format="csr", data_rvs=lambda k: rng.uniform(-1, 1, k))
    off = (sp.triu(off, 1) + sp.tril(off, -1)).tocsr()
    signs = np.ones(n)
    signs[list(flipped_rows)] = -1.0
    diagonal = np.asarray(abs(off).sum(axis=1)).ravel() + rng.uniform(1.0, 2.0, n)
    return (sp.diags(signs) @ (off + sp.diags(diagonal))).tocsr()


def relative(value, reference):
    return float(np.max(np.abs(value - reference)) / np.max(np.abs(reference)))


def check_lu(comm, solver, errors):
    matrix = nonsymmetric(90, seed=11, flipped_rows=(0,))
    refactored = sp.csr_matrix((matrix.data * np.linspace(0.9, 1.1, matrix.nnz), matrix.indices, matrix.indptr))
    refactored = sp.diags(np.where(np.arange(90) == 5, -1.0, 1.0)) @ refactored
    rhs = np.random.default_rng(12).standard_normal((90, 3))
    before_factor = lu_event_counts()
    with PetscSparseLU(comm, solver).factor(matrix) as factors:
        logged = lu_event_counts()["symbolic"] > before_factor["symbolic"]
        assert logged or solver == "superlu_dist", f"PETSc logged no symbolic factorisation for {solver}"
        for label, dense in (("factor", matrix.toarray()), ("refactor", refactored.toarray())):
            if label == "refactor":
                before = lu_event_counts()
                factors.refactor(refactored)
                after = lu_event_counts()
                assert after["symbolic"] == before["symbolic"], (solver, "refactor repeated the symbolic phase")
                assert after["numeric"] == before["numeric"] + logged, (solver, before, after)
            errors[f"{solver} {label} solve"] = relative(factors.solve(rhs[:, 0]), np.linalg.solve(dense, rhs[:, 0]))
            errors[f"{solver} {label} solve 3"] = relative(factors.solve(rhs), np.linalg.solve(dense, rhs))
            sign_ref, logdet_ref = np.linalg.slogdet(dense)
            if solver in LOGDET_SOLVERS:
                sign, logdet = factors.logabsdet()
                assert sign == sign_ref, (solver, label, sign, sign_ref)
                errors[f"{solver} {label} logdet"] = abs(logdet - logdet_ref) / abs(logdet_ref)
            else:
                try:
                    factors.logabsdet()
                except LogDetUnsupportedError:
                    pass
                else:
                    raise AssertionError(f"{solver} gave a log|det| it should not")


def check_eigen(comm, errors):
    rng = np.random.default_rng(21)
    n = 80
    upper = sp.random(n, n, density=0.05, random_state=rng, format="csr")
    symmetric = (upper + upper.T + sp.diags(np.linspace(0.0, 40.0, n))).tocsr()
    values_ref, vectors_ref = np.linalg.eigh(symmetric.toarray())
    k = 4
    values_ref = values_ref[::-1][:k]
    vectors_ref = canonical_signs(vectors_ref[:, ::-1][:, :k])
    from qtlhpc.solvers.slepc import SlepcEigen

    for label, matrix in (("sparse", symmetric), ("dense", symmetric.toarray())):
        values, vectors = SlepcEigen(comm).largest(matrix, k)
        errors[f"slepc {label} eigenvalues"] = relative(values, values_ref)
        errors[f"slepc {label} eigenvectors"] = float(np.max(np.abs(vectors - vectors_ref)))
        all_vectors = comm.allgather(vectors)
        assert all(np.array_equal(v, vectors) for v in all_vectors), "ranks hold different eigenvectors"


def eigen_on_rank_0_only(comm):
    """Loading SLEPc on one rank only must not leave the ranks unequal at exit (PETSc's clean-up is collective)."""
    with PetscSparseLU(comm, "mumps").factor(sp.diags([2.0, 3.0, 4.0]).tocsr()) as factors:
        factors.solve(np.ones(3))
    if comm.Get_rank() == 0:
        from qtlhpc.solvers import eigensolver

        values, _ = eigensolver("slepc").largest(np.diag([1.0, 2.0, 3.0]), 1)
        print("RANK0_EIGEN", values[0], flush=True)


def main():
    comm = MPI.COMM_WORLD
    if "--eigen-on-rank-0-only" in sys.argv[1:]:
        eigen_on_rank_0_only(comm)
        return
    lu_event_counts()
    solvers = ["mumps"] + (["superlu_dist"] if "superlu_dist" in available_lu_solvers() else [])
    errors = {}
    for solver in solvers:
        check_lu(comm, solver, errors)
    check_eigen(comm, errors)
    worst = {name: comm.allreduce(value, op=MPI.MAX) for name, value in sorted(errors.items())}
    failed = {name: value for name, value in worst.items()
              if value > (1e-7 if name.endswith("eigenvectors") else TOLERANCE)}
    if comm.Get_rank() == 0:
        print("RESULT", json.dumps({"ranks": comm.Get_size(), "solvers": solvers, "errors": worst}), flush=True)
    assert not failed, f"rank {comm.Get_rank()}: errors above tolerance: {failed}"


if __name__ == "__main__":
    main()
