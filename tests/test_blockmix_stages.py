"""The block-mixture stages on a simulated backcross written to files (R/qtl csv, expression TSV + annotation):
the stored numbers are the API's numbers, the same at 1, 2 and 3 ranks (real mpirun), array tasks of
blockmix-select and blockmix-permutations merge to the same numbers (and a missing task is named), a killed scan
resumes to the same numbers (the last two under ``slow``: a dozen CLI processes each)."""

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from mpi_helpers import RANK_COUNTS, run_mpi
from qtlhpc.genetics.genoprob import genoprob_chromosome
from qtlhpc.io.writers import write_matrix_tsv, write_rqtl_csv
from qtlhpc.methods.blockmix import fitting
from qtlhpc.methods.blockmix.drivers.permutations import thresholds
from qtlhpc.methods.blockmix.simulate import Design, simulate
from qtlhpc.methods.blockmix.spots import group_spots

DESIGN = Design(n_individuals=60, n_genes=40, n_clusters=3, effect_sd=0.8, baseline_range=2.0)
SEED = 3
PERMUTATIONS = 5
STAGES = {
    "blockmix-select": ("k", "start", "cl", "bic", "iterations", "bic_curve", "k_hat", "mu", "var", "rho", "labels"),
    "blockmix-scan": ("lr", "cl_alt", "mu", "var", "rho", "iterations", "null_cl", "null_mu"),
    "blockmix-permutations": ("max_lr", "argmax", "thresholds"),
    "blockmix-tests": ("peak_position", "lr", "pvalue", "reject", "n_affected", "constrained_mu", "bootstrap_lr",
                       "bootstrap_pvalue", "network_corr", "network_difference_pvalue"),
}
BOOTSTRAP = 3


def write_inputs(directory):
    replicate = simulate(DESIGN, SEED, 0)
    cross = replicate.cross()
    write_rqtl_csv(cross, directory / "cross.csv")
    genes = cross.gene_names
    write_matrix_tsv(directory / "expression.tsv", cross.individuals, genes, replicate.expression)
    lines = ["gene_id\tchromosome\tstart\tend\tstrand"] + [f"{g}\t1\t{k + 1}\t{k + 1}\t+" for k, g in enumerate(genes)]
    (directory / "genes.tsv").write_text("\n".join(lines) + "\n")
    return replicate


def write_config(directory, scan_block=2, parallel_io="auto"):
    config = directory / "analysis.toml"
    config.write_text(f"""
[run]
output = "results.h5"
seed = {SEED}
progress = false
parallel_io = "{parallel_io}"

[input]
format = "rqtl-csv"
cross_type = "bc"
file = "cross.csv"

[expression]
format = "tsv"
file = "expression.tsv"
annotation = "genes.tsv"

[genoprob]
step = 10.0

[blockmix_select]
k_min = 2
k_max = 4
starts = 2

[blockmix_scan]
block = {scan_block}

[blockmix_permutations]
n_permutations = {PERMUTATIONS}
alpha = 0.2

[blockmix_tests]
max_positions = 1
bootstrap = {BOOTSTRAP}
""")
    return config


def qtlhpc(*args, env=None, check=True):
    proc = subprocess.run([sys.executable, "-m", "qtlhpc", *map(str, args)], capture_output=True, text=True, env=env)
    if check:
        assert proc.returncode == 0, proc.stderr
    return proc


def stored(path, stages=STAGES):
    out = {}
    with h5py.File(path, "r", locking=False) as h5:
        for stage, names in stages.items():
            for name in names:
                out[f"{stage}/{name}"] = h5[f"{stage}/{name}"][()]
    return out


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    return np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory):
    directory = tmp_path_factory.mktemp("serial")
    replicate = write_inputs(directory)
    config = write_config(directory)
    qtlhpc("run", "blockmix", config)
    return directory, config, replicate, stored(directory / "results.h5")


