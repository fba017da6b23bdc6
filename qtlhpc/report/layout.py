"""Pure array helpers of the report: genome layout along one axis, and pair maxima over locus bins.

No files, no matplotlib: arrays in, arrays out.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

import numpy as np


@dataclass(frozen=True)
class GenomeLayout:
    """Loci laid end to end along one axis, chromosome after chromosome.

    ``names[i]`` is the chromosome of the contiguous run of loci ``starts[i]:stops[i]``;
    ``cumulative_cM`` (n_loci,) places each locus on the concatenated genome (its run's offset plus its
    map position); ``run_left_cM`` / ``run_right_cM`` / ``midpoints_cM`` (n_runs,) bound and centre each run.
    """

    names: List[str]
    starts: np.ndarray
    stops: np.ndarray
    cumulative_cM: np.ndarray
    run_left_cM: np.ndarray
    run_right_cM: np.ndarray

    @property
    def midpoints_cM(self) -> np.ndarray:
        return (self.run_left_cM + self.run_right_cM) / 2

    @property
    def midpoints_index(self) -> np.ndarray:
        """Centre of each run in locus-index units (for axes that count loci)."""
        return (self.starts + self.stops) / 2


def chromosome_runs(chromosomes) -> tuple:
    """``(names, starts, stops)`` of the maximal runs of equal consecutive labels in ``chromosomes`` (n_loci,).

    Loci are stored in map order, so each chromosome is normally one run; a chromosome split in two
    runs is shown twice rather than merged out of order.
    """
    labels = np.asarray(chromosomes).astype(str)
    n_loci = labels.size
    if n_loci == 0:
        return [], np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
    changes = np.flatnonzero(labels[1:] != labels[:-1]) + 1
    starts = np.concatenate([[0], changes]).astype(np.int64)
    stops = np.concatenate([changes, [n_loci]]).astype(np.int64)
    return [str(labels[s]) for s in starts], starts, stops


def genome_layout(chromosomes, positions_cM, gap_cM=None) -> GenomeLayout:
    """Cumulative positions of loci (n_loci,) with chromosome runs ``gap_cM`` apart.

    Each run starts at its first locus's map position; the default gap is 2% of the summed run lengths
    (1 cM when all runs have length 0, e.g. one locus per chromosome).
    """
    names, starts, stops = chromosome_runs(chromosomes)
    positions = np.asarray(positions_cM, dtype=float)
    assert positions.shape == (np.asarray(chromosomes).size,), "one position per locus"
    finite = np.where(np.isfinite(positions), positions, 0.0)
    lows = np.array([finite[s:e].min() for s, e in zip(starts, stops)], dtype=float)
    highs = np.array([finite[s:e].max() for s, e in zip(starts, stops)], dtype=float)
    lengths = highs - lows
    if gap_cM is None:
        total = float(lengths.sum())
        gap_cM = 0.02 * total if total > 0 else 1.0
    offsets = np.concatenate([[0.0], np.cumsum(lengths + gap_cM)[:-1]]) if len(names) else np.zeros(0)
    cumulative = np.empty_like(finite)
    for run, (start, stop) in enumerate(zip(starts, stops)):
        cumulative[start:stop] = finite[start:stop] - lows[run] + offsets[run]
    return GenomeLayout(names, starts, stops, cumulative, offsets, offsets + lengths)


def bin_edges(n_loci: int, max_bins: int) -> np.ndarray:
    """Start index of each of at most ``max_bins`` equal bins of consecutive loci, plus ``n_loci`` at the end.

    Bins hold ``ceil(n_loci / max_bins)`` loci (the last one may hold fewer); with ``n_loci <= max_bins``
    every locus is its own bin.
    """
    if max_bins < 1:
        raise ValueError(f"max_bins must be >= 1, got {max_bins}")
    bin_size = max(1, -(-n_loci // max_bins))
    return np.append(np.arange(0, n_loci, bin_size), n_loci).astype(np.int64)


def binned_pair_maximum(packed_values, n_loci: int, edges) -> np.ndarray:
    """Maximum of a packed pair statistic over bins of loci, as a lower-triangular matrix.

    ``packed_values`` (n_pairs,) holds one value per pair ``k < l`` in row-major order of the strict
    upper triangle (``qtlhpc.parallel.pair_index``); ``edges`` (n_bins + 1,) are bin starts plus
    ``n_loci`` (:func:`bin_edges`).  Returns ``M`` (n_bins, n_bins) with
    ``M[b, c] = max { value(k, l) : k in bin c, l in bin b, k < l }``: the pair's second locus is the
    row, so the values sit in the lower triangle (``b >= c``).  NaN values are ignored; bins without a
    finite pair, and the upper triangle, are NaN.  Cost O(n_pairs), memory O(bin size x n_loci).
    """
    values = np.asarray(packed_values)
    assert values.shape == (n_loci * (n_loci - 1) // 2,), (
        f"{values.shape} values for {n_loci} loci, expected ({n_loci * (n_loci - 1) // 2},)")
    edges = np.asarray(edges, dtype=np.int64)
    assert edges[0] == 0 and edges[-1] == n_loci and np.all(np.diff(edges) > 0), "edges must split 0..n_loci"
    dtype = np.result_type(values.dtype, np.float32)
    n_bins = edges.size - 1
    result = np.full((n_bins, n_bins), -np.inf, dtype=dtype)
    row_start = 0  # packed index of pair (k, k + 1)
    for column_bin in range(n_bins):
        first, last = int(edges[column_bin]), int(edges[column_bin + 1])
        rows = np.full((last - first, n_loci), -np.inf, dtype=dtype)
        for k in range(first, last):
            length = n_loci - 1 - k
            rows[k - first, k + 1:] = values[row_start:row_start + length]
            row_start += length
        rows[np.isnan(rows)] = -np.inf
        best_per_locus = rows.max(axis=0)
        result[:, column_bin] = np.maximum.reduceat(best_per_locus, edges[:-1])
    result[np.isneginf(result)] = np.nan
    return result
