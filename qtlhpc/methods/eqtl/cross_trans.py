"""Trans-eQTL mapping of a haploid cross: the regulator-target model (1) of Liu, de la Fuente & Hoeschele
(2008, Genetics 178:1763, Methods "Expression QTL analysis"; after Kulp & Jagalur 2006), for all gene pairs.

Model (1), all variables centred (spec cal-sem.md B1.1), with an intercept since the product is not centred::

    y_t = b0 + b1 y_r + b2 x_r + b3 (y_r x_r) + e        (b3 dropped when ``interaction=False``)

``y_r``/``y_t``: regulator / target e-traits; ``x_r``: genotype (0/1) of the marker closest to gene r.  OLS
t-tests (residual df = N - 4, or N - 3 without b3), intersection-union p = max(p_b1, p_b2) (Casella & Berger
1990), BH over all tests.  A pair is not tested (``excluded``) when r = t, when the recombination fraction
between the closest markers of r and t is <= 0.25 (share of discordant genotypes among individuals typed at
both; a target without a marker counts as unlinked), when r has no marker, or when r's design or t's e-trait is
degenerate (collinear columns, constant e-trait).

Missing values [our rule]: each e-trait and each marker genotype is mean-imputed (a missing value becomes the
gene's / marker's observed mean, i.e. 0 after centring) and all N individuals are kept; the residual df
counts them all.  The interaction column is y_r x_r of the imputed centred values, centred again.

Blocked kernel: :func:`trans_block` computes a (regulator range x target range) block of pairs from cross-
products, one GEMM per tile, ``[Y_r; X_r; W_r] (3 R x N) @ Y_t' (N x T)``, and closed-form 3 x 3 (2 x 2)
normal equations with each regulator's inverse Gram matrix.  GEMMs run on a fixed grid of canonical tiles
(:data:`REGULATOR_TILE` x :data:`TARGET_TILE`, aligned to gene 0), so a pair's numbers are bit-for-bit the
same whatever block it is computed in.  :func:`trans_map` loops over regulator blocks and keeps the pairs
with p <= alpha and the test count, enough for exact BH q-values <= alpha (:func:`bh_qvalues_of_kept`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Dict, Optional, Tuple

import numpy as np
from scipy.special import stdtr

from qtlhpc.errors import InputError
from qtlhpc.methods.eqtl.cross_cis import DEFAULT_ALPHA, as_expression, as_genotypes
from qtlhpc.parallel import chunk_ranges

DEFAULT_MIN_RECOMBINATION = 0.25   # pairs with rf <= 0.25 between the closest markers are not tested [P]
REGULATOR_TILE = 64
TARGET_TILE = 1024
COLLINEARITY_TOLERANCE = 1e-10     # smallest eigenvalue of the regulator design's correlation matrix

# Every output of trans_block: dims, dtype, meaning (one declaration, used by docs and stored results).
TRANS_BLOCK_VARIABLES: Dict[str, Tuple[Tuple[str, ...], str, str]] = {
    "b1": (("regulator", "target"), "float64", "effect of the regulator e-trait y_r on y_t"),
    "b2": (("regulator", "target"), "float64", "effect of the regulator's closest-marker genotype x_r on y_t"),
    "b3": (("regulator", "target"), "float64", "interaction y_r x_r (absent when interaction=False)"),
    "se_b1": (("regulator", "target"), "float64", "OLS standard error of b1"),
    "se_b2": (("regulator", "target"), "float64", "OLS standard error of b2"),
    "se_b3": (("regulator", "target"), "float64", "OLS standard error of b3"),
    "p_b1": (("regulator", "target"), "float64", "two-sided t-test p-value of b1 (df = N - 4 or N - 3)"),
    "p_b2": (("regulator", "target"), "float64", "two-sided t-test p-value of b2"),
    "p_b3": (("regulator", "target"), "float64", "two-sided t-test p-value of b3"),
    "p_iut": (("regulator", "target"), "float64", "intersection-union p-value max(p_b1, p_b2)"),
    "recombination": (("regulator", "target"), "float64",
                      "recombination fraction between the closest markers of r and t (NaN: no marker)"),
    "excluded": (("regulator", "target"), "bool", "pair not tested (r = t, rf <= 0.25, no marker, degenerate)"),
}


@dataclass(frozen=True)
class TransInputs:
    """Model (1) inputs for all genes, prepared once (:func:`prepare_trans`).

    ``y (n_genes, N)`` centred imputed e-traits; ``x (n_genes, N)`` centred imputed closest-marker genotypes (0
    rows for genes without a marker); ``w (n_genes, N)`` the centred interaction column; ``yy (n_genes,)`` sum of
    squares of y; ``inverse_gram (n_genes, p, p)`` inverse Gram matrix of each gene's design as a regulator
    (``p`` = 3 or 2); ``usable_regulator (n_genes,)``; ``allele_one``, ``allele_zero``, ``typed``
    ``(N, n_genes)`` 0/1 indicators for the recombination fractions."""

    y: np.ndarray
    x: np.ndarray
    w: Optional[np.ndarray]
    yy: np.ndarray
    inverse_gram: np.ndarray
    usable_regulator: np.ndarray
    allele_one: np.ndarray
    allele_zero: np.ndarray
    typed: np.ndarray
    interaction: bool
    df: int

    @property
    def n_genes(self) -> int:
        return int(self.y.shape[0])


def _centre_impute(rows: np.ndarray) -> np.ndarray:
    """Each row minus its observed mean, missing values set to 0 (i.e. imputed by the mean)."""
    observed = ~np.isnan(rows)
    count = observed.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        mean = np.where(observed, rows, 0.0).sum(axis=1) / count
    return np.where(observed, rows - np.where(count > 0, mean, 0.0)[:, None], 0.0)


def marker_genotypes_of_genes(genotypes, marker_of_gene) -> np.ndarray:
    """``(n_individuals, n_genes)``: column g is the genotype at marker ``marker_of_gene[g]`` (from
    :func:`~qtlhpc.methods.eqtl.cross_cis.closest_marker`), all NaN where it is -1 (no marker)."""
    genotypes = as_genotypes(genotypes)
    marker_of_gene = np.asarray(marker_of_gene, dtype=np.int64)
    if marker_of_gene.size and not -1 <= marker_of_gene.min() <= marker_of_gene.max() < genotypes.shape[1]:
        raise InputError(f"marker indices must lie in [0, {genotypes.shape[1]}) or be -1 (no marker), got "
                         f"[{marker_of_gene.min()}, {marker_of_gene.max()}]")
    columns = genotypes[:, np.maximum(marker_of_gene, 0)]
    columns[:, marker_of_gene < 0] = np.nan
    return columns


def prepare_trans(expression, marker_genotypes, *, interaction: bool = True) -> TransInputs:
    """Centre and impute the e-traits ``(n_genes, N)`` and closest-marker genotypes ``(N, n_genes)`` (column g:
    the genotype at gene g's closest marker, all NaN if it has none) and invert each regulator's Gram matrix."""
    marker_genotypes = as_genotypes(marker_genotypes)
    expression = as_expression(expression, marker_genotypes.shape[0])
    n_genes, n_individuals = expression.shape
    if marker_genotypes.shape[1] != n_genes:
        raise InputError(f"marker_genotypes must have one column per gene, the genotype at the gene's closest "
                         f"marker: expected (n_individuals, n_genes) = ({n_individuals}, {n_genes}), got "
                         f"{marker_genotypes.shape}")
    n_parameters = 4 if interaction else 3
    if n_individuals <= n_parameters:
        raise InputError(f"model (1) needs more than {n_parameters} individuals, got {n_individuals}")
    y = _centre_impute(expression)
    x = _centre_impute(marker_genotypes.T)
    columns = [y, x]
    w = None
    if interaction:
        w = _centre_impute(y * x)
        columns.append(w)
    p = len(columns)
    gram = np.empty((n_genes, p, p))
    for i in range(p):
        for j in range(i, p):
            gram[:, i, j] = gram[:, j, i] = np.sum(columns[i] * columns[j], axis=1)
    scale = np.sqrt(np.einsum("gii->gi", gram))
    has_marker = np.any(~np.isnan(marker_genotypes), axis=0)
    usable = has_marker & np.all(scale > 0, axis=1)
    safe_scale = np.where(scale > 0, scale, 1.0)
    correlation = gram / (safe_scale[:, :, None] * safe_scale[:, None, :])
    correlation[~usable] = np.eye(p)
    usable &= np.linalg.eigvalsh(correlation)[:, 0] > COLLINEARITY_TOLERANCE
    correlation[~usable] = np.eye(p)
    inverse_gram = np.linalg.inv(correlation) / (safe_scale[:, :, None] * safe_scale[:, None, :])
    inverse_gram[~usable] = np.nan
    typed = ~np.isnan(marker_genotypes)
    return TransInputs(
        y=y, x=x, w=w, yy=np.sum(y * y, axis=1), inverse_gram=inverse_gram, usable_regulator=usable,
        allele_one=(marker_genotypes == 1).astype(float), allele_zero=(marker_genotypes == 0).astype(float),
        typed=typed.astype(float), interaction=interaction, df=n_individuals - n_parameters)


@dataclass
class TransBlock:
    """One block of regulator-target pairs: every array ``(n_regulators, n_targets)``, see
    :data:`TRANS_BLOCK_VARIABLES`; the b3 arrays are None without interaction; NaN where ``excluded``."""

    regulator_range: Tuple[int, int]
    target_range: Tuple[int, int]
    b1: np.ndarray
    b2: np.ndarray
    se_b1: np.ndarray
    se_b2: np.ndarray
    p_b1: np.ndarray
    p_b2: np.ndarray
    p_iut: np.ndarray
    recombination: np.ndarray
    excluded: np.ndarray
    b3: Optional[np.ndarray] = None
    se_b3: Optional[np.ndarray] = None
    p_b3: Optional[np.ndarray] = None

    @property
    def n_tests(self) -> int:
        return int(self.excluded.size - np.count_nonzero(self.excluded))


def _check_range(name: str, value, n_genes: int) -> Tuple[int, int]:
    if value is None:
        return 0, n_genes
    start, stop = (int(v) for v in value)
    if not 0 <= start <= stop <= n_genes:
        raise InputError(f"{name} must be (start, stop) with 0 <= start <= stop <= n_genes = {n_genes}, "
                         f"got {tuple(value)}")
    return start, stop


def _tiles(start: int, stop: int, tile: int, n_genes: int):
    """Canonical tiles ``[a, b)`` (multiples of ``tile``, clipped at n_genes) meeting ``[start, stop)``, with the
    part ``[lo, hi)`` of each that lies inside the range."""
    for a in range((start // tile) * tile, stop, tile):
        b = min(a + tile, n_genes)
        yield a, b, max(a, start), min(b, stop)


def _p_two_sided(t: np.ndarray, df: int) -> np.ndarray:
    return 2.0 * stdtr(df, -np.abs(t))


def trans_block(expression, marker_genotypes, regulator_range=None, target_range=None, *,
                interaction: bool = True, min_recombination: float = DEFAULT_MIN_RECOMBINATION,
                prepared: Optional[TransInputs] = None) -> TransBlock:
    """Model (1) for every pair (r, t), r in ``regulator_range``, t in ``target_range`` (``(start, stop)`` gene
    indices, default all genes).

    ``expression (n_genes, n_individuals)``; ``marker_genotypes (n_individuals, n_genes)``: column g is the
    genotype (0/1/NaN) of gene g's closest marker (all NaN if none).  ``prepared`` (from :func:`prepare_trans`
    on the same arrays) skips the O(n_genes N) preparation when many blocks are computed.

    Memory per call, R x T pairs (R, T the range lengths), N individuals, G genes, in bytes:
    ``89 R T`` (outputs: 11 float64 arrays and a bool mask) ``+ 8 (3 + 3 + 12) x 64 x 1024`` (one canonical
    tile's GEMM result, recombination counts and temporaries, about 9.4 MB) ``+ 8 x 6 G N`` (prepared inputs,
    about 25 MB at G = 4589, N = 112).  Measured with tracemalloc at R = 256, T = G = 4589: 108 MB beside the
    prepared inputs (formula: 109 MB).
    """
    data = prepared if prepared is not None else prepare_trans(expression, marker_genotypes,
                                                               interaction=interaction)
    if prepared is not None and prepared.interaction != interaction:
        raise InputError(f"prepared inputs were made with interaction={prepared.interaction}, "
                         f"trans_block was asked for interaction={interaction}")
    n_genes = data.n_genes
    r0, r1 = _check_range("regulator_range", regulator_range, n_genes)
    t0, t1 = _check_range("target_range", target_range, n_genes)
    shape = (r1 - r0, t1 - t0)
    names = ["b1", "b2", "se_b1", "se_b2", "p_b1", "p_b2", "p_iut", "recombination"]
    if interaction:
        names += ["b3", "se_b3", "p_b3"]
    out = {name: np.full(shape, np.nan) for name in names}
    out["excluded"] = np.ones(shape, dtype=bool)
    for ra, rb, rlo, rhi in _tiles(r0, r1, REGULATOR_TILE, n_genes):
        stacked = np.concatenate([data.y[ra:rb], data.x[ra:rb]] + ([data.w[ra:rb]] if interaction else []))
        for ta, tb, tlo, thi in _tiles(t0, t1, TARGET_TILE, n_genes):
            cross = stacked @ data.y[ta:tb].T                      # the canonical tile: same call in any block
            n_r = rb - ra
            parts = [cross[k * n_r:(k + 1) * n_r][rlo - ra:rhi - ra, tlo - ta:thi - ta]
                     for k in range(len(stacked) // n_r)]
            rows, cols = slice(rlo - r0, rhi - r0), slice(tlo - t0, thi - t0)
            _tile_statistics(data, parts, (rlo, rhi), (tlo, thi), min_recombination,
                             {name: array[rows, cols] for name, array in out.items()})
    return TransBlock(regulator_range=(r0, r1), target_range=(t0, t1), **out)


def _tile_statistics(data: TransInputs, cross, regulators, targets, min_recombination, out) -> None:
    """Fill the views ``out`` for regulators ``[rlo, rhi)`` x targets ``[tlo, thi)`` from the cross-products
    ``cross[k] = column_k(r)' y_t``.  Elementwise only (no reductions), so a pair's values do not depend on the
    tile it is in."""
    (rlo, rhi), (tlo, thi) = regulators, targets
    inverse = data.inverse_gram[rlo:rhi]
    p = len(cross)
    coefficients = []
    for i in range(p):
        value = inverse[:, i, 0, None] * cross[0]
        for j in range(1, p):
            value = value + inverse[:, i, j, None] * cross[j]
        coefficients.append(value)
    explained = coefficients[0] * cross[0]
    for j in range(1, p):
        explained = explained + coefficients[j] * cross[j]
    residual_variance = np.maximum(data.yy[None, tlo:thi] - explained, 0.0) / data.df

    discordant = (data.allele_one[:, rlo:rhi].T @ data.allele_zero[:, tlo:thi]
                  + data.allele_zero[:, rlo:rhi].T @ data.allele_one[:, tlo:thi])
    both_typed = data.typed[:, rlo:rhi].T @ data.typed[:, tlo:thi]
    with np.errstate(invalid="ignore", divide="ignore"):
        recombination = discordant / both_typed            # exact integer counts: order-free
    excluded = (~data.usable_regulator[rlo:rhi, None] | (data.yy[None, tlo:thi] <= 0)
                | (recombination <= min_recombination)
                | (np.arange(rlo, rhi)[:, None] == np.arange(tlo, thi)[None, :]))
    names = ["b1", "b2", "b3"][:p]
    pvalues = []
    for k, name in enumerate(names):
        se = np.sqrt(residual_variance * inverse[:, k, k, None])
        with np.errstate(invalid="ignore", divide="ignore"):
            pvalue = _p_two_sided(coefficients[k] / se, data.df)
        out[name][...] = np.where(excluded, np.nan, coefficients[k])
        out["se_" + name][...] = np.where(excluded, np.nan, se)
        out["p_" + name][...] = np.where(excluded, np.nan, pvalue)
        pvalues.append(out["p_" + name])
    out["p_iut"][...] = np.maximum(pvalues[0], pvalues[1])
    out["recombination"][...] = recombination
    out["excluded"][...] = excluded


# ---------------------------------------------------------------------------------------------------------
# All pairs: blocked loop, kept pairs, BH


def bh_qvalues_of_kept(pvalues, n_tests: int) -> np.ndarray:
    """BH q-values of the kept p-values ``p <= c`` of a family of ``n_tests`` tests (the rest not kept).

    Exact for every q <= c: a test not kept has p > c, so m p / rank > c for it.  A q > c is an upper bound
    of the true q-value (also > c).  Equal to ``benjamini_hochberg`` of the whole family where q <= c."""
    p = np.asarray(pvalues, dtype=float)
    if p.size > n_tests:
        raise InputError(f"{p.size} kept p-values but only n_tests = {n_tests} tests")
    order = np.argsort(p, kind="mergesort")
    ranks = np.arange(1, p.size + 1)
    q_sorted = np.minimum.accumulate((p[order] * n_tests / ranks)[::-1])[::-1]
    q = np.empty_like(p)
    q[order] = np.minimum(q_sorted, 1.0)
    return q


@dataclass
class TransMap:
    """Trans-mapping result over all (or a range of) regulators.

    ``n_tests``: pairs tested; kept pairs (``p_iut <= keep_pvalue``), arrays ``(n_kept,)``: ``regulator``,
    ``target``, ``b1``, ``b2``, ``b3``, ``p_b1``, ``p_b2``, ``p_b3``, ``p_iut``, ``q_iut`` (BH over all
    ``n_tests``; exact where <= keep_pvalue), ``significant`` (q_iut <= alpha).  Interaction statistics:
    ``n_b3_significant`` tests with a BH-significant b3 at alpha over all tests, and among the kept pairs
    ``p_b3``.  ``regulator_range`` covers the regulators done here (a share of a distributed run: combine the
    kept p-values and the test counts of all shares, then :func:`bh_qvalues_of_kept`)."""

    regulator_range: Tuple[int, int]
    n_tests: int
    kept: Dict[str, np.ndarray]
    q_iut: np.ndarray
    significant: np.ndarray
    b3_pvalues_kept: np.ndarray = field(default_factory=lambda: np.zeros(0))
    n_b3_significant: int = 0


def trans_map(expression, marker_genotypes, *, regulator_range=None, interaction: bool = True,
              min_recombination: float = DEFAULT_MIN_RECOMBINATION, alpha: float = DEFAULT_ALPHA,
              keep_pvalue: Optional[float] = None, regulator_block: int = 4 * REGULATOR_TILE) -> TransMap:
    """Model (1) for every regulator in ``regulator_range`` (default all) against every target, blocked over
    ``regulator_block`` regulators (memory: see :func:`trans_block` with R = regulator_block, T = n_genes),
    keeping the pairs with ``p_iut <= keep_pvalue`` (default alpha) and BH q-values over all tests."""
    keep = alpha if keep_pvalue is None else keep_pvalue
    data = prepare_trans(expression, marker_genotypes, interaction=interaction)
    start, stop = _check_range("regulator_range", regulator_range, data.n_genes)
    kept_parts: Dict[str, list] = {}
    b3_kept = []
    n_tests = 0
    for a, b in chunk_ranges(stop - start, max(1, int(regulator_block))):
        block = trans_block(None, None, (start + a, start + b), None, interaction=interaction,
                            min_recombination=min_recombination, prepared=data)
        n_tests += block.n_tests
        rows, cols = np.nonzero(block.p_iut <= keep)
        kept_parts.setdefault("regulator", []).append(rows + start + a)
        kept_parts.setdefault("target", []).append(cols)
        for name in ("b1", "b2", "b3", "p_b1", "p_b2", "p_b3", "p_iut"):
            array = getattr(block, name)
            if array is not None:
                kept_parts.setdefault(name, []).append(array[rows, cols])
        if interaction:
            b3_kept.append(block.p_b3[block.p_b3 <= alpha])
    kept = {name: np.concatenate(parts) for name, parts in kept_parts.items()}
    q_iut = bh_qvalues_of_kept(kept.get("p_iut", np.zeros(0)), max(n_tests, 1))
    b3 = np.concatenate(b3_kept) if b3_kept else np.zeros(0)
    n_b3 = int(np.count_nonzero(bh_qvalues_of_kept(b3, max(n_tests, 1)) <= alpha))
    return TransMap((start, stop), n_tests, kept, q_iut, q_iut <= alpha, b3, n_b3)
