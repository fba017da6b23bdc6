"""What a SLURM partition can give a job, read from ``scontrol``; checking and shrinking job requests.

SLURM accepts (``EnforcePartLimits=NO``, its default) a job that asks for more CPUs than a partition has,
and leaves it pending for ever with reason ``PartitionConfig``; a request of more memory per node than any
node has is refused by sbatch with a message that names no value.  ``qtlhpc submit`` therefore reads the
limits first and refuses such a request naming the values that fit (or, with ``--fit``, shrinks it).

Public API::

    read_limits(partition="", env=None) -> PartitionLimits
        ``scontrol -o show partition [NAME]`` and ``scontrol -o show node``: the named partition (else the
        default one), its node, time and memory limits and the CPUs and memory of each of its nodes.
    parse_partitions(text) / parse_nodes(text)
        The parsers, on recorded ``scontrol -o`` text (the unit tests use recorded text).
    check_request(resources, limits) -> list[str]
        What in one job's resources (nodes, ntasks, time, mem_per_cpu) the partition cannot give, each
        naming the value asked for, the limit and the largest value that fits; empty when it fits.
    fit_request(resources, limits) -> (resources, changes)
        The request shrunk to fit (fewer tasks, less memory per CPU, a shorter time limit) and one line per
        change.
    pending_reason(reason) -> (never, advice)
        Whether a pending reason of ``squeue``/``scontrol`` means the job can never start as submitted.

Memory is in MiB here (SLURM's unit); times in seconds (``None`` is unlimited).
"""

from __future__ import annotations

import math
import re
import subprocess
from dataclasses import dataclass, field
from typing import Dict, List, Mapping, Optional, Tuple

from qtlhpc.errors import QtlhpcError

_RECORD = re.compile(r"(\w[\w/:]*)=(\S*)")


class LimitsError(QtlhpcError):
    """The site's partition does not exist or has no default."""


class LimitsUnavailable(LimitsError):
    """The cluster's limits cannot be read (no scontrol, no SLURM configuration)."""


@dataclass(frozen=True)
class Node:
    name: str
    cpus: int
    memory_mib: int          # RealMemory
    state: str = "IDLE"


@dataclass(frozen=True)
class PartitionLimits:
    """One partition: its limits and its nodes (``None`` means unlimited)."""

    name: str
    nodes: Tuple[Node, ...]
    state: str = "UP"
    max_nodes: Optional[int] = None
    max_time: Optional[int] = None                 # seconds
    max_cpus_per_node: Optional[int] = None
    max_mem_per_cpu: Optional[int] = None          # MiB
    max_mem_per_node: Optional[int] = None         # MiB
    is_default: bool = False
    notes: Tuple[str, ...] = field(default=())

    @property
    def usable_nodes(self) -> int:
        """Nodes one job may have: the partition's nodes, at most MaxNodes."""
        count = len(self.nodes)
        return count if self.max_nodes is None else min(count, self.max_nodes)

    def cpus_of(self, node: Node) -> int:
        return node.cpus if self.max_cpus_per_node is None else min(node.cpus, self.max_cpus_per_node)

    def memory_of(self, node: Node) -> int:
        return node.memory_mib if self.max_mem_per_node is None else min(node.memory_mib, self.max_mem_per_node)

    def best_nodes(self, count: int) -> List[Node]:
        """The ``count`` nodes with the most CPUs (then memory): what a job of ``count`` nodes can get at best."""
        ranked = sorted(self.nodes, key=lambda n: (self.cpus_of(n), self.memory_of(n)), reverse=True)
        return ranked[:count]

    def describe(self) -> str:
        cpus = sorted({self.cpus_of(n) for n in self.nodes})
        memory = sorted({self.memory_of(n) for n in self.nodes})
        parts = [f"{len(self.nodes)} node(s) with {'/'.join(map(str, cpus))} CPUs and "
                 f"{'/'.join(format_mib(m) for m in memory)} each"]
        if self.max_nodes is not None:
            parts.append(f"MaxNodes={self.max_nodes}")
        parts.append(f"MaxTime={format_time(self.max_time) if self.max_time is not None else 'UNLIMITED'}")
        if self.max_mem_per_cpu is not None:
            parts.append(f"MaxMemPerCPU={format_mib(self.max_mem_per_cpu)}")
        if self.max_mem_per_node is not None:
            parts.append(f"MaxMemPerNode={format_mib(self.max_mem_per_node)}")
        return f"partition {self.name!r}: " + ", ".join(parts)


# --------------------------------------------------------------------------------------------
# Units


