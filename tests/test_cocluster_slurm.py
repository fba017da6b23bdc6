"""The co-clustering pipeline submitted to the private single-node SLURM as users submit it.

``qtlhpc submit cocluster CONFIG`` on planted co-clusters: the expression stage, ``cocluster-runs`` as a SLURM
job array of two tasks over four runs, ``merge-cocluster-runs``, the matrix and fuzzy stages (2 MPI ranks
each) and the report.  Every dataset must equal one direct ``qtlhpc run cocluster`` of the same config (each
run's stream is keyed by the run, so which task ran it never changes its samples).
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

from qtlhpc.methods.cocluster.simulate import PlantedDesign, simulate, write_expression_tsv
from slurm_cluster import slurm_cluster  # noqa: F401  (the session fixture)

STAGES = ("expression", "cocluster-runs", "merge-cocluster-runs", "cocluster-matrix", "cocluster-fuzzy", "report")
RANKS = {"cocluster-matrix": 2, "cocluster-fuzzy": 2}
RESOURCES = ", ".join(f"{stage} = {{ ntasks = {RANKS.get(stage, 1)}, time = '00:10:00', mem_per_cpu = '800M' }}"
                      for stage in STAGES)


def write_config(data_dir: Path, directory: Path) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "analysis.toml"
    config.write_text(f"""
[run]
output = "results.h5"
seed = 4
progress = false
stages = ["cocluster", "report"]

[expression]
format = "tsv"
file = "{data_dir / 'expression.tsv'}"
annotation = "{data_dir / 'genes.tsv'}"
orientation = "genes-in-rows"

[cocluster]
runs = 4
iterations = 8
burn_in = 4

[cocluster_fuzzy]
max_clusters = 30

[report]
directory = "report"

[slurm]
array_tasks = 2
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
    site.write_text(f'name = "test-cocluster"\nlauncher = "mpirun"\npython = {json.dumps(sys.executable)}\n'
                    '[env]\nOMP_NUM_THREADS = "1"\nOPENBLAS_NUM_THREADS = "1"\n')
    return site


def cocluster_datasets(path: Path) -> dict:
    found = {}
    with h5py.File(path, "r") as handle:
        for group in ("cocluster-runs", "cocluster-matrix", "cocluster-fuzzy"):
            assert handle[group].attrs["status"] == "complete", group

            def visit(name, item, group=group):
                if isinstance(item, h5py.Dataset) and "_checkpoint" not in name:
                    found[f"{group}/{name}"] = item[()]
            handle[group].visititems(visit)
    return found


def wait_for(cluster, run_dir: Path, timeout: float = 300) -> dict:
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
def test_runs_array_on_slurm_equals_the_direct_run(tmp_path, slurm_cluster):
    env = slurm_cluster.env
    data = simulate(PlantedDesign(n_genes=60, n_conditions=12, n_clusters=4, condition_blocks=2), seed=2)
    write_expression_tsv(data, tmp_path / "data")
    direct = write_config(tmp_path / "data", tmp_path / "direct")
    run_qtlhpc(env, "run", "cocluster", direct)
    reference = cocluster_datasets(direct.parent / "results.h5")

    config = write_config(tmp_path / "data", tmp_path / "submitted")
    run_dir = config.parent / "results.slurm"
    text = run_qtlhpc(env, "submit", "cocluster", config, "--site", write_site(tmp_path)).stdout
    assert re.search(r"run directory (\S+)", text).group(1) == str(run_dir)
    states = wait_for(slurm_cluster, run_dir)
    assert set(states.values()) == {"COMPLETED"}, states
    assert {"cocluster-runs_0", "cocluster-runs_1", "merge-cocluster-runs"} <= set(states), states
    submitted = cocluster_datasets(config.parent / "results.h5")
    assert sorted(submitted) == sorted(reference)
    for name, expected in reference.items():
        if name in ("cocluster-fuzzy/membership", "cocluster-fuzzy/lambda1", "cocluster-fuzzy/lambda2",
                    "cocluster-fuzzy/size", "cocluster-fuzzy/coverage", "cocluster-matrix/rho_halves",
                    "cocluster-matrix/rho_by_k", "cocluster-matrix/entropy", "cocluster-fuzzy/stop_lambda"):
            # 2 ranks against 1: SLEPc's Krylov iterations and reduced sums differ in rounding only
            np.testing.assert_allclose(submitted[name], expected, rtol=1e-8, atol=1e-9, equal_nan=True, err_msg=name)
        else:
            assert np.array_equal(submitted[name], expected), name
    assert (config.parent / "report" / "index.html").is_file()
