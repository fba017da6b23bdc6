"""A dynamic work pool for uneven work: rank 0 hands out unit ids, every rank (rank 0 too) works.

Use it when work units differ a lot in cost (network cycle fits, sampler runs, logic searches).
Results are returned as ``{unit_id: result}`` on every rank, so the outcome does not depend on which
rank ran which unit; pair it with :mod:`qtlhpc.parallel.rng` for randomness keyed by unit.
"""

from __future__ import annotations

from typing import Callable, Dict, Iterable, List, Optional

from qtlhpc.parallel.comm import as_comm

_TAG_REQUEST = 71
_TAG_ASSIGN = 72
_STOP = -1


def run_pool(
    work: Callable[[int], object],
    unit_ids: Iterable[int],
    comm=None,
    *,
    gather: bool = True,
    on_result: Optional[Callable[[int, object], None]] = None,
) -> Dict[int, object]:
    """Run ``work(unit_id)`` for every unit, handed out on demand across the ranks of ``comm``.

    ``unit_ids`` must be the same sequence on every rank.  With ``gather=True`` (default) every rank
    returns the results of all units; otherwise each rank returns only its own.  ``on_result`` is
    called on the rank that ran a unit, right after it finished (e.g. to checkpoint it).

    Rank 0 is both dispatcher and worker: between its own units it answers every pending request,
    so at 2 ranks both ranks compute.
    """
    comm = as_comm(comm)
    units: List[int] = [int(u) for u in unit_ids]
    mine: Dict[int, object] = {}

    def run_one(unit_id):
        result = work(unit_id)
        mine[unit_id] = result
        if on_result is not None:
            on_result(unit_id, result)

    if comm.Get_size() == 1:
        for unit_id in units:
            run_one(unit_id)
        return mine

    if comm.Get_rank() == 0:
        _dispatch_and_work(comm, units, run_one)
    else:
        while True:
            comm.send(None, dest=0, tag=_TAG_REQUEST)
            unit_id = comm.recv(source=0, tag=_TAG_ASSIGN)
            if unit_id == _STOP:
                break
            run_one(unit_id)

    if not gather:
        return mine
    merged: Dict[int, object] = {}
    for part in comm.allgather(mine):
        merged.update(part)
    return merged


def _dispatch_and_work(comm, units: List[int], run_one) -> None:
    from qtlhpc.parallel.comm import mpi_module

    mpi = mpi_module()
    status = mpi.Status()
    queue = list(reversed(units))
    workers_left = comm.Get_size() - 1

    def serve_pending(block: bool) -> None:
        nonlocal workers_left
        while workers_left and (block or comm.iprobe(source=mpi.ANY_SOURCE, tag=_TAG_REQUEST, status=status)):
            comm.recv(source=mpi.ANY_SOURCE, tag=_TAG_REQUEST, status=status)
            worker = status.Get_source()
            if queue:
                comm.send(queue.pop(), dest=worker, tag=_TAG_ASSIGN)
            else:
                comm.send(_STOP, dest=worker, tag=_TAG_ASSIGN)
                workers_left -= 1
            block = False if queue else block

    while queue:
        serve_pending(block=False)
        if queue:
            run_one(queue.pop())
    while workers_left:
        serve_pending(block=True)
