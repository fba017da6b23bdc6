"""Static partitions of index ranges and of the upper triangle of marker pairs.

All functions are pure: they take ``(rank, size)`` or a count and return plain ranges, so a driver
on any number of ranks (or a SLURM array task) can compute its share without communicating.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Sequence, Tuple

import numpy as np


def block_range(n_items: int, rank: int, size: int) -> Tuple[int, int]:
    """The ``[start, stop)`` share of ``rank`` among ``size`` near-equal contiguous blocks of ``n_items``.

    The first ``n_items % size`` ranks get one item more.  Empty ranges happen when ``size > n_items``.
    """
    if size < 1 or not 0 <= rank < size:
        raise ValueError(f"rank {rank} is not in a communicator of size {size}")
    if n_items < 0:
        raise ValueError(f"n_items must be >= 0, got {n_items}")
    base, extra = divmod(n_items, size)
    start = rank * base + min(rank, extra)
    stop = start + base + (1 if rank < extra else 0)
    return start, stop


def chunk_ranges(n_items: int, chunk: int) -> List[Tuple[int, int]]:
    """``[start, stop)`` ranges of at most ``chunk`` items covering ``range(n_items)`` in order."""
    if chunk < 1:
        raise ValueError(f"chunk must be >= 1, got {chunk}")
    return [(s, min(s + chunk, n_items)) for s in range(0, n_items, chunk)]


def balanced_split(weights: Sequence[float], size: int) -> List[Tuple[int, int]]:
    """Split ``len(weights)`` ordered items into ``size`` contiguous ranges of near-equal total weight.

    Item ``i`` goes to the part whose share of the cumulative weight contains the item's midpoint,
    which keeps every range contiguous and the largest part within one item's weight of the ideal.
    """
    weights = np.asarray(weights, dtype=float)
    if size < 1:
        raise ValueError(f"size must be >= 1, got {size}")
    if np.any(weights < 0):
        raise ValueError("weights must be non-negative")
    n_items = len(weights)
    total = weights.sum()
    if n_items == 0:
        return [(0, 0)] * size
    if total == 0:
        return [block_range(n_items, r, size) for r in range(size)]
    midpoints = np.cumsum(weights) - weights / 2
    owner = np.minimum((midpoints / total * size).astype(int), size - 1)
    bounds = np.searchsorted(owner, np.arange(size + 1), side="left")
    return [(int(bounds[r]), int(bounds[r + 1])) for r in range(size)]


# ---------------------------------------------------------------------------------------------
# Pairs k < l of n_markers markers, in row-major order of the strict upper triangle.


def n_pairs(n_markers: int) -> int:
    """Number of marker pairs ``k < l``: ``n_markers * (n_markers - 1) / 2``."""
    return n_markers * (n_markers - 1) // 2


def pair_index(k, l, n_markers: int):
    """Linear index of pair ``(k, l)``, ``k < l``, in the row-major packed strict upper triangle."""
    k = np.asarray(k, dtype=np.int64)
    l = np.asarray(l, dtype=np.int64)
    if np.any(k >= l):
        raise ValueError("pair_index needs k < l")
    return k * (2 * n_markers - k - 1) // 2 + (l - k - 1)


def pair_from_index(index, n_markers: int):
    """Inverse of :func:`pair_index`: ``(k, l)`` arrays for linear pair indices."""
    index = np.asarray(index, dtype=np.int64)
    m = n_markers
    # k is the largest row with row_start(k) <= index, row_start(k) = k*(2m-k-1)/2
    k = np.floor(((2 * m - 1) - np.sqrt((2 * m - 1) ** 2 - 8.0 * index)) / 2).astype(np.int64)
    k = np.clip(k, 0, max(m - 2, 0))
    row_start = k * (2 * m - k - 1) // 2
    too_far = row_start > index
    k = np.where(too_far, k - 1, k)
    row_start = k * (2 * m - k - 1) // 2
    next_start = (k + 1) * (2 * m - k - 2) // 2
    past = index >= next_start
    k = np.where(past, k + 1, k)
    row_start = k * (2 * m - k - 1) // 2
    l = index - row_start + k + 1
    return k, l


@dataclass(frozen=True)
class PairBlock:
    """A tile of the strict upper triangle: pairs ``(k, l)`` with ``k`` in rows, ``l`` in cols, ``k < l``.

    ``block_id`` numbers the tiles in row-major order; it keys checkpoints and random streams.
    """

    block_id: int
    row_start: int
    row_stop: int
    col_start: int
    col_stop: int

    @property
    def n_pairs(self) -> int:
        total = 0
        for k in range(self.row_start, self.row_stop):
            lo = max(self.col_start, k + 1)
            total += max(0, self.col_stop - lo)
        return total

    def pairs(self) -> Tuple[np.ndarray, np.ndarray]:
        """``(k, l)`` index arrays of the block's pairs, row-major."""
        rows, cols = np.meshgrid(
            np.arange(self.row_start, self.row_stop), np.arange(self.col_start, self.col_stop), indexing="ij"
        )
        keep = rows < cols
        return rows[keep], cols[keep]


