"""Run a method's pipeline on SLURM: render the sbatch scripts, submit them chained, report, resume.

The jobs of a run (stages, order, ``after``, template) come from the stage declarations and the
method's job definition (:mod:`qtlhpc.cluster.jobs`); the analysis config's ``[slurm]`` section sizes
the arrays (``array_tasks``), overrides resources per stage (``resources``), names the site profile
(``site``) and the run directory (``run_dir``, default ``<results file>.slurm`` beside the results).
Each job is rendered from one of three templates (``slurm/``, see :mod:`qtlhpc.resources`):

* ``stage.sbatch``: ``qtlhpc run STAGE CONFIG``;
* ``array.sbatch``: an array stage; task *i* runs ``qtlhpc run STAGE CONFIG --units START:STOP
  --unit-output RUN_DIR/units/STAGE/task-i.h5`` for the *i*-th of :func:`qtlhpc.stages.sharded.unit_ranges`
  over ``spec.array.count(config)`` units;
* ``merge.sbatch``: ``qtlhpc run MERGE_STAGE CONFIG TASK_FILE...`` with every task file of its array stage.

Public API (the CLI's ``qtlhpc submit`` / ``qtlhpc status`` call the two ``*_command`` functions)::

    submit_command(job_name, config_path, *, dry_run=False, resume_dir=None, site=None,
                   run_dir=None, env=None) -> str
        Render and submit ``job_name`` (a method's job definition in jobs/, or a TOML path) for
        ``config_path``; with ``resume_dir``, resubmit only what is missing or failed there instead.
        Returns the text to print (job ids, or the sbatch commands under ``dry_run``).
    status_command(run_dir, *, env=None) -> str
        The table of stages and array tasks of a run directory.

    render_pipeline(job_def, config_path, site, run_dir) -> list[RenderedJob]
        Writes RUN_DIR/scripts/<stage>.sbatch and RUN_DIR/pipeline.json (stages, scripts, after,
        units and their ranges, task files, result files).
    submit(rendered, dry_run=False, env=None) -> Submission
        ``sbatch --parsable --kill-on-invalid-dep=yes [--dependency=afterok:ID:...] SCRIPT`` for each
        job in order; records every submission in RUN_DIR/jobs.json (not under ``dry_run``).
    status(run_dir, env=None) -> list[StageStatus]
        One row per single stage and per array task: finished | failed | running | pending | missing,
        from the results (``status = "complete"`` on the stage's HDF5 group, in the results file or the
        task file) and the job records (``scontrol show job``, the slurm-*.out logs).
    resume(run_dir, dry_run=False, env=None) -> Submission
        Resubmits only what is missing or failed (array tasks individually, ``--array=3,7``), with
        dependencies on what is still pending or running.

Every value that comes from a config, job definition or site profile is shell-quoted
(``shlex.quote``) when rendered, so none of it can run as a command.
"""

from __future__ import annotations

import datetime as _dt
import json
import os
import re
import shlex
import string
import subprocess
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from qtlhpc.cluster.jobs import JobDef, PlannedJob, load_job, plan_jobs
from qtlhpc.cluster.limits import LimitsUnavailable, PartitionLimits, check_request, fit_request, pending_reason, read_limits
from qtlhpc.cluster.sites import Site, load_site
from qtlhpc.config import Config
from qtlhpc.errors import ConfigError, QtlhpcError
from qtlhpc.resources import folder
from qtlhpc.stages.sharded import unit_ranges

_STATE_CLASS = {
    "PENDING": "pending", "REQUEUED": "pending", "SUSPENDED": "pending", "RESV_DEL_HOLD": "pending",
    "REQUEUE_HOLD": "pending", "REQUEUE_FED": "pending", "CONFIGURING": "running", "RUNNING": "running",
    "COMPLETING": "running", "STAGE_OUT": "running", "RESIZING": "running", "SIGNALING": "running",
}
STATES = ("finished", "failed", "running", "pending", "missing")
LAUNCH = {"srun": "srun --mpi=pmix", "mpirun": 'mpirun -n "$SLURM_NTASKS"', "none": ""}


class SubmitError(QtlhpcError):
    """sbatch refused a job, or SLURM's clients cannot be run."""


