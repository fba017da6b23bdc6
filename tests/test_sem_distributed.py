"""The SEM search across ranks (1, 2, 3 under real mpirun) equals the serial search; finished paths are
kept across a restart."""

from __future__ import annotations

import json
import subprocess
import sys
import time

import numpy as np
import pytest

from mpi_helpers import RANK_COUNTS, mpi_env, require_mpirun, run_mpi
from qtlhpc.methods.sem import distributed as D
from qtlhpc.methods.sem import kernels as K
from qtlhpc.methods.sem import search as S

OPTIONS = dict(delta=1.0, w=0.2)


def problem(seed=4, n=120):
    """6 genes with a 3-cycle; the EDN adds 5 spurious gene edges and 2 eQTL edges."""
    rng = np.random.default_rng(seed)
    p = 6
    X = rng.integers(0, 2, (n, p)).astype(float)
    B = np.zeros((p, p))
    for (t, h), b in zip([(0, 1), (1, 2), (2, 0), (2, 3), (3, 4), (4, 5)], [0.5, 0.4, -0.3, 0.6, 0.5, -0.4]):
        B[h, t] = b
    Y = K.simulate_linear(B, np.eye(p) * 0.8, np.full(p, 0.5), X, rng)
    genes = [(0, 1), (1, 2), (2, 0), (2, 3), (3, 4), (4, 5), (1, 3), (0, 4), (5, 2), (3, 1), (2, 5)]
    qtls = [(k, k) for k in range(p)] + [(0, 2), (3, 5)]
    net = S.Network(p, p, genes, qtls, cis_groups=[[11 + k] for k in range(p)], required=[(0, 1), (2, 4)])
    return Y, X, net


SCRIPT = """
import json, sys
import numpy as np
from mpi4py import MPI
sys.path.insert(0, {tests!r})
from test_sem_distributed import problem, OPTIONS
from qtlhpc.methods.sem import distributed as D, search as S
comm = MPI.COMM_WORLD
Y, X, net = problem()
options = S.SearchOptions(**OPTIONS)
paths = D.search_paths(Y, X, net, options, range(4), comm=comm, seed=3, checkpoint_dir={ckpt!r})
one = D.search_one_path(Y, X, net, options, path=1, comm=comm, seed=3)
out = {{"paths": [[a.mask.astype(int).tolist() for a in p.accepted] for p in paths.paths],
       "ic": [[a.ic for a in p.accepted] for p in paths.paths],
       "one": [a.mask.astype(int).tolist() for a in one.accepted], "one_ic": [a.ic for a in one.accepted],
       "frequency": paths.inclusion_frequency().tolist()}}
gathered = comm.allgather(json.dumps(out))
assert all(g == gathered[0] for g in gathered), "ranks disagree"
if comm.Get_rank() == 0:
    open({result!r}, "w").write(gathered[0])
"""


def _serial():
    Y, X, net = problem()
    options = S.SearchOptions(**OPTIONS)
    paths = D.search_paths(Y, X, net, options, range(4), seed=3)
    one = S.occam_window(S.Evaluator(Y, X, net, seed=3), options, path=1, seed=3)
    return {"paths": [[a.mask.astype(int).tolist() for a in p.accepted] for p in paths.paths],
            "ic": [[a.ic for a in p.accepted] for p in paths.paths],
            "one": [a.mask.astype(int).tolist() for a in one.accepted], "one_ic": [a.ic for a in one.accepted],
            "frequency": paths.inclusion_frequency().tolist()}


@pytest.mark.slow
def test_one_two_three_ranks_equal_serial(tmp_path):
    require_mpirun()
    serial = _serial()
    assert len({json.dumps(p) for p in serial["paths"]}) >= 1
    tests = str(__import__("pathlib").Path(__file__).parent)
    for ranks in RANK_COUNTS:
        result = tmp_path / f"out{ranks}.json"
        script = tmp_path / f"run{ranks}.py"
        ckpt = tmp_path / f"ckpt{ranks}"
        ckpt.mkdir()
        script.write_text(SCRIPT.format(tests=tests, ckpt=str(ckpt), result=str(result)))
        run_mpi(ranks, [script], timeout=600)
        got = json.loads(result.read_text())
        assert got == serial, f"{ranks} ranks differ from serial"
        assert sorted(p.name for p in ckpt.iterdir()) == [f"sem_path_{k:05d}.npz" for k in range(4)]


