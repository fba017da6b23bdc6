"""Report and export of an SEM search: the network figure (cycles highlighted, edge widths from the
inclusion frequency), the edge list as TSV and the network as GraphML (for Cytoscape).

These work on arrays (the EDN, the best model's mask and coefficients, the inclusion frequencies); the
stage that will call them is not written yet (see docs/sem.md).
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
