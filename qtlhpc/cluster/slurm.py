"""Run a qtlhpc pipeline on SLURM: render the sbatch scripts, submit them chained, report, resume.

A *job definition* (``jobs/NAME.toml``) lists the stages in order with their default resources; the
analysis config's ``[slurm]`` section may override them per stage (``resources``), size the
permutation array (``array_tasks``, with ``[permutations] n_permutations``), name the site profile
(``site``) and the run directory (``run_dir``, default ``<results file>.slurm`` beside the results).

Public API (the CLI's ``qtlhpc submit`` / ``qtlhpc status`` call the two ``*_command`` functions)::

    submit_command(job_name, config_path, *, dry_run=False, resume_dir=None, site=None,
                   run_dir=None, env=None) -> str
        Render and submit ``job_name`` (a name in jobs/ or a TOML path) for ``config_path``; with
        ``resume_dir``, resubmit only what is missing or failed in that run directory instead.
        Returns the text to print (job ids, or the sbatch commands under ``dry_run``).
    status_command(run_dir, *, env=None) -> str
        The table of stages and array tasks of a run directory.

    render_pipeline(job_def, config_path, site, run_dir) -> list[RenderedJob]
        Writes RUN_DIR/scripts/<stage>.sbatch and RUN_DIR/pipeline.json (stages, scripts, after,
        array ranges, result files).
    submit(rendered, dry_run=False, env=None) -> dict[stage, job id]
        ``sbatch --parsable --kill-on-invalid-dep=yes [--dependency=afterok:ID:...] SCRIPT`` for each
        job in order; records every submission in RUN_DIR/jobs.json.
    status(run_dir, env=None) -> list[StageStatus]
        One row per single stage and per array task: finished | failed | running | pending | missing,
        from the results (``status = "complete"`` on the stage's HDF5 group) and the job records
        (``scontrol show job``, the slurm-*.out logs).
    resume(run_dir, dry_run=False, env=None) -> dict[stage, job id]
        Resubmits only what is missing or failed (array tasks individually, ``--array=3,7``), with
        dependencies on what is still pending or running.

Every value that comes from a config, job definition or site profile is shell-quoted
(``shlex.quote``) when rendered, so none of it can run as a command.
"""

from __future__ import annotations

import datetime as _dt
import difflib
import json
import os
import re
import shlex
import string
import subprocess
import tomllib
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Dict, List, Mapping, Optional, Sequence, Tuple

from qtlhpc.cluster.sites import PROJECT_ROOT, Site, load_site
from qtlhpc.errors import ConfigError, QtlhpcError
from qtlhpc.parallel.partition import block_range

TEMPLATES_DIR = PROJECT_ROOT / "slurm"
JOBS_DIR = PROJECT_ROOT / "jobs"
RESOURCE_KEYS = ("nodes", "ntasks", "time", "mem_per_cpu")
_STAGE_KEYS = ("name", "template", "after", "program") + RESOURCE_KEYS
_DEFAULT_RESOURCES = {"nodes": 1, "ntasks": 1, "time": "01:00:00", "mem_per_cpu": "2G"}
_TIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")
_MEMORY = re.compile(r"^\d+[KMGT]?$")
_STATE_CLASS = {
    "PENDING": "pending", "REQUEUED": "pending", "SUSPENDED": "pending", "RESV_DEL_HOLD": "pending",
    "REQUEUE_HOLD": "pending", "REQUEUE_FED": "pending", "CONFIGURING": "running", "RUNNING": "running",
    "COMPLETING": "running", "STAGE_OUT": "running", "RESIZING": "running", "SIGNALING": "running",
}
STATES = ("finished", "failed", "running", "pending", "missing")


class SubmitError(QtlhpcError):
    """sbatch refused a job, or SLURM's clients cannot be run."""


# --------------------------------------------------------------------------------------------
# Job definitions


@dataclass(frozen=True)
class StageDef:
    """One stage of a job definition: template, upstream stages, resources, optional program argv."""

    name: str
    template: str
    after: Tuple[str, ...]
    resources: Mapping[str, object]
    program: Optional[Tuple[str, ...]] = None


