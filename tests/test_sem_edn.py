"""Regulator-target pairs and the EDN on the paper's Fig. 1 design (planted truth) and by hand."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

from qtlhpc.methods.sem import edn as E


def _fig1(seed, sd=0.25, n=112):
    """G1..G8 = 0..7; one region (Q1 = Q2 = Q3 at r = 0, one marker); the paper's true regulations."""
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 2, n).astype(float)
    e = rng.normal(0, sd, (n, 8))
    Y = np.empty((n, 8))
    Y[:, 0] = e[:, 0]                       # G1: trans regulator, no eQTL
    Y[:, 1] = Y[:, 0] + x + e[:, 1]         # G2 <- G1 & Q1
    Y[:, 2] = x + e[:, 2]                   # G3 <- Q2 (cis)
    Y[:, 3] = Y[:, 2] + e[:, 3]             # G4 <- G3 (inside)
    Y[:, 4] = Y[:, 2] + e[:, 4]             # G5 <- G3 (outside)
    Y[:, 5] = x + e[:, 5]                   # G6 <- Q3 (cis)
    Y[:, 6] = Y[:, 5] + e[:, 6]             # G7 <- G6 (inside)
    Y[:, 7] = Y[:, 5] + e[:, 7]             # G8 <- G6 (outside)
    return Y, x[:, None]


def test_ols_pvalues_equal_scipy_linregress():
    rng = np.random.default_rng(0)
    a = rng.normal(size=50)
    y = 0.3 * a + rng.normal(size=50)
    assert E.ols_pvalues(y, [a])[0] == pytest.approx(scipy.stats.linregress(a, y).pvalue, rel=1e-10)


def test_three_steps_recover_the_fig1_network():
    region = E.Region(peak=0, genes_in=np.array([0, 2, 3, 5, 6]), cis_genes=np.array([2, 3, 5, 6]),
                      targets=np.array([1, 4, 7]))
    exact = 0
    for seed in range(10):
        Y, M = _fig1(seed)
        network = E.encompassing_network(Y, M, [region], None, None)
        net = network.network
        genes = {tuple(e) for e in net.gene_edges.tolist()}
        qtls = {(int(network.markers[m]), t) for m, t in net.qtl_edges.tolist()}
        true_genes = {(2, 3), (2, 4), (5, 6), (5, 7), (0, 1)}
        true_qtls = {(0, 2), (0, 5), (0, 1)}
        assert true_genes <= genes and true_qtls <= qtls
        exact += genes == true_genes and qtls == true_qtls
        assert network.summary["gene_nodes"] == network.summary["regulators"] + network.summary["targets"] \
            - network.summary["both"]
        assert {(0, 3), (0, 1), (0, 4), (0, 7), (0, 6)} <= {tuple(r) for r in net.required.tolist()}
    assert exact >= 8


def test_trans_sparsification_drops_an_indirect_regulator():
    rng = np.random.default_rng(3)
    n = 300
    M = rng.integers(0, 2, (n, 3))
    Y = np.empty((n, 3))
    # model (1): a coding polymorphism x_r at regulator r changes its effect on the target
    Y[:, 0] = rng.normal(0, 0.5, n)                      # r2 (coding marker 0)
    Y[:, 1] = Y[:, 0] + M[:, 0] + rng.normal(0, 0.3, n)  # r1 <- r2 & x_r2 (coding marker 1)
    Y[:, 2] = Y[:, 1] + M[:, 1] + rng.normal(0, 0.3, n)  # t <- r1 & x_r1
    marker_of_gene = np.array([0, 1, 2])
    edges = E.Edges()
    keep = E.sparsify_trans(Y, M, [(0, 2), (1, 2)], marker_of_gene, edges)
    assert keep.tolist() == [False, True]
    assert set(edges.gene) == {(1, 2)} and set(edges.qtl) == {(1, 2)}
    single = E.sparsify_trans(Y, M, [(0, 1)], marker_of_gene, E.Edges())
    assert single.tolist() == [True]


def test_summary_identities_by_hand():
    edges = E.Edges()
    for r, t in [(0, 1), (1, 0), (1, 2), (3, 2)]:
        edges.add_gene(r, t, "trans")
    edges.add_qtl(7, 0, "cis")
    edges.cis_groups[7] = {0}
    s = E.build_edn(6, edges).summary
    assert s["regulators"] == 3 and s["targets"] == 3 and s["both"] == 2 and s["gene_nodes"] == 4
    assert s["isolated_genes"] == 2 and s["regulators_without_inputs"] == 1 and s["targets_without_outputs"] == 1
    assert s["reciprocal_pairs"] == 1 and s["eqtl_nodes"] == 1


def test_regions_from_cross_eqtl_arrays():
    arrays = {
        "cis_region_peak": np.array([1, 4]), "cis_region_start_bp": np.array([100.0, 50.0]),
        "cis_region_end_bp": np.array([300.0, 80.0]), "cis_eqtl_gene": np.array([0, 1, 3]),
        "cis_eqtl_region": np.array([0, 0, 1]), "cis_trans_region": np.array([0, 0, 1]),
        "cis_trans_gene": np.array([2, 1, 0]),
        "pc_region_peak": np.array([4]), "pc_region_start_bp": np.array([40.0]), "pc_region_end_bp": np.array([90.0]),
        "pc_target_region": np.array([0, 0]), "pc_target_gene": np.array([3, 1]),
    }
    genes_chr = ["I", "I", "II", "II"]
    starts = [150, 250, 10, 60]
    markers_chr = ["I", "I", "I", "II", "II"]
    regions = E.regions_from_cross_eqtl(arrays, genes_chr, starts, markers_chr)
    assert [r.peak for r in regions] == [1, 4, 4]
    assert regions[0].genes_in.tolist() == [0, 1] and regions[0].cis_genes.tolist() == [0, 1]
    assert regions[0].targets.tolist() == [2]  # gene 1 is inside the region: not a trans target
    assert regions[1].genes_in.tolist() == [3] and regions[1].targets.tolist() == [0]
    assert regions[2].cis_genes.tolist() == [3] and regions[2].targets.tolist() == [1]