def test_resume_keeps_finished_paths(tmp_path):
    Y, X, net = problem()
    options = S.SearchOptions(**OPTIONS)
    computed = []
    first = D.search_paths(Y, X, net, options, range(4), seed=3, checkpoint_dir=tmp_path, computed=computed)
    assert sorted(computed) == [0, 1, 2, 3]
    stamps = {k: D.path_file(tmp_path, k).stat().st_mtime_ns for k in range(4)}
    D.path_file(tmp_path, 2).unlink()  # as if the run was killed before path 2 finished
    computed = []
    again = D.search_paths(Y, X, net, options, range(4), seed=3, checkpoint_dir=tmp_path, computed=computed)
    assert computed == [2]
    for k in (0, 1, 3):
        assert D.path_file(tmp_path, k).stat().st_mtime_ns == stamps[k]
    for a, b in zip(first.paths, again.paths):
        assert [x.ic for x in a.accepted] == [x.ic for x in b.accepted]
    # other options: the files are not reused
    computed = []
    D.search_paths(Y, X, net, S.SearchOptions(delta=2.0, w=0.2), [0], seed=3, checkpoint_dir=tmp_path,
                   computed=computed)
    assert computed == [0]
    # the merge of an array run names the missing paths
    D.path_file(tmp_path, 3).unlink()
    sig = D.signature(Y, X, net, S.SearchOptions(**OPTIONS), 3, 0)
    with pytest.raises(Exception, match=r"\[0, 3\]"):
        D.merge_path_files(tmp_path, range(4), sig, 1.0)


KILL_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from test_sem_distributed import problem, OPTIONS
from qtlhpc.methods.sem import distributed as D, search as S
Y, X, net = problem()
computed = []
D.search_paths(Y, X, net, S.SearchOptions(**OPTIONS), range(8), seed=3, checkpoint_dir={ckpt!r}, computed=computed)
print("computed", sorted(computed))
"""


@pytest.mark.slow
def test_killed_run_resumes_with_its_finished_paths(tmp_path):
    tests = str(__import__("pathlib").Path(__file__).parent)
    ckpt = tmp_path / "ckpt"
    ckpt.mkdir()
    script = tmp_path / "kill.py"
    script.write_text(KILL_SCRIPT.format(tests=tests, ckpt=str(ckpt)))
    env = mpi_env()
    process = subprocess.Popen([sys.executable, str(script)], env=env, stdout=subprocess.PIPE, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and len(list(ckpt.glob("sem_path_*.npz"))) < 2:
        time.sleep(0.05)
    process.kill()
    process.wait()
    finished = sorted(p.name for p in ckpt.glob("sem_path_*.npz"))
    assert 2 <= len(finished) < 8, finished
    stamps = {name: (ckpt / name).stat().st_mtime_ns for name in finished}
    rerun = subprocess.run([sys.executable, str(script)], env=env, capture_output=True, text=True, timeout=600)
    assert rerun.returncode == 0, rerun.stderr
    redone = eval(rerun.stdout.split("computed", 1)[1])
    kept = [int(name[9:14]) for name in finished]
    assert sorted(set(redone) | set(kept)) == list(range(8)) and not set(redone) & set(kept)
    for name, stamp in stamps.items():
        assert (ckpt / name).stat().st_mtime_ns == stamp
    Y, X, net = problem()
    whole = D.search_paths(Y, X, net, S.SearchOptions(**OPTIONS), range(8), seed=3)
    resumed = D.search_paths(Y, X, net, S.SearchOptions(**OPTIONS), range(8), seed=3, checkpoint_dir=ckpt)
    for a, b in zip(whole.paths, resumed.paths):
        assert [x.ic for x in a.accepted] == [x.ic for x in b.accepted]
        assert [S.model_key(x.mask) for x in a.accepted] == [S.model_key(x.mask) for x in b.accepted]
