"""Compiled per-pair kernels of the two-QTL Haley-Knott scan (:mod:`qtlhpc.genetics.hk`).

Each pair ``(j, k)`` of positions has a small design ``[F_j (s), F_k (s), I (s*s)]`` (``s = n_states -
1``; ``F`` the probability columns with the null design projected out, ``I`` the interaction columns)
whose normal equations are reduced in column order by a symmetric (LDL') elimination; the explained
sums of squares after the ``2 s`` additive columns and after all ``d = 2 s + s*s`` columns give the
additive and full models.  A column whose pivot is at most ``pivot_tol`` times its scale is dropped,
as a pivoting QR drops a collinear column.

* :func:`product_tile`: interaction columns ``P_ja P_kb`` (products of marginals: pairs on two
  chromosomes).  Every entry of every pair's system is read from tile-wide matrix products over the
  individuals computed beforehand (GEMMs), so a pair costs ``O(d^3)``, independent of ``n``.
* :func:`joint_tile`: interaction columns ``J_ab = Pr(g_j = a, g_k = b | marker data)`` for two
  positions of one chromosome (R/qtl ``calc.pairprob``).  The posterior of the genotypes along a
  chromosome is a Markov chain: with ``R_l(a, b) = Pr(g_{l+1} = b | g_l = a, data)``,
  ``J(j, k) = diag(gamma_j) R_j R_{j+1} ... R_{k-1}``.  One sweep per start ``j`` carries the rows
  ``a < s`` of that product for every individual (``s * G^2`` flops per step; rows stay stochastic,
  so no rescaling) and accumulates the inner products the system needs; no joint probability array
  is stored.

Kernels are pure: arrays in, arrays out; callers own the memory limits and the pair order.
"""

from __future__ import annotations

import numba
import numpy as np


@numba.njit(cache=True, inline="always")
def eliminate(gram, cross, scale, checkpoint, pivot_tol, out, r, c):
    """Reduce one system in place; return its smallest pivot.

    ``gram (d, d)`` symmetric (both triangles filled), ``cross (d, n_traits)``, ``scale (d,)`` the
    collinearity scale of each column.  Writes the explained sums of squares of the first
    ``checkpoint`` columns to ``out[0, r, c, :]`` and of all ``d`` columns to ``out[1, r, c, :]``.
    """
    d = gram.shape[0]
    n_traits = cross.shape[1]
    for t in range(n_traits):
        out[0, r, c, t] = 0.0
        out[1, r, c, t] = 0.0
    smallest = np.inf
    for col in range(d):
        pivot = gram[col, col]
        if pivot < smallest:
            smallest = pivot
        if pivot > pivot_tol * scale[col]:
            inverse = 1.0 / pivot
            for t in range(n_traits):
                out[1, r, c, t] += cross[col, t] * cross[col, t] * inverse
            for row in range(col + 1, d):
                factor = gram[row, col] * inverse
                if factor != 0.0:
                    for other in range(col + 1, d):
                        gram[row, other] -= factor * gram[col, other]
                    for t in range(n_traits):
                        cross[row, t] -= factor * cross[col, t]
        if col + 1 == checkpoint:
            for t in range(n_traits):
                out[0, r, c, t] = out[1, r, c, t]
    return smallest


