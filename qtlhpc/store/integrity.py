"""Checksums of stored data: a CRC-32 per dataset written whole, one per block of a blocked dataset.

Why not HDF5's Fletcher-32 filter: filters need chunked datasets, and chunked storage allocates chunks
(changes HDF5 metadata) when blocks are written, while parallel HDF5 applies filters only in collective
writes.  The blocked datasets are contiguous and allocated at creation so that a block write from one
rank, at its own pace, never changes metadata (docs/architecture.md, "Results file").  So the checksums
are kept by the store itself:

* a dataset written whole (:meth:`Stage.write`) carries the attribute ``crc32`` of its stored bytes;
* each blocked dataset ``<name>`` of checkpoint ``<key>`` has a table ``_checkpoint/_sums/<key>/<name>``
  (int64, one row per block: ``start, stop, step`` of the block's selection on every axis, then the CRC-32
  of the block's stored bytes, ``-1`` until the block is written).  Like the data, the table is contiguous
  and allocated at creation; a block's row is written with its data, before its bit in the bitmap is set.

Readers check what they read (:class:`Checker`), ``qtlhpc inspect --verify`` checks everything
(:func:`verify_file`), and a resume recomputes the blocks whose data no longer match.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from typing import Dict, Iterable, List, Optional, Tuple

import h5py
import numpy as np

from qtlhpc.errors import QtlhpcError

CHECKPOINT_GROUP = "_checkpoint"
SUMS_GROUP = "_sums"
CRC_ATTRIBUTE = "crc32"
NO_SUM = -1
#: rows read at once when checksumming a large dataset written whole
SLAB_BYTES = 64 << 20


class DamagedDataError(QtlhpcError):
    """Stored bytes no longer match their checksum: the data must not be used."""


def crc32(array: np.ndarray, value: int = 0) -> int:
    """CRC-32 of ``array``'s bytes in C order (continuing from ``value``)."""
    flat = np.ascontiguousarray(array).reshape(-1).view(np.uint8)
    return zlib.crc32(flat, value) & 0xFFFFFFFF


def stored(dataset: h5py.Dataset, array) -> np.ndarray:
    """``array`` as the dataset stores it (its dtype), so that what is hashed is what is written."""
    return np.asarray(array, dtype=dataset.dtype)


