"""Planted-truth simulation of a haploid segregant / RIL cross with cis, cis-trans and trans eQTL effects.

The cross: chromosomes with a physical (bp) and a genetic (cM, Haldane map, ``bp_per_cM``) map; markers and
genes placed uniformly at random; each gene carries its own polymorphism (a "locus" at the gene's position).
Genotypes of all markers and loci follow the haploid Markov chain along each chromosome (no interference).

The truth is general, as edge lists over two node sets, so later generators (the SEM issue's ODE network) can
fill the same structure: ``locus_gene`` (locus -> gene effect of the 0/1 genotype), ``gene_gene`` (regulator
gene -> target gene effect of the e-trait) and ``interaction`` (effect of the centred product y_r x_r of a
regulator and its own locus).  Each edge has a ``kind``: ``cis`` (a gene's own locus), ``cis_trans`` (a
cis-regulated gene -> its target), ``trans`` (regulator gene -> target, and the regulator's locus -> target).

The e-traits here are linear in the planted effects (as the paper's regulator-target simulation, Methods:
coefficients b x + e, residual SD)::

    y_g = sum_{locus l -> g} f x_l + sum_{gene r -> g} b y_r + sum b3 (y_r - mean)(x_r - mean) + e_g,
    e_g ~ N(0, noise_sd^2)

evaluated in topological order of the gene -> gene edges (which must be acyclic here).  Every random stream is
``unit_rng(seed, "eqtl-sim-<what>", replicate, ...)``: the same data whichever process draws them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np

from qtlhpc.errors import InputError
from qtlhpc.parallel import unit_rng

# S. cerevisiae S288C nuclear chromosomes I-XVI (bp); ~2.9 kb per cM in yeast.
YEAST_CHROMOSOME_BP = (230218, 813184, 316620, 1531933, 576874, 270161, 1090940, 562643, 439888, 745751,
                       666816, 1078177, 924431, 784333, 1091291, 948066)
YEAST_BP_PER_CM = 2900.0
EDGE_KINDS = ("cis", "cis_trans", "trans")


@dataclass(frozen=True)
class CrossDesign:
    """Size of the cross and the planted effects (effects in e-trait units; genotypes are 0/1)."""

    n_individuals: int = 112
    n_markers: int = 2956
    n_genes: int = 4589
    chromosome_lengths_bp: Tuple[int, ...] = YEAST_CHROMOSOME_BP
    bp_per_cM: float = YEAST_BP_PER_CM
    n_cis: int = 300                      # genes with a cis eQTL (own locus -> gene)
    cis_effect: float = 1.0               # |f|, sign random
    n_cis_trans_regulators: int = 20      # cis genes that drive targets (drawn among the cis genes)
    targets_per_cis_trans: int = 5
    cis_trans_effect: float = 1.0
    n_trans_regulators: int = 20          # genes without a cis eQTL that regulate targets with their locus
    targets_per_trans: int = 3
    trans_gene_effect: float = 1.0        # b1 (y_r -> y_t)
    trans_locus_effect: float = 1.0       # b2 (x_r -> y_t)
    trans_interaction: float = 0.0        # b3 (centred y_r x_r -> y_t)
    noise_sd: float = 0.5                 # the paper's largest residual SD with all coefficients 1 (h2 = 0.5)
    missing_genotype_rate: float = 0.0
    missing_expression_rate: float = 0.0

    def null(self) -> "CrossDesign":
        """The same cross without any planted effect."""
        from dataclasses import replace

        return replace(self, n_cis=0, n_cis_trans_regulators=0, n_trans_regulators=0)


@dataclass(frozen=True)
class EdgeList:
    """Directed edges ``source -> target`` with ``effect`` and ``kind``, arrays ``(n_edges,)``."""

    source: np.ndarray
    target: np.ndarray
    effect: np.ndarray
    kind: np.ndarray

    @classmethod
    def build(cls, source=(), target=(), effect=(), kind=()) -> "EdgeList":
        return cls(np.asarray(source, dtype=np.int64).reshape(-1), np.asarray(target, dtype=np.int64).reshape(-1),
                   np.asarray(effect, dtype=float).reshape(-1), np.asarray(kind, dtype="<U16").reshape(-1))

    def __len__(self) -> int:
        return int(self.source.size)

    def of_kind(self, kind: str) -> "EdgeList":
        keep = self.kind == kind
        return EdgeList(self.source[keep], self.target[keep], self.effect[keep], self.kind[keep])

    def pairs(self, kind: Optional[str] = None) -> set:
        edges = self if kind is None else self.of_kind(kind)
        return set(zip(edges.source.tolist(), edges.target.tolist()))


@dataclass(frozen=True)
class CrossTruth:
    """The planted truth.  Loci are the causal polymorphisms: ``locus_genotypes (n_individuals, n_loci)``,
    ``locus_gene (n_loci,)`` the gene carrying each (-1: none), ``locus_chromosome``, ``locus_position_bp``.
    Edges: ``locus_gene`` (locus -> gene), ``gene_gene`` (gene -> gene), ``interaction`` (regulator gene ->
    target, effect of the centred y_r x_r where x_r is the regulator's locus)."""

    locus_genotypes: np.ndarray
    locus_gene: np.ndarray
    locus_chromosome: np.ndarray
    locus_position_bp: np.ndarray
    locus_edges: EdgeList
    gene_edges: EdgeList
    interaction_edges: EdgeList = field(default_factory=EdgeList.build)

    @property
    def cis_genes(self) -> np.ndarray:
        """Genes with a planted cis eQTL."""
        return np.unique(self.locus_edges.of_kind("cis").target)

    @property
    def cis_trans_pairs(self) -> set:
        """(cis-regulated gene, target) pairs."""
        return self.gene_edges.pairs("cis_trans")

    @property
    def trans_pairs(self) -> set:
        """(regulator gene, target) pairs of the trans model."""
        return self.gene_edges.pairs("trans")


@dataclass(frozen=True)
class SimulatedCross:
    """A simulated cross: ``genotypes (n_individuals, n_markers)`` 0/1/NaN; marker map ``marker_chromosome``,
    ``marker_position_bp``, ``marker_position_cM`` (sorted by chromosome, then position); genes
    ``gene_chromosome``, ``gene_position_bp`` (sorted likewise); ``expression (n_genes, n_individuals)``;
    ``truth``; and how it was made (``design``, ``seed``, ``replicate``)."""

    genotypes: np.ndarray
    marker_chromosome: np.ndarray
    marker_position_bp: np.ndarray
    marker_position_cM: np.ndarray
    gene_chromosome: np.ndarray
    gene_position_bp: np.ndarray
    expression: np.ndarray
    truth: CrossTruth
    design: CrossDesign
    seed: int
    replicate: int


def haldane(distance_cM) -> np.ndarray:
    """Recombination fraction of a map distance (cM), Haldane's map function."""
    return 0.5 * (1.0 - np.exp(-2.0 * np.asarray(distance_cM, dtype=float) / 100.0))


def _split_counts(total: int, lengths: np.ndarray, minimum: int) -> np.ndarray:
    """``total`` items over chromosomes in proportion to ``lengths`` (largest remainder), at least ``minimum``."""
    spare = total - minimum * lengths.size
    if spare < 0:
        raise InputError(f"{total} items cannot give each of {lengths.size} chromosomes {minimum}")
    share = spare * lengths / lengths.sum()
    counts = np.floor(share).astype(int)
    counts[np.argsort(-(share - counts), kind="stable")[:spare - counts.sum()]] += 1
    return counts + minimum


def _place(rng, counts: np.ndarray, lengths: np.ndarray):
    chromosome = np.repeat(np.arange(1, lengths.size + 1), counts)
    position = np.concatenate([np.sort(rng.uniform(0, length, size=n)) for n, length in zip(counts, lengths)])
    return chromosome, np.round(position)


def _chain_genotypes(rng, n_individuals: int, positions_cM: np.ndarray) -> np.ndarray:
    """Haploid genotypes (n_individuals, n_sites) at sorted positions of one chromosome."""
    recombination = haldane(np.diff(positions_cM))
    flips = rng.random((n_individuals, positions_cM.size - 1)) < recombination
    start = rng.integers(0, 2, size=(n_individuals, 1))
    return ((start + np.concatenate([np.zeros((n_individuals, 1), int), np.cumsum(flips, axis=1)], axis=1)) % 2
            ).astype(float)


def _draw_structure(rng, design: CrossDesign, gene_chromosome: np.ndarray):
    """Edge lists of the planted cis, cis-trans and trans effects (targets on other chromosomes than their
    regulator, so that rf ~ 0.5 passes the trans-mapping exclusion)."""
    n_genes = gene_chromosome.size
    order = rng.permutation(n_genes)
    n_cis, n_trans = design.n_cis, design.n_trans_regulators
    if n_cis + n_trans > n_genes or design.n_cis_trans_regulators > n_cis:
        raise InputError(f"the design plants {n_cis} cis genes ({design.n_cis_trans_regulators} of them "
                         f"cis-trans regulators) and {n_trans} trans regulators in {n_genes} genes: too many")
    cis_genes = order[:n_cis]
    trans_regulators = order[n_cis:n_cis + n_trans]
    pool = list(order[n_cis + n_trans:])
    locus = {"source": [], "target": [], "effect": [], "kind": []}
    genes = {"source": [], "target": [], "effect": [], "kind": []}
    inter = {"source": [], "target": [], "effect": [], "kind": []}

    def add(edges, source, target, effect, kind):
        edges["source"].append(source)
        edges["target"].append(target)
        edges["effect"].append(effect)
        edges["kind"].append(kind)

    def take_targets(regulator, count):
        chosen = [g for g in pool if gene_chromosome[g] != gene_chromosome[regulator]][:count]
        if len(chosen) < count:
            raise InputError("not enough genes left to place the planted targets: lower the targets per "
                             "regulator or the number of regulators")
        for g in chosen:
            pool.remove(g)
        return chosen

    signs = rng.choice([-1.0, 1.0], size=n_cis)
    for gene, sign in zip(cis_genes, signs):
        add(locus, gene, gene, sign * design.cis_effect, "cis")
    for regulator in cis_genes[:design.n_cis_trans_regulators]:
        for target in take_targets(regulator, design.targets_per_cis_trans):
            add(genes, regulator, target, design.cis_trans_effect, "cis_trans")
    for regulator in trans_regulators:
        for target in take_targets(regulator, design.targets_per_trans):
            add(genes, regulator, target, design.trans_gene_effect, "trans")
            add(locus, regulator, target, design.trans_locus_effect, "trans")
            if design.trans_interaction != 0:
                add(inter, regulator, target, design.trans_interaction, "trans")
    return EdgeList.build(**locus), EdgeList.build(**genes), EdgeList.build(**inter)


def topological_order(n_genes: int, edges: EdgeList) -> np.ndarray:
    """Genes in an order where every regulator precedes its targets; raises for a cyclic gene -> gene graph."""
    indegree = np.bincount(edges.target, minlength=n_genes)
    children: Dict[int, list] = {}
    for s, t in zip(edges.source.tolist(), edges.target.tolist()):
        children.setdefault(s, []).append(t)
    ready = list(np.flatnonzero(indegree == 0))
    order = []
    indegree = indegree.copy()
    while ready:
        gene = ready.pop()
        order.append(gene)
        for child in children.get(gene, ()):
            indegree[child] -= 1
            if indegree[child] == 0:
                ready.append(child)
    if len(order) != n_genes:
        raise InputError("the gene -> gene edges contain a cycle: the linear simulator needs an acyclic network")
    return np.asarray(order, dtype=np.int64)


def expression_from_truth(truth: CrossTruth, noise: np.ndarray) -> np.ndarray:
    """E-traits ``(n_genes, n_individuals)``: the noise plus the planted effects, in topological order."""
    expression = noise.copy()
    x = truth.locus_genotypes
    edges = truth.locus_edges
    np.add.at(expression, edges.target, edges.effect[:, None] * x[:, edges.source].T)
    incoming: Dict[int, list] = {}
    for k, t in enumerate(truth.gene_edges.target.tolist()):
        incoming.setdefault(t, []).append(("gene", k))
    for k, t in enumerate(truth.interaction_edges.target.tolist()):
        incoming.setdefault(t, []).append(("interaction", k))
    locus_of_gene = {g: l for l, g in enumerate(truth.locus_gene.tolist()) if g >= 0}
    for gene in topological_order(noise.shape[0], truth.gene_edges):
        for what, k in incoming.get(int(gene), ()):
            if what == "gene":
                expression[gene] += truth.gene_edges.effect[k] * expression[truth.gene_edges.source[k]]
            else:
                regulator = truth.interaction_edges.source[k]
                y = expression[regulator] - expression[regulator].mean()
                genotype = x[:, locus_of_gene[regulator]]
                expression[gene] += truth.interaction_edges.effect[k] * y * (genotype - genotype.mean())
    return expression


def simulate_cross(design: CrossDesign = CrossDesign(), *, seed: int = 0, replicate: int = 0) -> SimulatedCross:
    """Simulate a cross with planted cis, cis-trans and trans effects (see the module docstring)."""
    lengths = np.asarray(design.chromosome_lengths_bp, dtype=float)
    n_individuals = int(design.n_individuals)
    layout = unit_rng(seed, "eqtl-sim-layout", replicate)
    marker_chromosome, marker_bp = _place(layout, _split_counts(design.n_markers, lengths, 2), lengths)
    gene_chromosome, gene_bp = _place(layout, _split_counts(design.n_genes, lengths, 0), lengths)
    genotypes = np.empty((n_individuals, design.n_markers))
    loci = np.empty((n_individuals, design.n_genes))
    for c in range(lengths.size):
        markers = np.flatnonzero(marker_chromosome == c + 1)
        genes = np.flatnonzero(gene_chromosome == c + 1)
        sites = np.concatenate([marker_bp[markers], gene_bp[genes]]) / design.bp_per_cM
        order = np.argsort(sites, kind="stable")
        chain = np.empty((n_individuals, sites.size))
        chain[:, order] = _chain_genotypes(unit_rng(seed, "eqtl-sim-genotypes", replicate, c), n_individuals,
                                           sites[order])
        genotypes[:, markers] = chain[:, :markers.size]
        loci[:, genes] = chain[:, markers.size:]
    locus_edges, gene_edges, interaction_edges = _draw_structure(
        unit_rng(seed, "eqtl-sim-structure", replicate), design, gene_chromosome)
    truth = CrossTruth(loci, np.arange(design.n_genes), gene_chromosome, gene_bp, locus_edges, gene_edges,
                       interaction_edges)
    noise = design.noise_sd * unit_rng(seed, "eqtl-sim-noise", replicate).standard_normal(
        (design.n_genes, n_individuals))
    expression = expression_from_truth(truth, noise)
    missing = unit_rng(seed, "eqtl-sim-missing", replicate)
    genotypes[missing.random(genotypes.shape) < design.missing_genotype_rate] = np.nan
    expression[missing.random(expression.shape) < design.missing_expression_rate] = np.nan
    return SimulatedCross(genotypes, marker_chromosome, marker_bp, marker_bp / design.bp_per_cM, gene_chromosome,
                          gene_bp, expression, truth, design, seed, replicate)
