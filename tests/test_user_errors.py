"""Every error a user can cause ends in one line ``qtlhpc: error: ...`` (exit 2), no traceback; ``--debug``
shows the traceback.

Each case: a name, how to provoke it (``provoke(tmp_path) -> argv``) and a fragment the message must contain.
Root ignores file permissions, so the unreadable-file case runs the CLI as ``nobody`` (``runuser``) and is
skipped where that is not possible; ``test_os_errors_map_to_one_line`` checks the mapping itself.
"""

import errno
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from qtlhpc import cli

ROOT = Path(__file__).resolve().parents[1]
CROSS = ROOT / "tests" / "data" / "small_f2.csv"

CONFIG = """
[run]
output = "results.h5"
stages = ["genoprob"]
progress = false

[input]
format = "rqtl-csv"
cross_type = "f2"
genotype_labels = ["A", "H", "B", "D", "C"]
file = "{file}"
"""


def qtlhpc(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "qtlhpc", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


def _config(tmp_path, file="cross.csv", extra=""):
    config = tmp_path / "analysis.toml"
    config.write_text(CONFIG.format(file=file) + extra)
    return config


def _cross(tmp_path, edit=lambda text: text):
    (tmp_path / "cross.csv").write_text(edit(CROSS.read_text()))


def missing_input(tmp_path):
    return ["run", "genoprob", _config(tmp_path, file="absent.csv")]


def input_is_a_folder(tmp_path):
    (tmp_path / "cross.csv").mkdir()
    return ["run", "genoprob", _config(tmp_path)]


def missing_config(tmp_path):
    return ["run", "genoprob", tmp_path / "absent.toml"]


def config_is_a_folder(tmp_path):
    (tmp_path / "analysis.toml").mkdir()
    return ["run", "genoprob", tmp_path / "analysis.toml"]


def output_is_a_folder(tmp_path):
    _cross(tmp_path)
    (tmp_path / "out.h5").mkdir()
    return ["run", "genoprob", _config(tmp_path), "--output", tmp_path / "out.h5"]


def unknown_stage(tmp_path):
    _cross(tmp_path)
    return ["run", "genoprobb", _config(tmp_path)]


def empty_stages(tmp_path):
    _cross(tmp_path)
    return ["run", "all", _config(tmp_path), "--set", "run.stages=[]"]


def infinite_phenotype(tmp_path):
    _cross(tmp_path, lambda text: text.replace("m1,31.2,", "m1,Inf,"))
    return ["run", "genoprob", _config(tmp_path)]


def semicolon_file(tmp_path):
    _cross(tmp_path, lambda text: text.replace(",", ";"))
    return ["run", "genoprob", _config(tmp_path)]


def corrupt_results_inspect(tmp_path):
    (tmp_path / "results.h5").write_text("not HDF5\n")
    return ["inspect", tmp_path / "results.h5"]


def corrupt_results_export(tmp_path):
    (tmp_path / "results.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 40)  # a truncated HDF5 file
    return ["export", tmp_path / "results.h5", "scan1d/lod"]


def missing_results(tmp_path):
    return ["inspect", tmp_path / "absent.h5"]


def unknown_export_dataset(tmp_path):
    import h5py

    h5py.File(tmp_path / "results.h5", "w").close()
    return ["export", tmp_path / "results.h5", "scan1d/lodd"]


def export_into_missing_folder(tmp_path):
    import h5py

    h5py.File(tmp_path / "results.h5", "w").close()
    return ["export", tmp_path / "results.h5", "scan2d/top_pairs", "-o", tmp_path / "no" / "out.tsv"]


CASES = [
    ("missing input file", missing_input, "absent.csv"),
    ("input file is a folder", input_is_a_folder, "a folder"),
    ("missing config", missing_config, "absent.toml"),
    ("config is a folder", config_is_a_folder, "analysis.toml is a folder: give the analysis TOML file"),
    ("results file is a folder", output_is_a_folder, "out.h5: is a folder, not a results file"),
    ("unknown stage", unknown_stage, "did you mean 'genoprob'?"),
    ("run.stages = []", empty_stages, "[run] stages"),
    ("Inf phenotype", infinite_phenotype, "Inf is not a valid phenotype value"),
    ("';'-separated file", semicolon_file, "input.sep = ';'"),
    ("non-HDF5 results (inspect)", corrupt_results_inspect, "results.h5"),
    ("truncated results (export)", corrupt_results_export, "results.h5"),
    ("missing results file", missing_results, "absent.h5"),
    ("unknown export dataset", unknown_export_dataset, "did you mean 'scan1d/lod'"),
    ("export into a missing folder", export_into_missing_folder, "out.tsv"),
]


@pytest.mark.parametrize("provoke, fragment", [case[1:] for case in CASES], ids=[case[0] for case in CASES])
def test_user_error_is_one_line(tmp_path, provoke, fragment):
    proc = qtlhpc(*provoke(tmp_path), cwd=tmp_path)
    assert proc.returncode == 2, proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if "error" in line]
    assert len(errors) == 1 and fragment in errors[0], proc.stderr


def test_infinite_phenotype_names_line_and_column(tmp_path):
    proc = qtlhpc(*infinite_phenotype(tmp_path), cwd=tmp_path)
    assert "cross.csv, line 4, column 2 ('weight')" in proc.stderr, proc.stderr


@pytest.mark.parametrize("where", ["before", "after"])
def test_debug_shows_the_traceback(tmp_path, where):
    argv = [str(a) for a in corrupt_results_inspect(tmp_path)]
    argv = ["--debug", *argv] if where == "before" else [*argv, "--debug"]
    proc = qtlhpc(*argv, cwd=tmp_path)
    assert proc.returncode != 0 and "Traceback" in proc.stderr, proc.stderr


@pytest.fixture
def unprivileged():
    """The command prefix that runs a program as ``nobody``, and a folder it may write to."""
    if os.geteuid() != 0:
        yield [], Path(tempfile.mkdtemp())
        return
    runuser = shutil.which("runuser")
    if runuser is None or subprocess.run([runuser, "-u", "nobody", "--", "true"]).returncode != 0:
        pytest.skip("cannot run a program as an unprivileged user here (root ignores file permissions)")
    folder = Path(tempfile.mkdtemp())
    folder.chmod(0o777)
    try:
        yield [runuser, "-u", "nobody", "--"], folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def test_unreadable_input_is_one_line(unprivileged):
    prefix, folder = unprivileged
    _cross(folder)
    (folder / "cross.csv").chmod(0o000)
    config = _config(folder)
    config.chmod(0o644)
    env = {**os.environ, "NUMBA_CACHE_DIR": str(folder / "numba"), "HOME": str(folder)}  # nobody's own caches
    proc = subprocess.run([*prefix, sys.executable, "-m", "qtlhpc", "run", "genoprob", str(config)],
                          capture_output=True, text=True, cwd=folder, env=env)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("qtlhpc: error:") == 1, proc.stderr
    assert "cross.csv: Permission denied" in proc.stderr and "permissions" in proc.stderr, proc.stderr


@pytest.mark.parametrize("code, advice", [(errno.EACCES, "permissions"), (errno.ENOSPC, "free some space"),
                                          (errno.EISDIR, "not of a folder"), (errno.EROFS, "read-only")])
def test_os_errors_map_to_one_line(code, advice):
    error = OSError(code, os.strerror(code), "/data/cross.csv")
    message = cli._user_message(error, args=None)
    assert message.startswith("/data/cross.csv: ") and advice in message


def test_internal_os_error_keeps_its_traceback():
    assert cli._user_message(OSError("something internal"), args=None) is None


@pytest.fixture
def tiny_filesystem(tmp_path):
    """A 256 KiB tmpfs (root only), unmounted afterwards."""
    mount = tmp_path / "full"
    mount.mkdir()
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("mounting a tmpfs needs root")
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(mount)], capture_output=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.decode().strip()}")
    try:
        yield mount
    finally:
        if subprocess.run(["umount", str(mount)]).returncode != 0:
            subprocess.run(["umount", "-l", str(mount)])


