"""SEM export: TSV columns, GraphML read back by networkx, the network figure, cycles marked."""

from __future__ import annotations

import networkx as nx
import numpy as np

from qtlhpc.methods.sem import kernels as K
from qtlhpc.methods.sem import report as R
from qtlhpc.methods.sem import search as S


def test_tsv_graphml_and_figure(tmp_path):
    rng = np.random.default_rng(0)
    X = rng.integers(0, 2, (80, 3)).astype(float)
    Y = rng.normal(size=(80, 3))
    net = S.Network(3, 3, [(0, 1), (1, 0), (1, 2), (2, 0)], [(0, 0), (1, 1), (2, 2)])
    mask = np.array([1, 1, 1, 0, 1, 1, 1], dtype=bool)
    ge, qe = net.edges_of(mask)
    fit = K.fit_model(Y, X, ge, qe)
    frequency = np.array([1, 0.5, 1, 0.25, 1, 1, 0.75])
    rows = R.edge_table(net, mask, frequency, fit.B, fit.F)
    assert [r[6] for r in rows] == [True, True, False, False, False, False, False]  # 0 <-> 1 is the cycle
    tsv = R.write_tsv(tmp_path / "edges.tsv", rows)
    lines = tsv.read_text().splitlines()
    assert lines[0].split("\t") == list(R.COLUMNS) and len(lines) == 1 + net.d
    assert lines[1].split("\t")[:5] == ["g0", "g1", "gene", "1", "1.0"]
    assert float(lines[1].split("\t")[5]) == fit.B[1, 0]
    graph = nx.read_graphml(R.write_graphml(tmp_path / "net.graphml", rows))
    assert graph.number_of_edges() == int(mask.sum())
    assert graph.edges["g0", "g1"]["in_cycle"] is True and graph.nodes["q0"]["kind"] == "eqtl"
    figure = R.plot_network(tmp_path / "net.png", rows)
    assert figure.stat().st_size > 1000
