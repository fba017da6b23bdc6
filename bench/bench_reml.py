"""Benchmark: REML with the six PEPIS kinships (default n = 10,000 individuals).

Usage: python bench/bench_reml.py [--individuals 10000] [--markers 400] [--threads 2]
Kinships from simulated F2 codes (kinship_matrices), a trait simulated from known lambdas, then one
fit_reml.  Prints the wall time of each part and the peak resident memory (resource.getrusage).
Target: the fit <= 10 minutes at n = 10,000 on 2 cores; memory about 8 (k + 1) n^2 bytes (docs/memory.md).
"""

import argparse
import os
import resource
import time


def peak_mib():
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--individuals", type=int, default=10000)
    parser.add_argument("--markers", type=int, default=400)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--method", default="ai")
    args = parser.parse_args()
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(args.threads)
    import numpy as np
    from scipy.linalg import lapack

    from qtlhpc.methods.pepis.kernels.kinship import KINSHIP_NAMES, kinship_matrices
    from qtlhpc.methods.pepis.kernels.reml import combined_kinship, fit_reml
    from qtlhpc.parallel import unit_rng

    n = args.individuals
    rng = unit_rng(2, "bench-reml")
    genotype = rng.integers(0, 3, size=(n, args.markers), dtype=np.int8)
    additive, dominance = 1.0 - genotype, np.where(genotype == 1, 1.0, -1.0)
    start = time.perf_counter()
    kernels = kinship_matrices(additive, dominance, KINSHIP_NAMES).matrices
    print(f"kinships ({n} x {args.markers} markers): {time.perf_counter() - start:.1f} s, "
          f"peak RSS {peak_mib():.0f} MiB", flush=True)

    truth = np.array([0.5, 0.2, 0.3, 0.1, 0.0, 0.2])
    start = time.perf_counter()
    covariance = np.asfortranarray(combined_kinship(truth, kernels))
    covariance.T.reshape(-1)[:: n + 1] += 1.0
    factor, info = lapack.dpotrf(covariance, lower=1, clean=1, overwrite_a=1)
    assert info == 0
    y = 2.0 + factor @ rng.normal(size=n)
    del covariance, factor
    print(f"simulated trait: {time.perf_counter() - start:.1f} s", flush=True)

    start = time.perf_counter()
    fit = fit_reml(y, None, kernels, method=args.method)
    wall = time.perf_counter() - start
    print(f"REML, six kernels, n = {n}, {args.threads} BLAS threads: wall {wall:.1f} s, "
          f"{fit.iterations} iterations, method {fit.method}, converged {fit.converged}, "
          f"peak RSS {peak_mib():.0f} MiB (8 (k+1) n^2 = {8 * 7 * n * n / 2**20:.0f} MiB)")
    print("truth lambdas   ", np.round(truth, 3))
    print("estimated       ", np.round(fit.lambdas, 3), "+-", np.round(fit.lambda_se, 3))
    print(f"sigma2 {fit.sigma2:.4g}, REML log-likelihood {fit.loglik:.6f}")


if __name__ == "__main__":
    main()
