"""CAL kernels (de Ridder et al. 2010): the association score, bit words, the exact search and its oracle.

Pure numpy (the compiled loops are in :mod:`qtlhpc.methods.cal.search_kernels`); no MPI, files or config.

* :func:`score` -- the score of the spec (A1.2) on boolean outputs, the slow obvious reference (two-pass means
  and variances): ``f = (mean1 - mean0) / sqrt(s1^2/n1 + s0^2/n0)`` (Welch; Student's pooled t with
  ``tstat="student"``), 0 when a group has fewer than ``eta`` strains; ``score="abs"`` takes |t|.
* :func:`pack_columns` -- a binary locus matrix ``(T, L)`` as ``L`` T-bit words.
* :func:`gene_tables` -- the per-gene look-up tables and bound inputs of the compiled search.
* :func:`search` -- the exact search for one gene and one topology (input-space branch and bound, or the
  output-space search for parity topologies); ``method="exhaustive"`` evaluates every admissible tuple with the
  same compiled scorer.
* :func:`exhaustive_reference` -- the test oracle: every admissible input tuple in numpy, scored by
  :func:`score`.
* :func:`optimal_output` -- ``yopt``, the best threshold split of the sorted expression (A1.3) and ``fopt``.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np

from qtlhpc.methods.cal import search_kernels as sk
from qtlhpc.methods.cal.topology import SCORES, TSTATS, Topology, table_value  # noqa: F401  (re-exported)

METHODS = ("exact", "exhaustive")
MAX_STRAINS = 64
#: Parity topologies with more admissible tuples than this use the output-space search; fewer are enumerated.
PARITY_OUTPUT_SPACE_MIN_TUPLES = 200_000
PARITY_SEED_TUPLES = 20_000


# ---------------------------------------------------------------------------------------------------- score
def score(g, y, *, eta: int = 3, tstat: str = "welch", score: str = "signed") -> np.ndarray:
    """Association score of expression ``g (T,)`` split by outputs ``y (..., T)`` (bool); returns ``(...)``.

    Reference implementation (two-pass means and sums of squares, no tables).
    """
    g = np.asarray(g, dtype=float)
    y = np.asarray(y, dtype=bool)
    n = g.shape[0]
    n1 = y.sum(axis=-1)
    n0 = n - n1
    with np.errstate(divide="ignore", invalid="ignore"):
        m1 = np.where(y, g, 0.0).sum(axis=-1) / n1
        m0 = np.where(~y, g, 0.0).sum(axis=-1) / n0
        ss1 = np.where(y, (g - m1[..., None]) ** 2, 0.0).sum(axis=-1)
        ss0 = np.where(~y, (g - m0[..., None]) ** 2, 0.0).sum(axis=-1)
        if tstat == "student":
            den2 = (ss1 + ss0) / (n - 2) * (1.0 / n1 + 1.0 / n0)
        else:
            den2 = ss1 / (n1 * (n1 - 1.0)) + ss0 / (n0 * (n0 - 1.0))
        d = m1 - m0
        t = d / np.sqrt(den2)
        t = np.where(den2 > 0, t, np.where(d > 0, np.inf, np.where(d < 0, -np.inf, 0.0)))
    if score == "abs":
        t = np.abs(t)
    return np.where((n1 >= eta) & (n0 >= eta), t, 0.0)


def optimal_output(g, *, eta: int = 3, tstat: str = "welch", score_kind: str = "signed") -> Tuple[np.ndarray, float]:
    """``(yopt (T,) bool, fopt)``: the best threshold split (y = 1 for the k largest values, eta <= k <= T - eta;
    under ``abs`` also the k smallest).  The tolerance filter's statistic (A2.1 step 4)."""
    g = np.asarray(g, dtype=float)
    n = g.shape[0]
    order = np.argsort(-g, kind="stable")
    candidates = []
    for k in range(eta, n - eta + 1):
        y = np.zeros(n, dtype=bool)
        y[order[:k]] = True
        candidates.append(y)
        if score_kind == "abs":
            candidates.append(~y)
    if not candidates:
        return np.zeros(n, dtype=bool), 0.0
    ys = np.array(candidates)
    f = score(g, ys, eta=eta, tstat=tstat, score=score_kind)
    best = int(np.argmax(f))
    return ys[best], float(f[best])


