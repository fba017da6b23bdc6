"""Pure helpers that pick the rows of the report's tables: 1D peaks and the strongest locus pairs."""

from __future__ import annotations

from typing import Tuple

import numpy as np


def chromosome_peaks(lod: np.ndarray, starts: np.ndarray, stops: np.ndarray, top: int) -> Tuple[np.ndarray, np.ndarray]:
    """The ``top`` strongest (trait, chromosome) peaks of a 1D scan, strongest first.

    ``lod`` (n_traits, n_loci); chromosome runs ``starts:stops``.  Each (trait, chromosome) contributes
    its highest-LOD locus (as R/qtl's ``summary.scanone``), so one broad peak does not fill the table.
    Returns ``(trait_index, locus_index)`` arrays; NaN LODs are never chosen.
    """
    lod = np.asarray(lod, dtype=float)
    traits, loci, values = [], [], []
    for trait in range(lod.shape[0]):
        for start, stop in zip(starts, stops):
            segment = lod[trait, start:stop]
            if not np.any(np.isfinite(segment)):
                continue
            best = int(np.nanargmax(segment))
            traits.append(trait)
            loci.append(int(start) + best)
            values.append(segment[best])
    order = np.argsort(-np.asarray(values, dtype=float), kind="stable")[:top]
    return np.asarray(traits, dtype=np.int64)[order], np.asarray(loci, dtype=np.int64)[order]


def strongest_pairs(packed_lod_by_trait, top: int) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The ``top`` highest finite values over traits of packed pair LODs, strongest first.

    ``packed_lod_by_trait`` yields one (n_pairs,) array per trait (read one at a time).
    Returns ``(trait_index, pair_index, lod)`` arrays.
    """
    traits, pairs, values = [], [], []
    for trait, packed in enumerate(packed_lod_by_trait):
        packed = np.asarray(packed, dtype=float)
        finite = np.flatnonzero(np.isfinite(packed))
        if finite.size > top:
            finite = finite[np.argpartition(-packed[finite], top - 1)[:top]] if top > 0 else finite[:0]
        traits.append(np.full(finite.size, trait, dtype=np.int64))
        pairs.append(finite.astype(np.int64))
        values.append(packed[finite])
    if not traits:
        return np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0)
    trait_index, pair_index, lod = np.concatenate(traits), np.concatenate(pairs), np.concatenate(values)
    order = np.lexsort((pair_index, trait_index, -lod))[:top]
    return trait_index[order], pair_index[order], lod[order]
