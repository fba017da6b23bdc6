"""Compiled (numba) loops of the GaneSh two-way Gibbs sampler (Joshi, Van de Peer & Michoel 2008, §2.1-2.2).

The state of one chain lives in flat arrays indexed by *slots* (stable cluster ids, reused after a
cluster closes), so that a move never relabels other genes:

* ``gene_slot (G,)``: the gene-cluster slot of each gene; ``gene_count (G,)``: genes per slot (0: closed);
* ``cond_slot (G, C)``: row ``k`` is the condition-cluster slot of each condition inside gene cluster ``k``;
* ``cond_count (G, C)``: conditions per condition slot of gene cluster ``k``;
* ``table``: the count-only parts of the score (:func:`score_table`), so each score costs one log;
* ``t0, t1, t2 (G, C)``: the sufficient statistics (number of observed cells, sum, sum of squares) of
  co-cluster ``(k, l)``; ``score (G, C)``: its normal-gamma score ``S(t0, t1, t2)``, kept in step.

Missing cells enter with weight 0 (``observed`` is 0, the value is 0).  Random numbers come in as arrays
drawn by the caller from the run's keyed stream; the loops draw nothing themselves.
"""

from __future__ import annotations

import math

import numpy as np
from numba import njit

LOG_2PI = math.log(2.0 * math.pi)


@njit(cache=True)
def ng_score(n, s1, s2, mu0, lambda0, alpha0, beta0):
    """The co-cluster score ``S(T0, T1, T2)`` of spec B1.3 ([J] eq. (2)); ``S(0, ., .) = 0``."""
    if n <= 0.0:
        return 0.0
    lambda1 = lambda0 + n
    alpha1 = alpha0 + 0.5 * n
    spread = s2 - s1 * s1 / n
    if spread < 0.0:
        spread = 0.0
    shift = s1 - mu0 * n
    beta1 = beta0 + 0.5 * spread + lambda0 * shift * shift / (2.0 * lambda1 * n)
    return (-0.5 * n * LOG_2PI + 0.5 * math.log(lambda0 / lambda1) + alpha0 * math.log(beta0)
            - math.lgamma(alpha0) + math.lgamma(alpha1) - alpha1 * math.log(beta1))


@njit(cache=True)
def score_table(max_cells, prior):
    """``A (max_cells + 1,)``: the parts of ``S`` that depend only on the cell count ``n``, so that
    ``S(n, s1, s2) = A[n] - (alpha0 + n / 2) log beta1`` (one log per score in the sampler's loops)."""
    mu0, lambda0, alpha0, beta0 = prior[0], prior[1], prior[2], prior[3]
    table = np.empty(max_cells + 1)
    constant = alpha0 * math.log(beta0) - math.lgamma(alpha0)
    for n in range(max_cells + 1):
        table[n] = (-0.5 * n * LOG_2PI + 0.5 * math.log(lambda0 / (lambda0 + n)) + constant
                    + math.lgamma(alpha0 + 0.5 * n))
    return table


@njit(cache=True)
def fast_score(n, s1, s2, prior, table):
    """:func:`ng_score` through the count table of :func:`score_table` (``n`` a whole number of cells)."""
    if n <= 0.0:
        return 0.0
    spread = s2 - s1 * s1 / n
    if spread < 0.0:
        spread = 0.0
    shift = s1 - prior[0] * n
    lambda0 = prior[1]
    beta1 = prior[3] + 0.5 * spread + lambda0 * shift * shift / (2.0 * (lambda0 + n) * n)
    return table[int(n + 0.5)] - (prior[2] + 0.5 * n) * math.log(beta1)


@njit(cache=True)
def _categorical(weights_log, n_options, uniform):
    """Index drawn from ``softmax(weights_log[:n_options])`` with one uniform in ``[0, 1)``."""
    top = weights_log[0]
    for j in range(1, n_options):
        if weights_log[j] > top:
            top = weights_log[j]
    total = 0.0
    for j in range(n_options):
        weights_log[j] = math.exp(weights_log[j] - top)
        total += weights_log[j]
    target = uniform * total
    running = 0.0
    for j in range(n_options):
        running += weights_log[j]
        if target < running:
            return j
    return n_options - 1


@njit(cache=True)
def _refresh_score(k, l, t0, t1, t2, score, prior, table):
    score[k, l] = fast_score(t0[k, l], t1[k, l], t2[k, l], prior, table)


@njit(cache=True)
def _add_gene(i, k, sign, values, observed, squares, cond_slot, t0, t1, t2):
    """Add (``sign`` 1) or remove (-1) gene ``i``'s cells to the co-clusters of gene cluster ``k``."""
    n_conditions = values.shape[1]
    for m in range(n_conditions):
        l = cond_slot[k, m]
        t0[k, l] += sign * observed[i, m]
        t1[k, l] += sign * values[i, m]
        t2[k, l] += sign * squares[i, m]


