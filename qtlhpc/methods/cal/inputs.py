"""Inputs of CAL: binarised locus matrices and expression targets (de Ridder et al. 2010, Sec. 3.1).

* :func:`binary_calls` -- a cross's genotype codes as 1 / 0 / missing.  The rule (documented in docs/cal.md):
  the second parental allele is 1 (``BB`` in recombinant inbred strains, ``AB`` in a backcross: D2 in the BXD
  strains when B6 is the first parent), the first is 0; heterozygous calls of an F2 (``AB``), ``not BB``,
  ``not AA`` and missing calls are *missing* and take no part in a marker cluster's vote.
* :func:`marker_clusters` -- consecutive markers of one chromosome are grouped while they differ from the
  group's first marker in at most ``max_distance`` strains (counted over strains called at both); the centroid
  is the majority vote of the members' calls; a tied vote takes the call of the called member nearest the
  group's middle; a strain no member calls takes the call of the nearest called marker of the chromosome.
  Centroids with fewer than ``eta`` ones or zeros are dropped (no network on them can pass the score's guard).
* :func:`read_binary_matrix` -- a user's binary matrix: TSV, header ``strain`` then locus names, one row per
  strain, values 0 or 1.
* :func:`correlation_clusters` -- genes clustered by complete linkage on the correlation distance ``1 - r``,
  cut at ``cutoff`` (0.2 in the paper), centroids = mean of the members' z-scored profiles.
"""

from __future__ import annotations

import csv
import pathlib
from dataclasses import dataclass
from typing import List, Sequence

import numpy as np

from qtlhpc.errors import InputError

#: genotype code -> binary call (-1: missing), by cross type (codes as R/qtl, see qtlhpc/io/cross.py)
CODES = {
    "riself": {1: 0, 2: 1},
    "risib": {1: 0, 2: 1},
    "bc": {1: 0, 2: 1},
    "f2": {1: 0, 3: 1},           # 2 = AB (heterozygous), 4 = not BB, 5 = not AA: missing
    "imf2": {1: 0, 3: 1},
    "dh": {1: 0, 2: 1},
    "haploid": {1: 0, 2: 1},
}


def binary_calls(genotypes, cross_type: str) -> np.ndarray:
    """Genotype codes ``(T, M)`` -> ``(T, M) int8``: 1 second parental allele, 0 first, -1 missing."""
    g = np.asarray(genotypes)
    if cross_type not in CODES:
        raise InputError(f"CAL needs a cross of inbred or backcross type to binarise loci (one of "
                         f"{', '.join(CODES)}); the cross is {cross_type!r}: give a binary locus matrix "
                         "([cal] loci) instead")
    out = np.full(g.shape, -1, dtype=np.int8)
    for code, value in CODES[cross_type].items():
        out[g == code] = value
    return out


@dataclass
class LocusClusters:
    """``matrix (T, L) uint8`` the binary loci; ``names`` (L,) (first and last member markers);
    ``chromosomes`` (L,); ``first``/``last`` (L,) marker indices of each cluster; ``dropped`` clusters with
    fewer than eta ones or zeros."""

    matrix: np.ndarray
    names: np.ndarray
    chromosomes: np.ndarray
    first: np.ndarray
    last: np.ndarray
    n_markers: int
    dropped: int


