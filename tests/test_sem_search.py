"""Occam's window search: against exhaustive enumeration of all submodels, the removable-edge rule,
the factor cache, and seeded paths."""

from __future__ import annotations

import math

import numpy as np
import pytest

from qtlhpc.methods.sem import kernels as K
from qtlhpc.methods.sem import search as S

# true: 0 -> 1, 1 <-> 2 (a loop), eQTL q_k -> k; the EDN adds 2 -> 3, 3 -> 0, 0 -> 2 and q0 -> 1
GENE_EDGES = [(0, 1), (1, 2), (2, 1), (2, 3), (3, 0), (0, 2)]
QTL_EDGES = [(0, 0), (1, 1), (2, 2), (3, 3), (0, 1)]


def _data(seed, n=100):
    rng = np.random.default_rng(seed)
    X = rng.integers(0, 2, (n, 4)).astype(float)
    B = np.zeros((4, 4))
    B[1, 0], B[2, 1], B[1, 2] = 0.5, 0.4, -0.3
    Y = K.simulate_linear(B, np.eye(4) * 0.8, np.full(4, 0.5), X, rng)
    return Y, X


def _net(**kw):
    return S.Network(4, 4, GENE_EDGES, QTL_EDGES, **kw)


def test_greedy_finds_the_exhaustive_best_in_most_data_sets():
    """Measured: 17 of 20 data sets (d = 11 edges, 2048 submodels, seeds 0-19); here 4 (the slow test runs 12)."""
    hits = 0
    runs = 4
    for seed in range(runs):
        Y, X = _data(seed)
        net = _net()
        evaluator = S.Evaluator(Y, X, net)
        found = S.search(Y, X, net, S.SearchOptions(), evaluator=evaluator)
        best_ic, best_mask = S.exhaustive(Y, X, net, evaluator=evaluator)
        assert found.best.ic >= best_ic - 1e-9  # nothing beats the enumeration
        hits += abs(found.best.ic - best_ic) < 1e-9
    assert hits >= 3, f"greedy matched the exhaustive best in {hits}/{runs}"


def test_state_loglik_equals_a_fresh_fit_and_flips_equal_refits():
    Y, X = _data(3)
    net = _net()
    evaluator = S.Evaluator(Y, X, net)
    rng = np.random.default_rng(0)
    for _ in range(6):
        mask = rng.random(net.d) < 0.7
        state = evaluator.state(mask)
        ge, qe = net.edges_of(mask)
        fit = K.fit_model(Y, X, ge, qe)
        assert state.loglik == pytest.approx(fit.loglik, abs=1e-7)
        assert state.n_params == fit.n_params
        assert state.loglik == pytest.approx(K.loglik_full(Y, X, fit.B, fit.F, fit.sigma2), abs=1e-7)
        for e in range(net.d):
            flipped = mask.copy()
            flipped[e] = not flipped[e]
            assert evaluator.flip_loglik(state, e) == pytest.approx(evaluator.state(flipped).loglik, abs=1e-9)


def test_removable_edge_rule_keeps_paths_and_one_cis_edge():
    # q0 must reach gene 3: through 0 -> 1 -> 2 -> 3 or 0 -> 2 -> 3; q1's cis candidates are edges to 1 and 2
    gene_edges = [(0, 1), (1, 2), (2, 3), (0, 2)]
    qtl_edges = [(0, 0), (1, 1), (1, 2)]
    net = S.Network(4, 2, gene_edges, qtl_edges, cis_groups=[[5, 6]], required=[(0, 3)])
    full = net.full()
    rule = S.Removability(net, full)
    assert rule.removable(0) and rule.removable(3)  # two routes 0 -> ... -> 2
    assert not rule.removable(2)  # 2 -> 3 is on every path
    assert not rule.removable(4)  # q0's only edge
    assert rule.removable(5) and rule.removable(6)
    reduced = full.copy()
    reduced[3] = False
    rule = S.Removability(net, reduced)
    assert not rule.removable(0) and not rule.removable(1)
    reduced[5] = False
    assert not S.Removability(net, reduced).removable(6)  # the last cis edge of q1


