"""REML against a slow dense reference (explicit inverses and determinants, generic optimizer)."""

import numpy as np
import pytest
from scipy import optimize

from qtlhpc.methods.pepis.kernels.kinship import kinship_matrices
from qtlhpc.methods.pepis.kernels.reml import combined_kinship, fit_reml, fit_reml_many
from qtlhpc.errors import InputError
from qtlhpc.parallel import unit_rng


def textbook_minus2_loglik(theta, y, fixed, kernels):
    """-2 l_R = (n-p) log 2pi + log|V| + log|X'V^-1X| + y'Py, with explicit inverses."""
    n, p = fixed.shape
    v = sum(t * k for t, k in zip(theta[:-1], kernels)) + theta[-1] * np.eye(n)
    v_inverse = np.linalg.inv(v)
    inner = fixed.T @ v_inverse @ fixed
    projection = v_inverse - v_inverse @ fixed @ np.linalg.inv(inner) @ fixed.T @ v_inverse
    return ((n - p) * np.log(2 * np.pi) + np.linalg.slogdet(v)[1] + np.linalg.slogdet(inner)[1]
            + y @ projection @ y)


def reference_fit(y, fixed, kernels, n_starts=6):
    """Minimise the textbook -2 l_R over theta = u^2 (unconstrained) from several starts, then polish."""
    rng = np.random.default_rng(0)
    scale = np.var(y)
    best = None
    for _ in range(n_starts):
        start = np.sqrt(scale * rng.uniform(0.05, 1.0, size=len(kernels) + 1))
        result = optimize.minimize(lambda u: textbook_minus2_loglik(u ** 2, y, fixed, kernels), start,
                                   method="Nelder-Mead", options={"xatol": 1e-10, "fatol": 1e-12,
                                                                  "maxiter": 20000, "maxfev": 20000})
        if best is None or result.fun < best.fun:
            best = result
    polished = optimize.minimize(lambda t: textbook_minus2_loglik(t, y, fixed, kernels), best.x ** 2,
                                 method="L-BFGS-B",
                                 bounds=[(0, None)] * len(kernels) + [(1e-8 * scale, None)],
                                 options={"ftol": 1e-15, "gtol": 1e-10})
    if polished.fun < best.fun:
        return polished.x, polished.fun
    return best.x ** 2, best.fun


def simulated_kernels(seed, n_individuals, n_markers=40, which=("a", "d", "aa", "ad", "da", "dd")):
    rng = unit_rng(seed, "test-reml-kernels")
    genotype = rng.integers(0, 3, size=(n_individuals, n_markers))
    additive = 1.0 - genotype
    dominance = np.where(genotype == 1, 1.0, -1.0)
    return kinship_matrices(additive, dominance, which).matrices


def simulate_trait(seed, kernels, lambdas, fixed, sigma2=1.0, effects=None):
    rng = unit_rng(seed, "test-reml-trait")
    n = fixed.shape[0]
    covariance = sigma2 * (combined_kinship(lambdas, kernels) + np.eye(n))
    effects = np.ones(fixed.shape[1]) if effects is None else effects
    return fixed @ effects + np.linalg.cholesky(covariance) @ rng.normal(size=n)


def design(seed, n_individuals):
    rng = unit_rng(seed, "test-reml-design")
    return np.column_stack([np.ones(n_individuals), rng.normal(size=n_individuals)])


def assert_matches_reference(fit, y, fixed, kernels):
    theta_ref, minus2_ref = reference_fit(y, fixed, list(kernels.values()), n_starts=3 if len(kernels) > 2 else 6)
    assert fit.converged
    assert -2 * fit.loglik == pytest.approx(minus2_ref, rel=1e-6)
    # the fit is at least as good as the generic optimizer, and our -2l is the textbook one
    assert -2 * fit.loglik <= minus2_ref + 1e-6 * abs(minus2_ref)
    assert textbook_minus2_loglik(fit.variance_components, y, fixed, list(kernels.values())) == \
        pytest.approx(-2 * fit.loglik, rel=1e-10)
    total = theta_ref.sum()
    np.testing.assert_allclose(fit.variance_components, theta_ref, atol=2e-3 * total)
    return theta_ref


