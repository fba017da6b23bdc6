"""The SEM's inputs from the eQTL room's stored results: the encompassing directed network (EDN), the expression
of its genes and the genotypes of its eQTL nodes (stage ``sem-edn``).

Pure numpy (no MPI, files or config): the driver reads the datasets and hands them over as arrays.

- Regions: the ``cross-eqtl`` cis-eQTL regions (cis genes = the region's cis-eQTL genes, targets = its
  cis-trans genes outside it) and PC-eQTL regions (:func:`qtlhpc.methods.sem.edn.regions_from_cross_eqtl`);
  each goes through the paper's three steps (:func:`~qtlhpc.methods.sem.edn.region_pairs`).
- Trans pairs: the ``cross-trans`` pairs with BH q <= ``cross_trans.fdr`` (``pair_regulator``,
  ``pair_target``), sparsified by Eq. (2) (:func:`~qtlhpc.methods.sem.edn.sparsify_trans`); the eQTL node of a
  regulator is its closest marker (``cross-eqtl/closest_marker``, model (1)'s x_r).  A pair whose regulator has
  no marker on its chromosome is left out (counted).
- Missing genotypes (NaN) are replaced by the marker's mean over the typed lines (the expected genotype; the
  regressions and the SEM need complete X); their count is stored.  Missing expression values are refused.
- A required (eQTL, gene) association that no directed path of the full EDN connects could never be kept,
  and would make every edge unremovable; it is dropped and counted (``required_unreachable``).
- The SEM runs on the EDN's *nodes*: genes with at least one EDN edge (isolated genes add the same constant to
  every model's IC).  Edges keep the order of :func:`~qtlhpc.methods.sem.edn.build_edn` (gene edges, then eQTL
  edges, each sorted), numbered 0 .. d-1 as in :class:`~qtlhpc.methods.sem.search.Network`.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass
from typing import Dict, List, Mapping, Optional, Sequence

import numpy as np

from qtlhpc.errors import InputError
from qtlhpc.methods.sem import edn as E
from qtlhpc.methods.sem.search import Network

#: the cross-eqtl datasets the EDN reads, per region source
REGION_DATASETS = {
    "cis": ("cis_region_peak", "cis_region_start_bp", "cis_region_end_bp", "cis_eqtl_gene", "cis_eqtl_region",
            "cis_trans_region", "cis_trans_gene"),
    "pc": ("pc_region_peak", "pc_region_start_bp", "pc_region_end_bp", "pc_target_region", "pc_target_gene"),
}
TRANS_DATASETS = ("pair_regulator", "pair_target")

#: the EDN summary counts, in stored order
SUMMARY_NAMES = ("genes", "gene_nodes", "isolated_genes", "regulators", "targets", "both",
                 "regulators_without_inputs", "targets_without_outputs", "gene_edges", "qtl_edges", "eqtl_nodes",
                 "reciprocal_pairs", "required_pairs", "cis_groups", "sem_genes", "regions", "trans_pairs",
                 "trans_pairs_kept", "trans_pairs_without_marker", "required_unreachable", "imputed_genotypes")


@dataclass
class SemInputs:
    """The EDN on its node genes, with the data of the search.

    ``genes`` (p,): expression rows of the SEM's genes; ``markers`` (q,): marker columns of its eQTL nodes;
    ``Y`` (N, p) expression; ``X`` (N, q) genotypes (0/1, missing ones imputed); ``network`` over local indices.
    """

    network: Network
    genes: np.ndarray
    markers: np.ndarray
    Y: np.ndarray
    X: np.ndarray
    gene_kinds: List[str]
    qtl_kinds: List[str]
    summary: Dict[str, int]

    def edge_arrays(self) -> Dict[str, np.ndarray]:
        """Edges as stored: tail (gene or eQTL node), head (gene), is_eqtl, kind; cis groups; required pairs."""
        net = self.network
        tails = np.concatenate([net.gene_edges[:, 0], net.qtl_edges[:, 0]]).astype(np.int64)
        heads = np.concatenate([net.gene_edges[:, 1], net.qtl_edges[:, 1]]).astype(np.int64)
        is_eqtl = np.concatenate([np.zeros(net.d_gene, dtype=bool), np.ones(len(net.qtl_edges), dtype=bool)])
        group_edge = np.concatenate([g for g in net.cis_groups] or [np.zeros(0, dtype=np.int64)]).astype(np.int64)
        group_of = np.concatenate([np.full(len(g), k, dtype=np.int64) for k, g in enumerate(net.cis_groups)]
                                  or [np.zeros(0, dtype=np.int64)])
        return {"edge_tail": tails, "edge_head": heads, "edge_is_eqtl": is_eqtl,
                "edge_kind": np.array(self.gene_kinds + self.qtl_kinds, dtype=str),
                "cis_group_edge": group_edge, "cis_group": group_of,
                "required_eqtl": net.required[:, 0].astype(np.int64),
                "required_gene": net.required[:, 1].astype(np.int64)}


def network_from_arrays(n_genes: int, n_eqtl: int, arrays: Mapping[str, np.ndarray]) -> Network:
    """The :class:`Network` of the stored edge arrays (the inverse of :meth:`SemInputs.edge_arrays`)."""
    tail, head = np.asarray(arrays["edge_tail"]), np.asarray(arrays["edge_head"])
    is_eqtl = np.asarray(arrays["edge_is_eqtl"], dtype=bool)
    d_gene = int((~is_eqtl).sum())
    assert not is_eqtl[:d_gene].any(), "gene edges come first"
    group_of = np.asarray(arrays["cis_group"], dtype=np.int64)
    group_edge = np.asarray(arrays["cis_group_edge"], dtype=np.int64)
    groups = [group_edge[group_of == k] for k in range(int(group_of.max()) + 1 if group_of.size else 0)]
    required = np.column_stack([arrays["required_eqtl"], arrays["required_gene"]]).astype(np.int64)
    return Network(n_genes, n_eqtl, np.column_stack([tail[:d_gene], head[:d_gene]]),
                   np.column_stack([tail[d_gene:], head[d_gene:]]), groups, required)


def _require(arrays: Mapping, names: Sequence[str], stage: str, why: str) -> None:
    missing = [name for name in names if name not in arrays]
    if missing:
        raise InputError(f"the results have no {stage}/{missing[0]} ({len(missing)} of the datasets {why} are "
                         f"missing: {', '.join(missing)}): run `qtlhpc run {stage} CONFIG` first")


def impute_genotypes(M) -> tuple:
    """``(M with NaN replaced by the marker's mean over typed lines, number replaced)``; a marker typed in no
    line is refused (InputError naming it)."""
    M = np.array(M, dtype=np.float64, copy=True)
    missing = np.isnan(M)
    if not missing.any():
        return M, 0
    typed = (~missing).sum(axis=0)
    if (typed == 0).any():
        raise InputError(f"marker column {int(np.flatnonzero(typed == 0)[0])} has no genotype in any expression "
                         f"sample: the SEM needs each eQTL marker typed")
    means = np.nansum(M, axis=0) / np.maximum(typed, 1)
    rows, cols = np.nonzero(missing)
    M[rows, cols] = means[cols]
    return M, int(missing.sum())


def _reachable(network: Network, qtl: int) -> set:
    children: Dict[int, List[int]] = {}
    for t, h in network.gene_edges.tolist():
        children.setdefault(t, []).append(h)
    seen = {h for x, h in network.qtl_edges.tolist() if x == qtl}
    queue = deque(seen)
    while queue:
        node = queue.popleft()
        for nxt in children.get(node, ()):
            if nxt not in seen:
                seen.add(nxt)
                queue.append(nxt)
    return seen


def build_inputs(expression, genotypes, cross_eqtl: Mapping[str, np.ndarray], gene_chromosomes, gene_starts,
                 *, trans_pairs: Optional[Mapping[str, np.ndarray]] = None, regions: str = "cis+pc",
                 alpha: float = 0.05, min_recombination: float = 0.25, gene_ids: Optional[Sequence[str]] = None,
                 sample_ids: Optional[Sequence[str]] = None) -> SemInputs:
    """The EDN and the search's data from the eQTL results.

    ``expression`` (G, N) as ``expression/values``; ``genotypes`` (N, n_markers) 0/1 with NaN missing, in the
    same sample order; ``cross_eqtl``: the ``cross-eqtl`` datasets by name (see :data:`REGION_DATASETS`,
    ``marker_chromosomes`` and ``closest_marker``); ``trans_pairs``: the ``cross-trans`` pair table
    (``pair_regulator``, ``pair_target``) or None; ``regions``: "cis+pc", "cis" or "pc".
    """
    values = np.asarray(expression, dtype=np.float64)
    G, N = values.shape
    M = np.asarray(genotypes, dtype=np.float64)
    if M.ndim != 2 or M.shape[0] != N:
        raise InputError(f"the genotypes have {M.shape[0] if M.ndim == 2 else '?'} lines; the expression set has "
                         f"{N} samples: align both to the expression samples")
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        g, s = bad[0]
        gene = gene_ids[g] if gene_ids is not None else f"row {g}"
        sample = sample_ids[s] if sample_ids is not None else f"column {s}"
        raise InputError(f"the SEM needs complete expression: gene {gene!r} has no value for sample {sample!r} "
                         f"({bad.shape[0]} missing values): impute or drop them in the expression set")
    sources = ("cis", "pc") if regions == "cis+pc" else (regions,)
    base = ("marker_chromosomes", "closest_marker")
    _require(cross_eqtl, base + tuple(name for s in sources for name in REGION_DATASETS[s]), "cross-eqtl",
             "the EDN reads")
    marker_chromosomes = np.asarray(cross_eqtl["marker_chromosomes"]).astype(str)
    if marker_chromosomes.size != M.shape[1]:
        raise InputError(f"cross-eqtl has {marker_chromosomes.size} markers, the [input] cross {M.shape[1]}: rerun "
                         f"cross-eqtl with this [input]")
    closest = np.asarray(cross_eqtl["closest_marker"], dtype=np.int64)
    if closest.size != G:
        raise InputError(f"cross-eqtl has {closest.size} genes, the expression set {G}: rerun cross-eqtl")
    arrays = {name: cross_eqtl[name] for s in sources for name in REGION_DATASETS[s]}
    for s in ("cis", "pc"):
        if s not in sources:        # regions_from_cross_eqtl reads both; an empty source gives no region
            arrays[f"{s}_region_peak"] = np.zeros(0, dtype=np.int64)
    M, n_imputed = impute_genotypes(M)
    Y = values.T.copy()
    found = E.regions_from_cross_eqtl(arrays, gene_chromosomes, gene_starts, marker_chromosomes)
    edges = E.Edges()
    for region in found:
        if not 0 <= region.peak < M.shape[1]:
            raise InputError(f"cross-eqtl region peak marker {region.peak} is not a marker (0..{M.shape[1] - 1})")
        E.region_pairs(Y, M, region, edges, alpha)
    n_pairs = n_kept = n_without = 0
    if trans_pairs is not None:
        _require(trans_pairs, TRANS_DATASETS, "cross-trans", "the EDN reads")
        pairs = np.column_stack([np.asarray(trans_pairs["pair_regulator"], dtype=np.int64),
                                 np.asarray(trans_pairs["pair_target"], dtype=np.int64)]).reshape(-1, 2)
        if pairs.size and (pairs.min() < 0 or pairs.max() >= G):
            raise InputError(f"cross-trans pairs name genes outside 0..{G - 1}: rerun cross-trans")
        n_pairs = len(pairs)
        with_marker = closest[pairs[:, 0]] >= 0 if n_pairs else np.zeros(0, dtype=bool)
        n_without = int((~with_marker).sum())
        pairs = pairs[with_marker]
        if len(pairs):
            n_kept = int(E.sparsify_trans(Y, M, pairs, closest, edges, alpha, min_recombination).sum())
    full = E.build_edn(G, edges)
    net = full.network
    # genes of the SEM: every gene with an EDN edge
    nodes = np.unique(np.concatenate([net.gene_edges.ravel(), net.qtl_edges[:, 1]])).astype(np.int64)
    local = np.full(G, -1, dtype=np.int64)
    local[nodes] = np.arange(nodes.size)
    # required pairs the full EDN cannot keep
    reach = {}
    required = []
    for x, t in net.required.tolist():
        if x not in reach:
            reach[x] = _reachable(net, x)
        if t in reach[x]:
            required.append((x, int(local[t])))
    unreachable = len(net.required) - len(required)
    network = Network(nodes.size, net.q, local[net.gene_edges] if net.d_gene else np.zeros((0, 2), np.int64),
                      np.column_stack([net.qtl_edges[:, 0], local[net.qtl_edges[:, 1]]]) if len(net.qtl_edges)
                      else np.zeros((0, 2), np.int64), net.cis_groups,
                      np.array(required, dtype=np.int64).reshape(-1, 2))
    summary = dict(full.summary)
    summary.update(required_pairs=len(required), sem_genes=int(nodes.size), regions=len(found),
                   trans_pairs=n_pairs, trans_pairs_kept=n_kept, trans_pairs_without_marker=n_without,
                   required_unreachable=unreachable, imputed_genotypes=n_imputed)
    return SemInputs(network, nodes, full.markers.astype(np.int64), Y[:, nodes], M[:, full.markers],
                     full.gene_kinds, full.qtl_kinds, {name: int(summary[name]) for name in SUMMARY_NAMES})
