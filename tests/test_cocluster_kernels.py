"""GaneSh kernels against slow obvious references: numerical integration of the normal-gamma marginal,
recomputed statistics, candidate scores recomputed from scratch, and exact enumeration of small posteriors."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pytest
from scipy import integrate, stats

from qtlhpc.methods.cocluster import gibbs_kernels as gk
from qtlhpc.methods.cocluster.kernels import (ChainState, Prior, coclustering_score, cooccurrence_rows,
                                               fuzziness_entropy, ng_score, rho, run_chain)


# ---------------------------------------------------------------- references

def integrated_marginal(cells, prior):
    """log of  int int prod N(x | mu, 1/tau) p(mu | tau) p(tau) dmu dtau  by scipy quadrature (no closed form used)."""
    cells = np.asarray(cells, dtype=float)

    alpha0, beta0, lambda0, mu0 = prior.alpha0, prior.beta0, prior.lambda0, prior.mu0
    log_gamma_norm = alpha0 * math.log(beta0) - math.lgamma(alpha0)

    def integrand(mu, tau):   # the densities written out: normal likelihood, normal prior of mu, gamma of tau
        squares = float(((cells - mu) ** 2).sum())
        log_likelihood = 0.5 * cells.size * math.log(tau / (2 * math.pi)) - 0.5 * tau * squares
        log_mu_prior = 0.5 * math.log(lambda0 * tau / (2 * math.pi)) - 0.5 * lambda0 * tau * (mu - mu0) ** 2
        log_tau_prior = log_gamma_norm + (alpha0 - 1.0) * math.log(tau) - beta0 * tau
        return math.exp(log_likelihood + log_mu_prior + log_tau_prior)

    def over_mu(s):   # tau = exp(s) tames the gamma density's singularity at 0; mu over the whole line
        tau = math.exp(s)
        centre = (prior.lambda0 * prior.mu0 + cells.sum()) / (prior.lambda0 + cells.size)
        width = 1.0 / math.sqrt((prior.lambda0 + cells.size) * tau)
        # mu = centre + z * width only rescales the line so that quadrature finds the mass at every tau
        inner, _ = integrate.quad(lambda z: integrand(centre + z * width, tau) * width, -np.inf, np.inf,
                                  epsabs=0, epsrel=1e-10, limit=200)
        return inner * tau

    value, _ = integrate.quad(over_mu, -80.0, 12.0, epsabs=0, epsrel=1e-10, limit=400)
    return math.log(value)


def set_partitions(items):
    """All set partitions of ``items`` as label tuples (restricted growth strings)."""
    items = list(items)
    n = len(items)

    def grow(prefix, top):
        if len(prefix) == n:
            yield tuple(prefix)
            return
        for label in range(top + 2):
            yield from grow(prefix + [label], max(top, label))

    yield from grow([0], 0) if n else iter([()])


def canonical(labels):
    seen = {}
    return tuple(seen.setdefault(x, len(seen)) for x in labels)


def total_variation(p, q):
    keys = set(p) | set(q)
    return 0.5 * sum(abs(p.get(k, 0.0) - q.get(k, 0.0)) for k in keys)


def exact_posterior(log_weights):
    keys = list(log_weights)
    values = np.array([log_weights[k] for k in keys])
    values = np.exp(values - values.max())
    values /= values.sum()
    return dict(zip(keys, values))


# ---------------------------------------------------------------- score

@pytest.mark.parametrize("cells, prior", [
    ([0.3], Prior()),
    ([0.3, -1.2, 0.8, 2.0], Prior()),
    ([1.5, 2.5, 1.9], Prior(mu0=1.0, lambda0=0.5, alpha0=2.0, beta0=0.7)),
    (np.linspace(-1, 1, 9), Prior(mu0=-0.3, lambda0=2.0, alpha0=0.5, beta0=1.5)),
])
def test_score_equals_numerical_integration(cells, prior):
    cells = np.asarray(cells, dtype=float)
    closed = ng_score(cells.size, cells.sum(), (cells ** 2).sum(), prior)
    assert closed == pytest.approx(integrated_marginal(cells, prior), abs=1e-6)


def test_count_table_score_equals_the_closed_form():
    prior = Prior(mu0=0.3, lambda0=0.7, alpha0=1.3, beta0=0.4)
    table = gk.score_table(50, prior.array())
    rng = np.random.default_rng(1)
    for n in (1, 2, 7, 50):
        cells = rng.normal(size=n)
        assert gk.fast_score(float(n), cells.sum(), (cells ** 2).sum(), prior.array(), table) == pytest.approx(
            ng_score(n, cells.sum(), (cells ** 2).sum(), prior), rel=1e-12)
    assert gk.fast_score(0.0, 0.0, 0.0, prior.array(), table) == 0.0


def test_empty_cocluster_scores_zero_and_missing_cells_are_excluded():
    assert ng_score(0, 0.0, 0.0) == 0.0
    x = np.array([[0.5, np.nan, 1.0], [np.nan, -0.2, 0.1]])
    labels = np.array([0, 0])
    partition = np.array([[0, 0, 0], [0, 0, 0]])
    observed = np.array([0.5, 1.0, -0.2, 0.1])
    expected = ng_score(4, observed.sum(), (observed ** 2).sum())
    assert coclustering_score(x, labels, partition) == pytest.approx(expected, rel=1e-14)


# ---------------------------------------------------------------- incremental statistics

@pytest.mark.parametrize("one_way", [False, True])
def test_incremental_statistics_equal_recomputation(one_way):
    rng = np.random.default_rng(4)
    x = rng.normal(size=(40, 12))
    x[:20, :6] += 2.0
    x[rng.random(x.shape) < 0.05] = np.nan
    gene_labels = rng.integers(0, 5, 40)
    cond_labels = rng.integers(0, 3, (40, 12))
    state = ChainState(x, gene_labels, cond_labels, one_way=one_way)
    stream = np.random.default_rng(7)
    for _ in range(15):
        state.gene_sweep(stream)
        state.condition_sweep(stream)
        for ours, reference in zip((state.t0, state.t1, state.t2), state.recomputed_statistics()):
            open_rows = state.open_clusters()
            np.testing.assert_allclose(ours[open_rows], reference[open_rows], rtol=1e-9, atol=1e-9)
        # cached scores and the total equal a from-scratch evaluation of the co-clustering
        labels = state.gene_labels()
        partitions = state.condition_partitions()
        assert state.score_total() == pytest.approx(coclustering_score(x, labels, partitions), rel=1e-10)
        assert sorted(state.active[:state.n_active[0]]) == list(np.flatnonzero(state.gene_count))
        if one_way:
            assert (partitions == np.arange(12)).all()


# ---------------------------------------------------------------- one move against recomputed scores

def copy_state(state):
    clone = object.__new__(ChainState)
    clone.__dict__.update({k: (v.copy() if isinstance(v, np.ndarray) else v) for k, v in state.__dict__.items()})
    return clone


def move_distribution_by_uniform_grid(state, move, n_grid=4000):
    """Frequencies of the outcomes of ``move(clone, u)`` over a uniform grid of u: the move's exact probabilities."""
    outcomes = {}
    for u in (np.arange(n_grid) + 0.5) / n_grid:
        clone = copy_state(state)
        key = move(clone, u)
        outcomes[key] = outcomes.get(key, 0.0) + 1.0 / n_grid
    return outcomes


