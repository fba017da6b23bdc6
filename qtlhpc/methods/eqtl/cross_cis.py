"""Cis and cis-trans eQTL mapping of a haploid cross (Liu, de la Fuente & Hoeschele 2008, Genetics 178:1763,
Methods "Expression QTL analysis"; readings from shared/specs/cal-sem.md B2.1).

Kernels only (arrays in, arrays out; no files, no MPI, no config):

* :func:`kruskal_wallis` / :func:`kruskal_scan` -- the two-group Kruskal-Wallis test (chi-square approximation
  with tie correction, equal to ``scipy.stats.kruskal``), row-wise or over traits x markers;
* :func:`nearest_markers`, :func:`closest_marker` -- the marker(s) flanking / nearest each gene's position;
* :func:`cis_map` -- cis p (min over the flanking markers x their number) and BH q per gene;
* :func:`confidence_intervals`, :func:`merge_eqtl` -- CI of an eQTL and the 80%-overlap region merging;
* :func:`cis_regions`, :func:`peak_marker_targets`, :func:`cis_trans_map` -- cis-eQTL regions and the e-traits
  each region's peak marker affects.

Shapes: ``genotypes (n_individuals, n_markers)`` coded 0/1 with NaN missing; ``expression (n_genes,
n_individuals)`` gene-major, NaN missing; markers ordered by position within each chromosome, each chromosome's
markers contiguous (:func:`check_marker_map`).  Individuals with a missing value are left out of each test.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional, Tuple

import numpy as np
from scipy.sparse import csr_matrix
from scipy.sparse.csgraph import connected_components
from scipy.special import erfc

from qtlhpc.errors import InputError
from qtlhpc.stats.fdr import benjamini_hochberg

DEFAULT_ALPHA = 0.05
DEFAULT_LOGP_DROP = 1.5        # CI: contiguous markers with -log10 p >= peak - 1.5 (spec B2.1 step 4)
DEFAULT_MIN_OVERLAP = 0.8      # regions merge when |A n B| / min(|A|, |B|) > 0.8 (paper: "by >80%")


# ---------------------------------------------------------------------------------------------------------
# Input checks shared by the eQTL cross modules


def as_expression(expression, n_individuals: Optional[int] = None) -> np.ndarray:
    """``expression`` as a float64 ``(n_genes, n_individuals)`` array; a clear error for other shapes."""
    values = np.asarray(expression, dtype=float)
    if values.ndim != 2:
        raise InputError(f"expression must be a 2-D array (n_genes, n_individuals), got shape {values.shape}")
    if n_individuals is not None and values.shape[1] != n_individuals:
        hint = (" (it looks transposed: pass expression gene-major, (n_genes, n_individuals))"
                if values.shape[0] == n_individuals else "")
        raise InputError(f"expression has {values.shape[1]} columns (individuals) but the genotypes have "
                         f"{n_individuals} rows (individuals){hint}")
    return values


def as_genotypes(genotypes) -> np.ndarray:
    """``genotypes`` as a float64 ``(n_individuals, n_markers)`` array coded 0/1 with NaN missing."""
    values = np.asarray(genotypes, dtype=float)
    if values.ndim != 2:
        raise InputError(f"genotypes must be a 2-D array (n_individuals, n_markers), got shape {values.shape}")
    observed = values[~np.isnan(values)]
    bad = observed[(observed != 0) & (observed != 1)]
    if bad.size:
        raise InputError(f"genotypes of a haploid cross must be 0, 1 or NaN (missing); found {bad[0]!r} "
                         f"among {bad.size} other values (recode the two parental alleles as 0 and 1)")
    return values


def check_marker_map(marker_chromosome, marker_position) -> Tuple[np.ndarray, np.ndarray]:
    """Check that each chromosome's markers are contiguous and in non-decreasing position; returns the arrays."""
    chromosome = np.asarray(marker_chromosome)
    position = np.asarray(marker_position, dtype=float)
    if chromosome.shape != position.shape or chromosome.ndim != 1:
        raise InputError(f"marker_chromosome {chromosome.shape} and marker_position {position.shape} must be "
                         "1-D arrays of length n_markers")
    starts = np.flatnonzero(np.r_[True, chromosome[1:] != chromosome[:-1]])
    labels = chromosome[starts]
    if len(set(labels.tolist())) != labels.size:
        raise InputError("the markers of each chromosome must be contiguous: sort the markers by chromosome, "
                         "then by position")
    decreasing = np.flatnonzero((np.diff(position) < 0) & (chromosome[1:] == chromosome[:-1]))
    if decreasing.size:
        k = decreasing[0]
        raise InputError(f"marker positions must not decrease within a chromosome: marker {k + 1} "
                         f"({position[k + 1]:g}) follows marker {k} ({position[k]:g}) on chromosome "
                         f"{chromosome[k]!r}; sort the markers by chromosome, then by position")
    return chromosome, position


