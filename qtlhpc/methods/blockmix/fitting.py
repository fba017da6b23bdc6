"""Per-unit computations of the block-mixture method (spec A2): one start of stage 1, the null fit, one scan
position, one permutation, one constrained fit of stage 4.  Arrays in, arrays out; no MPI, files or config.

Every random draw comes from ``qtlhpc.parallel.unit_rng(seed, stream, unit ids...)`` so a unit's result
depends on its ids alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import numpy as np

from qtlhpc.methods.blockmix import kernels
from qtlhpc.parallel import unit_rng


@dataclass(frozen=True)
class EMSettings:
    """EM controls shared by all stages (spec A2.1 step 4)."""

    variance: str = "cluster"
    parts: str = "row+column"
    tol: float = 1e-9
    max_iter: int = 1000
    lloyd_iterations: int = 20


# ---------------------------------------------------------------------------------------------------------
# stage 1 starts


def _kmeans(points: np.ndarray, k: int, rng: np.random.Generator, iterations: int) -> np.ndarray:
    """k-means++ seeding then Lloyd iterations on ``points (n_points, dim)``; labels ``(n_points,)``.

    An emptied cluster is reseeded at the point farthest from its centre, so every label is used.
    """
    n_points = points.shape[0]
    norms = np.einsum("ij,ij->i", points, points)
    centres = np.empty((k, points.shape[1]))
    centres[0] = points[rng.integers(n_points)]
    closest = norms - 2 * points @ centres[0] + centres[0] @ centres[0]
    for c in range(1, k):
        weights = np.maximum(closest, 0)
        total = weights.sum()
        index = rng.choice(n_points, p=weights / total) if total > 0 else rng.integers(n_points)
        centres[c] = points[index]
        closest = np.minimum(closest, norms - 2 * points @ centres[c] + centres[c] @ centres[c])
    labels = np.zeros(n_points, dtype=np.int64)
    for _ in range(max(iterations, 1)):
        distance = norms[:, None] - 2 * points @ centres.T + np.einsum("kd,kd->k", centres, centres)[None, :]
        labels = np.argmin(distance, axis=1)
        counts = np.bincount(labels, minlength=k)
        for c in np.flatnonzero(counts == 0):
            far = int(np.argmax(distance[np.arange(n_points), labels]))
            labels[far] = c
        sums = np.zeros_like(centres)
        np.add.at(sums, labels, points)
        centres = sums / np.bincount(labels, minlength=k)[:, None]
    return labels


def hard_start(Y: np.ndarray, gene_labels: np.ndarray, row_labels: np.ndarray, n_clusters: int, n_genotypes: int,
               variance: str):
    """Initial ``(mu, var, rho, pi_common)`` from hard gene-cluster and row-class labels."""
    mu = np.zeros((n_genotypes, n_clusters))
    var = np.zeros((n_genotypes, n_clusters))
    counts = np.zeros((n_genotypes, n_clusters))
    overall = Y.mean()
    for q in range(n_genotypes):
        rows = Y[row_labels == q]
        for l in range(n_clusters):
            block = rows[:, gene_labels == l]
            counts[q, l] = block.size
            mu[q, l] = block.mean() if block.size else overall
            var[q, l] = block.var() if block.size > 1 else Y.var()
    floor = 1e-6 * Y.var()
    if variance == "cluster":
        pooled = (var * counts).sum(axis=0) / np.maximum(counts.sum(axis=0), 1)
        var = np.broadcast_to(pooled, var.shape).copy()
    elif variance == "common":
        var = np.full(var.shape, (var * counts).sum() / counts.sum())
    var = np.maximum(var, floor)
    rho = np.bincount(gene_labels, minlength=n_clusters) / len(gene_labels)
    pi = np.bincount(row_labels, minlength=n_genotypes) / len(row_labels)
    pi = np.maximum(pi, 1.0 / len(row_labels)) / np.maximum(pi, 1.0 / len(row_labels)).sum()
    return mu, var, rho, pi


def random_start(Y: np.ndarray, n_clusters: int, n_genotypes: int, seed: int, start: int,
                 settings: EMSettings):
    """Start ``start`` for K = ``n_clusters`` (spec A2.1 step 2): k-means++ / Lloyd on the genes, then
    ``n_genotypes``-means on the individuals' cluster-mean profiles; stream ("blockmix-start", K, start)."""
    rng = unit_rng(seed, "blockmix-start", n_clusters, start)
    genes = _kmeans(np.ascontiguousarray(Y.T), n_clusters, rng, settings.lloyd_iterations)
    profiles = np.stack([Y[:, genes == l].mean(axis=1) for l in range(n_clusters)], axis=1)
    rows = _kmeans(profiles, n_genotypes, rng, settings.lloyd_iterations) if n_genotypes > 1 else \
        np.zeros(Y.shape[0], dtype=np.int64)
    return hard_start(Y, genes, rows, n_clusters, n_genotypes, settings.variance)


