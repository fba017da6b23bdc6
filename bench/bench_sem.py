"""Benchmarks of the SEM network search (Liu, de la Fuente & Hoeschele 2008).

    python bench/bench_sem.py one [--genes 100 --lines 300]          # one simulated data set: search time
    python bench/bench_sem.py yeast                                  # yeast-shaped: 265 genes, N = 112
    python bench/bench_sem.py study --data-sets 20 [--genes 100]     # power / FDR for BIC and BIC(delta)
    python bench/bench_sem.py factor [--genes 100]                   # ML of the EDN's largest cyclic factor

Data come from qtlhpc.methods.sem.simulate (the paper's ODE network design); data set k draws from
unit_rng(seed, "sem-simulate", k).  Run with OPENBLAS_NUM_THREADS=1 (the factors are small matrices).
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np

from qtlhpc.methods.sem import search as S
from qtlhpc.methods.sem import simulate as Sim
from qtlhpc.parallel.rng import unit_rng

PAPER = {"BIC": {"eqtl_power": 0.99, "eqtl_fdr": 0.22, "gene_power": 0.88, "gene_fdr": 0.08},
         "BIC(delta)": {"eqtl_power": 0.99, "eqtl_fdr": 0.09, "gene_power": 0.78, "gene_fdr": 0.01}}


def run_one(data: Sim.SimulatedData, delta: float, max_evaluations: int = 10_000_000):
    evaluator = S.Evaluator(data.expression, data.genotypes.astype(float), data.edn)
    start = time.perf_counter()
    path = S.occam_window(evaluator, S.SearchOptions(delta=delta, max_evaluations=max_evaluations), path=0)
    seconds = time.perf_counter() - start
    best = path.best.mask
    d_gene = data.edn.d_gene
    gene = Sim.power_fdr(best[:d_gene], data.true_gene, len(data.truth.gene_edges))
    eqtl = Sim.power_fdr(best[d_gene:], data.true_qtl, int(data.true_qtl.sum()))
    return {"delta": delta, "seconds": seconds, "evaluations": path.evaluations, "fits": evaluator.fits,
            "accepted": len(path.accepted), "guard": path.guard, "gene_power": gene[0], "gene_fdr": gene[1],
            "eqtl_power": eqtl[0], "eqtl_fdr": eqtl[1], "edges": int(best.sum())}


def describe(data: Sim.SimulatedData) -> dict:
    from qtlhpc.methods.sem.kernels import factors_of

    sizes = sorted(len(f) for f in factors_of(data.truth.p, data.truth.gene_edges) if len(f) > 1)
    return {"genes": data.truth.p, "lines": data.expression.shape[0], "true_gene_edges": len(data.truth.gene_edges),
            "true_eqtl_edges": int(data.true_qtl.sum()), "edn_gene_edges": data.edn.d_gene,
            "edn_eqtl_edges": len(data.edn.qtl_edges), "genes_in_cycles": int(sum(sizes)),
            "cyclic_components": len(sizes), "redraws": data.redraws,
            "mean_heritability": float(np.mean(data.heritability()))}


def study(n_sets: int, genes: int, edges: int, lines: int, seed: int, deltas=(1.0, 2.0)) -> dict:
    rows = []
    for k in range(n_sets):
        data = Sim.simulate(unit_rng(seed, "sem-simulate", k), p=genes, n_edges=edges, n_lines=lines)
        for delta in deltas:
            row = run_one(data, delta)
            row.update(data_set=k, **describe(data))
            rows.append(row)
            print(json.dumps(row), flush=True)
    summary = {}
    for delta, name in zip(deltas, ("BIC", "BIC(delta)")):
        picked = [r for r in rows if r["delta"] == delta]
        summary[name] = {key: float(np.mean([r[key] for r in picked]))
                         for key in ("eqtl_power", "eqtl_fdr", "gene_power", "gene_fdr", "seconds")}
        summary[name]["delta"] = delta
    return {"rows": rows, "summary": summary, "paper": PAPER}


def table(result: dict) -> str:
    lines = ["| criterion | eQTL->gene power | eQTL->gene FDR | gene->gene power | gene->gene FDR | s / data set |",
             "|---|---|---|---|---|---|"]
    for name, values in result["summary"].items():
        paper = PAPER[name]
        lines.append(f"| {name} (delta={values['delta']:g}) | {values['eqtl_power']:.2f} ({paper['eqtl_power']:.2f}) | "
                     f"{values['eqtl_fdr']:.2f} ({paper['eqtl_fdr']:.2f}) | {values['gene_power']:.2f} "
                     f"({paper['gene_power']:.2f}) | {values['gene_fdr']:.2f} ({paper['gene_fdr']:.2f}) | "
                     f"{values['seconds']:.1f} |")
    return "\n".join(lines) + "\n(paper's values in brackets)"


def factor(genes: int, edges: int, lines: int, seed: int) -> dict:
    """Time the ML fit of the largest cyclic factor of the full EDN: plain BCD vs SQUAREM, 2SLS start."""
    from qtlhpc.methods.sem import kernels as K

    data = Sim.simulate(unit_rng(seed, "sem-simulate", 0), p=genes, n_edges=edges, n_lines=lines)
    Y, X = K.centre(data.expression, data.genotypes.astype(float))
    net = data.edn
    gene_parents, qtl_parents = K.parent_lists(net.p, net.gene_edges, net.qtl_edges)
    members = max(K.factors_of(net.p, net.gene_edges), key=len)
    stats = K.factor_stats(Y, X, members, gene_parents, qtl_parents)
    start_betas = K.two_stage_least_squares(Y, X, stats)[0]
    out = {"factor_genes": len(members), "coefficients": int(sum(len(i) for i in stats.inside))}
    for name, method in (("bcd", K.bcd), ("squarem", K.squarem)):
        start = time.perf_counter()
        result = method(stats, start_betas)
        out[name] = {"seconds": time.perf_counter() - start, "sweeps": result.sweeps, "loglik": result.loglik,
                     "converged": result.converged}
    return out


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("what", choices=("one", "yeast", "study", "factor"))
    parser.add_argument("--genes", type=int, default=100)
    parser.add_argument("--edges", type=int, default=None, help="true gene edges (default 1.48 per gene)")
    parser.add_argument("--lines", type=int, default=300)
    parser.add_argument("--data-sets", type=int, default=20)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--delta", type=float, default=2.0)
    parser.add_argument("--max-evaluations", type=int, default=10_000_000)
    args = parser.parse_args(argv)
    if args.what == "yeast":
        # 265 genes, N = 112; 355 true edges give about 832 EDN gene edges at distance <= 2
        args.genes, args.lines, args.edges = 265, 112, args.edges or 355
    edges = args.edges or round(1.48 * args.genes)
    if args.what == "study":
        result = study(args.data_sets, args.genes, edges, args.lines, args.seed)
        print(table(result))
        return 0
    if args.what == "factor":
        print(json.dumps(factor(args.genes, edges, args.lines, args.seed), indent=1))
        return 0
    start = time.perf_counter()
    data = Sim.simulate(unit_rng(args.seed, "sem-simulate", 0), p=args.genes, n_edges=edges, n_lines=args.lines)
    simulated = time.perf_counter() - start
    row = run_one(data, args.delta, args.max_evaluations)
    row.update(describe(data), simulate_seconds=simulated)
    print(json.dumps(row, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
