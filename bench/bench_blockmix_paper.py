"""Reproduction of Wang et al. (2016)'s simulation study, side by side with its numbers.

The design: a backcross of n = 208, one 50 cM linkage group with six evenly spaced markers, one eQTL at 24 cM,
normally distributed transcripts in K clusters; per replicate: K by CL-BIC over a grid (seeded starts), the
null fit, the LR scan every ``--step`` cM, the position of the largest LR.  The paper: K right in 480 of 500
replicates (96 %), position 23.70 +- 1.17 cM.

Replicates are work units (``unit_rng`` streams keyed by the replicate id), spread over MPI ranks
(``mpirun -n R python -m mpi4py bench/bench_blockmix_paper.py``) and/or array tasks (``--units START:STOP
--out task.npz`` per task, then ``--merge task-*.npz``): any split gives the same numbers.

    python bench/bench_blockmix_paper.py --replicates 100                       # reduced size (60 genes, K = 3)
    python bench/bench_blockmix_paper.py --genes 5450 --clusters 43 --k-grid 39:47 --replicates 500   # paper size
    python bench/bench_blockmix_paper.py --design qtlhpc/methods/blockmix/paper_design.toml --k-grid 39:47
The paper's own cluster means, effects and proportions (its Table S1) are not in the text; the simulator's
defaults stand in (qtlhpc/methods/blockmix/simulate.py).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from qtlhpc.methods.blockmix.simulate import Design  # noqa: E402
from qtlhpc.methods.blockmix.study import analyse_replicate  # noqa: E402
from qtlhpc.parallel.schedule import map_units  # noqa: E402

PAPER = {"right_k": 480 / 500, "position_mean": 23.70, "position_sd": 1.17}


def parse_range(text: str):
    first, last = (int(v) for v in text.split(":"))
    return first, last


def design_of(args) -> Design:
    """The design from ``--design FILE.toml`` (its ``[design]`` table, keys of
    :class:`qtlhpc.methods.blockmix.simulate.Design`), else from the command-line sizes."""
    if args.design:
        import tomllib

        with open(args.design, "rb") as handle:
            return Design.from_mapping(tomllib.load(handle).get("design", {}))
    return Design(n_genes=args.genes, n_clusters=args.clusters, effect_sd=args.effect_sd, noise_sd=args.noise_sd,
                  baseline_range=args.baseline_range)


def run(args, comm=None):
    design = design_of(args)
    k_first, k_last = parse_range(args.k_grid) if args.k_grid else (design.n_clusters - 1, design.n_clusters + 1)
    k_grid = tuple(range(max(k_first, 1), k_last + 1))
    first, last = parse_range(args.units) if args.units else (0, args.replicates)

    def compute(replicate):
        result = analyse_replicate(design, args.seed, replicate, k_grid, starts=args.starts, step=args.step)
        return (result.k_hat, result.agreement, result.position_cM, result.oracle_position_cM, result.max_lr)

    found = map_units(compute, range(first, last), comm, claimed=True)
    ids = np.arange(first, last)
    table = np.array([found[int(r)] for r in ids], dtype=float)
    return ids, table, design


def summarise(ids, table, clusters, truth=24.0):
    k_hat, agreement, position, oracle = table[:, 0], table[:, 1], table[:, 2], table[:, 3]
    n = len(ids)
    lines = [f"replicates: {n}",
             f"{'':32s} {'here':>16s} {'paper (500 replicates)':>24s}",
             f"{'K right':32s} {np.mean(k_hat == clusters):15.1%} {PAPER['right_k']:>23.0%}",
             f"{'eQTL position, mean +- SD (cM)':32s} {position.mean():8.2f} +- {position.std(ddof=1):5.2f} "
             f"{PAPER['position_mean']:>15.2f} +- {PAPER['position_sd']:.2f}",
             f"{'position within 2 cM of 24':32s} {np.mean(np.abs(position - truth) <= 2):15.1%} {'-':>23s}",
             f"{'clusters recovered (ARI > 0.95)':32s} {np.mean(agreement > 0.95):15.1%} {'-':>23s}",
             f"{'oracle position (true genotypes)':32s} {oracle.mean():8.2f} +- {oracle.std(ddof=1):5.2f} {'-':>23s}"]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--replicates", type=int, default=100)
    parser.add_argument("--units", default="", help="START:STOP replicate ids of this array task")
    parser.add_argument("--out", default="", help="write this task's table (npz)")
    parser.add_argument("--merge", nargs="*", default=None, help="merge task tables (npz) and summarise")
    parser.add_argument("--design", default="", help="TOML file with a [design] table (overrides the sizes below)")
    parser.add_argument("--genes", type=int, default=60)
    parser.add_argument("--clusters", type=int, default=3)
    parser.add_argument("--k-grid", default="", help="K_MIN:K_MAX (default clusters - 1 : clusters + 1)")
    parser.add_argument("--starts", type=int, default=2)
    parser.add_argument("--step", type=float, default=1.0)
    parser.add_argument("--effect-sd", type=float, default=0.5)
    parser.add_argument("--noise-sd", type=float, default=1.0)
    parser.add_argument("--baseline-range", type=float, default=3.0)
    parser.add_argument("--seed", type=int, default=2016)
    args = parser.parse_args(argv)
    if args.merge is not None:
        parts = [np.load(path) for path in args.merge]
        ids = np.concatenate([p["ids"] for p in parts])
        table = np.concatenate([p["table"] for p in parts])
        order = np.argsort(ids)
        missing = sorted(set(range(int(ids.max()) + 1)) - set(ids.tolist()))
        if missing:
            raise SystemExit(f"replicates missing from the task tables: {missing[:10]}...")
        print(summarise(ids[order], table[order], int(parts[0]["clusters"])))
        return
    try:
        from mpi4py import MPI
        comm = MPI.COMM_WORLD if MPI.COMM_WORLD.Get_size() > 1 else None
    except ImportError:
        comm = None
    started = time.perf_counter()
    ids, table, design = run(args, comm)
    rank = 0 if comm is None else comm.Get_rank()
    if rank == 0:
        if args.out:
            np.savez(args.out, ids=ids, table=table, clusters=design.n_clusters)
        ranks = 1 if comm is None else comm.Get_size()
        print(f"design: n = {design.n_individuals}, {design.n_genes} genes in {design.n_clusters} clusters, "
              f"{design.n_markers} markers on {design.chromosome_length_cM:g} cM, eQTL at "
              f"{design.qtl_position_cM:g} cM; scan step {args.step:g} cM; {time.perf_counter() - started:.0f} s "
              f"on {ranks} rank(s)")
        print(summarise(ids, table, design.n_clusters))


if __name__ == "__main__":
    main()
