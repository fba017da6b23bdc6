"""The SEM search across ranks: search paths and the evaluations of one window step are work units.

- ``parallel_deltas(comm)``: a ``delta_fn`` for :func:`~qtlhpc.methods.sem.search.occam_window` that
  splits the candidate models of one window step (the flipped edges of M1) into chunks, computes them on
  the ranks (:func:`qtlhpc.parallel.schedule.map_units`) and gives every rank all IC differences in edge
  order.  Every rank then applies the window's rules to the same numbers, so every rank follows the
  same search whatever the number of ranks.
- ``search_paths``: the search paths as units (claimed by the ranks as they free up).  With
  ``checkpoint_dir`` every finished path is saved as one file (written to a temporary name and renamed),
  and a rerun loads finished paths instead of recomputing them; a file made with other data, network or
  options is refused (recomputed).

Factor fits are pure functions of the factor and its parent sets, and every random draw comes from
``unit_rng`` keyed by (seed, path, model, edge), so the results do not depend on the ranks.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from qtlhpc.methods.sem import search as S
from qtlhpc.parallel.comm import as_comm
from qtlhpc.parallel.schedule import map_units


def parallel_deltas(comm, chunk: int = 16) -> S.DeltaFunction:
    """A ``delta_fn`` computing one window step's IC differences on all ranks of ``comm``."""
    comm = as_comm(comm)

    def compute(evaluator: S.Evaluator, state: S.State, edges: np.ndarray, options: S.SearchOptions) -> np.ndarray:
        n = len(edges)
        if comm.Get_size() == 1 or n <= chunk:
            return S.deltas(evaluator, state, edges, options)
        starts = list(range(0, n, chunk))
        parts = map_units(lambda u: S.deltas(evaluator, state, edges[starts[u]:starts[u] + chunk], options),
                          range(len(starts)), comm, claimed=False)
        return np.concatenate([parts[u] for u in range(len(starts))])

    return compute


def signature(Y, X, network: S.Network, options: S.SearchOptions, seed: int, n_random: int) -> str:
    """A digest of everything a path's result depends on."""
    digest = hashlib.sha256()
    for array in (np.ascontiguousarray(Y, dtype=np.float64), np.ascontiguousarray(X, dtype=np.float64),
                  network.gene_edges, network.qtl_edges, network.required,
                  *[np.asarray(g) for g in network.cis_groups]):
        digest.update(np.ascontiguousarray(array).tobytes())
        digest.update(str(np.shape(array)).encode())
    digest.update(json.dumps([options.__dict__, seed, n_random, network.p, network.q], sort_keys=True,
                             default=str).encode())
    return digest.hexdigest()


def _save(path: Path, result: S.PathResult, sig: str) -> None:
    tmp = path.with_name(path.name + f".tmp{os.getpid()}")
    masks = np.array([a.mask for a in result.accepted], dtype=bool)
    with open(tmp, "wb") as handle:
        np.savez(handle, masks=masks, loglik=np.array([a.loglik for a in result.accepted]),
                 n_params=np.array([a.n_params for a in result.accepted]),
                 ic=np.array([a.ic for a in result.accepted]), evaluations=result.evaluations,
                 visited=result.models_visited, guard=result.guard, signature=sig, path=result.path)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def _load(path: Path, sig: str) -> Optional[S.PathResult]:
    if not path.exists():
        return None
    with np.load(path) as data:
        if str(data["signature"]) != sig:
            return None
        accepted = [S.Accepted(m.copy(), float(l), int(k), float(ic))
                    for m, l, k, ic in zip(data["masks"], data["loglik"], data["n_params"], data["ic"])]
        return S.PathResult(int(data["path"]), accepted, int(data["evaluations"]), int(data["visited"]),
                            str(data["guard"]))


def path_file(checkpoint_dir, path: int) -> Path:
    return Path(checkpoint_dir) / f"sem_path_{path:05d}.npz"


def search_paths(Y, X, network: S.Network, options: S.SearchOptions, path_ids: Sequence[int], *, comm=None,
                 seed: int = 0, n_random: int = 0, checkpoint_dir=None, claimed: bool = True,
                 computed: Optional[List[int]] = None) -> S.SearchResult:
    """The search paths ``path_ids`` as work units over ``comm``; the same result on every rank.

    ``computed`` (a list) receives the ids of the paths this rank computed (not loaded).
    """
    comm = as_comm(comm)
    sig = signature(Y, X, network, options, seed, n_random) if checkpoint_dir is not None else ""
    evaluator = S.Evaluator(Y, X, network, seed=seed, n_random=n_random)

    def run(path: int) -> S.PathResult:
        if checkpoint_dir is not None:
            done = _load(path_file(checkpoint_dir, path), sig)
            if done is not None:
                return done
        result = S.occam_window(evaluator, options, path=path, seed=seed)
        if computed is not None:
            computed.append(path)
        if checkpoint_dir is not None:
            _save(path_file(checkpoint_dir, path), result, sig)
        return result

    results = map_units(run, list(path_ids), comm, claimed=claimed)
    return S.SearchResult([results[k] for k in path_ids], options.delta)


def search_one_path(Y, X, network: S.Network, options: S.SearchOptions, *, path: int = 0, comm=None,
                    seed: int = 0, n_random: int = 0) -> S.PathResult:
    """One search path with the evaluations of each window step spread over ``comm``."""
    evaluator = S.Evaluator(Y, X, network, seed=seed, n_random=n_random)
    return S.occam_window(evaluator, options, path=path, seed=seed, delta_fn=parallel_deltas(comm))


def merge_path_files(checkpoint_dir, path_ids: Sequence[int], sig: str, delta: float) -> S.SearchResult:
    """Merge the path files of a SLURM array run; name every missing or foreign path."""
    from qtlhpc.errors import IncompleteResultError

    results, missing = [], []
    for k in path_ids:
        done = _load(path_file(checkpoint_dir, k), sig)
        (missing.append(k) if done is None else results.append(done))
    if missing:
        raise IncompleteResultError(
            f"SEM search paths missing in {checkpoint_dir} (or made with other inputs): {missing}; rerun those "
            f"array units")
    return S.SearchResult(results, delta)
