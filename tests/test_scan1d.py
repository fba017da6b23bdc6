"""1D PEPIS scan against a dense maximum-likelihood fit with explicit n x n covariances."""

import numpy as np
import pytest
import scipy.optimize

from qtlhpc.methods.pepis.kernels.null_model import null_background, rotate, rotate_columns
from qtlhpc.methods.pepis.kernels.scan1d import random_pvalue, scan1d


# ---------------------------------------------------------------------------------------------
# Slow, obvious references (explicit covariance matrices, generic optimiser); also used by test_scan2d


def dense_profile_loglik(y, X, V):
    """Full Gaussian log-likelihood of ``y ~ N(X b, sigma2 V)`` at the ML ``b`` and ``sigma2``."""
    n = len(y)
    Vinv = np.linalg.inv(V)
    b = np.linalg.solve(X.T @ Vinv @ X, X.T @ Vinv @ y)
    r = y - X @ b
    sigma2 = r @ Vinv @ r / n
    sign, logdet = np.linalg.slogdet(V)
    assert sign > 0
    return -0.5 * n * (np.log(2 * np.pi * sigma2) + 1) - 0.5 * logdet


def dense_random_lrt(y, X, K0, G, extra_starts=()):
    """max over phi >= 0 of the profile likelihood of Var = sigma2 (K0 + I + G diag(phi) G'), by L-BFGS-B
    from several starts; returns (LRT = 2 (l1 - l0), phi)."""
    n, q = G.shape
    V0 = K0 + np.eye(n)
    l0 = dense_profile_loglik(y, X, V0)

    def negative(phi):
        return -dense_profile_loglik(y, X, V0 + (G * phi) @ G.T)

    scale = 1.0 / np.mean(G * G, axis=0).clip(1e-12) / n
    starts = [np.zeros(q), scale * 0.1, scale, scale * 10.0]
    starts += [np.random.default_rng(i).uniform(0, 3, q) * scale for i in range(3)]
    starts += [np.asarray(s, dtype=float) for s in extra_starts]
    best = None
    for start in starts:
        res = scipy.optimize.minimize(negative, start, method="L-BFGS-B", bounds=[(0, None)] * q,
                                      options={"ftol": 1e-15, "gtol": 1e-10, "maxiter": 2000})
        if best is None or res.fun < best.fun:
            best = res
    return 2 * (-best.fun - l0), best.x, negative


def dense_fixed_fit(y, X, K0, G):
    """GLS with explicit V^-1: (LRT, df, effects, SE with sigma2 = RSS / (n - rank))."""
    n = len(y)
    Vinv = np.linalg.inv(K0 + np.eye(n))

    def rss(A):
        b = np.linalg.lstsq(A.T @ Vinv @ A, A.T @ Vinv @ y, rcond=None)[0]
        r = y - A @ b
        return r @ Vinv @ r, b

    rss0, _ = rss(X)
    A = np.hstack([X, G])
    rss1, b = rss(A)
    rank_full = np.linalg.matrix_rank(A.T @ Vinv @ A, tol=1e-8 * np.abs(A.T @ Vinv @ A).max())
    df = rank_full - X.shape[1]
    lrt = n * np.log(rss0 / rss1)
    if df == G.shape[1]:
        cov = np.linalg.inv(A.T @ Vinv @ A) * rss1 / (n - rank_full)
        se = np.sqrt(np.diag(cov))[X.shape[1]:]
        effects = b[X.shape[1]:]
    else:
        se = effects = None
    return lrt, df, effects, se


def simulate(n_individuals, n_markers, seed, ril=False):
    """F2-like codes (z in {1,0,-1}, w = 1 for AB else -1; RIL: no AB), kinship K0, covariates, trait."""
    rng = np.random.default_rng(seed)
    if ril:
        genotypes = rng.choice([1, 3], size=(n_individuals, n_markers))
    else:
        genotypes = rng.choice([1, 2, 3], size=(n_individuals, n_markers), p=[0.25, 0.5, 0.25])
    Z = np.select([genotypes == 1, genotypes == 2], [1.0, 0.0], -1.0)
    W = np.where(genotypes == 2, 1.0, -1.0)
    background = rng.choice([-1.0, 0.0, 1.0], size=(n_individuals, 40))
    K0 = 0.7 * background @ background.T / 40 + 0.05 * np.eye(n_individuals)
    X = np.column_stack([np.ones(n_individuals), rng.normal(size=n_individuals)])
    polygenic = rng.multivariate_normal(np.zeros(n_individuals), K0)
    y = X @ np.array([1.0, 0.3]) + polygenic + rng.normal(size=n_individuals)
    return Z, W, K0, X, y, rng


def prepared(K0, X, y):
    rotation = rotate(K0, X)
    return null_background(rotation, rotate_columns(rotation, y)[:, 0], rotate_columns(rotation, X))


# ---------------------------------------------------------------------------------------------


def test_random_model_matches_dense_ml():
    Z, W, K0, X, y, rng = simulate(50, 12, seed=1)
    y = y + 1.5 * Z[:, 3] + 1.2 * W[:, 7]          # two markers with real effects
    background = prepared(K0, X, y)
    result = scan1d(background, Z, W, model="random")
    for k in range(Z.shape[1]):
        G = np.column_stack([Z[:, k], W[:, k]])
        lrt_dense, phi_dense, negative = dense_random_lrt(y, X, K0, G, extra_starts=[result.variance_ratios[k]])
        # our optimum, evaluated by the dense likelihood, gives our LRT
        l0 = -negative(np.zeros(2))
        assert 2 * (-negative(result.variance_ratios[k]) - l0) == pytest.approx(result.lrt[k], rel=1e-6, abs=1e-8)
        # and no start of the generic optimiser finds a better one
        assert result.lrt[k] == pytest.approx(lrt_dense, rel=1e-5, abs=1e-6)
    assert set(np.argsort(result.lrt)[-2:]) == {3, 7}
    assert np.all(result.df == 2)


