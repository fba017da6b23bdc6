"""Cluster requests that can never run (issue 9, item 9): table-driven, each case names what it must say.

Three tables:

* ``LIMIT_CASES``: a job's resources against partition limits parsed from ``scontrol -o`` text recorded on
  the private SLURM of ``tests/slurm_cluster.py`` (``RECORDED_PARTITIONS`` / ``RECORDED_NODES``: the
  ``debug`` partition, one node ``vm`` of 4 CPUs and 4000 MiB, and a partition ``short`` made with
  ``scontrol create PartitionName=short Nodes=vm MaxTime=00:30:00 MaxNodes=1 MaxMemPerCPU=1000``) and on a
  three-node copy of it (``THREE_NODES``, the recorded node line with the name changed);
* ``REASON_CASES``: SLURM pending reasons and whether ``qtlhpc status`` flags them as never starting;
* ``SUBMIT_CASES``: ``qtlhpc submit`` on the real private SLURM, each refused before anything is submitted,
  with the message it must contain (the values that fit).

Then real-SLURM tests of ``--fit``, ``--from-plan`` (values sbatch accepts, read back from ``scontrol show
job``), ``qtlhpc status`` showing the pending reason and flagging ``PartitionConfig``, and the refusal to
submit into a run directory whose jobs are still queued.  Jobs submitted here begin in an hour
(``--begin=now+3600`` in the test's site profile) or can never start, and are cancelled at the end of each
test.
"""

from __future__ import annotations

import json
import re
import subprocess
import time
import sys
from pathlib import Path

import pytest

from qtlhpc.cluster import limits as lim
from qtlhpc.cluster import plan as planning
from qtlhpc.cluster import slurm
from qtlhpc.cluster.sites import site_from_dict
from qtlhpc.errors import QtlhpcError
from slurm_cluster import slurm_cluster  # noqa: F401  (the session fixture)

# `scontrol -o show partition` and `scontrol -o show node` on the private cluster (SLURM 22.05.8)
RECORDED_PARTITIONS = (
    "PartitionName=debug AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL Default=YES QoS=N/A "
    "DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO MaxNodes=UNLIMITED "
    "MaxTime=UNLIMITED MinNodes=0 LLN=NO MaxCPUsPerNode=UNLIMITED Nodes=vm PriorityJobFactor=1 PriorityTier=1 "
    "RootOnly=NO ReqResv=NO OverSubscribe=NO OverTimeLimit=NONE PreemptMode=OFF State=UP TotalCPUs=4 "
    "TotalNodes=1 SelectTypeParameters=NONE JobDefaults=(null) DefMemPerNode=UNLIMITED MaxMemPerNode=UNLIMITED "
    "TRES=cpu=4,mem=4000M,node=1,billing=4\n"
    "PartitionName=short AllowGroups=ALL AllowAccounts=ALL AllowQos=ALL AllocNodes=ALL Default=NO QoS=N/A "
    "DefaultTime=NONE DisableRootJobs=NO ExclusiveUser=NO GraceTime=0 Hidden=NO MaxNodes=1 MaxTime=00:30:00 "
    "MinNodes=1 LLN=NO MaxCPUsPerNode=UNLIMITED Nodes=vm PriorityJobFactor=1 PriorityTier=1 RootOnly=NO "
    "ReqResv=NO OverSubscribe=NO OverTimeLimit=NONE PreemptMode=OFF State=UP TotalCPUs=4 TotalNodes=1 "
    "SelectTypeParameters=NONE JobDefaults=(null) DefMemPerNode=UNLIMITED MaxMemPerCPU=1000 "
    "TRES=cpu=4,mem=4000M,node=1,billing=4\n"
)
RECORDED_NODES = (
    "NodeName=vm Arch=x86_64 CoresPerSocket=1  CPUAlloc=0 CPUEfctv=4 CPUTot=4 CPULoad=0.73 "
    "AvailableFeatures=(null) ActiveFeatures=(null) Gres=(null) NodeAddr=127.0.0.1 NodeHostName=vm "
    "Version=22.05.8 OS=Linux 6.18.44 #1 SMP PREEMPT_DYNAMIC @0  RealMemory=4000 AllocMem=0 FreeMem=21401 "
    "Sockets=4 Boards=1 State=IDLE ThreadsPerCore=1 TmpDisk=0 Weight=1 Owner=N/A MCS_label=N/A Partitions=debug  "
    "BootTime=2026-12-01T03:21:32 SlurmdStartTime=2026-12-01T06:01:53 LastBusyTime=2026-12-01T06:01:53 "
    "CfgTRES=cpu=4,mem=4000M,billing=4 AllocTRES= CapWatts=n/a CurrentWatts=0 AveWatts=0 ExtSensorsJoules=n/s "
    "ExtSensorsWatts=0 ExtSensorsTemp=n/s\n"
)
# the same records for three nodes n[01-03] in one partition with MaxNodes=2
THREE_NODES = (
    RECORDED_PARTITIONS.splitlines()[0].replace("Nodes=vm", "Nodes=n[01-03]").replace("MaxNodes=UNLIMITED",
                                                                                      "MaxNodes=2"),
    "\n".join(RECORDED_NODES.strip().replace("NodeName=vm", f"NodeName=n0{i}") for i in (1, 2, 3)),
)


