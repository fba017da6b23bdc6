"""1D PEPIS scan against a dense maximum-likelihood fit with explicit n x n covariances."""

import numpy as np
import pytest

from qtlhpc.methods.pepis.kernels.scan1d import random_pvalue, scan1d
from references.dense_ml import dense_fixed_fit, dense_random_lrt
from references.pepis_simulation import prepared, simulate


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
    from qtlhpc.stats.chi2 import chi2_tail

    statistic = np.linspace(0.0, 90.0, 500)
    for df in range(1, 7):
        np.testing.assert_allclose(chi2_tail(statistic, df), scipy.stats.chi2.sf(statistic, df), rtol=1e-12)
