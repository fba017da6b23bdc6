"""Run real programs under the real ``mpirun`` from the tests.

``run_mpi(n_ranks, [...])`` starts ``mpirun --oversubscribe -n N python -m mpi4py ...`` with the test
interpreter, so that an exception on one rank aborts the job instead of hanging it.
"""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
import subprocess
import sys

from requirements import require

RANK_COUNTS = (1, 2, 3)


def mpi_env(extra=None):
    env = dict(os.environ)
    env.update(
        OMPI_ALLOW_RUN_AS_ROOT="1",
        OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
        OMPI_MCA_rmaps_base_oversubscribe="1",
        # keep BLAS single-threaded per rank: ranks share the cores
        OMPI_MCA_btl_vader_single_copy_mechanism="none",
        OPENBLAS_NUM_THREADS="1",
        OMP_NUM_THREADS="1",
        MKL_NUM_THREADS="1",
    )
    if extra:
        env.update(extra)
    return env


def require_mpirun():
    """Fail under CI, skip with the reason elsewhere, when mpirun or mpi4py is missing."""
    require("mpi")


def run_mpi(n_ranks: int, args, *, timeout: float = 600, cwd=None, env=None, check=True):
    """Run ``python -m mpi4py ARGS`` under ``mpirun -n n_ranks``; return the CompletedProcess."""
    require_mpirun()
    cmd = ["mpirun", "--oversubscribe", "-n", str(n_ranks), sys.executable, "-m", "mpi4py", *map(str, args)]
    proc = subprocess.run(cmd, cwd=cwd, env=mpi_env(env), capture_output=True, text=True, timeout=timeout)
    if check and proc.returncode != 0:
        raise AssertionError(
            f"mpirun -n {n_ranks} failed with status {proc.returncode}\n$ {' '.join(cmd)}\n"
            f"--- stdout\n{proc.stdout[-4000:]}\n--- stderr\n{proc.stderr[-4000:]}"
        )
    return proc


def session_pids(session_id):
    """Processes of the session ``session_id`` (mpirun puts each rank in its own process group)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == session_id and fields[0] != "Z":  # fields after the command: state ppid pgrp session ...
            pids.append(int(entry.name))
    return pids


def kill_session(proc):
    """SIGKILL mpirun and every rank it started (all in the session that mpirun leads)."""
    for _ in range(50):
        pids = session_pids(proc.pid)
        if not pids:
            break
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc.poll() is None:
            proc.wait(timeout=30)
        time.sleep(0.05)
    assert not session_pids(proc.pid), "ranks survived the kill"
