"""SLURM pipeline: rendering (parsed, not snapshot-compared), quoting, and real submissions.

Which jobs a run has, their templates and dependencies come from the stage declarations, so besides
PEPIS these tests declare a made-up method ``toy`` (fixture ``toy_method``: a plain stage, an array
stage over "draws" with its merge stage, and the shared report) that no cluster code knows by name.
Its jobs run a probe program given as the site's interpreter: it receives the real rendered command
line (``-m mpi4py -m qtlhpc run STAGE CONFIG ...``), records it, checks that the stages it reads are
complete and marks its HDF5 group complete.  The real-submission tests run it on the private
single-node SLURM of ``tests/slurm_cluster.py``, so they test chaining, array tasks, status and resume
independently of the numerical stages (tests/test_slurm_pipeline.py runs the real PEPIS stages).
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

from qtlhpc.cluster import jobs, slurm
from qtlhpc.cluster.sites import load_site, site_from_dict
from qtlhpc.config import Option
from qtlhpc.errors import ConfigError
from qtlhpc.resources import folder
from qtlhpc.stages import registry
from qtlhpc.stages.spec import ArrayUnits, SectionSpec, StageSpec
from slurm_cluster import slurm_cluster  # noqa: F401  (the session fixture)

NASTY = "res $(touch pwned1) `touch pwned2`; touch pwned3; rm -rf keep-me"
PEPIS_JOBS = ["genoprob", "kinship", "varcomp", "scan1d", "scan2d", "permutations", "merge-permutations", "report"]

TOY_STAGES = (
    StageSpec("toy_prepare", "toy", "tests:unused", "a plain first stage"),
    StageSpec("toy_fit", "toy", "tests:unused", "a plain stage", needs=("toy_prepare",)),
    StageSpec("toy_draws", "toy", "tests:unused", "an array stage over draws", section="toy",
              needs=("toy_prepare",),
              array=ArrayUnits("draw", lambda config: config.section("toy")["n_draws"], "toy.n_draws", "toy-merge")),
    StageSpec("toy-merge", "toy", "tests:unused", "merges the draws", section="toy", writes="toy_draws",
              merges="toy_draws", needs=("toy_prepare",)),
)
TOY_COUNT = "toy.n_draws"
TOY_JOBS = ["toy_prepare", "toy_fit", "toy_draws", "toy-merge", "report"]
TOY_JOB = {"name": "toy", "description": "a made-up method", "stages": {
    stage: {"ntasks": 1, "time": "00:05:00", "mem_per_cpu": "100M"} for stage in TOY_JOBS}}

# The probe: `PROBE -m mpi4py -m qtlhpc run STAGE CONFIG [--units A:B --unit-output FILE | TASK FILES...]`.
# A draws task fails when RUN_DIR/fail-<start> exists; the merge refuses when draw ids are missing.
PROBE = r'''
import json, os, sys, tomllib
import h5py
assert sys.argv[1:6] == ["-m", "mpi4py", "-m", "qtlhpc", "run"], sys.argv
stage, config_path, rest = sys.argv[6], sys.argv[7], sys.argv[8:]
with open(config_path, "rb") as handle:
    config = tomllib.load(handle)
results = os.path.join(os.path.dirname(config_path), config["run"]["output"])
with open(f"argv-{stage}-{os.environ.get('SLURM_ARRAY_TASK_ID', '')}.json", "w") as handle:
    json.dump({"argv": sys.argv[1:], "probe": os.environ.get("QTLHPC_PROBE")}, handle)
needs = {"toy_fit": ["toy_prepare"], "toy_draws": ["toy_prepare"], "toy-merge": ["toy_prepare"],
         "report": ["toy_prepare", "toy_fit", "toy_draws"]}.get(stage, [])
if needs:
    with h5py.File(results, "r") as handle:
        for name in needs:
            assert handle[name].attrs["status"] == "complete", name
if stage == "toy_draws":
    assert rest[0] == "--units" and rest[2] == "--unit-output", rest
    start, stop = map(int, rest[1].split(":"))
    if os.path.exists(f"fail-{start}"):
        sys.exit(f"planted failure of the task starting at {start}")
    with h5py.File(rest[3], "w") as handle:
        handle["toy_draws/ids"] = list(range(start, stop))
        handle["toy_draws"].attrs["status"] = "complete"
    sys.exit(0)
with h5py.File(results, "a") as handle:
    group = handle.require_group("toy_draws" if stage == "toy-merge" else stage)
    if stage == "toy-merge":
        ids = sorted(i for path in rest if os.path.exists(path) for i in h5py.File(path, "r")["toy_draws/ids"][()])
        missing = sorted(set(range(config["toy"]["n_draws"])) - set(ids))
        if missing:
            sys.exit(f"draw ids missing: {missing}")
        group["ids"] = ids
    group.attrs["status"] = "complete"
'''


@pytest.fixture
def toy_method(monkeypatch):
    """Declare the method ``toy`` (TOY_STAGES and a section [toy]) beside the real ones."""
    stages = {**registry.stages(), **{spec.name: spec for spec in TOY_STAGES}}
    sections = {**registry.sections(),
                "toy": SectionSpec("toy", {"n_draws": Option(int, 6, "draws")}, "tests", optional=True)}
    monkeypatch.setattr(registry, "stages", lambda: stages)
    monkeypatch.setattr(registry, "sections", lambda: sections)
    return jobs.job_from_dict(TOY_JOB, source="<toy job>")


@pytest.fixture
def probe(tmp_path) -> Path:
    path = tmp_path / "probe.py"
    path.write_text(f"#!{sys.executable}\n" + PROBE)
    path.chmod(0o755)
    return path


def _write_config(directory: Path, output: str, units: int, array_tasks: int, extra: str = "",
                  count_key: str = "permutations.n_permutations") -> Path:
    """A config whose array stage has ``units`` units (``count_key``: its spec.array.count_key)."""
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "analysis.toml"
    section, key = count_key.split(".")
    config.write_text(f"[run]\noutput = {json.dumps(output)}\nseed = 7\n[{section}]\n{key} = {units}\n"
                      f"[slurm]\narray_tasks = {array_tasks}\n{extra}")
    return config


def _site(launcher="srun", python=sys.executable, **extra):
    return site_from_dict({"launcher": launcher, "python": str(python), **extra}, source="<test site>")


def _sbatch_options(script: Path) -> dict:
    options = {}
    for line in Path(script).read_text().splitlines():
        if line.startswith("#SBATCH "):
            name, _, value = line[len("#SBATCH "):].partition("=")
            options[name] = shlex.split(value)[0]
    return options


def _bash_array(script: Path, name: str) -> list:
    line = next(l for l in Path(script).read_text().splitlines() if l.startswith(f"{name}=("))
    return shlex.split(line[len(name) + 2:-1])


def _last_line(script) -> list:
    return shlex.split(Path(script).read_text().strip().splitlines()[-1])


def _template_comment(script) -> str:
    """The template's own comment line (line 2), which tells the three templates apart."""
    return Path(script).read_text().splitlines()[1]


