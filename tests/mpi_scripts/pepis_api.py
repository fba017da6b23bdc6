"""The PEPIS Python API under mpirun (tests/test_pepis_api.py).

usage: pepis_api.py OUT.npz

Simulates a small F2-like data set (the same on every rank), computes the kinships, REML fits, 1D and
2D scans with the world communicator and small units, checks that every rank holds the same arrays, and
writes rank 0's to OUT.npz.
"""

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from qtlhpc.methods import pepis  # noqa: E402
from qtlhpc.parallel import world  # noqa: E402
from references.pepis_simulation import prepared, simulate  # noqa: E402


def compute(comm):
    Z, W, K0, X, y, rng = simulate(36, 13, seed=11)
    Y = np.column_stack([y, y + rng.normal(size=y.size)])
    kinships = pepis.kinships(Z, W, comm=comm, block_rows=5)
    fits = pepis.fit_traits(Y, X, {k: kinships.matrices[k] for k in ("a", "d")}, comm=comm)
    background = prepared(K0, X, y)
    one = pepis.scan1d(background, Z, W, comm=comm, block_markers=3)
    two = pepis.scan2d(background, Z, W, comm=comm, pairs_per_unit=7)
    arrays = {f"kinship_{k}": v for k, v in kinships.matrices.items()}
    arrays.update(reml_lambdas=np.array([f.lambdas for f in fits]), reml_loglik=np.array([f.loglik for f in fits]),
                  scan1d_lrt=one.lrt, scan1d_effects=one.effects, scan2d_lrt=two.lrt, scan2d_pvalue=two.pvalue)
    return arrays


def main(out):
    comm = world()
    arrays = compute(comm)
    gathered = comm.allgather(arrays)
    for other in gathered[1:]:
        for name, value in arrays.items():
            assert np.array_equal(other[name], value, equal_nan=True), f"{name} differs between ranks"
    if comm.Get_rank() == 0:
        np.savez(out, size=comm.Get_size(), **arrays)


if __name__ == "__main__":
    main(sys.argv[1])
