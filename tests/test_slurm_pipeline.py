"""The real PEPIS pipeline on the private single-node SLURM, checked against the same pipeline under mpirun.

Each test simulates the same small F2 cross (``qtlhpc simulate``), submits the pepis job for it with
``qtlhpc submit`` on the SLURM of ``tests/slurm_cluster.py`` and compares every dataset of the results with
one direct ``mpirun -n 2 ... qtlhpc run all`` of the same config (run once per module; the permutations of
that run are a single pass over all ids, the SLURM ones are merged by ``merge-permutations`` from three
array tasks, each writing RUN_DIR/units/permutations/task-i.h5):

1. the whole pipeline submitted and finished (``qtlhpc status``: every stage and task finished);
2. a permutations array task that fails (a directory planted where its output file goes): the merge and the
   report are cancelled, a direct merge of the task files present refuses naming the missing ids, and
   ``qtlhpc submit --resume`` reruns that task, the merge and the report only;
3. one MPI rank SIGKILLed in the middle of the 2D scan: the job fails, its dependants are cancelled, and
   ``qtlhpc submit --resume`` restarts scan2d from its checkpoint (the blocks already done are skipped).

A fast test (no SLURM) checks that sbatch does not hand the jobs the MPI-singleton variables that MPI_Init
leaves in the submitting process (two jobs sharing them crash or hang in shared memory).

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

from mpi_helpers import require_mpirun, run_mpi
from qtlhpc.cluster.slurm import client_env
from slurm_cluster import slurm_cluster  # noqa: F401  (the session fixture)

N_RANKS = 2
STAGES = ("genoprob", "kinship", "varcomp", "scan1d", "scan2d", "permutations", "merge-permutations", "report")
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


def submit(cluster, config: Path, site, env=None) -> Path:
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
            job, _, tasks = key.partition("_")
            if job != record["job_id"]:
                continue
            if not tasks:
                by_stage[record["stage"]] = state
            for task in expand_tasks(tasks):
                by_stage[f"{record['stage']}_{task}"] = state
    return by_stage


def expand_tasks(spec: str) -> list:
    """Array task ids of a ``scontrol`` ArrayTaskId: ``"1"``, ``"0-2"``, ``"0,2"`` (a never-started array
    that was cancelled is one record ``0-2``)."""
    tasks = []
    for part in filter(None, spec.split("%")[0].split(",")):
        first, _, last = part.partition("-")
        tasks += range(int(first), int(last or first) + 1)
    return tasks


def log_text(run_dir: Path, pattern: str) -> str:
    return "\n".join(p.read_text(errors="replace") for p in sorted((run_dir / "logs").glob(pattern)))


# --------------------------------------------------------------------------------------------


SINGLETON_PROBE = """
import json, subprocess, sys
from mpi4py import MPI
MPI.COMM_WORLD.Barrier()  # MPI_Init as a singleton, as in `qtlhpc submit`
from qtlhpc.cluster.slurm import client_env
inherited = dict(line.split("=", 1) for line in subprocess.run(["env"], capture_output=True, text=True)
                 .stdout.splitlines() if "=" in line)
