"""Haley-Knott regression genome scans (one and two QTL, no kinship) on genotype probabilities.

Haley & Knott (1992), Heredity 69:315-324; the conventions follow R/qtl's ``scanone(method="hk")``
and ``scantwo(method="hk")`` (Broman et al. 2003):

* null model: intercept + additive covariates;
* one QTL at position ``j``: null + the first ``n_states - 1`` probability columns ``p_j``
  (the last state is dropped: the columns sum to one, so it is the intercept's);
* additive two-QTL model at ``(j, k)``: null + ``p_j`` + ``p_k``;
* full two-QTL model: additive + the ``(n_states - 1)**2`` products ``p_ja * p_kb``;
* ``LOD = (n/2) log10(RSS0 / RSS1)`` between nested models.

Algorithm.  The response and every probability column are first projected off the null design
(one thin QR).  For a model that adds columns ``X`` to the null, ``RSS0 - RSS1 = b' G^- b`` with
``G = X~'X~`` and ``b = X~'y~`` (``~``: residualised).  All ``G`` and ``b`` entries of a tile of
pairs are matrix products over individuals (GEMMs over positions), e.g. the interaction column's
inner product with ``y`` is ``sum_i p_ija p_ikb y_i``, the ``(j, k)`` entry of ``(P_a * y)' P_b``.
Each pair's small system is then reduced by a compiled symmetric (LDL') elimination in the order
``[p_j, p_k, p_j x p_k]`` (:mod:`qtlhpc.genetics.hk_kernels`), which gives the additive and full
sums of squares in one pass.  A tile crossing the diagonal is cut into row chunks whose products
start at their first row, so the empty lower triangle is mostly skipped.  A column whose residual
squared norm falls below ``pivot_tol`` times its raw squared norm is dropped (it is collinear with
earlier ones), as a pivoting QR would do.

Two positions on the same chromosome: as R/qtl, the full model's interaction columns are the joint
two-locus probabilities ``Pr(g_j = a, g_k = b | marker data)`` (``calc.pairprob``; here
:func:`qtlhpc.genetics.genoprob.pair_probabilities`) for ``a, b < n_states - 1`` when the caller passes
``pair_probs`` and ``chromosomes`` to :func:`scan2d_hk`; with the marginal columns and the intercept
they span the indicators of all ``n_states**2`` joint genotype classes.  When ``pair_probs`` is a
:class:`qtlhpc.genetics.genoprob.GenomePairProbabilities` (it offers ``posterior_chain``), a compiled sweep
along each chromosome (:func:`qtlhpc.genetics.hk_kernels.joint_tile`) forms every pair's system
without storing the joint probabilities; any other callable is asked for them in batches.  Without
``pair_probs`` the products of the marginals are used for every pair (exact where genotypes are fully
informative, and R/qtl's model for positions on different chromosomes, which are independent given
the data).
The additive model always uses the marginals, as R/qtl.

Public functions: :func:`scan1d_hk`, :func:`scan2d_hk` (one :class:`~qtlhpc.parallel.PairBlock`),
:func:`effects_hk` (additive / dominance effects in Xu's coding, with standard errors).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple

import numpy as np

from qtlhpc.io.cross import ADDITIVE_CODE, DOMINANCE_CODE, GENOTYPE_STATES, check_cross_type
from qtlhpc.genetics import hk_kernels
from qtlhpc.errors import InputError
from qtlhpc.parallel.partition import PairBlock

#: relative squared-norm threshold below which a column counts as collinear with earlier ones
PIVOT_TOL = 1e-10

#: the same test for columns orthogonalised one by one (squared norms): R/qtl's tolerance 1e-12 on norms
COLUMN_PIVOT_TOL = 1e-24  # (1e-12)^2

#: a same-chromosome pair whose batched elimination meets a pivot below this fraction of the design's
#: scale is refitted column by column (:func:`sequential_explained_columns`): very close positions
ELIMINATION_FALLBACK_TOL = 1e-6

#: bytes of per-pair work arrays allowed at once in :func:`scan2d_hk` (the block is cut into row chunks)
PAIR_MEMORY_BYTES = 48 * 2**20


# ---------------------------------------------------------------------------------------------
# Input checks (one form for every shape error)


def _check_inputs(probs, phenotypes, covariates) -> Tuple[np.ndarray, np.ndarray, bool, Optional[np.ndarray]]:
    probs = np.asarray(probs, dtype=float)
    if probs.ndim != 3 or probs.shape[2] < 2:
        raise InputError(f"genotype probabilities have shape {probs.shape}; expected "
                         "(n_individuals, n_positions, n_states) with n_states >= 2")
    n_individuals = probs.shape[0]
    phenotypes = np.asarray(phenotypes, dtype=float)
    one_trait = phenotypes.ndim == 1
    if one_trait:
        phenotypes = phenotypes[:, None]
    if phenotypes.ndim != 2 or phenotypes.shape[0] != n_individuals:
        raise InputError(f"phenotypes have shape {phenotypes.shape}; expected ({n_individuals},) or "
                         f"({n_individuals}, n_traits) to match the {n_individuals} individuals of the probabilities")
    if not np.all(np.isfinite(phenotypes)):
        bad = np.argwhere(~np.isfinite(phenotypes))[0]
        raise InputError(f"phenotype of individual {bad[0]} (0-based), trait {bad[1]} is missing or not finite; "
                         "HK scans need complete phenotypes: drop those individuals for that trait first")
    if not np.all(np.isfinite(probs)):
        raise InputError("genotype probabilities contain NaN or infinite values")
    if covariates is not None:
        covariates = np.asarray(covariates, dtype=float)
        if covariates.ndim == 1:
            covariates = covariates[:, None]
        if covariates.ndim != 2 or covariates.shape[0] != n_individuals:
            raise InputError(f"covariates have shape {covariates.shape}; expected ({n_individuals}, n_covariates)")
        if not np.all(np.isfinite(covariates)):
            raise InputError("covariates contain missing or non-finite values; impute or drop those individuals")
    return probs, phenotypes, one_trait, covariates


def _null_basis(covariates: Optional[np.ndarray], n_individuals: int) -> np.ndarray:
    """Orthonormal basis ``Q0 (n_individuals, 1 + n_covariates)`` of the null design [1, covariates]."""
    design = np.ones((n_individuals, 1))
    if covariates is not None and covariates.shape[1]:
        design = np.hstack([design, covariates])
    q, r = np.linalg.qr(design)
    diag = np.abs(np.diag(r))
    if np.any(diag <= 1e-10 * max(diag.max(), 1.0)):
        raise InputError(f"the covariates (with the intercept) are linearly dependent: design of shape "
                         f"{design.shape} has rank < {design.shape[1]}; remove constant or duplicated covariates")
    return q


def _residualise(basis: np.ndarray, matrix: np.ndarray) -> np.ndarray:
    """``matrix - basis basis' matrix`` for ``matrix (n, ...)``."""
    flat = matrix.reshape(matrix.shape[0], -1)
    return (flat - basis @ (basis.T @ flat)).reshape(matrix.shape)