@numba.njit(cache=True)
def product_tile(row_start, col_start, f_f, f_y_row, f_y_col, gram_row, gram_col, f_row_int, f_col_int,
                 int_int, int_w, raw_row, raw_col, chromosome, skip_same_chromosome, pivot_tol, out, done):
    """Explained sums of squares of the pairs ``j < k`` of a tile, interaction = products of marginals.

    Tile rows ``j = row_start + r`` and columns ``k = col_start + c``; matrix products over the
    individuals (``F`` residualised columns, ``P`` raw columns, ``w`` = residualised traits then the
    orthonormal null basis, ``n_w = n_traits + n_null``):

    * ``f_f (R, s, C, s)`` = <F_ja, F_kb>; ``f_y_row (R, s, t)``, ``f_y_col (C, s, t)`` = <F, y>;
    * ``gram_row (R, s, s)``, ``gram_col (C, s, s)`` = <F_ja, F_jb>;
    * ``f_row_int (R, s(c), s(a), C, s(b))`` = <F_jc, P_ja P_kb>;
      ``f_col_int (R, s(a), C, s(b), s(c))`` = <F_kc, P_ja P_kb>;
    * ``int_int (R, s, s, C, s, s)`` = <P_ja P_kb, P_ja' P_kb'> indexed ``[r, a, a', c, b, b']``;
    * ``int_w (R, s(a), n_w, C, s(b))`` = <P_ja P_kb, w>;
    * ``raw_row (R, s)``, ``raw_col (C, s)``: squared norms of the raw columns (collinearity scale).

    Pairs with ``chromosome[j] == chromosome[k]`` are left alone when ``skip_same_chromosome``.
    Writes ``out[0 | 1, r, c, :]`` (additive | full) and sets ``done[r, c]``.
    """
    n_rows, s, n_cols = f_f.shape[0], f_f.shape[1], f_f.shape[2]
    n_traits = f_y_row.shape[2]
    n_null = int_w.shape[2] - n_traits
    d = 2 * s + s * s
    gram = np.empty((d, d))
    cross = np.empty((d, n_traits))
    scale = np.empty(d)
    for r in range(n_rows):
        j = row_start + r
        for c in range(n_cols):
            k = col_start + c
            if j >= k or (skip_same_chromosome and chromosome[j] == chromosome[k]):
                continue
            for a in range(s):
                scale[a] = raw_row[r, a]
                scale[s + a] = raw_col[c, a]
                for t in range(n_traits):
                    cross[a, t] = f_y_row[r, a, t]
                    cross[s + a, t] = f_y_col[c, a, t]
                for b in range(s):
                    gram[a, b] = gram_row[r, a, b]
                    gram[s + a, s + b] = gram_col[c, a, b]
                    gram[a, s + b] = f_f[r, a, c, b]
                    gram[s + b, a] = f_f[r, a, c, b]
            for a in range(s):
                for b in range(s):
                    ab = 2 * s + a * s + b
                    scale[ab] = int_int[r, a, a, c, b, b]
                    for t in range(n_traits):
                        cross[ab, t] = int_w[r, a, t, c, b]
                    for e in range(s):
                        gram[e, ab] = f_row_int[r, e, a, c, b]
                        gram[ab, e] = gram[e, ab]
                        gram[s + e, ab] = f_col_int[r, a, c, b, e]
                        gram[ab, s + e] = gram[s + e, ab]
                    for a2 in range(s):
                        for b2 in range(s):
                            value = int_int[r, a, a2, c, b, b2]
                            for q in range(n_null):
                                value -= int_w[r, a, n_traits + q, c, b] * int_w[r, a2, n_traits + q, c, b2]
                            gram[ab, 2 * s + a2 * s + b2] = value
            eliminate(gram, cross, scale, 2 * s, pivot_tol, out, r, c)
            done[r, c] = True


