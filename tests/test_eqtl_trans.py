"""The population trans nominal pass (``qtlhpc.methods.eqtl.trans``, stage ``trans``): the kernel against
per-pair OLS with covariates, and the stage against ``QTLtools trans --nominal --threshold 1e-5`` on a cut
of QTLtools' own example (the first 30,000 records of chr22 and the 608 simulated genes), the same at 1, 2
and 3 ranks."""

import gzip
import subprocess
import tarfile

import numpy as np
import pytest
import scipy.stats

from mpi_helpers import RANK_COUNTS, run_mpi
from qtlhpc.methods.eqtl.trans import cis_pairs, correlation_threshold, map_trans_nominal
from qtlhpc.store import open_results
from requirements import find_program, skip_or_fail

EXAMPLE_ARCHIVE = "/usr/share/doc/qtltools/examples/examples.tar.xz"
RECORDS = 30_000          # the VCF cut: about 35 % of chr22's 85,485 records, ~10 s per run instead of ~30 s
THRESHOLD = 1e-5


# ------------------------------------------------------------------------------------------- the kernel
def ols_reference(y, g, covariates):
    """Slope, SE and two-sided p of ``g`` in ``y ~ 1 + covariates + g`` by lstsq (the slow, obvious way)."""
    design = np.column_stack([np.ones(y.size), covariates, g])
    coef, _, rank, _ = np.linalg.lstsq(design, y, rcond=None)
    assert rank == design.shape[1]
    dof = y.size - design.shape[1]
    sigma2 = np.sum((y - design @ coef) ** 2) / dof
    se = np.sqrt(sigma2 * np.linalg.inv(design.T @ design)[-1, -1])
    return coef[-1], se, 2 * scipy.stats.t.sf(abs(coef[-1] / se), dof)


def small_case(seed=3, n_samples=60, n_genes=7, n_variants=40, n_covariates=3):
    rng = np.random.default_rng(seed)
    covariates = rng.normal(size=(n_samples, n_covariates))
    dosages = rng.binomial(2, 0.3, size=(n_variants, n_samples)).astype(float)
    dosages[3, 5] = np.nan                                             # a missing call: mean-imputed
    phenotypes = rng.normal(size=(n_genes, n_samples)) + (covariates @ rng.normal(size=(n_covariates, n_genes))).T
    phenotypes[1] += 0.8 * np.nan_to_num(dosages[10], nan=0.6)         # a planted trans effect
    return phenotypes, dosages, covariates


def test_kernel_equals_per_pair_ols_with_covariates():
    phenotypes, dosages, covariates = small_case()
    hits = map_trans_nominal(phenotypes, dosages, covariates, threshold=1.0, variant_block=16)
    assert hits.n_hits == hits.n_tests == phenotypes.shape[0] * dosages.shape[0]
    imputed = dosages.copy()
    imputed[3, 5] = np.nanmean(dosages[3])
    for k in range(hits.n_hits):
        slope, se, p = ols_reference(phenotypes[hits.gene[k]], imputed[hits.variant[k]], covariates)
        np.testing.assert_allclose([hits.slope[k], hits.slope_se[k], hits.pval[k]], [slope, se, p],
                                   rtol=1e-8, atol=1e-300)
    # listing order: variant-major, genes in order within a variant (QTLtools' order)
    assert np.all(np.diff(hits.variant * phenotypes.shape[0] + hits.gene) > 0)