# ---------------------------------------------------------------------------------------------------------
# Kruskal-Wallis, two groups


def _masked_average_ranks(values: np.ndarray, order: Optional[np.ndarray] = None):
    """Average (mid-)ranks, 1-based, of each row of ``values (n_rows, n_columns)``, NaN left out; ``order``:
    the row-wise argsort of ``values`` (NaN last) when already known.

    Returns ``(ranks, n_valid, tie_sum)``: ranks (NaN where the value is NaN), the number of non-NaN values per
    row, and the tie term per row, sum over tie runs of ``t**3 - t`` (as ``scipy.stats.tiecorrect``)."""
    n_rows, n_columns = values.shape
    if order is None:
        order = np.argsort(values, axis=1, kind="stable")      # NaN sorts last
    ordered = np.take_along_axis(values, order, axis=1)
    valid = ~np.isnan(ordered)
    position = np.broadcast_to(np.arange(n_columns), ordered.shape)
    run_starts = np.ones(ordered.shape, dtype=bool)
    run_starts[:, 1:] = ordered[:, 1:] != ordered[:, :-1]       # NaN != anything: NaN never joins a run
    run_ends = np.ones(ordered.shape, dtype=bool)
    run_ends[:, :-1] = run_starts[:, 1:]
    first = np.maximum.accumulate(np.where(run_starts, position, 0), axis=1)
    last = np.minimum.accumulate(np.where(run_ends, position, n_columns)[:, ::-1], axis=1)[:, ::-1]
    run_length = last - first + 1
    tie_sum = np.where(valid, run_length * run_length - 1, 0).sum(axis=1).astype(float)   # sum_runs t^3 - t
    ranks = np.empty(values.shape)
    np.put_along_axis(ranks, order, np.where(valid, 0.5 * (first + last) + 1.0, np.nan), axis=1)
    return ranks, valid.sum(axis=1).astype(float), tie_sum


def _kruskal_from_rank_sums(rank_sum_one, n_one, n_valid, tie_sum):
    """H and p of the 2-group KW test from the rank sum and size of group 1 (arrays broadcast together)."""
    n_zero = n_valid - n_one
    rank_sum_zero = n_valid * (n_valid + 1) / 2.0 - rank_sum_one
    with np.errstate(divide="ignore", invalid="ignore"):
        between = rank_sum_zero ** 2 / n_zero + rank_sum_one ** 2 / n_one
        statistic = 12.0 / (n_valid * (n_valid + 1)) * between - 3 * (n_valid + 1)
        ties = 1.0 - tie_sum / (n_valid ** 3 - n_valid)
        statistic = statistic / ties
    statistic = np.where((n_zero < 1) | (n_one < 1) | ~(ties > 0), np.nan, statistic)
    # P(chi2_1 > H) = erfc(sqrt(H / 2)): twenty times faster than chdtrc(1, H), equal to 1e-13 relative
    return statistic, erfc(np.sqrt(0.5 * np.maximum(statistic, 0.0)))


def kruskal_wallis(values, groups) -> Tuple[np.ndarray, np.ndarray]:
    """Row-wise two-group Kruskal-Wallis test: ``(statistic, pvalue)``, each ``(n_tests,)``.

    ``values (n_tests, n_individuals)``, ``groups (n_tests, n_individuals)`` coded 0/1; a NaN in either leaves
    that individual out of that test.  H is corrected for ties, p = P(chi2_1 > H), as ``scipy.stats.kruskal``
    on ``(values[groups == 0], values[groups == 1])``; NaN where a group is empty or all values are tied.
    """
    values = np.array(values, dtype=float, ndmin=2)
    groups = np.array(groups, dtype=float, ndmin=2)
    if values.shape != groups.shape:
        raise InputError(f"values {values.shape} and groups {groups.shape} must have the same shape "
                         "(n_tests, n_individuals)")
    observed = groups[~np.isnan(groups)]
    if np.any((observed != 0) & (observed != 1)):
        raise InputError("groups must be coded 0, 1 or NaN")
    ranks, n_valid, tie_sum = _masked_average_ranks(np.where(np.isnan(groups), np.nan, values))
    in_one = (groups == 1) & ~np.isnan(ranks)
    rank_sum_one = np.where(in_one, ranks, 0.0).sum(axis=1)
    return _kruskal_from_rank_sums(rank_sum_one, in_one.sum(axis=1).astype(float), n_valid, tie_sum)