@numba.njit(cache=True)
def product_tile_one_state(row_start, col_start, f_f, f_y_row, f_y_col, gram_row, gram_col, f_row_int, f_col_int,
                           int_int, int_w, raw_row, raw_col, chromosome, skip_same_chromosome, pivot_tol, out, done):
    """:func:`product_tile` for ``s = 1`` (two genotype states: bc, RIL), the 3 x 3 elimination written out."""
    n_rows, n_cols = f_f.shape[0], f_f.shape[2]
    n_traits = f_y_row.shape[2]
    n_null = int_w.shape[2] - n_traits
    for r in range(n_rows):
        j = row_start + r
        for c in range(n_cols):
            k = col_start + c
            if j >= k or (skip_same_chromosome and chromosome[j] == chromosome[k]):
                continue
            g00, g11, g01 = gram_row[r, 0, 0], gram_col[c, 0, 0], f_f[r, 0, c, 0]
            g02, g12 = f_row_int[r, 0, 0, c, 0], f_col_int[r, 0, c, 0, 0]
            raw22 = int_int[r, 0, 0, c, 0, 0]
            g22 = raw22
            for q in range(n_null):
                w = int_w[r, 0, n_traits + q, c, 0]
                g22 -= w * w
            keep0 = g00 > pivot_tol * raw_row[r, 0]
            f01 = g01 / g00 if keep0 else 0.0
            f02 = g02 / g00 if keep0 else 0.0
            g11 -= f01 * g01
            g12 -= f01 * g02
            g22 -= f02 * g02
            keep1 = g11 > pivot_tol * raw_col[c, 0]
            f12 = g12 / g11 if keep1 else 0.0
            g22 -= f12 * g12
            keep2 = g22 > pivot_tol * raw22
            for t in range(n_traits):
                b0, b1, b2 = f_y_row[r, 0, t], f_y_col[c, 0, t], int_w[r, 0, t, c, 0]
                explained = 0.0
                if keep0:
                    explained += b0 * b0 / g00
                    b1 -= f01 * b0
                    b2 -= f02 * b0
                if keep1:
                    explained += b1 * b1 / g11
                    b2 -= f12 * b1
                out[0, r, c, t] = explained
                if keep2:
                    explained += b2 * b2 / g22
                out[1, r, c, t] = explained
            done[r, c] = True


@numba.njit(cache=True, fastmath={"reassoc", "contract"}, inline="always")
def _dot(x, y):
    """Inner product of two vectors (reassociated: vectorised; same order for the same length)."""
    total = 0.0
    for i in range(x.shape[0]):
        total += x[i] * y[i]
    return total


