"""Time calc_genoprob on an F2 of 1,000 individuals x 2,000 markers with a 1 cM grid.

Usage: python bench/bench_genoprob.py [n_individuals] [n_markers]
The cross: 20 chromosomes of 100 cM, markers evenly spaced, 5% missing genotypes.
"""

import sys
import time

import numpy as np

from qtlhpc.io.cross import Cross
from qtlhpc.genetics.genoprob import calc_genoprob


def make_cross(n_individuals, n_markers, n_chromosomes=20, length_cM=100.0, seed=1):
    rng = np.random.default_rng(seed)
    per_chromosome = n_markers // n_chromosomes
    positions = np.tile(np.linspace(0.0, length_cM, per_chromosome), n_chromosomes)
    chromosomes = np.repeat([str(c + 1) for c in range(n_chromosomes)], per_chromosome)
    genotypes = rng.choice([1, 2, 3], p=[0.25, 0.5, 0.25], size=(n_individuals, len(positions)))
    genotypes[rng.random(genotypes.shape) < 0.05] = 0
    return Cross("f2", [f"ind{i}" for i in range(n_individuals)], [f"m{k}" for k in range(len(positions))],
                 chromosomes, positions, genotypes)


def main():
    n_individuals = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    n_markers = int(sys.argv[2]) if len(sys.argv) > 2 else 2000
    cross = make_cross(n_individuals, n_markers)
    start = time.perf_counter()
    result = calc_genoprob(cross, step=1.0, error_prob=1e-4)
    elapsed = time.perf_counter() - start
    print(f"calc_genoprob f2: {n_individuals} individuals x {n_markers} markers, step=1 cM -> "
          f"{result.n_positions} positions, probs {result.probs.shape} ({result.probs.nbytes / 1e6:.0f} MB): "
          f"{elapsed:.2f} s")


if __name__ == "__main__":
    main()
