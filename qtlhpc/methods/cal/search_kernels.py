"""Compiled loops of the CAL search (:mod:`qtlhpc.methods.cal.kernels` prepares their inputs).

Outputs are T-bit words (``uint64``, bit ``tau`` = strain ``tau``, T <= 64); a column of the locus matrix is one
word.  Group sums of a gene over the set bits of an output come from byte look-up tables: ``lut_s[c, b]``,
``lut_q[c, b]``, ``lut_n[c, b]`` are the sum, sum of squares and count of the (centred) expression values over
the set bits ``b`` of byte ``c``, so a score costs ``3 ceil(T / 8)`` table reads.

* :func:`score_word` -- the association score of the spec (A1.2): signed Welch t (or Student's t, or |t|), 0
  when a group has fewer than ``eta`` strains.
* :func:`upper_bound` -- an upper bound on the score of every output that has the strains of ``f1`` in group 1
  and those of ``f0`` in group 0 (A2.4): for each admissible group-1 size the largest difference of means
  (group 1 takes the largest free values) and the smallest denominator compatible with it.
* :func:`search_e1` -- input-space branch and bound: fix the inputs of the topology one slot at a time (the
  forced outputs give the bound), visit children in decreasing bound, prune below the incumbent; the last slot
  is evaluated for all columns at once.  ``prune=False`` turns it into the exhaustive search over the same
  tuples (the "own exhaustive" of the benchmarks).
* :func:`search_symmetric` -- the same for topologies whose inputs (or two of three) are interchangeable: a
  network is a set of columns, bounded by each member's bound; sets are enumerated at their member of largest
  bound, and loops stop at the first bound below the incumbent.
* :func:`search_parity` -- output-space search for ``A^B^C`` (and its complement), where fixing inputs forces
  nothing: depth-first over the strains' output bits with the same bound, and at a complete output a test of
  realisability through the sorted pair-xor table.

Ties: the larger score wins, then the lexicographically smaller input tuple (in slot order).  Pruning keeps
every branch whose bound is not below the incumbent by more than a relative 1e-9, so tied solutions are seen.
"""

from __future__ import annotations

import numba
import numpy as np

U64 = np.uint64
SLACK = 1e-9


@numba.njit(cache=True, inline="always")
def _sums(y, lut_s, lut_q, lut_n):
    s1 = 0.0
    q1 = 0.0
    n1 = 0
    for c in range(lut_s.shape[0]):
        b = np.int64((y >> U64(8 * c)) & U64(255))
        s1 += lut_s[c, b]
        q1 += lut_q[c, b]
        n1 += lut_n[c, b]
    return s1, q1, n1


@numba.njit(cache=True, inline="always")
def t_from_sums(s1, q1, n1, total, total_sq, n, eta, student, absolute):
    """The score from the sums of group 1 and of all strains (A1.2)."""
    n0 = n - n1
    if n1 < eta or n0 < eta:
        return 0.0
    m1 = s1 / n1
    s0 = total - s1
    m0 = s0 / n0
    ss1 = q1 - s1 * m1
    ss0 = (total_sq - q1) - s0 * m0
    if ss1 < 0.0:
        ss1 = 0.0
    if ss0 < 0.0:
        ss0 = 0.0
    if student:
        den2 = (ss1 + ss0) / (n - 2) * (1.0 / n1 + 1.0 / n0)
    else:
        den2 = ss1 / (n1 * (n1 - 1.0)) + ss0 / (n0 * (n0 - 1.0))
    d = m1 - m0
    if den2 <= 0.0:
        if d == 0.0:
            return 0.0
        if absolute or d > 0.0:
            return np.inf
        return -np.inf
    t = d / np.sqrt(den2)
    if absolute and t < 0.0:
        return -t
    return t


@numba.njit(cache=True, inline="always")
def score_word(y, lut_s, lut_q, lut_n, total, total_sq, n, eta, student, absolute):
    s1, q1, n1 = _sums(y, lut_s, lut_q, lut_n)
    return t_from_sums(s1, q1, n1, total, total_sq, n, eta, student, absolute)


@numba.njit(cache=True)
def score_words(words, lut_s, lut_q, lut_n, total, total_sq, n, eta, student, absolute):
    """Scores of many outputs ``words (k,)``."""
    out = np.empty(words.shape[0])
    for i in range(words.shape[0]):
        out[i] = score_word(words[i], lut_s, lut_q, lut_n, total, total_sq, n, eta, student, absolute)
    return out