@njit(cache=True)
def _open_gene_cluster(k, i, one_way, values, observed, squares, cond_slot, cond_count, cond_active,
                       n_cond_active, t0, t1, t2, score, prior, table):
    """Open slot ``k`` holding gene ``i`` alone: one condition block (two-way) or singletons (one-way)."""
    n_conditions = values.shape[1]
    for m in range(n_conditions):
        cond_count[k, m] = 0
        t0[k, m] = 0.0
        t1[k, m] = 0.0
        t2[k, m] = 0.0
        score[k, m] = 0.0
    if one_way:
        for m in range(n_conditions):
            cond_slot[k, m] = m
            cond_count[k, m] = 1
            cond_active[k, m] = m
        n_cond_active[k] = n_conditions
    else:
        for m in range(n_conditions):
            cond_slot[k, m] = 0
        cond_count[k, 0] = n_conditions
        cond_active[k, 0] = 0
        n_cond_active[k] = 1
    _add_gene(i, k, 1.0, values, observed, squares, cond_slot, t0, t1, t2)
    for a in range(n_cond_active[k]):
        _refresh_score(k, cond_active[k, a], t0, t1, t2, score, prior, table)


@njit(cache=True)
def gene_step(order, uniforms, one_way, log_bias, values, observed, squares, prior, table,
              gene_slot, gene_count, active, n_active_arr, cond_slot, cond_count, cond_active, n_cond_active,
              t0, t1, t2, score):
    """Gene moves of [J] §2.2 step 2, one per entry of ``order`` (gene indices), with ``uniforms`` of the same length.

    Each move removes gene ``i`` (closing its cluster if it empties), scores joining every open gene
    cluster with that cluster's condition partition, and the new singleton cluster (one condition block;
    singletons in one-way mode; ``log_bias`` added to it, 0 in the paper), and draws from the softmax.
    ``active[:n_active_arr[0]]`` lists the open slots.
    """
    n_genes, n_conditions = values.shape
    delta = np.empty(n_genes + 1)
    acc0 = np.zeros(n_conditions)
    acc1 = np.zeros(n_conditions)
    acc2 = np.zeros(n_conditions)
    position = np.empty(n_genes, dtype=np.int64)
    for a in range(n_active_arr[0]):
        position[active[a]] = a
    for step in range(order.shape[0]):
        i = order[step]
        k_old = gene_slot[i]
        _add_gene(i, k_old, -1.0, values, observed, squares, cond_slot, t0, t1, t2)
        gene_count[k_old] -= 1
        if gene_count[k_old] == 0:
            last = active[n_active_arr[0] - 1]
            active[position[k_old]] = last
            position[last] = position[k_old]
            n_active_arr[0] -= 1
        else:
            for a in range(n_cond_active[k_old]):
                _refresh_score(k_old, cond_active[k_old, a], t0, t1, t2, score, prior, table)
        n_open = n_active_arr[0]
        complete = True
        for m in range(n_conditions):
            if observed[i, m] == 0.0:
                complete = False
                break
        for a in range(n_open):
            k = active[a]
            for b in range(n_cond_active[k]):
                l = cond_active[k, b]
                acc0[l] = 0.0
                acc1[l] = 0.0
                acc2[l] = 0.0
            if complete:              # every cell observed: the counts are the blocks' sizes
                for m in range(n_conditions):
                    l = cond_slot[k, m]
                    acc1[l] += values[i, m]
                    acc2[l] += squares[i, m]
                for b in range(n_cond_active[k]):
                    l = cond_active[k, b]
                    acc0[l] = cond_count[k, l]
            else:
                for m in range(n_conditions):
                    l = cond_slot[k, m]
                    acc0[l] += observed[i, m]
                    acc1[l] += values[i, m]
                    acc2[l] += squares[i, m]
            gain = 0.0
            for b in range(n_cond_active[k]):
                l = cond_active[k, b]
                gain += fast_score(t0[k, l] + acc0[l], t1[k, l] + acc1[l], t2[k, l] + acc2[l], prior,
                                   table) - score[k, l]
            delta[a] = gain
        alone = 0.0
        if one_way:
            for m in range(n_conditions):
                alone += fast_score(observed[i, m], values[i, m], squares[i, m], prior, table)
        else:
            s0 = 0.0
            s1 = 0.0
            s2 = 0.0
            for m in range(n_conditions):
                s0 += observed[i, m]
                s1 += values[i, m]
                s2 += squares[i, m]
            alone = fast_score(s0, s1, s2, prior, table)
        delta[n_open] = alone + log_bias
        choice = _categorical(delta, n_open + 1, uniforms[step])
        if choice < n_open:
            k = active[choice]
            _add_gene(i, k, 1.0, values, observed, squares, cond_slot, t0, t1, t2)
            for b in range(n_cond_active[k]):
                _refresh_score(k, cond_active[k, b], t0, t1, t2, score, prior, table)
        else:
            k = -1
            for slot in range(n_genes):   # the lowest closed slot: deterministic
                if gene_count[slot] == 0:
                    k = slot
                    break
            active[n_open] = k
            position[k] = n_open
            n_active_arr[0] += 1
            _open_gene_cluster(k, i, one_way, values, observed, squares, cond_slot, cond_count, cond_active,
                               n_cond_active, t0, t1, t2, score, prior, table)
        gene_slot[i] = k
        gene_count[k] += 1


