"""The paper's simulation of network data (spec B2.6): a random network, RIL genotypes, steady states
of the nonlinear ODE (its Eq. 10) with biological noise, experimental noise, and the EDN of the truth.

All draws come from a Generator the caller passes (use ``unit_rng(seed, "sem-simulate", data_set)``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Tuple

import numpy as np

from qtlhpc.methods.sem.search import Network


@dataclass
class TrueNetwork:
    """``gene_edges`` (m, 2) (tail, head) with ``sign`` (m,) +1 activation / -1 inhibition;
    ``cis`` (p,) bool: gene i's polymorphism is cis (else coding/trans); eQTL i is gene i's polymorphism."""

    p: int
    gene_edges: np.ndarray
    sign: np.ndarray
    cis: np.ndarray

    def qtl_edges(self) -> np.ndarray:
        """True eQTL -> gene edges (qtl, gene): cis q_i -> i; trans q_j -> every direct target of j."""
        rows = [(i, i) for i in range(self.p) if self.cis[i]]
        rows += [(int(t), int(h)) for t, h in self.gene_edges if not self.cis[t]]
        return np.array(sorted(set(rows)), dtype=np.int64).reshape(-1, 2)


def random_network(rng: np.random.Generator, p: int = 100, n_edges: int = 148,
                   p_cis: float = 0.5) -> TrueNetwork:
    """Directed Erdos-Renyi graph with ``n_edges`` edges (no self-loops), each activating or inhibiting
    with probability 1/2; each gene's polymorphism cis with probability ``p_cis`` (spec D16)."""
    pairs = [(a, b) for a in range(p) for b in range(p) if a != b]
    chosen = rng.choice(len(pairs), size=n_edges, replace=False)
    edges = np.array(sorted(pairs[c] for c in chosen), dtype=np.int64)
    sign = np.where(rng.random(n_edges) < 0.5, 1, -1)
    cis = rng.random(p) < p_cis
    return TrueNetwork(p, edges, sign, cis)


def ril_genotypes(rng: np.random.Generator, n_lines: int, n_loci: int) -> np.ndarray:
    """RIL genotypes (n_lines, n_loci) coded 0/1, unlinked loci, Bernoulli(0.5) (spec D17)."""
    return (rng.random((n_lines, n_loci)) < 0.5).astype(np.int8)


def _rates(G, V, inh, act):
    """Production term V_i prod_inh 1/(1+G_j) prod_act (1 + G_k/(1+G_k)) (lines, p); and log factors."""
    inhibit = 1.0 / (1.0 + G)
    activate = 1.0 + G / (1.0 + G)
    log_term = np.log(V) + np.log(inhibit) @ inh.T + np.log(activate) @ act.T
    return np.exp(log_term)


def steady_states(V: np.ndarray, eps: np.ndarray, inh: np.ndarray, act: np.ndarray, *, tol: float = 1e-10,
                  max_iter: int = 100) -> Tuple[np.ndarray, np.ndarray]:
    """Steady states of dG/dt = rate(G) - G + eps for each line (rows of V, eps: (lines, p)).

    ``inh``/``act`` (p, p) 0/1: row i marks gene i's inhibitors / activators.  Damped Newton from
    G = max(V + eps, 0.05), batched over lines; returns ``(G, ok)`` with ok (lines,) for a positive
    steady state with residual < tol.
    """
    G = np.maximum(V + eps, 0.05)
    lines, p = G.shape
    ok = np.zeros(lines, dtype=bool)
    for _ in range(max_iter):
        rate = _rates(G, V, inh, act)
        f = rate - G + eps
        norm = np.max(np.abs(f), axis=1)
        ok = norm < tol
        if ok.all():
            break
        d_inh = -1.0 / (1.0 + G)
        d_act = 1.0 / ((1.0 + G) * (1.0 + 2.0 * G))
        J = rate[:, :, None] * (inh[None] * d_inh[:, None, :] + act[None] * d_act[:, None, :])
        J -= np.eye(p)[None]
        step = np.linalg.solve(J, -f[:, :, None])[:, :, 0]
        scale = np.ones(lines)
        for _half in range(30):  # keep G positive and the residual falling
            trial = G + scale[:, None] * step
            positive = np.all(trial > 0, axis=1)
            new_norm = np.where(positive, np.max(np.abs(_rates(np.where(trial > 0, trial, 1.0), V, inh, act)
                                                       - trial + eps), axis=1), np.inf)
            good = positive & (new_norm < norm + 1e-12) | ok
            if good.all():
                break
            scale = np.where(good, scale, scale / 2)
        G = np.where(ok[:, None], G, G + scale[:, None] * step)
        G = np.maximum(G, 1e-12)
    rate = _rates(G, V, inh, act)
    ok = (np.max(np.abs(rate - G + eps), axis=1) < tol) & np.all(G > 0, axis=1)
    return G, ok


@dataclass
class SimulatedData:
    truth: TrueNetwork
    genotypes: np.ndarray      # (N, p) polymorphism of each gene, 0/1
    expression: np.ndarray     # (N, p) observed
    noiseless: np.ndarray      # (N, p) steady states before biological noise (eps = 0)
    redraws: int               # biological noise redraws for lines without a positive steady state
    edn: Network               # EDN over genes, eQTL = gene polymorphisms (q = p)
    true_gene: np.ndarray      # bool over the EDN's gene edges
    true_qtl: np.ndarray       # bool over the EDN's eQTL edges

    def heritability(self) -> np.ndarray:
        """Per gene: variance of the noiseless steady state / variance of the observed values."""
        return self.noiseless.var(axis=0) / self.expression.var(axis=0)