@numba.njit(cache=True, inline="always")
def _min_window_ss(ps, pq, count, k, scale):
    """Smallest within-group sum of squares of ``k`` of ``count`` values sorted in order, from their prefix sums
    (the best k-subset is a run of consecutive sorted values); a hair below (relative 1e-9, and 1e-12 of
    ``scale``, the total sum of squares), for rounding."""
    if k <= 1:
        return 0.0
    best = np.inf
    for i in range(count - k + 1):
        s = ps[i + k] - ps[i]
        v = (pq[i + k] - pq[i]) - s * s / k
        if v < best:
            best = v
    best = best * (1.0 - 1e-9) - 1e-12 * scale
    if best < 0.0:
        best = 0.0
    return best


@numba.njit(cache=True, inline="always")
def _signed_bound(f1, f0, values, order, total, sst, mwin, work, n, eta, student, row, cutoff):
    free = ~(f1 | f0)
    s1 = 0.0
    k1 = 0
    k0 = 0
    # prefix sums of the values that group 1 (forced 1 or free) and group 0 (forced 0 or free) can hold, in
    # decreasing order: their windows bound each group's within sum of squares
    # (built when first needed: a Welch bound below the cutoff never needs them)
    c1 = 0
    c0 = 0
    built = False
    for pos in range(n):
        tau = order[pos]
        bit = U64(1) << U64(tau)
        if f1 & bit:
            s1 += values[tau]
            k1 += 1
        elif f0 & bit:
            k0 += 1
    lo = max(eta, k1)
    hi = min(n - eta, n - k0)
    best = 0.0  # a completion with a group below eta scores 0
    for k in range(n + 1):   # work[row, n1]: the bound of the completions with n1 strains in group 1
        work[row, k] = 0.0
    if lo > hi:
        return best
    n1 = k1
    pos = 0
    while True:
        if n1 >= lo:
            n0 = n - n1
            d = s1 / n1 - (total - s1) / n0
            if d > 0.0:
                ssw = sst - (n1 * n0 / n) * d * d
                if ssw < 1e-12 * sst:   # rounding: a perfect split has ssw = 0 (and an infinite score)
                    ssw = 0.0
                if student:
                    den2 = ssw / (n - 2) * (1.0 / n1 + 1.0 / n0)
                else:
                    w1 = 1.0 / (n1 * (n1 - 1.0))
                    w0 = 1.0 / (n0 * (n0 - 1.0))
                    # first with the windows of all strains (cheap); below the cutoff it is pruned anyway
                    den2 = min(w0, w1) * ssw + abs(w1 - w0) * mwin[n1 if n1 <= n0 else n0]
                    other = w1 * mwin[n1] + w0 * mwin[n0]
                    if other > den2:
                        den2 = other
                    if den2 > 0.0 and d / np.sqrt(den2) < cutoff:
                        b = d / np.sqrt(den2)
                        work[row, n1] = b
                        if b > best:
                            best = b
                        if n1 >= hi:
                            break
                        while pos < n and not (free & (U64(1) << U64(order[pos]))):
                            pos += 1
                        if pos >= n:
                            break
                        s1 += values[order[pos]]
                        pos += 1
                        n1 += 1
                        continue
                    if not built:
                        built = True
                        work[0, 0] = 0.0
                        work[1, 0] = 0.0
                        work[2, 0] = 0.0
                        work[3, 0] = 0.0
                        for p2 in range(n):
                            tau = order[p2]
                            bit = U64(1) << U64(tau)
                            v = values[tau]
                            if not (f0 & bit):
                                work[0, c1 + 1] = work[0, c1] + v
                                work[1, c1 + 1] = work[1, c1] + v * v
                                c1 += 1
                            if not (f1 & bit):
                                work[2, c0 + 1] = work[2, c0] + v
                                work[3, c0 + 1] = work[3, c0] + v * v
                                c0 += 1
                    if n1 <= n0:   # group 1 is the smaller: its weight is the larger
                        a = _min_window_ss(work[0], work[1], c1, n1, sst)
                        b = mwin[n0]
                        small = a
                    else:
                        a = mwin[n1]
                        b = _min_window_ss(work[2], work[3], c0, n0, sst)
                        small = b
                    den2 = min(w0, w1) * ssw + abs(w1 - w0) * small
                    other = w1 * a + w0 * b
                    if other > den2:
                        den2 = other
                if den2 <= 0.0:
                    return np.inf
                b = d / np.sqrt(den2)
                work[row, n1] = b
                if b > best:
                    best = b
        if n1 >= hi:
            break
        # next free strain in decreasing value
        while pos < n and not (free & (U64(1) << U64(order[pos]))):
            pos += 1
        if pos >= n:
            break
        s1 += values[order[pos]]
        pos += 1
        n1 += 1
    return best


