"""X-specific permutation thresholds as a stage option (``permutations.x_specific``, R/qtl's
``scanone(perm.Xsp = TRUE)``): ``qtlhpc run`` on R/qtl's own exports against R/qtl (two-sample KS tests
of the stored maxima, autosomes and X apart), brute-force checks of the stored maxima, and the same
numbers at 1, 2 and 3 ranks, over array tasks with their merge, and after a killed run resumes."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest
from scipy import stats

from qtlhpc.genetics.genoprob import calc_genoprob
from qtlhpc.genetics.hk import scan1d_hk
from qtlhpc.genetics.xchr import (chromosome_lengths, cross_states_to_x, scan1d_hk_x, x_permutation_counts,
                                  xsp_alphas, xsp_thresholds, xsp_unit_starts)
from qtlhpc.io.rqtl import read_rqtl_csv
from qtlhpc.methods.pepis.kernels.permutation import permutation_order
from qtlhpc.parallel.rng import unit_rng
from requirements import require
from test_rqtl_permutations import rqtl_permutations, small_x_cross

XSP = ("autosome_length_cM", "x_length_cM", "x_permutation_ids", "max_lod_1d_autosomes", "max_lod_1d_x",
       "alphas_autosomes", "alphas_x", "threshold_1d_autosomes", "threshold_1d_x")
NAMES = ("max_lod_1d", "threshold_1d") + XSP

CONFIG = """
[run]
output = "results.h5"
seed = SEED
stages = ["genoprob", "permutations"]
progress = false
[input]
format = "rqtl-csv"
cross_type = "CROSS"
file = "FILE"
LABELS
traits = ["TRAIT"]
COVARIATES
[genoprob]
step = STEP
error_prob = 1e-4
[varcomp]
traits = ["TRAIT"]
COVARIATES
[scan1d]
model = "hk"
[permutations]
n_permutations = N
scans = ["1d"]
batch = BATCH
alphas = [0.05, 0.2]
XSPECIFIC
"""


def config_text(file, cross_type, trait, n, *, labels=None, step=2.0, seed=3, batch=50, covariates=(),
                x_specific=None):
    return (CONFIG.replace("SEED", str(seed)).replace("CROSS", cross_type).replace("FILE", str(file))
            .replace("LABELS", f"genotype_labels = {list(labels)!r}".replace("'", '"') if labels else "")
            .replace("TRAIT", trait).replace("STEP", repr(float(step))).replace("BATCH", str(batch))
            .replace("N", str(n))
            .replace("COVARIATES", f"covariates = {list(covariates)!r}".replace("'", '"') if covariates else "")
            .replace("XSPECIFIC", "" if x_specific is None else f"x_specific = {str(x_specific).lower()}"))


def qtlhpc(*args, env=None, check=True):
    run = subprocess.run([sys.executable, "-m", "qtlhpc", *map(str, args)], capture_output=True, text=True,
                         timeout=600, env=None if env is None else dict(os.environ, **env))
    if check:
        assert run.returncode == 0, run.stderr[-3000:]
    return run


def stored(path, names=NAMES):
    with h5py.File(path, "r") as results:
        group = results["permutations"]
        return {name: group[name][()] for name in names if name in group}


# ------------------------------------------------------------------------------ against R/qtl


def quantile_se(sample, level, n_boot=1000):
    """Bootstrap standard error of the type-7 quantile at ``level`` of ``sample``."""
    rng = np.random.default_rng(0)
    sample = np.asarray(sample, dtype=float)
    draws = rng.choice(sample, size=(n_boot, sample.size))
    return float(np.std(np.quantile(draws, level, axis=1, method="linear")))


@pytest.mark.parametrize("name, n_permutations", [("hyper", 200), ("listeria", 100),
                                                  pytest.param("fake.f2", 60, marks=pytest.mark.slow)])
def test_stage_thresholds_have_rqtls_distribution(tmp_path, name, n_permutations):
    """``qtlhpc run`` on R/qtl's write.cross export: the stored autosome and X maxima against R/qtl's
    ``scanone(method = "hk", n.perm, perm.Xsp = TRUE)`` on the same file (KS), R's lengths and counts.
    hyper (all male) and listeria (all female) permute the phenotype alone (R/qtl's batch mode); fake.f2
    moves sex and pgm with it."""
    require("rqtl")
    r = rqtl_permutations(tmp_path, name, n_permutations)          # also writes tmp_path / "<name>.csv"
    cross_type, trait, labels = {"hyper": ("bc", "bp", ["BB", "BA", "AA"]),
                                 "listeria": ("f2", "T264", ["CC", "CB", "BB", "not BB", "not CC"]),
                                 "fake.f2": ("f2", "phenotype", None)}[name]    # fake.f2: both sexes, both pgm
    (tmp_path / "run.toml").write_text(config_text(tmp_path / f"{name}.csv", cross_type, trait, n_permutations,
                                                   labels=labels))
    qtlhpc("run", "all", tmp_path / "run.toml")
    out = stored(tmp_path / "results.h5")
    lengths = [float(out["autosome_length_cM"]), float(out["x_length_cM"])]
    np.testing.assert_allclose(lengths, r["L"], rtol=1e-9)
    maxima_a, maxima_x = out["max_lod_1d_autosomes"][:, 0], out["max_lod_1d_x"][:, 0]
    assert len(maxima_a) == len(r["permA"]) == n_permutations
    assert len(maxima_x) == len(r["permX"]) == x_permutation_counts(n_permutations, *lengths)
    np.testing.assert_array_equal(out["x_permutation_ids"], np.arange(len(maxima_x)))
    # the same distributions (the two sides draw different permutations)
    assert stats.ks_2samp(maxima_a, r["permA"]).pvalue > 1e-3
    assert stats.ks_2samp(maxima_x, r["permX"]).pvalue > 1e-3
    # the tests have power: the X's maxima are not the autosomes' (as a stage mixing them up would store)
    assert stats.ks_2samp(maxima_x, r["permA"]).pvalue < 1e-6
    assert stats.ks_2samp(out["max_lod_1d"][:, 0], r["permX"]).pvalue < 1e-6
    # stored thresholds: R/qtl's rule (summary.scanoneperm) on the stored maxima, and near R's own
    expected = xsp_thresholds(maxima_a, maxima_x, [0.05, 0.2], *lengths)
    np.testing.assert_allclose(out["threshold_1d_autosomes"][:, 0], expected[0], rtol=1e-12)
    np.testing.assert_allclose(out["threshold_1d_x"][:, 0], expected[1], rtol=1e-12)
    np.testing.assert_allclose(np.concatenate([out["alphas_autosomes"], out["alphas_x"]]),
                               np.concatenate(xsp_alphas([0.05, 0.2], *lengths)), rtol=1e-12)
    # and R's thresholds within Monte Carlo error (bootstrap standard errors of both sides' quantiles)
    ours = np.concatenate([out["threshold_1d_autosomes"][:, 0], out["threshold_1d_x"][:, 0]])
    levels = np.concatenate(xsp_alphas([0.05, 0.2], *lengths))
    samples = [(maxima_a, r["permA"])] * 2 + [(maxima_x, r["permX"])] * 2
    error = np.array([np.hypot(quantile_se(a, 1 - level), quantile_se(b, 1 - level))
                      for (a, b), level in zip(samples, levels)])
    assert np.all(np.abs(ours - r["thr"]) < 4 * error + 1e-9), (ours, r["thr"], error)
    # the genome-wide maxima of the same run: each permutation's larger part
    x_first = out["max_lod_1d_x"][xsp_unit_starts(n_permutations, len(maxima_x))[:-1], 0]
    np.testing.assert_allclose(out["max_lod_1d"][:, 0], np.maximum(maxima_a, x_first), rtol=0, atol=0)


# ------------------------------------------------------------------------------ brute force


def test_stored_maxima_are_the_permuted_scans(tmp_path):
    """Every stored maximum rescanned by brute force: autosome permutation k and X permutation ``s_k`` use
    permutation k's order, the other X ids their own stream; phenotype, covariate, sex and pgm move together."""
    small_x_cross(tmp_path / "x.csv")
    (tmp_path / "run.toml").write_text(config_text(tmp_path / "x.csv", "f2", "y", 5, step=10.0, seed=11, batch=2,
                                                   covariates=["sex"]))
    qtlhpc("run", "all", tmp_path / "run.toml")
    out = stored(tmp_path / "results.h5")
    cross = read_rqtl_csv(tmp_path / "x.csv", "f2", traits=["y"])
    probs = calc_genoprob(cross, step=10.0)
    x = probs.chromosomes == "X"
    lengths = chromosome_lengths(cross.positions, cross.chromosomes)
    n_x = x_permutation_counts(5, lengths["1"] + lengths["2"], lengths["X"])
    assert out["max_lod_1d_x"].shape == (n_x, 1) and n_x == 10
    g = cross_states_to_x(probs.probs[:, x], cross.x_classes(), "f2")
    y, sex, pgm = cross.phenotypes[:, 0], cross.sex, cross.pgm
    covariate = sex[:, None].astype(float)
    n = len(y)
    starts = xsp_unit_starts(5, n_x)
    for k in range(5):
        order = permutation_order(11, k, n)
        autosomes = scan1d_hk(probs.probs[:, ~x], y[order], covariate[order]).max()
        assert out["max_lod_1d_autosomes"][k, 0] == pytest.approx(max(autosomes, 0), abs=1e-10)
        for j in range(starts[k], starts[k + 1]):
            o = order if j == starts[k] else unit_rng(11, "permutation-x", j).permutation(n)
            on_x = scan1d_hk_x(g, y[o], "f2", sex[o], pgm[o], covariate[o]).max()
            assert out["max_lod_1d_x"][j, 0] == pytest.approx(max(on_x, 0), abs=1e-10)
        assert out["max_lod_1d"][k, 0] == max(out["max_lod_1d_autosomes"][k, 0], out["max_lod_1d_x"][starts[k], 0])
    # the report shows both thresholds at each level
    page = qtlhpc("report", tmp_path / "results.h5", "-o", tmp_path / "report").stdout.strip()
    text = open(page).read()
    assert "X-specific 1D LOD thresholds (R/qtl perm.Xsp): autosomes from 5 permutations, the X from 10" in text
    for value in (*out["threshold_1d_autosomes"][:, 0], *out["threshold_1d_x"][:, 0]):
        assert f">{value:.2f}<" in text


def test_x_specific_off_stores_genome_wide_thresholds_only_and_the_same_maxima(tmp_path):
    """Without covariates the genome-wide maxima do not depend on the option; off, no X-specific datasets."""
    small_x_cross(tmp_path / "x.csv")
    seen = {}
    for flag in (True, False):
        folder = tmp_path / str(flag)
        folder.mkdir()
        (folder / "run.toml").write_text(config_text(tmp_path / "x.csv", "f2", "y", 8, step=10.0, seed=5,
                                                     x_specific=flag))
        qtlhpc("run", "all", folder / "run.toml")
        seen[flag] = stored(folder / "results.h5")
    assert set(XSP) <= set(seen[True]) and not set(XSP) & set(seen[False])
    np.testing.assert_allclose(seen[True]["max_lod_1d"], seen[False]["max_lod_1d"], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(seen[True]["threshold_1d"], seen[False]["threshold_1d"], rtol=1e-12, atol=1e-12)


def test_unit_starts_cover_every_x_id_once():
    for n, n_x in ((5, 10), (7, 24), (100, 2508), (6, 4), (3, 3)):
        starts = xsp_unit_starts(n, n_x)
        assert starts[0] == 0 and starts[-1] == n_x and np.all(np.diff(starts) >= 0)
        if n_x >= n:
            assert np.all(np.diff(starts) >= 1)       # every unit owns its X id s_k (its genome-wide maximum)


# ------------------------------------------------------------------------------ ranks, arrays, resume


@pytest.mark.slow
def test_same_numbers_at_1_2_3_ranks_over_array_tasks_and_after_a_resume(tmp_path):
    from mpi_helpers import RANK_COUNTS, run_mpi

    small_x_cross(tmp_path / "x.csv")
    text = config_text(tmp_path / "x.csv", "f2", "y", 12, step=10.0, seed=7, batch=1, covariates=["sex"])
    seen = {}
    for ranks in RANK_COUNTS:
        folder = tmp_path / f"r{ranks}"
        folder.mkdir()
        (folder / "run.toml").write_text(text)
        run_mpi(ranks, ["-m", "qtlhpc", "run", "all", folder / "run.toml"], timeout=300)
        seen[ranks] = stored(folder / "results.h5")
    reference = seen[1]
    assert set(NAMES) <= set(reference)
    for ranks in RANK_COUNTS[1:]:
        for name in NAMES:
            np.testing.assert_array_equal(seen[ranks][name], reference[name], err_msg=f"{name} at {ranks} ranks")

    # array tasks (uneven ranges) and their merge
    folder = tmp_path / "array"
    folder.mkdir()
    (folder / "run.toml").write_text(text)
    qtlhpc("run", "genoprob", folder / "run.toml")
    tasks = []
    for index, units in enumerate(("0:5", "5:6", "6:12")):
        tasks.append(folder / f"task-{index}.h5")
        qtlhpc("run", "permutations", folder / "run.toml", "--units", units, "--unit-output", tasks[-1])
    refused = qtlhpc("run", "merge-permutations", folder / "run.toml", tasks[0], tasks[2], check=False)
    assert refused.returncode != 0 and "missing" in refused.stderr
    qtlhpc("run", "merge-permutations", folder / "run.toml", *tasks)
    merged = stored(folder / "results.h5")
    for name in NAMES:
        np.testing.assert_array_equal(merged[name], reference[name], err_msg=f"{name} after the merge")

    # a run killed mid-stage resumes to the same numbers
    folder = tmp_path / "resume"
    folder.mkdir()
    (folder / "run.toml").write_text(text)
    qtlhpc("run", "genoprob", folder / "run.toml")
    results = folder / "results.h5"
    process = subprocess.Popen([sys.executable, "-m", "qtlhpc", "run", "permutations", folder / "run.toml"],
                               env=dict(os.environ, QTLHPC_BLOCK_DELAY="0.3"), stdout=subprocess.DEVNULL,
                               stderr=subprocess.DEVNULL)
    deadline, done = time.monotonic() + 120, 0
    while time.monotonic() < deadline and process.poll() is None:
        try:
            with h5py.File(results, "r", locking=False) as h5:
                key = "permutations/_checkpoint/batches"
                done = int(h5[key][()].sum()) if key in h5 else 0
        except (OSError, RuntimeError, KeyError):  # metadata half-written by the run: read again
            done = 0
        if done >= 3:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.wait()
    with h5py.File(results, "r", locking=False) as h5:
        assert h5["permutations"].attrs["status"] == "running"
    assert 3 <= done < 12, f"the run was not caught mid-stage ({done} of 12 batches done)"
    resumed = qtlhpc("run", "permutations", folder / "run.toml")
    assert "resum" in resumed.stderr
    after = stored(results)
    for name in NAMES:
        np.testing.assert_array_equal(after[name], reference[name], err_msg=f"{name} after the resume")


def test_an_x_longer_than_the_autosomes_has_fewer_x_permutations(tmp_path):
    """L_X > L_A: fewer X than autosome permutations (R/qtl's count); a unit owning no X id still gets its
    genome-wide maximum from an X scan with its own order."""
    small_x_cross(tmp_path / "x.csv")
    lines = (tmp_path / "x.csv").read_text().splitlines()
    lines[2] = lines[2].rsplit(",", 3)[0] + ",0.0,50.0,120.0"           # the X's three markers
    (tmp_path / "x.csv").write_text("\n".join(lines) + "\n")
    (tmp_path / "run.toml").write_text(config_text(tmp_path / "x.csv", "f2", "y", 7, step=10.0, seed=2, batch=3))
    qtlhpc("run", "all", tmp_path / "run.toml")
    out = stored(tmp_path / "results.h5")
    assert float(out["x_length_cM"]) == 120.0 and float(out["autosome_length_cM"]) == 75.0
    n_x = x_permutation_counts(7, 75.0, 120.0)
    assert out["max_lod_1d_x"].shape == (n_x, 1) and n_x == 5
    cross = read_rqtl_csv(tmp_path / "x.csv", "f2", traits=["y"])
    probs = calc_genoprob(cross, step=10.0)
    x = probs.chromosomes == "X"
    g = cross_states_to_x(probs.probs[:, x], cross.x_classes(), "f2")
    y, sex, pgm = cross.phenotypes[:, 0], cross.sex, cross.pgm
    for k in range(7):
        order = permutation_order(2, k, len(y))
        whole = max(scan1d_hk(probs.probs[:, ~x], y[order]).max(), scan1d_hk_x(g, y[order], "f2", sex[order],
                                                                              pgm[order]).max(), 0)
        assert out["max_lod_1d"][k, 0] == pytest.approx(whole, abs=1e-10)