# --------------------------------------------------------------------------------------------
# Rendering


class _ScriptTemplate(string.Template):
    """Only ``${lower_case}`` is a placeholder; shell's ``$VAR``, ``${UPPER}``, ``$(...)`` pass through."""

    flags = 0
    pattern = r"""
        \$(?:
          (?P<escaped>(?!))
        | (?P<named>(?!))
        | \{(?P<braced>[a-z][a-z0-9_]*)\}
        | (?P<invalid>(?!))
        )
    """


@dataclass
class RenderedJob:
    """A rendered job: its script and upstream stages; an array stage's units, ranges and task files;
    a merge stage's input files (its array stage's task files)."""

    stage: str
    template: str                                 # stage | array | merge
    script: str
    after: List[str]
    run_dir: str
    result_file: str
    result_group: str
    units: Optional[int] = None
    array_ranges: Optional[List[Tuple[int, int]]] = None
    task_outputs: Optional[List[str]] = None
    inputs: Optional[List[str]] = None
    resources: Dict[str, object] = field(default_factory=dict)

    @property
    def is_array(self) -> bool:
        return self.array_ranges is not None


def default_run_dir(output: Path) -> Path:
    """``results.h5`` -> ``results.slurm`` beside it."""
    return output.with_name(output.stem + ".slurm")


def run_dir_for(config: Config, run_dir=None) -> Path:
    """The run directory: ``run_dir`` if given, else ``[slurm] run_dir``, else ``<results>.slurm``; a relative
    path is relative to the config file's folder (as every path of an analysis)."""
    slurm = config.section("slurm")
    if run_dir is None:
        run_dir = config.path(slurm["run_dir"]) if slurm["run_dir"] else default_run_dir(config.output)
    run_dir = config.path(run_dir).resolve()
    if "'" in str(run_dir) or "\n" in str(run_dir):
        raise ConfigError(f"run directory {str(run_dir)!r} contains a quote or line break, which sbatch's "
                          f"#SBATCH lines cannot carry; choose another [slurm] run_dir or [run] output")
    return run_dir