@numba.njit(cache=True, inline="always")
def upper_bound(f1, f0, values, order, neg_values, neg_order, total, sst, mwin, work, n, eta, student, absolute,
                cutoff):
    """Upper bound on the score of every output with ``f1`` in group 1 and ``f0`` in group 0.

    ``values (n,)`` centred expression, ``order`` its strains by decreasing value, ``neg_*`` the same for the
    negated values (used by ``absolute``), ``sst`` the total sum of squares, ``mwin (n + 1,)`` the smallest
    within-group sum of squares of a group of k strains, ``work (6, n + 1)`` scratch space; on return
    ``work[4, n1]`` is the bound of the completions with ``n1`` strains in group 1.  Welch: a group size whose
    bound with the windows of all strains is below ``cutoff`` keeps that bound (valid, and pruned anyway) instead
    of the tighter windows of the strains its groups can hold (``-inf``: always the tighter one).
    """
    b = _signed_bound(f1, f0, values, order, total, sst, mwin, work, n, eta, student, 4, cutoff)
    if absolute:
        b2 = _signed_bound(f1, f0, neg_values, neg_order, -total, sst, mwin, work, n, eta, student, 5, cutoff)
        for k in range(n + 1):
            if work[5, k] > work[4, k]:
                work[4, k] = work[5, k]
        if b2 > b:
            b = b2
    return b


@numba.njit(cache=True, inline="always")
def _classify(m, o0, o1, f1, f0, cp, ng):
    """Add the strains of word ``m`` to the mask their output falls in once every input but the last is set:
    ``f1`` fixed at 1, ``f0`` fixed at 0, ``cp`` a copy of the last input, ``ng`` its negation (``o0``, ``o1``:
    the output with the last input 0 and 1)."""
    if o0 == o1:
        if o0 == 1:
            f1 |= m
        else:
            f0 |= m
    elif o1 == 1:
        cp |= m
    else:
        ng |= m
    return f1, f0, cp, ng


@numba.njit(cache=True, inline="always")
def _pair_masks(ci, cj, full, out0, out1):
    """:func:`_classify` over the four genotype combinations of two chosen inputs ``ci``, ``cj``."""
    f1 = f0 = cp = ng = U64(0)
    for v in range(2):
        mi = ci if v == 1 else (~ci) & full
        for u in range(2):
            f1, f0, cp, ng = _classify(mi & (cj if u == 1 else (~cj) & full), out0[v, u], out1[v, u],
                                       f1, f0, cp, ng)
    return f1, f0, cp, ng


@numba.njit(cache=True, inline="always")
def _tuple_less(a0, a1, a2, b0, b1, b2):
    if a0 != b0:
        return a0 < b0
    if a1 != b1:
        return a1 < b1
    return a2 < b2


@numba.njit(cache=True, inline="always")
def _threshold(best):
    return best - SLACK * abs(best) - 1e-12


