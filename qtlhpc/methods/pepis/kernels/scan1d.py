"""One-locus scan of the PEPIS model: additive and dominance effects over a polygenic background.

Model per marker ``k`` with codes ``z_k`` (additive), ``w_k`` (dominance) (Xu 2013 Genetics 195:1209;
Zhang et al. 2016 PLoS Comput Biol 12:e1004925):

    y = X b + z_k a + w_k d + g + e,    Var(g + e) = sigma2 (K0 + I)

* random model (PEPIS): ``a ~ N(0, sigma2 phi_a)``, ``d ~ N(0, sigma2 phi_d)``; b, sigma2 and
  ``phi >= 0`` by maximum likelihood (ML; the null is the ML fit with phi = 0); LRT = 2 (l1 - l0);
  effects are BLUPs with their prediction-error SE.
* fixed model: a and d fixed (GLS, sigma2 re-estimated by ML); LRT with df = rank of the tested
  columns after removing X (2, fewer when w is constant as in RILs or z and w are collinear).

Both reduce every marker, after one GEMM over a block of markers, to ``q x q`` problems (q = 2 here,
q = 4 in :mod:`qtlhpc.methods.pepis.kernels.scan2d`) solved by the kernels of this module:

    M~ = G' P0 G,   M = G' V0^-1 G,   v = G' P0 y,   s = y' P0 y   (P0: the null GLS projector)

    -2 l1(phi) + const = n log(s - v' (Phi^-1 + M~)^-1 v) + log|I + Phi M|      (profiled over b, sigma2)
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Optional

import numba
import numpy as np

from qtlhpc.methods.pepis.kernels.null_model import NullBackground, reduce_columns
from qtlhpc.stats.chi2 import chi2_tail
from qtlhpc.errors import InputError

LN10 = math.log(10.0)
MODELS = ("random", "fixed")
PVALUE_METHODS = ("mixture", "chi2")

# A column whose P0-norm is below this fraction of its V0^-1-norm lies in the span of X; a column whose
# squared correlation with the earlier kept columns (after X) exceeds 1 - RANK_TOLERANCE is collinear.
SPAN_TOLERANCE = 1e-10
RANK_TOLERANCE = 1e-8


@dataclass
class ScanResult:
    """Per tested unit (marker or pair), arrays of length ``n_units`` (effects: ``(n_units, q)``)."""

    lrt: np.ndarray
    df: np.ndarray
    pvalue: np.ndarray
    lod: np.ndarray
    effects: Optional[np.ndarray] = None
    effect_se: Optional[np.ndarray] = None
    variance_ratios: Optional[np.ndarray] = None
    f_statistic: Optional[np.ndarray] = None


# ---------------------------------------------------------------------------------------------
# Small dense kernels (q <= 4), compiled


@numba.njit(cache=True, fastmath=True)
def reduce_grams(rotated, side, n_cov, grams_proj, grams, scores):
    """Gram matrices of every unit from the output of :func:`reduce_columns`.

    ``rotated (q, n_units, n)``, ``side (q, n_units, n_cov + 1)`` -> ``grams_proj (n_units, q, q)`` =
    G'P0G, ``grams (n_units, q, q)`` = G'V0^-1 G = G'P0G + (Q'LG)'(Q'LG), ``scores (n_units, q)`` = G'P0 y.
    """
    q, n_units, n = rotated.shape
    for p in range(n_units):
        for a in range(q):
            scores[p, a] = side[a, p, n_cov]
            for b in range(a + 1):
                acc = 0.0
                for i in range(n):
                    acc += rotated[a, p, i] * rotated[b, p, i]
                grams_proj[p, a, b] = acc
                grams_proj[p, b, a] = acc
                for j in range(n_cov):
                    acc += side[a, p, j] * side[b, p, j]
                grams[p, a, b] = acc
                grams[p, b, a] = acc


@numba.njit(cache=True)
def _independent_columns(gram_proj, gram, q, keep, chol):
    """Greedy rank of ``gram_proj`` in column order, on the correlation scale; fills ``keep``, ``chol``.

    ``chol`` receives the Cholesky factor of the kept block of ``gram_proj`` (rows/cols of kept columns).
    """
    rank = 0
    for j in range(q):
        keep[j] = False
        if gram_proj[j, j] <= SPAN_TOLERANCE * gram[j, j] or gram_proj[j, j] <= 0.0:
            continue
        pivot = gram_proj[j, j]
        for k in range(j):
            if keep[k]:
                pivot -= chol[j, k] * chol[j, k]
        if pivot <= RANK_TOLERANCE * gram_proj[j, j]:
            continue
        keep[j] = True
        rank += 1
        chol[j, j] = math.sqrt(pivot)
        for i in range(j + 1, q):
            t = gram_proj[i, j]
            for k in range(j):
                if keep[k]:
                    t -= chol[i, k] * chol[j, k]
            chol[i, j] = t / chol[j, j]
    return rank


@numba.njit(cache=True)
def _cholesky(a, q, low):
    """Cholesky factor ``low`` of the leading ``q x q`` of ``a``; False when not positive definite."""
    for j in range(q):
        s = a[j, j]
        for k in range(j):
            s -= low[j, k] * low[j, k]
        if not s > 0.0:
            return False
        low[j, j] = math.sqrt(s)
        for i in range(j + 1, q):
            t = a[i, j]
            for k in range(j):
                t -= low[i, k] * low[j, k]
            low[i, j] = t / low[j, j]
    return True


@numba.njit(cache=True)
def _forward(low, q, b, x):
    """``x = low^-1 b`` (lower triangular)."""
    for i in range(q):
        t = b[i]
        for k in range(i):
            t -= low[i, k] * x[k]
        x[i] = t / low[i, i]


@numba.njit(cache=True)
def _backward(low, q, b, x):
    """``x = low'^-1 b``."""
    for i in range(q - 1, -1, -1):
        t = b[i]
        for k in range(i + 1, q):
            t -= low[k, i] * x[k]
        x[i] = t / low[i, i]


