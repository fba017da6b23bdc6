"""Block-mixture kernels against slow, obvious references (spec A1.3-A1.8).

* the composite likelihood against exhaustive enumeration of the other dimension's classes;
* the E-step's weighted sums against the dense weight array w_ijql built cell by cell;
* EM monotone under every variance structure, constraint and both row-class modes;
* the EM optimum not beaten by scipy's L-BFGS started there;
* constrained fits satisfy their constraints.
"""

import itertools

import numpy as np
import pytest
from scipy import optimize
from scipy.special import logsumexp

from qtlhpc.methods.blockmix import kernels as K

VARIANCES = ("cluster", "block", "common")


def log_normal(y, mean, var):
    return -0.5 * (np.log(2 * np.pi * var) + (y - mean) ** 2 / var)


def brute_force_cl(Y, pi, rho, mu, var, parts="row+column"):
    """Exhaustive enumeration: f_R(y_i.) sums over every column labelling c_1..c_G for each row class, and
    f_C(y_.j) over every row labelling q_1..q_n for each column class (the CL's definition, A1.3)."""
    n, G = Y.shape
    Q, Kc = mu.shape
    total = 0.0
    if parts == "row+column":
        for i in range(n):
            f = 0.0
            for q in range(Q):
                for labels in itertools.product(range(Kc), repeat=G):
                    f += pi[i, q] * np.prod([rho[l] * np.exp(log_normal(Y[i, j], mu[q, l], var[q, l]))
                                             for j, l in enumerate(labels)])
            total += np.log(f)
    for j in range(G):
        f = 0.0
        for l in range(Kc):
            for labels in itertools.product(range(Q), repeat=n):
                f += rho[l] * np.prod([pi[i, q] * np.exp(log_normal(Y[i, j], mu[q, l], var[q, l]))
                                       for i, q in enumerate(labels)])
        total += np.log(f)
    return total


def dense_weights(Y, pi, rho, mu, var, parts="row+column"):
    """w_ijql = r_iq a_ijl|q + c_jl b_ijq|l (A1.6) from the full (n, G, Q, K) array of log densities."""
    logphi = log_normal(Y[:, :, None, None], mu[None, None], var[None, None])          # (n, G, Q, K)
    with np.errstate(divide="ignore"):
        log_pi, log_rho = np.log(pi), np.log(rho)
    log_A = logsumexp(log_rho + logphi, axis=3)                                        # (n, G, Q)
    a = np.exp(log_rho + logphi - log_A[..., None])
    log_B = logsumexp(log_pi[:, None, :, None] + logphi, axis=2)                       # (n, G, K)
    b = np.exp(log_pi[:, None, :, None] + logphi - log_B[:, :, None, :])
    col = log_rho + log_B.sum(axis=0)                                                  # (G, K)
    c = np.exp(col - logsumexp(col, axis=1, keepdims=True))
    w = c[None, :, None, :] * b
    cl = logsumexp(col, axis=1).sum()
    if parts == "row+column":
        row = log_pi + log_A.sum(axis=1)                                               # (n, Q)
        r = np.exp(row - logsumexp(row, axis=1, keepdims=True))
        w = w + r[:, None, :, None] * a
        cl += logsumexp(row, axis=1).sum()
    return w, cl


def random_problem(rng, n=4, G=3, Kc=2, Q=2, informative_rows=(0,), zero_rows=()):
    Y = rng.normal(size=(n, G)) * 1.5
    pi = rng.dirichlet(np.ones(Q), size=n)
    for i in informative_rows:
        pi[i] = np.eye(Q)[rng.integers(Q)]
    rho = rng.dirichlet(np.ones(Kc) * 3)
    mu = rng.normal(size=(Q, Kc))
    var = rng.uniform(0.5, 2.0, size=(Q, Kc))
    return Y, pi, rho, mu, var


