"""SEM stages (sem-edn, sem-search, sem-merge) on the 12-gene simulated cross of test_sem_inputs.py, after the
eQTL stages: the stored numbers equal the Python API's ``search.search``; 1, 2 and 3 ranks (real mpirun) give
the same datasets; a run killed mid-stage resumes keeping its finished paths; array tasks merged equal the
direct run and a missing task is named; the report and the TSV / GraphML beside the results file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import networkx as nx
import numpy as np
import pytest

from mpi_helpers import RANK_COUNTS, run_mpi
from qtlhpc.methods.sem import kernels as K
from qtlhpc.methods.sem import search as S
from qtlhpc.methods.sem.inputs import network_from_arrays
from qtlhpc.store import open_results
from test_sem_inputs import EDN_NAMES, qtlhpc, write_config

N_PATHS = 4
SEARCH = f"n_paths = {N_PATHS}\nw = 0.5\ndelta = 2.0"
PER_PATH = ("paths", "path_n_accepted", "path_evaluations", "path_models_visited", "path_guard", "path_edge_count",
            "accepted_mask", "accepted_loglik", "accepted_n_params", "accepted_ic")
SUMMARY = ("model_mask", "model_loglik", "model_n_params", "model_ic", "model_paths", "inclusion_frequency",
           "best_mask", "best_coefficient", "best_sigma2", "best_in_cycle", "best_under_identified", "best_loglik",
           "best_ic", "best_n_params", "best_fit_loglik", "delta", "t_ow", "seed", "guard_names")


def stored(path):
    with open_results(path) as results:
        out = {f"sem-search/{name}": results.read(f"sem-search/{name}") for name in PER_PATH + SUMMARY}
        out.update({f"sem-edn/{name}": results.read(f"sem-edn/{name}") for name in EDN_NAMES})
    return out


def same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return a.shape == b.shape and np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def assert_same(found, expected, names=None):
    for name in names or expected:
        assert same(found[name], expected[name]), name


def api_search(out, n_paths=N_PATHS, w=0.5, delta=2.0, seed=11):
    Y, X = out["sem-edn/expression"], out["sem-edn/genotypes"]
    net = network_from_arrays(Y.shape[1], X.shape[1], {k.split("/")[1]: v for k, v in out.items()
                                                        if k.startswith("sem-edn/")})
    return net, Y, X, S.search(Y, X, net, S.SearchOptions(delta=delta, w=w), n_paths=n_paths, seed=seed)


@pytest.fixture(scope="module")
def inputs(tmp_path_factory):
    folder = tmp_path_factory.mktemp("sem-inputs")
    write_config(folder)
    return folder


@pytest.fixture(scope="module")
def serial_run(inputs, tmp_path_factory):
    folder = tmp_path_factory.mktemp("sem-serial")
    config = write_config(folder, search=SEARCH, sources=inputs)
    qtlhpc("run", "sem", config)
    return config, stored(folder / "results.h5")


def test_stored_numbers_equal_the_api(serial_run):
    config, out = serial_run
    net, Y, X, result = api_search(out)
    assert np.array_equal(out["sem-search/paths"], np.arange(N_PATHS))
    for k, path in enumerate(result.paths):
        assert out["sem-search/path_n_accepted"][k] == len(path.accepted)
        assert out["sem-search/path_evaluations"][k] == path.evaluations
        assert out["sem-search/path_models_visited"][k] == path.models_visited
        assert out["sem-search/path_guard"][k] == 0 and path.guard == ""
        for j, a in enumerate(path.accepted):
            assert np.array_equal(out["sem-search/accepted_mask"][k, j], a.mask)
            assert out["sem-search/accepted_loglik"][k, j] == a.loglik
            assert out["sem-search/accepted_n_params"][k, j] == a.n_params
            assert out["sem-search/accepted_ic"][k, j] == a.ic
        assert np.isnan(out["sem-search/accepted_ic"][k, len(path.accepted):]).all()
    # the paths differ (w = 0.5 follows weak improvements at random)
    assert len(set(out["sem-search/path_evaluations"].tolist())) > 1
    models = result.accepted
    assert out["sem-search/model_ic"].tolist() == [a.ic for a in models]
    assert np.array_equal(out["sem-search/model_mask"], np.array([a.mask for a in models]))
    assert np.array_equal(out["sem-search/inclusion_frequency"], result.inclusion_frequency())
    assert np.array_equal(out["sem-search/best_mask"], result.best.mask)
    assert out["sem-search/best_ic"] == result.best.ic and out["sem-search/delta"] == 2.0
    assert out["sem-search/best_ic"] == pytest.approx(
        K.information_criterion(float(out["sem-search/best_loglik"]), int(out["sem-search/best_n_params"]),
                                Y.shape[0], 2.0), abs=1e-9)
    assert out["sem-search/t_ow"] == pytest.approx(-2.0 * np.log(Y.shape[0]) - 2 * np.log(20.0))
    # the coefficients are the ML fit of the best model
    fit = K.fit_model(Y, X, *net.edges_of(result.best.mask))
    coefficient = out["sem-search/best_coefficient"]
    for e, (t, h) in enumerate(net.gene_edges):
        assert (coefficient[e] == fit.B[h, t]) if result.best.mask[e] else np.isnan(coefficient[e])
    for j, (x, h) in enumerate(net.qtl_edges):
        e = net.d_gene + j
        assert (coefficient[e] == fit.F[h, x]) if result.best.mask[e] else np.isnan(coefficient[e])
    assert out["sem-search/best_fit_loglik"] == pytest.approx(fit.loglik)


def test_planted_gene_edges_are_in_the_best_model(serial_run):
    """The planted cis-trans and trans effects (all 1.0 in the simulated cross) are kept with coefficients near 1."""
    _, out = serial_run
    gene_edges = ~out["sem-edn/edge_is_eqtl"]
    assert gene_edges.sum() == 6
    assert out["sem-search/best_mask"][gene_edges].all()
    assert np.abs(out["sem-search/best_coefficient"][gene_edges] - 1.0).max() < 0.3


@pytest.mark.parametrize("ranks", RANK_COUNTS)
def test_ranks_give_the_same_datasets(serial_run, inputs, tmp_path, ranks):
    """With an MPI-enabled h5py the ranks claim paths and write their own blocks; otherwise they take static
    shares and rank 0 writes (parallel_io = auto chooses)."""
    config = write_config(tmp_path, search=SEARCH, sources=inputs)
    run_mpi(ranks, ["-m", "qtlhpc", "run", "sem", config], timeout=600)
    assert_same(stored(tmp_path / "results.h5"), serial_run[1])


@pytest.mark.slow
def test_array_tasks_merge_to_the_direct_run(serial_run, inputs, tmp_path):
    config = write_config(tmp_path, search=SEARCH, sources=inputs)
    qtlhpc("run", "eqtl-cross", config)
    qtlhpc("run", "sem-edn", config)
    tasks = [(0, 1), (1, 3), (3, N_PATHS)]
    files = []
    for a, b in tasks:
        files.append(tmp_path / f"task-{a}.h5")
        qtlhpc("run", "sem-search", config, "--units", f"{a}:{b}", "--unit-output", files[-1])
    refused = qtlhpc("run", "sem-merge", config, files[0], files[2], check=False)
    assert refused.returncode != 0 and "sem-search paths 1:3 of 0:4" in refused.stderr
    assert "Traceback" not in refused.stderr
    qtlhpc("run", "sem-merge", config, *files)
    assert_same(stored(tmp_path / "results.h5"), serial_run[1])


@pytest.mark.slow
def test_a_killed_run_resumes_keeping_finished_paths(inputs, tmp_path):
    import h5py

    n_paths = 8
    config = write_config(tmp_path, search=f"n_paths = {n_paths}\nw = 0.5", sources=inputs)
    qtlhpc("run", "eqtl-cross", config)
    qtlhpc("run", "sem-edn", config)
    results = tmp_path / "results.h5"
    proc = subprocess.Popen([sys.executable, "-m", "qtlhpc", "run", "sem-search", config],
                            env=dict(os.environ, QTLHPC_BLOCK_DELAY="0.7"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    key = "sem-search/_checkpoint/paths"
    deadline, done = time.monotonic() + 120, 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with h5py.File(results, "r", locking=False) as h5:
                done = int(h5[key][()].sum()) if key in h5 else 0
        except (OSError, RuntimeError, KeyError):  # metadata half-written by the run: read again
            done = 0
        if done >= 2:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with h5py.File(results, "r", locking=False) as h5:
        assert h5["sem-search"].attrs["status"] == "running"
        kept = h5[key][()].astype(bool)
        before = {name: h5[f"sem-search/{name}"][()] for name in PER_PATH[1:]}
    assert 2 <= kept.sum() < n_paths, f"the run was not caught mid-stage ({kept.sum()} of {n_paths} paths done)"
    resumed = qtlhpc("run", "sem-search", config)
    assert "resumes" in resumed.stderr
    assert f"{int(kept.sum())} of {n_paths} paths already in the file (kept), {n_paths - int(kept.sum())} to " \
           "compute" in resumed.stderr
    out = stored(results)
    for name, value in before.items():     # the finished paths are kept as they were
        assert same(out[f"sem-search/{name}"][kept], value[kept]), name
    _, _, _, result = api_search(out, n_paths=n_paths)
    assert out["sem-search/path_evaluations"].tolist() == [p.evaluations for p in result.paths]
    assert np.array_equal(out["sem-search/inclusion_frequency"], result.inclusion_frequency())
    assert out["sem-search/model_ic"].tolist() == [a.ic for a in result.accepted]


def test_report_and_exports_beside_the_results(serial_run, tmp_path):
    config, out = serial_run
    results = config.parent / "results.h5"
    tsv = results.with_name("results.h5.sem_edges.tsv")
    lines = tsv.read_text().splitlines()
    assert lines[0].split("\t") == ["source", "target", "kind", "in_best", "inclusion_frequency", "coefficient",
                                    "in_cycle"]
    d = out["sem-search/best_mask"].size
    assert len(lines) == d + 1
    best_rows = [line.split("\t") for line in lines[1:] if line.split("\t")[3] == "1"]
    assert len(best_rows) == int(out["sem-search/best_mask"].sum())
    coefficients = out["sem-search/best_coefficient"][out["sem-search/best_mask"]]
    assert np.allclose(sorted(float(r[5]) for r in best_rows), sorted(coefficients))
    graph = nx.read_graphml(results.with_name("results.h5.sem_network.graphml"))
    assert graph.number_of_edges() == int(out["sem-search/best_mask"].sum())
    qtlhpc("report", results, "-o", tmp_path / "report")
    page = (tmp_path / "report" / "index.html").read_text()
    assert "SEM gene networks" in page and "sem_network.png" in page and "Edges of the best model" in page
    assert (tmp_path / "report" / "sem_network.png").stat().st_size > 1000


def test_bad_search_option_is_a_config_error(inputs, tmp_path):
    config = write_config(tmp_path, search="threshold = 3.0", sources=inputs)
    proc = qtlhpc("run", "sem", config, check=False)
    assert proc.returncode != 0 and "threshold" in proc.stderr and "Traceback" not in proc.stderr


def test_summary_marks_cycles_and_counts_every_accepted_model():
    """summarise() on a planted 3-cycle: in_cycle equals networkx's cycles of the best model; the inclusion
    frequencies equal the API's also when only one model per path is stored; the coefficients are the ML fit."""
    from qtlhpc.methods.sem.distributed import PATH_FIELDS, path_record, summarise

    rng = np.random.default_rng(5)
    p, N = 4, 300
    B = np.zeros((p, p))
    B[1, 0], B[2, 1], B[0, 2], B[3, 2] = 0.5, 0.5, 0.4, 0.6
    X = rng.integers(0, 2, (N, p)).astype(float)
    Y = K.simulate_linear(B, np.eye(p), np.full(p, 0.3), X, rng)
    net = S.Network(p, p, [(0, 1), (1, 2), (2, 0), (2, 3), (3, 1)], [(k, k) for k in range(p)],
                    [np.array([5 + k]) for k in range(p)])
    result = S.search(Y, X, net, S.SearchOptions(delta=2.0, w=0.5), n_paths=3, seed=2)
    for keep in (1, 50):
        records = [path_record(path, net.d, keep) for path in result.paths]
        stacked = {name: np.stack([r[name] for r in records]) for name in PATH_FIELDS}
        out = summarise(stacked, net, Y, X)
        assert np.array_equal(out["inclusion_frequency"], result.inclusion_frequency())
        assert np.array_equal(out["best_mask"], result.best.mask)
    graph = nx.DiGraph([tuple(e) for e in net.edges_of(result.best.mask)[0]])
    on_cycle = {(a, b) for cycle in nx.simple_cycles(graph) for a, b in zip(cycle, cycle[1:] + cycle[:1])}
    assert {(0, 1), (1, 2), (2, 0)} <= on_cycle
    expected = [bool(result.best.mask[e]) and (int(t), int(h)) in on_cycle for e, (t, h) in enumerate(net.gene_edges)]
    assert out["best_in_cycle"][:net.d_gene].tolist() == expected
    assert not out["best_in_cycle"][net.d_gene:].any()
    assert out["best_coefficient"][0] == pytest.approx(0.5, abs=0.1)
    assert out["best_coefficient"][2] == pytest.approx(0.4, abs=0.1)


