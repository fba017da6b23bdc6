"""Regulator-target pairs and the encompassing directed network (EDN), spec B2.2-B2.3.

Pure numpy/scipy kernels: expression ``Y`` (N, G), marker genotypes ``M`` (N, n_markers) coded 0/1
(R/qtl RIL codes 1/2 are recoded by the caller), and the eQTL stage's findings as arrays.  eQTL nodes of
the EDN are markers (a region's peak marker, or the marker closest to a trans regulator).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, List, Sequence, Set, Tuple

import numpy as np
import scipy.stats

from qtlhpc.methods.sem.search import Network


def ols_pvalues(y: np.ndarray, columns: Sequence[np.ndarray]) -> np.ndarray:
    """Two-sided t-test p-values of the coefficients of ``columns`` in y ~ 1 + columns (N,)."""
    X = np.column_stack([np.ones(len(y))] + [np.asarray(c, dtype=np.float64) for c in columns])
    n, k = X.shape
    coef, _, rank, _ = np.linalg.lstsq(X, y, rcond=None)
    if rank < k or n <= k:
        return np.ones(k - 1)
    resid = y - X @ coef
    sigma2 = resid @ resid / (n - k)
    cov = sigma2 * np.linalg.inv(X.T @ X)
    t = coef / np.sqrt(np.diag(cov))
    return 2.0 * scipy.stats.t.sf(np.abs(t[1:]), n - k)


def recombination_fraction(a: np.ndarray, b: np.ndarray) -> float:
    """Share of lines with discordant genotypes at two markers (haploid / RIL codes 0/1)."""
    return float(np.mean(np.asarray(a) != np.asarray(b)))


@dataclass
class Region:
    """One eQTL region: its peak marker, the genes physically inside its CI, its significant cis genes
    (located in it) and its trans-affected genes (significant at the peak, located outside it)."""

    peak: int
    genes_in: np.ndarray
    cis_genes: np.ndarray
    targets: np.ndarray


@dataclass
class Edges:
    """Edges found so far: gene -> gene and marker -> gene, each with the kinds that gave it."""

    gene: Dict[Tuple[int, int], Set[str]] = field(default_factory=dict)
    qtl: Dict[Tuple[int, int], Set[str]] = field(default_factory=dict)
    cis_groups: Dict[int, Set[int]] = field(default_factory=dict)   # marker -> its true-cis genes
    required: Set[Tuple[int, int]] = field(default_factory=set)     # (marker, gene) needing a path

    def add_gene(self, r: int, t: int, kind: str) -> None:
        self.gene.setdefault((int(r), int(t)), set()).add(kind)

    def add_qtl(self, m: int, t: int, kind: str) -> None:
        self.qtl.setdefault((int(m), int(t)), set()).add(kind)


def region_pairs(Y, M, region: Region, edges: Edges, alpha: float = 0.05) -> None:
    """The paper's three steps for one region (spec B2.2), adding to ``edges``."""
    x = M[:, region.peak].astype(np.float64)
    cis = [int(g) for g in region.cis_genes]
    true_cis = []
    # step 1: cis vs cis-trans among the region's cis genes
    for t in cis:
        through = [r for r in cis if r != t and ols_pvalues(Y[:, t], [Y[:, r], x])[1] >= alpha]
        if not through:
            true_cis.append(t)
            edges.add_qtl(region.peak, t, "cis")
            edges.cis_groups.setdefault(region.peak, set()).add(t)
        else:
            for r in through:
                edges.add_qtl(region.peak, r, "cis")
                edges.cis_groups.setdefault(region.peak, set()).add(r)
                edges.add_gene(r, t, "cis-trans")
            edges.required.add((region.peak, t))
    # step 2: trans vs cis-trans for the trans-affected genes
    likely_trans = []
    for t in (int(g) for g in region.targets):
        through = [r for r in true_cis if ols_pvalues(Y[:, t], [Y[:, r], x])[1] >= alpha]
        edges.required.add((region.peak, t))
        if through:
            for r in through:
                edges.add_gene(r, t, "cis-trans")
        else:
            likely_trans.append(t)
    # step 3: regulator search inside the region for the likely-trans targets
    candidates = [int(g) for g in region.genes_in]
    K = len(candidates)
    for t in likely_trans:
        kept = False
        for r in candidates:
            if r == t:
                continue
            others = [o for o in candidates if o not in (r, t)]
            if others:
                p_max = max(ols_pvalues(Y[:, t], [Y[:, r], x, Y[:, o]])[0] for o in others)
            else:
                p_max = ols_pvalues(Y[:, t], [Y[:, r], x])[0]
            if p_max < alpha / max(K, 1):
                edges.add_gene(r, t, "trans-in-region")
                kept = True
        if kept or not candidates:
            edges.add_qtl(region.peak, t, "trans-in-region")


