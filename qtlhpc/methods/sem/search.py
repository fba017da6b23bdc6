"""Occam's window search over submodels of the encompassing directed network (EDN), spec B2.5.

Pure numpy: no MPI, files or configuration.  The evaluations of one window step (``deltas``) are
independent and can be spread over ranks by the caller; the rules (``apply_rules``) are applied in edge
order on one rank, so any split of the evaluations gives the same search.

Edges are numbered ``0 .. d-1``: the EDN's gene edges first (``gene_edges[e]`` = (tail, head)), then its
eQTL edges (``qtl_edges[e - d_gene]`` = (qtl, head)).  A model is a bool mask over the d edges.
"""

from __future__ import annotations

import math
import zlib
from collections import deque
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from qtlhpc.methods.sem import gram as G
from qtlhpc.methods.sem import kernels as K
from qtlhpc.parallel.rng import unit_rng


@dataclass
class Network:
    """An EDN and the eQTL associations its submodels must keep.

    ``cis_groups``: per eQTL with cis candidates, the edge ids of its cis edges (one must remain).
    ``required``: (qtl, gene) pairs that need a directed path qtl -> ... -> gene in every submodel.
    """

    p: int
    q: int
    gene_edges: np.ndarray
    qtl_edges: np.ndarray
    cis_groups: List[np.ndarray] = field(default_factory=list)
    required: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), dtype=np.int64))

    def __post_init__(self):
        self.gene_edges = np.asarray(self.gene_edges, dtype=np.int64).reshape(-1, 2)
        self.qtl_edges = np.asarray(self.qtl_edges, dtype=np.int64).reshape(-1, 2)
        self.required = np.asarray(self.required, dtype=np.int64).reshape(-1, 2)
        self.cis_groups = [np.asarray(g, dtype=np.int64) for g in self.cis_groups]
        self._check()

    def _check(self) -> None:
        """Raise ValueError naming the first bad edge, group or required pair."""
        for what, edges, tail_size in (("gene_edges", self.gene_edges, self.p), ("qtl_edges", self.qtl_edges, self.q)):
            for row, (tail, head) in enumerate(edges.tolist()):
                if not (0 <= tail < tail_size and 0 <= head < self.p):
                    raise ValueError(f"{what} row {row}: ({tail}, {head}) out of range (tails 0..{tail_size - 1}, "
                                     f"heads 0..{self.p - 1})")
            if len({tuple(e) for e in edges.tolist()}) != len(edges):
                raise ValueError(f"{what} has duplicate edges: give each edge once")
        for row, (tail, head) in enumerate(self.gene_edges.tolist()):
            if tail == head:
                raise ValueError(f"gene_edges row {row}: self-loop {tail} -> {head} (B has a zero diagonal)")
        for index, group in enumerate(self.cis_groups):
            if group.size == 0 or group.min() < self.d_gene or group.max() >= self.d:
                raise ValueError(f"cis_groups[{index}] = {group.tolist()}: expected eQTL edge ids "
                                 f"{self.d_gene}..{self.d - 1}")
        for row, (qtl, gene) in enumerate(self.required.tolist()):
            if not (0 <= qtl < self.q and 0 <= gene < self.p):
                raise ValueError(f"required row {row}: ({qtl}, {gene}) out of range")

    @property
    def d_gene(self) -> int:
        return len(self.gene_edges)

    @property
    def d(self) -> int:
        return len(self.gene_edges) + len(self.qtl_edges)

    def edges_of(self, mask) -> Tuple[np.ndarray, np.ndarray]:
        """(gene_edges, qtl_edges) of the submodel ``mask`` (d,)."""
        mask = np.asarray(mask, dtype=bool)
        return self.gene_edges[mask[: self.d_gene]], self.qtl_edges[mask[self.d_gene:]]

    def full(self) -> np.ndarray:
        return np.ones(self.d, dtype=bool)


def model_key(mask) -> bytes:
    """A hashable key of a submodel."""
    return np.packbits(np.asarray(mask, dtype=bool)).tobytes()


def _crc(obj) -> int:
    return zlib.crc32(repr(obj).encode())


