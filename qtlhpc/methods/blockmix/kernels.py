"""Block-mixture kernels (Wang et al. 2016, Sci. Rep. 6:21193): the row + column composite likelihood and
its two-layer EM, as reconstructed in specs/blockmix-cocluster.md A1.3-A1.8.

Notation (shapes are the contract):

* ``Y (n_individuals, n_genes)`` expression; rows = individuals, columns = genes;
* ``pi (n_individuals, n_genotypes)`` row-class probabilities (genotype probabilities at a position, or
  one common row of proportions broadcast in stage 1);
* ``rho (n_clusters,)`` gene-cluster proportions; ``mu, var (n_genotypes, n_clusters)`` cell means and
  variances.

The composite log-likelihood is (spec A1.3)::

    A_ijq = sum_l rho_l phi(y_ij; mu_ql, var_ql)      f_R(y_i.) = sum_q pi_iq prod_j A_ijq
    B_ijl = sum_q pi_iq phi(y_ij; mu_ql, var_ql)      f_C(y_.j) = sum_l rho_l prod_i B_ijl
    cl = sum_i log f_R(y_i.) + sum_j log f_C(y_.j)

The E-step needs one density per (i, j, q, l) and a single pass over the cells: the row layer's
within-row weights ``a_ijl|q`` do not depend on the row posterior ``r_iq``, so the kernel accumulates
``sum_j a_ijl|q (1, y, y^2)`` per (i, q, l) and the posterior is applied afterwards; the column layer's
``b_ijq|l`` likewise per (j, q, l), with ``c_jl`` applied after the gene's column is done.  Genotype classes
with ``pi_iq = 0`` are skipped.  At a fully informative position (every row one genotype) two special kernels
give the same sums: the row layer with individuals outer (an individual's sums stay in L1) and the column layer
from per-gene sufficient statistics (spec A1.7's fast path).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Optional

import numba
import numpy as np

VARIANCES = ("cluster", "block", "common")
PARTS = ("row+column", "column")
LOG_2PI = float(np.log(2.0 * np.pi))
#: a cluster whose proportion falls below this is degenerate (spec A1.7 guards)
MIN_PROPORTION = 1e-8
#: linear-scale sums and products below this switch to log space (exact, only for far clusters/genotypes)
_TINY = 1e-150


@dataclass
class EStats:
    """What one E-step pass returns (at the parameters it was given).

    ``row_loglik (n, Q)``: sum_j log A_ijq; ``row_stats (n, Q, 3, K)``: sum_j a_ijl|q (1, y, y^2);
    ``col_loglik (G, K)``: sum_i log B_ijl; ``col_stats (G, Q, 3, K)``: sum_i b_ijq|l (1, y, y^2).
    """

    row_loglik: np.ndarray
    row_stats: np.ndarray
    col_loglik: np.ndarray
    col_stats: np.ndarray


_FAST = {"contract", "arcp", "nsz", "reassoc"}        # no "nnan"/"ninf": -inf marks absent classes
_LN2_HI = 0.693147180369123816490
_LN2_LO = 1.90821492927058770002e-10
_INV_LN2 = 1.4426950408889634


@numba.njit(cache=True, nogil=True, fastmath=_FAST, inline="always")
def _exp_shifted(values, shift, out, bits):
    """``out[l] = exp(values[l] - shift)`` for ``values - shift <= 0``, vectorisable (no libm call).

    Cody-Waite reduction by ln 2 and a degree-13 Taylor polynomial on |t| <= ln2/2: relative error against
    numpy below 5e-16 for arguments in [-5, 0], growing to 3e-14 at -708 (checked in the tests); arguments
    below -708 give exp(-708) ~ 3e-308, a value that every caller treats as negligible (sums against 1) or
    routes to the exact log-space path (_TINY).
    """
    for l in range(values.shape[0]):
        v = max(values[l] - shift, -708.0)
        k = np.floor(v * _INV_LN2 + 0.5)
        t = (v - k * _LN2_HI) - k * _LN2_LO
        p = 1.0 / 6227020800.0
        p = p * t + 1.0 / 479001600.0
        p = p * t + 1.0 / 39916800.0
        p = p * t + 1.0 / 3628800.0
        p = p * t + 1.0 / 362880.0
        p = p * t + 1.0 / 40320.0
        p = p * t + 1.0 / 5040.0
        p = p * t + 1.0 / 720.0
        p = p * t + 1.0 / 120.0
        p = p * t + 1.0 / 24.0
        p = p * t + 1.0 / 6.0
        p = p * t + 0.5
        p = p * t + 1.0
        p = p * t + 1.0
        out[l] = p
        bits[l] = (np.int64(k) + 1023) << 52
    scale = bits.view(np.float64)
    for l in range(values.shape[0]):
        out[l] *= scale[l]


def exp_shifted(values: np.ndarray, shift: float = 0.0) -> np.ndarray:
    """``exp(values - shift)`` by the kernels' own exponential (for tests)."""
    values = np.ascontiguousarray(values, dtype=np.float64)
    out = np.empty_like(values)
    _exp_shifted(values, float(shift), out, np.empty(values.shape, np.int64))
    return out


