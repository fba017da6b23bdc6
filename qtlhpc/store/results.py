"""The results file: one HDF5 file per run, one group per stage, checkpointed blocked writes.

Layout and contract: docs/architecture.md ("Results file", "Store API"); datasets: qtlhpc.schema.

Two I/O modes, chosen by :meth:`ResultsFile.open`:

* **parallel** (``parallel_io`` True): more than one rank and h5py built with MPI; every rank opens the
  file with ``driver="mpio"``; metadata operations are collective, each rank writes its own blocks.
* **rank 0** (``parallel_io`` False): rank 0 alone opens the file; other ranks send their blocks to rank 0
  (a pickled gather per round) and receive what rank 0 reads (broadcast).

Crash safety: blocked datasets are contiguous and allocated (and filled with NaN) when created, so writing a
block changes raw data only, never HDF5 metadata.  A block's bit in the completion bitmap
``/<stage>/_checkpoint/<key>`` is set only after its data are on disk: in rank-0 mode every round of blocks
is flushed before its bits are set (and the bitmap flushed before the next round); in parallel mode each rank
``fsync``s the file after writing a block and then sets that block's byte itself (see
:meth:`BlockedWriter.write_rounds`).  So a killed run leaves a file whose metadata is that of the last flush
and whose completed blocks (by the bitmap) are intact.  The file uses the oldest HDF5 format
(``libver="earliest"``: no superblock "open for writing"
flag to clear after a kill) and no HDF5 file locking (a killed writer must not block the rerun, and
``qtlhpc inspect`` may look at a running job's file).

Faults (docs/reliability.md): a writer holds the lock file beside the results file (:mod:`.lock`), so a
second run refuses naming the holder; free space is checked on rank 0 before anything is allocated
(:mod:`.space`), so a full disk ends every rank with one message instead of a hang or a truncated file;
every dataset carries a CRC-32 (a dataset written whole in an attribute, a blocked one per block beside the
bitmap: :mod:`.integrity`), checked by the readers, by ``qtlhpc inspect --verify`` and before a stage is
skipped or resumed (damaged blocks are recomputed).
"""

from __future__ import annotations

import contextlib
import datetime
import hashlib
import json
import logging
import os
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

# HDF5 reads this when it opens a file; h5py's locking=False below says the same where supported.
os.environ.setdefault("HDF5_USE_FILE_LOCKING", "FALSE")

import h5py  # noqa: E402

import qtlhpc  # noqa: E402
import qtlhpc.errors  # noqa: E402
from qtlhpc import schema  # noqa: E402
from qtlhpc.errors import (  # noqa: E402
    BackendUnavailableError, IncompleteResultError, InputError, StaleResultError)
from qtlhpc.parallel.comm import SerialComm, allreduce_max, as_comm, on_root  # noqa: E402
from qtlhpc.parallel.comm import picklable  # noqa: E402
from qtlhpc.store import integrity, lock, space  # noqa: E402
from qtlhpc.store.integrity import DamagedDataError  # noqa: E402,F401
from qtlhpc.store.space import DiskFullError  # noqa: E402,F401

log = logging.getLogger("qtlhpc.store")

STATUS_RUNNING = "running"
STATUS_COMPLETE = "complete"
STATUS_STALE = "stale"
CHECKPOINT_GROUP = "_checkpoint"

Selection = Tuple[slice, ...]
BlockPieces = Dict[str, Tuple[Selection, np.ndarray]]


def utc_now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")


def canonical_json(config: dict) -> str:
    """``config`` as JSON with sorted keys and no spaces (numpy scalars/arrays and paths converted)."""

    def convert(value):
        if isinstance(value, np.generic):
            return value.item()
        if isinstance(value, np.ndarray):
            return value.tolist()
        if isinstance(value, Path):
            return str(value)
        if isinstance(value, (set, frozenset)):
            return sorted(value)
        raise TypeError(f"config value {value!r} of type {type(value).__name__} cannot be stored as JSON")

    return json.dumps(config, sort_keys=True, separators=(",", ":"), default=convert)


def _h5py_has_mpi() -> bool:
    return bool(h5py.get_config().mpi)


def _is_mpi_comm(comm) -> bool:
    return not isinstance(comm, SerialComm)


def _locking_kwargs() -> dict:
    version = h5py.version.hdf5_version_tuple
    supported = version >= (1, 12, 1) or ((1, 10, 7) <= version < (1, 11, 0))
    return {"locking": False} if supported else {}


# ---------------------------------------------------------------------------------------------
# Values <-> HDF5


def prepare_array(variable: schema.Variable, value) -> np.ndarray:
    """``value`` as an array of ``variable``'s declared dtype (UTF-8 bytes for text); checks the rank."""
    array = np.asarray(value)
    if array.ndim != variable.ndim:
        raise ValueError(
            f"{variable.path} is declared with dims {variable.dims} ({variable.ndim}-D) but the array given "
            f"has shape {array.shape} ({array.ndim}-D)"
        )
    if variable.is_string:
        encoded = [str(item).encode("utf-8") for item in array.ravel()]
        width = max([1] + [len(item) for item in encoded])
        return np.array(encoded, dtype=f"S{width}").reshape(array.shape)
    target = schema.numpy_dtype(variable.dtype)
    if array.dtype.kind in "OUS":
        raise TypeError(f"{variable.path} is declared {variable.dtype} but the array given holds text")
    cast = array.astype(target)
    if target.kind in "iub" and array.dtype.kind == "f" and not np.array_equal(cast, array):
        raise ValueError(f"{variable.path} is declared {variable.dtype}; the array given has non-integral values")
    return cast