@numba.njit(cache=True)
def search_e1(cols, n_inputs, first, second, free_slot, const1, out0, out1, less, full,
              lut_s, lut_q, lut_n, values, order, neg_values, neg_order, total, total_sq, sst, mwin,
              n, eta, student, absolute, theta, prune):
    """Input-space branch and bound over the input tuples of one topology.

    ``cols (L,) uint64`` the locus columns; slots are fixed in the order ``first``, ``second`` (3 inputs only),
    and ``free_slot`` is evaluated for all columns.  ``const1 (2,)``: the output forced when the first slot is
    0/1 (-1: none; 3 inputs only).  ``out0``/``out1 (2, 2)``: the output when the free slot is 0/1, indexed by
    the value of ``first`` and ``second`` (for 2 inputs, row 0 only indexed by ``first``).  ``less (3, 3)``:
    ``less[s, t]`` asks column(s) < column(t).  ``theta``: only scores >= theta are returned (tolerance).

    Returns ``(score, inputs (3,) in slot order (-1 unused or none found), output word, nodes)``.
    """
    n_cols = cols.shape[0]
    work = np.empty((6, n + 1))
    best = theta
    found = False
    bt = np.full(3, -1, dtype=np.int64)
    by = U64(0)
    nodes = 0
    t = np.full(3, -1, dtype=np.int64)
    if n_inputs == 1:
        for i in range(n_cols):
            c = cols[i]
            y = U64(0)
            if out1[0, 0] == 1:
                y |= c
            if out0[0, 0] == 1:
                y |= (~c) & full
            f = score_word(y, lut_s, lut_q, lut_n, total, total_sq, n, eta, student, absolute)
            nodes += 1
            if f > best or (f == best and (not found or i < bt[0])):
                best = f
                found = True
                bt[0] = i
                by = y
        return best, bt, by, nodes

    if n_inputs == 2:
        ub = np.empty(n_cols)
        m1s = np.empty(n_cols, dtype=np.uint64)
        cps = np.empty(n_cols, dtype=np.uint64)
        ngs = np.empty(n_cols, dtype=np.uint64)
        for i in range(n_cols):
            c = cols[i]
            f1 = f0 = cp = ng = U64(0)
            for v in range(2):
                f1, f0, cp, ng = _classify(c if v == 1 else (~c) & full, out0[v, 0], out1[v, 0], f1, f0, cp, ng)
            m1s[i] = f1
            cps[i] = cp
            ngs[i] = ng
            if prune:
                ub[i] = upper_bound(f1, f0, values, order, neg_values, neg_order, total, sst, mwin, work, n, eta,
                                    student, absolute, _threshold(best))
            else:
                ub[i] = np.inf
            nodes += 1
        ord1 = np.argsort(-ub, kind="mergesort")
        for oi in range(n_cols):
            i = ord1[oi]
            if prune and ub[i] < _threshold(best):
                break
            f1 = m1s[i]
            cp = cps[i]
            ng = ngs[i]
            for j in range(n_cols):
                if j == i:
                    continue
                if less[first, free_slot] and not i < j:
                    continue
                if less[free_slot, first] and not j < i:
                    continue
                c = cols[j]
                y = f1 | (cp & c) | (ng & ~c)
                f = score_word(y, lut_s, lut_q, lut_n, total, total_sq, n, eta, student, absolute)
                nodes += 1
                t[first] = i
                t[free_slot] = j
                if f > best or (f == best and (not found or _tuple_less(t[0], t[1], t[2], bt[0], bt[1], bt[2]))):
                    best = f
                    found = True
                    bt[0] = t[0]
                    bt[1] = t[1]
                    by = y
        return best, bt, by, nodes

    # three inputs
    ub1 = np.empty(n_cols)
    for i in range(n_cols):
        c = cols[i]
        f1 = U64(0)
        f0 = U64(0)
        for v in range(2):
            m = c if v == 1 else (~c) & full
            if const1[v] == 1:
                f1 |= m
            elif const1[v] == 0:
                f0 |= m
        if prune:
            ub1[i] = upper_bound(f1, f0, values, order, neg_values, neg_order, total, sst, mwin, work, n, eta,
                                 student, absolute, _threshold(best))
        else:
            ub1[i] = np.inf
        nodes += 1
    ord1 = np.argsort(-ub1, kind="mergesort")
    ub2 = np.empty(n_cols)
    ubn = np.full((n_cols, n + 1), np.inf)
    m1s = np.empty(n_cols, dtype=np.uint64)
    cps = np.empty(n_cols, dtype=np.uint64)
    ngs = np.empty(n_cols, dtype=np.uint64)
    lf = less[first, second]
    ls = less[second, first]
    for oi in range(n_cols):
        i = ord1[oi]
        if prune and ub1[i] < _threshold(best):
            break
        ci = cols[i]
        for j in range(n_cols):
            ub2[j] = -np.inf
            if j == i:
                continue
            if lf and not i < j:
                continue
            if ls and not j < i:
                continue
            cj = cols[j]
            f1, f0, cp, ng = _pair_masks(ci, cj, full, out0, out1)
            m1s[j] = f1
            cps[j] = cp
            ngs[j] = ng
            if prune:
                ub2[j] = upper_bound(f1, f0, values, order, neg_values, neg_order, total, sst, mwin, work, n, eta,
                                     student, absolute, _threshold(best))
                for q in range(n + 1):
                    ubn[j, q] = work[4, q]
            else:
                ub2[j] = np.inf
            nodes += 1
        ord2 = np.argsort(-ub2, kind="mergesort")
        for oj in range(n_cols):
            j = ord2[oj]
            if ub2[j] == -np.inf:
                break
            if prune and ub2[j] < _threshold(best):
                break
            f1 = m1s[j]
            cp = cps[j]
            ng = ngs[j]
            t[first] = i
            t[second] = j
            for k in range(n_cols):
                if k == i or k == j:
                    continue
                if less[first, free_slot] and not i < k:
                    continue
                if less[free_slot, first] and not k < i:
                    continue
                if less[second, free_slot] and not j < k:
                    continue
                if less[free_slot, second] and not k < j:
                    continue
                c = cols[k]
                y = f1 | (cp & c) | (ng & ~c)
                nodes += 1
                if prune:   # the bound of the pair for this group size first: 1 table read per byte
                    k1 = 0
                    for ch in range(lut_n.shape[0]):
                        k1 += lut_n[ch, np.int64((y >> U64(8 * ch)) & U64(255))]
                    if ubn[j, k1] < _threshold(best):
                        continue
                f = score_word(y, lut_s, lut_q, lut_n, total, total_sq, n, eta, student, absolute)
                if f >= best:
                    t[free_slot] = k
                    if f > best or not found or _tuple_less(t[0], t[1], t[2], bt[0], bt[1], bt[2]):
                        best = f
                        found = True
                        bt[0] = t[0]
                        bt[1] = t[1]
                        bt[2] = t[2]
                        by = y
    if not found:
        bt[:] = -1
    return best, bt, by, nodes


