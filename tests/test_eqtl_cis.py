"""Population cis-eQTL kernels (qtlhpc.methods.eqtl.cis, .beta_approx) against slow obvious references,
planted truth, and FastQTL itself on its example data set.

FastQTL comparisons: the nominal pass must give the same variant set per gene (window semantics) and the
same p-values and slopes up to FastQTL's own precision -- it stores residualised dosages and phenotypes in
float32 and prints 6 significant digits, so the agreement is checked on the scale those allow (see
``_fastqtl_tolerance``), not to 1e-6.  The permutation pass is random in both programs: our beta p-values
must agree with FastQTL's within the Monte Carlo spread of 1,000 permutations, which we measure by
rerunning ours with other seeds.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.optimize
import scipy.special
import scipy.stats

from qtlhpc.methods.eqtl import beta_approx, cis
from qtlhpc.methods.eqtl.cis import PermutationPlan
from qtlhpc.parallel import unit_rng
from references import fastqtl_example as example
from requirements import skip_or_fail


# ---------------------------------------------------------------------------------------------------
# simulation helpers
# ---------------------------------------------------------------------------------------------------

def _dosages(rng, n_variants, n_samples, rho=0.8):
    """Dosages with LD: two haplotypes per sample from AR(1) latent Gaussians, thresholded at varied MAFs."""
    def haplotypes():
        latent = np.empty((n_variants, n_samples))
        latent[0] = rng.standard_normal(n_samples)
        for v in range(1, n_variants):
            latent[v] = rho * latent[v - 1] + np.sqrt(1 - rho ** 2) * rng.standard_normal(n_samples)
        return latent

    thresholds = scipy.stats.norm.ppf(1 - rng.uniform(0.05, 0.5, n_variants))[:, None]
    return (haplotypes() > thresholds).astype(float) + (haplotypes() > thresholds).astype(float)


def _ols_reference(y, dosages, covariates):
    """Per variant: lstsq of y on [1, C, g]; (slope, se, t, p) with df = n - 2 - k, the textbook way."""
    n = y.shape[0]
    out = []
    for g in dosages:
        g = np.where(np.isnan(g), np.nanmean(g), g)
        design = np.column_stack([np.ones(n), covariates, g])
        coef, _, rank, _ = np.linalg.lstsq(design, y, rcond=None)
        df = n - rank
        sigma2 = np.sum((y - design @ coef) ** 2) / df
        se = np.sqrt(sigma2 * np.linalg.inv(design.T @ design)[-1, -1])
        t = coef[-1] / se
        out.append((coef[-1], se, t, 2 * scipy.stats.t.sf(abs(t), df)))
    return np.array(out).T


# ---------------------------------------------------------------------------------------------------
# kernels against slow references
# ---------------------------------------------------------------------------------------------------

def test_pvalue_from_r_is_the_two_sided_t_test():
    r = np.array([0.0, 0.01, -0.2, 0.5, -0.9, 0.999])
    dof = 123.5
    t = r * np.sqrt(dof / (1 - r ** 2))
    np.testing.assert_allclose(beta_approx.pvalue_from_r(r, dof), 2 * scipy.stats.t.sf(np.abs(t), dof),
                               rtol=1e-12)
    np.testing.assert_allclose(beta_approx.pvalue_from_r(r, dof), scipy.stats.f.sf(t ** 2, 1, dof), rtol=1e-12)


def test_nominal_pass_equals_per_variant_least_squares():
    rng = unit_rng(1, "test-eqtl-nominal")
    n, k = 150, 3
    covariates = rng.standard_normal((n, k))
    dosages = _dosages(rng, 40, n)
    dosages[3, rng.choice(n, 7, replace=False)] = np.nan  # missing: mean-imputed, as FastQTL
    dosages[5] = 1.0  # monomorphic
    y = covariates @ np.array([0.5, -1.0, 0.2]) + 0.4 * dosages[10] + rng.standard_normal(n)
    stats = cis.nominal_pass(y, dosages, covariates)
    assert stats.dof == n - 2 - k
    slope, se, t, p = _ols_reference(y, np.delete(dosages, 5, axis=0), covariates)
    keep = np.arange(40) != 5
    np.testing.assert_allclose(stats.slope[keep], slope, rtol=1e-9)
    np.testing.assert_allclose(stats.slope_se[keep], se, rtol=1e-9)
    np.testing.assert_allclose(stats.t[keep], t, rtol=1e-9)
    np.testing.assert_allclose(stats.pval_nominal[keep], p, rtol=1e-9)
    assert stats.r[5] == 0 and stats.pval_nominal[5] == 1 and stats.slope[5] == 0


def test_cis_window_includes_both_ends():
    positions = np.array([10, 99, 100, 150, 200, 201, 300])
    window = cis.cis_window(positions, tss=150, window=50)
    assert positions[window].tolist() == [100, 150, 200]
    assert cis.tss_from_bed_start(np.array([0, 99])).tolist() == [1, 100]


def test_covariate_basis_drops_constant_and_collinear_covariates():
    rng = unit_rng(2, "test-eqtl-basis")
    n = 50
    c = rng.standard_normal((n, 2))
    covariates = np.column_stack([c, np.full(n, 3.0), c[:, 0] - 2 * c[:, 1]])
    basis = cis.covariate_basis(covariates, n)
    assert basis.shape == (n, 3)
    assert cis.residual_dof(n, basis) == n - 2 - 2
    np.testing.assert_allclose(basis.T @ basis, np.eye(3), atol=1e-12)
    with pytest.raises(ValueError, match=r"covariates have shape \(49, 4\), expected \(50, n_covariates\)"):
        cis.covariate_basis(covariates[:49], n)


def test_minor_allele_summary_counts_rounded_dosages():
    dosages = np.array([[0, 0.1, 1.2, 1.9, np.nan], [2, 2, 1.6, 0.4, 2], [0, 0.5, 1.5, 2, 0.49]])
    summary = cis.minor_allele_summary(dosages)
    # 0: rounded 0,0,1,2 (NaN skipped) -> ref 5, alt 3: ALT minor; 1: 2,2,2,0,2 -> ref 2, alt 8: REF minor;
    # 2: C's round() takes halves up: 0,1,2,2,0 -> ref 5, alt 5: a tie counts ALT as minor
    assert summary["ma_samples"].tolist() == [2, 1, 3]
    assert summary["ma_count"].tolist() == [3, 2, 5]
    np.testing.assert_allclose(summary["maf"], [3 / 8, 2 / 10, 5 / 10])
    assert summary["ref_factor"].tolist() == [1, -1, 1]


def test_beta_mle_matches_a_generic_optimiser():
    rng = unit_rng(3, "test-eqtl-beta")
    sample = scipy.stats.beta.rvs(1.07, 900.0, size=4000, random_state=rng)
    shape1, shape2 = beta_approx.fit_beta_mle(sample)

    sum_log, sum_log1m = np.sum(np.log(sample)), np.sum(np.log1p(-sample))

    def negative_loglik(log_shapes):  # the Beta density summed over the sample, by its definition
        a, b = np.exp(log_shapes)
        return len(sample) * scipy.special.betaln(a, b) - (a - 1) * sum_log - (b - 1) * sum_log1m

    generic = scipy.optimize.minimize(negative_loglik, np.log([1.0, 500.0]), method="Nelder-Mead",
                                      options={"xatol": 1e-10, "fatol": 1e-12, "maxiter": 20000})
    np.testing.assert_allclose(negative_loglik(np.log([1.07, 900.0])),
                               -np.sum(scipy.stats.beta.logpdf(sample, 1.07, 900.0)), rtol=1e-10)
    np.testing.assert_allclose([shape1, shape2], np.exp(generic.x), rtol=1e-4)
    assert negative_loglik(np.log([shape1, shape2])) <= generic.fun + 1e-8


def _null_best_r(rng, n=120, m=60, permutations=2000):
    y = rng.standard_normal(n)
    basis = cis.covariate_basis(None, n)
    prepared = cis.standardise(_dosages(rng, m, n), basis)
    orders = cis.permutation_orders(rng, permutations, n)
    return cis.null_best_r(y, prepared.unit, orders, basis), n - 2


def test_true_dof_is_the_root_of_shape1_equal_one_and_matches_a_grid_search():
    null_r, dof = _null_best_r(unit_rng(4, "test-eqtl-dof"))
    true_dof = beta_approx.learn_true_dof(null_r, dof)
    shape1, _ = beta_approx.moment_shapes(beta_approx.pvalue_from_r(null_r, true_dof))
    assert abs(shape1 - 1) < 1e-6
    grid = np.linspace(0.5 * dof, 2 * dof, 1501)
    misfit = [abs(beta_approx.moment_shapes(beta_approx.pvalue_from_r(null_r, d))[0] - 1) for d in grid]
    assert abs(grid[int(np.argmin(misfit))] - true_dof) <= 2 * (grid[1] - grid[0])


def test_null_best_r_equals_brute_force_correlations():
    rng = unit_rng(5, "test-eqtl-null")
    n, m = 40, 25
    dosages = _dosages(rng, m, n)
    y = rng.standard_normal(n)
    covariates = rng.standard_normal((n, 2))
    basis = cis.covariate_basis(covariates, n)
    genotypes = cis.standardise(dosages, basis)
    orders = cis.permutation_orders(rng, 30, n)
    fast = cis.null_best_r(y, genotypes.unit, orders, basis, variant_block=7, permutation_chunk=30)

    design = np.column_stack([np.ones(n), covariates])

    def residual(v):  # FastQTL: shuffle the phenotype, then regress the covariates out of the shuffle
        return v - design @ np.linalg.lstsq(design, v, rcond=None)[0]

    slow = [max(abs(np.nan_to_num(np.corrcoef(residual(g), residual(y[order]))[0, 1])) for g in dosages)
            for order in orders]
    np.testing.assert_allclose(fast, slow, rtol=1e-10)
    fast32 = cis.null_best_r(y, genotypes.unit.astype(np.float32), orders, basis, permutation_chunk=30)
    np.testing.assert_allclose(fast32, slow, rtol=1e-5)


def test_permutation_orders_do_not_depend_on_blocking():
    together = cis.permutation_orders(unit_rng(6, "x", 1), 8, 17)
    rng = unit_rng(6, "x", 1)
    apart = np.vstack([cis.permutation_orders(rng, 3, 17), cis.permutation_orders(rng, 5, 17)])
    np.testing.assert_array_equal(together, apart)
    assert all(sorted(row) == list(range(17)) for row in together)


@pytest.mark.parametrize("counts", [(5, 300), (20, 5, 300), (60,)])
def test_adaptive_plan_stops_where_the_sequential_rule_does(counts):
    rng = unit_rng(7, "test-eqtl-adaptive")
    n, m = 80, 30
    dosages = _dosages(rng, m, n)
    y = 0.15 * dosages[4] + rng.standard_normal(n)
    plan = PermutationPlan.from_fastqtl(*counts)
    # permutations run in whole chunks of one GEMM shape, so the same permutation gives the same bits
    adaptive = cis.permutation_pass(y, dosages, seed=11, gene_index=3, plan=plan, permutation_chunk=50)
    full = cis.permutation_pass(y, dosages, seed=11, gene_index=3, plan=PermutationPlan.fixed(300),
                                permutation_chunk=50)
    observed = abs(full.r)
    hits = count = 0
    for value in full.null_r:  # FastQTL's do-while loop, literally
        hits += value >= observed
        count += 1
        if len(counts) == 1 and count >= counts[0]:
            break
        if len(counts) == 2 and (hits >= counts[0] or count >= counts[1]):
            break
        if len(counts) == 3 and count >= counts[0] and (hits >= counts[1] or count >= counts[2]):
            break
    assert (adaptive.num_perm, adaptive.num_hits) == (count, hits)
    np.testing.assert_array_equal(adaptive.null_r, full.null_r[:count])
    assert adaptive.pval_perm == (hits + 1) / (count + 1)


def test_permutation_plan_reads_fastqtl_counts_and_refuses_what_fastqtl_refuses():
    assert PermutationPlan.from_fastqtl(1000) == PermutationPlan(1000, 1000, None)
    assert PermutationPlan.from_fastqtl(1000, 10000) == PermutationPlan(1, 10000, 1000)
    assert PermutationPlan.from_fastqtl(100, 10, 1000) == PermutationPlan(100, 1000, 10)
    with pytest.raises(ValueError, match="hits to stop at"):
        PermutationPlan.from_fastqtl(10000, 1000)
    with pytest.raises(ValueError, match="hits < min < max"):
        PermutationPlan.from_fastqtl(10, 100, 1000)
    with pytest.raises(ValueError, match="1, 2 or 3 positive counts"):
        PermutationPlan.from_fastqtl(0)


def _simulated_chromosome(rng, n_genes, n_samples, planted, spacing=400_000, per_gene=150):
    n_variants = n_genes * per_gene
    positions = np.sort(rng.choice(np.arange(1, n_genes * spacing), n_variants, replace=False))
    dosages = _dosages(rng, n_variants, n_samples, rho=0.9)
    tss = np.arange(n_genes) * spacing + spacing // 2
    covariates = rng.standard_normal((n_samples, 3))
    phenotypes = rng.standard_normal((n_genes, n_samples)) + (covariates @ rng.standard_normal((3, n_genes))).T
    causal = {}
    for gene in planted:
        window = cis.cis_window(positions, tss[gene], 100_000)
        variant = rng.integers(window.start, window.stop)
        causal[gene] = variant
        g = dosages[variant]
        phenotypes[gene] += 0.6 * (g - g.mean()) / g.std()
    return phenotypes, tss, dosages, positions, covariates, causal


def test_planted_effects_are_found_and_null_genes_give_uniform_beta_pvalues():
    rng = unit_rng(8, "test-eqtl-planted")
    planted = list(range(0, 80, 8))
    phenotypes, tss, dosages, positions, covariates, causal = _simulated_chromosome(rng, 80, 200, planted)
    table = cis.map_cis_permutations(phenotypes, tss, dosages, positions, covariates, seed=3,
                                     plan=PermutationPlan.fixed(1000), window=100_000)
    null = np.setdiff1d(np.arange(80), planted)
    assert np.all(table["pval_beta"][planted] < 1e-4)  # Bonferroni over 80 genes at 5 % is 6e-4
    assert np.all(table["pval_perm"][planted] == 1 / 1001)
    assert scipy.stats.kstest(table["pval_beta"][null], "uniform").pvalue > 0.01
    # FastQTL's check plot: the beta p-values follow the direct ones where permutations can see them
    visible = table["pval_perm"][null] > 0.02
    assert np.max(np.abs(table["pval_beta"][null][visible] - table["pval_perm"][null][visible])) < 0.07
    # the best variant is the planted one or in LD with it
    for gene, variant in causal.items():
        best = table["variant_index"][gene]
        assert abs(np.corrcoef(dosages[best], dosages[variant])[0, 1]) > 0.5


def test_q_value_calls_keep_their_false_discovery_rate_on_simulated_chromosomes():
    """Four chromosomes of 150 genes, 20% with a planted cis effect of varied size: among the genes called at
    q <= 0.05 (Storey q-values of the beta-approximated p-values, as the cis stage computes them), the
    fraction of null genes, pooled, is at most 0.05 plus two binomial standard errors; on an all-null
    chromosome at most 0.05 of the genes are called plus two standard errors."""
    from qtlhpc.stats.qvalue import qvalues

    calls = false_calls = 0
    for replicate in range(4):
        rng = unit_rng(21, "test-eqtl-fdr", replicate)
        planted = np.sort(rng.choice(150, 30, replace=False))
        phenotypes, tss, dosages, positions, covariates, _ = _simulated_chromosome(rng, 150, 120, [], per_gene=60)
        for gene in planted:  # weaker and varied effects than the planted-recovery test: some are missed
            window = cis.cis_window(positions, tss[gene], 100_000)
            g = dosages[rng.integers(window.start, window.stop)]
            phenotypes[gene] += rng.uniform(0.2, 0.6) * (g - g.mean()) / g.std()
        table = cis.map_cis_permutations(phenotypes, tss, dosages, positions, covariates, seed=replicate,
                                         plan=PermutationPlan.fixed(200), window=100_000)
        called = qvalues(table["pval_beta"]).qvalues <= 0.05
        calls += int(called.sum())
        false_calls += int(called[np.setdiff1d(np.arange(150), planted)].sum())
    assert calls >= 40  # the test has power, so the proportion means something
    fdp = false_calls / calls
    assert fdp <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / calls), (false_calls, calls)

    rng = unit_rng(21, "test-eqtl-fdr-null")
    phenotypes, tss, dosages, positions, covariates, _ = _simulated_chromosome(rng, 150, 120, [], per_gene=60)
    table = cis.map_cis_permutations(phenotypes, tss, dosages, positions, covariates, seed=9,
                                     plan=PermutationPlan.fixed(200), window=100_000)
    called = qvalues(table["pval_beta"]).qvalues <= 0.05
    assert called.mean() <= 0.05 + 2 * np.sqrt(0.05 * 0.95 / 150), int(called.sum())


def test_genes_keep_their_permutations_in_any_split():
    rng = unit_rng(9, "test-eqtl-split")
    phenotypes, tss, dosages, positions, covariates, _ = _simulated_chromosome(rng, 6, 120, [1])
    options = dict(seed=5, plan=PermutationPlan.fixed(200), window=100_000)
    whole = cis.map_cis_permutations(phenotypes, tss, dosages, positions, covariates, **options)
    part = cis.map_cis_permutations(phenotypes[3:5], tss[3:5], dosages, positions, covariates,
                                    gene_indices=[3, 4], **options)
    for name, values in part.items():
        np.testing.assert_array_equal(values, whole[name][3:5], err_msg=name)


def test_map_cis_nominal_equals_the_one_gene_pass():
    rng = unit_rng(10, "test-eqtl-map-nominal")
    phenotypes, tss, dosages, positions, covariates, _ = _simulated_chromosome(rng, 4, 100, [2])
    table = cis.map_cis_nominal(phenotypes, tss, dosages, positions, covariates, window=100_000)
    for gene in range(4):
        window = cis.cis_window(positions, tss[gene], 100_000)
        mine = table["gene"] == gene
        assert table["variant_index"][mine].tolist() == list(range(window.start, window.stop))
        stats = cis.nominal_pass(phenotypes[gene], dosages[window], covariates)
        np.testing.assert_allclose(table["pval_nominal"][mine], stats.pval_nominal, rtol=1e-10)
        np.testing.assert_allclose(table["slope"][mine], stats.slope, rtol=1e-10)
    with pytest.raises(ValueError, match="not sorted"):
        cis.map_cis_nominal(phenotypes, tss, dosages, positions[::-1], covariates)


# ---------------------------------------------------------------------------------------------------
# FastQTL itself on its example
# ---------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def fastqtl_example(tmp_path_factory):
    if not example.have_fastqtl():
        skip_or_fail("fastQTL is not on PATH (apt-get install fastqtl fastqtl-doc, or `make setup-test`)")
    if not example.EXAMPLE_ARCHIVE.exists():
        skip_or_fail(f"{example.EXAMPLE_ARCHIVE} is missing (apt-get install fastqtl-doc)")
    folder = example.unpack_example(tmp_path_factory.mktemp("fastqtl-example"))
    phenotypes = example.read_bed(folder / "phenotypes.bed.gz")
    _, covariates = example.read_covariates(folder / "covariates.txt.gz", phenotypes.sample_ids)
    return folder, phenotypes, covariates


def _genes_and_dosages(data, gene_ids, window=cis.DEFAULT_WINDOW):
    folder, phenotypes, covariates = data
    rows = [phenotypes.ids.index(gene) for gene in gene_ids]
    tss = cis.tss_from_bed_start(phenotypes.starts[rows])
    region = f"{phenotypes.chromosomes[rows[0]]}:{max(1, tss.min() - window)}-{tss.max() + window}"
    genotypes = example.read_dosages(folder / "genotypes.vcf.gz", phenotypes.sample_ids, region)
    return phenotypes.values[rows], tss, genotypes, covariates


def _fastqtl_tolerance(r, dof):
    """Relative tolerance of a p-value FastQTL prints, from ``r`` and ``dof``.

    FastQTL prints 6 significant digits (relative 5e-6) and correlates float32 unit vectors: products
    rounded to float32 and summed in double give ``r`` an absolute error of a few float32 epsilons
    (``|sum g_i y_i| <= 1``); we allow 2e-7.  Through ``t = r sqrt(dof / (1 - r^2))`` that is
    ``dt = 2e-7 sqrt(dof) / (1 - r^2)^1.5``, and ``|d log p / dt| <= |t| + 1`` for the t distribution's
    tail, so the relative error of p is at most ``5e-6 + (|t| + 1) dt``.
    """
    r = np.abs(np.asarray(r, dtype=float))
    t = r * np.sqrt(dof / (1 - r ** 2))
    return 5e-6 + (t + 1) * 2e-7 * np.sqrt(dof) / (1 - r ** 2) ** 1.5


def _check_nominal_chunk(data, tmp_path, chunk):
    out = example.run_fastqtl(data[0], tmp_path / "nominal.txt.gz", "--chunk", *chunk)
    rows = example.read_fastqtl_table(out)
    assert len(rows[0]) == 9  # v7: phenotype_id variant_id tss_distance ma_samples ma_count maf pval slope se
    gene_ids = list(dict.fromkeys(row[0] for row in rows))
    values, tss, genotypes, covariates = _genes_and_dosages(data, gene_ids)
    table = cis.map_cis_nominal(values, tss, genotypes.dosages, genotypes.positions, covariates)
    ours = [(gene_ids[g], genotypes.ids[v]) for g, v in zip(table["gene"], table["variant_index"])]
    theirs = [(row[0], row[1]) for row in rows]
    assert ours == theirs  # same variant set per gene, same order
    assert table["tss_distance"].tolist() == [int(row[2]) for row in rows]
    assert table["ma_samples"].tolist() == [int(row[3]) for row in rows]
    assert table["ma_count"].tolist() == [int(row[4]) for row in rows]
    np.testing.assert_allclose(table["maf"], [float(row[5]) for row in rows], rtol=5e-6)
    pval, slope, slope_se = (np.array([float(row[column]) for row in rows]) for column in (6, 7, 8))
    # monomorphic variants: FastQTL leaves them constant, r = 0: p 1, slope 0, slope_se nan
    constant = table["r"] == 0
    assert np.all(pval[constant] == 1) and np.all(slope[constant] == 0) and np.all(np.isnan(slope_se[constant]))
    assert np.all(table["pval_nominal"][constant] == 1) and np.all(table["slope"][constant] == 0)
    ours = {name: table[name][~constant] for name in ("pval_nominal", "slope", "slope_se", "r")}
    pval, slope, slope_se = pval[~constant], slope[~constant], slope_se[~constant]
    dof = values.shape[1] - 2 - covariates.shape[1]
    relative = np.abs(ours["pval_nominal"] - pval) / pval
    worst = np.max(relative / _fastqtl_tolerance(ours["r"], dof))
    assert worst <= 1, f"p-values differ by up to {worst:.2f} x the tolerance"
    # most print the same 6 digits; the others differ by one unit in the last (FastQTL's float32)
    printed = np.array([float(f"{value:.6g}") for value in ours["pval_nominal"]])
    assert np.mean(printed == pval) > 0.9
    # slope = r sd_y / sd_g: printing (5e-6 relative) plus r's absolute 2e-7 times sd_y / sd_g = slope / r
    slope_error = np.abs(ours["slope"] - slope) / (5e-6 * np.abs(slope) + 2e-7 * np.abs(ours["slope"] / ours["r"]))
    assert np.max(slope_error) <= 1, f"slopes differ by up to {np.max(slope_error):.2f} x the tolerance"
    # slope_se = (sd_y / sd_g) sqrt((1 - r^2) / dof): hardly sensitive to r
    np.testing.assert_allclose(ours["slope_se"], slope_se, rtol=1e-5)
    return len(gene_ids), len(rows), float(np.median(relative))


def test_nominal_pass_matches_fastqtl_on_a_few_genes(fastqtl_example, tmp_path):
    n_genes, n_pairs, _ = _check_nominal_chunk(fastqtl_example, tmp_path, ("1", "100"))
    assert n_genes >= 3 and n_pairs > 20_000


@pytest.mark.slow
def test_nominal_pass_matches_fastqtl_on_the_whole_example(fastqtl_example, tmp_path):
    n_genes, _, _ = _check_nominal_chunk(fastqtl_example, tmp_path, ("1", "1"))
    assert n_genes == 364


def _check_permutations(data, tmp_path, chunk, repeats=8):
    out = example.run_fastqtl(data[0], tmp_path / "permutations.txt.gz", "--permute", "1000", "--chunk", *chunk,
                              seed=7)
    rows = example.read_fastqtl_table(out)
    assert len(rows[0]) == 17  # v7 permutation columns
    gene_ids = [row[0] for row in rows]
    values, tss, genotypes, covariates = _genes_and_dosages(data, gene_ids)
    runs = [cis.map_cis_permutations(values, tss, genotypes.dosages, genotypes.positions, covariates,
                                     seed=seed, plan=PermutationPlan.fixed(1000)) for seed in range(repeats)]
    for gene, row in enumerate(rows):
        first = runs[0]
        assert int(row[1]) == first["num_var"][gene]
        # the best variant is not random: same variant, distance, nominal p and slope
        assert genotypes.ids[first["variant_index"][gene]] == row[6]
        assert int(row[7]) == first["tss_distance"][gene]
        assert int(row[11]) == first["ref_factor"][gene]
        dof = values.shape[1] - 2 - covariates.shape[1]
        np.testing.assert_allclose(first["pval_nominal"][gene], float(row[12]),
                                   rtol=_fastqtl_tolerance(first["r"][gene], dof))
        np.testing.assert_allclose(first["slope"][gene], float(row[13]), rtol=1e-5)
        # beta p-value: FastQTL's estimate against the spread of ours over seeds (a t-interval on log p
        # for one more draw from the same distribution, 99.9 %), with a floor for rounding
        log_ours = np.log([run["pval_beta"][gene] for run in runs])
        spread = log_ours.std(ddof=1) * np.sqrt(1 + 1 / repeats)
        bound = scipy.stats.t.ppf(0.9995, repeats - 1) * spread + 1e-4
        assert abs(np.log(float(row[16])) - log_ours.mean()) <= bound, (row[0], row[16], np.exp(log_ours))
        # direct p-value: FastQTL's hits against ours pooled over seeds, as two binomial samples
        fastqtl_hits = round(float(row[15]) * 1001) - 1
        our_hits = sum(int(run["num_hits"][gene]) for run in runs)
        table = [[fastqtl_hits, 1000 - fastqtl_hits], [our_hits, 1000 * repeats - our_hits]]
        assert scipy.stats.fisher_exact(table)[1] > 1e-3, (row[0], table)
        true_df = [run["true_df"][gene] for run in runs]
        assert min(true_df) * 0.9 <= float(row[4]) <= max(true_df) * 1.1
    return rows


def test_permutation_pass_agrees_with_fastqtl_within_monte_carlo_error(fastqtl_example, tmp_path):
    rows = _check_permutations(fastqtl_example, tmp_path, ("2", "182"))
    assert len(rows) == 2


@pytest.mark.slow
def test_permutation_pass_agrees_with_fastqtl_on_more_genes(fastqtl_example, tmp_path):
    rows = _check_permutations(fastqtl_example, tmp_path, ("1", "40"))
    assert len(rows) >= 9
