"""SLURM pipeline: rendering (parsed, not snapshot-compared), quoting, and real submissions.

The real-submission tests run a tiny pipeline on the private single-node SLURM of
``tests/slurm_cluster.py``; its stages run a small probe program (below) instead of ``qtlhpc run``,
so they test the chaining, array tasks, status and resume independently of the numerical stages.
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from qtlhpc.cluster import slurm
from qtlhpc.cluster.sites import load_site, site_from_dict
from qtlhpc.errors import ConfigError
from slurm_cluster import slurm_cluster  # noqa: F401  (the session fixture)

NASTY = "res $(touch pwned1) `touch pwned2`; touch pwned3; rm -rf keep-me"

# The probe each test stage runs: `probe.py STAGE RESULTS [--perm-range A:B --perm-output F | FILES...]`.
# It checks that the stages it depends on are complete, records its argv and environment probe,
# and marks its HDF5 group complete; a permutation task fails when RUN_DIR/fail-<start> exists.
PROBE = r'''
import json, os, sys
import h5py
stage, results = sys.argv[1], sys.argv[2]
rest = sys.argv[3:]
with open(os.path.join(os.getcwd(), f"argv-{stage}-{os.environ.get('SLURM_ARRAY_TASK_ID', '')}.json"), "w") as f:
    json.dump({"argv": sys.argv[1:], "probe": os.environ.get("QTLHPC_PROBE")}, f)
needs = {"kinship": ["genoprob"], "merge": ["kinship"]}.get(stage, [])
if needs:
    with h5py.File(results, "r") as f:
        for name in needs:
            assert f[name].attrs["status"] == "complete", name
if stage == "permutations":
    start, stop = map(int, rest[1].split(":"))
    if os.path.exists(os.path.join(os.getcwd(), f"fail-{start}")):
        sys.exit(f"planted failure of the task starting at {start}")
    with h5py.File(rest[3], "w") as f:
        group = f.create_group("permutations")
        group["ids"] = list(range(start, stop))
        group.attrs["status"] = "complete"
    sys.exit(0)
with h5py.File(results, "a") as f:
    group = f.require_group("permutations" if stage == "merge" else stage)
    if stage == "merge":
        ids = sorted(i for path in rest for i in h5py.File(path, "r")["permutations/ids"][()])
        group["ids"] = ids
    group.attrs["status"] = "complete"
'''


def _job_def(probe: Path) -> slurm.JobDef:
    def stage(name, template=None, after=None):
        item = {"name": name, "template": template or name, "ntasks": 1, "time": "00:05:00",
                "mem_per_cpu": "100M", "program": [str(probe), name, "{output}"]}
        if after is not None:
            item["after"] = after
        return item

    return slurm.job_from_dict({"name": "tiny", "stages": [
        stage("genoprob"), stage("kinship"), stage("permutations", after=["genoprob"]),
        stage("merge", after=["kinship", "permutations"]),
    ]}, source="<tiny test job>")


def _write_config(directory: Path, output: str, n_permutations: int, array_tasks: int) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "analysis.toml"
    config.write_text(
        f"[run]\noutput = {json.dumps(output)}\nseed = 7\n"
        f"[permutations]\nn_permutations = {n_permutations}\n"
        f"[slurm]\narray_tasks = {array_tasks}\n"
    )
    return config


def _site(launcher="srun", **extra):
    return site_from_dict({"launcher": launcher, "python": sys.executable, **extra}, source="<test site>")


def _sbatch_options(script: Path) -> dict:
    options = {}
    for line in script.read_text().splitlines():
        if line.startswith("#SBATCH "):
            name, _, value = line[len("#SBATCH "):].partition("=")
            options[name] = shlex.split(value)[0]
    return options


def _bash_array(script: Path, name: str) -> list:
    line = next(l for l in script.read_text().splitlines() if l.startswith(f"{name}=("))
    return shlex.split(line[len(name) + 2:-1])


@pytest.fixture
def probe(tmp_path) -> Path:
    path = tmp_path / "probe.py"
    path.write_text(PROBE)
    return path


# --------------------------------------------------------------------------------------------
# Rendering, without SLURM


def test_pepis_job_renders_chained_stages_with_resources(tmp_path):
    config = _write_config(tmp_path, "results.h5", 10, 3)
    config.write_text(config.read_text() + "resources = {scan2d = {ntasks = 16, time = '02:00:00'}}\n")
    site = _site(launcher="mpirun", partition="compute", account="", extra_sbatch=["--qos=long"])
    rendered = slurm.render_pipeline("pepis", config, site, tmp_path / "run")
    by_stage = {job.stage: job for job in rendered}
    assert list(by_stage) == ["genoprob", "kinship", "varcomp", "scan1d", "scan2d", "permutations", "merge",
                              "report"]
    assert by_stage["kinship"].after == ["genoprob"]
    assert by_stage["permutations"].after == ["scan2d"]
    assert by_stage["report"].after == ["scan1d", "scan2d", "merge"]
    scan2d = _sbatch_options(Path(by_stage["scan2d"].script))
    assert scan2d["--ntasks"] == "16" and scan2d["--time"] == "02:00:00"
    assert scan2d["--partition"] == "compute" and scan2d["--qos"] == "long"
    assert "--account" not in scan2d  # empty account: no line
    assert scan2d["--output"] == str(tmp_path / "run" / "logs" / "slurm-scan2d-%j.out")
    text = Path(by_stage["scan2d"].script).read_text()
    assert "set -euo pipefail" in text
    launch = shlex.split(text.strip().splitlines()[-1])
    assert launch == ["mpirun", "-n", "$SLURM_NTASKS", sys.executable, "-m", "mpi4py", "-m", "qtlhpc", "run",
                      "scan2d", str(config.resolve())]
    merge_line = shlex.split(Path(by_stage["merge"].script).read_text().strip().splitlines()[-1])
    assert merge_line[7:11] == ["qtlhpc", "run", "merge-permutations", str(config.resolve())]
    assert merge_line[11:] == [str(tmp_path / "run" / "perm" / f"task-{i}.h5") for i in range(3)]
    manifest = json.loads((tmp_path / "run" / "pipeline.json").read_text())
    assert [s["stage"] for s in manifest["stages"]] == list(by_stage)
    assert manifest["stages"][5]["array_ranges"] == [[0, 4], [4, 7], [7, 10]]


@pytest.mark.parametrize("n_permutations, array_tasks", [(10, 3), (7, 7), (5, 8), (1000, 16), (1, 1)])
def test_array_ranges_cover_every_permutation_exactly_once(tmp_path, n_permutations, array_tasks):
    config = _write_config(tmp_path, "results.h5", n_permutations, array_tasks)
    rendered = slurm.render_pipeline("pepis", config, _site(), tmp_path / "run")
    script = Path(next(job for job in rendered if job.stage == "permutations").script)
    ranges = [tuple(map(int, item.split(":"))) for item in _bash_array(script, "PERM_RANGES")]
    outputs = _bash_array(script, "PERM_OUTPUTS")
    covered = [i for start, stop in ranges for i in range(start, stop)]
    assert covered == list(range(n_permutations))
    assert all(stop > start for start, stop in ranges)  # no empty task
    assert _sbatch_options(script)["--array"] == f"0-{len(ranges) - 1}"
    assert len(outputs) == len(ranges) == min(n_permutations, array_tasks)


def test_values_from_config_and_site_are_quoted_not_run(tmp_path, probe):
    """A hostile output path and site env value arrive literally; none of their commands runs."""
    config = _write_config(tmp_path / "analysis", NASTY + ".h5", 4, 2)
    site = _site(launcher="none", env={"QTLHPC_PROBE": "$(touch pwned4) `touch pwned5`; touch pwned6"})
    rendered = slurm.render_pipeline(_job_def(probe), config, site)
    run_dir = Path(rendered[0].run_dir)
    assert run_dir.name == NASTY + ".slurm"
    keep = [tmp_path / "keep-me", run_dir / "keep-me"]  # where the planted rm would run
    for path in keep:
        path.mkdir()
    for job in rendered:
        for task in range(len(job.array_ranges)) if job.is_array else [None]:
            task_env = {"SLURM_JOB_ID": "0", "SLURM_NTASKS": "1", "SLURM_JOB_NAME": "x"}
            if task is not None:
                task_env["SLURM_ARRAY_TASK_ID"] = str(task)
            proc = subprocess.run(["bash", job.script], env={**os.environ, **task_env}, capture_output=True,
                                  text=True, cwd=tmp_path)
            assert proc.returncode == 0, proc.stderr
    recorded = json.loads((run_dir / "argv-genoprob-.json").read_text())
    assert recorded["argv"] == ["genoprob", str(tmp_path / "analysis" / (NASTY + ".h5"))]
    assert recorded["probe"] == "$(touch pwned4) `touch pwned5`; touch pwned6"
    task = json.loads((run_dir / "argv-permutations-1.json").read_text())
    assert task["argv"][2:] == ["--perm-range", "2:4", "--perm-output", str(run_dir / "perm" / "task-1.h5")]
    assert not [p for p in tmp_path.rglob("pwned*")]
    assert all(path.is_dir() for path in keep)


def test_site_and_job_errors_name_the_problem(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'partition'"):
        site_from_dict({"partiton": "x"})
    with pytest.raises(ConfigError, match="launcher"):
        site_from_dict({"launcher": "aprun"})
    with pytest.raises(ConfigError, match="account"):
        site_from_dict({"account": "a b; rm"})
    with pytest.raises(ConfigError, match="line break"):
        site_from_dict({"modules": ["gcc\nrm -rf /"]})
    with pytest.raises(ConfigError, match="time"):
        slurm.job_from_dict({"stages": [{"name": "kinship", "time": "two hours"}]})
    with pytest.raises(ConfigError, match="not an earlier stage"):
        slurm.job_from_dict({"stages": [{"name": "kinship", "after": ["scan1d"]}]})
    config = _write_config(tmp_path, "results.h5", 4, 2)
    config.write_text(config.read_text() + "resources = {scan2e = {ntasks = 2}}\n")
    with pytest.raises(ConfigError, match="did you mean 'scan2d'"):
        slurm.render_pipeline("pepis", config, _site(), tmp_path / "run")
    assert load_site("local").launcher in ("srun", "mpirun", "none")
    assert load_site("example").modules  # the example profile parses


def test_dry_run_prints_commands_and_submits_nothing(tmp_path):
    config = _write_config(tmp_path, "results.h5", 4, 2)
    text = slurm.submit_command("pepis", config, dry_run=True, site=_site(), run_dir=tmp_path / "run")
    assert "--dependency=afterok:<scan2d>" in text and "--array=0-1" in text
    assert not (tmp_path / "run" / "jobs.json").exists()


# --------------------------------------------------------------------------------------------
# Real submissions


def _tiny_run(tmp_path, probe, cluster, n_permutations=6, array_tasks=3, output="results.h5"):
    config = _write_config(tmp_path / "analysis", output, n_permutations, array_tasks)
    rendered = slurm.render_pipeline(_job_def(probe), config, _site())
    return config, rendered, Path(rendered[0].run_dir)


@pytest.mark.slurm
def test_pipeline_runs_in_dependency_order_on_slurm(tmp_path, probe, slurm_cluster):
    config, rendered, run_dir = _tiny_run(tmp_path, probe, slurm_cluster, output=NASTY + ".h5")
    ids = slurm.submit(rendered, env=slurm_cluster.env)
    states = slurm_cluster.wait(ids.values(), timeout=120)
    assert set(states.values()) == {"COMPLETED"}, states
    rows = slurm.status(run_dir, env=slurm_cluster.env)
    assert [(r.stage, r.task, r.state) for r in rows] == [
        ("genoprob", None, "finished"), ("kinship", None, "finished"), ("permutations", 0, "finished"),
        ("permutations", 1, "finished"), ("permutations", 2, "finished"), ("merge", None, "finished")]
    with h5py.File(tmp_path / "analysis" / (NASTY + ".h5"), "r") as results:
        assert list(results["permutations/ids"][()]) == list(range(6))
    records = json.loads((run_dir / "jobs.json").read_text())["submissions"]
    merge = next(r for r in records if r["stage"] == "merge")
    assert merge["dependencies"] == [ids["kinship"], ids["permutations"]]
    assert (run_dir / "logs" / f"slurm-permutations-{ids['permutations']}_2.out").exists()
    assert not list(tmp_path.rglob("pwned*"))
    assert "6 finished" in slurm.status_command(run_dir, env=slurm_cluster.env)


@pytest.mark.slurm
def test_failed_array_task_blocks_merge_and_resume_reruns_only_it(tmp_path, probe, slurm_cluster):
    config, rendered, run_dir = _tiny_run(tmp_path, probe, slurm_cluster, n_permutations=9, array_tasks=3)
    (run_dir / "fail-3").write_text("")  # task 1 covers ids 3:6
    ids = slurm.submit(rendered, env=slurm_cluster.env)
    states = slurm_cluster.wait(ids.values(), timeout=120)
    assert states[f"{ids['permutations']}_1"] == "FAILED"
    assert states[ids["merge"]] == "CANCELLED"  # its afterok can never be satisfied
    by_key = {(r.stage, r.task): r.state for r in slurm.status(run_dir, env=slurm_cluster.env)}
    assert by_key == {("genoprob", None): "finished", ("kinship", None): "finished",
                      ("permutations", 0): "finished", ("permutations", 1): "failed",
                      ("permutations", 2): "finished", ("merge", None): "failed"}

    (run_dir / "fail-3").unlink()
    text = slurm.submit_command(None, None, resume_dir=run_dir, env=slurm_cluster.env)
    records = json.loads((run_dir / "jobs.json").read_text())["submissions"]
    resubmitted = [r for r in records if r.get("resume")]
    assert [(r["stage"], r["array"]) for r in resubmitted] == [("permutations", "1"), ("merge", None)]
    assert resubmitted[1]["dependencies"] == [resubmitted[0]["job_id"]]
    assert "resubmitted 2 jobs" in text
    slurm_cluster.wait([r["job_id"] for r in resubmitted], timeout=120)
    rows = slurm.status(run_dir, env=slurm_cluster.env)
    assert {r.state for r in rows} == {"finished"}, slurm.format_status(rows)
    with h5py.File(config.parent / "results.h5", "r") as results:
        assert list(results["permutations/ids"][()]) == list(range(9))
    assert slurm.resume(run_dir, env=slurm_cluster.env) == {}


@pytest.mark.slurm
def test_resume_waits_on_stages_still_pending(tmp_path, probe, slurm_cluster):
    config, rendered, run_dir = _tiny_run(tmp_path, probe, slurm_cluster, n_permutations=4, array_tasks=2)
    held = slurm.submit(rendered[:1], env={**slurm_cluster.env, "SBATCH_HOLD": "1"})["genoprob"]
    rows = {(r.stage, r.task): r.state for r in slurm.status(run_dir, env=slurm_cluster.env)}
    assert rows[("genoprob", None)] == "pending" and rows[("kinship", None)] == "missing"
    new = slurm.resume(run_dir, env=slurm_cluster.env)
    assert list(new) == ["kinship", "permutations", "merge"]  # genoprob is pending: not resubmitted
    records = {r["stage"]: r for r in json.loads((run_dir / "jobs.json").read_text())["submissions"]}
    assert records["kinship"]["dependencies"] == [held]
    assert records["permutations"]["dependencies"] == [held] and records["permutations"]["array"] == "0,1"
    assert sorted(records["merge"]["dependencies"]) == sorted([new["kinship"], new["permutations"]])
    slurm_cluster.run("scontrol", "release", held)
    slurm_cluster.wait([held, *new.values()], timeout=120)
    assert {r.state for r in slurm.status(run_dir, env=slurm_cluster.env)} == {"finished"}
