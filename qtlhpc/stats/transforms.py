"""Transforms of expression and dosage matrices before an eQTL scan: arrays in, arrays out.

Every function takes ``values (n_features, n_samples)``: genes (or variants) in rows, samples in
columns, NaN missing, as :class:`~qtlhpc.io.expression.ExpressionSet` and
:class:`~qtlhpc.io.vcf.VariantBlock` hold them.  Covariates are ``(n_covariates, n_samples)`` as
:func:`~qtlhpc.io.expression_readers.read_covariates` returns them.

Missing values, per function:

* :func:`variability_filter`, :func:`standardize`, :func:`maf_filter`: statistics over the observed
  samples of each row;
* :func:`rank_inverse_normal`: NaN stays NaN, the observed values are ranked among themselves;
* :func:`regress_out`: mean-imputes each row (``missing="mean"``, FastQTL's ``imputePhenotypes`` and
  ``imputeGenotypes`` before it residualises) or refuses NaN (``missing="error"``).

Degrees of freedom: after :func:`regress_out` on ``k`` linearly independent covariates the test of one
genotype against one residualised phenotype has ``n - 2 - k`` residual degrees of freedom (``n``
samples, minus the intercept, the ``k`` covariates and the genotype's slope), which is FastQTL's
``df = sample_count - 2 - covariate_count``.  :func:`residual_dof` gives it from the actual rank of
``[1, covariates]`` (FastQTL counts covariate rows, even when they are collinear or a factor expands to
several columns).  Using ``n - 2`` on residuals would overstate the evidence.
"""

from __future__ import annotations

import numpy as np
from scipy.linalg import qr
from scipy.special import ndtri

from qtlhpc.errors import InputError

#: pivots of the covariate QR below this fraction of the largest are dropped as collinear
#: (FastQTL's FASTQTL_QR_TOLERANCE, "the same tolerance as R")
QR_TOLERANCE = 1e-7
INT_METHODS = ("qtltools", "van-der-waerden")


def _as_matrix(values, what: str = "values") -> np.ndarray:
    array = np.asarray(values, dtype=np.float64)
    if array.ndim != 2:
        raise InputError(f"{what} must be a (n_features, n_samples) matrix; got shape {array.shape}",
                         hint="genes or variants in rows, samples in columns")
    return array


# ---------------------------------------------------------------------------- filters
def variability_filter(values, drop_fraction: float = 0.2) -> np.ndarray:
    """Keep mask ``(n_genes,)`` dropping the ``floor(drop_fraction * n_genes)`` least variable genes.

    Liu, de la Fuente & Hoeschele (2008, Genetics 180:1297) drop the 20% least variable e-traits before
    mapping.  Variability here is the sample variance (``ddof=1``) over each gene's observed samples;
    a gene with fewer than two observed values counts as least variable; ties are broken by gene order
    (the earlier gene is dropped first).
    """
    matrix = _as_matrix(values)
    if not 0.0 <= drop_fraction < 1.0:
        raise InputError(f"drop_fraction = {drop_fraction}; expected a fraction in [0, 1)",
                         hint="0.2 drops the 20% least variable genes")
    n_genes = matrix.shape[0]
    n_drop = int(np.floor(drop_fraction * n_genes + 1e-9))
    observed = np.sum(~np.isnan(matrix), axis=1)
    variance = np.full(n_genes, -np.inf)
    enough = observed >= 2
    if enough.any():
        variance[enough] = np.nanvar(matrix[enough], axis=1, ddof=1)
    keep = np.ones(n_genes, dtype=bool)
    keep[np.argsort(variance, kind="stable")[:n_drop]] = False
    return keep


def allele_frequency(dosages) -> np.ndarray:
    """``(n_variants,)`` frequency of the counted (alternative) allele: mean observed dosage / 2."""
    matrix = _as_matrix(dosages, "dosages")
    observed = ~np.isnan(matrix)
    counts = observed.sum(axis=1)
    totals = np.where(observed, matrix, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, totals / (2.0 * counts), np.nan)


def maf_filter(dosages, min_maf: float = 0.01) -> np.ndarray:
    """Keep mask ``(n_variants,)``: minor allele frequency ``min(p, 1 - p) >= min_maf`` over the observed
    samples (a variant with no observed dosage is dropped)."""
    frequency = allele_frequency(dosages)
    minor = np.minimum(frequency, 1.0 - frequency)
    return np.nan_to_num(minor, nan=-1.0) >= min_maf


