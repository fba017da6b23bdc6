"""REML variance components of the epistatic polygenic model (Xu 2013; Zhang et al. 2016, PEPIS).

Model: ``y = X b + e``, ``Var(y) = V = sum_i theta_i K_i + theta_e I`` with ``theta_i >= 0``,
``theta_e > 0``, equivalently ``V = sigma2 (sum_i lambda_i K_i + I)`` with ``sigma2 = theta_e`` and
``lambda_i = theta_i / theta_e``.  Any subset of the six kinships (1..6 kernels) may be fitted.

REML log-likelihood (textbook form; the constant is ``(n - p) log(2 pi)``, no ``log|X'X|`` term)::

    -2 l_R(theta) = (n - p) log(2 pi) + log|V| + log|X' V^-1 X| + y' P y,
    P = V^-1 - V^-1 X (X' V^-1 X)^-1 X' V^-1,   n = individuals, p = columns of X.

Maximised by average-information (AI) iterations on ``theta`` (score
``s_i = [y'P K_i P y - tr(P K_i)] / 2``, AI ``A_ij = y'P K_i P K_j P y / 2``; ``K_e = I``), with the
bounds enforced by projection (a parameter at 0 whose score points outward is held at 0) and step
halving whenever the likelihood does not increase.  If AI fails (no increase after halving, or no
convergence within ``max_iterations``), scipy's L-BFGS-B maximises the likelihood profiled over
``sigma2`` in ``lambda >= 0``, with its analytic gradient.  Standard errors come from the inverse
AI matrix at the optimum (NaN for parameters on the boundary); those of ``lambda`` by the delta method.

Memory: the kernels plus one ``n x n`` work matrix (Cholesky factor, then ``V^-1`` from LAPACK
``dpotri`` in place) and ``O(n (k + p))`` vectors: ``8 (k + 1) n^2`` bytes (docs/memory.md).
Time: one Cholesky (``n^3/3``) per likelihood and one ``dpotri`` (``2 n^3/3``) per AI step.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
from scipy.linalg import blas, cho_solve, lapack

from qtlhpc.errors import InputError

LOG_2PI = float(np.log(2 * np.pi))

#: lower bound of the residual variance, relative to half the OLS residual variance: with kinships
#: of full rank (K_aa, K_dd nearly always are) REML may drive theta_e to 0; it stops at this floor
#: and the residual is reported on the boundary (lambdas then large, their SEs NaN)
RESIDUAL_FLOOR = 1e-8

Kernels = Union[Sequence[np.ndarray], Dict[str, np.ndarray]]


@dataclass
class RemlFit:
    """REML estimates for one trait.

    ``variance_components (k + 1,)`` are ``theta_1..theta_k, theta_e`` (residual last);
    ``proportions (k + 1,)`` are ``theta_i * mean(diag K_i)`` and ``theta_e`` over their sum (the
    share of phenotypic variance PEPIS draws as a pie; with kinships scaled to mean diagonal 1 this
    is ``theta_i / sum(theta)``).  ``loglik`` is the REML log-likelihood ``l_R`` of the module docstring.
    """

    kernel_names: Tuple[str, ...]
    lambdas: np.ndarray
    sigma2: float
    variance_components: np.ndarray
    proportions: np.ndarray
    loglik: float
    lambda_se: np.ndarray
    variance_se: np.ndarray
    fixed_effects: np.ndarray
    fixed_effects_se: np.ndarray
    iterations: int
    converged: bool
    method: str
    n_individuals: int
    on_boundary: np.ndarray = field(default=None)


def combined_kinship(lambdas: Sequence[float], kernels: Kernels) -> np.ndarray:
    """``sum_i lambda_i K_i`` ``(n, n)``, the polygenic covariance (over ``sigma2``) used by the scans."""
    _, kernel_list = _kernel_list(kernels)
    lambdas = np.asarray(lambdas, dtype=float)
    if lambdas.shape != (len(kernel_list),):
        raise InputError(f"{lambdas.shape[0] if lambdas.ndim else 'scalar'} lambdas for "
                         f"{len(kernel_list)} kernels; expected one lambda per kernel")
    out = np.zeros_like(kernel_list[0], dtype=float)
    for weight, kernel in zip(lambdas, kernel_list):
        if weight != 0:
            out += weight * kernel
    return out


# ---------------------------------------------------------------------------------------------
# validation
# ---------------------------------------------------------------------------------------------

def _kernel_list(kernels: Kernels) -> Tuple[Tuple[str, ...], List[np.ndarray]]:
    if isinstance(kernels, dict):
        names, kernel_list = tuple(str(k) for k in kernels), list(kernels.values())
    elif isinstance(kernels, np.ndarray) and kernels.ndim == 2:
        names, kernel_list = ("K1",), [kernels]
    else:
        kernel_list = list(kernels)
        names = tuple(f"K{i + 1}" for i in range(len(kernel_list)))
    if not kernel_list:
        raise InputError("no kinship matrices given; expected 1 to 6 kernels")
    return names, [np.asarray(k, dtype=float) for k in kernel_list]


def _check_symmetric_finite(name: str, kernel: np.ndarray, n: int, block: int = 256) -> None:
    """Shape, finiteness and symmetry (to 1e-8 of the largest entry), tile by tile: no n x n temporaries."""
    if kernel.shape != (n, n):
        raise InputError(f"kinship {name} has shape {kernel.shape}; expected ({n}, {n}) for {n} individuals")
    largest = 0.0
    for start in range(0, n, block):
        rows = kernel[start:start + block]
        if not np.all(np.isfinite(rows)):
            raise InputError(f"kinship {name} contains NaN or infinite values (rows from {start + 1})")
        largest = max(largest, float(np.abs(rows).max()))
    tolerance = 1e-8 * largest
    for start in range(0, n, block):
        for other in range(start, n, block):
            tile = kernel[start:start + block, other:other + block]
            mirror = kernel[other:other + block, start:start + block]
            if np.abs(tile - mirror.T).max() > tolerance:
                raise InputError(f"kinship {name} is not symmetric (rows {start + 1}.., columns {other + 1}..)")


def _check_identifiable(name: str, kernel: np.ndarray, fixed: np.ndarray) -> float:
    """Mean diagonal of ``kernel``; InputError when the kernel has no variance beyond span(X).

    ``tr(M K M) = tr(K) - tr((X'X)^-1 X'KX)`` with ``M = I - X(X'X)^-1X'`` is zero for a PSD ``K``
    exactly when the kernel lives in the column space of ``X`` (e.g. an all-zero or constant kernel
    with an intercept): its variance component is then not identifiable.
    """
    trace = float(np.trace(kernel))
    projected = fixed.T @ (kernel @ fixed)
    residual_trace = trace - float(np.trace(np.linalg.solve(fixed.T @ fixed, projected)))
    if not residual_trace > 1e-9 * max(abs(trace), 1e-300) or not trace > 0:
        raise InputError(f"kinship {name} is singular for this model: it has no variance beyond the fixed "
                         f"effects (trace {trace:.3g}, trace after projecting out X {residual_trace:.3g})",
                         hint="an all-zero or constant kinship, e.g. dominance kinships of a RIL; leave it out")
    return trace / kernel.shape[0]


def _check_trait(y: np.ndarray, fixed: Optional[np.ndarray], trait: str = "trait") -> Tuple[np.ndarray, np.ndarray]:
    y = np.asarray(y, dtype=float).ravel()
    n = y.shape[0]
    if fixed is None:
        fixed = np.ones((n, 1))
    fixed = np.asarray(fixed, dtype=float)
    if fixed.ndim == 1:
        fixed = fixed[:, None]
    if fixed.shape[0] != n:
        raise InputError(f"fixed effects X has {fixed.shape[0]} rows for {n} individuals of {trait}")
    if not np.all(np.isfinite(y)):
        raise InputError(f"{trait} has NaN or infinite values; pass a mask of observed individuals")
    if not np.all(np.isfinite(fixed)):
        raise InputError("fixed-effect covariates contain NaN or infinite values")
    n_fixed = fixed.shape[1]
    if n < n_fixed + 1:
        raise InputError(f"{trait} has {n} individuals with observations but the model has {n_fixed} fixed "
                         f"effects; REML needs at least {n_fixed + 1} individuals")
    if np.linalg.matrix_rank(fixed) < n_fixed:
        raise InputError(f"fixed-effect design X ({n} x {n_fixed}) is not of full column rank",
                         hint="remove collinear covariates")
    largest = float(np.max(np.abs(y))) if n else 0.0
    if largest > 1e150:  # squares overflow: every sum of squares below would be inf
        raise InputError(f"{trait} has values as large as {largest:.3g}, whose squares overflow double "
                         f"precision", hint="rescale the trait (e.g. divide it by a power of ten)")
    coef, *_ = np.linalg.lstsq(fixed, y, rcond=None)
    residual = y - fixed @ coef
    if not np.sum(residual ** 2) > 1e-20 * max(np.sum(y ** 2), 1e-300):
        raise InputError(f"{trait} has no variance beyond the fixed effects (a constant phenotype?)")
    return y, fixed


# ---------------------------------------------------------------------------------------------
# the likelihood engine: one n x n work matrix
# ---------------------------------------------------------------------------------------------

class _RemlEngine:
    """Likelihood, scores and AI matrix at ``theta`` (``k`` kernel components then residual)."""

    def __init__(self, y: np.ndarray, fixed: np.ndarray, kernels: List[np.ndarray]):
        self.y, self.fixed, self.kernels = y, fixed, kernels
        self.n, self.n_fixed = fixed.shape
        self.work = np.empty((self.n, self.n), order="F")
        self.factor_of: Optional[np.ndarray] = None

    def factorize(self, theta: np.ndarray) -> bool:
        """Cholesky of ``V(theta)`` into the work matrix; False if ``V`` is not positive definite."""
        work = self.work
        work.fill(0.0)
        work_flat = work.T.reshape(-1)  # a view; V is symmetric, so the memory order does not matter
        for weight, kernel in zip(theta[:-1], self.kernels):
            if weight != 0:
                blas.daxpy(_flat_view(kernel), work_flat, a=float(weight))
        work.T.reshape(-1)[:: self.n + 1] += theta[-1]
        _, info = lapack.dpotrf(work, lower=1, clean=0, overwrite_a=1)
        self.factor_of = theta.copy() if info == 0 else None
        return info == 0

    def minus2_loglik(self) -> float:
        """``-2 l_R`` at the factorized ``theta``; also stores ``V^-1 X``, ``(X'V^-1X)^-1``, ``P y``."""
        assert self.factor_of is not None
        factor = (self.work, True)
        logdet_v = 2.0 * float(np.sum(np.log(np.diag(self.work))))
        vinv_x = cho_solve(factor, self.fixed, check_finite=False)
        vinv_y = cho_solve(factor, self.y, check_finite=False)
        xt_vinv_x = self.fixed.T @ vinv_x
        inner, info = lapack.dpotrf(xt_vinv_x, lower=1, clean=1)
        if info != 0:
            raise InputError("X' V^-1 X is singular: the fixed effects are collinear under this model")
        logdet_inner = 2.0 * float(np.sum(np.log(np.diag(inner))))
        self.inner_inverse = cho_solve((inner, True), np.eye(self.n_fixed), check_finite=False)
        self.fixed_effects = self.inner_inverse @ (self.fixed.T @ vinv_y)
        self.vinv_x = vinv_x
        self.p_y = vinv_y - vinv_x @ self.fixed_effects
        self.yt_p_y = float(self.y @ self.p_y)
        return (self.n - self.n_fixed) * LOG_2PI + logdet_v + logdet_inner + self.yt_p_y

    def _apply_p(self, vectors: np.ndarray) -> np.ndarray:
        """``P v`` for columns ``v``, using ``V^-1`` (full, in the work matrix)."""
        vinv_v = self.work @ vectors
        return vinv_v - self.vinv_x @ (self.inner_inverse @ (self.fixed.T @ vinv_v))

    def score_and_information(self) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Score, AI matrix and ``tr(P K_i)`` at the factorized ``theta``; destroys the factor.

        Call after :meth:`minus2_loglik`.  ``tr(P K) = sum(V^-1 o K) - tr((X'V^-1X)^-1 (V^-1X)' K V^-1X)``.
        """
        assert self.factor_of is not None
        _, info = lapack.dpotri(self.work, lower=1, overwrite_c=1)
        assert info == 0, info
        self.factor_of = None
        _mirror_lower_to_upper(self.work)
        vinv_flat = self.work.T.reshape(-1)
        n_params = len(self.kernels) + 1
        traces = np.empty(n_params)
        kernel_p_y = np.empty((self.n, n_params))
        for i, kernel in enumerate(self.kernels):
            correction = np.trace(self.inner_inverse @ (self.vinv_x.T @ (kernel @ self.vinv_x)))
            traces[i] = float(np.dot(vinv_flat, _flat_view(kernel))) - correction
            kernel_p_y[:, i] = kernel @ self.p_y
        traces[-1] = float(np.trace(self.work)) - np.trace(self.inner_inverse @ (self.vinv_x.T @ self.vinv_x))
        kernel_p_y[:, -1] = self.p_y
        quadratic = self.p_y @ kernel_p_y
        score = 0.5 * (quadratic - traces)
        information = 0.5 * (kernel_p_y.T @ self._apply_p(kernel_p_y))
        return score, 0.5 * (information + information.T), traces


def _mirror_lower_to_upper(matrix: np.ndarray, block: int = 512) -> None:
    n = matrix.shape[0]
    for start in range(0, n, block):
        stop = min(start + block, n)
        tile = matrix[start:stop, start:stop]
        upper = np.triu_indices(stop - start, 1)
        tile[upper] = tile.T[upper]
        matrix[start:stop, stop:] = matrix[stop:, start:stop].T


def _flat_view(symmetric: np.ndarray) -> np.ndarray:
    """A 1-d view of a symmetric matrix (its transpose when Fortran-ordered: same values)."""
    return symmetric.T.reshape(-1) if symmetric.flags.f_contiguous and not symmetric.flags.c_contiguous \
        else symmetric.reshape(-1)


# ---------------------------------------------------------------------------------------------
# fitting
# ---------------------------------------------------------------------------------------------

def _ai_iterations(engine: _RemlEngine, theta: np.ndarray, max_iterations: int, tolerance: float,
                   residual_floor: float):
    """AI-REML from ``theta`` (factorized).  Returns theta, -2l, iterations, converged.

    Projected steps: ``theta_i >= 0``, ``theta_e >= residual_floor``; a parameter at its bound whose
    score points outward is held there for the step.
    """
    n_kernels = len(engine.kernels)
    lower = np.append(np.zeros(n_kernels), residual_floor)
    minus2 = engine.minus2_loglik()
    for iteration in range(1, max_iterations + 1):
        score, information, _ = engine.score_and_information()
        free = ~((theta <= lower) & (score <= 0))
        step = np.zeros_like(theta)
        try:
            step[free] = np.linalg.solve(information[np.ix_(free, free)], score[free])
        except np.linalg.LinAlgError:
            step[free] = np.linalg.lstsq(information[np.ix_(free, free)], score[free], rcond=None)[0]
        accepted = False
        fraction = 1.0
        for _ in range(30):
            trial = np.maximum(theta + fraction * step, lower)
            if engine.factorize(trial):
                trial_minus2 = engine.minus2_loglik()
                if trial_minus2 <= minus2 + 1e-10 * abs(minus2):
                    accepted = True
                    break
            fraction *= 0.5
        if not accepted:
            engine.factorize(theta)
            engine.minus2_loglik()
            return theta, minus2, iteration, False
        change = np.max(np.abs(trial - theta)) / np.sum(trial)
        gain = minus2 - trial_minus2
        theta, minus2 = trial, trial_minus2
        if gain < tolerance * max(1.0, abs(minus2)) and change < np.sqrt(tolerance):
            return theta, minus2, iteration, True
    return theta, minus2, max_iterations, False


def _profiled_minus2(engine: _RemlEngine, lambdas: np.ndarray) -> Tuple[float, np.ndarray]:
    """``-2 l_R`` profiled over ``sigma2`` at ``lambdas`` and its gradient (L-BFGS-B fallback).

    With ``H = sum lambda_i K_i + I`` and ``sigma2 = y'P_H y / (n - p)``:
    ``d(-2 l)/d lambda_i = tr(P_H K_i) - y'P_H K_i P_H y / sigma2``.
    """
    theta = np.append(lambdas, 1.0)
    if not engine.factorize(theta):
        return np.inf, np.zeros_like(lambdas)
    minus2 = engine.minus2_loglik()
    dof = engine.n - engine.n_fixed
    sigma2 = engine.yt_p_y / dof
    logdets = minus2 - dof * LOG_2PI - engine.yt_p_y
    value = dof * LOG_2PI + dof * np.log(sigma2) + logdets + dof
    score, _, traces = engine.score_and_information()
    quadratic = 2.0 * score[:-1] + traces[:-1]
    return value, traces[:-1] - quadratic / sigma2


def _lbfgsb(engine: _RemlEngine, start_lambdas: np.ndarray, tolerance: float):
    from scipy import optimize  # only for the fallback: importing it costs every process ~0.15 s

    result = optimize.minimize(lambda lam: _profiled_minus2(engine, lam), start_lambdas, jac=True,
                               method="L-BFGS-B", bounds=[(0.0, None)] * len(start_lambdas),
                               options={"ftol": tolerance * 1e-3, "gtol": 1e-8, "maxiter": 500})
    lambdas = np.maximum(result.x, 0.0)
    assert engine.factorize(np.append(lambdas, 1.0))
    engine.minus2_loglik()
    sigma2 = engine.yt_p_y / (engine.n - engine.n_fixed)
    theta = np.append(lambdas * sigma2, sigma2)
    assert engine.factorize(theta)
    return theta, engine.minus2_loglik(), int(result.nit), bool(result.success)


def _starting_theta(y: np.ndarray, fixed: np.ndarray, mean_diagonals: np.ndarray) -> np.ndarray:
    coef, *_ = np.linalg.lstsq(fixed, y, rcond=None)
    residual_variance = float(np.sum((y - fixed @ coef) ** 2) / (len(y) - fixed.shape[1] or 1))
    n_kernels = len(mean_diagonals)
    return np.append(residual_variance / (2 * n_kernels) / mean_diagonals, residual_variance / 2)


def fit_reml(y: np.ndarray, fixed: Optional[np.ndarray], kernels: Kernels, max_iterations: int = 100,
             tolerance: float = 1e-9, method: str = "ai") -> RemlFit:
    """REML fit of ``y (n,) = X b + e`` with ``Var(y) = sigma2 (sum_i lambda_i K_i + I)``.

    ``fixed = X (n, p)`` (None: an intercept); ``kernels``: a list of ``(n, n)`` kinships or a dict
    ``{name: K}``.  ``method`` "ai" (AI-REML, L-BFGS-B fallback) or "lbfgsb".  AI stops when ``-2 l``
    gains less than ``tolerance * |2 l|`` and no parameter moves more than ``sqrt(tolerance)`` of
    the total variance.  Returns :class:`RemlFit`.
    """
    names, kernel_list = _kernel_list(kernels)
    y, fixed = _check_trait(y, fixed)
    n = len(y)
    mean_diagonals = np.empty(len(kernel_list))
    for i, (name, kernel) in enumerate(zip(names, kernel_list)):
        _check_symmetric_finite(name, kernel, n)
        mean_diagonals[i] = _check_identifiable(name, kernel, fixed)
    if method not in ("ai", "lbfgsb"):
        raise InputError(f"unknown REML method {method!r}; expected 'ai' or 'lbfgsb'")
    engine = _RemlEngine(y, fixed, kernel_list)
    theta = _starting_theta(y, fixed, mean_diagonals)
    if not engine.factorize(theta):
        raise InputError("the covariance at the starting values is not positive definite: a kinship is not "
                         "positive semidefinite", hint="kinships must be Gram matrices of marker codes")
    residual_floor = RESIDUAL_FLOOR * theta[-1]
    converged, iterations, used = False, 0, method
    if method == "ai":
        theta, minus2, iterations, converged = _ai_iterations(engine, theta, max_iterations, tolerance,
                                                              residual_floor)
    if not converged:
        start = theta[:-1] / theta[-1]
        theta_b, minus2_b, iterations_b, converged = _lbfgsb(engine, start, tolerance)
        iterations += iterations_b
        used = "lbfgsb" if method == "lbfgsb" else "ai+lbfgsb"
        theta, minus2 = theta_b, minus2_b
    return _summarize(engine, names, theta, minus2, mean_diagonals, iterations, converged, used,
                      residual_floor)


def _summarize(engine, names, theta, minus2, mean_diagonals, iterations, converged, method,
               residual_floor) -> RemlFit:
    """Standard errors from the inverse AI matrix over the parameters not on the boundary."""
    n_kernels = len(names)
    fixed_effects = engine.fixed_effects.copy()
    fixed_effects_se = np.sqrt(np.diag(engine.inner_inverse))
    _, information, _ = engine.score_and_information()
    boundary = theta <= 1e-10 * np.sum(theta)
    boundary[-1] = theta[-1] <= residual_floor * (1 + 1e-6)
    inside = ~boundary
    covariance = np.full((n_kernels + 1, n_kernels + 1), np.nan)
    try:
        covariance[np.ix_(inside, inside)] = np.linalg.inv(information[np.ix_(inside, inside)])
    except np.linalg.LinAlgError:
        pass
    variance_se = np.sqrt(np.abs(np.diag(covariance)))
    residual = theta[-1]
    lambdas = theta[:-1] / residual
    lambda_se = np.full(n_kernels, np.nan)
    for i in np.flatnonzero(inside[:-1] & inside[-1]):
        gradient = np.array([1.0 / residual, -theta[i] / residual ** 2])
        block = covariance[np.ix_([i, n_kernels], [i, n_kernels])]
        lambda_se[i] = float(np.sqrt(max(gradient @ block @ gradient, 0.0)))
    explained = np.append(theta[:-1] * mean_diagonals, residual)
    return RemlFit(
        kernel_names=tuple(names), lambdas=lambdas, sigma2=float(residual), variance_components=theta.copy(),
        proportions=explained / explained.sum(), loglik=-0.5 * float(minus2), lambda_se=lambda_se,
        variance_se=variance_se, fixed_effects=fixed_effects, fixed_effects_se=fixed_effects_se,
        iterations=int(iterations), converged=bool(converged), method=method, n_individuals=engine.n,
        on_boundary=boundary,
    )


def fit_reml_many(phenotypes: np.ndarray, fixed: Optional[np.ndarray], kernels: Kernels,
                  observed: Optional[np.ndarray] = None, trait_names: Optional[Sequence[str]] = None,
                  **options) -> List[RemlFit]:
    """:func:`fit_reml` for each column of ``phenotypes (n, n_traits)``, sharing the kernels.

    ``observed (n, n_traits)`` boolean (default: not NaN) selects each trait's individuals; the
    kernels and ``fixed (n, p)`` are subset to them (traits with the same pattern share one subset).
    """
    phenotypes = np.asarray(phenotypes, dtype=float)
    if phenotypes.ndim == 1:
        phenotypes = phenotypes[:, None]
    n, n_traits = phenotypes.shape
    names, kernel_list = _kernel_list(kernels)
    fixed = np.ones((n, 1)) if fixed is None else np.asarray(fixed, dtype=float)
    if fixed.ndim == 1:
        fixed = fixed[:, None]
    if fixed.ndim != 2 or fixed.shape[0] != n:
        raise InputError(f"fixed effects X has shape {fixed.shape}; expected ({n}, n_covariates)")
    observed = ~np.isnan(phenotypes) if observed is None else np.asarray(observed, dtype=bool)
    if observed.shape != phenotypes.shape:
        raise InputError(f"mask of observed values has shape {observed.shape}; expected {phenotypes.shape}")
    trait_names = [f"trait {j + 1}" for j in range(n_traits)] if trait_names is None else list(trait_names)
    fits: List[RemlFit] = []
    cached_pattern, cached_kernels = None, None
    for j in range(n_traits):
        keep = observed[:, j]
        if keep.all():
            subset = dict(zip(names, kernel_list))
        else:
            if cached_pattern is None or not np.array_equal(cached_pattern, keep):
                cached_pattern = keep.copy()
                cached_kernels = {name: k[np.ix_(keep, keep)] for name, k in zip(names, kernel_list)}
            subset = cached_kernels
        try:
            fits.append(fit_reml(phenotypes[keep, j], fixed[keep], subset, **options))
        except InputError as error:
            raise InputError(f"{trait_names[j]}: {error}") from error
    return fits