@numba.njit(cache=True)
def _woodbury(gram, root, support, k, q, mat, low, tmp_in, tmp_out, loadings, out):
    """``out = gram - (S gram)' (I + S gram S)^-1 (S gram)`` with ``S = diag(root)``; returns log|I + S gram S|.

    ``out`` equals ``gram (I + Phi gram)^-1`` (``Phi = S^2``).  Only the ``k`` coordinates ``support`` with
    ``root > 0`` enter the ``k x k`` factorisation; ``loadings (k, q)`` keeps ``low^-1 S_support gram``.
    """
    for i in range(k):
        for j in range(k):
            mat[i, j] = root[support[i]] * gram[support[i], support[j]] * root[support[j]]
        mat[i, i] += 1.0
    ok = _cholesky(mat, k, low)
    assert ok
    logdet = 0.0
    for i in range(k):
        logdet += math.log(low[i, i])
    for j in range(q):
        for i in range(k):
            tmp_in[i] = root[support[i]] * gram[support[i], j]
        _forward(low, k, tmp_in, tmp_out)
        for i in range(k):
            loadings[i, j] = tmp_out[i]
    for i in range(q):
        for j in range(i + 1):
            acc = gram[i, j]
            for m in range(k):
                acc -= loadings[m, i] * loadings[m, j]
            out[i, j] = acc
            out[j, i] = acc
    return 2.0 * logdet


@numba.njit(cache=True)
def _evaluate(phi, gram_proj, gram, score, rss0, n, q, work, support, n_mat, nt_mat, u, grad, hess,
              want_hessian):
    """Objective ``f = n/2 log RSS + 1/2 log|I + Phi M|`` (= -l1 + const), its gradient and Hessian.

    With ``R = (I + M~ Phi)^-1``: ``u = R v``, ``RSS = s - v' Phi R v``, ``N = M (I + Phi M)^-1``,
    ``N~ = M~ (I + Phi M~)^-1``;  ``df/dphi_t = -n/2 u_t^2 / RSS + 1/2 N_tt``,
    ``d2f/dphi_s dphi_t = n/2 (2 N~_st u_s u_t / RSS - u_s^2 u_t^2 / RSS^2) - 1/2 N_st^2``.
    Returns ``(f, rss, logdet)``.
    """
    root = work[0, 0]
    tmp_in = work[0, 1]
    tmp_out = work[0, 2]
    mat = work[1]
    low = work[2]
    loadings = work[3]
    k = 0
    for t in range(q):
        root[t] = math.sqrt(phi[t])
        if phi[t] > 0.0:
            support[k] = t
            k += 1
    logdet = _woodbury(gram, root, support, k, q, mat, low, tmp_in, tmp_out, loadings, n_mat)
    _woodbury(gram_proj, root, support, k, q, mat, low, tmp_in, tmp_out, loadings, nt_mat)
    # low, loadings now belong to I + S M~ S:  h = low^-1 S v,  Q = h'h,  u = v - (low^-1 S M~)' h
    for i in range(k):
        tmp_in[i] = root[support[i]] * score[support[i]]
    _forward(low, k, tmp_in, tmp_out)
    quad = 0.0
    for i in range(k):
        quad += tmp_out[i] * tmp_out[i]
    for i in range(q):
        acc = score[i]
        for m in range(k):
            acc -= loadings[m, i] * tmp_out[m]
        u[i] = acc
    rss = rss0 - quad
    if not rss > 0.0:
        rss = 1e-300
    f = 0.5 * n * math.log(rss) + 0.5 * logdet
    for t in range(q):
        grad[t] = -0.5 * n * u[t] * u[t] / rss + 0.5 * n_mat[t, t]
    if want_hessian:
        for s_ in range(q):
            for t in range(q):
                hess[s_, t] = (0.5 * n * (2.0 * nt_mat[s_, t] * u[s_] * u[t] / rss
                                          - u[s_] * u[s_] * u[t] * u[t] / (rss * rss))
                               - 0.5 * n_mat[s_, t] * n_mat[s_, t])
    return f, rss, logdet