def missingness_filter(dosages, max_missing: float = 0.05) -> np.ndarray:
    """Keep mask ``(n_variants,)``: the fraction of samples with a missing dosage is ``<= max_missing``."""
    matrix = _as_matrix(dosages, "dosages")
    if not 0.0 <= max_missing <= 1.0:
        raise InputError(f"max_missing = {max_missing}; expected a fraction in [0, 1]")
    if matrix.shape[1] == 0:
        return np.zeros(matrix.shape[0], dtype=bool)
    return np.isnan(matrix).mean(axis=1) <= max_missing


# ---------------------------------------------------------------------------- scaling and ranks
def standardize(values) -> np.ndarray:
    """Each row centred to mean 0 and scaled to unit (population, ``ddof=0``) standard deviation over its
    observed samples; NaN stays NaN; a constant row becomes 0 (FastQTL divides by 1 when the norm is 0)."""
    matrix = _as_matrix(values)
    observed = ~np.isnan(matrix)
    count = np.maximum(observed.sum(axis=1, keepdims=True), 1)
    centred = matrix - np.where(observed, matrix, 0.0).sum(axis=1, keepdims=True) / count
    sd = np.sqrt(np.where(observed, centred**2, 0.0).sum(axis=1, keepdims=True) / count)
    return centred / np.where(sd > 0, sd, 1.0)


def average_ranks(values, axis: int = -1) -> np.ndarray:
    """Ranks 1..m along ``axis`` among the ``m`` observed values, ties averaged (``scipy.stats.rankdata``'s
    ``average``); NaN stays NaN."""
    array = np.moveaxis(np.asarray(values, dtype=np.float64), axis, -1)
    shape = array.shape
    flat = array.reshape(int(np.prod(shape[:-1])), shape[-1])
    order = np.argsort(flat, axis=1, kind="stable")  # NaN sorts last
    ordered = np.take_along_axis(flat, order, axis=1)
    n = flat.shape[1]
    position = np.broadcast_to(np.arange(n), flat.shape)
    new_group = np.ones(flat.shape, dtype=bool)
    new_group[:, 1:] = ordered[:, 1:] != ordered[:, :-1]
    first = np.maximum.accumulate(np.where(new_group, position, 0), axis=1)
    ends_group = np.ones(flat.shape, dtype=bool)
    ends_group[:, :-1] = new_group[:, 1:]
    last = np.flip(np.minimum.accumulate(np.flip(np.where(ends_group, position, n), axis=1), axis=1), axis=1)
    ranks_sorted = (first + last) / 2.0 + 1.0
    ranks_sorted[np.isnan(ordered)] = np.nan
    ranks = np.empty_like(ranks_sorted)
    np.put_along_axis(ranks, order, ranks_sorted, axis=1)
    return np.moveaxis(ranks.reshape(shape), -1, axis)


def rank_inverse_normal(values, axis: int = -1, method: str = "qtltools") -> np.ndarray:
    """Rank-based inverse normal transform along ``axis`` (samples by default): ``Phi^-1(q(rank))``.

    Ranks average ties and count only observed values (``m`` of them); NaN stays NaN.

    * ``qtltools`` (default): ``q = (r - 0.5) / max(r)``, exactly ``--normal`` of QTLtools and FastQTL
      (``normalTransform``: ranks minus 0.5, divided by the largest rank minus 0.5 plus 0.5).  Without a
      tie at the top ``max(r) = m`` and this is the rankit ``(r - 0.5) / m`` (Bliss; c = 1/2 in Beasley,
      Erickson & Allison 2009, Behav. Genet. 39:580).  QTLtools mean-imputes missing values before: call
      :func:`mean_impute` first for the same numbers.
    * ``van-der-waerden``: ``q = r / (m + 1)`` (c = 0), the ``inverse_normal_transform`` of tensorQTL and
      of the GTEx expression pipeline.
    """
    if method not in INT_METHODS:
        raise InputError(f"unknown inverse normal method {method!r}; expected one of {', '.join(INT_METHODS)}")
    ranks = average_ranks(values, axis)
    if ranks.size == 0:
        return ranks
    if method == "qtltools":
        top = np.fmax.reduce(ranks, axis=axis, keepdims=True)  # the largest observed rank; NaN if none
        quantiles = (ranks - 0.5) / top
    else:
        count = np.sum(~np.isnan(ranks), axis=axis, keepdims=True)
        quantiles = ranks / (count + 1.0)
    return ndtri(quantiles)