def test_threshold_and_cis_exclusion():
    phenotypes, dosages, covariates = small_case()
    n_genes, n_variants = phenotypes.shape[0], dosages.shape[0]
    everything = map_trans_nominal(phenotypes, dosages, covariates, threshold=1.0)
    threshold = float(np.sort(everything.pval)[5]) * 1.0000001
    kept = map_trans_nominal(phenotypes, dosages, covariates, threshold=threshold, variant_block=7)
    assert kept.n_hits == 6 and set(zip(kept.gene, kept.variant)) == {
        (g, v) for g, v, p in zip(everything.gene, everything.variant, everything.pval) if p <= threshold}
    dof = phenotypes.shape[1] - 2 - covariates.shape[1]
    r_cut = correlation_threshold(threshold, dof)
    np.testing.assert_allclose(scipy.stats.t.sf(r_cut * np.sqrt(dof / (1 - r_cut ** 2)), dof) * 2, threshold,
                               rtol=1e-9)
    # genes on chr1 at 1, 2, 3 Mb..., variants on chr1 (first half) and chr2: QTLtools' |POS - start| <= window
    gene_chromosomes = np.array(["1"] * n_genes)
    gene_starts = 1_000_000 * (1 + np.arange(n_genes))
    variant_chromosomes = np.array(["1"] * (n_variants // 2) + ["2"] * (n_variants - n_variants // 2))
    variant_positions = 250_000 * (1 + np.arange(n_variants))
    located = map_trans_nominal(phenotypes, dosages, covariates, threshold=1.0, gene_chromosomes=gene_chromosomes,
                                gene_starts=gene_starts, variant_chromosomes=variant_chromosomes,
                                variant_positions=variant_positions, cis_window=1_000_000, variant_block=9)
    in_cis = (variant_chromosomes[:, None] == "1") & (
        np.abs(variant_positions[:, None] - gene_starts[None, :]) <= 1_000_000)
    assert located.n_tests == int((~in_cis).sum()) < n_genes * n_variants
    assert not in_cis[located.variant, located.gene].any()
    assert cis_pairs(gene_chromosomes, gene_starts, "1", variant_positions[:3], -1).sum() == 0


# ------------------------------------------------------------------------ the stage against QTLtools
@pytest.fixture(scope="module")
def example(tmp_path_factory):
    import os

    if not os.path.isfile(EXAMPLE_ARCHIVE):
        skip_or_fail(f"QTLtools' example {EXAMPLE_ARCHIVE} is missing (apt-get install qtltools-example)")
    if not (find_program("bgzip") and find_program("tabix")):
        skip_or_fail("bgzip and tabix are needed to cut QTLtools' example (apt-get install tabix)")
    folder = tmp_path_factory.mktemp("qtltools")
    with tarfile.open(EXAMPLE_ARCHIVE) as archive:
        for name in ("genotypes.chr22.vcf.gz", "genes.simulated.chr22.bed.gz", "genes.simulated.chr22.bed.gz.tbi"):
            archive.extract(f"./{name}", folder)
    # the first RECORDS records of the VCF, bgzipped and indexed
    with gzip.open(folder / "genotypes.chr22.vcf.gz", "rt") as source, open(folder / "cut.vcf", "w") as cut:
        records = 0
        for line in source:
            if not line.startswith("#"):
                records += 1
                if records > RECORDS:
                    break
            cut.write(line)
    subprocess.run(["bgzip", "-f", str(folder / "cut.vcf")], check=True)
    subprocess.run(["tabix", "-p", "vcf", str(folder / "cut.vcf.gz")], check=True)
    # the simulated BED separates the sample values by spaces (QTLtools splits on spaces and tabs; the
    # expression reader wants tabs): the same file with tabs
    with gzip.open(folder / "genes.simulated.chr22.bed.gz", "rt") as source, \
            gzip.open(folder / "genes.tabs.bed.gz", "wt") as out:
        for line in source:
            out.write(line.replace(" ", "\t"))
    return folder


def write_config(folder, directory, variant_block=4000):
    config = directory / "analysis.toml"
    config.write_text(f"""
[run]
output = "results.h5"
progress = false

[expression]
format = "bed"
file = "{folder / 'genes.tabs.bed.gz'}"

[trans]
genotypes = "{folder / 'cut.vcf.gz'}"
field = "GT"
threshold = {THRESHOLD}
variant_block = {variant_block}
""")
    return config


TRANS_NAMES = ("block_chromosomes", "block_first_positions", "block_last_positions", "block_records",
               "block_variants", "block_tests", "block_hits", "n_tests", "hit_gene", "hit_gene_ids",
               "hit_variant_ids", "hit_variant_chromosomes", "hit_variant_positions", "hit_r", "hit_pval",
               "hit_slope", "hit_slope_se", "hit_block", "hit_files")


def trans_results(path):
    with open_results(path) as results:
        return {name: results.read(f"trans/{name}") for name in TRANS_NAMES}


@pytest.fixture(scope="module")
def runs(example, tmp_path_factory):
    out = {}
    for n_ranks in RANK_COUNTS:
        directory = tmp_path_factory.mktemp(f"ranks{n_ranks}")
        run_mpi(n_ranks, ["-m", "qtlhpc", "run", "eqtl-trans", write_config(example, directory)], cwd=directory)
        out[n_ranks] = (directory, trans_results(directory / "results.h5"))
    return out


@pytest.fixture(scope="module")
def qtltools_hits(example, tmp_path_factory):
    if find_program("QTLtools") is None:
        skip_or_fail("QTLtools is not on PATH (apt-get install qtltools)")
    out = tmp_path_factory.mktemp("qtltools-run") / "trans.nominal"
    subprocess.run(["QTLtools", "trans", "--vcf", str(example / "cut.vcf.gz"),
                    "--bed", str(example / "genes.simulated.chr22.bed.gz"), "--nominal", "--threshold", str(THRESHOLD),
                    "--out", str(out), "--silent"], check=True, capture_output=True)
    hits = {}
    # pid pchr pstart vid vchr vpos npval apval r  (space separated, C++ default precision: 6 digits)
    with gzip.open(f"{out}.hits.txt.gz", "rt") as handle:
        for line in handle:
            f = line.split()
            hits[(f[0], f[3])] = (int(f[5]), float(f[6]), float(f[8]))
    return hits


def test_stage_equals_qtltools_trans_nominal(runs, qtltools_hits):
    _, stored = runs[RANK_COUNTS[0]]
    ours = {(g, v): (pos, p, r) for g, v, pos, p, r in zip(stored["hit_gene_ids"], stored["hit_variant_ids"],
                                                          stored["hit_variant_positions"], stored["hit_pval"],
                                                          stored["hit_r"])}
    assert len(ours) == stored["hit_gene"].size > 100
    # the same pairs, except possibly one whose p is within QTLtools' float32 error of the threshold
    for key in set(ours) ^ set(qtltools_hits):
        p = ours[key][1] if key in ours else qtltools_hits[key][1]
        assert abs(p / THRESHOLD - 1) < 1e-4, (key, p)
    common = set(ours) & set(qtltools_hits)
    assert len(common) >= len(qtltools_hits) - 2
    for key in common:
        position, p, r = qtltools_hits[key]
        assert ours[key][0] == position, key
        # QTLtools prints 6 significant digits (rounding: 5e-6 relative) of a float32 computation (r to
        # ~1e-7 relative, which moves p by ~t^2 1e-7 relative: 4e-6 at p = 1e-9): 5e-5 covers both
        np.testing.assert_allclose(ours[key][1], p, rtol=5e-5, err_msg=str(key))
        np.testing.assert_allclose(ours[key][2], r, rtol=1e-5, err_msg=str(key))


def test_tests_counted_as_qtltools(runs, example):
    """QTLtools tests a pair when the variant is on another chromosome or |POS - (BED start + 1)| > 5e6."""
    _, stored = runs[RANK_COUNTS[0]]
    with gzip.open(example / "genes.tabs.bed.gz", "rt") as handle:
        next(handle)
        starts = np.array([int(line.split("\t", 2)[1]) + 1 for line in handle])
    with gzip.open(example / "cut.vcf.gz", "rt") as handle:
        positions = np.array([int(line.split("\t", 2)[1]) for line in handle if not line.startswith("#")])
    expected = sum(int(np.sum(np.abs(position - starts) > 5_000_000)) for position in positions)
    assert int(stored["n_tests"]) == expected == int(stored["block_tests"].sum())
    assert int(stored["block_records"].sum()) == RECORDS and stored["block_records"].size == 8


def test_same_results_at_1_2_3_ranks(runs):
    first_dir, first = runs[RANK_COUNTS[0]]
    for n_ranks in RANK_COUNTS[1:]:
        directory, stored = runs[n_ranks]
        for name in TRANS_NAMES:
            assert np.array_equal(np.asarray(first[name]), np.asarray(stored[name])), (n_ranks, name)
        for name in first["hit_files"]:
            with gzip.open(first_dir / name, "rb") as a, gzip.open(directory / name, "rb") as b:
                assert a.read() == b.read(), (n_ranks, name)


def test_stored_hits_equal_the_block_files(runs):
    directory, stored = runs[RANK_COUNTS[0]]
    assert np.array_equal(np.bincount(stored["hit_block"], minlength=stored["block_hits"].size),
                          stored["block_hits"])