@numba.njit(cache=True)
def _newton_direction(hess, grad, free, n_free, sub, low, rhs, sol, direction):
    """Newton step on the free coordinates, Levenberg-damped until the reduced Hessian is positive definite."""
    damping = 0.0
    for attempt in range(60):
        for i in range(n_free):
            for j in range(n_free):
                sub[i, j] = hess[free[i], free[j]]
            sub[i, i] += damping * (abs(hess[free[i], free[i]]) + 1e-12)
        if _cholesky(sub, n_free, low):
            break
        damping = 1e-6 if damping == 0.0 else damping * 10.0
    else:
        return False
    for i in range(n_free):
        rhs[i] = -grad[free[i]]
    _forward(low, n_free, rhs, sol)
    _backward(low, n_free, sol, rhs)
    for t in range(direction.shape[0]):
        direction[t] = 0.0
    for i in range(n_free):
        direction[free[i]] = rhs[i]
    return True


@numba.njit(cache=True)
def _one_component_start(grad, gram_proj, score, rss0, n, q, start):
    """Start ``phi``: each component's own optimum, ``m~ phi_t = (n r - s) / (s - r)``, ``r = v_t^2 / m~``.

    Exact for a single component when ``M = M~`` (no covariate loading); 0 where the null's gradient is
    not negative.  Returns whether any component is positive.
    """
    any_positive = False
    for t in range(q):
        start[t] = 0.0
        if grad[t] < 0.0 and gram_proj[t, t] > 0.0:
            r = score[t] * score[t] / gram_proj[t, t]
            if n * r > rss0 and r < rss0:
                start[t] = (n * r - rss0) / ((rss0 - r) * gram_proj[t, t])
                any_positive = True
    return any_positive


@numba.njit(cache=True)
def _take_trial(q, trial, u_trial, grad_trial, hess_trial, nt_trial, phi, u, grad, hess, nt_keep):
    """Make the evaluated trial point the current one (its gradient and Hessian are already computed)."""
    for t in range(q):
        phi[t] = trial[t]
        u[t] = u_trial[t]
        grad[t] = grad_trial[t]
        for s_ in range(q):
            hess[t, s_] = hess_trial[t, s_]
            nt_keep[t, s_] = nt_trial[t, s_]