def recorded(name: str) -> lim.PartitionLimits:
    return lim.parse_partitions(RECORDED_PARTITIONS, RECORDED_NODES)[name]


def three() -> lim.PartitionLimits:
    return lim.select_partition(lim.parse_partitions(*THREE_NODES))


def res(ntasks=1, mem="1G", time="01:00:00", nodes=1):
    return {"nodes": nodes, "ntasks": ntasks, "mem_per_cpu": mem, "time": time}


# case, partition, resources, what the refusal must name ("" = fits: no problem)
LIMIT_CASES = [
    ("C01 jobs/pepis.toml scan2d: 32 tasks on a 4-CPU node", "debug", res(32, "2G", "12:00:00"),
     r"ntasks = 32 but 1 node\(s\) of partition 'debug' have 4 CPUs: ntasks <= 4 fits"),
    ("C02 memory per node: 2 x 4G on 4000M", "debug", res(2, "4G"),
     r"mem_per_cpu = 4G but 2 task\(s\) per node can have at most 2000M each: mem_per_cpu <= 2000M fits"),
    ("C03 MaxMemPerCPU of the partition", "short", res(1, "2G", "00:10:00"),
     r"mem_per_cpu = 2G .* at most 1000M each \(MaxMemPerCPU=1000M\)"),
    ("C04 MaxTime", "short", res(1, "500M", "01:00:00"),
     r"time = 01:00:00 exceeds the partition's MaxTime 00:30:00: time <= 00:30:00 fits"),
    ("C05 MaxNodes", "short", res(2, "500M", "00:10:00", nodes=2), r"nodes = 2 but at most 1 fit.*nodes <= 1 fits"),
    ("C06 day-long time on a 30-minute partition", "short", res(1, "500M", "1-00:00:00"), r"time <= 00:30:00 fits"),
    ("C07 three nodes, MaxNodes=2: 3 nodes", "three", res(3, "1G", nodes=3), r"nodes = 3 but at most 2 fit"),
    ("C08 three nodes: 12 tasks on 2 nodes", "three", res(12, "1G", nodes=2),
     r"ntasks = 12 but 2 node\(s\) .* have 8 CPUs: ntasks <= 8 fits"),
    ("C09 one node asked, more tasks than it has: more nodes would do", "three", res(6, "500M"),
     r"ntasks <= 4 fits \(or nodes up to 2\)"),
    ("fits: 4 x 1000M on debug", "debug", res(4, "1000M"), ""),
    ("fits: 8 tasks on 2 of 3 nodes", "three", res(8, "1000M", nodes=2), ""),
    ("fits: the short partition's maxima", "short", res(4, "1000M", "00:30:00"), ""),
]


@pytest.mark.parametrize("case, partition, resources, message", LIMIT_CASES, ids=[c[0] for c in LIMIT_CASES])
def test_request_against_recorded_limits(case, partition, resources, message):
    limits = three() if partition == "three" else recorded(partition)
    problems = lim.check_request(resources, limits)
    if not message:
        assert problems == []
    else:
        assert problems and re.search(message, " ".join(problems)), problems


# case, partition, resources, expected fitted values
FIT_CASES = [
    ("F1 pepis scan2d defaults", "debug", res(32, "2G", "12:00:00"),
     {"ntasks": 4, "mem_per_cpu": "1000M", "time": "12:00:00"}),
    ("F2 memory and time on short", "short", res(2, "4G", "2-00:00:00"),
     {"ntasks": 2, "mem_per_cpu": "1000M", "time": "00:30:00"}),
    ("F3 nodes over MaxNodes", "three", res(24, "1G", nodes=3), {"nodes": 2, "ntasks": 8, "mem_per_cpu": "1000M"}),
    ("F4 a request that fits is unchanged", "debug", res(2, "500M"), {"ntasks": 2, "mem_per_cpu": "500M"}),
]


