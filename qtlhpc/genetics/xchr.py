"""The X chromosome of a backcross or intercross, as R/qtl models it (Broman et al. 2006, Genetics 174:2151).

Genotype codes.  R/qtl files write the X with the autosomes' labels: females as AA/AB (or AB/BB in the
reverse direction of an intercross), hemizygous males with the homozygous labels (``AA`` for AY, ``BB``
for BY; ``write.cross`` writes them so).  :func:`recode_x` turns those file codes (1 AA, 2 AB, 3 BB, 4 not
BB, 5 not AA) into R/qtl's internal two-state codes ``g1``/``g2`` per individual, as its ``read.cross``:

============================== ======= =======
individual                      g1      g2
============================== ======= =======
female, bc or f2 pgm = 0        AA      AB
female, f2 pgm = 1              BB      AB
male                            AY      BY
============================== ======= =======

Codes that a class cannot carry (a heterozygous male, BB in a bc female...) and F2's partially
informative codes are set missing, as R/qtl does.  The HMM of the X is then the backcross HMM on g1/g2
(R/qtl ``calc.genoprob`` uses ``calc_genoprob_bc`` for the X of bc and f2), so
:mod:`qtlhpc.genetics.genoprob` needs nothing special beyond using two states.

In a cross's genotype-probability array (states of the autosomes) the X is stored in those states:
bc: g1 -> AA, g2 -> AB (males: AY, BY); f2: female pgm 0 g1 -> AA, g2 -> AB; female pgm 1 g1 -> BB,
g2 -> AB; male g1 -> AA (AY), g2 -> BB (BY): :func:`x_states_to_cross`.

Scans (``scanone``/``scantwo``, method hk).  On the X, the QTL's columns are the probabilities expanded
to R/qtl's "full" genotype set (one column per sex/direction class and state: AA, AB, AY, BY for a bc
with both sexes; AA, ABf, ABr, BB, AY, BY for an f2), :func:`expand_full`; the null model adds R/qtl's
sex/direction covariates (``scanoneXnull``), :func:`x_null_covariates`, and additive covariates that
those covariates already span are dropped (``revisecovar``).  The LOD on the X is
``(n/2) log10(RSS(null + X covariates) / RSS(null + X covariates + expanded probabilities))`` and its
degrees of freedom are the rank gained by the expanded columns (:func:`x_degrees_of_freedom`).

Permutations (``scanone(perm.Xsp = TRUE)``): :func:`permutation_maxima_xsp`, :func:`xsp_maxima` (the
phenotype moves with its individual's covariates, sex and pgm, as R/qtl; :func:`moved_scan_maxima`
scans a batch of such permutations as matrix products), :func:`xsp_thresholds` (R/qtl's level split by
chromosome lengths), :func:`xsp_unit_starts` (the X permutations of each unit of a stage).  Writing:
:func:`x_file_codes` turns g1/g2 back into the file codes R/qtl writes.
"""

from __future__ import annotations

import logging
from typing import List, Optional, Tuple

import numpy as np

from qtlhpc.errors import InputError
from qtlhpc.genetics.hk import scan1d_hk
from qtlhpc.io.cross import HMM_CROSS_TYPE

log = logging.getLogger("qtlhpc")

#: sex/direction classes: female pgm 0, female pgm 1, male
CLASS_NAMES = ("female", "female-reverse", "male")


def individual_classes(sex: Optional[np.ndarray], pgm: Optional[np.ndarray], n: int) -> np.ndarray:
    """Class of each individual ``(n,)``: 0 female (pgm 0), 1 female (pgm 1), 2 male (no sex: female)."""
    sex = np.zeros(n, dtype=np.int8) if sex is None else np.asarray(sex, dtype=np.int8)
    pgm = np.zeros(n, dtype=np.int8) if pgm is None else np.asarray(pgm, dtype=np.int8)
    return np.where(sex == 1, 2, np.where(pgm == 1, 1, 0)).astype(np.int8)


