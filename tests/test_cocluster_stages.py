"""The co-clustering pipeline (expression -> cocluster-runs -> cocluster-matrix -> cocluster-fuzzy) on planted
co-clusters written by the simulator: the stored numbers equal the kernels', the same files at 1, 2 and 3 ranks,
an array run merged to the same numbers (a missing task named), a killed run resumes, runs = "auto"."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import scipy.sparse as sp
from sklearn.metrics import adjusted_rand_score

from mpi_helpers import RANK_COUNTS, run_mpi
from qtlhpc.methods.cocluster import distributed
from qtlhpc.methods.cocluster.simulate import PlantedDesign, simulate, write_expression_tsv
from qtlhpc.store import open_results

DESIGN = PlantedDesign(n_genes=90, n_conditions=30, n_clusters=5, condition_blocks=3, mean_sd=1.0, noise_sd=0.5,
                       n_shared=6, missing_rate=0.02)
RUNS, ITERATIONS, BURN_IN = 4, 12, 6


def write_config(directory, data_dir, runs=RUNS, extra="", burn_in=BURN_IN):
    config = directory / "analysis.toml"
    config.write_text(f"""
[run]
output = "results.h5"
seed = 11
progress = false

[expression]
format = "tsv"
file = "{data_dir / 'expression.tsv'}"
annotation = "{data_dir / 'genes.tsv'}"
orientation = "genes-in-rows"

[cocluster]
runs = {runs if isinstance(runs, int) else '"' + runs + '"'}
iterations = {ITERATIONS}
burn_in = {burn_in}
{extra}

