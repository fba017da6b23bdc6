"""The real PEPIS pipeline on the private single-node SLURM, checked against the same pipeline under mpirun.

Each test simulates the same small F2 cross (``qtlhpc simulate``), submits ``jobs/pepis.toml`` for it with
``qtlhpc submit`` on the SLURM of ``tests/slurm_cluster.py`` and compares every dataset of the results with
one direct ``mpirun -n 2 ... qtlhpc run all`` of the same config (run once per module; the permutations of
that run are a single pass over all ids, the SLURM ones are merged from three array tasks):

1. the whole pipeline submitted and finished (``qtlhpc status``: every stage and task finished);
2. a permutations array task that fails (a directory planted where its output file goes): the merge and the
   report are cancelled, a direct merge of the task files present refuses naming the missing ids, and
   ``qtlhpc submit --resume`` reruns that task, the merge and the report only;
3. one MPI rank SIGKILLed in the middle of the 2D scan: the job fails, its dependants are cancelled, and
   ``qtlhpc submit --resume`` restarts scan2d from its checkpoint (the blocks already done are skipped).

Resources: the config's ``[slurm] resources`` table shrinks every stage of ``jobs/pepis.toml`` to 2 tasks,
so the test submits the job definition users submit (a separate small job file could drift from it).
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from mpi_helpers import run_mpi
from slurm_cluster import slurm_cluster  # noqa: F401  (the session fixture)

pytestmark = pytest.mark.slurm

N_RANKS = 2
STAGES = ("genoprob", "kinship", "varcomp", "scan1d", "scan2d", "permutations", "merge", "report")
RESOURCES = ", ".join(f"{stage} = {{ ntasks = {N_RANKS}, time = '00:10:00', mem_per_cpu = '500M' }}"
                      for stage in STAGES)

CONFIG = f"""
[run]
output = "results.h5"
seed = 5
stages = ["genoprob", "kinship", "varcomp", "scan1d", "scan2d", "permutations", "report"]

[simulate]
cross_type = "f2"
n_individuals = 60
n_chromosomes = 3
chromosome_length_cM = 70.0
markers_per_chromosome = 8
missing_rate = 0.02
seed = 5
polygenic_variance = 0.3
n_traits = 2
main_qtl = [{{ marker = 4, additive = 1.0, dominance = 0.3 }}]
write_to = "cross"

[input]
format = "rqtl-csv"
cross_type = "f2"
file = "cross.csv"

[genoprob]
step = 10.0
block_individuals = 12

[kinship]
block_rows = 16

[scan1d]
model = "random"
block_markers = 6

[scan2d]
model = "random"
tile = 4
report_lod = 1.0

[permutations]
n_permutations = 12
scans = ["1d"]
batch = 2

[report]
directory = "report"

[slurm]
array_tasks = 3
resources = {{ {RESOURCES} }}
"""
N_PERMUTATIONS, ARRAY_TASKS = 12, 3
TASK_RANGES = [(0, 4), (4, 8), (8, 12)]  # what 12 permutations over 3 array tasks must give


def make_run(directory: Path) -> Path:
    """Write the analysis config in ``directory`` and simulate its cross there."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "analysis.toml"
    config.write_text(CONFIG)
    subprocess.run([sys.executable, "-m", "qtlhpc", "simulate", str(config)], check=True, capture_output=True)
    return config


def write_site(directory: Path, launcher: str) -> Path:
    """A site profile for the private cluster: this interpreter, single-threaded BLAS."""
    site = directory / f"site-{launcher}.toml"
    site.write_text(
        f'name = "test-{launcher}"\nlauncher = "{launcher}"\npython = {json.dumps(sys.executable)}\n'
        '[env]\nOMP_NUM_THREADS = "1"\nOPENBLAS_NUM_THREADS = "1"\n'
    )
    return site