@pytest.mark.parametrize("case, partition, resources, expected", FIT_CASES, ids=[c[0] for c in FIT_CASES])
def test_fit_request_shrinks_to_the_limits(case, partition, resources, expected):
    limits = three() if partition == "three" else recorded(partition)
    fitted, changes = lim.fit_request(resources, limits)
    assert {key: fitted[key] for key in expected} == expected
    assert lim.check_request(fitted, limits) == []
    assert bool(changes) == (fitted != resources)


def test_recorded_text_parses_to_the_cluster_it_came_from():
    debug, short = recorded("debug"), recorded("short")
    assert debug.is_default and not short.is_default
    assert [(n.name, n.cpus, n.memory_mib) for n in debug.nodes] == [("vm", 4, 4000)]
    assert (debug.max_nodes, debug.max_time, debug.max_mem_per_cpu, debug.max_mem_per_node) == (None, None, None, None)
    assert (short.max_nodes, short.max_time, short.max_mem_per_cpu) == (1, 1800, 1000)
    assert lim.expand_hostlist("n[01-03],gpu[7,9],login") == ["n01", "n02", "n03", "gpu7", "gpu9", "login"]
    assert [lim.parse_time(t) for t in ("30", "1:30", "01:00:00", "2-00", "1-02:03:04", "UNLIMITED")] == \
        [1800, 90, 3600, 172800, 93784, None]
    assert [lim.parse_mib(m) for m in ("4000", "2G", "512M", "UNLIMITED")] == [4000, 2048, 512, None]
    assert lim.format_time(1801) == "00:31:00" and lim.format_time(86400 * 2) == "2-00:00:00"
    with pytest.raises(lim.LimitsError, match=r"no partition 'shrot'; did you mean 'short'"):
        lim.select_partition(lim.parse_partitions(RECORDED_PARTITIONS, RECORDED_NODES), "shrot")


# reason, never starts?, what status must say
REASON_CASES = [
    ("PartitionConfig", True, "NEVER STARTS (PartitionConfig: the request exceeds what the partition's nodes have"),
    ("PartitionTimeLimit", True, "NEVER STARTS (PartitionTimeLimit"),
    ("PartitionNodeLimit", True, "NEVER STARTS (PartitionNodeLimit"),
    ("BadConstraints", True, "NEVER STARTS (BadConstraints"),
    ("DependencyNeverSatisfied", True, "qtlhpc submit --resume"),
    ("QOSMaxWallDurationPerJobLimit", True, "NEVER STARTS"),
    ("JobHeldUser", False, "scontrol release"),
    ("Priority", False, "Priority"),
    ("Resources", False, "Resources"),
    ("Dependency", False, "Dependency"),
]


@pytest.mark.parametrize("reason, never, text", REASON_CASES, ids=[c[0] for c in REASON_CASES])
def test_pending_reasons(reason, never, text):
    flagged, shown = lim.pending_reason(reason)
    assert flagged == never and text in shown


# SLURM end state of a job whose stage is not complete, what status must advise
ENDED_CASES = [
    ("TIMEOUT", "it hit its time limit; its finished blocks are kept: raise time in [slurm] resources"),
    ("OUT_OF_MEMORY", "raise mem_per_cpu in [slurm] resources"),
    ("NODE_FAIL", "a node failed; its finished blocks are kept: `qtlhpc submit --resume RUN_DIR`"),
    ("PREEMPTED", "`qtlhpc submit --resume RUN_DIR`"),
]


@pytest.mark.parametrize("state, advice", ENDED_CASES, ids=[c[0] for c in ENDED_CASES])
def test_status_advises_after_a_job_ended_unfinished(state, advice):
    assert slurm._classify(state, "TimeLimit", True) == ("failed", f"{state}: " + slurm._FAILED_ADVICE[state])
    assert advice in slurm._classify(state, "", True)[1]


def test_status_row_shows_the_reason_from_recorded_scontrol_text():
    text = ("JobId=1 JobName=pepis-scan2d UserId=root(0) JobState=PENDING Reason=PartitionConfig Dependency=(null)\n"
            "JobId=7 ArrayJobId=7 ArrayTaskId=0-2 JobName=pepis-permutations JobState=PENDING Reason=Priority\n")
    records = slurm.parse_job_records(text)
    assert records[None] == ("PENDING", "PartitionConfig") and records[2] == ("PENDING", "Priority")
    state, detail = slurm._classify("PENDING", "PartitionConfig", False)
    assert state == "pending" and "NEVER STARTS (PartitionConfig" in detail
    rows = [slurm.StageStatus("scan2d", None, state, "1", detail)]
    assert "warning: 1 job(s) can never start as submitted" in slurm.format_status(rows)


