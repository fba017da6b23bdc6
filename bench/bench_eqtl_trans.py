"""Benchmark: eQTL mapping of a yeast-scale simulated cross (112 segregants, 2,956 markers, 4,589 genes):
cis + cis-trans, PC mapping (k-means, PCA, KW scan, targets) and trans mapping of all ~21 M regulator-target
pairs (model (1) with interaction, IUT, BH), on one process.

Usage: python bench/bench_eqtl_trans.py [--genes 4589] [--markers 2956] [--individuals 112]
                                        [--regulators N] [--regulator-block 256] [--threads 1]
                                        [--clusters 100] [--restarts 10] [--skip-pc]
``--regulators N`` times the trans kernel on the first N regulators only (all targets) and extrapolates to
all; ``--genes 500`` is a quick version.  Target (the issue): <= 5 min on 2 cores with 2 MPI ranks; the ranks
split the regulators, so the printout divides the 1-process trans time by 2 (the MPI layer is the lead's).
"""

import argparse
import os
import resource
import sys
import time


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--genes", type=int, default=4589)
    parser.add_argument("--markers", type=int, default=2956)
    parser.add_argument("--individuals", type=int, default=112)
    parser.add_argument("--regulators", type=int, default=None)
    parser.add_argument("--regulator-block", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--clusters", type=int, default=100)
    parser.add_argument("--restarts", type=int, default=10)
    parser.add_argument("--skip-pc", action="store_true")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(args.threads)
    from qtlhpc.methods.eqtl import cross, cross_trans
    from qtlhpc.methods.eqtl.simulate import CrossDesign, simulate_cross

    scale = args.genes / 4589
    design = CrossDesign(n_individuals=args.individuals, n_markers=args.markers, n_genes=args.genes,
                         n_cis=max(1, int(300 * scale)), n_cis_trans_regulators=max(1, int(20 * scale)),
                         n_trans_regulators=max(1, int(20 * scale)), missing_genotype_rate=0.01,
                         missing_expression_rate=0.01)
    start = time.perf_counter()
    sim = simulate_cross(design, seed=args.seed)
    print(f"simulated {args.individuals} individuals x {args.markers} markers x {args.genes} genes "
          f"in {time.perf_counter() - start:.1f} s ({args.threads} BLAS thread(s))")
    timings = {}

    start = time.perf_counter()
    flanks = cross.nearest_markers(sim.gene_chromosome, sim.gene_position_bp, sim.marker_chromosome,
                                   sim.marker_position_bp)
    cis = cross.cis_map(sim.expression, sim.genotypes, flanks)
    regions = cross.cis_regions(sim.expression, sim.genotypes, cis, sim.marker_chromosome, sim.marker_position_bp)
    cis_trans = cross.cis_trans_map(sim.expression, sim.genotypes, regions)
    timings["cis + regions + cis-trans"] = time.perf_counter() - start
    print(f"cis: {int(cis.significant.sum())} genes at q <= 0.05 (planted {sim.truth.cis_genes.size}), "
          f"{regions.n_regions} regions, {int(cis_trans.significant.sum())} cis-trans (region, gene) pairs; "
          f"{timings['cis + regions + cis-trans']:.1f} s")

    if not args.skip_pc:
        start = time.perf_counter()
        pc = cross.pc_map(sim.expression, sim.genotypes, sim.marker_chromosome, sim.marker_position_bp,
                          n_clusters=min(args.clusters, args.genes), n_restarts=args.restarts, seed=args.seed)
        timings["PC mapping"] = time.perf_counter() - start
        print(f"PC: {pc.components.scores.shape[0]} PCs (eigenvalue > 1.5), {pc.regions.n_regions} regions, "
              f"{int(pc.targets.significant.sum())} (region, gene) pairs; k-means objective {pc.kmeans.objective:.1f} "
              f"({pc.kmeans.history.size} Lloyd steps in the best restart); {timings['PC mapping']:.1f} s")

    closest = cross.closest_marker(sim.gene_chromosome, sim.gene_position_bp, sim.marker_chromosome,
                                   sim.marker_position_bp)
    markers = cross.marker_genotypes_of_genes(sim.genotypes, closest)
    n_regulators = args.genes if args.regulators is None else min(args.regulators, args.genes)
    start = time.perf_counter()
    trans = cross.trans_map(sim.expression, markers, regulator_range=(0, n_regulators),
                            regulator_block=args.regulator_block)
    elapsed = time.perf_counter() - start
    pairs = n_regulators * args.genes
    rate = pairs / elapsed
    all_pairs = args.genes * args.genes
    full = all_pairs / rate
    timings["trans mapping (all pairs, extrapolated)"] = full
    found = set(zip(trans.kept["regulator"][trans.significant].tolist(),
                    trans.kept["target"][trans.significant].tolist()))
    planted = {p for p in sim.truth.trans_pairs if p[0] < n_regulators}
    print(f"trans: {n_regulators} regulators x {args.genes} targets = {pairs:,} pairs ({trans.n_tests:,} tested) in "
          f"{elapsed:.1f} s: {rate / 1e6:.2f} M pairs/s; {int(trans.significant.sum())} pairs at q <= 0.05, "
          f"planted trans pairs found {len(planted & found)}/{len(planted)}")
    block_bytes = (89 * args.regulator_block * args.genes + 8 * 18 * cross_trans.REGULATOR_TILE
                   * cross_trans.TARGET_TILE + 8 * 6 * args.genes * args.individuals)
    print(f"memory per trans block ({args.regulator_block} regulators x {args.genes} targets): "
          f"{block_bytes / 2**20:.0f} MiB by the formula in trans_block's docstring")
    print(f"all {all_pairs:,} pairs on 1 process: {full:.0f} s; 2 ranks on 2 cores (ideal split): {full / 2:.0f} s")
    total = sum(timings.values())
    print("total (cis + PC + trans, 1 process): " + ", ".join(f"{k} {v:.1f} s" for k, v in timings.items())
          + f" = {total:.0f} s; with trans split over 2 ranks: {total - full / 2:.0f} s (target <= 300 s)")
    print(f"peak RSS {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MiB")
    sys.stdout.flush()


if __name__ == "__main__":
    main()
