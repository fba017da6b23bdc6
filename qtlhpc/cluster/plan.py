"""Resource planning: memory per rank and estimated time of each stage, from the problem sizes.

``plan(sizes, ranks=..., mem_per_cpu=...)`` returns one :class:`StagePlan` per stage with the memory a
rank needs (the formulas below, in bytes of float64), an estimated wall time from the throughput
table, a suggested ``ntasks`` and ``mem-per-cpu``, and a warning when the stage cannot fit the memory
given.  ``format_plan(plans)`` renders the table ``qtlhpc plan`` prints.

A rank needs the interpreter besides its data: :func:`interpreter_base_memory` measures it (the peak
resident memory of a child interpreter that imports numpy, scipy, h5py, mpi4py, initialises MPI and loads
qtlhpc's stages), once per process; ``memory_per_rank`` is the data alone (the formulas), the suggestion
(``suggested_mem_per_cpu``) is ``(data + base) x headroom`` rounded up to a size sbatch accepts (whole MiB,
a multiple of 64M below 1G, of 256M above), and ``suggested_time`` the estimated time x 2 rounded up to
whole minutes (at least 10) in SLURM's ``D-HH:MM:SS``.

Each stage's memory formula and throughput are part of its declaration (the ``plan`` of its
:class:`~qtlhpc.stages.spec.StageSpec`, in ``qtlhpc/methods/<method>/stages.py``); this module only
evaluates them for the problem sizes below.  Symbols: n individuals, m loci, p genoprob positions, s
genotype states, t traits, k kinship matrices, P permutations, r ranks of the stage, and the block
sizes of the config.  docs/memory.md lists the formulas.
"""

from __future__ import annotations

import functools
import math
import subprocess
import sys
from dataclasses import dataclass, field
from typing import List, Mapping, Optional, Union

#: what a child interpreter runs to measure the base memory of one rank (printed: peak RSS in KiB)
_BASE_PROBE = """
import resource, numpy, scipy.linalg, h5py
from mpi4py import MPI
MPI.COMM_WORLD.Barrier()
from qtlhpc.stages import registry
registry.stages()
try:  # VmHWM belongs to this process image; ru_maxrss keeps the parent's size at fork across exec (Linux)
    with open("/proc/self/status") as status:
        print(next(int(line.split()[1]) for line in status if line.startswith("VmHWM:")))
except (OSError, StopIteration):
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


@functools.lru_cache(maxsize=None)
def interpreter_base_memory(python: Optional[str] = None) -> int:
    """Bytes: the peak resident memory of one rank before it holds any data, measured in a child
    ``python`` (default: this interpreter) that imports numpy, scipy, h5py and mpi4py, starts MPI and
    loads qtlhpc's stage declarations.  Measured once per process and interpreter."""
    import os

    env = {name: value for name, value in os.environ.items()
           if not name.startswith(("PMIX_", "PMI_", "OMPI_COMM_WORLD", "OMPI_MCA_ess"))}
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT", "1")
    env.setdefault("OMPI_ALLOW_RUN_AS_ROOT_CONFIRM", "1")
    errors = []
    # MPI_Init may be impossible where `plan` runs (a login node): then measured without MPI
    for probe in (_BASE_PROBE, _BASE_PROBE.replace("from mpi4py import MPI\nMPI.COMM_WORLD.Barrier()\n", "")):
        try:
            proc = subprocess.run([python or sys.executable, "-c", probe], capture_output=True, text=True,
                                  timeout=120, env=env)
        except (OSError, subprocess.TimeoutExpired) as error:
            errors.append(str(error))
            continue
        lines = proc.stdout.split()
        if proc.returncode == 0 and lines and lines[-1].isdigit():
            return int(lines[-1]) * 1024
        errors.append(proc.stderr.strip()[-300:])
    from qtlhpc.errors import QtlhpcError

    raise QtlhpcError(f"measuring the memory of {python or sys.executable} with numpy, h5py and qtlhpc loaded "
                      f"failed: {' | '.join(errors)}")


def slurm_memory(n_bytes: float) -> str:
    """Bytes -> a ``--mem-per-cpu`` sbatch accepts, rounded up: a multiple of 64M below 1G, of 256M from
    1G on, written in G when whole (``192M``, ``1280M``, ``2G``)."""
    mib = max(1, math.ceil(n_bytes / 1024 ** 2))
    step = 64 if mib < 1024 else 256
    mib = math.ceil(mib / step) * step
    return f"{mib // 1024}G" if mib % 1024 == 0 else f"{mib}M"


