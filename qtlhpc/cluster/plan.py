"""Resource planning: memory per rank and estimated time of each stage, from the problem sizes.

``plan(sizes, ranks=..., mem_per_cpu=...)`` returns one :class:`StagePlan` per stage with the memory a
rank needs (the formulas below, in bytes of float64), an estimated wall time from the throughput
table, a suggested ``ntasks`` and ``mem-per-cpu``, and a warning when the stage cannot fit the memory
given.  ``format_plan(plans)`` renders the table ``qtlhpc plan`` prints.

Each stage's memory formula and throughput are part of its declaration (the ``plan`` of its
:class:`~qtlhpc.stages.spec.StageSpec`, in ``qtlhpc/methods/<method>/stages.py``); this module only
evaluates them for the problem sizes below.  Symbols: n individuals, m loci, p genoprob positions, s
genotype states, t traits, k kinship matrices, P permutations, r ranks of the stage, and the block
sizes of the config.  docs/memory.md lists the formulas.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import List, Mapping, Optional, Union

def _planned_specs():
    """The stages with a plan model, from their declarations (qtlhpc/methods/<method>/stages.py)."""
    from qtlhpc.stages import registry

    return {name: spec for name, spec in registry.stages().items() if spec.plan is not None}


def throughput(stage: str) -> tuple:
    """``(work unit, units/s/rank, measured by)`` of ``stage``, from its declaration."""
    model = _planned_specs()[stage].plan
    return model.unit, model.rate, model.measured_by


def planned_stages() -> tuple:
    return tuple(_planned_specs())


@dataclass(frozen=True)
class ProblemSize:
    """Sizes and block settings of one analysis (defaults: the config's defaults)."""

    n_individuals: int
    n_markers: int
    n_positions: Optional[int] = None   # genoprob positions (default: n_markers)
    n_genotypes: int = 3                # s: 2 for backcross / RIL, 3 for F2
    n_traits: int = 1
    n_kinships: int = 6
    n_permutations: int = 100
    block_rows: int = 128
    block_markers: int = 256
    tile: int = 256
    batch: int = 50
    permutation_scans: tuple = ("1d",)

    @property
    def positions(self) -> int:
        return self.n_positions if self.n_positions is not None else self.n_markers

    @property
    def n_pairs(self) -> int:
        return self.n_markers * (self.n_markers - 1) // 2


@dataclass
class StagePlan:
    stage: str
    ranks: int
    memory_per_rank: int
    formula: str
    work: float
    seconds: float
    suggested_ntasks: int
    suggested_mem_per_cpu: str
    warning: Optional[str] = None
    notes: List[str] = field(default_factory=list)


def problem_from_config(config: Mapping, **sizes) -> ProblemSize:
    """A :class:`ProblemSize` from a config dict (its block settings) and the data sizes."""
    section = lambda name: config.get(name, {}) if isinstance(config.get(name, {}), Mapping) else {}  # noqa: E731
    settings = {
        "block_rows": section("kinship").get("block_rows"),
        "block_markers": section("scan1d").get("block_markers"),
        "tile": section("scan2d").get("tile"),
        "batch": section("permutations").get("batch"),
        "n_permutations": section("permutations").get("n_permutations"),
        "n_kinships": len(section("varcomp")["kinships"]) if "kinships" in section("varcomp") else None,
    }
    if "scans" in section("permutations"):
        settings["permutation_scans"] = tuple(section("permutations")["scans"])
    merged = {key: value for key, value in settings.items() if value is not None}
    merged.update(sizes)
    return ProblemSize(**merged)


def memory_per_rank(stage: str, size: ProblemSize, ranks: int) -> tuple:
    """``(bytes, formula)`` one rank of ``stage`` needs (the stage's declared plan model)."""
    specs = _planned_specs()
    if stage not in specs:
        raise KeyError(f"no memory model for stage {stage!r}; known: {', '.join(specs)}")
    return specs[stage].plan.memory(size, ranks)


def work_units(stage: str, size: ProblemSize) -> float:
    """Work of ``stage`` in the units of its plan model."""
    return _planned_specs()[stage].plan.work(size)


def parse_memory(text: Union[str, int]) -> int:
    """``"4G"`` -> bytes (SLURM's K/M/G/T suffixes, base 1024; a bare number is MiB as in SLURM)."""
    if isinstance(text, int):
        return text
    text = text.strip().upper()
    units = {"K": 1024, "M": 1024 ** 2, "G": 1024 ** 3, "T": 1024 ** 4}
    if text and text[-1] in units:
        return int(float(text[:-1]) * units[text[-1]])
    return int(float(text) * 1024 ** 2)


def format_memory(n_bytes: float) -> str:
    """Bytes -> a SLURM size rounded up: ``512M``, ``3G``."""
    mib = math.ceil(n_bytes / 1024 ** 2)
    return f"{math.ceil(mib / 1024)}G" if mib >= 1024 else f"{max(mib, 1)}M"


def plan(sizes: Union[ProblemSize, Mapping], *, ranks: Union[int, Mapping[str, int]] = 1,
         mem_per_cpu: Union[str, int] = "4G", target_seconds: float = 3600.0, max_ranks: int = 1024,
         headroom: float = 1.25, stages=None) -> List[StagePlan]:
    """Plan every stage for ``sizes`` at ``ranks`` (one count, or per stage) with ``mem_per_cpu``.

    ``sizes`` is a :class:`ProblemSize` or a mapping of its fields.  ``suggested_ntasks`` is the
    smallest count whose estimated time is within ``target_seconds`` (and, where memory shrinks with
    ranks, whose memory fits); ``suggested_mem_per_cpu`` is the need at that count times ``headroom``.
    """
    size = sizes if isinstance(sizes, ProblemSize) else ProblemSize(**dict(sizes))
    stages = planned_stages() if stages is None else stages
    limit = parse_memory(mem_per_cpu)
    plans = []
    for stage in stages:
        stage_ranks = ranks.get(stage, 1) if isinstance(ranks, Mapping) else int(ranks)
        memory, formula = memory_per_rank(stage, size, stage_ranks)
        work = work_units(stage, size)
        rate = throughput(stage)[1]
        seconds = work / (rate * stage_ranks)
        suggested = min(max_ranks, max(1, math.ceil(work / (rate * target_seconds))))
        while suggested < max_ranks and memory_per_rank(stage, size, suggested)[0] > limit \
                and memory_per_rank(stage, size, suggested + 1)[0] < memory_per_rank(stage, size, suggested)[0]:
            suggested += 1
        need_at_suggested = memory_per_rank(stage, size, suggested)[0]
        warning = None
        if memory > limit:
            warning = (f"{stage} needs {format_memory(memory)} per rank at {stage_ranks} ranks but mem-per-cpu is "
                       f"{format_memory(limit)}: raise mem-per-cpu to {format_memory(memory * headroom)}"
                       + (", use more ranks" if memory_per_rank(stage, size, stage_ranks * 2)[0] < memory else "")
                       + " or lower the block sizes")
        plans.append(StagePlan(stage, stage_ranks, memory, formula, work, seconds, suggested,
                               format_memory(need_at_suggested * headroom), warning))
    return plans


def format_plan(plans: List[StagePlan]) -> str:
    """The plan as a table, then one line per warning, then where the throughput numbers come from."""
    from qtlhpc.progress import format_seconds

    header = ("stage", "ranks", "memory/rank", "est. time", "suggest ntasks", "suggest mem-per-cpu")
    rows = [header] + [(p.stage, str(p.ranks), format_memory(p.memory_per_rank), format_seconds(p.seconds),
                        str(p.suggested_ntasks), p.suggested_mem_per_cpu) for p in plans]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines += [f"warning: {p.warning}" for p in plans if p.warning]
    return "\n".join(lines)