def hdf5_dtype(variable: schema.Variable, prepared: np.ndarray):
    if variable.is_string:
        return h5py.string_dtype("utf-8", prepared.dtype.itemsize)
    return prepared.dtype


def decode(variable: Optional[schema.Variable], dataset: h5py.Dataset, selection=()) -> np.ndarray:
    """Read ``dataset[selection]``; text comes back as a numpy ``str`` array."""
    is_text = dataset.dtype.kind in "SO" and h5py.check_string_dtype(dataset.dtype) is not None
    if is_text or (variable is not None and variable.is_string):
        values = dataset.asstr()[selection]
        return np.asarray(values, dtype=object).astype(str)
    return np.asarray(dataset[selection])


def _write_whole(dataset: h5py.Dataset, prepared: np.ndarray) -> None:
    """Write all of ``dataset``; UTF-8 text goes as raw bytes in the file's own string type."""
    if not prepared.size:
        return
    if prepared.dtype.kind == "S":
        dataset.id.write(h5py.h5s.ALL, h5py.h5s.ALL, np.ascontiguousarray(prepared), mtype=dataset.id.get_type())
    else:
        dataset[...] = prepared


def _fill_value(dtype: np.dtype):
    return np.nan if dtype.kind == "f" else 0


def _create_preallocated(group: h5py.Group, name: str, shape, dtype: np.dtype, fill=None) -> h5py.Dataset:
    """A contiguous dataset allocated and filled (NaN for floats, 0 otherwise, or ``fill``) at creation."""
    dcpl = h5py.h5p.create(h5py.h5p.DATASET_CREATE)
    dcpl.set_layout(h5py.h5d.CONTIGUOUS)
    dcpl.set_alloc_time(h5py.h5d.ALLOC_TIME_EARLY)
    dcpl.set_fill_time(h5py.h5d.FILL_TIME_ALLOC)
    dcpl.set_fill_value(np.array(_fill_value(dtype) if fill is None else fill, dtype=dtype))
    return group.create_dataset(name, shape=tuple(shape), dtype=dtype, dcpl=dcpl, track_times=False)


def _write_schema_attributes(dataset: h5py.Dataset, variable: schema.Variable) -> None:
    dataset.attrs["dims"] = ",".join(variable.dims)
    dataset.attrs["dtype"] = variable.dtype
    dataset.attrs["unit"] = variable.unit
    dataset.attrs["description"] = variable.description


def _selection_shape(shape, selection) -> Tuple[int, ...]:
    if not isinstance(selection, tuple):
        selection = (selection,)
    assert len(selection) <= len(shape), f"selection {selection} has more axes than shape {shape}"
    out = []
    for axis, size in enumerate(shape):
        item = selection[axis] if axis < len(selection) else slice(None)
        assert isinstance(item, slice), f"block selections must be slices, got {item!r}"
        out.append(len(range(*item.indices(size))))
    return tuple(out)


# ---------------------------------------------------------------------------------------------


@dataclass
class DatasetInfo:
    path: str
    shape: Tuple[int, ...]
    dtype: str
    dims: Tuple[str, ...]
    unit: str
    description: str


@dataclass(frozen=True)
class StageState:
    """Where a stage group stands: ``status`` is running, complete or stale (with the reason)."""

    status: str
    reason: str
    config_sha256: str
    result_id: str


def _lineage(group) -> Dict[str, str]:
    text = group.attrs.get("lineage_json", "{}")
    return json.loads(text.decode() if isinstance(text, bytes) else str(text))


def stage_state(h5, stage: str, _seen=()) -> Optional[StageState]:
    """The :class:`StageState` of group ``stage`` of an open h5py file; ``None`` when absent.

    A complete stage is stale when a stage it read (its lineage) now has another ``result_id`` (it was
    recomputed), is not complete, or is stale itself.  Stages of its lineage absent from this file
    (an array task file reads the run's results file) are not judged.
    """
    if stage not in h5 or not isinstance(h5[stage], h5py.Group):
        return None
    group = h5[stage]
    status = str(_attribute_value(group.attrs.get("status", "")))
    sha = str(_attribute_value(group.attrs.get("config_sha256", "")))
    result_id = str(_attribute_value(group.attrs.get("result_id", "")))
    if status != STATUS_COMPLETE:
        return StageState(status, "", sha, result_id)
    for upstream, recorded in _lineage(group).items():
        if upstream in _seen:
            continue
        now = stage_state(h5, upstream, _seen + (stage,))
        if now is None:
            continue
        if now.result_id != recorded:
            return StageState(STATUS_STALE, f"{upstream!r} was recomputed after it; rerun {stage!r}", sha, result_id)
        if now.status != STATUS_COMPLETE:
            return StageState(STATUS_STALE, f"{upstream!r} is {now.status}"
                              + (f" ({now.reason})" if now.reason else "") + f"; rerun it, then {stage!r}",
                              sha, result_id)
    return StageState(status, "", sha, result_id)


@dataclass
class StageInfo:
    name: str
    status: str
    attributes: Dict[str, object]
    datasets: List[DatasetInfo] = field(default_factory=list)
    checkpoints: Dict[str, Tuple[int, int]] = field(default_factory=dict)  # key -> (n_done, n_blocks)


