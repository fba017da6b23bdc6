"""The population cis-eQTL stage against QTLtools 1.3.1 (``QTLtools cis --permute``) on QTLtools' own example.

The example is Debian's ``qtltools-example`` (358 GEUVADIS samples, 608 chr22 genes, GT genotypes, 53
covariate rows).  Conventions, found by reading QTLtools' output and reproducing its numbers:

* TSS: QTLtools prints ``phe_from = BED start + 1`` and ``phe_to = BED end``; the example's intervals are
  one base (``end = start + 1``), so its TSS is ``start + 1`` on both strands, as ours (``ExpressionSet.tss``:
  ``end`` on ``-``) and FastQTL's.  The window (1 Mb) and the variants in cis agree.
* distance: QTLtools prints ``variant - TSS`` on ``+`` and ``TSS - variant`` on ``-``; ours is always
  ``variant - TSS`` (FastQTL's), so the sign is flipped on ``-`` before comparing.
* covariates: QTLtools 1.3.1 ``cis`` residualises the *phenotypes only* on ``[1, covariates]``, correlates them
  with the (centred, not residualised) genotypes, and tests on ``n - 2`` degrees of freedom.  FastQTL (our
  default) residualises both and uses ``n - 2 - k``; with it the best variant differs for some genes and every
  nominal p differs.  QTLtools' model is our stage run on phenotype residuals with no covariates, so the test
  writes the residuals (``qtlhpc.stats.transforms.regress_out``, 64-bit, ``%.17g``) as the BED our stage
  reads, and QTLtools reads the example as shipped, ``--cov`` included.  (``[expression] regress_covariates =
  true`` is the same model inside the pipeline: tests/test_expression_stage.py checks that its values are these
  residuals and that the mapping stages then adjust for no covariates.)

Checked: per gene the same number of variants in cis, the same best variant (or a variant with the identical
genotype vector), distance, nominal p and slope to QTLtools' 6 printed digits, and ``pval_beta`` equal
within Monte Carlo error: the two runs use independent permutations, so ``log10 pval_beta`` differs by
``sqrt(2) sd``, where ``sd`` is the standard deviation of our ``log10 pval_beta`` at the same number of
permutations, from a bootstrap of our permutations' best correlations (the whole beta approximation --
effective dof and ML fit -- redone per resample).  Each gene within 4.5 sd, and the sum of squared
standardised differences below the chi-square 0.999 quantile.

The example's files are used as shipped, except the BED, whose fields are rewritten tab-separated
(bgzip + tabix): some releases separate sample values with spaces, which our BED reader rejects.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest
import scipy.stats

from qtlhpc.methods.eqtl.beta_approx import beta_approximation
from qtlhpc.methods.eqtl.cis import PermutationPlan, permutation_pass
from qtlhpc.io.vcf import read_genotypes
from qtlhpc.stats.transforms import regress_out
from qtlhpc.store import open_results
from requirements import skip_or_fail

EXAMPLE_ARCHIVE = Path("/usr/share/doc/qtltools/examples/examples.tar.xz")
BED, VCF, COVARIATES = "genes.50percent.chr22.bed.gz", "genotypes.chr22.vcf.gz", "genes.covariates.pc50.txt.gz"
REGION = "chr22:17000000-19000000"
PERMUTATIONS = 200
BOOTSTRAP = 40
SEED = 5
# QTLtools 1.3.1 --permute output, one row per phenotype, no header
QTLTOOLS_COLUMNS = ("phe_id", "phe_chr", "phe_from", "phe_to", "phe_strd", "n_var_in_cis", "dist_phe_var",
                    "var_id", "var_chr", "var_from", "var_to", "dof1", "dof2", "bml1", "bml2", "nom_pval",
                    "r_squared", "slope", "adj_emp_pval", "adj_beta_pval")
STAGE_COLUMNS = ("gene_ids", "gene_tss", "num_var", "variant_ids", "tss_distance", "pval_nominal", "slope",
                 "pval_beta", "true_df")


def tab_separated_bed(source: Path, target: Path) -> Path:
    """``source`` BED rewritten with tab-separated fields, bgzipped to ``target`` and tabix-indexed."""
    plain = target.with_suffix("")
    with gzip.open(source, "rt") as lines, open(plain, "w") as out:
        for line in lines:
            out.write("\t".join(line.split()) + "\n")
    subprocess.run(["bgzip", "-f", str(plain)], check=True)
    subprocess.run(["tabix", "-f", "-p", "bed", str(target)], check=True)
    return target


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    if shutil.which("QTLtools") is None:
        skip_or_fail("QTLtools is not on PATH (apt-get install qtltools)")
    if not EXAMPLE_ARCHIVE.is_file():
        skip_or_fail(f"QTLtools' example {EXAMPLE_ARCHIVE} is missing (apt-get install qtltools-example)")
    folder = tmp_path_factory.mktemp("qtltools-example")
    with tarfile.open(EXAMPLE_ARCHIVE) as archive:
        archive.extractall(folder)
    for name in (BED, VCF, COVARIATES):
        found = sorted(folder.rglob(name))
        assert found, f"{EXAMPLE_ARCHIVE} has no {name}"
        if found[0].parent != folder:
            found[0].rename(folder / name)
            if Path(str(found[0]) + ".tbi").exists():
                Path(str(found[0]) + ".tbi").rename(folder / (name + ".tbi"))
    tab_separated_bed(folder / BED, folder / "phenotypes.tabs.bed.gz")
    residual_bed(folder / "phenotypes.tabs.bed.gz", folder / COVARIATES, folder / "residuals.bed.gz")
    return folder


def residual_bed(bed: Path, covariates: Path, target: Path) -> Path:
    """``bed`` with each phenotype replaced by its residuals on ``[1, covariates]`` (QTLtools' model)."""
    with gzip.open(bed, "rt") as lines:
        header, *rows = [line.rstrip("\n").split("\t") for line in lines]
    samples = header[6:]
    with gzip.open(covariates, "rt") as lines:
        table = [line.split() for line in lines]
    order = [table[0].index(s) for s in samples]
    covariate_values = np.array([[float(row[i]) for i in order] for row in table[1:]])
    values = regress_out(np.array([[float(v) for v in row[6:]] for row in rows]), covariate_values)
    plain = target.with_suffix("")
    with open(plain, "w") as out:
        out.write("\t".join(header) + "\n")
        for row, residuals in zip(rows, values):
            out.write("\t".join(row[:6] + [f"{v:.17g}" for v in residuals]) + "\n")
    subprocess.run(["bgzip", "-f", str(plain)], check=True)
    subprocess.run(["tabix", "-f", "-p", "bed", str(target)], check=True)
    return target


def run_qtltools(folder: Path, out: Path) -> dict:
    subprocess.run(["QTLtools", "cis", "--vcf", folder / VCF, "--bed", folder / "phenotypes.tabs.bed.gz",
                    "--cov", folder / COVARIATES, "--permute", str(PERMUTATIONS), "--region", REGION,
                    "--out", out, "--silent"], check=True, capture_output=True)
    rows = {}
    for line in out.read_text().splitlines():
        fields = line.split()
        assert len(fields) == len(QTLTOOLS_COLUMNS), line
        rows[fields[0]] = dict(zip(QTLTOOLS_COLUMNS, fields))
    return rows


def run_stage(folder: Path, directory: Path) -> dict:
    config = directory / "analysis.toml"
    config.write_text(f"""
[run]
output = "results.h5"
seed = {SEED}
progress = false

[expression]
format = "bed"
file = "{folder / 'residuals.bed.gz'}"   # QTLtools' model: phenotype residuals, no covariates, dof n - 2
region = "{REGION}"

[cis]
genotypes = "{folder / VCF}"
field = "GT"
permutations = [{PERMUTATIONS}]
chunks = 2
""")
    proc = subprocess.run([sys.executable, "-m", "qtlhpc", "run", "eqtl", config], capture_output=True,
                          text=True)
    assert proc.returncode == 0, proc.stderr
    with open_results(directory / "results.h5") as results:
        stored = {name: results.read(f"cis/{name}") for name in STAGE_COLUMNS if name != "gene_tss"}
        stored["gene_tss"] = results.read("expression/gene_tss")
        stored["values"] = results.read("expression/values")
        stored["expression_genes"] = results.read("expression/gene_ids")
        stored["samples"] = results.read("expression/sample_ids")
    return stored


@pytest.fixture(scope="module")
def both_runs(example, tmp_path_factory):
    directory = tmp_path_factory.mktemp("compare")
    return run_stage(example, directory), run_qtltools(example, directory / "qtltools.txt")


def as_text(values):
    return [v.decode() if isinstance(v, bytes) else str(v) for v in np.asarray(values).tolist()]


def test_variants_in_cis_best_variant_and_nominal_p_equal_qtltools(example, both_runs):
    stored, rows = both_runs
    genes = as_text(stored["gene_ids"])
    assert sorted(genes) == sorted(rows) and len(genes) >= 10, (len(genes), len(rows))
    tss = dict(zip(as_text(stored["expression_genes"]), np.asarray(stored["gene_tss"]).tolist()))
    variants = read_genotypes(example / VCF, region="chr22:16000000-20000000", field="GT",
                              samples=as_text(stored["samples"]))
    index = {vid: k for k, vid in enumerate(variants.ids.tolist())}
    ties = 0
    for k, gene in enumerate(genes):
        row = rows[gene]
        assert int(row["phe_from"]) == tss[gene] == int(row["phe_to"]), gene   # one-base intervals
        assert int(row["n_var_in_cis"]) == stored["num_var"][k], gene
        ours = as_text(stored["variant_ids"])[k]
        if ours != row["var_id"]:   # a tie: FastQTL and QTLtools keep different variants of one genotype
            assert np.array_equal(variants.dosages[index[ours]], variants.dosages[index[row["var_id"]]]), gene
            ties += 1
        else:
            sign = -1 if row["phe_strd"] == "-" else 1
            assert int(row["dist_phe_var"]) == sign * stored["tss_distance"][k], gene
        assert int(row["dof1"]) == len(stored["samples"]) - 2, gene
        # QTLtools prints 6 significant digits
        np.testing.assert_allclose(float(row["nom_pval"]), stored["pval_nominal"][k], rtol=2e-5, err_msg=gene)
        np.testing.assert_allclose(float(row["slope"]), stored["slope"][k], rtol=2e-5, err_msg=gene)
    assert ties <= len(genes) // 4


def monte_carlo_sd_log10_pval_beta(values, dosages, tss_distance, gene_index, rng) -> float:
    """SD of ``log10 pval_beta`` at PERMUTATIONS permutations: one permutation pass, then the beta
    approximation redone on bootstrap resamples of its permutations' best ``|r|``."""
    run = permutation_pass(values, dosages, None, tss_distance, seed=SEED + 1, gene_index=gene_index,
                           plan=PermutationPlan.fixed(PERMUTATIONS))
    dof = values.shape[0] - 2
    draws = [beta_approximation(run.r, rng.choice(run.null_r, run.null_r.shape[0]), dof, run.num_var).pval_beta
             for _ in range(BOOTSTRAP)]
    return float(np.std(np.log10(draws), ddof=1))


def test_beta_approximated_p_values_agree_within_monte_carlo_error(example, both_runs):
    stored, rows = both_runs
    genes = as_text(stored["gene_ids"])
    expression_index = {g: k for k, g in enumerate(as_text(stored["expression_genes"]))}
    variants = read_genotypes(example / VCF, region="chr22:16000000-20000000", field="GT",
                              samples=as_text(stored["samples"]))
    positions = np.asarray(variants.positions)
    tss = np.asarray(stored["gene_tss"])
    rng = np.random.default_rng(SEED)
    z_scores = []
    for k, gene in enumerate(genes):
        g = expression_index[gene]
        cis = np.flatnonzero(np.abs(positions - tss[g]) <= 1_000_000)
        assert cis.size == stored["num_var"][k], gene
        sd = monte_carlo_sd_log10_pval_beta(stored["values"][g], variants.dosages[cis], positions[cis] - tss[g],
                                            g, rng)
        difference = np.log10(stored["pval_beta"][k]) - np.log10(float(rows[gene]["adj_beta_pval"]))
        z = difference / (np.sqrt(2.0) * max(sd, 1e-3))
        assert abs(z) <= 4.5, (gene, stored["pval_beta"][k], rows[gene]["adj_beta_pval"], sd)
        z_scores.append(z)
    z_scores = np.asarray(z_scores)
    assert np.sum(z_scores ** 2) <= scipy.stats.chi2.ppf(0.999, z_scores.size), z_scores.round(2).tolist()
