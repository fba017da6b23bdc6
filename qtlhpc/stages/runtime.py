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
import dataclasses
from dataclasses import dataclass, field
from typing import Any, Dict, Mapping, Optional

from qtlhpc.config import Config
from qtlhpc.errors import ConfigError, QtlhpcError
from qtlhpc.parallel import schedule
from qtlhpc.parallel.comm import as_comm, on_root
from qtlhpc.stages.spec import FRAMEWORK_SECTIONS, StageSpec


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


class UndeclaredSectionError(QtlhpcError):
    """A stage read a config section its declaration does not name: its config hash would miss it."""


class StageConfig:
    """The config as one stage sees it: only the sections its :class:`StageSpec` declares.

    Reading any other section raises, so a section that changes a stage's numbers cannot be left out
    of its ``config_sha256`` (every stage test exercises this guard).
    """

    def __init__(self, config: Config, spec: StageSpec):
        self._config = config
        self.spec = spec

    def section(self, name: str) -> Dict[str, Any]:
        self.check(name)
        return self._config.section(name)

    def check(self, name: str) -> None:
        if name not in self.spec.sections and name not in FRAMEWORK_SECTIONS:
            raise UndeclaredSectionError(
                f"stage {self.spec.name!r} read the config section [{name}], which its declaration "
                f"(reads = {self.spec.sections}) does not name; add it to the StageSpec's reads")

    @property
    def unguarded(self) -> Config:
        return self._config

    def __getattr__(self, attribute):
        return getattr(self._config, attribute)


@dataclass
class RunContext:
    """One invocation of a stage (or of `run all`) on a communicator."""

    config: Config
    comm: Any
    command_line: str = ""
    output: Optional[pathlib.Path] = None
    log: logging.Logger = field(default_factory=lambda: logging.getLogger("qtlhpc"))
    _cache: Dict[str, Any] = field(default_factory=dict)
    spec: Optional[StageSpec] = None

    def __post_init__(self):
        self.comm = as_comm(self.comm)
        if self.output is None:
            self.output = self.config.output

    def for_stage(self, spec: StageSpec) -> "RunContext":
        """This context for running ``spec``: its config guarded to the declared sections (shared cache)."""
        config = self.config.unguarded if isinstance(self.config, StageConfig) else self.config
        return dataclasses.replace(self, config=StageConfig(config, spec), spec=spec, _cache=self._cache)

    def section(self, name: str) -> Dict[str, Any]:
        return self.config.section(name)

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
            from qtlhpc.io.loader import load_cross

            if isinstance(self.config, StageConfig):
                self.config.check("input")
            options = self.config.raw.get("input")
            if not options:
                raise QtlhpcError(f"{self.config.source}: no [input] section: say which files hold the cross "
                                  "(or run `qtlhpc simulate` with a [simulate] section first)")
            started = time.time()
            self._cache["cross"] = on_root(self.comm, lambda: load_cross(dict(options), self.config.base_dir))
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


def check_needs(context, results) -> Dict[str, str]:
    """Check, before anything is deleted, that the stages this one reads are fit to be read.

    Every needed stage present in ``results`` must be complete, not stale, and computed with the
    configuration this run has for it; otherwise the error names the stage to rerun.  Returns the
    lineage ``{needed stage: its result_id}`` that the new stage records (a later recomputation of
    any of them marks this stage stale).
    """
    from qtlhpc.stages import registry

    spec = context.spec
    config = context.config.unguarded if isinstance(context.config, StageConfig) else context.config
    lineage: Dict[str, str] = {}
    for name in spec.needed_stages(config):
        needed = registry.get(name)
        state = results.stage_state(needed.group)
        if state is None:
            continue
        rerun = f"run `qtlhpc run {name} CONFIG` first"
        if state.status != "complete":
            raise ConfigError(f"{results.path}: stage {spec.name!r} reads stage {needed.group!r}, which is "
                              f"{state.status}{': ' + state.reason if state.reason else ''}; {rerun}")
        expected = results.config_sha(config.stage_config(needed))
        if state.config_sha256 != expected and needed.array is None:
            raise ConfigError(f"{results.path}: stage {needed.group!r} in this file was computed with another "
                              f"configuration than {config.source} gives it now; {rerun} (stages that read it "
                              f"are then marked stale), then rerun {spec.name!r}")
        lineage[needed.group] = state.result_id
    return lineage


def begin_stage(context, results, extra: Optional[Mapping[str, Any]] = None,
                lineage: Optional[Dict[str, str]] = None):
    """Begin (or resume) the context's stage; ``None`` when it is already complete and current.

    Its config is every section its declaration reads, the seed and ``extra``; its lineage is the
    result ids of the stages it reads (checked by :func:`check_needs` first, so a stage that cannot run
    deletes nothing).  ``lineage`` is given when those stages live in another file (array task files).
    """
    spec = context.spec
    if lineage is None:
        lineage = check_needs(context, results)
    config = context.config.stage_config(spec, extra)
    stage = results.begin_stage(spec.group, config, command_line=context.command_line, lineage=lineage)
    return None if stage.is_complete else stage


def write_blocks(context, writer, label: str, block_ids, compute, *, claimed: bool = False) -> int:
    """Compute and write the pending ones of ``block_ids`` (the same on every rank) with progress from rank 0.

    The blocks are scheduled by :func:`qtlhpc.parallel.schedule.units`: split statically over the ranks,
    or, with ``claimed`` and independent writers, claimed from a shared counter as ranks become free
    (self-scheduling, for long stages whose blocks vary in cost or run on unequal cores).
    """
    from qtlhpc.progress import Progress

    enabled = context.config.section("run")["progress"]
    progress = Progress(writer.n_blocks, label, comm=context.comm) if enabled else None
    start = int(writer.done.sum())
    if progress is not None:
        progress.update(start)
    pending = writer.pending(list(block_ids))
    claimed = claimed and writer.independent
    # what rank 0 knows of the blocks done over all ranks
    if claimed:                         # the claim index counts the blocks started on every rank
        def estimate(index, mine):
            return start + max(index + 1 - (context.size - 1), mine)
    elif writer.independent:            # its own blocks only: scaled by its share of the pending ones
        scale = len(pending) / max(len(block_range_of(pending, context)), 1)

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

    with schedule.units(pending, context.comm, claimed=claimed) as my_units:
        computed = writer.write(my_units, compute, on_round=on_round)
    if progress is not None:
        progress.update(int(writer.done.sum()))
        progress.close()
    return computed


def block_range_of(unit_ids, context):
    """This rank's static share of ``unit_ids``."""
    return schedule.UnitSchedule(unit_ids, context.comm).static_share()
