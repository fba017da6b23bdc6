"""eQTL mapping of a cross (Liu, de la Fuente & Hoeschele 2008): fast kernels against slow obvious references
(scipy.stats.kruskal, per-pair least squares), block decomposition, k-means, planted-truth recovery and FDR
calibration on simulated crosses."""

import numpy as np
import pytest
import scipy.stats

from qtlhpc.methods.eqtl import cross, cross_cis, cross_trans
from qtlhpc.methods.eqtl.simulate import CrossDesign, simulate_cross
from qtlhpc.parallel import chunk_ranges, unit_rng
from qtlhpc.stats.fdr import benjamini_hochberg

SMALL_GENOME = (400_000, 300_000, 250_000, 200_000)     # bp, four chromosomes


def _rng(name, unit=0):
    return unit_rng(20260601, f"test-eqtl-cross-{name}", unit)


# ---------------------------------------------------------------------------------------------------------
# Kruskal-Wallis


def _scipy_kruskal(values, groups):
    keep = ~np.isnan(values) & ~np.isnan(groups)
    a, b = values[keep & (groups == 0)], values[keep & (groups == 1)]
    if a.size == 0 or b.size == 0:
        return np.nan, np.nan
    try:
        result = scipy.stats.kruskal(a, b)
    except ValueError:        # all values identical
        return np.nan, np.nan
    return result.statistic, result.pvalue


def test_kruskal_wallis_equals_scipy_per_row_with_ties_and_missing_values():
    rng = _rng("kw")
    n_tests, n = 60, 37
    values = np.round(rng.normal(size=(n_tests, n)), 1)          # many ties
    groups = rng.integers(0, 2, size=(n_tests, n)).astype(float)
    values[rng.random(values.shape) < 0.08] = np.nan
    groups[rng.random(groups.shape) < 0.08] = np.nan
    values[3] = 1.0                                                # all tied -> NaN
    groups[4] = 1.0                                                # one group empty -> NaN
    values[5] += 10 * np.nan_to_num(groups[5])                     # a strong effect (small p)
    statistic, pvalue = cross.kruskal_wallis(values, groups)
    for i in range(n_tests):
        expected = _scipy_kruskal(values[i], groups[i])
        np.testing.assert_allclose([statistic[i], pvalue[i]], expected, rtol=1e-10, atol=0, equal_nan=True,
                                   err_msg=f"row {i}")
    assert np.isnan(pvalue[3]) and np.isnan(pvalue[4]) and pvalue[5] < 1e-4


def test_kruskal_scan_equals_row_wise_test_at_every_marker():
    rng = _rng("scan")
    n_traits, n, n_markers = 9, 41, 25
    traits = np.round(rng.normal(size=(n_traits, n)), 1)
    traits[rng.random(traits.shape) < 0.05] = np.nan
    genotypes = rng.integers(0, 2, size=(n, n_markers)).astype(float)
    genotypes[rng.random(genotypes.shape) < 0.05] = np.nan
    genotypes[:, 7] = genotypes[:, 6]                              # two markers share a missing pattern
    statistic, pvalue = cross.kruskal_scan(traits, genotypes)
    for m in range(n_markers):
        groups = np.broadcast_to(genotypes[:, m], traits.shape)
        expected = cross.kruskal_wallis(traits, groups)
        np.testing.assert_allclose(statistic[:, m], expected[0], rtol=1e-12, equal_nan=True)
        np.testing.assert_allclose(pvalue[:, m], expected[1], rtol=1e-12, equal_nan=True)
    assert np.allclose(pvalue[2, 3], _scipy_kruskal(traits[2], genotypes[:, 3])[1], rtol=1e-10)


