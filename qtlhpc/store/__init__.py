"""The results store: one HDF5 file per run, stages with provenance, checkpointed blocked writes, export.

See docs/architecture.md ("Results file", "Store API") and docs/results-schema.md.
"""

from qtlhpc.store.results import (
    BlockedWriter,
    DatasetInfo,
    ResultsFile,
    Stage,
    StageInfo,
    canonical_json,
    open_results,
)

from qtlhpc.store.integrity import DamagedDataError
from qtlhpc.store.lock import LockHolder, ResultsLockedError, holder_alive, read_holder
from qtlhpc.store.space import DiskFullError

__all__ = ["ResultsFile", "Stage", "BlockedWriter", "StageInfo", "DatasetInfo", "open_results", "canonical_json",
           "DamagedDataError", "DiskFullError", "ResultsLockedError", "LockHolder", "read_holder", "holder_alive"]