# ------------------------------------------------------------------------------------------------ bit words
def pack_columns(matrix) -> np.ndarray:
    """Binary matrix ``(T, L)`` (0/1 or bool) -> ``(L,) uint64``, bit ``tau`` = row ``tau``."""
    m = np.asarray(matrix).astype(bool)
    n = m.shape[0]
    assert n <= MAX_STRAINS, "at most 64 strains"
    weights = np.left_shift(np.uint64(1), np.arange(n, dtype=np.uint64))
    return (m.astype(np.uint64) * weights[:, None]).sum(axis=0, dtype=np.uint64)


def unpack_word(word, n: int) -> np.ndarray:
    """A T-bit word -> ``(T,) bool``."""
    w = int(word)
    return np.array([(w >> t) & 1 for t in range(n)], dtype=bool)


def full_mask(n: int) -> np.uint64:
    return np.uint64((1 << n) - 1) if n < 64 else np.uint64(0xFFFFFFFFFFFFFFFF)


@dataclass
class GeneTables:
    """Per-gene inputs of the compiled search (``values`` = centred expression)."""

    n: int
    lut_s: np.ndarray
    lut_q: np.ndarray
    lut_n: np.ndarray
    values: np.ndarray
    order: np.ndarray
    neg_values: np.ndarray
    neg_order: np.ndarray
    total: float
    total_sq: float
    sst: float
    mwin: np.ndarray

    def score_args(self):
        return (self.lut_s, self.lut_q, self.lut_n, self.total, self.total_sq, self.n)


_BYTE_BITS = ((np.arange(256)[:, None] >> np.arange(8)[None, :]) & 1).astype(float)


def gene_tables(g) -> GeneTables:
    """Byte look-up tables (sum, sum of squares, count over the set bits of each byte of an output), the
    strains by decreasing value, and ``mwin[k]`` = the smallest within-group sum of squares of k strains (a
    window of the sorted values)."""
    g = np.asarray(g, dtype=float)
    n = g.shape[0]
    assert 3 <= n <= MAX_STRAINS
    values = g - g.mean()
    chunks = (n + 7) // 8
    padded = np.zeros(chunks * 8)
    padded[:n] = values
    valid = np.zeros(chunks * 8)
    valid[:n] = 1.0
    lut_s = np.empty((chunks, 256))
    lut_q = np.empty((chunks, 256))
    lut_n = np.empty((chunks, 256), dtype=np.int64)
    for c in range(chunks):
        part = slice(8 * c, 8 * c + 8)
        lut_s[c] = _BYTE_BITS @ padded[part]
        lut_q[c] = _BYTE_BITS @ padded[part] ** 2
        lut_n[c] = np.rint(_BYTE_BITS @ valid[part]).astype(np.int64)
    order = np.argsort(-values, kind="stable").astype(np.int64)
    neg_order = np.argsort(values, kind="stable").astype(np.int64)
    sorted_values = values[order]
    mwin = np.zeros(n + 1)
    for k in range(2, n + 1):
        windows = np.lib.stride_tricks.sliding_window_view(sorted_values, k)
        mwin[k] = float(np.min(((windows - windows.mean(axis=1, keepdims=True)) ** 2).sum(axis=1)))
    # a hair below, so rounding never makes the bound too tight
    mwin = np.maximum(mwin * (1 - 1e-9) - 1e-12 * float((values ** 2).sum()), 0.0)
    return GeneTables(n=n, lut_s=lut_s, lut_q=lut_q, lut_n=lut_n, values=values, order=order,
                      neg_values=-values, neg_order=neg_order, total=float(values.sum()),
                      total_sq=float((values ** 2).sum()), sst=float(((values - values.mean()) ** 2).sum()),
                      mwin=mwin)