def test_kruskal_scan_of_untied_traits_corrects_full_ranks_exactly_for_untyped_individuals():
    """Continuous traits take the rank-correction path, tied ones the per-pattern path: both equal the
    row-wise test (itself equal to scipy) at every marker, with missing traits and genotypes."""
    rng = _rng("scan-untied")
    n_traits, n, n_markers = 12, 33, 40
    traits = rng.normal(size=(n_traits, n))                        # no ties ...
    traits[:3] = np.round(traits[:3], 1)                           # ... except in the first three traits
    traits[rng.random(traits.shape) < 0.06] = np.nan
    genotypes = rng.integers(0, 2, size=(n, n_markers)).astype(float)
    genotypes[rng.random(genotypes.shape) < 0.08] = np.nan
    genotypes[:2, 5] = np.nan                                      # two untyped at one marker
    genotypes[:, 9] = 1.0                                          # one group empty: NaN
    statistic, pvalue = cross.kruskal_scan(traits, genotypes)
    slow = cross_cis.kruskal_scan_by_pattern(traits, genotypes)
    np.testing.assert_allclose(statistic, slow[0], rtol=1e-12, equal_nan=True)
    np.testing.assert_allclose(pvalue, slow[1], rtol=1e-12, equal_nan=True)
    for m in range(n_markers):
        for t in (0, 5, 11):
            np.testing.assert_allclose([statistic[t, m], pvalue[t, m]], _scipy_kruskal(traits[t], genotypes[:, m]),
                                       rtol=1e-10, equal_nan=True, err_msg=f"trait {t}, marker {m}")
    assert np.isnan(statistic[:, 9]).all()


# ---------------------------------------------------------------------------------------------------------
# Markers near genes, cis mapping, regions


def test_nearest_markers_flank_each_gene_on_its_chromosome():
    marker_chromosome = np.array(["1", "1", "1", "2", "2"])
    marker_position = np.array([100, 200, 300, 50, 150])
    gene_chromosome = np.array([1, 1, 1, 1, 2, 3])                 # ints and strings name the same chromosome
    gene_position = np.array([150, 200, 50, 400, 120, 10])
    flanks = cross.nearest_markers(gene_chromosome, gene_position, marker_chromosome, marker_position)
    assert flanks.tolist() == [[0, 1], [1, -1], [0, -1], [2, -1], [3, 4], [-1, -1]]
    closest = cross.closest_marker(gene_chromosome, gene_position, marker_chromosome, marker_position)
    assert closest.tolist() == [0, 1, 0, 2, 4, -1]


def test_marker_map_out_of_order_is_a_clear_error():
    with pytest.raises(ValueError, match="must not decrease"):
        cross.check_marker_map(["1", "1"], [200, 100])
    with pytest.raises(ValueError, match="contiguous"):
        cross.check_marker_map(["1", "2", "1"], [1, 2, 3])


def test_cis_map_takes_twice_the_smaller_p_between_two_markers_and_bh_across_genes():
    rng = _rng("cis")
    n, n_genes = 50, 30
    genotypes = rng.integers(0, 2, size=(n, 10)).astype(float)
    expression = rng.normal(size=(n_genes, n)) + 0.8 * genotypes[:, rng.integers(0, 10, size=n_genes)].T
    markers = np.column_stack([rng.integers(0, 10, size=n_genes), rng.integers(0, 10, size=n_genes)])
    markers[:5, 1] = -1                                            # one flanking marker
    markers[5, :] = -1                                             # no marker: untested
    result = cross.cis_map(expression, genotypes, markers)
    for g in range(n_genes):
        ps = [_scipy_kruskal(expression[g], genotypes[:, m])[1] for m in markers[g] if m >= 0]
        expected = min(min(ps) * len(ps), 1.0) if ps else np.nan
        np.testing.assert_allclose(result.pvalue[g], expected, rtol=1e-10, equal_nan=True)
    np.testing.assert_array_equal(result.qvalue, benjamini_hochberg(result.pvalue))
    assert result.peak_marker[5] == -1 and np.isnan(result.qvalue[5])


