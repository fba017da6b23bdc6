"""The one work scheduler: which rank computes which work unit, static or claimed.

Every distributed computation (checkpointed stage writes, reductions of EM statistics, Gibbs chains,
branch-and-bound subtrees) gets its units from here:

* **static**: the units are split into contiguous, nearly equal shares, one per rank
  (:func:`~qtlhpc.parallel.partition.block_range`);
* **claimed** (self-scheduling): each rank takes the next unit from a :class:`SharedCounter` when it is
  free, so a slowed rank computes fewer units.

Units are identified by id, and every random stream is keyed by unit id, so both modes and any
number of ranks give the same numbers.  ``with units(ids, comm, claimed=...) as schedule`` yields a
:class:`UnitSchedule`; iterating it gives ``(index, unit_id)`` pairs for this rank (``index`` counts
this rank's units when static, and claims over all ranks when claimed).  Opening and closing it are
collective.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Dict, Iterator, List, Sequence, Tuple

from qtlhpc.parallel.comm import as_comm
from qtlhpc.parallel.counter import SharedCounter
from qtlhpc.parallel.partition import block_range


class UnitSchedule:
    """This rank's units of ``unit_ids`` (the same list on every rank); see the module docstring."""

    def __init__(self, unit_ids: Sequence[int], comm, counter=None):
        self.unit_ids = [int(u) for u in unit_ids]
        self.comm = as_comm(comm)
        self._counter = counter

    @property
    def claimed(self) -> bool:
        return self._counter is not None

    @property
    def n_units(self) -> int:
        return len(self.unit_ids)

    def static_share(self) -> List[int]:
        """This rank's contiguous share (a static schedule's units, in order)."""
        start, stop = block_range(len(self.unit_ids), self.comm.Get_rank(), self.comm.Get_size())
        return self.unit_ids[start:stop]

    def __iter__(self) -> Iterator[Tuple[int, int]]:
        if self._counter is None:
            yield from enumerate(self.static_share())
            return
        while True:
            index = self._counter.claim()
            if index >= len(self.unit_ids):
                return
            yield index, self.unit_ids[index]


@contextlib.contextmanager
def units(unit_ids: Sequence[int], comm=None, *, claimed: bool = False):
    """A :class:`UnitSchedule` of ``unit_ids`` over ``comm`` (collective): static or claimed."""
    comm = as_comm(comm)
    if not claimed or comm.Get_size() == 1:
        yield UnitSchedule(unit_ids, comm)
        return
    with SharedCounter(comm) as counter:
        yield UnitSchedule(unit_ids, comm, counter)


def map_units(compute: Callable[[int], object], unit_ids: Sequence[int], comm=None, *,
              claimed: bool = False) -> Dict[int, object]:
    """``{unit_id: compute(unit_id)}`` for every unit, the same dict on every rank (collective).

    For reductions whose per-unit results are small (EM starts, chains, permutation maxima): each rank
    computes its units, then the results are gathered to every rank.
    """
    comm = as_comm(comm)
    mine = {}
    with units(unit_ids, comm, claimed=claimed) as schedule:
        for _, unit_id in schedule:
            mine[unit_id] = compute(unit_id)
    if comm.Get_size() == 1:
        return mine
    merged: Dict[int, object] = {}
    for part in comm.allgather(mine):
        merged.update(part)
    return merged
