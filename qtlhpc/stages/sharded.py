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


def merge_task_files(context, inputs, stage: str, names, count: int, units_label: str, shared=()) -> dict:
    """The datasets ``names`` of array stage ``stage`` gathered from its task files, each ``(count, ...)``
    with the rows of units ``0 .. count-1`` (read on rank 0, broadcast); the datasets ``shared``, the same in
    every task file (not per unit), as the first file has them.

    Refuses, naming the file, a task file that is not there, and, naming the unit ranges no file covers
    (``units_label``, e.g. "cal-search replicates"), an incomplete set of task files."""
    import json
    import pathlib

    import numpy as np

    from qtlhpc.errors import InputError
    from qtlhpc.parallel.comm import on_root
    from qtlhpc.stages import registry
    from qtlhpc.store import open_results

    merge = registry.get(stage).array.merge
    if not inputs:
        raise ConfigError(f"{merge} needs the task files: qtlhpc run {merge} CONFIG RUN_DIR/units/{stage}/task-*.h5")

    def read():
        parts = []
        for path in inputs:
            if not pathlib.Path(path).is_file():
                raise InputError(f"{stage} task file not found (that task has not run, or failed)", file=path)
            with open_results(path) as task:
                attributes = next(s.attributes for s in task.describe() if s.name == stage)
                first, last = json.loads(attributes["config_json"])["range"]
                parts.append(((int(first), int(last)),
                              {name: task.read(f"{stage}/{name}") for name in tuple(names) + tuple(shared)}))
        return parts

    parts = on_root(context.comm, read)
    missing = missing_units([unit_range for unit_range, _ in parts], count)
    if missing:
        runs = ", ".join(f"{a}:{b}" for a, b in missing)
        raise InputError(f"the task files do not cover {units_label} {runs} of 0:{count}: run those units "
                         f"(qtlhpc run {stage} CONFIG --units START:STOP --unit-output FILE) or resubmit")
    merged = {}
    for name in names:
        sample = parts[0][1][name]
        merged[name] = np.empty((count,) + sample.shape[1:], dtype=sample.dtype)
        for (first, last), values in parts:
            merged[name][first:last] = values[name]
    merged.update({name: parts[0][1][name] for name in shared})
    return merged
