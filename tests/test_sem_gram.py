"""The compiled factor fits from cross-products (sem/gram.py) and the search's fast paths, each against
the readable numpy reference (sem/kernels.py) or a brute-force equivalent."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse as sp
from scipy.sparse.csgraph import connected_components

from qtlhpc.methods.sem import gram as G
from qtlhpc.methods.sem import kernels as K
from qtlhpc.methods.sem import search as S
from qtlhpc.methods.sem import simulate as Sim
from qtlhpc.parallel.rng import unit_rng


@pytest.fixture(scope="module")
def simulated():
    data = Sim.simulate(unit_rng(1, "sem-simulate", 0), p=30, n_edges=44, n_lines=300)
    Y, X = K.centre(data.expression, data.genotypes.astype(float))
    return data, Y, X


def _tuples(parents):
    return lambda k: tuple(int(v) for v in parents[k])


def test_statistics_equal_the_reference_projection(simulated):
    data, Y, X = simulated
    net = data.edn
    gp, qp = K.parent_lists(net.p, net.gene_edges, net.qtl_edges)
    S_ = G.cross_products(Y, X)
    for members in K.factors_of(net.p, net.gene_edges):
        ours = G.factor_statistics(S_, members, _tuples(gp), _tuples(qp), net.p, Y.shape[0])
        ref = K.factor_stats(Y, X, members, gp, qp)
        scale = float(np.max(np.abs(ref.a)))
        np.testing.assert_allclose(ours.a, ref.a, rtol=1e-9, atol=1e-9 * scale)
        for i in range(len(members)):
            m = len(ref.inside[i])
            np.testing.assert_array_equal(ours.inside[ours.ins_ptr[i]:ours.ins_ptr[i + 1]], ref.inside[i])
            np.testing.assert_allclose(ours.h[ours.ins_ptr[i]:ours.ins_ptr[i + 1]], ref.h[i], atol=1e-8 * scale)
            start = int(sum(np.diff(ours.ins_ptr)[:i] ** 2))
            np.testing.assert_allclose(ours.H[start:start + m * m].reshape(m, m), ref.H[i], atol=1e-8 * scale)
        np.testing.assert_array_equal(ours.under_identified(), K.under_identified(ref))


def test_collinear_exogenous_columns_are_left_out_as_the_qr_does():
    rng = np.random.default_rng(4)
    n = 80
    X = rng.integers(0, 2, (n, 3)).astype(float)
    X[:, 2] = X[:, 1]                       # two markers in full linkage
    B = np.zeros((3, 3))
    B[1, 0], B[2, 1], B[0, 2] = 0.4, 0.5, -0.3
    Y = K.simulate_linear(B, np.eye(3), np.full(3, 0.5), X, rng)
    Y, X = K.centre(Y, X)
    gp = [np.array([2]), np.array([0]), np.array([1])]
    qp = [np.array([0]), np.array([1, 2]), np.array([2])]
    members = np.array([0, 1, 2])
    ours = G.factor_statistics(G.cross_products(Y, X), members, _tuples(gp), _tuples(qp), 3, n)
    ref = K.factor_stats(Y, X, members, gp, qp)
    np.testing.assert_array_equal(ours.deficient, ref.rank_deficient)
    np.testing.assert_allclose(ours.a, ref.a, rtol=1e-9)
    fit = G.fit(ours, [("ols", G.ols_start(ours))])
    reference = K.fit_factor(Y, X, members, gp, qp, starts=("ols",), n_random=0)
    assert fit.loglik == pytest.approx(reference.loglik, abs=1e-7)


def test_fits_equal_the_reference_fit_and_2sls(simulated):
    data, Y, X = simulated
    net = data.edn
    gp, qp = K.parent_lists(net.p, net.gene_edges, net.qtl_edges)
    S_ = G.cross_products(Y, X)
    cyclic = [m for m in K.factors_of(net.p, net.gene_edges) if len(m) > 1]
    assert cyclic, "the simulated EDN has a cycle"
    for members in K.factors_of(net.p, net.gene_edges):
        stats = G.factor_statistics(S_, members, _tuples(gp), _tuples(qp), net.p, Y.shape[0])
        ref = K.fit_factor(Y, X, members, gp, qp, starts=("2sls", "ols"), n_random=0)
        if len(members) > 1:
            two = G.two_stage_least_squares(S_, stats)
            np.testing.assert_allclose(two, np.concatenate(K.two_stage_least_squares(Y, X, K.factor_stats(
                Y, X, members, gp, qp))[0]), atol=1e-9)
        ours = G.fit(stats, [("2sls", G.two_stage_least_squares(S_, stats)), ("ols", G.ols_start(stats))])
        assert ours.loglik == pytest.approx(ref.loglik, abs=1e-8)
        coef = stats.gene_coefficients(ours.theta)
        for i, gene in enumerate(members):
            for parent, value in zip(gp[gene], ref.gene_coef[i]):
                assert coef[(int(gene), int(parent))] == pytest.approx(value, abs=1e-6)


def test_evaluator_engines_agree_on_models_and_flips(simulated):
    data, Y, X = simulated
    net = data.edn
    fast = S.Evaluator(Y, X, net, tol=1e-13)
    slow = S.Evaluator(Y, X, net, engine="reference", tol=1e-13)
    rng = np.random.default_rng(2)
    for _ in range(3):
        mask = rng.random(net.d) < 0.8
        a, b = fast.state(mask), slow.state(mask)
        assert a.factors == b.factors
        assert a.loglik == pytest.approx(b.loglik, abs=1e-7)
        for edge in rng.choice(net.d, size=12, replace=False):
            assert fast.flip_loglik(a, int(edge)) == pytest.approx(slow.flip_loglik(b, int(edge)), abs=1e-6)
    with pytest.raises(ValueError, match="engine"):
        S.Evaluator(Y, X, net, engine="fortran")


def test_split_equals_scipy_strong_components():
    rng = np.random.default_rng(7)
    for _ in range(40):
        n = int(rng.integers(2, 25))
        members = tuple(sorted(rng.choice(100, size=n, replace=False).tolist()))
        edges = [(u, v) for u in members for v in members if u != v and rng.random() < 2.0 / n]
        parents = {v: tuple(sorted(u for u, w in edges if w == v)) for v in members}
        ours = sorted(S._split(members, parents.__getitem__))
        index = {v: i for i, v in enumerate(members)}
        rows = [index[u] for u, _ in edges]
        cols = [index[v] for _, v in edges]
        graph = sp.csr_matrix((np.ones(len(rows)), (rows, cols)), shape=(n, n))
        _, labels = connected_components(graph, directed=True, connection="strong")
        expected = sorted(tuple(members[i] for i in np.flatnonzero(labels == label)) for label in set(labels))
        assert ours == expected


def test_removability_equals_the_brute_force_rule(simulated):
    data, _, _ = simulated
    net = data.edn
    assert len(net.required) and net.cis_groups
    rng = np.random.default_rng(5)
    checked = 0
    for share in (0.0, 0.05, 0.1, 0.3):
        mask = net.full()
        mask[rng.random(net.d) < share] = False
        rule = S.Removability(net, mask)
        for edge in range(net.d):
            fewer = mask.copy()
            fewer[edge] = False
            cis_kept = all(fewer[group].any() for group in net.cis_groups if mask[group].any())
            expected = bool(mask[edge]) and cis_kept and (S._paths_hold(net, fewer) or not S._paths_hold(net, mask))
            if mask[edge] and not S._paths_hold(net, mask):
                # a model that already breaks a path: the rule only asks that no path it has is cut
                continue
            assert rule.removable(edge) == expected, edge
            checked += 1
    assert checked > net.d
