"""Without mpi4py, petsc4py and slepc4py the package still imports and runs serially, and says so once."""

import subprocess
import sys
import textwrap

import h5py


def blocked_environment(tmp_path):
    """A sitecustomize that makes `import mpi4py / petsc4py / slepc4py` fail, as on a machine without them."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(textwrap.dedent("""
        import sys
        class _Missing:
            def find_spec(self, name, path=None, target=None):
                if name.split(".")[0] in ("mpi4py", "petsc4py", "slepc4py"):
                    raise ImportError(f"No module named {name!r} (hidden by the test)")
                return None
        sys.meta_path.insert(0, _Missing())
    """))
    import os

    env = dict(os.environ)
    env["PYTHONPATH"] = str(site) + os.pathsep + env.get("PYTHONPATH", "")
    return env


CONFIG = """
[run]
output = "results.h5"
progress = false
[simulate]
cross_type = "bc"
n_individuals = 30
n_chromosomes = 2
markers_per_chromosome = 5
write_to = "cross"
[input]
format = "rqtl-csv"
cross_type = "bc"
file = "cross.csv"
"""


def test_runs_serially_without_mpi4py_petsc_slepc(tmp_path):
    env = blocked_environment(tmp_path)
    info = subprocess.run([sys.executable, "-m", "qtlhpc", "info"], env=env, capture_output=True, text=True)
    assert info.returncode == 0, info.stderr
    assert "MPI: mpi4py is not installed: running serially" in info.stdout
    assert "PETSc: petsc4py is not importable" in info.stdout and "scipy" in info.stdout
    assert "SLEPc: slepc4py is not importable" in info.stdout
    assert "sparse LU = scipy, eigensolver = scipy" in info.stdout

    config = tmp_path / "analysis.toml"
    config.write_text(CONFIG)
    subprocess.run([sys.executable, "-m", "qtlhpc", "simulate", str(config)], env=env, check=True, capture_output=True)
    run = subprocess.run([sys.executable, "-m", "qtlhpc", "run", "genoprob", str(config)], env=env,
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert run.stderr.count("mpi4py is not installed: running serially") == 1
    with h5py.File(tmp_path / "results.h5", "r") as results:
        assert results["genoprob"].attrs["status"] == "complete"
        assert results["genoprob/probs"].shape[0] == 30