def test_confidence_interval_is_the_contiguous_run_within_the_drop_on_the_peak_chromosome():
    chromosome = np.array([1, 1, 1, 1, 1, 2, 2])
    logp = np.array([[1.0, 3.0, 4.0, 2.9, 5.5, 5.0, 1.0],
                     [0.0, 0.0, 0.0, 0.0, 6.0, 6.0, 0.0]])
    first, last = cross.confidence_intervals(10.0 ** -logp, [2, 4], chromosome, drop=1.5)
    # row 0: peak 4.0 at marker 2, cut 2.5: markers 1-4 (marker 0 below, marker 5 on chromosome 2);
    # row 1: peak 6.0 at marker 4, the last of chromosome 1: marker 5 (6.0) is on chromosome 2
    assert first.tolist() == [1, 4] and last.tolist() == [4, 4]


@pytest.mark.parametrize("rule", ["clump", "transitive"])
def test_regions_merge_by_same_marker_or_more_than_80_percent_overlap(rule):
    chromosome = np.array([1] * 10 + [2] * 3)
    position = np.array([0, 10, 20, 30, 40, 50, 60, 70, 80, 90, 0, 10, 20], dtype=float)
    # eQTL: A [0, 40] peak 2; B [10, 40] peak 3 (|A n B| = 31 / 31 -> merge); C [60, 90] peak 7;
    # D single marker 7 (same peak as C -> merge); E [0, 20] on chromosome 2 peak 11 (other chromosome);
    # F [30, 60] peak 5: overlap with A 11/31, with B 11/31, with C 1/31, with D 0 -> separate.
    first = np.array([0, 1, 6, 7, 10, 3])
    last = np.array([4, 4, 9, 7, 12, 6])
    peak = np.array([2, 3, 7, 7, 11, 5])
    logp = np.array([5.0, 7.0, 4.0, 9.0, 3.0, 6.0])
    regions = cross.merge_eqtl(np.arange(6), peak, logp, first, last, chromosome, position, rule=rule)
    assert regions.n_regions == 4
    assert regions.region[0] == regions.region[1] and regions.region[2] == regions.region[3]
    assert len({regions.region[0], regions.region[2], regions.region[4], regions.region[5]}) == 4
    ab, cd = regions.region[0], regions.region[2]
    assert regions.region_peak[ab] == 3 and regions.region_peak[cd] == 7      # the strongest member's peak
    if rule == "clump":                                                     # the strongest member's CI
        assert (regions.region_first[ab], regions.region_last[ab]) == (1, 4)
        assert (regions.region_start_bp[cd], regions.region_end_bp[cd]) == (70, 70)
    else:                                                                   # the union of the members' CIs
        assert (regions.region_first[ab], regions.region_last[ab]) == (0, 4)
        assert (regions.region_start_bp[cd], regions.region_end_bp[cd]) == (60, 90)
    assert list(regions.region_first) == sorted(regions.region_first)


def test_a_weak_wide_eqtl_does_not_chain_two_strong_regions_when_clumping():
    chromosome = np.ones(8, dtype=int)
    position = np.arange(8) * 10.0
    # X [0, 10] and Y [50, 60]: strong, narrow; W [0, 70]: weak, wide, contains both (overlap 1 with each)
    first, last, peak = np.array([0, 5, 0]), np.array([1, 6, 7]), np.array([0, 6, 3])
    logp = np.array([12.0, 10.0, 2.0])
    clumped = cross.merge_eqtl(np.arange(3), peak, logp, first, last, chromosome, position)
    assert clumped.n_regions == 2 and clumped.region[2] == clumped.region[0]   # W joins the stronger X
    chained = cross.merge_eqtl(np.arange(3), peak, logp, first, last, chromosome, position, rule="transitive")
    assert chained.n_regions == 1


# ---------------------------------------------------------------------------------------------------------
# Trans mapping: model (1) against per-pair least squares


