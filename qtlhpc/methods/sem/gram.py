"""Fast factor fits of the cyclic SEM from the cross-product matrix of the data (compiled with numba).

The concentrated likelihood of a factor (spec B1.2) depends on the data only through cross-products:
with ``Z = [Y X]`` centred and ``S = Z'Z``, the profiled statistics of member i (``a``, ``h``, ``H`` of
:class:`qtlhpc.methods.sem.kernels.FactorStats`) are Schur complements of a small block of S, obtained
here by the sweep operator on the member's exogenous columns.  The search evaluates hundreds of
thousands of factors; computing them from S costs O(k^3) per member instead of O(N k^2), and the
block-coordinate ascent with SQUAREM of :mod:`kernels` runs compiled.  :mod:`kernels` stays the
readable reference; the tests hold the two equal.

Packed layout of one factor with n members: member i has ``m_i`` within-factor parents (local indices
``inside[ins_ptr[i]:ins_ptr[i+1]]``) and ``k_i`` exogenous columns of S (``exo[exo_ptr[i]:exo_ptr[i+1]]``:
its eQTL parents as ``p + qtl``, then its gene parents outside the factor).  ``theta`` packs the
within-factor coefficients member by member.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

import numba
import numpy as np

LOG_2PI = math.log(2.0 * math.pi)
PIVOT_TOL = 1e-11   # a column whose residual sum of squares falls below this share of its own is collinear


@numba.njit(cache=True)
def _sweep(A, k):
    """Sweep operator on pivot k of the symmetric matrix A, in place."""
    n = A.shape[0]
    d = A[k, k]
    for j in range(n):
        A[k, j] /= d
    for i in range(n):
        if i == k:
            continue
        b = A[i, k]
        if b == 0.0:
            continue
        for j in range(n):
            A[i, j] -= b * A[k, j]
        A[i, k] = -b / d
    A[k, k] = 1.0 / d


@numba.njit(cache=True)
def _statistics(S, gene_of, ins_ptr, inside, exo_ptr, exo, tol):
    """Profiled statistics of every member: a (n,), h (sum m), H (sum m^2), coefficients of the
    regressions of [y_i, W_i] on the member's exogenous columns (sum k (1 + m)), deficient (n,)."""
    n = gene_of.shape[0]
    n_h = ins_ptr[n]
    size_H = 0
    size_C = 0
    for i in range(n):
        m = ins_ptr[i + 1] - ins_ptr[i]
        k = exo_ptr[i + 1] - exo_ptr[i]
        size_H += m * m
        size_C += k * (1 + m)
    a = np.empty(n)
    h = np.empty(n_h)
    H = np.empty(size_H)
    C = np.zeros(size_C)
    deficient = np.zeros(n, dtype=np.bool_)
    pos_H = 0
    pos_C = 0
    for i in range(n):
        m = ins_ptr[i + 1] - ins_ptr[i]
        k = exo_ptr[i + 1] - exo_ptr[i]
        size = k + 1 + m
        cols = np.empty(size, dtype=np.int64)
        for t in range(k):
            cols[t] = exo[exo_ptr[i] + t]
        cols[k] = gene_of[i]
        for t in range(m):
            cols[k + 1 + t] = gene_of[inside[ins_ptr[i] + t]]
        A = np.empty((size, size))
        for r in range(size):
            for c in range(size):
                A[r, c] = S[cols[r], cols[c]]
        swept = np.zeros(k, dtype=np.bool_)
        for t in range(k):
            original = S[cols[t], cols[t]]
            if A[t, t] > tol * original and A[t, t] > 0.0:
                _sweep(A, t)
                swept[t] = True
            else:
                deficient[i] = True
        a[i] = A[k, k]
        for s in range(m):
            h[ins_ptr[i] + s] = A[k + 1 + s, k]
            for u in range(m):
                H[pos_H + s * m + u] = A[k + 1 + s, k + 1 + u]
        for t in range(k):
            if swept[t]:
                for c in range(1 + m):
                    C[pos_C + t * (1 + m) + c] = A[t, k + c]
        pos_H += m * m
        pos_C += k * (1 + m)
    return a, h, H, C, deficient


