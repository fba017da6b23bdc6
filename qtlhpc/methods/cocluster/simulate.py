"""Planted co-clusters: gene blocks, each with its own partition of the conditions into blocks of distinct means.

Every gene cluster ``k`` has a partition of the conditions into ``condition_blocks`` blocks (a random
partition per gene cluster, so conditions matter differently in each cluster, as in the two-way model of
[J] §2.1); each co-cluster ``(k, l)`` gets a mean drawn from ``N(0, mean_sd^2)`` and the cells are
``mean_kl + N(0, noise_sd^2)``.  ``n_shared`` extra genes are mixtures of two clusters (each condition's
value from cluster a with probability ``share``, else from b): the fuzzy genes.  Missing cells at
``missing_rate``.  Streams: ``unit_rng(seed, "cocluster-sim-<what>", replicate)``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Tuple

import numpy as np

from qtlhpc.parallel import unit_rng


@dataclass(frozen=True)
class PlantedDesign:
    n_genes: int = 300                  # genes in the planted clusters (the shared genes come on top)
    n_conditions: int = 40
    n_clusters: int = 6
    condition_blocks: int = 3           # condition blocks per gene cluster
    mean_sd: float = 1.5
    noise_sd: float = 0.5
    n_shared: int = 0
    share: float = 0.5
    missing_rate: float = 0.0
    shared_conditions: bool = False     # True: every gene cluster has the same condition partition


@dataclass
class PlantedData:
    expression: np.ndarray              # (G, C), NaN missing
    gene_cluster: np.ndarray            # (G,) planted cluster; shared genes: their first cluster
    second_cluster: np.ndarray          # (G,) the second cluster of a shared gene, -1 otherwise
    condition_blocks: np.ndarray        # (K, C) the planted condition partition of each gene cluster
    means: np.ndarray                   # (K, condition_blocks)

    @property
    def shared(self) -> np.ndarray:
        return self.second_cluster >= 0


def simulate(design: PlantedDesign = PlantedDesign(), seed: int = 1, replicate: int = 0) -> PlantedData:
    """One planted data set (genes in cluster order, shared genes last)."""
    rng = unit_rng(seed, "cocluster-sim-truth", replicate)
    K, C = design.n_clusters, design.n_conditions
    base = rng.integers(0, design.condition_blocks, C)
    blocks = np.empty((K, C), dtype=np.int64)
    for k in range(K):
        blocks[k] = base if design.shared_conditions else rng.permutation(
            np.arange(C) % design.condition_blocks)
    means = rng.normal(0.0, design.mean_sd, (K, design.condition_blocks))
    gene_cluster = np.sort(np.arange(design.n_genes) % K)
    second = np.full(design.n_genes, -1)
    if design.n_shared:
        pairs = rng.integers(0, K, (design.n_shared, 2))
        pairs[:, 1] = (pairs[:, 0] + 1 + rng.integers(0, K - 1, design.n_shared)) % K
        gene_cluster = np.concatenate([gene_cluster, pairs[:, 0]])
        second = np.concatenate([second, pairs[:, 1]])
    cell_means = means[gene_cluster[:, None], blocks[gene_cluster]]
    if design.n_shared:
        noise_rng = unit_rng(seed, "cocluster-sim-share", replicate)
        rows = np.flatnonzero(second >= 0)
        other = means[second[rows][:, None], blocks[second[rows]]]
        pick = noise_rng.random(other.shape) >= design.share
        cell_means[rows] = np.where(pick, other, cell_means[rows])
    noise = unit_rng(seed, "cocluster-sim-noise", replicate).normal(0.0, design.noise_sd, cell_means.shape)
    expression = cell_means + noise
    if design.missing_rate > 0:
        mask = unit_rng(seed, "cocluster-sim-missing", replicate).random(expression.shape) < design.missing_rate
        expression[mask] = np.nan
    return PlantedData(expression, gene_cluster, second, blocks, means)


def write_expression_tsv(data: PlantedData, directory) -> Tuple[Path, Path]:
    """The simulated matrix as the ``[expression]`` stage's tsv input: ``(matrix, annotation)`` paths.

    Genes ``g0001..`` in rows (NA for missing), samples ``c001..``; the annotation puts gene ``i`` at
    position ``i + 1`` of chromosome ``1``.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    n_genes, n_conditions = data.expression.shape
    genes = [f"g{i + 1:05d}" for i in range(n_genes)]
    conditions = [f"c{m + 1:03d}" for m in range(n_conditions)]
    matrix = directory / "expression.tsv"
    with open(matrix, "w") as handle:
        handle.write("gene_id\t" + "\t".join(conditions) + "\n")
        for gene, row in zip(genes, data.expression):
            handle.write(gene + "\t" + "\t".join("NA" if not np.isfinite(v) else repr(float(v)) for v in row) + "\n")
    annotation = directory / "genes.tsv"
    with open(annotation, "w") as handle:
        handle.write("gene_id\tchromosome\tstart\tend\tstrand\n")
        for i, gene in enumerate(genes):
            handle.write(f"{gene}\t1\t{i + 1}\t{i + 1}\t+\n")
    return matrix, annotation
