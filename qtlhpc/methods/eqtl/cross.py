"""eQTL mapping of a haploid segregant / RIL cross (Liu, de la Fuente & Hoeschele 2008, Genetics 178:1763,
Methods "Expression QTL analysis"; readings: shared/specs/cal-sem.md B1.1, B2.1): the public kernels.

* cis mapping, eQTL regions, cis-trans targets: :mod:`qtlhpc.methods.eqtl.cross_cis`;
* PC mapping (this module): k-means of the e-traits with distance 1 - |r| (:func:`abs_correlation_kmeans`),
  PCA of each cluster's correlation matrix (:func:`cluster_components`), KW scan of the PCs with eigenvalue
  > 1.5, PC-eQTL regions and every e-trait tested at their peaks (:func:`pc_map`);
* trans mapping, model (1) with the intersection-union test, blocked: :mod:`qtlhpc.methods.eqtl.cross_trans`.

Shapes: ``genotypes (n_individuals, n_markers)`` 0/1, NaN missing; ``expression (n_genes, n_individuals)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List

import numpy as np
from scipy.sparse import csr_matrix

from qtlhpc.errors import InputError
from qtlhpc.methods.eqtl.cross_cis import (
    DEFAULT_ALPHA, DEFAULT_LOGP_DROP, DEFAULT_MIN_OVERLAP, CisMap, EqtlRegions, PeakTargets, as_expression,
    as_genotypes, check_marker_map, cis_map, cis_regions, cis_trans_map, closest_marker, confidence_intervals,
    eqtl_regions, kruskal_scan, kruskal_wallis, merge_eqtl, nearest_markers, peak_marker_targets)
from qtlhpc.methods.eqtl.cross_trans import (
    DEFAULT_MIN_RECOMBINATION, TRANS_BLOCK_VARIABLES, TransBlock, TransInputs, TransMap, bh_qvalues_of_kept,
    marker_genotypes_of_genes, prepare_trans, trans_block, trans_map)
from qtlhpc.parallel import unit_rng
from qtlhpc.stats.fdr import benjamini_hochberg

__all__ = [
    # cis, regions, cis-trans (cross_cis)
    "kruskal_wallis", "kruskal_scan", "nearest_markers", "closest_marker", "check_marker_map", "cis_map",
    "CisMap", "confidence_intervals", "merge_eqtl", "eqtl_regions", "EqtlRegions", "cis_regions",
    "peak_marker_targets", "cis_trans_map", "PeakTargets",
    # PC mapping (here)
    "standardized_rows", "abs_correlation_kmeans", "KMeansResult", "cluster_components", "ClusterComponents",
    "chromosome_peaks", "pc_map", "PcMap",
    # trans (cross_trans)
    "marker_genotypes_of_genes", "prepare_trans", "TransInputs", "trans_block", "TransBlock",
    "TRANS_BLOCK_VARIABLES", "trans_map", "TransMap", "bh_qvalues_of_kept",
    "DEFAULT_ALPHA", "DEFAULT_LOGP_DROP", "DEFAULT_MIN_OVERLAP", "DEFAULT_MIN_RECOMBINATION",
]

DEFAULT_CLUSTERS = 100
DEFAULT_RESTARTS = 10
DEFAULT_MIN_EIGENVALUE = 1.5
CENTROIDS = ("sign_mean", "principal_component")


def standardized_rows(expression) -> np.ndarray:
    """Each e-trait centred and scaled to unit Euclidean norm (missing values -> the mean, 0), so that
    ``Z @ Z.T`` is the correlation matrix; constant rows are 0 (|r| = 0 with every other row)."""
    values = np.asarray(expression, dtype=float)
    observed = ~np.isnan(values)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(observed, values, 0.0).sum(axis=1) / observed.sum(axis=1)
    centred = np.where(observed, values - np.nan_to_num(mean)[:, None], 0.0)
    norm = np.sqrt(np.sum(centred * centred, axis=1))
    return centred / np.where(norm > 0, norm, 1.0)[:, None]


# ---------------------------------------------------------------------------------------------------------
# k-means with distance 1 - |r|


@dataclass(frozen=True)
class KMeansResult:
    """``labels (n_genes,)`` cluster of each gene; ``centroids (n_clusters, n_individuals)`` unit vectors;
    ``objective`` of the best restart; ``history`` its objective after each assignment step (non-increasing);
    ``restart`` which restart won; ``objectives`` the final objective of every restart."""

    labels: np.ndarray
    centroids: np.ndarray
    objective: float
    history: np.ndarray
    restart: int
    objectives: np.ndarray


def _objective(similarity: np.ndarray, centroid: str) -> np.ndarray:
    """Per-gene distance to its centroid: 1 - |r| (sign_mean) or 1 - r^2 (principal_component)."""
    return 1.0 - (np.abs(similarity) if centroid == "sign_mean" else similarity * similarity)


def _plus_plus_start(z: np.ndarray, n_clusters: int, rng: np.random.Generator) -> np.ndarray:
    """k-means++ seeding with distance 1 - |r|: centres are genes drawn with probability ~ distance^2."""
    n_genes = z.shape[0]
    chosen = [int(rng.integers(n_genes))]
    distance = 1.0 - np.abs(z @ z[chosen[0]])
    for _ in range(1, n_clusters):
        weight = np.maximum(distance, 0.0) ** 2
        total = weight.sum()
        pick = int(rng.choice(n_genes, p=weight / total)) if total > 0 else int(rng.integers(n_genes))
        chosen.append(pick)
        distance = np.minimum(distance, 1.0 - np.abs(z @ z[pick]))
    return z[chosen].copy()


def _update_centroids(z, labels, signs, centroids, centroid: str) -> np.ndarray:
    """Centroid of each cluster: the normalised sum of its sign-aligned members (sign_mean), or the first
    principal direction of its members (principal_component).  Empty clusters keep their centroid."""
    updated = centroids.copy()
    if centroid == "sign_mean":
        n_genes = z.shape[0]
        membership = csr_matrix((signs, (labels, np.arange(n_genes))), shape=(centroids.shape[0], n_genes))
        sums = np.asarray(membership @ z)
        norm = np.sqrt(np.sum(sums * sums, axis=1))
        filled = norm > 0
        updated[filled] = sums[filled] / norm[filled, None]
        return updated
    for k in np.unique(labels):
        members = z[labels == k]
        direction = np.linalg.svd(members, full_matrices=False)[2][0]
        updated[k] = direction if direction @ centroids[k] >= 0 else -direction
    return updated


def _lloyd(z, centroids, centroid: str, max_iter: int):
    """Lloyd iterations from ``centroids``; returns (labels, centroids, history)."""
    history = []
    labels = signs = None
    for _ in range(max_iter):
        similarity = z @ centroids.T
        new_labels = np.argmax(np.abs(similarity), axis=1)
        best = similarity[np.arange(z.shape[0]), new_labels]
        new_signs = np.where(best < 0, -1.0, 1.0)
        history.append(float(np.sum(_objective(best, centroid))))
        if labels is not None and np.array_equal(new_labels, labels) and np.array_equal(new_signs, signs):
            break
        labels, signs = new_labels, new_signs
        centroids = _update_centroids(z, labels, signs, centroids, centroid)
        empty = np.setdiff1d(np.arange(centroids.shape[0]), labels)
        if empty.size:   # re-seed an empty cluster at the genes farthest from their centroids
            farthest = np.argsort(-_objective(best, centroid), kind="stable")[:empty.size]
            centroids[empty] = z[farthest]
    return labels, centroids, np.asarray(history)


def abs_correlation_kmeans(expression, n_clusters: int = DEFAULT_CLUSTERS, *, n_restarts: int = DEFAULT_RESTARTS,
                           seed: int = 0, max_iter: int = 300, centroid: str = "sign_mean") -> KMeansResult:
    """k-means of the e-traits ``(n_genes, n_individuals)`` with distance 1 - |r| (the paper: "absolute
    correlation as the distance measure").

    Lloyd iterations from k-means++ starts (restart i draws from ``unit_rng(seed, "eqtl-kmeans", i)``), keeping
    the restart with the smallest within-cluster distance sum.  A gene joins the centroid c maximising |r(z, c)|.
    Centroids are sign-invariant: ``"sign_mean"`` (default) is the normalised sum of the members each flipped to
    the sign of its correlation with the current centroid, a step that never increases sum(1 - |r|), so the
    objective falls monotonically.  ``"principal_component"`` (spec B2.1 wording) is the first principal
    direction of the members, which minimises sum(1 - r^2) instead; with it that is the objective reported.
    """
    if centroid not in CENTROIDS:
        raise InputError(f"centroid must be one of {CENTROIDS}, got {centroid!r}")
    z = standardized_rows(expression)
    n_genes = z.shape[0]
    if not 1 <= n_clusters <= n_genes:
        raise InputError(f"n_clusters must be between 1 and the number of genes ({n_genes}), got {n_clusters}")
    best = None
    objectives = []
    for restart in range(int(n_restarts)):
        start = _plus_plus_start(z, n_clusters, unit_rng(seed, "eqtl-kmeans", restart))
        labels, centroids, history = _lloyd(z, start, centroid, max_iter)
        objectives.append(history[-1])
        if best is None or history[-1] < best[2][-1]:
            best = (labels, centroids, history, restart)
    labels, centroids, history, restart = best
    return KMeansResult(labels, centroids, float(history[-1]), history, restart, np.asarray(objectives))


# ---------------------------------------------------------------------------------------------------------
# PCA per cluster and PC mapping


@dataclass(frozen=True)
class ClusterComponents:
    """Retained PCs: ``scores (n_pcs, n_individuals)``, ``cluster (n_pcs,)``, ``eigenvalue (n_pcs,)`` (of the
    cluster's correlation matrix), ``loadings (n_pcs, n_genes)`` (eigenvector entries, 0 outside the cluster)."""

    scores: np.ndarray
    cluster: np.ndarray
    eigenvalue: np.ndarray
    loadings: np.ndarray


def cluster_components(expression, labels, *, min_eigenvalue: float = DEFAULT_MIN_EIGENVALUE) -> ClusterComponents:
    """PCA of each cluster's correlation matrix; PCs with eigenvalue > ``min_eigenvalue`` are kept, by cluster
    then decreasing eigenvalue.  Missing values are mean-imputed; each PC's sign makes its largest loading
    positive."""
    values = np.asarray(expression, dtype=float)
    n_genes, n_individuals = values.shape
    z = standardized_rows(values) * np.sqrt(n_individuals - 1)      # unit variance (ddof 1) rows
    labels = np.asarray(labels)
    scores: List[np.ndarray] = []
    clusters, eigenvalues, loadings = [], [], []
    for k in np.unique(labels):
        members = np.flatnonzero(labels == k)
        _, singular, vt = np.linalg.svd(z[members].T, full_matrices=False)       # (N x n_k)
        eigenvalue = singular ** 2 / (n_individuals - 1)
        for j in np.flatnonzero(eigenvalue > min_eigenvalue):
            vector = vt[j] if vt[j][np.argmax(np.abs(vt[j]))] > 0 else -vt[j]
            scores.append(vector @ z[members])
            clusters.append(k)
            eigenvalues.append(eigenvalue[j])
            loading = np.zeros(n_genes)
            loading[members] = vector
            loadings.append(loading)
    if not scores:
        return ClusterComponents(np.zeros((0, n_individuals)), np.zeros(0, int), np.zeros(0), np.zeros((0, n_genes)))
    return ClusterComponents(np.array(scores), np.array(clusters), np.array(eigenvalues), np.array(loadings))


@dataclass(frozen=True)
class PcMap:
    """PC mapping: ``kmeans``, ``components``; ``scan_pvalue``/``scan_qvalue (n_pcs, n_markers)`` (BH over all
    PC x marker tests); ``regions`` of the PC-eQTL (``regions.trait`` = PC index); ``targets`` every e-trait
    at each region's peak marker (BH over all region x gene tests)."""

    kmeans: KMeansResult
    components: ClusterComponents
    scan_pvalue: np.ndarray
    scan_qvalue: np.ndarray
    regions: EqtlRegions
    targets: PeakTargets


def chromosome_peaks(pvalues, marker_chromosome):
    """The smallest p of each row on each chromosome: ``(row, marker)`` index arrays, one per row and chromosome
    (a chromosome with only NaN p gives none)."""
    pvalues = np.asarray(pvalues, dtype=float)
    chromosome = np.asarray(marker_chromosome)
    rows, markers = [], []
    for label in np.unique(chromosome):
        columns = np.flatnonzero(chromosome == label)
        block = np.where(np.isnan(pvalues[:, columns]), np.inf, pvalues[:, columns])
        best = np.argmin(block, axis=1)
        tested = np.isfinite(block[np.arange(block.shape[0]), best])
        rows.append(np.flatnonzero(tested))
        markers.append(columns[best[tested]])
    order_rows = np.concatenate(rows) if rows else np.zeros(0, int)
    order_markers = np.concatenate(markers) if markers else np.zeros(0, int)
    order = np.lexsort((order_markers, order_rows))
    return order_rows[order], order_markers[order]


def pc_map(expression, genotypes, marker_chromosome, marker_position, *, n_clusters: int = DEFAULT_CLUSTERS,
           n_restarts: int = DEFAULT_RESTARTS, seed: int = 0, centroid: str = "sign_mean",
           min_eigenvalue: float = DEFAULT_MIN_EIGENVALUE, alpha: float = DEFAULT_ALPHA,
           drop: float = DEFAULT_LOGP_DROP, min_overlap: float = DEFAULT_MIN_OVERLAP,
           merge_rule: str = "clump") -> PcMap:
    """PC mapping: cluster the e-traits (:func:`abs_correlation_kmeans`), keep the PCs of each cluster with
    eigenvalue > ``min_eigenvalue``, KW-scan each PC at every marker (BH over all PC x marker tests), take on
    each chromosome the PC's best marker as a PC-eQTL when its q <= alpha [our reading: one peak per PC and
    chromosome], merge the PC-eQTL into regions (CI drop, 80% overlap; ``merge_rule`` as in
    :func:`~qtlhpc.methods.eqtl.cross_cis.merge_eqtl`), and test every e-trait at each region's peak marker (KW,
    BH over all region x gene tests)."""
    genotypes = as_genotypes(genotypes)
    expression = as_expression(expression, genotypes.shape[0])
    chromosome, position = check_marker_map(marker_chromosome, marker_position)
    if chromosome.size != genotypes.shape[1]:
        raise InputError(f"the marker map has {chromosome.size} markers but genotypes has {genotypes.shape[1]} "
                         "columns")
    kmeans = abs_correlation_kmeans(expression, n_clusters, n_restarts=n_restarts, seed=seed, centroid=centroid)
    components = cluster_components(expression, kmeans.labels, min_eigenvalue=min_eigenvalue)
    scan_pvalue = kruskal_scan(components.scores, genotypes)[1]
    scan_qvalue = benjamini_hochberg(scan_pvalue)
    pcs, peaks = chromosome_peaks(scan_pvalue, chromosome)
    significant = scan_qvalue[pcs, peaks] <= alpha
    pcs, peaks = pcs[significant], peaks[significant]
    regions = eqtl_regions(pcs, scan_pvalue[pcs], peaks, chromosome, position, drop=drop, min_overlap=min_overlap,
                           rule=merge_rule)
    targets = peak_marker_targets(expression, genotypes, regions.region_peak, alpha=alpha)
    return PcMap(kmeans, components, scan_pvalue, scan_qvalue, regions, targets)