@numba.njit(cache=True)
def _generalised_inverse(H, m, tol):
    """A generalised inverse of the PSD matrix H (m, m) by sweeping (collinear pivots left out)."""
    A = H.copy()
    swept = np.zeros(m, dtype=np.bool_)
    for t in range(m):
        if A[t, t] > tol * H[t, t] and A[t, t] > 0.0:
            _sweep(A, t)
            swept[t] = True
    out = np.zeros((m, m))
    for s in range(m):
        for u in range(m):
            if swept[s] and swept[u]:
                out[s, u] = A[s, u]
    return out


@numba.njit(cache=True)
def _constants(a, h, H, ins_ptr, n):
    """Per member: H^-1 (packed like H), b0 = H^-1 h (packed like h), R0 = RSS(b0)."""
    Hinv = np.empty(H.shape[0])
    b0 = np.empty(h.shape[0])
    R0 = np.empty(n)
    pos = 0
    for i in range(n):
        m = ins_ptr[i + 1] - ins_ptr[i]
        block = np.empty((m, m))
        for s in range(m):
            for u in range(m):
                block[s, u] = H[pos + s * m + u]
        inverse = _generalised_inverse(block, m, 1e-13)
        value = a[i]
        for s in range(m):
            total = 0.0
            for u in range(m):
                Hinv[pos + s * m + u] = inverse[s, u]
                total += inverse[s, u] * h[ins_ptr[i] + u]
            b0[ins_ptr[i] + s] = total
            value -= total * h[ins_ptr[i] + s]
        R0[i] = value
        pos += m * m
    return Hinv, b0, R0


@numba.njit(cache=True)
def _rss(theta, a, h, H, ins_ptr, i):
    m = ins_ptr[i + 1] - ins_ptr[i]
    start = ins_ptr[i]
    pos = 0
    for j in range(i):
        mj = ins_ptr[j + 1] - ins_ptr[j]
        pos += mj * mj
    value = a[i]
    for s in range(m):
        value -= 2.0 * theta[start + s] * h[start + s]
        for u in range(m):
            value += theta[start + s] * H[pos + s * m + u] * theta[start + u]
    return value


@numba.njit(cache=True)
def _i_minus_b(theta, ins_ptr, inside, n):
    A = np.eye(n)
    for i in range(n):
        for t in range(ins_ptr[i], ins_ptr[i + 1]):
            A[i, inside[t]] -= theta[t]
    return A


@numba.njit(cache=True)
def _loglik(theta, a, h, H, ins_ptr, inside, n, N):
    """Concentrated log-likelihood of the factor at ``theta`` (-inf where I - B is singular)."""
    total = 0.0
    for i in range(n):
        r = _rss(theta, a, h, H, ins_ptr, i)
        if not r > 0.0:
            return -np.inf
        total += math.log(r / N)
    logdet = 0.0
    if n > 1:
        sign, logdet = np.linalg.slogdet(_i_minus_b(theta, ins_ptr, inside, n))
        if sign == 0.0:
            return -np.inf
    return N * logdet - 0.5 * N * total - 0.5 * N * n * (1.0 + LOG_2PI)


@numba.njit(cache=True)
def _fresh(theta, ins_ptr, inside, n):
    """(I - B)^-1 and log|det(I - B)| at ``theta``; (empty, nan) when singular."""
    A = _i_minus_b(theta, ins_ptr, inside, n)
    sign, logdet = np.linalg.slogdet(A)
    if sign == 0.0:
        return np.empty((0, 0)), np.nan
    return np.linalg.inv(A), logdet