@dataclass
class StartResult:
    """One (K, start) unit of stage 1."""

    n_clusters: int
    start: int
    cl: float
    bic: float
    n_parameters: int
    iterations: int
    converged: bool
    degenerate: bool
    mu: np.ndarray
    var: np.ndarray
    rho: np.ndarray
    pi: np.ndarray               # (Q,) common row-class proportions
    labels: np.ndarray           # (G,) hard gene-cluster labels


def fit_start(Y: np.ndarray, n_clusters: int, n_genotypes: int, seed: int, start: int,
              settings: EMSettings = EMSettings(), YT: Optional[np.ndarray] = None) -> StartResult:
    """Stage 1, one unit: latent row classes with common proportions (spec A1.4), EM to convergence."""
    mu, var, rho, pi = random_start(Y, n_clusters, n_genotypes, seed, start, settings)
    n = Y.shape[0]
    fit = kernels.fit_em(Y, np.broadcast_to(pi, (n, n_genotypes)).copy(), mu, var, rho, variance=settings.variance,
                         parts=settings.parts, estimate_pi=True, tol=settings.tol, max_iter=settings.max_iter, YT=YT)
    d = kernels.n_parameters(n_clusters, n_genotypes, settings.variance)
    bic = kernels.cl_bic(fit.cl, n_clusters, n_genotypes, settings.variance, *Y.shape)
    if fit.degenerate or not np.isfinite(fit.cl):
        bic = np.inf
    return StartResult(n_clusters, start, fit.cl, bic, d, fit.iterations, fit.converged, fit.degenerate, fit.mu,
                       fit.var, fit.rho, fit.pi[0], fit.labels)


def best_per_k(results: Sequence[StartResult]) -> Dict[int, StartResult]:
    """The start with the smallest BIC for every K (ties: the lower start id)."""
    best: Dict[int, StartResult] = {}
    for result in sorted(results, key=lambda r: (r.n_clusters, r.start)):
        current = best.get(result.n_clusters)
        if current is None or result.bic < current.bic:
            best[result.n_clusters] = result
    return best


# ---------------------------------------------------------------------------------------------------------
# stage 2: null fit and one scan position


@dataclass
class NullFit:
    """The H0 fit of test (i) under "cluster"/"common" variance: the Q = 1 model (spec A2.2 step 2).

    ``mu, var (K,)``; its cl is the same at every position and under every permutation."""

    mu: np.ndarray
    var: np.ndarray
    rho: np.ndarray
    cl: float
    iterations: int
    converged: bool
    labels: np.ndarray


def fit_null(Y: np.ndarray, mu: np.ndarray, var: np.ndarray, rho: np.ndarray, pi_common: np.ndarray,
             settings: EMSettings = EMSettings(), YT: Optional[np.ndarray] = None) -> NullFit:
    """The Q = 1 model from a stage-1 fit (``mu, var (Q, K)``, ``pi_common (Q,)``): means and variances averaged
    over genotypes with weights ``pi_common``, then EM to convergence."""
    weights = np.asarray(pi_common, dtype=float)[:, None]
    mu1 = (weights * mu).sum(axis=0, keepdims=True)
    var1 = (weights * (var + (mu - mu1) ** 2)).sum(axis=0, keepdims=True)
    if settings.variance == "common":
        var1 = np.full_like(var1, var1.mean())
    n = Y.shape[0]
    fit = kernels.fit_em(Y, np.ones((n, 1)), mu1, var1, rho, variance="cluster" if settings.variance == "block"
                         else settings.variance, parts=settings.parts, tol=settings.tol, max_iter=settings.max_iter,
                         YT=YT)
    return NullFit(fit.mu[0], fit.var[0], fit.rho, fit.cl, fit.iterations, fit.converged, fit.labels)


@dataclass
class PositionFit:
    """One scan position: ``lr = 2 (cl_alt - cl_null)`` and the alternative's parameters."""

    lr: float
    cl_alt: float
    cl_null: float
    mu: np.ndarray               # (Q, K)
    var: np.ndarray              # (Q, K)
    rho: np.ndarray              # (K,)
    iterations: int
    converged: bool
    degenerate: bool
    column: np.ndarray           # (G, K) posterior cluster membership under the alternative