@dataclass
class State:
    """A model with its parents, factors and factor log-likelihoods."""

    mask: np.ndarray
    gparents: List[Tuple[int, ...]]
    qparents: List[Tuple[int, ...]]
    factor_of: np.ndarray
    factors: List[Tuple[int, ...]]
    factor_ll: List[float]
    loglik: float
    n_params: int
    keys: List[tuple] = field(default_factory=list)        # the factors' cache keys
    children: Optional[Dict[int, List[int]]] = None          # gene -> its gene children (built when needed)


class Evaluator:
    """Log-likelihoods of submodels, with factor fits cached by (members, their parent sets).

    A factor's fit is a pure function of its key (starts: 2SLS, OLS, zero, and ``n_random`` random
    starts drawn from a stream keyed by the key), so caches on different ranks give the same numbers.
    """

    def __init__(self, Y, X, network: Network, *, seed: int = 0, n_random: int = 0, backend=None,
                 max_cache: int = 2_000_000, starts: Tuple[str, ...] = ("2sls", "ols"), warm_starts: bool = True,
                 engine: str = "gram", tol: float = 1e-10):
        if engine not in ("gram", "reference"):
            raise ValueError(f"engine {engine!r}: choose 'gram' (compiled, from cross-products) or 'reference'")
        self.Y, self.X = K.centre(Y, X)
        self.N = self.Y.shape[0]
        self.net = network
        self.seed = seed
        self.n_random = n_random
        self.backend = backend
        self.cache: Dict[tuple, float] = {}
        self.max_cache = max_cache
        self.starts = tuple(starts)
        self.warm_starts = warm_starts
        self.engine = engine
        self.tol = tol  # the fits' stopping rule (kernels.bcd): l changes by < tol * N in a sweep
        self.S = G.cross_products(self.Y, self.X) if engine == "gram" else None
        self.coef: Dict[tuple, Dict[Tuple[int, int], float]] = {}
        # l of the new factor(s) of a flip that touches one factor: a function of (edge, that factor's key)
        self.flips: Dict[Tuple[int, tuple], float] = {}
        self.fits = 0
        self.evaluations = 0
        self.under_identified_fits = 0

    # -- factors
    @staticmethod
    def factor_key(members: Tuple[int, ...], gparents, qparents) -> tuple:
        return (members, tuple(gparents(k) for k in members), tuple(qparents(k) for k in members))

    def _coefficients(self, key: tuple) -> Optional[Dict[Tuple[int, int], float]]:
        """Gene-parent coefficients of a fitted factor of the current model: stored for cyclic factors,
        recomputed (a regression, a pure function of the key) for a single gene."""
        known = self.coef.get(key)
        if known is not None or len(key[0]) > 1 or self.engine != "gram":
            return known
        members, gparents, qparents = key
        stats = G.factor_statistics(self.S, members, lambda k: gparents[0], lambda k: qparents[0], self.net.p, self.N)
        return stats.gene_coefficients(np.zeros(0))

    def factor_loglik(self, members: Tuple[int, ...], gparents, qparents, warm_from: Tuple[tuple, ...] = ()) -> float:
        """l of one factor.  ``warm_from``: keys of the factors of the current model it replaces; when
        given (and ``warm_starts``), the fit starts from their estimates only (the paper's "current
        estimates" start) and is cached under (key, warm_from), a pure function of both."""
        key = self.factor_key(members, gparents, qparents)
        warm = self.warm_starts and len(members) > 1 and bool(warm_from)
        cache_key = (key, warm_from) if warm else key
        value = self.cache.get(cache_key)
        if value is not None:
            return value
        if self.engine == "gram" and not (self.backend is not None and len(members) > K.DENSE_MAX):
            value, cache_key = self._fit_gram(key, members, gparents, qparents, warm_from if warm else ())
        else:
            value, cache_key = self._fit_reference(key, members, gparents, qparents, warm_from if warm else ())
        self.fits += 1
        if len(self.cache) < self.max_cache:
            self.cache[cache_key] = value
        return value

    def _warm_coefficients(self, warm_from: Tuple[tuple, ...]) -> Optional[Dict[Tuple[int, int], float]]:
        known: Dict[Tuple[int, int], float] = {}
        for old in warm_from:
            values = self._coefficients(old)
            if values is None:
                return None
            known.update(values)
        return known

    def _fit_gram(self, key, members, gparents, qparents, warm_from) -> Tuple[float, tuple]:
        stats = G.factor_statistics(self.S, members, gparents, qparents, self.net.p, self.N)
        self.under_identified_fits += int(stats.under_identified().any())
        if len(members) == 1:
            return stats.loglik(np.zeros(0)), key
        known = self._warm_coefficients(warm_from) if warm_from else None
        if known is not None:
            theta = np.array([known.get((int(members[i]), int(members[j])), 0.0)
                              for i in range(stats.n) for j in stats.inside[stats.ins_ptr[i]:stats.ins_ptr[i + 1]]])
            fit = G.fit(stats, [("current", theta)], tol=self.tol)
            if np.isfinite(fit.loglik):
                return fit.loglik, (key, warm_from)
        starts = []
        for name in self.starts:
            if name == "2sls":
                starts.append(("2sls", G.two_stage_least_squares(self.S, stats)))
            elif name == "ols":
                starts.append(("ols", G.ols_start(stats)))
            elif name == "zero":
                starts.append(("zero", np.zeros(len(stats.inside))))
            else:
                raise ValueError(f"unknown start type {name!r}: choose 2sls, ols or zero")
        if self.n_random:
            rng = unit_rng(self.seed, "sem-random-start", _crc(key))
            starts.extend((f"random{j}", np.concatenate([rng.normal(0.0, 0.3, size=int(m))
                                                         for m in np.diff(stats.ins_ptr)]))
                          for j in range(self.n_random))
        fit = G.fit(stats, starts, tol=self.tol)
        self.coef[key] = stats.gene_coefficients(fit.theta)
        return fit.loglik, key

    def _fit_reference(self, key, members, gparents, qparents, warm_from) -> Tuple[float, tuple]:
        """The numpy reference path (:func:`kernels.fit_factor`); also the sparse-LU path of large factors."""
        gp = {k: np.array(gparents(k), dtype=np.int64) for k in members}
        qp = {k: np.array(qparents(k), dtype=np.int64) for k in members}
        array = np.array(members, dtype=np.int64)
        cache_key = key
        fit = None
        known = self._warm_coefficients(warm_from) if warm_from else None
        if known is not None:
            inside = set(members)
            betas = [np.array([known.get((k, int(g)), 0.0) for g in gp[k] if int(g) in inside]) for k in members]
            fit = K.fit_factor(self.Y, self.X, array, gp, qp, starts=(), n_random=0,
                               extra_starts=[("current", betas)], tol=self.tol)
            cache_key = (key, warm_from)
            if not np.isfinite(fit.loglik):
                fit = None
        if fit is None:
            rng = unit_rng(self.seed, "sem-random-start", _crc(key)) if self.n_random and len(members) > 1 else None
            backend = self.backend if len(members) > K.DENSE_MAX else None
            fit = K.fit_factor(self.Y, self.X, array, gp, qp, starts=self.starts,
                               n_random=self.n_random if len(members) > 1 else 0, rng=rng, backend=backend,
                               tol=self.tol)
            cache_key = key
            if len(members) > 1:
                self.coef[key] = {(k, int(g)): float(c) for i, k in enumerate(members)
                                  for g, c in zip(gp[k], fit.gene_coef[i])}
        self.under_identified_fits += int(fit.under_identified.any())
        return fit.loglik, cache_key

    def state(self, mask) -> State:
        mask = np.asarray(mask, dtype=bool).copy()
        net = self.net
        ge, qe = net.edges_of(mask)
        gpar = [[] for _ in range(net.p)]
        qpar = [[] for _ in range(net.p)]
        for t, h in ge:
            gpar[h].append(int(t))
        for x, h in qe:
            qpar[h].append(int(x))
        gpar = [tuple(sorted(g)) for g in gpar]
        qpar = [tuple(sorted(g)) for g in qpar]
        factors = [tuple(int(v) for v in f) for f in K.factors_of(net.p, ge)]
        factor_of = np.empty(net.p, dtype=np.int64)
        for i, f in enumerate(factors):
            factor_of[list(f)] = i
        ll = [self.factor_loglik(f, gpar.__getitem__, qpar.__getitem__) for f in factors]
        keys = [self.factor_key(f, gpar.__getitem__, qpar.__getitem__) for f in factors]
        return State(mask, gpar, qpar, factor_of, factors, ll, float(sum(ll)), int(mask.sum()) + net.p, keys)

    # -- one-edge changes
    def _reach(self, state: State, start: int, forward: bool) -> set:
        if state.children is None:
            state.children = {}
            for k in range(self.net.p):
                for parent in state.gparents[k]:
                    state.children.setdefault(parent, []).append(k)
        if forward:
            links = state.children
        else:
            links = {k: list(state.gparents[k]) for k in range(self.net.p)}
        seen = {start}
        queue = deque([start])
        while queue:
            node = queue.popleft()
            for nxt in links.get(node, ()):
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
        return seen

    def flip_loglik(self, state: State, edge: int) -> float:
        """Log-likelihood of ``state`` with edge ``edge`` removed (if present) or added (if absent)."""
        self.evaluations += 1
        net = self.net
        present = bool(state.mask[edge])
        if edge >= net.d_gene:
            head = int(net.qtl_edges[edge - net.d_gene][1])
            f = int(state.factor_of[head])
            return state.loglik - state.factor_ll[f] + self._one_factor_flip(state, edge, f)
        tail, head = (int(v) for v in net.gene_edges[edge])
        f_head, f_tail = int(state.factor_of[head]), int(state.factor_of[tail])
        if present or f_tail == f_head:
            return state.loglik - state.factor_ll[f_head] + self._one_factor_flip(state, edge, f_head)
        down = self._reach(state, head, True)
        if tail not in down:
            return state.loglik - state.factor_ll[f_head] + self._one_factor_flip(state, edge, f_head)
        # the new edge closes a cycle: the factors on it merge
        up = self._reach(state, tail, False)
        merged = tuple(sorted(down & up))
        old = sorted({int(state.factor_of[v]) for v in merged})
        new_g = tuple(sorted(set(state.gparents[head]) | {tail}))
        gparents = lambda k: new_g if k == head else state.gparents[k]  # noqa: E731
        old_keys = tuple(state.keys[f] for f in old)
        value = self.factor_loglik(merged, gparents, state.qparents.__getitem__, old_keys)
        return state.loglik - sum(state.factor_ll[f] for f in old) + value

    def _one_factor_flip(self, state: State, edge: int, f: int) -> float:
        """l of the factor(s) that replace factor ``f`` when ``edge`` (whose head is in it) flips; a
        removal inside a cycle may split it.  Memoised by (edge, the factor's key)."""
        memo = (edge, state.keys[f])
        value = self.flips.get(memo)
        if value is not None:
            return value
        net = self.net
        members = state.factors[f]
        old_keys = (state.keys[f],)
        if edge >= net.d_gene:
            qtl, head = (int(v) for v in net.qtl_edges[edge - net.d_gene])
            new_q = tuple(sorted(set(state.qparents[head]) ^ {qtl}))
            value = self.factor_loglik(members, state.gparents.__getitem__,
                                       lambda k: new_q if k == head else state.qparents[k], old_keys)
        else:
            tail, head = (int(v) for v in net.gene_edges[edge])
            new_g = tuple(sorted(set(state.gparents[head]) ^ {tail}))
            gparents = lambda k: new_g if k == head else state.gparents[k]  # noqa: E731
            removal_inside = bool(state.mask[edge]) and int(state.factor_of[tail]) == f
            new_factors = _split(members, gparents) if removal_inside else [members]
            value = sum(self.factor_loglik(m, gparents, state.qparents.__getitem__, old_keys) for m in new_factors)
        if len(self.flips) < self.max_cache:
            self.flips[memo] = value
        return value