def qtlhpc(cluster, *args: str, env=None, check=True) -> subprocess.CompletedProcess:
    """Run the ``qtlhpc`` command (submit, status) against the private cluster."""
    proc = subprocess.run([sys.executable, "-m", "qtlhpc", *map(str, args)], env=env or cluster.env,
                          capture_output=True, text=True, timeout=120)
    if check and proc.returncode != 0:
        raise AssertionError(f"qtlhpc {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def submissions(run_dir: Path) -> list:
    return json.loads((run_dir / "jobs.json").read_text())["submissions"]


def status_rows(cluster, run_dir: Path) -> dict:
    """``qtlhpc status RUN_DIR`` as {(stage, task or None): state}."""
    text = qtlhpc(cluster, "status", run_dir).stdout
    rows = {}
    for line in text.splitlines()[1:-1]:
        cells = line.split()
        if cells[1].isdigit():
            rows[(cells[0], int(cells[1]))] = cells[2]
        else:
            rows[(cells[0], None)] = cells[1]
    return rows


ALL_FINISHED = {(stage, None): "finished" for stage in STAGES if stage != "permutations"} | {
    ("permutations", task): "finished" for task in range(ARRAY_TASKS)}


def datasets(path: Path) -> dict:
    """Every dataset of a results file except checkpoint bitmaps and the report's absolute directory."""
    found = {}
    with h5py.File(path, "r") as handle:
        def visit(name, item):
            if isinstance(item, h5py.Dataset) and "_checkpoint" not in name and name != "report/directory":
                found[name] = item[()]
        handle.visititems(visit)
        statuses = {name: handle[name].attrs["status"] for name in handle}
    assert set(statuses.values()) == {"complete"}, statuses
    return found


def assert_same_results(reference: dict, other: dict, rtol=1e-10) -> None:
    assert sorted(other) == sorted(reference)
    for name, expected in reference.items():
        actual = other[name]
        assert actual.shape == expected.shape, name
        if expected.dtype.kind in "fc":
            np.testing.assert_allclose(actual, expected, rtol=rtol, atol=1e-12, equal_nan=True, err_msg=name)
        else:
            np.testing.assert_array_equal(actual, expected, err_msg=name)


@pytest.fixture(scope="module")
def reference(tmp_path_factory) -> dict:
    """The whole pipeline run directly: ``mpirun -n 2 python -m mpi4py -m qtlhpc run all CONFIG``."""
    config = make_run(tmp_path_factory.mktemp("direct"))
    run_mpi(N_RANKS, ["-m", "qtlhpc", "run", "all", config], timeout=300)
    found = datasets(config.parent / "results.h5")
    assert found["permutations/permutation_ids"].tolist() == list(range(N_PERMUTATIONS))
    assert np.all(np.isfinite(found["permutations/threshold_1d"]))
    assert found["scan2d/lod"].shape == (2, 24 * 23 // 2)
    return found


def submit(cluster, config: Path, site: Path, env=None) -> Path:
    """``qtlhpc submit pepis CONFIG --site SITE``; returns the run directory it printed."""
    text = qtlhpc(cluster, "submit", "pepis", config, "--site", site, env=env).stdout
    match = re.search(r"run directory (\S+)", text)
    assert match, text
    run_dir = Path(match.group(1))
    assert run_dir == config.parent / "results.slurm"
    return run_dir


def wait_all(cluster, run_dir: Path, timeout: float = 150) -> dict:
    """Wait for every job submitted in ``run_dir``; return {stage or stage_task: SLURM state} of the last ones."""
    records = submissions(run_dir)
    states = cluster.wait({r["job_id"] for r in records}, timeout=timeout)
    by_stage = {}
    for record in records:
        for key, state in states.items():
            job, _, task = key.partition("_")
            if job == record["job_id"]:
                by_stage[f"{record['stage']}_{task}" if task else record["stage"]] = state
    return by_stage


def log_text(run_dir: Path, pattern: str) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted((run_dir / "logs").glob(pattern)))


# --------------------------------------------------------------------------------------------


def test_submitted_pipeline_matches_direct_run(tmp_path, slurm_cluster, reference):
    config = make_run(tmp_path / "run")
    run_dir = submit(slurm_cluster, config, write_site(tmp_path, "srun"))
    states = wait_all(slurm_cluster, run_dir)
    assert set(states.values()) == {"COMPLETED"}, states
    assert status_rows(slurm_cluster, run_dir) == ALL_FINISHED
    assert "10 finished" in qtlhpc(slurm_cluster, "status", run_dir).stdout

    for task, (start, stop) in enumerate(TASK_RANGES):
        with h5py.File(run_dir / "perm" / f"task-{task}.h5", "r") as handle:
            assert handle["permutations/permutation_ids"][()].tolist() == list(range(start, stop))
            np.testing.assert_allclose(handle["permutations/max_lod_1d"][()],
                                       reference["permutations/max_lod_1d"][start:stop], rtol=1e-10)
    results = datasets(config.parent / "results.h5")
    assert_same_results(reference, results)
    with h5py.File(config.parent / "results.h5", "r") as handle:
        assert handle["report/directory"][0].decode() == str(config.parent / "report")
    assert (config.parent / "report" / "index.html").is_file()
    assert "on 2 tasks" in log_text(run_dir, "slurm-scan2d-*.out")