@pytest.mark.parametrize("one_way", [False, True])
def test_gene_move_probabilities_equal_recomputed_scores(one_way):
    rng = np.random.default_rng(11)
    x = rng.normal(scale=0.7, size=(6, 4))
    x[2, 1] = np.nan
    gene_labels = np.array([0, 0, 1, 1, 2, 3])
    cond_labels = np.array([[0, 0, 1, 1], [0, 1, 1, 2], [0, 0, 0, 0], [0, 1, 0, 1], [0] * 4, [0] * 4])
    state = ChainState(x, gene_labels, cond_labels, one_way=one_way)
    gene = 0

    def move(clone, u):
        gk.gene_step(np.array([gene]), np.array([u]), clone.one_way, 0.0, clone.values, clone.observed,
                     clone.squares, clone.prior_array, clone.table, clone.gene_slot, clone.gene_count, clone.active,
                     clone.n_active, clone.cond_slot, clone.cond_count, clone.cond_active, clone.n_cond_active,
                     clone.t0, clone.t1, clone.t2, clone.score)
        return (canonical(clone.gene_slot), tuple(map(tuple, clone.condition_partitions())))

    observed = move_distribution_by_uniform_grid(state, move)
    # reference: the candidate co-clusterings built by hand and scored from scratch
    base = {k: (cond_labels[k] if not one_way else np.arange(4)) for k in range(4)}
    candidates = {}
    for target in [0, 1, 2, 3, "new"]:
        labels = gene_labels.copy()
        partitions = dict(base)
        labels[gene] = 4 if target == "new" else target
        partitions[4] = np.arange(4) if one_way else np.zeros(4, dtype=int)
        rows = np.zeros((6, 4), dtype=int)
        for k, row in partitions.items():
            rows[k] = row
        temp = ChainState(x, labels, rows, one_way=one_way)
        key = (canonical(labels), tuple(map(tuple, temp.condition_partitions())))
        candidates[key] = coclustering_score(x, labels, rows)
    expected = exact_posterior(candidates)
    assert set(observed) == set(expected)
    for key in expected:
        assert observed[key] == pytest.approx(expected[key], abs=1.0 / 4000 + 1e-12)