def recode_x(codes: np.ndarray, cross_type: str, sex: Optional[np.ndarray], pgm: Optional[np.ndarray],
             where: str = "the X chromosome") -> Tuple[Optional[np.ndarray], Optional[np.ndarray],
                                                       Optional[np.ndarray]]:
    """File codes of the X ``(n, m)`` -> R/qtl's g1/g2 codes, and the sex and pgm used.

    Returns ``(codes, sex, pgm)``; ``codes`` is None when the X cannot be interpreted (no sex column and
    genotypes of both sexes: R/qtl omits the X then, with a warning, and so does the caller).  Without
    sex (and pgm), R/qtl's guesses: only AA/BB codes -> all male; only AA/AB -> all female (pgm 0); f2
    only AB/BB -> all female, pgm 1.
    """
    kind = HMM_CROSS_TYPE[cross_type]
    codes = np.array(codes, dtype=np.int8)
    n = codes.shape[0]
    observed = codes[codes > 0]
    dropped = 0

    def omit(mask, what):
        nonlocal dropped
        count = int(np.count_nonzero(mask))
        if count:
            log.warning("%s: %d %s set missing (as R/qtl)", where, count, what)
            dropped += count
        codes[mask] = 0

    if sex is None:
        if np.all(np.isin(observed, (1, 3))):
            log.warning("%s: no sex column and only homozygous codes: all individuals taken as male (as R/qtl)",
                        where)
            sex = np.ones(n, dtype=np.int8)
        elif np.all(np.isin(observed, (1, 2))):
            sex = np.zeros(n, dtype=np.int8)
            pgm = np.zeros(n, dtype=np.int8) if kind == "f2" and pgm is None else pgm
        elif kind == "f2" and pgm is None and np.all(np.isin(observed, (2, 3))):
            sex, pgm = np.zeros(n, dtype=np.int8), np.ones(n, dtype=np.int8)
        elif kind == "f2" and pgm is not None:
            sex = np.zeros(n, dtype=np.int8)
        else:
            log.warning("%s: genotypes of both sexes but no 'sex' phenotype column: the X chromosome is left "
                        "out (as R/qtl); add a sex column (0 = female, 1 = male, or female/male)", where)
            return None, None, None
    sex = np.asarray(sex, dtype=np.int8)
    if kind == "bc":
        pgm = None
    elif pgm is None:
        females = codes[sex == 0]
        has_aa, has_bb = bool(np.any(females == 1)), bool(np.any(females == 3))
        if has_bb and not has_aa:
            pgm = np.ones(n, dtype=np.int8)
        else:
            if has_aa and has_bb:
                log.warning("%s: females of both cross directions seem present but there is no 'pgm' column; "
                            "those with a BB genotype are taken as pgm = 1 (as R/qtl: probably poorly)", where)
                pgm = ((sex == 0) & np.any(codes == 3, axis=1)).astype(np.int8)
            else:
                pgm = np.zeros(n, dtype=np.int8)
    pgm = None if pgm is None else np.asarray(pgm, dtype=np.int8)
    male = sex == 1
    omit((codes == 2) & male[:, None], "male heterozygous X genotypes")
    codes[(codes == 3) & male[:, None]] = 2
    reverse = np.zeros(n, dtype=bool) if pgm is None else (sex == 0) & (pgm == 1)
    forward = (sex == 0) & ~reverse
    omit((codes == 3) & forward[:, None], "BB X genotypes of females" + (" (pgm 0)" if kind == "f2" else ""))
    omit((codes == 1) & reverse[:, None], "AA X genotypes of females with pgm 1")
    codes[(codes == 3) & reverse[:, None]] = 1
    omit(codes > 2, "other X genotypes (partially informative codes)")
    return codes, sex, pgm


def state_map(cross_type: str) -> np.ndarray:
    """``(3 classes, 2)``: the cross's state index of g1 and g2 for each class (see the module docstring)."""
    if HMM_CROSS_TYPE[cross_type] == "bc":
        return np.array([[0, 1], [0, 1], [0, 1]])
    return np.array([[0, 1], [2, 1], [0, 2]])


def x_states_to_cross(probs_g: np.ndarray, classes: np.ndarray, cross_type: str, n_states: int) -> np.ndarray:
    """g1/g2 probabilities ``(n, P, 2)`` -> the cross's states ``(n, P, n_states)`` (zeros elsewhere)."""
    mapping = state_map(cross_type)
    out = np.zeros(probs_g.shape[:2] + (n_states,))
    for c in range(3):
        rows = classes == c
        if rows.any():
            for g in range(2):
                out[rows, :, mapping[c, g]] += probs_g[rows, :, g]
    return out


def cross_states_to_x(probs: np.ndarray, classes: np.ndarray, cross_type: str) -> np.ndarray:
    """Inverse of :func:`x_states_to_cross`: ``(n, P, n_states)`` -> g1/g2 ``(n, P, 2)``."""
    mapping = state_map(cross_type)
    out = np.empty(probs.shape[:2] + (2,))
    for c in range(3):
        rows = classes == c
        for g in range(2):
            out[rows, :, g] = probs[rows][:, :, mapping[c, g]]
    return out