def render_pipeline(job_def, config_path, site: Optional[Site] = None, run_dir=None,
                    adjust=None) -> List[RenderedJob]:
    """Render every job of a run of ``job_def`` for ``config_path`` into ``run_dir``; write pipeline.json.

    ``adjust(planned_jobs, config) -> planned_jobs``, if given, may change the resources of the jobs (or
    raise) before anything is written (``submit --from-plan``, ``--fit`` and the limits check)."""
    job_def = job_def if isinstance(job_def, JobDef) else load_job(job_def)
    config_path = Path(config_path).resolve()
    config = Config.load(config_path)
    slurm = config.section("slurm")
    site = site if site is not None else load_site(slurm["site"] or None)
    run_dir = run_dir_for(config, run_dir)
    planned = plan_jobs(job_def, config, str(config_path))
    if adjust is not None:
        planned = adjust(planned, config)
    for sub in ("scripts", "logs"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    context = _RenderContext(config_path, config.output, site, run_dir, job_def.name)
    shards: Dict[str, _Shards] = {}
    rendered = []
    for job in planned:
        if job.template == "array":
            shards[job.stage] = _shard(job, config, slurm["array_tasks"], run_dir)
        inputs = shards[job.spec.merges].outputs if job.template == "merge" else None
        rendered.append(_render_job(job, context, shards.get(job.stage), inputs))
    manifest = {
        "job": job_def.name,
        "config": str(config_path),
        "output": str(config.output),
        "site": site.source,
        "run_dir": str(run_dir),
        "rendered": _now(),
        "stages": [asdict(job) for job in rendered],
    }
    (run_dir / "pipeline.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return rendered


@dataclass(frozen=True)
class _RenderContext:
    """What every job of one run is rendered with."""

    config_path: Path
    output: Path
    site: Site
    run_dir: Path
    job_name: str


@dataclass(frozen=True)
class _Shards:
    """An array stage's units, their ``[start, stop)`` range per task, and each task's output file."""

    units: int
    ranges: List[List[int]]
    outputs: List[str]


def _shard(job: PlannedJob, config, array_tasks: int, run_dir: Path) -> _Shards:
    """Split ``spec.array.count(config)`` units over at most ``array_tasks`` tasks, task i writing
    RUN_DIR/units/STAGE/task-i.h5."""
    count = int(job.spec.array.count(config))
    ranges = unit_ranges(count, int(array_tasks), count_key=job.spec.array.count_key)
    directory = run_dir / "units" / job.stage
    directory.mkdir(parents=True, exist_ok=True)
    return _Shards(count, [list(r) for r in ranges], [str(directory / f"task-{i}.h5") for i in range(len(ranges))])


def _render_job(job: PlannedJob, context: _RenderContext, array: Optional[_Shards],
                inputs: Optional[List[str]]) -> RenderedJob:
    site, run_dir = context.site, context.run_dir
    program = ["-m", "mpi4py", "-m", "qtlhpc", "run", job.stage, str(context.config_path)]
    log_name = f"slurm-{job.stage}-%A_%a.out" if array else f"slurm-{job.stage}-%j.out"
    values = {
        "job_name": f"{context.job_name}-{job.stage}",
        "nodes": str(job.resources["nodes"]),
        "ntasks": str(job.resources["ntasks"]),
        "time": str(job.resources["time"]),
        "mem_per_cpu": str(job.resources["mem_per_cpu"]),
        "output_log": str(run_dir / "logs" / log_name),
        "run_dir": str(run_dir),
        "python": site.interpreter,
    }
    quoted = {key: shlex.quote(value) for key, value in values.items()}
    quoted["program"] = " ".join(shlex.quote(arg) for arg in program)
    quoted["launcher"] = LAUNCH[site.launcher]
    quoted["site_sbatch"] = "\n".join(_site_sbatch_lines(site))
    quoted["site_setup"] = "\n".join(_site_setup_lines(site))
    if array is not None:
        quoted["array_spec"] = f"0-{len(array.ranges) - 1}"
        quoted["unit_ranges"] = " ".join(f"{start}:{stop}" for start, stop in array.ranges)
        quoted["task_outputs"] = " ".join(shlex.quote(path) for path in array.outputs)
    if inputs is not None:
        quoted["task_files"] = " ".join(shlex.quote(path) for path in inputs)
    script = run_dir / "scripts" / f"{job.stage}.sbatch"
    script.write_text(_substitute((folder("slurm") / f"{job.template}.sbatch").read_text(), quoted))
    script.chmod(0o755)
    return RenderedJob(
        stage=job.stage, template=job.template, script=str(script), after=list(job.after), run_dir=str(run_dir),
        result_file=str(context.output), result_group=job.spec.group,
        units=array.units if array else None, array_ranges=array.ranges if array else None,
        task_outputs=array.outputs if array else None, inputs=inputs, resources=dict(job.resources),
    )


def _substitute(template_text: str, values: Mapping[str, str]) -> str:
    """Fill the placeholders line by line; a line that was only a placeholder and came out empty goes."""
    lines = []
    for line in template_text.splitlines():
        filled = _ScriptTemplate(line).substitute(values)
        if filled.strip() == "" and line.strip().startswith("${"):
            continue
        lines.append(filled)
    return "\n".join(lines) + "\n"


def _site_sbatch_lines(site: Site) -> List[str]:
    lines = []
    if site.partition:
        lines.append(f"#SBATCH --partition={shlex.quote(site.partition)}")
    if site.account:
        lines.append(f"#SBATCH --account={shlex.quote(site.account)}")
    for option in site.extra_sbatch:
        name, value = option.split("=", 1)
        lines.append(f"#SBATCH {name}={shlex.quote(value)}")
    return lines


def _site_setup_lines(site: Site) -> List[str]:
    lines = []
    if site.modules:
        lines.append('command -v module >/dev/null 2>&1 || { echo "qtlhpc: the site profile loads modules '
                     'but this shell has no module command" >&2; exit 1; }')
        lines += [f"module load {shlex.quote(module)}" for module in site.modules]
    lines += [f"export {name}={shlex.quote(value)}" for name, value in site.env.items()]
    return lines


# --------------------------------------------------------------------------------------------
# Submission and job records


def _now() -> str:
    return _dt.datetime.now().isoformat(timespec="seconds")


#: variables that make a process one rank of a launched MPI job (Open MPI, PMIx, PMI).  MPI_Init in the
#: submitting process (``qtlhpc submit`` runs under mpi4py) sets them in its C environment as a
#: singleton; sbatch would copy them into every job, whose ranks would then share one MPI job id and
#: collide in shared memory when two jobs run on one node at once.
_MPI_RANK_VARIABLE = re.compile(
    r"(PMIX_|PMI_|ORTE_|OMPI_COMM_WORLD_|OMPI_APP_CTX_|OMPI_MCA_orte_ess_|OMPI_MCA_ess_).*"
    r"|OMPI_MCA_(ess|pmix|orte_launch|orte_precondition_transports)"
    r"|OMPI_(FILE_LOCATION|UNIVERSE_SIZE|FIRST_RANKS|NUM_APP_CTX|ARGV|COMMAND|MCA_initial_wdir)"
)


def client_env(env: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """The environment for sbatch and scontrol: ``env`` (default: this process's, as Python read it
    at start-up) without the variables that describe an MPI rank (see ``_MPI_RANK_VARIABLE``).

    Settings such as ``OMPI_ALLOW_RUN_AS_ROOT`` or ``OMPI_MCA_btl`` pass through: sbatch forwards them
    to the jobs.
    """
    source = os.environ if env is None else env
    return {name: value for name, value in source.items() if not _MPI_RANK_VARIABLE.fullmatch(name)}


def _sbatch(args: List[str], env) -> str:
    try:
        proc = subprocess.run(args, capture_output=True, text=True, env=client_env(env), timeout=120)
    except FileNotFoundError:
        raise SubmitError("sbatch is not on PATH: submit from a SLURM login node") from None
    if proc.returncode != 0:
        raise SubmitError(f"sbatch failed ({proc.returncode}): {proc.stderr.strip()}\n$ {shlex.join(args)}")
    return proc.stdout.strip().split(";")[0]


def _record(run_dir: Path, entries: List[dict]) -> None:
    path = run_dir / "jobs.json"
    records = json.loads(path.read_text()) if path.exists() else {"submissions": []}
    records["submissions"].extend(entries)
    path.write_text(json.dumps(records, indent=2) + "\n")


def _submit_one(job: Mapping, dependencies: Sequence[str], array: Optional[str], dry_run: bool, env) -> dict:
    """sbatch one job (a pipeline.json stage entry); the record of it, as jobs.json keeps it."""
    args = ["sbatch", "--parsable", "--kill-on-invalid-dep=yes", f"--chdir={job['run_dir']}"]
    if dependencies:
        args.append("--dependency=afterok:" + ":".join(dependencies))
    if array is not None:
        args.append(f"--array={array}")
    args.append(job["script"])
    job_id = f"<{job['stage']}>" if dry_run else _sbatch(args, env)
    return {"stage": job["stage"], "job_id": job_id, "array": array, "dependencies": list(dependencies),
            "command": args, "submitted": _now(), "dry_run": dry_run}


@dataclass
class Submission:
    """What :func:`submit` or :func:`resume` sent to sbatch (or, under ``dry_run``, would have sent):
    one record per job, as jobs.json keeps them; a dry run's ids are ``<stage>`` placeholders."""

    run_dir: Path
    entries: List[dict]
    dry_run: bool = False

    @property
    def job_ids(self) -> Dict[str, str]:
        return {entry["stage"]: entry["job_id"] for entry in self.entries}


def submit(rendered: Sequence[RenderedJob], dry_run: bool = False, env=None) -> Submission:
    """Submit every rendered job in order, each ``afterok`` on its upstream stages.

    Under ``dry_run`` nothing is submitted or recorded; the returned records hold the would-be commands.
    """
    if not rendered:
        raise ConfigError("nothing to submit: the run has no jobs")
    run_dir = Path(rendered[0].run_dir)
    job_ids: Dict[str, str] = {}
    entries = []
    for job in rendered:
        dependencies = [job_ids[name] for name in job.after]
        array = f"0-{len(job.array_ranges) - 1}" if job.is_array else None
        entry = _submit_one(asdict(job), dependencies, array, dry_run, env)
        job_ids[job.stage] = entry["job_id"]
        entries.append(entry)
    if not dry_run:
        _record(run_dir, entries)
    return Submission(run_dir, entries, dry_run)


# --------------------------------------------------------------------------------------------
# Status


@dataclass
class StageStatus:
    stage: str
    task: Optional[int]
    state: str
    job_id: str = ""
    detail: str = ""


def _load_manifest(run_dir: Path) -> dict:
    path = Path(run_dir) / "pipeline.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir} is not a qtlhpc run directory (no pipeline.json); "
                          f"expected the directory `qtlhpc submit` printed")
    return json.loads(path.read_text())


def _submissions(run_dir: Path) -> List[dict]:
    path = Path(run_dir) / "jobs.json"
    return json.loads(path.read_text())["submissions"] if path.exists() else []


def stage_complete(path, group: str) -> bool:
    """True when ``path`` holds ``/group`` with attribute ``status == "complete"`` (read-only)."""
    import h5py

    if not Path(path).is_file():
        return False
    try:
        try:
            handle = h5py.File(path, "r", locking=False)
        except TypeError:  # pragma: no cover - h5py before 3.5
            handle = h5py.File(path, "r")
        with handle:
            if group not in handle:
                return False
            status = handle[group].attrs.get("status", "")
            if isinstance(status, bytes):
                status = status.decode()
            return status == "complete"
    except OSError:
        return False


def _expand_tasks(spec: str) -> List[int]:
    """``"0-3,7"`` or ``"5-9%2"`` -> task ids."""
    tasks: List[int] = []
    for part in spec.split("%")[0].split(","):
        if "-" in part:
            start, stop = part.split("-")
            tasks.extend(range(int(start), int(stop) + 1))
        elif part:
            tasks.append(int(part))
    return tasks


def job_states(job_id: str, env=None) -> Dict[Optional[int], str]:
    """SLURM states of a job from ``scontrol show job``: ``{None: state}`` or ``{task: state}``.

    Empty when SLURM no longer knows the job (or scontrol is missing).
    """
    return {task: state for task, (state, _) in job_records(job_id, env).items()}


def job_records(job_id: str, env=None) -> Dict[Optional[int], Tuple[str, str]]:
    """``{None or task: (state, reason)}`` of a job from ``scontrol show job`` (reason: SLURM's
    ``Reason``, e.g. ``PartitionConfig`` for a pending job); empty when SLURM does not know the job."""
    try:
        proc = subprocess.run(["scontrol", "-o", "show", "job", str(job_id)], capture_output=True,
                              text=True, env=client_env(env), timeout=60)
    except FileNotFoundError:
        return {}
    if proc.returncode != 0:
        return {}
    return parse_job_records(proc.stdout)


def parse_job_records(text: str) -> Dict[Optional[int], Tuple[str, str]]:
    """``scontrol -o show job`` text -> ``{None or task: (state, reason)}``."""
    states: Dict[Optional[int], Tuple[str, str]] = {}
    for line in text.splitlines():
        record = dict(re.findall(r"(\w+)=(\S*)", line))
        if "JobState" not in record:
            continue
        value = (record["JobState"], record.get("Reason", "None"))
        task_spec = record.get("ArrayTaskId")
        if task_spec:
            for task in _expand_tasks(task_spec):
                states[task] = value
        else:
            states[None] = value
    return states


def _classify(slurm_state: Optional[str], reason: str, log_exists: bool) -> Tuple[str, str]:
    if slurm_state is None:
        return ("failed", "no SLURM record; the log exists but the results are incomplete") if log_exists \
            else ("missing", "submitted but unknown to SLURM and no log")
    if slurm_state in _STATE_CLASS:
        detail = slurm_state
        if _STATE_CLASS[slurm_state] == "pending" and reason and reason != "None":
            detail = f"{slurm_state}, reason {pending_reason(reason)[1]}"
        return _STATE_CLASS[slurm_state], detail
    if slurm_state == "COMPLETED":
        return "failed", "job COMPLETED but the results are not marked complete"
    return "failed", slurm_state + (f": {_FAILED_ADVICE[slurm_state]}" if slurm_state in _FAILED_ADVICE else "")


#: what to do after a job ended in these states (``qtlhpc status``); finished blocks are kept in every case
_FAILED_ADVICE = {
    "TIMEOUT": "it hit its time limit; its finished blocks are kept: raise time in [slurm] resources (or "
               "`qtlhpc submit --from-plan`) and `qtlhpc submit --resume RUN_DIR` continues from them",
    "OUT_OF_MEMORY": "it ran out of memory: raise mem_per_cpu in [slurm] resources (`qtlhpc plan` estimates it) "
                     "and `qtlhpc submit --resume RUN_DIR`",
    "NODE_FAIL": "a node failed; its finished blocks are kept: `qtlhpc submit --resume RUN_DIR`",
    "PREEMPTED": "it was preempted; its finished blocks are kept: `qtlhpc submit --resume RUN_DIR`",
    "BOOT_FAIL": "its node did not boot: `qtlhpc submit --resume RUN_DIR`",
    "DEADLINE": "it passed its deadline: `qtlhpc submit --resume RUN_DIR`",
}


def status(run_dir, env=None) -> List[StageStatus]:
    """One row per single stage and per array task of the run in ``run_dir`` (see module docstring)."""
    run_dir = Path(run_dir)
    manifest = _load_manifest(run_dir)
    submissions = _submissions(run_dir)
    cache: Dict[str, Dict[Optional[int], Tuple[str, str]]] = {}

    def states_of(job_id: str):
        if job_id not in cache:
            cache[job_id] = job_records(job_id, env)
        return cache[job_id]

    rows: List[StageStatus] = []
    for stage in manifest["stages"]:
        name = stage["stage"]
        mine = [s for s in submissions if s["stage"] == name]
        if stage["array_ranges"] is None:
            if stage_complete(stage["result_file"], stage["result_group"]):
                rows.append(StageStatus(name, None, "finished", mine[-1]["job_id"] if mine else ""))
                continue
            if not mine:
                rows.append(StageStatus(name, None, "missing", "", "never submitted"))
                continue
            job_id = mine[-1]["job_id"]
            log = run_dir / "logs" / f"slurm-{name}-{job_id}.out"
            state, detail = _classify(*_state_reason(states_of(job_id).get(None)), log.exists())
            rows.append(StageStatus(name, None, state, job_id, detail))
            continue
        for task, output in enumerate(stage["task_outputs"]):
            start, stop = stage["array_ranges"][task]
            ids = f"units {start}:{stop}"
            covering = [s for s in mine if task in _expand_tasks(s["array"] or "")]
            job_id = covering[-1]["job_id"] if covering else ""
            if stage_complete(output, stage["result_group"]):
                rows.append(StageStatus(name, task, "finished", job_id, ids))
                continue
            if not covering:
                rows.append(StageStatus(name, task, "missing", "", f"{ids}; never submitted"))
                continue
            log = run_dir / "logs" / f"slurm-{name}-{job_id}_{task}.out"
            state, detail = _classify(*_state_reason(states_of(job_id).get(task)), log.exists())
            rows.append(StageStatus(name, task, state, job_id, f"{ids}; {detail}"))
    return rows


def _state_reason(record):
    """``(state, reason)`` or ``(None, "")``, for :func:`_classify` (whose log flag comes last)."""
    return (record[0], record[1]) if record else (None, "")


def format_status(rows: Sequence[StageStatus]) -> str:
    header = ("stage", "task", "state", "job", "detail")
    table = [header] + [(r.stage, "" if r.task is None else str(r.task), r.state, r.job_id, r.detail) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths)) + "  " + row[4] for row in table]
    counts = {state: sum(r.state == state for r in rows) for state in STATES}
    lines.append(", ".join(f"{count} {state}" for state, count in counts.items() if count))
    never = [r for r in rows if "NEVER STARTS" in r.detail]
    if never:
        lines.append(f"warning: {len(never)} job(s) can never start as submitted (see NEVER STARTS above): "
                     f"cancel them and resubmit with resources that fit")
    return "\n".join(line.rstrip() for line in lines)