@numba.njit(cache=True)
def _bcd_sweep(theta, inverse, logdet, a, h, H, Hinv, b0, R0, ins_ptr, inside, n, N):
    """One sweep of the closed-form row updates (spec B1.4) from ``theta`` with its ``inverse`` =
    (I - B)^-1 (updated in place by Sherman-Morrison) and ``logdet``: (new theta, l after the sweep,
    log|det| after the sweep)."""
    new = theta.copy()
    if not np.isfinite(logdet):
        return new, -np.inf, logdet
    w = np.empty(n)
    row = np.empty(n)
    pos = 0
    for i in range(n):
        m = ins_ptr[i + 1] - ins_ptr[i]
        start = ins_ptr[i]
        if m == 0:
            continue
        for r in range(n):
            w[r] = inverse[r, i]
        t0 = w[i]
        for s in range(m):
            t0 -= w[inside[start + s]] * b0[start + s]
        if abs(t0) < 1e-300:
            t0 = 1e-300 if t0 >= 0.0 else -1e-300
        ratio = 1.0
        for r in range(n):
            row[r] = 0.0
        for s in range(m):
            value = 0.0
            for u in range(m):
                value += Hinv[pos + s * m + u] * w[inside[start + u]]
            updated = b0[start + s] - (R0[i] / t0) * value
            change = updated - new[start + s]
            new[start + s] = updated
            ratio -= change * w[inside[start + s]]
            g = inside[start + s]
            for r in range(n):
                row[r] -= change * inverse[g, r]
        logdet += math.log(abs(ratio))
        for r in range(n):
            if w[r] != 0.0:
                factor = w[r] / ratio
                for c in range(n):
                    inverse[r, c] -= factor * row[c]
        pos += m * m
    total = 0.0
    for i in range(n):
        r = _rss(new, a, h, H, ins_ptr, i)
        if not r > 0.0:
            return new, -np.inf, logdet
        total += math.log(r / N)
    return new, N * logdet - 0.5 * N * total - 0.5 * N * n * (1.0 + LOG_2PI), logdet


@numba.njit(cache=True)
def _squarem(theta, a, h, H, Hinv, b0, R0, ins_ptr, inside, n, N, tol, max_cycles):
    """BCD accelerated by SQUAREM with the monotone safeguard, as :func:`kernels.squarem`:
    (theta, l, sweeps, converged)."""
    previous = -np.inf
    sweeps = 0
    n_params = theta.shape[0]
    for cycle in range(max_cycles):
        # two plain sweeps: the second carries the inverse the first updated (refreshed every cycle)
        inverse, logdet = _fresh(theta, ins_ptr, inside, n)
        t1, v1, logdet = _bcd_sweep(theta, inverse, logdet, a, h, H, Hinv, b0, R0, ins_ptr, inside, n, N)
        t2, v2, logdet = _bcd_sweep(t1, inverse, logdet, a, h, H, Hinv, b0, R0, ins_ptr, inside, n, N)
        sweeps += 2
        if not np.isfinite(v2):
            return theta, -np.inf, sweeps, False
        r = t1 - theta
        v = t2 - t1 - r
        best_theta = t2
        best_value = v2
        vv = 0.0
        rr = 0.0
        for j in range(n_params):
            vv += v[j] * v[j]
            rr += r[j] * r[j]
        if n_params > 0 and vv > 0.0:
            alpha = -math.sqrt(rr / vv)
            if alpha < -1.0:
                jump = theta - 2.0 * alpha * r + alpha * alpha * v
                inverse, logdet = _fresh(jump, ins_ptr, inside, n)
                candidate, _, logdet = _bcd_sweep(jump, inverse, logdet, a, h, H, Hinv, b0, R0, ins_ptr, inside,
                                                  n, N)
                polished, value, logdet = _bcd_sweep(candidate, inverse, logdet, a, h, H, Hinv, b0, R0, ins_ptr,
                                                     inside, n, N)
                sweeps += 2
                if np.isfinite(value) and value > best_value:
                    best_theta = polished
                    best_value = value
        step = 0.0
        for j in range(n_params):
            step = max(step, abs(best_theta[j] - theta[j]))
        theta = best_theta
        if abs(best_value - previous) < tol * N and step < math.sqrt(tol):
            return theta, _loglik(theta, a, h, H, ins_ptr, inside, n, N), sweeps, True
        previous = best_value
    return theta, _loglik(theta, a, h, H, ins_ptr, inside, n, N), sweeps, False


# --------------------------------------------------------------------------------------------------
# Python face

