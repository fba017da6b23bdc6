"""Population cis-eQTL kernels, FastQTL-compatible (Ongen et al. 2016): nominal and permutation passes.

Arrays in, arrays out: no files, no MPI, no config.  Conventions, as FastQTL 2.184 (v7, the GTEx build
Debian ships as ``fastQTL``) behaves (``analysisNominal.cpp``, ``analysisPermutation.cpp``,
``readPhenotypes.cpp``, ``residualizer.cpp``):

* **TSS and window.**  A phenotype's position is its BED ``start + 1`` (FastQTL converts the 0-based BED
  start to 1-based; :func:`tss_from_bed_start`); strand and ``end`` play no part.  A variant at VCF
  ``POS`` is in cis when ``|POS - tss| <= window`` (both ends included, default 1,000,000);
  ``tss_distance = POS - tss``.
* **Missing values** are replaced by the mean of the observed values of their variant (dosages) or
  phenotype.
* **Covariates.**  Phenotypes and dosages are residualised on ``[1, C]`` by least squares (FastQTL: a
  column-pivoted QR with R's tolerance 1e-7; a constant or collinear covariate is dropped).  A variant or
  phenotype that is constant before residualisation stays constant and gets ``r = 0``.
* **Statistics** of a variant: ``r`` the correlation of the residualised dosage and phenotype,
  ``dof = n - 2 - k`` (``k`` the covariates kept: rank of ``[1, C]`` minus 1),
  ``t^2 = dof r^2 / (1 - r^2)``, ``pval_nominal = F_sf(t^2; 1, dof)`` (two-sided),
  ``slope = r sd(y_res) / sd(g_res)`` (the covariate-adjusted OLS slope), ``slope_se = |slope| / |t|``.
  FastQTL's nominal mode uses ``k`` = rows of the covariate file; the two agree unless a covariate is
  constant or collinear.
* **Best variant** of a gene: largest ``|r|``; among exact ties, FastQTL's scan rule (a later variant
  replaces the best when ``|its distance| <`` the best's signed distance), reproduced by
  :func:`best_variant`.
* **Permutations.**  As FastQTL (and tensorQTL): the phenotype is shuffled, then each shuffle is
  residualised on ``[1, C]`` and standardised again, and a chunk of permutations is correlated with the
  window's variants in one GEMM (float32, as FastQTL); each permutation keeps its best ``|r|``.  Shuffling
  the residualised phenotype without residualising again would leave part of each shuffle in the
  covariates' space: null ``|r|`` shrink by ~``sqrt(1 - k / n)`` and p-values come out too small (3.6
  standard errors on one gene of FastQTL's example).  Permutation ``j`` of gene ``i`` is a
  function of ``(seed, i, j)`` only (``unit_rng(seed, "eqtl-cis-perm", i)``), so results do not depend on
  ranks or on which other genes run.  ``pval_perm = (1 + #{null |r| >= observed |r|}) / (1 + P)``.
* **Adaptive permutations** (:class:`PermutationPlan`): FastQTL's ``--permute A B`` stops after the first
  permutation at which ``A`` permutations have reached the observed ``|r|`` or ``B`` permutations have
  run (so ``A`` is the number of *hits*, not a minimum count -- at least ``A`` permutations run because a
  hit needs a permutation; ``--permute 1000 10000`` usually runs ~``1000 / pval`` permutations);
  ``--permute A B C`` runs at least ``A``, then stops at ``B`` hits or ``C`` permutations.  Blocks of
  permutations go through the GEMM together and are cut back to the exact permutation FastQTL would stop
  at, so the result is that of the sequential rule.
* **Beta approximation**: :mod:`qtlhpc.methods.eqtl.beta_approx`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence

import numba
import numpy as np

from qtlhpc.errors import InputError
from qtlhpc.methods.eqtl.beta_approx import beta_approximation, pvalue_from_r
from qtlhpc.parallel.rng import unit_rng
from qtlhpc.stats import transforms

DEFAULT_WINDOW = 1_000_000
QR_TOLERANCE = 1e-7  # FastQTL's FASTQTL_QR_TOLERANCE, "the same tolerance as R"
PERMUTATION_STREAM = "eqtl-cis-perm"
DEFAULT_VARIANT_BLOCK = 2048
PERMUTATION_CHUNK = 250  # permutations per GEMM: 1,000 = 4 chunks; adaptive blocks are whole chunks

# Output columns of the nominal pass (one row per gene-variant pair), FastQTL v7 names and order.
NOMINAL_COLUMNS: Dict[str, str] = {
    "phenotype_id": "molecular phenotype (gene) id",
    "variant_id": "variant id",
    "tss_distance": "variant position minus the phenotype's TSS (BED start + 1), bp",
    "ma_samples": "samples carrying the minor allele (dosages rounded)",
    "ma_count": "minor allele copies (dosages rounded)",
    "maf": "minor allele frequency (dosages rounded)",
    "pval_nominal": "two-sided p-value of the covariate-adjusted regression on the dosage",
    "slope": "regression slope of the phenotype on the dosage, covariate-adjusted",
    "slope_se": "standard error of the slope",
}

# Output columns of the permutation pass (one row per gene), FastQTL v7 names and order, then ours.
PERMUTATION_COLUMNS: Dict[str, str] = {
    "phenotype_id": "molecular phenotype (gene) id",
    "num_var": "variants in the cis window",
    "beta_shape1": "shape1 of the Beta fitted to the permutation best p-values",
    "beta_shape2": "shape2 of the Beta fitted to the permutation best p-values",
    "true_df": "effective degrees of freedom learned from the permutations",
    "pval_true_df": "best variant's p-value on true_df",
    "variant_id": "best variant (largest |r|)",
    "tss_distance": "best variant's position minus the TSS, bp",
    "ma_samples": "samples carrying the best variant's minor allele",
    "ma_count": "minor allele copies of the best variant",
    "maf": "minor allele frequency of the best variant",
    "ref_factor": "1 when the ALT allele is the minor allele, -1 otherwise",
    "pval_nominal": "best variant's nominal p-value",
    "slope": "best variant's slope",
    "slope_se": "standard error of the best variant's slope",
    "pval_perm": "direct permutation p-value (1 + hits) / (1 + permutations)",
    "pval_beta": "beta-approximated permutation p-value",
    "num_perm": "permutations run (adaptive plans vary per gene)",
    "num_hits": "permutations whose best |r| reached the observed one",
}


# ---------------------------------------------------------------------------------------------------
# Windows and data preparation
# ---------------------------------------------------------------------------------------------------

def tss_from_bed_start(bed_start):
    """FastQTL's phenotype position: the 0-based BED ``start`` plus 1 (any shape)."""
    return np.asarray(bed_start, dtype=np.int64) + 1


