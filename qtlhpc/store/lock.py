"""One writer per results file: a lock file beside it that names its holder.

HDF5's own file locking is off (a killed writer must not block the resume, and ``qtlhpc inspect`` may
look at a running job's file), so two runs started on one results file would both write it.  Instead,
the process that writes (rank 0) creates ``<results>.lock`` with ``O_CREAT | O_EXCL`` (atomic on local
file systems and on NFSv3+/Lustre/GPFS) holding JSON: host, pid, the pid's start time, the SLURM job id
(if any), the start time and the command line.  A second run that finds the lock refuses at once and
names the holder.

A holder that died is detected, so a resume after a kill works:

* same host: the pid is gone, or it now belongs to another process (its start time differs);
* another host: ``squeue`` no longer lists the holder's SLURM job (or lists it as ended);
* another host without a SLURM job id, or without ``squeue``: nobody can tell from here, so the run
  refuses and says which file to delete once the user knows the holder is gone.

A stale lock is removed and the lock taken anew (still with ``O_EXCL``: of two runs taking over at the
same moment, one wins).  The lock is re-entrant within a process: the stages of one ``qtlhpc run`` open
the file one after another under the lock the run holds.
"""

from __future__ import annotations

import contextlib
import datetime
import errno
import json
import logging
import os
import shutil
import socket
import subprocess
import sys
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Dict, List, Optional

from qtlhpc.errors import QtlhpcError

log = logging.getLogger("qtlhpc.store")

LOCK_SUFFIX = ".lock"
#: squeue states of a job that may still write (anything else, or no longer listed: it ended)
LIVE_JOB_STATES = ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "SUSPENDED", "REQUEUED", "REQUEUE_HOLD",
                   "REQUEUE_FED", "RESIZING", "SIGNALING", "STAGE_OUT", "STOPPED", "RESV_DEL_HOLD")
#: a lock file still empty after this many seconds was left by a process that died while creating it
EMPTY_LOCK_GRACE = 5.0

_HELD: Dict[str, int] = {}  # lock path -> how many times this process holds it


class ResultsLockedError(QtlhpcError):
    """Another run (named in the message) writes this results file."""


@dataclass(frozen=True)
class LockHolder:
    """Who holds a results file's lock (the content of ``<results>.lock``)."""

    host: str
    pid: int
    pid_started: str
    slurm_job_id: str
    started: str
    command_line: str

    def describe(self) -> str:
        job = f", SLURM job {self.slurm_job_id}" if self.slurm_job_id else ""
        command = f", command `{self.command_line}`" if self.command_line else ""
        return f"host {self.host}, pid {self.pid}{job}, since {self.started}{command}"


def lock_path(results_path) -> Path:
    """The lock file of ``results_path``: ``<results>.lock`` beside it."""
    path = Path(results_path)
    return path.with_name(path.name + LOCK_SUFFIX)


def _process_stat(pid: int) -> List[str]:
    """The fields of ``/proc/PID/stat`` after the command name (state first); [] if unknown."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return []
    return stat.rsplit(")", 1)[1].split()


def _process_start(pid: int) -> str:
    """The start time of ``pid`` in clock ticks since boot (``/proc/PID/stat`` field 22); "" if unknown."""
    fields = _process_stat(pid)
    return fields[19] if len(fields) > 19 else ""


def _me(command_line: Optional[str]) -> LockHolder:
    return LockHolder(
        host=socket.gethostname(), pid=os.getpid(), pid_started=_process_start(os.getpid()),
        slurm_job_id=os.environ.get("SLURM_JOB_ID", ""),
        started=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
        command_line=command_line if command_line is not None else " ".join(sys.argv),
    )


def read_holder(results_path) -> Optional[LockHolder]:
    """The holder of ``results_path``'s lock, or None when the file is not locked.

    For ``qtlhpc submit`` and ``status`` too: with :func:`holder_alive` it says whether a run still writes
    a results file.  A lock file that cannot be parsed (a writer died while creating it) gives a holder
    with pid 0 and host "?".
    """
    path = lock_path(results_path)
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        fields = json.loads(text)
        return LockHolder(**{name: fields.get(name, "") for name in LockHolder.__dataclass_fields__})
    except (ValueError, TypeError):
        return LockHolder("?", 0, "", "", "", "")


def _squeue_state(job_id: str) -> Optional[str]:
    """``squeue``'s state of ``job_id``: a state, "" when squeue no longer knows the job, None when it cannot tell."""
    squeue = shutil.which("squeue")
    if squeue is None:
        return None
    try:
        done = subprocess.run([squeue, "-h", "-j", str(job_id), "-o", "%T"], capture_output=True, text=True,
                              timeout=30)
    except (OSError, subprocess.TimeoutExpired):
        return None
    if done.returncode != 0:
        return "" if "Invalid job id" in done.stderr else None
    states = done.stdout.split()
    return states[0] if states else ""


