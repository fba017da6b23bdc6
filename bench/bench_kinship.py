"""Benchmark: the six epistatic kinships for n individuals x m markers (default 1,000 x 20,000).

Usage: python bench/bench_kinship.py [--individuals 1000] [--markers 20000] [--marker-block 16]
                                     [--threads 2] [--sweep 4,8,16,32]
Prints wall time and peak resident memory (resource.getrusage).  Target: <= 60 s on 2 cores.
``--threads`` sets the BLAS threads (qtlhpc defaults to 1 per process); ``--sweep`` times only
``K_ad`` for several marker blocks on the first 2,000 markers, to choose the block size.
"""

import argparse
import os
import resource
import sys
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--individuals", type=int, default=1000)
    parser.add_argument("--markers", type=int, default=20000)
    parser.add_argument("--marker-block", type=int, default=None)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--sweep", default="")
    args = parser.parse_args()
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(args.threads)
    import numpy as np

    from qtlhpc.methods.pepis.kernels.kinship import DEFAULT_MARKER_BLOCK, KINSHIP_NAMES, kinship_matrices
    from qtlhpc.parallel import unit_rng

    rng = unit_rng(1, "bench-kinship")
    genotype = rng.integers(0, 3, size=(args.individuals, args.markers), dtype=np.int8)
    additive = 1.0 - genotype
    dominance = np.where(genotype == 1, 1.0, -1.0)
    del genotype
    baseline_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"peak RSS after making Z and W: {baseline_mib:.0f} MiB")
    if args.sweep:
        for block in [int(b) for b in args.sweep.split(",")]:
            start = time.perf_counter()
            kinship_matrices(additive[:, :2000], dominance[:, :2000], which=("ad",), marker_block=block)
            print(f"marker_block {block:4d}: K_ad on 2,000 markers {time.perf_counter() - start:7.2f} s")
        return
    block = args.marker_block or DEFAULT_MARKER_BLOCK
    start = time.perf_counter()
    kinships = kinship_matrices(additive, dominance, KINSHIP_NAMES, scale=True, marker_block=block)
    wall = time.perf_counter() - start
    peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"six kinships, {args.individuals} individuals x {args.markers} markers, marker_block {block}, "
          f"{args.threads} BLAS threads: wall {wall:.1f} s, peak RSS {peak_mib:.0f} MiB")
    print("scale constants (mean diagonals): " +
          ", ".join(f"{name} {value:.6g}" for name, value in kinships.scales.items()))
    sys.stdout.flush()


if __name__ == "__main__":
    main()