# ---------------------------------------------------------------- long runs against exact enumeration

def test_one_way_chain_matches_enumeration_on_five_genes():
    rng = np.random.default_rng(3)
    x = rng.normal(scale=0.8, size=(5, 3))
    x[1] += 0.6
    prior = Prior()
    log_weights = {}
    for labels in set_partitions(range(5)):
        labels = np.array(labels)
        log_weights[tuple(labels)] = coclustering_score(x, labels, np.tile(np.arange(3), (5, 1)), prior)
    exact = exact_posterior(log_weights)
    state = ChainState(x, np.zeros(5, dtype=int), np.zeros((5, 3), dtype=int), prior, one_way=True)
    stream = np.random.default_rng(5)
    counts = {}
    n_sweeps = 30000
    for _ in range(500):
        state.gene_sweep(stream)
    for _ in range(n_sweeps):
        state.gene_sweep(stream)
        key = canonical(state.gene_slot)
        counts[key] = counts.get(key, 0) + 1
    frequencies = {k: v / n_sweeps for k, v in counts.items()}
    assert len(exact) == 52
    assert total_variation(frequencies, exact) < 0.03


def test_condition_moves_match_enumeration_on_five_conditions():
    rng = np.random.default_rng(8)
    x = rng.normal(scale=0.6, size=(3, 5))
    x[:, 3:] += 0.8
    prior = Prior()
    log_weights = {}
    for labels in set_partitions(range(5)):
        log_weights[labels] = coclustering_score(x, np.zeros(3, dtype=int), np.array([labels] * 3), prior)
    exact = exact_posterior(log_weights)
    state = ChainState(x, np.zeros(3, dtype=int), np.zeros((3, 5), dtype=int), prior)
    stream = np.random.default_rng(6)
    counts = {}
    n_sweeps = 30000
    for _ in range(n_sweeps):
        state.condition_sweep(stream)
        key = canonical(state.cond_slot[state.gene_slot[0]])
        counts[key] = counts.get(key, 0) + 1
    frequencies = {k: v / n_sweeps for k, v in counts.items()}
    assert len(exact) == 52
    assert total_variation(frequencies, exact) < 0.03


# ---------------------------------------------------------------- two-way chain: exact kernel enumeration

def cocluster_states(n_genes, n_conditions):
    """Every co-clustering of a small problem: (gene labels, tuple of condition partitions by gene label)."""
    condition_partitions = list(set_partitions(range(n_conditions)))
    for genes in set_partitions(range(n_genes)):
        n_clusters = max(genes) + 1
        for parts in itertools.product(condition_partitions, repeat=n_clusters):
            yield genes, parts


def two_way_kernel(x, prior):
    """The exact transition matrix of one iteration (G random gene moves, then C condition moves per cluster)
    of the paper's two-way sampler (new gene cluster: one condition block), over all co-clusterings."""
    n_genes, n_conditions = x.shape
    states = list(cocluster_states(n_genes, n_conditions))
    index = {s: n for n, s in enumerate(states)}

    def key_of(genes, parts_by_label):
        genes = canonical(genes)
        seen = []
        for g in genes:
            if g not in seen:
                seen.append(g)
        return genes, tuple(canonical(parts_by_label[g]) for g in range(len(seen)))

    def score(genes, parts):
        return coclustering_score(x, np.array(genes), np.array(parts), prior)

    n_states = len(states)
    gene_kernel = np.zeros((n_states, n_states))
    for s, (genes, parts) in enumerate(states):
        for i in range(n_genes):
            others = [g for j, g in enumerate(genes) if j != i]
            options = []
            for target in sorted(set(others)):
                new_genes = list(genes)
                new_genes[i] = target
                options.append((new_genes, list(parts)))
            new_genes = list(genes)
            new_genes[i] = max(genes) + 1
            options.append((new_genes, list(parts) + [tuple([0] * n_conditions)]))
            keys = []
            for new_genes, new_parts in options:
                relabel = {}
                for g in new_genes:
                    relabel.setdefault(g, len(relabel))
                by_label = {relabel[g]: new_parts[g] for g in relabel}
                keys.append(key_of([relabel[g] for g in new_genes], by_label))
            weights = exact_posterior({k: score(*k) for k in keys})
            for k, w in weights.items():
                gene_kernel[s, index[k]] += w / n_genes
    condition_kernels = {}
    for s, (genes, parts) in enumerate(states):
        for cluster in range(len(parts)):
            members = frozenset(j for j, g in enumerate(genes) if g == cluster)
            kernel = condition_kernels.setdefault(members, np.eye(n_states) * 0.0)
            for m in range(n_conditions):
                others = [l for c, l in enumerate(parts[cluster]) if c != m]
                targets = sorted(set(others)) + [max(parts[cluster]) + 1]
                keys = []
                for target in targets:
                    row = list(parts[cluster])
                    row[m] = target
                    new_parts = list(parts)
                    new_parts[cluster] = canonical(row)
                    keys.append((genes, tuple(new_parts)))
                weights = exact_posterior({k: score(*k) for k in keys})
                for k, w in weights.items():
                    kernel[s, index[k]] += w / n_conditions
    iteration = np.linalg.matrix_power(gene_kernel, n_genes)
    for members, kernel in condition_kernels.items():
        has_cluster = kernel.sum(axis=1) > 0
        step = kernel + np.diag(~has_cluster * 1.0)
        iteration = iteration @ np.linalg.matrix_power(step, n_conditions)
    return states, iteration