def marker_clusters(calls, chromosomes: Sequence[str], marker_names: Sequence[str], *, max_distance: int = 1,
                    eta: int = 3) -> LocusClusters:
    """Marker clusters of binary ``calls (T, M)`` (-1 missing), in marker order (see the module docstring)."""
    calls = np.asarray(calls, dtype=np.int8)
    n, m = calls.shape
    chromosomes = np.asarray(chromosomes).astype(str)
    marker_names = np.asarray(marker_names).astype(str)
    groups: List[List[int]] = []
    for j in range(m):
        if groups and chromosomes[groups[-1][0]] == chromosomes[j]:
            head = calls[:, groups[-1][0]]
            both = (head >= 0) & (calls[:, j] >= 0)
            if int(np.sum(head[both] != calls[both, j])) <= max_distance:
                groups[-1].append(j)
                continue
        groups.append([j])
    columns, names, chroms, firsts, lasts = [], [], [], [], []
    dropped = 0
    for members in groups:
        block = calls[:, members]
        ones = (block == 1).sum(axis=1)
        zeros = (block == 0).sum(axis=1)
        centroid = np.where(ones > zeros, 1, np.where(zeros > ones, 0, -1)).astype(np.int8)
        middle = (len(members) - 1) / 2.0
        by_middle = sorted(range(len(members)), key=lambda k: (abs(k - middle), k))
        for tau in np.flatnonzero((centroid < 0) & (ones + zeros > 0)):
            centroid[tau] = next(block[tau, k] for k in by_middle if block[tau, k] >= 0)
        for tau in np.flatnonzero(centroid < 0):
            same = np.flatnonzero((chromosomes == chromosomes[members[0]]) & (calls[tau] >= 0))
            if same.size == 0:
                raise InputError(f"strain {tau + 1} has no called marker on chromosome {chromosomes[members[0]]}: "
                                 "its loci cannot be binarised (drop the strain or give a binary locus matrix)")
            centre = (members[0] + members[-1]) / 2.0
            nearest = same[np.argmin(np.abs(same - centre))]
            centroid[tau] = calls[tau, nearest]
        if centroid.sum() < eta or n - centroid.sum() < eta:
            dropped += 1
            continue
        columns.append(centroid.astype(np.uint8))
        first, last = marker_names[members[0]], marker_names[members[-1]]
        names.append(first if first == last else f"{first}..{last}")
        chroms.append(chromosomes[members[0]])
        firsts.append(members[0])
        lasts.append(members[-1])
    matrix = np.array(columns, dtype=np.uint8).T if columns else np.zeros((n, 0), dtype=np.uint8)
    return LocusClusters(matrix, np.array(names, dtype=str), np.array(chroms, dtype=str),
                         np.array(firsts, dtype=np.int64), np.array(lasts, dtype=np.int64), m, dropped)


def read_binary_matrix(path) -> tuple:
    """A user's binary locus matrix: ``(strain ids (T,), locus names (L,), matrix (T, L) uint8)``."""
    path = pathlib.Path(path)
    if not path.is_file():
        raise InputError("binary locus matrix not found ([cal] loci)", file=path)
    with open(path, newline="") as handle:
        rows = [row for row in csv.reader(handle, delimiter="\t") if row and not row[0].startswith("#")]
    if len(rows) < 2:
        raise InputError("expected a header (strain, locus names...) and one row per strain", file=path, line=1)
    header = rows[0]
    if len(header) < 2:
        raise InputError("the header must name the strain column and at least one locus", file=path, line=1)
    strains, values = [], []
    for line, row in enumerate(rows[1:], start=2):
        if len(row) != len(header):
            raise InputError(f"{len(row)} fields; the header has {len(header)}", file=path, line=line)
        strains.append(row[0])
        for column, text in enumerate(row[1:], start=2):
            if text.strip() not in ("0", "1"):
                raise InputError(f"locus {header[column - 1]!r}: {text!r} is not 0 or 1 (a binary locus matrix has "
                                 "no missing calls)", file=path, line=line, column=column)
        values.append([int(t) for t in row[1:]])
    if len(set(strains)) != len(strains):
        raise InputError("a strain id appears twice", file=path)
    return np.array(strains, dtype=str), np.array(header[1:], dtype=str), np.array(values, dtype=np.uint8)


def correlation_clusters(values, cutoff: float = 0.2):
    """Genes ``values (G, T)`` -> ``(labels (G,) 0-based in order of first member, centroids (K, T))``.

    Complete linkage on ``1 - r``, cut at ``cutoff``: every pair of one cluster has ``r >= 1 - cutoff``.
    """
    from scipy.cluster.hierarchy import fcluster, linkage

    values = np.asarray(values, dtype=float)
    z = (values - values.mean(axis=1, keepdims=True)) / values.std(axis=1, ddof=1, keepdims=True)
    if values.shape[0] == 1:
        return np.zeros(1, dtype=np.int64), z.copy()
    tree = linkage(z, method="complete", metric="correlation")
    raw = fcluster(tree, t=cutoff, criterion="distance")
    _, first = np.unique(raw, return_index=True)
    relabel = {raw[i]: k for k, i in enumerate(sorted(first))}
    labels = np.array([relabel[r] for r in raw], dtype=np.int64)
    centroids = np.array([z[labels == k].mean(axis=0) for k in range(len(relabel))])
    return labels, centroids