def expression(truth: TrueNetwork, genotypes: np.ndarray, rng: np.random.Generator, *, cis_effect: float = 0.75,
               trans_effect: float = 0.75, bio_sd: float = 0.1, technical: float = 0.1,
               max_redraws: int = 100) -> Tuple[np.ndarray, np.ndarray, int]:
    """Observed expression (N, p), noiseless steady states and the number of noise redraws."""
    p = truth.p
    N = genotypes.shape[0]
    inh = np.zeros((p, p))
    act = np.zeros((p, p))
    for (t, h), s in zip(truth.gene_edges, truth.sign):
        (act if s > 0 else inh)[h, t] = 1.0
    V = np.ones((N, p))
    g = genotypes.astype(bool)
    V[:, truth.cis] = np.where(g[:, truth.cis], cis_effect, 1.0)
    for t, h in truth.gene_edges:
        if not truth.cis[t]:
            V[:, h] *= np.where(g[:, t], trans_effect, 1.0)
    noiseless, ok0 = steady_states(V, np.zeros((N, p)), inh, act)
    assert ok0.all(), "the noiseless system has no positive steady state"
    eps = rng.normal(0.0, bio_sd, (N, p))
    G, ok = steady_states(V, eps, inh, act)
    redraws = 0
    while not ok.all():
        redraws += int((~ok).sum())
        if redraws > max_redraws * N:
            raise RuntimeError("no positive steady state after many noise redraws")
        eps[~ok] = rng.normal(0.0, bio_sd, (int((~ok).sum()), p))
        G2, ok2 = steady_states(V[~ok], eps[~ok], inh, act)
        G[~ok] = G2
        ok[~ok] = ok2
    observed = G + rng.normal(size=G.shape) * np.sqrt(technical * G.var(axis=0))
    return observed, noiseless, redraws


def edn_of_truth(truth: TrueNetwork, max_distance: int = 2) -> Tuple[Network, np.ndarray, np.ndarray]:
    """EDN: a link i -> j (j a gene) whenever j is at most ``max_distance`` edges from i in the true
    network of genes and eQTL nodes.  Cis edges form one-edge cis groups (kept); every true trans eQTL
    edge needs a path (our reading of the mapped associations, spec B2.5)."""
    p = truth.p
    true_q = truth.qtl_edges()
    children = [[] for _ in range(p)]
    for t, h in truth.gene_edges:
        children[t].append(int(h))

    def within(starts):
        frontier, seen = set(starts), set(starts)
        for _ in range(max_distance - 1):
            frontier = {c for node in frontier for c in children[node]} - seen
            seen |= frontier
        return seen

    gene_edges = sorted({(a, b) for a in range(p) for b in within(children[a]) if b != a})
    qtl_children = [[] for _ in range(p)]
    for x, h in true_q:
        qtl_children[x].append(int(h))
    qtl_edges = sorted({(x, b) for x in range(p) for b in within(qtl_children[x])})
    gene_edges = np.array(gene_edges, dtype=np.int64).reshape(-1, 2)
    qtl_edges = np.array(qtl_edges, dtype=np.int64).reshape(-1, 2)
    true_gene_set = {tuple(e) for e in truth.gene_edges.tolist()}
    true_qtl_set = {tuple(e) for e in true_q.tolist()}
    true_gene = np.array([tuple(e) in true_gene_set for e in gene_edges.tolist()], dtype=bool)
    true_qtl = np.array([tuple(e) in true_qtl_set for e in qtl_edges.tolist()], dtype=bool)
    d_gene = len(gene_edges)
    index = {tuple(e): d_gene + j for j, e in enumerate(qtl_edges.tolist())}
    groups = [np.array([index[(i, i)]]) for i in range(p) if truth.cis[i]]
    required = np.array([(x, h) for x, h in true_q.tolist() if x != h or not truth.cis[x]],
                        dtype=np.int64).reshape(-1, 2)
    return Network(p, p, gene_edges, qtl_edges, groups, required), true_gene, true_qtl


def simulate(rng: np.random.Generator, *, p: int = 100, n_edges: int = 148, n_lines: int = 300,
             **kwargs) -> SimulatedData:
    """One data set of the paper's SEM simulation study (defaults: its design)."""
    truth = random_network(rng, p, n_edges)
    genotypes = ril_genotypes(rng, n_lines, p)
    observed, noiseless, redraws = expression(truth, genotypes, rng, **kwargs)
    edn, true_gene, true_qtl = edn_of_truth(truth)
    return SimulatedData(truth, genotypes, observed, noiseless, redraws, edn, true_gene, true_qtl)


def power_fdr(selected: np.ndarray, true: np.ndarray, n_true: int) -> Tuple[float, float]:
    """(power, FDR): correct selected / all true edges, wrong selected / selected."""
    selected = np.asarray(selected, dtype=bool)
    correct = int((selected & true).sum())
    n_selected = int(selected.sum())
    return correct / max(n_true, 1), (n_selected - correct) / max(n_selected, 1)
