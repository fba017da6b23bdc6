"""The pipeline under the real mpirun: 1, 2 and 3 ranks give the same numbers; a killed run resumes.

Each test simulates a small cross through `qtlhpc simulate` (written as R/qtl csv and read back), then
runs `python -m mpi4py -m qtlhpc run all CONFIG` under mpirun and compares every dataset of the results.
"""

import subprocess
import sys
import time
from pathlib import Path

import h5py
import numpy as np
import pytest

from qtlhpc.parallel import pair_from_index

from mpi_helpers import kill_session, mpi_env, require_mpirun, run_mpi

CONFIG = """
[run]
output = "results.h5"
seed = 11
stages = ["genoprob", "kinship", "varcomp", "scan1d", "scan2d", "permutations"]
progress = false

[simulate]
cross_type = "f2"
n_individuals = 90
n_chromosomes = 3
chromosome_length_cM = 80.0
markers_per_chromosome = 12
missing_rate = 0.03
seed = 11
polygenic_variance = 0.3
n_traits = 2
main_qtl = [{ marker = 5, additive = 1.0, dominance = 0.4, traits = [0] }]
epistatic_pairs = [{ markers = [14, 30], aa = 1.5, traits = [1] }]
write_to = "cross"

[input]
format = "rqtl-csv"
cross_type = "f2"
file = "cross.csv"

[genoprob]
step = 5.0
block_individuals = 8

[kinship]
block_rows = 16

[scan1d]
model = "{model}"
block_markers = 5

[scan2d]
model = "{model}"
tile = 12
report_lod = 1.0

[permutations]
n_permutations = 12
scans = ["1d", "2d"]
batch = 5
"""


def make_run(directory: Path, model: str = "random") -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    config = directory / "analysis.toml"
    config.write_text(CONFIG.replace("{model}", model))
    subprocess.run([sys.executable, "-m", "qtlhpc", "simulate", str(config)], check=True, capture_output=True)
    return config


def datasets(path: Path):
    """Every dataset of a results file (checkpoint bitmaps excluded), as numpy arrays."""
    found = {}
    with h5py.File(path, "r") as handle:
        def visit(name, item):
            if isinstance(item, h5py.Dataset) and "_checkpoint" not in name:
                found[name] = item[()]
        handle.visititems(visit)
        statuses = {name: handle[name].attrs["status"] for name in handle}
    return found, statuses


def assert_same_results(reference, other, rtol=1e-10):
    assert sorted(reference) == sorted(other)
    for name, expected in reference.items():
        actual = other[name]
        if expected.dtype.kind in "fc":
            np.testing.assert_allclose(actual, expected, rtol=rtol, atol=1e-12, equal_nan=True, err_msg=name)
        else:
            np.testing.assert_array_equal(actual, expected, err_msg=name)


@pytest.mark.mpi
@pytest.mark.parametrize("model", ["random", "fixed", "hk"])
def test_pipeline_same_numbers_at_1_2_3_ranks(tmp_path, model):
    results = {}
    for n_ranks in (1, 2, 3):
        config = make_run(tmp_path / f"ranks{n_ranks}", model)
        run_mpi(n_ranks, ["-m", "qtlhpc", "run", "all", config])
        results[n_ranks], statuses = datasets(config.parent / "results.h5")
        assert set(statuses.values()) == {"complete"}, statuses
    assert "scan2d/lod" in results[1] and results[1]["genoprob/probs"].shape[0] == 90
    assert np.all(np.isfinite(results[1]["permutations/threshold_2d"]))
    for n_ranks in (2, 3):
        assert_same_results(results[1], results[n_ranks])


@pytest.mark.mpi
def test_rank0_writes_give_the_same_numbers(tmp_path):
    """Without parallel HDF5 (run.parallel_io = "rank0") the other ranks send their blocks to rank 0."""
    found = {}
    for n_ranks, mode in ((1, "auto"), (2, "rank0")):
        config = make_run(tmp_path / f"{mode}{n_ranks}")
        run_mpi(n_ranks, ["-m", "qtlhpc", "run", "all", config, "--set", f'run.parallel_io="{mode}"'])
        found[mode], statuses = datasets(config.parent / "results.h5")
        assert set(statuses.values()) == {"complete"}
    with h5py.File(tmp_path / "rank02" / "results.h5", "r") as handle:
        assert not handle["scan2d"].attrs["parallel_io"]
    assert_same_results(found["auto"], found["rank0"])


@pytest.mark.mpi
def test_planted_qtl_and_pair_are_on_top(tmp_path):
    config = make_run(tmp_path / "planted")
    run_mpi(2, ["-m", "qtlhpc", "run", "all", config])
    found, _ = datasets(config.parent / "results.h5")
    lod = found["scan1d/lod"]
    names = [n.decode() for n in found["scan1d/locus_names"]]
    assert names[int(np.argmax(lod[0]))] == "D1M6", names[int(np.argmax(lod[0]))]  # trait 0: the main QTL
    assert lod[0].max() > 2
    pair_lod = found["scan2d/lod"]
    k, l = pair_from_index(int(np.argmax(pair_lod[1])), len(found["scan2d/locus_names"]))  # trait 1: the pair
    assert (int(k), int(l)) == (14, 30)
    assert pair_lod[1].max() > 3


def _bitmap_done(path: Path, stage: str, key: str) -> int:
    try:
        with h5py.File(path, "r", locking=False) as handle:
            return int(handle[f"{stage}/_checkpoint/{key}"][()].sum())
    except (OSError, RuntimeError, KeyError):  # metadata half-written by the run: read again
        return 0


@pytest.mark.mpi
def test_killed_run_resumes_with_identical_results(tmp_path):
    require_mpirun()
    reference_config = make_run(tmp_path / "reference")
    run_mpi(2, ["-m", "qtlhpc", "run", "all", reference_config])
    reference, _ = datasets(reference_config.parent / "results.h5")

    config = make_run(tmp_path / "killed")
    results_path = config.parent / "results.h5"
    command = ["mpirun", "--oversubscribe", "-n", "2", sys.executable, "-m", "mpi4py", "-m", "qtlhpc", "run", "all",
               str(config)]
    process = subprocess.Popen(command, env=mpi_env({"QTLHPC_BLOCK_DELAY": "0.4"}), start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while _bitmap_done(results_path, "kinship", "matrices") < 2 and time.time() < deadline:
            assert process.poll() is None, "the run finished before it could be killed"
            time.sleep(0.1)
    finally:
        kill_session(process)  # mpirun and every rank: each rank has its own process group
    done_before = _bitmap_done(results_path, "kinship", "matrices")
    assert 2 <= done_before < 6, done_before
    with h5py.File(results_path, "r", locking=False) as handle:
        assert handle["genoprob"].attrs["status"] == "complete"
        assert handle["kinship"].attrs["status"] == "running"

    rerun = run_mpi(2, ["-m", "qtlhpc", "run", "all", config])
    assert "stage 'genoprob' is complete with this configuration: skipped" in rerun.stderr
    resumed, statuses = datasets(results_path)
    assert set(statuses.values()) == {"complete"}
    assert_same_results(reference, resumed)
