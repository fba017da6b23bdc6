"""The paper's network simulator: steady states against ODE integration, the EDN against shortest paths."""

from __future__ import annotations

import networkx as nx
import numpy as np
from scipy.integrate import solve_ivp

from qtlhpc.methods.sem import simulate as Sim
from qtlhpc.parallel.rng import unit_rng


def _small(seed=0):
    return Sim.simulate(unit_rng(seed, "sem-simulate", 0), p=30, n_edges=44, n_lines=60)


def test_steady_states_equal_ode_integration():
    data = _small()
    truth = data.truth
    p = truth.p
    inh, act = np.zeros((p, p)), np.zeros((p, p))
    for (t, h), s in zip(truth.gene_edges, truth.sign):
        (act if s > 0 else inh)[h, t] = 1.0
    V = np.full((2, p), 1.0)
    V[1, ::3] = 0.75
    eps = np.zeros((2, p))
    G, ok = Sim.steady_states(V, eps, inh, act)
    assert ok.all()
    for line in range(2):
        def rhs(_, g):
            return Sim._rates(g[None], V[line:line + 1], inh, act)[0] - g
        solution = solve_ivp(rhs, (0, 100), np.ones(p), method="LSODA", rtol=1e-11, atol=1e-12)
        np.testing.assert_allclose(G[line], solution.y[:, -1], rtol=1e-6, atol=1e-8)


def test_design_and_edn():
    data = _small(1)
    truth = data.truth
    assert len(truth.gene_edges) == 44 and data.expression.shape == (60, 30)
    assert np.isfinite(data.expression).all() and data.redraws >= 0
    # true eQTL edges: cis q_i -> i, trans q_j -> each direct target of j
    expected = {(i, i) for i in range(30) if truth.cis[i]} | {(t, h) for t, h in truth.gene_edges.tolist()
                                                              if not truth.cis[t]}
    assert {tuple(e) for e in truth.qtl_edges().tolist()} == expected
    # EDN: j within two edges of i in the true network of genes and eQTL nodes
    g = nx.DiGraph()
    g.add_edges_from((f"g{t}", f"g{h}") for t, h in truth.gene_edges.tolist())
    g.add_edges_from((f"q{x}", f"g{h}") for x, h in truth.qtl_edges().tolist())
    close = {(a, b) for a in g.nodes for b, d in nx.single_source_shortest_path_length(g, a, cutoff=2).items()
             if 0 < d and a != b}
    net = data.edn
    found = {(f"g{t}", f"g{h}") for t, h in net.gene_edges.tolist()} | {(f"q{x}", f"g{h}") for x, h in
                                                                        net.qtl_edges.tolist()}
    assert found == close
    assert data.true_gene.sum() == 44 and data.true_qtl.sum() == len(expected)
    # cis edges are kept (one-edge groups); every true trans eQTL edge needs a path
    assert len(net.cis_groups) == int(truth.cis.sum())
    assert len(net.required) == len(expected) - int(truth.cis.sum())


def test_power_fdr():
    assert Sim.power_fdr(np.array([1, 1, 0, 1], bool), np.array([1, 0, 1, 1], bool), 4) == (0.5, 1 / 3)
