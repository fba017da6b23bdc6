"""Resource planning: memory per rank and estimated time of each stage, from the problem sizes.

``plan(sizes, ranks=..., mem_per_cpu=...)`` returns one :class:`StagePlan` per stage with the memory a
rank needs (the formulas below, in bytes of float64), an estimated wall time from the throughput
table, a suggested ``ntasks`` and ``mem-per-cpu``, and a warning when the stage cannot fit the memory
given.  ``format_plan(plans)`` renders the table ``qtlhpc plan`` prints.

Symbols: n individuals, m loci (markers or grid positions used by the epistatic model), p genoprob
positions, s genotype states, t traits, k kinship matrices, P permutations, r ranks of the stage,
and the block sizes of the config (kinship ``block_rows``, scan1d ``block_markers``, scan2d ``tile``,
permutations ``batch``).  Memory per rank (bytes):

=============  ==============================================================================
genoprob       ceil(n/r) * p * s * 8  +  2 * p * s * 8        (own probabilities + forward/backward)
kinship        block_rows * n * 8 * 6  +  n * m * 8 * 2        (six row blocks + the codes Z, W)
varcomp        k * n^2 * 8  +  4 * n^2 * 8  +  n * t * 8       (kinships + V, V^-1, P, workspace)
scan1d         2 * n^2 * 8  +  2 * n * block_markers * 8 * 2  +  n * t * 8
scan2d         2 * n^2 * 8  +  2 * n * tile * 8 * 2  +  4 * n * min(tile^2, 1024) * 8  +  tile^2 * 8 * 4
permutations   2 * n^2 * 8  +  n * batch * 8  +  2 * n * block_markers * 8 * 2  +  batch * m * 8
=============  ==============================================================================

Only genoprob and kinship memory shrinks with more ranks (rows or individuals are split); the scans
hold the n x n transform on every rank, bounded per rank by their blocks or tiles.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Union

BYTES = 8

# --------------------------------------------------------------------------------------------
# Throughput per rank, in work units per second.  PLACEHOLDERS, TO BE MEASURED: each entry names the
# benchmark command that will measure it (the main developer fills them from bench/).
THROUGHPUT_MEASURED = True
# Measured on a 2-core Xeon @ 2.8 GHz VM, one rank with one BLAS thread unless said (2026-11-21).
THROUGHPUT: Dict[str, tuple] = {
    # stage:        (work unit,                                   units/s/rank, measured by)
    "genoprob":     ("individual x position x state^2 (HMM)",     5.4e7, "bench/bench_genoprob.py: 1000 x 3980 x 3 in 0.66 s"),
    "kinship":      ("multiply-add of n^2 * m * 6",               3.0e9, "bench/bench_kinship.py: 1000 x 20000 in 19.9 s on 2 BLAS threads"),
    "varcomp":      ("n^3 flop x 30 REML iterations",             1.9e11, "bench/bench_reml.py: n = 10000, 6 kernels, 78 s on 2 BLAS threads"),
    "scan1d":       ("n^2 multiply-add per locus per trait",      2.0e8, "bench/bench_pipeline.py: 278 x 1620 random model in 0.6 s"),
    "scan2d":       ("n x 16 per locus pair per trait",           2.4e8, "bench/bench_scan2d.py: 278 x 1619 random model, 53,000 pairs/s"),
    "permutations": ("n^2 multiply-add per locus per permutation", 2.0e8, "as scan1d (one scan per permutation)"),
}
STAGES = tuple(THROUGHPUT)
REML_ITERATIONS = 30


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
    """``(bytes, formula)`` one rank of ``stage`` needs (the module docstring's table)."""
    n, m, t = size.n_individuals, size.n_markers, size.n_traits
    p, s, k = size.positions, size.n_genotypes, size.n_kinships
    if stage == "genoprob":
        own = math.ceil(n / ranks)
        return own * p * s * BYTES + 2 * p * s * BYTES, "ceil(n/r)*p*s*8 + 2*p*s*8"
    if stage == "kinship":
        rows = min(size.block_rows, n)
        return rows * n * BYTES * 6 + n * m * BYTES * 2, "block_rows*n*8*6 + n*m*8*2"
    if stage == "varcomp":
        return k * n * n * BYTES + 4 * n * n * BYTES + n * t * BYTES, "k*n^2*8 + 4*n^2*8 + n*t*8"
    if stage == "scan1d":
        block = min(size.block_markers, m)
        return (2 * n * n * BYTES + 2 * n * block * BYTES * 2 + n * t * BYTES,
                "2*n^2*8 + 2*n*block_markers*8*2 + n*t*8")
    if stage == "scan2d":
        tile = min(size.tile, m)
        # the kernel forms the four epistatic columns for at most 1,024 pairs at a time
        return (2 * n * n * BYTES + 2 * n * tile * BYTES * 2 + 4 * n * min(tile * tile, 1024) * BYTES
                + tile * tile * BYTES * 4, "2*n^2*8 + 2*n*tile*8*2 + 4*n*min(tile^2,1024)*8 + tile^2*8*4")
    if stage == "permutations":
        block, batch = min(size.block_markers, m), min(size.batch, size.n_permutations)
        return (2 * n * n * BYTES + n * batch * BYTES + 2 * n * block * BYTES * 2 + batch * m * BYTES,
                "2*n^2*8 + n*batch*8 + 2*n*block_markers*8*2 + batch*m*8")
    raise KeyError(f"no memory model for stage {stage!r}; known: {', '.join(STAGES)}")


def work_units(stage: str, size: ProblemSize) -> float:
    """Work of ``stage`` in the units of :data:`THROUGHPUT`."""
    n, m, t = size.n_individuals, size.n_markers, size.n_traits
    if stage == "genoprob":
        return n * size.positions * size.n_genotypes ** 2
    if stage == "kinship":
        return n * n * m * 6
    if stage == "varcomp":
        return n ** 3 * REML_ITERATIONS * t
    if stage == "scan1d":
        return n * n * m * t
    if stage == "scan2d":
        return n * 16 * size.n_pairs * t
    if stage == "permutations":
        per_permutation = n * n * m * t
        if "2d" in size.permutation_scans:
            per_permutation += n * 16 * size.n_pairs * t
        return per_permutation * size.n_permutations
    raise KeyError(stage)


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
         headroom: float = 1.25, stages=STAGES) -> List[StagePlan]:
    """Plan every stage for ``sizes`` at ``ranks`` (one count, or per stage) with ``mem_per_cpu``.

    ``sizes`` is a :class:`ProblemSize` or a mapping of its fields.  ``suggested_ntasks`` is the
    smallest count whose estimated time is within ``target_seconds`` (and, where memory shrinks with
    ranks, whose memory fits); ``suggested_mem_per_cpu`` is the need at that count times ``headroom``.
    """
    size = sizes if isinstance(sizes, ProblemSize) else ProblemSize(**dict(sizes))
    limit = parse_memory(mem_per_cpu)
    plans = []
    for stage in stages:
        stage_ranks = ranks.get(stage, 1) if isinstance(ranks, Mapping) else int(ranks)
        memory, formula = memory_per_rank(stage, size, stage_ranks)
        work = work_units(stage, size)
        rate = THROUGHPUT[stage][1]
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
    if not THROUGHPUT_MEASURED:
        lines.append("note: the times use placeholder throughput constants (not yet measured on this code)")
    return "\n".join(lines)
