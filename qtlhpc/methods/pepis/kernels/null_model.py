"""The polygenic null model of the PEPIS scans, diagonalised once (Xu 2013 Genetics 195:1209).

Null model: ``y = X b + g + e``, ``Var(y) = sigma2 (K0 + I)``, where ``K0 = sum_i lambda_i K_i`` already
carries the REML variance ratios.  With ``K0 = U diag(d) U'`` the rotated data ``U'y``, ``U'X`` have the
diagonal covariance ``sigma2 diag(d + 1)``.

Every scan reduces a tested column set ``G (n_individuals, q)`` to small matrices in the metric of
``V0^-1 = (K0 + I)^-1`` with the covariates projected out (see :class:`NullBackground`):

* ``L = diag(d + 1)^-1/2 U'`` whitens: ``L'L = V0^-1``;
* ``Q`` (n, c) is an orthonormal basis of ``L X``, and ``L~ = (I - Q Q') L`` whitens and removes ``X``;
* ``r = L~ y`` is the whitened residual of the null GLS fit, ``rss0 = r'r``.

Then ``G~'G~`` with ``G~ = L~ G`` is ``G' P0 G`` (``P0`` the GLS projector of the null), ``Q'L G`` gives
the covariate part of ``G' V0^-1 G``, and ``(L'r)' G`` is ``G' P0 y``.  Since only Gram matrices of
``G~`` are used, ``L~`` is replaced by the upper-triangular ``T`` of its QR decomposition (``T'T = L~'L~``):
the one large product per column block is then a triangular multiply (BLAS trmm, about half the flops
of a GEMM), plus a thin GEMM for ``[Q'L G | G'L'r]`` (:func:`reduce_columns`).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.linalg
import scipy.linalg.blas

from qtlhpc.errors import InputError


@dataclass(frozen=True)
class NullRotation:
    """Eigendecomposition ``K0 = eigvecs diag(eigvals) eigvecs'`` of the combined kinship.

    ``eigvecs (n_individuals, n_individuals)``, ``eigvals (n_individuals,)`` (negative round-off clipped
    to 0).  Rotated data ``eigvecs' y`` have covariance ``sigma2 diag(eigvals + 1)`` under the null.
    """

    eigvecs: np.ndarray
    eigvals: np.ndarray

    @property
    def n_individuals(self) -> int:
        return self.eigvals.shape[0]

    @property
    def variances(self) -> np.ndarray:
        """``d + 1``, the null variances (over sigma2) of the rotated observations."""
        return self.eigvals + 1.0


def rotate(K0, X) -> NullRotation:
    """One symmetric eigendecomposition of ``K0 (n_individuals, n_individuals)``.

    ``X (n_individuals, n_covariates)`` is only checked for shape here; rotate it with
    :func:`rotate_columns`.
    """
    K0 = np.asarray(K0, dtype=np.float64)
    X = np.asarray(X, dtype=np.float64)
    if K0.ndim != 2 or K0.shape[0] != K0.shape[1]:
        raise InputError(f"the combined kinship must be a square matrix, got shape {K0.shape}")
    if X.ndim != 2 or X.shape[0] != K0.shape[0]:
        raise InputError(f"covariates X must be (n_individuals={K0.shape[0]}, n_covariates), got shape {X.shape}")
    if not np.all(np.isfinite(K0)):
        raise InputError("the combined kinship contains NaN or infinite values")
    eigvals, eigvecs = scipy.linalg.eigh((K0 + K0.T) / 2.0)
    scale = max(1.0, float(np.max(np.abs(eigvals))))
    assert eigvals.min() > -1e-8 * scale, f"kinship is not positive semi-definite (eigenvalue {eigvals.min()})"
    return NullRotation(eigvecs=eigvecs, eigvals=np.clip(eigvals, 0.0, None))


def rotate_columns(rotation: NullRotation, columns) -> np.ndarray:
    """``U' A`` for ``columns A (n_individuals, ...)``: one GEMM over all columns."""
    columns = np.asarray(columns, dtype=np.float64)
    assert columns.shape[0] == rotation.n_individuals
    return rotation.eigvecs.T @ columns.reshape(columns.shape[0], -1)