TEMPLATE_COMMENTS = {name: (folder("slurm") / f"{name}.sbatch").read_text().splitlines()[1]
                     for name in jobs.TEMPLATES}


# --------------------------------------------------------------------------------------------
# Rendering, without SLURM


def test_pepis_job_renders_chained_stages_with_resources(tmp_path):
    config = _write_config(tmp_path, "results.h5", 10, 3, "resources = {scan2d = {ntasks = 16, time = '02:00:00'}}\n")
    site = _site(launcher="mpirun", partition="compute", account="", extra_sbatch=["--qos=long"])
    rendered = slurm.render_pipeline("pepis", config, site, tmp_path / "run")
    by_stage = {job.stage: job for job in rendered}
    assert list(by_stage) == PEPIS_JOBS
    assert {job.stage: job.template for job in rendered if job.template != "stage"} == {
        "permutations": "array", "merge-permutations": "merge"}
    assert by_stage["kinship"].after == ["genoprob"]
    assert by_stage["scan2d"].after == ["genoprob", "kinship", "varcomp", "scan1d"]  # needs + the stage before
    assert by_stage["permutations"].after == ["genoprob", "kinship", "varcomp", "scan2d"]
    assert by_stage["merge-permutations"].after[-1] == "permutations"
    assert by_stage["report"].after == PEPIS_JOBS[:-1]
    scan2d = _sbatch_options(by_stage["scan2d"].script)
    assert scan2d["--ntasks"] == "16" and scan2d["--time"] == "02:00:00"  # [slurm] resources
    assert scan2d["--mem-per-cpu"] == "2G"  # jobs/pepis.toml
    assert scan2d["--partition"] == "compute" and scan2d["--qos"] == "long"
    assert "--account" not in scan2d  # empty account: no line
    assert scan2d["--output"] == str(tmp_path / "run" / "logs" / "slurm-scan2d-%j.out")
    assert _sbatch_options(by_stage["permutations"].script)["--ntasks"] == "8"
    text = Path(by_stage["scan2d"].script).read_text()
    assert "set -euo pipefail" in text
    assert _last_line(by_stage["scan2d"].script) == [
        "mpirun", "-n", "$SLURM_NTASKS", sys.executable, "-m", "mpi4py", "-m", "qtlhpc", "run", "scan2d",
        str(config.resolve())]
    task_files = [str(tmp_path / "run" / "units" / "permutations" / f"task-{i}.h5") for i in range(3)]
    assert _last_line(by_stage["merge-permutations"].script)[7:] == [
        "qtlhpc", "run", "merge-permutations", str(config.resolve()), *task_files]
    assert _last_line(by_stage["permutations"].script)[-4:] == [
        "--units", "${UNIT_RANGES[$TASK]}", "--unit-output", "${TASK_OUTPUTS[$TASK]}"]
    for job in rendered:
        assert _template_comment(job.script) == TEMPLATE_COMMENTS[job.template]
    manifest = json.loads((tmp_path / "run" / "pipeline.json").read_text())
    assert [s["stage"] for s in manifest["stages"]] == PEPIS_JOBS
    permutations = manifest["stages"][5]
    assert permutations["units"] == 10 and permutations["array_ranges"] == [[0, 4], [4, 7], [7, 10]]
    assert permutations["task_outputs"] == manifest["stages"][6]["inputs"] == task_files
    assert manifest["stages"][6]["result_group"] == "permutations"