@numba.njit(cache=True, fastmath={"reassoc", "contract"})
def joint_tile(offset, marginal, posterior, row_start, row_stop, col_start, col_stop, columns, raw_single,
               single_gram, single_y, response, basis, pivot_tol, fallback_tol, out, done, refit):
    """Explained sums of squares of the pairs ``j < k`` of a tile that lie on one chromosome.

    The chromosome holds positions ``offset .. offset + P - 1``; ``marginal (P, s, n)`` =
    ``Pr(g_j = a | data)`` for ``a < s``; ``posterior (P - 1, G, G, n)`` = ``Pr(g_{l+1} = b | g_l =
    a, data)`` per individual (rows sum to one).  ``columns (n_positions, s, n)`` residualised
    probability columns of every position; ``raw_single (n_positions, s)`` their raw squared norms,
    ``single_gram (n_positions, s, s)`` and ``single_y (n_positions, s, n_traits)`` their inner
    products with each other and with the traits; ``response (n_traits, n)`` residualised traits; ``basis (n_null, n)`` orthonormal null design.

    Tile rows ``[row_start, row_stop)``, columns ``[col_start, col_stop)`` (absolute).  Design of a
    pair: ``F_j, F_k, J_ab (a, b < s, a-major)`` with ``J`` residualised; every column is measured
    against the pair's scale: the largest raw squared norm of its columns, at least ``n`` (the
    intercept's).  Writes ``out[0 | 1, r, c, :]`` and ``done[r, c]``; sets ``refit[r, c]`` when a pivot
    falls below ``fallback_tol`` times the scale (nearly collinear columns: the normal equations may
    have lost accuracy; the caller refits those pairs from the columns).
    """
    n_chrom = marginal.shape[0]
    s, n = marginal.shape[1], marginal.shape[2]
    n_states = posterior.shape[1]
    n_traits, n_null = response.shape[0], basis.shape[0]
    s2 = s * s
    d = 2 * s + s2
    carried = np.empty((s, n_states, n))
    advanced = np.empty((n_states, n))
    f_cross = np.empty((s, s))
    f_row_int = np.empty((s, s2))
    f_col_int = np.empty((s, s2))
    int_int = np.empty((s2, s2))
    int_null = np.empty((s2, n_null))
    int_y = np.empty((s2, n_traits))
    gram = np.empty((d, d))
    cross = np.empty((d, n_traits))
    scale = np.empty(d)
    first = max(row_start, offset)
    last_row = min(row_stop, offset + n_chrom)
    last_col = min(col_stop, offset + n_chrom)
    for j in range(first, last_row):
        if max(j + 1, col_start) >= last_col:
            continue
        local_j = j - offset
        carried[:] = 0.0
        for a in range(s):
            carried[a, a] = marginal[local_j, a]
        for k in range(j + 1, last_col):
            step = posterior[k - offset - 1]
            for a in range(s):
                for b in range(n_states):
                    for i in range(n):
                        advanced[b, i] = carried[a, 0, i] * step[0, b, i]
                    for g in range(1, n_states):
                        for i in range(n):
                            advanced[b, i] += carried[a, g, i] * step[g, b, i]
                carried[a] = advanced
            if k < col_start:
                continue
            # inner products of the interaction columns J_ab = carried[a, b] with everything else
            for a in range(s):
                for b in range(s):
                    ab = a * s + b
                    joint = carried[a, b]
                    for e in range(s):
                        f_row_int[e, ab] = _dot(columns[j, e], joint)
                        f_col_int[e, ab] = _dot(columns[k, e], joint)
                    for a2 in range(s):
                        for b2 in range(s):
                            ab2 = a2 * s + b2
                            if ab2 >= ab:
                                int_int[ab, ab2] = _dot(joint, carried[a2, b2])
                                int_int[ab2, ab] = int_int[ab, ab2]
                    for q in range(n_null):
                        int_null[ab, q] = _dot(joint, basis[q])
                    for t in range(n_traits):
                        int_y[ab, t] = _dot(joint, response[t])
            for a in range(s):
                for b in range(s):
                    f_cross[a, b] = _dot(columns[j, a], columns[k, b])
            # the system, and the pair's scale
            pair_scale = float(n)
            for a in range(s):
                pair_scale = max(pair_scale, raw_single[j, a], raw_single[k, a])
            for ab in range(s2):
                pair_scale = max(pair_scale, int_int[ab, ab])
            for a in range(s):
                for b in range(s):
                    gram[a, b] = single_gram[j, a, b]
                    gram[s + a, s + b] = single_gram[k, a, b]
                    gram[a, s + b] = f_cross[a, b]
                    gram[s + b, a] = f_cross[a, b]
                for t in range(n_traits):
                    cross[a, t] = single_y[j, a, t]
                    cross[s + a, t] = single_y[k, a, t]
            for ab in range(s2):
                for e in range(s):
                    gram[e, 2 * s + ab] = f_row_int[e, ab]
                    gram[2 * s + ab, e] = f_row_int[e, ab]
                    gram[s + e, 2 * s + ab] = f_col_int[e, ab]
                    gram[2 * s + ab, s + e] = f_col_int[e, ab]
                for ab2 in range(s2):
                    value = int_int[ab, ab2]
                    for q in range(n_null):
                        value -= int_null[ab, q] * int_null[ab2, q]
                    gram[2 * s + ab, 2 * s + ab2] = value
                for t in range(n_traits):
                    cross[2 * s + ab, t] = int_y[ab, t]
            for col in range(d):
                scale[col] = pair_scale
            r, c = j - row_start, k - col_start
            smallest = eliminate(gram, cross, scale, 2 * s, pivot_tol, out, r, c)
            done[r, c] = True
            if smallest < fallback_tol * pair_scale:
                refit[r, c] = True
