"""Genome-wide permutation thresholds and adjusted p-values from the maxima of permuted scans."""

from __future__ import annotations

from typing import Sequence

import numpy as np

from qtlhpc.errors import InputError


def thresholds(maxima, alphas: Sequence[float] = (0.05, 0.01, 0.1)):
    """``1 - alpha`` quantiles (R type 7 / numpy "linear") of permutation maxima.

    ``maxima``: an object with a ``maxima`` mapping, e.g. a PEPIS ``PermutationMaxima`` (returns
    ``{statistic: (len(alphas),)}``), or an array ``(n_permutations,)`` (returns ``(len(alphas),)``).
    """
    alphas = np.asarray(alphas, dtype=float)
    if np.any((alphas <= 0) | (alphas >= 1)):
        raise InputError(f"significance levels must be in (0, 1), got {alphas.tolist()}")
    if hasattr(maxima, "maxima"):
        return {name: thresholds(values, alphas) for name, values in maxima.maxima.items()}
    values = np.asarray(maxima, dtype=float)
    if values.ndim != 1 or values.size == 0:
        raise InputError(f"permutation maxima have shape {values.shape}; expected (n_permutations,) with n >= 1")
    return np.quantile(values, 1 - alphas, method="linear")


def adjusted_pvalues(observed, maxima) -> np.ndarray:
    """Genome-wide adjusted p-values ``k / N``: share of the ``N`` permutation maxima ``>=`` each observed LOD.

    ``observed``: any shape; ``maxima (N,)``.  (R/qtl's convention; ``(k + 1) / (N + 1)`` would never be 0.)
    """
    maxima = np.sort(np.asarray(maxima, dtype=float))
    observed = np.asarray(observed, dtype=float)
    if maxima.ndim != 1 or maxima.size == 0:
        raise InputError(f"permutation maxima have shape {maxima.shape}; expected (n_permutations,) with n >= 1")
    at_least = maxima.size - np.searchsorted(maxima, observed, side="left")
    return at_least / maxima.size
