"""Time the two-QTL Haley-Knott scan over all pairs of a backcross (and R/qtl's scantwo, if installed).

Usage: python bench/bench_hk2d.py [--individuals 250] [--positions 656] [--states 2] [--traits 1]
Probabilities: random rows summing to one (timing does not depend on their values).
Run with one BLAS thread (OPENBLAS_NUM_THREADS=1) for a one-core figure.
"""

import argparse
import os
import pathlib
import re
import shutil
import subprocess
import time

import numpy as np

from qtlhpc.genetics.hk import scan2d_hk


def time_scan(n_individuals, n_positions, n_states, n_traits, repeats):
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.ones(n_states), size=(n_individuals, n_positions))
    phenotypes = rng.normal(size=(n_individuals, n_traits))
    best = np.inf
    for _ in range(repeats):
        start = time.perf_counter()
        result = scan2d_hk(probs, phenotypes)
        best = min(best, time.perf_counter() - start)
    return best, len(result.first)


def time_rqtl(n_individuals, n_positions):
    if shutil.which("Rscript") is None:
        return None, "Rscript not found"
    n_chromosomes = 8 if n_positions % 8 == 0 else 1
    script = pathlib.Path(__file__).with_name("rqtl_scantwo.R")
    done = subprocess.run(["Rscript", str(script), str(n_individuals), str(n_chromosomes),
                           str(n_positions // n_chromosomes)], capture_output=True, text=True)
    match = re.search(r"seconds=([0-9.]+)", done.stdout)
    if done.returncode != 0 or match is None:
        return None, (done.stderr.strip().splitlines() or ["R/qtl failed"])[-1]
    return float(match.group(1)), done.stdout.strip()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--individuals", type=int, default=250)
    parser.add_argument("--positions", type=int, default=656)
    parser.add_argument("--states", type=int, default=2)
    parser.add_argument("--traits", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--no-r", action="store_true", help="skip the R/qtl timing")
    args = parser.parse_args()
    print(f"BLAS threads: OPENBLAS_NUM_THREADS={os.environ.get('OPENBLAS_NUM_THREADS', 'unset')}")
    seconds, n_pairs = time_scan(args.individuals, args.positions, args.states, args.traits, args.repeats)
    print(f"qtlhpc scan2d_hk: n={args.individuals} positions={args.positions} states={args.states} "
          f"traits={args.traits} pairs={n_pairs} best of {args.repeats}: {seconds:.3f} s "
          f"({n_pairs / seconds:,.0f} pairs/s)")
    if args.no_r or args.states != 2:
        return
    r_seconds, message = time_rqtl(args.individuals, args.positions)
    if r_seconds is None:
        print(f"R/qtl not timed: {message}")
        return
    print(message)
    print(f"speed-up over R/qtl scantwo(method='hk'): {r_seconds / seconds:.1f}x")


if __name__ == "__main__":
    main()