def _lod(rss_reduced, rss_full, n_individuals: int):
    """``(n/2) log10(RSS_reduced / RSS_full)``; a perfect fit (RSS_full <= 0) gives ``inf``."""
    with np.errstate(divide="ignore"):
        return 0.5 * n_individuals * (np.log10(rss_reduced) - np.log10(np.maximum(rss_full, 0.0)))


# ---------------------------------------------------------------------------------------------
# Batched symmetric elimination


def sequential_explained(gram, cross, raw_norms, checkpoints, pivot_tol: float = PIVOT_TOL, pivots=None):
    """Regression sums of squares of nested column sets, for a stack of small systems.

    ``gram (n_systems, d, d)`` = ``X'X`` and ``cross (n_systems, d, n_traits)`` = ``X'Y`` of
    residualised columns; ``raw_norms (n_systems, d)`` the columns' squared norms before
    residualising (scale for the collinearity test).  Eliminating columns in order (LDL' without
    pivoting), the explained sum of squares of the first ``c`` columns is
    ``sum_{i<c} b_i^2 / D_i`` with the updated ``b`` and pivots ``D``.  A pivot below
    ``pivot_tol * raw_norm`` drops its column.  Returns ``(n_checkpoints, n_systems, n_traits)``:
    explained sum of squares of the first ``c`` columns for each ``c`` in ``checkpoints``.
    The inputs are overwritten.  ``pivots (n_systems, d)``, if given, receives every pivot ``D``.
    """
    n_systems, d, _ = gram.shape
    explained = np.zeros((n_systems, cross.shape[2]))
    out = np.empty((len(checkpoints),) + explained.shape)
    marks = {c: i for i, c in enumerate(checkpoints)}
    for col in range(d):
        pivot = gram[:, col, col]
        if pivots is not None:
            pivots[:, col] = pivot
        keep = pivot > pivot_tol * raw_norms[:, col]
        inv_pivot = np.where(keep, 1.0 / np.where(keep, pivot, 1.0), 0.0)
        b_col = cross[:, col, :]
        explained += b_col * b_col * inv_pivot[:, None]
        if col + 1 < d:
            factor = gram[:, col + 1:, col] * inv_pivot[:, None]
            gram[:, col + 1:, col + 1:] -= factor[:, :, None] * gram[:, None, col, col + 1:]
            cross[:, col + 1:, :] -= factor[:, :, None] * b_col[:, None, :]
        if col + 1 in marks:
            out[marks[col + 1]] = explained
    return out


# ---------------------------------------------------------------------------------------------
# One-QTL scan