@pytest.mark.parametrize("names, lambdas, n_individuals", [
    (("a",), [1.5], 60),
    (("a", "aa"), [0.8, 1.2], 100),
    (("a", "d", "aa", "ad", "da", "dd"), [0.6, 0.3, 0.5, 0.2, 0.4, 0.3], 90),
])
def test_matches_dense_reference(names, lambdas, n_individuals):
    all_kernels = simulated_kernels(7, n_individuals, which=names)
    kernels = {name: all_kernels[name] for name in names}
    fixed = design(8, n_individuals)
    y = simulate_trait(9, list(kernels.values()), lambdas, fixed, sigma2=2.0)
    fit = fit_reml(y, fixed, kernels)
    assert_matches_reference(fit, y, fixed, kernels)
    assert fit.kernel_names == names
    assert fit.proportions.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(fit.lambdas * fit.sigma2, fit.variance_components[:-1], rtol=1e-12)
    # fixed effects are GLS at the estimates
    v = combined_kinship(fit.lambdas, list(kernels.values())) + np.eye(n_individuals)
    v_inverse = np.linalg.inv(v)
    gls = np.linalg.solve(fixed.T @ v_inverse @ fixed, fixed.T @ v_inverse @ y)
    np.testing.assert_allclose(fit.fixed_effects, gls, rtol=1e-8, atol=1e-10)
    se = np.sqrt(np.diag(np.linalg.inv(fixed.T @ v_inverse @ fixed / fit.sigma2)))
    np.testing.assert_allclose(fit.fixed_effects_se, se, rtol=1e-8)


def test_lbfgsb_method_agrees_with_ai():
    kernels = simulated_kernels(11, 80, which=("a", "dd"))
    fixed = design(12, 80)
    y = simulate_trait(13, list(kernels.values()), [1.0, 0.5], fixed)
    ai = fit_reml(y, fixed, kernels)
    lbfgsb = fit_reml(y, fixed, kernels, method="lbfgsb")
    assert lbfgsb.method == "lbfgsb" and ai.method == "ai"
    assert ai.loglik == pytest.approx(lbfgsb.loglik, rel=1e-8)
    np.testing.assert_allclose(ai.variance_components, lbfgsb.variance_components, rtol=2e-3, atol=1e-4)
    # AI stopped early falls back to L-BFGS-B and reaches the same optimum
    fallback = fit_reml(y, fixed, kernels, max_iterations=1)
    assert fallback.method == "ai+lbfgsb" and fallback.converged
    assert fallback.loglik == pytest.approx(ai.loglik, rel=1e-8)


def test_boundary_component_is_zero_with_nan_standard_error():
    n = 100
    kernels = simulated_kernels(21, n, which=("a", "aa"))
    fixed = design(22, n)
    y = simulate_trait(23, [kernels["a"]], [1.0], fixed)
    # remove y's component along the leading eigenvectors of K_aa: its variance goes to zero
    _, vectors = np.linalg.eigh(kernels["aa"])
    leading = vectors[:, -30:]
    y = y - leading @ (leading.T @ y) * 0.9
    fit = fit_reml(y, fixed, kernels)
    theta_ref = assert_matches_reference(fit, y, fixed, kernels)
    assert theta_ref[1] < 1e-3 * theta_ref.sum()
    assert fit.lambdas[1] == 0.0 and fit.on_boundary[1]
    assert np.isnan(fit.lambda_se[1]) and np.isnan(fit.variance_se[1])
    assert np.isfinite(fit.lambda_se[0]) and np.isfinite(fit.variance_se[-1])


def test_standard_errors_from_information_match_numerical_hessian():
    kernels = simulated_kernels(31, 90, which=("a",))
    fixed = design(32, 90)
    y = simulate_trait(33, [kernels["a"]], [2.0], fixed)
    fit = fit_reml(y, fixed, kernels)
    theta = fit.variance_components
    hessian = np.empty((2, 2))
    step = 1e-4 * theta
    f = lambda t: 0.5 * textbook_minus2_loglik(t, y, fixed, [kernels["a"]])  # noqa: E731
    for i in range(2):
        for j in range(2):
            ei, ej = np.eye(2)[i] * step[i], np.eye(2)[j] * step[j]
            hessian[i, j] = (f(theta + ei + ej) - f(theta + ei - ej) - f(theta - ei + ej)
                             + f(theta - ei - ej)) / (4 * step[i] * step[j])
    observed_se = np.sqrt(np.diag(np.linalg.inv(hessian)))
    # AI = observed information in expectation; at the optimum they agree to a few percent
    np.testing.assert_allclose(fit.variance_se, observed_se, rtol=0.15)


