"""Spots: significant positions grouped into eQTL regions (spec A2.2 step 7 [D]).  Arrays in, arrays out.

A spot is a maximal run of significant positions on one chromosome (positions in genoprob order), runs
separated by at most ``max_gap`` non-significant positions being merged (spec: 1).  Spots are labelled by
chromosome and their rank along it (II1, IV1, IV2, ...; the paper's labels; "5.2" when the chromosome's name
ends in a digit).  The scan's positions are markers
and, with a ``[genoprob] step``, pseudomarkers; both count here (the paper's data had markers only).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Spots:
    """``first, last (S,)`` position indices of each spot (inclusive), ``label (S,)``, ``best (S,)`` the
    position of the spot's largest statistic, ``count (S,)`` its significant positions."""

    first: np.ndarray
    last: np.ndarray
    label: np.ndarray
    best: np.ndarray
    count: np.ndarray

    def of_positions(self, positions) -> np.ndarray:
        """The spot index of each position (-1 outside every spot)."""
        positions = np.asarray(positions)
        found = np.full(positions.shape, -1, dtype=np.int64)
        for s, (a, b) in enumerate(zip(self.first, self.last)):
            found[(positions >= a) & (positions <= b)] = s
        return found


def group_spots(chromosomes, statistic, threshold: float, max_gap: int = 1) -> Spots:
    """Spots of the positions with ``statistic >= threshold`` (module docstring)."""
    chromosomes = np.asarray(chromosomes).astype(str)
    statistic = np.asarray(statistic, dtype=float)
    significant = statistic >= threshold
    first, last, label = [], [], []
    count_on: dict = {}
    current = None
    for index in np.flatnonzero(significant):
        if current is not None and chromosomes[index] == chromosomes[current[1]] and \
                index - current[1] - 1 <= max_gap and np.all(chromosomes[current[1]:index + 1] == chromosomes[index]):
            current[1] = index
            continue
        if current is not None:
            first.append(current[0])
            last.append(current[1])
        current = [index, index]
    if current is not None:
        first.append(current[0])
        last.append(current[1])
    for a in first:
        name = chromosomes[a]
        count_on[name] = count_on.get(name, 0) + 1
        label.append(f"{name}.{count_on[name]}" if name[-1:].isdigit() else f"{name}{count_on[name]}")
    best = [a + int(np.argmax(np.where(significant[a:b + 1], statistic[a:b + 1], -np.inf)))
            for a, b in zip(first, last)]
    count = [int(significant[a:b + 1].sum()) for a, b in zip(first, last)]
    return Spots(np.array(first, dtype=np.int64), np.array(last, dtype=np.int64), np.array(label, dtype=object),
                 np.array(best, dtype=np.int64), np.array(count, dtype=np.int64))