@numba.njit(cache=True, nogil=True, fastmath=_FAST, inline="always")
def _row_layer(i, q, y, y2, m, rho, log_rho, logphi, e, row_loglik, row_stats):
    """Row layer of one cell and genotype: log A_ijq and a_ijl|q from e_ql = exp(logphi_ql - m)."""
    K = rho.shape[0]
    eq = e[q]
    total = 0.0
    for l in range(K):
        total += rho[l] * eq[l]
    if total > _TINY:
        row_loglik[i, q] += m + np.log(total)
        inv = 1.0 / total
        s0 = row_stats[i, q, 0]
        s1 = row_stats[i, q, 1]
        s2 = row_stats[i, q, 2]
        for l in range(K):
            a = rho[l] * eq[l] * inv
            s0[l] += a
            s1[l] += a * y
            s2[l] += a * y2
        return
    top = -np.inf
    for l in range(K):
        if log_rho[l] + logphi[q, l] > top:
            top = log_rho[l] + logphi[q, l]
    acc = 0.0
    for l in range(K):
        acc += np.exp(log_rho[l] + logphi[q, l] - top)
    log_a = top + np.log(acc)
    row_loglik[i, q] += log_a
    for l in range(K):
        a = np.exp(log_rho[l] + logphi[q, l] - log_a)
        row_stats[i, q, 0, l] += a
        row_stats[i, q, 1, l] += a * y
        row_stats[i, q, 2, l] += a * y2


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _estep_pass(YT, pi, rho, mu, var, do_rows, row_loglik, row_stats, col_loglik, col_stats):
    """One pass over all cells; see the module docstring.  ``YT (G, n)`` (genes contiguous)."""
    n_genes, n = YT.shape
    Q, K = mu.shape
    const = np.empty((Q, K))
    half_precision = np.empty((Q, K))
    for q in range(Q):
        for l in range(K):
            const[q, l] = -0.5 * (LOG_2PI + np.log(var[q, l]))
            half_precision[q, l] = 0.5 / var[q, l]
    log_rho = np.log(rho)
    log_pi = np.full(pi.shape, -np.inf)
    n_active = np.zeros(n, np.int64)
    single = np.zeros(n, np.int64)
    for i in range(n):
        for q in range(Q):
            if pi[i, q] > 0.0:
                log_pi[i, q] = np.log(pi[i, q])
                n_active[i] += 1
                single[i] = q
    logphi = np.empty((Q, K))
    e = np.zeros((Q, K))
    bits = np.empty(K, np.int64)
    b_total = np.empty(K)
    inv_b = np.empty(K)
    prod = np.empty(K)
    log_sum = np.empty(K)
    add_single = np.empty(K)
    stats_single = np.zeros((Q, 3))
    for j in range(n_genes):
        for l in range(K):
            prod[l] = 1.0
            log_sum[l] = 0.0
            add_single[l] = 0.0
        for q in range(Q):
            for t in range(3):
                stats_single[q, t] = 0.0
        shift_total = 0.0
        for i in range(n):
            y = YT[j, i]
            y2 = y * y
            m = -np.inf
            for q in range(Q):
                if pi[i, q] <= 0.0:
                    continue
                for l in range(K):
                    d = y - mu[q, l]
                    logphi[q, l] = const[q, l] - d * d * half_precision[q, l]
                for l in range(K):
                    m = max(m, logphi[q, l])
            if n_active[i] == 1:
                # one genotype: b_ijq|l = 1 and log B_ijl = log phi exactly (no exponent needed)
                q = single[i]
                for l in range(K):
                    add_single[l] += logphi[q, l]
                stats_single[q, 0] += 1.0
                stats_single[q, 1] += y
                stats_single[q, 2] += y2
                if do_rows:
                    _exp_shifted(logphi[q], m, e[q], bits)
                    _row_layer(i, q, y, y2, m, rho, log_rho, logphi, e, row_loglik, row_stats)
                continue
            for q in range(Q):
                if pi[i, q] > 0.0:
                    _exp_shifted(logphi[q], m, e[q], bits)
            # column layer: B'_l = sum_q pi_iq e_ql, b_q|l = pi_iq e_ql / B'_l; the product of B' over rows
            # is kept in linear scale, moved into log_sum[l] before it can underflow; B' below _TINY (far
            # clusters) is handled exactly in log space
            shift_total += m
            for l in range(K):
                b_total[l] = 0.0
            for q in range(Q):
                if pi[i, q] > 0.0:
                    weight = pi[i, q]
                    for l in range(K):
                        b_total[l] += weight * e[q, l]
            exact = False
            for l in range(K):
                if b_total[l] > _TINY:
                    prod[l] *= b_total[l]
                    inv_b[l] = 1.0 / b_total[l]
                else:
                    inv_b[l] = 0.0
                    exact = True
            for q in range(Q):
                if pi[i, q] > 0.0:
                    weight = pi[i, q]
                    for l in range(K):
                        b = weight * e[q, l] * inv_b[l]
                        col_stats[j, q, 0, l] += b
                        col_stats[j, q, 1, l] += b * y
                        col_stats[j, q, 2, l] += b * y2
            if exact:
                for l in range(K):
                    if inv_b[l] > 0.0:
                        continue
                    top = -np.inf
                    for q in range(Q):
                        if pi[i, q] > 0.0 and log_pi[i, q] + logphi[q, l] > top:
                            top = log_pi[i, q] + logphi[q, l]
                    acc = 0.0
                    for q in range(Q):
                        if pi[i, q] > 0.0:
                            acc += np.exp(log_pi[i, q] + logphi[q, l] - top)
                    log_b = top + np.log(acc)
                    log_sum[l] += log_b - m
                    for q in range(Q):
                        if pi[i, q] > 0.0:
                            b = np.exp(log_pi[i, q] + logphi[q, l] - log_b)
                            col_stats[j, q, 0, l] += b
                            col_stats[j, q, 1, l] += b * y
                            col_stats[j, q, 2, l] += b * y2
            for l in range(K):
                if prod[l] < _TINY:
                    log_sum[l] += np.log(prod[l])
                    prod[l] = 1.0
            # row layer: A'_q = sum_l rho_l e_ql, a_l|q = rho_l e_ql / A'_q
            if do_rows:
                for q in range(Q):
                    if pi[i, q] > 0.0:
                        _row_layer(i, q, y, y2, m, rho, log_rho, logphi, e, row_loglik, row_stats)
        for l in range(K):
            col_loglik[j, l] = add_single[l] + log_sum[l] + shift_total + np.log(prod[l])
        for q in range(Q):
            for t in range(3):
                for l in range(K):
                    col_stats[j, q, t, l] += stats_single[q, t]
    for i in range(n):
        for q in range(Q):
            if pi[i, q] <= 0.0:
                row_loglik[i, q] = -np.inf