def sparsify_trans(Y, M, pairs, marker_of_gene, edges: Edges, alpha: float = 0.05,
                   min_recombination: float = 0.25) -> np.ndarray:
    """Local sparsification of trans pairs, the paper's Eq. (2); adds the kept pairs to ``edges``.

    ``pairs`` (n, 2): (regulator, target) pairs of the trans mapping.  A target with one regulator keeps
    it; with several, (r, t) is kept if max over r' of p_IUT(b1r, b2r) < alpha in
    y_t = b1r y_r + b2r x_r + b1r' y_r' + b2r' x_r' (x_r' left out when the markers of r and r' are
    closer than ``min_recombination``).  Returns a bool mask of the kept pairs.
    """
    pairs = np.asarray(pairs, dtype=np.int64).reshape(-1, 2)
    keep = np.zeros(len(pairs), dtype=bool)
    by_target: Dict[int, List[int]] = {}
    for j, (r, t) in enumerate(pairs):
        by_target.setdefault(int(t), []).append(j)
    for t, rows in by_target.items():
        regulators = [int(pairs[j, 0]) for j in rows]
        for j, r in zip(rows, regulators):
            if len(regulators) == 1:
                keep[j] = True
                continue
            xr = M[:, marker_of_gene[r]].astype(np.float64)
            worst = 0.0
            for o in regulators:
                if o == r:
                    continue
                xo = M[:, marker_of_gene[o]].astype(np.float64)
                columns = [Y[:, r], xr, Y[:, o]]
                if recombination_fraction(xr, xo) >= min_recombination:
                    columns.append(xo)
                p = ols_pvalues(Y[:, t], columns)
                worst = max(worst, p[0], p[1])
            keep[j] = worst < alpha
        for j in rows:
            if keep[j]:
                r = int(pairs[j, 0])
                edges.add_gene(r, t, "trans")
                edges.add_qtl(int(marker_of_gene[r]), t, "trans")
                edges.required.add((int(marker_of_gene[r]), t))
    return keep


@dataclass
class Edn:
    """The EDN as a :class:`Network` over all genes, with eQTL nodes = ``markers`` (q,)."""

    network: Network
    markers: np.ndarray
    gene_kinds: List[str]
    qtl_kinds: List[str]
    summary: Dict[str, int]


def build_edn(n_genes: int, edges: Edges) -> Edn:
    """Assemble the EDN (spec B2.3) and its summary counts."""
    markers = np.array(sorted({m for m, _ in edges.qtl} | {m for m, _ in edges.required}), dtype=np.int64)
    index = {int(m): i for i, m in enumerate(markers)}
    gene_keys = sorted(k for k in edges.gene if k[0] != k[1])
    qtl_keys = sorted(edges.qtl)
    gene_edges = np.array(gene_keys, dtype=np.int64).reshape(-1, 2)
    qtl_edges = np.array([(index[m], t) for m, t in qtl_keys], dtype=np.int64).reshape(-1, 2)
    edge_id = {(index[m], t): len(gene_keys) + j for j, (m, t) in enumerate(qtl_keys)}
    groups = [np.array(sorted(edge_id[(index[m], t)] for t in genes), dtype=np.int64)
              for m, genes in sorted(edges.cis_groups.items())]
    required = np.array(sorted((index[m], t) for m, t in edges.required), dtype=np.int64).reshape(-1, 2)
    net = Network(n_genes, len(markers), gene_edges, qtl_edges, groups, required)
    regulators = set(int(r) for r, _ in gene_keys)
    targets = set(int(t) for _, t in gene_keys)
    both = regulators & targets
    nodes = regulators | targets
    summary = {
        "genes": n_genes, "gene_nodes": len(nodes), "isolated_genes": n_genes - len(nodes),
        "regulators": len(regulators), "targets": len(targets), "both": len(both),
        "regulators_without_inputs": len(regulators - both), "targets_without_outputs": len(targets - both),
        "gene_edges": len(gene_keys), "qtl_edges": len(qtl_keys), "eqtl_nodes": len(markers),
        "reciprocal_pairs": sum(1 for r, t in gene_keys if (t, r) in edges.gene and r < t),
        "required_pairs": len(required), "cis_groups": len(groups),
    }
    return Edn(net, markers, ["+".join(sorted(edges.gene[k])) for k in gene_keys],
               ["+".join(sorted(edges.qtl[k])) for k in qtl_keys], summary)