@pytest.mark.parametrize("parts", ["row+column", "column"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_composite_likelihood_equals_enumeration(seed, parts):
    rng = np.random.default_rng(seed)
    Y, pi, rho, mu, var = random_problem(rng, n=4, G=3, Kc=2, Q=2, informative_rows=(1,))
    expected = brute_force_cl(Y, pi, rho, mu, var, parts)
    assert K.composite_loglik(Y, pi, rho, mu, var, parts) == pytest.approx(expected, rel=1e-12, abs=1e-10)


def test_composite_likelihood_three_genotypes_enumeration():
    rng = np.random.default_rng(5)
    Y, pi, rho, mu, var = random_problem(rng, n=3, G=3, Kc=3, Q=3, informative_rows=(0, 2))
    assert K.composite_loglik(Y, pi, rho, mu, var) == pytest.approx(brute_force_cl(Y, pi, rho, mu, var), rel=1e-12)


def test_far_cells_do_not_underflow_to_nan():
    """Cells hundreds of SDs from some clusters: the column product is rescaled, no NaN, same as dense."""
    rng = np.random.default_rng(3)
    Y, pi, rho, mu, var = random_problem(rng, n=60, G=5, Kc=3, Q=2, informative_rows=range(0, 60, 2))
    mu[:, 2] = 40.0
    var[:] = 0.05
    _, dense_cl = dense_weights(Y, pi, rho, mu, var)
    value = K.composite_loglik(Y, pi, rho, mu, var)
    assert np.isfinite(value) and value == pytest.approx(dense_cl, rel=1e-10)


@pytest.mark.parametrize("parts", ["row+column", "column"])
def test_sufficient_statistics_equal_dense_weights(parts):
    rng = np.random.default_rng(7)
    Y, pi, rho, mu, var = random_problem(rng, n=9, G=11, Kc=3, Q=2, informative_rows=(0, 3, 4))
    w, cl = dense_weights(Y, pi, rho, mu, var, parts)
    stats = K.estep_stats(Y, pi, rho, mu, var, parts=parts)
    post = K.posterior(stats, pi, rho, parts)
    suff = K.sufficient(stats, post, parts)
    assert post.cl == pytest.approx(cl, rel=1e-12)
    np.testing.assert_allclose(suff.N, w.sum(axis=(0, 1)), rtol=1e-11)
    np.testing.assert_allclose(suff.S, np.einsum("ijql,ij->ql", w, Y), rtol=1e-11)
    np.testing.assert_allclose(suff.T, np.einsum("ijql,ij->ql", w, Y ** 2), rtol=1e-11)
    n, G = Y.shape
    assert suff.N.sum() == pytest.approx(n * G * (2 if parts == "row+column" else 1))


CONSTRAINTS = [None, ("i", {}), ("ii", {"cluster": 1}), ("iii", {"cluster": 0, "other": 2}),
               ("iv", {"genotype": 1, "cluster": 0, "other": 1})]


@pytest.mark.parametrize("variance", VARIANCES)
@pytest.mark.parametrize("constraint", CONSTRAINTS, ids=lambda c: "none" if c is None else c[0])
@pytest.mark.parametrize("estimate_pi", [False, True])
def test_em_never_decreases_and_constraints_hold(variance, constraint, estimate_pi):
    rng = np.random.default_rng(11)
    Y, pi, rho, mu, var = random_problem(rng, n=12, G=20, Kc=3, Q=2, informative_rows=range(6))
    if estimate_pi:
        pi = np.broadcast_to([0.3, 0.7], pi.shape).copy()
    L = None if constraint is None else K.constraint_rows(constraint[0], 2, 3, **constraint[1])
    fit = K.fit_em(Y, pi, mu, var, rho, variance=variance, estimate_pi=estimate_pi, constraints=L,
                   tol=1e-13, max_iter=300, check_monotone=False)
    steps = np.diff(fit.trace)
    assert fit.iterations > 3
    assert steps.min() >= -1e-9 * abs(fit.cl), steps.min()
    if L is not None:
        np.testing.assert_allclose(L @ fit.mu.ravel(), 0.0, atol=1e-10)
    if variance == "cluster":
        np.testing.assert_allclose(fit.var[0], fit.var[1])
    if variance == "common":
        assert np.ptp(fit.var) == 0.0
    assert fit.rho.sum() == pytest.approx(1.0)


def _pack(mu, var, rho, variance):
    v = {"cluster": np.log(var[0]), "block": np.log(var).ravel(), "common": np.log(var[:1, 0])}[variance]
    return np.concatenate([mu.ravel(), v, np.log(rho[1:] / rho[0])])


def _unpack(x, Q, Kc, variance):
    mu = x[:Q * Kc].reshape(Q, Kc)
    nv = {"cluster": Kc, "block": Q * Kc, "common": 1}[variance]
    v = np.exp(x[Q * Kc:Q * Kc + nv])
    var = {"cluster": lambda: np.tile(v, (Q, 1)), "block": lambda: v.reshape(Q, Kc),
           "common": lambda: np.full((Q, Kc), v[0])}[variance]()
    logits = np.concatenate([[0.0], x[Q * Kc + nv:]])
    rho = np.exp(logits - logsumexp(logits))
    return mu, var, rho


@pytest.mark.parametrize("variance", VARIANCES)
def test_em_optimum_not_beaten_by_lbfgs(variance):
    """A dense generic optimiser (L-BFGS-B on the numpy CL of dense_weights) started at the EM optimum
    finds nothing better."""
    rng = np.random.default_rng(4)
    Y, pi, rho, mu, var = random_problem(rng, n=10, G=14, Kc=2, Q=2, informative_rows=range(5))
    Y[:, :7] += 2.0
    fit = K.fit_em(Y, pi, mu, var, rho, variance=variance, tol=1e-14, max_iter=5000)
    x0 = _pack(fit.mu, fit.var, fit.rho, variance)

    def objective(x):
        m, v, r = _unpack(x, 2, 2, variance)
        return -dense_weights(Y, pi, r, m, v)[1]

    assert -objective(x0) == pytest.approx(fit.cl, rel=1e-12)
    best = optimize.minimize(objective, x0, method="L-BFGS-B", options={"maxiter": 500, "ftol": 1e-15})
    assert -best.fun <= fit.cl + 1e-6 * abs(fit.cl)


def test_projection_is_the_constrained_weighted_least_squares():
    rng = np.random.default_rng(2)
    m, D = rng.normal(size=(2, 4)), rng.uniform(0.1, 1, size=(2, 4))
    L = np.vstack([K.constraint_rows("iii", 2, 4, cluster=0, other=3), K.constraint_rows("ii", 2, 4, cluster=1)])
    mu = K.project_means(m, D, L)
    result = optimize.minimize(lambda x: np.sum((x - m.ravel()) ** 2 / D.ravel()), m.ravel(),
                               constraints={"type": "eq", "fun": lambda x: L @ x}, method="SLSQP",
                               options={"ftol": 1e-14})
    np.testing.assert_allclose(mu.ravel(), result.x, atol=1e-6)
    np.testing.assert_allclose(L @ mu.ravel(), 0, atol=1e-12)


def test_constraint_rows_and_bic():
    L = K.constraint_rows("i", 2, 3)
    assert L.shape == (3, 6)
    mu = np.array([[1.0, 2, 3], [1, 2, 3]])
    np.testing.assert_allclose(L @ mu.ravel(), 0)
    assert K.n_parameters(43, 2, "cluster") == 42 + 1 + 86 + 43
    assert K.cl_bic(-10.0, 2, 2, "common", 3, 4) == pytest.approx(20 + (1 + 1 + 4 + 1) * np.log(12))


@pytest.mark.parametrize("parts", ["row+column", "column"])
def test_informative_kernels_equal_the_general_pass(parts):
    """At a fully informative position (pi 0/1) the individuals-outer row kernel and the sufficient-statistics
    column layer give the general pass's sums."""
    rng = np.random.default_rng(9)
    Y, pi, rho, mu, var = random_problem(rng, n=30, G=25, Kc=4, Q=3, informative_rows=range(30))
    mu[:, 3] = 30.0                      # a far cluster: the exact log-space path
    fast = K.estep_stats(Y, pi, rho, mu, var, parts=parts)
    general = K.estep_stats(Y, pi, rho, mu, var, parts=parts, informative="never")
    for name in ("row_loglik", "row_stats", "col_loglik", "col_stats"):
        np.testing.assert_allclose(getattr(fast, name), getattr(general, name), rtol=1e-11, atol=1e-9, err_msg=name)
    post = K.posterior(fast, pi, rho, parts)
    assert post.cl == pytest.approx(dense_weights(Y, pi, rho, mu, var, parts)[1], rel=1e-12)
