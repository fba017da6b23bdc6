"""The command line as a user meets it: info, errors on bad input, export, inspect, report, docs in sync."""

import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from mpi_helpers import run_mpi

ROOT = Path(__file__).resolve().parents[1]


def qtlhpc(*args, cwd=None, check=False):
    return subprocess.run([sys.executable, "-m", "qtlhpc", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd, check=check)


SMALL = """
[run]
output = "results.h5"
stages = ["genoprob", "kinship", "varcomp", "scan1d", "scan2d"]
progress = false

[scan2d]
report_lod = 0.5

[input]
format = "rqtl-csv"
cross_type = "f2"
file = "cross.csv"

[simulate]
cross_type = "f2"
n_individuals = 40
n_chromosomes = 2
markers_per_chromosome = 6
main_qtl = [{ marker = 3, additive = 1.0 }]
write_to = "cross"
"""


@pytest.fixture
def small_run(tmp_path):
    config = tmp_path / "analysis.toml"
    config.write_text(SMALL)
    qtlhpc("simulate", config, check=True)
    return config


def test_info_shows_mpi_parallel_hdf5_petsc_solvers_and_slepc(tmp_path):
    out = run_mpi(2, ["-m", "qtlhpc", "info"]).stdout
    assert "MPI: Open MPI" in out and "ranks: 2" in out
    assert "parallel HDF5 (mpio driver)" in out
    petsc_line = next(line for line in out.splitlines() if line.startswith("PETSc:"))
    for solver in ("mumps", "umfpack", "superlu"):
        assert solver in petsc_line
    assert "SLEPc: 3." in out
    assert out.count("qtlhpc 0.") == 1, "info must print from rank 0 only"


def test_bad_genotype_code_is_named_and_leaves_no_complete_result(small_run):
    csv = small_run.parent / "cross.csv"
    lines = csv.read_text().splitlines()
    fields = lines[5].split(",")
    fields[4] = "Q"
    lines[5] = ",".join(fields)
    csv.write_text("\n".join(lines) + "\n")
    result = qtlhpc("run", "all", small_run)
    assert result.returncode == 2
    assert "cross.csv" in result.stderr and "line 6" in result.stderr and "'Q'" in result.stderr
    assert "Traceback" not in result.stderr
    results = small_run.parent / "results.h5"
    if results.exists():
        with h5py.File(results, "r") as handle:
            assert all(handle[g].attrs.get("status") != "complete" for g in handle)


def test_bad_input_under_mpirun_stops_every_rank_with_one_message(small_run):
    csv = small_run.parent / "cross.csv"
    csv.write_text(csv.read_text().replace("\n", "\n1,2\n", 1))  # a ragged row after the header
    proc = run_mpi(2, ["-m", "qtlhpc", "run", "all", small_run], check=False, timeout=120)
    assert proc.returncode != 0
    assert proc.stderr.count("qtlhpc: error:") == 1, proc.stderr
    assert "cross.csv" in proc.stderr


def test_unknown_config_key_suggests_the_nearest(small_run):
    result = qtlhpc("run", "genoprob", small_run, "--set", "genoprob.stpe=2")
    assert result.returncode == 2
    assert "did you mean 'step'" in result.stderr


def test_stage_refuses_when_its_inputs_are_not_complete(small_run):
    result = qtlhpc("run", "varcomp", small_run)
    assert result.returncode == 2
    assert "needs the kinship stage, which is absent" in result.stderr
    assert "qtlhpc run kinship CONFIG" in result.stderr


def test_export_inspect_and_report(small_run, tmp_path):
    qtlhpc("run", "all", small_run, check=True)
    results = small_run.parent / "results.h5"
    inspected = qtlhpc("inspect", results, check=True).stdout
    for stage in ("genoprob", "kinship", "varcomp", "scan1d", "scan2d"):
        assert f"[{stage}] complete" in inspected
    exported = qtlhpc("export", results, "scan1d/lod", check=True).stdout.splitlines()
    assert len(exported) == 1 + 12  # header and one row per locus
    with h5py.File(results, "r") as handle:
        lod = handle["scan1d/lod"][0]
        names = [n.decode() for n in handle["scan1d/locus_names"]]
    first = exported[1].split("\t")
    assert first[0] == names[0] and float(first[1]) == pytest.approx(lod[0], rel=1e-12, abs=1e-300)
    pairs = qtlhpc("export", results, "scan2d/top_pairs", check=True).stdout.splitlines()
    header = pairs[0].split("\t")
    assert header[:3] == ["trait", "locus_1", "chromosome_1"] and "aa_se" in header
    with h5py.File(results, "r") as handle:
        top = handle["scan2d/top_lod"][()]
        first = [n.decode() for n in handle["scan2d/locus_names"]][handle["scan2d/top_locus_1"][0]]
    assert len(pairs) == 1 + len(top) and len(top) > 0
    assert pairs[1].split("\t")[1] == first and float(pairs[1].split("\t")[7]) == top[0]
    peaks = qtlhpc("export", results, "scan1d/peaks", check=True).stdout.splitlines()
    assert len(peaks) == 1 + 2  # one peak per chromosome
    index = Path(qtlhpc("report", results, "-o", tmp_path / "report", check=True).stdout.strip())
    assert index.exists() and "scan1d" in index.read_text()


def test_config_reference_page_is_in_sync():
    generated = qtlhpc("config-help", check=True).stdout
    assert (ROOT / "docs" / "config.md").read_text() == generated, \
        "docs/config.md is stale: run `qtlhpc config-help > docs/config.md`"
