"""Small or odd data and half-done results (issue 9, items 6 and 8): table-driven, each case names its message.

One F2 cross (40 individuals x 12 markers, two traits) is simulated once with ``qtlhpc simulate``; each case
edits a copy (a trait left with 3 values, 3 individuals in all, a phenotype of 1e308), runs ``qtlhpc run``
on it and checks the exit status, the one-line message or warning it must contain, and what the results
file records.  ``RUN_CASES`` is the table; R01-R11 each fail on the code before this change (which crashed
with ZeroDivisionError, stopped every trait for one, called 1e308 "a constant phenotype?", left a "running"
scan behind a missing prerequisite, or put ``--output`` in the current directory).

The last test states exactly what holds between rank counts: with one BLAS thread per rank (as under
mpirun, where each rank is bound to a core), 1 and 2 ranks give bitwise-identical files.
"""

from __future__ import annotations

import csv
import subprocess
import sys
from pathlib import Path

import h5py
import numpy as np
import pytest

from mpi_helpers import mpi_env, run_mpi
from qtlhpc.errors import InputError

CONFIG = """
[run]
output = "results.h5"
seed = 3
stages = {stages}
progress = false

[simulate]
cross_type = "f2"
n_individuals = 40
n_chromosomes = 2
chromosome_length_cM = 50.0
markers_per_chromosome = 6
n_traits = 2
write_to = "cross"

[input]
format = "rqtl-csv"
cross_type = "f2"
file = "cross.csv"

[kinship]
block_rows = 7

[scan1d]
model = "{model}"
block_markers = 3

[scan2d]
model = "{model}"
tile = 3
"""
KINSHIP_RUN = '["genoprob", "kinship", "varcomp", "scan1d"]'


@pytest.fixture(scope="module")
def simulated(tmp_path_factory) -> Path:
    directory = tmp_path_factory.mktemp("cross")
    (directory / "analysis.toml").write_text(CONFIG.format(stages=KINSHIP_RUN, model="random"))
    subprocess.run([sys.executable, "-m", "qtlhpc", "simulate", "analysis.toml"], cwd=directory, check=True,
                   capture_output=True, timeout=120)
    return directory / "cross.csv"


def qtlhpc(*args, cwd):
    return subprocess.run([sys.executable, "-m", "qtlhpc", *map(str, args)], cwd=cwd, capture_output=True,
                          text=True, timeout=300, env=mpi_env())


def edit_rows(keep_individuals=None, trait1_values=None, trait1=None):
    """An edit of the cross csv: keep the first ``keep_individuals``; leave trait1 on its first
    ``trait1_values`` individuals only; set trait1 of the first individual to ``trait1``."""
    def edit(rows):
        header, body = rows[:3], rows[3:]
        if keep_individuals is not None:
            body = body[:keep_individuals]
        for i, row in enumerate(body):
            if trait1_values is not None and i >= trait1_values:
                row[1] = "NA"
            if trait1 is not None and i == 0:
                row[1] = trait1
        return header + body
    return edit


def write_run_config(tmp_path, simulated, edit=None, model="random", stages=KINSHIP_RUN) -> Path:
    rows = list(csv.reader(simulated.open()))
    if edit is not None:
        rows = edit(rows)
    with (tmp_path / "cross.csv").open("w", newline="") as handle:
        csv.writer(handle).writerows(rows)
    (tmp_path / "analysis.toml").write_text(CONFIG.format(stages=stages, model=model))
    return tmp_path / "analysis.toml"


def read(path: Path, name: str):
    with h5py.File(path, "r") as handle:
        value = handle[name][()]
    return [v.decode() for v in value] if value.dtype.kind in "SO" else value


def groups(path: Path) -> dict:
    with h5py.File(path, "r") as handle:
        return {name: handle[name].attrs.get("status") for name in handle}


# --------------------------------------------------------------------------------------------
# The table: case, data edit, scan model, argv after `qtlhpc`, exit status, message (stderr), check


