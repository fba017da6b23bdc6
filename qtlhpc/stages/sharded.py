"""Array stages: a range of work units per SLURM array task, each task to its own file, then a merge.

An array stage (a :class:`~qtlhpc.stages.spec.StageSpec` with ``array``) has units ``0 .. count-1``
whose random streams are keyed by unit id alone.  ``qtlhpc run STAGE CONFIG --units START:STOP
--unit-output FILE`` computes one contiguous range into FILE; the merge stage (``array.merge``) reads
every task file and refuses, naming the missing unit ids, until they cover ``0 .. count-1``.
"""

from __future__ import annotations

from typing import List, Optional, Tuple

from qtlhpc.errors import ConfigError
from qtlhpc.parallel.partition import block_range


def parse_units(text: Optional[str], count: int, spec=None) -> Tuple[int, int]:
    """``"START:STOP"`` -> ``(start, stop)`` within ``0 .. count``; all units when ``text`` is empty."""
    if not text:
        return 0, count
    key = f" ({spec.array.count_key})" if spec is not None and spec.array is not None else ""
    try:
        start, stop = (int(part) for part in text.split(":"))
    except ValueError:
        raise ConfigError(f"--units {text!r}: expected START:STOP, e.g. 0:100") from None
    if not 0 <= start < stop <= count:
        raise ConfigError(f"--units {text!r} is not within 0:{count}{key}")
    return start, stop


def unit_ranges(count: int, tasks: int, *, count_key: str = "units", tasks_key: str = "[slurm] array_tasks"
                ) -> List[Tuple[int, int]]:
    """Contiguous ``[start, stop)`` ranges of unit ids, one per array task, covering all once.

    There are never more tasks than units (no empty task).
    """
    if count < 1:
        raise ConfigError(f"{count_key} = {count}; expected at least 1")
    if tasks < 1:
        raise ConfigError(f"{tasks_key} = {tasks}; expected at least 1")
    size = min(tasks, count)
    return [block_range(count, task, size) for task in range(size)]


def missing_units(covered: List[Tuple[int, int]], count: int) -> List[Tuple[int, int]]:
    """The ``[start, stop)`` runs of ``0 .. count-1`` that no range in ``covered`` holds."""
    done = [False] * count
    for start, stop in covered:
        for unit in range(max(start, 0), min(stop, count)):
            done[unit] = True
    runs: List[Tuple[int, int]] = []
    for unit, is_done in enumerate(done):
        if is_done:
            continue
        if runs and runs[-1][1] == unit:
            runs[-1] = (runs[-1][0], unit + 1)
        else:
            runs.append((unit, unit + 1))
    return runs