@dataclass(frozen=True)
class JobDef:
    name: str
    stages: Tuple[StageDef, ...]
    source: str = "<job>"

    def stage(self, name: str) -> StageDef:
        return next(s for s in self.stages if s.name == name)


def job_path(name_or_path) -> Path:
    """``jobs/NAME.toml`` for a name, or the path itself."""
    candidate = Path(name_or_path)
    if candidate.suffix == ".toml":
        if not candidate.is_file():
            raise ConfigError(f"job definition {candidate} does not exist")
        return candidate
    path = JOBS_DIR / f"{name_or_path}.toml"
    if not path.is_file():
        known = sorted(p.stem for p in JOBS_DIR.glob("*.toml"))
        close = difflib.get_close_matches(str(name_or_path), known, n=1)
        raise ConfigError(f"unknown job {str(name_or_path)!r}" + (f"; did you mean {close[0]!r}?" if close else "")
                          + f" (known jobs: {', '.join(known) or 'none'}; or give a job TOML path)")
    return path


def load_job(name_or_path) -> JobDef:
    path = job_path(name_or_path)
    try:
        with open(path, "rb") as handle:
            return job_from_dict(tomllib.load(handle), source=str(path))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None


def job_from_dict(data: Mapping, source: str = "<job>") -> JobDef:
    """Check a job definition (``name`` and a list ``stages``) and fill the defaults."""
    stages_data = data.get("stages")
    if not isinstance(stages_data, list) or not stages_data:
        raise ConfigError(f"{source}: expected a non-empty list of [[stages]]")
    stages: List[StageDef] = []
    for index, item in enumerate(stages_data):
        where = f"{source}: stages[{index}]"
        for key in item:
            if key not in _STAGE_KEYS:
                raise ConfigError(f"{where}: unknown key {key!r}{_suggest(key, _STAGE_KEYS)}")
        if not isinstance(item.get("name"), str) or not item["name"]:
            raise ConfigError(f"{where}: every stage needs a name")
        name = item["name"]
        template = item.get("template", name)
        if not (TEMPLATES_DIR / f"{template}.sbatch").is_file():
            known = sorted(p.stem for p in TEMPLATES_DIR.glob("*.sbatch"))
            raise ConfigError(f"{where}: no template {template!r}{_suggest(template, known)} (in slurm/)")
        default_after = (stages[-1].name,) if stages else ()
        after = tuple(item.get("after", default_after))
        known_names = [s.name for s in stages]
        for upstream in after:
            if upstream not in known_names:
                raise ConfigError(f"{where} ({name}): after = {upstream!r} is not an earlier stage"
                                  f"{_suggest(upstream, known_names)}")
        resources = dict(_DEFAULT_RESOURCES)
        resources.update(_check_resources({k: item[k] for k in RESOURCE_KEYS if k in item}, where))
        program = item.get("program")
        if program is not None and not (isinstance(program, list) and all(isinstance(a, str) for a in program)):
            raise ConfigError(f"{where}: program must be a list of strings (the argv after the python)")
        stages.append(StageDef(name, template, after, resources, tuple(program) if program else None))
    names = [s.name for s in stages]
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: stage names repeat: {names}")
    return JobDef(str(data.get("name", Path(source).stem)), tuple(stages), source)


def _check_resources(values: Mapping, where: str) -> Dict[str, object]:
    checked: Dict[str, object] = {}
    for key, value in values.items():
        if key not in RESOURCE_KEYS:
            raise ConfigError(f"{where}: unknown resource {key!r}{_suggest(key, RESOURCE_KEYS)}"
                              f" (valid: {', '.join(RESOURCE_KEYS)})")
        if key in ("nodes", "ntasks"):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{where}: {key} = {value!r}; expected a positive integer")
        elif key == "time":
            if not isinstance(value, str) or not _TIME.match(value):
                raise ConfigError(f"{where}: time = {value!r}; expected SLURM's D-HH:MM:SS, HH:MM:SS or MM")
        elif key == "mem_per_cpu":
            if not isinstance(value, str) or not _MEMORY.match(value):
                raise ConfigError(f"{where}: mem_per_cpu = {value!r}; expected e.g. '2G' or '500M'")
        checked[key] = value
    return checked