@njit(cache=True)
def column_statistics(values, observed, squares, gene_slot, n_slots):
    """``(h0, h1, h2)`` each ``(n_slots, C)``: per gene-cluster slot and condition, the cells' statistics."""
    n_genes, n_conditions = values.shape
    h0 = np.zeros((n_slots, n_conditions))
    h1 = np.zeros((n_slots, n_conditions))
    h2 = np.zeros((n_slots, n_conditions))
    for i in range(n_genes):
        k = gene_slot[i]
        for m in range(n_conditions):
            h0[k, m] += observed[i, m]
            h1[k, m] += values[i, m]
            h2[k, m] += squares[i, m]
    return h0, h1, h2


@njit(cache=True)
def condition_step(k, order, uniforms, h0, h1, h2, prior, table, cond_slot, cond_count, cond_active, n_cond_active,
                   t0, t1, t2, score):
    """Condition moves inside gene cluster ``k`` ([J] §2.2 step 3), one per entry of ``order``.

    ``h0, h1, h2 (., C)``: column statistics of the genes of each cluster (fixed during the step).  Each
    move removes condition ``m`` (closing its block if it empties) and draws among the open blocks and a
    new singleton block from the softmax of the score changes.
    """
    n_conditions = cond_slot.shape[1]
    delta = np.empty(n_conditions + 1)
    position = np.empty(n_conditions, dtype=np.int64)
    for b in range(n_cond_active[k]):
        position[cond_active[k, b]] = b
    for step in range(order.shape[0]):
        m = order[step]
        l_old = cond_slot[k, m]
        t0[k, l_old] -= h0[k, m]
        t1[k, l_old] -= h1[k, m]
        t2[k, l_old] -= h2[k, m]
        cond_count[k, l_old] -= 1
        if cond_count[k, l_old] == 0:
            last = cond_active[k, n_cond_active[k] - 1]
            cond_active[k, position[l_old]] = last
            position[last] = position[l_old]
            n_cond_active[k] -= 1
            t0[k, l_old] = 0.0
            t1[k, l_old] = 0.0
            t2[k, l_old] = 0.0
            score[k, l_old] = 0.0
        else:
            _refresh_score(k, l_old, t0, t1, t2, score, prior, table)
        n_open = n_cond_active[k]
        for b in range(n_open):
            l = cond_active[k, b]
            delta[b] = fast_score(t0[k, l] + h0[k, m], t1[k, l] + h1[k, m], t2[k, l] + h2[k, m], prior,
                                  table) - score[k, l]
        delta[n_open] = fast_score(h0[k, m], h1[k, m], h2[k, m], prior, table)
        choice = _categorical(delta, n_open + 1, uniforms[step])
        if choice < n_open:
            l = cond_active[k, choice]
        else:
            l = -1
            for slot in range(n_conditions):
                if cond_count[k, slot] == 0:
                    l = slot
                    break
            cond_active[k, n_open] = l
            position[l] = n_open
            n_cond_active[k] += 1
            t0[k, l] = 0.0
            t1[k, l] = 0.0
            t2[k, l] = 0.0
        t0[k, l] += h0[k, m]
        t1[k, l] += h1[k, m]
        t2[k, l] += h2[k, m]
        cond_count[k, l] += 1
        cond_slot[k, m] = l
        _refresh_score(k, l, t0, t1, t2, score, prior, table)


@njit(cache=True)
def total_score(active, n_active, cond_active, n_cond_active, score):
    """``sum_k sum_l S_kl`` over the open co-clusters ([J] eq. (2))."""
    total = 0.0
    for a in range(n_active):
        k = active[a]
        for b in range(n_cond_active[k]):
            total += score[k, cond_active[k, b]]
    return total


@njit(cache=True)
def cooccurrence_rows(labels, row_start, row_stop):
    """Counts ``(row_stop - row_start, G)``: in how many samples of ``labels (S, G)`` genes i and j share a label.

    Labels are ``0..G-1`` (any labelling per sample).  Cost ``O(S * sum_k |block rows in k| * |k|)``.
    """
    n_samples, n_genes = labels.shape
    counts = np.zeros((row_stop - row_start, n_genes))
    members = np.empty(n_genes, dtype=np.int64)
    starts = np.zeros(n_genes + 1, dtype=np.int64)
    fill = np.zeros(n_genes, dtype=np.int64)
    for s in range(n_samples):
        starts[:] = 0
        for j in range(n_genes):
            starts[labels[s, j] + 1] += 1
        for k in range(n_genes):
            starts[k + 1] += starts[k]
        fill[:] = 0
        for j in range(n_genes):
            k = labels[s, j]
            members[starts[k] + fill[k]] = j
            fill[k] += 1
        for i in range(row_start, row_stop):
            k = labels[s, i]
            for p in range(starts[k], starts[k + 1]):
                counts[i - row_start, members[p]] += 1.0
    return counts
