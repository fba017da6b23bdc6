"""The co-clustering sections of ``qtlhpc report`` (method ``cocluster``).

* the Gibbs runs: score traces of every run ([J] Fig. 4) and rho between averages of k runs ([J] Fig. 2);
* the co-clustering matrix F as a heatmap, genes ordered by their strongest of the first fuzzy clusters
  (binned to at most 400 x 400 cells, so F is never made dense);
* the fuzzy clusters: membership and coverage distributions, the first clusters, and [J] Table 3's layout
  (genes in at least one, and in brackets at least two, fuzzy clusters at cutoffs 0.1, 0.3, 0.5).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import scipy.sparse as sp

from qtlhpc.report.figures import CHROMOSOME_COLOURS, _new_figure, _save
from qtlhpc.report.html import FigureLink, Section, Table

HEATMAP_BINS = 400
ORDER_CLUSTERS = 50


def gene_order(n_genes: int, genes, clusters, values, n_first: int = ORDER_CLUSTERS) -> np.ndarray:
    """Genes sorted by their strongest cluster among the first ``n_first`` (then by membership, descending);
    genes in none of them last."""
    best_cluster = np.full(n_genes, n_first, dtype=np.int64)
    best_value = np.zeros(n_genes)
    keep = clusters < n_first
    for g, k, p in zip(genes[keep], clusters[keep], values[keep]):
        if p > best_value[g]:
            best_value[g], best_cluster[g] = p, k
    return np.lexsort((-best_value, best_cluster))


def binned_matrix(matrix: sp.csr_matrix, order: np.ndarray, bins: int = HEATMAP_BINS) -> np.ndarray:
    """Mean of ``matrix[order][:, order]`` over ``bins x bins`` blocks (``bins = min(bins, G)``)."""
    n = matrix.shape[0]
    bins = min(bins, n)
    position = np.empty(n, dtype=np.int64)
    position[order] = np.arange(n)
    edges = (np.arange(n) * bins) // n                      # bin of each ordered position
    coo = matrix.tocoo()
    rows, cols = edges[position[coo.row]], edges[position[coo.col]]
    totals = np.zeros((bins, bins))
    np.add.at(totals, (rows, cols), coo.data)
    counts = np.bincount(edges, minlength=bins).astype(float)
    return totals / np.outer(counts, counts)


def plot_heatmap(path: Path, binned: np.ndarray, boundaries) -> Path:
    figure = _new_figure(5.6, 5.0)
    axis = figure.add_subplot()
    image = axis.imshow(binned, cmap="viridis", vmin=0.0, vmax=1.0, interpolation="nearest")
    for edge in boundaries:
        axis.axhline(edge - 0.5, color="white", linewidth=0.3)
        axis.axvline(edge - 0.5, color="white", linewidth=0.3)
    figure.colorbar(image, ax=axis, label="F (co-clustering probability)")
    axis.set_xlabel("genes (ordered by strongest fuzzy cluster)")
    axis.set_ylabel("genes")
    axis.set_title("Co-clustering matrix F")
    return _save(figure, path)


def plot_traces(path: Path, traces: np.ndarray, burn_in: int) -> Path:
    figure = _new_figure(6, 3.4)
    axis = figure.add_subplot()
    iterations = np.arange(1, traces.shape[1] + 1)
    for run, trace in enumerate(traces):
        axis.plot(iterations, trace, linewidth=0.8, color=CHROMOSOME_COLOURS[run % 2], alpha=0.8)
    if 0 < burn_in < traces.shape[1]:
        axis.axvline(burn_in + 0.5, color="#c0392b", linestyle="--", linewidth=0.8, label="burn-in")
        axis.legend(frameon=False)
    axis.set_xlabel("iteration")
    axis.set_ylabel("Bayesian score (log)")
    axis.set_title(f"Score traces of {traces.shape[0]} runs")
    return _save(figure, path)


def plot_rho_by_k(path: Path, table: np.ndarray) -> Path:
    figure = _new_figure(5, 3.4)
    axis = figure.add_subplot()
    ks = np.arange(1, table.shape[0] + 1)
    for k, row in zip(ks, table):
        values = row[np.isfinite(row)]
        axis.scatter(np.full(values.size, k), values, s=10, color=CHROMOSOME_COLOURS[1])
    means = np.array([np.nanmean(row) if np.isfinite(row).any() else np.nan for row in table])
    axis.plot(ks, means, color="#c0392b", linewidth=1.0)
    axis.set_xlabel("k (runs per average)")
    axis.set_ylabel("rho between two disjoint averages")
    axis.set_ylim(min(0.0, float(np.nanmin(table)) if np.isfinite(table).any() else 0.0), 1.02)
    axis.set_title("Convergence: rho against the number of runs")
    return _save(figure, path)


def plot_memberships(path: Path, values: np.ndarray, coverage: np.ndarray, sizes: np.ndarray) -> Path:
    figure = _new_figure(10, 3.2)
    panels = ((values, "membership p_ik (stored)", True, (0.0, 1.0)),
              (coverage, "coverage sum_k p_ik per gene", False, (0.0, 1.0)),
              (sizes, "cluster size sum_i p_ik", True, None))
    for index, (data, label, log, limits) in enumerate(panels):
        axis = figure.add_subplot(1, 3, index + 1)
        axis.hist(data, bins=30, range=limits, color=CHROMOSOME_COLOURS[index % 2], edgecolor="white",
                  log=log and data.size > 0)
        axis.set_xlabel(label)
        axis.set_ylabel("count")
    figure.suptitle("Fuzzy clusters: membership distributions")
    return _save(figure, path)


def runs_section(results, header, out_dir: Path, top: int) -> Section:
    title = "Co-clustering: Gibbs runs"
    status = header.stage("cocluster-runs")
    if not status.is_complete:
        return Section(title, notes=[status.explain() + " No run figures."])
    traces = results.read("cocluster-runs/score_trace")
    used = int(results.read("cocluster-runs/runs_used"))
    counts = results.read("cocluster-runs/n_clusters")[:used]
    kept = results.read("cocluster-runs/samples").shape[1]
    burn_in = traces.shape[1] - kept  # with thin = 1
    figures = [FigureLink(plot_traces(out_dir / "cocluster_traces.png", traces[:used], burn_in).name,
                          "Bayesian score sum_kl S_kl of every run at every iteration ([J] eq. (2), Fig. 4)")]
    notes = [f"{used} runs; gene clusters at the last iteration: mean {counts[:, -1].mean():.1f} "
             f"(range {counts[:, -1].min()}-{counts[:, -1].max()}); final score mean {traces[:used, -1].mean():.6g} "
             f"(SD {traces[:used, -1].std(ddof=1) if used > 1 else 0.0:.3g})."]
    auto = results.read("cocluster-runs/auto_rho")
    if auto.size:
        notes.append("runs = \"auto\": rho between halves after each round: " + ", ".join(f"{r:.3f}" for r in auto))
    if header.stage("cocluster-matrix").is_complete:
        table = results.read("cocluster-matrix/rho_by_k")
        if np.isfinite(table).any():
            figures.append(FigureLink(plot_rho_by_k(out_dir / "cocluster_rho_by_k.png", table).name,
                                      "rho ([J] eq. (4)) between averages of two disjoint sets of k runs ([J] Fig. 2)"))
        notes.append(f"rho between the two halves of the runs: {float(results.read('cocluster-matrix/rho_halves')):.4f}; "
                     f"H_fuzzy = {float(results.read('cocluster-matrix/entropy')):.4g} ([J] eq. (6)).")
    return Section(title, notes=notes, figures=figures)


def fuzzy_section(results, header, out_dir: Path, top: int) -> Section:
    title = "Co-clustering: fuzzy clusters"
    status = header.stage("cocluster-fuzzy")
    if not status.is_complete:
        return Section(title, notes=[status.explain() + " No fuzzy-cluster figures."])
    genes = results.read("cocluster-fuzzy/membership_gene")
    clusters = results.read("cocluster-fuzzy/membership_cluster")
    values = results.read("cocluster-fuzzy/membership")
    coverage = results.read("cocluster-fuzzy/coverage")
    sizes = results.read("cocluster-fuzzy/size")
    lambda1 = results.read("cocluster-fuzzy/lambda1")
    lambda2 = results.read("cocluster-fuzzy/lambda2")
    prototypes = results.read("cocluster-fuzzy/prototype")
    gene_ids = results.read("expression/gene_ids")
    n_genes = coverage.size
    indptr = results.read("cocluster-matrix/indptr")
    matrix = sp.csr_matrix((results.read("cocluster-matrix/data"), results.read("cocluster-matrix/indices"), indptr),
                           shape=(n_genes, n_genes))
    order = gene_order(n_genes, genes, clusters, values)
    binned = binned_matrix(matrix, order)
    figures = [
        FigureLink(plot_heatmap(out_dir / "cocluster_F.png", binned, []).name,
                   f"F ordered by each gene's strongest of the first {ORDER_CLUSTERS} fuzzy clusters "
                   f"(mean over {binned.shape[0]} x {binned.shape[0]} blocks)"),
        FigureLink(plot_memberships(out_dir / "cocluster_memberships.png", values, coverage, sizes).name,
                   "Stored memberships p_ik, each gene's total membership, and the cluster sizes"),
    ]
    counts = results.read("cocluster-fuzzy/layout_counts")
    cutoffs = results.read("cocluster-fuzzy/cutoffs")
    layout = Table("Genes in at least one fuzzy cluster (in brackets: at least two) by membership cutoff "
                   "([J] Table 3)", [f"p >= {c:g}" for c in cutoffs],
                   [[f"{int(a)} ({int(b)})" for a, b in counts]], [True] * len(cutoffs))
    rows = []
    for k in range(min(top, lambda1.size)):
        members = values[clusters == k]
        rows.append((str(k + 1), str(gene_ids[prototypes[k]]), f"{sizes[k]:.2f}", str(int((members >= 0.5).sum())),
                     f"{lambda1[k]:.4g}", f"{lambda2[k]:.4g}"))
    first_table = Table(f"The first {len(rows)} fuzzy clusters", ("cluster", "prototype gene", "size",
                                                                 "genes with p >= 0.5", "lambda1", "lambda2"),
                        rows, (True, False, True, True, True, True))
    stop = str(results.read("cocluster-fuzzy/stop_reason"))
    notes = [f"{lambda1.size} fuzzy clusters; stopped: {stop}. {int((coverage > 0.98).sum())} of {n_genes} genes "
             f"have total membership above 0.98."]
    return Section(title, notes=notes, figures=figures, tables=[layout, first_table])


SECTION_BUILDERS = (runs_section, fuzzy_section)
SECTION_BUILDERS_BY_METHOD = {"cocluster": SECTION_BUILDERS}
