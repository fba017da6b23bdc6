"""X-specific permutation thresholds (R/qtl ``scanone(perm.Xsp = TRUE)``): the distributions of the permuted
maxima, autosomes and X apart, against R/qtl's own (two-sample Kolmogorov-Smirnov tests), and the rules
that turn them into thresholds."""

from __future__ import annotations

import subprocess
import textwrap

import numpy as np
import pytest
from scipy import stats

from qtlhpc.genetics.genoprob import calc_genoprob
from qtlhpc.genetics.xchr import (
    chromosome_lengths,
    cross_states_to_x,
    permutation_maxima_xsp,
    scan1d_hk_x,
    x_permutation_counts,
    xsp_alphas,
    xsp_thresholds,
)
from qtlhpc.io.rqtl import read_rqtl_csv
from requirements import require

R_SCRIPT = textwrap.dedent("""
    suppressMessages(library(qtl))
    args <- commandArgs(trailingOnly=TRUE)
    setwd(args[1]); nm <- args[2]; n.perm <- as.numeric(args[3])
    data(list=nm); x <- get(nm); write.cross(x, "csv", nm)
    g <- switch(nm, hyper=c("BB","BA","AA"), listeria=c("CC","CB","BB","not BB","not CC"), c("A","H","B","D","C"))
    a <- switch(nm, hyper=c("B","A"), listeria=c("C","B"), c("A","B"))
    cr <- suppressWarnings(read.cross("csv", ".", paste0(nm, ".csv"), genotypes=g, alleles=a, estimate.map=FALSE))
    cr <- calc.genoprob(cr, step=2, error.prob=1e-4)
    set.seed(20261201)
    p <- suppressWarnings(scanone(cr, pheno.col=1, method="hk", n.perm=n.perm, perm.Xsp=TRUE, verbose=FALSE))
    if (length(args) > 3) saveRDS(p, paste0(nm, "_perm.rds"))
    write(sprintf("%.17g", p$A), paste0(nm, "_permA.txt")); write(sprintf("%.17g", p$X), paste0(nm, "_permX.txt"))
    write(sprintf("%.17g", attr(p, "L")), paste0(nm, "_L.txt"))
    s <- summary(p, alpha=c(0.05, 0.2))
    write(sprintf("%.17g", c(s$A, s$X)), paste0(nm, "_thr.txt"))
""")