class ResultsFile:
    """One run's HDF5 results file, opened on every rank of ``comm`` (see the module docstring)."""

    def __init__(self, h5file, path: Path, comm, parallel_io: bool, mode: str):
        self._h5 = h5file
        self.path = Path(path)
        self.comm = comm
        self.parallel_io = parallel_io
        self.mode = mode
        self._locked = False
        self._checker = integrity.Checker(self.path)

    # -- opening and closing -----------------------------------------------------------------

    @classmethod
    def open(cls, path, comm=None, mode: str = "a", *, parallel_io: Optional[bool] = None) -> "ResultsFile":
        """Open (``mode`` ``"a"``: create if absent) the results file; collective over ``comm``.

        ``parallel_io=None`` uses parallel HDF5 when ``comm`` has more than one rank and h5py has MPI;
        ``False`` forces the rank-0 mode; ``True`` requires parallel HDF5 (at more than one rank).
        """
        comm = as_comm(comm)
        path = Path(path)
        n_ranks = comm.Get_size()
        mpio_possible = n_ranks > 1 and _is_mpi_comm(comm) and _h5py_has_mpi()
        if parallel_io and n_ranks > 1 and not mpio_possible:
            raise BackendUnavailableError(
                "parallel HDF5 was asked for but h5py has no MPI support here (Debian: apt-get install "
                "python3-h5py-mpi, and run under mpirun); leave parallel_io unset to write through rank 0"
            )
        use_mpio = mpio_possible if parallel_io is None else bool(parallel_io and mpio_possible)
        results = cls(None, path, comm, use_mpio, mode)
        if mode != "r" and path.parent.is_dir():  # (in a missing folder the open below says so)
            # one writer per file: rank 0 takes the lock (or every rank raises the refusal naming its holder)
            results._on_root_only(lambda: lock.acquire(path))
            results._locked = True
        try:
            if use_mpio:
                results._h5 = results._open_h5(driver="mpio", comm=comm)
            else:
                def open_on_root():
                    results._h5 = results._open_h5()

                results._on_root_only(open_on_root)
            created = results._bcast(utc_now())
            if mode != "r":
                results._on_root_only(lambda: None if "qtlhpc_version" in results._h5.attrs
                                      else space.check(path, "a new results file", 0))
            results._collective(lambda h5: results._init_root(h5, created))
        except BaseException:
            results._release_lock()
            raise
        return results

    def _release_lock(self) -> None:
        if self._locked and self.rank == 0:
            lock.release(self.path)
        self._locked = False

    def _open_h5(self, **driver):
        if Path(self.path).is_dir():
            raise InputError("is a folder, not a results file: give the path of the .h5 file (a new one is "
                             "created there when a stage writes)", file=self.path)
        try:
            return h5py.File(self.path, self.mode, libver="earliest", **_locking_kwargs(), **driver)
        except FileNotFoundError:
            raise InputError("results file not found", file=self.path) from None
        except OSError as error:
            raise InputError(f"cannot open as an HDF5 results file ({error})", file=self.path) from None

    def _init_root(self, h5, created: str) -> None:
        if "qtlhpc_version" in h5.attrs:
            return
        if len(h5.keys()) or self.mode == "r":
            raise InputError("this HDF5 file was not written by qtlhpc (no qtlhpc_version attribute)",
                             file=self.path)
        h5.attrs["qtlhpc_version"] = qtlhpc.__version__
        h5.attrs["created"] = created
        h5.flush()

    def close(self) -> None:
        """Close the file (collective) and release its lock."""
        try:
            if self._h5 is not None:
                self._h5.close()
                self._h5 = None
        finally:
            self._release_lock()

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb):
        # After an exception on one rank a collective close could deadlock: leave it to MPI_Abort.  An error
        # raised on every rank alike (``collective``: a refusal broadcast from rank 0) closes normally.
        if exc_type is not None and self.parallel_io and not getattr(exc, "collective", False):
            return False
        self.close()
        return False

    # -- collective helpers ------------------------------------------------------------------

    @property
    def rank(self) -> int:
        return self.comm.Get_rank()

    @property
    def n_ranks(self) -> int:
        return self.comm.Get_size()

    def _bcast(self, value):
        return value if self.n_ranks == 1 else self.comm.bcast(value, root=0)

    def _on_root_only(self, function):
        """``function()`` on rank 0, its value (or its exception) on every rank."""
        return on_root(self.comm, function)

    def _collective(self, function):
        """``function(h5file)`` on every rank (parallel I/O) or on rank 0 with the result broadcast."""
        if self.parallel_io or self.n_ranks == 1:
            return function(self._h5)
        return self._on_root_only(lambda: function(self._h5))

    @contextlib.contextmanager
    def _writing(self, what: str, n_bytes: int):
        """Turn HDF5's "file write failed" for want of space into a :class:`DiskFullError` naming the file."""
        try:
            yield
        except (OSError, ValueError, RuntimeError) as error:
            if isinstance(error, qtlhpc.errors.QtlhpcError) or not space.is_disk_full(error):
                raise
            full = space.disk_full(self.path, what, n_bytes)
            full.collective = getattr(error, "collective", False)
            raise full from error

    def flush(self) -> None:
        """Flush HDF5 buffers to the file (collective in parallel mode)."""
        if self._h5 is not None:
            self._h5.flush()

    # -- stages --------------------------------------------------------------------------------

    def stage_status(self, stage: str) -> Optional[str]:
        """``"running"``, ``"complete"``, ``"stale"`` or ``None`` when the file has no such stage (collective)."""
        state = self.stage_state(stage)
        return None if state is None else state.status

    def stage_state(self, stage: str) -> Optional[StageState]:
        """The stage's :class:`StageState` (status, why stale, config hash, result id), collective."""
        return self._collective(lambda h5: stage_state(h5, stage))

    @staticmethod
    def config_sha(config: dict) -> str:
        """The ``config_sha256`` a stage with this config gets."""
        return hashlib.sha256(canonical_json(config).encode("utf-8")).hexdigest()

    def begin_stage(self, stage: str, config: dict, *, command_line: Optional[str] = None,
                    lineage: Optional[Dict[str, str]] = None) -> "Stage":
        """Start ``stage``, or resume it when the file has it with the same config and lineage (collective).

        ``lineage`` maps each stage this one reads to that stage's ``result_id``.  A stage present with
        another config or lineage is deleted and started over (with a warning), under a new
        ``result_id``, which makes every stage that read the old results stale.
        """
        schema.get_stage(stage)
        config_json = canonical_json(config)
        sha = self.config_sha(config)
        lineage_json = json.dumps(dict(sorted((lineage or {}).items())))
        now = self._bcast(utc_now())
        new_id = self._bcast(uuid.uuid4().hex)
        command_line = self._bcast(command_line if command_line is not None else " ".join(sys.argv))
        # a complete stage that would be skipped is checked first (rank 0 reads it): damaged blocks are
        # recomputed (the stage resumes), a damaged dataset written whole makes the stage start over
        damage = self._on_root_only(lambda: self._complete_stage_damage(stage, sha, lineage_json))
        self._on_root_only(lambda: space.check(self.path, f"stage {stage!r}", 0))

        def begin(h5):
            if stage in h5:
                group = h5[stage]
                old_sha = str(group.attrs.get("config_sha256", ""))
                same_lineage = _lineage(group) == json.loads(lineage_json)
                if old_sha == sha and not same_lineage:
                    old_sha = "another lineage"
                if old_sha == sha and damage == "whole":
                    old_sha = "damaged data"
                if old_sha == sha:
                    complete = str(group.attrs.get("status")) == STATUS_COMPLETE and damage != "blocks"
                    if damage == "blocks":
                        group.attrs["status"] = STATUS_RUNNING
                    if not complete:
                        self._set_run_attributes(group, command_line)
                        group.attrs["resumed"] = now
                        h5.flush()
                    return "resume", complete, old_sha
                del h5[stage]
                outcome = "restart"
            else:
                old_sha, outcome = "", "new"
            group = h5.create_group(stage)
            group.attrs["status"] = STATUS_RUNNING
            group.attrs["config_json"] = config_json
            group.attrs["config_sha256"] = sha
            group.attrs["result_id"] = new_id
            group.attrs["lineage_json"] = lineage_json
            self._set_run_attributes(group, command_line)
            group.attrs["started"] = now
            group.attrs["resumed"] = ""
            group.attrs["finished"] = ""
            h5.flush()
            return outcome, False, old_sha

        outcome, complete, old_sha = self._collective(begin)
        self._checker.forget(stage)
        if self.rank == 0:
            if outcome == "restart":
                if old_sha == "damaged data":
                    log.warning("%s: stage %r has damaged data (`qtlhpc inspect --verify`); it starts over", self.path,
                                stage)
                elif old_sha == "another lineage":
                    log.warning("%s: stage %r read results that were recomputed since; it starts over", self.path,
                                stage)
                else:
                    log.warning("%s: stage %r was computed with another configuration (config_sha256 %s..., now "
                                "%s...); its results are deleted and the stage starts over", self.path, stage,
                                old_sha[:12], sha[:12])
            elif outcome == "resume":
                log.info("%s: stage %r %s", self.path, stage,
                         "is complete with this configuration: skipped" if complete else "resumes")
        return Stage(self, stage, is_complete=complete, resumed=outcome == "resume")

    def _complete_stage_damage(self, stage: str, sha: str, lineage_json: str) -> str:
        """For a complete stage with this config and lineage: "whole" when a dataset written whole is damaged,
        "blocks" when only blocks are (they are recomputed), "" when none is (or the stage will not be kept)."""
        h5 = self._h5
        if stage not in h5:
            return ""
        group = h5[stage]
        if (str(group.attrs.get("status")) != STATUS_COMPLETE or str(group.attrs.get("config_sha256", "")) != sha
                or _lineage(group) != json.loads(lineage_json)):
            return ""
        whole, blocks, _ = integrity.check_stage(group)
        for damage in whole + blocks:
            log.warning("%s: damaged data: %s", self.path, damage)
        return "whole" if whole else "blocks" if blocks else ""

    def _set_run_attributes(self, group, command_line: str) -> None:
        group.attrs["command_line"] = command_line
        group.attrs["n_ranks"] = np.int64(self.n_ranks)
        group.attrs["parallel_io"] = bool(self.parallel_io)

    # -- reading -------------------------------------------------------------------------------

    def read(self, path: str, selection=(), *, allow_incomplete: bool = False) -> np.ndarray:
        """Dataset ``"stage/name"`` (or ``dataset[selection]``) on every rank; refuses incomplete stages."""
        variable = schema.get(path)

        def read(h5):
            dataset = self._dataset(h5, variable, allow_incomplete)
            self._checker.check(dataset, selection)
            return decode(variable, dataset, selection)

        if self.parallel_io or self.n_ranks == 1:
            try:
                return read(self._h5)
            except DamagedDataError as error:  # every rank read the same bytes: raised on every rank alike
                error.collective = self.n_ranks > 1
                raise
        # rank-0 mode: numbers travel by buffer broadcast (no pickling of large arrays), text by pickle
        array = None
        header = None
        if self.rank == 0:
            try:
                array = np.require(read(self._h5), requirements="C")
                header = ("text", array) if array.dtype.kind in "UO" else ("array", array.shape, array.dtype.str)
            except Exception as error:
                header = ("error", error if picklable(error) else RuntimeError(str(error)))
        header = self.comm.bcast(header, root=0)
        if header[0] == "error":
            header[1].collective = True  # raised on every rank alike
            raise header[1]
        if header[0] == "text":
            return header[1]
        if self.rank != 0:
            array = np.empty(header[1], dtype=np.dtype(header[2]))
        if array.size:
            self.comm.Bcast(array, root=0)
        return array

    def verify(self, path: str, *, allow_incomplete: bool = False) -> None:
        """Check all of dataset ``"stage/name"`` against its checksums (collective); raises
        :class:`DamagedDataError` naming the damaged dataset or block."""
        variable = schema.get(path)
        self._collective(lambda h5: self._checker.check(self._dataset(h5, variable, allow_incomplete)))

    def read_own(self, path: str, selection) -> np.ndarray:
        """``dataset[selection]`` where each rank passes its own ``selection`` (collective), e.g. its block of
        genes: with parallel I/O every rank reads its part; with rank-0 I/O rank 0 reads each rank's part
        and sends it to that rank alone.  Refuses incomplete and stale stages as :meth:`read` does."""
        variable = schema.get(path)
        if self.n_ranks == 1:
            dataset = self._dataset(self._h5, variable, False)
            self._checker.check(dataset, selection)
            return decode(variable, dataset, selection)
        if self.parallel_io:
            # every rank checks what it reads; a damaged part anywhere is raised on every rank
            dataset, error = self._dataset(self._h5, variable, False), None
            try:
                self._checker.check(dataset, selection)
            except DamagedDataError as caught:
                error = caught
            errors = [e for e in self.comm.allgather(error) if e is not None]
            if errors:
                errors[0].collective = True
                raise errors[0]
            return decode(variable, dataset, selection)
        selections = self.comm.gather(selection, root=0)
        parts, error = None, None
        if self.rank == 0:
            try:
                dataset = self._dataset(self._h5, variable, False)
                for part in selections:
                    self._checker.check(dataset, part)
                parts = [decode(variable, dataset, s) for s in selections]
            except Exception as caught:
                error = caught if picklable(caught) else RuntimeError(str(caught))
        error = self.comm.bcast(error, root=0)
        if error is not None:
            error.collective = True
            raise error
        return self.comm.scatter(parts, root=0)

    def _dataset(self, h5, variable: schema.Variable, allow_incomplete: bool) -> h5py.Dataset:
        present = [name for name in h5.keys()]
        if variable.stage not in h5:
            raise InputError(f"no stage {variable.stage!r} in this results file (stages present: "
                             f"{', '.join(present) or 'none'}); run `qtlhpc run {variable.stage} CONFIG` first",
                             file=self.path)
        group = h5[variable.stage]
        status = str(group.attrs.get("status", ""))
        if status == STATUS_COMPLETE and not allow_incomplete:
            state = stage_state(h5, variable.stage)
            if state.status == STATUS_STALE:
                raise StaleResultError(f"{self.path}: stage {variable.stage!r} is stale: {state.reason} "
                                       f"(`qtlhpc run {variable.stage} CONFIG`)")
        if status != STATUS_COMPLETE and not allow_incomplete:
            raise IncompleteResultError(
                f"{self.path}: stage {variable.stage!r} is not complete (status {status!r}): it was interrupted "
                f"or is still running, and its results must not be used. Rerun the same command to resume it "
                f"(finished blocks are kept)."
            )
        if variable.name not in group:
            names = [n for n in group.keys() if not n.startswith("_")]
            raise InputError(f"stage {variable.stage!r} has no dataset {variable.name!r} (it has: "
                             f"{', '.join(names) or 'none'})", file=self.path)
        return group[variable.name]

    def describe(self) -> List[StageInfo]:
        """Stages with status, provenance attributes, datasets and checkpoint progress (collective)."""
        return self._collective(_describe)


