"""Which optional parts of the stack are here: MPI, parallel HDF5, PETSc (and its LU solvers), SLEPc.

The package runs serially with scipy backends when any of them is missing; :func:`missing_note` gives
the one line a user sees about it, and ``qtlhpc info`` prints :func:`describe`.
"""

from __future__ import annotations

import functools
import importlib
import platform
from typing import Dict

import numpy as np



@functools.lru_cache(maxsize=1)
def mpi_info() -> Dict[str, object]:
    from qtlhpc.parallel.comm import mpi_module

    mpi = mpi_module()
    if mpi is None:
        return {"available": False, "reason": "mpi4py is not installed: running serially"}
    import mpi4py

    return {
        "available": True,
        "mpi4py": mpi4py.__version__,
        "library": mpi.Get_library_version().strip().splitlines()[0],
        "standard": "%d.%d" % mpi.Get_version(),
    }


@functools.lru_cache(maxsize=1)
def h5py_info() -> Dict[str, object]:
    try:
        import h5py
    except ImportError:
        return {"available": False, "reason": "h5py is not installed"}
    import importlib.util

    debian_mpi_build = importlib.util.find_spec("h5py._debian_h5py_mpi") is not None
    return {"available": True, "h5py": h5py.__version__, "hdf5": h5py.version.hdf5_version,
            "parallel": bool(h5py.get_config().mpi), "mpi_build_under_mpirun": debian_mpi_build}


@functools.lru_cache(maxsize=1)
def petsc_info() -> Dict[str, object]:
    """PETSc's versions and working LU solvers, asked of :mod:`qtlhpc.solvers` (the only PETSc importer)."""
    try:
        from qtlhpc.solvers import petsc
    except ImportError as error:
        return {"available": False, "reason": f"petsc4py is not importable ({error}): scipy sparse LU is used"}
    return {"available": True, **petsc.versions(), "lu_solvers": list(petsc.available_lu_solvers())}


@functools.lru_cache(maxsize=1)
def slepc_info() -> Dict[str, object]:
    """SLEPc's versions, asked of :mod:`qtlhpc.solvers`."""
    try:
        from qtlhpc.solvers import slepc
    except ImportError as error:
        return {"available": False, "reason": f"slepc4py is not importable ({error}): scipy eigensolvers are used"}
    return {"available": True, **slepc.versions()}


def optional_module_version(name: str):
    try:
        module = importlib.import_module(name)
    except ImportError:
        return None
    return getattr(module, "__version__", "installed")


def sparse_lu_backend() -> str:
    return "petsc" if petsc_info()["available"] else "scipy"


def eigen_backend() -> str:
    return "slepc" if slepc_info()["available"] else "scipy"


def missing_note(n_ranks: int = 1) -> str:
    """One line naming what is missing and what runs instead (empty when nothing that matters is missing)."""
    parts = []
    if not mpi_info()["available"]:
        parts.append("mpi4py is not installed: running serially")
    h5 = h5py_info()
    if n_ranks > 1 and h5["available"] and not h5["parallel"]:
        parts.append("h5py has no MPI here: rank 0 writes the results")
    return "qtlhpc: " + "; ".join(parts) if parts else ""


def describe(comm=None) -> str:
    """The text of ``qtlhpc info``."""
    import scipy

    from qtlhpc import __version__

    size = 1 if comm is None else comm.Get_size()
    lines = [f"qtlhpc {__version__} on Python {platform.python_version()} (numpy {np.__version__}, "
             f"scipy {scipy.__version__})"]
    mpi = mpi_info()
    if mpi["available"]:
        lines.append(f"MPI: {mpi['library']} (MPI {mpi['standard']}, mpi4py {mpi['mpi4py']}), ranks: {size}")
    else:
        lines.append(f"MPI: {mpi['reason']}")
    h5 = h5py_info()
    if h5["available"]:
        mode = "parallel HDF5 (mpio driver)" if h5["parallel"] else "serial HDF5 (rank 0 writes)"
        if not h5["parallel"] and h5["mpi_build_under_mpirun"]:
            mode += "; Debian's MPI build of h5py is used under mpirun"
        lines.append(f"HDF5: {h5['hdf5']} with h5py {h5['h5py']}: {mode}")
    else:
        lines.append(f"HDF5: {h5['reason']}")
    petsc = petsc_info()
    if petsc["available"]:
        lines.append(f"PETSc: {petsc['petsc']} (petsc4py {petsc['petsc4py']}), LU solvers: "
                     f"{', '.join(petsc['lu_solvers']) or 'none'}")
    else:
        lines.append(f"PETSc: {petsc['reason']}")
    slepc = slepc_info()
    if slepc["available"]:
        lines.append(f"SLEPc: {slepc['slepc']} (slepc4py {slepc['slepc4py']})")
    else:
        lines.append(f"SLEPc: {slepc['reason']}")
    from qtlhpc.solvers import describe_solvers

    lines += [f"solver: {line}" for line in describe_solvers()]
    lines.append(f"backends in use: sparse LU = {sparse_lu_backend()}, eigensolver = {eigen_backend()}, "
                 f"results writes = {'mpio' if h5.get('parallel') and size > 1 else 'rank 0'}")
    extras = {name: optional_module_version(name) for name in ("numba", "bed_reader", "matplotlib")}
    lines.append("optional: " + ", ".join(f"{k} {v}" if v else f"{k} absent" for k, v in extras.items()))
    return "\n".join(lines)