def score_words(g_or_tables, words, *, eta: int = 3, tstat: str = "welch", score_kind: str = "signed"):
    """Compiled scores of T-bit outputs ``words (k,) uint64``."""
    tables = g_or_tables if isinstance(g_or_tables, GeneTables) else gene_tables(g_or_tables)
    return sk.score_words(np.asarray(words, dtype=np.uint64), *tables.score_args(), int(eta),
                          tstat == "student", score_kind == "abs")


def upper_bound(tables: GeneTables, forced1: int, forced0: int, *, eta: int = 3, tstat: str = "welch",
                score_kind: str = "signed", cutoff: float = -np.inf) -> float:
    """Upper bound on the score of every output with the strains of ``forced1`` (a word) in group 1 and
    those of ``forced0`` in group 0 (``cutoff``: the search's pruning level, see ``search_kernels.upper_bound``)."""
    return float(sk.upper_bound(np.uint64(forced1), np.uint64(forced0), tables.values, tables.order,
                                tables.neg_values, tables.neg_order, tables.total, tables.sst, tables.mwin,
                                np.empty((6, tables.n + 1)), tables.n, int(eta), tstat == "student", score_kind == "abs",
                                float(cutoff)))


# ------------------------------------------------------------------------------------------- search plans
@dataclass(frozen=True)
class SearchPlan:
    """How the compiled search walks one topology: the slot order and forced-output tables."""

    n_inputs: int
    first: int
    second: int
    free_slot: int
    const1: np.ndarray
    out0: np.ndarray
    out1: np.ndarray
    less: np.ndarray
    parity: bool
    polarity: int
    symmetric: bool = False   # search_symmetric applies: all inputs interchangeable, or second and free slot


def _restricted_constant(table: int, n_inputs: int, fixed: dict) -> int:
    """Output if constant over the slots not in ``fixed`` (slot -> value), else -1."""
    values = set()
    for row in range(1 << n_inputs):
        if all(((row >> s) & 1) == v for s, v in fixed.items()):
            values.add(table_value(table, row))
    return values.pop() if len(values) == 1 else -1


def search_plan(top: Topology) -> SearchPlan:
    n = top.n_inputs
    table = top.table
    less = np.zeros((3, 3), dtype=np.bool_)
    for s, t in top.less_than:
        less[s, t] = True
    const1 = np.full(2, -1, dtype=np.int64)
    out0 = np.zeros((2, 2), dtype=np.int64)
    out1 = np.zeros((2, 2), dtype=np.int64)
    if n == 1:
        out0[0, 0] = table_value(table, 0)
        out1[0, 0] = table_value(table, 1)
        return SearchPlan(1, 0, 0, 0, const1, out0, out1, less, False, 0)

    def forced_rows(free: int) -> int:
        return sum(_restricted_constant(table, n, {s: (r >> s) & 1 for s in range(n) if s != free}) >= 0
                   for r in range(1 << n) if not (r >> free) & 1)

    free_slot = max(range(n), key=lambda s: (forced_rows(s), -s))
    others = [s for s in range(n) if s != free_slot]
    symmetric = len(top.blocks) == 1
    if n == 3:
        forcing = {s: sum(_restricted_constant(table, n, {s: v}) >= 0 for v in (0, 1)) for s in range(n)}
        pair = [b for b in top.blocks if len(b) == 2]
        single = [b[0] for b in top.blocks if len(b) == 1]
        if pair and forcing[single[0]] >= max(forcing.values()):
            # the lone slot first, the interchangeable pair second and free (search_symmetric)
            first, (second, free_slot) = single[0], pair[0]
            symmetric = True
        else:
            first = max(others, key=lambda s: (forcing[s], -s))
            second = [s for s in others if s != first][0]
        for v in (0, 1):
            const1[v] = _restricted_constant(table, n, {first: v})
        for v in (0, 1):
            for u in (0, 1):
                base = (v << first) | (u << second)
                out0[v, u] = table_value(table, base)
                out1[v, u] = table_value(table, base | (1 << free_slot))
    else:
        first, second = others[0], others[0]
        for v in (0, 1):
            out0[v, 0] = table_value(table, v << first)
            out1[v, 0] = table_value(table, (v << first) | (1 << free_slot))
    parity = top.parity
    return SearchPlan(n, first, second, free_slot, const1, out0, out1, less, parity, table_value(table, 0),
                      symmetric and not parity)


