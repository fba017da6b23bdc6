"""The results schema: every dataset qtlhpc stores, declared once with its dims, dtype, unit and meaning.

Each room (``qtlhpc/methods/<method>/schema.py``, and the shared ``qtlhpc/genetics/schema.py`` and
``qtlhpc/report/schema.py``) calls :func:`declare` at import time for the datasets of its stages.  The declarations drive

* the HDF5 attributes written on every dataset (``dims``, ``unit``, ``description``, ``dtype``),
* the store, which refuses undeclared names and arrays of the wrong rank (``qtlhpc.store``),
* the TSV export, which labels rows and columns through *labels* datasets (``qtlhpc.store.export``),
* the page ``docs/results-schema.md`` (``python -m qtlhpc.schema --write docs/results-schema.md``).

A dataset may be declared as the labels of one dimension (``labels_for="position"``): the export then
names rows or columns of every dataset with that dimension by its values, preferring labels of the
same stage.

Dtypes are numpy names (``float64``, ``float32``, ``int64``, ``int32``, ``uint8``, ``bool``) or
``str`` (UTF-8 text; read back as Python ``str``).
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

import numpy as np

__all__ = [
    "Variable", "UnknownVariableError", "DIMENSIONS", "COLUMN_DIMENSIONS", "STAGE_ATTRIBUTES",
    "ROOT_ATTRIBUTES", "declare", "declare_dimension", "get", "get_stage", "variables", "stages",
    "labels_for", "render_markdown", "numpy_dtype",
]

STRING_DTYPE = "str"
_NUMERIC_DTYPES = ("float64", "float32", "int64", "int32", "int16", "int8", "uint64", "uint32", "uint16", "uint8", "bool")

DIMENSIONS: Dict[str, str] = {
    "individual": "an individual (line, animal, plant) of the mapping population, in input order",
    "marker": "a genotyped marker, in map order (chromosome, then position)",
    "position": "a genome position where genotype probabilities are known: a marker or a pseudomarker",
    "genotype": "a genotype state of the cross (AA, AB, BB... in the order of genoprob/genotype_states)",
    "trait": "a phenotype (trait) analysed, in input column order",
    "covariate": "a covariate column of the design (intercept first when present)",
    "kinship": "a kinship (genetic relationship) matrix kind, e.g. additive, dominance, additive x additive",
    "kinship_row": "a row (an individual) of a kinship matrix",
    "pair": "a marker pair k < l, in row-major order of the strict upper triangle",
    "permutation": "a permutation of the phenotypes (for genome-wide significance thresholds)",
    "chromosome": "a chromosome, in map order",
    "block": "a work block of a blocked computation (the unit of checkpointing)",
}

# Dimensions that are usually short: the TSV export puts them across columns in 2-D tables.
COLUMN_DIMENSIONS = {"genotype", "trait", "covariate", "kinship"}

ROOT_ATTRIBUTES: Dict[str, str] = {
    "qtlhpc_version": "version of qtlhpc that created the file",
    "created": "time the file was created (ISO 8601, UTC)",
}

STAGE_ATTRIBUTES: Dict[str, str] = {
    "status": "`running` while the stage is being computed, `complete` once all its datasets are written",
    "config_json": "the stage's configuration as canonical JSON (sorted keys)",
    "config_sha256": "SHA-256 of config_json: a rerun with the same value resumes, another restarts the stage",
    "result_id": "a new random id each time the stage starts over: the identity of these results",
    "lineage_json": "the result_id of every stage this one read, as JSON; when one of them has another "
                    "result_id now (it was recomputed), this stage is stale and readers refuse it",
    "command_line": "the command line that started (or last resumed) the stage",
    "n_ranks": "number of MPI ranks of the run that last worked on the stage",
    "parallel_io": "whether that run wrote through parallel HDF5 (mpio) or through rank 0",
    "started": "time the stage was first started (ISO 8601, UTC)",
    "resumed": "time of the last resume, empty when never resumed (ISO 8601, UTC)",
    "finished": "time the stage was completed, empty while running (ISO 8601, UTC)",
}

DATASET_ATTRIBUTES = ("dims", "dtype", "unit", "description")


class UnknownVariableError(KeyError):
    """A dataset, stage or dimension name that the schema does not declare (message suggests one)."""

    def __str__(self):
        return str(self.args[0]) if self.args else ""


@dataclass(frozen=True)
class Variable:
    """One stored dataset: ``/<stage>/<name>`` with named dimensions.

    ``dims`` names each axis (keys of :data:`DIMENSIONS`); ``unit`` is free text (``""`` when none);
    ``labels_for`` names the dimension whose entries this 1-D dataset labels, if any.
    """

    stage: str
    name: str
    dims: Tuple[str, ...]
    dtype: str
    unit: str
    description: str
    labels_for: Optional[str] = None

    @property
    def path(self) -> str:
        return f"{self.stage}/{self.name}"

    @property
    def ndim(self) -> int:
        return len(self.dims)

    @property
    def is_string(self) -> bool:
        return self.dtype == STRING_DTYPE

    @property
    def is_float(self) -> bool:
        return self.dtype.startswith("float")


_REGISTRY: Dict[str, Variable] = {}


def _check_identifier(kind: str, value: str) -> None:
    if not isinstance(value, str) or not value or "/" in value or value.startswith("_") or value != value.strip():
        raise ValueError(f"{kind} must be a non-empty name without '/' or leading '_', got {value!r}")


def declare_dimension(name: str, meaning: str, *, as_columns: bool = False) -> None:
    """Add a dimension name; ``as_columns`` marks short dimensions that the export lays across columns."""
    _check_identifier("dimension name", name)
    if name in DIMENSIONS and DIMENSIONS[name] != meaning:
        raise ValueError(f"dimension {name!r} is already declared as {DIMENSIONS[name]!r}")
    DIMENSIONS[name] = meaning
    if as_columns:
        COLUMN_DIMENSIONS.add(name)


def numpy_dtype(dtype: str) -> np.dtype:
    """The numpy dtype for a declared dtype name (``str`` -> object, for Python strings)."""
    if dtype == STRING_DTYPE:
        return np.dtype(object)
    return np.dtype(dtype)


def declare(stage: str, name: str, dims, dtype: str, unit: str, description: str, *,
            labels_for: Optional[str] = None) -> Variable:
    """Declare dataset ``/<stage>/<name>``; raises ``ValueError`` when it is already declared."""
    _check_identifier("stage", stage)
    _check_identifier("dataset name", name)
    dims = tuple(dims)
    unknown = [d for d in dims if d not in DIMENSIONS]
    if unknown:
        raise ValueError(f"{stage}/{name}: undeclared dimension(s) {unknown}; declare them with declare_dimension()")
    if dtype != STRING_DTYPE and dtype not in _NUMERIC_DTYPES:
        raise ValueError(f"{stage}/{name}: dtype {dtype!r} is not one of {(STRING_DTYPE,) + _NUMERIC_DTYPES}")
    if labels_for is not None and dims != (labels_for,):
        raise ValueError(f"{stage}/{name}: a labels dataset for {labels_for!r} must have dims ({labels_for!r},)")
    if not description or not description.strip():
        raise ValueError(f"{stage}/{name}: a description is required")
    variable = Variable(stage, name, dims, dtype, unit or "", description.strip(), labels_for)
    if variable.path in _REGISTRY:
        raise ValueError(f"{variable.path} is already declared (by another room's schema.py?)")
    _REGISTRY[variable.path] = variable
    return variable


def _suggest(word: str, choices) -> str:
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def get(path: str) -> Variable:
    """The declared variable ``"stage/name"``; :class:`UnknownVariableError` (a KeyError) suggests one."""
    variable = _REGISTRY.get(path)
    if variable is None:
        raise UnknownVariableError(
            f"{path!r} is not a declared results dataset{_suggest(path, _REGISTRY)} "
            f"(declared datasets are listed in docs/results-schema.md)"
        )
    return variable


def get_stage(stage: str) -> List[Variable]:
    """Variables of ``stage``; :class:`UnknownVariableError` when no dataset of that stage is declared."""
    found = variables(stage)
    if not found:
        raise UnknownVariableError(f"{stage!r} is not a declared stage{_suggest(stage, stages())} "
                                   f"(declared stages: {', '.join(stages())})")
    return found


def variables(stage: Optional[str] = None) -> List[Variable]:
    """All declared variables (of one stage), in declaration order."""
    return [v for v in _REGISTRY.values() if stage is None or v.stage == stage]


def stages() -> List[str]:
    """Declared stage names, in declaration order."""
    return list(dict.fromkeys(v.stage for v in _REGISTRY.values()))


def labels_for(dimension: str, stage: Optional[str] = None) -> List[Variable]:
    """Datasets declared as labels of ``dimension``: those of ``stage`` first, then the others."""
    found = [v for v in _REGISTRY.values() if v.labels_for == dimension]
    return sorted(found, key=lambda v: v.stage != stage)


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def render_markdown() -> str:
    """The page ``docs/results-schema.md``: dimensions, file and stage attributes, a table per stage."""
    lines = [
        "# Results schema",
        "",
        "<!-- Generated by `python -m qtlhpc.schema --write docs/results-schema.md`; do not edit by hand. -->",
        "",
        "Every run writes one HDF5 file. Each stage is a group `/<stage>`; each dataset below is",
        "`/<stage>/<dataset>` and carries the attributes `dims`, `dtype`, `unit` and `description` shown here.",
        "Text is stored as UTF-8 (fixed length) and read back as `str`. Blocked outputs have a completion",
        "bitmap `/<stage>/_checkpoint/<key>` (uint8, one entry per block) used to resume a killed run.",
        "Readers refuse a stage whose `status` is not `complete`.",
        "",
        "## File attributes",
        "",
        "| attribute | meaning |",
        "| --- | --- |",
    ]
    lines += [f"| `{k}` | {_cell(v)} |" for k, v in ROOT_ATTRIBUTES.items()]
    lines += ["", "## Stage attributes (provenance)", "", "Every group `/<stage>` carries:", "",
              "| attribute | meaning |", "| --- | --- |"]
    lines += [f"| `{k}` | {_cell(v)} |" for k, v in STAGE_ATTRIBUTES.items()]
    lines += ["", "## Dimensions", "", "| dimension | meaning | labelled by |", "| --- | --- | --- |"]
    for name, meaning in DIMENSIONS.items():
        labels = ", ".join(f"`{v.path}`" for v in labels_for(name))
        lines.append(f"| `{name}` | {_cell(meaning)} | {labels} |")
    for stage in stages():
        lines += ["", f"## Stage `{stage}`", "", "| dataset | dims | dtype | unit | meaning |",
                  "| --- | --- | --- | --- | --- |"]
        for v in variables(stage):
            dims = "(" + ", ".join(v.dims) + ")"
            lines.append(f"| `{v.name}` | {dims} | {v.dtype} | {_cell(v.unit)} | {_cell(v.description)} |")
    return "\n".join(lines) + "\n"


# Every room's schema module declares its datasets at import (the rooms are found by the registry).
from qtlhpc.stages import registry as _registry  # noqa: E402

_registry.load_schemas()