@pytest.mark.parametrize("units, array_tasks", [(10, 3), (7, 7), (5, 8), (1000, 16), (1, 1)])
def test_array_ranges_cover_every_unit_exactly_once(tmp_path, units, array_tasks):
    config = _write_config(tmp_path, "results.h5", units, array_tasks)
    rendered = slurm.render_pipeline("pepis", config, _site(), tmp_path / "run")
    script = Path(next(job for job in rendered if job.template == "array").script)
    ranges = [tuple(map(int, item.split(":"))) for item in _bash_array(script, "UNIT_RANGES")]
    outputs = _bash_array(script, "TASK_OUTPUTS")
    covered = [i for start, stop in ranges for i in range(start, stop)]
    assert covered == list(range(units))
    assert all(stop > start for start, stop in ranges)  # no empty task
    assert _sbatch_options(script)["--array"] == f"0-{len(ranges) - 1}"
    assert len(outputs) == len(set(outputs)) == len(ranges) == min(units, array_tasks)


def test_made_up_array_stage_renders_from_its_declaration(tmp_path, toy_method):
    """A method declared only in this test gets an array job and a merge job: no cluster code names it."""
    config = _write_config(tmp_path, "results.h5", 5, 2, "resources = {toy_draws = {ntasks = 3}}\n", TOY_COUNT)
    rendered = slurm.render_pipeline(toy_method, config, _site(), tmp_path / "run")
    by_stage = {job.stage: job for job in rendered}
    assert list(by_stage) == TOY_JOBS
    assert [job.template for job in rendered] == ["stage", "stage", "array", "merge", "stage"]
    for job in rendered:
        assert _template_comment(job.script) == TEMPLATE_COMMENTS[job.template]
    assert by_stage["toy_draws"].after == ["toy_prepare", "toy_fit"]
    assert by_stage["toy-merge"].after == ["toy_prepare", "toy_draws"]
    assert by_stage["report"].after == TOY_JOBS[:-1]
    draws = Path(by_stage["toy_draws"].script)
    assert _bash_array(draws, "UNIT_RANGES") == ["0:3", "3:5"]
    task_files = [str(tmp_path / "run" / "units" / "toy_draws" / f"task-{i}.h5") for i in range(2)]
    assert _bash_array(draws, "TASK_OUTPUTS") == task_files
    assert _sbatch_options(draws)["--ntasks"] == "3" and _sbatch_options(draws)["--array"] == "0-1"
    assert _last_line(draws)[7:11] == ["run", "toy_draws", str(config.resolve()), "--units"]
    assert _last_line(by_stage["toy-merge"].script)[7:] == ["run", "toy-merge", str(config.resolve()), *task_files]
    assert by_stage["toy-merge"].result_group == "toy_draws" and by_stage["toy_draws"].units == 5
    text = slurm.submit_command(toy_method, config, dry_run=True, site=_site(), run_dir=tmp_path / "run")
    assert "--array=0-1" in text and "'--dependency=afterok:<toy_prepare>:<toy_draws>'" in text