def _attribute_value(value):
    if isinstance(value, bytes):
        return value.decode("utf-8")
    if isinstance(value, np.generic):
        return value.item()
    return value


def _describe(h5) -> List[StageInfo]:
    infos = []
    for stage_name, group in h5.items():
        if not isinstance(group, h5py.Group):
            continue
        attributes = {k: _attribute_value(v) for k, v in group.attrs.items()}
        state = stage_state(h5, stage_name)
        if state.reason:
            attributes["stale_because"] = state.reason
        info = StageInfo(stage_name, state.status, attributes)
        for name, dataset in group.items():
            if not isinstance(dataset, h5py.Dataset):
                continue
            dims = str(_attribute_value(dataset.attrs.get("dims", "")))
            info.datasets.append(DatasetInfo(
                f"{stage_name}/{name}", tuple(dataset.shape), str(_attribute_value(dataset.attrs.get("dtype", ""))),
                tuple(d for d in dims.split(",") if d), str(_attribute_value(dataset.attrs.get("unit", ""))),
                str(_attribute_value(dataset.attrs.get("description", ""))),
            ))
        if CHECKPOINT_GROUP in group:
            for key, bitmap in group[CHECKPOINT_GROUP].items():
                if not isinstance(bitmap, h5py.Dataset):
                    continue  # the checksum tables (integrity.SUMS_GROUP)
                bits = bitmap[()]
                info.checkpoints[key] = (int(np.count_nonzero(bits)), int(bits.size))
        infos.append(info)
    return infos