def cis_window(positions, tss: int, window: int = DEFAULT_WINDOW) -> slice:
    """The variants in cis of ``tss``: ``slice`` of sorted ``positions (n_variants,)`` with
    ``|position - tss| <= window``."""
    start = int(np.searchsorted(positions, tss - window, side="left"))
    stop = int(np.searchsorted(positions, tss + window, side="right"))
    return slice(start, stop)


def impute_mean(values) -> np.ndarray:
    """``values (n_rows, n_samples)`` as float64 with each row's NaNs set to the mean of its other values."""
    values = np.array(values, dtype=np.float64, ndmin=2)
    missing = np.isnan(values)
    if missing.any():
        rows = np.nonzero(missing.any(axis=1))[0]
        observed = np.count_nonzero(~missing[rows], axis=1)
        totals = np.where(missing[rows], 0.0, values[rows]).sum(axis=1)
        means = np.where(observed > 0, totals / np.maximum(observed, 1), 0.0)  # all missing: constant 0
        values[rows] = np.where(missing[rows], means[:, None], values[rows])
    return values


def covariate_basis(covariates, n_samples: int, tolerance: float = QR_TOLERANCE) -> np.ndarray:
    """Orthonormal basis ``(n_samples, rank)`` of the column space of ``[1, covariates]``.

    ``covariates (n_samples, n_covariates)`` or None, complete (FastQTL refuses missing covariates).  The
    basis is :func:`qtlhpc.stats.transforms.covariate_basis` (column-pivoted QR with FastQTL's / R's rank
    rule: constant and collinear covariates drop out).  ``dof = n_samples - 1 - rank``.
    """
    if covariates is not None:
        covariates = np.asarray(covariates, dtype=np.float64)
        if covariates.ndim != 2 or covariates.shape[0] != n_samples:
            raise InputError(f"covariates have shape {covariates.shape}, expected ({n_samples}, n_covariates)"
                             " (one row per sample, in the phenotypes' sample order)")
        if not np.all(np.isfinite(covariates)):
            raise InputError("covariates contain NaN or infinite values; impute or drop them first")
    return transforms.covariate_basis(None if covariates is None else covariates.T, n_samples, tolerance)


