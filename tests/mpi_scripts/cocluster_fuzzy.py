"""Fuzzy extraction of one co-clustering matrix with SLEPc over all ranks (run by tests/test_cocluster_fuzzy.py).

usage: cocluster_fuzzy.py F.npy OUT.npz
Each rank takes its rows of F (PETSc's split), extracts the fuzzy clusters with SLEPc on COMM_WORLD and
checks that every rank got the same result; rank 0 writes OUT.npz and prints DONE.
"""

import sys

import numpy as np
import scipy.sparse as sp
from mpi4py import MPI

from qtlhpc.methods.cocluster.distributed import eigenpairs_on, fuzzy_clusters, own_rows

comm = MPI.COMM_WORLD
F = np.load(sys.argv[1])
start, stop = own_rows(F.shape[0], comm)
rows = sp.csr_matrix(F[start:stop])
result = fuzzy_clusters(rows, start, comm, backend="slepc", max_clusters=30)
values, vectors = eigenpairs_on(comm, "slepc", F.shape[0])(rows)
dense = result.dense()
everyone = comm.allgather(dense)
assert all(np.array_equal(dense, other) for other in everyone), "ranks disagree"
if comm.Get_rank() == 0:
    np.savez(sys.argv[2], memberships=dense, lambda1=result.lambda1, lambda2=result.lambda2,
             stop_reason=result.stop_reason, first_vector=vectors[:, 0])
    print("DONE")