def kruskal_scan(traits, genotypes) -> Tuple[np.ndarray, np.ndarray]:
    """Kruskal-Wallis test of every trait at every marker: ``(statistic, pvalue)``, each ``(n_traits, n_markers)``.

    ``traits (n_traits, n_individuals)`` (genes or PCs, NaN missing), ``genotypes (n_individuals, n_markers)``.
    The traits are ranked once over all individuals; the group-1 rank sums are one GEMM of the ranks with the
    0/1 genotypes.  At a marker where individual d is untyped, the rank of every other individual i among the
    typed ones is its full rank less ``[v_d < v_i] + [v_d == v_i] / 2``: so the rank sums are corrected by one
    GEMM per untyped individual over the markers it misses (exact: every term is a multiple of 1/2).  Without
    ties among a trait's values the tie term stays 0 whoever is dropped; traits with ties are ranked again for
    each pattern of missing genotypes (:func:`kruskal_scan_by_pattern`), which gives the same numbers.
    """
    genotypes = as_genotypes(genotypes)
    traits = as_expression(traits, genotypes.shape[0])
    ranks, n_valid, tie_sum = _masked_average_ranks(traits)
    valid = ~np.isnan(ranks)
    missing = np.isnan(genotypes)
    typed = np.where(missing, 0.0, genotypes)
    rank_sum_one = np.where(valid, ranks, 0.0) @ typed
    n_one = valid.astype(float) @ typed
    n_valid_at = n_valid[:, None] - valid.astype(float) @ missing.astype(float)
    for untyped in np.flatnonzero(missing.any(axis=1)):
        markers = np.flatnonzero(missing[untyped])
        value = traits[:, untyped:untyped + 1]
        with np.errstate(invalid="ignore"):
            below = (traits > value) + 0.5 * (traits == value)   # NaN on either side: 0
        rank_sum_one[:, markers] -= below @ typed[:, markers]
    statistic, pvalue = _kruskal_from_rank_sums(rank_sum_one, n_one, n_valid_at, np.zeros((traits.shape[0], 1)))
    tied = np.flatnonzero(tie_sum > 0)
    if tied.size:
        statistic[tied], pvalue[tied] = kruskal_scan_by_pattern(traits[tied], genotypes)
    return statistic, pvalue


def kruskal_scan_by_pattern(traits, genotypes) -> Tuple[np.ndarray, np.ndarray]:
    """:func:`kruskal_scan` computed the slow, obvious way for traits with ties: markers sharing one pattern of
    missing genotypes share one ranking of the traits, so each pattern ranks the traits again among its typed
    individuals (then one GEMM of the ranks with the 0/1 genotypes)."""
    genotypes = as_genotypes(genotypes)
    traits = as_expression(traits, genotypes.shape[0])
    n_traits, n_markers = traits.shape[0], genotypes.shape[1]
    statistic = np.full((n_traits, n_markers), np.nan)
    pvalue = np.full((n_traits, n_markers), np.nan)
    missing = np.isnan(genotypes)
    if missing.any():
        patterns, pattern_of_marker = np.unique(missing.T, axis=0, return_inverse=True)
        pattern_of_marker = pattern_of_marker.reshape(-1)
    else:
        patterns, pattern_of_marker = missing[:, :1].T, np.zeros(n_markers, dtype=int)
    full_order = np.argsort(traits, axis=1, kind="stable")
    for k, pattern in enumerate(patterns):
        markers = np.flatnonzero(pattern_of_marker == k)
        kept = ~pattern
        order = full_order
        if not kept.all():
            index_in_kept = np.cumsum(kept) - 1
            order = index_in_kept[full_order[kept[full_order]].reshape(n_traits, -1)]
        ranks, n_valid, tie_sum = _masked_average_ranks(traits[:, kept], order)
        valid = ~np.isnan(ranks)
        x = genotypes[np.ix_(kept, markers)]
        rank_sum_one = np.where(valid, ranks, 0.0) @ x
        n_one = valid.astype(float) @ x
        statistic[:, markers], pvalue[:, markers] = _kruskal_from_rank_sums(
            rank_sum_one, n_one, n_valid[:, None], tie_sum[:, None])
    return statistic, pvalue