def open_results(path) -> ResultsFile:
    """Open a results file read-only in this process alone (for inspect, export, report)."""
    return ResultsFile.open(path, None, mode="r")


class Stage:
    """One stage group of an open :class:`ResultsFile`; every method is collective."""

    def __init__(self, results: ResultsFile, name: str, *, is_complete: bool, resumed: bool):
        self.results = results
        self.name = name
        self.is_complete = is_complete
        self.resumed = resumed

    def __repr__(self):
        return f"Stage({self.name!r}, is_complete={self.is_complete}, resumed={self.resumed})"

    def variable(self, name: str) -> schema.Variable:
        return schema.get(f"{self.name}/{name}")

    def write(self, name: str, array) -> None:
        """Write the whole declared dataset ``name`` with rank 0's ``array`` (collective)."""
        variable = self.variable(name)
        results = self.results
        results._checker.forget(self.name)
        if results.parallel_io:
            # only the shape and type travel (every rank creates the dataset alike); rank 0 writes the data,
            # so a large array is never sent to every rank
            held = {}

            def prepare():
                held["array"] = prepare_array(variable, array)
                space.check(results.path, f"{variable.path}", held["array"].nbytes, 1)
                return held["array"].shape, hdf5_dtype(variable, held["array"]), integrity.crc32(held["array"])

            shape, dtype, checksum = results._on_root_only(prepare)
            dataset = self._create_small(results._h5, variable, shape, dtype)
            if results.rank == 0:
                with results._writing(variable.path, held["array"].nbytes):
                    _write_whole(dataset, held["array"])
            dataset.attrs[integrity.CRC_ATTRIBUTE] = np.int64(checksum)
            results.flush()
            return

        def write(h5):
            prepared = prepare_array(variable, array)
            space.check(results.path, f"{variable.path}", prepared.nbytes, 1)
            with results._writing(variable.path, prepared.nbytes):
                dataset = self._create_small(h5, variable, prepared.shape, hdf5_dtype(variable, prepared))
                _write_whole(dataset, prepared)
                dataset.attrs[integrity.CRC_ATTRIBUTE] = np.int64(integrity.crc32(prepared))
                h5.flush()

        results._collective(write)

    def _create_small(self, h5, variable: schema.Variable, shape, dtype) -> h5py.Dataset:
        group = h5[self.name]
        if variable.name in group:
            del group[variable.name]
        dataset = group.create_dataset(variable.name, shape=shape, dtype=dtype, track_times=False)
        _write_schema_attributes(dataset, variable)
        return dataset

    def blocked(self, shapes: Dict[str, Sequence[int]], n_blocks: int, key: str) -> "BlockedWriter":
        """Datasets written block by block, with a completion bitmap ``_checkpoint/<key>`` (collective).

        Existing datasets of the right shape and dtype are kept with their bitmap (a resume); otherwise
        the datasets and the bitmap are created afresh.
        """
        variables = {}
        for name, shape in shapes.items():
            variable = self.variable(name)
            if len(tuple(shape)) != variable.ndim:
                raise ValueError(f"{variable.path} is declared with dims {variable.dims} but the shape given is "
                                 f"{tuple(shape)}")
            if variable.is_string:
                raise TypeError(f"{variable.path} holds text: write it whole with Stage.write")
            variables[name] = (variable, tuple(int(n) for n in shape))
        n_blocks = int(n_blocks)
        results = self.results
        results._checker.forget(self.name)

        def kept(group, name, variable, shape) -> bool:
            return (name in group and group[name].shape == shape
                    and group[name].dtype == schema.numpy_dtype(variable.dtype))

        def space_needed():
            group = results._h5[self.name]
            new = [(variable, shape) for name, (variable, shape) in variables.items()
                   if not kept(group, name, variable, shape)]
            n_bytes = sum(int(np.prod(shape)) * schema.numpy_dtype(variable.dtype).itemsize for variable, shape in new)
            n_bytes += n_blocks * (1 + sum(8 * integrity.sums_width(len(shape)) for _, shape in variables.values()))
            what = f"the {space.size_text(n_bytes)} of stage {self.name!r} (datasets {', '.join(sorted(variables))})"
            space.check(results.path, what, n_bytes, len(new) + 1 + len(variables))
            return n_bytes

        n_bytes = results._on_root_only(space_needed)

        def prepare(h5):
            group = h5[self.name]
            fresh = False
            for name, (variable, shape) in variables.items():
                dtype = schema.numpy_dtype(variable.dtype)
                if name in group and not kept(group, name, variable, shape):
                    del group[name]
                if name not in group:
                    _write_schema_attributes(_create_preallocated(group, name, shape, dtype), variable)
                    fresh = True
            checkpoints = group.require_group(CHECKPOINT_GROUP)
            sums = checkpoints.require_group(integrity.SUMS_GROUP).require_group(key)
            for name, (_, shape) in variables.items():
                width = integrity.sums_width(len(shape))
                if name in sums and (fresh or sums[name].shape != (n_blocks, width)):
                    del sums[name]
                if name not in sums:
                    _create_preallocated(sums, name, (n_blocks, width), np.dtype(np.int64), fill=integrity.NO_SUM)
            if key in checkpoints and (fresh or checkpoints[key].shape != (n_blocks,)):
                del checkpoints[key]
            if key not in checkpoints:
                _create_preallocated(checkpoints, key, (n_blocks,), np.dtype(np.uint8))
                h5.flush()
                return np.zeros(n_blocks, dtype=bool)  # not read back: other ranks may still be filling it
            h5.flush()
            return checkpoints[key][()].astype(bool)

        # every rank must see the same bitmap, or the ranks would disagree on which blocks are pending
        with results._writing(f"the blocked datasets of stage {self.name!r}", n_bytes):
            done = results._bcast(results._collective(prepare))
        if done.any():
            done = self._drop_damaged(key, list(variables), done)
        return BlockedWriter(self, {name: shape for name, (_, shape) in variables.items()}, key, done)

    def _drop_damaged(self, key: str, names: List[str], done: np.ndarray) -> np.ndarray:
        """Clear the bits of finished blocks whose data fail their checksums (a resume recomputes them)."""
        results = self.results

        def find():
            group = results._h5[self.name]
            damaged = integrity.damaged_blocks(group, key, names, done)
            for block, found in damaged.items():
                log.warning("%s: %s; block %d is recomputed", results.path, "; ".join(map(str, found)), block)
            bitmap = group[CHECKPOINT_GROUP][key]
            for block in damaged:  # raw data of an allocated dataset: no metadata change, rank 0 alone may write
                bitmap[block:block + 1] = np.zeros(1, dtype=np.uint8)
            return sorted(damaged)

        damaged = results._on_root_only(find)
        if damaged:
            results.flush()
            done = done.copy()
            done[damaged] = False
        return done

    def finish(self) -> None:
        """Mark the stage complete (collective)."""
        finished = self.results._bcast(utc_now())

        def finish(h5):
            h5[self.name].attrs["status"] = STATUS_COMPLETE
            h5[self.name].attrs["finished"] = finished
            h5.flush()

        self.results._collective(finish)
        self.is_complete = True