@numba.njit(cache=True, nogil=True, fastmath=_FAST)
def _estep_informative(Y, genotype, rho, mu, var, row_loglik, row_stats):
    """Row layer at a fully informative position (each individual one genotype ``genotype (n,)``): individuals
    outer, genes inner, so an individual's sums ``row_stats[i, g_i]`` stay in L1 over all genes.  ``Y (n, G)``."""
    n, n_genes = Y.shape
    Q, K = mu.shape
    const = np.empty((Q, K))
    half_precision = np.empty((Q, K))
    for q in range(Q):
        for l in range(K):
            const[q, l] = -0.5 * (LOG_2PI + np.log(var[q, l]))
            half_precision[q, l] = 0.5 / var[q, l]
    log_rho = np.log(rho)
    logphi = np.empty((1, K))
    e = np.empty((1, K))
    bits = np.empty(K, np.int64)
    sums = np.empty((3, K))
    for i in range(n):
        q = genotype[i]
        for t in range(3):
            for l in range(K):
                sums[t, l] = 0.0
        loglik = 0.0
        for j in range(n_genes):
            y = Y[i, j]
            m = -np.inf
            for l in range(K):
                d = y - mu[q, l]
                logphi[0, l] = const[q, l] - d * d * half_precision[q, l]
            for l in range(K):
                m = max(m, logphi[0, l])
            _exp_shifted(logphi[0], m, e[0], bits)
            total = 0.0
            for l in range(K):
                e[0, l] *= rho[l]
                total += e[0, l]
            if total > _TINY:
                loglik += m + np.log(total)
                inv = 1.0 / total
                for l in range(K):
                    a = e[0, l] * inv
                    sums[0, l] += a
                    sums[1, l] += a * y
                    sums[2, l] += a * y * y
            else:
                top = -np.inf
                for l in range(K):
                    top = max(top, log_rho[l] + logphi[0, l])
                acc = 0.0
                for l in range(K):
                    acc += np.exp(log_rho[l] + logphi[0, l] - top)
                log_a = top + np.log(acc)
                loglik += log_a
                for l in range(K):
                    a = np.exp(log_rho[l] + logphi[0, l] - log_a)
                    sums[0, l] += a
                    sums[1, l] += a * y
                    sums[2, l] += a * y * y
        for qq in range(Q):
            row_loglik[i, qq] = -np.inf
        row_loglik[i, q] = loglik
        for t in range(3):
            for l in range(K):
                row_stats[i, q, t, l] = sums[t, l]


