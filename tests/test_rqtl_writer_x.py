"""The R/qtl csv/csvs writers with an X chromosome: a cross read from R/qtl's own export (hyper, listeria,
fake.f2: males, both directions, text sex) is written back, R/qtl reads the written file (``read.cross``)
with the same sex, pgm and internal X genotypes, and its ``calc.genoprob`` equals our probabilities of the
original cross; our reader reads the written file back to the same cross."""

from __future__ import annotations

import subprocess
import textwrap

import numpy as np
import pytest

from qtlhpc.errors import ConfigError
from qtlhpc.genetics.genoprob import calc_genoprob
from qtlhpc.genetics.xchr import cross_states_to_x, recode_x, x_file_codes
from qtlhpc.io.rqtl import read_rqtl_csv, read_rqtl_csvs
from qtlhpc.io.writers import write_rqtl_csv, write_rqtl_csvs
from requirements import require

CROSSES = {"hyper": ("bc", ["BB", "BA", "AA"]), "listeria": ("f2", ["CC", "CB", "BB", "not BB", "not CC"]),
           "fake.f2": ("f2", None)}

EXPORT = textwrap.dedent("""
    suppressMessages(library(qtl))
    setwd(commandArgs(trailingOnly=TRUE)[1])
    for (nm in c("hyper", "listeria", "fake.f2")) { data(list=nm); write.cross(get(nm), "csv", nm) }
""")

