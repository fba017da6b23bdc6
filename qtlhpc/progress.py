"""Progress with an ETA, reported by rank 0 only.

On a terminal (``stream.isatty()``) the line is redrawn in place::

    scan2d [##########..........] 40/100 (40%) elapsed 12s ETA 18s

In a batch log (a file, a pipe) it prints plain lines at most every ``min_interval`` seconds, never a
carriage return::

    scan2d: 40/100 (40%) elapsed 12s ETA 18s

``update(n_done)`` takes the number of units done *over all ranks*: the driver reduces its counts
(or calls ``update_collective(local_done)``, which is collective and sums the ranks' counts).
"""

from __future__ import annotations

import sys
import time
from typing import Callable, Optional

import numpy as np

from qtlhpc.parallel.comm import allreduce_sum, as_comm

BAR_WIDTH = 30
TERMINAL_INTERVAL = 0.2
LOG_INTERVAL = 30.0


def format_seconds(seconds: float) -> str:
    """``5s``, ``3m07s``, ``2h05m``."""
    seconds = int(round(max(seconds, 0)))
    if seconds < 60:
        return f"{seconds}s"
    if seconds < 3600:
        return f"{seconds // 60}m{seconds % 60:02d}s"
    return f"{seconds // 3600}h{seconds % 3600 // 60:02d}m"


class Progress:
    """Report ``done/total`` with elapsed time and ETA, from rank 0 of ``comm`` (serial default).

    ``min_interval`` (seconds) limits how often anything is written (default: 0.2 s on a terminal,
    30 s in a log); the first and the final state are always written.  ``clock`` is injectable for
    tests.
    """

    def __init__(self, total: int, label: str, comm=None, stream=None, min_interval: Optional[float] = None,
                 clock: Callable[[], float] = time.monotonic):
        self.total = int(total)
        self.label = label
        self.comm = as_comm(comm)
        self.stream = sys.stderr if stream is None else stream
        self.is_reporter = self.comm.Get_rank() == 0
        self.is_terminal = self.is_reporter and _isatty(self.stream)
        self.min_interval = min_interval if min_interval is not None else (
            TERMINAL_INTERVAL if self.is_terminal else LOG_INTERVAL)
        self.clock = clock
        self.started = clock()
        self.done = 0
        self._last_written: Optional[float] = None
        self._closed = False

    # -- counts
    def update(self, n_done: int) -> None:
        """Set the number of units done over all ranks (not an increment); write if it is time."""
        self.done = int(n_done)
        if not self.is_reporter or self._closed:
            return
        now = self.clock()
        finished = self.done >= self.total
        if self._last_written is None or finished or now - self._last_written >= self.min_interval:
            self._write(now, final=False)

    def update_collective(self, local_done: int) -> int:
        """Collective: sum ``local_done`` over ranks, then :meth:`update`; returns the total done."""
        total_done = int(allreduce_sum(self.comm, np.array([local_done], dtype=np.int64))[0])
        self.update(total_done)
        return total_done

    def close(self) -> None:
        """Write the final state (and end the terminal line)."""
        if self.is_reporter and not self._closed:
            self._write(self.clock(), final=True)
        self._closed = True

    def __enter__(self) -> "Progress":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- text
    def text(self, now: Optional[float] = None) -> str:
        """``label: 40/100 (40%) elapsed 12s ETA 18s`` (no bar)."""
        now = self.clock() if now is None else now
        elapsed = now - self.started
        percent = 100 * self.done // self.total if self.total else 100
        if self.done >= self.total:
            eta = "done"
        elif self.done > 0:
            eta = "ETA " + format_seconds(elapsed * (self.total - self.done) / self.done)
        else:
            eta = "ETA ?"
        return f"{self.label}: {self.done}/{self.total} ({percent}%) elapsed {format_seconds(elapsed)} {eta}"

    def bar(self) -> str:
        filled = BAR_WIDTH * min(self.done, self.total) // self.total if self.total else BAR_WIDTH
        return "[" + "#" * filled + "." * (BAR_WIDTH - filled) + "]"

    def _write(self, now: float, final: bool) -> None:
        if self.is_terminal:
            label, rest = self.text(now).split(": ", 1)
            self.stream.write(f"\r{label} {self.bar()} {rest}\033[K" + ("\n" if final else ""))
        elif not final or self._last_state != self.done:
            self.stream.write(self.text(now) + "\n")
        self.stream.flush()
        self._last_written = now
        self._last_state = self.done

    _last_state: Optional[int] = None


def _isatty(stream) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False