@dataclass
class _Prepared:
    """Residualised pieces shared by the 1D and 2D scans."""

    n_individuals: int
    n_extra: int              # n_states - 1 columns per position
    null_basis: np.ndarray    # (n, 1 + n_covariates)
    columns: np.ndarray       # raw probability columns (n, n_positions, n_extra)
    resid_columns: np.ndarray  # the same, residualised (n, n_positions, n_extra)
    resid_y: np.ndarray       # (n, n_traits)
    rss0: np.ndarray          # (n_traits,)
    position_major: Optional[Tuple[np.ndarray, np.ndarray]] = None  # cache of _position_major
    single_products: Optional[tuple] = None  # cache of _joint_chain_tile's per-position products


def _prepare(probs, phenotypes, covariates) -> _Prepared:
    n_individuals, _, n_states = probs.shape
    basis = _null_basis(covariates, n_individuals)
    columns = np.ascontiguousarray(probs[:, :, : n_states - 1])
    resid_y = _residualise(basis, phenotypes)
    return _Prepared(n_individuals, n_states - 1, basis, columns, _residualise(basis, columns),
                     resid_y, np.einsum("nt,nt->t", resid_y, resid_y))


def _scan1d_prepared(prep: _Prepared, pivot_tol: float) -> np.ndarray:
    n, n_positions, s = prep.resid_columns.shape
    gram = np.einsum("nja,njb->jab", prep.resid_columns, prep.resid_columns)
    cross = (prep.resid_columns.reshape(n, -1).T @ prep.resid_y).reshape(n_positions, s, -1)
    raw = np.einsum("nja,nja->ja", prep.columns, prep.columns)
    explained = sequential_explained(gram, cross, raw, [s], pivot_tol)[0]
    return _lod(prep.rss0, prep.rss0 - explained, prep.n_individuals)


def scan1d_hk(probs, phenotypes, covariates=None, *, pivot_tol: float = PIVOT_TOL) -> np.ndarray:
    """Single-QTL Haley-Knott scan, many traits at once.

    ``probs (n_individuals, n_positions, n_states)``, ``phenotypes (n_individuals, n_traits)`` or
    ``(n_individuals,)``, ``covariates (n_individuals, n_covariates)`` or None (additive, not
    permuted, in every model).  Returns ``lod (n_positions, n_traits)`` (or ``(n_positions,)`` for
    a 1-D ``phenotypes``): ``(n/2) log10(RSS0/RSS1)``, RSS0 of intercept + covariates, RSS1 adding
    the first ``n_states - 1`` probability columns (R/qtl ``scanone(method="hk")``).
    """
    probs, phenotypes, one_trait, covariates = _check_inputs(probs, phenotypes, covariates)
    lod = _scan1d_prepared(_prepare(probs, phenotypes, covariates), pivot_tol)
    return lod[:, 0] if one_trait else lod


# ---------------------------------------------------------------------------------------------
# Effects in Xu's coding


@dataclass
class HkEffects:
    """Per-position effect estimates of a single-QTL HK regression.

    ``names``: ``("additive",)`` or ``("additive", "dominance")``; ``estimate`` and ``std_error``
    ``(n_positions, n_effects, n_traits)``; ``lod (n_positions, n_traits)``.
    """

    names: Tuple[str, ...]
    estimate: np.ndarray
    std_error: np.ndarray
    lod: np.ndarray


def xu_codes(probs, cross_type: str) -> Tuple[Tuple[str, ...], np.ndarray]:
    """Expected Xu (2013) codes under the probabilities: ``(names, codes (n, n_positions, n_effects))``.

    Additive ``Z = sum_g p_g z_g`` with ``z`` = 1 (AA), 0 (AB), -1 (BB); for F2 also dominance
    ``W = sum_g p_g w_g`` with ``w`` = 1 (AB), -1 (AA, BB).  So bc: ``Z = p_AA``; RIL:
    ``Z = p_AA - p_BB``; F2: ``Z = p_AA - p_BB``, ``W = p_AB - p_AA - p_BB``.
    """
    cross_type = check_cross_type(cross_type)
    if cross_type == "generic":
        raise InputError("effects in Xu's coding need a cross type with genotype states (bc, riself, risib, f2)")
    states = GENOTYPE_STATES[cross_type]
    probs = np.asarray(probs, dtype=float)
    if probs.ndim != 3 or probs.shape[2] != len(states):
        raise InputError(f"genotype probabilities have shape {probs.shape}; a {cross_type} cross expects "
                         f"{len(states)} states {states} on the last axis")
    additive = probs @ np.array([ADDITIVE_CODE[g] for g in states])
    if len(states) == 2:
        return ("additive",), additive[:, :, None]
    dominance = probs @ np.array([DOMINANCE_CODE[g] for g in states])
    return ("additive", "dominance"), np.stack([additive, dominance], axis=2)