def rqtl_permutations(folder, name, n_permutations):
    (folder / "perm.R").write_text(R_SCRIPT)
    run = subprocess.run(["Rscript", str(folder / "perm.R"), str(folder), name, str(n_permutations)],
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    return {key: np.loadtxt(folder / f"{name}_{key}.txt", ndmin=1) for key in ("permA", "permX", "L", "thr")}


def our_permutations(folder, name, n_permutations, labels):
    cross_type = "bc" if name == "hyper" else "f2"
    cross = read_rqtl_csv(folder / f"{name}.csv", cross_type, labels, uninformative="keep",
                          traits=["bp" if name == "hyper" else "phenotype"])
    cross = cross.subset_individuals(np.isfinite(cross.phenotypes[:, 0]))
    probs = calc_genoprob(cross, step=2, error_prob=1e-4)
    x = probs.chromosomes == "X"
    lengths = chromosome_lengths(cross.positions, cross.chromosomes)
    autosome_length = sum(v for k, v in lengths.items() if k != "X")
    g = cross_states_to_x(probs.probs[:, x], cross.x_classes(), cross_type)
    maxima = permutation_maxima_xsp(probs.probs[:, ~x], g, cross.phenotypes[:, 0], cross_type, cross.sex, cross.pgm,
                                    n_permutations, autosome_length, lengths["X"], seed=7)
    return maxima, (autosome_length, lengths["X"]), (cross, g)


def test_threshold_rules_are_rqtls():
    alpha_a, alpha_x = xsp_alphas([0.05], 900.0, 100.0)
    np.testing.assert_allclose(1 - (1 - alpha_a) * (1 - alpha_x), 0.05)   # genome-wide level kept
    np.testing.assert_allclose(alpha_x, 1 - 0.95 ** 0.1)
    assert x_permutation_counts(100, 900.0, 100.0) == 900 and x_permutation_counts(7, 10.0, 3.0) == 24
    maxima = np.arange(1.0, 101.0)
    a, xx = xsp_thresholds(maxima, maxima, [0.05], 900.0, 100.0)
    np.testing.assert_allclose(a, np.quantile(maxima, 1 - alpha_a))


def test_permutations_do_not_depend_on_how_the_work_is_split(tmp_path):
    rng = np.random.default_rng(3)
    n = 40
    autosomes = rng.dirichlet(np.ones(2), size=(n, 6))
    x = rng.dirichlet(np.ones(2), size=(n, 4))
    y = rng.normal(size=n)
    sex = (np.arange(n) % 2).astype(np.int8)
    whole = permutation_maxima_xsp(autosomes, x, y, "bc", sex, None, 10, 100.0, 30.0, seed=5)
    first = permutation_maxima_xsp(autosomes, x, y, "bc", sex, None, 10, 100.0, 30.0, seed=5, units=(0, 17))
    rest = permutation_maxima_xsp(autosomes, x, y, "bc", sex, None, 10, 100.0, 30.0, seed=5, units=(17, 34))
    np.testing.assert_array_equal(np.concatenate([first[0], rest[0]]), whole[0])
    np.testing.assert_array_equal(np.concatenate([first[1], rest[1]]), whole[1])
    assert len(whole[0]) == 10 and len(whole[1]) == 34
    # a brute-force permutation of the X part: shuffle (y, sex) together, rescan
    from qtlhpc.parallel.rng import unit_rng

    order = unit_rng(5, "perm-xsp", 1, 3).permutation(n)
    expected = max(0.0, scan1d_hk_x(x, y[order], "bc", sex[order], None).max())
    assert whole[1][3] == pytest.approx(expected, abs=1e-12)


def _compare(tmp_path, name, n_permutations, labels):
    require("rqtl")
    r = rqtl_permutations(tmp_path, name, n_permutations)
    (maxima_a, maxima_x), (length_a, length_x), _ = our_permutations(tmp_path, name, n_permutations, labels)
    np.testing.assert_allclose([length_a, length_x], r["L"], rtol=1e-9)
    assert len(maxima_x) == len(r["permX"]) and len(maxima_a) == len(r["permA"])
    # the same distribution: two-sample KS tests (the two sides use different random permutations)
    assert stats.ks_2samp(maxima_a, r["permA"]).pvalue > 1e-3
    assert stats.ks_2samp(maxima_x, r["permX"]).pvalue > 1e-3
    ours = np.concatenate(xsp_thresholds(maxima_a, maxima_x, [0.05, 0.2], length_a, length_x))
    # R's own thresholds from R's maxima by our rule: the same numbers
    np.testing.assert_allclose(np.concatenate(xsp_thresholds(r["permA"], r["permX"], [0.05, 0.2], *r["L"])),
                               r["thr"], rtol=1e-12)
    return ours, r["thr"]


def test_x_permutations_match_rqtl_hyper(tmp_path):
    """hyper: all males, no covariates (R/qtl's batch mode on both parts)."""
    ours, theirs = _compare(tmp_path, "hyper", 200, ["BB", "BA", "AA"])
    np.testing.assert_allclose(ours, theirs, atol=0.6)


@pytest.mark.slow
def test_x_permutations_match_rqtl_fake_f2(tmp_path):
    """fake.f2: both sexes and both directions: each X permutation moves sex and pgm with the phenotype."""
    ours, theirs = _compare(tmp_path, "fake.f2", 40, None)
    np.testing.assert_allclose(ours[2:], theirs[2:], atol=0.3)  # the X thresholds rest on ~1500 permutations
    # the test has power: the X scanned as an autosome (no sex/direction classes) is a different distribution
    from qtlhpc.genetics.hk import scan1d_hk
    from qtlhpc.parallel.rng import unit_rng

    _, _, (cross, g) = our_permutations(tmp_path, "fake.f2", 1, None)
    y = cross.phenotypes[:, 0]
    wrong = [scan1d_hk(g, y[unit_rng(1, "wrong", k).permutation(len(y))]).max() for k in range(500)]
    r_x = np.loadtxt(tmp_path / "fake.f2_permX.txt")
    assert stats.ks_2samp(wrong, r_x).pvalue < 1e-6


PIPELINE = """
[run]
output = "results.h5"
seed = 11
stages = ["genoprob", "permutations"]
progress = false
[input]
format = "rqtl-csv"
cross_type = "f2"
file = "x.csv"
traits = ["y"]
[genoprob]
step = 10.0
[varcomp]
traits = ["y"]
[scan1d]
model = "hk"
[scan2d]
model = "hk"
[permutations]
n_permutations = 6
scans = ["1d", "2d"]
batch = 4
"""


def small_x_cross(path):
    """An f2 with two autosomes and an X, both sexes and both directions (R/qtl file codes)."""
    rng = np.random.default_rng(8)
    n = 48
    sex = np.arange(n) % 2
    pgm = (np.arange(n) // 2) % 2
    markers = [("1", 0.0), ("1", 20.0), ("1", 45.0), ("2", 0.0), ("2", 30.0), ("X", 0.0), ("X", 15.0), ("X", 40.0)]
    lines = ["id,y,sex,pgm," + ",".join(f"m{k}" for k in range(len(markers))),
             ",,,," + ",".join(c for c, _ in markers), ",,,," + ",".join(repr(p) for _, p in markers)]
    for i in range(n):
        codes = []
        for chromosome, _ in markers:
            if chromosome != "X":
                codes.append("AHB"[rng.integers(3)])
            elif sex[i] == 1:
                codes.append("AB"[rng.integers(2)])          # AY, BY written as A, B
            else:
                codes.append(("AH" if pgm[i] == 0 else "HB")[rng.integers(2)])
            if rng.random() < 0.1:
                codes[-1] = "-"
        lines.append(f"i{i},{rng.normal() + sex[i]:.6f},{sex[i]},{pgm[i]}," + ",".join(codes))
    path.write_text("\n".join(lines) + "\n")


@pytest.mark.parametrize("x_specific", [False, True])
def test_permutation_stage_scans_the_x_with_its_model(tmp_path, x_specific):
    """Genome-wide maxima (both modes of permutations.x_specific; no covariates, so they agree) against
    every permutation rescanned by brute force."""
    import subprocess as sp
    import sys

    import h5py

    from qtlhpc.genetics.genoprob import GenomePairProbabilities
    from qtlhpc.genetics.hk import scan1d_hk
    from qtlhpc.genetics.xchr import scan2d_hk_x
    from qtlhpc.methods.pepis.kernels.permutation import permutation_order

    small_x_cross(tmp_path / "x.csv")
    (tmp_path / "run.toml").write_text(PIPELINE + f"x_specific = {str(x_specific).lower()}\n")
    run = sp.run([sys.executable, "-m", "qtlhpc", "run", "all", str(tmp_path / "run.toml")], capture_output=True,
                 text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    with h5py.File(tmp_path / "results.h5", "r") as results:
        max_1d = results["permutations/max_lod_1d"][:, 0]
        max_2d = results["permutations/max_lod_2d"][:, 0]
    cross = read_rqtl_csv(tmp_path / "x.csv", "f2", traits=["y"])
    assert cross.x_chromosome == "X" and set(cross.sex) == {0, 1} and set(cross.pgm) == {0, 1}
    probs = calc_genoprob(cross, step=10.0)
    x = probs.chromosomes == "X"
    chains = GenomePairProbabilities(cross, step=10.0)
    y = cross.phenotypes[:, 0]
    g = cross_states_to_x(probs.probs[:, x], cross.x_classes(), "f2")
    for k in range(6):   # brute force: the permuted phenotype with its sex and pgm, every position rescanned
        order = permutation_order(11, k, len(y))
        auto = scan1d_hk(probs.probs[:, ~x], y[order]).max()
        on_x = scan1d_hk_x(g, y[order], "f2", cross.sex[order], cross.pgm[order]).max()
        assert max_1d[k] == pytest.approx(max(auto, on_x), abs=1e-9)
        pairs = scan2d_hk_x(probs.probs, probs.chromosomes, "X", "f2", cross.sex[order], cross.pgm[order], y[order],
                            pair_probs=chains)
        assert max_2d[k] == pytest.approx(pairs.lod_full.max(), abs=1e-9)


@pytest.mark.slow
def test_x_stages_give_the_same_numbers_at_1_2_and_3_ranks(tmp_path):
    """genoprob, scan1d, scan2d (hk) and permutations on a cross with an X, under real mpirun."""
    import h5py
    from mpi_helpers import RANK_COUNTS, run_mpi

    small_x_cross(tmp_path / "x.csv")
    config = PIPELINE.replace('stages = ["genoprob", "permutations"]',
                              'stages = ["genoprob", "scan1d", "scan2d", "permutations"]')
    names = ("scan1d/lod", "scan1d/df", "scan2d/hk_lods", "permutations/max_lod_1d", "permutations/max_lod_2d")
    seen = {}
    for ranks in RANK_COUNTS:
        folder = tmp_path / f"r{ranks}"
        folder.mkdir()
        (folder / "x.csv").write_text((tmp_path / "x.csv").read_text())
        (folder / "run.toml").write_text(config)
        run_mpi(ranks, ["-m", "qtlhpc", "run", "all", folder / "run.toml"], timeout=300)
        with h5py.File(folder / "results.h5", "r") as results:
            seen[ranks] = {name: results[name][()] for name in names}
    for ranks in RANK_COUNTS[1:]:
        for name in names:
            np.testing.assert_array_equal(seen[ranks][name], seen[1][name], err_msg=f"{name} at {ranks} ranks")


@pytest.mark.parametrize("cross_type", ["bc", "f2"])
def test_maxima_of_moved_sexes_and_covariates_equal_each_permutation_rescanned(cross_type):
    """Both sexes (and directions), with and without covariates: the batched maxima (matrix products over
    reorderings, :func:`qtlhpc.genetics.xchr.moved_scan_maxima`) against each permutation rescanned with
    the phenotype, sex, pgm and covariates moved together (scan1d_hk_x and scan1d_hk: the slow obvious
    reference), including a covariate the sex classes span and positions with nothing to explain."""
    from qtlhpc.genetics.hk import scan1d_hk
    from qtlhpc.genetics.xchr import _x_maxima_moved, xsp_maxima

    rng = np.random.default_rng(4)
    n = 60
    autosomes = rng.dirichlet(np.ones(3 if cross_type == "f2" else 2), size=(n, 5))
    autosomes[:, 3] = autosomes[0, 3]      # an autosome position without information
    g = rng.dirichlet(np.ones(2), size=(n, 7))
    sex = (rng.random(n) < 0.5).astype(np.int8)
    g[sex == 1, 2] = [1.0, 0.0]            # position 2: the males' g1 is constant (a column the scan drops)
    g[:, 4] = [0.5, 0.5]                   # position 4: nothing to explain
    y = rng.normal(size=n)
    pgm = (rng.random(n) < 0.5).astype(np.int8) if cross_type == "f2" else None
    orders = [rng.permutation(n) for _ in range(9)]
    for covariates in (None, sex[:, None].astype(float), rng.normal(size=(n, 2))):
        moved = (lambda v, o: None if v is None else v[o])
        expected_x = [max(0.0, scan1d_hk_x(g, y[o], cross_type, sex[o], moved(pgm, o), moved(covariates, o)).max())
                      for o in orders]
        expected_a = [max(0.0, scan1d_hk(autosomes, y[o], moved(covariates, o)).max()) for o in orders]
        maxima_a, maxima_x = xsp_maxima(autosomes, g, y, cross_type, sex, pgm, orders, orders, covariates=covariates)
        np.testing.assert_allclose(maxima_x, expected_x, rtol=0, atol=1e-11)
        np.testing.assert_allclose(maxima_a, expected_a, rtol=0, atol=1e-11)
        one_by_one = _x_maxima_moved(g, y, cross_type, sex, pgm, covariates, orders, batch=1)
        np.testing.assert_allclose(np.maximum(one_by_one, 0), expected_x, rtol=0, atol=1e-11)
    lods = [scan1d_hk_x(g, y[o], cross_type, sex[o], None if pgm is None else pgm[o]) for o in orders]
    assert np.allclose([lod[4] for lod in lods], 0, atol=1e-12)
