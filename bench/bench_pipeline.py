"""The whole PEPIS pipeline at the size of the rice IMF2 population PEPIS analysed, at 1 and 2 ranks.

278 individuals x 1,620 bins with heterozygotes (12 chromosomes x 135 bins; PEPIS: 1,619 bins), read
as PEPIS-style Z/W text matrices; stages kinship (six), varcomp (REML, one trait), scan1d and scan2d
in the random model (1,311,390 pairs). Prints the wall time per stage and in all, and the speed-up.

    .venv/bin/python bench/bench_pipeline.py [--ranks 1 2] [--individuals 278] [--bins-per-chromosome 135]

Each rank runs with one BLAS thread, so 1 rank uses one core and 2 ranks two. A first run compiles the
numba kernels (cached afterwards); the benchmark warms them up before timing.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

CONFIG = """
[run]
output = "results-{ranks}.h5"
seed = 7
stages = ["kinship", "varcomp", "scan1d", "scan2d"]
progress = false

[simulate]
cross_type = "imf2"
n_individuals = {individuals}
n_chromosomes = 12
chromosome_length_cM = 150.0
markers_per_chromosome = {bins}
seed = 7
polygenic_variance = 0.5
main_qtl = [{{ marker = 100, additive = 0.8, dominance = 0.4 }}]
epistatic_pairs = [{{ markers = [300, 1200], aa = 0.8 }}]
write_format = "pepis"
write_to = "imf2-{ranks}"

[input]
format = "pepis"
z = "imf2-{ranks}_Z.txt"
w = "imf2-{ranks}_W.txt"
phenotypes = "imf2-{ranks}_pheno.txt"
map = "imf2-{ranks}_map.txt"

[kinship]
block_rows = 64

[scan1d]
model = "random"

[scan2d]
model = "random"
tile = 256
"""


def environment():
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    # one machine: Open MPI's shared-memory transport only (skips probing network transports: 0.2 s less
    # start-up per run, at every rank count; see docs/install.md)
    env.setdefault("OMPI_MCA_btl", "self,vader")
    env.setdefault("OMPI_MCA_pml", "ob1")
    return env


def run(ranks: int, config: Path):
    # no --oversubscribe when the ranks fit the cores: OpenMPI then binds each rank to its own core
    oversubscribe = ["--oversubscribe"] if ranks > (os.cpu_count() or 1) else []
    command = ["mpirun", *oversubscribe, "-n", str(ranks), sys.executable, "-m", "mpi4py", "-m", "qtlhpc",
               "run", "all", str(config)]
    started = time.perf_counter()
    proc = subprocess.run(command, env=environment(), capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if proc.returncode:
        sys.exit(proc.stderr[-3000:])
    stages = dict(re.findall(r"stage (\w+): done in ([\d.]+) s", proc.stderr))
    return elapsed, {k: float(v) for k, v in stages.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--individuals", type=int, default=278)
    parser.add_argument("--bins-per-chromosome", type=int, default=135)
    parser.add_argument("--repeats", type=int, default=5, help="runs per rank count, interleaved; the fastest "
                        "and the median are reported (a shared or virtual machine's noise only ever adds time)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        configs = {}
        # 0: warm-up of the numba cache on a tiny copy; every config has input files of its own (a shared
        # prefix let the full-size simulation overwrite the tiny copy, so the warm-up ran the full problem)
        for ranks in [0] + args.ranks:
            text = CONFIG.format(ranks=ranks, individuals=args.individuals if ranks else 40,
                                 bins=args.bins_per_chromosome if ranks else 110)
            config = directory / f"pepis-{ranks}.toml"
            config.write_text(text)
            subprocess.run([sys.executable, "-m", "qtlhpc", "simulate", str(config)], check=True,
                           capture_output=True, env=environment())
            configs[ranks] = config
        run(1, configs[0])
        # interleaved (1, 2, 1, 2, ...): a shared machine's slow spells then hit every rank count alike
        runs = {ranks: [] for ranks in args.ranks}
        for repeat in range(args.repeats):
            for ranks in args.ranks:
                results = directory / f"results-{ranks}.h5"
                if results.exists():
                    results.unlink()  # a fresh run each time (the results file would make it resume)
                runs[ranks].append(run(ranks, configs[ranks]))
        n_pairs = (12 * args.bins_per_chromosome) * (12 * args.bins_per_chromosome - 1) // 2
        fastest, median = {}, {}
        for ranks in args.ranks:
            elapsed, stages = min(runs[ranks], key=lambda r: r[0])
            fastest[ranks] = elapsed
            median[ranks] = statistics.median(r[0] for r in runs[ranks])
            scan2d = stages.get("scan2d", float("nan"))
            print(f"{ranks} rank(s): fastest of {args.repeats}: {elapsed:.1f} s in all, median "
                  f"{median[ranks]:.1f} s (all runs: " + ", ".join(f"{r[0]:.1f}" for r in runs[ranks]) + "); "
                  + ", ".join(f"{k} {v:.1f} s" for k, v in stages.items())
                  + f"; scan2d {n_pairs / scan2d / ranks:,.0f} pairs/s/core", flush=True)
        if 1 in fastest and 2 in fastest:
            print(f"speed-up at 2 ranks: {fastest[1] / fastest[2]:.2f}x on the fastest runs, "
                  f"{median[1] / median[2]:.2f}x on the medians")


if __name__ == "__main__":
    main()