def holder_alive(holder: LockHolder) -> Optional[bool]:
    """True when the holder may still write, False when it ended, None when this host cannot tell.

    Same host: the pid exists and has the recorded start time.  Another host: the holder's SLURM job is
    still listed by ``squeue`` in a live state; without a job id or ``squeue``, None.
    """
    if holder.pid == 0:
        return None
    if holder.host == socket.gethostname():
        try:
            os.kill(holder.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            pass  # it exists, under another user
        fields = _process_stat(holder.pid)
        if fields and fields[0] in ("Z", "X"):
            return False  # ended, not yet reaped by its parent
        started = fields[19] if len(fields) > 19 else ""
        return not (started and holder.pid_started and started != holder.pid_started)
    if not holder.slurm_job_id:
        return None
    state = _squeue_state(holder.slurm_job_id)
    if state is None:
        return None
    return state.split("+")[0] in LIVE_JOB_STATES


def _refusal(results_path, holder: LockHolder, alive: Optional[bool]) -> ResultsLockedError:
    path = lock_path(results_path)
    if holder.pid == 0:
        return ResultsLockedError(
            f"{results_path}: its lock file {path} cannot be read (a run may be creating it right now); if no "
            f"run is using {results_path}, delete {path} and rerun")
    if alive is None:
        how = (f"{holder.host} is another host and " + ("squeue is not available here to check SLURM job "
               f"{holder.slurm_job_id}" if holder.slurm_job_id else "the holder ran outside SLURM"))
        return ResultsLockedError(
            f"{results_path}: in use by another run ({holder.describe()}); {how}, so whether it still runs cannot "
            f"be checked from here: if it has ended, delete {path} and rerun")
    stop = f"scancel {holder.slurm_job_id}" if holder.slurm_job_id else f"kill {holder.pid} on {holder.host}"
    return ResultsLockedError(
        f"{results_path}: in use by another run ({holder.describe()}); two runs would corrupt it: wait for that "
        f"run to end (or stop it: {stop}), or write to another file (run.output)")


def acquire(results_path, command_line: Optional[str] = None) -> None:
    """Take the lock of ``results_path`` for this process (re-entrant), or raise :class:`ResultsLockedError`."""
    path = lock_path(results_path)
    key = str(path.resolve())
    if key in _HELD:
        _HELD[key] += 1
        return
    me = _me(command_line)
    for _ in range(50):
        try:
            descriptor = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            if _clear_stale(results_path, path):
                continue
        except OSError as error:
            if error.errno not in (errno.EACCES, errno.EPERM, errno.EROFS):
                raise
            # a results file that may be written in a folder that may not: run unprotected, and say so
            log.warning("%s: cannot create the lock file %s (%s): a second run on this file would not be "
                        "detected", results_path, path, error.strerror)
            return
        else:
            try:
                os.write(descriptor, json.dumps(asdict(me), indent=1).encode() + b"\n")
                os.fsync(descriptor)
            finally:
                os.close(descriptor)
            _HELD[key] = 1
            return
    raise ResultsLockedError(f"{results_path}: could not take its lock {path} (other runs keep taking it)")


def _clear_stale(results_path, path: Path) -> bool:
    """The lock file ``path`` exists: remove it when its holder ended (True: try again), else refuse."""
    holder = read_holder(results_path)
    if holder is None:
        return True  # released meanwhile
    if holder.pid == 0:
        try:
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return True
        if age < EMPTY_LOCK_GRACE:
            time.sleep(0.1)  # its writer may be filling it in right now
            return True
        alive = False
    else:
        alive = holder_alive(holder)
    if alive is not False:
        raise _refusal(results_path, holder, alive)
    log.warning("%s: taking over the lock left by a run that ended (%s)", results_path,
                holder.describe() if holder.pid else "an unreadable lock file")
    try:
        path.unlink()
    except FileNotFoundError:
        pass
    return True


def release(results_path) -> None:
    """Release one hold of this process on ``results_path``'s lock; the last one removes the lock file."""
    path = lock_path(results_path)
    key = str(path.resolve())
    if key not in _HELD:
        return
    _HELD[key] -= 1
    if _HELD[key] > 0:
        return
    del _HELD[key]
    holder = read_holder(results_path)
    if holder is not None and holder.pid == os.getpid() and holder.host == socket.gethostname():
        try:
            path.unlink()
        except FileNotFoundError:
            pass


def holds(results_path) -> bool:
    """True when this process holds ``results_path``'s lock."""
    return str(lock_path(results_path).resolve()) in _HELD


@contextlib.contextmanager
def holding(results_path, comm=None, command_line: Optional[str] = None):
    """Hold ``results_path``'s lock on rank 0 of ``comm`` for the block (collective; the refusal is raised on
    every rank).  ``qtlhpc run`` holds it across all its stages, so no other run slips in between two."""
    from qtlhpc.parallel.comm import as_comm, on_root

    comm = as_comm(comm)

    def take():
        Path(results_path).parent.mkdir(parents=True, exist_ok=True)
        acquire(results_path, command_line)

    on_root(comm, take)
    try:
        yield
    finally:
        if comm.Get_rank() == 0:
            release(results_path)