def dataset_crc(dataset: h5py.Dataset) -> int:
    """CRC-32 of a whole dataset's stored bytes, read in slabs along the first axis."""
    if dataset.shape == () or dataset.size == 0:
        return crc32(np.asarray(dataset[()]))
    rows = max(1, SLAB_BYTES // max(1, dataset.dtype.itemsize * (dataset.size // dataset.shape[0])))
    value = 0
    for start in range(0, dataset.shape[0], rows):
        value = crc32(dataset[start:start + rows], value)
    return value


# ---------------------------------------------------------------------------------------------
# Block selections <-> table rows


def sums_width(ndim: int) -> int:
    return 3 * ndim + 1


def selection_row(shape, selection: Tuple[slice, ...], checksum: int) -> np.ndarray:
    row = []
    for axis, size in enumerate(shape):
        item = selection[axis] if axis < len(selection) else slice(None)
        row += list(item.indices(size))
    return np.array(row + [checksum], dtype=np.int64)


def row_selection(row: np.ndarray) -> Tuple[slice, ...]:
    values = [int(v) for v in row[:-1]]
    return tuple(slice(values[i], values[i + 1], values[i + 2]) for i in range(0, len(values), 3))


def sums_table(group: h5py.Group, key: str, name: str) -> Optional[h5py.Dataset]:
    """The checksum table of blocked dataset ``name`` under checkpoint ``key`` of a stage group, or None."""
    path = f"{CHECKPOINT_GROUP}/{SUMS_GROUP}/{key}/{name}"
    return group[path] if path in group else None


def blocked_tables(group: h5py.Group) -> Dict[str, Tuple[str, h5py.Dataset]]:
    """``{dataset name: (checkpoint key, checksum table)}`` of a stage group."""
    found = {}
    if CHECKPOINT_GROUP in group and SUMS_GROUP in group[CHECKPOINT_GROUP]:
        for key, tables in group[CHECKPOINT_GROUP][SUMS_GROUP].items():
            for name, table in tables.items():
                found[name] = (key, table)
    return found


def _bitmap(group: h5py.Group, key: str) -> np.ndarray:
    return group[CHECKPOINT_GROUP][key][()].astype(bool)


# ---------------------------------------------------------------------------------------------
# Checking


@dataclass(frozen=True)
class Damage:
    """One damaged dataset or block."""

    dataset: str          # "stage/name"
    block: Optional[int]  # None for a dataset written whole
    key: str              # checkpoint key of a block
    what: str

    def __str__(self) -> str:
        where = self.dataset if self.block is None else f"{self.dataset} block {self.block} (checkpoint {self.key})"
        return f"{where}: {self.what}"


def check_block(dataset: h5py.Dataset, row: np.ndarray) -> Optional[str]:
    """Why block ``row`` (a checksum table row) of ``dataset`` is damaged, or None when it matches."""
    expected = int(row[-1])
    if expected == NO_SUM:
        return "no checksum recorded for a block marked done"
    selection = row_selection(row)
    try:
        actual = crc32(dataset[selection])
    except (OSError, ValueError, IndexError) as error:  # a damaged table row may point anywhere
        return f"its selection cannot be read ({error})"
    if actual != expected:
        return f"checksum mismatch (stored {expected:08x}, data {actual:08x})"
    return None


def damaged_blocks(group: h5py.Group, key: str, names: Iterable[str], done: np.ndarray) -> Dict[int, List[Damage]]:
    """The blocks marked in ``done`` whose data under ``names`` do not match their checksums.

    A block is damaged when a row of any of its datasets does not match, or when none of its datasets has a
    checksum recorded; a blocked dataset without a table (a file written before checksums) counts as damaged.
    """
    stage = group.name.strip("/")
    damaged: Dict[int, List[Damage]] = {}
    tables = {name: sums_table(group, key, name) for name in names}
    rows = {name: (table[()] if table is not None else None) for name, table in tables.items()}
    for block in np.flatnonzero(done):
        block = int(block)
        found, recorded = [], 0
        for name, table_rows in rows.items():
            if table_rows is None:
                found.append(Damage(f"{stage}/{name}", block, key, "no checksums stored (file written by an older "
                                                                   "qtlhpc): recomputed"))
                continue
            if block >= len(table_rows) or int(table_rows[block][-1]) == NO_SUM:
                continue
            recorded += 1
            problem = check_block(group[name], table_rows[block])
            if problem:
                found.append(Damage(f"{stage}/{name}", block, key, problem))
        if not found and recorded == 0 and rows:
            found.append(Damage(f"{stage}/{next(iter(rows))}", block, key,
                                "no checksum recorded for a block marked done"))
        if found:
            damaged[block] = found
    return damaged


def check_whole(dataset: h5py.Dataset) -> Optional[str]:
    expected = dataset.attrs.get(CRC_ATTRIBUTE)
    if expected is None:
        return None
    actual = dataset_crc(dataset)
    if actual != int(expected):
        return f"checksum mismatch (stored {int(expected):08x}, data {actual:08x})"
    return None


def check_stage(group: h5py.Group) -> Tuple[List[Damage], List[Damage], List[str]]:
    """Check every dataset of a stage group: ``(whole-dataset damage, block damage, unchecked dataset names)``."""
    stage = group.name.strip("/")
    tables = blocked_tables(group)
    whole, blocks, unchecked = [], [], []
    by_key: Dict[str, List[str]] = {}
    for name, item in group.items():
        if not isinstance(item, h5py.Dataset):
            continue
        if name in tables:
            by_key.setdefault(tables[name][0], []).append(name)
        elif CRC_ATTRIBUTE in item.attrs:
            problem = check_whole(item)
            if problem:
                whole.append(Damage(f"{stage}/{name}", None, "", problem))
        else:
            unchecked.append(f"{stage}/{name}")
    for key, names in by_key.items():
        if CHECKPOINT_GROUP not in group or key not in group[CHECKPOINT_GROUP]:
            continue
        for found in damaged_blocks(group, key, names, _bitmap(group, key)).values():
            blocks += found
    return whole, blocks, unchecked


def verify_file(h5: h5py.File) -> Tuple[List[Damage], List[str]]:
    """Every stage of an open results file: ``(damage found, datasets without checksums)``."""
    damage, unchecked = [], []
    for name, group in h5.items():
        if not isinstance(group, h5py.Group):
            continue
        whole, blocks, missing = check_stage(group)
        damage += whole + blocks
        unchecked += missing
    return damage, unchecked


# ---------------------------------------------------------------------------------------------
# Checks on reading


def _normalise(selection, shape) -> Optional[List[Tuple[int, int]]]:
    """Per-axis ``(start, stop)`` ranges covered by ``selection``; None when it is not simple slices/ints."""
    if selection is Ellipsis:
        selection = ()
    if not isinstance(selection, tuple):
        selection = (selection,)
    if len(selection) > len(shape):
        return None
    ranges = []
    for axis, size in enumerate(shape):
        item = selection[axis] if axis < len(selection) else slice(None)
        if isinstance(item, (int, np.integer)):
            index = int(item) + (size if int(item) < 0 else 0)
            ranges.append((index, index + 1))
        elif isinstance(item, slice):
            start, stop, step = item.indices(size)
            if step != 1:
                return None
            ranges.append((start, max(start, stop)))
        else:
            return None
    return ranges


def _overlaps(row: np.ndarray, ranges: List[Tuple[int, int]]) -> bool:
    values = [int(v) for v in row[:-1]]
    for axis, (start, stop) in enumerate(ranges):
        b_start, b_stop = values[3 * axis], values[3 * axis + 1]
        if b_stop <= start or stop <= b_start:
            return False
    return True


class Checker:
    """Checks the data a :class:`ResultsFile` reads, once per dataset or block per open file."""

    def __init__(self, path):
        self.path = path
        self._whole_done = set()
        self._blocks_done = set()
        self._tables = {}  # dataset -> (checkpoint key, checksum rows, done bits), read once per open file

    def forget(self, stage: str) -> None:
        """Drop what was checked or cached of ``stage`` (it is being written)."""
        prefix = stage + "/"
        self._whole_done = {n for n in self._whole_done if not n.startswith(prefix)}
        self._blocks_done = {(n, b) for n, b in self._blocks_done if not n.startswith(prefix)}
        self._tables = {n: t for n, t in self._tables.items() if not n.startswith(prefix)}

    def check(self, dataset: h5py.Dataset, selection=()) -> None:
        """Raise :class:`DamagedDataError` when data that ``dataset[selection]`` reads fail their checksum."""
        name = dataset.name.strip("/")
        if name in self._whole_done:
            return
        if CRC_ATTRIBUTE in dataset.attrs:
            problem = check_whole(dataset)
            if problem:
                raise self._error(Damage(name, None, "", problem))
            self._whole_done.add(name)
            return
        if name not in self._tables:
            group = dataset.parent
            tables = blocked_tables(group)
            local = name.rsplit("/", 1)[-1]
            if local not in tables:
                self._whole_done.add(name)  # no checksum (written by an older qtlhpc): nothing to check
                return
            key, table = tables[local]
            rows = table[()]
            done = _bitmap(group, key) if key in group[CHECKPOINT_GROUP] else np.zeros(len(rows), bool)
            self._tables[name] = (key, rows, done)
        key, rows, done = self._tables[name]
        ranges = _normalise(selection, dataset.shape)
        for block in range(len(rows)):
            if (name, block) in self._blocks_done or not done[block]:
                continue
            if int(rows[block][-1]) == NO_SUM:
                continue  # this block wrote nothing into this dataset
            if ranges is not None and not _overlaps(rows[block], ranges):
                continue
            problem = check_block(dataset, rows[block])
            if problem:
                raise self._error(Damage(name, block, key, problem))
            self._blocks_done.add((name, block))

    def _error(self, damage: Damage) -> DamagedDataError:
        stage = damage.dataset.split("/", 1)[0]
        return DamagedDataError(
            f"{self.path}: {damage}; the data are damaged and must not be used. Rerun stage {stage!r} with the "
            f"same command (damaged blocks are recomputed), or see `qtlhpc inspect --verify {self.path}`")