def _split(members: Tuple[int, ...], gparents) -> List[Tuple[int, ...]]:
    """SCCs of the subgraph on ``members`` under the parent function ``gparents`` (iterative Tarjan,
    on the reversed graph: the components are the same)."""
    inside = set(members)
    parents = {v: [u for u in gparents(v) if u in inside] for v in members}
    index: Dict[int, int] = {}
    low: Dict[int, int] = {}
    on_stack: set = set()
    stack: List[int] = []
    groups: List[Tuple[int, ...]] = []
    counter = 0
    for root in members:
        if root in index:
            continue
        work = [(root, 0)]
        while work:
            v, i = work.pop()
            if i == 0:
                index[v] = low[v] = counter
                counter += 1
                stack.append(v)
                on_stack.add(v)
            recurse = False
            nexts = parents[v]
            while i < len(nexts):
                u = nexts[i]
                i += 1
                if u not in index:
                    work.append((v, i))
                    work.append((u, 0))
                    recurse = True
                    break
                if u in on_stack:
                    low[v] = min(low[v], index[u])
            if recurse:
                continue
            if low[v] == index[v]:
                group = []
                while True:
                    u = stack.pop()
                    on_stack.discard(u)
                    group.append(u)
                    if u == v:
                        break
                groups.append(tuple(sorted(group)))
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[v])
    return groups