print(json.dumps({"inherited": sorted(inherited), "client": sorted(client_env())}))
"""


def test_jobs_do_not_inherit_the_submitters_mpi_identity():
    """MPI_Init in the submitting process sets PMIX_*/OMPI_MCA_ess* in its C environment; sbatch must not
    pass them on (jobs would share one MPI job id and collide when two run on a node at once)."""
    require_mpirun()
    env = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1"}
    proc = subprocess.run([sys.executable, "-c", SINGLETON_PROBE], capture_output=True, text=True, env=env,
                          timeout=60, check=True)
    found = json.loads(proc.stdout.splitlines()[-1])
    assert "PMIX_NAMESPACE" in found["inherited"] and "OMPI_MCA_ess" in found["inherited"]  # what MPI_Init set
    assert not [name for name in found["client"] if name.startswith("PMIX_") or name.startswith("OMPI_MCA_ess")]
    assert "OMPI_ALLOW_RUN_AS_ROOT" in found["client"] and "PATH" in found["client"]
    assert client_env({"OMPI_MCA_btl": "self,vader", "OMPI_COMM_WORLD_SIZE": "2", "PMI_RANK": "0"}) == \
        {"OMPI_MCA_btl": "self,vader"}




@pytest.mark.slurm
def test_submitted_pipeline_matches_direct_run(tmp_path, slurm_cluster, reference):
    config = make_run(tmp_path / "run")
    run_dir = submit(slurm_cluster, config, "local")  # the shipped profile: srun --mpi=pmix
    states = wait_all(slurm_cluster, run_dir)
    assert set(states.values()) == {"COMPLETED"}, states
    assert status_rows(slurm_cluster, run_dir) == ALL_FINISHED
    assert "10 finished" in qtlhpc(slurm_cluster, "status", run_dir).stdout

    for task, (start, stop) in enumerate(TASK_RANGES):
        with h5py.File(run_dir / "units" / "permutations" / f"task-{task}.h5", "r") as handle:
            assert handle["permutations/permutation_ids"][()].tolist() == list(range(start, stop))
            np.testing.assert_allclose(handle["permutations/max_lod_1d"][()],
                                       reference["permutations/max_lod_1d"][start:stop], rtol=1e-10)
    results = datasets(config.parent / "results.h5")
    assert_same_results(reference, results)
    with h5py.File(config.parent / "results.h5", "r") as handle:
        assert handle["report/directory"][0].decode() == str(config.parent / "report")
    assert (config.parent / "report" / "index.html").is_file()
    logs = log_text(run_dir, "slurm-*.out")
    assert "on 2 tasks" in logs and "rank 0/2" in logs
    assert "h5py without MPI" not in logs  # the local profile makes Debian's h5py use MPI under srun


@pytest.mark.slurm
def test_failed_array_task_blocks_merge_and_resume_reruns_only_it(tmp_path, slurm_cluster, reference):
    config = make_run(tmp_path / "run")
    run_dir = config.parent / "results.slurm"
    obstacle = run_dir / "units" / "permutations" / "task-1.h5"  # task 1 (ids 4:8) cannot create its output file
    obstacle.mkdir(parents=True)
    assert submit(slurm_cluster, config, write_site(tmp_path, "mpirun")) == run_dir
    states = wait_all(slurm_cluster, run_dir)
    assert states == {"genoprob": "COMPLETED", "kinship": "COMPLETED", "varcomp": "COMPLETED",
                      "scan1d": "COMPLETED", "scan2d": "COMPLETED", "permutations_0": "COMPLETED",
                      "permutations_1": "FAILED", "permutations_2": "COMPLETED",
                      "merge-permutations": "CANCELLED", "report": "CANCELLED"}, states  # kill_invalid_depend
    task_log = log_text(run_dir, "slurm-permutations-*_1.out")
    assert str(obstacle) in task_log, task_log[-3000:]
    rows = status_rows(slurm_cluster, run_dir)
    assert rows == ALL_FINISHED | {("permutations", 1): "failed", ("merge-permutations", None): "failed",
                                   ("report", None): "failed"}, rows

    # the merge itself refuses what the array left: the ids of the failed task are named
    present = [run_dir / "units" / "permutations" / f"task-{task}.h5" for task in (0, 2)]
    refused = run_mpi(1, ["-m", "qtlhpc", "run", "merge-permutations", config, *present], check=False)
    assert refused.returncode != 0
    assert "permutation ids missing (of 0..11): 4, 5, 6, 7" in refused.stderr, refused.stderr[-3000:]
    with h5py.File(config.parent / "results.h5", "r") as handle:
        assert "permutations" not in handle and "report" not in handle

    obstacle.rmdir()
    mtimes = {path: path.stat().st_mtime_ns for path in present}
    text = qtlhpc(slurm_cluster, "submit", "--resume", run_dir).stdout
    assert "resubmitted 3 jobs" in text, text
    resubmitted = [(r["stage"], r["array"]) for r in submissions(run_dir) if r.get("resume")]
    assert resubmitted == [("permutations", "1"), ("merge-permutations", None), ("report", None)]
    states = wait_all(slurm_cluster, run_dir)
    assert set(states.values()) == {"COMPLETED"}, states
    assert status_rows(slurm_cluster, run_dir) == ALL_FINISHED
    assert {path: path.stat().st_mtime_ns for path in present} == mtimes  # tasks 0 and 2 did not rerun
    for task, n_logs in ((0, 1), (1, 2), (2, 1)):
        assert len(list((run_dir / "logs").glob(f"slurm-permutations-*_{task}.out"))) == n_logs
    assert_same_results(reference, datasets(config.parent / "results.h5"))


def scan2d_blocks_done(results: Path) -> int:
    """Blocks of the 2D scan marked done in the checkpoint bitmap (read-only, no lock; 0 if unreadable)."""
    try:
        with h5py.File(results, "r", locking=False) as handle:
            return int(handle["scan2d/_checkpoint/pairs"][()].sum())
    except (OSError, RuntimeError, KeyError):  # metadata half-written by the run: read again
        return 0


def step_pids(cluster, job_id: str) -> dict:
    """{global task id: pid} of the ranks of the job's first srun step (``scontrol listpids``)."""
    proc = cluster.run("scontrol", "listpids", job_id, check=False)
    ranks = {}
    for line in proc.stdout.splitlines()[1:]:
        pid, job, step, local_id, global_id = line.split()
        if step == "0" and global_id.isdigit():
            ranks[int(global_id)] = int(pid)
    return ranks


