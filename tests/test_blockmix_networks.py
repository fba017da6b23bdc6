"""Cluster networks by genotype (spec A2.5, the paper's Figs. 6-7): scores, weighted correlations and the
between-genotype homogeneity test against slow references, its calibration under no difference, and a planted
network difference found.  The stage's stored networks are checked in test_blockmix_stages.py."""

import numpy as np
import scipy.stats

from qtlhpc.methods.blockmix import networks
from qtlhpc.parallel import unit_rng


def slow_weighted_correlation(z, w):
    n, K = z.shape
    total = sum(w)
    means = [sum(w[i] * z[i, l] for i in range(n)) / total for l in range(K)]
    cov = [[sum(w[i] * (z[i, a] - means[a]) * (z[i, b] - means[b]) for i in range(n)) / total for b in range(K)]
           for a in range(K)]
    return np.array([[cov[a][b] / np.sqrt(cov[a][a] * cov[b][b]) for b in range(K)] for a in range(K)])


def test_scores_and_weighted_correlations_equal_slow_loops():
    rng = np.random.default_rng(1)
    Y = rng.normal(size=(9, 7))
    column = rng.dirichlet(np.ones(3), size=7)
    z = networks.cluster_scores(Y, column)
    want = np.array([[sum(column[j, l] * Y[i, j] for j in range(7)) / sum(column[:, l]) for l in range(3)]
                     for i in range(9)])
    np.testing.assert_allclose(z, want, rtol=1e-13)
    w = rng.random(9)
    np.testing.assert_allclose(networks.weighted_correlation(z, w), slow_weighted_correlation(z, w), rtol=1e-12,
                               atol=1e-14)
    hard = (rng.random(9) < 0.5).astype(float)
    hard[:4] = [1, 1, 1, 0]
    np.testing.assert_allclose(networks.weighted_correlation(z, hard), np.corrcoef(z[hard == 1].T), rtol=1e-12)
    assert networks.effective_size(hard) == hard.sum()
    np.testing.assert_allclose(networks.effective_size(w), sum(w) ** 2 / sum(w ** 2), rtol=1e-14)


def test_homogeneity_equals_the_two_sample_z_and_the_q_sample_formula():
    rng = np.random.default_rng(2)
    corr2 = np.array([[[1.0, 0.6], [0.6, 1.0]], [[1.0, -0.1], [-0.1, 1.0]]])
    statistic, df, pvalue = networks.correlation_homogeneity(corr2, np.array([30.0, 45.0]))
    z = (np.arctanh(0.6) - np.arctanh(-0.1)) / np.sqrt(1 / 27 + 1 / 42)
    assert statistic[0, 1] == statistic[1, 0]
    np.testing.assert_allclose(statistic[0, 1], z ** 2, rtol=1e-12)
    np.testing.assert_allclose(pvalue[0, 1], 2 * scipy.stats.norm.sf(abs(z)), rtol=1e-10)
    assert df[0, 1] == 1 and np.isnan(statistic[0, 0])
    r = rng.uniform(-0.9, 0.9, 3)
    n = np.array([20.0, 33.0, 12.5])
    corr3 = np.stack([np.array([[1.0, x], [x, 1.0]]) for x in r])
    statistic, df, pvalue = networks.correlation_homogeneity(corr3, n)
    fz, weight = np.arctanh(r), n - 3
    centre = sum(weight * fz) / sum(weight)
    want = sum(weight[q] * (fz[q] - centre) ** 2 for q in range(3))
    np.testing.assert_allclose(statistic[0, 1], want, rtol=1e-12)
    np.testing.assert_allclose(pvalue[0, 1], scipy.stats.chi2.sf(want, 2), rtol=1e-10)
    # a genotype with n_eff <= 3 carries no information and drops out of the degrees of freedom
    statistic, df, _ = networks.correlation_homogeneity(corr3, np.array([20.0, 33.0, 2.0]))
    assert df[0, 1] == 1


def planted(seed, n=200, genes=(10, 10, 10), shared=(2.0, 0.0), noise=1.0):
    """Hard genotypes; clusters 0 and 1 share a per-individual factor of SD shared[q] in genotype q."""
    rng = unit_rng(seed, "networks", 0)
    genotype = rng.integers(0, 2, n)
    labels = np.repeat(np.arange(len(genes)), genes)
    factor = rng.normal(size=(n, len(genes)))
    common = rng.normal(size=n) * np.array(shared)[genotype]
    factor[:, 0] += common
    factor[:, 1] += common
    Y = factor[:, labels] + noise * rng.normal(size=(n, len(labels)))
    return Y, np.eye(len(genes))[labels], np.eye(2)[genotype]


def test_a_planted_network_difference_is_found_and_edges_drawn_in_one_genotype_only():
    Y, column, pi = planted(0)
    found = networks.genotype_networks(Y, column, pi)
    assert found.pvalue[0, 1] < 1e-8
    edges = found.edges(0.5)
    assert edges[0, 0, 1] == 1 and edges[1, 0, 1] == 0
    assert found.pvalue[0, 2] > 1e-3 and found.pvalue[1, 2] > 1e-3
    np.testing.assert_allclose(found.n_eff, pi.sum(axis=0))


def test_the_homogeneity_pvalue_is_uniform_without_a_difference():
    pvalues = [networks.genotype_networks(*planted(seed, n=60, shared=(1.0, 1.0))).pvalue[0, 1]
               for seed in range(300)]
    assert scipy.stats.kstest(pvalues, "uniform").pvalue > 1e-3


def test_mean_distances():
    mu = np.array([[0.0, 2.0, -1.0], [1.0, 1.0, 4.0]])
    d = networks.mean_distances(mu)
    for q in range(2):
        for a in range(3):
            for b in range(3):
                assert d[q, a, b] == abs(mu[q, a] - mu[q, b])


def test_calibrated_on_block_mixture_data_with_the_fitted_column_posterior():
    """Data of the block mixture itself (eQTL effects on the cluster means, no network difference: cells
    independent given genotype and cluster), hard genotypes, c_jl from an EM fit: the p-values of one pair over
    100 data sets pass KS against the uniform."""
    from qtlhpc.methods.blockmix import fitting, kernels

    mu = np.array([[-2.0, 0.0, 2.0], [-1.0, 0.5, 1.0]])
    var, rho = np.ones((2, 3)), np.full(3, 1 / 3)
    pvalues = []
    for seed in range(100):
        rng = unit_rng(seed, "networks-block", 0)
        pi = np.eye(2)[rng.integers(0, 2, 50)]
        Y, _, _ = fitting.simulate_block(rng, pi, mu, var, rho, 30)
        column = kernels.fit_em(Y, pi, mu, var, rho, tol=1e-7, max_iter=200).column
        pvalues.append(networks.genotype_networks(Y, column, pi).pvalue[0, 2])
    assert scipy.stats.kstest(pvalues, "uniform").pvalue > 1e-3