def test_template_comes_from_the_declaration_not_the_name():
    plain = StageSpec("permutations", "pepis", "m:f", "named like an array stage, declared plain")
    array = StageSpec("scan", "x", "m:f", "", array=ArrayUnits("u", lambda config: 1, "x.n", "combine"))
    merge = StageSpec("combine", "x", "m:f", "", merges="scan")
    assert [jobs.template_for(spec) for spec in (plain, array, merge)] == ["stage", "array", "merge"]


def test_every_method_has_a_job_definition_for_its_stages():
    for method in registry.methods():
        job = jobs.load_job(method)
        assert job.name == method and job.description
        assert set(job.resources) <= set(jobs.method_stages(method))


def test_values_from_config_and_site_are_quoted_not_run(tmp_path, probe, toy_method):
    """A hostile output path, config directory and site env value arrive literally; none of their commands runs."""
    config = _write_config(tmp_path / "analysis $(touch pwned0)", NASTY + ".h5", 4, 2, count_key=TOY_COUNT)
    site = _site(launcher="none", python=probe, env={"QTLHPC_PROBE": "$(touch pwned4) `touch pwned5`; touch pwned6"})
    rendered = slurm.render_pipeline(toy_method, config, site)
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
    recorded = json.loads((run_dir / "argv-toy_prepare-.json").read_text())
    assert recorded["argv"] == ["-m", "mpi4py", "-m", "qtlhpc", "run", "toy_prepare", str(config.resolve())]
    assert recorded["probe"] == "$(touch pwned4) `touch pwned5`; touch pwned6"
    task = json.loads((run_dir / "argv-toy_draws-1.json").read_text())
    assert task["argv"][7:] == ["--units", "2:4", "--unit-output", str(run_dir / "units" / "toy_draws" / "task-1.h5")]
    with h5py.File(config.parent / (NASTY + ".h5"), "r") as results:
        assert list(results["toy_draws/ids"][()]) == list(range(4))
    assert not list(tmp_path.rglob("pwned*"))
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
    with pytest.raises(ConfigError, match="unknown site 'loacl'; did you mean 'local'"):
        load_site("loacl")
    with pytest.raises(ConfigError, match=r"<j>: \[stages.kinship\]: time = 'two hours'"):
        jobs.job_from_dict({"name": "pepis", "stages": {"kinship": {"time": "two hours"}}}, source="<j>")
    with pytest.raises(ConfigError, match=r"\[stages.kinship\]: unknown resource 'ntask'; did you mean 'ntasks'"):
        jobs.job_from_dict({"name": "pepis", "stages": {"kinship": {"ntask": 2}}})
    with pytest.raises(ConfigError, match=r"\[stages.scan2e\]: pepis has no stage 'scan2e'; did you mean 'scan2d'"):
        jobs.job_from_dict({"name": "pepis", "stages": {"scan2e": {"ntasks": 2}}})
    with pytest.raises(ConfigError, match="unknown key 'stage'; did you mean 'stages'"):
        jobs.job_from_dict({"name": "pepis", "stage": {}})
    with pytest.raises(ConfigError, match="not a method; did you mean 'pepis'"):
        jobs.job_from_dict({"name": "pepsi"})
    with pytest.raises(ConfigError, match="unknown job 'pepsi'; did you mean 'pepis'"):
        jobs.load_job("pepsi")
    bad_job = tmp_path / "big.toml"
    bad_job.write_text('name = "pepis"\n[stages.scan2d]\nmem_per_cpu = "lots"\n')
    with pytest.raises(ConfigError, match=rf"{bad_job}: \[stages.scan2d\]: mem_per_cpu = 'lots'"):
        jobs.load_job(bad_job)
    config = _write_config(tmp_path, "results.h5", 4, 2, "resources = {scan2e = {ntasks = 2}}\n")
    with pytest.raises(ConfigError, match=r"\[slurm\] resources has stage 'scan2e'.*did you mean 'scan2d'"):
        slurm.render_pipeline("pepis", config, _site(), tmp_path / "run")
    config = _write_config(tmp_path, "results.h5", 0, 2)
    with pytest.raises(ConfigError, match=r"\[permutations\] n_permutations = 0 is out of range; expected >= 1"):
        slurm.render_pipeline("pepis", config, _site(), tmp_path / "run")
    assert load_site("local").launcher in ("srun", "mpirun", "none")
    assert load_site("example").modules  # the example profile parses


