"""Time the two-QTL HK scan of all pairs with and without joint probabilities for same-chromosome pairs.

Usage: python bench/bench_hk2d_same_chromosome.py [--individuals 250] [--chromosomes 8] [--markers 40]
       [--step 2] [--cross f2]
Genotypes: random codes with 10% missing (timing does not depend on their values).
"""

import argparse
import time

import numpy as np

from qtlhpc.io.cross import Cross
from qtlhpc.genetics.hk import scan2d_hk
from qtlhpc.genetics.genoprob import GenomePairProbabilities, calc_genoprob


def _random_cross(cross_type, n, n_chromosomes, n_markers, length, seed):
    rng = np.random.default_rng(seed)
    m = n_markers * n_chromosomes
    codes = rng.integers(1, 4 if cross_type == "f2" else 3, size=(n, m))
    codes[rng.random((n, m)) < 0.1] = 0
    positions = np.concatenate([np.sort(rng.uniform(0, length, n_markers)) for _ in range(n_chromosomes)])
    chromosomes = np.repeat([str(c + 1) for c in range(n_chromosomes)], n_markers)
    return Cross(cross_type, [f"i{k}" for k in range(n)], [f"m{k}" for k in range(m)], chromosomes, positions, codes)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--individuals", type=int, default=250)
    parser.add_argument("--chromosomes", type=int, default=8)
    parser.add_argument("--markers", type=int, default=40, help="markers per chromosome")
    parser.add_argument("--length", type=float, default=100.0, help="cM per chromosome")
    parser.add_argument("--step", type=float, default=2.0)
    parser.add_argument("--cross", default="f2", choices=["bc", "f2"])
    args = parser.parse_args()
    n = args.individuals
    cross = _random_cross(args.cross, n, args.chromosomes, args.markers, args.length, seed=0)
    genoprob = calc_genoprob(cross, step=args.step)
    y = np.random.default_rng(1).normal(size=n)
    # load the compiled kernels once, on a small cross (R loads its package before timing too)
    small = _random_cross(args.cross, 20, 2, 4, args.length, seed=2)
    scan2d_hk(calc_genoprob(small, step=args.step).probs, y[:20], chromosomes=np.repeat(["1", "2"], 4),
              pair_probs=GenomePairProbabilities(small, step=args.step))
    start = time.perf_counter()
    plain = scan2d_hk(genoprob.probs, y)
    t_plain = time.perf_counter() - start
    start = time.perf_counter()
    joint = scan2d_hk(genoprob.probs, y, chromosomes=genoprob.chromosomes,
                      pair_probs=GenomePairProbabilities(cross, step=args.step))
    t_joint = time.perf_counter() - start
    same = int((genoprob.chromosomes[joint.first] == genoprob.chromosomes[joint.second]).sum())
    print(f"{args.cross}: n={n} positions={genoprob.n_positions} pairs={len(plain.first)} same-chromosome={same}")
    print(f"products of marginals: {t_plain:.3f} s; joint probabilities for same-chromosome pairs: {t_joint:.3f} s "
          f"(+{t_joint - t_plain:.3f} s, {same / max(t_joint - t_plain, 1e-9):,.0f} same-chromosome pairs/s)")


if __name__ == "__main__":
    main()