def full_genotype_names(cross_type: str, classes: np.ndarray) -> List[str]:
    """R/qtl's "full" X genotype names present in the cross (``getgenonames(..., "full")``)."""
    present = set(np.unique(classes).tolist())
    if HMM_CROSS_TYPE[cross_type] == "bc":
        names = {0: ["AA", "AB"], 1: ["AA", "AB"], 2: ["AY", "BY"]}
        return [g for c in (0, 2) if c in present or (c == 0 and 1 in present) for g in names[c]]
    both = {0, 1} <= present
    names = []
    if 0 in present:
        names += ["AA", "ABf" if both else "AB"]
    if 1 in present:
        names += ["ABr" if both else "AB", "BB"]
    if 2 in present:
        names += ["AY", "BY"]
    return names


def expand_full(probs_g: np.ndarray, classes: np.ndarray) -> np.ndarray:
    """R/qtl's "full" expansion: ``(n, P, 2)`` g1/g2 -> ``(n, P, 2 * n_classes_present)``, class-major.

    Column ``2 c' + g`` holds ``P(g) * 1{class = c}`` for the ``c'``-th class present (female pgm 0,
    female pgm 1, male): one column per genotype of :func:`full_genotype_names` (up to their order).
    """
    present = [c for c in range(3) if np.any(classes == c)]
    out = np.zeros(probs_g.shape[:2] + (2 * len(present),))
    for k, c in enumerate(present):
        rows = classes == c
        out[rows, :, 2 * k:2 * k + 2] = probs_g[rows]
    return out


def x_null_covariates(cross_type: str, sex: Optional[np.ndarray], pgm: Optional[np.ndarray],
                      n: int) -> np.ndarray:
    """R/qtl's X covariates of the null model (``scanoneXnull``): ``(n, 0..2)``.

    bc: sex when both sexes are present.  f2: sex (one direction, both sexes); pgm (all female, both
    directions); sex and the indicator of reverse-direction females (both sexes, both directions).
    """
    kind = HMM_CROSS_TYPE[cross_type]
    sex = np.zeros(n) if sex is None else np.asarray(sex, dtype=float)
    pgm = np.zeros(n) if pgm is None else np.asarray(pgm, dtype=float)
    both_sexes = 0 < sex.sum() < n
    all_male = sex.sum() == n
    both_directions = 0 < pgm.sum() < n
    if kind == "bc":
        return sex[:, None] if both_sexes else np.empty((n, 0))
    if (not both_directions and not both_sexes) or (both_directions and all_male):
        return np.empty((n, 0))
    if not both_directions and both_sexes:
        return sex[:, None]
    if both_directions and not both_sexes:
        return pgm[:, None]
    return np.column_stack([sex, ((sex == 0) & (pgm == 1)).astype(float)])


def revise_covariates(covariates: Optional[np.ndarray], cross_type: str, sex, pgm, n: int,
                      tol: float = 1e-7) -> Tuple[np.ndarray, np.ndarray]:
    """Additive covariates kept on the X (R/qtl ``revisecovar``): those not spanned by the sex/direction
    indicators.  Returns ``(kept (n, k'), keep mask (k,))``."""
    if covariates is None or np.size(covariates) == 0:
        return np.empty((n, 0)), np.zeros(0, dtype=bool)
    covariates = np.asarray(covariates, dtype=float).reshape(n, -1)
    classes = individual_classes(sex, pgm if HMM_CROSS_TYPE[cross_type] == "f2" else None, n)
    indicators = np.column_stack([(classes == c).astype(float) for c in range(3) if np.any(classes == c)])
    base = np.linalg.matrix_rank(indicators)
    keep = np.array([np.linalg.matrix_rank(np.column_stack([indicators, covariates[:, k]]), tol=None) > base
                     for k in range(covariates.shape[1])])
    return covariates[:, keep], keep


def independent_columns(design: np.ndarray, tol: float = 1e-10) -> np.ndarray:
    """The columns of ``design (n, k)`` kept by a greedy left-to-right rank test (collinear ones dropped)."""
    kept: List[int] = []
    basis = np.empty((design.shape[0], 0))
    for k in range(design.shape[1]):
        column = design[:, k]
        residual = column - basis @ (basis.T @ column)
        norm = np.linalg.norm(residual)
        if norm > tol * max(np.linalg.norm(column), 1.0):
            kept.append(k)
            basis = np.column_stack([basis, residual / norm])
    return design[:, kept]