def fit_position(Y: np.ndarray, pi: np.ndarray, null: NullFit, settings: EMSettings = EMSettings(),
                 YT: Optional[np.ndarray] = None) -> PositionFit:
    """Test (i) at one position with genotype probabilities ``pi (n, Q)`` (spec A2.2 steps 3-4).

    The alternative starts at the null's parameters (a point of H1 with the same cl), so EM gives LR >= 0.
    Under "block" variance H0 depends on the position: it is refitted here by ECM with the constraint of
    test (i), started from the Q = 1 null, and the alternative starts from that.
    """
    Q = pi.shape[1]
    K = len(null.rho)
    mu0 = np.tile(null.mu, (Q, 1))
    var0 = np.tile(null.var, (Q, 1))
    cl_null = null.cl
    common = dict(variance=settings.variance, parts=settings.parts, tol=settings.tol, max_iter=settings.max_iter,
                  YT=YT)
    rho0 = null.rho
    if settings.variance == "block":
        h0 = kernels.fit_em(Y, pi, mu0, var0, null.rho, constraints=kernels.constraint_rows("i", Q, K), **common)
        mu0, var0, rho0, cl_null = h0.mu, h0.var, h0.rho, h0.cl
    fit = kernels.fit_em(Y, pi, mu0, var0, rho0, **common)
    lr = max(2.0 * (fit.cl - cl_null), 0.0) if fit.cl - cl_null > -1e-9 * abs(cl_null) else 2.0 * (fit.cl - cl_null)
    return PositionFit(lr, fit.cl, cl_null, fit.mu, fit.var, fit.rho, fit.iterations, fit.converged, fit.degenerate,
                       fit.column)


def permutation_order(seed: int, permutation: int, n_individuals: int) -> np.ndarray:
    """The order of individuals of permutation ``permutation``: stream ("blockmix-permutation", id)."""
    return unit_rng(seed, "blockmix-permutation", permutation).permutation(n_individuals)


def permutation_maximum(Y: np.ndarray, probs: np.ndarray, null: NullFit, seed: int, permutation: int,
                        settings: EMSettings = EMSettings(), YT: Optional[np.ndarray] = None):
    """``(max LR, argmax position)`` of one permutation (spec A2.3): the rows of every position's
    probabilities ``probs (n, n_positions, Q)`` are permuted jointly; Y and the null fit stay."""
    order = permutation_order(seed, permutation, Y.shape[0])
    permuted = probs[order]
    best, where = -np.inf, -1
    for p in range(probs.shape[1]):
        lr = fit_position(Y, np.ascontiguousarray(permuted[:, p, :]), null, settings, YT).lr
        if lr > best:
            best, where = lr, p
    return best, where


# ---------------------------------------------------------------------------------------------------------
# stage 4


TESTS = ("ii", "iii", "iv")


def test_units(n_genotypes: int, n_clusters: int):
    """Every constrained fit of stage 4 at one position: ``(test, cluster, other, genotype)`` tuples."""
    units = [("ii", l, -1, -1) for l in range(n_clusters)]
    units += [("iii", l, m, -1) for l in range(n_clusters) for m in range(l + 1, n_clusters)]
    units += [("iv", l, m, q) for q in range(n_genotypes) for l in range(n_clusters) for m in range(l + 1, n_clusters)]
    return units


#: a constrained fit whose cl exceeds the full fit's by more than this fraction of |cl| is a convergence failure
FAILURE_TOLERANCE = 2e-6


def constrained_lr(Y: np.ndarray, pi: np.ndarray, full: PositionFit, test: str, cluster: int, other: int,
                   genotype: int, settings: EMSettings = EMSettings(), YT: Optional[np.ndarray] = None,
                   null: Optional[NullFit] = None):
    """``(LR, constrained fit)`` of one stage-4 hypothesis (spec A2.4): ECM from the full fit with its means
    projected onto the constraint (weights var / N from the full fit's column sizes).

    With ``null`` (the test-(i) null fit), a failure (LR below ``-FAILURE_TOLERANCE |cl|``: the constrained fit
    beat the full one, so the full fit was a poorer local maximum) is rerun from the null's parameters projected
    onto the constraint (spec A2.4), and the fit with the larger cl is kept."""
    Q, K = full.mu.shape
    L = kernels.constraint_rows(test, Q, K, cluster=max(cluster, 0), other=max(other, 0), genotype=max(genotype, 0))
    weight = np.maximum(full.rho[None, :] * Y.size * pi.mean(axis=0)[:, None], 1e-12)
    mu0 = kernels.project_means(full.mu, full.var / weight, L)
    common = dict(constraints=L, variance=settings.variance, parts=settings.parts, tol=settings.tol,
                  max_iter=settings.max_iter, YT=YT)
    fit = kernels.fit_em(Y, pi, mu0, full.var, full.rho, **common)
    if null is not None and failed_fit(2.0 * (full.cl_alt - fit.cl), full.cl_alt):
        mu1 = np.tile(null.mu, (Q, 1))
        var1 = np.tile(null.var, (Q, 1))
        weight1 = np.maximum(null.rho[None, :] * Y.size * pi.mean(axis=0)[:, None], 1e-12)
        rerun = kernels.fit_em(Y, pi, kernels.project_means(mu1, var1 / weight1, L), var1, null.rho, **common)
        if rerun.cl > fit.cl:
            fit = rerun
    return 2.0 * (full.cl_alt - fit.cl), fit


