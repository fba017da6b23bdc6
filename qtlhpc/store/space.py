"""Free space on the results file's file system, checked before the store allocates anything.

A results file runs out of space where HDF5 allocates: a new dataset (blocked datasets are allocated and
filled when created), a dataset written whole, new metadata.  Once HDF5 has moved the file's end-of-
allocation past what the disk could take, the file no longer opens ("truncated file"), and under
``mpio`` a failed write inside a collective call leaves the other ranks waiting.  So the store asks the
file system first (on rank 0; the answer is broadcast and the refusal raised on every rank alike), and
refuses with one line that names the file, what is needed and what is free.  Block writes into allocated
datasets need no new space.
"""

from __future__ import annotations

import errno
import math
import os
from pathlib import Path
from typing import Optional

from qtlhpc.errors import QtlhpcError

#: HDF5 metadata allowance: per call (group entries, local heaps, attributes) and per new dataset
METADATA_BYTES = 64 << 10
METADATA_BYTES_PER_DATASET = 8 << 10


class DiskFullError(QtlhpcError, OSError):
    """The results file's file system has not the space a write needs."""

    def __init__(self, message: str):
        QtlhpcError.__init__(self, message)
        self.errno = errno.ENOSPC
        self.strerror = message

    def __str__(self) -> str:
        return self.strerror

    def __reduce__(self):
        return (type(self), (self.strerror,))


def free_bytes(path) -> int:
    """Bytes an unprivileged user may still write on the file system of ``path`` (or of its folder)."""
    path = Path(path)
    target = path if path.exists() else path.parent
    stats = os.statvfs(target)
    return int(stats.f_bavail) * int(stats.f_frsize)


def size_text(n_bytes: float) -> str:
    """``n_bytes`` in KiB/MiB/GiB/TiB, rounded up so that freeing the amount shown is enough."""
    for unit, scale in (("TiB", 1 << 40), ("GiB", 1 << 30), ("MiB", 1 << 20), ("KiB", 1 << 10)):
        if n_bytes >= scale:
            return f"{math.ceil(n_bytes / scale * 10) / 10:.1f} {unit}"
    return f"{int(n_bytes)} B"


def shortage(path, n_bytes: int, n_datasets: int = 0) -> Optional[int]:
    """Bytes missing for writing ``n_bytes`` of data in ``n_datasets`` new datasets to ``path``; None if enough."""
    needed = int(n_bytes) + METADATA_BYTES + METADATA_BYTES_PER_DATASET * int(n_datasets)
    free = free_bytes(path)
    return None if free >= needed else needed - free


def disk_full(path, what: str, n_bytes: int, n_datasets: int = 0) -> DiskFullError:
    """The one-line refusal: file, what is written, space needed and free, what to do."""
    needed = int(n_bytes) + METADATA_BYTES + METADATA_BYTES_PER_DATASET * int(n_datasets)
    free = free_bytes(path)
    return DiskFullError(
        f"{path}: not enough space on its file system for {what}: needs {size_text(needed)}, "
        f"{size_text(free)} free (free at least {size_text(max(needed - free, 1))} or write the results "
        f"elsewhere with run.output, then rerun the same command: completed stages and blocks are kept)")


def check(path, what: str, n_bytes: int, n_datasets: int = 0) -> None:
    """Raise :class:`DiskFullError` unless ``path``'s file system can take ``n_bytes`` more (and metadata)."""
    if shortage(path, n_bytes, n_datasets) is not None:
        raise disk_full(path, what, n_bytes, n_datasets)


def is_disk_full(error: BaseException) -> bool:
    """An error of HDF5/h5py or the OS that says a write failed for want of space (or quota)."""
    if getattr(error, "errno", None) in (errno.ENOSPC, errno.EDQUOT):
        return True
    text = str(error)
    return "No space left" in text or "write failed" in text or "Disk quota" in text
