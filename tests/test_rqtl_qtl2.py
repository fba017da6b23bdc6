"""R/qtl2 input (control file in YAML or JSON, csv files, zip bundle, transposed files) on a cut-down copy of
the B6BTBR F2 of rqtl/qtl2data (tests/data/rqtl2/b6btbr_small, source in its README), and its scans
against R/qtl run on the same cross converted to an R/qtl csv file in the test."""

from __future__ import annotations

import csv
import json
import subprocess
import textwrap
import zipfile
from pathlib import Path

import numpy as np
import pytest

from qtlhpc.errors import InputError
from qtlhpc.genetics.genoprob import calc_genoprob
from qtlhpc.genetics.hk import scan1d_hk
from qtlhpc.genetics.xchr import cross_states_to_x, scan1d_hk_x
from qtlhpc.io.loader import load_cross
from qtlhpc.io.qtl2 import read_qtl2
from requirements import require

DATA = Path(__file__).parent / "data" / "rqtl2" / "b6btbr_small"
TRAIT = "log10_insulin_10wk"


def rows_of(path: Path):
    return [row for row in csv.reader(path.read_text().splitlines()) if row and not row[0].startswith("#")]


def test_yaml_json_and_zip_bundle_read_the_same_cross(tmp_path):
    from_yaml = read_qtl2(DATA / "b6btbr.yaml", covariates=["Sex"])
    from_json = read_qtl2(DATA / "b6btbr.json", covariates=["Sex"])
    bundle = tmp_path / "b6btbr.zip"
    with zipfile.ZipFile(bundle, "w") as archive:
        for file in DATA.iterdir():
            if file.suffix in (".csv", ".yaml"):
                archive.write(file, f"b6btbr/{file.name}")
    from_zip = load_cross({"format": "rqtl2", "file": "b6btbr.zip", "covariates": ["Sex"]}, tmp_path)
    for other in (from_json, from_zip):
        np.testing.assert_array_equal(other.genotypes, from_yaml.genotypes)
        np.testing.assert_array_equal(other.phenotypes, from_yaml.phenotypes)
        np.testing.assert_array_equal(other.covariates, from_yaml.covariates)
    cross = from_yaml
    assert cross.cross_type == "f2" and cross.x_chromosome == "X" and cross.chromosome_order == ["1", "19", "X"]
    assert list(cross.covariate_names) == ["Sex=Male"] and TRAIT in cross.phenotype_names
    # sex from the control's sex entry, direction from cross_info (all pgm = 1 in this cross)
    covar = {row[0]: row for row in rows_of(DATA / "b6btbr_covar.csv")[1:]}
    np.testing.assert_array_equal(cross.sex, [covar[i][1] == "Male" for i in cross.individuals])
    assert np.all(cross.pgm == 1)
    # genotype codes: the control's BB/BR/RR -> 1/2/3 on autosomes, the X recoded to g1/g2 (<= 2)
    geno = rows_of(DATA / "b6btbr_geno.csv")
    column = geno[0].index(cross.markers[0])
    expected = [{"BB": 1, "BR": 2, "RR": 3}.get(row[column], 0) for row in geno[1:]]
    np.testing.assert_array_equal(cross.genotypes[:, 0], expected)
    assert cross.genotypes[:, cross.chromosomes == "X"].max() <= 2


