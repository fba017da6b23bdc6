"""Planted-truth simulator of Wang et al. (2016)'s design ("Result validation by computer simulation").

A backcross (or any cross ``qtlhpc.genetics.simulate`` knows) of ``n_individuals`` on one linkage group of
``chromosome_length_cM`` with ``n_markers`` evenly spaced markers; one eQTL at ``qtl_position_cM``; ``n_genes``
transcripts in ``n_clusters`` clusters.  Given the eQTL genotype q of individual i and the cluster l of gene j,

    y_ij ~ N(mu_ql, sd_l^2)          (the block-mixture model itself, A1.2)

with cluster baselines ``mu_1l`` evenly spread over ``[-baseline_range, baseline_range]`` (shuffled), eQTL effects
``mu_ql - mu_1l ~ N(0, effect_sd^2)`` for the other genotypes, residual SDs ``noise_sd`` and proportions equal or
Dirichlet(``proportion_concentration``).  The paper's own parameter values (its Table S1) are not in the text,
so these defaults are a stand-in (spec A1.9 item 9; docs/blockmix.md).

Every draw comes from ``unit_rng(seed, "blockmix-sim-<what>", replicate)``: replicate r is the same data
whichever rank or array task makes it.
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from typing import Any, Dict

import numpy as np

from qtlhpc.errors import ConfigError
from qtlhpc.genetics.simulate import simulate_true_genotypes
from qtlhpc.io.cross import GENOTYPE_STATES, HMM_CROSS_TYPE, Cross
from qtlhpc.parallel import unit_rng


@dataclass(frozen=True)
class Design:
    """The simulation design; defaults: the paper's sizes (n = 208, 5,450 genes, 43 clusters, a 50 cM group
    with six markers, eQTL at 24 cM)."""

    cross_type: str = "bc"
    n_individuals: int = 208
    n_genes: int = 5450
    n_clusters: int = 43
    chromosome_length_cM: float = 50.0
    n_markers: int = 6
    qtl_position_cM: float = 24.0
    baseline_range: float = 3.0
    effect_sd: float = 0.5
    noise_sd: float = 1.0
    proportions: str = "equal"            # "equal" or "dirichlet"
    proportion_concentration: float = 5.0

    def check(self) -> "Design":
        if self.n_markers < 2 or self.n_clusters < 1 or self.n_genes < self.n_clusters or self.n_individuals < 2:
            raise ConfigError(f"simulation design {self}: need n_markers >= 2, n_genes >= n_clusters >= 1 and "
                              "n_individuals >= 2")
        if not 0.0 <= self.qtl_position_cM <= self.chromosome_length_cM:
            raise ConfigError(f"qtl_position_cM = {self.qtl_position_cM} is outside the linkage group "
                              f"[0, {self.chromosome_length_cM}]")
        if self.proportions not in ("equal", "dirichlet"):
            raise ConfigError(f"proportions = {self.proportions!r}; expected 'equal' or 'dirichlet'")
        if self.cross_type not in HMM_CROSS_TYPE:
            raise ConfigError(f"cross_type = {self.cross_type!r}; expected one of {', '.join(HMM_CROSS_TYPE)}")
        return self

    @classmethod
    def from_mapping(cls, values: Dict[str, Any]) -> "Design":
        known = {f.name for f in fields(cls)}
        unknown = set(values) - known
        if unknown:
            raise ConfigError(f"unknown simulation key(s) {sorted(unknown)}; expected some of {sorted(known)}")
        return replace(cls(), **values).check()


@dataclass
class Replicate:
    """One simulated data set and its truth."""

    expression: np.ndarray          # (n_individuals, n_genes)
    genotypes: np.ndarray           # (n_individuals, n_markers) observed codes (R/qtl conventions)
    marker_positions: np.ndarray    # (n_markers,) cM
    qtl_genotype: np.ndarray        # (n_individuals,) state index at the eQTL
    gene_cluster: np.ndarray        # (n_genes,)
    mu: np.ndarray                  # (Q, K)
    sd: np.ndarray                  # (K,)
    proportions: np.ndarray         # (K,)
    design: Design

    def cross(self) -> Cross:
        """The replicate as a qtlhpc Cross (one chromosome "1", markers M1.., expression attached; one phenotype,
        each individual's mean expression, because R/qtl files need a phenotype column)."""
        n = self.expression.shape[0]
        return Cross(self.design.cross_type, np.array([f"ind{i + 1}" for i in range(n)]),
                     np.array([f"M{k + 1}" for k in range(len(self.marker_positions))]),
                     np.full(len(self.marker_positions), "1"), self.marker_positions, self.genotypes,
                     phenotypes=self.expression.mean(axis=1, keepdims=True),
                     phenotype_names=np.array(["mean_expression"]), expression=self.expression,
                     gene_names=np.array([f"gene{j + 1}" for j in range(self.expression.shape[1])]))


def simulate(design: Design, seed: int, replicate: int = 0) -> Replicate:
    """Replicate ``replicate`` of ``design`` (see the module docstring)."""
    design.check()
    kind = HMM_CROSS_TYPE[design.cross_type]
    n_states = len(GENOTYPE_STATES[kind])
    markers = np.linspace(0.0, design.chromosome_length_cM, design.n_markers)
    loci = np.sort(np.concatenate([markers, [design.qtl_position_cM]]))
    qtl_column = int(np.searchsorted(loci, design.qtl_position_cM, side="left"))
    if np.any(np.isclose(markers, design.qtl_position_cM)):
        qtl_column = int(np.flatnonzero(np.isclose(loci, design.qtl_position_cM))[0])
    states = simulate_true_genotypes(loci, design.cross_type, design.n_individuals,
                                     unit_rng(seed, "blockmix-sim-genotypes", replicate))
    qtl_genotype = states[:, qtl_column].astype(np.int64)
    marker_states = np.delete(states, qtl_column, axis=1) if len(loci) > len(markers) else states
    genotypes = (marker_states + 1).astype(np.int8)

    rng = unit_rng(seed, "blockmix-sim-clusters", replicate)
    K = design.n_clusters
    if design.proportions == "equal":
        proportions = np.full(K, 1.0 / K)
    else:
        proportions = rng.dirichlet(np.full(K, design.proportion_concentration))
    counts = np.floor(proportions * design.n_genes).astype(int)
    counts[np.argsort(-(proportions * design.n_genes - counts))[:design.n_genes - counts.sum()]] += 1
    counts = np.maximum(counts, 1)
    counts[np.argmax(counts)] -= counts.sum() - design.n_genes
    gene_cluster = rng.permutation(np.repeat(np.arange(K), counts))
    baseline = rng.permutation(np.linspace(-design.baseline_range, design.baseline_range, K))
    mu = np.empty((n_states, K))
    mu[0] = baseline
    for q in range(1, n_states):
        mu[q] = baseline + rng.normal(0.0, design.effect_sd, K)
    sd = np.full(K, design.noise_sd)
    noise = unit_rng(seed, "blockmix-sim-noise", replicate).standard_normal((design.n_individuals, design.n_genes))
    expression = mu[qtl_genotype][:, gene_cluster] + noise * sd[gene_cluster]
    return Replicate(expression, genotypes, markers, qtl_genotype, gene_cluster, mu, sd, counts / design.n_genes,
                     design)