def encompassing_network(Y, M, regions: Sequence[Region], trans_pairs, marker_of_gene, *, alpha: float = 0.05,
                         min_recombination: float = 0.25) -> Edn:
    """Pairs of every region, the sparsified trans pairs, and the EDN they make."""
    Y = np.asarray(Y, dtype=np.float64)
    edges = Edges()
    for region in regions:
        region_pairs(Y, M, region, edges, alpha)
    if trans_pairs is not None and len(trans_pairs):
        sparsify_trans(Y, M, trans_pairs, np.asarray(marker_of_gene), edges, alpha, min_recombination)
    return build_edn(Y.shape[1], edges)


def regions_from_cross_eqtl(arrays, gene_chromosomes, gene_starts, marker_chromosomes) -> List[Region]:
    """The eQTL regions of the ``cross-eqtl`` stage's results as :class:`Region` s.

    ``arrays``: the stage's datasets by name (``cis_region_peak``, ``cis_region_start_bp``,
    ``cis_region_end_bp``, ``cis_eqtl_gene``, ``cis_eqtl_region``, ``cis_trans_region``, ``cis_trans_gene``,
    and the ``pc_`` counterparts ``pc_region_*``, ``pc_target_region``, ``pc_target_gene``).  A gene is
    *in* a region when it lies on the peak marker's chromosome between the region's start and end (bp).
    Cis regions: cis genes = the region's cis-eQTL genes; targets = its cis-trans genes outside it.
    PC regions: the PC-target genes inside the region play the cis genes, those outside the targets.
    """
    gene_chromosomes = np.asarray(gene_chromosomes).astype(str)
    gene_starts = np.asarray(gene_starts, dtype=np.float64)
    marker_chromosomes = np.asarray(marker_chromosomes).astype(str)
    regions = []
    for prefix, hit_key in (("cis", "cis_trans"), ("pc", "pc_target")):
        peaks = np.asarray(arrays.get(f"{prefix}_region_peak", []), dtype=np.int64)
        for r, peak in enumerate(peaks):
            chromosome = marker_chromosomes[peak]
            start, end = float(arrays[f"{prefix}_region_start_bp"][r]), float(arrays[f"{prefix}_region_end_bp"][r])
            genes_in = np.flatnonzero((gene_chromosomes == chromosome) & (gene_starts >= start) & (gene_starts <= end))
            hits = np.asarray(arrays[f"{hit_key}_gene"], dtype=np.int64)[
                np.asarray(arrays[f"{hit_key}_region"], dtype=np.int64) == r]
            if prefix == "cis":
                cis = np.asarray(arrays["cis_eqtl_gene"], dtype=np.int64)[
                    np.asarray(arrays["cis_eqtl_region"], dtype=np.int64) == r]
                targets = np.setdiff1d(hits, genes_in)
            else:
                cis = np.intersect1d(hits, genes_in)
                targets = np.setdiff1d(hits, genes_in)
            regions.append(Region(int(peak), genes_in, np.unique(cis), np.unique(targets)))
    return regions