def _trans_data(n=40, n_genes=14, seed=0):
    rng = _rng("trans", seed)
    markers = rng.integers(0, 2, size=(n, n_genes)).astype(float)
    markers[:, 1] = markers[:, 0]                                  # genes 0 and 1 share a marker: rf 0
    flip = rng.random(n) < 0.1
    markers[:, 2] = np.where(flip, 1 - markers[:, 0], markers[:, 0])   # rf ~ 0.1 with gene 0
    expression = rng.normal(size=(n_genes, n))
    expression[5] = 1.5 * expression[4] + 2.0 * markers[:, 4] + 0.3 * expression[5]   # a trans pair 4 -> 5
    expression[rng.random(expression.shape) < 0.05] = np.nan
    markers[rng.random(markers.shape) < 0.05] = np.nan
    markers[:, 9] = np.nan                                         # gene 9 has no marker
    return expression, markers


def _impute_centre(v):
    v = np.array(v, dtype=float)
    mean = np.nanmean(v)
    return np.where(np.isnan(v), 0.0, v - mean)


def _ols_reference(expression, markers, r, t, interaction):
    y_t, y_r, x_r = _impute_centre(expression[t]), _impute_centre(expression[r]), _impute_centre(markers[:, r])
    columns = [np.ones_like(y_t), y_r, x_r] + ([y_r * x_r] if interaction else [])
    design = np.column_stack(columns)
    beta, rss, rank, _ = np.linalg.lstsq(design, y_t, rcond=None)
    df = y_t.size - design.shape[1]
    residual = y_t - design @ beta
    sigma2 = residual @ residual / df
    se = np.sqrt(np.diag(sigma2 * np.linalg.inv(design.T @ design)))
    p = 2 * scipy.stats.t.sf(np.abs(beta / se), df)
    return beta[1:], se[1:], p[1:]


def _reference_recombination(markers, r, t):
    both = ~np.isnan(markers[:, r]) & ~np.isnan(markers[:, t])
    return np.mean(markers[both, r] != markers[both, t]) if both.any() else np.nan


@pytest.mark.parametrize("interaction", [True, False])
def test_trans_block_equals_per_pair_least_squares_with_missing_values_and_exclusions(interaction):
    expression, markers = _trans_data()
    n_genes = expression.shape[0]
    block = cross.trans_block(expression, markers, (0, n_genes), (0, n_genes), interaction=interaction)
    names = ["b1", "b2", "b3"][:3 if interaction else 2]
    for r in range(n_genes):
        for t in range(n_genes):
            rf = _reference_recombination(markers, r, t)
            excluded = r == t or r == 9 or rf <= 0.25
            assert block.excluded[r, t] == excluded, (r, t)
            if not np.isnan(rf):
                assert block.recombination[r, t] == pytest.approx(rf, abs=1e-15)
            if excluded:
                assert np.isnan(block.p_iut[r, t])
                continue
            beta, se, p = _ols_reference(expression, markers, r, t, interaction)
            for k, name in enumerate(names):
                np.testing.assert_allclose(getattr(block, name)[r, t], beta[k], rtol=1e-8, atol=1e-12)
                np.testing.assert_allclose(getattr(block, "se_" + name)[r, t], se[k], rtol=1e-8)
                np.testing.assert_allclose(getattr(block, "p_" + name)[r, t], p[k], rtol=1e-8, atol=1e-300)
            assert block.p_iut[r, t] == max(block.p_b1[r, t], block.p_b2[r, t])
    assert block.excluded[0, 1] and block.excluded[0, 2] and block.excluded[9].all()
    assert block.p_iut[4, 5] < 1e-6
    assert (block.b3 is None) == (not interaction)


