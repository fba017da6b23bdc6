"""Cluster co-expression networks by genotype at an eQTL (the paper's Figs. 6-7; spec A2.5 [R]) and a test of
their difference between genotypes [D].  Arrays in, arrays out; no MPI, files or config.

At a position with genotype probabilities ``pi (n, Q)`` and the column posterior ``c (G, K)`` of the fit there:

* cluster scores ``z_il = sum_j c_jl y_ij / sum_j c_jl`` (an individual's mean expression over each cluster);
* for each genotype q, the correlation of ``z_.l`` and ``z_.l'`` across individuals weighted by ``pi_iq``
  (weighted means, weighted covariances); edges of the network where ``|corr| >= edge`` (spec default 0.5), the
  sign giving positive or negative edges; the overall network (Fig. 7A) uses every individual with weight 1;
* the difference between the genotypes' networks for each pair (l, l'): Fisher's z ``atanh(r_q)`` has variance
  about ``1 / (n_q - 3)``; with ``n_q`` Kish's effective size ``(sum_i pi_iq)^2 / sum_i pi_iq^2`` the homogeneity
  statistic ``sum_q (n_q - 3) (z_q - zbar)^2`` (``zbar`` weighted by ``n_q - 3``) is referred to chi-square with
  Q - 1 degrees of freedom (for Q = 2: the square of the usual two-sample z for correlations).  The paper gives
  no test; this one is ours [D] and is exact only asymptotically, for hard genotypes and Gaussian scores.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from qtlhpc.stats.chi2 import chi2_survival


def cluster_scores(Y: np.ndarray, column: np.ndarray) -> np.ndarray:
    """``z (n, K)``: each individual's expression averaged over each cluster with weights ``c_jl``."""
    totals = column.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        return (Y @ column) / np.where(totals > 0, totals, np.nan)[None, :]


def weighted_correlation(z: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """``(K, K)`` correlations of the columns of ``z (n, K)`` with observation weights ``weights (n,)``; NaN
    where a score has no weighted variance (or the weights sum to 0)."""
    total = weights.sum()
    if total <= 0:
        return np.full((z.shape[1], z.shape[1]), np.nan)
    centred = z - (weights @ z) / total
    cov = (centred * weights[:, None]).T @ centred / total
    sd = np.sqrt(np.diag(cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sd, sd)
    corr = np.clip(corr, -1.0, 1.0)
    np.fill_diagonal(corr, np.where(sd > 0, 1.0, np.nan))
    return corr


def effective_size(weights: np.ndarray) -> float:
    """Kish's effective sample size ``(sum w)^2 / sum w^2`` (the count of individuals for 0/1 weights)."""
    square = float((weights ** 2).sum())
    return float(weights.sum()) ** 2 / square if square > 0 else 0.0


def correlation_homogeneity(corr: np.ndarray, n_eff: np.ndarray):
    """``(statistic, df, pvalue)`` of H0 "the correlation is the same in every genotype", elementwise over the
    last two axes of ``corr (Q, K, K)``: ``sum_q (n_q - 3)(atanh r_q - zbar)^2`` against chi-square with (number
    of genotypes with ``n_q > 3`` and a finite correlation) - 1 degrees of freedom.  The diagonal is NaN."""
    weight = np.maximum(np.asarray(n_eff, dtype=float) - 3.0, 0.0)[:, None, None] * np.ones_like(corr)
    with np.errstate(invalid="ignore", divide="ignore"):
        fisher = np.arctanh(np.clip(corr, -1.0 + 1e-15, 1.0 - 1e-15))
    usable = (weight > 0) & np.isfinite(fisher)
    weight = np.where(usable, weight, 0.0)
    fisher = np.where(usable, fisher, 0.0)
    total = weight.sum(axis=0)
    with np.errstate(invalid="ignore", divide="ignore"):
        centre = (weight * fisher).sum(axis=0) / total
    statistic = (weight * (fisher - centre) ** 2).sum(axis=0)
    df = usable.sum(axis=0) - 1
    statistic = np.where(df >= 1, statistic, np.nan)
    eye = np.eye(corr.shape[-1], dtype=bool)
    statistic[eye] = np.nan
    pvalue = chi2_survival(statistic, df)
    return statistic, df, pvalue


@dataclass
class GenotypeNetworks:
    """The networks at one position: ``corr (Q, K, K)`` per genotype, ``corr_all (K, K)`` over every individual
    unweighted, ``n_eff (Q,)``, and the between-genotype homogeneity ``statistic, pvalue (K, K)``."""

    corr: np.ndarray
    corr_all: np.ndarray
    n_eff: np.ndarray
    statistic: np.ndarray
    pvalue: np.ndarray

    def edges(self, threshold: float = 0.5) -> np.ndarray:
        """``(Q, K, K)`` -1/0/+1: a negative, no, or positive edge (``|corr| >= threshold``, off the diagonal)."""
        signs = np.where(np.abs(np.nan_to_num(self.corr)) >= threshold, np.sign(np.nan_to_num(self.corr)), 0)
        signs[:, np.eye(self.corr.shape[-1], dtype=bool)] = 0
        return signs.astype(np.int8)


def genotype_networks(Y: np.ndarray, column: np.ndarray, pi: np.ndarray) -> GenotypeNetworks:
    """The cluster co-expression networks of every genotype at a position (module docstring)."""
    z = cluster_scores(Y, column)
    Q = pi.shape[1]
    corr = np.stack([weighted_correlation(z, pi[:, q]) for q in range(Q)])
    corr_all = weighted_correlation(z, np.ones(Y.shape[0]))
    n_eff = np.array([effective_size(pi[:, q]) for q in range(Q)])
    statistic, _, pvalue = correlation_homogeneity(corr, n_eff)
    return GenotypeNetworks(corr, corr_all, n_eff, statistic, pvalue)


def mean_distances(mu: np.ndarray) -> np.ndarray:
    """``(Q, K, K)``: ``|mu_ql - mu_ql'|`` for every genotype (the heatmap of Fig. 6)."""
    return np.abs(mu[:, :, None] - mu[:, None, :])
