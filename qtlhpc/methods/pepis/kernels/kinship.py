"""The six kinship matrices of the epistatic polygenic model (Xu 2013; Zhang et al. 2016, PEPIS).

With additive codes ``Z (n_individuals, n_markers)`` and dominance codes ``W`` (columns ``z_k``,
``w_k``, markers in the given order, ``*`` elementwise)::

    K_a  = sum_k z_k z_k'                  K_d  = sum_k w_k w_k'
    K_aa = sum_{k<l} (z_k*z_l)(z_k*z_l)'    K_ad = sum_{k<l} (z_k*w_l)(z_k*w_l)'
    K_da = sum_{k<l} (w_k*z_l)(w_k*z_l)'    K_dd = sum_{k<l} (w_k*w_l)(w_k*w_l)'

None of them loops over marker pairs (that is ``O(n^2 m^2)``).  They cost ``O(n^2 m)``:

* ``K_aa = [(ZZ')o(ZZ') - (ZoZ)(ZoZ)'] / 2`` and ``K_dd`` likewise with ``W`` (``o`` = Hadamard);
* ``K_ad + K_da = (ZZ')o(WW') - (ZoW)(ZoW)'``;
* the ordered ``K_ad`` by a prefix sum over blocks ``C`` of ``b`` consecutive markers,
  ``K_ad = sum_C [(W_C W_C') o S_<C + F_C F_C']`` with ``S_<C = sum_{B<C} Z_B Z_B'`` and ``F_C`` the
  ``b(b-1)/2`` explicit within-block pair features ``z_k*w_l, k<l in C``; ``K_da = (K_ad + K_da) - K_ad``
  (or the same prefix sum with ``Z`` and ``W`` swapped when ``K_ad`` is not asked for).

The block size ``b`` balances GEMM work (``~(4 + b) n^2 m`` flops) against elementwise passes over
an ``n x n`` array (``~4 m / b``); see :data:`DEFAULT_MARKER_BLOCK` and ``bench/bench_kinship.py``.

Every kinship is then divided by the mean of its diagonal (so each has mean diagonal 1 and its
variance component is on the scale of the phenotypic variance); the constants are reported.
Memory of :func:`kinship_rows`: ``Z`` and ``W`` plus about ``(n_kinships + 4) * rows * n`` floats.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Dict, Optional, Sequence, Tuple

import numpy as np
from scipy.linalg import blas

from qtlhpc.errors import InputError

#: kinship names, in the PEPIS order
KINSHIP_NAMES = ("a", "d", "aa", "ad", "da", "dd")

#: markers per prefix-sum block for the ordered kinships (measured in bench/bench_kinship.py)
DEFAULT_MARKER_BLOCK = 16

#: within-block pair features gathered before one GEMM (fewer passes over the output tile)
PAIR_FEATURES_PER_GEMM = 512

#: individuals per row tile in :func:`kinship_matrices`
DEFAULT_ROW_BLOCK = 512


@dataclass
class KinshipSet:
    """Kinship matrices ``matrices[name] (n_individuals, n_individuals)`` and their scale constants.

    ``scales[name]`` is the mean diagonal of the unscaled kinship; ``matrices`` are divided by it
    when ``scaled`` is True.
    """

    matrices: Dict[str, np.ndarray]
    scales: Dict[str, float]
    scaled: bool


def check_which(which: Sequence[str]) -> Tuple[str, ...]:
    """Validate kinship names; return them as a tuple in the order given."""
    which = (which,) if isinstance(which, str) else tuple(which)
    unknown = [name for name in which if name not in KINSHIP_NAMES]
    if unknown or not which or len(set(which)) != len(which):
        raise InputError(f"kinships {list(which)} are not a non-empty list of distinct names among "
                         f"{list(KINSHIP_NAMES)}")
    return which


def check_codes(additive: np.ndarray, dominance: np.ndarray,
                marker_mask: Optional[np.ndarray] = None) -> Tuple[np.ndarray, np.ndarray]:
    """Validate ``Z, W (n_individuals, n_markers)`` and apply ``marker_mask (n_markers,)`` (True = use)."""
    additive = np.asarray(additive, dtype=float)
    dominance = np.asarray(dominance, dtype=float)
    if additive.ndim != 2 or additive.shape != dominance.shape:
        raise InputError(f"additive codes {additive.shape} and dominance codes {dominance.shape} must be "
                         "two matrices of the same shape (n_individuals, n_markers)")
    if not (np.all(np.isfinite(additive)) and np.all(np.isfinite(dominance))):
        raise InputError("additive or dominance codes contain NaN or infinite values; use expected codes "
                         "under the genotype probabilities for missing genotypes")
    if marker_mask is not None:
        marker_mask = np.asarray(marker_mask)
        if marker_mask.dtype != bool or marker_mask.shape != (additive.shape[1],):
            raise InputError(f"marker_mask must be a boolean vector of length n_markers = "
                             f"{additive.shape[1]}; got dtype {marker_mask.dtype}, shape {marker_mask.shape}")
        additive, dominance = additive[:, marker_mask], dominance[:, marker_mask]
    return np.ascontiguousarray(additive), np.ascontiguousarray(dominance)


def loco_mask(chromosomes: np.ndarray, left_out: str) -> np.ndarray:
    """Marker mask for leave-one-chromosome-out kinships: True for markers not on ``left_out``."""
    chromosomes = np.asarray(chromosomes, dtype=str)
    if not np.any(chromosomes == str(left_out)):
        raise InputError(f"no marker on chromosome {left_out!r}; chromosomes are {sorted(set(chromosomes))}")
    return chromosomes != str(left_out)


# ---------------------------------------------------------------------------------------------
# kernels on one tile (rows x cols)
# ---------------------------------------------------------------------------------------------

def _gemm_nt(left: np.ndarray, right: np.ndarray, accumulate: Optional[np.ndarray] = None) -> np.ndarray:
    """``left @ right.T`` (Fortran order), added in place to ``accumulate`` (Fortran order) if given."""
    if min(left.shape[0], left.shape[1], right.shape[0]) == 0:
        return np.zeros((left.shape[0], right.shape[0]), order="F") if accumulate is None else accumulate
    if accumulate is None:
        return blas.dgemm(1.0, left, right, trans_b=True)
    assert accumulate.flags.f_contiguous
    return blas.dgemm(1.0, left, right, beta=1.0, c=accumulate, trans_b=True, overwrite_c=True)


def ordered_pair_kinship(first_rows: np.ndarray, first_cols: np.ndarray, second_rows: np.ndarray,
                         second_cols: np.ndarray, marker_block: int = DEFAULT_MARKER_BLOCK) -> np.ndarray:
    """``sum_{k<l} (a_k*b_l)_rows (a_k*b_l)_cols'`` for one tile, in ``O(rows cols m)``.

    ``first_* = A`` and ``second_* = B`` restricted to the tile's rows / columns, each
    ``(n_rows or n_cols, n_markers)``.  Prefix sum over marker blocks (module docstring).
    Returns ``(n_rows, n_cols)``, Fortran order.
    """
    n_rows, n_markers = first_rows.shape
    n_cols = first_cols.shape[0]
    result = np.zeros((n_rows, n_cols), order="F")
    prefix = np.zeros((n_rows, n_cols), order="F")
    block = max(1, int(marker_block))
    pairs_rows, pairs_cols = [], []  # within-block pair features, flushed in one GEMM of >= 512 columns

    def flush_pairs():
        if pairs_rows:
            _gemm_nt(np.hstack(pairs_rows), np.hstack(pairs_cols), accumulate=result)
            pairs_rows.clear()
            pairs_cols.clear()

    for start in range(0, n_markers, block):
        stop = min(start + block, n_markers)
        pair_first, pair_second = np.triu_indices(stop - start, 1)
        if len(pair_first):
            pairs_rows.append(first_rows[:, start + pair_first] * second_rows[:, start + pair_second])
            pairs_cols.append(first_cols[:, start + pair_first] * second_cols[:, start + pair_second])
            if sum(f.shape[1] for f in pairs_rows) >= PAIR_FEATURES_PER_GEMM:
                flush_pairs()
        if start > 0:
            cross = _gemm_nt(second_rows[:, start:stop], second_cols[:, start:stop])
            np.multiply(cross, prefix, out=cross)
            np.add(result, cross, out=result)
        if stop < n_markers:
            _gemm_nt(first_rows[:, start:stop], first_cols[:, start:stop], accumulate=prefix)
    flush_pairs()
    return result


def _gemm_nt_of_products(rows_x, rows_y, cols_x, cols_y, chunk: int = 1024) -> np.ndarray:
    """``(rows_x o rows_y) @ (cols_x o cols_y).T`` in marker chunks (no ``n x m`` temporaries)."""
    out = np.zeros((rows_x.shape[0], cols_x.shape[0]), order="F")
    for start in range(0, rows_x.shape[1], chunk):
        part = slice(start, start + chunk)
        _gemm_nt(rows_x[:, part] * rows_y[:, part], cols_x[:, part] * cols_y[:, part], accumulate=out)
    return out


def _pair_kinship_from_gram(gram: np.ndarray, codes_rows: np.ndarray, codes_cols: np.ndarray) -> np.ndarray:
    """``sum_{k<l} (x_k*x_l)(x_k*x_l)' = [(XX')o(XX') - (XoX)(XoX)'] / 2`` given ``XX'`` of the tile."""
    out = _gemm_nt_of_products(codes_rows, codes_rows, codes_cols, codes_cols)
    np.subtract(gram * gram, out, out=out)
    out *= 0.5
    return out