# --------------------------------------------------------------------------------------------------
# the removable-edge rule

class Removability:
    """Which edges of one model may be removed (spec B2.5): keep a path for every required pair and one
    cis edge per eQTL with cis candidates.

    The genes reached from each eQTL in the model are found once; removing an edge can only cut the
    paths of the eQTL that reach its tail (or own it), so only those are searched again without it."""

    def __init__(self, net: Network, mask):
        self.net = net
        self.mask = np.asarray(mask, dtype=bool)
        self.by_qtl: Dict[int, List[int]] = {}
        for qtl, gene in net.required:
            self.by_qtl.setdefault(int(qtl), []).append(int(gene))
        self.group_of: Dict[int, int] = {}
        for g, edges in enumerate(net.cis_groups):
            for e in edges:
                self.group_of[int(e)] = g
        self._reached: Optional[Dict[int, set]] = None

    def _graph(self):
        net = self.net
        children: Dict[int, List[Tuple[int, int]]] = {}
        for e in np.flatnonzero(self.mask[: net.d_gene]).tolist():
            t, h = net.gene_edges[e]
            children.setdefault(int(t), []).append((int(h), e))
        qtl_children: Dict[int, List[Tuple[int, int]]] = {}
        for e in np.flatnonzero(self.mask[net.d_gene:]).tolist():
            x, h = net.qtl_edges[e]
            qtl_children.setdefault(int(x), []).append((int(h), e + net.d_gene))
        return children, qtl_children

    def _reach(self, qtl: int, without: int = -1) -> set:
        seen = {h for h, e in self._qtl_children.get(qtl, ()) if e != without}
        queue = deque(seen)
        children = self._children
        while queue:
            node = queue.popleft()
            for nxt, e in children.get(node, ()):
                if e != without and nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
        return seen

    def _paths_kept(self, without: int) -> bool:
        if self._reached is None:
            self._children, self._qtl_children = self._graph()
            self._reached = {qtl: self._reach(qtl) for qtl in self.by_qtl}
        net = self.net
        if without >= net.d_gene:
            own = int(net.qtl_edges[without - net.d_gene][0])
            affected = [own] if own in self.by_qtl else []
        else:
            tail = int(net.gene_edges[without][0])
            affected = [qtl for qtl, reached in self._reached.items() if tail in reached]
        for qtl in affected:
            reached = self._reach(qtl, without)
            if any(t not in reached for t in self.by_qtl[qtl]):
                return False
        return True

    def removable(self, edge: int) -> bool:
        if not self.mask[edge]:
            return False
        group = self.group_of.get(edge)
        if group is not None and int(self.mask[self.net.cis_groups[group]].sum()) <= 1:
            return False
        if not len(self.net.required):
            return True
        return self._paths_kept(edge)