def residual_dof(n_samples: int, basis: np.ndarray) -> int:
    """Nominal degrees of freedom ``n - 2 - k`` of a variant's test after residualising on ``basis``."""
    return n_samples - 1 - basis.shape[1]


def residualise(basis: np.ndarray, values: np.ndarray) -> np.ndarray:
    """``values (..., n_samples)`` minus their projection on the columns of ``basis (n_samples, rank)``."""
    return values - (values @ basis) @ basis.T


@dataclass
class Standardised:
    """Residualised rows scaled to zero mean and unit norm.

    ``unit (n_rows, n_samples)``: the rows (zero for constant rows); ``sd (n_rows,)``: their standard
    deviation before scaling (``n - 1`` divisor; 0 for constant rows), which turns ``r`` into a slope.
    """

    unit: np.ndarray
    sd: np.ndarray


def standardise(values, basis: np.ndarray, dtype=np.float64, row_block: int = 1024) -> Standardised:
    """Mean-impute, residualise on ``basis`` and scale rows of ``values (n_rows, n_samples)``.

    A row constant before residualising, or whose residual norm is below 1e-10 of its centred norm
    (explained by the covariates), becomes zero (``r = 0``, FastQTL's treatment of constant rows).
    Blocks of ``row_block`` rows keep the temporaries in cache.
    """
    values = np.asarray(values)
    values = values.reshape(1, -1) if values.ndim == 1 else values
    unit = np.empty(values.shape, dtype=dtype)
    sd = np.empty(values.shape[0])
    for start in range(0, values.shape[0], row_block):
        rows = slice(start, start + row_block)
        unit[rows], sd[rows] = _standardise_block(values[rows], basis)
    return Standardised(unit, sd)


def _standardise_block(values, basis: np.ndarray):
    values = impute_mean(values)
    n_samples = values.shape[1]
    centred_norm = np.linalg.norm(values - values.mean(axis=1, keepdims=True), axis=1)
    residual = residualise(basis, values)
    residual -= residual.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(residual, axis=1)
    constant = (np.ptp(values, axis=1) == 0) | (norm <= 1e-10 * centred_norm)
    residual /= np.where(constant, 1.0, norm)[:, None]
    residual[constant] = 0.0
    return residual, np.where(constant, 0.0, norm / np.sqrt(n_samples - 1))


def minor_allele_summary(dosages) -> Dict[str, np.ndarray]:
    """FastQTL's minor-allele columns from ``dosages (n_variants, n_samples)`` (NaN = missing).

    Dosages are rounded to 0/1/2 and counted over non-missing samples: ``maf``, ``ma_samples`` (samples
    carrying the minor allele), ``ma_count`` (its copies) and ``ref_factor`` (1 when ALT is minor or
    tied, -1 when REF is).
    """
    dosages = np.array(dosages, dtype=np.float64, ndmin=2)
    rounded = np.floor(dosages + 0.5)  # C's round(): halves away from zero (dosages are >= 0)
    counts = [np.sum(rounded == value, axis=1) for value in (0, 1, 2)]
    ref_alleles = 2 * counts[0] + counts[1]
    alt_alleles = counts[1] + 2 * counts[2]
    observed = counts[0] + counts[1] + counts[2]
    alt_minor = ref_alleles >= alt_alleles
    with np.errstate(invalid="ignore", divide="ignore"):
        maf = np.where(alt_minor, alt_alleles, ref_alleles) / (2.0 * observed)
    return {
        "maf": maf,
        "ma_samples": np.where(alt_minor, counts[1] + counts[2], counts[0] + counts[1]).astype(np.int64),
        "ma_count": np.where(alt_minor, alt_alleles, ref_alleles).astype(np.int64),
        "ref_factor": np.where(alt_minor, 1, -1).astype(np.int64),
    }