# --------------------------------------------------------------------------------------------
# Plan: the interpreter's base memory, values SLURM accepts


def test_plan_includes_the_measured_interpreter_memory():
    """C10: `plan` suggested 1 task and 1M per rank; a rank's interpreter alone takes ~130-200 MB."""
    base = planning.interpreter_base_memory()
    assert 50 * 2 ** 20 < base < 1024 * 2 ** 20  # measured: numpy, scipy, h5py, MPI and qtlhpc loaded
    tiny = planning.ProblemSize(n_individuals=10, n_markers=5)
    for p in planning.plan(tiny):
        assert p.base_memory == base
        assert planning.parse_memory(p.suggested_mem_per_cpu) >= base + p.memory_per_rank
        assert p.suggested_mem_per_cpu != "1M"
    text = planning.format_plan(planning.plan(tiny))
    assert f"data + {planning.format_memory(base)} measured for the interpreter" in text


@pytest.mark.parametrize("n_bytes, expected", [(1, "64M"), (130 * 2 ** 20, "192M"), (1000 * 2 ** 20, "1G"),
                                               (1025 * 2 ** 20, "1280M"), (3 * 2 ** 30 + 1, "3328M")])
def test_plan_memory_rounds_to_sizes_sbatch_accepts(n_bytes, expected):
    assert planning.slurm_memory(n_bytes) == expected
    assert re.fullmatch(r"\d+[MG]", expected)


@pytest.mark.parametrize("seconds, expected", [(1, "00:10:00"), (3601, "01:01:00"), (86400 * 3 + 59, "3-00:01:00")])
def test_plan_time_in_slurm_format(seconds, expected):
    assert planning.slurm_time(seconds) == expected
    assert lim.parse_time(expected) >= min(seconds, lim.parse_time(expected))


def test_memory_warning_counts_the_interpreter():
    """A stage whose data fit mem-per-cpu but whose data + interpreter do not is warned about."""
    size = planning.ProblemSize(n_individuals=2000, n_markers=100)
    data = {p.stage: p.memory_per_rank for p in planning.plan(size, base_memory=0, mem_per_cpu="16G")}
    mem = planning.format_memory(data["varcomp"] + 2 ** 20)  # just above the data alone
    plans = {p.stage: p for p in planning.plan(size, base_memory=200 * 2 ** 20, mem_per_cpu=mem)}
    assert plans["varcomp"].warning and "for the interpreter" in plans["varcomp"].warning


# --------------------------------------------------------------------------------------------
# Real SLURM


CONFIG = """
[run]
output = "results.h5"
seed = 3

[simulate]
cross_type = "f2"
n_individuals = 60
n_chromosomes = 2
chromosome_length_cM = 50.0
markers_per_chromosome = 6
n_traits = 1
write_to = "cross"

[permutations]
n_permutations = 100

[slurm]
array_tasks = 2
{extra}
"""


def write_config(directory: Path, extra: str = "") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / "analysis.toml"
    path.write_text(CONFIG.format(extra=extra))
    return path


def site(partition: str = "", later: bool = False) -> object:
    """A site profile for the private cluster; ``later``: jobs begin in an hour (they stay pending)."""
    extra = ["--begin=now+3600"] if later else []
    return site_from_dict({"launcher": "srun", "python": sys.executable, "partition": partition,
                           "extra_sbatch": extra}, source="<test site>")


@pytest.fixture
def short_partition(slurm_cluster):
    """The partition ``short`` (MaxTime 30 min, MaxNodes 1, MaxMemPerCPU 1000M) on the cluster's node."""
    slurm_cluster.run("scontrol", "create", "PartitionName=short", f"Nodes={slurm_cluster.node_name}",
                      "MaxTime=00:30:00", "MaxNodes=1", "MaxMemPerCPU=1000", "State=UP")
    try:
        yield "short"
    finally:
        slurm_cluster.run("scontrol", "delete", "PartitionName=short", check=False)


