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


# --------------------------------------------------------------------------------------------------
# Paths as fixed-shape records (the stages' checkpoint blocks) and the summary over all paths

#: guard rails of :class:`~qtlhpc.methods.sem.search.PathResult`, stored as codes 1, 2, ... (0: none)
GUARDS = ("max_candidates", "max_evaluations")
#: the per-path datasets of stage sem-search (first axis: path)
PATH_FIELDS = ("path_n_accepted", "path_evaluations", "path_models_visited", "path_guard", "path_edge_count",
               "accepted_mask", "accepted_loglik", "accepted_n_params", "accepted_ic")


def path_shapes(n_paths: int, d: int, keep: int) -> dict:
    """Shapes of :data:`PATH_FIELDS` for ``n_paths`` paths, ``d`` edges and ``keep`` stored models per path."""
    shapes = {name: (n_paths,) for name in PATH_FIELDS[:4]}
    shapes.update(path_edge_count=(n_paths, d), accepted_mask=(n_paths, keep, d), accepted_loglik=(n_paths, keep),
                  accepted_n_params=(n_paths, keep), accepted_ic=(n_paths, keep))
    return shapes


def path_record(result: S.PathResult, d: int, keep: int) -> dict:
    """One path as arrays of :data:`PATH_FIELDS` (without the path axis): its accepted models best first, the
    first ``keep`` of them stored, the edge counts over all of them."""
    accepted = result.accepted            # sorted by (IC, model key)
    masks = np.array([a.mask for a in accepted], dtype=bool).reshape(-1, d)
    stored = accepted[:keep]
    mask = np.zeros((keep, d), dtype=bool)
    loglik, ic = np.full(keep, np.nan), np.full(keep, np.nan)
    n_params = np.full(keep, -1, dtype=np.int64)
    for j, a in enumerate(stored):
        mask[j], loglik[j], n_params[j], ic[j] = a.mask, a.loglik, a.n_params, a.ic
    guard = GUARDS.index(result.guard) + 1 if result.guard else 0
    return {"path_n_accepted": np.int64(len(accepted)), "path_evaluations": np.int64(result.evaluations),
            "path_models_visited": np.int64(result.models_visited), "path_guard": np.int64(guard),
            "path_edge_count": masks.sum(axis=0).astype(np.int64), "accepted_mask": mask, "accepted_loglik": loglik,
            "accepted_n_params": n_params, "accepted_ic": ic}


def summarise(records: dict, network: S.Network, Y, X) -> dict:
    """The models over all paths, the best model refitted for its coefficients, the inclusion frequencies.

    ``records``: :data:`PATH_FIELDS` with a leading path axis.  Distinct models keep the first path's numbers
    (as :attr:`SearchResult.accepted`) and are sorted by (IC, model key); the inclusion frequency of an edge
    is its share of all (path, accepted model) pairs, stored or not.  Without any accepted model (guard rails
    stopped every path first) the models are empty and the best model's numbers NaN (its mask empty).
    """
    from qtlhpc.methods.sem import kernels as K

    n_paths, keep, d = records["accepted_mask"].shape
    unique = {}
    for k in range(n_paths):
        for j in range(keep):
            if records["accepted_n_params"][k, j] < 0:
                continue
            mask = records["accepted_mask"][k, j]
            key = S.model_key(mask)
            if key in unique:
                unique[key][4] += 1
            else:
                unique[key] = [mask, float(records["accepted_loglik"][k, j]),
                               int(records["accepted_n_params"][k, j]), float(records["accepted_ic"][k, j]), 1]
    order = sorted(unique, key=lambda key: (unique[key][3], key))
    models = [unique[key] for key in order]
    total = int(records["path_n_accepted"].sum())
    frequency = records["path_edge_count"].sum(axis=0) / max(total, 1)
    if not models:      # guard rails stopped every path before a model stayed accepted
        return {"model_mask": np.zeros((0, d), dtype=bool), "model_loglik": np.zeros(0),
                "model_n_params": np.zeros(0, dtype=np.int64), "model_ic": np.zeros(0),
                "model_paths": np.zeros(0, dtype=np.int64), "inclusion_frequency": frequency,
                "best_mask": np.zeros(d, dtype=bool), "best_coefficient": np.full(d, np.nan),
                "best_sigma2": np.full(network.p, np.nan), "best_in_cycle": np.zeros(d, dtype=bool),
                "best_under_identified": np.zeros(network.p, dtype=bool), "best_loglik": np.float64(np.nan),
                "best_ic": np.float64(np.nan), "best_n_params": np.int64(-1), "best_fit_loglik": np.float64(np.nan)}
    best = models[0]
    gene_edges, qtl_edges = network.edges_of(best[0])
    fit = K.fit_model(Y, X, gene_edges, qtl_edges)
    coefficient = np.full(d, np.nan)
    for e, (t, h) in enumerate(network.gene_edges):
        if best[0][e]:
            coefficient[e] = fit.B[h, t]
    for j, (x, h) in enumerate(network.qtl_edges):
        if best[0][network.d_gene + j]:
            coefficient[network.d_gene + j] = fit.F[h, x]
    _, labels = K.strong_components(network.p, gene_edges)
    sizes = np.bincount(labels, minlength=network.p)
    in_cycle = np.zeros(d, dtype=bool)
    for e, (t, h) in enumerate(network.gene_edges):
        in_cycle[e] = bool(best[0][e] and labels[t] == labels[h] and sizes[labels[t]] > 1)
    flagged = np.zeros(network.p, dtype=bool)
    flagged[fit.under_identified] = True
    return {"model_mask": np.array([m[0] for m in models], dtype=bool).reshape(-1, d),
            "model_loglik": np.array([m[1] for m in models]), "model_n_params": np.array([m[2] for m in models],
                                                                                          dtype=np.int64),
            "model_ic": np.array([m[3] for m in models]), "model_paths": np.array([m[4] for m in models],
                                                                                  dtype=np.int64),
            "inclusion_frequency": frequency, "best_mask": best[0].astype(bool), "best_coefficient": coefficient,
            "best_sigma2": fit.sigma2, "best_in_cycle": in_cycle, "best_under_identified": flagged,
            "best_loglik": np.float64(best[1]), "best_ic": np.float64(best[3]), "best_n_params": np.int64(best[2]),
            "best_fit_loglik": np.float64(fit.loglik)}
