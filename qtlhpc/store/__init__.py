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

__all__ = ["ResultsFile", "Stage", "BlockedWriter", "StageInfo", "DatasetInfo", "open_results", "canonical_json"]