def test_plan_reads_the_edn_sizes_from_the_results(serial_run):
    """`qtlhpc plan` of a sem config plans sem-search with the EDN's sizes from the results file, by the formula."""
    from qtlhpc.cluster.plan import ProblemSize, plan
    from qtlhpc.methods.sem import stages as St

    config, out = serial_run
    text = config.read_text().replace("progress = false", 'progress = false\nstages = ["sem"]')
    planned = config.with_name("plan.toml")
    planned.write_text(text)
    proc = qtlhpc("plan", planned, "--ranks", "2")
    rows = [line.split()[0] for line in proc.stdout.splitlines()[2:] if line and not line.startswith(("memory",
                                                                                                      "warning"))]
    assert rows == ["cross-eqtl", "cross-trans", "sem-search"], proc.stdout
    p, q, d = (out[f"sem-edn/{n}"].size for n in ("gene_rows", "eqtl_markers", "edge_tail"))
    size = ProblemSize(n_individuals=100, n_markers=40, n_traits=12, n_sem_paths=N_PATHS, n_edn_genes=p,
                       n_edn_eqtl=q, n_edn_edges=d)
    one, two = (plan(size, ranks=r, stages=["sem-search"], base_memory=0)[0] for r in (1, 2))
    expected = 16 * 100 * (p + q) + 24 * p * p + 1024 * 0.4 * 100 * d * N_PATHS + 2000 * d
    assert one.memory_per_rank == pytest.approx(expected)
    assert two.memory_per_rank < one.memory_per_rank and two.seconds == pytest.approx(one.seconds / 2)
    assert one.seconds == pytest.approx(N_PATHS * 100 * d / St.EVALUATION_RATE)
    line = next(line for line in proc.stdout.splitlines() if line.startswith("sem-search"))
    assert line.split()[1] == "2"


