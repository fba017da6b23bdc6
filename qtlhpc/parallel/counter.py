"""A shared counter for self-scheduling: every rank claims the next work unit with one atomic RMA operation.

Rank 0 holds one 64-bit integer in an MPI window; :meth:`SharedCounter.claim` returns the value before
adding one (``MPI_Fetch_and_op`` under a shared passive-target lock), so each index is handed out once,
to whichever rank asks first, without a dispatcher and without waiting for any other rank to be in MPI
where the MPI library does RMA atomics itself (shared memory on one node; RDMA networks).  With a
serial communicator it is a plain counter.  Creating and freeing it are collective.
"""

from __future__ import annotations

import numpy as np

from qtlhpc.parallel.comm import as_comm, is_serial


class SharedCounter:
    """``claim()`` -> 0, 1, 2, ... across all ranks of ``comm`` (collective constructor and :meth:`free`)."""

    def __init__(self, comm=None):
        self.comm = as_comm(comm)
        self._next = 0
        self._window = None
        if is_serial(self.comm) or self.comm.Get_size() == 1:
            return
        from mpi4py import MPI

        self._mpi = MPI
        self._window = MPI.Win.Allocate(8 if self.comm.Get_rank() == 0 else 0, disp_unit=8, comm=self.comm)
        if self.comm.Get_rank() == 0:  # the window's memory starts undefined: set it to 0 through RMA
            self._window.Lock(0, MPI.LOCK_EXCLUSIVE)
            self._window.Put(np.zeros(1, dtype=np.int64), 0, 0)
            self._window.Unlock(0)
        self.comm.Barrier()
        self._one = np.ones(1, dtype=np.int64)
        self._value = np.zeros(1, dtype=np.int64)

    def claim(self) -> int:
        """The next index (each index is returned to exactly one caller over all ranks)."""
        if self._window is None:
            self._next += 1
            return self._next - 1
        self._window.Lock(0, self._mpi.LOCK_SHARED)
        self._window.Fetch_and_op(self._one, self._value, 0, 0, self._mpi.SUM)
        self._window.Unlock(0)
        return int(self._value[0])

    def free(self) -> None:
        """Release the window (collective)."""
        if self._window is not None:
            self._window.Free()
            self._window = None

    def __enter__(self) -> "SharedCounter":
        return self

    def __exit__(self, *exc) -> None:
        # after an exception on one rank a collective free could deadlock: leave the window to MPI_Abort
        if exc[0] is None:
            self.free()