def sparse_trait_skipped(results: Path, model: str):
    """trait1 (3 values) is recorded as skipped, with the reason; trait2 is fitted and scanned."""
    if model != "hk":
        assert list(read(results, "varcomp/skipped")) == [True, False]
        reasons = read(results, "varcomp/skip_reasons")
        assert "3 individuals with data" in reasons[0] and reasons[1] == ""
        assert np.all(np.isnan(read(results, "varcomp/variance_ratios")[0]))
        assert np.all(np.isfinite(read(results, "varcomp/variance_ratios")[1]))
    assert read(results, "scan1d/trait_names") == ["trait2"]
    assert read(results, "scan1d/skipped_traits") == ["trait1"]
    assert "3 individuals with data" in read(results, "scan1d/skip_reasons")[0]
    lod = read(results, "scan1d/lod")
    assert lod.shape == (1, 12 if model != "hk" else lod.shape[1]) and np.all(np.isfinite(lod))
    assert set(groups(results).values()) == {"complete"}


def huge_trait_skipped(results: Path, model: str):
    reasons = read(results, "varcomp/skip_reasons")
    assert "overflow" in reasons[0] and "constant" not in reasons[0]
    assert read(results, "scan1d/trait_names") == ["trait2"]


def no_scan_stub(results: Path, model: str):
    """The refused scan left no group behind: `inspect` offers nothing to resume."""
    assert groups(results) == {"genoprob": "complete"}


def no_stub_at_all(results: Path, model: str):
    assert not results.exists() or groups(results) == {}


RUN_CASES = [
    ("R01 a trait with 3 values, random model: skipped, the other goes on", edit_rows(trait1_values=3), "random",
     ["run", "all"], 0, "varcomp: trait trait1 is skipped (not fitted, not scanned): 3 individuals with data; "
                        "the kinship model needs at least 9", sparse_trait_skipped),
    ("R02 a trait with 3 values, fixed model (stopped every trait)", edit_rows(trait1_values=3), "fixed",
     ["run", "all"], 0, "trait trait1 is skipped", sparse_trait_skipped),
    ("R03 a trait with 3 values, HK scan: skipped by the scan's own check", edit_rows(trait1_values=3), "hk",
     ["run", "all"], 0, "1D scan: trait trait1 is skipped: 3 individuals with data; the HK 1D scan needs at least 5",
     sparse_trait_skipped),
    ("R04 3 individuals in all (ZeroDivisionError in scan1d)", edit_rows(keep_individuals=3), "random",
     ["run", "all"], 2, "no trait can be fitted: trait1: 3 individuals with data", None),
    ("R05 3 individuals in all, HK scan only", edit_rows(keep_individuals=3), "hk",
     ["run", "scan1d"], 2, "the 1D scan has no trait the model can be fitted to", None),
    ("R06 a phenotype of 1e308 is not 'a constant phenotype?'", edit_rows(trait1="1e308"), "random",
     ["run", "all"], 0, "values as large as 1e+308: their squares overflow double precision; rescale the trait",
     huge_trait_skipped),
    ("R07 scan1d without its kinship stage leaves no running stub", None, "random",
     ["run", "scan1d"], 2, "the 1D scan needs the kinship stage, which is absent", no_scan_stub),
    ("R08 scan2d without its kinship stage leaves no running stub", None, "random",
     ["run", "scan2d"], 2, "the 2D scan needs the kinship stage, which is absent", no_scan_stub),
    ("R11 kinship without genoprob leaves no running stub", None, "random",
     ["run", "kinship"], 2, "the kinship stage (the codes of a f2 cross come from its genotype probabilities) "
                            "needs the genoprob stage, which is absent", no_stub_at_all),
]


