"""The population cis-eQTL pipeline submitted to the private single-node SLURM as users submit it.

``qtlhpc submit eqtl CONFIG`` on FastQTL's own example (a 2 Mb region of chr22): the expression stage, the
``cis`` stage as a SLURM job array of three tasks over six chunks of genes, ``merge-cis`` and the report.  The
merged results must equal one direct ``qtlhpc run eqtl`` of the same config dataset by dataset (the
permutations are keyed by gene, so which task ran a gene never changes its numbers).  A task whose output
cannot be written fails; the merge is cancelled, and ``submit --resume`` reruns that task and the merge only.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from references import fastqtl_example
from requirements import skip_or_fail
from slurm_cluster import slurm_cluster  # noqa: F401  (the session fixture)

STAGES = ("expression", "cis", "merge-cis", "report")
ARRAY_TASKS, CHUNKS = 3, 6
RESOURCES = ", ".join(f"{stage} = {{ ntasks = 1, time = '00:10:00', mem_per_cpu = '800M' }}" for stage in STAGES)


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    if not fastqtl_example.EXAMPLE_ARCHIVE.is_file():
        skip_or_fail(f"FastQTL's example {fastqtl_example.EXAMPLE_ARCHIVE} is missing (apt-get install fastqtl-doc)")
    return fastqtl_example.unpack_example(tmp_path_factory.mktemp("fastqtl"))


def write_config(example: Path, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "analysis.toml"
    config.write_text(f"""
[run]
output = "results.h5"
seed = 11
progress = false
stages = ["expression", "cis", "report"]

[expression]
format = "bed"
file = "{example / 'phenotypes.bed.gz'}"
covariates = "{example / 'covariates.txt.gz'}"
region = "22:17000000-19000000"

[cis]
genotypes = "{example / 'genotypes.vcf.gz'}"
permutations = [40]
chunks = {CHUNKS}

[report]
directory = "report"

[slurm]
array_tasks = {ARRAY_TASKS}
resources = {{ {RESOURCES} }}
""")
    return config


def run_qtlhpc(env, *args, check=True) -> subprocess.CompletedProcess:
    proc = subprocess.run([sys.executable, "-m", "qtlhpc", *map(str, args)], env=env, capture_output=True,
                          text=True, timeout=300)
    if check and proc.returncode != 0:
        raise AssertionError(f"qtlhpc {' '.join(map(str, args))} failed ({proc.returncode}):\n{proc.stderr}")
    return proc


def write_site(directory: Path) -> Path:
    site = directory / "site-test.toml"
    site.write_text(f'name = "test-eqtl"\nlauncher = "mpirun"\npython = {json.dumps(sys.executable)}\n'
                    '[env]\nOMP_NUM_THREADS = "1"\nOPENBLAS_NUM_THREADS = "1"\n')
    return site


def cis_datasets(path: Path) -> dict:
    """Every dataset of the cis group except checkpoints and the names of the per-chunk nominal tables
    (those name the folder the run wrote them in)."""
    found = {}
    with h5py.File(path, "r") as handle:
        assert handle["cis"].attrs["status"] == "complete"
        def visit(name, item):
            if isinstance(item, h5py.Dataset) and "_checkpoint" not in name and name != "nominal_files":
                found[name] = item[()]
        handle["cis"].visititems(visit)
    return found


def wait_for(cluster, run_dir: Path, timeout: float = 240) -> dict:
    """{stage or stage_task: final SLURM state} of every job submitted in ``run_dir``."""
    records = json.loads((run_dir / "jobs.json").read_text())["submissions"]
    states = cluster.wait({record["job_id"] for record in records}, timeout=timeout)
    by_stage = {}
    for record in records:
        for key, state in states.items():
            job, _, task = key.partition("_")
            if job == record["job_id"]:
                by_stage[record["stage"] + (f"_{task}" if task else "")] = state
    return by_stage


@pytest.mark.slurm
def test_cis_array_on_slurm_equals_the_direct_run_and_resumes_one_failed_task(tmp_path, example, slurm_cluster):
    env = slurm_cluster.env
    direct = write_config(example, tmp_path / "direct")
    run_qtlhpc(env, "run", "eqtl", direct)
    reference = cis_datasets(direct.parent / "results.h5")
    assert reference["gene_ids"].shape[0] > CHUNKS  # every task has genes to map

    config = write_config(example, tmp_path / "submitted")
    run_dir = config.parent / "results.slurm"
    obstacle = run_dir / "units" / "cis" / "task-1.h5"  # task 1 cannot create its output file
    obstacle.mkdir(parents=True)
    text = run_qtlhpc(env, "submit", "eqtl", config, "--site", write_site(tmp_path)).stdout
    assert re.search(r"run directory (\S+)", text).group(1) == str(run_dir)
    states = wait_for(slurm_cluster, run_dir)
    assert states == {"expression": "COMPLETED", "cis_0": "COMPLETED", "cis_1": "FAILED", "cis_2": "COMPLETED",
                      "merge-cis": "CANCELLED", "report": "CANCELLED"}, states

    # the merge itself names the chunks the failed task should have computed
    present = [run_dir / "units" / "cis" / f"task-{task}.h5" for task in (0, 2)]
    refused = run_qtlhpc(env, "run", "merge-cis", config, *present, check=False)
    assert refused.returncode != 0
    assert "do not cover cis chunks 2:4 of 0:6" in refused.stderr, refused.stderr[-2000:]

    obstacle.rmdir()
    before = {path: path.stat().st_mtime_ns for path in present}
    assert "resubmitted 3 jobs" in run_qtlhpc(env, "submit", "--resume", run_dir).stdout
    states = wait_for(slurm_cluster, run_dir)
    assert set(states.values()) == {"COMPLETED"}, states
    assert {path: path.stat().st_mtime_ns for path in present} == before  # tasks 0 and 2 did not rerun

    merged = cis_datasets(config.parent / "results.h5")
    assert sorted(merged) == sorted(reference)
    for name, expected in reference.items():
        if expected.dtype.kind == "f":
            np.testing.assert_array_equal(merged[name], expected, err_msg=name)
        else:
            assert np.array_equal(merged[name], expected), name
    assert (config.parent / "report" / "index.html").is_file()