# ---------------------------------------------------------------------------------------------------------
# Markers near genes


def _chromosome_codes(gene_chromosome, marker_chromosome):
    genes = np.asarray(gene_chromosome)
    markers = np.asarray(marker_chromosome)
    try:
        labels, codes = np.unique(np.concatenate([markers.astype(str), genes.astype(str)]), return_inverse=True)
    except TypeError as error:   # pragma: no cover - mixed object labels
        raise InputError(f"chromosome labels must be strings or integers: {error}") from None
    return codes[markers.size:], codes[:markers.size]


def nearest_markers(gene_chromosome, gene_position, marker_chromosome, marker_position) -> np.ndarray:
    """The marker(s) flanking each gene: ``(n_genes, 2)`` marker indices, -1 where absent.

    Column 0 is the last marker at or before the gene's physical position, column 1 the first marker after it,
    on the gene's chromosome.  A gene at a marker's position, or before the first / after the last marker of its
    chromosome, has one marker (column 0); a gene on a chromosome without markers has none (both -1).
    Chromosome labels are compared as strings (``1`` and ``"1"`` are one chromosome).
    """
    marker_chromosome, marker_position = check_marker_map(marker_chromosome, marker_position)
    gene_position = np.asarray(gene_position, dtype=float)
    gene_code, marker_code = _chromosome_codes(gene_chromosome, marker_chromosome)
    if gene_code.shape != gene_position.shape:
        raise InputError(f"gene_chromosome {gene_code.shape} and gene_position {gene_position.shape} must "
                         "have one entry per gene")
    flanks = np.full((gene_position.size, 2), -1, dtype=np.int64)
    for code in np.unique(gene_code):
        genes = np.flatnonzero(gene_code == code)
        markers = np.flatnonzero(marker_code == code)
        if markers.size == 0:
            continue
        positions = marker_position[markers]
        before = np.searchsorted(positions, gene_position[genes], side="right") - 1
        after = np.searchsorted(positions, gene_position[genes], side="left")
        at_marker = (before >= 0) & (positions[np.maximum(before, 0)] == gene_position[genes])
        left = np.where(before >= 0, markers[np.maximum(before, 0)], -1)
        right = np.where((after < markers.size) & ~at_marker, markers[np.minimum(after, markers.size - 1)], -1)
        flanks[genes, 0] = np.where(left >= 0, left, right)
        flanks[genes, 1] = np.where(left >= 0, right, -1)
    return flanks


def closest_marker(gene_chromosome, gene_position, marker_chromosome, marker_position) -> np.ndarray:
    """The marker nearest each gene's physical position on its chromosome, ``(n_genes,)``, -1 where none
    (a tie in distance goes to the marker before the gene)."""
    flanks = nearest_markers(gene_chromosome, gene_position, marker_chromosome, marker_position)
    position = np.asarray(marker_position, dtype=float)
    gene_position = np.asarray(gene_position, dtype=float)
    left, right = flanks[:, 0], flanks[:, 1]
    distance_left = np.abs(gene_position - position[np.maximum(left, 0)])
    distance_right = np.abs(position[np.maximum(right, 0)] - gene_position)
    return np.where((right >= 0) & (distance_right < distance_left), right, left)


# ---------------------------------------------------------------------------------------------------------
# cis mapping


@dataclass(frozen=True)
class CisMap:
    """Per gene (``n_genes``): ``marker (n_genes, 2)`` the tested markers (-1 none), ``marker_pvalue (n_genes, 2)``
    their KW p-values, ``pvalue`` = min(marker p) x number of tested markers (capped at 1), ``peak_marker`` the
    tested marker with the smaller p (-1 untested), ``qvalue`` BH over the tested genes, ``significant``
    ``qvalue <= alpha``."""

    marker: np.ndarray
    marker_pvalue: np.ndarray
    pvalue: np.ndarray
    peak_marker: np.ndarray
    qvalue: np.ndarray
    significant: np.ndarray