def parse_time(text: str) -> Optional[int]:
    """SLURM's time formats (``MM``, ``MM:SS``, ``HH:MM:SS``, ``D-HH``, ``D-HH:MM``, ``D-HH:MM:SS``) -> seconds;
    ``UNLIMITED``/``INFINITE``/``NONE`` -> None."""
    text = str(text).strip()
    if text.upper() in ("UNLIMITED", "INFINITE", "NONE", ""):
        return None
    days = 0
    if "-" in text:
        day_text, text = text.split("-", 1)
        days = int(day_text)
        parts = [int(p) for p in text.split(":")]
        hours, minutes, seconds = (parts + [0, 0, 0])[:3]
    else:
        parts = [int(p) for p in text.split(":")]
        if len(parts) == 1:
            hours, minutes, seconds = 0, parts[0], 0
        elif len(parts) == 2:
            hours, minutes, seconds = 0, parts[0], parts[1]
        else:
            hours, minutes, seconds = parts[:3]
    return ((days * 24 + hours) * 60 + minutes) * 60 + seconds


def format_time(seconds: float) -> str:
    """Seconds -> ``D-HH:MM:SS`` (or ``HH:MM:SS`` under a day), rounded up to a whole minute."""
    minutes = max(1, math.ceil(seconds / 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, minutes = divmod(rest, 60)
    text = f"{hours:02d}:{minutes:02d}:00"
    return f"{days}-{text}" if days else text


def parse_mib(text) -> Optional[int]:
    """``4000``, ``4000M``, ``2G``, ``512K`` -> MiB (rounded up); ``UNLIMITED``/``0`` -> None."""
    text = str(text).strip().upper()
    if text in ("UNLIMITED", "INFINITE", "NONE", "", "0"):
        return None
    factor = {"K": 1 / 1024, "M": 1, "G": 1024, "T": 1024 ** 2}
    if text[-1] in factor:
        return math.ceil(float(text[:-1]) * factor[text[-1]])
    return math.ceil(float(text))


def format_mib(mib: int) -> str:
    """MiB -> what sbatch accepts: ``512M``, ``4G`` (whole G only when exact)."""
    mib = int(mib)
    return f"{mib // 1024}G" if mib >= 1024 and mib % 1024 == 0 else f"{mib}M"


# --------------------------------------------------------------------------------------------
# Reading scontrol


def _records(text: str) -> List[Dict[str, str]]:
    return [dict(_RECORD.findall(line)) for line in text.splitlines() if "=" in line]


def _limit_int(value: Optional[str]) -> Optional[int]:
    if value is None or value.upper() in ("UNLIMITED", "INFINITE", "NONE", "N/A", ""):
        return None
    return int(value)


def parse_nodes(text: str) -> Dict[str, Node]:
    """``scontrol -o show node`` -> {name: Node}."""
    nodes = {}
    for record in _records(text):
        if "NodeName" not in record:
            continue
        cpus = int(record.get("CPUEfctv") or record.get("CPUTot") or 1)
        memory = int(record.get("RealMemory") or 1)
        nodes[record["NodeName"]] = Node(record["NodeName"], cpus, memory, record.get("State", ""))
    return nodes


def expand_hostlist(text: str) -> List[str]:
    """SLURM host lists: ``n[1-3,7],gpu01`` -> ``n1 n2 n3 n7 gpu01`` (zero padding kept)."""
    names: List[str] = []
    for item in re.findall(r"[^,\[]+(?:\[[^\]]*\])?[^,]*", text):
        match = re.match(r"^(.*)\[([^\]]*)\](.*)$", item)
        if not match:
            names.append(item)
            continue
        prefix, ranges, suffix = match.groups()
        for part in ranges.split(","):
            first, _, last = part.partition("-")
            width = len(first)
            for number in range(int(first), int(last or first) + 1):
                names.append(f"{prefix}{number:0{width}d}{suffix}")
    return names


def parse_partitions(partition_text: str, node_text: str) -> Dict[str, PartitionLimits]:
    """``scontrol -o show partition`` and ``scontrol -o show node`` -> {name: PartitionLimits}."""
    nodes = parse_nodes(node_text)
    partitions = {}
    for record in _records(partition_text):
        if "PartitionName" not in record:
            continue
        names = [] if record.get("Nodes", "(null)") in ("(null)", "") else expand_hostlist(record["Nodes"])
        members = tuple(nodes[name] for name in names if name in nodes)
        max_mem_cpu = max_mem_node = None
        if "MaxMemPerCPU" in record:
            max_mem_cpu = parse_mib(record["MaxMemPerCPU"])
        if "MaxMemPerNode" in record:
            max_mem_node = parse_mib(record["MaxMemPerNode"])
        partitions[record["PartitionName"]] = PartitionLimits(
            name=record["PartitionName"], nodes=members, state=record.get("State", "UP"),
            max_nodes=_limit_int(record.get("MaxNodes")), max_time=parse_time(record.get("MaxTime", "UNLIMITED")),
            max_cpus_per_node=_limit_int(record.get("MaxCPUsPerNode")), max_mem_per_cpu=max_mem_cpu,
            max_mem_per_node=max_mem_node, is_default=record.get("Default", "NO").upper() == "YES")
    return partitions


def select_partition(partitions: Mapping[str, PartitionLimits], name: str = "") -> PartitionLimits:
    if name:
        if name not in partitions:
            from qtlhpc.errors import did_you_mean

            raise LimitsError(f"SLURM has no partition {name!r}{did_you_mean(name, list(partitions))} "
                              f"(partitions: {', '.join(partitions) or 'none'}); fix `partition` in the site profile")
        return partitions[name]
    defaults = [p for p in partitions.values() if p.is_default]
    if not defaults:
        raise LimitsError(f"SLURM has no default partition (partitions: {', '.join(partitions) or 'none'}); "
                          f"name one as `partition` in the site profile")
    return defaults[0]


def _scontrol(args: List[str], env) -> str:
    from qtlhpc.cluster.slurm import client_env

    try:
        proc = subprocess.run(["scontrol", "-o", *args], capture_output=True, text=True, env=client_env(env),
                              timeout=60)
    except FileNotFoundError:
        raise LimitsUnavailable("scontrol is not on PATH: the cluster's limits cannot be read") from None
    if proc.returncode != 0:
        raise LimitsUnavailable(f"`scontrol -o {' '.join(args)}` failed: {' '.join(proc.stderr.split())}")
    return proc.stdout


def read_limits(partition: str = "", env=None) -> PartitionLimits:
    """The limits of ``partition`` (default: the cluster's default partition), from scontrol."""
    partitions = parse_partitions(_scontrol(["show", "partition"], env), _scontrol(["show", "node"], env))
    return select_partition(partitions, partition)


# --------------------------------------------------------------------------------------------
# Checking and fitting one job's request


def _request(resources: Mapping) -> Tuple[int, int, int, Optional[int]]:
    nodes = int(resources.get("nodes", 1))
    ntasks = int(resources.get("ntasks", 1))
    mem = parse_mib(resources.get("mem_per_cpu", "2G")) or 0
    return nodes, ntasks, mem, parse_time(str(resources.get("time", "01:00:00")))


def capacity(limits: PartitionLimits, nodes: int) -> Tuple[int, int]:
    """``(most tasks, most MiB per CPU when those tasks run)`` on ``nodes`` of the partition's best nodes."""
    best = limits.best_nodes(nodes)
    if not best:
        return 0, 0
    tasks = sum(limits.cpus_of(n) for n in best)
    return tasks, min(limits.memory_of(n) for n in best)


def max_mem_per_cpu(limits: PartitionLimits, nodes: int, ntasks: int) -> int:
    """Largest ``--mem-per-cpu`` (MiB) that ``ntasks`` tasks on ``nodes`` nodes can each have."""
    best = limits.best_nodes(nodes)
    per_node = math.ceil(ntasks / max(1, len(best)))
    mem = min(limits.memory_of(n) for n in best) // max(1, per_node) if best else 0
    if limits.max_mem_per_cpu is not None:
        mem = min(mem, limits.max_mem_per_cpu)
    return mem


def check_request(resources: Mapping, limits: PartitionLimits) -> List[str]:
    """Each thing the partition cannot give to a job of ``resources``, with the values that fit."""
    nodes, ntasks, mem, seconds = _request(resources)
    problems = []
    if limits.state.upper() not in ("UP",):
        problems.append(f"partition {limits.name!r} is {limits.state}: no job starts there until it is UP")
    if not limits.nodes:
        return problems + [f"partition {limits.name!r} has no nodes"]
    usable = limits.usable_nodes
    if nodes > usable:
        problems.append(f"nodes = {nodes} but at most {usable} fit (partition {limits.name!r} has "
                        f"{len(limits.nodes)} node(s)" + (f", MaxNodes={limits.max_nodes}" if limits.max_nodes else "")
                        + f"): nodes <= {usable} fits")
        nodes = usable
    most_tasks, _ = capacity(limits, nodes)
    if ntasks > most_tasks:
        problems.append(f"ntasks = {ntasks} but {nodes} node(s) of partition {limits.name!r} have "
                        f"{most_tasks} CPUs: ntasks <= {most_tasks} fits"
                        + (f" (or nodes up to {usable})" if nodes < usable else ""))
        ntasks = most_tasks
    fits_mem = max_mem_per_cpu(limits, nodes, ntasks)
    if mem > fits_mem:
        per_node = math.ceil(ntasks / nodes)
        problems.append(f"mem_per_cpu = {format_mib(mem)} but {per_node} task(s) per node can have at most "
                        f"{format_mib(fits_mem)} each" + (f" (MaxMemPerCPU={format_mib(limits.max_mem_per_cpu)})"
                                                          if limits.max_mem_per_cpu is not None else "")
                        + f": mem_per_cpu <= {format_mib(fits_mem)} fits, or fewer tasks per node")
    if seconds is not None and limits.max_time is not None and seconds > limits.max_time:
        problems.append(f"time = {resources.get('time')} exceeds the partition's MaxTime "
                        f"{format_time(limits.max_time)}: time <= {format_time(limits.max_time)} fits")
    if seconds is None and limits.max_time is not None:
        problems.append(f"time = UNLIMITED exceeds the partition's MaxTime {format_time(limits.max_time)}")
    return problems


def fit_request(resources: Mapping, limits: PartitionLimits) -> Tuple[Dict[str, object], List[str]]:
    """``resources`` shrunk to what the partition gives, and one line per value changed."""
    nodes, ntasks, mem, seconds = _request(resources)
    fitted = dict(resources)
    changes = []
    usable = max(1, limits.usable_nodes)
    if nodes > usable:
        changes.append(f"nodes {nodes} -> {usable}")
        nodes = usable
    most_tasks, _ = capacity(limits, nodes)
    if ntasks > most_tasks:
        changes.append(f"ntasks {ntasks} -> {max(1, most_tasks)}")
        ntasks = max(1, most_tasks)
    if ntasks < nodes:
        changes.append(f"nodes {nodes} -> {ntasks} (one task per node at least)")
        nodes = ntasks
    fits_mem = max_mem_per_cpu(limits, nodes, ntasks)
    if mem > fits_mem:
        changes.append(f"mem_per_cpu {format_mib(mem)} -> {format_mib(fits_mem)}")
        mem = fits_mem
    if limits.max_time is not None and (seconds is None or seconds > limits.max_time):
        changes.append(f"time {resources.get('time')} -> {format_time(limits.max_time)}")
        fitted["time"] = format_time(limits.max_time)
    fitted.update(nodes=nodes, ntasks=ntasks, mem_per_cpu=format_mib(mem))
    return fitted, changes


# --------------------------------------------------------------------------------------------
# Pending reasons

#: reasons after which a job does not start unless someone changes it, the partition or the account
NEVER_REASONS = {
    "PartitionConfig": "the request exceeds what the partition's nodes have (CPUs, memory or nodes)",
    "PartitionNodeLimit": "more nodes than the partition allows (MaxNodes) or has",
    "PartitionTimeLimit": "the time limit exceeds the partition's MaxTime",
    "PartitionDown": "the partition is down",
    "PartitionInactive": "the partition is inactive",
    "BadConstraints": "no node has the resources or features asked for",
    "DependencyNeverSatisfied": "a job it depends on failed or was cancelled",
    "InvalidAccount": "the account is not valid",
    "InvalidQOS": "the QOS is not valid",
    "ReqNodeNotAvail": "a node it needs is down, drained or reserved",
    "QOSMaxCpuPerJobLimit": "more CPUs than the QOS allows a job",
    "QOSMaxNodePerJobLimit": "more nodes than the QOS allows a job",
    "QOSMaxMemoryPerJob": "more memory than the QOS allows a job",
    "QOSMaxWallDurationPerJobLimit": "a longer time limit than the QOS allows",
    "AssocMaxCpuPerJobLimit": "more CPUs than the account allows a job",
    "AssocMaxNodePerJobLimit": "more nodes than the account allows a job",
    "AssocMaxWallDurationPerJobLimit": "a longer time limit than the account allows",
    "AccountNotAllowed": "the account may not use the partition",
    "QOSNotAllowed": "the QOS may not use the partition",
}
#: reasons that clear only by someone's action, but not by resubmitting
HELD_REASONS = {
    "JobHeldUser": "held by its owner: `scontrol release JOBID`",
    "JobHeldAdmin": "held by an administrator (or root): `scontrol release JOBID`",
}


def pending_reason(reason: str) -> Tuple[bool, str]:
    """``(never, text)``: whether a pending job with ``reason`` can never start as submitted, and the text
    `qtlhpc status` shows."""
    reason = (reason or "").strip()
    if reason == "DependencyNeverSatisfied":
        return True, (f"NEVER STARTS ({reason}: {NEVER_REASONS[reason]}); cancel it (scancel) and resubmit "
                      f"what failed (`qtlhpc submit --resume RUN_DIR`)")
    if reason in NEVER_REASONS:
        return True, (f"NEVER STARTS ({reason}: {NEVER_REASONS[reason]}); cancel it (scancel) and resubmit "
                      f"with resources that fit (`qtlhpc submit --fit`)")
    if reason in HELD_REASONS:
        return False, f"{reason}: {HELD_REASONS[reason]}"
    return False, reason
