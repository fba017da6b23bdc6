"""One TOML config per analysis: declared sections and keys, validated on load.

Every section's keys are declared once as :class:`Option` (type, default, one-line description, and the
allowed choices or numeric range); a config with an unknown section or key is rejected with the nearest
valid name suggested, and a value of the wrong type, outside its choices or outside its range is rejected
when the config is loaded, before any stage starts, naming the key, the value and what was allowed.
Settings that are valid but cannot do what was asked (too few permutations for a significance level) are
logged as warnings by :func:`warnings`.
The command line sets the same keys (``--set scan2d.tile=128``), so every CLI option is a config key.

``qtlhpc config-help`` prints every section and key (the same table is in docs/config.md).
"""

from __future__ import annotations

import copy
import json
import logging
import math
import pathlib
import tomllib
from dataclasses import dataclass, replace
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from qtlhpc.errors import ConfigError, did_you_mean


@dataclass(frozen=True)
class Option:
    """A declared config key: its Python type, default, description and (optionally) allowed values.

    ``minimum`` and ``maximum`` bound a number (inclusive unless ``exclusive_minimum`` /
    ``exclusive_maximum``); for a list they bound each item.  ``None`` (a default meaning "not set") is
    always allowed when the default is ``None``.
    """

    type: Any
    default: Any
    description: str
    choices: Any = None  # a tuple, or a callable returning one
    minimum: Optional[float] = None
    maximum: Optional[float] = None
    exclusive_minimum: bool = False
    exclusive_maximum: bool = False

    def check(self, where: str, value: Any) -> Any:
        expected = self.type
        if expected is float and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        if expected is list and isinstance(value, tuple):
            value = list(value)
        ok = isinstance(value, expected) and not (expected in (int, float) and isinstance(value, bool))
        if value is None and self.default is None:
            ok = True
        if not ok:
            raise ConfigError(
                f"{where} = {value!r} is a {type(value).__name__}; expected a {_type_name(expected)}"
                f" ({self.description})"
            )
        choices = self.allowed()
        if choices is not None and value is not None:
            values = value if isinstance(value, list) else [value]
            for item in values:
                if item not in choices:
                    raise ConfigError(
                        f"{where} = {item!r} is not allowed; expected one of "
                        f"{', '.join(map(repr, choices))}{_suggest(str(item), map(str, choices))}"
                    )
        self._check_range(where, value)
        return value

    def allowed(self) -> Optional[Tuple[Any, ...]]:
        """The allowed values (``choices`` may be a callable, for lists known only at run time)."""
        return tuple(self.choices()) if callable(self.choices) else self.choices

    def range_text(self) -> str:
        """The allowed range, e.g. ``>= 1``, ``in (0, 1)``, ``in [0, 1]``; empty when unbounded."""
        low, high = self.minimum, self.maximum
        if low is not None and high is not None:
            return (f"in {'(' if self.exclusive_minimum else '['}{_number(low)}, "
                    f"{_number(high)}{')' if self.exclusive_maximum else ']'}")
        if low is not None:
            return f"{'>' if self.exclusive_minimum else '>='} {_number(low)}"
        if high is not None:
            return f"{'<' if self.exclusive_maximum else '<='} {_number(high)}"
        return ""

    def in_range(self, number) -> bool:
        if self.minimum is not None and (number <= self.minimum if self.exclusive_minimum
                                         else number < self.minimum):
            return False
        if self.maximum is not None and (number >= self.maximum if self.exclusive_maximum
                                         else number > self.maximum):
            return False
        return True

    def _check_range(self, where: str, value: Any) -> None:
        if value is None or (self.minimum is None and self.maximum is None):
            return
        is_list = isinstance(value, list)
        for item in value if is_list else [value]:
            number = isinstance(item, (int, float)) and not isinstance(item, bool)
            if not number or math.isnan(item) or not self.in_range(item):
                what = f"{value!r}: item {item!r}" if is_list else repr(item)
                problem = "is not a number" if not number else "is out of range"
                raise ConfigError(f"{where} = {what} {problem}; expected{' each item' if is_list else ''} "
                                  f"{self.range_text()} ({self.description})")


def _number(value) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _type_name(kind) -> str:
    if isinstance(kind, tuple):
        return " or ".join(_type_name(k) for k in kind)
    return {str: "string", int: "integer", float: "number", bool: "boolean (true/false)", list: "list",
            dict: "table"}.get(kind, getattr(kind, "__name__", str(kind)))


def _suggest(name: str, candidates) -> str:
    return did_you_mean(name, candidates)