@pytest.mark.parametrize("tiles", [(8, 16), None])
def test_trans_blocks_reassemble_the_whole_block_bit_for_bit(monkeypatch, tiles):
    """Blocks that cut across the canonical GEMM tiles (8 x 16 here; the default tiles hold all 53 genes)."""
    if tiles is not None:
        monkeypatch.setattr(cross_trans, "REGULATOR_TILE", tiles[0])
        monkeypatch.setattr(cross_trans, "TARGET_TILE", tiles[1])
    expression, markers = _trans_data(n=35, n_genes=53, seed=1)
    n_genes = expression.shape[0]
    whole = cross.trans_block(expression, markers)
    prepared = cross.prepare_trans(expression, markers)
    for regulators in [(0, 53)] + chunk_ranges(n_genes, 11):
        for targets in chunk_ranges(n_genes, 13) + [(5, 47)]:
            part = cross.trans_block(None, None, regulators, targets, prepared=prepared)
            rows, cols = slice(*regulators), slice(*targets)
            for name in cross.TRANS_BLOCK_VARIABLES:
                np.testing.assert_array_equal(getattr(part, name), getattr(whole, name)[rows, cols],
                                              err_msg=f"{name} {regulators} {targets}")


def test_trans_map_keeps_the_significant_pairs_with_exact_bh_q_values():
    expression, markers = _trans_data(n=60, n_genes=40, seed=2)
    noise = _rng("trans-map").normal(size=(3, 60))
    for k, (r, t) in enumerate([(10, 20), (11, 21), (12, 22)]):     # three more trans pairs
        expression[t] = (1.5 * np.nan_to_num(expression[r]) + 2.0 * np.nan_to_num(markers[:, r], nan=0.5)
                         + 0.3 * noise[k])
    whole = cross.trans_block(expression, markers)
    q_all = benjamini_hochberg(whole.p_iut)
    result = cross.trans_map(expression, markers, regulator_block=7)
    assert result.n_tests == whole.n_tests
    expected = np.argwhere(whole.p_iut <= 0.05)
    assert sorted(zip(result.kept["regulator"], result.kept["target"])) == sorted(map(tuple, expected))
    expected_q = q_all[result.kept["regulator"], result.kept["target"]]
    exact = expected_q <= 0.05
    assert exact.sum() >= 3
    np.testing.assert_allclose(result.q_iut[exact], expected_q[exact], rtol=1e-12)
    assert np.all(result.q_iut[~exact] > 0.05)
    assert (4, 5) in set(zip(result.kept["regulator"][result.significant],
                             result.kept["target"][result.significant]))
    q_b3 = benjamini_hochberg(whole.p_b3)
    assert result.n_b3_significant == np.count_nonzero(q_b3 <= 0.05)


def test_bh_of_kept_p_values_equals_bh_of_the_whole_family_below_the_cut():
    p = _rng("bh").random(5000) ** 3
    cut = 0.05
    kept = p[p <= cut]
    q_kept = cross.bh_qvalues_of_kept(kept, p.size)
    q_all = benjamini_hochberg(p)[p <= cut]
    exact = q_all <= cut
    np.testing.assert_allclose(q_kept[exact], q_all[exact], rtol=1e-14)
    assert np.all(q_kept[~exact] > cut)


# ---------------------------------------------------------------------------------------------------------
# k-means with distance 1 - |r| and PCA per cluster


def _planted_clusters(n_clusters=4, per_cluster=20, n=60, noise=0.4, unit=0):
    rng = _rng("clusters", unit)
    factors = rng.normal(size=(n_clusters, n))
    truth = np.repeat(np.arange(n_clusters), per_cluster)
    signs = rng.choice([-1.0, 1.0], size=truth.size)               # anti-correlated members
    expression = signs[:, None] * factors[truth] + noise * rng.normal(size=(truth.size, n)) + 5.0
    return expression, truth, signs


@pytest.mark.parametrize("centroid", ["sign_mean", "principal_component"])
def test_kmeans_recovers_planted_correlated_and_anticorrelated_clusters(centroid):
    expression, truth, signs = _planted_clusters()
    result = cross.abs_correlation_kmeans(expression, 4, n_restarts=5, seed=3, centroid=centroid)
    table = np.zeros((4, 4), dtype=int)
    np.add.at(table, (truth, result.labels), 1)
    assert np.all(np.sort(table, axis=1)[:, :-1] == 0) and len(set(np.argmax(table, axis=1))) == 4, table
    assert np.any(signs < 0)


