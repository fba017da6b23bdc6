"""Communicators: the real mpi4py one in drivers, a serial stand-in everywhere else.

Library functions take ``comm`` as an argument and default to :data:`SERIAL`; nothing in the library
touches ``COMM_WORLD``.  Only the CLI (a driver) calls :func:`world`.
"""

from __future__ import annotations

import functools
import operator
import os
import pickle
from typing import Any, Callable

import numpy as np


class SerialComm:
    """The subset of ``mpi4py.MPI.Comm`` that qtlhpc uses, for one process without MPI.

    Buffer methods (``Bcast``, ``Allreduce``...) copy like a one-rank communicator; pickling ones
    (``bcast``, ``gather``...) return what a one-rank communicator would.
    """

    rank = 0
    size = 1
    is_mpi = False

    def Get_rank(self):
        return 0

    def Get_size(self):
        return 1

    def Barrier(self):
        return None

    barrier = Barrier

    def bcast(self, obj, root=0):
        return obj

    def gather(self, obj, root=0):
        return [obj]

    def allgather(self, obj):
        return [obj]

    def scatter(self, objs, root=0):
        assert len(objs) == 1
        return objs[0]

    def reduce(self, obj, op=None, root=0):
        return obj

    def allreduce(self, obj, op=None):
        return obj

    def Bcast(self, buf, root=0):
        return None

    def Allreduce(self, sendbuf, recvbuf, op=None):
        _copy_buffer(sendbuf, recvbuf)

    def Reduce(self, sendbuf, recvbuf, op=None, root=0):
        _copy_buffer(sendbuf, recvbuf)

    def Abort(self, errorcode=1):
        os._exit(errorcode)

    def __repr__(self):
        return "SerialComm()"


def _copy_buffer(sendbuf, recvbuf):
    if isinstance(sendbuf, (list, tuple)):
        sendbuf = sendbuf[0]
    if isinstance(recvbuf, (list, tuple)):
        recvbuf = recvbuf[0]
    if sendbuf is None or (not isinstance(sendbuf, np.ndarray) and repr(sendbuf) == "<mpi4py.MPI.InPlace>"):
        return
    np.copyto(recvbuf, sendbuf)


SERIAL = SerialComm()


@functools.lru_cache(maxsize=1)
def mpi_module():
    """``mpi4py.MPI`` if mpi4py imports, else ``None`` (the package then runs serially)."""
    try:
        from mpi4py import MPI
    except ImportError:
        return None
    return MPI


def world():
    """The world communicator for drivers: ``MPI.COMM_WORLD``, or :data:`SERIAL` without mpi4py."""
    mpi = mpi_module()
    if mpi is None:
        return SERIAL
    return mpi.COMM_WORLD


def is_serial(comm) -> bool:
    return comm is None or comm.Get_size() == 1


def as_comm(comm):
    """``comm`` itself, or :data:`SERIAL` for ``None``."""
    return SERIAL if comm is None else comm


def sum_op():
    mpi = mpi_module()
    return operator.add if mpi is None else mpi.SUM


def max_op():
    mpi = mpi_module()
    return max if mpi is None else mpi.MAX


def min_op():
    mpi = mpi_module()
    return min if mpi is None else mpi.MIN


def allreduce_sum(comm, array: np.ndarray) -> np.ndarray:
    """Elementwise sum of ``array`` over ranks, with the buffer interface (no pickling)."""
    comm = as_comm(comm)
    array = np.ascontiguousarray(array)
    if comm.Get_size() == 1:
        return array.copy()
    out = np.empty_like(array)
    comm.Allreduce(array, out, op=sum_op())
    return out


def allreduce_max(comm, value):
    comm = as_comm(comm)
    if comm.Get_size() == 1:
        return value
    return comm.allreduce(value, op=max_op())


def on_root(comm, function: Callable[[], Any]) -> Any:
    """Call ``function()`` on rank 0 and return its value on every rank of ``comm`` (collective).

    The one root-and-broadcast helper.  An exception on rank 0 is raised on every rank (the same type
    and message; one that cannot be pickled becomes a ``RuntimeError`` with its text) and is marked
    ``collective``, so the command line prints it once, from rank 0, instead of aborting the job.
    """
    comm = as_comm(comm)
    if comm.Get_size() == 1:
        return function()
    outcome = None
    if comm.Get_rank() == 0:
        try:
            outcome = ("ok", function())
        except Exception as error:  # raised below, on every rank
            outcome = ("error", error if picklable(error) else RuntimeError(f"{type(error).__name__}: {error}"))
    status, value = comm.bcast(outcome, root=0)
    if status == "error":
        try:
            value.collective = True
        except AttributeError:  # pragma: no cover - exceptions with __slots__
            pass
        raise value
    return value


def picklable(error) -> bool:
    try:
        pickle.loads(pickle.dumps(error))
    except Exception:
        return False
    return True