def effects_hk(probs, phenotypes, covariates=None, *, cross_type: str) -> HkEffects:
    """Additive (and dominance) effects with standard errors at every position, Xu's coding.

    Regression of each trait on ``[1, covariates, Z_j(, W_j)]`` (see :func:`xu_codes`); since the
    codes span the same space as the probability columns, the LOD equals :func:`scan1d_hk`'s.
    ``std_error = sqrt(sigma^2 [(X'X)^-1]_ii)``, ``sigma^2 = RSS / (n - rank)``.  Shapes in
    :class:`HkEffects`.  Positions where the codes are collinear with the null design get NaN.
    """
    probs, phenotypes, one_trait, covariates = _check_inputs(probs, phenotypes, covariates)
    names, codes = xu_codes(probs, cross_type)
    n, n_positions, n_effects = codes.shape
    null = np.ones((n, 1)) if covariates is None else np.hstack([np.ones((n, 1)), covariates])
    design = np.concatenate([np.broadcast_to(null[:, None, :], (n, n_positions, null.shape[1])), codes], axis=2)
    gram = np.einsum("nja,njb->jab", design, design)
    cross = np.einsum("nja,nt->jat", design, phenotypes)
    n_params = design.shape[2]
    with np.errstate(all="ignore"):
        try:
            inverse = np.linalg.inv(gram)
        except np.linalg.LinAlgError:
            inverse = np.linalg.pinv(gram, hermitian=True)
        coef = inverse @ cross
        fitted = np.einsum("nja,jat->njt", design, coef)
        rss = ((phenotypes[:, None, :] - fitted) ** 2).sum(axis=0)
        sigma2 = rss / (n - n_params)
        variance = np.diagonal(inverse, axis1=1, axis2=2)[:, -n_effects:]
        std_error = np.sqrt(variance[:, :, None] * sigma2[:, None, :])
    resid = _residualise(_null_basis(covariates, n), phenotypes)
    lod = _lod((resid ** 2).sum(axis=0), rss, n)
    eigenvalues = np.linalg.eigvalsh(gram)
    singular = eigenvalues[:, 0] <= PIVOT_TOL * eigenvalues[:, -1]
    estimate = coef[:, -n_effects:, :]
    estimate[singular], std_error[singular], lod[singular] = np.nan, np.nan, np.nan
    if one_trait:
        return HkEffects(names, estimate[:, :, 0], std_error[:, :, 0], lod[:, 0])
    return HkEffects(names, estimate, std_error, lod)


# ---------------------------------------------------------------------------------------------
# Two-QTL scan


@dataclass
class PairLods:
    """LOD scores of a tile of position pairs (R/qtl ``scantwo`` names, one row per pair).

    ``first``, ``second (n_pairs,)``: positions ``j < k`` in ``PairBlock.pairs()`` order.  Each LOD
    is ``(n_pairs, n_traits)``:

    * ``lod_full``: two QTL + interaction vs null;
    * ``lod_add``: two additive QTL vs null;
    * ``lod_int = lod_full - lod_add`` (interaction);
    * ``lod_fv1 = lod_full - max(single[j], single[k])``, ``lod_av1 = lod_add - max(...)``, with
      ``single`` the single-QTL reference LOD per position (default: :func:`scan1d_hk` at that
      position; R/qtl's ``summary.scantwo`` uses the best single QTL on each chromosome instead,
      which a caller obtains by passing chromosome-wise maxima as ``single_qtl_lod``).
    """

    first: np.ndarray
    second: np.ndarray
    lod_full: np.ndarray
    lod_fv1: np.ndarray
    lod_int: np.ndarray
    lod_add: np.ndarray
    lod_av1: np.ndarray

    STATISTICS = ("lod_full", "lod_fv1", "lod_int", "lod_add", "lod_av1")


