"""Benchmark: the mapping of a yeast-scale cross through the stages (expression, cross-eqtl, cross-trans).

A simulated cross the size of Brem & Kruglyak's (112 segregants, 2,956 markers, 4,589 genes: 21 M regulator-
target pairs) is written to files, then ``qtlhpc run eqtl-cross`` runs under ``mpirun -n R`` for each R given.
Each rank's peak resident memory (VmHWM) is written by a wrapper at exit; the wall time of each stage comes from
the stages' ``started``/``finished`` attributes, the total from the clock.

    python bench/bench_eqtl_cross_pipeline.py              # 1 and 2 ranks
    python bench/bench_eqtl_cross_pipeline.py --ranks 2 --genes 1000
"""

from __future__ import annotations

import argparse
import datetime
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "tests"))

# run qtlhpc's CLI, then record this rank's peak memory (VmHWM) in $BENCH_MEMORY_DIR/rank-<r>.txt
WRAPPER = """
import atexit, os, runpy, sys
def _peak():
    rank = os.environ.get("OMPI_COMM_WORLD_RANK", os.environ.get("PMI_RANK", "0"))
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM"):
            with open(os.path.join(os.environ["BENCH_MEMORY_DIR"], f"rank-{rank}.txt"), "w") as out:
                out.write(line.split(":")[1].strip())
atexit.register(_peak)
sys.argv = ["qtlhpc"] + sys.argv[1:]
runpy.run_module("qtlhpc", run_name="__main__")
"""


def write_inputs(directory: Path, n_genes: int, seed: int) -> None:
    from qtlhpc.io.cross import Cross
    from qtlhpc.io.writers import write_map, write_matrix_tsv, write_rqtl_csv
    from qtlhpc.methods.eqtl.simulate import CrossDesign, simulate_cross

    design = CrossDesign(n_individuals=112, n_markers=2956, n_genes=n_genes)
    sim = simulate_cross(design, seed=seed)
    individuals = np.array([f"seg{i + 1}" for i in range(design.n_individuals)])
    markers = np.array([f"m{k + 1}" for k in range(design.n_markers)])
    genes = np.array([f"g{k + 1}" for k in range(design.n_genes)])
    codes = np.where(np.isnan(sim.genotypes), 0, sim.genotypes + 1).astype(np.int8)
    write_rqtl_csv(Cross("riself", individuals, markers, sim.marker_chromosome.astype(str), sim.marker_position_cM,
                         codes), directory / "cross.csv")
    write_matrix_tsv(directory / "expression.tsv", individuals, genes, sim.expression.T)
    starts = np.round(sim.gene_position_bp).astype(np.int64)
    lines = ["gene_id\tchromosome\tstart\tend\tstrand"]
    lines += [f"{g}\t{c}\t{s}\t{s}\t+" for g, c, s in zip(genes, sim.gene_chromosome, starts)]
    (directory / "genes.tsv").write_text("\n".join(lines) + "\n")
    write_map(directory / "markers_bp.tsv", markers, sim.marker_chromosome.astype(str), sim.marker_position_bp)
    (directory / "analysis.toml").write_text(f"""
[run]
output = "results.h5"
seed = {seed}
progress = false

[input]
format = "rqtl-csv"
cross_type = "riself"
file = "cross.csv"

[expression]
format = "tsv"
file = "expression.tsv"
annotation = "genes.tsv"

[cross_map]
marker_positions = "markers_bp.tsv"
""")


def stage_seconds(path: Path) -> dict:
    import h5py

    seconds = {}
    with h5py.File(path, "r", locking=False) as h5:
        for stage in ("expression", "cross-eqtl", "cross-trans"):
            attrs = h5[stage].attrs
            start, stop = (datetime.datetime.fromisoformat(str(attrs[k]).replace("Z", "+00:00"))
                           for k in ("started", "finished"))
            seconds[stage] = (stop - start).total_seconds()
        seconds["n_tests"] = int(h5["cross-trans/n_tests"][()])
        seconds["n_pairs"] = int(h5["cross-trans/pair_q_iut"].shape[0])
    return seconds


def run(directory: Path, n_ranks: int) -> None:
    from mpi_helpers import mpi_env

    results = directory / "results.h5"
    if results.exists():
        results.unlink()
    memory_dir = directory / f"memory-{n_ranks}"
    memory_dir.mkdir(exist_ok=True)
    wrapper = directory / "wrapper.py"
    wrapper.write_text(WRAPPER)
    command = ["mpirun", "--oversubscribe", "-n", str(n_ranks), sys.executable, "-m", "mpi4py", str(wrapper),
               "run", "eqtl-cross", str(directory / "analysis.toml")]
    started = time.perf_counter()
    proc = subprocess.run(command, env=mpi_env({"BENCH_MEMORY_DIR": str(memory_dir), "PYTHONPATH": str(ROOT)}),
                          capture_output=True, text=True)
    wall = time.perf_counter() - started
    if proc.returncode != 0:
        sys.exit(f"mpirun -n {n_ranks} failed:\n{proc.stderr[-3000:]}")
    seconds = stage_seconds(results)
    peaks = [(p.stem, p.read_text().strip()) for p in sorted(memory_dir.glob("rank-*.txt"))]
    print(f"{n_ranks} rank(s): total {wall:.1f} s (expression {seconds['expression']:.1f} s, cross-eqtl "
          f"{seconds['cross-eqtl']:.1f} s, cross-trans {seconds['cross-trans']:.1f} s); {seconds['n_tests']:,} "
          f"pairs tested, {seconds['n_pairs']:,} with q <= 0.05; peak memory "
          + ", ".join(f"{name} {value}" for name, value in peaks), flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--genes", type=int, default=4589)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--keep", help="write the inputs and results here (default: a temporary folder)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as scratch:
        directory = Path(args.keep or scratch)
        directory.mkdir(parents=True, exist_ok=True)
        started = time.perf_counter()
        write_inputs(directory, args.genes, args.seed)
        print(f"inputs: 112 segregants x 2956 markers, {args.genes} genes ({time.perf_counter() - started:.1f} s)",
              flush=True)
        for n_ranks in args.ranks:
            run(directory, n_ranks)


if __name__ == "__main__":
    os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
    main()