READ_BACK = textwrap.dedent("""
    suppressMessages(library(qtl))
    args <- commandArgs(trailingOnly=TRUE)
    setwd(args[1]); nm <- args[2]; type <- args[3]
    g <- if (type == "bc") c("A","H","B") else c("A","H","B","D","C")
    cr <- suppressWarnings(read.cross("csv", ".", paste0(nm, "_rt.csv"), genotypes=g, alleles=c("A","B"),
                                      crosstype=type, estimate.map=FALSE))
    dump <- function(x, file) write.table(x, file, row.names=FALSE, col.names=FALSE, quote=FALSE)
    s <- getsex(cr)
    dump(if (is.null(s$sex)) rep(-1, nind(cr)) else s$sex, paste0(nm, "_sex.txt"))
    dump(if (is.null(s$pgm)) rep(-1, nind(cr)) else s$pgm, paste0(nm, "_pgm.txt"))
    x <- cr$geno$X$data; x[is.na(x)] <- 0
    dump(x, paste0(nm, "_xdata.txt"))
    dump(class(cr$geno$X)[1], paste0(nm, "_xclass.txt"))
    cr <- calc.genoprob(cr, step=1, error.prob=1e-4)
    for (ch in names(cr$geno)) {
      pr <- cr$geno[[ch]]$prob
      dump(matrix(sprintf("%.17g", pr), nrow=dim(pr)[1]), paste0(nm, "_prob_", ch, ".txt"))
    }
""")


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    require("rqtl")
    folder = tmp_path_factory.mktemp("rqtl_writer_x")
    (folder / "export.R").write_text(EXPORT)
    (folder / "read_back.R").write_text(READ_BACK)
    run = subprocess.run(["Rscript", str(folder / "export.R"), str(folder)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    return folder


def read_original(folder, name):
    cross_type, labels = CROSSES[name]
    return read_rqtl_csv(folder / f"{name}.csv", cross_type, labels, uninformative="keep")


@pytest.mark.parametrize("name", sorted(CROSSES))
def test_rqtl_reads_the_written_x_as_we_do(exports, name):
    cross = read_original(exports, name)
    assert cross.x_chromosome == "X"
    write_rqtl_csv(cross, exports / f"{name}_rt.csv")           # default labels: A H B (D C)
    run = subprocess.run(["Rscript", str(exports / "read_back.R"), str(exports), name, cross.cross_type],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    # R/qtl's sex, pgm and its internal X genotypes (g1/g2 codes) are ours
    assert open(exports / f"{name}_xclass.txt").read().strip() == "X"
    r_sex = np.loadtxt(exports / f"{name}_sex.txt", ndmin=1)
    np.testing.assert_array_equal(r_sex, cross.sex if cross.sex is not None else -1)
    if cross.cross_type == "f2":
        np.testing.assert_array_equal(np.loadtxt(exports / f"{name}_pgm.txt", ndmin=1),
                                      cross.pgm if cross.pgm is not None else -1)
    on_x = cross.chromosomes == "X"
    np.testing.assert_array_equal(np.loadtxt(exports / f"{name}_xdata.txt", ndmin=2).reshape(cross.n_individuals, -1),
                                  cross.genotypes[:, on_x])
    # R/qtl's probabilities from the written file = ours from the original cross, every chromosome
    ours = calc_genoprob(cross, step=1, error_prob=1e-4)
    for chromosome in cross.chromosome_order:
        pick = ours.chromosomes == chromosome
        probs = ours.probs[:, pick]
        if cross.is_x(chromosome):
            probs = cross_states_to_x(probs, cross.x_classes(), cross.cross_type)
        raw = np.loadtxt(exports / f"{name}_prob_{chromosome}.txt", ndmin=2)
        expected = raw.reshape(cross.n_individuals, probs.shape[1], probs.shape[2], order="F")
        np.testing.assert_allclose(probs, expected, rtol=0, atol=1e-9, err_msg=f"{name} chromosome {chromosome}")
    # and our reader reads the written file back to the same cross
    again = read_rqtl_csv(exports / f"{name}_rt.csv", cross.cross_type, uninformative="keep")
    for field in ("individuals", "markers", "chromosomes", "positions", "genotypes", "sex", "pgm", "phenotypes"):
        np.testing.assert_array_equal(getattr(again, field), getattr(cross, field), err_msg=field)
    assert again.x_chromosome == "X" and list(again.text_phenotypes) == list(cross.text_phenotypes)


def test_csvs_pair_round_trips_with_the_x(exports, tmp_path):
    cross = read_original(exports, "fake.f2")
    write_rqtl_csvs(cross, tmp_path / "gen.csv", tmp_path / "phe.csv", genotype_labels=["AA", "AB", "BB", "D", "C"])
    again = read_rqtl_csvs(tmp_path / "gen.csv", tmp_path / "phe.csv", "f2", ["AA", "AB", "BB", "D", "C"],
                           uninformative="keep")
    for field in ("genotypes", "sex", "pgm", "phenotypes", "positions"):
        np.testing.assert_array_equal(getattr(again, field), getattr(cross, field), err_msg=field)


def test_file_codes_invert_recode_x_for_every_class():
    """Brute force over every class and file code that a class can carry (the others are set missing)."""
    allowed = {"bc": {0: (1, 2), 2: (1, 3)}, "f2": {0: (1, 2), 1: (2, 3), 2: (1, 3)}}
    for cross_type, classes in allowed.items():
        for c, codes in classes.items():
            sex = np.array([1 if c == 2 else 0], dtype=np.int8)
            pgm = None if cross_type == "bc" else np.array([1 if c == 1 else 0], dtype=np.int8)
            for code in (0,) + codes:
                g, _, _ = recode_x(np.array([[code]]), cross_type, sex, pgm)
                assert x_file_codes(g, cross_type, np.array([c]))[0, 0] == code, (cross_type, c, code)


def test_a_backcross_male_x_needs_a_third_label(exports, tmp_path):
    cross = read_original(exports, "hyper")
    with pytest.raises(ConfigError, match="code 3"):
        write_rqtl_csv(cross, tmp_path / "two.csv", genotype_labels=["A", "H"])
    write_rqtl_csv(cross, tmp_path / "three.csv", genotype_labels=["BB", "BA", "AA"])
    # hyper's alleles are B and A: its males' BY (A) is written "AA", as R/qtl's own export
    written = [line.split(",") for line in (tmp_path / "three.csv").read_text().splitlines()]
    exported = [line.split(",") for line in (exports / "hyper.csv").read_text().splitlines()]
    x_written = [k for k, c in enumerate(written[1]) if c == "X"]
    x_exported = [k for k, c in enumerate(exported[1]) if c == "X"]
    assert ([[row[k] for k in x_written] for row in written[3:]]
            == [[row[k] for k in x_exported] for row in exported[3:]])
