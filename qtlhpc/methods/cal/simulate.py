"""CAL's planted-truth simulator: recombinant-inbred-like binary loci and expression with planted networks.

Loci: ``n_loci`` columns over ``n_strains`` strains on ``n_chromosomes`` chromosomes; along a chromosome each
strain switches allele between consecutive loci with probability ``switch`` (RI strains: few recombinations
between close loci).  Genes: a fraction ``planted_fraction`` follow ``y = B(loci)`` of a planted topology plus
Gaussian noise (``noise`` SD on a unit effect); the others are noise.  The ground truth is returned.
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass

import numpy as np

from qtlhpc.methods.cal.topology import topology
from qtlhpc.parallel.rng import unit_rng


@dataclass
class Simulated:
    loci: np.ndarray              # (T, L) uint8
    locus_names: np.ndarray
    chromosomes: np.ndarray
    expression: np.ndarray        # (G, T)
    gene_ids: np.ndarray
    strain_ids: np.ndarray
    planted: list                 # per gene: (topology expression, inputs) or None


def ril_loci(rng, n_strains: int, n_loci: int, n_chromosomes: int = 1, switch: float = 0.15, eta: int = 3):
    """``(T, L) uint8`` RI-like loci and their chromosomes; every column has at least eta ones and zeros."""
    chromosomes = np.repeat(np.arange(1, n_chromosomes + 1), -(-n_loci // n_chromosomes))[:n_loci]
    m = np.empty((n_strains, n_loci), dtype=np.uint8)
    for j in range(n_loci):
        while True:
            if j == 0 or chromosomes[j] != chromosomes[j - 1]:
                column = rng.integers(0, 2, n_strains)
            else:
                flip = rng.random(n_strains) < switch
                column = np.where(flip, 1 - m[:, j - 1], m[:, j - 1])
            if eta <= column.sum() <= n_strains - eta:
                break
        m[:, j] = column
    return m, chromosomes.astype(str)


def simulate(seed: int = 1, n_strains: int = 24, n_loci: int = 60, n_genes: int = 40, *, n_chromosomes: int = 4,
             planted_fraction: float = 0.25, topologies=("A", "A&B", "(A&B)|C", "~A&~B"), noise: float = 0.3,
             switch: float = 0.15) -> Simulated:
    rng = unit_rng(seed, "cal-simulate", 0)
    loci, chromosomes = ril_loci(rng, n_strains, n_loci, n_chromosomes, switch)
    expression = rng.normal(size=(n_genes, n_strains))
    planted = []
    n_planted = int(round(planted_fraction * n_genes))
    for g in range(n_genes):
        if g >= n_planted:
            planted.append(None)
            continue
        top = topology(topologies[g % len(topologies)])
        for _ in range(200):
            inputs = rng.choice(n_loci, top.n_inputs, replace=False)
            y = top.output([loci[:, c].astype(bool) for c in inputs])
            if 5 <= y.sum() <= n_strains - 5:
                break
        expression[g] = y + noise * expression[g]
        planted.append((top.name, tuple(int(c) for c in inputs)))
    return Simulated(loci, np.array([f"L{j}" for j in range(n_loci)]), chromosomes, expression,
                     np.array([f"gene{g}" for g in range(n_genes)]), np.array([f"S{t}" for t in range(n_strains)]),
                     planted)


def write_files(sim: Simulated, folder) -> dict:
    """Expression TSV (genes in rows), gene annotation and the binary locus matrix; returns their paths."""
    folder = pathlib.Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {"expression": folder / "expression.tsv", "annotation": folder / "genes.tsv", "loci": folder / "loci.tsv"}
    with open(paths["expression"], "w") as out:
        out.write("gene\t" + "\t".join(sim.strain_ids) + "\n")
        for gid, row in zip(sim.gene_ids, sim.expression):
            out.write(gid + "\t" + "\t".join(repr(float(v)) for v in row) + "\n")
    with open(paths["annotation"], "w") as out:
        out.write("gene_id\tchromosome\tstart\tend\tstrand\n")
        for k, gid in enumerate(sim.gene_ids):
            out.write(f"{gid}\t1\t{1000 * (k + 1)}\t{1000 * (k + 1) + 500}\t+\n")
    with open(paths["loci"], "w") as out:
        out.write("strain\t" + "\t".join(sim.locus_names) + "\n")
        for t, sid in enumerate(sim.strain_ids):
            out.write(sid + "\t" + "\t".join(str(int(v)) for v in sim.loci[t]) + "\n")
    return paths
