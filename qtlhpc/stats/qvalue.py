"""Storey q-values exactly as Bioconductor ``qvalue`` 2.30.0 computes them (Storey & Tibshirani 2003, *PNAS*
100:9440; Storey 2002, *JRSS B* 64:479).

Three public functions, arrays in and arrays out (no files, no MPI):

* :func:`empirical_pvalues` -- ``empPvals(stat, stat0, pool)``: pooled, ``p_i = max(#{null > s_i}, 1) / m0``
  (strict ``>``, as qvalue's code does although its help page says "greater than or equal"); per test
  (``pool=False``), ``p_i = max(mean_b(null_ib >= s_i), 1 / B)``.
* :func:`pi0_estimate` -- ``pi0est(p, lambda, pi0.method, smooth.df)``: ``pi0(lambda) = #{p >= lambda} /
  (m (1 - lambda))`` on the grid 0.05, 0.10, ..., 0.95, then

  - ``"smoother"`` (default): ``smooth.spline(lambda, pi0(lambda), df = 3)`` and its fitted value at the
    largest lambda, capped at 1;
  - ``"bootstrap"``: Robinson's closed form -- ``minpi0`` = 10% quantile (type 7) of ``pi0(lambda)``,
    ``mse = W / (m^2 (1 - lambda)^2) (1 - W / m) + (pi0(lambda) - minpi0)^2`` with ``W = #{p >= lambda}``,
    ``pi0 = min(pi0(lambda) at the smallest mse, 1)``;
  - one lambda: ``pi0 = min(#{p >= lambda} / m / (1 - lambda), 1)``, whatever the method.

* :func:`qvalues` -- ``qvalue(p, pi0)``: ``q_i = pi0 * BH_i``, the Benjamini-Hochberg adjusted p-value
  (``min_{j: p_j >= p_i} m p_j / rank_max(p_j)``, capped at 1) times pi0; ``pi0=1`` gives BH itself.

The smoother is a port of R's ``smooth.spline`` (stats ``smspline.R``, ``sbart.c``, ``sslvrg.f``,
``sgram.f``, ``bvalue.f``; re-implemented from their documented algorithm, not copied): cubic B-splines with
a knot at every lambda (a thinned set for 50 or more lambdas, as R), the penalty Gram matrix as R builds it
(which weights the quadratic term of each piecewise-linear B'' product by 0.333, not 1/3),
``lambda_pen = r 256^(3 spar - 1)`` with ``r = tr(X'X) / tr(Sigma)`` over R's index range, and R's
golden-section/parabolic search for ``spar`` in [-1.5, 1.5] on ``3 + (df - tr S(spar))^2`` with its
stopping rule (tol 1e-4, eps 2e-8).  As in R, the returned spline is the one fitted at the *last* spar the
search evaluated.  The search takes R's path step for step (checked against ``control.spar = list(trace =
TRUE)``), so against R 4.2.2 / qvalue 2.30.0 the smoother agrees to 1e-12 relative with up to 49 lambdas
(default grid: worst 7.5e-14 in pi0 and 2.4e-13 in the fitted values over 200 random mixtures of 30 to
10000 p-values, 20% of them rounded to ties) and to 5e-11 with 50 or more (thinned knots make the penalised
system worse conditioned, and R's banded LINPACK solve rounds differently: worst 1.9e-11 over 100 mixtures
with 95 lambdas).  A natural spline solved to exactly ``df = 3`` (scipy's ``make_smoothing_spline``) is
only within 2.7e-6 to 9.2e-6, because R stops its spar search early.

Missing p-values: R's ``qvalue``/``pi0est`` silently drop NA p-values.  Here NaN is refused by default
(``nan_policy="raise"``: an :class:`~qtlhpc.errors.InputError` saying how many and where the first is),
because a NaN p-value usually means a failed test upstream; ``nan_policy="omit"`` does what R does (NaN
is not counted among the ``m`` tests and gets a NaN q-value).

Errors are R's, as :class:`~qtlhpc.errors.InputError` with the R wording quoted: p-values outside [0, 1];
an estimated ``pi0 <= 0``; 2 or 3 lambdas; lambdas outside [0, 1); a given ``pi0`` outside (0, 1].  The
largest p-value below the largest lambda is refused with the message of later qvalue versions ("maximum
p-value is smaller than lambda range"); 2.30.0 itself has no such check and fails further on (NA
``pi0(lambda)``: smooth.spline's "missing or infinite values", or ``pi0 <= 0`` for one lambda).  With
``pool=False`` the null statistics must be ``(n_tests, n_null)``; R also takes the transpose, and transposes
a square matrix.  Not ported: ``smooth.log.pi0``, ``pfdr``, ``lfdr`` and ``qvalue_truncp``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numpy as np
import scipy.linalg
from scipy.interpolate import BSpline

from qtlhpc.errors import InputError, did_you_mean
from qtlhpc.stats.fdr import benjamini_hochberg

__all__ = ["DEFAULT_LAMBDAS", "Pi0Estimate", "QValueResult", "empirical_pvalues", "pi0_estimate", "qvalues"]

#: R's ``seq(0.05, 0.95, 0.05)``: ``from + (0:n) * by``, capped at ``to`` -- the same doubles, bit for bit.
DEFAULT_LAMBDAS = np.minimum(0.05 + np.arange(19) * 0.05, 0.95)
METHODS = ("smoother", "bootstrap")
NAN_POLICIES = ("raise", "omit")

# R's smooth.spline(control.spar = list()) defaults and sbart.c constants.
_SPAR_LOW, _SPAR_HIGH, _SPAR_TOL, _SPAR_EPS, _SPAR_MAXIT = -1.5, 1.5, 1e-4, 2e-8, 500
_GOLDEN = 0.381966011250105151795413165634  # (3 - sqrt(5)) / 2
_BIG = 1e100
_LEVERAGE_EDGE = 1e-11  # sslvrg.f evaluates the leverage of a point at the right end at end - 1e-11
_GRAM_THIRD = 0.3330  # sgram.f's stand-in for 1/3


@dataclass(frozen=True)
class Pi0Estimate:
    """The proportion of true null hypotheses, as ``pi0est`` returns it.

    ``pi0``: the estimate, in (0, 1].  ``lambdas (n_lambda,)``: the sorted lambda grid.
    ``pi0_lambda (n_lambda,)``: ``#{p >= lambda} / (m (1 - lambda))``, uncapped (R's ``pi0.lambda``).
    ``fitted (n_lambda,)``: the smoothing spline at each lambda (R's ``pi0.smooth``); None unless
    ``method == "smoother"``.  ``method``: ``"smoother"``, ``"bootstrap"`` or ``"single lambda"``.
    """

    pi0: float
    lambdas: np.ndarray
    pi0_lambda: np.ndarray
    fitted: Optional[np.ndarray]
    method: str


@dataclass(frozen=True)
class QValueResult:
    """q-values of one family of tests.

    ``qvalues``: same shape as the p-values given, NaN where a p-value was NaN (``nan_policy="omit"``).
    ``pi0``: the pi0 used.  ``pi0_estimate``: how it was estimated; None when ``pi0`` was given.
    ``n_tests``: ``m``, the number of (non-NaN) p-values.
    """

    qvalues: np.ndarray
    pi0: float
    pi0_estimate: Optional[Pi0Estimate]
    n_tests: int


# ---------------------------------------------------------------------------------------------- checks


def _where(flat_index: int, shape) -> str:
    return str(flat_index) if len(shape) <= 1 else str(tuple(int(i) for i in np.unravel_index(flat_index, shape)))


def _refuse_nan(values: np.ndarray, what: str, hint: str = "remove them first") -> None:
    missing = np.flatnonzero(np.isnan(values.reshape(-1)))
    if missing.size:
        raise InputError(f"{missing.size} of {values.size} {what} are NaN, the first at index "
                         f"{_where(missing[0], values.shape)}; {hint}")


def _tested_pvalues(pvalues, nan_policy: str):
    """``(p (shape), flat indices of the non-NaN entries, their values (m,))`` after R's checks."""
    if nan_policy not in NAN_POLICIES:
        raise InputError(f"nan_policy={nan_policy!r} is not one of {NAN_POLICIES}"
                         f"{did_you_mean(nan_policy, NAN_POLICIES)}")
    p = np.asarray(pvalues, dtype=np.float64)
    if nan_policy == "raise":
        _refuse_nan(p, "p-values", "R's qvalue drops NA p-values: pass nan_policy='omit' to do the same, or "
                                   "remove them first")
    tested = np.flatnonzero(~np.isnan(p.reshape(-1)))
    values = p.reshape(-1)[tested]
    if values.size == 0:
        raise InputError(f"no p-values to adjust (given shape {p.shape}, {p.size - tested.size} NaN)")
    outside = np.flatnonzero((values < 0) | (values > 1))
    if outside.size:
        first = tested[outside[0]]
        raise InputError(f"p-values must lie in [0, 1] (R: 'p-values not in valid range [0, 1]'): "
                         f"{outside.size} do not, the first p[{_where(first, p.shape)}] = {values[outside[0]]!r}")
    return p, tested, values


def _checked_lambdas(lambdas) -> np.ndarray:
    grid = np.sort(np.atleast_1d(np.asarray(lambdas, dtype=np.float64)).reshape(-1))
    if grid.size == 0 or np.isnan(grid).any():
        raise InputError(f"lambdas must be one value or at least 4 values in [0, 1), got {grid.tolist()}")
    if 1 < grid.size < 4:
        raise InputError(f"{grid.size} lambdas given ({grid.tolist()}): if there is more than one lambda, "
                         "you need at least 4 values (as R's pi0est)")
    if grid[0] < 0 or grid[-1] >= 1:
        raise InputError(f"lambdas must lie in [0, 1) (R: 'Lambda must be within [0, 1)'), got "
                         f"{grid[0]!r} .. {grid[-1]!r}")
    if grid.size > 1 and np.any(np.diff(grid) == 0):
        raise InputError(f"lambdas must be distinct, got {grid.tolist()}")
    return grid


def _r_mean_of_counts(counts, n: int) -> np.ndarray:
    """R's ``mean()`` of a logical vector: the count divided by ``n`` in long double, rounded to double."""
    return (np.asarray(counts, dtype=np.longdouble) / np.longdouble(n)).astype(np.float64)


# -------------------------------------------------------------------------------------- empirical p


def empirical_pvalues(statistics, null_statistics, pool: bool = True) -> np.ndarray:
    """Empirical p-values of observed ``statistics`` (larger = more significant), as qvalue's ``empPvals``.

    ``pool=True``: ``null_statistics`` of any shape are one pooled null of ``m0`` values;
    ``p_i = max(#{null > s_i}, 1) / m0`` (strict ``>``: a null value tied with ``s_i`` does not count).
    ``pool=False``: ``statistics (n_tests,)`` and ``null_statistics (n_tests, n_null)``, row ``i`` the null
    of test ``i``; ``p_i = max(#{b: null_ib - s_i >= 0} / n_null, 1 / n_null)`` (``>=``, R's code).
    Returns p-values with the shape of ``statistics``.  NaN statistics are refused.
    """
    observed = np.asarray(statistics, dtype=np.float64)
    null = np.asarray(null_statistics, dtype=np.float64)
    _refuse_nan(observed, "statistics")
    _refuse_nan(null, "null statistics")
    if null.size == 0:
        raise InputError(f"null_statistics is empty (shape {null.shape}); give at least one null statistic")
    if pool:
        ordered = np.sort(null.reshape(-1))
        greater = ordered.size - np.searchsorted(ordered, observed, side="right")
        return np.maximum(greater, 1) / ordered.size
    if observed.ndim != 1:
        raise InputError(f"statistics have shape {observed.shape}; with pool=False expected (n_tests,)")
    n_tests = observed.size
    if null.ndim != 2 or null.shape[0] != n_tests:
        hint = ("; it looks transposed: pass null_statistics.T" if null.ndim == 2 and null.shape[1] == n_tests
                else "")
        raise InputError(f"null_statistics have shape {null.shape}; with pool=False expected "
                         f"(n_tests, n_null) = ({n_tests}, n_null){hint}")
    at_least = np.count_nonzero((null - observed[:, None]) >= 0, axis=1)
    return np.maximum(_r_mean_of_counts(at_least, null.shape[1]), 1.0 / null.shape[1])


# -------------------------------------------------------------------------------------------- pi0


def pi0_estimate(pvalues, lambdas=DEFAULT_LAMBDAS, method: str = "smoother", smooth_df: float = 3.0,
                 nan_policy: str = "raise") -> Pi0Estimate:
    """Storey's pi0 from ``pvalues`` (any shape, one family), as qvalue 2.30.0's ``pi0est``.

    ``lambdas``: one value (the single-lambda estimate) or at least 4 values in [0, 1); default R's
    ``seq(0.05, 0.95, 0.05)``.  ``method``: ``"smoother"`` or ``"bootstrap"`` (see the module docstring).
    ``smooth_df``: degrees of freedom of the smoothing spline, in (1, n_lambda].
    """
    if method not in METHODS:
        raise InputError(f"method={method!r} is not one of {METHODS}{did_you_mean(method, METHODS)}")
    _, _, p = _tested_pvalues(pvalues, nan_policy)
    grid = _checked_lambdas(lambdas)
    if p.max() < grid[-1]:
        raise InputError(f"maximum p-value is smaller than lambda range: the largest p-value is {p.max()!r}, "
                         f"the largest lambda {grid[-1]!r}; use lambdas below the largest p-value, or give pi0 "
                         "(pi0=1 is Benjamini-Hochberg)")
    m = p.size
    ordered = np.sort(p)
    at_least = m - np.searchsorted(ordered, grid, side="left")  # W = #{p >= lambda}
    if grid.size == 1:
        pi0_lambda = _r_mean_of_counts(at_least, m) / (1.0 - grid)
        estimate = Pi0Estimate(min(float(pi0_lambda[0]), 1.0), grid, pi0_lambda, None, "single lambda")
    else:
        pi0_lambda = at_least / (m * (1.0 - grid))
        if method == "bootstrap":
            estimate = Pi0Estimate(_bootstrap_pi0(pi0_lambda, at_least, grid, m), grid, pi0_lambda, None, method)
        else:
            if not 1 < smooth_df <= grid.size:
                raise InputError(f"smooth_df={smooth_df!r} must lie in (1, {grid.size}] (1 < df <= number of "
                                 "lambdas, as smooth.spline requires)")
            fitted = _smooth_spline_fitted(grid, pi0_lambda, float(smooth_df))
            estimate = Pi0Estimate(min(float(fitted[-1]), 1.0), grid, pi0_lambda, fitted, method)
    if estimate.pi0 <= 0:
        raise InputError(f"the estimated pi0 is {estimate.pi0!r} <= 0 (R: 'The estimated pi0 <= 0'); check "
                         "that the p-values are valid, or use a different range of lambdas")
    return estimate


def _r_quantile_type7(values: np.ndarray, probability: float) -> float:
    """R's ``quantile(values, probability)`` (type 7), with R's operation order."""
    ordered = np.sort(values)
    index = 1 + (ordered.size - 1) * probability
    low, high = math.floor(index), math.ceil(index)
    result = ordered[low - 1]
    if index > low and ordered[high - 1] != result:
        fraction = index - low
        result = (1 - fraction) * result + fraction * ordered[high - 1]
    return float(result)


def _bootstrap_pi0(pi0_lambda: np.ndarray, at_least: np.ndarray, grid: np.ndarray, m: int) -> float:
    """Robinson's closed form of Storey's bootstrap choice of lambda (``pi0.method = "bootstrap"``)."""
    minimum = _r_quantile_type7(pi0_lambda, 0.1)
    one_minus = 1.0 - grid
    mse = (at_least / (float(m) * m * (one_minus * one_minus))) * (1.0 - at_least / m) + \
        (pi0_lambda - minimum) * (pi0_lambda - minimum)
    return min(float(pi0_lambda[mse == mse.min()].min()), 1.0)


# ------------------------------------------------------------------------------------------ q-values


def qvalues(pvalues, pi0: Optional[float] = None, *, lambdas=DEFAULT_LAMBDAS, method: str = "smoother",
            smooth_df: float = 3.0, nan_policy: str = "raise") -> QValueResult:
    """Storey q-values of ``pvalues`` (any shape, one family of tests), as qvalue 2.30.0's ``qvalue``.

    ``pi0``: None to estimate it with :func:`pi0_estimate` (``lambdas``, ``method``, ``smooth_df``), or a
    value in (0, 1] (1 gives Benjamini-Hochberg).  ``q_i = pi0 * BH_i`` (formula in the module docstring).
    """
    p, tested, values = _tested_pvalues(pvalues, nan_policy)
    if pi0 is None:
        estimate = pi0_estimate(values, lambdas, method, smooth_df)
        pi0_used = estimate.pi0
    else:
        pi0_used, estimate = float(pi0), None
        if not 0 < pi0_used <= 1:
            raise InputError(f"pi0={pi0!r} must lie in (0, 1] (R: 'pi0 is not (0,1]'); pi0=1 is "
                             "Benjamini-Hochberg, or leave pi0=None to estimate it")
    q = np.full(p.size, np.nan)
    q[tested] = pi0_used * benjamini_hochberg(values)
    return QValueResult(q.reshape(p.shape), pi0_used, estimate, int(values.size))


# ------------------------------------------------------------- R's smooth.spline(x, y, df), unit weights


def _n_inner_knots(n: int) -> int:
    """R's ``.nknots.smspl(n)``: all points below 50, then a slowly growing number."""
    if n < 50:
        return n
    a1, a2, a3, a4 = math.log2(50), math.log2(100), math.log2(140), math.log2(200)
    if n < 200:
        return math.trunc(2.0 ** (a1 + (a2 - a1) * (n - 50) / 150))
    if n < 800:
        return math.trunc(2.0 ** (a2 + (a3 - a2) * (n - 200) / 600))
    if n < 3200:
        return math.trunc(2.0 ** (a3 + (a4 - a3) * (n - 800) / 2400))
    return math.trunc(200 + (n - 3200) ** 0.2)


def _knot_positions(n: int, n_knots: int) -> np.ndarray:
    """0-based indices R takes as ``xbar[seq.int(1, n, length.out = n_knots)]`` (R truncates them)."""
    positions = np.empty(n_knots)
    positions[0], positions[-1] = 1.0, float(n)
    step = (n - 1.0) / (n_knots - 1)
    for i in range(1, n_knots - 1):
        positions[i] = 1.0 + i * step if i < n_knots // 2 else n - (n_knots - 1 - i) * step
    return positions.astype(np.int64) - 1


@dataclass(frozen=True)
class _SplineSystem:
    """``X'X``, ``X'y``, the penalty ``Sigma``, the leverage design and R's trace ratio for one data set."""

    knots: np.ndarray        # (n_coef + 4,)
    xtx: np.ndarray          # (n_coef, n_coef)
    xty: np.ndarray          # (n_coef,)
    gram: np.ndarray         # (n_coef, n_coef)
    leverage_basis: np.ndarray  # (n, n_coef)
    ratio: float


def _spline_system(xbar: np.ndarray, y: np.ndarray) -> _SplineSystem:
    n = xbar.size
    n_knots = _n_inner_knots(n)
    inner = xbar if n_knots == n else xbar[_knot_positions(n, n_knots)]
    knots = np.concatenate([np.repeat(xbar[0], 3), inner, np.repeat(xbar[-1], 3)])
    n_coef = n_knots + 2
    basis = BSpline(knots, np.eye(n_coef), 3, extrapolate=True)
    design = basis(xbar)
    # sslvrg.f: a point at or beyond knot[n_coef] (the right end) gets its leverage at end - 1e-11
    right = knots[n_coef]
    leverage_basis = basis(np.where(xbar >= right, right - _LEVERAGE_EDGE, xbar))
    gram = _r_penalty_gram(basis, np.unique(knots))
    xtx = design.T @ design
    diagonal = slice(2, n_coef - 3)  # sbart.c: tr(X'WX) / tr(Sigma) over 1-based indices 3 .. nk-3
    ratio = float(np.cumsum(np.diag(xtx)[diagonal])[-1] / np.cumsum(np.diag(gram)[diagonal])[-1])
    return _SplineSystem(knots, xtx, design.T @ y, gram, leverage_basis, ratio)


def _r_penalty_gram(basis: BSpline, breakpoints: np.ndarray) -> np.ndarray:
    """``Sigma_jk = int B_j'' B_k''`` as sgram.f computes it: on each interval B'' is linear, ``a + b s``
    (``s`` in [0, 1]), and the product integrates as ``h (a_j a_k + (b_j a_k + a_j b_k) / 2 + 0.333 b_j b_k)``."""
    second = basis.derivative(2)
    left, right = breakpoints[:-1], breakpoints[1:]
    start = second(left)              # (n_intervals, n_coef)
    slope = second(right) - start     # B'' is continuous at simple knots, so either side's piece will do
    width = (right - left)[:, None, None]
    products = (start[:, :, None] * start[:, None, :]
                + (slope[:, :, None] * start[:, None, :] + start[:, :, None] * slope[:, None, :]) * 0.5
                + slope[:, :, None] * slope[:, None, :] * _GRAM_THIRD)
    return np.sum(width * products, axis=0)


def _penalised_fit(system: _SplineSystem, penalty: float):
    """Coefficients and ``df = tr S`` of the spline minimising ``|y - X c|^2 + penalty c' Sigma c``."""
    factor = np.linalg.cholesky(system.xtx + penalty * system.gram)
    coefficients = scipy.linalg.cho_solve((factor, True), system.xty)
    half = scipy.linalg.solve_triangular(factor, system.leverage_basis.T, lower=True)
    leverages = np.einsum("ij,ij->j", half, half)
    return coefficients, float(np.cumsum(leverages)[-1])


def _sign_of(value: float, sign_source: float) -> float:
    """Fortran ``sign``: ``|value|`` with the sign of ``sign_source`` (``+`` for 0)."""
    return abs(value) if sign_source >= 0 else -abs(value)


def _minimise_spar(criterion, low: float = _SPAR_LOW, high: float = _SPAR_HIGH, tol: float = _SPAR_TOL,
                   eps: float = _SPAR_EPS, max_iterations: int = _SPAR_MAXIT) -> float:
    """Brent's golden-section/parabolic minimiser as sbart.c runs it (its stopping rule and update order);
    returns the best ``spar``.  ``criterion(spar)`` is evaluated in the same sequence as R does."""
    a, b = low, high
    x = w = v = a + _GOLDEN * (b - a)
    d = e = 0.0
    fx = fw = fv = criterion(x)
    iterations = 0
    while True:
        middle = (a + b) * 0.5
        tol1 = eps * abs(x) + tol / 3.0
        tol2 = tol1 * 2.0
        iterations += 1
        if abs(x - middle) <= tol2 - (b - a) * 0.5 or iterations > max_iterations:
            return x
        golden = abs(e) <= tol1 or fx >= _BIG or fv >= _BIG or fw >= _BIG
        if not golden:
            r = (x - w) * (fx - fv)
            q = (x - v) * (fx - fw)
            p = (x - v) * q - (x - w) * r
            q = (q - r) * 2.0
            if q > 0.0:
                p = -p
            q = abs(q)
            r, e = e, d
            golden = abs(p) >= abs(0.5 * q * r) or q == 0.0 or p <= q * (a - x) or p >= q * (b - x)
            if not golden:
                d = p / q
                u = x + d
                if u - a < tol2 or b - u < tol2:
                    d = _sign_of(tol1, middle - x)
        if golden:
            e = (a - x) if x >= middle else (b - x)
            d = _GOLDEN * e
        u = x + (d if abs(d) >= tol1 else _sign_of(tol1, d))
        fu = criterion(u)
        if not math.isfinite(fu):
            fu = 2.0 * _BIG
        if fu <= fx:
            if u >= x:
                a = x
            else:
                b = x
            v, fv, w, fw, x, fx = w, fw, x, fx, u, fu
        else:
            if u < x:
                a = u
            else:
                b = u
            if fu <= fw or w == x:
                v, fv, w, fw = w, fw, u, fu
            elif fu <= fv or v == x or v == w:
                v, fv = u, fu


def _r_bvalue(knots: np.ndarray, coefficients: np.ndarray, x: float) -> float:
    """A cubic spline at ``x`` in [knots[3], knots[-1]] by de Boor's recurrence in bvalue.f's operation
    order (at the right end it uses the last interval, as bvalue.f)."""
    n_coef = coefficients.size
    if x == knots[n_coef] and knots[n_coef] == knots[-1]:
        i = n_coef  # 1-based interval index
    else:
        i = int(np.searchsorted(knots, x, side="right"))
    below = [x - knots[i - j] for j in (1, 2, 3)]      # dm(j) = x - t(i+1-j)
    above = [knots[i + j - 1] - x for j in (1, 2, 3)]  # dp(j) = t(i+j) - x
    a = [float(c) for c in coefficients[i - 4:i]]
    for j in (1, 2, 3):
        low = 4 - j
        for jj in range(4 - j):
            a[jj] = (a[jj + 1] * below[low - 1] + a[jj] * above[jj]) / (below[low - 1] + above[jj])
            low -= 1
    return a[0]


def _smooth_spline_fitted(x: np.ndarray, y: np.ndarray, df: float) -> np.ndarray:
    """``predict(smooth.spline(x, y, df = df), x)$y`` for strictly increasing ``x`` and unit weights."""
    xbar = (x - x[0]) / (x[-1] - x[0])  # as smooth.spline scales x, and predict() scales it again
    system = _spline_system(xbar, y)
    last = {}

    def criterion(spar: float) -> float:
        penalty = system.ratio * math.pow(16.0, spar * 6.0 - 2.0)
        try:
            last["coefficients"], trace = _penalised_fit(system, penalty)
        except np.linalg.LinAlgError:
            raise InputError(f"the pi0 smoother could not be fitted (R's smooth.spline fails too: 'smoothing "
                             f"parameter value too {'small' if spar < 0.5 else 'large'}'); use "
                             "method='bootstrap' or one lambda") from None
        difference = df - trace
        return 3.0 + difference * difference

    _minimise_spar(criterion)
    # R keeps the coefficients of the last spar evaluated, which need not be the best one returned.
    return np.array([_r_bvalue(system.knots, last["coefficients"], value) for value in xbar])