@numba.njit(cache=True)
def _realise_parity(z, cols, keys, pa, pb, n_inputs):
    """Smallest sorted input tuple with ``xor of its columns == z`` (-1s if none).

    ``keys`` sorted: for 3 inputs the pair xors ``cols[a] ^ cols[b]`` (a < b, their pairs in ``pa``, ``pb``);
    for 2 inputs the columns themselves (``pa`` their indices).
    """
    b0 = -1
    b1 = -1
    b2 = -1
    n_cols = cols.shape[0]
    for c in range(n_cols):
        w = z ^ cols[c]
        idx = np.searchsorted(keys, w)
        while idx < keys.shape[0] and keys[idx] == w:
            if n_inputs == 2:
                a = pa[idx]
                if a != c:
                    x0 = min(a, c)
                    x1 = max(a, c)
                    if b0 < 0 or _tuple_less(x0, x1, -1, b0, b1, -1):
                        b0 = x0
                        b1 = x1
            else:
                a = pa[idx]
                b = pb[idx]
                if a != c and b != c:
                    # a < b already
                    if c < a:
                        x0, x1, x2 = c, a, b
                    elif c < b:
                        x0, x1, x2 = a, c, b
                    else:
                        x0, x1, x2 = a, b, c
                    if b0 < 0 or _tuple_less(x0, x1, x2, b0, b1, b2):
                        b0 = x0
                        b1 = x1
                        b2 = x2
            idx += 1
    return b0, b1, b2


