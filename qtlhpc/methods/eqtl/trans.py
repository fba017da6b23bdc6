"""Population trans-eQTL kernel: the nominal pass of every gene against every variant (QTLtools ``trans
--nominal``), keeping the pairs with ``p <= threshold``.

Arrays in, arrays out: no files, no MPI, no config.  The statistics are the cis kernels'
(:mod:`qtlhpc.methods.eqtl.cis`): genes and dosages are mean-imputed, residualised on ``[1, covariates]``
(:func:`~qtlhpc.methods.eqtl.cis.covariate_basis`, FastQTL's QR rule) and scaled to unit norm
(:func:`~qtlhpc.methods.eqtl.cis.standardise`); then, for a block of variants and all genes at once, one
GEMM gives ``r (n_variants, n_genes)``; ``dof = n - 2 - k``; ``t = r sqrt(dof / (1 - r^2))``; two-sided
``p = I_{1 - r^2}(dof / 2, 1 / 2)`` (:func:`~qtlhpc.methods.eqtl.beta_approx.pvalue_from_r`);
``slope = r sd(y_res) / sd(g_res)``, ``slope_se = |slope| / |t|`` -- the covariate-adjusted OLS slope and
its standard error.  ``p <= threshold`` is ``|r| >= r_threshold`` (:func:`correlation_threshold`), so p is
computed only for the few pairs that pass.

QTLtools 1.3.1 (``src/mode_trans``) conventions followed here:

* **cis exclusion**: a pair is *not* tested when the variant is on the gene's chromosome and
  ``|POS - gene_start| <= cis_window`` (default 5,000,000; ``gene_start`` = BED start + 1, whatever the
  strand).  ``cis_window < 0`` tests every pair.
* hits are listed variant by variant (file order), genes in expression order within a variant.

Where QTLtools differs (and this module does not follow it): with ``--cov`` QTLtools residualises the
phenotypes only, not the genotypes, and keeps ``dof = n - 2``; this is the exact partial-correlation test
of the cis kernels.  Without covariates the two are the same test.  QTLtools computes in float32 (values
and products) with double sums, so its ``r`` carries about 7 significant digits.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Optional

import numpy as np
import scipy.special

from qtlhpc.errors import InputError
from qtlhpc.methods.eqtl.beta_approx import pvalue_from_r
from qtlhpc.methods.eqtl.cis import Standardised, covariate_basis, residual_dof, standardise

DEFAULT_THRESHOLD = 1e-5      # QTLtools trans --threshold
DEFAULT_CIS_WINDOW = 5_000_000  # QTLtools trans --window
GEMM_BLOCK = 1024             # variants per GEMM: the r block is GEMM_BLOCK x n_genes float64

HIT_COLUMNS = {
    "gene": "row of the gene in the phenotypes",
    "variant": "row of the variant in the dosages",
    "r": "correlation of the residualised gene and dosage",
    "slope": "covariate-adjusted OLS slope of the gene on the dosage",
    "slope_se": "standard error of the slope",
    "pval": "two-sided nominal p-value on dof = n - 2 - k",
}


@dataclass
class TransGenes:
    """The genes prepared once for every variant block.

    ``standardised.unit (n_genes, n_samples)`` residualised unit-norm rows, ``standardised.sd (n_genes,)``;
    ``basis (n_samples, rank)`` of ``[1, covariates]``; ``dof = n - 1 - rank``.
    """

    standardised: Standardised
    basis: np.ndarray
    dof: int

    @property
    def n_genes(self) -> int:
        return self.standardised.unit.shape[0]


@dataclass
class TransHits:
    """Pairs with ``p <= threshold``, arrays ``(n_hits,)`` named as :data:`HIT_COLUMNS`; ``n_tests`` the
    pairs tested (after the cis exclusion)."""

    gene: np.ndarray
    variant: np.ndarray
    r: np.ndarray
    slope: np.ndarray
    slope_se: np.ndarray
    pval: np.ndarray
    n_tests: int

    @property
    def n_hits(self) -> int:
        return int(self.gene.size)

    @classmethod
    def concatenate(cls, parts) -> "TransHits":
        parts = list(parts)
        if not parts:
            return empty_hits()
        return cls(*(np.concatenate([getattr(p, name) for p in parts]) for name in HIT_COLUMNS),
                   n_tests=sum(p.n_tests for p in parts))


def empty_hits() -> TransHits:
    integer, real = np.zeros(0, dtype=np.int64), np.zeros(0)
    return TransHits(integer, integer.copy(), real, real.copy(), real.copy(), real.copy(), 0)


def correlation_threshold(threshold: float, dof: int) -> float:
    """The ``|r|`` at which the two-sided p-value on ``dof`` degrees of freedom equals ``threshold``:
    ``p(r) = I_{1 - r^2}(dof / 2, 1 / 2)``, so ``r^2 = 1 - I^{-1}(threshold)``."""
    if not 0 < threshold <= 1:
        raise InputError(f"threshold = {threshold}: expected a p-value in (0, 1]")
    return float(np.sqrt(max(0.0, 1.0 - scipy.special.betaincinv(dof / 2.0, 0.5, threshold))))


def prepare_genes(phenotypes, covariates=None) -> TransGenes:
    """Residualise and standardise ``phenotypes (n_genes, n_samples)`` (NaN = missing, mean-imputed) on
    ``[1, covariates]``, ``covariates (n_samples, n_covariates)`` or None."""
    phenotypes = np.array(phenotypes, dtype=np.float64, ndmin=2)
    n_samples = phenotypes.shape[1]
    basis = covariate_basis(covariates, n_samples)
    dof = residual_dof(n_samples, basis)
    if dof < 1:
        raise InputError(f"{n_samples} samples and {basis.shape[1] - 1} covariates leave {dof} degrees of "
                         "freedom: use fewer covariates")
    return TransGenes(standardise(phenotypes, basis), basis, dof)


def scan_block(genes: TransGenes, dosages, threshold: float = DEFAULT_THRESHOLD,
               tested: Optional[np.ndarray] = None) -> TransHits:
    """The hits of one block of variants against all genes (one GEMM).

    ``dosages (n_variants, n_samples)`` (NaN = missing), samples in the genes' order; ``tested
    (n_variants, n_genes)`` bool, False for pairs not to test (cis), or None for all.  Variant indices are
    rows of ``dosages``.
    """
    dosages = np.array(dosages, dtype=np.float64, ndmin=2)
    n_samples = genes.standardised.unit.shape[1]
    if dosages.shape[1] != n_samples:
        raise InputError(f"dosages have shape {dosages.shape}, expected (n_variants, {n_samples}): one column "
                         "per sample in the genes' sample order")
    if tested is not None and tested.shape != (dosages.shape[0], genes.n_genes):
        raise InputError(f"tested has shape {tested.shape}, expected {(dosages.shape[0], genes.n_genes)}")
    variants = standardise(dosages, genes.basis)
    r = np.clip(variants.unit @ genes.standardised.unit.T, -1.0, 1.0)   # (n_variants, n_genes)
    cutoff = correlation_threshold(threshold, genes.dof)
    candidate = np.abs(r) >= cutoff * (1.0 - 1e-12)
    if tested is not None:
        candidate &= tested
    variant, gene = np.nonzero(candidate)     # variant-major, genes in order: QTLtools' listing order
    r_hit = r[variant, gene]
    pval = pvalue_from_r(r_hit, genes.dof)
    keep = pval <= threshold
    variant, gene, r_hit, pval = variant[keep], gene[keep], r_hit[keep], pval[keep]
    y_sd, g_sd = genes.standardised.sd[gene], variants.sd[variant]
    with np.errstate(divide="ignore", invalid="ignore"):
        t = r_hit * np.sqrt(genes.dof / ((1.0 - np.abs(r_hit)) * (1.0 + np.abs(r_hit))))
        slope = np.where((g_sd < 1e-16) | (y_sd < 1e-16), 0.0, r_hit * y_sd / np.where(g_sd > 0, g_sd, 1.0))
        slope_se = np.abs(slope) / np.abs(t)
    n_tests = int(tested.sum()) if tested is not None else r.size
    return TransHits(gene.astype(np.int64), variant.astype(np.int64), r_hit, slope, slope_se, pval, n_tests)


def cis_pairs(gene_chromosomes, gene_starts, variant_chromosome: str, variant_positions, cis_window: int
              ) -> np.ndarray:
    """``(n_variants, n_genes)`` bool, True where the pair is in cis (QTLtools' exclusion): same chromosome
    and ``|position - gene_start| <= cis_window``; all False when ``cis_window < 0``."""
    gene_chromosomes = np.asarray(gene_chromosomes).astype(str)
    positions = np.asarray(variant_positions, dtype=np.int64)
    if cis_window < 0:
        return np.zeros((positions.size, gene_chromosomes.size), dtype=bool)
    same = gene_chromosomes == str(variant_chromosome)
    distance = np.abs(positions[:, None] - np.asarray(gene_starts, dtype=np.int64)[None, :])
    return same[None, :] & (distance <= cis_window)


def map_trans_nominal(phenotypes, dosages, covariates=None, *, threshold: float = DEFAULT_THRESHOLD,
                      gene_chromosomes=None, gene_starts=None, variant_chromosomes=None, variant_positions=None,
                      cis_window: int = DEFAULT_CIS_WINDOW, variant_block: int = GEMM_BLOCK,
                      genes: Optional[TransGenes] = None) -> TransHits:
    """Every gene against every variant, the pairs with ``p <= threshold`` (blocked over the variants).

    ``phenotypes (n_genes, n_samples)``, ``dosages (n_variants, n_samples)`` (NaN = missing),
    ``covariates (n_samples, n_covariates)`` or None.  The cis exclusion needs ``gene_chromosomes``,
    ``gene_starts (n_genes,)`` (BED start + 1), ``variant_chromosomes``, ``variant_positions
    (n_variants,)``; without them (or with ``cis_window < 0``) every pair is tested.  ``genes``: the
    prepared phenotypes, to reuse across calls.  Memory beyond the inputs: ``variant_block x (n_genes +
    3 n_samples)`` float64.
    """
    dosages = np.array(dosages, dtype=np.float64, ndmin=2)
    if genes is None:
        genes = prepare_genes(phenotypes, covariates)
    located = all(v is not None for v in (gene_chromosomes, gene_starts, variant_chromosomes, variant_positions))
    if located:
        variant_chromosomes = np.asarray(variant_chromosomes).astype(str)
        variant_positions = np.asarray(variant_positions, dtype=np.int64)
        if variant_positions.shape != (dosages.shape[0],) or variant_chromosomes.shape != (dosages.shape[0],):
            raise InputError(f"variant_positions and variant_chromosomes need shape ({dosages.shape[0]},), one "
                             f"per dosage row; got {variant_positions.shape} and {variant_chromosomes.shape}")
        if np.shape(gene_starts) != (genes.n_genes,) or np.shape(gene_chromosomes) != (genes.n_genes,):
            raise InputError(f"gene_starts and gene_chromosomes need shape ({genes.n_genes},), one per gene")
    parts = []
    for start in range(0, dosages.shape[0], variant_block):
        rows = slice(start, start + variant_block)
        tested = None
        if located and cis_window >= 0:
            block_chromosomes = variant_chromosomes[rows]
            tested = np.ones((block_chromosomes.size, genes.n_genes), dtype=bool)
            for chromosome in np.unique(block_chromosomes):
                on = block_chromosomes == chromosome
                tested[on] = ~cis_pairs(gene_chromosomes, gene_starts, chromosome, variant_positions[rows][on],
                                        cis_window)
        hits = scan_block(genes, dosages[rows], threshold, tested)
        hits.variant += start
        parts.append(hits)
    return TransHits.concatenate(parts)
