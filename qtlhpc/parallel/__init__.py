"""MPI runtime: communicators (with the one root-and-broadcast helper), partitions, the work scheduler
(static or claimed units), random streams keyed by unit."""

from qtlhpc.parallel.comm import (
    SERIAL, SerialComm, allreduce_max, allreduce_sum, as_comm, is_serial, on_root, world)
from qtlhpc.parallel.partition import (
    PairBlock,
    balanced_split,
    block_range,
    chunk_ranges,
    n_pairs,
    pair_blocks,
    pair_from_index,
    pair_index,
    packed_slice,
    partition_pair_blocks,
    triangle_row_blocks,
)
from qtlhpc.parallel import schedule
from qtlhpc.parallel.rng import unit_rng, unit_seed_sequence

__all__ = [
    "SERIAL", "SerialComm", "world", "as_comm", "is_serial", "on_root", "allreduce_sum", "allreduce_max",
    "PairBlock", "balanced_split", "block_range", "chunk_ranges", "n_pairs", "pair_blocks",
    "pair_from_index", "pair_index", "partition_pair_blocks", "packed_slice", "triangle_row_blocks",
    "schedule", "unit_rng", "unit_seed_sequence",
]
