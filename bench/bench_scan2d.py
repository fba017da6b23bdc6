"""Benchmark of the PEPIS 2D scan (random model) on an IMF2-sized simulation.

278 individuals x 1,619 markers (F2 codes with heterozygotes, 12 chromosomes, linked markers), all
1,309,771 pairs or a fraction of the pair blocks (then the whole scan is extrapolated).  Run with one
BLAS thread to measure one core:

    OPENBLAS_NUM_THREADS=1 .venv/bin/python bench/bench_scan2d.py [--fraction 0.1] [--model random]
"""

import argparse
import os
import time

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from qtlhpc.methods.pepis.kernels.null_model import null_background, rotate, rotate_columns  # noqa: E402
from qtlhpc.methods.pepis.kernels.scan2d import scan2d_block  # noqa: E402
from qtlhpc.parallel import n_pairs, triangle_row_blocks  # noqa: E402


def simulate_f2(n_individuals, n_markers, n_chromosomes, seed):
    """F2 codes along chromosomes: each gamete a Markov chain with recombination 0.01 between markers."""
    rng = np.random.default_rng(seed)
    per_chromosome = np.array_split(np.arange(n_markers), n_chromosomes)
    alleles = np.empty((2, n_individuals, n_markers), dtype=np.int8)
    for markers in per_chromosome:
        for gamete in range(2):
            state = rng.integers(0, 2, n_individuals)
            for j in markers:
                flip = rng.random(n_individuals) < 0.01
                state = np.where(flip, 1 - state, state)
                alleles[gamete, :, j] = state
    dosage = alleles.sum(axis=0)                                   # 0 AA, 1 AB, 2 BB
    Z = (1 - dosage).astype(np.float64)
    W = np.where(dosage == 1, 1.0, -1.0)
    return Z, W, rng


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--individuals", type=int, default=278)
    parser.add_argument("--markers", type=int, default=1619)
    parser.add_argument("--fraction", type=float, default=1.0, help="share of the pair blocks to run")
    parser.add_argument("--model", default="random", choices=("random", "fixed"))
    parser.add_argument("--tile-pairs", type=int, default=1024)
    parser.add_argument("--block-pairs", type=int, default=65536)
    args = parser.parse_args()

    Z, W, rng = simulate_f2(args.individuals, args.markers, 12, seed=1)
    n = args.individuals
    Ka = Z @ Z.T / args.markers
    Kd = W @ W.T / args.markers
    K0 = 0.5 * Ka / np.mean(np.diag(Ka)) + 0.2 * Kd / np.mean(np.diag(Kd))
    X = np.ones((n, 1))
    y = 1.0 + rng.multivariate_normal(np.zeros(n), K0) + rng.normal(size=n) + 0.8 * Z[:, 100] * Z[:, 900]

    start = time.perf_counter()
    rotation = rotate(K0, X)
    background = null_background(rotation, rotate_columns(rotation, y)[:, 0], rotate_columns(rotation, X))
    setup = time.perf_counter() - start

    blocks = triangle_row_blocks(args.markers, args.block_pairs)
    n_run = max(1, int(round(args.fraction * len(blocks))))
    chosen = [blocks[i] for i in np.linspace(0, len(blocks) - 1, n_run).astype(int)]
    # compile once outside the timing
    scan2d_block(None, None, None, Z, W, blocks[0].__class__(0, 0, 2, 0, 3), model=args.model, background=background)
    start = time.perf_counter()
    cpu_start = time.process_time()
    done = 0
    best = (-1.0, None)
    for block in chosen:
        result = scan2d_block(None, None, None, Z, W, block, model=args.model, background=background,
                              tile_pairs=args.tile_pairs)
        done += block.n_pairs
        top = int(np.argmax(result.lrt))
        if result.lrt[top] > best[0]:
            k, l = block.pairs()
            best = (float(result.lrt[top]), (int(k[top]), int(l[top])))
    elapsed = time.perf_counter() - start
    cpu = time.process_time() - cpu_start
    total = n_pairs(args.markers)
    rate = done / cpu
    print(f"{args.model} model, n={n}, m={args.markers}: {done} of {total} pairs in {elapsed:.2f} s wall, "
          f"{cpu:.2f} s CPU (setup {setup:.2f} s) -> {rate:,.0f} pairs/s/core (CPU time); whole scan "
          f"{total / rate:.1f} s CPU on one core{'' if done == total else ' (extrapolated)'}")
    print(f"top pair {best[1]} LRT {best[0]:.1f} (planted: (100, 900))")


if __name__ == "__main__":
    main()
