"""R/qtl's own crosses, exported by R/qtl's write.cross and read as they are: genotype probabilities and
Haley-Knott scans (X chromosome included) against R/qtl run on the same files.

One Rscript run (module fixture, a few seconds) exports hyper, listeria, fake.bc and fake.f2 with
``write.cross(..., "csv")``, reads each back with ``read.cross`` (so both sides use the same 15-digit
map positions) and writes ``calc.genoprob(step = 1)`` and ``scanone(method = "hk")`` results.
"""

from __future__ import annotations

import logging
import subprocess
import textwrap
from pathlib import Path

import numpy as np
import pytest

from qtlhpc.errors import InputError
from qtlhpc.genetics.genoprob import calc_genoprob
from qtlhpc.genetics.hk import scan1d_hk
from qtlhpc.genetics.xchr import cross_states_to_x, scan1d_hk_x
from qtlhpc.io.loader import load_cross
from qtlhpc.io.rqtl import read_rqtl_csv, read_rqtl_csvs
from requirements import require

LABELS = {
    "hyper": ("bc", ["BB", "BA", "AA"]),
    "listeria": ("f2", ["CC", "CB", "BB", "not BB", "not CC"]),
    "fake.bc": ("bc", None),
    "fake.f2": ("f2", None),
    "multitrait": ("riself", None),
}
COVARIATES = {"fake.bc": ["sex", "age"], "fake.f2": ["sex"]}
TRAITS = {"hyper": ["bp"], "listeria": ["T264"], "fake.bc": ["pheno1", "pheno2"], "fake.f2": ["phenotype"]}

