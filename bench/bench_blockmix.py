"""Benchmark: one EM iteration of the block-mixture model at the paper's size (208 individuals x 5,450 genes x
43 clusters x 2 genotypes), one core, against a plain numpy row part.

Three cases of the E-step pass (plus the M-step) of :func:`qtlhpc.methods.blockmix.kernels.estep_stats`:

* ``marker``: a fully informative position (every pi_iq 0 or 1, RIAIL markers): n G K densities;
* ``pseudomarker``: a position between markers (every individual has both genotypes): n G Q K densities;
* ``plain numpy row part``: the spec's reference (A5) - logsumexp over clusters of one genotype group of the
  individuals, weights and weighted sums, over gene blocks of 500 - on the same data.

    python bench/bench_blockmix.py                 # the paper's size
    python bench/bench_blockmix.py --genes 1000    # smaller
Run with one thread (numba is serial here; numpy's BLAS is not used by the kernel).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from qtlhpc.methods.blockmix import kernels  # noqa: E402


def plain_numpy_row_part(Y, mu, var, rho, block=500):
    """Row part of one genotype group, plain numpy: sum_j log A_ij and the weighted sums of a_ijl."""
    n, G = Y.shape
    loglik = np.zeros(n)
    stats = np.zeros((3, len(rho)))
    for start in range(0, G, block):
        y = Y[:, start:start + block, None]
        logphi = -0.5 * np.log(2 * np.pi * var) - (y - mu) ** 2 / (2 * var) + np.log(rho)
        top = logphi.max(axis=2, keepdims=True)
        weights = np.exp(logphi - top)
        total = weights.sum(axis=2, keepdims=True)
        loglik += (np.log(total) + top)[..., 0].sum(axis=1)
        weights /= total
        stats[0] += weights.sum(axis=(0, 1))
        stats[1] += (weights * y).sum(axis=(0, 1))
        stats[2] += (weights * y * y).sum(axis=(0, 1))
    return loglik, stats


def best_of(function, repeats):
    """``(best wall, median wall, best CPU)`` seconds: the machine may be shared, so the process CPU time is
    printed beside the wall time (one thread: CPU time is the single-core time without the waiting)."""
    walls, cpus = [], []
    for _ in range(repeats):
        start, cpu = time.perf_counter(), time.process_time()
        function()
        walls.append(time.perf_counter() - start)
        cpus.append(time.process_time() - cpu)
    return min(walls), float(np.median(walls)), min(cpus)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--individuals", type=int, default=208)
    parser.add_argument("--genes", type=int, default=5450)
    parser.add_argument("--clusters", type=int, default=43)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    n, G, K, Q = args.individuals, args.genes, args.clusters, 2
    rng = np.random.default_rng(0)
    labels = rng.integers(0, K, G)
    genotype = rng.integers(0, 2, n)
    mu = rng.normal(0, 2, (Q, K))
    var = np.ones((Q, K))
    rho = np.full(K, 1.0 / K)
    Y = mu[genotype][:, labels] + rng.standard_normal((n, G))
    YT = np.ascontiguousarray(Y.T)
    marker = np.eye(Q)[genotype]
    pseudo = np.clip(marker * 0.9 + 0.05, 0, 1)
    kernels.estep_stats(Y[:, :50], pseudo, rho, mu, var)          # compile
    print(f"one EM iteration, n = {n}, G = {G}, K = {K}, Q = {Q}, one core (load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} cores)")

    def iteration(pi):
        def run():
            stats = kernels.estep_stats(Y, pi, rho, mu, var, YT=YT)
            post = kernels.posterior(stats, pi, rho)
            suff = kernels.sufficient(stats, post)
            kernels.mstep(suff, mu, var, variance="cluster", floor=1e-6)
        return run

    rows = []
    for name, pi, terms in (("marker (pi in {0,1})", marker, n * G * K),
                            ("pseudomarker (both genotypes)", pseudo, n * G * K * Q)):
        rows.append((name, *best_of(iteration(pi), args.repeats), terms))
    groups = [Y[genotype == q] for q in range(Q)]
    rows.append(("plain numpy row part, all individuals",
                 *best_of(lambda: [plain_numpy_row_part(g, mu[q], var[q], rho) for q, g in enumerate(groups)],
                          max(2, args.repeats // 2)), n * G * K))
    print(f"{'case':40s} {'best wall s':>11s} {'median wall s':>13s} {'best CPU s':>10s} {'CPU ns/term':>11s}")
    for name, best, median, cpu, terms in rows:
        print(f"{name:40s} {best:11.3f} {median:13.3f} {cpu:10.3f} {cpu / terms * 1e9:11.2f}")


if __name__ == "__main__":
    main()