# ---------------------------------------------------------------------------------------------------
# Nominal pass
# ---------------------------------------------------------------------------------------------------

@dataclass
class NominalStatistics:
    """Per-variant statistics of one gene, arrays ``(n_variants,)``; ``dof`` the nominal degrees of freedom."""

    r: np.ndarray
    t: np.ndarray
    pval_nominal: np.ndarray
    slope: np.ndarray
    slope_se: np.ndarray
    dof: int


def nominal_statistics(phenotype_unit, phenotype_sd: float, genotype_unit, genotype_sd, dof: int
                       ) -> NominalStatistics:
    """Correlation, t, p, slope and its SE of every variant with one phenotype (one GEMV).

    ``phenotype_unit (n_samples,)`` and ``genotype_unit (n_variants, n_samples)`` are residualised and
    standardised (:func:`standardise`), ``genotype_sd (n_variants,)`` and ``phenotype_sd`` their
    standard deviations before scaling.
    """
    r = np.clip(np.asarray(genotype_unit, dtype=np.float64) @ np.asarray(phenotype_unit, dtype=np.float64),
                -1.0, 1.0)
    one_minus_r2 = (1.0 - np.abs(r)) * (1.0 + np.abs(r))
    with np.errstate(divide="ignore", invalid="ignore"):
        t = r * np.sqrt(dof / one_minus_r2)
        slope = np.where((genotype_sd < 1e-16) | (phenotype_sd < 1e-16), 0.0,
                         r * phenotype_sd / np.where(genotype_sd > 0, genotype_sd, 1.0))
        slope_se = np.abs(slope) / np.abs(t)
    return NominalStatistics(r, t, pvalue_from_r(r, dof), slope, slope_se, dof)


def nominal_pass(phenotype, dosages, covariates=None) -> NominalStatistics:
    """The nominal pass of one gene: ``phenotype (n_samples,)`` against ``dosages (n_variants, n_samples)``
    (its cis variants; NaN = missing), adjusted for ``covariates (n_samples, n_covariates)``."""
    phenotype = np.asarray(phenotype, dtype=np.float64)
    dosages = _check_dosages(dosages, phenotype.shape[0])
    basis = covariate_basis(covariates, phenotype.shape[0])
    y = standardise(phenotype[None, :], basis)
    g = standardise(dosages, basis)
    return nominal_statistics(y.unit[0], y.sd[0], g.unit, g.sd, residual_dof(phenotype.shape[0], basis))


# ---------------------------------------------------------------------------------------------------
# Permutation pass
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class PermutationPlan:
    """How many permutations a gene gets: FastQTL's ``--permute`` with 1, 2 or 3 numbers.

    Stop after the first permutation ``k`` with ``k >= min_permutations`` and
    (``hits_k >= stop_hits`` or ``k >= max_permutations``), ``hits_k`` the permutations among the first
    ``k`` whose best ``|r|`` reached the observed one.
    """

    min_permutations: int
    max_permutations: int
    stop_hits: Optional[int] = None

    @classmethod
    def fixed(cls, count: int) -> "PermutationPlan":
        """``--permute count``."""
        return cls.from_fastqtl(count)

    @classmethod
    def from_fastqtl(cls, *counts: int) -> "PermutationPlan":
        """The plan of ``fastQTL --permute <counts>``: ``(P)``, ``(hits, max)`` or ``(min, hits, max)``."""
        counts = tuple(int(c) for c in counts)
        if len(counts) not in (1, 2, 3) or any(c < 1 for c in counts):
            raise InputError(f"--permute takes 1, 2 or 3 positive counts (P | hits max | min hits max), "
                             f"got {counts}")
        if len(counts) == 1:
            return cls(counts[0], counts[0], None)
        if len(counts) == 2:
            if counts[1] <= counts[0]:
                raise InputError(f"--permute {counts[0]} {counts[1]}: the hits to stop at ({counts[0]}) must be "
                                 f"fewer than the most permutations ({counts[1]}), as FastQTL requires")
            return cls(1, counts[1], counts[0])
        if not counts[1] < counts[0] < counts[2]:
            raise InputError(f"--permute {' '.join(map(str, counts))}: FastQTL requires hits < min < max "
                             "(min permutations, hits to stop at, most permutations)")
        return cls(counts[0], counts[2], counts[1])

    def stop_count(self, hit_flags: np.ndarray) -> Optional[int]:
        """Permutations FastQTL runs given the hit flags ``(n_run,)`` so far in order; None: not yet."""
        index = np.arange(1, hit_flags.shape[0] + 1)
        at_max = index >= self.max_permutations
        if self.stop_hits is not None:
            at_max |= np.cumsum(hit_flags) >= self.stop_hits
        done = np.nonzero(at_max & (index >= self.min_permutations))[0]
        return int(done[0]) + 1 if done.size else None

    def next_block(self, n_run: int, n_hits: int) -> int:
        """Permutations to run next, ``n_run`` run so far with ``n_hits`` hits (never past the maximum)."""
        left = self.max_permutations - n_run
        if n_run == 0:
            wanted = max(self.min_permutations, self.stop_hits or 0)
        elif self.stop_hits is not None and n_hits > 0:
            wanted = int(np.ceil(1.1 * (self.stop_hits - n_hits) * n_run / n_hits)) + 16
        else:
            wanted = n_run
        return int(max(1, min(left, max(wanted, self.min_permutations - n_run))))