# --------------------------------------------------------------------------------------------
# Resume


def resume(run_dir, dry_run: bool = False, env=None) -> Submission:
    """Resubmit what is missing or failed; depend on upstream jobs still pending or running.

    Finished stages and tasks are left alone; an array stage gets ``--array=<failed tasks>`` only.
    The returned records hold the stages resubmitted (none when everything is finished or under way).
    """
    run_dir = Path(run_dir)
    manifest = _load_manifest(run_dir)
    by_stage: Dict[str, List[StageStatus]] = {}
    for row in status(run_dir, env):
        by_stage.setdefault(row.stage, []).append(row)
    waits: Dict[str, List[str]] = {}  # stage -> job ids a downstream job must wait for
    entries = []
    for stage in manifest["stages"]:
        name = stage["stage"]
        waits[name] = [_active_id(row) for row in by_stage[name] if row.state in ("running", "pending")]
        todo = [row for row in by_stage[name] if row.state in ("failed", "missing")]
        if not todo:
            continue
        dependencies = sorted({job for upstream in stage["after"] for job in waits[upstream]})
        array = ",".join(str(row.task) for row in todo) if stage["array_ranges"] is not None else None
        entry = _submit_one(stage, dependencies, array, dry_run, env)
        entry["resume"] = True
        entries.append(entry)
        waits[name].append(entry["job_id"])
    if not dry_run:
        _record(run_dir, entries)
    return Submission(run_dir, entries, dry_run)