def slurm_time(seconds: float, minimum_minutes: int = 10) -> str:
    """Seconds -> SLURM's ``D-HH:MM:SS`` (``HH:MM:SS`` under a day), rounded up to whole minutes."""
    minutes = max(minimum_minutes, math.ceil(seconds / 60))
    days, rest = divmod(minutes, 24 * 60)
    text = f"{rest // 60:02d}:{rest % 60:02d}:00"
    return f"{days}-{text}" if days else text

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
    n_window_variants: Optional[float] = None  # mean variants in a gene's cis window (population cis-eQTL)
    n_sem_paths: Optional[int] = None   # SEM search paths ([sem_search] n_paths)
    n_edn_genes: Optional[int] = None   # SEM: genes, eQTL nodes and edges of the EDN (from a complete sem-edn)
    n_edn_eqtl: Optional[int] = None
    n_edn_edges: Optional[int] = None

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
    base_memory: int = 0                 # bytes of the interpreter itself (measured), beside memory_per_rank
    suggested_time: str = "00:10:00"

    @property
    def total_memory(self) -> int:
        """Bytes one rank needs: its data and the interpreter."""
        return self.memory_per_rank + self.base_memory

    def resources(self) -> dict:
        """The suggestion as a job's resources (``qtlhpc submit --from-plan``)."""
        return {"nodes": 1, "ntasks": self.suggested_ntasks, "mem_per_cpu": self.suggested_mem_per_cpu,
                "time": self.suggested_time}


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
         headroom: float = 1.25, stages=None, base_memory: Optional[int] = None) -> List[StagePlan]:
    """Plan every stage for ``sizes`` at ``ranks`` (one count, or per stage) with ``mem_per_cpu``.

    ``sizes`` is a :class:`ProblemSize` or a mapping of its fields.  ``suggested_ntasks`` is the
    smallest count whose estimated time is within ``target_seconds`` (and, where memory shrinks with
    ranks, whose memory fits); ``suggested_mem_per_cpu`` is (the need at that count + ``base_memory``)
    times ``headroom``, rounded by :func:`slurm_memory`.  ``base_memory`` (bytes) defaults to
    :func:`interpreter_base_memory`, measured.
    """
    size = sizes if isinstance(sizes, ProblemSize) else ProblemSize(**dict(sizes))
    stages = planned_stages() if stages is None else stages
    limit = parse_memory(mem_per_cpu) - (interpreter_base_memory() if base_memory is None else base_memory)
    base = parse_memory(mem_per_cpu) - limit
    plans = []
    for stage in stages:
        stage_ranks = ranks.get(stage, 1) if isinstance(ranks, Mapping) else int(ranks)
        memory, formula = memory_per_rank(stage, size, stage_ranks)
        work = work_units(stage, size)
        rate = throughput(stage)[1]
        splits = _planned_specs()[stage].plan.splits   # False: one rank does the work, the others wait
        seconds = work / (rate * (stage_ranks if splits else 1))
        suggested = min(max_ranks, max(1, math.ceil(work / (rate * target_seconds)))) if splits else 1
        while suggested < max_ranks and memory_per_rank(stage, size, suggested)[0] > limit \
                and memory_per_rank(stage, size, suggested + 1)[0] < memory_per_rank(stage, size, suggested)[0]:
            suggested += 1
        need_at_suggested = memory_per_rank(stage, size, suggested)[0]
        warning = None
        if memory > limit:
            warning = (f"{stage} needs {format_memory(memory + base)} per rank at {stage_ranks} ranks "
                       f"({format_memory(memory)} of data + {format_memory(base)} for the interpreter) but "
                       f"mem-per-cpu is {format_memory(limit + base)}: raise mem-per-cpu to "
                       f"{slurm_memory((memory + base) * headroom)}"
                       + (", use more ranks" if memory_per_rank(stage, size, stage_ranks * 2)[0] < memory else "")
                       + " or lower the block sizes")
        suggested_seconds = work / (rate * (suggested if splits else 1))
        plans.append(StagePlan(stage, stage_ranks, memory, formula, work, seconds, suggested,
                               slurm_memory((need_at_suggested + base) * headroom), warning,
                               base_memory=base, suggested_time=slurm_time(2 * suggested_seconds)))
    return plans


