import os

import pytest

from requirements import require

# Ranks and tests share two cores: one BLAS thread per process keeps timings sane.
for _name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_name, "1")


def pytest_report_header(config):
    if os.environ.get("CI"):
        return "CI is set: a test whose R/qtl, MPI, SLURM, PETSc... is missing fails (tests/requirements.py)"
    return "CI is not set: a test whose R/qtl, MPI, SLURM, PETSc... is missing is skipped (tests/requirements.py)"


@pytest.fixture
def bed_reader():
    """The bed-reader package, which writes the PLINK files the readers are checked on."""
    require("bed-reader")
    import bed_reader

    return bed_reader