RUN_OPTIONS: Dict[str, Option] = {
    "output": Option(str, "results.h5", "results HDF5 file of the run (relative to the config file)"),
    "seed": Option(int, 1, "run seed; every random stream is keyed by it and by its work unit", minimum=0),
    "stages": Option(list, ["pepis", "report"],
                     "stages (or method pipelines, e.g. pepis) run by `qtlhpc run all`, in order",
                     lambda: _stage_choices()),
    "log_level": Option(str, "info", "log level of rank 0", ("debug", "info", "warning", "error")),
    "per_rank_logs": Option(str, "", "directory for one log file per rank (empty: rank 0 logs only)"),
    "progress": Option(bool, True, "report progress with an ETA from rank 0"),
    "parallel_io": Option(str, "auto", "results writes: auto (parallel HDF5 when h5py has MPI and there are "
                                       "several ranks) or rank0 (rank 0 writes what the others send)",
                          ("auto", "rank0")),
}

SLURM_OPTIONS: Dict[str, Option] = {
    "site": Option(str, "", "site profile TOML (partition, account, modules, launcher)"),
    "run_dir": Option(str, "", "run directory for rendered scripts and logs"),
    "resources": Option(dict, {}, "per-stage overrides, e.g. {scan2d = {ntasks = 8, time = '02:00:00'}}"),
    "array_tasks": Option(int, 4, "SLURM array tasks of each array stage (permutations, chains, starts)",
                          minimum=1),
    "plan_ranks": Option(int, 1, "ranks `qtlhpc plan` plans for (its --ranks)", minimum=1),
    "plan_mem_per_cpu": Option(str, "4G", "memory per rank `qtlhpc plan` checks against (its --mem-per-cpu)"),
}


def _stage_choices() -> Tuple[str, ...]:
    from qtlhpc.stages import registry

    return tuple(registry.stages()) + tuple(registry.pipelines())


def as_option(value, **declared) -> Option:
    """An :class:`Option` from an Option or a ``(type, default, description[, choices])`` tuple;
    ``declared`` adds or replaces fields, e.g. ``as_option(SIMULATE_OPTIONS["n_traits"], minimum=1)``."""
    if not isinstance(value, Option):
        kind, default, description = value[:3]
        choices = tuple(value[3]) if len(value) > 3 and value[3] is not None else None
        value = Option(kind, default, description, choices)
    return replace(value, **declared) if declared else value


def framework_sections():
    """The sections of the framework itself; every other section is declared in a room's options.py."""
    from qtlhpc.stages.spec import SectionSpec

    return (SectionSpec("run", RUN_OPTIONS, "qtlhpc.config", "the run: output file, seed, stages, logging"),
            SectionSpec("slurm", SLURM_OPTIONS, "qtlhpc.config", "SLURM submission and `qtlhpc plan`"))


def sections():
    """Every declared section by name (from :mod:`qtlhpc.stages.registry`)."""
    from qtlhpc.stages import registry

    return registry.sections()


