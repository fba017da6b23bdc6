"""``pip install .`` (not editable) gives a working ``qtlhpc submit``: the SLURM templates, job definitions
and site profiles ship inside the wheel (``qtlhpc/_shipped/``, see setup.py and qtlhpc/resources.py).

The install goes into a fresh virtual environment on the same base interpreter, from a copy of the
repository (so no build/ or *.egg-info is left in it), with ``--no-deps --no-build-isolation`` (no
network: setuptools and wheel must be there, e.g. Debian's python3-setuptools and python3-wheel).  qtlhpc's dependencies are then borrowed from the environment running the tests through a
``.pth`` line: it adds that environment's site-packages after the fresh one, without running its .pth
files (so an editable qtlhpc there stays out of the way).
"""

from __future__ import annotations

import ast
import os
import shlex
import shutil
import subprocess
import sys
import sysconfig
from pathlib import Path

from qtlhpc import resources
from requirements import skip_or_fail

REPO = Path(__file__).resolve().parents[1]
BASE_PYTHON = Path(sys.base_prefix) / "bin" / "python3"
NOT_SOURCE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "__pycache__", ".pytest_cache",
                                    ".hypothesis", "demo-output", "runs", "_shipped", "*.h5")
CONFIG = """
[run]
output = "results.h5"
[permutations]
n_permutations = 10
[slurm]
array_tasks = 3
"""


def _run(argv, **kwargs) -> subprocess.CompletedProcess:
    env = {name: value for name, value in os.environ.items() if name != "PYTHONPATH"}
    proc = subprocess.run([str(a) for a in argv], capture_output=True, text=True, env=env, timeout=300, **kwargs)
    assert proc.returncode == 0, f"$ {shlex.join(map(str, argv))}\n{proc.stdout}\n{proc.stderr}"
    return proc


def _last_line(script: Path) -> list:
    return shlex.split(script.read_text().strip().splitlines()[-1])


def test_setup_ships_what_resources_look_for():
    """setup.py cannot import qtlhpc at build time, so it repeats the table; the two must agree."""
    tree = ast.parse((REPO / "setup.py").read_text())
    assigned = {node.targets[0].id: node.value for node in tree.body
                if isinstance(node, ast.Assign) and isinstance(node.targets[0], ast.Name)}
    assert ast.literal_eval(assigned["SHIPPED"]) == resources.SHIPPED
    assert not (REPO / "qtlhpc" / "_shipped").exists()  # the repository's folders are the source of truth
    for name, pattern in resources.SHIPPED.items():
        assert resources.folder(name) == REPO / name and list((REPO / name).glob(pattern))


def test_wheel_install_submits_with_shipped_files(tmp_path):
    source, venv, work = tmp_path / "source", tmp_path / "venv", tmp_path / "work"
    before = {p.name for p in REPO.iterdir()}
    shutil.copytree(REPO, source, ignore=NOT_SOURCE)
    _run([BASE_PYTHON, "-m", "venv", "--system-site-packages", venv])
    builder = subprocess.run([venv / "bin" / "python", "-c", "import setuptools, wheel"], capture_output=True)
    if builder.returncode != 0:
        skip_or_fail("building a wheel without network needs setuptools and wheel beside the base python "
                     "(apt-get install python3-setuptools python3-wheel)")
    _run([venv / "bin" / "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--disable-pip-version-check",
          source])
    python = venv / "bin" / "python"
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).stdout.strip()
    Path(purelib, "zz-test-dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")

    work.mkdir()
    (work / "analysis.toml").write_text(CONFIG)
    found = _run([python, "-c", "import qtlhpc.resources as r; print(r.folder('slurm'))"], cwd=work).stdout
    assert Path(found.strip()) == Path(purelib) / "qtlhpc" / "_shipped" / "slurm"
    text = _run([venv / "bin" / "qtlhpc", "submit", "pepis", "analysis.toml", "--dry-run", "--site", "example"],
                cwd=work).stdout
    assert "--array=0-2" in text and "merge-permutations.sbatch" in text

    scripts = work / "results.slurm" / "scripts"
    assert sorted(p.name for p in scripts.iterdir()) == sorted(
        f"{stage}.sbatch" for stage in ("genoprob", "kinship", "varcomp", "scan1d", "scan2d", "permutations",
                                        "merge-permutations", "report"))
    permutations = (scripts / "permutations.sbatch").read_text()
    assert "#SBATCH --array=0-2" in permutations and "UNIT_RANGES=(0:4 4:7 7:10)" in permutations
    assert "#SBATCH --partition=compute" in permutations and "module load openmpi/4.1.4" in permutations
    config = str(work / "analysis.toml")
    assert _last_line(scripts / "permutations.sbatch")[2:] == [
        "/home/me/qtlhpc/.venv/bin/python", "-m", "mpi4py", "-m", "qtlhpc", "run", "permutations", config,
        "--units", "${UNIT_RANGES[$TASK]}", "--unit-output", "${TASK_OUTPUTS[$TASK]}"]
    task_files = [str(work / "results.slurm" / "units" / "permutations" / f"task-{i}.h5") for i in range(3)]
    assert _last_line(scripts / "merge-permutations.sbatch")[7:] == ["run", "merge-permutations", config, *task_files]
    assert not {"build", "dist"} & ({p.name for p in REPO.iterdir()} - before)  # nothing built in the repository
    assert not (REPO / "qtlhpc" / "_shipped").exists()