@dataclass(frozen=True)
class NullBackground:
    """The null fit and the matrices that reduce tested columns to small Gram matrices.

    ``triangle (n_individuals, n_individuals)``: upper-triangular ``T`` with ``T'T = L~'L~ = P0``;
    ``side (n_individuals, n_covariates + 1)`` = ``[(Q'L)' | L'r]``: ``G' side`` gives the covariate
    loadings ``Q'L G`` and the scores ``G' P0 y``.
    """

    triangle: np.ndarray
    side: np.ndarray
    n_individuals: int
    n_covariates: int
    rss0: float
    loglik0: float
    log_det_v0: float
    fixed_effects0: np.ndarray

    @property
    def sigma2_ml(self) -> float:
        """ML estimate of sigma2 under the null: ``rss0 / n``."""
        return self.rss0 / self.n_individuals


def null_background(rotation: NullRotation, y_rot, X_rot) -> NullBackground:
    """ML fit of the null ``y ~ N(X b, sigma2 (K0 + I))`` from rotated data; builds the projector.

    ``y_rot (n,)`` = ``U'y``, ``X_rot (n, c)`` = ``U'X``.  The log-likelihood is the full Gaussian one,
    ``-n/2 log(2 pi sigma2) - 1/2 log|K0 + I| - n/2`` at ``sigma2 = rss0 / n``.
    """
    y_rot = np.asarray(y_rot, dtype=np.float64).reshape(-1)
    X_rot = np.asarray(X_rot, dtype=np.float64)
    n = rotation.n_individuals
    assert y_rot.shape == (n,) and X_rot.ndim == 2 and X_rot.shape[0] == n
    inv_sd = 1.0 / np.sqrt(rotation.variances)
    whitener = inv_sd[:, None] * rotation.eigvecs.T                  # L = D^-1/2 U'  (n, n)
    x_white = inv_sd[:, None] * X_rot
    basis, triangle = np.linalg.qr(x_white)                           # Q (n, c)
    rank = int(np.sum(np.abs(np.diag(triangle)) > 1e-10 * max(1.0, np.abs(triangle).max())))
    if rank < X_rot.shape[1]:
        raise InputError(f"the covariate matrix X has rank {rank} < {X_rot.shape[1]} columns: "
                         "drop collinear covariates")
    y_white = inv_sd * y_rot
    coef = basis.T @ y_white
    residual = y_white - basis @ coef
    rss0 = float(residual @ residual)
    x_loadings = basis.T @ whitener                                    # Q'L (c, n)
    projected = whitener - basis @ x_loadings                          # L~ (n, n)
    y_loading = whitener.T @ residual                                  # L'r (n,)
    p0_factor = np.asfortranarray(scipy.linalg.qr(projected, mode="r")[0])
    side = np.ascontiguousarray(np.hstack([x_loadings.T, y_loading[:, None]]))
    log_det_v0 = float(np.sum(np.log(rotation.variances)))
    loglik0 = -0.5 * n * (np.log(2.0 * np.pi * rss0 / n) + 1.0) - 0.5 * log_det_v0
    fixed0 = scipy.linalg.solve_triangular(triangle, coef)
    return NullBackground(triangle=p0_factor, side=side, n_individuals=n, n_covariates=X_rot.shape[1], rss0=rss0,
                          loglik0=float(loglik0), log_det_v0=log_det_v0, fixed_effects0=fixed0)


def reduce_columns(background: NullBackground, columns_t: np.ndarray):
    """Reduce tested columns, given as rows ``columns_t (q, n_units, n_individuals)`` (original space).

    Returns ``rotated (q, n_units, n)`` (rows ``T g``, whose inner products are ``g' P0 g'``) and
    ``side (q, n_units, c + 1)`` (``[Q'L g | g' P0 y]``).  A C-contiguous float64 ``columns_t`` is
    overwritten by ``rotated`` (the triangular multiply works in place); anything else is copied first.
    """
    columns_t = np.ascontiguousarray(columns_t, dtype=np.float64)
    q, n_units, n = columns_t.shape
    assert n == background.n_individuals
    flat = columns_t.reshape(q * n_units, n)
    side = flat @ background.side
    if flat.shape[0]:
        rotated_f = scipy.linalg.blas.dtrmm(1.0, background.triangle, flat.T, side=0, lower=0, overwrite_b=1)
        assert np.shares_memory(rotated_f, flat)
    return flat.reshape(q, n_units, n), side.reshape(q, n_units, -1)