class BlockedWriter:
    """Checkpointed block writes into a stage's blocked datasets (see :meth:`Stage.blocked`)."""

    def __init__(self, stage: Stage, shapes: Dict[str, Tuple[int, ...]], key: str, done: np.ndarray):
        self.stage = stage
        self.shapes = shapes
        self.key = key
        self.done = done  # (n_blocks,) bool, the same on every rank

    @property
    def n_blocks(self) -> int:
        return int(self.done.size)

    def pending(self, block_ids: Sequence[int]) -> List[int]:
        """The ``block_ids`` not yet marked done, in the order given."""
        return [int(b) for b in block_ids if not self.done[int(b)]]

    def write_rounds(self, my_block_ids: Sequence[int], compute: Callable[[int], BlockPieces],
                     on_round: Optional[Callable[[int, int, List[int]], None]] = None) -> int:
        """Compute and write this rank's pending blocks (collective: every rank calls it).

        ``compute(block_id)`` returns ``{name: (selection, array)}`` with ``selection`` a tuple of slices
        into dataset ``name``.  Returns the number of blocks this rank computed; afterwards ``done`` is
        the same on every rank.

        * One rank, or rank-0 I/O: in rounds of one block per rank; rank 0 writes the round's blocks,
          flushes, marks them in the bitmap and flushes again.  ``on_round(round_index, n_rounds,
          block_ids_of_round)`` follows each round on every rank.
        * Parallel I/O: every rank goes through its blocks at its own pace, with no collective call
          until the end (ranks never wait for each other per block): it writes a block's data, makes
          them durable (``fsync`` of the file from this rank's node: a node's dirty pages of one file
          are flushed whichever descriptor wrote them), then sets the block's byte in the bitmap itself.
          ``on_round(index, n_mine, [block_id])`` follows each of this rank's blocks, on that rank.
          At the end the ranks exchange their lists and flush collectively.
        """
        results = self.stage.results
        todo = self.pending(my_block_ids)
        if self.independent:
            return self._write_independently(enumerate(todo), len(todo), compute, on_round)
        n_rounds = int(allreduce_max(results.comm, len(todo)))
        for round_index in range(n_rounds):
            block_id = todo[round_index] if round_index < len(todo) else None
            pieces = self._checked(block_id, compute(block_id)) if block_id is not None else {}
            round_blocks = self._write_round(block_id, pieces)
            if on_round is not None:
                on_round(round_index, n_rounds, round_blocks)
        return len(todo)

    @property
    def independent(self) -> bool:
        """True when ranks write at their own pace (parallel I/O, more than one rank): see :meth:`write_rounds`."""
        results = self.stage.results
        return bool(results.parallel_io and results.n_ranks > 1)

    def write(self, schedule, compute: Callable[[int], BlockPieces],
              on_round: Optional[Callable[[int, int, List[int]], None]] = None) -> int:
        """Compute and write the pending units of ``schedule`` (a :class:`qtlhpc.parallel.schedule.UnitSchedule`
        over the same unit ids on every rank; collective).

        The schedule decides which rank computes which block; the writer only writes.  A claimed schedule
        needs independent writers (parallel I/O at more than one rank): with lockstep rounds the ranks
        must know their blocks in advance.
        """
        if self.independent:
            return self._write_independently(iter(schedule), schedule.n_units, compute, on_round)
        assert not schedule.claimed, "claimed schedules need independent (parallel) writers"
        return self.write_rounds(schedule.static_share(), compute, on_round)

    def _write_independently(self, blocks, n_blocks: int, compute, on_round) -> int:
        """Write the ``(index, block_id)`` of ``blocks`` (this rank's), each made durable before its bit is set."""
        results = self.stage.results
        group = results._h5[self.stage.name]
        datasets = {name: group[name] for name in self.shapes}  # opened by every rank, before any divergence
        sums = {name: integrity.sums_table(group, self.key, name) for name in self.shapes}
        bitmap = group[CHECKPOINT_GROUP][self.key]
        written = []
        descriptor = os.open(results.path, os.O_RDONLY)
        try:
            for index, block_id in blocks:
                pieces = self._checked(block_id, compute(block_id))
                with results._writing(f"block {block_id} of stage {self.stage.name!r}", 0):
                    self._write_pieces(datasets, sums, block_id, pieces)
                    os.fsync(descriptor)
                bitmap[block_id:block_id + 1] = np.ones(1, dtype=np.uint8)
                written.append(block_id)
                if on_round is not None:
                    on_round(index, n_blocks, [block_id])
        finally:
            os.close(descriptor)
        for ids in results.comm.allgather(written):
            self.done[ids] = True
        results.flush()
        return len(written)

    def _checked(self, block_id: int, pieces: BlockPieces) -> BlockPieces:
        checked = {}
        for name, (selection, array) in pieces.items():
            assert name in self.shapes, f"block {block_id}: {name!r} is not one of {sorted(self.shapes)}"
            selection = selection if isinstance(selection, tuple) else (selection,)
            expected = _selection_shape(self.shapes[name], selection)
            array = np.asarray(array)
            assert array.shape == expected, (
                f"block {block_id}: {name} array has shape {array.shape}, its selection {selection} needs {expected}"
            )
            checked[name] = (selection, array)
        return checked

    def _write_pieces(self, datasets, sums, block_id: int, pieces: BlockPieces) -> None:
        """Write a block's pieces (cast to the stored dtype) and their checksum rows; the caller makes them durable."""
        for name, (selection, array) in pieces.items():
            dataset = datasets[name]
            array = integrity.stored(dataset, array)
            dataset[selection] = array
            sums[name][block_id:block_id + 1] = integrity.selection_row(
                self.shapes[name], selection, integrity.crc32(array))[None, :]

    def _write_round(self, block_id: Optional[int], pieces: BlockPieces) -> List[int]:
        results = self.stage.results
        group_name = self.stage.name
        if results.parallel_io:
            group = results._h5[group_name]
            datasets = {name: group[name] for name in self.shapes}
            sums = {name: integrity.sums_table(group, self.key, name) for name in self.shapes}
            if block_id is not None:
                self._write_pieces(datasets, sums, block_id, pieces)
            results.flush()
            round_blocks = [b for b in results.comm.allgather(block_id) if b is not None]
        else:
            gathered = [(block_id, pieces)] if results.n_ranks == 1 else results.comm.gather((block_id, pieces))
            outcome = None
            if results.rank == 0:
                try:
                    group = results._h5[group_name]
                    datasets = {name: group[name] for name in self.shapes}
                    sums = {name: integrity.sums_table(group, self.key, name) for name in self.shapes}
                    round_blocks = [b for b, _ in gathered if b is not None]
                    with results._writing(f"blocks {round_blocks} of stage {group_name!r}", 0):
                        for rank_block, rank_pieces in gathered:
                            if rank_block is not None:
                                self._write_pieces(datasets, sums, rank_block, rank_pieces)
                        results.flush()
                        self._mark_done(round_blocks)
                    outcome = ("ok", round_blocks)
                except Exception as error:  # sent to every rank: the round failed for all of them alike
                    outcome = ("error", error if picklable(error) else RuntimeError(f"{type(error).__name__}: {error}"))
            # sent once rank 0 has marked the round's blocks: no rank reports a block before it is durable
            outcome = results._bcast(outcome)
            if outcome[0] == "error":
                if results.n_ranks > 1:
                    outcome[1].collective = True
                raise outcome[1]
            round_blocks = outcome[1]
            if results.rank != 0:
                self._mark_done(round_blocks)
            return round_blocks
        self._mark_done(round_blocks)
        return round_blocks

    def _mark_done(self, round_blocks: List[int]) -> None:
        results = self.stage.results
        if not round_blocks:
            return
        self.done[round_blocks] = True
        if results.rank == 0:
            start, stop = min(round_blocks), max(round_blocks) + 1
            bitmap = results._h5[self.stage.name][CHECKPOINT_GROUP][self.key]
            bitmap[start:stop] = self.done[start:stop].astype(np.uint8)
        if results.parallel_io or results.rank == 0:
            results.flush()