@pytest.mark.parametrize("centroid", ["sign_mean", "principal_component"])
def test_kmeans_objective_never_increases_across_lloyd_iterations(centroid):
    expression = _rng("lloyd").normal(size=(300, 40))
    for seed in range(4):
        result = cross.abs_correlation_kmeans(expression, 12, n_restarts=1, seed=seed, centroid=centroid)
        assert result.history.size > 2
        assert np.all(np.diff(result.history) <= 1e-9 * result.history[0]), result.history


def test_kmeans_keeps_the_best_restart_and_is_seeded():
    expression = _rng("restarts").normal(size=(200, 30))
    a = cross.abs_correlation_kmeans(expression, 8, n_restarts=4, seed=11)
    b = cross.abs_correlation_kmeans(expression, 8, n_restarts=4, seed=11)
    assert a.objective == a.objectives.min() and a.objective == a.history[-1]
    np.testing.assert_array_equal(a.labels, b.labels)


def test_cluster_components_are_the_eigenpairs_of_each_cluster_correlation_matrix():
    expression, truth, _ = _planted_clusters(n_clusters=3, per_cluster=8, noise=1.0, unit=1)
    components = cross.cluster_components(expression, truth, min_eigenvalue=1.5)
    for k in range(3):
        eigenvalues = np.linalg.eigvalsh(np.corrcoef(expression[truth == k]))[::-1]
        kept = components.eigenvalue[components.cluster == k]
        np.testing.assert_allclose(kept, eigenvalues[eigenvalues > 1.5], rtol=1e-10)
    scores = components.scores[0]
    members = truth == components.cluster[0]
    z = (expression[members] - expression[members].mean(1, keepdims=True)) / expression[members].std(1, ddof=1,
                                                                                                       keepdims=True)
    np.testing.assert_allclose(scores, components.loadings[0, members] @ z, rtol=1e-10, atol=1e-10)


# ---------------------------------------------------------------------------------------------------------
# Simulated crosses: planted truth and FDR


def _small_design(**changes):
    base = dict(n_individuals=112, n_markers=160, n_genes=300, chromosome_lengths_bp=SMALL_GENOME,
                n_cis=30, n_cis_trans_regulators=3, targets_per_cis_trans=4, n_trans_regulators=4,
                targets_per_trans=2, noise_sd=0.5, missing_genotype_rate=0.01, missing_expression_rate=0.01)
    base.update(changes)
    return CrossDesign(**base)


def test_simulated_cross_is_seeded_and_its_truth_is_consistent():
    a = simulate_cross(_small_design(), seed=5)
    b = simulate_cross(_small_design(), seed=5)
    np.testing.assert_array_equal(a.expression, b.expression)
    np.testing.assert_array_equal(a.genotypes, b.genotypes)
    truth = a.truth
    assert truth.cis_genes.size == 30 and len(truth.cis_trans_pairs) == 12 and len(truth.trans_pairs) == 8
    assert set(truth.locus_edges.of_kind("trans").pairs()) == truth.trans_pairs
    for r, t in truth.trans_pairs | truth.cis_trans_pairs:
        assert a.gene_chromosome[r] != a.gene_chromosome[t]
    cross.check_marker_map(a.marker_chromosome, a.marker_position_bp)
    # adjacent markers recombine about as Haldane's map says
    same = a.marker_chromosome[1:] == a.marker_chromosome[:-1]
    left, right = a.genotypes[:, :-1][:, same], a.genotypes[:, 1:][:, same]
    typed = ~np.isnan(left) & ~np.isnan(right)
    discordant = np.mean(left[typed] != right[typed])
    expected = np.mean(0.5 * (1 - np.exp(-2 * np.diff(a.marker_position_cM)[same] / 100)))
    assert abs(discordant - expected) < 0.01