# --------------------------------------------------------------------------------------------------
# Occam's window

@dataclass
class SearchOptions:
    delta: float = 1.0              # 1: BIC; >1: BIC(delta)
    threshold: Optional[float] = None  # T_ow < 0; None: -pen - 2 log 20
    w: float = 0.0                  # probability of following a weak improvement
    max_candidates: int = 10_000
    max_evaluations: int = 10_000_000
    up: bool = True

    def penalty(self, n_obs: int) -> float:
        return self.delta * math.log(n_obs)

    def t_ow(self, n_obs: int) -> float:
        return self.threshold if self.threshold is not None else -self.penalty(n_obs) - 2.0 * math.log(20.0)


@dataclass
class Accepted:
    mask: np.ndarray
    loglik: float
    n_params: int
    ic: float


@dataclass
class PathResult:
    path: int
    accepted: List[Accepted]
    evaluations: int
    models_visited: int
    guard: str  # "" or which guard rail was hit

    @property
    def best(self) -> Accepted:
        return min(self.accepted, key=lambda a: (a.ic, model_key(a.mask)))


def edge_order(d: int, path: int, seed: int, candidates: np.ndarray) -> np.ndarray:
    """Canonical edge order on path 0; a seeded shuffle on other paths."""
    if path == 0:
        return np.sort(candidates)
    rng = unit_rng(seed, "sem-edge-order", path)
    return np.sort(candidates)[rng.permutation(len(candidates))]