def test_transposed_files_and_text_trait_errors(tmp_path):
    control = json.loads((DATA / "b6btbr.json").read_text())
    geno = rows_of(DATA / "b6btbr_geno.csv")
    with open(tmp_path / "geno_t.csv", "w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows([list(r) for r in zip(*geno)])
    for name in ("b6btbr_gmap.csv", "b6btbr_pmap.csv", "b6btbr_pheno.csv", "b6btbr_covar.csv"):
        (tmp_path / name).write_text((DATA / name).read_text())
    control.update(geno="geno_t.csv", geno_transposed=True)
    (tmp_path / "t.json").write_text(json.dumps(control))
    transposed = read_qtl2(tmp_path / "t.json")
    np.testing.assert_array_equal(transposed.genotypes, read_qtl2(DATA / "b6btbr.json").genotypes)
    with pytest.raises(InputError, match=r"column 2 \('Sex'\).*'Male' is not a number.*analysed as a trait"):
        read_qtl2(DATA / "b6btbr.json", traits=["Sex"])
    control.update(crosstype="do")
    (tmp_path / "do.json").write_text(json.dumps(control))
    with pytest.raises(InputError, match="crosstype 'do' is not supported"):
        read_qtl2(tmp_path / "do.json")


R_SCRIPT = textwrap.dedent("""
    suppressMessages(library(qtl))
    args <- commandArgs(trailingOnly=TRUE)
    cr <- suppressWarnings(read.cross("csv", dirname(args[1]), basename(args[1]), genotypes=c("A","H","B","D","C"),
                                      crosstype="f2", estimate.map=FALSE))
    cr <- calc.genoprob(cr, step=1, error.prob=1e-4)
    s <- suppressWarnings(scanone(cr, pheno.col=2, method="hk", addcovar=cbind(cr$pheno$sex)))
    write.table(cbind(as.character(s$chr), sprintf("%.17g", s$pos), sprintf("%.17g", s$lod)), args[2],
                row.names=FALSE, col.names=FALSE, quote=FALSE)
    pr <- cr$geno[["X"]]$prob
    write.table(matrix(sprintf("%.17g", pr), nrow=dim(pr)[1]), args[3], row.names=FALSE, col.names=FALSE, quote=FALSE)
""")


def write_rqtl_csv_from_qtl2(path: Path):
    """The same cross as an R/qtl csv file (file codes, sex 0/1, pgm), markers in map order."""
    geno = rows_of(DATA / "b6btbr_geno.csv")
    gmap = {row[0]: (row[1], float(row[2])) for row in rows_of(DATA / "b6btbr_gmap.csv")[1:]}
    pheno = {row[0]: row for row in rows_of(DATA / "b6btbr_pheno.csv")}
    covar = {row[0]: row for row in rows_of(DATA / "b6btbr_covar.csv")[1:]}
    markers = sorted(geno[0][1:], key=lambda m: (["1", "19", "X"].index(gmap[m][0]), gmap[m][1]))
    columns = [geno[0].index(m) for m in markers]
    letters = {"BB": "A", "BR": "H", "RR": "B"}
    out = [["id", TRAIT, "sex", "pgm"] + markers, ["", "", "", ""] + [gmap[m][0] for m in markers],
           ["", "", "", ""] + [repr(gmap[m][1]) for m in markers]]
    trait = pheno["MouseNum"].index(TRAIT)
    for row in geno[1:]:
        mouse = row[0]
        value = pheno[mouse][trait]
        out.append([mouse, value if value not in ("", "NA") else "NA", "1" if covar[mouse][1] == "Male" else "0",
                    covar[mouse][2]] + [letters.get(row[c], "-") for c in columns])
    with open(path, "w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(out)


def test_scan_matches_rqtl_on_the_converted_cross_x_included(tmp_path):
    require("rqtl")
    write_rqtl_csv_from_qtl2(tmp_path / "b6btbr.csv")
    (tmp_path / "s.R").write_text(R_SCRIPT)
    run = subprocess.run(["Rscript", str(tmp_path / "s.R"), str(tmp_path / "b6btbr.csv"), str(tmp_path / "lod.txt"),
                          str(tmp_path / "x.txt")], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    cross = load_cross({"format": "rqtl2", "file": str(DATA / "b6btbr.yaml"), "covariates": ["Sex"],
                        "traits": [TRAIT]}, tmp_path)
    probs = calc_genoprob(cross, step=1, error_prob=1e-4)
    x = probs.chromosomes == "X"
    r_x = np.loadtxt(tmp_path / "x.txt").reshape(cross.n_individuals, int(x.sum()), 2, order="F")
    np.testing.assert_allclose(cross_states_to_x(probs.probs[:, x], cross.x_classes(), "f2"), r_x, atol=1e-9)
    rows = np.isfinite(cross.phenotypes[:, 0])
    y, cov = cross.phenotypes[rows], cross.covariates[rows]
    lods = []
    for chromosome in cross.chromosome_order:
        pick = probs.chromosomes == chromosome
        p = probs.probs[rows][:, pick]
        if cross.is_x(chromosome):
            g = cross_states_to_x(p, cross.x_classes()[rows], "f2")
            lods.append(scan1d_hk_x(g, y, "f2", cross.sex[rows], cross.pgm[rows], cov))
        else:
            lods.append(scan1d_hk(p, y, cov))
    expected = np.loadtxt(tmp_path / "lod.txt", dtype=str)
    assert list(expected[:, 0]) == list(probs.chromosomes)
    np.testing.assert_allclose(np.maximum(np.concatenate(lods)[:, 0], 0), expected[:, 2].astype(float), atol=1e-4)


BXD = Path(__file__).parent / "data" / "rqtl2" / "bxd_small"
BXD_TRAIT = "11280"

R_RIL = textwrap.dedent("""
    suppressMessages(library(qtl))
    args <- commandArgs(trailingOnly=TRUE)
    cr <- suppressWarnings(read.cross("csv", dirname(args[1]), basename(args[1]), genotypes=c("A","B"),
                                      crosstype="risib", estimate.map=FALSE))
    cr <- calc.genoprob(cr, step=1, error.prob=1e-4)
    s <- suppressWarnings(scanone(cr, pheno.col=2, method="hk"))
    write.table(cbind(as.character(s$chr), sprintf("%.17g", s$pos), sprintf("%.17g", s$lod)), args[2],
                row.names=FALSE, col.names=FALSE, quote=FALSE)
""")


def write_rqtl_csv_from_bxd(path: Path):
    """The BXD lines as an R/qtl csv (B -> A, D -> B, other codes missing), markers in map order."""
    geno = rows_of(BXD / "bxd_geno.csv")                       # transposed: one row per marker
    gmap = {row[0]: (row[1], float(row[2])) for row in rows_of(BXD / "bxd_gmap.csv")[1:]}
    pheno = {row[0]: row for row in rows_of(BXD / "bxd_pheno.csv")}
    strains = geno[0][1:]
    by_marker = {row[0]: row[1:] for row in geno[1:]}
    markers = sorted(by_marker, key=lambda m: (["1", "19", "X"].index(gmap[m][0]), gmap[m][1]))
    trait = pheno["id"].index(BXD_TRAIT)
    out = [["id", BXD_TRAIT] + markers, ["", ""] + [gmap[m][0] for m in markers],
           ["", ""] + [repr(gmap[m][1]) for m in markers]]
    for k, strain in enumerate(strains):
        value = pheno[strain][trait] if strain in pheno else "NA"
        out.append([strain, value] + [{"B": "A", "D": "B"}.get(by_marker[m][k], "-") for m in markers])
    with open(path, "w", newline="") as handle:
        csv.writer(handle, lineterminator="\n").writerows(out)


def test_bxd_transposed_ril_with_cross_info_file_matches_rqtl(tmp_path):
    """R/qtl2's BXD (risib, transposed genotypes, a cross_info file, 'H' codes absent from the control file):
    genotype codes, and the HK scan against R/qtl on the same lines (the X of RILs as an autosome)."""
    cross = read_qtl2(BXD / "bxd.yaml", traits=[BXD_TRAIT])
    assert cross.cross_type == "risib" and cross.x_chromosome is None and cross.n_individuals == 198
    geno = rows_of(BXD / "bxd_geno.csv")
    row = next(r for r in geno[1:] if r[0] == cross.markers[0])
    np.testing.assert_array_equal(cross.genotypes[:, 0], [{"B": 1, "D": 2}.get(v, 0) for v in row[1:]])
    require("rqtl")
    write_rqtl_csv_from_bxd(tmp_path / "bxd.csv")
    (tmp_path / "s.R").write_text(R_RIL)
    run = subprocess.run(["Rscript", str(tmp_path / "s.R"), str(tmp_path / "bxd.csv"), str(tmp_path / "lod.txt")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    rows = np.isfinite(cross.phenotypes[:, 0])
    probs = calc_genoprob(cross.subset_individuals(rows), step=1, error_prob=1e-4)
    lod = scan1d_hk(probs.probs, cross.phenotypes[rows, 0])
    expected = np.loadtxt(tmp_path / "lod.txt", dtype=str)
    assert list(expected[:, 0]) == list(probs.chromosomes)
    np.testing.assert_allclose(np.maximum(lod, 0), expected[:, 2].astype(float), atol=1e-4)