def mean_impute(values) -> np.ndarray:
    """A copy with each row's NaN replaced by the row's observed mean (FastQTL's imputation of missing
    phenotypes and genotypes); a row with no observed value stays NaN."""
    matrix = _as_matrix(values).copy()
    missing = np.isnan(matrix)
    if missing.any():
        rows = np.flatnonzero(missing.any(axis=1) & ~missing.all(axis=1))
        means = np.nanmean(matrix[rows], axis=1)
        matrix[rows] = np.where(missing[rows], means[:, None], matrix[rows])
    return matrix


# ---------------------------------------------------------------------------- covariates
def covariate_basis(covariates, n_samples: int, tolerance: float = QR_TOLERANCE) -> np.ndarray:
    """Orthonormal basis ``(n_samples, rank)`` of the columns of ``[1, covariates.T]``.

    Column-pivoted Householder QR as FastQTL's residualizer (Eigen ``ColPivHouseholderQR``): pivots
    ``|R_ii| <= tolerance * |R_00|`` count as collinear and are dropped.  NaN covariates are
    mean-imputed first.  ``covariates`` is ``(n_covariates, n_samples)`` (or None for none).
    """
    if covariates is None:
        design = np.ones((n_samples, 1))
    else:
        matrix = _as_matrix(covariates, "covariates")
        if matrix.shape[1] != n_samples:
            raise InputError(f"covariates have {matrix.shape[1]} samples (columns) but the values have {n_samples}",
                             hint="covariates are (n_covariates, n_samples), aligned to the same samples")
        matrix = mean_impute(matrix)
        if np.isnan(matrix).any():
            row = int(np.flatnonzero(np.isnan(matrix).all(axis=1))[0])
            raise InputError(f"covariate row {row} has no observed value", hint="drop that covariate")
        design = np.column_stack([np.ones(n_samples), matrix.T])
    q, r, _ = qr(design, mode="economic", pivoting=True)
    diagonal = np.abs(np.diag(r))
    rank = int(np.sum(diagonal > tolerance * diagonal[0])) if diagonal.size else 0
    return q[:, :rank]


def residual_dof(n_samples: int, covariates=None) -> int:
    """Residual degrees of freedom of one genotype's slope after :func:`regress_out`: ``n - rank([1, C]) - 1``
    (``n - 2 - k`` for ``k`` independent covariates, FastQTL's ``df``)."""
    return n_samples - covariate_basis(covariates, n_samples).shape[1] - 1


def regress_out(values, covariates, missing: str = "mean") -> np.ndarray:
    """Residuals ``(n_features, n_samples)`` of each row on ``[1, covariates]``, as FastQTL residualises
    phenotypes and genotypes: the projection onto the orthogonal complement of the covariates' column
    space, ``Y - (Y Q) Q^T`` with ``Q`` from :func:`covariate_basis`.

    ``missing="mean"`` mean-imputes NaN in each row first (FastQTL); ``"error"`` refuses NaN.  A row with no
    observed value is an error.  Apply it to genotype dosages too, with the same covariates, so that the
    correlation of the residuals is the partial correlation given the covariates; see :func:`residual_dof`.
    """
    if missing not in ("mean", "error"):
        raise InputError(f"unknown missing policy {missing!r}; expected 'mean' or 'error'")
    matrix = _as_matrix(values)
    absent = np.isnan(matrix)
    if absent.any():
        row = int(np.flatnonzero(absent.any(axis=1))[0])
        if missing == "error":
            raise InputError(f"row {row} has {int(absent[row].sum())} missing values ({int(absent.sum())} in all)",
                             hint="impute them (missing='mean', as FastQTL) or drop those samples")
        empty = np.flatnonzero(absent.all(axis=1))
        if len(empty):
            raise InputError(f"row {int(empty[0])} has no observed value ({len(empty)} such rows)",
                             hint="drop rows without data before regressing out covariates")
        matrix = mean_impute(matrix)
    basis = covariate_basis(covariates, matrix.shape[1])
    return matrix - (matrix @ basis) @ basis.T
