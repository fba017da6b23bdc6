"""Permutation p-values, q-values and parsimony of CAL (de Ridder et al. 2010, Sec. 2.2.5 and 3.3).

Pure numpy on top of :mod:`qtlhpc.stats.qvalue` (Bioconductor qvalue's ``empPvals``, ``pi0est``, ``qvalue``).

* Null of a topology: its best score in every permutation replicate of every searched target (B x targets
  values, 152,500 in the paper).  A censored value (no network reached f_tol) is below every observed value that
  is not censored, so it enters the null as ``-inf``: the count ``#{null > s}`` of an uncensored observed score is
  exact.  A censored observed score gets ``p = 1``.
* p-values pooled per topology with qvalue's strict ``>`` rule; pi0 and q-values per topology over the targets.
* Parsimony: per target, the topology with minimal q among those with q <= fdr; ties go to fewer inputs, then the
  larger score, then catalogue order.  Topologies whose p-value is at the permutation floor (1 / null size: no
  null value above the observed score) tie with each other (see :func:`parsimony`).
"""

from __future__ import annotations

import numpy as np

from qtlhpc.errors import InputError
from qtlhpc.stats.qvalue import empirical_pvalues, qvalues


def topology_qvalues(observed, observed_censored, null, null_censored, *, pi0_method: str = "smoother"):
    """``observed (S, J)``, ``null (B, S, J)`` scores with their censoring flags -> ``(p (S, J), q (S, J),
    pi0 (J,), notes)``; ``pi0_method`` ``"one"`` gives Benjamini-Hochberg."""
    observed = np.asarray(observed, dtype=float)
    s, j = observed.shape
    p = np.ones((s, j))
    q = np.ones((s, j))
    pi0 = np.ones(j)
    notes = []
    null = np.where(np.asarray(null_censored, bool), -np.inf, np.asarray(null, dtype=float))
    for t in range(j):
        values = null[:, :, t].ravel()
        tested = ~np.asarray(observed_censored, bool)[:, t]
        if values.size == 0:
            p[:, t] = np.nan
            q[:, t] = np.nan
            pi0[t] = np.nan
            continue
        if tested.any():
            p[tested, t] = empirical_pvalues(observed[tested, t], values, pool=True)
        if pi0_method == "one":
            result = qvalues(p[:, t], pi0=1.0)
        else:
            try:
                result = qvalues(p[:, t], method=pi0_method)
            except InputError as error:
                notes.append(f"topology {t}: pi0 cannot be estimated ({error}); pi0 = 1 (Benjamini-Hochberg)")
                result = qvalues(p[:, t], pi0=1.0)
        q[:, t] = result.qvalues
        pi0[t] = result.pi0
    return p, q, pi0, notes


def parsimony(q, scores, n_inputs, fdr: float, pvalues=None, floors=None):
    """``(selected (S,) topology index or -1, selected q (S,))`` (see the module docstring).

    With ``pvalues (S, J)`` and ``floors (J,)`` (each topology's smallest p-value, ``1 / null size``): topologies
    whose p-value is at the floor (no null value above the observed score) cannot be ordered by the
    permutations; their q-values differ only through pi0 and the number of floored targets, so they tie, ahead of
    every topology above its floor, and the tie goes to fewer inputs, then the larger score.
    """
    q = np.asarray(q, dtype=float)
    scores = np.asarray(scores, dtype=float)
    n_inputs = np.asarray(n_inputs)
    floored = np.zeros(q.shape, dtype=bool)
    if pvalues is not None:
        floored = np.asarray(pvalues) <= np.asarray(floors, dtype=float)[None, :] * (1 + 1e-12)
    selected = np.full(q.shape[0], -1, dtype=np.int64)
    selected_q = np.full(q.shape[0], np.nan)
    for i in range(q.shape[0]):
        candidates = [t for t in range(q.shape[1]) if np.isfinite(q[i, t]) and q[i, t] <= fdr]
        if candidates:
            best = min(candidates, key=lambda t: (not floored[i, t], 0.0 if floored[i, t] else q[i, t], n_inputs[t],
                                                  -scores[i, t], t))
            selected[i] = best
            selected_q[i] = q[i, best]
    return selected, selected_q