@numba.njit(cache=True)
def random_effects_fit(grams_proj, grams, scores, rss0, n, max_iter, tol,
                       phi_out, lrt_out, rss_out, rank_out, blup_out, pev_out, iter_out, use_start=True):
    """ML of the random-effects model for every unit by projected Newton over ``phi >= 0``.

    ``grams_proj``, ``grams (n_units, q, q)``, ``scores (n_units, q)``; ``rss0 = y'P0y``; ``n`` individuals.
    Outputs per unit: ``phi_out (n_units, q)`` variance ratios, ``lrt_out`` = 2 (l1 - l0) >= 0,
    ``rss_out`` = ``y'P y`` at the optimum (``sigma2 = rss / n``),
    ``rank_out`` = rank of ``M~`` (the test's df), ``blup_out`` = ``Phi u`` (BLUPs of the effects),
    ``pev_out`` = ``diag(Phi - Phi N~ Phi)`` (prediction-error variances over sigma2), ``iter_out``.
    Evaluates the null (``phi = 0``), starts from the better of it and :func:`_one_component_start`,
    and stops when the Newton decrement (about the LRT's remaining error) is below ``tol``.
    """
    n_units, q, _ = grams.shape
    work = np.zeros((4, q, q))
    n_mat = np.zeros((q, q))
    nt_mat = np.zeros((q, q))
    hess = np.zeros((q, q))
    sub = np.zeros((q, q))
    low = np.zeros((q, q))
    u = np.zeros(q)
    grad = np.zeros(q)
    phi = np.zeros(q)
    trial = np.zeros(q)
    direction = np.zeros(q)
    rhs = np.zeros(q)
    sol = np.zeros(q)
    free = np.zeros(q, dtype=np.int64)
    support = np.zeros(q, dtype=np.int64)
    keep = np.zeros(q, dtype=np.bool_)
    u_trial = np.zeros(q)
    grad_trial = np.zeros(q)
    hess_trial = np.zeros((q, q))
    nt_keep = np.zeros((q, q))
    for p in range(n_units):
        gram_proj = grams_proj[p]
        gram = grams[p]
        score = scores[p]
        rank_out[p] = _independent_columns(gram_proj, gram, q, keep, low)
        for t in range(q):
            phi[t] = 0.0
        f0, rss, logdet = _evaluate(phi, gram_proj, gram, score, rss0, n, q, work, support, n_mat, nt_mat, u,
                                    grad, hess, True)
        f = f0
        for t in range(q):
            for s_ in range(q):
                nt_keep[t, s_] = nt_mat[t, s_]
        iterations = 0
        if use_start and _one_component_start(grad, gram_proj, score, rss0, n, q, trial):
            f_trial, rss_t, logdet_t = _evaluate(trial, gram_proj, gram, score, rss0, n, q, work, support,
                                                 n_mat, nt_mat, u_trial, grad_trial, hess_trial, True)
            if f_trial < f:
                f = f_trial
                rss = rss_t
                _take_trial(q, trial, u_trial, grad_trial, hess_trial, nt_mat, phi, u, grad, hess, nt_keep)
        for it in range(max_iter):
            n_free = 0
            for t in range(q):
                if phi[t] > 0.0 or grad[t] < 0.0:
                    free[n_free] = t
                    n_free += 1
            if n_free == 0:
                break
            if not _newton_direction(hess, grad, free, n_free, sub, low, rhs, sol, direction):
                break
            decrement = 0.0
            for t in range(q):
                decrement -= grad[t] * direction[t]
            if decrement < tol:
                break
            step = 1.0
            accepted = False
            f_trial = f
            for search in range(50):
                predicted = 0.0
                for t in range(q):
                    trial[t] = max(phi[t] + step * direction[t], 0.0)
                    predicted += grad[t] * (trial[t] - phi[t])
                f_trial, rss_t, logdet_t = _evaluate(trial, gram_proj, gram, score, rss0, n, q, work, support,
                                                     n_mat, nt_mat, u_trial, grad_trial, hess_trial, True)
                if f_trial <= f + 1e-4 * predicted:
                    accepted = True
                    break
                step *= 0.5
            iterations += 1
            if not accepted:
                break
            change = f - f_trial
            f = f_trial
            rss = rss_t
            _take_trial(q, trial, u_trial, grad_trial, hess_trial, nt_mat, phi, u, grad, hess, nt_keep)
            if change < 1e-14 * (1.0 + abs(f)):
                break
        iter_out[p] = iterations
        rss_out[p] = rss
        lrt_out[p] = max(2.0 * (f0 - f), 0.0)
        for t in range(q):
            phi_out[p, t] = phi[t]
            blup_out[p, t] = phi[t] * u[t]
            pev_out[p, t] = max(phi[t] - phi[t] * phi[t] * nt_keep[t, t], 0.0)