def cross_products(Y, X) -> np.ndarray:
    """``S = [Y X]' [Y X]`` of centred Y (N, p) and X (N, q): (p + q, p + q)."""
    Z = np.concatenate([Y, X], axis=1)
    return Z.T @ Z


@dataclass
class GramFactor:
    """The packed statistics of one factor (see the module docstring)."""

    members: np.ndarray
    gene_parents: List[Tuple[int, ...]]
    qtl_parents: List[Tuple[int, ...]]
    ins_ptr: np.ndarray
    inside: np.ndarray
    exo_ptr: np.ndarray
    exo: np.ndarray
    a: np.ndarray
    h: np.ndarray
    H: np.ndarray
    C: np.ndarray
    deficient: np.ndarray
    excluded: np.ndarray
    n_obs: int
    p: int

    @property
    def n(self) -> int:
        return len(self.members)

    def under_identified(self) -> np.ndarray:
        """Order condition per member (as :func:`kernels.under_identified`)."""
        if self.n == 1:
            return np.zeros(1, dtype=bool)
        return self.excluded < np.diff(self.ins_ptr)

    def unpack(self, theta) -> List[np.ndarray]:
        return [np.asarray(theta[self.ins_ptr[i]:self.ins_ptr[i + 1]], dtype=np.float64) for i in range(self.n)]

    def pack(self, betas: Sequence[np.ndarray]) -> np.ndarray:
        return np.concatenate([np.asarray(b, dtype=np.float64) for b in betas]) if betas else np.zeros(0)

    def loglik(self, theta) -> float:
        return float(_loglik(np.asarray(theta, dtype=np.float64), self.a, self.h, self.H, self.ins_ptr, self.inside,
                             self.n, float(self.n_obs)))

    def gene_coefficients(self, theta) -> dict:
        """{(member gene, gene parent): coefficient} for every gene parent: the within-factor ones from
        ``theta``, the outside ones profiled (least squares given theta)."""
        out = {}
        pos_C = 0
        for i in range(self.n):
            gene = int(self.members[i])
            start, stop = self.ins_ptr[i], self.ins_ptr[i + 1]
            m = stop - start
            beta = np.asarray(theta[start:stop], dtype=np.float64)
            for s in range(m):
                out[(gene, int(self.members[self.inside[start + s]]))] = float(beta[s])
            k = self.exo_ptr[i + 1] - self.exo_ptr[i]
            block = self.C[pos_C:pos_C + k * (1 + m)].reshape(k, 1 + m)
            gamma = block[:, 0] - block[:, 1:] @ beta
            for t in range(k):
                column = int(self.exo[self.exo_ptr[i] + t])
                if column < self.p:
                    out[(gene, column)] = float(gamma[t])
            pos_C += k * (1 + m)
        return out


def factor_statistics(S: np.ndarray, members: Sequence[int], gparents, qparents, p: int, n_obs: int) -> GramFactor:
    """Statistics of factor ``members`` (sorted gene ids); ``gparents(k)``, ``qparents(k)`` sorted tuples."""
    members = np.asarray(members, dtype=np.int64)
    local = {int(g): i for i, g in enumerate(members.tolist())}
    ins_ptr = [0]
    exo_ptr = [0]
    inside: List[int] = []
    exo: List[int] = []
    gene_parents, qtl_parents = [], []
    exogenous_all = set()
    own = []
    for gene in members.tolist():
        gp, qp = tuple(gparents(gene)), tuple(qparents(gene))
        gene_parents.append(gp)
        qtl_parents.append(qp)
        inside.extend(local[g] for g in gp if g in local)
        outside = [g for g in gp if g not in local]
        columns = [p + v for v in qp] + outside
        exo.extend(columns)
        exogenous_all.update(columns)
        own.append(len(columns))
        ins_ptr.append(len(inside))
        exo_ptr.append(len(exo))
    ins_ptr = np.array(ins_ptr, dtype=np.int64)
    exo_ptr = np.array(exo_ptr, dtype=np.int64)
    inside_a = np.array(inside, dtype=np.int64)
    exo_a = np.array(exo, dtype=np.int64)
    a, h, H, C, deficient = _statistics(S, members, ins_ptr, inside_a, exo_ptr, exo_a, PIVOT_TOL)
    excluded = np.array([len(exogenous_all) - k for k in own], dtype=np.int64)
    return GramFactor(members, gene_parents, qtl_parents, ins_ptr, inside_a, exo_ptr, exo_a, a, h, H, C, deficient,
                      excluded, int(n_obs), int(p))