@numba.njit(cache=True)
def _fisher_yates(uniforms):  # pragma: no cover - compiled
    count, n_samples = uniforms.shape[0], uniforms.shape[1] + 1
    orders = np.empty((count, n_samples), dtype=np.int64)
    for row in range(count):
        for i in range(n_samples):
            orders[row, i] = i
        for i in range(n_samples - 1, 0, -1):
            j = min(int(uniforms[row, n_samples - 1 - i] * (i + 1)), i)
            orders[row, i], orders[row, j] = orders[row, j], orders[row, i]
    return orders


def permutation_orders(rng: np.random.Generator, count: int, n_samples: int) -> np.ndarray:
    """The next ``count`` permutations ``(count, n_samples)`` of ``rng``'s stream, one row each.

    Fisher-Yates shuffles driven by ``rng.random((count, n_samples - 1))``: each permutation takes the
    next ``n_samples - 1`` uniforms, so blocks of 3 then 5 draw the same 8 rows as one block of 8.
    """
    return _fisher_yates(rng.random((count, max(n_samples - 1, 0))))


def permuted_unit_phenotypes(phenotype, orders, basis: np.ndarray, dtype=np.float64) -> np.ndarray:
    """Shuffled, residualised, standardised copies of ``phenotype (n_samples,)``: ``(n_permutations,
    n_samples)``, row ``i`` from ``phenotype[orders[i]]`` as FastQTL does it (shuffle the phenotype,
    then residualise on ``basis`` and scale to zero mean and unit norm)."""
    permuted = residualise(basis, np.asarray(phenotype, dtype=np.float64)[orders])
    permuted -= permuted.mean(axis=1, keepdims=True)
    norm = np.linalg.norm(permuted, axis=1, keepdims=True)
    return (permuted / np.where(norm > 0, norm, 1.0)).astype(dtype)


def null_best_r(phenotype, genotype_unit, orders, basis: np.ndarray, variant_block: int = DEFAULT_VARIANT_BLOCK,
                permutation_chunk: int = PERMUTATION_CHUNK) -> np.ndarray:
    """Best ``|r|`` of each permutation: ``(n_permutations,)``.

    ``phenotype (n_samples,)``: the (mean-imputed) phenotype before residualising;
    ``genotype_unit (n_variants, n_samples)``: the window's standardised dosages (their dtype is the
    GEMM's); ``orders (n_permutations, n_samples)``; ``basis``: :func:`covariate_basis`.
    ``max_v |<genotype_unit[v], permuted_unit_phenotypes(...)[i]>|``, one GEMM per ``permutation_chunk``
    permutations and ``variant_block`` variants.  Every GEMM has the same shape when ``n_permutations``
    is a multiple of ``permutation_chunk``, so a permutation's value does not depend on which call
    computed it (BLAS rounds tail rows differently).
    """
    best = np.zeros(orders.shape[0], dtype=genotype_unit.dtype)
    for first in range(0, orders.shape[0], permutation_chunk):
        rows = slice(first, first + permutation_chunk)
        permuted = permuted_unit_phenotypes(phenotype, orders[rows], basis, genotype_unit.dtype)
        chunk_best = best[rows]
        for start in range(0, genotype_unit.shape[0], variant_block):
            block = permuted @ genotype_unit[start:start + variant_block].T
            np.maximum(chunk_best, block.max(axis=1), out=chunk_best)
            np.maximum(chunk_best, -block.min(axis=1), out=chunk_best)
    return best.astype(np.float64)