class Config:
    """A validated analysis config.

    ``config.section("scan2d")`` returns that section's values with defaults filled in;
    ``config.path(value)`` resolves a file name relative to the config file's folder.
    """

    def __init__(self, data: Mapping[str, Any], base_dir: pathlib.Path, source: str = "<config>"):
        self.source = source
        self.base_dir = pathlib.Path(base_dir)
        self.raw = copy.deepcopy(dict(data))
        self._values = validate(self.raw, source)
        for message in warnings(self._values):
            logging.getLogger("qtlhpc").warning("%s: %s", source, message)

    @classmethod
    def load(cls, path, overrides: Sequence[str] = ()) -> "Config":
        path = pathlib.Path(path)
        if path.is_dir():
            found = sorted(p.name for p in path.glob("*.toml"))
            raise ConfigError(f"config file {path} is a folder: give the analysis TOML file"
                              + (f" (this folder has {', '.join(found[:5])}{', ...' if len(found) > 5 else ''})"
                                 if found else " (this folder has no .toml file)"))
        if not path.is_file():
            raise ConfigError(f"config file {path} does not exist")
        try:
            with open(path, "rb") as handle:
                data = tomllib.load(handle)
        except tomllib.TOMLDecodeError as error:
            raise ConfigError(f"{path}: not valid TOML: {error}") from None
        for item in overrides:
            apply_override(data, item)
        return cls(data, path.resolve().parent, str(path))

    def section(self, name: str) -> Dict[str, Any]:
        if name not in sections():
            raise KeyError(name)
        return dict(self._values.get(name, {}))

    def has_section(self, name: str) -> bool:
        return name in self.raw

    def path(self, value) -> pathlib.Path:
        value = pathlib.Path(value)
        return value if value.is_absolute() else self.base_dir / value

    @property
    def output(self) -> pathlib.Path:
        return self.path(self.section("run")["output"])

    @property
    def seed(self) -> int:
        return int(self.section("run")["seed"])

    def stage_config(self, spec, extra: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
        """What decides a stage's numbers: every section it reads (declared in its spec), the run seed and
        ``extra`` (e.g. an array task's unit range).  Its SHA-256 is the stage's ``config_sha256``."""
        values: Dict[str, Any] = {"seed": self.seed}
        for name in spec.sections:
            values[name] = self.section(name)
        values.update(extra or {})
        return json.loads(json.dumps(values, sort_keys=True, default=str))


def validate(data: Mapping[str, Any], source: str = "<config>") -> Dict[str, Dict[str, Any]]:
    """Check every section and key; return the values with defaults filled in."""
    values: Dict[str, Dict[str, Any]] = {}
    declared_sections = sections()
    for section, content in data.items():
        if section not in declared_sections:
            raise ConfigError(f"{source}: unknown section [{section}]{_suggest(section, declared_sections)}"
                              f" (sections: {', '.join(declared_sections)})")
        if not isinstance(content, dict):
            raise ConfigError(f"{source}: [{section}] must be a table of keys, got {content!r}")
    for section, declared in declared_sections.items():
        content = data.get(section, {})
        if section not in data and declared.optional:
            continue
        options = declared.options
        checked = {}
        for key, value in content.items():
            if key not in options:
                raise ConfigError(
                    f"{source}: unknown key {key!r} in [{section}]{_suggest(key, options)}"
                    f" (valid keys: {', '.join(options)})"
                )
            checked[key] = options[key].check(f"{source}: [{section}] {key}", value)
        for key, option in options.items():
            checked.setdefault(key, copy.deepcopy(option.default))
        values[section] = checked
    return values


def smallest_resolving_count(alpha: float) -> int:
    """The fewest permutations whose ``1 - alpha`` threshold is not simply their largest maximum.

    Of ``n`` permutation maxima, about ``n * alpha`` lie above the ``1 - alpha`` quantile; with
    ``n < 1 / alpha`` none does, the threshold is the largest maximum (or an interpolation towards it) and
    smaller levels all give the same threshold.  So a level ``alpha`` needs ``n >= ceil(1 / alpha)``
    (0.05: 20, 0.01: 100).
    """
    return max(1, math.ceil(1.0 / alpha - 1e-9))


def warnings(values: Mapping[str, Mapping[str, Any]]) -> Tuple[str, ...]:
    """Messages for valid settings that cannot do what they ask (validated values, defaults filled in)."""
    messages = []
    permutations = values.get("permutations")
    if permutations:
        count = permutations["n_permutations"]
        for alpha in permutations["alphas"]:
            needed = smallest_resolving_count(alpha)
            if count < needed:
                messages.append(
                    f"[permutations] n_permutations = {count} cannot resolve alpha = {_number(float(alpha))}: "
                    f"fewer than 1 / alpha permutations leave no maximum above the threshold; the smallest "
                    f"count that does is {needed} (set n_permutations >= {needed})")
    return tuple(messages)


def apply_override(data: Dict[str, Any], item: str) -> None:
    """Apply ``section.key=value`` (value parsed as TOML, else taken as a string) to ``data`` in place."""
    if "=" not in item or "." not in item.split("=", 1)[0]:
        raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. --set scan2d.tile=128")
    dotted, text = item.split("=", 1)
    section, key = dotted.strip().split(".", 1)
    try:
        value = tomllib.loads(f"value = {text}")["value"]
    except tomllib.TOMLDecodeError:
        value = text
    data.setdefault(section, {})[key] = value


def describe_sections() -> str:
    """Markdown table of every section and key (docs/config.md and `qtlhpc config-help`)."""
    lines = ["# Configuration reference", "",
             "Generated by `qtlhpc config-help`; every key can also be set on the command line with",
             "`--set section.key=value`.", ""]
    from qtlhpc.stages import registry

    specs = registry.stages().values()
    lines += ["## Stages", "", "Which sections each stage reads: a change to any of them makes the stage start over",
              "(its `config_sha256`), and a recomputed stage makes the stages that read it stale.", "",
              "| stage | method | reads | reads results of | array units |", "|---|---|---|---|---|"]
    for spec in specs:
        needs = "depends on the model" if callable(spec.needs) else ", ".join(spec.needs) or "-"
        array = f"{spec.array.unit} (`{spec.array.count_key}`), merged by `{spec.array.merge}`" if spec.array else "-"
        lines.append(f"| `{spec.name}` | {spec.method} | {', '.join(f'[{s}]' for s in spec.sections) or '-'} | "
                     f"{needs} | {array} |")
    lines.append("")
    for section, declared in sections().items():
        options = declared.options
        readers = [spec.name for spec in specs if section in spec.sections]
        lines += [f"## [{section}]", "", declared.description + (f" (read by: {', '.join(readers)})" if readers
                                                                 else "") + ".", ""]
        lines += ["| key | type | default | range | meaning |", "|---|---|---|---|---|"]
        for key, option in options.items():
            choices = option.allowed()
            meaning = option.description + (f" (one of {', '.join(map(str, choices))})" if choices else "")
            allowed = option.range_text() or "-"
            if option.type is list and option.range_text():
                allowed = "each " + allowed
            lines.append(f"| `{key}` | {_type_name(option.type)} | `{json.dumps(option.default)}` | {allowed} | "
                         f"{meaning} |")
        lines.append("")
    return "\n".join(lines)