def deltas(evaluator: Evaluator, state: State, edges: Sequence[int], options: SearchOptions) -> np.ndarray:
    """IC(M2) - IC(M1) for M2 = M1 with each edge flipped (the parallel part of a window step)."""
    pen = options.penalty(evaluator.N)
    out = np.empty(len(edges))
    for j, e in enumerate(edges):
        ll2 = evaluator.flip_loglik(state, int(e))
        out[j] = -2.0 * (ll2 - state.loglik) + (-pen if state.mask[e] else pen)
    return out


DeltaFunction = Callable[[Evaluator, State, np.ndarray, SearchOptions], np.ndarray]


def occam_window(evaluator: Evaluator, options: SearchOptions, *, path: int = 0, seed: int = 0,
                 start=None, delta_fn: DeltaFunction = deltas) -> PathResult:
    """One search path: the down pass from ``start`` (default the EDN), then the up pass from its A."""
    net = evaluator.net
    N = evaluator.N
    t_ow = options.t_ow(N)
    start = net.full() if start is None else np.asarray(start, dtype=bool)
    accepted: Dict[bytes, Accepted] = {}
    visited: set = set()
    guard = ""
    evaluations = 0  # counted here, not by the evaluator: its count depends on how the work was split

    def run(direction: str, initial: List[np.ndarray]) -> None:
        nonlocal guard, evaluations
        candidates: List[np.ndarray] = []
        candidates.extend(m.copy() for m in initial)
        queued = {model_key(m) for m in initial}
        choice_rng = unit_rng(seed, f"sem-choice-{direction}", path)
        while candidates:
            if evaluations >= options.max_evaluations:
                guard = guard or "max_evaluations"
                break
            index = 0 if path == 0 else int(choice_rng.integers(len(candidates)))
            m1 = candidates.pop(index)
            k1 = model_key(m1)
            visited.add((direction, k1))
            state = evaluator.state(m1)
            ic1 = K.information_criterion(state.loglik, state.n_params, N, options.delta)
            accepted[k1] = Accepted(m1.copy(), state.loglik, state.n_params, ic1)
            if best_seen[0] is None or (ic1, k1) < (best_seen[0].ic, model_key(best_seen[0].mask)):
                best_seen[0] = accepted[k1]
            if direction == "down":
                flippable = np.flatnonzero(m1)
            else:
                flippable = np.flatnonzero(~m1)
            order = edge_order(net.d, path, seed, flippable)
            values = delta_fn(evaluator, state, order, options)
            evaluations += len(order)
            removal = Removability(net, m1) if direction == "down" else None
            ic_min = 0.0
            keep: Optional[np.ndarray] = None

            def add(m2) -> None:
                nonlocal guard
                k2 = model_key(m2)
                if k2 in queued:
                    return
                if len(queued) >= options.max_candidates:
                    guard = guard or "max_candidates"
                    return
                queued.add(k2)
                candidates.append(m2)

            for e, d12 in zip(order, values):
                e = int(e)
                if d12 < t_ow:
                    action = "strong"
                elif t_ow < d12 < ic_min:
                    action = "keep"
                elif ic_min < d12 < 0 and options.w > 0 and \
                        unit_rng(seed, "sem-branch", path, _crc(k1), e).random() < options.w:
                    action = "branch"
                else:
                    continue
                # the rule is checked only for an edge that would act (the draw is keyed, so skipping
                # it for other edges changes nothing)
                if removal is not None and not removal.removable(e):
                    continue
                m2 = m1.copy()
                m2[e] = not m2[e]
                if action == "strong":
                    accepted.pop(k1, None)
                    add(m2)
                    keep = None
                    ic_min = -math.inf
                elif action == "keep":
                    ic_min = d12
                    keep = m2
                    accepted.pop(k1, None)
                else:
                    accepted.pop(k1, None)
                    add(m2)
            if keep is not None:
                add(keep)

    best_seen: List[Optional[Accepted]] = [None]
    run("down", [start])
    if options.up and not (guard and not accepted):
        run("up", [a.mask for a in accepted.values()])
    if not accepted and best_seen[0] is not None:
        # a guard rail stopped the path before the models it queued were visited: keep the best
        # model it did evaluate, so that every path reports one (PathResult.guard says why)
        accepted[model_key(best_seen[0].mask)] = best_seen[0]
    result = PathResult(path, sorted(accepted.values(), key=lambda a: (a.ic, model_key(a.mask))),
                        evaluations, len(visited), guard)
    return result