def _tile_products(prep: _Prepared, rows: slice, cols: slice):
    """Matrix products over the individuals that :func:`qtlhpc.genetics.hk_kernels.product_tile` reads.

    Pairs ``(j, k)`` with ``j`` in ``rows`` and ``k`` in ``cols``; design per pair ``p_j (s)``,
    ``p_k (s)``, ``p_ja p_kb (s*s, a-major)``.  Returns the tuple of arrays in the kernel's argument order.
    """
    n, s = prep.n_individuals, prep.n_extra
    raw_r, raw_c = prep.columns[:, rows], prep.columns[:, cols]
    res_r, res_c = prep.resid_columns[:, rows], prep.resid_columns[:, cols]
    n_rows, n_cols = raw_r.shape[1], raw_c.shape[1]
    flat = lambda a: a.reshape(n, -1)  # noqa: E731

    # residualised single columns: <F_ja, F_kb>, <F_ja, y>
    f_f = (flat(res_r).T @ flat(res_c)).reshape(n_rows, s, n_cols, s)
    f_y_r = np.einsum("nja,nt->jat", res_r, prep.resid_y)
    f_y_c = np.einsum("nja,nt->jat", res_c, prep.resid_y)
    gram_rr = np.einsum("nja,njb->jab", res_r, res_r)
    gram_cc = np.einsum("nja,njb->jab", res_c, res_c)
    # interaction I_ab = P_ja P_kb (raw product; residualising it changes only its own Gram and norm)
    # <F_jc, I_ab> = sum_i F_ijc P_ija P_ikb
    fr_pr = flat(res_r[:, :, :, None] * raw_r[:, :, None, :])          # (n, R*s(c)*s(a))
    g_fj_int = (fr_pr.T @ flat(raw_c)).reshape(n_rows, s, s, n_cols, s)  # [j, c, a, k, b]
    # <F_kc, I_ab> = sum_i P_ija P_ikb F_ikc
    pc_fc = flat(raw_c[:, :, :, None] * res_c[:, :, None, :])          # (n, C*s(b)*s(c))
    g_fk_int = (flat(raw_r).T @ pc_fc).reshape(n_rows, s, n_cols, s, s)  # [j, a, k, b, c]
    # <I_ab, I_a'b'> raw, minus the null-space part
    pr_pr = flat(raw_r[:, :, :, None] * raw_r[:, :, None, :])
    pc_pc = flat(raw_c[:, :, :, None] * raw_c[:, :, None, :])
    int_int = (pr_pr.T @ pc_pc).reshape(n_rows, s, s, n_cols, s, s)  # [j, a, a', k, b, b']
    # <I_ab, y~> = sum_i P_ija y_i P_ikb   and   <q_l, I_ab>
    weights = np.concatenate([prep.resid_y, prep.null_basis], axis=1)  # (n, t + c0)
    pr_w = flat(raw_r[:, :, :, None] * weights[:, None, None, :])
    int_w = (pr_w.T @ flat(raw_c)).reshape(n_rows, s, -1, n_cols, s)   # [j, a, w, k, b]

    raw_single_r = np.einsum("nja,nja->ja", raw_r, raw_r)
    raw_single_c = np.einsum("nja,nja->ja", raw_c, raw_c)
    return (f_f, f_y_r, f_y_c, gram_rr, gram_cc, g_fj_int, g_fk_int, int_int, int_w, raw_single_r, raw_single_c)


def sequential_explained_columns(design, response, raw_norms, checkpoints, pivot_tol: float = COLUMN_PIVOT_TOL):
    """As :func:`sequential_explained`, from the columns themselves (modified Gram-Schmidt).

    ``design (n_systems, n_individuals, d)`` residualised columns, ``response (n_individuals,
    n_traits)`` residualised, ``raw_norms (n_systems, d)``.  Orthogonalising the columns in order
    (each against the kept earlier ones), the explained sum of squares of the first ``c`` columns is
    ``|y|^2 - |y - sum_{i<c} q_i q_i' y|^2`` (residual updated column by column); a column whose remaining squared norm is below ``pivot_tol *
    raw_norm`` is dropped (default: R/qtl's tolerance, 1e-12 on norms).  Unlike the normal
    equations this keeps the accuracy of a QR fit when the columns are nearly collinear (two close
    positions of one chromosome have nearly empty joint classes).  Returns
    ``(n_checkpoints, n_systems, n_traits)``.  ``design`` is overwritten.
    """
    n_systems, _, d = design.shape
    columns = np.ascontiguousarray(design.transpose(0, 2, 1))           # (n_systems, d, n): rows contiguous
    residual = np.empty((n_systems,) + response.T.shape)                # (p, t, n)
    residual[...] = response.T
    total = np.einsum("nt,nt->t", response, response)
    out = np.empty((len(checkpoints), n_systems, response.shape[1]))
    marks = {c: i for i, c in enumerate(checkpoints)}
    for col in range(d):
        column = columns[:, col:col + 1, :]                              # (p, 1, n)
        norm2 = (column @ column.transpose(0, 2, 1))[:, 0, 0]
        keep = norm2 > pivot_tol * raw_norms[:, col]
        unit = column * np.where(keep, 1.0 / np.sqrt(np.where(keep, norm2, 1.0)), 0.0)[:, None, None]
        unit_t = unit.transpose(0, 2, 1)                                 # (p, n, 1)
        residual -= (residual @ unit_t) @ unit
        if col + 1 < d:
            later = columns[:, col + 1:, :]
            later -= (later @ unit_t) @ unit
        if col + 1 in marks:
            # RSS from the residual itself (stable even when the q's lose some orthogonality)
            out[marks[col + 1]] = total - np.einsum("ptn,ptn->pt", residual, residual)
    return out


