"""SLURM job definitions, and the jobs of a run: which stages, in what order, after what, from what template.

A job definition (``jobs/METHOD.toml``, or any TOML path) holds only what the stage declarations do not
know, the default resources of each stage::

    name = "pepis"                     # the method whose stages it runs (default: the file's name)
    description = "..."
    [stages.scan2d]                    # any of nodes, ntasks, time, mem_per_cpu; the rest default
    ntasks = 32
    time = "12:00:00"

Everything else comes from the declarations (:mod:`qtlhpc.stages.registry`), so a new stage or method
needs no edit here:

* the stages: ``registry.pipeline(method, config)``, each array stage followed by its merge stage
  (``spec.array.merge``), then the ``report`` stage;
* the template: ``array`` for an array stage (``spec.array``), ``merge`` for a merge stage
  (``spec.merges``), ``stage`` otherwise;
* ``after``: the stages it needs (a stage that needs an array stage waits for that stage's merge), a
  merge stage's array stage, and the stage just before it: the results file has one writer at a time
  and array tasks read it, so no two stages may overlap.  ``report`` waits for every other stage.

The analysis config's ``[slurm] resources`` overrides the defaults per stage (:func:`plan_jobs`).
"""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Mapping, Tuple

from qtlhpc.errors import ConfigError, did_you_mean
from qtlhpc.resources import named_file
from qtlhpc.stages import registry
from qtlhpc.stages.spec import StageSpec

RESOURCE_KEYS = ("nodes", "ntasks", "time", "mem_per_cpu")
DEFAULT_RESOURCES = {"nodes": 1, "ntasks": 1, "time": "01:00:00", "mem_per_cpu": "2G"}
JOB_KEYS = ("name", "description", "stages")
REPORT_STAGE = "report"
TEMPLATES = ("stage", "array", "merge")
_TIME = re.compile(r"^(\d+-)?\d+(:\d{1,2}){0,2}$")
_MEMORY = re.compile(r"^\d+[KMGT]?$")


@dataclass(frozen=True)
class JobDef:
    """A job definition: the method it runs and the default resources it gives stages (by stage name)."""

    name: str
    description: str
    resources: Mapping[str, Mapping[str, object]]
    source: str = "<job>"

    def defaults(self, stage: str) -> Dict[str, object]:
        return {**DEFAULT_RESOURCES, **self.resources.get(stage, {})}


@dataclass(frozen=True)
class PlannedJob:
    """One job of a run: the stage's declaration, its template, the stages it waits for, its resources."""

    spec: StageSpec
    template: str
    after: Tuple[str, ...]
    resources: Mapping[str, object]

    @property
    def stage(self) -> str:
        return self.spec.name


def template_for(spec: StageSpec) -> str:
    """``array``, ``merge`` or ``stage``: decided by the declaration, never by the name."""
    if spec.array is not None:
        return "array"
    return "merge" if spec.merges is not None else "stage"


# --------------------------------------------------------------------------------------------
# Job definitions


def job_path(name_or_path) -> Path:
    """``jobs/NAME.toml`` for a name, or the path itself."""
    return named_file(name_or_path, "jobs", "{}.toml", "job")


def load_job(name_or_path) -> JobDef:
    path = job_path(name_or_path)
    try:
        with open(path, "rb") as handle:
            return job_from_dict(tomllib.load(handle), source=str(path))
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML: {error}") from None


def job_from_dict(data: Mapping, source: str = "<job>") -> JobDef:
    """Check a job definition (see the module docstring) and return it."""
    for key in data:
        if key not in JOB_KEYS:
            raise ConfigError(f"{source}: unknown key {key!r}{did_you_mean(key, JOB_KEYS)} "
                              f"(valid keys: {', '.join(JOB_KEYS)})")
    name = data.get("name", Path(source).stem)
    methods = registry.methods()
    if name not in methods:
        raise ConfigError(f"{source}: name = {name!r} is not a method{did_you_mean(name, methods)} "
                          f"(methods: {', '.join(methods)}); a job definition runs one method's stages")
    description = data.get("description", "")
    if not isinstance(description, str):
        raise ConfigError(f"{source}: description = {description!r}; expected a string")
    stages = data.get("stages", {})
    if not isinstance(stages, dict):
        raise ConfigError(f"{source}: stages must be tables [stages.STAGE] of resources")
    known = method_stages(name)
    resources = {}
    for stage, values in stages.items():
        if stage not in known:
            raise ConfigError(f"{source}: [stages.{stage}]: {name} has no stage {stage!r}"
                              f"{did_you_mean(stage, known)} (its stages: {', '.join(known)})")
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: stages.{stage} must be a table of resources")
        resources[stage] = check_resources(values, f"{source}: [stages.{stage}]")
    return JobDef(name, description, resources, source)