def kinship_tile(additive: np.ndarray, dominance: np.ndarray, rows: slice, cols: slice,
                 which: Sequence[str] = KINSHIP_NAMES,
                 marker_block: int = DEFAULT_MARKER_BLOCK) -> Dict[str, np.ndarray]:
    """Unscaled kinships restricted to ``rows x cols`` (two slices of individuals).

    ``additive, dominance (n_individuals, n_markers)`` already checked and masked.
    Returns ``{name: (n_rows, n_cols)}`` for the names in ``which``.
    """
    z_rows, z_cols = additive[rows], additive[cols]
    w_rows, w_cols = dominance[rows], dominance[cols]
    need = set(which)
    out: Dict[str, np.ndarray] = {}
    gram_a = _gemm_nt(z_rows, z_cols) if need & {"a", "aa", "ad", "da"} else None
    gram_d = _gemm_nt(w_rows, w_cols) if need & {"d", "dd", "ad", "da"} else None
    if "aa" in need:
        out["aa"] = _pair_kinship_from_gram(gram_a, z_rows, z_cols)
    if "dd" in need:
        out["dd"] = _pair_kinship_from_gram(gram_d, w_rows, w_cols)
    if "ad" in need:
        out["ad"] = ordered_pair_kinship(z_rows, z_cols, w_rows, w_cols, marker_block)
    if "da" in need and "ad" in need:
        both = gram_a * gram_d
        both -= _gemm_nt_of_products(z_rows, w_rows, z_cols, w_cols)
        out["da"] = np.subtract(both, out["ad"], out=both)
    elif "da" in need:
        out["da"] = ordered_pair_kinship(w_rows, w_cols, z_rows, z_cols, marker_block)
    if "a" in need:
        out["a"] = gram_a
    if "d" in need:
        out["d"] = gram_d
    return {name: out[name] for name in which}