def _active_id(row: StageStatus) -> str:
    return row.job_id if row.task is None else f"{row.job_id}_{row.task}"


# --------------------------------------------------------------------------------------------
# The CLI's entry points


def submit_command(job_name, config_path, *, dry_run: bool = False, resume_dir=None, site=None,
                   run_dir=None, env=None, fit: bool = False, from_plan: bool = False,
                   limits: Optional[PartitionLimits] = None) -> str:
    """``qtlhpc submit``: render and submit ``job_name`` for ``config_path`` (or resume ``resume_dir``).

    ``site`` is a site name, a profile path or a :class:`Site` (default: ``[slurm] site`` of the
    config, else ``local``).  Returns the text to print.

    Before anything is written: a run directory whose jobs are still pending or running is refused; the
    resources of each job (the job definition's, replaced by ``qtlhpc plan``'s suggestions under
    ``from_plan``, then by the config's ``[slurm] resources``) are checked against the limits of the site's
    partition (``limits``, default: read with scontrol, see :mod:`qtlhpc.cluster.limits`).  A request the
    partition cannot meet is refused naming the values that fit, or, under ``fit``, shrunk to them.
    """
    if resume_dir is not None:
        submission = resume(resume_dir, dry_run=dry_run, env=env)
        if not submission.entries:
            return f"{resume_dir}: nothing to resubmit (every stage is finished, running or pending)\n" + \
                status_command(resume_dir, env=env)
        return _describe(submission, "resubmitted")
    site_profile = site if isinstance(site, Site) or site is None else load_site(site)
    config = Config.load(Path(config_path))
    if site_profile is None:
        site_profile = load_site(config.section("slurm")["site"] or None)
    refuse_active_run_dir(run_dir_for(config, run_dir), env)
    notes: List[str] = []
    if limits is None:
        try:
            limits = read_limits(site_profile.partition, env)
        except LimitsUnavailable as error:
            if fit or from_plan:
                raise
            notes.append(f"note: the cluster's limits were not checked: {error}")
    adjust = _resource_adjuster(limits, fit=fit, from_plan=from_plan, python=site_profile.interpreter, notes=notes)
    rendered = render_pipeline(job_name, config_path, site_profile, run_dir, adjust=adjust)
    text = _describe(submit(rendered, dry_run=dry_run, env=env), "submitted")
    return "\n".join(notes + [text])