@pytest.fixture
def held(slurm_cluster):
    """The cluster's env and a list of run directories whose jobs are cancelled at the end."""
    env = slurm_cluster.env
    run_dirs = []
    yield env, run_dirs
    for run_dir in run_dirs:
        path = Path(run_dir) / "jobs.json"
        if path.exists():
            for record in json.loads(path.read_text())["submissions"]:
                slurm_cluster.run("scancel", record["job_id"], check=False)


def job_fields(cluster, job_id: str) -> dict:
    text = cluster.run("scontrol", "-o", "show", "job", job_id).stdout.splitlines()[0]
    return dict(re.findall(r"(\w[\w/:]*)=(\S*)", text))


# case, config [slurm] extra, site partition, what the refusal names
SUBMIT_CASES = [
    ("S1 the defaults of jobs/pepis.toml on a 4-CPU node", "", "",
     ["scan2d: ntasks = 32 but 1 node(s) of partition 'debug' have 4 CPUs: ntasks <= 4 fits",
      "kinship: ntasks = 8", "qtlhpc submit --fit"]),
    ("S2 memory per node", "resources = {kinship = {ntasks = 2, mem_per_cpu = '4G'}}", "",
     ["kinship: mem_per_cpu = 4G but 2 task(s) per node can have at most 2000M each"]),
    ("S3 time over the partition's MaxTime", "resources = {scan2d = {ntasks = 2, time = '02:00:00'}}", "short",
     ["scan2d: time = 02:00:00 exceeds the partition's MaxTime 00:30:00: time <= 00:30:00 fits"]),
    ("S4 nodes over MaxNodes", "resources = {scan1d = {nodes = 2, ntasks = 2}}", "short",
     ["scan1d: nodes = 2 but at most 1 fit"]),
    ("S5 a partition SLURM does not have", "", "shrot", ["SLURM has no partition 'shrot'; did you mean 'short'"]),
]


@pytest.mark.slurm
@pytest.mark.parametrize("case, extra, partition, messages", SUBMIT_CASES, ids=[c[0] for c in SUBMIT_CASES])
def test_submit_refuses_what_the_cluster_cannot_run(tmp_path, slurm_cluster, short_partition, case, extra,
                                                    partition, messages):
    config = write_config(tmp_path, extra)
    with pytest.raises(QtlhpcError) as refused:
        slurm.submit_command("pepis", config, site=site(partition), env=slurm_cluster.env)
    for message in messages:
        assert message in str(refused.value), str(refused.value)
    assert not (tmp_path / "results.slurm" / "jobs.json").exists()  # nothing submitted