def _joint_probability_explained(prep: _Prepared, pair_probs, first, second, checkpoints,
                                 fallback_tol: float = None):
    """Explained sums of squares ``(n_checkpoints, n_pairs, n_traits)`` of pairs on one chromosome.

    Design per pair: residualised ``p_j (s)``, ``p_k (s)``, ``J_ab = Pr(g_j = a, g_k = b)`` for
    ``a, b < s`` (a-major), ``s = n_states - 1`` (R/qtl ``scantwo_1chr_hk``); ``first``, ``second``
    absolute positions.  A column is dropped when its remaining squared norm is below
    :data:`COLUMN_PIVOT_TOL` times the design's scale: its largest squared column norm, at least
    ``n`` (the intercept's), which reproduces R/qtl's fits when joint classes are (nearly) empty,
    e.g. markers at one position.

    Every pair is first solved from its normal equations: the Gram matrix ``X~'X~`` and ``X~'y~``
    of the residualised design (one batched matrix product over individuals) reduced by
    :func:`sequential_explained`.  Pairs where a pivot falls below ``fallback_tol`` (default
    :data:`ELIMINATION_FALLBACK_TOL`) times the scale (nearly collinear columns: very close
    positions) are refitted by modified Gram-Schmidt (:func:`sequential_explained_columns`), whose
    accuracy does not depend on the conditioning.  Above that threshold the normal equations lose at
    most ~``eps / fallback_tol`` relative accuracy in a pivot.  The joint probabilities are requested
    in batches whose work arrays stay within :data:`PAIR_MEMORY_BYTES`.
    """
    fallback_tol = ELIMINATION_FALLBACK_TOL if fallback_tol is None else fallback_tol
    n, s = prep.n_individuals, prep.n_extra
    n_states, n_traits = s + 1, prep.resid_y.shape[1]
    d = 2 * s + s * s
    out = np.empty((len(checkpoints), len(first), n_traits))
    columns_t, raw_single = _position_major(prep)
    basis = prep.null_basis
    batch = max(1, int(PAIR_MEMORY_BYTES // (8 * n * (n_states ** 2 + 3 * d + 2 * n_traits))))
    for start in range(0, len(first), batch):
        pick = slice(start, start + batch)
        pair_first, pair_second = first[pick], second[pick]
        n_pick = len(pair_first)
        joint = np.asarray(pair_probs(pair_first, pair_second), dtype=float)
        if joint.shape != (n, n_pick, n_states, n_states):
            raise InputError(f"pair_probs returned shape {joint.shape}; expected (n_individuals, n_pairs, "
                             f"n_states, n_states) = ({n}, {n_pick}, {n_states}, {n_states})")
        # design rows (n_pairs, d, n): F_j, F_k, then the interaction columns J_ab residualised
        design = np.empty((n_pick, d, n))
        design[:, :s] = columns_t[pair_first]
        design[:, s:2 * s] = columns_t[pair_second]
        for a in range(s):
            design[:, 2 * s + a * s:2 * s + (a + 1) * s] = joint[:, :, a, :s].transpose(1, 2, 0)
        inter = design[:, 2 * s:]
        raw_inter = np.einsum("pcn,pcn->pc", inter, inter)
        inter -= (inter @ basis) @ basis.T
        # as R/qtl's rank decision (singular values below 1e-12 of the largest are dropped), measure
        # every column against the design's largest squared norm: the intercept's n or larger
        scale = np.maximum(np.maximum(raw_single[pair_first].max(axis=1), raw_single[pair_second].max(axis=1)),
                           np.maximum(raw_inter.max(axis=1), float(n)))
        scales = np.broadcast_to(scale[:, None], (n_pick, d))
        gram = design @ design.transpose(0, 2, 1)
        cross = (design.reshape(n_pick * d, n) @ prep.resid_y).reshape(n_pick, d, n_traits)
        pivots = np.empty((n_pick, d))
        explained = sequential_explained(gram, cross, scales, checkpoints, COLUMN_PIVOT_TOL, pivots=pivots)
        refit = np.flatnonzero(pivots.min(axis=1) < fallback_tol * scale)
        if refit.size:
            explained[:, refit] = sequential_explained_columns(design[refit].transpose(0, 2, 1), prep.resid_y,
                                                               scales[refit], checkpoints)
        out[:, pick] = explained
    return out


def _position_major(prep: _Prepared):
    """Residualised columns ``(n_positions, s, n)`` (rows contiguous) and raw squared norms ``(n_positions, s)``."""
    if prep.position_major is None:
        prep.position_major = (np.ascontiguousarray(prep.resid_columns.transpose(1, 2, 0)),
                               np.einsum("nja,nja->ja", prep.columns, prep.columns))
    return prep.position_major


#: a block that crosses the diagonal is cut into at least this many row chunks, each of whose products
#: starts at its own first row: most of the tile below the diagonal (no pairs) is then never computed
DIAGONAL_CHUNKS = 8


def _row_chunks(block: PairBlock, n_extra: int, n_traits: int, n_individuals: int):
    """``(row_start, row_stop, col_start)`` sub-tiles of ``block`` holding all its pairs ``j < k``.

    Each sub-tile's products stay within :data:`PAIR_MEMORY_BYTES`; its columns start after its
    first row, so a block crossing the diagonal costs about half its full rectangle.
    """
    s = n_extra
    n_cols = block.col_stop - block.col_start
    per_row = 8 * n_cols * (s * s + 2 * s ** 3 + s ** 4 + s * s * (2 * n_traits + 4) + 2) + 8 * n_individuals * s * s
    step = max(1, int(PAIR_MEMORY_BYTES // per_row))
    if block.col_start < block.row_stop:
        step = min(step, max(16, -(-(block.row_stop - block.row_start) // DIAGONAL_CHUNKS)))
    chunks = []
    for r in range(block.row_start, block.row_stop, step):
        col_start = max(block.col_start, r + 1)
        if col_start < block.col_stop:
            chunks.append((r, min(r + step, block.row_stop), col_start))
    return chunks


def _chromosome_codes(chromosomes, n_positions: int) -> np.ndarray:
    if chromosomes is None:
        return np.zeros(n_positions, dtype=np.int64)
    return np.unique(np.asarray(chromosomes), return_inverse=True)[1].astype(np.int64)


def _joint_chain_tile(prep: _Prepared, chains, rows, cols, out, done, checkpoints):
    """Fill ``out``/``done`` for the same-chromosome pairs of a tile from posterior chains (compiled sweep)."""
    columns_t, raw_single = _position_major(prep)
    if prep.single_products is None:
        prep.single_products = (np.einsum("jan,jbn->jab", columns_t, columns_t),
                                np.einsum("jan,nt->jat", columns_t, prep.resid_y),
                                np.ascontiguousarray(prep.resid_y.T), np.ascontiguousarray(prep.null_basis.T))
    single_gram, single_y, response_t, basis_t = prep.single_products
    refit = np.zeros(done.shape, dtype=bool)
    for label, offset, count in chains.chromosome_ranges():
        if offset >= rows.stop or offset + count <= rows.start or offset >= cols.stop or offset + count <= cols.start:
            continue
        marginals, transitions = chains.posterior_chain(label)
        if marginals.shape[2] != prep.n_individuals or marginals.shape[1] != prep.n_extra + 1:
            raise InputError(f"pair_probs of chromosome {label} cover {marginals.shape[2]} individuals and "
                             f"{marginals.shape[1]} genotype states; the probabilities have {prep.n_individuals} "
                             f"and {prep.n_extra + 1}")
        hk_kernels.joint_tile(offset, np.ascontiguousarray(marginals[:, :prep.n_extra]), transitions,
                              rows.start, rows.stop, cols.start, cols.stop, columns_t, raw_single, single_gram,
                              single_y, response_t, basis_t, COLUMN_PIVOT_TOL, ELIMINATION_FALLBACK_TOL,
                              out, done, refit)
    r, c = np.nonzero(refit)
    if r.size:  # nearly collinear columns: refit from the columns themselves (modified Gram-Schmidt)
        out[:, r, c] = _joint_probability_explained(prep, chains, r + rows.start, c + cols.start, checkpoints,
                                                    fallback_tol=np.inf)


def _scan2d_prepared(prep: _Prepared, block: PairBlock, single_qtl_lod, pivot_tol, chromosomes=None,
                     pair_probs=None) -> PairLods:
    n_traits = prep.resid_y.shape[1]
    s = prep.n_extra
    checkpoints = [2 * s, 2 * s + s * s]
    joint = pair_probs is not None
    chains = pair_probs if joint and hasattr(pair_probs, "posterior_chain") else None
    codes = _chromosome_codes(chromosomes, prep.columns.shape[1])
    pieces = []
    for row_start, row_stop, col_start in _row_chunks(block, s, n_traits, prep.n_individuals):
        cols = slice(col_start, block.col_stop)
        sub = PairBlock(block.block_id, row_start, row_stop, col_start, block.col_stop)
        first, second = sub.pairs()
        if len(first) == 0:
            continue
        rows = slice(row_start, row_stop)
        out = np.zeros((2, row_stop - row_start, cols.stop - cols.start, n_traits))
        done = np.zeros(out.shape[1:3], dtype=bool)
        same = codes[first] == codes[second]
        if not (joint and same.all()):
            kernel = hk_kernels.product_tile_one_state if s == 1 else hk_kernels.product_tile
            kernel(row_start, cols.start, *_tile_products(prep, rows, cols), codes, joint, pivot_tol, out, done)
        if chains is not None:
            _joint_chain_tile(prep, chains, rows, cols, out, done, checkpoints)
        elif joint and same.any():
            pick = np.flatnonzero(same)
            explained = _joint_probability_explained(prep, pair_probs, first[pick], second[pick], checkpoints)
            out[:, first[pick] - row_start, second[pick] - cols.start] = explained
            done[first[pick] - row_start, second[pick] - cols.start] = True
        local = (first - row_start, second - cols.start)
        assert done[local].all(), "scan2d_hk: a pair of the tile was not computed"
        explained = out[:, local[0], local[1]]
        rss_add = prep.rss0 - explained[0]
        rss_full = prep.rss0 - explained[1]
        lod_full = _lod(prep.rss0, rss_full, prep.n_individuals)
        lod_add = _lod(prep.rss0, rss_add, prep.n_individuals)
        best_single = np.maximum(single_qtl_lod[first], single_qtl_lod[second])
        pieces.append(PairLods(first, second, lod_full, lod_full - best_single, lod_full - lod_add,
                               lod_add, lod_add - best_single))
    if not pieces:
        empty = np.empty((0, n_traits))
        return PairLods(np.empty(0, np.int64), np.empty(0, np.int64), empty, empty, empty, empty, empty)
    return PairLods(*(np.concatenate([getattr(p, f) for p in pieces])
                      for f in ("first", "second") + PairLods.STATISTICS))


def scan2d_hk(probs, phenotypes, covariates=None, block: Optional[PairBlock] = None, *,
              single_qtl_lod=None, chromosomes=None, pair_probs: Optional[Callable] = None,
              pivot_tol: float = PIVOT_TOL) -> PairLods:
    """Two-QTL Haley-Knott scan of the pairs ``j < k`` of one tile (all pairs when ``block`` is None).

    ``probs (n_individuals, n_positions, n_states)``, ``phenotypes (n_individuals, n_traits)`` (a 1-D
    vector is treated as one trait; outputs stay 2-D), ``covariates (n_individuals, n_covariates)``
    or None.  ``single_qtl_lod (n_positions, n_traits)`` is the single-QTL reference of ``lod_fv1``
    / ``lod_av1`` (default: :func:`scan1d_hk`).  Returns :class:`PairLods` with pairs in
    ``block.pairs()`` order (R/qtl ``scantwo(method="hk")`` models).  Work arrays are bounded by
    cutting the tile into row chunks.

    Same-chromosome pairs as R/qtl: ``chromosomes (n_positions,)`` labels and a callable
    ``pair_probs(first, second) -> (n_individuals, n_pairs, n_states, n_states)`` giving the joint
    genotype probabilities of positions ``first[p] < second[p]`` (absolute indices; e.g. a
    :meth:`qtlhpc.genetics.genoprob.ChromosomeChain.pair_probabilities` after shifting to the chromosome's
    first position) for the same individuals as ``probs``.  It is called only for pairs with equal
    labels, in batches of bounded size.  Without it every pair uses products of the marginals.
    """
    probs, phenotypes, _, covariates = _check_inputs(probs, phenotypes, covariates)
    n_positions = probs.shape[1]
    if block is None:
        block = PairBlock(0, 0, n_positions, 0, n_positions)
    if not (0 <= block.row_start <= block.row_stop <= n_positions and 0 <= block.col_start <= block.col_stop <= n_positions):
        raise InputError(f"pair block rows [{block.row_start}, {block.row_stop}) x cols [{block.col_start}, "
                         f"{block.col_stop}) does not fit {n_positions} positions")
    prep = _prepare(probs, phenotypes, covariates)
    if single_qtl_lod is None:
        single_qtl_lod = _scan1d_prepared(prep, pivot_tol)
    single_qtl_lod = np.asarray(single_qtl_lod, dtype=float)
    if single_qtl_lod.ndim == 1:
        single_qtl_lod = single_qtl_lod[:, None]
    if single_qtl_lod.shape != (n_positions, phenotypes.shape[1]):
        raise InputError(f"single_qtl_lod has shape {single_qtl_lod.shape}; expected "
                         f"({n_positions}, {phenotypes.shape[1]}) (positions, traits)")
    if pair_probs is not None:
        if chromosomes is None:
            raise InputError("pair_probs needs chromosomes (n_positions,) to tell which pairs share a chromosome")
        chromosomes = np.asarray(chromosomes)
        if chromosomes.shape != (n_positions,):
            raise InputError(f"chromosomes has shape {chromosomes.shape}; expected ({n_positions},), one label "
                             "per position of probs")
        labels = getattr(pair_probs, "chromosomes", None)
        if hasattr(pair_probs, "posterior_chain") and (
                labels is None or np.shape(labels) != chromosomes.shape
                or np.any(np.asarray(labels).astype(str) != chromosomes.astype(str))):
            raise InputError("pair_probs covers other positions than the probabilities: its chromosome labels "
                             "differ from chromosomes; build both from one cross with the same genoprob step")
    return _scan2d_prepared(prep, block, single_qtl_lod, pivot_tol, chromosomes, pair_probs)
