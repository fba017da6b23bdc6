"""What every stage driver shares: the communicator, the config, logging, and collective input loading.

Inputs are read on rank 0 and broadcast; an error while reading is broadcast too and raised on every
rank, so a bad input line ends all ranks with the same clear message instead of a hang.
"""

from __future__ import annotations

import logging
import os
import pathlib
import sys
import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Optional

from qtlhpc.config import Config
from qtlhpc.errors import QtlhpcError
from qtlhpc.parallel.comm import as_comm


class CollectiveError(QtlhpcError):
    """An error raised identically on every rank (so rank 0 alone needs to print it)."""

    collective = True


def run_on_root(comm, function: Callable[[], Any]) -> Any:
    """Call ``function`` on rank 0 and broadcast its value, or its user-facing error, to every rank."""
    comm = as_comm(comm)
    if comm.Get_size() == 1:
        return function()
    payload = None
    if comm.Get_rank() == 0:
        try:
            payload = ("ok", function())
        except QtlhpcError as error:
            payload = ("error", str(error))
    payload = comm.bcast(payload, root=0)
    if payload[0] == "error":
        raise CollectiveError(payload[1])
    return payload[1]


def setup_logging(comm, level: str = "info", per_rank_dir: str = "") -> logging.Logger:
    """Log from rank 0 to stderr; with ``per_rank_dir`` every rank also logs to its own file."""
    comm = as_comm(comm)
    logger = logging.getLogger("qtlhpc")
    logger.handlers.clear()
    logger.propagate = False
    logger.setLevel(getattr(logging, level.upper()))
    rank, size = comm.Get_rank(), comm.Get_size()
    prefix = f"[rank {rank}/{size}] " if size > 1 else ""
    formatter = logging.Formatter(f"%(asctime)s qtlhpc {prefix}%(levelname)s: %(message)s", "%H:%M:%S")
    if rank == 0:
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    if per_rank_dir:
        directory = pathlib.Path(per_rank_dir)
        directory.mkdir(parents=True, exist_ok=True)
        handler = logging.FileHandler(directory / f"rank-{rank:04d}.log")
        handler.setFormatter(formatter)
        logger.addHandler(handler)
    if not logger.handlers:
        logger.addHandler(logging.NullHandler())
    return logger


@dataclass
class RunContext:
    """One invocation of a stage (or of `run all`) on a communicator."""

    config: Config
    comm: Any
    command_line: str = ""
    output: Optional[pathlib.Path] = None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("qtlhpc"))
    _cache: Dict[str, Any] = field(default_factory=dict)

    def __post_init__(self):
        self.comm = as_comm(self.comm)
        if self.output is None:
            self.output = self.config.output

    @property
    def rank(self) -> int:
        return self.comm.Get_rank()

    @property
    def size(self) -> int:
        return self.comm.Get_size()

    @property
    def seed(self) -> int:
        return self.config.seed

    def cross(self):
        """The input cross, read on rank 0 and broadcast (cached)."""
        if "cross" not in self._cache:
            from qtlhpc.data.loader import load_cross

            options = self.config.raw.get("input")
            if not options:
                raise QtlhpcError(f"{self.config.source}: no [input] section: say which files hold the cross "
                                  "(or run `qtlhpc simulate` with a [simulate] section first)")
            started = time.time()
            self._cache["cross"] = run_on_root(self.comm, lambda: load_cross(dict(options), self.config.base_dir))
            cross = self._cache["cross"]
            self.log.info("input: %s cross, %d individuals, %d markers, %d traits (%.1f s)", cross.cross_type,
                          cross.n_individuals, cross.n_markers, cross.n_traits, time.time() - started)
        return self._cache["cross"]

    def open_results(self, path=None, mode: str = "a"):
        """Open the run's results file (or ``path``), collectively, in the write mode of run.parallel_io."""
        from qtlhpc.store import ResultsFile

        path = self.output if path is None else pathlib.Path(path)
        if mode != "r" and self.rank == 0:
            path.parent.mkdir(parents=True, exist_ok=True)
        self.comm.Barrier()
        parallel_io = False if self.config.section("run")["parallel_io"] == "rank0" else None
        return ResultsFile.open(path, self.comm, mode=mode, parallel_io=parallel_io)


def begin_stage(context, results, name: str, *upstream: str, extra=None):
    """Begin (or resume) stage ``name``; ``None`` when it is already complete with the same config.

    The stage's config is its own section, the input, the seed and the sections of the ``upstream``
    stages whose results it uses, plus ``extra`` (so a change upstream restarts it).
    """
    config = context.config.stage_config(name, *upstream)
    config.update(extra or {})
    stage = results.begin_stage(name, config, command_line=context.command_line)
    return None if stage.is_complete else stage


def write_blocks(context, writer, label: str, my_block_ids, compute, *, shared: bool = False) -> int:
    """``writer.write_rounds`` with progress (blocks done / total, ETA) reported from rank 0.

    ``shared``: ``my_block_ids`` is the same list on every rank and the ranks claim its blocks as they
    go (``writer.write_claimed``: self-scheduling, for long stages whose blocks vary in cost or run on
    unequal cores).
    """
    from qtlhpc.progress import Progress

    enabled = context.config.section("run")["progress"]
    progress = Progress(writer.n_blocks, label, comm=context.comm) if enabled else None
    start = int(writer.done.sum())
    if progress is not None:
        progress.update(start)
    # what rank 0 knows of the blocks done over all ranks
    if writer.independent and shared:   # the claim index counts the blocks started on every rank
        def estimate(index, mine):
            return start + max(index + 1 - (context.size - 1), mine)
    elif writer.independent:            # its own blocks only: scaled by its share of the pending ones
        scale = (writer.n_blocks - start) / max(len(writer.pending(list(my_block_ids))), 1)

        def estimate(index, mine):
            return start + int(round(mine * scale))
    else:                               # lockstep rounds report every rank's blocks
        def estimate(index, mine):
            return start + mine
    mine = [0]

    def on_round(round_index, n_rounds, round_blocks):
        mine[0] += len(round_blocks)
        if progress is not None:
            progress.update(min(writer.n_blocks, estimate(round_index, mine[0])))

    delay = float(os.environ.get("QTLHPC_BLOCK_DELAY", "0") or 0)  # seconds per block: lets tests kill a run mid-stage
    if delay > 0:
        plain_compute = compute

        def compute(block_id):
            time.sleep(delay)
            return plain_compute(block_id)

    write = writer.write_claimed if shared else writer.write_rounds
    computed = write(list(my_block_ids), compute, on_round=on_round)
    if progress is not None:
        progress.update(int(writer.done.sum()))
        progress.close()
    return computed