def _suggest(name: str, candidates) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1)
    return f"; did you mean {close[0]!r}?" if close else ""


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
    """A rendered stage: its script, upstream stages and (array stages) the permutation ranges."""

    stage: str
    template: str
    script: str
    after: List[str]
    run_dir: str
    result_file: str
    result_group: str
    array_ranges: Optional[List[Tuple[int, int]]] = None
    task_outputs: Optional[List[str]] = None
    resources: Dict[str, object] = field(default_factory=dict)

    @property
    def is_array(self) -> bool:
        return self.array_ranges is not None


def permutation_ranges(n_permutations: int, array_tasks: int) -> List[Tuple[int, int]]:
    """Contiguous ``[start, stop)`` ranges of permutation ids, one per array task, covering all once.

    There are never more tasks than permutations (no empty task).
    """
    if n_permutations < 1:
        raise ConfigError(f"[permutations] n_permutations = {n_permutations}; expected at least 1")
    if array_tasks < 1:
        raise ConfigError(f"[slurm] array_tasks = {array_tasks}; expected at least 1")
    size = min(array_tasks, n_permutations)
    return [block_range(n_permutations, task, size) for task in range(size)]


def _load_config(config_path) -> Tuple[dict, Path, Dict[str, object]]:
    """The raw config, its results path, and the [slurm]/[permutations] values with defaults."""
    from qtlhpc.config import Config

    config = Config.load(config_path)
    slurm = config.section("slurm")
    values = {
        "site": slurm["site"],
        "run_dir": config.path(slurm["run_dir"]) if slurm["run_dir"] else None,
        "resources": slurm["resources"],
        "array_tasks": slurm["array_tasks"],
        "n_permutations": config.section("permutations")["n_permutations"],
    }
    return config.raw, config.output, values


def default_run_dir(output: Path) -> Path:
    """``results.h5`` -> ``results.slurm`` beside it."""
    return output.with_name(output.stem + ".slurm")


def render_pipeline(job_def, config_path, site: Optional[Site] = None, run_dir=None) -> List[RenderedJob]:
    """Render every stage of ``job_def`` for ``config_path`` into ``run_dir``; write pipeline.json."""
    if not isinstance(job_def, JobDef):
        job_def = load_job(job_def)
    config_path = Path(config_path).resolve()
    _, output, values = _load_config(config_path)
    site = site if site is not None else load_site(values["site"] or None)
    run_dir = Path(run_dir or values["run_dir"] or default_run_dir(output)).resolve()
    if "'" in str(run_dir) or "\n" in str(run_dir):
        raise ConfigError(f"run directory {str(run_dir)!r} contains a quote or line break, which sbatch's "
                          f"#SBATCH lines cannot carry; choose another [slurm] run_dir or [run] output")
    overrides = values["resources"]
    for stage_name, stage_values in overrides.items():
        if stage_name not in [s.name for s in job_def.stages]:
            raise ConfigError(f"{config_path}: [slurm] resources has stage {stage_name!r}, which job "
                              f"{job_def.name!r} does not have{_suggest(stage_name, [s.name for s in job_def.stages])}")
        if not isinstance(stage_values, dict):
            raise ConfigError(f"{config_path}: [slurm] resources.{stage_name} must be a table")
    for sub in ("scripts", "logs", "perm"):
        (run_dir / sub).mkdir(parents=True, exist_ok=True)
    ranges = permutation_ranges(int(values["n_permutations"]), int(values["array_tasks"]))
    task_outputs = [str(run_dir / "perm" / f"task-{task}.h5") for task in range(len(ranges))]
    rendered = []
    for stage in job_def.stages:
        resources = dict(stage.resources)
        resources.update(_check_resources(overrides.get(stage.name, {}), f"{config_path}: [slurm] resources.{stage.name}"))
        job = _render_stage(stage, resources, config_path, output, site, run_dir, job_def.name, ranges, task_outputs)
        rendered.append(job)
    manifest = {
        "job": job_def.name,
        "config": str(config_path),
        "output": str(output),
        "site": site.source,
        "run_dir": str(run_dir),
        "n_permutations": int(values["n_permutations"]),
        "rendered": _now(),
        "stages": [asdict(job) for job in rendered],
    }
    (run_dir / "pipeline.json").write_text(json.dumps(manifest, indent=2) + "\n")
    return rendered