def test_planted_cis_cis_trans_and_trans_effects_are_recovered():
    sim = simulate_cross(_small_design(), seed=7)
    flanks = cross.nearest_markers(sim.gene_chromosome, sim.gene_position_bp, sim.marker_chromosome,
                                   sim.marker_position_bp)
    cis = cross.cis_map(sim.expression, sim.genotypes, flanks)
    planted = sim.truth.cis_genes
    assert np.mean(cis.qvalue[planted] <= 0.05) >= 0.9
    regions = cross.cis_regions(sim.expression, sim.genotypes, cis, sim.marker_chromosome, sim.marker_position_bp)
    targets = cross.cis_trans_map(sim.expression, sim.genotypes, regions)
    for regulator, target in sim.truth.cis_trans_pairs:
        region = regions.region[regions.trait == regulator]
        assert region.size == 1 and targets.significant[region[0], target], (regulator, target)
    closest = cross.closest_marker(sim.gene_chromosome, sim.gene_position_bp, sim.marker_chromosome,
                                   sim.marker_position_bp)
    trans = cross.trans_map(sim.expression, cross.marker_genotypes_of_genes(sim.genotypes, closest))
    found = set(zip(trans.kept["regulator"][trans.significant].tolist(),
                    trans.kept["target"][trans.significant].tolist()))
    assert sim.truth.trans_pairs <= found
    assert not (sim.truth.cis_trans_pairs & found)           # b2 = 0 given y_r: not trans


def test_bh_false_discovery_proportion_on_null_crosses_is_at_most_alpha():
    """Complete null: every call is false, FDP = 1{any call}; BH keeps its mean (= FDR) <= 0.05."""
    design = _small_design(n_genes=150, n_markers=80).null()
    n_replicates = 150
    fdp = []
    for replicate in range(n_replicates):
        sim = simulate_cross(design, seed=13, replicate=replicate)
        flanks = cross.nearest_markers(sim.gene_chromosome, sim.gene_position_bp, sim.marker_chromosome,
                                       sim.marker_position_bp)
        called = np.count_nonzero(cross.cis_map(sim.expression, sim.genotypes, flanks).qvalue <= 0.05)
        fdp.append(1.0 if called else 0.0)
    fdr = np.mean(fdp)
    bound = 0.05 + 3 * np.sqrt(0.05 * 0.95 / n_replicates)
    assert fdr <= bound, f"FDR on null crosses {fdr:.3f} > {bound:.3f}"


def test_fdp_with_planted_cis_genes_is_at_most_alpha_on_average():
    design = _small_design(n_genes=300, n_cis=60, n_cis_trans_regulators=0, n_trans_regulators=0,
                           cis_effect=0.35)
    fdp = []
    for replicate in range(100):
        sim = simulate_cross(design, seed=17, replicate=replicate)
        flanks = cross.nearest_markers(sim.gene_chromosome, sim.gene_position_bp, sim.marker_chromosome,
                                       sim.marker_position_bp)
        called = cross.cis_map(sim.expression, sim.genotypes, flanks).qvalue <= 0.05
        false = called.copy()
        false[sim.truth.cis_genes] = False
        fdp.append(false.sum() / max(called.sum(), 1))
    assert np.mean(fdp) <= 0.05 * 240 / 300 + 3 * np.std(fdp) / np.sqrt(len(fdp))


def test_pc_mapping_finds_the_region_of_a_cis_trans_regulator():
    design = _small_design(n_cis=10, n_cis_trans_regulators=2, targets_per_cis_trans=12, n_trans_regulators=0)
    sim = simulate_cross(design, seed=19)
    result = cross.pc_map(sim.expression, sim.genotypes, sim.marker_chromosome, sim.marker_position_bp,
                          n_clusters=10, n_restarts=3)
    assert result.components.scores.shape[0] >= 1
    for regulator in {r for r, _ in sim.truth.cis_trans_pairs}:
        targets = [t for r, t in sim.truth.cis_trans_pairs if r == regulator]
        hits = result.targets.significant[:, targets].all(axis=1)
        assert hits.any(), regulator