def test_dry_run_prints_commands_and_submits_nothing(tmp_path):
    config = _write_config(tmp_path, "results.h5", 4, 2)
    text = slurm.submit_command("pepis", config, dry_run=True, site=_site(), run_dir=tmp_path / "run")
    assert "'--dependency=afterok:<genoprob>:<kinship>:<varcomp>:<scan2d>' --array=0-1" in text
    assert "'--dependency=afterok:<genoprob>:<kinship>:<varcomp>:<permutations>' " in text
    assert not (tmp_path / "run" / "jobs.json").exists()
    submission = slurm.submit(slurm.render_pipeline("pepis", config, _site(), tmp_path / "run"), dry_run=True)
    assert submission.job_ids["permutations"] == "<permutations>" and len(submission.entries) == len(PEPIS_JOBS)
    assert not (tmp_path / "run" / "jobs.json").exists()


# --------------------------------------------------------------------------------------------
# Real submissions


def _tiny_run(tmp_path, probe, job, units=6, array_tasks=3, output="results.h5"):
    config = _write_config(tmp_path / "analysis", output, units, array_tasks, count_key=TOY_COUNT)
    rendered = slurm.render_pipeline(job, config, _site(python=probe))
    return config, rendered, Path(rendered[0].run_dir)


@pytest.mark.slurm
def test_pipeline_runs_in_dependency_order_on_slurm(tmp_path, probe, toy_method, slurm_cluster):
    config, rendered, run_dir = _tiny_run(tmp_path, probe, toy_method, output=NASTY + ".h5")
    ids = slurm.submit(rendered, env=slurm_cluster.env).job_ids
    states = slurm_cluster.wait(ids.values(), timeout=120)
    assert set(states.values()) == {"COMPLETED"}, states
    rows = slurm.status(run_dir, env=slurm_cluster.env)
    assert [(r.stage, r.task, r.state) for r in rows] == [
        ("toy_prepare", None, "finished"), ("toy_fit", None, "finished"), ("toy_draws", 0, "finished"),
        ("toy_draws", 1, "finished"), ("toy_draws", 2, "finished"), ("toy-merge", None, "finished"),
        ("report", None, "finished")]
    with h5py.File(tmp_path / "analysis" / (NASTY + ".h5"), "r") as results:
        assert list(results["toy_draws/ids"][()]) == list(range(6))
    records = json.loads((run_dir / "jobs.json").read_text())["submissions"]
    merge = next(r for r in records if r["stage"] == "toy-merge")
    assert merge["dependencies"] == [ids["toy_prepare"], ids["toy_draws"]]
    assert (run_dir / "logs" / f"slurm-toy_draws-{ids['toy_draws']}_2.out").exists()
    assert not list(tmp_path.rglob("pwned*"))
    assert "7 finished" in slurm.status_command(run_dir, env=slurm_cluster.env)