def _render_stage(stage: StageDef, resources, config_path: Path, output: Path, site: Site, run_dir: Path,
                  job_name: str, ranges, task_outputs) -> RenderedJob:
    kind = stage.template
    is_array = kind == "permutations"
    cli_stage = {"permutations": "permutations", "merge": "merge-permutations"}.get(kind, stage.name)
    default_program = ["-m", "mpi4py", "-m", "qtlhpc", "run", cli_stage, str(config_path)]
    fill = {"config": str(config_path), "stage": stage.name, "run_dir": str(run_dir), "output": str(output)}
    program = [arg.format(**fill) for arg in stage.program] if stage.program else default_program
    log_name = f"slurm-{stage.name}-%A_%a.out" if is_array else f"slurm-{stage.name}-%j.out"
    values = {
        "job_name": f"{job_name}-{stage.name}",
        "nodes": str(resources["nodes"]),
        "ntasks": str(resources["ntasks"]),
        "time": str(resources["time"]),
        "mem_per_cpu": str(resources["mem_per_cpu"]),
        "output_log": str(run_dir / "logs" / log_name),
        "run_dir": str(run_dir),
        "python": site.interpreter,
    }
    quoted = {key: shlex.quote(value) for key, value in values.items()}
    quoted["program"] = " ".join(shlex.quote(arg) for arg in program)
    quoted["launcher"] = {"srun": "srun --mpi=pmix", "mpirun": 'mpirun -n "$SLURM_NTASKS"', "none": ""}[site.launcher]
    quoted["site_sbatch"] = "\n".join(_site_sbatch_lines(site))
    quoted["site_setup"] = "\n".join(_site_setup_lines(site))
    quoted["array_spec"] = f"0-{len(ranges) - 1}"
    quoted["perm_ranges"] = " ".join(f"{start}:{stop}" for start, stop in ranges)
    quoted["perm_outputs"] = " ".join(shlex.quote(path) for path in task_outputs)
    template_text = (TEMPLATES_DIR / f"{kind}.sbatch").read_text()
    script_text = _substitute(template_text, quoted)
    script = run_dir / "scripts" / f"{stage.name}.sbatch"
    script.write_text(script_text)
    script.chmod(0o755)
    result_group = "permutations" if kind in ("permutations", "merge") else stage.name
    return RenderedJob(
        stage=stage.name, template=kind, script=str(script), after=list(stage.after), run_dir=str(run_dir),
        result_file=str(output), result_group=result_group,
        array_ranges=[list(r) for r in ranges] if is_array else None,  # type: ignore[misc]
        task_outputs=list(task_outputs) if is_array else None, resources=dict(resources),
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


def _submit_one(job: Mapping, dependencies: Sequence[str], array: Optional[str], dry_run: bool,
                env, placeholder: str) -> Tuple[str, dict]:
    args = ["sbatch", "--parsable", "--kill-on-invalid-dep=yes", f"--chdir={job['run_dir']}"]
    if dependencies:
        args.append("--dependency=afterok:" + ":".join(dependencies))
    if array is not None:
        args.append(f"--array={array}")
    args.append(job["script"])
    job_id = placeholder if dry_run else _sbatch(args, env)
    entry = {"stage": job["stage"], "job_id": job_id, "array": array, "dependencies": list(dependencies),
             "command": args, "submitted": _now(), "dry_run": dry_run}
    return job_id, entry


def submit(rendered: Sequence[RenderedJob], dry_run: bool = False, env=None) -> Dict[str, str]:
    """Submit every rendered job in order, each ``afterok`` on its upstream stages; return the ids.

    Under ``dry_run`` nothing is submitted; the ids are ``<stage>`` placeholders and the would-be
    commands are recorded with ``"dry_run": true``.
    """
    if not rendered:
        return {}
    run_dir = Path(rendered[0].run_dir)
    job_ids: Dict[str, str] = {}
    entries = []
    for job in rendered:
        dependencies = [job_ids[name] for name in job.after]
        array = f"0-{len(job.array_ranges) - 1}" if job.is_array else None
        job_ids[job.stage], entry = _submit_one(asdict(job), dependencies, array, dry_run, env, f"<{job.stage}>")
        entries.append(entry)
    if not dry_run:
        _record(run_dir, entries)
    else:
        _last_dry_run[str(run_dir)] = entries
    return job_ids


#: the commands a dry run would have run, by run directory (for submit_command's text)
_last_dry_run: Dict[str, List[dict]] = {}


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
    try:
        proc = subprocess.run(["scontrol", "-o", "show", "job", str(job_id)], capture_output=True,
                              text=True, env=client_env(env), timeout=60)
    except FileNotFoundError:
        return {}
    if proc.returncode != 0:
        return {}
    states: Dict[Optional[int], str] = {}
    for line in proc.stdout.splitlines():
        record = dict(re.findall(r"(\w+)=(\S*)", line))
        if "JobState" not in record:
            continue
        task_spec = record.get("ArrayTaskId")
        if task_spec:
            for task in _expand_tasks(task_spec):
                states[task] = record["JobState"]
        else:
            states[None] = record["JobState"]
    return states


def _classify(slurm_state: Optional[str], log_exists: bool) -> Tuple[str, str]:
    if slurm_state is None:
        return ("failed", "no SLURM record; the log exists but the results are incomplete") if log_exists \
            else ("missing", "submitted but unknown to SLURM and no log")
    if slurm_state in _STATE_CLASS:
        return _STATE_CLASS[slurm_state], slurm_state
    if slurm_state == "COMPLETED":
        return "failed", "job COMPLETED but the results are not marked complete"
    return "failed", slurm_state


def status(run_dir, env=None) -> List[StageStatus]:
    """One row per single stage and per array task of the run in ``run_dir`` (see module docstring)."""
    run_dir = Path(run_dir)
    manifest = _load_manifest(run_dir)
    submissions = _submissions(run_dir)
    cache: Dict[str, Dict[Optional[int], str]] = {}

    def states_of(job_id: str):
        if job_id not in cache:
            cache[job_id] = job_states(job_id, env)
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
            state, detail = _classify(states_of(job_id).get(None), log.exists())
            rows.append(StageStatus(name, None, state, job_id, detail))
            continue
        for task, output in enumerate(stage["task_outputs"]):
            start, stop = stage["array_ranges"][task]
            ids = f"ids {start}:{stop}"
            covering = [s for s in mine if task in _expand_tasks(s["array"] or "")]
            job_id = covering[-1]["job_id"] if covering else ""
            if stage_complete(output, stage["result_group"]):
                rows.append(StageStatus(name, task, "finished", job_id, ids))
                continue
            if not covering:
                rows.append(StageStatus(name, task, "missing", "", f"{ids}; never submitted"))
                continue
            log = run_dir / "logs" / f"slurm-{name}-{job_id}_{task}.out"
            state, detail = _classify(states_of(job_id).get(task), log.exists())
            rows.append(StageStatus(name, task, state, job_id, f"{ids}; {detail}"))
    return rows


def format_status(rows: Sequence[StageStatus]) -> str:
    header = ("stage", "task", "state", "job", "detail")
    table = [header] + [(r.stage, "" if r.task is None else str(r.task), r.state, r.job_id, r.detail) for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths)) + "  " + row[4] for row in table]
    counts = {state: sum(r.state == state for r in rows) for state in STATES}
    lines.append(", ".join(f"{count} {state}" for state, count in counts.items() if count))
    return "\n".join(line.rstrip() for line in lines)


