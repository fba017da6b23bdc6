"""Spots (spec A2.2 step 7): significant positions grouped per chromosome with gaps of at most one position,
against a union-find over every pair of significant positions, and the paper's labels."""

import numpy as np

from qtlhpc.methods.blockmix.spots import group_spots


def union_find_spots(chromosomes, significant, max_gap):
    """Components of the graph linking significant positions i < j on one chromosome with j - i <= max_gap + 1
    (no chromosome change in between)."""
    parent = list(range(len(significant)))

    def root(i):
        while parent[i] != i:
            i = parent[i]
        return i

    sig = [i for i in range(len(significant)) if significant[i]]
    for i in sig:
        for j in sig:
            if i < j <= i + max_gap + 1 and len(set(chromosomes[i:j + 1])) == 1:
                parent[root(j)] = root(i)
    groups = {}
    for i in sig:
        groups.setdefault(root(i), []).append(i)
    return sorted((min(g), max(g), len(g)) for g in groups.values())


def test_spots_equal_union_find_on_random_profiles():
    rng = np.random.default_rng(4)
    for trial in range(300):
        n = int(rng.integers(1, 30))
        chromosomes = np.sort(rng.choice(["I", "II", "X"], n))
        statistic = rng.random(n)
        gap = int(rng.integers(0, 3))
        spots = group_spots(chromosomes, statistic, 0.6, gap)
        got = sorted(zip(spots.first.tolist(), spots.last.tolist(), spots.count.tolist()))
        assert got == union_find_spots(chromosomes, statistic >= 0.6, gap), (trial, chromosomes, statistic, gap)
        for s in range(len(spots.first)):
            window = statistic[spots.first[s]:spots.last[s] + 1]
            assert statistic[spots.best[s]] == window.max()


def test_labels_count_along_each_chromosome_and_positions_map_to_spots():
    chromosomes = np.array(["II"] * 6 + ["IV"] * 8)
    lr = np.array([9, 0, 9, 0, 0, 9, 9, 9, 0, 0, 9, 0, 9, 9], dtype=float)
    spots = group_spots(chromosomes, lr, 5.0)
    # II: {0, 2} merged over one gap, {5} alone (two gaps before it); IV: {6, 7} (chromosome change splits 5|6),
    # {10, 12, 13}
    assert spots.label.tolist() == ["II1", "II2", "IV1", "IV2"]
    assert spots.first.tolist() == [0, 5, 6, 10] and spots.last.tolist() == [2, 5, 7, 13]
    assert spots.of_positions([0, 1, 3, 7, 11]).tolist() == [0, 0, -1, 2, 3]
    assert len(group_spots(chromosomes, lr, 100.0).first) == 0
    assert group_spots(np.array(["5", "5", "X"]), np.array([9.0, 0.0, 9.0]), 5.0).label.tolist() == ["5.1", "X1"]
