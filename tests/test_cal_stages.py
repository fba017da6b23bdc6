"""CAL stages: the pipeline through the results file equals the API; the same numbers at 1, 2 and 3 ranks (real
mpirun, claimed units), as a SLURM-style array merged (with missing replicates named), and after a kill and
resume."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from mpi_helpers import RANK_COUNTS, run_mpi
from qtlhpc.methods.cal import search_networks
from qtlhpc.methods.cal.simulate import simulate, write_files
from qtlhpc.methods.cal.topology import topology
from qtlhpc.store import open_results

FIELDS = ("score", "censored", "inputs", "output", "nodes")   # seconds is wall time: not compared
PERMUTATIONS = 5


def write_config(folder, permutations=PERMUTATIONS, extra=""):
    paths = write_files(simulate(3, n_strains=24, n_loci=40, n_genes=24), folder)
    config = folder / "analysis.toml"
    config.write_text(f"""
[run]
output = "results.h5"
seed = 11
progress = false

[expression]
format = "tsv"
file = "{paths['expression'].name}"
annotation = "{paths['annotation'].name}"

[cal]
loci = "{paths['loci'].name}"
targets = "genes"
permutations = {permutations}
tolerance_quantile = 0.5
target_block = 3
custom_topologies = ["~A&~B"]
{extra}
""")
    return config


def qtlhpc(*args, env=None, check=True):
    proc = subprocess.run([sys.executable, "-m", "qtlhpc", *map(str, args)], capture_output=True, text=True, env=env)
    if check:
        assert proc.returncode == 0, proc.stderr[-3000:]
    return proc


def stored(path):
    with open_results(path) as results:
        out = {name: results.read(f"cal-search/{name}") for name in FIELDS + ("replicates",)}
        for name in ("pvalue", "qvalue", "pi0", "selected", "n_significant"):
            out[name] = results.read(f"cal-select/{name}")
        for name in ("searched", "target_values", "loci", "f_tol", "topology_names"):
            out[name] = results.read(f"cal-prepare/{name}")
    return out


def same(a, b):
    a, b = np.asarray(a), np.asarray(b)
    if a.dtype.kind == "f":
        return np.array_equal(a, b, equal_nan=True)
    return np.array_equal(a, b)


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cal-serial")
    config = write_config(folder)
    qtlhpc("run", "cal", config)
    return config, stored(folder / "results.h5")


def test_pipeline_equals_the_api(serial_run):
    _, out = serial_run
    tops = [topology(str(n)) for n in out["topology_names"]]
    assert "~A&~B" in [t.name for t in tops] and len(tops) == 10
    api = search_networks(out["target_values"][out["searched"]], out["loci"], tops, tolerance=float(out["f_tol"]),
                          seed=11, replicates=range(PERMUTATIONS + 1), target_block=5)
    for name in FIELDS:
        assert same(out[name], api[name]), name
    assert np.array_equal(out["replicates"], np.arange(PERMUTATIONS + 1))
    # replicate b >= 1 differs from the observed data (a permutation of the strains), and censoring is used
    assert not np.array_equal(out["score"][0], out["score"][1])
    assert out["censored"].any() and not out["censored"].all()


@pytest.mark.parametrize("ranks", [r for r in RANK_COUNTS if r > 1])
def test_ranks_give_the_same_numbers(serial_run, tmp_path, ranks):
    config = write_config(tmp_path)
    run_mpi(ranks, ["-m", "qtlhpc", "run", "cal", config], timeout=600)
    out = stored(tmp_path / "results.h5")
    for name, value in serial_run[1].items():
        assert same(out[name], value), name


@pytest.mark.slow
def test_array_tasks_merge_to_the_same_numbers(serial_run, tmp_path):
    config = write_config(tmp_path)
    qtlhpc("run", "expression", config)
    qtlhpc("run", "cal-prepare", config)
    tasks = [(0, 2), (2, 5), (5, PERMUTATIONS + 1)]
    files = []
    for a, b in tasks:
        files.append(tmp_path / f"task-{a}.h5")
        qtlhpc("run", "cal-search", config, "--units", f"{a}:{b}", "--unit-output", files[-1])
    refused = qtlhpc("run", "merge-cal-search", config, files[0], files[2], check=False)
    assert refused.returncode != 0 and "replicates 2:5 of 0:6" in refused.stderr
    qtlhpc("run", "merge-cal-search", config, *files)
    qtlhpc("run", "cal-select", config)
    out = stored(tmp_path / "results.h5")
    for name, value in serial_run[1].items():
        assert same(out[name], value), name


@pytest.mark.slow
def test_a_killed_run_resumes_to_the_same_numbers(serial_run, tmp_path):
    import h5py

    config = write_config(tmp_path)
    qtlhpc("run", "expression", config)
    qtlhpc("run", "cal-prepare", config)
    results = tmp_path / "results.h5"
    proc = subprocess.Popen([sys.executable, "-m", "qtlhpc", "run", "cal-search", config],
                            env=dict(os.environ, QTLHPC_BLOCK_DELAY="0.05"), stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline, done = time.monotonic() + 120, 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with h5py.File(results, "r", locking=False) as h5:
                key = "cal-search/_checkpoint/units"
                done = int(h5[key][()].sum()) if key in h5 else 0
        except (OSError, RuntimeError, KeyError):  # metadata half-written by the run: read again
            done = 0
        if done >= 20:
            break
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with h5py.File(results, "r", locking=False) as h5:
        total = h5["cal-search/_checkpoint/units"].shape[0]
        assert h5["cal-search"].attrs["status"] == "running"
    assert 20 <= done < total, f"the run was not caught mid-stage ({done} of {total} units done)"
    resumed = qtlhpc("run", "cal-search", config)
    assert "resumes" in resumed.stderr
    qtlhpc("run", "cal-select", config)
    out = stored(results)
    for name, value in serial_run[1].items():
        assert same(out[name], value), name


def test_bad_locus_matrix_is_named(tmp_path):
    config = write_config(tmp_path)
    loci = tmp_path / "loci.tsv"
    lines = loci.read_text().splitlines()
    fields = lines[3].split("\t")
    fields[5] = "2"
    lines[3] = "\t".join(fields)
    loci.write_text("\n".join(lines) + "\n")
    proc = qtlhpc("run", "cal", config, check=False)
    assert proc.returncode != 0
    assert "loci.tsv, line 4, column 6" in proc.stderr and "not 0 or 1" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_bad_topology_is_a_config_error(tmp_path):
    config = write_config(tmp_path, extra="")
    text = config.read_text().replace('custom_topologies = ["~A&~B"]', 'custom_topologies = ["A&D"]')
    config.write_text(text)
    proc = qtlhpc("run", "cal", config, check=False)
    assert proc.returncode != 0 and "'D'" in proc.stderr and "Traceback" not in proc.stderr


def test_report_and_export(serial_run, tmp_path):
    config, out = serial_run
    results = config.parent / "results.h5"
    qtlhpc("report", results, "-o", tmp_path / "report")
    page = (tmp_path / "report" / "index.html").read_text()
    assert "CAL logic networks" in page and "cal_score_q.png" in page and "cal_nulls.png" in page
    assert (tmp_path / "report" / "cal_nulls.png").stat().st_size > 1000
    table = qtlhpc("export", results, "cal-select/selected").stdout.splitlines()
    header = table[0].split("\t")
    assert header[:3] == ["target", "topology", "n_inputs"]
    chosen = out["selected"][out["selected"] >= 0]
    assert len(table) - 1 == chosen.size
    names = [str(out["topology_names"][j]) for j in chosen]
    assert [row.split("\t")[1] for row in table[1:]] == names
    if chosen.size:
        assert "cal_networks.png" in page
    every = qtlhpc("export", results, "cal-select/networks").stdout.splitlines()
    assert len(every) - 1 == out["searched"].size * out["topology_names"].size
