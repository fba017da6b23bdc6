"""False discovery rates over many tests: Benjamini-Hochberg adjusted p-values."""

from __future__ import annotations

import numpy as np

from qtlhpc.errors import InputError


def benjamini_hochberg(pvalues) -> np.ndarray:
    """BH-adjusted p-values (as R's ``p.adjust(p, "BH")``), same shape as ``pvalues``; NaN stays NaN and is
    not counted among the tests."""
    p = np.asarray(pvalues, dtype=float)
    flat = p.reshape(-1)
    tested = np.flatnonzero(~np.isnan(flat))
    values = flat[tested]
    if np.any((values < 0) | (values > 1)):
        raise InputError("p-values must lie in [0, 1]")
    adjusted = np.full(flat.shape, np.nan)
    m = values.size
    if m:
        order = np.argsort(values, kind="mergesort")[::-1]
        ranks = np.arange(m, 0, -1)
        cumulative = np.minimum.accumulate(values[order] * m / ranks)
        adjusted[tested[order]] = np.minimum(cumulative, 1.0)
    return adjusted.reshape(p.shape)