def test_the_example_config_is_valid_and_shown_in_the_docs():
    from pathlib import Path

    from qtlhpc.config import Config

    root = Path(__file__).resolve().parents[1]
    example = root / "configs" / "sem.toml"
    config = Config.load(example)
    assert config.section("sem_search")["n_paths"] == 8 and config.section("sem_search")["delta"] == 2.0
    assert config.section("sem_edn")["regions"] == "cis+pc" and config.section("slurm")["array_tasks"] == 4
    body = "".join(line + "\n" for line in example.read_text().splitlines() if not line.startswith("# "))
    assert "```toml\n" + body + "```" in (root / "docs" / "sem.md").read_text()


def test_a_search_option_change_reruns_the_search_alone_and_guard_rails_are_stored(serial_run, tmp_path):
    import shutil

    from qtlhpc.methods.sem.distributed import PATH_FIELDS, path_record, summarise

    config, out = serial_run
    for name in ("cross.csv", "expression.tsv", "genes.tsv", "markers_bp.tsv", "results.h5"):
        shutil.copy(config.parent / name, tmp_path / name)
    text = config.read_text().replace("[sem_search]\n", "[sem_search]\nmax_evaluations = 200\n")
    (tmp_path / "analysis.toml").write_text(text)
    net, Y, X, _ = api_search(out)
    result = S.search(Y, X, net, S.SearchOptions(delta=2.0, w=0.5, max_evaluations=200), n_paths=N_PATHS, seed=11)
    guards = [p.guard for p in result.paths]
    hit = guards.count("max_evaluations")
    assert 0 < hit < N_PATHS
    proc = qtlhpc("run", "sem", tmp_path / "analysis.toml")
    assert "stage 'sem-edn' is complete with this configuration: skipped" in proc.stderr
    assert f"guard rails hit on {hit} of {N_PATHS} paths (max_evaluations)" in proc.stderr
    found = stored(tmp_path / "results.h5")
    assert_same(found, out, [name for name in out if name.startswith("sem-edn/")])
    assert found["sem-search/path_guard"].tolist() == [2 if g else 0 for g in guards]
    assert found["sem-search/guard_names"].astype(str).tolist() == ["max_candidates", "max_evaluations"]
    assert found["sem-search/path_evaluations"].tolist() == [p.evaluations for p in result.paths]
    assert found["sem-search/model_ic"].tolist() == [a.ic for a in result.accepted]
    assert np.array_equal(found["sem-search/inclusion_frequency"], result.inclusion_frequency())
    # a guard rail that stops every path early: each path still reports the best model it evaluated
    stopped = S.search(Y, X, net, S.SearchOptions(delta=2.0, max_evaluations=30), n_paths=2, seed=11)
    assert all(p.guard and len(p.accepted) == 1 for p in stopped.paths)
    records = [path_record(p, net.d, 5) for p in stopped.paths]
    summary = summarise({name: np.stack([r[name] for r in records]) for name in PATH_FIELDS}, net, Y, X)
    assert summary["model_ic"].tolist() == [a.ic for a in stopped.accepted]
    assert np.array_equal(summary["best_mask"], stopped.best.mask) and summary["best_ic"] == stopped.best.ic