# --------------------------------------------------------------------------------------------
# Resume


def resume(run_dir, dry_run: bool = False, env=None) -> Dict[str, str]:
    """Resubmit what is missing or failed; depend on upstream jobs still pending or running.

    Finished stages and tasks are left alone; an array stage gets ``--array=<failed tasks>`` only.
    Returns ``{stage: new job id}`` for the stages resubmitted.
    """
    run_dir = Path(run_dir)
    manifest = _load_manifest(run_dir)
    rows = status(run_dir, env)
    by_stage: Dict[str, List[StageStatus]] = {}
    for row in rows:
        by_stage.setdefault(row.stage, []).append(row)
    waits: Dict[str, List[str]] = {}  # stage -> job ids a downstream job must wait for
    new_ids: Dict[str, str] = {}
    entries = []
    for stage in manifest["stages"]:
        name = stage["stage"]
        stage_rows = by_stage[name]
        active = [_active_id(row) for row in stage_rows if row.state in ("running", "pending")]
        todo = [row for row in stage_rows if row.state in ("failed", "missing")]
        waits[name] = list(active)
        if not todo:
            continue
        dependencies = sorted({job for upstream in stage["after"] for job in waits[upstream]})
        array = ",".join(str(row.task) for row in todo) if stage["array_ranges"] is not None else None
        job_id, entry = _submit_one(stage, dependencies, array, dry_run, env, f"<{name}>")
        entry["resume"] = True
        entries.append(entry)
        new_ids[name] = job_id
        waits[name].append(job_id)
    if dry_run:
        _last_dry_run[str(run_dir)] = entries
    else:
        _record(run_dir, entries)
    return new_ids