def test_search_respects_the_rule_and_exhaustive_agrees():
    Y, X = _data(5)
    net = _net(cis_groups=[[6, 10]], required=[(3, 3), (0, 2)])
    evaluator = S.Evaluator(Y, X, net)
    found = S.search(Y, X, net, S.SearchOptions(), evaluator=evaluator)
    for model in found.accepted:
        assert S._allowed(net, model.mask, net.full())
    best_ic, _ = S.exhaustive(Y, X, net, evaluator=evaluator)
    assert found.best.ic >= best_ic - 1e-9


def test_cache_hits_do_not_change_numbers_and_paths_are_seeded():
    Y, X = _data(7)
    net = _net()
    options = S.SearchOptions(delta=2.0, w=0.3)
    first = S.search(Y, X, net, options, n_paths=3, seed=11)
    again = S.search(Y, X, net, options, n_paths=3, seed=11,
                     evaluator=S.Evaluator(Y, X, net, seed=11))  # a fresh cache
    for a, b in zip(first.paths, again.paths):
        assert [S.model_key(m.mask) for m in a.accepted] == [S.model_key(m.mask) for m in b.accepted]
        assert [m.ic for m in a.accepted] == [m.ic for m in b.accepted]
    frequency = first.inclusion_frequency()
    assert frequency.shape == (net.d,) and np.all((0 <= frequency) & (frequency <= 1))
    assert first.delta == 2.0


def test_guard_rail_is_reported():
    Y, X = _data(8)
    net = _net()
    result = S.search(Y, X, net, S.SearchOptions(max_evaluations=5))
    assert result.guards == ["max_evaluations"]
    # the path still reports the best model it evaluated (the EDN itself here), with its IC
    evaluator = S.Evaluator(Y, X, net)
    state = evaluator.state(net.full())
    assert len(result.paths[0].accepted) == 1
    assert np.array_equal(result.best.mask, net.full())
    assert result.best.ic == pytest.approx(-2 * state.loglik + state.n_params * math.log(len(Y)))


def test_bic_delta_is_sparser_and_recovers_planted_edges():
    Y, X = _data(9, n=400)
    net = _net()
    bic = S.search(Y, X, net, S.SearchOptions(delta=1.0)).best
    strict = S.search(Y, X, net, S.SearchOptions(delta=2.0)).best
    assert strict.mask.sum() <= bic.mask.sum()
    true = np.zeros(net.d, dtype=bool)
    true[[0, 1, 2, 6, 7, 8, 9]] = True
    assert np.array_equal(strict.mask, true)
    assert strict.ic == pytest.approx(-2 * strict.loglik + 2.0 * strict.n_params * math.log(400))


@pytest.mark.slow
def test_greedy_matches_exhaustive_rate_on_twelve_data_sets():
    hits = 0
    for seed in range(100, 112):
        Y, X = _data(seed)
        net = _net()
        evaluator = S.Evaluator(Y, X, net)
        found = S.search(Y, X, net, S.SearchOptions(), evaluator=evaluator)
        best_ic, _ = S.exhaustive(Y, X, net, evaluator=evaluator)
        assert found.best.ic >= best_ic - 1e-9
        hits += abs(found.best.ic - best_ic) < 1e-9
    assert hits >= 8, f"greedy matched the exhaustive best in {hits}/12"


def test_bad_networks_are_refused_with_the_row():
    with pytest.raises(ValueError, match="gene_edges row 1: self-loop"):
        S.Network(3, 1, [(0, 1), (2, 2)], [])
    with pytest.raises(ValueError, match=r"qtl_edges row 0: \(4, 0\) out of range"):
        S.Network(3, 2, [], [(4, 0)])
    with pytest.raises(ValueError, match="duplicate"):
        S.Network(3, 1, [(0, 1), (0, 1)], [])
    with pytest.raises(ValueError, match="cis_groups"):
        S.Network(3, 1, [(0, 1)], [(0, 0)], cis_groups=[[0]])
