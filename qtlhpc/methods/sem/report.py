"""Report and export of an SEM search: the network figure (cycles highlighted, edge widths from the
inclusion frequency), the edge list as TSV and the network as GraphML (for Cytoscape).

These work on arrays (the EDN, the best model's mask and coefficients, the inclusion frequencies).  The
``sem-search`` / ``sem-merge`` stages write the TSV and GraphML beside the results file; the report section
(:func:`sem_section`, found by ``qtlhpc report``) draws the figure and tabulates the EDN, the models and the
best model's edges, with copies of the TSV and GraphML in the report folder.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from qtlhpc.methods.sem import kernels as K
from qtlhpc.methods.sem.search import Network


def edge_table(network: Network, mask, frequency, B: Optional[np.ndarray] = None, F: Optional[np.ndarray] = None,
               gene_names: Optional[Sequence[str]] = None, qtl_names: Optional[Sequence[str]] = None):
    """Rows (source, target, kind, in_best, inclusion_frequency, coefficient, in_cycle) of every EDN edge."""
    mask = np.asarray(mask, dtype=bool)
    gene_names = list(gene_names) if gene_names is not None else [f"g{k}" for k in range(network.p)]
    qtl_names = list(qtl_names) if qtl_names is not None else [f"q{k}" for k in range(network.q)]
    best_genes, _ = network.edges_of(mask)
    _, labels = K.strong_components(network.p, best_genes)
    sizes = np.bincount(labels, minlength=network.p)
    rows = []
    for e, (t, h) in enumerate(network.gene_edges):
        cyclic = bool(mask[e] and labels[t] == labels[h] and sizes[labels[t]] > 1)
        rows.append((gene_names[t], gene_names[h], "gene", bool(mask[e]), float(frequency[e]),
                     float(B[h, t]) if B is not None else np.nan, cyclic))
    for j, (x, h) in enumerate(network.qtl_edges):
        e = network.d_gene + j
        rows.append((qtl_names[x], gene_names[h], "eqtl", bool(mask[e]), float(frequency[e]),
                     float(F[h, x]) if F is not None else np.nan, False))
    return rows


COLUMNS = ("source", "target", "kind", "in_best", "inclusion_frequency", "coefficient", "in_cycle")


def write_tsv(path, rows) -> Path:
    path = Path(path)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\t".join(COLUMNS) + "\n")
        for row in rows:
            handle.write("\t".join(_cell(v) for v in row) + "\n")
    return path


def _cell(value) -> str:
    if isinstance(value, bool):
        return "1" if value else "0"
    if isinstance(value, float):
        return "NA" if np.isnan(value) else repr(value)
    return str(value)


def graph(rows, best_only: bool = True):
    """A networkx DiGraph of the edges (the best model's by default), nodes typed gene / eqtl."""
    import networkx as nx

    g = nx.DiGraph()
    for source, target, kind, in_best, frequency, coefficient, cyclic in rows:
        if best_only and not in_best:
            continue
        g.add_node(source, kind="eqtl" if kind == "eqtl" else "gene")
        g.add_node(target, kind="gene")
        g.add_edge(source, target, kind=kind, inclusion_frequency=frequency,
                   coefficient=0.0 if np.isnan(coefficient) else coefficient, in_cycle=cyclic)
    return g


def write_graphml(path, rows, best_only: bool = True) -> Path:
    import networkx as nx

    nx.write_graphml(graph(rows, best_only), str(path))
    return Path(path)


def plot_network(path, rows, title: str = "SEM network (best model)") -> Path:
    """Spring layout of the best model: eQTL squares, genes circles, cycle edges red, widths ~ frequency."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import networkx as nx

    g = graph(rows)
    figure = plt.figure(figsize=(9, 9))
    axis = figure.add_subplot()
    position = nx.spring_layout(g, seed=1)
    genes = [n for n, d in g.nodes(data=True) if d["kind"] == "gene"]
    qtls = [n for n, d in g.nodes(data=True) if d["kind"] == "eqtl"]
    nx.draw_networkx_nodes(g, position, nodelist=genes, node_size=40, node_color="#2c7fb8", ax=axis)
    nx.draw_networkx_nodes(g, position, nodelist=qtls, node_size=30, node_shape="s", node_color="#7f7f7f", ax=axis)
    if g.number_of_nodes() <= 60:
        nx.draw_networkx_labels(g, position, font_size=7, ax=axis, verticalalignment="bottom")
    edges = list(g.edges(data=True))
    nx.draw_networkx_edges(g, position, edgelist=[(a, b) for a, b, _ in edges], ax=axis, arrowsize=6,
                           width=[0.3 + 2.5 * d["inclusion_frequency"] for _, _, d in edges],
                           edge_color=["#d62728" if d["in_cycle"] else ("#999999" if d["kind"] == "eqtl" else "#333333")
                                       for _, _, d in edges])
    axis.set_title(title + " (red: edges in cycles; width: inclusion frequency)")
    axis.set_axis_off()
    figure.savefig(path, dpi=120, bbox_inches="tight")
    plt.close(figure)
    return Path(path)


def sem_section(results, header, out_dir: Path, top: int):
    """The SEM section of ``qtlhpc report``: the best network (cycles red, widths ~ inclusion frequency), the EDN
    summary, the accepted models and the best model's edges; the TSV and GraphML beside the figure."""
    from qtlhpc.methods.sem.inputs import network_from_arrays
    from qtlhpc.report.html import FigureLink, Section, Table

    title = "SEM gene networks (Occam's window, BIC(delta))"
    status = header.stage("sem-search")
    if not status.is_complete:
        return Section(title, notes=[status.explain() + " No SEM figures."])
    names = ("edge_tail", "edge_head", "edge_is_eqtl", "cis_group_edge", "cis_group", "required_eqtl",
             "required_gene")
    gene_ids = results.read("sem-edn/gene_ids").astype(str)
    eqtl_names = results.read("sem-edn/eqtl_names").astype(str)
    network = network_from_arrays(gene_ids.size, eqtl_names.size, {n: results.read(f"sem-edn/{n}") for n in names})
    kinds = results.read("sem-edn/edge_kind").astype(str)
    summary = dict(zip(results.read("sem-edn/summary_names").astype(str).tolist(),
                       results.read("sem-edn/summary").tolist()))
    best = results.read("sem-search/best_mask")
    frequency = results.read("sem-search/inclusion_frequency")
    coefficient = results.read("sem-search/best_coefficient")
    model_ic = results.read("sem-search/model_ic")
    model_loglik = results.read("sem-search/model_loglik")
    model_k = results.read("sem-search/model_n_params")
    model_paths = results.read("sem-search/model_paths")
    model_mask = results.read("sem-search/model_mask")
    guards = results.read("sem-search/path_guard")
    guard_names = results.read("sem-search/guard_names").astype(str)
    delta = float(results.read("sem-search/delta"))
    if model_ic.size == 0:
        return Section(title, notes=[f"{guards.size} search paths: none kept an accepted model (guard rails hit: "
                                     f"{int((guards > 0).sum())}); raise sem_search.max_evaluations / "
                                     "max_candidates. No SEM figure."])
    rows = edge_table(network, best, frequency, gene_names=gene_ids, qtl_names=eqtl_names)
    rows = [row[:5] + (float(coefficient[e]),) + row[6:] for e, row in enumerate(rows)]
    out_dir = Path(out_dir)
    figure = plot_network(out_dir / "sem_network.png", rows)
    write_tsv(out_dir / "sem_edges.tsv", rows)
    write_graphml(out_dir / "sem_network.graphml", rows)
    hit = [f"path {k}: {guard_names[g - 1]}" for k, g in enumerate(guards) if g > 0]
    notes = [f"EDN: {summary['gene_edges']} gene -> gene and {summary['qtl_edges']} eQTL -> gene edges on "
             f"{summary['sem_genes']} genes and {summary['eqtl_nodes']} eQTL ({summary['regulators']} regulators, "
             f"{summary['targets']} targets, {summary['both']} both, {summary['isolated_genes']} isolated genes; "
             f"{summary['required_pairs']} required eQTL-target paths, {summary['cis_groups']} cis groups).",
             f"{guards.size} search paths, delta = {delta:g}: {model_ic.size} distinct accepted models; the best has "
             f"{int(best.sum())} of {network.d} edges, {sum(1 for r in rows if r[6])} of "
             f"them in cycles.  Edge table and GraphML: sem_edges.tsv, sem_network.graphml (for Cytoscape).",
             ("Guard rails hit: " + "; ".join(hit) + " (those paths stopped early).") if hit else
             "No guard rail was hit."]
    models = [(str(j), f"{model_ic[j]:.3f}", f"{model_loglik[j]:.3f}", str(int(model_k[j])),
               str(int(model_mask[j].sum())), str(int(model_paths[j]))) for j in range(min(top, model_ic.size))]
    edges = [(str(r[0]), str(r[1]), str(kinds[e]), f"{r[4]:.3f}", f"{r[5]:.4g}", "yes" if r[6] else "")
             for e, r in enumerate(rows) if r[3]]
    return Section(title, notes=notes, figures=[FigureLink(
        figure.name, "Best model: eQTL squares, genes circles; red edges lie on cycles; width ~ inclusion frequency")],
        tables=[Table(f"Accepted models (best {len(models)} by BIC(delta))",
                      ("model", "BIC(delta)", "log-likelihood", "parameters", "edges", "paths"), models,
                      (True, True, True, True, True, True)),
                Table("Edges of the best model", ("source", "target", "EDN kind", "inclusion frequency",
                                                  "coefficient", "in cycle"), edges,
                      (False, False, False, True, True, False))])


SECTION_BUILDERS = (sem_section,)