def _column_informative(Y, genotype, mu, var, col_loglik, col_stats):
    """Column layer at a fully informative position from per-gene sufficient statistics (spec A1.7 fast path):
    ``log prod_i B_ijl = sum_q [n_q c_ql - h_ql (V_jq - 2 mu_ql U_jq + n_q mu_ql^2)]``; b_ijq|l = 1."""
    Q, K = mu.shape
    indicator = np.zeros((Y.shape[0], Q))
    indicator[np.arange(Y.shape[0]), genotype] = 1.0
    counts = indicator.sum(axis=0)                         # (Q,)
    U = Y.T @ indicator                                    # (G, Q)
    V = (Y * Y).T @ indicator
    const = -0.5 * (LOG_2PI + np.log(var))                 # (Q, K)
    h = 0.5 / var
    col_loglik[:] = (counts[:, None] * (const - h * mu * mu)).sum(axis=0)[None, :] \
        - V @ h + 2.0 * U @ (h * mu)
    col_stats[:, :, 0, :] = counts[None, :, None]
    col_stats[:, :, 1, :] = U[:, :, None]
    col_stats[:, :, 2, :] = V[:, :, None]


def estep_stats(Y: np.ndarray, pi: np.ndarray, rho: np.ndarray, mu: np.ndarray, var: np.ndarray, *,
                parts: str = "row+column", YT: Optional[np.ndarray] = None, informative: str = "auto") -> EStats:
    """The per-unit sums of one E-step at the given parameters (see :class:`EStats`).

    ``YT``: ``Y.T`` as a C-contiguous array, when the caller keeps one (avoids a copy per call).
    ``informative``: "auto" uses the fully-informative kernels when every row of ``pi`` is one genotype
    (0/1), "never" forces the general pass (for tests: both give the same sums).
    """
    n, G = Y.shape
    Q, K = mu.shape
    pi = np.asarray(pi, dtype=np.float64)
    if informative == "auto" and np.all((pi == 0.0) | (pi == 1.0)) and np.all(pi.sum(axis=1) == 1.0):
        genotype = np.argmax(pi, axis=1).astype(np.int64)
        Yc = np.ascontiguousarray(Y, dtype=np.float64)
        row_loglik = np.zeros((n, Q))
        row_stats = np.zeros((n, Q, 3, K))
        col_loglik = np.zeros((G, K))
        col_stats = np.zeros((G, Q, 3, K))
        if parts == "row+column":
            _estep_informative(Yc, genotype, np.ascontiguousarray(rho, dtype=np.float64),
                               np.ascontiguousarray(mu, dtype=np.float64), np.ascontiguousarray(var, dtype=np.float64),
                               row_loglik, row_stats)
        else:
            row_loglik[pi == 0.0] = -np.inf
        _column_informative(Yc, genotype, np.asarray(mu, dtype=np.float64), np.asarray(var, dtype=np.float64),
                            col_loglik, col_stats)
        return EStats(row_loglik, row_stats, col_loglik, col_stats)
    if YT is None:
        YT = np.ascontiguousarray(Y.T, dtype=np.float64)
    row_loglik = np.zeros((n, Q))
    row_stats = np.zeros((n, Q, 3, K))
    col_loglik = np.zeros((G, K))
    col_stats = np.zeros((G, Q, 3, K))
    _estep_pass(YT, np.ascontiguousarray(pi, dtype=np.float64), np.ascontiguousarray(rho, dtype=np.float64),
                np.ascontiguousarray(mu, dtype=np.float64), np.ascontiguousarray(var, dtype=np.float64),
                parts == "row+column", row_loglik, row_stats, col_loglik, col_stats)
    return EStats(row_loglik, row_stats, col_loglik, col_stats)


