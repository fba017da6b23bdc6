"""What a test needs from the machine, checked in one place: ``require("rqtl")``, ``require("mpi", "petsc")``.

A test that cannot run here is skipped with the reason and how to install what is missing; under CI
(``CI`` set and non-empty, as ``.ci/run`` does) it fails with the same reason instead, because there the
whole stack is installed (``make test`` runs ``make setup-test`` first) and a skip would hide a comparison
that never ran.  :func:`skip_or_fail` is that rule; ``mpi_helpers`` and ``slurm_cluster`` use it too.

Each probe runs once per session.  PETSc, SLEPc and MPI-enabled h5py are probed in a child interpreter:
initialising PETSc starts MPI in the test process, and a broken build can abort the interpreter.
"""

from __future__ import annotations

import difflib
import functools
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional

import pytest

SLURM_DAEMONS = ("munged", "slurmctld", "slurmd")
SLURM_CLIENTS = ("sbatch", "scontrol", "scancel", "squeue")
SLURM_PACKAGES = "slurmctld slurmd slurm-client slurm-wlm-basic-plugins munge libpmix-dev"


def skip_or_fail(reason: str) -> None:
    """Fail the current test with ``reason`` under CI (``CI`` set and non-empty); skip it elsewhere."""
    if os.environ.get("CI"):
        pytest.fail(reason, pytrace=False)
    pytest.skip(reason)


def find_program(name: str) -> Optional[str]:
    """``name`` on PATH, or in /usr/sbin or /sbin (daemons, absent from a user's PATH); None if nowhere."""
    return shutil.which(name) or next(
        (str(path) for path in (Path("/usr/sbin") / name, Path("/sbin") / name) if path.exists()), None
    )


def _last_line(text: str) -> str:
    lines = [line for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no message"


def _rqtl() -> Optional[str]:
    if shutil.which("Rscript") is None:
        return "Rscript is not on PATH"
    run = subprocess.run(["Rscript", "-e", "library(qtl)"], capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        return f"`Rscript -e 'library(qtl)'` failed: {_last_line(run.stderr)}"
    return None


def _mpi() -> Optional[str]:
    problems = []
    if shutil.which("mpirun") is None:
        problems.append("mpirun is not on PATH")
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        problems.append("mpi4py does not import in the test interpreter")
    return " and ".join(problems) or None


def _slurm() -> Optional[str]:
    missing = sorted(name for name in SLURM_DAEMONS + SLURM_CLIENTS if find_program(name) is None)
    return f"{', '.join(missing)} not installed" if missing else None


def _bed_reader() -> Optional[str]:
    try:
        import bed_reader  # noqa: F401
    except ImportError as error:
        return f"bed_reader does not import ({error})"
    return None


def _in_child_python(code: str, what: str, **env: str) -> Callable[[], Optional[str]]:
    """A probe that runs ``code`` in a fresh test interpreter and reports its last error line."""

    def probe() -> Optional[str]:
        environment = {**os.environ, "OMPI_ALLOW_RUN_AS_ROOT": "1", "OMPI_ALLOW_RUN_AS_ROOT_CONFIRM": "1", **env}
        run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment,
                             timeout=120)
        return None if run.returncode == 0 else f"{what}: {_last_line(run.stderr)}"

    return probe


@dataclass(frozen=True)
class Requirement:
    """``probe()`` says what is wrong (None when usable); ``install`` says how to get it."""

    probe: Callable[[], Optional[str]]
    install: str


REQUIREMENTS = {
    "rqtl": Requirement(_rqtl, "apt-get install r-cran-qtl, or `make setup-test`"),
    "mpi": Requirement(_mpi, "apt-get install openmpi-bin python3-mpi4py, or `make setup`"),
    "slurm": Requirement(_slurm, f"apt-get install --no-install-recommends {SLURM_PACKAGES}, or `make setup-test`"),
    "petsc": Requirement(
        _in_child_python("import petsc4py; petsc4py.init(); from petsc4py import PETSc; PETSc.Sys.getVersion()",
                         "petsc4py does not initialise PETSc"),
        "apt-get install python3-petsc4py-real, or `make setup`",
    ),
    "slepc": Requirement(
        _in_child_python("import slepc4py; slepc4py.init(); from slepc4py import SLEPc; SLEPc.Sys.getVersion()",
                         "slepc4py does not initialise SLEPc"),
        "apt-get install python3-slepc4py-real, or `make setup`",
    ),
    # Debian's h5py loads its MPI build only under mpirun or with H5PY_ALWAYS_USE_MPI set
    "h5py-mpi": Requirement(
        _in_child_python("import h5py; assert h5py.get_config().mpi, 'h5py.get_config().mpi is False'",
                         "h5py is not built with MPI", H5PY_ALWAYS_USE_MPI="1"),
        "apt-get install python3-h5py-mpi, or `make setup`",
    ),
    "bed-reader": Requirement(_bed_reader, "pip install bed-reader (the `plink` extra), or `make setup`"),
}


@functools.lru_cache(maxsize=None)
def problem(name: str) -> Optional[str]:
    """Why ``name`` cannot be used here, with how to install it; None when it can.  Cached per session."""
    found = REQUIREMENTS[name].probe()
    return None if found is None else f"{name} is not usable: {found} ({REQUIREMENTS[name].install})"


def require(*names: str) -> None:
    """Skip the test (fail it under CI) unless every one of ``names`` is usable here.

    ``names`` are keys of :data:`REQUIREMENTS`: ``rqtl``, ``mpi``, ``slurm``, ``petsc``, ``slepc``,
    ``h5py-mpi``, ``bed-reader``.  A name not among them is a mistake in the test and raises ``ValueError``.
    """
    for name in names:
        if name not in REQUIREMENTS:
            close = difflib.get_close_matches(name, REQUIREMENTS, n=1)
            guess = f"did you mean {close[0]!r}? " if close else ""
            raise ValueError(f"require({name!r}): unknown requirement; {guess}known: {', '.join(REQUIREMENTS)}")
    problems = [found for found in map(problem, names) if found is not None]
    if problems:
        skip_or_fail("; ".join(problems))