R_SCRIPT = textwrap.dedent("""
    suppressMessages(library(qtl))
    setwd(commandArgs(trailingOnly=TRUE)[1])
    specs <- list(hyper=list(g=c("BB","BA","AA"), a=c("B","A")),
                  listeria=list(g=c("CC","CB","BB","not BB","not CC"), a=c("C","B")),
                  fake.bc=list(g=c("A","H","B","D","C"), a=c("A","B")),
                  fake.f2=list(g=c("A","H","B","D","C"), a=c("A","B")))
    dump <- function(x, file) write.table(x, file, row.names=FALSE, col.names=FALSE, quote=FALSE)
    data(multitrait); write.cross(multitrait, "csv", "multitrait"); write.cross(multitrait, "csvs", "multitrait_s")
    for (nm in names(specs)) {
      data(list=nm); x <- get(nm)
      write.cross(x, "csv", nm)
      write.cross(x, "csvs", paste0(nm, "_s"))
      cr <- suppressWarnings(read.cross("csv", ".", paste0(nm, ".csv"), genotypes=specs[[nm]]$g,
                                        alleles=specs[[nm]]$a, crosstype=class(x)[1], estimate.map=FALSE))
      cr <- calc.genoprob(cr, step=1, error.prob=1e-4)
      for (ch in names(cr$geno)) {
        pr <- cr$geno[[ch]]$prob
        dump(matrix(sprintf("%.17g", pr), nrow=dim(pr)[1]), paste0(nm, "_prob_", ch, ".txt"))
      }
      phe <- names(cr$pheno)
      num <- phe[sapply(cr$pheno, is.numeric) & !(tolower(phe) %in% c("sex", "pgm", "age", "id"))]
      sc <- function(tag, ...) {
        s <- suppressWarnings(scanone(cr, pheno.col=match(num, phe), method="hk", ...))
        dump(cbind(as.character(s$chr), sprintf("%.17g", s$pos),
                   matrix(sprintf("%.17g", as.matrix(s[, -(1:2)])), nrow=nrow(s))),
             paste0(nm, "_scan_", tag, ".txt"))
      }
      sc("none")
      if (nm == "fake.bc") sc("cov", addcovar=cbind(cr$pheno$sex, cr$pheno$age))
      if (nm == "fake.f2") sc("cov", addcovar=cbind(cr$pheno$sex))
      if (nm != "fake.bc") {  # two-QTL scans at step 5 (all positions, markers included)
        cr5 <- calc.genoprob(cr, step=5, error.prob=1e-4)
        ac <- if (nm == "fake.f2") cbind(cr$pheno$sex) else NULL
        s2 <- suppressWarnings(scantwo(cr5, pheno.col=match(num[1], phe), method="hk", addcovar=ac,
                                       verbose=FALSE, incl.markers=TRUE))
        dump(matrix(sprintf("%.17g", s2$lod), nrow=nrow(s2$lod)), paste0(nm, "_scantwo.txt"))
        s5 <- suppressWarnings(scanone(cr5, pheno.col=match(num[1], phe), method="hk", addcovar=ac))
        dump(sprintf("%.17g", s5$lod), paste0(nm, "_scanone5.txt"))
      }
    }
""")


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    require("rqtl")
    folder = tmp_path_factory.mktemp("rqtl_exports")
    (folder / "export.R").write_text(R_SCRIPT)
    run = subprocess.run(["Rscript", str(folder / "export.R"), str(folder)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    return folder


def read_export(folder: Path, name: str, **options):
    cross_type, labels = LABELS[name]
    options.setdefault("uninformative", "keep")
    return read_rqtl_csv(folder / f"{name}.csv", cross_type, labels, **options)


@pytest.mark.parametrize("name", ["hyper", "listeria", "fake.bc", "fake.f2"])
def test_genotype_probabilities_match_calc_genoprob_x_included(exports, name):
    cross = read_export(exports, name)
    ours = calc_genoprob(cross, step=1, error_prob=1e-4)
    n = cross.n_individuals
    for chromosome in cross.chromosome_order:
        pick = ours.chromosomes == chromosome
        probs = ours.probs[:, pick]
        if cross.is_x(chromosome):
            probs = cross_states_to_x(probs, cross.x_classes(), cross.cross_type)
        raw = np.loadtxt(exports / f"{name}_prob_{chromosome}.txt", ndmin=2)
        expected = raw.reshape(n, probs.shape[1], probs.shape[2], order="F")
        np.testing.assert_allclose(probs, expected, rtol=0, atol=1e-9, err_msg=f"{name} chromosome {chromosome}")
    assert (cross.x_chromosome == "X") == (name != "fake.bc")


def test_hyper_keeps_the_marker_without_genotypes_and_matches_chromosome_1_exactly(exports):
    """D14Mit48 has no genotype: kept (as R/qtl), and chromosome 14's grid is R/qtl's.  Chromosome 1 holds
    four markers 1e-10 cM apart (R/qtl's jittermap): individual 235 has AB AB | BB BB there, so its
    probabilities weigh two genotyping errors (e^2 = 1e-8) against a recombination in a 1e-10 cM interval
    (r = 1e-12) and move by 5e-4 if those positions are rounded to 82 cM (see docs/readers.md)."""
    cross = read_export(exports, "hyper")
    assert "D14Mit48" in cross.markers
    ours = calc_genoprob(cross, step=1, error_prob=1e-4)
    chr1 = ours.chromosomes == "1"
    expected = np.loadtxt(exports / "hyper_prob_1.txt").reshape(cross.n_individuals, -1, 2, order="F")
    np.testing.assert_allclose(ours.probs[:, chr1], expected, rtol=0, atol=1e-12)
    k = list(ours.position_names[chr1]).index("D1Mit14")
    assert 0.3 < expected[234, k, 0] < 0.7  # the sensitive case is really there
    rounded = read_export(exports, "hyper")
    near_82 = (rounded.chromosomes == "1") & (np.abs(rounded.positions - 82) < 1e-6)
    assert near_82.sum() == 4
    rounded.positions = np.where(near_82, 82.0, rounded.positions)
    moved = calc_genoprob(rounded, step=1, error_prob=1e-4).probs[:, chr1]
    assert abs(moved[234, k, 0] - expected[234, k, 0]) > 1e-4
    dropped = read_export(exports, "hyper", uninformative="drop")
    assert "D14Mit48" not in dropped.markers and dropped.n_markers == cross.n_markers - 1


def complete_rows(cross, covariates):
    rows = np.all(np.isfinite(cross.phenotypes), axis=1)
    if covariates is not None:
        rows &= np.all(np.isfinite(covariates), axis=1)
    return rows


def our_scan(cross, covariates=None):
    """LOD (n_positions, n_traits) of every chromosome, the X by R/qtl's X model; complete cases only."""
    probs = calc_genoprob(cross, step=1, error_prob=1e-4)
    rows = complete_rows(cross, covariates)
    y = cross.phenotypes[rows]
    cov = None if covariates is None else covariates[rows]
    lods = []
    for chromosome in cross.chromosome_order:
        pick = probs.chromosomes == chromosome
        p = probs.probs[rows][:, pick]
        if cross.is_x(chromosome):
            g = cross_states_to_x(p, cross.x_classes()[rows], cross.cross_type)
            sex = None if cross.sex is None else cross.sex[rows]
            pgm = None if cross.pgm is None else cross.pgm[rows]
            lods.append(scan1d_hk_x(g, y, cross.cross_type, sex, pgm, cov))
        else:
            lods.append(scan1d_hk(p, y, cov))
    return np.concatenate(lods), probs


@pytest.mark.parametrize("name, tag", [("hyper", "none"), ("listeria", "none"), ("fake.bc", "none"),
                                       ("fake.bc", "cov"), ("fake.f2", "none"), ("fake.f2", "cov")])
def test_scanone_hk_lods_match_rqtl_x_included(exports, name, tag):
    covariates = COVARIATES[name] if tag == "cov" else None
    cross = read_export(exports, name, covariates=covariates, traits=TRAITS[name])
    lod, probs = our_scan(cross, cross.covariates if covariates else None)
    rows = np.loadtxt(exports / f"{name}_scan_{tag}.txt", dtype=str, ndmin=2)
    assert list(rows[:, 0]) == list(probs.chromosomes)
    np.testing.assert_allclose(probs.positions, rows[:, 1].astype(float), atol=1e-9)
    expected = rows[:, 2:].astype(float)
    assert expected.shape == lod.shape
    np.testing.assert_allclose(np.maximum(lod, 0), expected, rtol=0, atol=1e-4)
    x = probs.chromosomes == "X"
    if x.any():
        assert np.max(expected[x]) > 0  # the X was scanned, not skipped


def test_listeria_sex_as_a_covariate(exports):
    """listeria's sex column is text with one level (all female): as a covariate it dummy-codes to no column
    (R's treatment contrasts of a one-level factor), and the scan is R/qtl's scanone without covariates."""
    cross = read_export(exports, "listeria", covariates=["sex"], traits=["T264"])
    assert cross.covariates.shape == (cross.n_individuals, 0) and np.all(cross.sex == 0)
    lod, _ = our_scan(cross, cross.covariates)
    expected = np.loadtxt(exports / "listeria_scan_none.txt", dtype=str)[:, 2:].astype(float)
    np.testing.assert_allclose(np.maximum(lod, 0), expected, rtol=0, atol=1e-4)


def test_text_sex_column_is_a_dummy_coded_covariate_equal_to_numeric_sex(exports, tmp_path):
    """fake.bc with sex written as female/male: the same scan as R/qtl's addcovar = cbind(sex, age)."""
    lines = (exports / "fake.bc.csv").read_text().splitlines()
    header = lines[0].split(",")
    sex = header.index("sex")
    for k in range(3, len(lines)):
        cells = lines[k].split(",")
        cells[sex] = {"0": "female", "1": "male"}.get(cells[sex], cells[sex])
        lines[k] = ",".join(cells)
    (tmp_path / "text.csv").write_text("\n".join(lines) + "\n")
    cross = read_rqtl_csv(tmp_path / "text.csv", "bc", covariates=["sex", "age"], uninformative="keep",
                          traits=TRAITS["fake.bc"])
    assert list(cross.covariate_names) == ["sex=male", "age"]
    assert "sex" not in cross.phenotype_names and cross.sex is not None
    lod, _ = our_scan(cross, cross.covariates)
    expected = np.loadtxt(exports / "fake.bc_scan_cov.txt", dtype=str)[:, 2:].astype(float)
    np.testing.assert_allclose(np.maximum(lod, 0), expected, rtol=0, atol=1e-4)
    # and through `qtlhpc run`: the scan's covariates name the text column, its dummy columns are used
    import subprocess as sp
    import sys

    import h5py

    (tmp_path / "run.toml").write_text(textwrap.dedent("""
        [run]
        output = "results.h5"
        stages = ["genoprob", "scan1d"]
        progress = false
        [input]
        format = "rqtl-csv"
        cross_type = "bc"
        file = "text.csv"
        covariates = ["sex", "age"]
        [varcomp]
        traits = ["pheno1"]
        covariates = ["sex", "age"]
        [scan1d]
        model = "hk"
    """))
    run = sp.run([sys.executable, "-m", "qtlhpc", "run", "all", str(tmp_path / "run.toml")], capture_output=True,
                 text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    with h5py.File(tmp_path / "results.h5", "r") as results:
        stored = results["scan1d/lod"][0]
    np.testing.assert_allclose(np.maximum(stored, 0), expected[:, 0], rtol=0, atol=1e-4)


def test_text_columns_never_stop_a_run_that_does_not_analyse_them(exports, tmp_path, caplog):
    config = {"format": "rqtl-csv", "cross_type": "f2", "file": str(exports / "listeria.csv"),
              "genotype_labels": LABELS["listeria"][1], "traits": ["T264"]}
    cross = load_cross(config, tmp_path)
    assert list(cross.phenotype_names) == ["T264"] and set(cross.text_phenotypes["sex"]) == {"female"}
    with pytest.raises(InputError, match=r"column 2 \('sex'\).*'female' is not a number.*analysed as a trait"):
        load_cross({**config, "traits": ["T264", "sex"]}, tmp_path)
    # without traits every numeric column is a trait and the text column is left aside
    with caplog.at_level(logging.INFO, logger="qtlhpc"):
        everything = load_cross({k: v for k, v in config.items() if k != "traits"}, tmp_path)
    assert list(everything.phenotype_names) == ["T264"]
    assert "not traits" in caplog.text
    # the hyper export (male X labels, a marker without genotypes) reads as it is
    hyper = load_cross({"format": "rqtl-csv", "cross_type": "bc", "file": str(exports / "hyper.csv"),
                        "genotype_labels": LABELS["hyper"][1]}, tmp_path)
    assert hyper.n_markers == 174 and hyper.x_chromosome == "X" and np.all(hyper.sex == 1)


def test_a_mixed_column_analysed_is_an_error_naming_its_cell(tmp_path):
    path = tmp_path / "c.csv"
    path.write_text("id,weight,m1,m2\n,,1,1\n,,0,5\na,1,A,H\nb,heavy,H,A\nc,3,A,A\n")
    with pytest.raises(InputError, match=r"line 5, column 2 \('weight'\).*'heavy' is not a number"):
        read_rqtl_csv(path, "bc")
    path.write_text("id,weight,group,m1,m2\n,,,1,1\n,,,0,5\na,1,x,A,H\nb,2,y1,H,A\nc,3,y1,A,A\n")
    cross = read_rqtl_csv(path, "bc", covariates=["group"])
    assert list(cross.covariate_names) == ["group=y1"]   # levels sorted: 'x' is the reference
    np.testing.assert_array_equal(cross.covariates[:, 0], [0, 1, 1])


@pytest.mark.parametrize("name", ["hyper", "listeria", "multitrait", "fake.bc", "fake.f2"])
def test_csv_and_csvs_exports_read_alike(exports, name):
    """As ``qtlhpc run`` reads them ([input] options only, the files untouched)."""
    cross_type, labels = LABELS[name]
    common = {"cross_type": cross_type, **({"genotype_labels": labels} if labels else {})}
    one = load_cross({"format": "rqtl-csv", "file": f"{name}.csv", **common}, exports)
    two = load_cross({"format": "rqtl-csvs", "genotypes": f"{name}_s_gen.csv", "phenotypes": f"{name}_s_phe.csv",
                      **common}, exports)
    direct = read_rqtl_csvs(exports / f"{name}_s_gen.csv", exports / f"{name}_s_phe.csv", cross_type, labels,
                            uninformative="keep")
    np.testing.assert_array_equal(direct.genotypes, two.genotypes)
    np.testing.assert_array_equal(one.genotypes, two.genotypes)
    np.testing.assert_array_equal(one.positions, two.positions)
    assert one.x_chromosome == two.x_chromosome
    common = [k for k, v in enumerate(one.phenotype_names) if v in two.phenotype_names]
    assert common


def nearly_empty_class(pair_probs, first, second, threshold=0.05):
    """Same-chromosome pairs with a joint genotype class of expected count below ``threshold`` individuals:
    their full model is nearly rank-deficient, and its LOD depends on the rank tolerance (R/qtl's QR and
    our pivots decide differently when a singular value falls between 1e-13 and 1e-5 of the largest)."""
    out = np.zeros(len(first), dtype=bool)
    same = np.flatnonzero(pair_probs.chromosomes[first] == pair_probs.chromosomes[second])
    for start in range(0, len(same), 2000):
        pick = same[start:start + 2000]
        counts = np.zeros((len(pick),))
        for label in np.unique(pair_probs.chromosomes[first[pick]]):
            sub = pick[pair_probs.chromosomes[first[pick]] == label]
            joint = pair_probs(first[sub], second[sub]).sum(axis=0)           # (pairs, s, s)
            counts[np.searchsorted(pick, sub)] = joint.reshape(len(sub), -1).min(axis=1)
        out[pick] = counts < threshold
    return out


@pytest.mark.parametrize("name", ["hyper", "listeria", "fake.f2"])
def test_scantwo_hk_lods_match_rqtl_x_included(exports, name):
    from qtlhpc.genetics.genoprob import GenomePairProbabilities
    from qtlhpc.genetics.xchr import scan2d_hk_x

    covariates = ["sex"] if name == "fake.f2" else None
    cross = read_export(exports, name, covariates=covariates, traits=TRAITS[name][:1])
    cross = cross.subset_individuals(np.isfinite(cross.phenotypes[:, 0]))
    probs = calc_genoprob(cross, step=5, error_prob=1e-4)
    chains = GenomePairProbabilities(cross, step=5, error_prob=1e-4)
    result = scan2d_hk_x(probs.probs, probs.chromosomes, cross.x_chromosome, cross.cross_type, cross.sex, cross.pgm,
                         cross.phenotypes, cross.covariates if covariates else None, pair_probs=chains)
    lod = np.loadtxt(exports / f"{name}_scantwo.txt")
    assert lod.shape == (probs.n_positions,) * 2
    first, second = result.first, result.second
    x = (probs.chromosomes[first] == "X") | (probs.chromosomes[second] == "X")
    assert x.sum() > 100
    # R/qtl: upper triangle additive model, lower triangle full model
    ambiguous = nearly_empty_class(chains, first, second)
    np.testing.assert_allclose(result.lod_add[~ambiguous, 0], lod[first, second][~ambiguous], rtol=0, atol=1e-4)
    assert ambiguous.mean() < 0.03 and not np.any(ambiguous & x & (probs.chromosomes[first] != probs.chromosomes[second]))
    np.testing.assert_allclose(result.lod_full[~ambiguous, 0], lod[second, first][~ambiguous], rtol=0, atol=1e-4)
    np.testing.assert_allclose(result.lod_full[x, 0], lod[second, first][x], rtol=0, atol=1e-4)
    np.testing.assert_allclose(result.lod_add[x, 0], lod[first, second][x], rtol=0, atol=1e-4)


PIPELINE = """
[run]
output = "results.h5"
stages = ["genoprob", "scan1d", "scan2d"]
progress = false
[input]
format = "rqtl-csv"
cross_type = "CROSS"
file = "FILE"
LABELS
COVARIATES
[genoprob]
step = 5.0
[varcomp]
traits = ["TRAIT"]
COVARIATE_NAMES
[scan1d]
model = "hk"
[scan2d]
model = "hk"
"""


@pytest.mark.parametrize("name", ["hyper", "fake.f2"])
def test_qtlhpc_run_reads_the_export_as_it_is_and_scans_the_x_as_rqtl(exports, tmp_path, name):
    """``qtlhpc run`` (genoprob, scan1d and scan2d with model hk) on R/qtl's own export: R/qtl's LODs."""
    import subprocess as sp
    import sys

    import h5py

    from qtlhpc.parallel import pair_from_index

    cross_type, labels = LABELS[name]
    covariates = ["sex"] if name == "fake.f2" else []
    config = (PIPELINE.replace("CROSS", cross_type).replace("FILE", str(exports / f"{name}.csv"))
              .replace("LABELS", f"genotype_labels = {labels!r}".replace("'", '"') if labels else "")
              .replace("TRAIT", TRAITS[name][0])
              .replace("COVARIATE_NAMES", f"covariates = {covariates!r}".replace("'", '"') if covariates else "")
              .replace("COVARIATES", f"covariates = {covariates!r}".replace("'", '"') if covariates else ""))
    (tmp_path / "run.toml").write_text(config)
    run = sp.run([sys.executable, "-m", "qtlhpc", "run", "all", str(tmp_path / "run.toml")], capture_output=True,
                 text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    with h5py.File(tmp_path / "results.h5", "r") as results:
        lod1 = results["scan1d/lod"][0]
        df1 = results["scan1d/df"][0]
        chromosomes = results["scan1d/locus_chromosomes"][()].astype(str)
        statistics = [str(s) for s in results["scan2d/hk_statistic_names"][()].astype(str)]
        hk_lods = results["scan2d/hk_lods"][0]
    np.testing.assert_allclose(np.maximum(lod1, 0), np.loadtxt(exports / f"{name}_scanone5.txt"), atol=1e-4)
    x = chromosomes == "X"
    assert np.all(df1[~x] == (1 if cross_type == "bc" else 2))
    # the X of fake.f2 (both sexes, both directions): 6 genotype classes less the intercept and 2 X covariates
    assert np.all(df1[x] == (1 if name == "hyper" else 3))
    lod = np.loadtxt(exports / f"{name}_scantwo.txt")
    first, second = pair_from_index(np.arange(hk_lods.shape[0]), len(chromosomes))
    with_x = x[first] | x[second]
    full = hk_lods[:, statistics.index("full")]
    add = hk_lods[:, statistics.index("add")]
    np.testing.assert_allclose(full[with_x], lod[second, first][with_x], atol=1e-4)   # float32 storage
    np.testing.assert_allclose(add[with_x], lod[first, second][with_x], atol=1e-4)


def test_one_marker_message_names_the_marker_count_not_the_cross_type():
    """Issue 9, item 8: with one marker the pairwise kinships are empty because there are no pairs."""
    from qtlhpc.methods.pepis.kernels.kinship import kinship_scales

    additive = np.array([[1.0], [0.0], [-1.0]])
    dominance = np.array([[-1.0], [1.0], [-1.0]])
    assert kinship_scales(additive, dominance, ["a", "d"])["a"] > 0
    with pytest.raises(InputError, match=r"kinship 'aa' is built from pairs of markers, and 1 marker is used") as error:
        kinship_scales(additive, dominance, ["a", "aa"])
    assert "heterozygotes" not in str(error.value)
    with pytest.raises(InputError, match="without heterozygotes"):   # the cross-type message where it applies
        kinship_scales(np.ones((3, 2)), np.zeros((3, 2)), ["d"])