def x_scan_design(probs_g: np.ndarray, cross_type: str, sex, pgm, covariates=None):
    """Everything an HK scan of the X needs: ``(expanded probs (n, P, K), null covariates (n, c))``.

    The null covariates are the additive covariates kept by :func:`revise_covariates` and the X
    covariates of :func:`x_null_covariates`, collinear columns dropped; with an intercept they are the
    null model, and adding the ``K - 1`` first expanded columns gives the alternative (the K columns sum to
    one).  Pass both to :func:`qtlhpc.genetics.hk.scan1d_hk`.
    """
    n = probs_g.shape[0]
    classes = individual_classes(sex, pgm if HMM_CROSS_TYPE[cross_type] == "f2" else None, n)
    expanded = expand_full(probs_g, classes)
    kept, _ = revise_covariates(covariates, cross_type, sex, pgm, n)
    null = np.column_stack([np.ones(n), kept, x_null_covariates(cross_type, sex, pgm, n)])
    return expanded, independent_columns(null)[:, 1:]


def x_degrees_of_freedom(probs_g: np.ndarray, cross_type: str, sex, pgm, covariates=None,
                         tol: float = 1e-8) -> np.ndarray:
    """Degrees of freedom of the X's QTL at each position ``(P,)``: rank(null + expanded) - rank(null)."""
    expanded, null = x_scan_design(probs_g, cross_type, sex, pgm, covariates)
    n = expanded.shape[0]
    base = np.column_stack([np.ones(n), null])
    r0 = np.linalg.matrix_rank(base)
    return np.array([np.linalg.matrix_rank(np.column_stack([base, expanded[:, j]]), tol=tol * n) - r0
                     for j in range(expanded.shape[1])])


def scan1d_hk_x(probs_g: np.ndarray, phenotypes, cross_type: str, sex, pgm, covariates=None) -> np.ndarray:
    """Haley-Knott single-QTL LOD on the X ``(P,)`` or ``(P, n_traits)``, as R/qtl ``scanone(method="hk")``.

    ``probs_g (n, P, 2)`` g1/g2 probabilities of the X (see :func:`cross_states_to_x`); ``sex``, ``pgm``
    ``(n,)`` or None; ``covariates (n, k)`` the additive covariates of the autosomal scans.
    """
    if HMM_CROSS_TYPE.get(cross_type) not in ("bc", "f2"):
        raise InputError(f"the X chromosome model is defined for bc and f2 crosses, not {cross_type!r}")
    expanded, null = x_scan_design(np.asarray(probs_g, dtype=float), cross_type, sex, pgm, covariates)
    return scan1d_hk(expanded, phenotypes, null if null.shape[1] else None)


def _padded(probs: np.ndarray, width: int) -> np.ndarray:
    """``(n, P, s)`` -> ``(n, P, width)`` with zero columns appended (they add nothing to a fit)."""
    if probs.shape[2] == width:
        return probs
    out = np.zeros(probs.shape[:2] + (width,))
    out[:, :, :probs.shape[2]] = probs
    return out


class _ExpandedPairs:
    """Joint probabilities of same-chromosome pairs, the X's expanded to R/qtl's "full" genotypes.

    ``chains``: a :class:`qtlhpc.genetics.genoprob.GenomePairProbabilities` of the cross (the X's chain is
    its g1/g2 backcross chain); ``width``: the padded state count of the scan.
    """

    def __init__(self, chains, x_name, classes, width):
        self.chains, self.x_name, self.classes, self.width = chains, x_name, classes, width
        self.present = [c for c in range(3) if np.any(classes == c)]

    def __call__(self, first, second):
        first, second = np.asarray(first), np.asarray(second)
        n = len(self.classes)
        out = np.zeros((n, len(first), self.width, self.width))
        labels = self.chains.chromosomes[first]
        for label in np.unique(labels):
            pick = np.flatnonzero(labels == label)
            joint = self.chains(first[pick], second[pick])
            if str(label) != str(self.x_name):
                s = joint.shape[2]
                out[:, pick, :s, :s] = joint
                continue
            for k, c in enumerate(self.present):
                rows = np.flatnonzero(self.classes == c)
                block = joint[rows][:, :, :2, :2]
                out[np.ix_(rows, pick, range(2 * k, 2 * k + 2), range(2 * k, 2 * k + 2))] = block
        return out


def x_single_qtl_lod(probs: np.ndarray, chromosomes, x_name: str, cross_type: str, sex, pgm, phenotypes,
                     covariates=None) -> np.ndarray:
    """Single-QTL HK LOD ``(P, n_traits)`` of every position, the X by :func:`scan1d_hk_x`."""
    chromosomes = np.asarray(chromosomes).astype(str)
    lod = scan1d_hk(probs, phenotypes, covariates)
    lod = lod[:, None] if lod.ndim == 1 else lod.copy()
    on_x = chromosomes == str(x_name)
    if on_x.any():
        n = probs.shape[0]
        classes = individual_classes(sex, pgm if HMM_CROSS_TYPE[cross_type] == "f2" else None, n)
        x_lod = scan1d_hk_x(cross_states_to_x(probs[:, on_x], classes, cross_type), phenotypes, cross_type, sex,
                            pgm, covariates)
        lod[on_x] = x_lod[:, None] if x_lod.ndim == 1 else x_lod
    return lod


