"""A real single-node SLURM for the tests: munged, slurmctld and slurmd in a private directory.

``slurm_cluster`` (session scope) starts the three daemons in the foreground under ``setsid``, with
their own config, state, spool, socket and free TCP ports, waits until the node is idle and yields a
:class:`SlurmCluster`.  Its ``env`` (``SLURM_CONF`` and the MPI-as-root variables) goes to every
``sbatch`` / ``scontrol`` the tests start; ``wait(job_ids, timeout)`` polls ``scontrol show job``
until the jobs end.  Teardown cancels the jobs, then stops the daemons by the PIDs it started, even
when a test failed.

The settings are those checked in shared/notes/slurm-local.md (Debian's SLURM 22.05).  When the
daemons are not installed the tests fail under CI (``CI`` set) and are skipped elsewhere, with the
reason and the packages to install (``require("slurm")``, in ``tests/requirements.py``).
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, Iterable, List

import pytest

from requirements import SLURM_CLIENTS, SLURM_DAEMONS, find_program, require

N_CPUS = 4
FINAL_STATES = {
    "COMPLETED", "FAILED", "CANCELLED", "TIMEOUT", "NODE_FAIL", "OUT_OF_MEMORY", "PREEMPTED",
    "BOOT_FAIL", "DEADLINE",
}


def require_slurm() -> Dict[str, str]:
    """Paths of the daemons and clients; fail under CI, skip elsewhere, when one is missing."""
    require("slurm")
    return {name: find_program(name) for name in SLURM_DAEMONS + SLURM_CLIENTS}  # type: ignore[return-value]


def _free_ports(count: int) -> List[int]:
    sockets = []
    try:
        for _ in range(count):
            sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            sock.bind(("127.0.0.1", 0))
            sockets.append(sock)
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def _parse_records(text: str) -> List[Dict[str, str]]:
    """``scontrol -o show job`` output: one line per job (or array task group) of ``Key=Value``."""
    records = []
    for line in text.splitlines():
        if "=" in line:
            records.append(dict(re.findall(r"(\w+)=(\S*)", line)))
    return records


@dataclass
class SlurmCluster:
    """A running private SLURM: ``env`` for clients, ``wait`` for jobs, ``directory`` for files."""

    directory: Path
    env: Dict[str, str]
    node_name: str
    n_cpus: int
    processes: Dict[str, subprocess.Popen] = field(default_factory=dict)

    def run(self, *args: str, check: bool = True, timeout: float = 30) -> subprocess.CompletedProcess:
        """Run a SLURM client (``sbatch``, ``scontrol``...) against this cluster."""
        return subprocess.run(
            list(args), env=self.env, capture_output=True, text=True, check=check, timeout=timeout
        )

    def job_states(self, job_id: str) -> Dict[str, str]:
        """``{"123": "COMPLETED"}`` or, for an array job, ``{"123_0": ..., "123_[1-4]": ...}``."""
        proc = self.run("scontrol", "-o", "show", "job", str(job_id), check=False)
        if proc.returncode != 0:
            return {}
        states = {}
        for record in _parse_records(proc.stdout):
            task = record.get("ArrayTaskId")
            key = f"{record['ArrayJobId']}_{task}" if task else record["JobId"]
            states[key] = record.get("JobState", "UNKNOWN")
        return states

    def wait(self, job_ids: Iterable[str], timeout: float = 60) -> Dict[str, str]:
        """Wait until every job (every task of an array) has ended; return all their states.

        Raises ``AssertionError`` naming the unfinished jobs after ``timeout`` seconds.
        """
        job_ids = [str(j) for j in job_ids]
        deadline = time.monotonic() + timeout
        while True:
            states: Dict[str, str] = {}
            for job_id in job_ids:
                found = self.job_states(job_id)
                states.update(found or {job_id: "UNKNOWN"})
            unfinished = {k: v for k, v in states.items() if v not in FINAL_STATES}
            if not unfinished:
                return states
            if time.monotonic() > deadline:
                squeue = self.run("squeue", "-a", check=False).stdout
                raise AssertionError(f"jobs not finished after {timeout} s: {unfinished}\n{squeue}")
            time.sleep(0.2)

    def cancel_all(self) -> None:
        self.run("scancel", "--full", "-u", "root", check=False)
        proc = self.run("squeue", "-h", "-o", "%i", check=False)
        for job_id in proc.stdout.split():
            self.run("scancel", "--full", job_id, check=False)


def _write_config(directory: Path, node_name: str, ctld_port: int, slurmd_port: int) -> Path:
    for sub in ("state", "spool", "log"):
        (directory / sub).mkdir(exist_ok=True)
    conf = directory / "slurm.conf"
    conf.write_text(
        "\n".join(
            [
                "ClusterName=qtlhpctest",
                f"SlurmctldHost={node_name}(127.0.0.1)",
                f"SlurmctldPort={ctld_port}",
                f"SlurmdPort={slurmd_port}",
                "SlurmUser=root",
                "SlurmdUser=root",
                "AuthType=auth/munge",
                "CredType=cred/munge",
                f"AuthInfo=socket={directory / 'munge-sock' / 'munge.socket'}",
                f"StateSaveLocation={directory / 'state'}",
                f"SlurmdSpoolDir={directory / 'spool'}",
                f"SlurmctldPidFile={directory / 'slurmctld.pid'}",
                f"SlurmdPidFile={directory / 'slurmd.pid'}",
                f"SlurmctldLogFile={directory / 'log' / 'slurmctld.log'}",
                f"SlurmdLogFile={directory / 'log' / 'slurmd.log'}",
                "ProctrackType=proctrack/linuxproc",
                "TaskPlugin=task/none",
                "SelectType=select/cons_tres",
                "SelectTypeParameters=CR_Core",
                "JobAcctGatherType=jobacct_gather/none",
                "AccountingStorageType=accounting_storage/none",
                "MpiDefault=pmix",
                "MailProg=/bin/true",
                "ReturnToService=2",
                "MinJobAge=600",
                "SlurmdParameters=config_overrides",
                "SchedulerParameters=batch_sched_delay=0",
                "DependencyParameters=kill_invalid_depend",
                "SlurmctldTimeout=30",
                "SlurmdTimeout=30",
                "InactiveLimit=0",
                "KillWait=2",
                f"NodeName={node_name} NodeAddr=127.0.0.1 CPUs={N_CPUS} RealMemory=4000 State=UNKNOWN",
                f"PartitionName=debug Nodes={node_name} Default=YES MaxTime=INFINITE State=UP",
                "",
            ]
        )
    )
    return conf


def _start(name: str, argv: List[str], log: Path, env: Dict[str, str]) -> subprocess.Popen:
    return subprocess.Popen(
        argv, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env, start_new_session=True
    )


def _stop(processes: Dict[str, subprocess.Popen]) -> None:
    """SIGTERM each daemon we started (by PID, newest first), SIGKILL what has not exited in 5 s."""
    for name in reversed(list(processes)):
        proc = processes[name]
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=5)


def start_cluster(directory: Path) -> SlurmCluster:
    """Start a private cluster in ``directory``; the caller must call :func:`stop_cluster`."""
    paths = require_slurm()
    node_name = socket.gethostname().split(".")[0]
    key_dir, sock_dir = directory / "munge-key", directory / "munge-sock"
    key_dir.mkdir(mode=0o700)
    sock_dir.mkdir(mode=0o755)
    os.chmod(directory, 0o755)
    key = key_dir / "munge.key"
    key.write_bytes(secrets.token_bytes(1024))
    key.chmod(0o400)
    ctld_port, slurmd_port = _free_ports(2)
    conf = _write_config(directory, node_name, ctld_port, slurmd_port)
    env = dict(os.environ)
    env.update(
        SLURM_CONF=str(conf),
        OMPI_ALLOW_RUN_AS_ROOT="1",
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
        OMPI_MCA_rmaps_base_oversubscribe="1",
    )
    cluster = SlurmCluster(directory=directory, env=env, node_name=node_name, n_cpus=N_CPUS)
    log_dir = directory / "log"
    try:
        cluster.processes["munged"] = _start(
            "munged",
            [paths["munged"], "-F", "--force", f"--socket={sock_dir / 'munge.socket'}",
             f"--key-file={key}", f"--pid-file={directory / 'munged.pid'}",
             f"--seed-file={directory / 'munged.seed'}", f"--log-file={log_dir / 'munged.log'}"],
            log_dir / "munged.out", env,
        )
        _wait_for(lambda: (sock_dir / "munge.socket").exists(), 10, "munged socket", cluster)
        cluster.processes["slurmctld"] = _start(
            "slurmctld", [paths["slurmctld"], "-D", "-i", "-f", str(conf)], log_dir / "slurmctld.out", env
        )
        _wait_for(lambda: cluster.run("scontrol", "ping", check=False).stdout.count("UP") > 0, 20,
                  "slurmctld", cluster)
        cluster.processes["slurmd"] = _start(
            "slurmd", [paths["slurmd"], "-D", "-f", str(conf)], log_dir / "slurmd.out", env
        )
        _wait_for(lambda: _node_state(cluster).startswith("idle"), 30, "node idle", cluster)
    except BaseException:
        stop_cluster(cluster)
        raise
    return cluster


def _node_state(cluster: SlurmCluster) -> str:
    proc = cluster.run("sinfo", "-h", "-N", "-o", "%T", check=False)
    return proc.stdout.strip().lower()


def _wait_for(predicate, timeout: float, what: str, cluster: SlurmCluster) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        for name, proc in cluster.processes.items():
            if proc.poll() is not None:
                raise RuntimeError(f"{name} exited with status {proc.returncode}:\n{_logs(cluster)}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out after {timeout} s waiting for {what}:\n{_logs(cluster)}")
        time.sleep(0.1)


def _logs(cluster: SlurmCluster) -> str:
    parts = []
    for path in sorted((cluster.directory / "log").glob("*")):
        parts.append(f"--- {path.name}\n{path.read_text(errors='replace')[-2000:]}")
    return "\n".join(parts)


def stop_cluster(cluster: SlurmCluster) -> None:
    """Cancel every job, then stop the daemons this fixture started (by PID only)."""
    if "slurmctld" in cluster.processes and cluster.processes["slurmctld"].poll() is None:
        cluster.cancel_all()
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if not cluster.run("squeue", "-h", "-t", "R,CG", check=False).stdout.strip():
                break
            time.sleep(0.2)
    _stop(cluster.processes)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory):
    """A running single-node SLURM (see the module docstring); stopped at the end of the session."""
    require_slurm()
    cluster = start_cluster(tmp_path_factory.mktemp("slurm"))
    try:
        yield cluster
    finally:
        stop_cluster(cluster)