@pytest.mark.parametrize("case, edit, model, argv, status, message, check", RUN_CASES, ids=[c[0][:3] for c in RUN_CASES])
def test_run_case(tmp_path, simulated, case, edit, model, argv, status, message, check):
    config = write_run_config(tmp_path, simulated, edit, model)
    if argv[-1] in ("scan1d", "scan2d"):  # a single scan: genoprob done, nothing else
        assert qtlhpc("run", "genoprob", config, cwd=tmp_path).returncode == 0
    proc = qtlhpc(*argv, config, cwd=tmp_path)
    assert proc.returncode == status, proc.stderr[-3000:]
    assert message in proc.stderr, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr
    if status:
        assert proc.stderr.strip().splitlines()[-1].startswith("qtlhpc: error: ")
    if check is not None:
        check(tmp_path / "results.h5", model)


def test_R09_reml_names_overflow_not_a_constant_phenotype():
    from qtlhpc.methods.pepis.kernels.reml import fit_reml

    y = np.array([1e308, 1.0, 2.0, 3.0, 4.0, 5.0])
    with pytest.raises(InputError, match="values as large as 1e\\+308, whose squares overflow") as error:
        fit_reml(y, None, [np.eye(6)])
    assert "constant" not in str(error.value)


def test_R10_output_on_the_command_line_is_resolved_like_run_output(tmp_path, simulated):
    """One rule: a relative path is relative to the config file's folder, from the config or from --output."""
    folder = tmp_path / "analysis"
    folder.mkdir()
    config = write_run_config(folder, simulated, stages='["genoprob"]')
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    proc = qtlhpc("run", "genoprob", config, "--output", "from-cli.h5", cwd=elsewhere)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert (folder / "from-cli.h5").is_file() and not (elsewhere / "from-cli.h5").exists()
    proc = qtlhpc("run", "genoprob", config, "--set", 'run.output="from-set.h5"', cwd=elsewhere)
    assert proc.returncode == 0 and (folder / "from-set.h5").is_file()


@pytest.mark.slow
def test_skipped_trait_in_a_two_rank_run_matches_one_rank(tmp_path, simulated):
    """The skip is decided on rank 0 and broadcast: 1 and 2 ranks record the same skip and the same scan."""
    config = write_run_config(tmp_path, simulated, edit_rows(trait1_values=3))
    run_mpi(1, ["-m", "qtlhpc", "run", "all", config, "--output", "one.h5"], timeout=300)
    run_mpi(2, ["-m", "qtlhpc", "run", "all", config, "--output", "two.h5"], timeout=300)
    for name in ("varcomp/skipped", "scan1d/skipped_traits", "scan1d/trait_names", "scan1d/lod", "varcomp/variance_ratios"):
        one, two = read(tmp_path / "one.h5", name), read(tmp_path / "two.h5", name)
        assert np.array_equal(np.asarray(one), np.asarray(two), equal_nan=True) if not isinstance(one, list) \
            else one == two, name


@pytest.mark.slow
def test_one_and_two_ranks_are_bitwise_equal_with_one_blas_thread_per_rank(tmp_path, simulated):
    """What the README states: with one BLAS thread per rank (mpirun binds each rank to a core; a plain
    1-rank run needs OPENBLAS_NUM_THREADS=1), every float of varcomp, scan1d and scan2d is bitwise equal
    between 1 and 2 ranks.  Several BLAS threads sum in another order (about 1e-13 relative)."""
    config = write_run_config(tmp_path, simulated, stages='["genoprob", "kinship", "varcomp", "scan1d", "scan2d"]')
    one = qtlhpc("run", "all", config, "--output", "one.h5", cwd=tmp_path)  # mpi_env: one BLAS thread
    assert one.returncode == 0, one.stderr[-2000:]
    run_mpi(2, ["-m", "qtlhpc", "run", "all", config, "--output", "two.h5"], timeout=300)
    compared = 0
    with h5py.File(tmp_path / "one.h5", "r") as a, h5py.File(tmp_path / "two.h5", "r") as b:
        for stage in ("kinship", "varcomp", "scan1d", "scan2d"):
            for name, item in a[stage].items():
                if isinstance(item, h5py.Dataset) and item.dtype.kind == "f":
                    assert np.array_equal(item[()], b[stage][name][()], equal_nan=True), f"{stage}/{name}"
                    compared += 1
    assert compared >= 15