def scan2d_hk_x(probs: np.ndarray, chromosomes, x_name: str, cross_type: str, sex, pgm, phenotypes,
                covariates=None, pair_probs=None, single_qtl_lod=None, block=None):
    """Two-QTL Haley-Knott scan of the pairs ``j < k`` of ``block`` (default all) with R/qtl's X model
    (``scantwo(method = "hk")``).

    ``probs (n, P, n_states)`` in the cross's states (:func:`calc_genoprob` output, the X included, X
    last as R/qtl orders chromosomes); ``chromosomes (P,)``.  Autosome pairs are the usual scan.  A pair
    with an X position uses the X's expanded ("full") probabilities, so its model holds R/qtl's sex and
    direction classes; the null model is the intercept and the additive covariates for autosome pairs; a
    pair with an X position is measured against the X null of :func:`scan1d_hk_x` (additive covariates
    and sex/direction covariates), as ``scantwo``'s X adjustment.  ``pair_probs``: a
    :class:`qtlhpc.genetics.genoprob.GenomePairProbabilities` for same-chromosome pairs (joint
    probabilities, as R/qtl), or None (products of marginals).  ``single_qtl_lod (P, n_traits)``: the
    reference of ``lod_fv1``/``lod_av1`` (default :func:`x_single_qtl_lod`).  Returns a
    :class:`PairLods` with the pairs in ``block.pairs()`` order.
    """
    from qtlhpc.genetics.hk import PairLods, scan2d_hk
    from qtlhpc.parallel.partition import PairBlock

    chromosomes = np.asarray(chromosomes).astype(str)
    n, n_positions, n_states = probs.shape
    if block is None:
        block = PairBlock(0, 0, n_positions, 0, n_positions)
    on_x = np.flatnonzero(chromosomes == str(x_name))
    if on_x.size == 0:
        return scan2d_hk(probs, phenotypes, covariates, block, single_qtl_lod=single_qtl_lod,
                         chromosomes=chromosomes, pair_probs=pair_probs)
    x_start, x_stop = int(on_x[0]), int(on_x[-1]) + 1
    if x_stop != n_positions or on_x.size != x_stop - x_start:
        raise InputError(f"the X chromosome {x_name!r} must be the last chromosome (as R/qtl orders them)")
    if single_qtl_lod is None:
        single_qtl_lod = x_single_qtl_lod(probs, chromosomes, x_name, cross_type, sex, pgm, phenotypes, covariates)
    pieces = []
    autosomal = PairBlock(block.block_id, block.row_start, min(block.row_stop, x_start), block.col_start,
                          min(block.col_stop, x_start))
    if autosomal.row_start < autosomal.row_stop and autosomal.col_start < autosomal.col_stop:
        pieces.append(scan2d_hk(probs, phenotypes, covariates, autosomal, single_qtl_lod=single_qtl_lod,
                                chromosomes=chromosomes, pair_probs=pair_probs))
    with_x = PairBlock(block.block_id, block.row_start, block.row_stop, max(block.col_start, x_start), block.col_stop)
    if with_x.col_start < with_x.col_stop:
        classes = individual_classes(sex, pgm if HMM_CROSS_TYPE[cross_type] == "f2" else None, n)
        expanded = expand_full(cross_states_to_x(probs[:, on_x], classes, cross_type), classes)
        width = max(n_states, expanded.shape[2])
        padded = np.concatenate([_padded(probs[:, :x_start], width), _padded(expanded, width)], axis=1)
        joint = None if pair_probs is None else _ExpandedPairs(pair_probs, x_name, classes, width)
        # pairs with an X position: R/qtl's scantwo measures them against the X null (scanone's: the
        # additive covariates and the sex/direction covariates), the X columns carrying those classes
        _, x_null = x_scan_design(expanded[:, :0, :2], cross_type, sex, pgm, covariates)
        pieces.append(scan2d_hk(padded, phenotypes, x_null if x_null.shape[1] else None, with_x,
                                single_qtl_lod=single_qtl_lod, chromosomes=chromosomes, pair_probs=joint))
    fields = ("first", "second") + PairLods.STATISTICS
    merged = [np.concatenate([getattr(p, f) for p in pieces]) for f in fields]
    order = np.lexsort((merged[1], merged[0]))  # block.pairs() order: row-major
    return PairLods(*(values[order] for values in merged))