def format_plan(plans: List[StagePlan]) -> str:
    """The plan as a table, then one line per warning, then where the throughput numbers come from."""
    from qtlhpc.progress import format_seconds

    header = ("stage", "ranks", "data/rank", "memory/rank", "est. time", "suggest ntasks", "suggest mem-per-cpu",
              "suggest time")
    rows = [header] + [(p.stage, str(p.ranks), format_memory(p.memory_per_rank), format_memory(p.total_memory),
                        format_seconds(p.seconds), str(p.suggested_ntasks), p.suggested_mem_per_cpu,
                        p.suggested_time) for p in plans]
    widths = [max(len(row[i]) for row in rows) for i in range(len(header))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    if plans:
        lines.append(f"memory/rank = data + {format_memory(plans[0].base_memory)} measured for the interpreter "
                     f"(numpy, scipy, h5py, MPI and qtlhpc loaded); suggestions include a headroom and are "
                     f"rounded to sizes and times sbatch accepts (`qtlhpc submit --from-plan` uses them)")
    lines += [f"warning: {p.warning}" for p in plans if p.warning]
    return "\n".join(lines)


def run_stages(config) -> List[str]:
    """The stages ``qtlhpc run all`` runs for ``config`` (``[run] stages``, pipelines expanded), with the merge
    stage of each array stage."""
    from qtlhpc.stages import registry

    found: List[str] = []
    for name in config.section("run")["stages"]:
        for stage in (registry.pipeline(name, config) if name in registry.pipelines() else [name]):
            spec = registry.get(stage)
            found += [s for s in (stage, spec.array.merge if spec.array else None) if s and s not in found]
    return found


def planned_run_stages(config) -> Optional[List[str]]:
    """The stages of :func:`run_stages` that have a plan model (``None``: none of them has one, plan all)."""
    planned = [stage for stage in run_stages(config) if stage in planned_stages()]
    return planned or None


def problem_for_config(config) -> tuple:
    """``(ProblemSize, description)`` of a :class:`qtlhpc.config.Config` (see :func:`_problem_for_config`),
    with the permutation count of the run's own permutation array stage (``[permutations] n_permutations``
    for PEPIS, ``[cal] permutations``, ``[blockmix_permutations] n_permutations``...)."""
    import dataclasses

    from qtlhpc.stages import registry

    size, description = _problem_for_config(config)
    for stage in run_stages(config):
        array = registry.get(stage).array
        if array is not None and array.unit in ("permutation", "replicate"):
            count = int(array.count(config)) - (1 if array.unit == "replicate" else 0)  # replicate 0: observed
            return dataclasses.replace(size, n_permutations=count), description
    return size, description


def _problem_for_config(config) -> tuple:
    """``(ProblemSize, description)`` of a :class:`qtlhpc.config.Config`: the data sizes from its input
    files (or its [simulate] section when they do not exist yet) and the block settings of its sections."""
    from qtlhpc.config import sections
    from qtlhpc.errors import ConfigError

    from qtlhpc.methods.eqtl.plan import problem_sizes as expression_problem_sizes

    expression_sizes = expression_problem_sizes(config, run_stages(config))
    if expression_sizes is not None:   # an expression config: genes are the traits, variants or markers the loci
        settings = {name: config.section(name) for name, declared in sections().items() if not declared.optional}
        size = problem_from_config(settings, **expression_sizes)
        import dataclasses

        from qtlhpc.methods.sem.plan import edn_sizes

        size = dataclasses.replace(size, **edn_sizes(config, run_stages(config)))
        description = (f"{size.n_traits} genes, {size.n_individuals} samples, {size.n_markers} variants or markers"
                       + (f", {size.n_window_variants:.0f} variants per cis window on average"
                          if size.n_window_variants is not None else ""))
        return size, description
    if config.has_section("input") and _input_exists(config):
        from qtlhpc.io.loader import load_cross

        cross = load_cross(dict(config.raw["input"]), config.base_dir)
        n_individuals, n_markers, n_traits = cross.n_individuals, cross.n_markers, max(1, cross.n_traits)
        states = {"bc": 2, "riself": 2, "risib": 2}.get(cross.cross_type, 3)
    elif config.has_section("simulate"):
        simulate = config.section("simulate")
        n_individuals = simulate["n_individuals"]
        n_markers = simulate["n_chromosomes"] * simulate["markers_per_chromosome"]
        n_traits, states = simulate["n_traits"], (2 if simulate["cross_type"] in ("bc", "riself", "risib") else 3)
    else:
        raise ConfigError(f"{config.source}: `qtlhpc plan` needs an [input] whose files exist, or a [simulate] section")
    settings = {name: config.section(name) for name, declared in sections().items() if not declared.optional}
    size = problem_from_config(settings, n_individuals=n_individuals, n_markers=n_markers, n_traits=n_traits,
                               n_genotypes=states)
    description = (f"{n_individuals} individuals, {n_markers} markers, {n_traits} trait(s), "
                   f"genoprob step {config.section('genoprob')['step']} cM")
    return size, description


def _input_exists(config) -> bool:
    section = config.raw.get("input", {})
    paths = [section.get(key) for key in ("file", "genotypes", "z") if section.get(key)]
    return bool(paths) and all(config.path(p).exists() or config.path(p + ".bed").exists() for p in paths)