@numba.njit(cache=True)
def fixed_effects_fit(grams_proj, grams, scores, rss0, rss_out, rank_out, beta_out, cov_out):
    """GLS of the tested columns (fixed effects) after X, for every unit, dropping dependent columns.

    ``beta_out (n_units, q)`` = ``M~_FF^-1 v_F`` on the kept columns F (NaN elsewhere), ``cov_out``
    = ``diag(M~_FF^-1)`` (times sigma2: sampling variances), ``rss_out`` = ``s - v_F' beta_F``,
    ``rank_out`` = |F|.
    """
    n_units, q, _ = grams.shape
    keep = np.zeros(q, dtype=np.bool_)
    low = np.zeros((q, q))
    sub_low = np.zeros((q, q))
    rhs = np.zeros(q)
    sol = np.zeros(q)
    unit = np.zeros(q)
    idx = np.zeros(q, dtype=np.int64)
    for p in range(n_units):
        rank = _independent_columns(grams_proj[p], grams[p], q, keep, low)
        rank_out[p] = rank
        r = 0
        for t in range(q):
            if keep[t]:
                idx[r] = t
                r += 1
        for i in range(rank):
            for j in range(i + 1):
                sub_low[i, j] = low[idx[i], idx[j]]
        for i in range(rank):
            rhs[i] = scores[p, idx[i]]
        _forward(sub_low, rank, rhs, sol)
        explained = 0.0
        for i in range(rank):
            explained += sol[i] * sol[i]
        _backward(sub_low, rank, sol, rhs)
        for t in range(q):
            beta_out[p, t] = np.nan
            cov_out[p, t] = np.nan
        for i in range(rank):
            beta_out[p, idx[i]] = rhs[i]
        for i in range(rank):
            for j in range(rank):
                unit[j] = 1.0 if i == j else 0.0
            _forward(sub_low, rank, unit, sol)
            acc = 0.0
            for j in range(rank):
                acc += sol[j] * sol[j]
            # (L L')^-1_ii = ||L^-1 e_i||^2
            cov_out[p, idx[i]] = acc
        rss_out[p] = max(rss0 - explained, 1e-300)


# ---------------------------------------------------------------------------------------------
# p-values and the unit fits shared with scan2d


def random_pvalue(lrt, df, method="mixture"):
    """P-value of the random-model LRT with ``df`` variance ratios tested on their boundary 0.

    ``mixture`` (default): the chi-bar-square of Self & Liang (1987) for ``df`` independent boundary
    components, ``sum_j C(df, j) 2^-df P(chi2_j > lrt)`` (df = 1: the 50:50 mixture of chi2_0 and chi2_1);
    ``chi2``: the conservative ``P(chi2_df > lrt)``.  ``lrt = 0`` or ``df = 0`` give 1.
    """
    if method not in PVALUE_METHODS:
        raise InputError(f"pvalue method {method!r} is not one of {PVALUE_METHODS}")
    lrt, df = np.broadcast_arrays(np.asarray(lrt, dtype=np.float64), np.asarray(df, dtype=np.int64))
    pvalue = np.ones(lrt.shape)
    for total in np.unique(df):
        rows = (df == total) & (lrt > 0)
        if total == 0 or not rows.any():
            continue
        values = lrt[rows]
        if method == "chi2":
            pvalue[rows] = chi2_tail(values, total)
        else:
            pvalue[rows] = sum(math.comb(int(total), j) * chi2_tail(values, j)
                               for j in range(1, total + 1)) / 2.0 ** total
    return pvalue


def fit_units(reduced, background: NullBackground, model="random", pvalue="mixture", with_effects=True,
              max_iter=50, tol=1e-9) -> ScanResult:
    """Test every unit whose tested columns were reduced by :func:`reduce_columns`.

    ``reduced``: the pair ``(rotated (q, n_units, n), side (q, n_units, c + 1))``.  Random model: ML over
    phi (see :func:`random_effects_fit`),
    p-value by :func:`random_pvalue`; fixed model: ML LRT ``n log(rss0 / rss1)`` against chi2(df), the F
    statistic and SE with the unbiased ``sigma2 = rss1 / (n - c - df)``.
    """
    if model not in MODELS:
        raise InputError(f"model {model!r} is not one of {MODELS}")
    rotated, side = reduced
    q, n_units, n = rotated.shape
    n_cov = background.n_covariates
    assert n == background.n_individuals and side.shape == (q, n_units, n_cov + 1)
    grams_proj = np.empty((n_units, q, q))
    grams = np.empty((n_units, q, q))
    scores = np.empty((n_units, q))
    reduce_grams(rotated, side, n_cov, grams_proj, grams, scores)
    return fit_grams(grams_proj, grams, scores, background, model, pvalue, with_effects, max_iter, tol)