[cocluster_fuzzy]
max_clusters = 40
""")
    return config


def qtlhpc(*args, env=None, check=True):
    proc = subprocess.run([sys.executable, "-m", "qtlhpc", *map(str, args)], capture_output=True, text=True, env=env)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


NAMES = ("cocluster-runs/samples", "cocluster-runs/score_trace", "cocluster-runs/final_partitions",
         "cocluster-matrix/indptr", "cocluster-matrix/indices", "cocluster-matrix/data", "cocluster-matrix/rho_halves",
         "cocluster-matrix/rho_by_k", "cocluster-matrix/entropy", "cocluster-fuzzy/membership_gene",
         "cocluster-fuzzy/membership_cluster", "cocluster-fuzzy/membership", "cocluster-fuzzy/prototype",
         "cocluster-fuzzy/lambda1", "cocluster-fuzzy/stop_reason", "cocluster-fuzzy/layout_counts")


def same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def stored(path, names=NAMES):
    with open_results(path) as results:
        return {name: results.read(name) for name in names}


@pytest.fixture(scope="module")
def planted(tmp_path_factory):
    data = simulate(DESIGN, seed=3)
    folder = tmp_path_factory.mktemp("planted")
    write_expression_tsv(data, folder)
    return data, folder


@pytest.fixture(scope="module")
def serial_run(planted, tmp_path_factory):
    directory = tmp_path_factory.mktemp("serial")
    config = write_config(directory, planted[1])
    qtlhpc("run", "cocluster", config)
    return config, stored(directory / "results.h5")


def test_stages_store_the_kernels_numbers(planted, serial_run):
    data, _ = planted
    _, out = serial_run
    expression = data.expression
    chain = dict(n_iterations=ITERATIONS, burn_in=BURN_IN)
    results = [distributed.one_run(expression, 11, run, **chain) for run in range(RUNS)]
    for run, result in enumerate(results):
        np.testing.assert_array_equal(out["cocluster-runs/samples"][run], result.samples)
        np.testing.assert_array_equal(out["cocluster-runs/score_trace"][run], result.score_trace)
    # F against a brute-force average of the indicator matrices
    brute = np.mean([(s[:, None] == s[None, :]) for r in results for s in r.samples], axis=0)
    F = sp.csr_matrix((out["cocluster-matrix/data"], out["cocluster-matrix/indices"],
                       out["cocluster-matrix/indptr"]), shape=brute.shape).toarray()
    np.testing.assert_allclose(F, brute, rtol=1e-14)
    halves = [np.mean([(s[:, None] == s[None, :]) for r in part for s in r.samples], axis=0)
              for part in (results[:2], results[2:])]
    cosine = (halves[0] * halves[1]).sum() / np.sqrt((halves[0] ** 2).sum() * (halves[1] ** 2).sum())
    assert float(out["cocluster-matrix/rho_halves"]) == pytest.approx(cosine, rel=1e-12)
    p = F[(F > 0) & (F < 1)]
    assert float(out["cocluster-matrix/entropy"]) == pytest.approx(
        -(p * np.log2(p) + (1 - p) * np.log2(1 - p)).sum() / F.size, rel=1e-12)
    assert out["cocluster-matrix/rho_by_k"].shape == (2, 2)
    assert str(out["cocluster-fuzzy/stop_reason"]) in ("exhausted", "degenerate", "negative", "max_clusters")


def test_planted_coclusters_are_recovered(planted, serial_run):
    data, _ = planted
    _, out = serial_run
    n_core = DESIGN.n_genes
    last = out["cocluster-runs/samples"][:, -1]
    scores = [adjusted_rand_score(data.gene_cluster[:n_core], labels[:n_core]) for labels in last]
    print("ARI of each run's last sample (planted genes):", np.round(scores, 3))
    assert min(scores) > 0.9
    # fuzzy clusters: each gene's strongest cluster recovers the planted one
    memberships = np.zeros((data.expression.shape[0], int(out["cocluster-fuzzy/membership_cluster"].max()) + 1))
    memberships[out["cocluster-fuzzy/membership_gene"], out["cocluster-fuzzy/membership_cluster"]] = \
        out["cocluster-fuzzy/membership"]
    strongest = memberships.argmax(axis=1)
    fuzzy_ari = adjusted_rand_score(data.gene_cluster[:n_core], strongest[:n_core])
    print("ARI of the strongest fuzzy cluster:", round(fuzzy_ari, 3))
    assert fuzzy_ari > 0.9


@pytest.mark.slow
@pytest.mark.mpi
@pytest.mark.parametrize("n_ranks", RANK_COUNTS)
def test_same_files_at_1_2_3_ranks(planted, serial_run, tmp_path, n_ranks):
    config = write_config(tmp_path, planted[1])
    run_mpi(n_ranks, ["-m", "qtlhpc", "run", "cocluster", config], timeout=600)
    parallel = stored(tmp_path / "results.h5")
    for name, value in serial_run[1].items():
        if name in ("cocluster-fuzzy/membership", "cocluster-fuzzy/lambda1"):
            np.testing.assert_allclose(parallel[name], value, rtol=1e-8, atol=1e-9, err_msg=name)
        elif name in ("cocluster-matrix/rho_halves", "cocluster-matrix/rho_by_k", "cocluster-matrix/entropy"):
            np.testing.assert_allclose(parallel[name], value, rtol=1e-13, err_msg=name)   # sums reduced by rank
        else:
            assert same(parallel[name], value), name


@pytest.mark.slow
def test_array_tasks_merge_to_the_same_numbers_and_a_missing_task_is_named(planted, serial_run, tmp_path):
    config = write_config(tmp_path, planted[1])
    qtlhpc("run", "expression", config)
    tasks = []
    for index, units in enumerate(("0:1", "1:3", "3:4")):
        task = tmp_path / f"task-{index}.h5"
        qtlhpc("run", "cocluster-runs", config, "--units", units, "--unit-output", task)
        tasks.append(task)
    refused = qtlhpc("run", "merge-cocluster-runs", config, tasks[0], tasks[2], check=False)
    assert refused.returncode == 2 and "runs 1:3" in refused.stderr
    qtlhpc("run", "merge-cocluster-runs", config, *tasks)
    qtlhpc("run", "cocluster-matrix", config)
    qtlhpc("run", "cocluster-fuzzy", config)
    merged = stored(tmp_path / "results.h5")
    for name, value in serial_run[1].items():
        assert same(merged[name], value), name


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_numbers(planted, serial_run, tmp_path):
    import h5py

    config = write_config(tmp_path, planted[1])
    qtlhpc("run", "expression", config)
    results = tmp_path / "results.h5"
    proc = subprocess.Popen([sys.executable, "-m", "qtlhpc", "run", "cocluster-runs", config],
                            env=dict(os.environ, QTLHPC_BLOCK_DELAY="1.0"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline, done = time.monotonic() + 120, 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with h5py.File(results, "r", locking=False) as h5:
                key = "cocluster-runs/_checkpoint/runs"
                done = int(h5[key][()].sum()) if key in h5 else 0
        except (OSError, RuntimeError, KeyError):  # metadata half-written by the run: read again
            done = 0
        if done >= 1:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 1 <= done < RUNS, f"the run was not caught mid-stage ({done} runs done)"
    with h5py.File(results, "r", locking=False) as h5:
        assert h5["cocluster-runs"].attrs["status"] == "running"
    resumed = qtlhpc("run", "cocluster", config)
    assert "resumes" in resumed.stderr
    for name, value in stored(results).items():
        assert same(value, serial_run[1][name]), name


def test_auto_runs_stop_when_the_halves_agree(planted, tmp_path):
    config = write_config(tmp_path, planted[1], runs="auto", extra="max_runs = 8\nauto_rho = 0.5\nauto_batch = 2")
    qtlhpc("run", "cocluster", config)
    with open_results(tmp_path / "results.h5") as results:
        used = int(results.read("cocluster-runs/runs_used"))
        rhos = results.read("cocluster-runs/auto_rho")
        samples = results.read("cocluster-runs/samples")
        n_runs = int(results.read("cocluster-matrix/n_runs"))
    assert used == n_runs == 2 * rhos.size
    assert rhos[-1] >= 0.5 and (rhos[:-1] < 0.5).all()
    # the rho recorded for the last round is the cosine of the two halves' F
    half = used // 2
    F = [np.mean([(s[:, None] == s[None, :]) for r in part for s in r], axis=0)
         for part in (samples[:half], samples[half:used])]
    assert rhos[-1] == pytest.approx((F[0] * F[1]).sum() / np.sqrt((F[0] ** 2).sum() * (F[1] ** 2).sum()), rel=1e-12)


def test_bad_settings_are_refused_naming_the_key(planted, tmp_path):
    config = write_config(tmp_path, planted[1], burn_in=12)
    qtlhpc("run", "expression", config)
    refused = qtlhpc("run", "cocluster-runs", config, check=False)
    assert refused.returncode != 0 and "burn_in = 12" in refused.stderr
    bad = write_config(tmp_path, planted[1], runs="many")
    refused = qtlhpc("run", "cocluster-runs", bad, check=False)
    assert refused.returncode != 0 and "[cocluster] runs" in refused.stderr and "auto" in refused.stderr


def test_report_draws_the_cocluster_sections(serial_run, tmp_path):
    config, out = serial_run
    qtlhpc("report", config.parent / "results.h5", "-o", tmp_path / "report")
    page = (tmp_path / "report" / "index.html").read_text()
    for name in ("cocluster_traces.png", "cocluster_rho_by_k.png", "cocluster_F.png", "cocluster_memberships.png"):
        assert name in page and (tmp_path / "report" / name).stat().st_size > 1000, name
    assert "Table 3" in page
    a, b = out["cocluster-fuzzy/layout_counts"][0]
    assert f"{a} ({b})" in page