def best_variant(r, tss_distance, tie_tolerance: float = 1e-10) -> int:
    """Index of the best variant: largest ``|r|``; ties as FastQTL's scan (see module docstring);
    -1 for an empty window.

    ``|r|`` within ``tie_tolerance`` (relative) of the largest count as tied: identical dosage rows (perfect
    LD, common) tie exactly in FastQTL but may differ in the last bits of a BLAS product here.
    """
    magnitude = np.abs(np.asarray(r))
    if magnitude.size == 0:
        return -1
    tied = np.nonzero(magnitude >= magnitude.max() * (1.0 - tie_tolerance))[0]
    best = int(tied[0])
    for candidate in tied[1:]:
        if abs(int(tss_distance[candidate])) < int(tss_distance[best]):
            best = int(candidate)
    return best


@dataclass
class GenePermutation:
    """Permutation-pass result of one gene (FastQTL's permutation row; :data:`PERMUTATION_COLUMNS`).

    ``best`` is the best variant's index in the window (-1 when empty); ``null_r (num_perm,)`` the best
    ``|r|`` of each permutation.
    """

    num_var: int
    best: int
    r: float
    pval_nominal: float
    slope: float
    slope_se: float
    beta_shape1: float
    beta_shape2: float
    true_df: float
    pval_true_df: float
    pval_perm: float
    pval_beta: float
    num_perm: int
    num_hits: int
    null_r: np.ndarray