@pytest.mark.slow
def test_two_way_chain_matches_exact_stationary_law_on_five_genes():
    """5 genes x 2 conditions (454 co-clusterings): the sampler's long-run frequencies of every co-clustering
    equal the stationary law of the exactly enumerated transition kernel of one iteration; their gene-partition
    marginal is also compared with the literal posterior's (differs by the new-cluster convention, spec B2.7-1)."""
    rng = np.random.default_rng(21)
    x = rng.normal(scale=0.7, size=(5, 2))
    x[:2, 0] += 1.0
    prior = Prior()
    states, kernel = two_way_kernel(x, prior)
    values, vectors = np.linalg.eig(kernel.T)
    stationary = np.real(vectors[:, np.argmin(abs(values - 1.0))])
    stationary = stationary / stationary.sum()
    exact = dict(zip(states, stationary))
    state = ChainState(x, np.zeros(5, dtype=int), np.zeros((5, 2), dtype=int), prior)
    stream = np.random.default_rng(9)
    counts = {}
    n_iterations = 40000
    for _ in range(200):
        state.gene_sweep(stream)
        state.condition_sweep(stream)
    for _ in range(n_iterations):
        state.gene_sweep(stream)
        state.condition_sweep(stream)
        key = (tuple(int(v) for v in state.gene_labels()),
               tuple(tuple(int(v) for v in row) for row in state.condition_partitions()))
        counts[key] = counts.get(key, 0) + 1
    frequencies = {k: v / n_iterations for k, v in counts.items()}
    assert len(exact) == 454
    assert total_variation(frequencies, exact) < 0.04
    literal = exact_posterior({s: coclustering_score(x, np.array(s[0]), np.array(s[1]), prior) for s in states})
    marginal = lambda law: {g: sum(p for (gg, _), p in law.items() if gg == g) for g in {s[0] for s in law}}
    assert total_variation(marginal(frequencies), marginal(exact)) < 0.03
    # the literal posterior's gene marginal is a different law here: the chain is exact only for its own kernel
    print("TV(chain gene marginal, literal posterior gene marginal) =",
          total_variation(marginal(exact), marginal(literal)))


# ---------------------------------------------------------------- co-occurrence, rho, entropy

def test_cooccurrence_rows_equal_brute_force():
    rng = np.random.default_rng(2)
    samples = rng.integers(0, 4, (7, 13))
    brute = np.zeros((13, 13))
    for s in samples:
        brute += (s[:, None] == s[None, :])
    np.testing.assert_array_equal(cooccurrence_rows(samples, 0, 13), brute)
    np.testing.assert_array_equal(cooccurrence_rows(samples, 4, 9), brute[4:9])


def test_rho_and_entropy_on_hand_values():
    a = np.array([[1.0, 0.5], [0.5, 1.0]])
    b = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert rho(a, b) == pytest.approx(2.0 / math.sqrt(2.5 * 2.0))
    assert rho(a, a) == pytest.approx(1.0)
    assert fuzziness_entropy(b) == 0.0
    assert fuzziness_entropy(np.full((3, 3), 0.5)) == pytest.approx(1.0)
    assert fuzziness_entropy(a) == pytest.approx(2.0 / 4.0)


def test_run_chain_is_seeded_and_keeps_the_trace():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(30, 8))
    first = run_chain(x, np.random.default_rng(42), n_iterations=12, burn_in=4, thin=2)
    second = run_chain(x, np.random.default_rng(42), n_iterations=12, burn_in=4, thin=2)
    assert first.samples.shape == (4, 30)
    assert first.score_trace.shape == (12,)
    np.testing.assert_array_equal(first.samples, second.samples)
    np.testing.assert_array_equal(first.score_trace, second.score_trace)
    assert first.score_trace[-1] == pytest.approx(
        coclustering_score(x, first.gene_labels, first.condition_partitions), rel=1e-10)