def failed_fit(lr: float, cl_full: float) -> bool:
    """``LR = 2 (cl_full - cl_constrained)`` below ``-FAILURE_TOLERANCE |cl_full|``: the constrained fit beat the
    full one (the rule the stage always used to flag ``failed``)."""
    return bool(lr < -FAILURE_TOLERANCE * abs(cl_full))


# ---------------------------------------------------------------------------------------------------------
# stage 4: the parametric bootstrap of tests (ii)-(iv) (spec A3 notes)


def simulate_block(rng: np.random.Generator, pi: np.ndarray, mu: np.ndarray, var: np.ndarray, rho: np.ndarray,
                   n_genes: int):
    """One data set of the block mixture (spec A1.2) at a position: gene clusters drawn from ``rho``, each
    individual's genotype drawn from its row of ``pi (n, Q)``, cells ``N(mu_ql, var_ql)``.  Draw order: gene
    clusters, genotypes, then the ``(n, n_genes)`` standard normals row by row.  Returns ``(Y, genotypes,
    clusters)``."""
    n, Q = pi.shape
    K = len(rho)
    clusters = np.searchsorted(np.cumsum(rho) / np.sum(rho), rng.random(n_genes), side="right")
    clusters = np.minimum(clusters, K - 1)
    cumulative = np.cumsum(pi, axis=1) / pi.sum(axis=1, keepdims=True)
    genotypes = np.minimum((rng.random(n)[:, None] >= cumulative).sum(axis=1), Q - 1)
    noise = rng.standard_normal((n, n_genes))
    Y = mu[genotypes][:, clusters] + noise * np.sqrt(var[genotypes][:, clusters])
    return Y, genotypes, clusters


def bootstrap_lr(pi: np.ndarray, constrained_mu: np.ndarray, constrained_var: np.ndarray,
                 constrained_rho: np.ndarray, n_genes: int, test: str, cluster: int, other: int, genotype: int,
                 seed: int, position: int, test_id: int, replicate: int,
                 settings: EMSettings = EMSettings()) -> float:
    """The LR of one parametric-bootstrap replicate of a stage-4 test (spec A3 notes, [X]).

    The data are simulated from the constrained (H0) fit at the position with :func:`simulate_block`, stream
    ``unit_rng(seed, "blockmix-bootstrap", position, test_id, replicate)`` (``test_id`` = the test's index in
    :func:`test_units`).  The statistic is computed as the observed one: H1 by EM from the generating
    parameters (a point of H1), then H0 by ECM from that fit projected onto the constraint.
    """
    rng = unit_rng(seed, "blockmix-bootstrap", position, test_id, replicate)
    Y, _, _ = simulate_block(rng, pi, constrained_mu, constrained_var, constrained_rho, n_genes)
    YT = np.ascontiguousarray(Y.T)
    h1 = kernels.fit_em(Y, pi, constrained_mu, constrained_var, constrained_rho, variance=settings.variance,
                        parts=settings.parts, tol=settings.tol, max_iter=settings.max_iter, YT=YT)
    full = PositionFit(np.nan, h1.cl, np.nan, h1.mu, h1.var, h1.rho, h1.iterations, h1.converged, h1.degenerate,
                       np.empty((0, len(constrained_rho))))
    statistic, _ = constrained_lr(Y, pi, full, test, cluster, other, genotype, settings, YT)
    return float(statistic)


def bootstrap_pvalue(observed, replicates) -> np.ndarray:
    """``(1 + #{LR*_b >= LR}) / (B + 1)`` along the last axis of ``replicates``; NaN when B = 0 or LR is NaN."""
    observed = np.asarray(observed, dtype=float)
    replicates = np.asarray(replicates, dtype=float)
    B = replicates.shape[-1]
    if B == 0:
        return np.full(observed.shape, np.nan)
    count = (replicates >= observed[..., None]).sum(axis=-1)
    return np.where(np.isnan(observed), np.nan, (1.0 + count) / (B + 1.0))