def test_random_model_blups_and_prediction_errors_match_dense_formulas():
    Z, W, K0, X, y, rng = simulate(40, 4, seed=2)
    y = y + 0.8 * Z[:, 1] + 0.6 * W[:, 1]
    background = prepared(K0, X, y)
    result = scan1d(background, Z, W, model="random")
    k = 1
    phi = result.variance_ratios[k]
    assert np.all(phi > 0)
    n = len(y)
    G = np.column_stack([Z[:, k], W[:, k]])
    H = K0 + np.eye(n) + (G * phi) @ G.T
    Hinv = np.linalg.inv(H)
    b = np.linalg.solve(X.T @ Hinv @ X, X.T @ Hinv @ y)
    sigma2 = (y - X @ b) @ Hinv @ (y - X @ b) / n
    P = Hinv - Hinv @ X @ np.linalg.solve(X.T @ Hinv @ X, X.T @ Hinv)
    blup = phi * (G.T @ Hinv @ (y - X @ b))
    pev = sigma2 * (np.diag(phi) - np.diag(phi) @ G.T @ P @ G @ np.diag(phi))
    np.testing.assert_allclose(result.effects[k], blup, rtol=1e-7)
    np.testing.assert_allclose(result.effect_se[k], np.sqrt(np.diag(pev)), rtol=1e-7)


def test_fixed_model_matches_explicit_gls():
    Z, W, K0, X, y, rng = simulate(45, 8, seed=3)
    y = y + 0.5 * Z[:, 2]
    background = prepared(K0, X, y)
    result = scan1d(background, Z, W, model="fixed")
    for k in range(Z.shape[1]):
        lrt, df, effects, se = dense_fixed_fit(y, X, K0, np.column_stack([Z[:, k], W[:, k]]))
        assert result.df[k] == df == 2
        assert result.lrt[k] == pytest.approx(lrt, rel=1e-8, abs=1e-10)
        np.testing.assert_allclose(result.effects[k], effects, rtol=1e-8)
        np.testing.assert_allclose(result.effect_se[k], se, rtol=1e-8)
    assert result.lod == pytest.approx(result.lrt / (2 * np.log(10)))


def test_ril_codes_reduce_fixed_df_and_random_model_still_matches_dense():
    Z, W, K0, X, y, rng = simulate(40, 5, seed=4, ril=True)
    y = y + 0.7 * Z[:, 0]
    background = prepared(K0, X, y)
    fixed = scan1d(background, Z, W, model="fixed")
    assert np.all(fixed.df == 1)                      # w = -1 for everyone lies in the intercept's span
    for k in range(Z.shape[1]):
        lrt, df, _, _ = dense_fixed_fit(y, X, K0, np.column_stack([Z[:, k], W[:, k]]))
        assert df == 1 and fixed.lrt[k] == pytest.approx(lrt, rel=1e-8, abs=1e-10)
    assert np.all(np.isnan(fixed.effects[:, 1])) and np.all(np.isfinite(fixed.effects[:, 0]))
    random = scan1d(background, Z, W, model="random")
    assert np.all(random.df == 1)
    for k in range(Z.shape[1]):
        lrt_dense, _, _ = dense_random_lrt(y, X, K0, np.column_stack([Z[:, k], W[:, k]]),
                                           extra_starts=[random.variance_ratios[k]])
        assert random.lrt[k] == pytest.approx(lrt_dense, rel=1e-5, abs=1e-6)


def test_blocks_of_markers_give_the_same_scan():
    Z, W, K0, X, y, rng = simulate(30, 23, seed=5)
    background = prepared(K0, X, y)
    whole = scan1d(background, Z, W, model="random", block_markers=100)
    pieces = scan1d(background, Z, W, model="random", block_markers=4)
    for name in ("lrt", "df", "pvalue", "effects", "effect_se", "variance_ratios"):
        np.testing.assert_allclose(getattr(whole, name), getattr(pieces, name), rtol=1e-9, atol=1e-12)


def test_mixture_pvalue_is_the_chi_bar_square():
    # df = 1: the 50:50 mixture of chi2_0 and chi2_1 halves the chi2_1 tail
    assert random_pvalue(np.array([3.84]), np.array([1]))[0] == pytest.approx(0.5 * 0.05004, rel=1e-3)
    # df = 2: 1/4 chi2_0 + 1/2 chi2_1 + 1/4 chi2_2, by simulation of independent boundary components
    rng = np.random.default_rng(0)
    draws = (np.maximum(rng.normal(size=(200_000, 2)), 0) ** 2).sum(axis=1)
    assert random_pvalue(np.array([4.0]), np.array([2]))[0] == pytest.approx(np.mean(draws > 4.0), abs=3e-3)
    assert random_pvalue(np.array([0.0]), np.array([2]))[0] == 1.0


def test_closed_form_chi2_tails_match_scipy():
    import scipy.stats
    from qtlhpc.methods.pepis.kernels.scan1d import chi2_tail

    statistic = np.linspace(0.0, 90.0, 500)
    for df in range(1, 7):
        np.testing.assert_allclose(chi2_tail(statistic, df), scipy.stats.chi2.sf(statistic, df), rtol=1e-12)