@pytest.mark.slurm
def test_failed_array_task_blocks_merge_and_resume_reruns_only_it(tmp_path, probe, toy_method, slurm_cluster):
    config, rendered, run_dir = _tiny_run(tmp_path, probe, toy_method, units=9, array_tasks=3)
    (run_dir / "fail-3").write_text("")  # task 1 covers ids 3:6
    ids = slurm.submit(rendered, env=slurm_cluster.env).job_ids
    states = slurm_cluster.wait(ids.values(), timeout=120)
    assert states[f"{ids['toy_draws']}_1"] == "FAILED"
    assert states[ids["toy-merge"]] == states[ids["report"]] == "CANCELLED"  # afterok can never be satisfied
    by_key = {(r.stage, r.task): r.state for r in slurm.status(run_dir, env=slurm_cluster.env)}
    assert by_key == {("toy_prepare", None): "finished", ("toy_fit", None): "finished",
                      ("toy_draws", 0): "finished", ("toy_draws", 1): "failed", ("toy_draws", 2): "finished",
                      ("toy-merge", None): "failed", ("report", None): "failed"}

    (run_dir / "fail-3").unlink()
    text = slurm.submit_command(None, None, resume_dir=run_dir, env=slurm_cluster.env)
    records = json.loads((run_dir / "jobs.json").read_text())["submissions"]
    resubmitted = [r for r in records if r.get("resume")]
    assert [(r["stage"], r["array"]) for r in resubmitted] == [("toy_draws", "1"), ("toy-merge", None),
                                                               ("report", None)]
    assert resubmitted[1]["dependencies"] == [resubmitted[0]["job_id"]]
    assert "resubmitted 3 jobs" in text
    slurm_cluster.wait([r["job_id"] for r in resubmitted], timeout=120)
    rows = slurm.status(run_dir, env=slurm_cluster.env)
    assert {r.state for r in rows} == {"finished"}, slurm.format_status(rows)
    with h5py.File(config.parent / "results.h5", "r") as results:
        assert list(results["toy_draws/ids"][()]) == list(range(9))
    assert slurm.resume(run_dir, env=slurm_cluster.env).entries == []


@pytest.mark.slurm
def test_resume_waits_on_stages_still_pending(tmp_path, probe, toy_method, slurm_cluster):
    config, rendered, run_dir = _tiny_run(tmp_path, probe, toy_method, units=4, array_tasks=2)
    # held for an hour (SLURM 22.05's sbatch ignores SBATCH_HOLD in the environment): an #SBATCH --begin line
    script = Path(rendered[0].script)
    lines = script.read_text().splitlines()
    lines.insert(next(i for i, line in enumerate(lines) if line.startswith("#SBATCH")), "#SBATCH --begin=now+3600")
    script.write_text("\n".join(lines) + "\n")
    held = slurm.submit(rendered[:1], env=slurm_cluster.env).job_ids["toy_prepare"]
    rows = {(r.stage, r.task): r.state for r in slurm.status(run_dir, env=slurm_cluster.env)}
    assert rows[("toy_prepare", None)] == "pending" and rows[("toy_fit", None)] == "missing"
    new = slurm.resume(run_dir, env=slurm_cluster.env).job_ids
    assert list(new) == TOY_JOBS[1:]  # toy_prepare is pending: not resubmitted
    records = {r["stage"]: r for r in json.loads((run_dir / "jobs.json").read_text())["submissions"]}
    assert records["toy_fit"]["dependencies"] == [held]
    assert records["toy_draws"]["dependencies"] == sorted([held, new["toy_fit"]])
    assert records["toy_draws"]["array"] == "0,1"
    assert records["toy-merge"]["dependencies"] == sorted([held, new["toy_draws"]])
    slurm_cluster.run("scontrol", "update", f"JobId={held}", "StartTime=now")
    slurm_cluster.wait([held, *new.values()], timeout=120)
    assert {r.state for r in slurm.status(run_dir, env=slurm_cluster.env)} == {"finished"}
