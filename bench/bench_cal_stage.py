"""Benchmark: the cal-search stage (observed search, replicate 0 only) at 1 and 2 ranks under mpirun, on simulated
data of the paper's shape (T = 24 strains, L = 453 loci, singles + paper7), timing the stage alone.

Usage: python bench/bench_cal_stage.py [--targets 60] [--loci 453] [--ranks 1 2] [--repeats 1] [--workdir DIR]
                                       [--target-block 16]
Every target is searched (tolerance quantile 0), half carry a planted network.  Target (the issue): 2 ranks at
least 1.8x faster than one; the paper-sized observed search (1,525 targets) within 10 minutes on 2 cores.
"""

import argparse
import os
import pathlib
import subprocess
import sys
import tempfile
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--targets", type=int, default=60)
    parser.add_argument("--loci", type=int, default=453)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=1)
    parser.add_argument("--workdir", default=None)
    parser.add_argument("--target-block", type=int, default=16, help="[cal] target_block (16 is the default)")
    args = parser.parse_args()
    from qtlhpc.methods.cal.simulate import simulate, write_files

    base = pathlib.Path(args.workdir or tempfile.mkdtemp(prefix="bench-cal-"))
    paths = write_files(simulate(7, n_strains=24, n_loci=args.loci, n_genes=args.targets, n_chromosomes=19,
                                 planted_fraction=0.5, noise=0.5), base)
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OPENBLAS_NUM_THREADS="1",
               OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="1")
    times = {}
    for repeat in range(args.repeats):
        for ranks in args.ranks:
            folder = base / f"r{ranks}-{repeat}"
            folder.mkdir(exist_ok=True)
            config = folder / "analysis.toml"
            config.write_text(f"""
[run]
output = "results.h5"
progress = false
[expression]
format = "tsv"
file = "{paths['expression']}"
annotation = "{paths['annotation']}"
[cal]
loci = "{paths['loci']}"
targets = "genes"
permutations = 0
tolerance_quantile = 0.0
target_block = {args.target_block}
""")
            prefix = ["mpirun", "--oversubscribe", "-n", str(ranks), sys.executable, "-m", "mpi4py"]
            for stage in ("expression", "cal-prepare"):
                subprocess.run([sys.executable, "-m", "qtlhpc", "run", stage, str(config)], check=True, env=env,
                               capture_output=True)
            started = time.perf_counter()
            proc = subprocess.run(prefix + ["-m", "qtlhpc", "run", "cal-search", str(config)], env=env,
                                  capture_output=True, text=True)
            elapsed = time.perf_counter() - started
            if proc.returncode != 0:
                raise SystemExit(proc.stderr[-2000:])
            times.setdefault(ranks, []).append(elapsed)
            print(f"{ranks} rank(s): cal-search {elapsed:.1f} s ({args.targets} targets x 9 topologies, "
                  f"L = {args.loci})", flush=True)
    if 1 in times and 2 in times:
        one, two = min(times[1]), min(times[2])
        print(f"speed-up at 2 ranks (best of {args.repeats}): {one / two:.2f}x")


if __name__ == "__main__":
    main()