@pytest.mark.slurm
def test_rank_killed_in_scan2d_resumes_from_checkpoint(tmp_path, slurm_cluster, reference):
    config = make_run(tmp_path / "run")
    results = config.parent / "results.h5"
    slow = {**slurm_cluster.env, "QTLHPC_BLOCK_DELAY": "0.5"}  # sbatch forwards it to every job
    run_dir = submit(slurm_cluster, config, "local", env=slow)
    scan2d_job = next(r["job_id"] for r in submissions(run_dir) if r["stage"] == "scan2d")

    deadline = time.monotonic() + 120
    while scan2d_blocks_done(results) < 4:
        assert time.monotonic() < deadline, f"scan2d did not get going: {slurm_cluster.job_states(scan2d_job)}"
        assert slurm_cluster.job_states(scan2d_job).get(scan2d_job) in ("PENDING", "RUNNING"), \
            "scan2d ended before it could be killed"
        time.sleep(0.1)
    ranks = step_pids(slurm_cluster, scan2d_job)
    assert sorted(ranks) == [0, 1], ranks
    os.kill(ranks[1], signal.SIGKILL)

    states = wait_all(slurm_cluster, run_dir)
    assert states["scan2d"] == "FAILED", states
    assert {states[k] for k in ("permutations_0", "permutations_1", "permutations_2", "merge-permutations", "report")} \
        == {"CANCELLED"}, states
    done_at_kill = scan2d_blocks_done(results)
    with h5py.File(results, "r", locking=False) as handle:
        n_blocks = handle["scan2d/_checkpoint/pairs"].shape[0]
        assert handle["scan2d"].attrs["status"] == "running"
    assert 4 <= done_at_kill < n_blocks, (done_at_kill, n_blocks)
    rows = status_rows(slurm_cluster, run_dir)
    assert rows == ALL_FINISHED | {(stage, task): "failed" for stage, task in [
        ("scan2d", None), ("permutations", 0), ("permutations", 1), ("permutations", 2), ("merge-permutations", None),
        ("report", None)]}, rows

    qtlhpc(slurm_cluster, "submit", "--resume", run_dir)  # without the delay
    resubmitted = [(r["stage"], r["array"]) for r in submissions(run_dir) if r.get("resume")]
    assert resubmitted == [("scan2d", None), ("permutations", "0,1,2"), ("merge-permutations", None), ("report", None)]
    states = wait_all(slurm_cluster, run_dir)
    assert set(states.values()) == {"COMPLETED"}, states
    assert status_rows(slurm_cluster, run_dir) == ALL_FINISHED
    new_scan2d = [r["job_id"] for r in submissions(run_dir) if r["stage"] == "scan2d"][-1]
    resumed_log = (run_dir / "logs" / f"slurm-scan2d-{new_scan2d}.out").read_text()
    first_progress = re.search(r"^scan2d: (\d+)/(\d+)", resumed_log, re.MULTILINE)
    assert first_progress and "stage 'scan2d' resumes" in resumed_log, resumed_log
    assert (int(first_progress[1]), int(first_progress[2])) == (done_at_kill, n_blocks)  # started from the checkpoint
    assert_same_results(reference, datasets(results))
