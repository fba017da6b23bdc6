"""Dense maximum-likelihood and GLS fits with explicit ``(n, n)`` covariances and a generic optimiser.

The slow, obvious references the PEPIS 1D and 2D scans (tests/test_scan1d.py, tests/test_scan2d.py) are
checked against.
"""

import numpy as np
import scipy.optimize


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
    from several starts; returns (LRT = 2 (l1 - l0), phi, the negative log-likelihood as a function of phi)."""
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