def refuse_active_run_dir(run_dir: Path, env=None) -> None:
    """Refuse a new submission into ``run_dir`` while jobs recorded there are still pending or running:
    their stages write the same results file and logs, and the new pipeline.json would replace theirs."""
    run_dir = Path(run_dir)
    if not (run_dir / "jobs.json").is_file() or not (run_dir / "pipeline.json").is_file():
        return
    active = [row for row in status(run_dir, env) if row.state in ("pending", "running")]
    if active:
        listed = ", ".join(f"{row.stage}{'' if row.task is None else f'[{row.task}]'} job {row.job_id} ({row.state})"
                           for row in active)
        ids = " ".join(sorted({row.job_id for row in active}))
        raise SubmitError(f"{run_dir} has jobs still queued or running: {listed}; wait for them "
                          f"(qtlhpc status {run_dir}), cancel them (scancel {ids}), or submit into another run "
                          f"directory (--run-dir)")


def _resource_adjuster(limits: Optional[PartitionLimits], *, fit: bool, from_plan: bool, python: str,
                       notes: List[str]):
    """The ``adjust`` hook of :func:`render_pipeline` for :func:`submit_command` (see there)."""
    from dataclasses import replace

    from qtlhpc.cluster.jobs import check_resources

    def adjust(planned: List[PlannedJob], config: Config) -> List[PlannedJob]:
        overrides = config.section("slurm")["resources"]
        suggested = _plan_resources(config, planned, python) if from_plan else {}
        problems, result = [], []
        for job in planned:
            resources = dict(job.resources)
            if job.stage in suggested:
                resources.update(suggested[job.stage])
                resources.update(check_resources(overrides.get(job.stage, {}), f"[slurm] resources.{job.stage}"))
                notes.append(f"{job.stage}: from the plan: ntasks {resources['ntasks']}, mem_per_cpu "
                             f"{resources['mem_per_cpu']}, time {resources['time']}")
            if limits is not None:
                if fit:
                    resources, changes = fit_request(resources, limits)
                    if changes:
                        notes.append(f"{job.stage}: fitted to partition {limits.name!r}: " + ", ".join(changes))
                else:
                    problems += [f"{job.stage}: {problem}" for problem in check_request(resources, limits)]
            result.append(replace(job, resources=resources))
        if problems:
            raise SubmitError(
                f"the cluster cannot run these requests ({limits.describe()}): " + "; ".join(problems)
                + ". Nothing was submitted: lower them in [slurm] resources of the config, or let "
                  "`qtlhpc submit --fit` shrink them (`--from-plan` asks for what `qtlhpc plan` suggests)")
        return result

    return adjust