def cis_map(expression, genotypes, cis_markers, *, alpha: float = DEFAULT_ALPHA) -> CisMap:
    """cis-eQTL mapping: KW test of each gene at its flanking marker(s) (``cis_markers (n_genes, 2)`` from
    :func:`nearest_markers`); a gene between two markers gets p = 2 min(p1, p2) (spec B2.1 [D]); BH across genes."""
    genotypes = as_genotypes(genotypes)
    expression = as_expression(expression, genotypes.shape[0])
    cis_markers = np.asarray(cis_markers, dtype=np.int64)
    if cis_markers.shape != (expression.shape[0], 2):
        raise InputError(f"cis_markers must be (n_genes, 2) = ({expression.shape[0]}, 2) marker indices from "
                         f"nearest_markers, got shape {cis_markers.shape}")
    marker_pvalue = np.full(cis_markers.shape, np.nan)
    for column in range(2):
        genes = np.flatnonzero(cis_markers[:, column] >= 0)
        groups = genotypes[:, cis_markers[genes, column]].T
        marker_pvalue[genes, column] = kruskal_wallis(expression[genes], groups)[1]
    n_tested = np.sum(~np.isnan(marker_pvalue), axis=1)
    best = np.argmin(np.where(np.isnan(marker_pvalue), np.inf, marker_pvalue), axis=1)
    rows = np.arange(best.size)
    pvalue = np.where(n_tested > 0, np.minimum(marker_pvalue[rows, best] * n_tested, 1.0), np.nan)
    peak = np.where(n_tested > 0, cis_markers[rows, best], -1)
    qvalue = benjamini_hochberg(pvalue)
    return CisMap(cis_markers, marker_pvalue, pvalue, peak, qvalue, np.nan_to_num(qvalue, nan=2.0) <= alpha)


# ---------------------------------------------------------------------------------------------------------
# Confidence intervals and regions


def confidence_intervals(pvalues, peak_marker, marker_chromosome, *, drop: float = DEFAULT_LOGP_DROP):
    """CI of each eQTL: the contiguous markers around the peak, on its chromosome, with -log10 p >= peak - drop.

    ``pvalues (n_eqtl, n_markers)`` each eQTL's trait profile, ``peak_marker (n_eqtl,)``.  Returns
    ``(first, last)`` inclusive marker indices, each ``(n_eqtl,)``.
    """
    with np.errstate(divide="ignore"):
        logp = -np.log10(np.asarray(pvalues, dtype=float))
    peak = np.asarray(peak_marker, dtype=np.int64)
    chromosome = np.asarray(marker_chromosome)
    rows = np.arange(peak.size)
    n_markers = logp.shape[1]
    inside = (logp >= (logp[rows, peak] - drop)[:, None]) & (chromosome[None, :] == chromosome[peak][:, None])
    index = np.arange(n_markers)
    last_outside_before = np.maximum.accumulate(np.where(inside, -1, index), axis=1)[rows, peak]
    first_outside_after = np.minimum.accumulate(np.where(inside, n_markers, index)[:, ::-1], axis=1)[:, ::-1]
    return last_outside_before + 1, first_outside_after[rows, peak] - 1


@dataclass(frozen=True)
class EqtlRegions:
    """eQTL and the regions they merge into.

    Per eQTL ``(n_eqtl,)``: ``trait`` (gene or PC index), ``peak`` marker, ``logp`` (-log10 p at the peak),
    ``first``/``last`` CI markers (inclusive), ``region``.  Per region ``(n_regions,)``: ``region_peak`` (the
    peak of its strongest eQTL), ``region_first``/``region_last`` (CI marker indices, inclusive: the strongest
    eQTL's CI, or the union of the members' CIs with ``rule="transitive"``), ``region_start_bp``/``region_end_bp``.
    Regions are numbered in marker order of their first CI marker.
    """

    trait: np.ndarray
    peak: np.ndarray
    logp: np.ndarray
    first: np.ndarray
    last: np.ndarray
    region: np.ndarray
    region_peak: np.ndarray
    region_first: np.ndarray
    region_last: np.ndarray
    region_start_bp: np.ndarray
    region_end_bp: np.ndarray

    @property
    def n_regions(self) -> int:
        return int(self.region_peak.size)