def n_admissible(top: Topology, n_cols: int) -> int:
    """Number of admissible input tuples (distinct columns, one per orbit of the topology's symmetries)."""
    from math import comb

    total = 1
    remaining = n_cols
    for block in top.blocks:
        total *= comb(remaining, len(block)) if remaining >= len(block) else 0
        remaining -= len(block)
    return total if n_cols >= top.n_inputs else 0


# ----------------------------------------------------------------------------------------------- the search
@dataclass(frozen=True)
class SearchResult:
    """Best network of one topology for one gene: ``inputs`` column per slot (-1: unused, or none found
    with score >= the tolerance, then ``censored``), ``output`` the T-bit word, ``nodes`` bounds and leaves
    evaluated."""

    score: float
    inputs: Tuple[int, int, int]
    output: int
    nodes: int
    censored: bool


class LocusWords:
    """Gene-independent structures of one locus matrix: the column words and, for parity topologies, the
    sorted pair-xor table."""

    def __init__(self, matrix=None, *, words=None, n_strains: Optional[int] = None):
        if words is None:
            m = np.asarray(matrix)
            self.n = m.shape[0]
            self.words = pack_columns(m)
        else:
            self.words = np.asarray(words, dtype=np.uint64)
            self.n = int(n_strains)
        self.full = full_mask(self.n)
        self._pairs = None

    @property
    def n_cols(self) -> int:
        return self.words.shape[0]

    def pair_table(self, n_inputs: int):
        if n_inputs == 2:
            order = np.argsort(self.words, kind="stable")
            return self.words[order], order.astype(np.int64), order.astype(np.int64)
        if self._pairs is None:
            a, b = np.triu_indices(self.n_cols, 1)
            keys = self.words[a] ^ self.words[b]
            order = np.argsort(keys, kind="stable")
            self._pairs = (keys[order], a[order].astype(np.int64), b[order].astype(np.int64))
        return self._pairs


def _parity_seed(words: LocusWords, plan: SearchPlan, tables: GeneTables, eta, student, absolute):
    rng = np.random.default_rng(20100612)  # fixed: the seed only speeds the search up, never changes its result
    n_cols = words.n_cols
    k = PARITY_SEED_TUPLES
    raw = rng.integers(0, n_cols, size=(k * 2, plan.n_inputs))
    raw.sort(axis=1)
    distinct = np.all(np.diff(raw, axis=1) > 0, axis=1)
    tuples = raw[distinct][:k]
    if tuples.shape[1] < 3:
        tuples = np.hstack([tuples, np.full((tuples.shape[0], 3 - tuples.shape[1]), -1)])
    return sk.best_of_tuples(np.ascontiguousarray(tuples, dtype=np.int64), words.words, plan.n_inputs,
                             plan.polarity, words.full, tables.lut_s, tables.lut_q, tables.lut_n, tables.total,
                             tables.total_sq, tables.n, eta, student, absolute)