def _plan_resources(config: Config, planned: List[PlannedJob], python: str) -> Dict[str, Dict[str, object]]:
    """``qtlhpc plan``'s suggestion per planned stage, as job resources; an array stage's time is that
    of one of its tasks."""
    from qtlhpc.cluster.plan import interpreter_base_memory, plan, problem_for_config, slurm_time, throughput

    size, _ = problem_for_config(config)
    names = [job.stage for job in planned]
    plans = {p.stage: p for p in plan(size, base_memory=interpreter_base_memory(python),
                                      stages=[name for name in names if _has_plan(name)])}
    tasks = {job.stage: len(unit_ranges(int(job.spec.array.count(config)), int(config.section("slurm")["array_tasks"]),
                                        count_key=job.spec.array.count_key))
             for job in planned if job.spec.array is not None}
    resources = {}
    for name, stage_plan in plans.items():
        entry = stage_plan.resources()
        rate = throughput(name)[1]
        entry["time"] = slurm_time(2 * stage_plan.work / (rate * stage_plan.suggested_ntasks * tasks.get(name, 1)))
        resources[name] = entry
    return resources


def _has_plan(stage: str) -> bool:
    from qtlhpc.cluster.plan import planned_stages

    return stage in planned_stages()


def _describe(submission: Submission, verb: str) -> str:
    run_dir = submission.run_dir
    if submission.dry_run:
        commands = [shlex.join(entry["command"]) for entry in submission.entries]
        return (f"dry run: scripts in {run_dir / 'scripts'}; would run:\n  " + "\n  ".join(commands)
                + "\n(<stage> stands for the job id sbatch would print)")
    lines = [f"{verb} {len(submission.entries)} jobs; run directory {run_dir}"]
    lines += [f"  {stage}: job {job_id}" for stage, job_id in submission.job_ids.items()]
    lines.append(f"follow with: qtlhpc status {run_dir}")
    return "\n".join(lines)


def status_command(run_dir, *, env=None) -> str:
    """``qtlhpc status RUN_DIR``: the table of stages and array tasks."""
    return format_status(status(run_dir, env))