MERGE_RULES = ("clump", "transitive")


def _overlaps(start, end, anchor_start, anchor_end) -> np.ndarray:
    """|A n B| / min(|A|, |B|) in bp of one interval against many (an interval [s, e] spans e - s + 1 bp)."""
    shared = np.maximum(0.0, np.minimum(end, anchor_end) - np.maximum(start, anchor_start) + 1)
    return shared / np.minimum(end - start + 1, anchor_end - anchor_start + 1)


def _clump(peak, logp, start, end, chromosome_of, min_overlap):
    """Strongest-first clumping: each eQTL joins the strongest region anchor it is linked to, or anchors a new
    region.  Returns the region (in anchor order) of each eQTL and the anchors."""
    region = np.full(peak.size, -1, dtype=np.int64)
    anchors = []
    for k in np.lexsort((peak, -logp)):                     # strongest first, then lowest marker
        if anchors:
            a = np.asarray(anchors)
            linked = (chromosome_of[a] == chromosome_of[k]) & (
                (peak[a] == peak[k]) | (_overlaps(start[k], end[k], start[a], end[a]) > min_overlap))
            if linked.any():
                region[k] = region[a[np.argmax(linked)]]
                continue
        region[k] = len(anchors)
        anchors.append(k)
    return region, np.asarray(anchors, dtype=np.int64)


def _transitive(peak, logp, start, end, chromosome_of, min_overlap):
    """Connected components of the pairwise link; each component's anchor is its strongest eQTL."""
    rows, cols = [], []
    for label in np.unique(chromosome_of):
        members = np.flatnonzero(chromosome_of == label)
        s, e = start[members], end[members]
        linked = ((_overlaps(s[:, None], e[:, None], s[None, :], e[None, :]) > min_overlap)
                  | (peak[members][:, None] == peak[members][None, :]))
        i, j = np.nonzero(linked)
        rows.append(members[i])
        cols.append(members[j])
    graph = csr_matrix((np.ones(sum(r.size for r in rows)), (np.concatenate(rows), np.concatenate(cols))),
                       shape=(peak.size, peak.size))
    n_regions, region = connected_components(graph, directed=False)
    anchors = np.full(n_regions, -1, dtype=np.int64)
    for k in np.lexsort((peak, -logp))[::-1]:               # the strongest member is written last
        anchors[region[k]] = k
    return region.astype(np.int64), anchors


def merge_eqtl(trait, peak, logp, first, last, marker_chromosome, marker_position, *,
               min_overlap: float = DEFAULT_MIN_OVERLAP, rule: str = "clump") -> EqtlRegions:
    """Merge eQTL into regions.  Two eQTL are linked when their peaks are one marker or their CIs overlap by more
    than ``min_overlap``, overlap = |A n B| / min(|A|, |B|) in base pairs (an interval [s, e] spans e - s + 1 bp,
    so a one-marker CI spans 1 bp).

    ``rule="clump"`` (default): eQTL are taken strongest first (largest -log10 p, then lowest marker); each joins
    the strongest existing region whose anchor (first, strongest eQTL) it is linked to, or anchors a new region;
    the region's peak and CI are its anchor's.  ``rule="transitive"``: regions are the connected components of
    the link; the peak is the strongest member's, the CI the union of the members' CIs.  The paper states the
    pairwise link only; transitive closure lets weak eQTL with wide CIs chain distinct strong eQTL into one
    long region, which clumping prevents.
    """
    if rule not in MERGE_RULES:
        raise InputError(f"rule must be one of {MERGE_RULES}, got {rule!r}")
    trait, peak, first, last = (np.asarray(a, dtype=np.int64).reshape(-1) for a in (trait, peak, first, last))
    logp = np.asarray(logp, dtype=float).reshape(-1)
    chromosome = np.asarray(marker_chromosome)
    position = np.asarray(marker_position, dtype=float)
    if peak.size == 0:
        empty = np.zeros(0, dtype=np.int64)
        return EqtlRegions(trait, peak, logp, first, last, empty, empty, empty, empty, np.zeros(0), np.zeros(0))
    start, end = position[first], position[last]
    merge = _clump if rule == "clump" else _transitive
    region, anchors = merge(peak, logp, start, end, chromosome[peak], min_overlap)
    if rule == "clump":
        region_first, region_last = first[anchors], last[anchors]
    else:
        region_first = np.full(anchors.size, np.iinfo(np.int64).max)
        region_last = np.full(anchors.size, -1, dtype=np.int64)
        np.minimum.at(region_first, region, first)
        np.maximum.at(region_last, region, last)
    order = np.lexsort((peak[anchors], region_first))          # number regions in marker order
    renumber = np.empty_like(order)
    renumber[order] = np.arange(order.size)
    region_first, region_last = region_first[order], region_last[order]
    return EqtlRegions(trait, peak, logp, first, last, renumber[region], peak[anchors][order], region_first,
                       region_last, position[region_first], position[region_last])