@numba.njit(cache=True)
def search_parity(cols, n_inputs, polarity, keys, pa, pb, full, lut_s, lut_q, lut_n, values, order,
                  neg_values, neg_order, total, total_sq, sst, mwin, n, eta, student, absolute, theta,
                  sample_order, preferred, seed_score, seed_tuple):
    """Output-space search for the parity topologies (``A^B^C`` when ``polarity`` = 0, its complement when 1).

    Depth-first over the strains in ``sample_order``, the ``preferred`` output bit first; a branch is pruned
    when its bound is below the incumbent.  A complete output scoring at least the incumbent is accepted if some
    input tuple realises it (:func:`_realise_parity`).  ``seed_score``/``seed_tuple``: a realisable incumbent
    (e.g. the best of random tuples), or ``-inf``.
    """
    best = max(theta, seed_score)
    found = seed_score >= theta and seed_tuple[0] >= 0
    bt = seed_tuple.copy() if found else np.full(3, -1, dtype=np.int64)
    by = U64(0)
    if found:
        by = U64(0)
        for s in range(n_inputs):
            by ^= cols[bt[s]]
        if polarity == 1:
            by = (~by) & full
    flip = full if polarity == 1 else U64(0)
    work = np.empty((6, n + 1))
    nodes = 0
    f1s = np.zeros(n + 1, dtype=np.uint64)
    f0s = np.zeros(n + 1, dtype=np.uint64)
    stage = np.zeros(n + 1, dtype=np.int64)
    d = 0
    while d >= 0:
        if d == n:
            y = f1s[n]
            f = score_word(y, lut_s, lut_q, lut_n, total, total_sq, n, eta, student, absolute)
            if f >= best:
                x0, x1, x2 = _realise_parity(y ^ flip, cols, keys, pa, pb, n_inputs)
                if x0 >= 0 and (f > best or not found or _tuple_less(x0, x1, x2, bt[0], bt[1], bt[2])):
                    best = f
                    found = True
                    bt[0] = x0
                    bt[1] = x1
                    bt[2] = x2
                    by = y
            d -= 1
            continue
        if stage[d] == 2:
            d -= 1
            continue
        value = preferred[d] if stage[d] == 0 else 1 - preferred[d]
        stage[d] += 1
        bit = U64(1) << U64(sample_order[d])
        f1 = f1s[d]
        f0 = f0s[d]
        if value == 1:
            f1 |= bit
        else:
            f0 |= bit
        nodes += 1
        ub = upper_bound(f1, f0, values, order, neg_values, neg_order, total, sst, mwin, work, n, eta, student,
                         absolute, _threshold(best))
        if ub < _threshold(best):
            continue
        f1s[d + 1] = f1
        f0s[d + 1] = f0
        stage[d + 1] = 0
        d += 1
    if not found:
        bt[:] = -1
    return best, bt, by, nodes


@numba.njit(cache=True)
def best_of_tuples(tuples, cols, n_inputs, polarity, full, lut_s, lut_q, lut_n, total, total_sq, n, eta,
                   student, absolute):
    """Best score (ties: smaller tuple) over given parity tuples ``(k, 3)`` (sorted rows); the seed of
    :func:`search_parity`."""
    best = -np.inf
    bt = np.full(3, -1, dtype=np.int64)
    for r in range(tuples.shape[0]):
        y = U64(0)
        for s in range(n_inputs):
            y ^= cols[tuples[r, s]]
        if polarity == 1:
            y = (~y) & full
        f = score_word(y, lut_s, lut_q, lut_n, total, total_sq, n, eta, student, absolute)
        if f > best or (f == best and _tuple_less(tuples[r, 0], tuples[r, 1], tuples[r, 2], bt[0], bt[1], bt[2])):
            best = f
            bt[0] = tuples[r, 0]
            bt[1] = tuples[r, 1]
            bt[2] = tuples[r, 2]
    return best, bt


@numba.njit(cache=True, inline="always")
def _sorted3(a, b, c):
    if a > b:
        a, b = b, a
    if b > c:
        b, c = c, b
    if a > b:
        a, b = b, a
    return a, b, c


