"""Benchmark: GaneSh co-clustering on planted co-clusters: Gibbs iteration time, F assembly, the SLEPc time of
the fuzzy extractions, and a side-by-side with scikit-learn's SpectralCoclustering and k-means (ARI and time).

Usage: python bench/bench_cocluster.py [--genes 6000] [--conditions 173] [--clusters 85] [--runs 10]
                                       [--iterations 100] [--burn-in 50] [--fuzzy 500] [--ranks 1]
                                       [--compare-genes 600] [--compare-conditions 60] [--skip-compare]
The issue's target: 6,000 genes x 173 conditions, 10 runs of 100 iterations and 500 fuzzy clusters in at most
10 minutes on 2 cores.  With ``--iterations`` smaller than 100 the run time of 100 iterations is extrapolated
from the measured per-iteration time (printed as such).  ``--ranks 2`` also times the runs on 2 MPI ranks
(mpirun) against 1 (the runs split over the ranks).
"""

import argparse
import os
import subprocess
import sys
import time


def timed_runs(expression, args, comm=None):
    from qtlhpc.methods.cocluster import distributed

    start = time.perf_counter()
    results = distributed.runs(expression, args.seed, range(args.runs), comm, n_iterations=args.iterations,
                               burn_in=args.burn_in)
    return results, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=6000)
    parser.add_argument("--conditions", type=int, default=173)
    parser.add_argument("--clusters", type=int, default=85)
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--iterations", type=int, default=100)
    parser.add_argument("--burn-in", type=int, default=50)
    parser.add_argument("--fuzzy", type=int, default=500)
    parser.add_argument("--ranks", type=int, default=1)
    parser.add_argument("--compare-genes", type=int, default=600)
    parser.add_argument("--compare-conditions", type=int, default=60)
    parser.add_argument("--skip-compare", action="store_true")
    parser.add_argument("--on-degenerate", default="stop", choices=("stop", "component"))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--mpi-child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ.setdefault(name, "1")
    import numpy as np

    from qtlhpc.methods.cocluster import distributed
    from qtlhpc.methods.cocluster.kernels import run_chain
    from qtlhpc.methods.cocluster.simulate import PlantedDesign, simulate

    design = PlantedDesign(n_genes=args.genes, n_conditions=args.conditions, n_clusters=args.clusters,
                           condition_blocks=4, mean_sd=1.0, noise_sd=1.0)
    data = simulate(design, seed=args.seed)
    if args.mpi_child:
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
        run_chain(data.expression[:50, :10], np.random.default_rng(0), 2, 1)   # load the compiled loops first
        comm.Barrier()
        _, seconds = timed_runs(data.expression, args, comm)
        comm.Barrier()
        if comm.Get_rank() == 0:
            print(f"MPI_RUNS {comm.Get_size()} {seconds:.3f}")
        return
    run_chain(data.expression[:50, :10], np.random.default_rng(0), 2, 1)   # compile the loops
    print(f"planted data: {args.genes} genes x {args.conditions} conditions, {args.clusters} gene clusters")

    results, seconds = timed_runs(data.expression, args)
    per_iteration = seconds / (args.runs * args.iterations)
    clusters = np.mean([r.n_clusters[-1] for r in results.values()])
    print(f"runs: {args.runs} x {args.iterations} iterations in {seconds:.1f} s on one core: "
          f"{per_iteration:.3f} s per iteration per run (K at the end: {clusters:.1f}); "
          f"10 runs x 100 iterations: {per_iteration * 1000:.0f} s on one core, {per_iteration * 500:.0f} s "
          f"with the runs on 2 ranks")

    samples = [results[r].samples for r in range(args.runs)]
    start = time.perf_counter()
    rows = distributed.f_rows(samples, 0, args.genes)
    f_seconds = time.perf_counter() - start
    print(f"F: {rows.nnz} stored entries ({rows.nnz / args.genes ** 2:.3f} of G^2) from "
          f"{sum(s.shape[0] for s in samples)} samples in {f_seconds:.1f} s")

    from qtlhpc.methods.cocluster import fuzzy
    from qtlhpc.solvers import eigensolver

    solver = eigensolver("slepc", tol=1e-10)
    solve_time = [0.0]

    def eigenpairs(block):
        begin = time.perf_counter()
        out = solver.largest_from_rows(block, args.genes, 2)
        solve_time[0] += time.perf_counter() - begin
        return out

    start = time.perf_counter()
    result = fuzzy.extract(rows, 0, eigenpairs, max_clusters=args.fuzzy, on_degenerate=args.on_degenerate)
    total = time.perf_counter() - start
    print(f"fuzzy: {result.n_clusters} clusters (stop: {result.stop_reason}) in {total:.1f} s, of which SLEPc "
          f"{solve_time[0]:.1f} s ({solve_time[0] / max(result.n_clusters, 1):.3f} s per extraction); "
          f"genes with coverage > 0.98: {int((result.coverage > 0.98).sum())}")
    print(f"whole (runs on 2 ranks, extrapolated to 100 iterations, F and fuzzy serial): "
          f"{per_iteration * 500 + f_seconds + total:.0f} s")

    if args.ranks > 1:
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        timings = {}
        for ranks in (1, args.ranks):
            forwarded = [f"--{name.replace('_', '-')}={value}" for name, value in vars(args).items()
                         if name not in ("ranks", "mpi_child", "skip_compare", "on_degenerate")]
            command = ["mpirun", "--oversubscribe", "-n", str(ranks), sys.executable, "-m", "mpi4py", __file__,
                       "--mpi-child", "--skip-compare"] + forwarded
            out = subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout
            timings[ranks] = float(next(l for l in out.splitlines() if l.startswith("MPI_RUNS")).split()[2])
        print(f"runs under mpirun: 1 rank {timings[1]:.1f} s, {args.ranks} ranks {timings[args.ranks]:.1f} s: "
              f"{timings[1] / timings[args.ranks]:.2f}x")

    if not args.skip_compare:
        compare(args)