def chromosome_lengths(positions, chromosomes) -> dict:
    """Length (last minus first marker, cM) of every chromosome, as R/qtl's ``summary(pull.map(cross))``."""
    chromosomes = np.asarray(chromosomes).astype(str)
    positions = np.asarray(positions, dtype=float)
    return {c: float(positions[chromosomes == c].max() - positions[chromosomes == c].min())
            for c in dict.fromkeys(chromosomes.tolist())}


def x_permutation_counts(n_permutations: int, autosome_length: float, x_length: float) -> int:
    """R/qtl's number of X permutations with ``perm.Xsp``: ``ceiling(L_A / L_X * n_permutations)``."""
    if x_length <= 0:
        raise InputError("the X chromosome has length 0 cM: X-specific permutations need at least two X markers "
                         "at different positions")
    return int(np.ceil(autosome_length / x_length * n_permutations))


def xsp_alphas(alpha, autosome_length: float, x_length: float) -> Tuple[np.ndarray, np.ndarray]:
    """Per-part significance levels of R/qtl's ``summary.scanoneperm`` with ``perm.Xsp``:
    ``1 - (1 - alpha)^(L_A / L)`` for the autosomes, ``1 - (1 - alpha)^(L_X / L)`` for the X."""
    alpha = np.asarray(alpha, dtype=float)
    total = autosome_length + x_length
    return 1 - (1 - alpha) ** (autosome_length / total), 1 - (1 - alpha) ** (x_length / total)


def xsp_thresholds(autosome_maxima, x_maxima, alpha, autosome_length: float, x_length: float):
    """Autosome and X LOD thresholds ``(len(alpha),)`` each, as ``summary(scanone(..., perm.Xsp = TRUE))``:
    quantiles (R type 7) of each part's permutation maxima at its own level (:func:`xsp_alphas`)."""
    alpha_a, alpha_x = xsp_alphas(alpha, autosome_length, x_length)
    return (np.quantile(np.asarray(autosome_maxima, float), 1 - alpha_a, method="linear"),
            np.quantile(np.asarray(x_maxima, float), 1 - alpha_x, method="linear"))


def permutation_maxima_xsp(autosome_probs: np.ndarray, x_probs_g: np.ndarray, phenotype, cross_type: str, sex,
                           pgm, n_permutations: int, autosome_length: float, x_length: float, *,
                           covariates=None, seed: int = 0, units: Optional[Tuple[int, int]] = None):
    """Maxima of permuted single-QTL HK scans, autosomes and X apart (R/qtl ``scanone(perm.Xsp = TRUE)``).

    ``autosome_probs (n, P_A, n_states)``, ``x_probs_g (n, P_X, 2)`` (g1/g2), ``phenotype (n,)``.  As R/qtl
    each permutation shuffles the individuals' phenotype together with their covariates, sex and pgm,
    while the genotype probabilities stay; the autosomes get ``n_permutations`` permutations and the X
    ``ceiling(L_A / L_X * n_permutations)`` (:func:`x_permutation_counts`).  Permutation ``k`` of part
    ``p`` (0 autosomes, 1 X) draws from ``unit_rng(seed, "perm-xsp", p, k)``, so any split of the work
    (``units``: a ``[start, stop)`` range of the X permutations, the autosome ones alike up to their
    count) gives the same numbers.  Returns ``(autosome maxima (n_A,), X maxima (n_X,))``.
    """
    from qtlhpc.parallel.rng import unit_rng

    n = np.asarray(phenotype).shape[0]
    n_x = x_permutation_counts(n_permutations, autosome_length, x_length)
    start, stop = (0, n_x) if units is None else units
    orders_a = [unit_rng(seed, "perm-xsp", 0, k).permutation(n) for k in range(start, min(stop, n_permutations))]
    orders_x = [unit_rng(seed, "perm-xsp", 1, k).permutation(n) for k in range(start, min(stop, n_x))]
    return xsp_maxima(autosome_probs, x_probs_g, phenotype, cross_type, sex, pgm, orders_a, orders_x,
                      covariates=covariates)