def permute_gene(phenotype, basis: np.ndarray, genotypes: Standardised, tss_distance, rng: np.random.Generator,
                 plan: PermutationPlan, null_genotype_unit=None, variant_block: int = DEFAULT_VARIANT_BLOCK,
                 permutation_chunk: Optional[int] = None) -> GenePermutation:
    """Permutation pass of one gene.

    ``phenotype (n_samples,)``: mean-imputed, not residualised; ``basis``: :func:`covariate_basis`;
    ``genotypes``: the window's variants standardised on ``basis`` (``(n_variants, n_samples)``);
    ``tss_distance (n_variants,)``; ``null_genotype_unit``: the window's ``genotypes.unit`` in the GEMM's
    precision (default: a float32 copy; FastQTL computes in float32 too).  Permutations run in whole
    chunks of ``permutation_chunk`` (default ``min(250, most permutations)``), so each permutation's null
    ``|r|`` is the same bits whatever the plan's blocks; permutations past the plan's stop are discarded.
    """
    if permutation_chunk is None:
        permutation_chunk = min(PERMUTATION_CHUNK, plan.max_permutations)
    n_variants, n_samples = genotypes.unit.shape
    if n_variants == 0:
        nan = float("nan")
        return GenePermutation(0, -1, nan, nan, nan, nan, nan, nan, nan, nan, nan, nan, 0, 0, np.empty(0))
    dof = residual_dof(n_samples, basis)
    unit = standardise(phenotype[None, :], basis)
    best = best_variant(genotypes.unit @ unit.unit[0], tss_distance)  # r of every variant: one GEMV
    nominal = nominal_statistics(unit.unit[0], unit.sd[0], genotypes.unit[best:best + 1],
                                 genotypes.sd[best:best + 1], dof)
    observed = abs(nominal.r[0])
    if null_genotype_unit is None:
        null_genotype_unit = genotypes.unit.astype(np.float32)
    null_r = np.empty(0)
    while True:
        block = plan.next_block(null_r.shape[0], int(np.count_nonzero(null_r >= observed)))
        block = -(-block // permutation_chunk) * permutation_chunk  # whole chunks; the surplus is cut below
        orders = permutation_orders(rng, block, n_samples)
        null_r = np.concatenate([null_r, null_best_r(phenotype, null_genotype_unit, orders, basis,
                                                     variant_block, permutation_chunk)])
        stop = plan.stop_count(null_r >= observed)
        if stop is not None:
            null_r = null_r[:stop]
            break
    hits = int(np.count_nonzero(null_r >= observed))
    beta = beta_approximation(nominal.r[0], null_r, dof, n_variants)
    return GenePermutation(
        num_var=n_variants, best=best, r=float(nominal.r[0]),
        pval_nominal=float(nominal.pval_nominal[0]), slope=float(nominal.slope[0]),
        slope_se=float(nominal.slope_se[0]), beta_shape1=beta.shape1, beta_shape2=beta.shape2,
        true_df=beta.true_dof, pval_true_df=beta.pval_true_dof, pval_perm=(hits + 1.0) / (null_r.shape[0] + 1.0),
        pval_beta=beta.pval_beta, num_perm=int(null_r.shape[0]), num_hits=hits, null_r=null_r)


def permutation_pass(phenotype, dosages, covariates=None, tss_distance=None, *, seed: int = 0,
                     gene_index: int = 0, plan: Optional[PermutationPlan] = None,
                     permutation_chunk: Optional[int] = None) -> GenePermutation:
    """The permutation pass of one gene: ``phenotype (n_samples,)``, ``dosages (n_variants, n_samples)``
    (its cis variants), ``covariates (n_samples, n_covariates)``; permutations from
    ``unit_rng(seed, "eqtl-cis-perm", gene_index)``; ``plan`` default ``--permute 1000``;
    ``permutation_chunk`` as :func:`permute_gene`."""
    phenotype = np.asarray(phenotype, dtype=np.float64)
    n_samples = phenotype.shape[0]
    dosages = _check_dosages(dosages, n_samples)
    basis = covariate_basis(covariates, n_samples)
    distance = np.zeros(dosages.shape[0], dtype=np.int64) if tss_distance is None else np.asarray(tss_distance)
    return permute_gene(impute_mean(phenotype)[0], basis, standardise(dosages, basis), distance,
                        unit_rng(seed, PERMUTATION_STREAM, gene_index), plan or PermutationPlan.fixed(1000),
                        permutation_chunk=permutation_chunk)


# ---------------------------------------------------------------------------------------------------
# Many genes: genotypes prepared once, windows as slices of position-sorted variants
# ---------------------------------------------------------------------------------------------------

def map_cis_permutations(phenotypes, tss, dosages, positions, covariates=None, *, seed: int = 0,
                         plan: Optional[PermutationPlan] = None, window: int = DEFAULT_WINDOW,
                         gene_indices: Optional[Sequence[int]] = None, null_dtype=np.float32,
                         variant_block: int = DEFAULT_VARIANT_BLOCK) -> Dict[str, np.ndarray]:
    """Permutation pass of many genes on one chromosome.

    ``phenotypes (n_genes, n_samples)``, ``tss (n_genes,)`` (:func:`tss_from_bed_start`),
    ``dosages (n_variants, n_samples)`` sorted by ``positions (n_variants,)``, ``covariates (n_samples,
    n_covariates)``.  ``gene_indices (n_genes,)``: the genes' global ids keying their random streams
    (default ``0..n_genes-1``); give the same ids to get the same permutations in any split of the genes.
    Returns :data:`PERMUTATION_COLUMNS` (without ids; ``variant_index`` is the best variant's row in
    ``dosages``, -1 when the window is empty) as arrays ``(n_genes,)``.
    """
    phenotypes = np.array(phenotypes, dtype=np.float64, ndmin=2)
    n_genes, n_samples = phenotypes.shape
    dosages = _check_dosages(dosages, n_samples)
    positions, tss = _check_positions(positions, dosages.shape[0], tss, n_genes)
    gene_indices = np.arange(n_genes) if gene_indices is None else np.asarray(gene_indices, dtype=np.int64)
    plan = plan or PermutationPlan.fixed(1000)
    basis = covariate_basis(covariates, n_samples)
    genotypes = standardise(dosages, basis)
    null_unit = genotypes.unit.astype(null_dtype)
    phenotypes = impute_mean(phenotypes)
    columns = {name: np.full(n_genes, np.nan) for name in (
        "beta_shape1", "beta_shape2", "true_df", "pval_true_df", "pval_nominal", "slope", "slope_se",
        "pval_perm", "pval_beta", "maf", "r")}
    for name in ("num_var", "variant_index", "tss_distance", "ma_samples", "ma_count", "ref_factor",
                 "num_perm", "num_hits"):
        columns[name] = np.full(n_genes, -1 if name == "variant_index" else 0, dtype=np.int64)
    for gene in range(n_genes):
        span = cis_window(positions, int(tss[gene]), window)
        distance = positions[span] - tss[gene]
        result = permute_gene(phenotypes[gene], basis, Standardised(genotypes.unit[span], genotypes.sd[span]),
                              distance, unit_rng(seed, PERMUTATION_STREAM, int(gene_indices[gene])), plan,
                              null_unit[span], variant_block)
        columns["num_var"][gene] = result.num_var
        if result.best < 0:
            continue
        columns["variant_index"][gene] = span.start + result.best
        columns["tss_distance"][gene] = distance[result.best]
        for name in ("beta_shape1", "beta_shape2", "true_df", "pval_true_df", "pval_nominal", "slope",
                     "slope_se", "pval_perm", "pval_beta", "r", "num_perm", "num_hits"):
            columns[name][gene] = getattr(result, name)
    found = columns["variant_index"] >= 0
    summary = minor_allele_summary(dosages[columns["variant_index"][found]])
    for name in ("ma_samples", "ma_count", "maf", "ref_factor"):
        columns[name][found] = summary[name]
    return columns


def map_cis_nominal(phenotypes, tss, dosages, positions, covariates=None, *, window: int = DEFAULT_WINDOW
                    ) -> Dict[str, np.ndarray]:
    """Nominal pass of many genes on one chromosome (arguments as :func:`map_cis_permutations`).

    Returns the gene-variant pairs in gene order then position order: ``gene (n_pairs,)`` (row of
    ``phenotypes``), ``variant_index`` (row of ``dosages``), ``tss_distance``, ``ma_samples``,
    ``ma_count``, ``maf``, ``pval_nominal``, ``slope``, ``slope_se``, ``r``, ``t``.
    """
    phenotypes = np.array(phenotypes, dtype=np.float64, ndmin=2)
    n_genes, n_samples = phenotypes.shape
    dosages = _check_dosages(dosages, n_samples)
    positions, tss = _check_positions(positions, dosages.shape[0], tss, n_genes)
    basis = covariate_basis(covariates, n_samples)
    dof = residual_dof(n_samples, basis)
    genotypes = standardise(dosages, basis)
    pheno = standardise(phenotypes, basis)
    summary = minor_allele_summary(dosages)
    parts = []
    for gene in range(n_genes):
        span = cis_window(positions, int(tss[gene]), window)
        stats = nominal_statistics(pheno.unit[gene], pheno.sd[gene], genotypes.unit[span], genotypes.sd[span], dof)
        variants = np.arange(span.start, span.stop)
        parts.append({"gene": np.full(variants.shape[0], gene, dtype=np.int64), "variant_index": variants,
                      "tss_distance": positions[span] - tss[gene], "pval_nominal": stats.pval_nominal,
                      "slope": stats.slope, "slope_se": stats.slope_se, "r": stats.r, "t": stats.t})
    out = {name: np.concatenate([part[name] for part in parts]) for name in parts[0]} if parts else {}
    for name in ("ma_samples", "ma_count", "maf"):
        out[name] = summary[name][out["variant_index"]] if parts else np.empty(0)
    return out


def _check_dosages(dosages, n_samples: int) -> np.ndarray:
    dosages = np.array(dosages, dtype=np.float64, ndmin=2)
    if dosages.ndim != 2 or dosages.shape[1] != n_samples:
        raise InputError(f"dosages have shape {dosages.shape}, expected (n_variants, {n_samples}): one row per "
                         "variant, one column per sample in the phenotypes' sample order")
    return dosages


def _check_positions(positions, n_variants: int, tss, n_genes: int):
    positions = np.asarray(positions, dtype=np.int64)
    tss = np.asarray(tss, dtype=np.int64)
    if positions.shape != (n_variants,):
        raise InputError(f"positions have shape {positions.shape}, expected ({n_variants},), one per dosage row")
    if tss.shape != (n_genes,):
        raise InputError(f"tss has shape {tss.shape}, expected ({n_genes},), one per phenotype row")
    if n_variants > 1 and np.any(np.diff(positions) < 0):
        raise InputError("variant positions are not sorted; sort the dosages by position (one chromosome "
                         "per call)")
    return positions, tss