def compare(args):
    import numpy as np
    from sklearn.cluster import KMeans, SpectralCoclustering
    from sklearn.metrics import adjusted_rand_score

    from qtlhpc.methods.cocluster import distributed, fuzzy
    from qtlhpc.methods.cocluster.simulate import PlantedDesign, simulate
    from qtlhpc.solvers import ScipyEigen

    rows = []
    genes, conditions = args.compare_genes, args.compare_conditions
    for size in (20, 5):
        label = f"{genes // size} clusters of {size} genes"
        design = PlantedDesign(n_genes=genes, n_conditions=conditions, n_clusters=genes // size,
                               condition_blocks=3 if size > 5 else 2, mean_sd=1.0, noise_sd=1.0)
        data = simulate(design, seed=args.seed)
        truth, x, k = data.gene_cluster, data.expression, design.n_clusters
        for mode in ("two-way", "one-way"):
            start = time.perf_counter()
            runs = distributed.runs(x, args.seed, range(10), None, n_iterations=50, burn_in=25,
                                    one_way=mode == "one-way")
            samples = [r.samples for r in runs.values()]
            single = np.mean([adjusted_rand_score(truth, r.gene_labels) for r in runs.values()])
            rows_f = distributed.f_rows(samples, 0, x.shape[0])
            solver = ScipyEigen(dense_below=5000)   # LAPACK: G is small here
            result = fuzzy.extract(rows_f, 0, lambda block: solver.largest(block, 2), max_clusters=500,
                                   on_degenerate=args.on_degenerate)
            strongest = result.dense().argmax(axis=1)
            seconds = time.perf_counter() - start
            rows.append((label, f"GaneSh {mode} (10 runs x 50 it.)", single, adjusted_rand_score(truth, strongest),
                         seconds))
            print(f"  ({label}, {mode}: {result.n_clusters} fuzzy clusters, stop {result.stop_reason})")
        start = time.perf_counter()
        model = SpectralCoclustering(n_clusters=k, random_state=0).fit(x - x.min() + 1e-3)
        rows.append((label, f"SpectralCoclustering (k = {k} given)", adjusted_rand_score(truth, model.row_labels_),
                     float("nan"), time.perf_counter() - start))
        start = time.perf_counter()
        model = KMeans(n_clusters=k, n_init=10, random_state=0).fit(x)
        rows.append((label, f"k-means on genes (k = {k} given)", adjusted_rand_score(truth, model.labels_),
                     float("nan"), time.perf_counter() - start))
    print(f"\nside by side: {args.compare_genes} genes x {args.compare_conditions} conditions "
          "(ARI of a single run's last sample / of the strongest fuzzy cluster)")
    for label, method, ari, fuzzy_ari, seconds in rows:
        print(f"  {label:32s} {method:40s} ARI {ari:.3f}  fuzzy ARI {fuzzy_ari:.3f}  {seconds:.1f} s")


if __name__ == "__main__":
    main()