def ols_start(stats: GramFactor) -> np.ndarray:
    """Per-equation least squares of the within-factor coefficients (packed)."""
    return _constants(stats.a, stats.h, stats.H, stats.ins_ptr, stats.n)[1].copy()


def two_stage_least_squares(S: np.ndarray, stats: GramFactor) -> np.ndarray:
    """2SLS of each equation (as :func:`kernels.two_stage_least_squares`, from cross-products; packed).

    Instruments: all exogenous columns of the factor.  Under-identified equations get OLS."""
    theta = ols_start(stats)
    columns = np.array(sorted(set(stats.exo.tolist())), dtype=np.int64)
    if not len(columns):
        return theta
    flags = stats.under_identified()
    G = S[np.ix_(columns, columns)]
    ginv = np.linalg.pinv(G, rcond=1e-12, hermitian=True)
    members = stats.members
    ZY = S[np.ix_(columns, members)]
    coef = ginv @ ZY                                   # first stage: members on all instruments
    FF = ZY.T @ coef                                   # fitted' fitted (p_c, p_c)
    index = {int(c): j for j, c in enumerate(columns.tolist())}
    for i in range(stats.n):
        start, stop = stats.ins_ptr[i], stats.ins_ptr[i + 1]
        if stop == start or flags[i]:
            continue
        ins = stats.inside[start:stop]
        own = stats.exo[stats.exo_ptr[i]:stats.exo_ptr[i + 1]]
        own_j = np.array([index[int(c)] for c in own], dtype=np.int64)
        gene = int(members[i])
        m, k = len(ins), len(own)
        M = np.empty((m + k, m + k))
        M[:m, :m] = FF[np.ix_(ins, ins)]
        M[:m, m:] = ZY[np.ix_(own_j, ins)].T            # fitted' Z_i = Y' P Z_i = Y' Z_i
        M[m:, :m] = M[:m, m:].T
        M[m:, m:] = G[np.ix_(own_j, own_j)]
        rhs = np.empty(m + k)
        rhs[:m] = coef[:, ins].T @ S[columns, gene]      # fitted' y
        rhs[m:] = S[own, gene]
        solution = np.linalg.lstsq(M, rhs, rcond=None)[0]
        theta[start:stop] = solution[:m]
    return theta


@dataclass
class GramFit:
    theta: np.ndarray
    loglik: float
    sweeps: int
    converged: bool
    start: str


def fit(stats: GramFactor, starts: Sequence[Tuple[str, np.ndarray]], *, tol: float = 1e-13,
        max_cycles: int = 2000) -> GramFit:
    """ML of the factor from each packed start (SQUAREM-accelerated BCD), keeping the best l (as
    :func:`kernels.fit_factor`)."""
    N = float(stats.n_obs)
    if stats.n == 1:
        theta = np.zeros(0)
        return GramFit(theta, stats.loglik(theta), 0, True, "ols")
    Hinv, b0, R0 = _constants(stats.a, stats.h, stats.H, stats.ins_ptr, stats.n)
    best: Optional[GramFit] = None
    for name, theta in starts:
        theta = np.asarray(theta, dtype=np.float64).copy()
        out, value, sweeps, converged = _squarem(theta, stats.a, stats.h, stats.H, Hinv, b0, R0, stats.ins_ptr,
                                                 stats.inside, stats.n, N, tol, max_cycles)
        if np.isfinite(value) and (best is None or value > best.loglik + 1e-9 * N):
            best = GramFit(out, float(value), int(sweeps), bool(converged), name)
    if best is None:
        theta = np.zeros(len(stats.inside))
        best = GramFit(theta, stats.loglik(theta), 0, False, "zero")
    return best
