"""Chi-square tails and the LOD <-> likelihood-ratio conversion, shared by every method's tests."""

from __future__ import annotations

import math

import numpy as np
import scipy.special

#: LRT = 2 ln(10) LOD
LOD_TO_LRT = 2.0 * math.log(10.0)


def chi2_survival(statistic, df):
    """``P(chi2_df > statistic)`` elementwise, NaN where ``df <= 0`` or the statistic is NaN (as scipy.stats'
    ``chi2.sf``, through scipy.special so that a run never pays for importing scipy.stats)."""
    statistic = np.asarray(statistic, dtype=np.float64)
    df = np.asarray(df, dtype=np.float64)
    with np.errstate(invalid="ignore"):
        return np.where(df > 0, scipy.special.chdtrc(np.maximum(df, 1.0), statistic), np.nan)


def chi2_tail(statistic, df):
    """``P(chi2_df > statistic)`` for integer ``df >= 1`` (closed forms for df <= 4, which are all the scans use)."""
    statistic = np.maximum(np.asarray(statistic, dtype=np.float64), 0.0)
    df = int(df)
    if df > 4:
        return chi2_survival(statistic, df)
    half = 0.5 * statistic
    if df % 2 == 0:
        tail = np.exp(-half)
        return tail if df == 2 else tail * (1.0 + half)
    tail = scipy.special.erfc(np.sqrt(half))
    return tail if df == 1 else tail + np.sqrt(2.0 * statistic / np.pi) * np.exp(-half)