def method_stages(method: str) -> List[str]:
    """Every stage a run of ``method`` can have, whatever its config: its own and the shared ones."""
    return [s.name for s in registry.stages().values() if s.method == method or s.method.startswith("shared")]


def check_resources(values: Mapping, where: str) -> Dict[str, object]:
    """Check resource keys and values (SLURM's formats); ``where`` starts each message."""
    checked: Dict[str, object] = {}
    for key, value in values.items():
        if key not in RESOURCE_KEYS:
            raise ConfigError(f"{where}: unknown resource {key!r}{did_you_mean(key, RESOURCE_KEYS)}"
                              f" (valid: {', '.join(RESOURCE_KEYS)})")
        if key in ("nodes", "ntasks"):
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ConfigError(f"{where}: {key} = {value!r}; expected a positive integer")
        elif key == "time":
            if not isinstance(value, str) or not _TIME.match(value):
                raise ConfigError(f"{where}: time = {value!r}; expected SLURM's D-HH:MM:SS, HH:MM:SS or MM")
        elif not isinstance(value, str) or not _MEMORY.match(value):
            raise ConfigError(f"{where}: mem_per_cpu = {value!r}; expected e.g. '2G' or '500M'")
        checked[key] = value
    return checked


# --------------------------------------------------------------------------------------------
# The jobs of a run


def run_stages(method: str, config) -> List[StageSpec]:
    """The stages a run of ``method`` submits, in order: its pipeline for ``config``, each array stage
    followed by its merge stage, then ``report``."""
    found = registry.stages()
    names: List[str] = []
    for name in registry.pipeline(method, config):
        names.append(name)
        if found[name].array is not None:
            names.append(found[name].array.merge)
    if REPORT_STAGE in found and REPORT_STAGE not in names:
        names.append(REPORT_STAGE)
    return [found[name] for name in names]


def _after(specs: List[StageSpec], index: int, config) -> Tuple[str, ...]:
    earlier = [spec.name for spec in specs[:index]]
    spec = specs[index]
    if spec.name == REPORT_STAGE:
        return tuple(earlier)
    merge_of = {s.name: s.array.merge for s in specs if s.array is not None}
    upstream = {merge_of.get(name, name) for name in spec.needed_stages(config)}
    upstream.update(earlier[-1:])               # one stage at a time on the results file
    if spec.merges is not None:
        upstream.add(spec.merges)
    return tuple(name for name in earlier if name in upstream)


def plan_jobs(job: JobDef, config, source: str = "<config>") -> List[PlannedJob]:
    """The jobs of a run of ``job`` for ``config`` (a :class:`qtlhpc.config.Config`), with the
    resources of the job definition overridden by the config's ``[slurm] resources``."""
    specs = run_stages(job.name, config)
    names = [spec.name for spec in specs]
    overrides = config.section("slurm")["resources"]
    for stage, values in overrides.items():
        if stage not in names:
            raise ConfigError(f"{source}: [slurm] resources has stage {stage!r}, which a {job.name} run does "
                              f"not have{did_you_mean(stage, names)} (its stages: {', '.join(names)})")
        if not isinstance(values, dict):
            raise ConfigError(f"{source}: [slurm] resources.{stage} must be a table")
    planned = []
    for index, spec in enumerate(specs):
        resources = job.defaults(spec.name)
        resources.update(check_resources(overrides.get(spec.name, {}), f"{source}: [slurm] resources.{spec.name}"))
        planned.append(PlannedJob(spec, template_for(spec), _after(specs, index, config), resources))
    return planned