@numba.njit(cache=True)
def search_symmetric(cols, n_inputs, const1, out0, out1, full, lut_s, lut_q, lut_n, values, order, neg_values,
                     neg_order, total, total_sq, sst, mwin, n, eta, student, absolute, theta, all_symmetric,
                     first, second, free_slot):
    """Branch and bound for topologies symmetric in all their inputs (``A&B``, ``A|B|C``, ``~A&~B``...).

    A tuple is a set of columns, and fixing any of its members bounds it, so its score is at most the smallest
    bound of its members.  Columns are visited in decreasing level-1 bound; a set is enumerated at its member
    visited first, with the other members among the columns visited later (three inputs: the second and third
    in decreasing level-2 bound of the pair with the first, the third after the second).  Every loop stops at
    the first bound below the incumbent.  Same arguments and result as :func:`search_e1` (``const1``, ``out0``,
    ``out1`` of the slots ``first``, ``second``, ``free_slot``).

    With ``all_symmetric`` false (three inputs, ``second`` and ``free_slot`` interchangeable, ``first`` not: e.g.
    ``(B&C)|A``), every column is tried in the first slot (in decreasing bound) and the symmetric pair is
    enumerated as above among all other columns; the pair is reported in increasing order of its slots.
    """
    n_cols = cols.shape[0]
    work = np.empty((6, n + 1))
    best = theta
    found = False
    bt = np.full(3, -1, dtype=np.int64)
    by = U64(0)
    nodes = 0
    t = np.full(3, -1, dtype=np.int64)
    ub1 = np.empty(n_cols)
    for i in range(n_cols):
        c = cols[i]
        f1 = U64(0)
        f0 = U64(0)
        for v in range(2):
            m = c if v == 1 else (~c) & full
            if n_inputs == 3:
                if const1[v] == 1:
                    f1 |= m
                elif const1[v] == 0:
                    f0 |= m
            else:
                if out0[v, 0] == out1[v, 0]:
                    if out0[v, 0] == 1:
                        f1 |= m
                    else:
                        f0 |= m
        ub1[i] = upper_bound(f1, f0, values, order, neg_values, neg_order, total, sst, mwin, work, n, eta,
                             student, absolute, _threshold(best))
        nodes += 1
    ord1 = np.argsort(-ub1, kind="mergesort")
    cand = np.empty(n_cols, dtype=np.int64)
    ub2 = np.empty(n_cols)
    m1s = np.empty(n_cols, dtype=np.uint64)
    cps = np.empty(n_cols, dtype=np.uint64)
    ngs = np.empty(n_cols, dtype=np.uint64)
    for oi in range(n_cols):
        i = ord1[oi]
        if ub1[i] < _threshold(best):
            break
        ci = cols[i]
        if n_inputs == 2:
            for oj in range(oi + 1, n_cols):
                j = ord1[oj]
                if ub1[j] < _threshold(best):
                    break
                cj = cols[j]
                y = U64(0)
                for v in range(2):
                    mi = ci if v == 1 else (~ci) & full
                    if out0[v, 0] == 1:
                        y |= mi & ((~cj) & full)
                    if out1[v, 0] == 1:
                        y |= mi & cj
                f = score_word(y, lut_s, lut_q, lut_n, total, total_sq, n, eta, student, absolute)
                nodes += 1
                a = min(i, j)
                b = max(i, j)
                if f > best or (f == best and (not found or _tuple_less(a, b, -1, bt[0], bt[1], -1))):
                    best = f
                    found = True
                    bt[0] = a
                    bt[1] = b
                    by = y
            continue
        # three inputs: the pairs (i, j) with j visited after i (every j != i when only the pair is symmetric),
        # in decreasing level-2 bound
        n_cand = 0
        for oj in range(oi + 1 if all_symmetric else 0, n_cols):
            j = ord1[oj]
            if j == i:
                continue
            if all_symmetric and ub1[j] < _threshold(best):
                break
            cj = cols[j]
            f1, f0, cp, ng = _pair_masks(ci, cj, full, out0, out1)
            m1s[j] = f1
            cps[j] = cp
            ngs[j] = ng
            ub2[j] = upper_bound(f1, f0, values, order, neg_values, neg_order, total, sst, mwin, work, n, eta,
                                 student, absolute, _threshold(best))
            nodes += 1
            cand[n_cand] = j
            n_cand += 1
        if n_cand < 2:
            continue
        keys = np.empty(n_cand)
        for a in range(n_cand):
            keys[a] = -ub2[cand[a]]
        ord2 = np.argsort(keys, kind="mergesort")
        for a in range(n_cand):
            j = cand[ord2[a]]
            if ub2[j] < _threshold(best):
                break
            f1 = m1s[j]
            cp = cps[j]
            ng = ngs[j]
            for b in range(a + 1, n_cand):
                k = cand[ord2[b]]
                if ub2[k] < _threshold(best):   # the pair (i, k) bounds the set {i, j, k}
                    break
                c = cols[k]
                y = f1 | (cp & c) | (ng & ~c)
                f = score_word(y, lut_s, lut_q, lut_n, total, total_sq, n, eta, student, absolute)
                nodes += 1
                if f >= best:
                    if all_symmetric:
                        x0, x1, x2 = _sorted3(i, j, k)
                    else:
                        t[first] = i
                        t[min(second, free_slot)] = min(j, k)
                        t[max(second, free_slot)] = max(j, k)
                        x0, x1, x2 = t[0], t[1], t[2]
                    if f > best or not found or _tuple_less(x0, x1, x2, bt[0], bt[1], bt[2]):
                        best = f
                        found = True
                        bt[0] = x0
                        bt[1] = x1
                        bt[2] = x2
                        by = y
    if not found:
        bt[:] = -1
    return best, bt, by, nodes