def search(tables: GeneTables, words: LocusWords, top: Topology, *, eta: int = 3, tstat: str = "welch",
           score_kind: str = "signed", tolerance: float = -np.inf, method: str = "exact",
           plan: Optional[SearchPlan] = None) -> SearchResult:
    """The best network of topology ``top`` for one gene (A2.4): the highest score over every admissible input
    tuple, ties to the smallest tuple; ``censored`` when no tuple reaches ``tolerance``."""
    assert tables.n == words.n
    plan = plan or search_plan(top)
    student = tstat == "student"
    absolute = score_kind == "abs"
    theta = float(tolerance)
    if words.n_cols < top.n_inputs:
        return SearchResult(theta, (-1, -1, -1), 0, 0, True)
    if (plan.parity and method == "exact" and plan.n_inputs == 3
            and n_admissible(top, words.n_cols) > PARITY_OUTPUT_SPACE_MIN_TUPLES):
        keys, pa, pb = words.pair_table(plan.n_inputs)
        seed_score, seed_tuple = _parity_seed(words, plan, tables, eta, student, absolute)
        median = np.median(tables.values)
        sample_order = np.argsort(-np.abs(tables.values - median), kind="stable").astype(np.int64)
        preferred = (tables.values[sample_order] > median).astype(np.int64)
        best, bt, by, nodes = sk.search_parity(
            words.words, plan.n_inputs, plan.polarity, keys, pa, pb, words.full, tables.lut_s, tables.lut_q,
            tables.lut_n, tables.values, tables.order, tables.neg_values, tables.neg_order, tables.total,
            tables.total_sq, tables.sst, tables.mwin, tables.n, int(eta), student, absolute, theta,
            sample_order, preferred, float(seed_score), np.asarray(seed_tuple, dtype=np.int64))
    elif method == "exact" and plan.symmetric:
        best, bt, by, nodes = sk.search_symmetric(
            words.words, plan.n_inputs, plan.const1, plan.out0, plan.out1, words.full, tables.lut_s, tables.lut_q,
            tables.lut_n, tables.values, tables.order, tables.neg_values, tables.neg_order, tables.total,
            tables.total_sq, tables.sst, tables.mwin, tables.n, int(eta), student, absolute, theta,
            len(top.blocks) == 1, plan.first, plan.second, plan.free_slot)
    else:
        best, bt, by, nodes = sk.search_e1(
            words.words, plan.n_inputs, plan.first, plan.second, plan.free_slot, plan.const1, plan.out0,
            plan.out1, plan.less, words.full, tables.lut_s, tables.lut_q, tables.lut_n, tables.values,
            tables.order, tables.neg_values, tables.neg_order, tables.total, tables.total_sq, tables.sst,
            tables.mwin, tables.n, int(eta), student, absolute, theta, method != "exhaustive")
    inputs = tuple(int(x) for x in bt)
    censored = inputs[0] < 0
    return SearchResult(float(best) if not censored else theta, inputs, int(by) if not censored else 0,
                        int(nodes), censored)


# ------------------------------------------------------------------------------------------------ the oracle
def admissible_tuples(top: Topology, n_cols: int, first: Optional[int] = None) -> np.ndarray:
    """Every admissible input tuple ``(k, n_inputs)`` (optionally only those with slot 0 = ``first``)."""
    n = top.n_inputs
    grids = [np.arange(n_cols) if (first is None or s > 0) else np.array([first]) for s in range(n)]
    mesh = np.array(np.meshgrid(*grids, indexing="ij")).reshape(n, -1).T
    keep = np.ones(mesh.shape[0], dtype=bool)
    for s, t in itertools.combinations(range(n), 2):
        keep &= mesh[:, s] != mesh[:, t]
    for s, t in top.less_than:
        keep &= mesh[:, s] < mesh[:, t]
    return mesh[keep]


def exhaustive_reference(g, matrix, top: Topology, *, eta: int = 3, tstat: str = "welch",
                         score_kind: str = "signed", rtol: float = 1e-9):
    """The oracle: score every admissible tuple in numpy (:func:`score`).

    Returns ``(best score, the sorted list of tuples scoring within rtol of it, best tuple by the tie rule)``.
    """
    g = np.asarray(g, dtype=float)
    m = np.asarray(matrix).astype(bool)
    n_cols = m.shape[1]
    scores, tuples = [], []
    for first in range(n_cols):
        tup = admissible_tuples(top, n_cols, first)
        if tup.shape[0] == 0:
            continue
        y = top.output([m[:, tup[:, s]].T for s in range(top.n_inputs)])
        scores.append(score(g, y, eta=eta, tstat=tstat, score=score_kind))
        tuples.append(tup)
    scores = np.concatenate(scores)
    tuples = np.concatenate(tuples)
    best = float(scores.max())
    close = np.abs(scores - best) <= rtol * max(1.0, abs(best))
    near = sorted(tuple(int(x) for x in t) for t in tuples[close])
    exact_best = scores == best
    winner = min(tuple(int(x) for x in t) for t in tuples[exact_best])
    return best, near, winner