def eqtl_regions(trait, profile_pvalues, peak_marker, marker_chromosome, marker_position, *,
                 drop: float = DEFAULT_LOGP_DROP, min_overlap: float = DEFAULT_MIN_OVERLAP,
                 rule: str = "clump") -> EqtlRegions:
    """CIs from each eQTL's profile ``(n_eqtl, n_markers)`` around ``peak_marker``, then :func:`merge_eqtl`."""
    chromosome, position = check_marker_map(marker_chromosome, marker_position)
    profile = np.asarray(profile_pvalues, dtype=float).reshape(len(peak_marker), chromosome.size)
    peak = np.asarray(peak_marker, dtype=np.int64)
    first, last = confidence_intervals(profile, peak, chromosome, drop=drop)
    with np.errstate(divide="ignore"):
        logp = -np.log10(profile[np.arange(peak.size), peak])
    return merge_eqtl(trait, peak, logp, first, last, chromosome, position, min_overlap=min_overlap, rule=rule)


def cis_regions(expression, genotypes, cis: CisMap, marker_chromosome, marker_position, *,
                drop: float = DEFAULT_LOGP_DROP, min_overlap: float = DEFAULT_MIN_OVERLAP,
                rule: str = "clump") -> EqtlRegions:
    """Regions of the significant cis-eQTL: each significant gene's KW profile over all markers gives the CI
    around its cis peak marker; eQTL merge by :func:`merge_eqtl`.  ``trait`` holds gene indices."""
    genes = np.flatnonzero(cis.significant)
    profile = kruskal_scan(as_expression(expression)[genes], genotypes)[1]
    return eqtl_regions(genes, profile, cis.peak_marker[genes], marker_chromosome, marker_position,
                        drop=drop, min_overlap=min_overlap, rule=rule)


@dataclass(frozen=True)
class PeakTargets:
    """Every e-trait tested at each region's peak marker: ``pvalue``/``qvalue (n_regions, n_genes)`` (NaN where
    not tested), BH over all tested (region, gene) pairs; ``significant = qvalue <= alpha``."""

    pvalue: np.ndarray
    qvalue: np.ndarray
    significant: np.ndarray


def peak_marker_targets(expression, genotypes, region_peak, *, exclude=None,
                        alpha: float = DEFAULT_ALPHA) -> PeakTargets:
    """KW test of every gene at each region's peak marker; ``exclude (n_regions, n_genes)`` bool marks pairs
    not tested (e.g. the region's own cis genes); BH over all tested pairs together."""
    genotypes = as_genotypes(genotypes)
    expression = as_expression(expression, genotypes.shape[0])
    peaks = np.asarray(region_peak, dtype=np.int64)
    pvalue = kruskal_scan(expression, genotypes[:, peaks])[1].T.copy()
    if exclude is not None:
        pvalue[np.asarray(exclude, dtype=bool)] = np.nan
    qvalue = benjamini_hochberg(pvalue)
    return PeakTargets(pvalue, qvalue, np.nan_to_num(qvalue, nan=2.0) <= alpha)


def cis_trans_map(expression, genotypes, regions: EqtlRegions, *, alpha: float = DEFAULT_ALPHA) -> PeakTargets:
    """cis-trans targets: every other e-trait tested at each cis-eQTL region's peak marker (the region's own
    cis genes are not tested), BH over all (region, gene) tests."""
    n_genes = as_expression(expression).shape[0]
    exclude = np.zeros((regions.n_regions, n_genes), dtype=bool)
    exclude[regions.region, regions.trait] = True
    return peak_marker_targets(expression, genotypes, regions.region_peak, exclude=exclude, alpha=alpha)