@dataclass
class SearchResult:
    paths: List[PathResult]
    delta: float

    @property
    def accepted(self) -> List[Accepted]:
        """Distinct accepted models over all paths, best IC first."""
        unique: Dict[bytes, Accepted] = {}
        for path in self.paths:
            for a in path.accepted:
                unique.setdefault(model_key(a.mask), a)
        return sorted(unique.values(), key=lambda a: (a.ic, model_key(a.mask)))

    @property
    def best(self) -> Accepted:
        return self.accepted[0]

    def inclusion_frequency(self) -> np.ndarray:
        """Per EDN edge: share of (path, accepted model) pairs that contain it."""
        masks = [a.mask for path in self.paths for a in path.accepted]
        return np.mean(np.array(masks, dtype=float), axis=0)

    @property
    def guards(self) -> List[str]:
        return [p.guard for p in self.paths]


def search(Y, X, network: Network, options: SearchOptions, *, n_paths: int = 1, seed: int = 0,
           n_random: int = 0, evaluator: Optional[Evaluator] = None) -> SearchResult:
    """Serial search over ``n_paths`` paths (path 0 canonical, others seeded shuffles)."""
    evaluator = evaluator or Evaluator(Y, X, network, seed=seed, n_random=n_random)
    return SearchResult([occam_window(evaluator, options, path=k, seed=seed) for k in range(n_paths)],
                        options.delta)


def exhaustive(Y, X, network: Network, delta: float = 1.0, evaluator: Optional[Evaluator] = None
               ) -> Tuple[float, np.ndarray]:
    """Minimum IC over all 2^d submodels that keep the required paths and cis edges (a reference)."""
    evaluator = evaluator or Evaluator(Y, X, network)
    best = (math.inf, None)
    d = network.d
    full = network.full()
    for code in range(1 << d):
        mask = np.array([(code >> e) & 1 for e in range(d)], dtype=bool)
        if not _allowed(network, mask, full):
            continue
        state = evaluator.state(mask)
        ic = K.information_criterion(state.loglik, state.n_params, evaluator.N, delta)
        if ic < best[0]:
            best = (ic, mask)
    return best


def _allowed(net: Network, mask, full) -> bool:
    for group in net.cis_groups:
        if not mask[group].any():
            return False
    return _paths_hold(net, mask) if len(net.required) else True


def _paths_hold(net: Network, mask) -> bool:
    ge, qe = net.edges_of(mask)
    children: Dict[int, List[int]] = {}
    for t, h in ge:
        children.setdefault(int(t), []).append(int(h))
    for qtl, target in net.required:
        seen = {int(h) for x, h in qe if x == qtl}
        queue = deque(seen)
        while queue:
            node = queue.popleft()
            for nxt in children.get(node, ()):
                if nxt not in seen:
                    seen.add(nxt)
                    queue.append(nxt)
        if int(target) not in seen:
            return False
    return True