def _active_id(row: StageStatus) -> str:
    return row.job_id if row.task is None else f"{row.job_id}_{row.task}"


# --------------------------------------------------------------------------------------------
# The CLI's entry points


def submit_command(job_name, config_path, *, dry_run: bool = False, resume_dir=None, site=None,
                   run_dir=None, env=None) -> str:
    """``qtlhpc submit``: render and submit ``job_name`` for ``config_path`` (or resume ``resume_dir``).

    ``site`` is a site name, a profile path or a :class:`Site` (default: ``[slurm] site`` of the
    config, else ``local``).  Returns the text to print.
    """
    if resume_dir is not None:
        ids = resume(resume_dir, dry_run=dry_run, env=env)
        if not ids:
            return f"{resume_dir}: nothing to resubmit (every stage is finished, running or pending)\n" + \
                status_command(resume_dir, env=env)
        return _describe(Path(resume_dir), ids, dry_run, "resubmitted")
    site_profile = site if isinstance(site, Site) or site is None else load_site(site)
    rendered = render_pipeline(job_name, config_path, site_profile, run_dir)
    ids = submit(rendered, dry_run=dry_run, env=env)
    return _describe(Path(rendered[0].run_dir), ids, dry_run, "submitted")


def _describe(run_dir: Path, ids: Mapping[str, str], dry_run: bool, verb: str) -> str:
    if dry_run:
        commands = [shlex.join(entry["command"]) for entry in _last_dry_run.get(str(run_dir), [])]
        return (f"dry run: scripts rendered in {run_dir / 'scripts'}; would run:\n  " + "\n  ".join(commands)
                + "\n(<stage> stands for the job id sbatch would print)")
    lines = [f"{verb} {len(ids)} jobs; run directory {run_dir}"]
    lines += [f"  {stage}: job {job_id}" for stage, job_id in ids.items()]
    lines.append(f"follow with: qtlhpc status {run_dir}")
    return "\n".join(lines)


def status_command(run_dir, *, env=None) -> str:
    """``qtlhpc status RUN_DIR``: the table of stages and array tasks."""
    return format_status(status(run_dir, env))