def xsp_maxima(autosome_probs: np.ndarray, x_probs_g: np.ndarray, phenotype, cross_type: str, sex, pgm,
               autosome_orders, x_orders, *, covariates=None, batch: int = 256):
    """Maxima of single-QTL HK scans under given reorderings, autosomes and X apart (the kernel of
    :func:`permutation_maxima_xsp`; the caller chooses the orders, e.g. keyed by permutation id).

    ``autosome_probs (n, P_A, n_states)``, ``x_probs_g (n, P_X, 2)``, ``phenotype (n,)``; each order is a
    reordering ``(n,)`` of the individuals.  As R/qtl's ``scanone`` permutations, the phenotype moves with
    its individual's covariates, sex and pgm; without covariates and with one sex/direction class only the
    phenotype matters and the scans run ``batch`` permutations per pass (R/qtl's batch mode).  Returns
    ``(autosome maxima (len(autosome_orders),), X maxima (len(x_orders),))``, negative maxima set to 0.
    """
    phenotype = np.asarray(phenotype, dtype=float)
    n = phenotype.shape[0]
    if covariates is not None:
        covariates = None if np.size(covariates) == 0 else np.asarray(covariates, float).reshape(n, -1)
    sex = None if sex is None else np.asarray(sex)
    pgm = None if pgm is None else np.asarray(pgm)
    orders_a, orders_x = list(autosome_orders), list(x_orders)
    maxima_a = np.empty(len(orders_a))
    if covariates is None:  # many permutations at once: one trait per permutation
        for lo in range(0, len(orders_a), batch):
            chunk = orders_a[lo:lo + batch]
            maxima_a[lo:lo + len(chunk)] = scan1d_hk(autosome_probs, np.column_stack([phenotype[o] for o in chunk])
                                                     ).reshape(-1, len(chunk)).max(axis=0)
    elif len(orders_a):  # the covariates move with the phenotype: one null model per permutation
        s = autosome_probs.shape[2]
        maxima_a[:] = moved_scan_maxima(autosome_probs[:, :, :s - 1], None, phenotype,
                                        independent_columns(np.column_stack([np.ones(n), covariates])), orders_a)
    maxima_x = np.empty(len(orders_x))
    classes_fixed = sex is None or len(np.unique(sex)) == 1
    directions_fixed = pgm is None or len(np.unique(pgm)) == 1
    if covariates is None and classes_fixed and directions_fixed:
        for lo in range(0, len(orders_x), batch):
            chunk = orders_x[lo:lo + batch]
            lod = scan1d_hk_x(x_probs_g, np.column_stack([phenotype[o] for o in chunk]), cross_type, sex, pgm)
            maxima_x[lo:lo + len(chunk)] = lod.reshape(-1, len(chunk)).max(axis=0)
    elif len(orders_x):
        maxima_x[:] = _x_maxima_moved(x_probs_g, phenotype, cross_type, sex, pgm, covariates, orders_x)
    return np.maximum(maxima_a, 0), np.maximum(maxima_x, 0)


def moved_scan_maxima(columns: np.ndarray, members: Optional[np.ndarray], phenotype, base: np.ndarray, orders,
                      batch: int = 64, pivot_tol: float = 1e-10) -> np.ndarray:
    """Maximum HK LOD over positions of each reordering ``o`` that moves the phenotype together with its
    individual's null-model row and class membership (R/qtl's permutations with covariates, sex, pgm).

    ``columns (n, P, d)``: the tested columns of each individual (the first ``n_states - 1`` probabilities,
    or the X's g1 once per class); ``members (n, d)`` or None: in permutation ``o`` row ``i`` holds
    ``columns[i, :, k] * members[o[i], k]`` (None: 1); ``phenotype (n,)``; ``base (n, c)``: the null design
    (intercept included, full column rank), row ``o[i]`` in row ``i``.  Returns ``(len(orders),)``.

    With ``Q`` an orthonormal basis of the null design, ``y_r`` the residual phenotype, and ``H`` the tested
    columns of a permutation: ``H'H``, ``Q'H`` and ``H'y_r`` are sums over individuals of a fixed column
    times a moved vector, i.e. matrix products over a batch of reorderings; the explained sum of squares
    is that of the small systems ``(H'H - (Q'H)'Q'H) b = H'y_r``, eliminated with the pivot test of
    :func:`qtlhpc.genetics.hk.scan1d_hk` (:func:`qtlhpc.genetics.hk.sequential_explained`).  The LOD is
    ``(n/2) log10(RSS0 / RSS1)``: :func:`qtlhpc.genetics.hk.scan1d_hk` of the moved data, rows reordered.
    """
    from qtlhpc.genetics.hk import sequential_explained

    columns = np.asarray(columns, dtype=float)
    n, n_positions, d = columns.shape
    q, _ = np.linalg.qr(np.asarray(base, dtype=float).reshape(n, -1))
    y = np.asarray(phenotype, dtype=float)
    y_r = y - q @ (q.T @ y)
    rss0 = float(y_r @ y_r)
    flat = [np.ascontiguousarray(columns[:, :, k]) for k in range(d)]
    products = {(k, l): flat[k] * flat[l] for k in range(d) for l in range(k, d)}
    out = np.empty(len(orders))
    for lo in range(0, len(orders), batch):
        order = np.stack(orders[lo:lo + batch], axis=1)                    # (n, B): row i gets individual o[i]
        b = order.shape[1]
        moved = [np.ones((n, b)) if members is None else members[:, k][order].astype(float) for k in range(d)]
        gram = np.empty((n_positions, b, d, d))
        for (k, l), product in products.items():
            gram[:, :, k, l] = gram[:, :, l, k] = product.T @ (moved[k] * moved[l])
        raw = np.stack([gram[:, :, k, k] for k in range(d)], axis=2)
        cross = np.stack([flat[k].T @ (y_r[order] * moved[k]) for k in range(d)], axis=2)[..., None]
        qh = np.stack([np.stack([flat[k].T @ (q[:, a][order] * moved[k]) for k in range(d)], axis=2)
                       for a in range(q.shape[1])], axis=2)                 # (P, B, c, d)
        gram -= np.einsum("pbak,pbal->pbkl", qh, qh)
        explained = sequential_explained(gram.reshape(-1, d, d), cross.reshape(-1, d, 1), raw.reshape(-1, d), [d],
                                         pivot_tol)[0].reshape(n_positions, b)
        with np.errstate(divide="ignore"):
            lod = 0.5 * n * (np.log10(rss0) - np.log10(np.maximum(rss0 - explained, 0.0)))
        out[lo:lo + b] = lod.max(axis=0)
    return out


