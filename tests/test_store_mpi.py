"""The results store under the real mpirun: parallel HDF5 and rank-0 writes, kill and resume."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from mpi_helpers import kill_session, mpi_env, require_mpirun, run_mpi

pytestmark = pytest.mark.mpi

SCRIPT = Path(__file__).parent / "mpi_scripts" / "store_blocked.py"
DATASETS = ("storetest/lod", "storetest/best", "storetest/trait_names", "storetest/_checkpoint/rows")
ROWS_PER_BLOCK = 4  # as in the script


def output_value(stdout: str, key: str) -> str:
    lines = [line.split(None, 1)[1] for line in stdout.splitlines() if line.startswith(key + " ")]
    assert len(lines) == 1, f"expected one {key} line in:\n{stdout}"
    return lines[0].strip()


def read_raw(path):
    with h5py.File(path, "r", locking=False) as h5:
        return {name: h5[name][()] for name in DATASETS}, dict(h5["storetest"].attrs)


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory):
    path = tmp_path_factory.mktemp("serial") / "results.h5"
    proc = run_mpi(1, [SCRIPT, path], timeout=120)
    assert output_value(proc.stdout, "PARALLEL_IO") == "False"
    assert output_value(proc.stdout, "COMPUTED") == "10"
    return read_raw(path)[0]


@pytest.mark.parametrize("n_ranks,rank0_io,claimed", [(1, False, False), (2, False, False), (3, False, False),
                                                     (2, True, False), (1, False, True), (2, False, True),
                                                     (3, False, True), (2, True, True)])
def test_blocked_writes_match_one_rank(serial_run, tmp_path, n_ranks, rank0_io, claimed):
    path = tmp_path / "results.h5"
    options = (["--rank0-io"] if rank0_io else []) + (["--claimed"] if claimed else [])
    proc = run_mpi(n_ranks, [SCRIPT, path] + options, timeout=120)
    expect_parallel = n_ranks > 1 and not rank0_io
    assert output_value(proc.stdout, "PARALLEL_IO") == str(expect_parallel)
    assert output_value(proc.stdout, "COMPUTED") == "10"
    data, attributes = read_raw(path)
    for name in DATASETS:
        assert data[name].dtype == serial_run[name].dtype, name
        assert data[name].tobytes() == serial_run[name].tobytes(), f"{name} differs from the 1-rank run"
    assert attributes["status"] == "complete"
    assert attributes["n_ranks"] == n_ranks
    assert bool(attributes["parallel_io"]) == expect_parallel


def start_mpirun(n_ranks, args):
    require_mpirun()
    cmd = ["mpirun", "--oversubscribe", "-n", str(n_ranks), sys.executable, "-m", "mpi4py", *map(str, args)]
    return subprocess.Popen(cmd, env=mpi_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)


def run_until_blocks(n_ranks, args, n_blocks, timeout=60):
    """Start mpirun, SIGKILL its process group once ``n_blocks`` distinct blocks are reported written;
    return the blocks seen."""
    proc = start_mpirun(n_ranks, args)
    reported = set()
    deadline = time.monotonic() + timeout
    try:
        for line in proc.stdout:
            if line.startswith("ROUND "):
                reported.update(int(b) for b in line.split()[2:])
                if len(reported) >= n_blocks:
                    break
            assert time.monotonic() < deadline, "the run did not report its blocks in time"
    finally:
        kill_session(proc)
        proc.stdout.close()
        proc.stderr.close()
    assert proc.returncode == -signal.SIGKILL, f"mpirun ended before the kill (status {proc.returncode})"
    return sorted(reported)


@pytest.mark.parametrize("rank0_io,claimed", [(False, False), (True, False), (False, True)])
def test_killed_run_resumes_and_skips_done_blocks(serial_run, tmp_path, rank0_io, claimed):
    path = tmp_path / "results.h5"
    mode = (["--rank0-io"] if rank0_io else []) + (["--claimed"] if claimed else [])
    n_blocks = 10
    reported = run_until_blocks(2, [SCRIPT, path, "--sleep", "0.4"] + mode, n_blocks=4)
    assert len(reported) >= 4

    # the killed file opens; its bitmap has (at least) the reported blocks, whose data are intact
    with h5py.File(path, "r", locking=False) as h5:
        assert h5["storetest"].attrs["status"] == "running"
        done = h5["storetest/_checkpoint/rows"][()].astype(bool)
        lod = h5["storetest/lod"][()]
    assert done[reported].all()
    n_done = int(done.sum())
    assert n_done < n_blocks
    for block in np.flatnonzero(done):
        rows = slice(block * ROWS_PER_BLOCK, (block + 1) * ROWS_PER_BLOCK)
        assert np.array_equal(lod[:, rows], serial_run["storetest/lod"][:, rows]), f"block {block} damaged"
    for block in np.flatnonzero(~done):
        rows = slice(block * ROWS_PER_BLOCK, (block + 1) * ROWS_PER_BLOCK)
        written = ~np.isnan(lod[:, rows])
        # a block of the killed round may be written without its bit; others are still the NaN fill
        assert written.all() or not written.any()

    proc = run_mpi(2, [SCRIPT, path] + mode, timeout=120)
    assert output_value(proc.stdout, "COMPUTED") == str(n_blocks - n_done)
    data, attributes = read_raw(path)
    assert attributes["status"] == "complete"
    assert attributes["resumed"] != ""
    for name in DATASETS:
        assert data[name].tobytes() == serial_run[name].tobytes(), f"{name} differs from an uninterrupted run"
