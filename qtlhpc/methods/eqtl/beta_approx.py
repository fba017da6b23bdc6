"""Beta approximation of permutation p-values (Ongen et al. 2016, *Bioinformatics* 32:1479; FastQTL).

The best nominal p-value of a gene's cis window, under the null, is close to Beta(a, b) distributed
(Beta(1, M) for M independent variants).  FastQTL learns ``(a, b)`` from the best p-values of the
permutations and reports ``pval_beta = Beta CDF(observed best p; a, b)``, which reaches far below the
``1 / (P + 1)`` floor of the direct permutation p-value.  Conventions, as FastQTL 2.184 (v7, GTEx) does it
(``analysisPermutation.cpp``, ``df.cpp``, ``mle.cpp``) and tensorQTL after it:

* p-values are two-sided t tests of a correlation ``r`` on ``dof`` degrees of freedom,
  ``p = F_sf(dof r^2 / (1 - r^2); 1, dof) = I_{1 - r^2}(dof / 2, 1 / 2)`` (regularised incomplete beta);
* effective ("true") degrees of freedom: the ``dof`` at which the method-of-moments shape1 of the
  permutation best p-values is 1 -- the shape the minimum of independent uniforms has.  FastQTL finds it by
  Nelder-Mead on ``|shape1(dof) - 1|`` from the nominal ``dof`` (20 iterations, simplex size 0.01); here a
  bracketed root (Brent) on ``log dof``, the same root to ~1e-6.  Learned only when the permutation
  correlations vary; otherwise the nominal ``dof`` stays;
* moments use the sample variance (``n - 1``), as FastQTL (tensorQTL uses ``n``);
* Beta(a, b) by maximum likelihood from the moment estimates (FastQTL: GSL Nelder-Mead; here Newton's
  method on the likelihood equations ``psi(a) - psi(a + b) = mean log p``, ``psi(b) - psi(a + b) =
  mean log(1 - p)``, convex in ``(a, b)``); permutation p-values equal to 1 become ``0.99999999`` first,
  as FastQTL; moments only when the window has 2..10 variants, and ``(1, 1)`` for one variant;
* ``pval_beta = I_p(a, b)`` at the observed best correlation's p-value on the true ``dof``.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.optimize
import scipy.special

P_VALUE_ONE = 0.99999999  # FastQTL's stand-in for a permutation p-value of exactly 1 (log(1 - p) finite)
MLE_MIN_VARIANTS = 11  # FastQTL fits by maximum likelihood only with more than 10 variants in cis


def pvalue_from_r(r, dof):
    """Two-sided p-value of correlations ``r`` (any shape) on ``dof`` degrees of freedom (broadcast).

    ``I_{1 - r^2}(dof / 2, 1 / 2)``, which equals ``pf(dof r^2 / (1 - r^2), 1, dof, lower = FALSE)``
    (FastQTL's ``getPvalue``) and the two-sided Student t p-value; ``1 - r^2`` is formed as
    ``(1 - |r|)(1 + |r|)`` so that it keeps its digits when ``|r|`` is close to 1.
    """
    magnitude = np.abs(np.asarray(r, dtype=np.float64))
    one_minus_r2 = np.clip((1.0 - magnitude) * (1.0 + magnitude), 0.0, 1.0)
    return scipy.special.betainc(np.asarray(dof, dtype=np.float64) / 2.0, 0.5, one_minus_r2)


def moment_shapes(pvalues) -> tuple:
    """Method-of-moments Beta shapes ``(a, b)`` of ``pvalues (n,)``, sample variance (``n - 1``)."""
    pvalues = np.asarray(pvalues, dtype=np.float64)
    mean = pvalues.mean()
    variance = pvalues.var(ddof=1)
    shape1 = mean * (mean * (1.0 - mean) / variance - 1.0)
    return shape1, shape1 * (1.0 / mean - 1.0)


def _shape1_minus_one(null_r, log_dof: float) -> float:
    return moment_shapes(pvalue_from_r(null_r, np.exp(log_dof)))[0] - 1.0


def learn_true_dof(null_r, dof: float, span: float = 2.0 ** 12) -> float:
    """Effective degrees of freedom: the root of ``shape1_moments(p(null_r; dof)) = 1`` nearest ``dof``.

    ``null_r (n_permutations,)`` are the best correlations of the permutations.  The secant method on
    ``log dof`` from ``dof`` first; if it wanders, the root is bracketed on a grid of ``dof * 2^k``
    (``|k| <= log2(span)``) outward from ``dof`` and refined by Brent's method on ``log dof``.  Without a sign change on the grid, the grid point with ``|shape1 - 1|`` smallest;
    with constant ``null_r`` (FastQTL's rule), ``dof`` itself.
    """
    null_r = np.asarray(null_r, dtype=np.float64)
    if null_r.size < 2 or np.var(null_r) == 0.0:
        return float(dof)
    log_dof = np.log(dof)
    previous = (log_dof, _shape1_minus_one(null_r, log_dof))
    if previous[1] == 0.0:
        return float(dof)
    root = _secant_root(null_r, log_dof, previous[1])
    if root is not None:
        return float(np.exp(root))
    steps = int(np.log2(span))
    seen = [previous]
    last = {1.0: previous, -1.0: previous}
    for k in range(1, steps + 1):
        for direction in (1.0, -1.0):
            if last[direction] is None:
                continue
            point = log_dof + direction * k * np.log(2.0)
            value = _shape1_minus_one(null_r, point)
            if not np.isfinite(value):
                last[direction] = None
                continue
            seen.append((point, value))
            if np.sign(value) != np.sign(last[direction][1]):
                low, high = sorted((last[direction][0], point))
                root = scipy.optimize.brentq(lambda x: _shape1_minus_one(null_r, x), low, high, xtol=1e-9)
                return float(np.exp(root))
            last[direction] = (point, value)
    best = min(seen, key=lambda item: abs(item[1]) if np.isfinite(item[1]) else np.inf)
    return float(np.exp(best[0]))


def _secant_root(null_r, log_dof: float, value: float, tolerance: float = 1e-9, max_iterations: int = 30):
    """The root by the secant method on ``log dof`` from ``log_dof`` (usually 4-6 evaluations);
    None when it wanders (non-finite values, or more than a factor 16 from the start) or stalls."""
    points = [(log_dof, value), (log_dof - 0.05, _shape1_minus_one(null_r, log_dof - 0.05))]
    for _ in range(max_iterations):
        (x0, f0), (x1, f1) = points[-2], points[-1]
        if not np.isfinite(f1) or f1 == f0:
            return None
        if f1 == 0.0:
            return x1
        x2 = x1 - f1 * (x1 - x0) / (f1 - f0)
        if not np.isfinite(x2) or abs(x2 - log_dof) > np.log(16.0):
            return None
        if abs(x2 - x1) <= tolerance:
            return x2
        points.append((x2, _shape1_minus_one(null_r, x2)))
    return None


def _beta_nll(shape1: float, shape2: float, mean_log: float, mean_log1m: float) -> float:
    return scipy.special.betaln(shape1, shape2) - (shape1 - 1.0) * mean_log - (shape2 - 1.0) * mean_log1m


def fit_beta_mle(pvalues, start=None, max_iterations: int = 200, tolerance: float = 1e-10) -> tuple:
    """Maximum-likelihood Beta shapes ``(a, b)`` of ``pvalues (n,)`` in ``(0, 1]``.

    Newton's method on the (convex) negative log-likelihood per observation
    ``ln B(a, b) - (a - 1) mean log p - (b - 1) mean log(1 - p)``, from ``start`` (default: the moment
    estimates), halving steps that leave ``a, b > 0`` or raise the likelihood's negative.  p-values of 1
    are replaced by ``0.99999999`` (FastQTL).
    """
    pvalues = np.asarray(pvalues, dtype=np.float64)
    pvalues = np.where(pvalues >= 1.0, P_VALUE_ONE, pvalues)
    if np.any(pvalues <= 0.0):
        raise ValueError(f"Beta fit needs p-values in (0, 1], got a minimum of {pvalues.min()}")
    mean_log = np.mean(np.log(pvalues))
    mean_log1m = np.mean(np.log1p(-pvalues))
    shapes = np.asarray(moment_shapes(pvalues) if start is None else start, dtype=np.float64)
    if not np.all(np.isfinite(shapes)) or np.any(shapes <= 0.0):
        shapes = np.array([1.0, 1.0])
    current = _beta_nll(shapes[0], shapes[1], mean_log, mean_log1m)
    for _ in range(max_iterations):
        a, b = shapes
        psi_ab, tri_ab = scipy.special.digamma(a + b), scipy.special.polygamma(1, a + b)
        gradient = np.array([scipy.special.digamma(a) - psi_ab - mean_log,
                             scipy.special.digamma(b) - psi_ab - mean_log1m])
        hessian = np.array([[scipy.special.polygamma(1, a) - tri_ab, -tri_ab],
                            [-tri_ab, scipy.special.polygamma(1, b) - tri_ab]])
        step = np.linalg.solve(hessian, gradient)
        scale = 1.0
        while True:
            trial = shapes - scale * step
            if np.all(trial > 0.0):
                value = _beta_nll(trial[0], trial[1], mean_log, mean_log1m)
                if value <= current + 1e-15 * abs(current):
                    break
            scale *= 0.5
            if scale < 1e-12:
                return float(shapes[0]), float(shapes[1])
        converged = np.all(np.abs(trial - shapes) <= tolerance * np.abs(shapes))
        shapes, current = trial, value
        if converged:
            break
    return float(shapes[0]), float(shapes[1])


@dataclass(frozen=True)
class BetaApproximation:
    """The beta-approximated permutation p-value of one gene, with what it was computed from.

    ``shape1``, ``shape2``: the Beta fitted to the permutation best p-values; ``true_dof``: the effective
    degrees of freedom; ``pval_true_dof``: the observed best p-value on ``true_dof``; ``pval_beta``.
    """

    shape1: float
    shape2: float
    true_dof: float
    pval_true_dof: float
    pval_beta: float


def beta_approximation(observed_r: float, null_r, dof: float, n_variants: int) -> BetaApproximation:
    """FastQTL's beta approximation for one gene.

    ``observed_r``: the best (largest ``|r|``) correlation of the gene; ``null_r (n_permutations,)``:
    the best of each permutation; ``dof``: the nominal degrees of freedom ``n - 2 - n_covariates``;
    ``n_variants``: variants in the cis window (FastQTL's moments-only and ``(1, 1)`` rules).
    """
    null_r = np.asarray(null_r, dtype=np.float64)
    true_dof = learn_true_dof(null_r, dof)
    null_p = pvalue_from_r(null_r, true_dof)
    shape1, shape2 = 1.0, 1.0
    if n_variants > 1 and null_p.mean() != 1.0:
        shape1, shape2 = moment_shapes(null_p)
        if n_variants >= MLE_MIN_VARIANTS:
            shape1, shape2 = fit_beta_mle(null_p, start=(shape1, shape2))
    pval_true_dof = float(pvalue_from_r(observed_r, true_dof))
    pval_beta = float(scipy.special.betainc(shape1, shape2, pval_true_dof))
    return BetaApproximation(shape1, shape2, true_dof, pval_true_dof, pval_beta)