def test_stored_numbers_are_the_api_numbers(serial_run):
    directory, _, replicate, values = serial_run
    Y = replicate.expression
    em = fitting.EMSettings(tol=1e-7, max_iter=300)
    units = [fitting.fit_start(Y, k, 2, SEED, s, em) for k in (2, 3, 4) for s in (0, 1)]
    np.testing.assert_array_equal(values["blockmix-select/cl"], [u.cl for u in units])
    best = fitting.best_per_k(units)
    k_hat = min(best, key=lambda k: best[k].bic)
    assert values["blockmix-select/k_hat"] == k_hat == DESIGN.n_clusters
    geno = genoprob_chromosome(replicate.genotypes, replicate.marker_positions, "bc", step=10.0)
    null = fitting.fit_null(Y, best[k_hat].mu, best[k_hat].var, best[k_hat].rho, best[k_hat].pi)
    assert values["blockmix-scan/null_cl"] == null.cl
    lr = [fitting.fit_position(Y, np.ascontiguousarray(geno.probs[:, p]), null).lr for p in range(geno.probs.shape[1])]
    np.testing.assert_array_equal(values["blockmix-scan/lr"], lr)
    assert min(lr) >= 0.0
    maxima = [fitting.permutation_maximum(Y, geno.probs, null, SEED, r)[0] for r in range(PERMUTATIONS)]
    np.testing.assert_array_equal(values["blockmix-permutations/max_lr"], maxima)
    np.testing.assert_array_equal(values["blockmix-permutations/thresholds"],
                                  thresholds(np.array(maxima), np.array([0.01, 0.05, 0.1, 0.2])))
    # the planted eQTL (24 cM; grid 0, 10, ..., 50) is far above every permutation maximum
    assert values["blockmix-scan/lr"].max() > max(maxima)
    assert len(values["blockmix-tests/peak_position"]) == 1
    assert np.all(values["blockmix-tests/lr"] > -1e-6 * abs(values["blockmix-scan/cl_alt"].max()))
    check_tests_stage(values, Y, geno.probs, null)
    # spots: the positions at or above the threshold at alpha = 0.2 (the last level), grouped
    spots = group_spots(np.full(len(lr), "1"), lr, values["blockmix-permutations/thresholds"][-1])
    with h5py.File(directory / "results.h5", "r", locking=False) as h5:
        tests = h5["blockmix-tests"]
        assert tests["spot_label"][()].astype(str).tolist() == spots.label.tolist() and len(spots.label) >= 1
        for name in ("first", "last", "best", "count"):
            np.testing.assert_array_equal(tests[f"spot_{name}"][()], getattr(spots, name))
        assert tests["peak_spot"][()].tolist() == [0]


def check_tests_stage(values, Y, probs, null):
    """blockmix-tests: each constrained fit, bootstrap replicate and network equals the API's."""
    from qtlhpc.methods.blockmix import kernels, networks

    position = int(values["blockmix-tests/peak_position"][0])
    pi = np.ascontiguousarray(probs[:, position])
    mu, var, rho = (values[f"blockmix-scan/{name}"][position] for name in ("mu", "var", "rho"))
    full = fitting.PositionFit(values["blockmix-scan/lr"][position], values["blockmix-scan/cl_alt"][position],
                               np.nan, mu, var, rho, 0, True, False, np.empty((0, 3)))
    units = fitting.test_units(2, 3)
    boot = values["blockmix-tests/bootstrap_lr"][0]
    assert boot.shape == (len(units), BOOTSTRAP)
    for t, unit in enumerate(units):
        lr, fit = fitting.constrained_lr(Y, pi, full, *unit, null=null)
        assert values["blockmix-tests/lr"][0, t] == lr
        np.testing.assert_array_equal(values["blockmix-tests/constrained_mu"][0, t], fit.mu)
        want = [fitting.bootstrap_lr(pi, fit.mu, fit.var, fit.rho, Y.shape[1], *unit, SEED, position, t, r)
                for r in range(BOOTSTRAP)]
        np.testing.assert_array_equal(boot[t], want)
    np.testing.assert_array_equal(values["blockmix-tests/bootstrap_pvalue"][0],
                                  fitting.bootstrap_pvalue(values["blockmix-tests/lr"][0], boot))
    column = kernels.posterior(kernels.estep_stats(Y, pi, rho, mu, var), pi, rho).column
    found = networks.genotype_networks(Y, column, pi)
    np.testing.assert_array_equal(values["blockmix-tests/network_corr"][0], found.corr)
    np.testing.assert_array_equal(values["blockmix-tests/network_difference_pvalue"][0], found.pvalue)


@pytest.mark.parametrize("n_ranks", RANK_COUNTS)
def test_same_numbers_at_1_2_3_ranks(serial_run, tmp_path, n_ranks):
    """A fresh run (new files, same seed) under mpirun at 1, 2, 3 ranks gives bit-identical datasets: seeded
    determinism and rank independence at once."""
    write_inputs(tmp_path)
    config = write_config(tmp_path)
    run_mpi(n_ranks, ["-m", "qtlhpc", "run", "blockmix", config], timeout=600)
    parallel = stored(tmp_path / "results.h5")
    for name, value in serial_run[3].items():
        assert same(parallel[name], value), name