def pair_blocks(n_markers: int, tile: int) -> List[PairBlock]:
    """Tiles of ``tile x tile`` markers covering the strict upper triangle (diagonal tiles are halves)."""
    edges = chunk_ranges(n_markers, tile)
    blocks = []
    for i, (r0, r1) in enumerate(edges):
        for c0, c1 in edges[i:]:
            block = PairBlock(len(blocks), r0, r1, c0, c1)
            if block.n_pairs:
                blocks.append(block)
    return [PairBlock(i, b.row_start, b.row_stop, b.col_start, b.col_stop) for i, b in enumerate(blocks)]


def partition_pair_blocks(blocks: Sequence[PairBlock], rank: int, size: int) -> List[PairBlock]:
    """The contiguous run of ``blocks`` owned by ``rank``, balanced by pair count."""
    start, stop = balanced_split([b.n_pairs for b in blocks], size)[rank]
    return list(blocks[start:stop])


def triangle_row_blocks(n_markers: int, pairs_per_block: int, *, tail_fraction: float = 0.0,
                        tail_divisor: int = 4) -> List[PairBlock]:
    """Blocks of whole rows of the strict upper triangle, each about ``pairs_per_block`` pairs.

    A block holds the pairs ``(k, l)``, ``row_start <= k < row_stop``, ``k < l < n_markers``; its pairs are
    contiguous in the packed row-major order of :func:`pair_index`, starting at
    ``pair_index(row_start, row_start + 1)``, so each block is one contiguous slice of a packed array.
    The last ``tail_fraction`` of the pairs go into blocks ``tail_divisor`` times smaller, so that ranks
    claiming blocks in order (self-scheduling) finish within a small block of each other.  The blocks depend
    only on these arguments, never on the number of ranks.
    """
    if pairs_per_block < 1:
        raise ValueError(f"pairs_per_block must be >= 1, got {pairs_per_block}")
    tail_start = (1.0 - tail_fraction) * n_markers * (n_markers - 1) / 2
    blocks: List[PairBlock] = []
    row, before = 0, 0
    while row < n_markers - 1:
        start, count = row, 0
        target = pairs_per_block if before < tail_start else max(1, pairs_per_block // tail_divisor)
        while row < n_markers - 1 and (count == 0 or count + (n_markers - 1 - row) <= target):
            count += n_markers - 1 - row
            row += 1
        before += count
        blocks.append(PairBlock(len(blocks), start, row, start, n_markers))
    return blocks


def packed_slice(block: PairBlock, n_markers: int) -> slice:
    """The slice of the packed pair array (row-major strict upper triangle) that a row block covers."""
    assert block.col_start == block.row_start and block.col_stop == n_markers, "not a triangle row block"
    start = int(pair_index(block.row_start, block.row_start + 1, n_markers)) if block.row_start < n_markers - 1 else 0
    return slice(start, start + block.n_pairs)
