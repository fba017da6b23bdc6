"""One TOML config per analysis: declared sections and keys, validated on load.

Every section's keys are declared once as :class:`Option` (type, default, one-line description); a
config with an unknown section or key is rejected with the nearest valid name suggested, and a value of
the wrong type or outside its choices is rejected naming the key, the value and what was expected.
The command line sets the same keys (``--set scan2d.tile=128``), so every CLI option is a config key.

``qtlhpc config-help`` prints every section and key (the same table is in docs/config.md).
"""

from __future__ import annotations

import copy
import difflib
import json
import pathlib
import tomllib
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional, Sequence, Tuple

from qtlhpc.errors import ConfigError


@dataclass(frozen=True)
class Option:
    """A declared config key: its Python type, default, description and (optionally) allowed values."""

    type: Any
    default: Any
    description: str
    choices: Optional[Tuple[Any, ...]] = None

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
        if self.choices is not None and value is not None:
            values = value if isinstance(value, list) else [value]
            for item in values:
                if item not in self.choices:
                    raise ConfigError(
                        f"{where} = {item!r} is not allowed; expected one of "
                        f"{', '.join(map(repr, self.choices))}{_suggest(str(item), map(str, self.choices))}"
                    )
        return value


def _type_name(kind) -> str:
    if isinstance(kind, tuple):
        return " or ".join(_type_name(k) for k in kind)
    return {str: "string", int: "integer", float: "number", bool: "boolean (true/false)", list: "list",
            dict: "table"}.get(kind, getattr(kind, "__name__", str(kind)))


def _suggest(name: str, candidates) -> str:
    close = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


STAGE_NAMES = ("genoprob", "kinship", "varcomp", "scan1d", "scan2d", "permutations", "report")

RUN_OPTIONS: Dict[str, Option] = {
    "output": Option(str, "results.h5", "results HDF5 file of the run (relative to the config file)"),
    "seed": Option(int, 1, "run seed; every random stream is keyed by it and by its work unit"),
    "stages": Option(list, ["genoprob", "kinship", "varcomp", "scan1d", "scan2d", "permutations", "report"],
                     "stages run by `qtlhpc run all`, in order", STAGE_NAMES),
    "log_level": Option(str, "info", "log level of rank 0", ("debug", "info", "warning", "error")),
    "per_rank_logs": Option(str, "", "directory for one log file per rank (empty: rank 0 logs only)"),
    "progress": Option(bool, True, "report progress with an ETA from rank 0"),
    "parallel_io": Option(str, "auto", "results writes: auto (parallel HDF5 when h5py has MPI and there are "
                                       "several ranks) or rank0 (rank 0 writes what the others send)",
                          ("auto", "rank0")),
}

GENOPROB_OPTIONS: Dict[str, Option] = {
    "step": Option(float, 1.0, "pseudomarker grid spacing in cM (0: markers only)"),
    "error_prob": Option(float, 1e-4, "genotyping error probability of the HMM"),
    "map_function": Option(str, "haldane", "map function", ("haldane", "kosambi", "c-f", "morgan")),
    "block_individuals": Option(int, 64, "individuals per checkpointed block"),
}

KINSHIP_OPTIONS: Dict[str, Option] = {
    "which": Option(list, ["a", "d", "aa", "ad", "da", "dd"], "kinship matrices to compute",
                    ("a", "d", "aa", "ad", "da", "dd")),
    "positions": Option(str, "markers", "build the codes at the markers or at every genoprob position",
                        ("markers", "grid")),
    "block_rows": Option(int, 128, "rows of individuals per checkpointed block"),
    "marker_block": Option(int, 16, "markers per block of the ordered prefix sums (speed only)"),
    "loco": Option(bool, False, "also compute leave-one-chromosome-out kinships (for scan1d.loco)"),
}

VARCOMP_OPTIONS: Dict[str, Option] = {
    "traits": Option(list, [], "traits to analyse (empty: all phenotypes)"),
    "covariates": Option(list, [], "covariates (by name) added to the intercept as fixed effects"),
    "kinships": Option(list, ["a", "d", "aa", "ad", "da", "dd"], "kinships in the polygenic background",
                       ("a", "d", "aa", "ad", "da", "dd")),
    "max_iter": Option(int, 100, "maximum REML iterations"),
    "tolerance": Option(float, 1e-8, "relative convergence tolerance on the REML log-likelihood"),
}

SCAN1D_OPTIONS: Dict[str, Option] = {
    "model": Option(str, "random", "random (PEPIS), fixed (GLS) or hk (Haley-Knott, no kinship)",
                    ("random", "fixed", "hk")),
    "block_markers": Option(int, 256, "markers per checkpointed block"),
    "loco": Option(bool, False, "kinship models: test each chromosome's loci over a background built from the "
                                "other chromosomes (needs kinship.loco; variance ratios from varcomp)"),
}

SCAN2D_OPTIONS: Dict[str, Option] = {
    "model": Option(str, "random", "random (PEPIS), fixed (GLS) or hk (Haley-Knott two-QTL scan)",
                    ("random", "fixed", "hk")),
    "tile": Option(int, 256, "a checkpointed block holds about tile^2 pairs (whole rows of the pair triangle)"),
    "report_lod": Option(float, 3.0, "pairs with LOD above this get effects and standard errors stored"),
    "max_reported_pairs": Option(int, 10000, "at most this many top pairs get effects stored"),
    "same_chromosome": Option(str, "joint", "hk: pairs on one chromosome use the joint two-locus genotype "
                                            "probabilities as R/qtl (joint) or the product of the marginal ones "
                                            "(product: faster, differs from R/qtl there)", ("joint", "product")),
}