@pytest.mark.slow
def test_array_tasks_merge_to_the_same_numbers_and_a_missing_task_is_named(serial_run, tmp_path):
    write_inputs(tmp_path)
    config = write_config(tmp_path)
    qtlhpc("run", "expression", config)
    qtlhpc("run", "genoprob", config)
    select_tasks = []
    for index, units in enumerate(("0:1", "1:4", "4:6")):
        select_tasks.append(tmp_path / f"select-{index}.h5")
        qtlhpc("run", "blockmix-select", config, "--units", units, "--unit-output", select_tasks[-1])
    refused = qtlhpc("run", "blockmix-merge-select", config, select_tasks[0], select_tasks[2], check=False)
    assert refused.returncode == 2 and "units 1:4" in refused.stderr
    qtlhpc("run", "blockmix-merge-select", config, *select_tasks)
    qtlhpc("run", "blockmix-scan", config)
    tasks = []
    for index, units in enumerate(("0:2", "2:3", "3:5")):
        tasks.append(tmp_path / f"perm-{index}.h5")
        qtlhpc("run", "blockmix-permutations", config, "--units", units, "--unit-output", tasks[-1])
    refused = qtlhpc("run", "blockmix-merge-permutations", config, tasks[0], tasks[2], check=False)
    assert refused.returncode == 2 and "permutations 2:3" in refused.stderr
    qtlhpc("run", "blockmix-merge-permutations", config, *tasks)
    merged = stored(tmp_path / "results.h5", {k: v for k, v in STAGES.items() if k != "blockmix-tests"})
    for name, value in merged.items():
        assert same(value, serial_run[3][name]), name


@pytest.mark.slow
def test_a_killed_scan_resumes_to_the_same_numbers(serial_run, tmp_path):
    write_inputs(tmp_path)
    config = write_config(tmp_path, scan_block=1)
    for stage in ("expression", "genoprob", "blockmix-select"):
        qtlhpc("run", stage, config)
    results = tmp_path / "results.h5"
    env = dict(os.environ, QTLHPC_BLOCK_DELAY="0.5")
    proc = subprocess.Popen([sys.executable, "-m", "qtlhpc", "run", "blockmix-scan", config], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, done = time.monotonic() + 120, 0
    key = "blockmix-scan/_checkpoint/positions"
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with h5py.File(results, "r", locking=False) as h5:
                done = int(h5[key][()].sum()) if key in h5 else 0
        except (OSError, RuntimeError, KeyError):  # metadata half-written by the run: read again
            done = 0
        if done >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 2 <= done < 6, f"the run was not caught mid-stage ({done} blocks done)"
    with h5py.File(results, "r", locking=False) as h5:
        assert h5["blockmix-scan"].attrs["status"] == "running"
    resumed = qtlhpc("run", "blockmix-scan", config)
    assert "resumes" in resumed.stderr
    values = stored(results, {"blockmix-scan": STAGES["blockmix-scan"]})
    for name, value in values.items():
        assert same(value, serial_run[3][name]), name


@pytest.mark.slow
def test_a_killed_bootstrap_resumes_to_the_same_numbers(serial_run, tmp_path):
    """SIGKILL during the bootstrap blocks of blockmix-tests (after at least 2 of its 12 blocks); the rerun keeps
    the finished blocks and ends with the uninterrupted run's numbers."""
    write_inputs(tmp_path)
    config = write_config(tmp_path)
    for stage in ("expression", "genoprob", "blockmix-select", "blockmix-scan", "blockmix-permutations"):
        qtlhpc("run", stage, config)
    results = tmp_path / "results.h5"
    env = dict(os.environ, QTLHPC_BLOCK_DELAY="0.5")
    proc = subprocess.Popen([sys.executable, "-m", "qtlhpc", "run", "blockmix-tests", config], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, done = time.monotonic() + 120, 0
    key = "blockmix-tests/_checkpoint/bootstrap"
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with h5py.File(results, "r", locking=False) as h5:
                done = int(h5[key][()].sum()) if key in h5 else 0
        except (OSError, RuntimeError, KeyError):  # metadata half-written by the run: read again
            done = 0
        if done >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 2 <= done < 12, done
    resumed = qtlhpc("run", "blockmix-tests", config)
    assert "resumes" in resumed.stderr
    values = stored(results, {"blockmix-tests": STAGES["blockmix-tests"]})
    for name, value in values.items():
        assert same(value, serial_run[3][name]), name


def test_report_draws_the_blockmix_section(serial_run, tmp_path):
    directory = serial_run[0]
    out = tmp_path / "report"
    qtlhpc("report", directory / "results.h5", "-o", out)
    page = (out / "index.html").read_text()
    assert "Block-mixture eQTL clustering" in page
    for name in ("blockmix_bic.png", "blockmix_profile.png", "blockmix_heatmap.png", "blockmix_affected.png",
                 "blockmix_distances.png", "blockmix_networks.png"):
        assert (out / name).stat().st_size > 1000 and name in page
    assert f"K-hat = {DESIGN.n_clusters} gene clusters" in page
    assert "clusters affected (bootstrap, B = 3)" in page and "differs most between genotypes" in page
    assert "Spots: significant positions" in page


def test_bad_expression_value_is_named(tmp_path):
    write_inputs(tmp_path)
    text = (tmp_path / "expression.tsv").read_text().splitlines()
    fields = text[3].split("\t")
    fields[2] = "NA"
    text[3] = "\t".join(fields)
    (tmp_path / "expression.tsv").write_text("\n".join(text) + "\n")
    config = write_config(tmp_path)
    proc = qtlhpc("run", "blockmix", config, check=False)
    assert proc.returncode != 0
    assert "not finite" in proc.stderr or "missing" in proc.stderr, proc.stderr[-2000:]