def _x_maxima_moved(probs_g, phenotype, cross_type, sex, pgm, covariates, orders, batch: int = 64) -> np.ndarray:
    """Maximum X LOD of each reordering ``o``: :func:`scan1d_hk_x` of ``phenotype[o]`` with ``sex[o]``,
    ``pgm[o]``, ``covariates[o]`` (``(len(orders),)``), by :func:`moved_scan_maxima`.  The X null model
    (intercept, covariates kept on the X, R/qtl's sex/direction covariates) spans the class indicators, so
    the alternative adds one column per class present, ``g1 1{class c}`` (its g2 column is the indicator
    less g1)."""
    n = probs_g.shape[0]
    classes = individual_classes(sex, pgm if HMM_CROSS_TYPE[cross_type] == "f2" else None, n)
    _, null = x_scan_design(probs_g[:, :0], cross_type, sex, pgm, covariates)
    indicators = np.column_stack([(classes == c).astype(float) for c in range(3) if np.any(classes == c)])
    base = np.column_stack([np.ones(n), null])
    assert np.linalg.matrix_rank(np.column_stack([base, indicators])) == np.linalg.matrix_rank(base), \
        "the X null model must span the sex/direction classes"
    g1 = np.repeat(np.asarray(probs_g, dtype=float)[:, :, :1], indicators.shape[1], axis=2)
    return moved_scan_maxima(g1, indicators, phenotype, base, orders, batch=batch)


def xsp_unit_starts(n_permutations: int, n_x: int) -> np.ndarray:
    """The X permutations of each permutation unit, for stages whose work units are the ``n_permutations``
    (autosome) permutation ids: unit ``k`` owns the X permutation ids ``[starts[k], starts[k + 1])`` with
    ``starts[k] = floor(k n_x / n_permutations)`` ``(n_permutations + 1,)``, so a range of units owns a
    contiguous range of X ids and any split of the units covers every X id once."""
    k = np.arange(n_permutations + 1, dtype=np.int64)
    return (k * int(n_x)) // int(n_permutations)


#: file code (1 AA, 2 AB, 3 BB) of g1/g2 for each class (female pgm 0, female pgm 1, male): the inverse of
#: :func:`recode_x`; males' AY/BY are written with the homozygous codes, as R/qtl's ``write.cross``
_FILE_CODES = {"bc": np.array([[1, 2], [1, 2], [1, 3]]), "f2": np.array([[1, 2], [3, 2], [1, 3]])}


def x_file_codes(codes: np.ndarray, cross_type: str, classes: np.ndarray) -> np.ndarray:
    """g1/g2 codes of the X ``(n, m)`` (0 missing) -> the file codes R/qtl writes and reads (1 AA, 2 AB,
    3 BB; 0 missing), per individual class ``(n,)`` (:func:`individual_classes`): the inverse of
    :func:`recode_x` for the codes it keeps."""
    codes = np.asarray(codes)
    table = _FILE_CODES[HMM_CROSS_TYPE[cross_type]]
    out = np.zeros(codes.shape, dtype=np.int8)
    for c in range(3):
        rows = np.asarray(classes) == c
        for g in (1, 2):
            out[rows[:, None] & (codes == g)] = table[c, g - 1]
    return out