def test_planted_truth_many_traits_with_missing_values():
    n, n_traits = 400, 20
    kernels = simulated_kernels(41, n, n_markers=60, which=("a", "aa"))
    fixed = design(42, n)
    truth_lambdas, truth_sigma2 = np.array([1.0, 0.6]), 1.5
    phenotypes = np.column_stack([simulate_trait(100 + j, list(kernels.values()), truth_lambdas, fixed,
                                                 sigma2=truth_sigma2) for j in range(n_traits)])
    missing = unit_rng(43, "missing").random(size=phenotypes.shape) < 0.05
    missing[:, 0] = False
    phenotypes[missing] = np.nan
    fits = fit_reml_many(phenotypes, fixed, kernels)
    assert len(fits) == n_traits and all(fit.converged for fit in fits)
    assert fits[0].n_individuals == n and fits[1].n_individuals == n - missing[:, 1].sum()
    # variance components theta = sigma2 * (lambda, 1) average to the truth within 3 standard errors
    estimates = np.array([fit.variance_components for fit in fits])
    truth = truth_sigma2 * np.append(truth_lambdas, 1.0)
    standard_error = estimates.std(axis=0, ddof=1) / np.sqrt(n_traits)
    assert np.all(np.abs(estimates.mean(axis=0) - truth) < 3 * standard_error), (estimates.mean(0), truth)
    np.testing.assert_allclose(estimates.mean(axis=0), truth, rtol=0.3)
    # each trait equals its own fit on the observed subset
    keep = ~np.isnan(phenotypes[:, 1])
    alone = fit_reml(phenotypes[keep, 1], fixed[keep], {k: v[np.ix_(keep, keep)] for k, v in kernels.items()})
    assert alone.loglik == pytest.approx(fits[1].loglik, rel=1e-12)


def test_combined_kinship():
    kernels = [np.eye(3), np.ones((3, 3))]
    np.testing.assert_allclose(combined_kinship([2.0, 0.5], kernels), 2 * np.eye(3) + 0.5)
    with pytest.raises(InputError, match="one lambda per kernel"):
        combined_kinship([1.0], kernels)


def test_input_errors():
    n = 30
    kernels = simulated_kernels(51, n, which=("a",))
    fixed = design(52, n)
    y = simulate_trait(53, [kernels["a"]], [1.0], fixed)
    with pytest.raises(InputError, match="constant phenotype"):
        fit_reml(np.full(n, 3.0), None, kernels)
    with pytest.raises(InputError, match="at least 3 individuals"):
        fit_reml(y[:2], fixed[:2], {"a": kernels["a"][:2, :2]})
    bad = kernels["a"].copy()
    bad[3, 4] = bad[4, 3] = np.nan
    with pytest.raises(InputError, match="NaN"):
        fit_reml(y, fixed, {"a": bad})
    with pytest.raises(InputError, match="singular"):
        fit_reml(y, fixed, {"a": kernels["a"], "zero": np.zeros((n, n))})
    with pytest.raises(InputError, match="singular"):
        fit_reml(y, fixed, {"constant": np.ones((n, n))})
    asymmetric = kernels["a"].copy()
    asymmetric[0, 1] += 1.0
    with pytest.raises(InputError, match="not symmetric"):
        fit_reml(y, fixed, {"a": asymmetric})
    with pytest.raises(InputError, match="shape"):
        fit_reml(y, fixed, {"a": kernels["a"][:-1, :-1]})
    with pytest.raises(InputError, match="full column rank"):
        fit_reml(y, np.column_stack([fixed, fixed[:, 1]]), kernels)
    with pytest.raises(InputError, match="trait 2"):
        fit_reml_many(np.column_stack([y, np.full(n, 1.0)]), fixed, kernels)