def fit_grams(grams_proj, grams, scores, background: NullBackground, model="random", pvalue="mixture",
              with_effects=True, max_iter=50, tol=1e-9) -> ScanResult:
    """:func:`fit_units` from the units' Gram matrices and scores (the output of :func:`reduce_grams`)."""
    if model not in MODELS:
        raise InputError(f"model {model!r} is not one of {MODELS}")
    n_units, q, _ = grams.shape
    n = background.n_individuals
    n_cov = background.n_covariates
    rss0 = background.rss0
    if n - n_cov - q <= 0:  # checked for both models before any fit (the random model divided by zero)
        raise InputError(f"{n} individuals are too few for {n_cov} covariates and {q} tested effects")
    rank = np.empty(n_units, dtype=np.int64)
    rss = np.empty(n_units)
    effects = np.empty((n_units, q))
    variances = np.empty((n_units, q))
    if model == "random":
        phi = np.empty((n_units, q))
        lrt = np.empty(n_units)
        iterations = np.empty(n_units, dtype=np.int64)
        random_effects_fit(grams_proj, grams, scores, rss0, float(n), max_iter, tol,
                           phi, lrt, rss, rank, effects, variances, iterations)
        result = ScanResult(lrt=lrt, df=rank, pvalue=random_pvalue(lrt, rank, pvalue), lod=lrt / (2.0 * LN10),
                            variance_ratios=phi)
        sigma2 = rss / n
    else:
        fixed_effects_fit(grams_proj, grams, scores, rss0, rss, rank, effects, variances)
        lrt = np.maximum(n * np.log(rss0 / rss), 0.0)
        residual_df = n - n_cov - rank
        if np.any(residual_df <= 0):
            raise InputError(f"{n} individuals are too few for {n_cov} covariates and {q} tested effects")
        sigma2 = rss / residual_df
        with np.errstate(invalid="ignore", divide="ignore"):
            f_statistic = np.where(rank > 0, (rss0 - rss) / np.maximum(rank, 1) / sigma2, 0.0)
        pvalue_fixed = np.ones(n_units)
        for total in np.unique(rank[rank > 0]):
            pvalue_fixed[rank == total] = chi2_tail(lrt[rank == total], total)
        result = ScanResult(lrt=lrt, df=rank, pvalue=pvalue_fixed, lod=lrt / (2.0 * LN10),
                            f_statistic=np.maximum(f_statistic, 0.0))
    if with_effects:
        result.effects = effects
        result.effect_se = np.sqrt(sigma2[:, None] * variances)
    return result


def scan1d(background: NullBackground, Z, W, *, model="random", pvalue="mixture", block_markers=1024,
           max_iter=50, tol=1e-9) -> ScanResult:
    """Scan every marker: 2-effect (a, d) test over the polygenic background of ``background``.

    ``Z``, ``W (n_individuals, n_markers)``: additive and dominance codes (original space).  Each block of
    ``block_markers`` markers is reduced with one GEMM (:func:`reduce_columns`), then solved per marker on
    2 x 2 matrices.  Returns a :class:`ScanResult` with ``effects``/``effect_se (n_markers, 2)`` for (a, d)
    and, in the random model, ``variance_ratios (n_markers, 2)``.
    """
    Z = np.asarray(Z, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)
    n = background.n_individuals
    if Z.ndim != 2 or Z.shape[0] != n or W.shape != Z.shape:
        raise InputError(f"codes Z and W must both be (n_individuals={n}, n_markers); got {Z.shape} and {W.shape}")
    if not (np.all(np.isfinite(Z)) and np.all(np.isfinite(W))):
        raise InputError("codes Z or W contain NaN: fill missing genotypes with their expectations first")
    parts = []
    for start in range(0, Z.shape[1], block_markers):
        stop = min(start + block_markers, Z.shape[1])
        columns_t = np.stack([Z[:, start:stop].T, W[:, start:stop].T])
        parts.append(fit_units(reduce_columns(background, columns_t), background, model, pvalue, True,
                               max_iter, tol))
    return concatenate_results(parts)


def concatenate_results(parts) -> ScanResult:
    """One :class:`ScanResult` from consecutive ones (fields that are None stay None)."""
    fields = ScanResult.__dataclass_fields__
    merged = {}
    for name in fields:
        values = [getattr(part, name) for part in parts]
        merged[name] = None if values[0] is None else np.concatenate(values)
    return ScanResult(**merged)