PERMUTATION_OPTIONS: Dict[str, Option] = {
    "n_permutations": Option(int, 100, "number of permutations (ids 0..n-1, each with its own seed)"),
    "scans": Option(list, ["1d"], "which scans get genome-wide thresholds", ("1d", "2d")),
    "batch": Option(int, 50, "permutations evaluated per pass"),
    "alphas": Option(list, [0.05, 0.01], "significance levels of the thresholds"),
}

REPORT_OPTIONS: Dict[str, Option] = {
    "directory": Option(str, "report", "report directory (relative to the config file)"),
    "top": Option(int, 20, "rows in the tables of top QTL and pairs"),
}

SLURM_OPTIONS: Dict[str, Option] = {
    "site": Option(str, "", "site profile TOML (partition, account, modules, launcher)"),
    "run_dir": Option(str, "", "run directory for rendered scripts and logs"),
    "resources": Option(dict, {}, "per-stage overrides, e.g. {scan2d = {ntasks = 8, time = '02:00:00'}}"),
    "array_tasks": Option(int, 4, "SLURM array tasks for the permutations"),
    "plan_ranks": Option(int, 1, "ranks `qtlhpc plan` plans for (its --ranks)"),
    "plan_mem_per_cpu": Option(str, "4G", "memory per rank `qtlhpc plan` checks against (its --mem-per-cpu)"),
}


def _input_options() -> Dict[str, Option]:
    from qtlhpc.data.loader import INPUT_OPTIONS

    return {key: _as_option(value) for key, value in INPUT_OPTIONS.items()}


def _simulate_options() -> Dict[str, Option]:
    from qtlhpc.simulate import SIMULATE_OPTIONS

    options = {key: _as_option(value) for key, value in SIMULATE_OPTIONS.items()}
    options.setdefault("write_format", Option(str, "rqtl-csv", "file format the simulated cross is written in",
                                              ("rqtl-csv", "rqtl-csvs", "pepis")))
    options.setdefault("write_to", Option(str, "simulated", "file prefix of the simulated cross (relative)"))
    return options


def _as_option(value) -> Option:
    if isinstance(value, Option):
        return value
    kind, default, description = value[:3]
    choices = tuple(value[3]) if len(value) > 3 and value[3] is not None else None
    return Option(kind, default, description, choices)


#: section name -> declared options (callables are resolved lazily: they import other modules)
SECTIONS = {
    "run": lambda: RUN_OPTIONS,
    "input": _input_options,
    "simulate": _simulate_options,
    "genoprob": lambda: GENOPROB_OPTIONS,
    "kinship": lambda: KINSHIP_OPTIONS,
    "varcomp": lambda: VARCOMP_OPTIONS,
    "scan1d": lambda: SCAN1D_OPTIONS,
    "scan2d": lambda: SCAN2D_OPTIONS,
    "permutations": lambda: PERMUTATION_OPTIONS,
    "report": lambda: REPORT_OPTIONS,
    "slurm": lambda: SLURM_OPTIONS,
}


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

    @classmethod
    def load(cls, path, overrides: Sequence[str] = ()) -> "Config":
        path = pathlib.Path(path)
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
        if name not in SECTIONS:
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

    def stage_config(self, stage: str, *extra_sections: str) -> Dict[str, Any]:
        """The config that decides a stage's numbers: its own section, the input and the run seed."""
        sections = {"input": self.raw.get("input", {}), "seed": self.seed}
        for name in (stage,) + tuple(extra_sections):
            if name in SECTIONS:
                sections[name] = self.section(name)
        return json.loads(json.dumps(sections, sort_keys=True, default=str))


def validate(data: Mapping[str, Any], source: str = "<config>") -> Dict[str, Dict[str, Any]]:
    """Check every section and key; return the values with defaults filled in."""
    values: Dict[str, Dict[str, Any]] = {}
    for section, content in data.items():
        if section not in SECTIONS:
            raise ConfigError(f"{source}: unknown section [{section}]{_suggest(section, SECTIONS)}"
                              f" (sections: {', '.join(SECTIONS)})")
        if not isinstance(content, dict):
            raise ConfigError(f"{source}: [{section}] must be a table of keys, got {content!r}")
    for section, declared in SECTIONS.items():
        content = data.get(section, {})
        if section not in data and section in ("input", "simulate"):
            continue
        options = declared()
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
    for section, declared in SECTIONS.items():
        try:
            options = declared()
        except ImportError:  # pragma: no cover - a module still missing
            continue
        lines += [f"## [{section}]", "", "| key | type | default | meaning |", "|---|---|---|---|"]
        for key, option in options.items():
            meaning = option.description + (f" (one of {', '.join(map(str, option.choices))})"
                                             if option.choices else "")
            lines.append(f"| `{key}` | {_type_name(option.type)} | `{json.dumps(option.default)}` | {meaning} |")
        lines.append("")
    return "\n".join(lines)