SIMULATE = """
[run]
output = "results.h5"
progress = false

[simulate]
cross_type = "f2"
n_individuals = 400
n_chromosomes = 2
markers_per_chromosome = 50
write_to = "cross"
"""


def _fill(folder: Path) -> None:
    """Write to ``folder`` until its file system is full."""
    try:
        with open(folder / "filler", "wb") as handle:
            while True:
                handle.write(b"\0" * 4096)
                handle.flush()
    except OSError as error:
        assert error.errno == errno.ENOSPC, error


def test_disk_full_is_one_line(tiny_filesystem):
    config = tiny_filesystem / "analysis.toml"
    config.write_text(SIMULATE)
    _fill(tiny_filesystem)
    proc = qtlhpc("simulate", config, cwd=tiny_filesystem)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("qtlhpc: error:") == 1, proc.stderr
    assert "No space left on device while writing the outputs of" in proc.stderr, proc.stderr


def test_disk_full_under_mpirun_ends_the_job_with_one_message(tiny_filesystem):
    from mpi_helpers import run_mpi

    config = tiny_filesystem / "analysis.toml"
    config.write_text(SIMULATE)
    _fill(tiny_filesystem)
    proc = run_mpi(2, ["-m", "qtlhpc", "simulate", config], check=False, timeout=120, cwd=tiny_filesystem)
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    assert proc.stderr.count("qtlhpc: error") == 1 and "No space left on device" in proc.stderr, proc.stderr
