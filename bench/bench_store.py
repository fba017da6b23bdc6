"""The results store's own cost: writing blocked outputs and reading them back, at the size of the PEPIS
pipeline's scan2d outputs (benchmarks.md, "Checksums on stored data").

One process, one rank: a stage with four (trait, pair) float64 datasets of 2 traits x 1,311,390 pairs (the
rice IMF2 scan2d: 84 MB in all) written in 160 blocks through ``Stage.blocked(...).write_rounds``, then
read back whole through ``ResultsFile.read``, as ``export`` and the next stages do. Prints wall and CPU
time (``time.process_time``: less sensitive than wall time to other work on a shared machine) of each,
the best of ``--repeats``.

    .venv/bin/python bench/bench_store.py [--pairs 1311390] [--blocks 160] [--repeats 5]

Run it with ``PYTHONPATH`` pointing at another checkout to compare versions (the script uses only the
store's public API).
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

from qtlhpc import schema
from qtlhpc.store import ResultsFile, open_results

NAMES = ("lod", "lrt", "pvalue", "df")
N_TRAITS = 2


def run_once(path: Path, n_pairs: int, n_blocks: int, values: np.ndarray):
    if path.exists():
        path.unlink()
    bounds = np.linspace(0, n_pairs, n_blocks + 1).astype(int)

    def compute(block):
        cols = slice(int(bounds[block]), int(bounds[block + 1]))
        return {name: ((slice(None), cols), values[:, cols]) for name in NAMES}

    wall, cpu = time.perf_counter(), time.process_time()
    with ResultsFile.open(path) as results:
        stage = results.begin_stage("benchstore", {"pairs": n_pairs})
        writer = stage.blocked({name: (N_TRAITS, n_pairs) for name in NAMES}, n_blocks, key="pairs")
        writer.write_rounds(range(n_blocks), compute)
        stage.finish()
    write = (time.perf_counter() - wall, time.process_time() - cpu)
    wall, cpu = time.perf_counter(), time.process_time()
    with open_results(path) as results:
        for name in NAMES:
            assert results.read(f"benchstore/{name}").shape == (N_TRAITS, n_pairs)
    read = (time.perf_counter() - wall, time.process_time() - cpu)
    return write, read


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=1_311_390)
    parser.add_argument("--blocks", type=int, default=160)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    for name in NAMES:
        schema.declare("benchstore", name, ("trait", "pair"), "float64", "", "benchmark data")
    values = np.random.default_rng(1).normal(size=(N_TRAITS, args.pairs))
    import qtlhpc.store.results as results_module

    checksums = hasattr(results_module, "integrity")
    with tempfile.TemporaryDirectory(dir=os.environ.get("BENCH_DIR")) as tmp:
        runs = [run_once(Path(tmp) / "store.h5", args.pairs, args.blocks, values) for _ in range(args.repeats)]
    megabytes = len(NAMES) * N_TRAITS * args.pairs * 8 / 1e6
    best = {what: (min(r[i][0] for r in runs), min(r[i][1] for r in runs)) for i, what in enumerate(("write", "read"))}
    label = "with" if checksums else "without"
    print(f"store ({label} checksums), {megabytes:.0f} MB in {args.blocks} blocks, best of {args.repeats}: "
          f"write {best['write'][0]:.3f} s wall / {best['write'][1]:.3f} s CPU; read back "
          f"{best['read'][0]:.3f} s wall / {best['read'][1]:.3f} s CPU")


if __name__ == "__main__":
    main()