# ---------------------------------------------------------------------------------------------
# public API
# ---------------------------------------------------------------------------------------------

def kinship_rows(additive: np.ndarray, dominance: np.ndarray, row_start: int, row_stop: int,
                 which: Sequence[str] = KINSHIP_NAMES, marker_block: int = DEFAULT_MARKER_BLOCK,
                 marker_mask: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    """Unscaled rows ``[row_start, row_stop)`` (all columns) of the requested kinships.

    ``additive = Z``, ``dominance = W``, ``(n_individuals, n_markers)``; ``marker_mask (n_markers,)``
    keeps the markers marked True (e.g. :func:`loco_mask`).  Returns ``{name: (row_stop - row_start,
    n_individuals)}``: an MPI driver gives each rank a block of rows and never gathers a matrix.
    Divide by :func:`kinship_scales` to scale.
    """
    which = check_which(which)
    additive, dominance = check_codes(additive, dominance, marker_mask)
    n_individuals = additive.shape[0]
    if not 0 <= row_start <= row_stop <= n_individuals:
        raise InputError(f"row range [{row_start}, {row_stop}) is not within [0, {n_individuals})")
    tile = kinship_tile(additive, dominance, slice(row_start, row_stop), slice(0, n_individuals),
                        which, marker_block)
    return {name: np.ascontiguousarray(block) for name, block in tile.items()}


def kinship_diagonals(additive: np.ndarray, dominance: np.ndarray, which: Sequence[str] = KINSHIP_NAMES,
                      marker_mask: Optional[np.ndarray] = None) -> Dict[str, np.ndarray]:
    """Diagonals ``(n_individuals,)`` of the unscaled kinships, in ``O(n_individuals n_markers)``.

    ``K_aa[i,i] = [(sum_k z_ik^2)^2 - sum_k z_ik^4] / 2``;
    ``K_ad[i,i] = sum_l w_il^2 sum_{k<l} z_ik^2`` (an exclusive cumulative sum).
    """
    which = check_which(which)
    additive, dominance = check_codes(additive, dominance, marker_mask)
    z2, w2 = additive ** 2, dominance ** 2

    def pairs(squares):
        return (squares.sum(axis=1) ** 2 - (squares ** 2).sum(axis=1)) / 2

    def ordered(first_squares, second_squares):
        before = np.cumsum(first_squares, axis=1) - first_squares
        return np.einsum("ik,ik->i", before, second_squares)

    formulas = {
        "a": lambda: z2.sum(axis=1), "d": lambda: w2.sum(axis=1),
        "aa": lambda: pairs(z2), "dd": lambda: pairs(w2),
        "ad": lambda: ordered(z2, w2), "da": lambda: ordered(w2, z2),
    }
    return {name: formulas[name]() for name in which}


def kinship_scales(additive: np.ndarray, dominance: np.ndarray, which: Sequence[str] = KINSHIP_NAMES,
                   marker_mask: Optional[np.ndarray] = None) -> Dict[str, float]:
    """Scale constant of each kinship: the mean of its unscaled diagonal.  Zero -> InputError."""
    diagonals = kinship_diagonals(additive, dominance, which, marker_mask)
    scales = {name: float(diagonal.mean()) for name, diagonal in diagonals.items()}
    n_markers = int(np.asarray(additive).shape[1] if marker_mask is None else np.count_nonzero(marker_mask))
    for name, value in scales.items():
        if not value > 0 and len(name) == 2 and n_markers < 2:
            raise InputError(f"kinship {name!r} is built from pairs of markers, and {n_markers} marker is used; "
                             "an epistatic kinship needs at least two markers: leave it out (kinship.which) "
                             "or give more markers")
        if not value > 0:
            raise InputError(f"kinship {name!r} has mean diagonal {value}: its codes are all zero "
                             "(e.g. dominance codes of a cross without heterozygotes); leave it out")
    return scales


def kinship_matrices(additive: np.ndarray, dominance: np.ndarray, which: Sequence[str] = KINSHIP_NAMES,
                     scale: bool = True, marker_mask: Optional[np.ndarray] = None,
                     marker_block: int = DEFAULT_MARKER_BLOCK,
                     row_block: int = DEFAULT_ROW_BLOCK) -> KinshipSet:
    """All requested kinships ``(n_individuals, n_individuals)`` in one process (serial convenience).

    Computes the upper tiles of ``row_block`` individuals only and mirrors them (each kinship is
    symmetric), then divides each kinship by its mean diagonal when ``scale``.
    """
    which = check_which(which)
    additive, dominance = check_codes(additive, dominance, marker_mask)
    n_individuals = additive.shape[0]
    scales = kinship_scales(additive, dominance, which) if scale else {
        name: float(d.mean()) for name, d in kinship_diagonals(additive, dominance, which).items()}
    matrices = {name: np.empty((n_individuals, n_individuals)) for name in which}
    starts = list(range(0, n_individuals, max(1, int(row_block))))
    for start in starts:
        stop = min(start + row_block, n_individuals)
        tile = kinship_tile(additive, dominance, slice(start, stop), slice(start, n_individuals),
                            which, marker_block)
        for name, block in tile.items():
            matrices[name][start:stop, start:] = block
            matrices[name][stop:, start:stop] = block[:, stop - start:].T
    for name in which:
        if scale:
            matrices[name] /= scales[name]
        _symmetrize_lower_from_upper_diagonal_blocks(matrices[name], starts, row_block)
    return KinshipSet(matrices, scales, bool(scale))


def _symmetrize_lower_from_upper_diagonal_blocks(matrix: np.ndarray, starts, row_block: int) -> None:
    """Copy each diagonal tile's upper triangle to its lower one (rounding may differ slightly)."""
    n = matrix.shape[0]
    for start in starts:
        stop = min(start + row_block, n)
        tile = matrix[start:stop, start:stop]
        lower = np.tril_indices(stop - start, -1)
        tile[lower] = tile.T[lower]