def _log_softmax(values: np.ndarray) -> tuple:
    """``(log normaliser (rows,), posterior (rows, classes))`` of log weights along the last axis."""
    top = np.max(values, axis=-1, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    weights = np.exp(values - top)
    total = weights.sum(axis=-1, keepdims=True)
    return (np.log(total) + top)[..., 0], weights / total


@dataclass
class Posterior:
    """The E-step's layers: ``row (n, Q)`` r_iq, ``column (G, K)`` c_jl, and the composite log-likelihood
    parts ``row_cl``, ``column_cl`` at the parameters of the E-step."""

    row: Optional[np.ndarray]
    column: np.ndarray
    row_cl: float
    column_cl: float

    @property
    def cl(self) -> float:
        return self.row_cl + self.column_cl


def posterior(stats: EStats, pi: np.ndarray, rho: np.ndarray, parts: str = "row+column") -> Posterior:
    """Row and column posteriors (spec A1.6: r_iq, c_jl) and the composite log-likelihood."""
    with np.errstate(divide="ignore"):
        log_pi = np.log(pi)
        log_rho = np.log(rho)
    column_norm, column = _log_softmax(log_rho[None, :] + stats.col_loglik)
    if parts == "row+column":
        row_norm, row = _log_softmax(log_pi + stats.row_loglik)
        return Posterior(row, column, float(row_norm.sum()), float(column_norm.sum()))
    return Posterior(None, column, 0.0, float(column_norm.sum()))


def composite_loglik(Y, pi, rho, mu, var, parts: str = "row+column") -> float:
    """The composite log-likelihood cl (spec A1.3) at the given parameters."""
    stats = estep_stats(Y, pi, rho, mu, var, parts=parts)
    return posterior(stats, pi, rho, parts).cl


@dataclass
class Sufficient:
    """Weighted sufficient statistics of one E-step (spec A1.7): ``N, S, T (Q, K)``, the proportion
    numerators ``rho_num (K,)``, ``pi_num (Q,)`` and their totals."""

    N: np.ndarray
    S: np.ndarray
    T: np.ndarray
    rho_num: np.ndarray
    rho_total: float
    pi_num: np.ndarray
    pi_total: float


def sufficient(stats: EStats, post: Posterior, parts: str = "row+column") -> Sufficient:
    """Combine the pass sums with the posteriors: w_ijql = r_iq a_ijl|q + c_jl b_ijq|l summed over cells."""
    n, Q = stats.row_loglik.shape
    G, K = stats.col_loglik.shape
    column = np.einsum("jl,jqtl->qlt", post.column, stats.col_stats)         # (Q, K, 3)
    rho_num = post.column.sum(axis=0)
    pi_num = column[:, :, 0].sum(axis=1)
    rho_total, pi_total = float(G), float(n * G)
    if parts == "row+column":
        row = np.einsum("iq,iqtl->qlt", post.row, stats.row_stats)            # (Q, K, 3)
        column = column + row
        rho_num = rho_num + row[:, :, 0].sum(axis=0)
        pi_num = pi_num + post.row.sum(axis=0)
        rho_total += float(n * G)
        pi_total += float(n)
    return Sufficient(column[:, :, 0], column[:, :, 1], column[:, :, 2], rho_num, rho_total, pi_num, pi_total)


def project_means(m: np.ndarray, D: np.ndarray, constraints: Optional[np.ndarray]) -> np.ndarray:
    """``mu = m - D L^T (L D L^T)^-1 L m`` (spec A1.8): the minimiser of sum (mu - m)^2 / D subject to L mu = 0.

    ``m, D (Q, K)``; ``constraints (h, Q*K)`` over mu flattened genotype-major (mu_11..mu_1K, mu_21..).
    """
    if constraints is None or len(constraints) == 0:
        return m
    flat_m, flat_d = m.ravel(), D.ravel()
    L = np.asarray(constraints, dtype=float)
    LD = L * flat_d[None, :]
    correction = LD.T @ np.linalg.solve(LD @ L.T, L @ flat_m)
    return (flat_m - correction).reshape(m.shape)


def variance_update(SS: np.ndarray, N: np.ndarray, variance: str, floor: float) -> np.ndarray:
    """Variances from residual sums of squares ``SS (Q, K)`` and weights ``N (Q, K)`` (spec A1.7)."""
    if variance == "cluster":
        per_cluster = SS.sum(axis=0) / N.sum(axis=0)
        out = np.broadcast_to(per_cluster, SS.shape).copy()
    elif variance == "block":
        out = SS / N
    elif variance == "common":
        out = np.full(SS.shape, SS.sum() / N.sum())
    else:
        raise ValueError(f"variance {variance!r}; expected one of {VARIANCES}")
    return np.maximum(out, floor)


def mstep(suff: Sufficient, mu: np.ndarray, var: np.ndarray, *, variance: str, floor: float, constraints=None,
          estimate_pi: bool = False):
    """One (E)CM M-step (spec A1.7-A1.8): means (projected onto ``constraints`` with the current variances),
    then variances at those means, then proportions.  Returns ``(mu, var, rho, pi_common or None)``.

    A cell class with no weight (N_ql = 0: it does not enter the surrogate) keeps its mean and variance.
    """
    empty = suff.N <= 1e-12 * suff.N.sum()
    N = np.where(empty, 1e-12 * suff.N.sum(), suff.N)
    m = np.where(empty, mu, suff.S / N)
    mu = project_means(m, var / N, constraints)
    SS = np.maximum(suff.T - 2.0 * mu * suff.S + mu * mu * suff.N, 0.0)
    SS = np.where(empty, var * N, SS)
    new_var = variance_update(SS, N, variance, floor)
    rho = suff.rho_num / suff.rho_total
    pi = suff.pi_num / suff.pi_total if estimate_pi else None
    return mu, new_var, rho, pi


@dataclass
class Fit:
    """One EM fit: parameters, posteriors at them, cl trace and diagnostics."""

    mu: np.ndarray
    var: np.ndarray
    rho: np.ndarray
    pi: np.ndarray                        # (n, Q) as used (common proportions broadcast in stage 1)
    cl: float
    row_cl: float
    column_cl: float
    column: np.ndarray                    # (G, K) c_jl at the final parameters
    row: Optional[np.ndarray]             # (n, Q) r_iq at the final parameters
    iterations: int
    converged: bool
    degenerate: bool
    trace: np.ndarray = field(default_factory=lambda: np.empty(0))

    @property
    def labels(self) -> np.ndarray:
        return np.argmax(self.column, axis=1)


class MonotonicityError(RuntimeError):
    """The EM decreased the composite likelihood by more than rounding: a bug (spec A2.1 step 4)."""


def fit_em(Y: np.ndarray, pi: np.ndarray, mu: np.ndarray, var: np.ndarray, rho: np.ndarray, *,
           variance: str = "cluster", parts: str = "row+column", estimate_pi: bool = False, constraints=None,
           tol: float = 1e-9, max_iter: int = 1000, var_floor: Optional[float] = None,
           YT: Optional[np.ndarray] = None, check_monotone: bool = True) -> Fit:
    """EM (or ECM with ``constraints``) from the given start until ``cl`` gains at most ``tol * |cl|``.

    ``pi (n, Q)``: fixed row-class probabilities (stage 2), or with ``estimate_pi`` the common proportions'
    start broadcast over rows (stage 1).  The start is projected onto the constraints first.
    """
    if variance not in VARIANCES:
        raise ValueError(f"variance {variance!r}; expected one of {VARIANCES}")
    if parts not in PARTS:
        raise ValueError(f"parts {parts!r}; expected one of {PARTS}")
    Y = np.asarray(Y, dtype=np.float64)
    if YT is None:
        YT = np.ascontiguousarray(Y.T)
    floor = var_floor if var_floor is not None else 1e-6 * float(Y.var())
    pi = np.array(pi, dtype=np.float64)
    mu, var, rho = (np.array(a, dtype=np.float64) for a in (mu, var, rho))
    if constraints is not None and len(constraints):
        mu = project_means(mu, var, constraints)
    # the start obeys the variance structure
    var = variance_update(var, np.ones_like(var), variance, floor) if variance != "block" else np.maximum(var, floor)
    trace = []
    converged = degenerate = False
    iterations = 0
    while True:
        stats = estep_stats(Y, pi, rho, mu, var, parts=parts, YT=YT)
        post = posterior(stats, pi, rho, parts)
        cl = post.cl
        if trace:
            gain = cl - trace[-1]
            if check_monotone and gain < -max(1e-9 * abs(cl), 1e-8):
                raise MonotonicityError(f"cl decreased from {trace[-1]!r} to {cl!r} at iteration {iterations}")
            if gain <= tol * abs(cl):
                trace.append(cl)
                converged = True
                break
        trace.append(cl)
        if iterations >= max_iter or degenerate:
            break
        suff = sufficient(stats, post, parts)
        mu, var, rho, pi_common = mstep(suff, mu, var, variance=variance, floor=floor, constraints=constraints,
                                        estimate_pi=estimate_pi)
        if estimate_pi:
            pi = np.broadcast_to(pi_common, pi.shape).copy()
        if np.min(rho) < MIN_PROPORTION:
            degenerate = True
        iterations += 1
    return Fit(mu, var, rho, pi, cl, post.row_cl, post.column_cl, post.column, post.row, iterations, converged,
               degenerate, np.array(trace))


def constraint_rows(test: str, n_genotypes: int, n_clusters: int, cluster: int = 0, other: int = 0,
                    genotype: int = 0) -> np.ndarray:
    """Rows of ``L`` (spec A3) over mu flattened genotype-major, index ``q * K + l``.

    ``"i"``: mu_1l = mu_ql for all q > 1 and all l (no eQTL); ``"ii"``: the same for cluster ``cluster``;
    ``"iii"``: mu_ql - mu_1l = mu_ql' - mu_1l' for q > 1 (no genotype x cluster interaction for the pair
    (cluster, other)); ``"iv"``: mu_ql = mu_ql' for genotype ``genotype`` (clusters l and l' alike).
    """
    Q, K = n_genotypes, n_clusters

    def e(q, l):
        row = np.zeros(Q * K)
        row[q * K + l] = 1.0
        return row

    if test == "i":
        return np.array([e(0, l) - e(q, l) for q in range(1, Q) for l in range(K)])
    if test == "ii":
        return np.array([e(0, cluster) - e(q, cluster) for q in range(1, Q)])
    if test == "iii":
        return np.array([e(q, cluster) - e(0, cluster) - e(q, other) + e(0, other) for q in range(1, Q)])
    if test == "iv":
        return np.array([e(genotype, cluster) - e(genotype, other)])
    raise ValueError(f"test {test!r}; expected one of i, ii, iii, iv")


def n_parameters(n_clusters: int, n_genotypes: int, variance: str) -> int:
    """d_K = (K - 1) + (Q - 1) + QK + v_K (spec A1.9 item 3)."""
    v = {"cluster": n_clusters, "block": n_genotypes * n_clusters, "common": 1}[variance]
    return (n_clusters - 1) + (n_genotypes - 1) + n_genotypes * n_clusters + v


def cl_bic(cl: float, n_clusters: int, n_genotypes: int, variance: str, n_individuals: int, n_genes: int) -> float:
    """``CL-BIC(K) = -2 cl + d_K log(n G)`` (spec A1.9 item 3, bic = "naive")."""
    return -2.0 * cl + n_parameters(n_clusters, n_genotypes, variance) * np.log(n_individuals * n_genes)