@pytest.mark.slurm
def test_cli_refusal_is_one_line(tmp_path, slurm_cluster):
    """`qtlhpc submit pepis CONFIG --site local` with the job defaults: exit 2, one line, no traceback."""
    config = write_config(tmp_path)
    proc = subprocess.run([sys.executable, "-m", "qtlhpc", "submit", "pepis", str(config), "--site", "local"],
                          env=slurm_cluster.env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("qtlhpc: error: the cluster cannot run these requests") and "Traceback" not in proc.stderr
    assert "ntasks <= 4 fits" in proc.stderr and proc.stderr.count("\n") == 1


@pytest.mark.slurm
def test_fit_submits_what_fits_and_a_second_submit_is_refused(tmp_path, slurm_cluster, short_partition, held):
    env, run_dirs = held
    config = write_config(tmp_path, "resources = {scan2d = {time = '02:00:00'}}")
    run_dirs.append(tmp_path / "results.slurm")
    text = slurm.submit_command("pepis", config, site=site("short", later=True), env=env, fit=True)
    assert "scan2d: fitted to partition 'short': ntasks 32 -> 4, mem_per_cpu 2G -> 1000M, time 02:00:00 -> 00:30:00" \
        in text, text
    records = json.loads((tmp_path / "results.slurm" / "jobs.json").read_text())["submissions"]
    scan2d = next(r["job_id"] for r in records if r["stage"] == "scan2d")
    fields = job_fields(slurm_cluster, scan2d)
    assert (fields["NumTasks"], fields["TimeLimit"], fields["MinMemoryCPU"]) == ("4", "00:30:00", "1000M")
    assert fields["Partition"] == "short"

    # C11: a run directory whose jobs are still queued is refused, naming them
    with pytest.raises(QtlhpcError, match=rf"has jobs still queued or running: genoprob job \d+ \(pending\).*"
                                          rf"scan2d job {scan2d} \(pending\).*scancel"):
        slurm.submit_command("pepis", config, site=site("short", later=True), env=env, fit=True)
    assert len(json.loads((tmp_path / "results.slurm" / "jobs.json").read_text())["submissions"]) == len(records)

    # C12: status shows why they wait
    genoprob = next(r["job_id"] for r in records if r["stage"] == "genoprob")
    slurm_cluster.run("scontrol", "uhold", genoprob)
    rows = {r.stage: r for r in slurm.status(tmp_path / "results.slurm", env=env)}
    assert rows["genoprob"].state == "pending" and "JobHeldUser" in rows["genoprob"].detail
    assert "scontrol release" in rows["genoprob"].detail
    assert rows["scan2d"].detail.startswith("PENDING, reason ") and "NEVER" not in rows["scan2d"].detail


@pytest.mark.slurm
def test_from_plan_asks_for_the_plan_in_values_slurm_accepts(tmp_path, slurm_cluster, held):
    env, run_dirs = held
    config = write_config(tmp_path)
    run_dirs.append(tmp_path / "results.slurm")
    # the stages without a plan model (merge-permutations, report) keep jobs/pepis.toml's 4G: --fit shrinks them
    text = slurm.submit_command("pepis", config, site=site(later=True), env=env, from_plan=True, fit=True)
    assert "report: fitted to partition 'debug': mem_per_cpu 4G -> 4000M" in text
    from qtlhpc.config import Config

    size, _ = planning.problem_for_config(Config.load(config))
    plans = {p.stage: p for p in planning.plan(size)}
    records = {r["stage"]: r["job_id"] for r in
               json.loads((tmp_path / "results.slurm" / "jobs.json").read_text())["submissions"]}
    for stage in ("genoprob", "kinship", "varcomp", "scan1d", "scan2d", "permutations"):
        fields = job_fields(slurm_cluster, records[stage])
        assert f"{stage}: from the plan: ntasks {plans[stage].suggested_ntasks}" in text
        assert fields["NumTasks"] == str(plans[stage].suggested_ntasks)
        assert lim.parse_mib(fields["MinMemoryCPU"]) == lim.parse_mib(plans[stage].suggested_mem_per_cpu)
        assert lim.parse_mib(fields["MinMemoryCPU"]) * 2 ** 20 >= planning.interpreter_base_memory()
        assert lim.parse_time(fields["TimeLimit"]) >= 600


@pytest.mark.slurm
def test_status_flags_a_job_that_can_never_start(tmp_path, slurm_cluster):
    """C13: a job submitted past the check (as the old `submit` did) pends with PartitionConfig: status says never."""
    config = write_config(tmp_path, "resources = {genoprob = {ntasks = 32}}")
    rendered = slurm.render_pipeline("pepis", config, site(), tmp_path / "run")
    job = slurm.submit(rendered[:1], env=slurm_cluster.env).job_ids["genoprob"]
    try:
        deadline = time.monotonic() + 30
        while job_fields(slurm_cluster, job).get("Reason") != "PartitionConfig":
            assert time.monotonic() < deadline, job_fields(slurm_cluster, job)
            time.sleep(0.2)
        text = slurm.status_command(tmp_path / "run", env=slurm_cluster.env)
        assert "PENDING, reason NEVER STARTS (PartitionConfig" in text, text
        assert "warning: 1 job(s) can never start as submitted" in text
    finally:
        slurm_cluster.run("scancel", job, check=False)


def test_C14_relative_run_dir_is_relative_to_the_config_folder(tmp_path, monkeypatch):
    """One rule for paths: `submit --run-dir RUN` is relative to the config file's folder, like run.output."""
    config = write_config(tmp_path / "analysis")
    monkeypatch.chdir(tmp_path)
    text = slurm.submit_command("pepis", config, dry_run=True, site=site(), run_dir="run",
                                limits=recorded("debug"), fit=True)
    assert (tmp_path / "analysis" / "run" / "pipeline.json").is_file() and not (tmp_path / "run").exists()
    assert "scan2d: fitted to partition 'debug': ntasks 32 -> 4" in text


def test_C15_without_slurm_clients_submit_says_the_limits_were_not_checked(tmp_path):
    config = write_config(tmp_path)
    no_slurm = {"PATH": "/nonexistent"}  # neither scontrol nor sbatch
    text = slurm.submit_command("pepis", config, dry_run=True, site=site(), env=no_slurm)
    assert "note: the cluster's limits were not checked: scontrol is not on PATH" in text
    with pytest.raises(lim.LimitsUnavailable, match="scontrol is not on PATH"):
        slurm.submit_command("pepis", config, dry_run=True, site=site(), env=no_slurm, fit=True)
