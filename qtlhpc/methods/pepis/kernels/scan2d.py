"""Two-locus scan of the PEPIS model: the four epistatic effects of every marker pair k < l.

Model per pair (Xu 2013 Genetics 195:1209; Zhang et al. 2016 PLoS Comput Biol 12:e1004925), as in
PEPIS's epistatic scan: only the epistatic effects enter, over the same polygenic background as the null
(the two markers' main effects are not in the model, they are left to the background):

    y = X b + (z_k*z_l) aa + (z_k*w_l) ad + (w_k*z_l) da + (w_k*w_l) dd + g + e,
    Var(g + e) = sigma2 (K0 + I)                                   (* elementwise)

* random model: each effect ``~ N(0, sigma2 phi_t)``, phi (4) >= 0 by ML, LRT = 2 (l1 - l0);
* fixed model: GLS with ``df`` = rank of the four columns after X (4; fewer for pairs with fewer
  genotype classes, e.g. RILs where w is constant, or markers in complete linkage).

For a tile of pairs the 4 product columns are formed in the original space, reduced with one BLAS call
(:func:`qtlhpc.methods.pepis.kernels.null_model.reduce_columns`: a triangular multiply in place) and solved on
4 x 4 problems by the kernels of :mod:`qtlhpc.methods.pepis.kernels.scan1d`.  Memory is bounded by ``tile_pairs``:
``O(tile_pairs * n_individuals)``, never pairs x individuals for the whole block.
"""

from __future__ import annotations

from typing import Optional

import numba
import numpy as np

from qtlhpc.methods.pepis.kernels.null_model import NullBackground, NullRotation, null_background, reduce_columns
from qtlhpc.methods.pepis.kernels.scan1d import ScanResult, concatenate_results, fit_grams, fit_units, reduce_grams
from qtlhpc.errors import InputError
from qtlhpc.parallel import PairBlock

EFFECT_NAMES = ("aa", "ad", "da", "dd")


@numba.njit(cache=True)
def fill_epistatic_columns(z_t, w_t, first, second, out):
    """``out (4, n_pairs, n)``: rows ``z_k*z_l, z_k*w_l, w_k*z_l, w_k*w_l`` for pairs ``(first, second)``.

    ``z_t``, ``w_t (n_markers, n_individuals)``: the codes transposed (one marker per row).
    """
    n = z_t.shape[1]
    for p in range(first.shape[0]):
        k = first[p]
        l = second[p]
        for i in range(n):
            zk = z_t[k, i]
            wk = w_t[k, i]
            zl = z_t[l, i]
            wl = w_t[l, i]
            out[0, p, i] = zk * zl
            out[1, p, i] = zk * wl
            out[2, p, i] = wk * zl
            out[3, p, i] = wk * wl


def scan2d_block(rotation: Optional[NullRotation], y_rot, X_rot, Z, W, pair_block: PairBlock, *,
                 model="random", pvalue="mixture", with_effects=False, tile_pairs=1024,
                 background: Optional[NullBackground] = None, max_iter=50, tol=1e-9) -> ScanResult:
    """Test the pairs of ``pair_block``, in its ``pairs()`` order.

    ``rotation``, ``y_rot (n,)``, ``X_rot (n, c)``: the null (see :mod:`qtlhpc.methods.pepis.kernels.null_model`);
    pass ``background=null_background(rotation, y_rot, X_rot)`` to reuse it over blocks (then the first
    three arguments may be None).  ``Z``, ``W (n_individuals, n_markers)``: additive and dominance codes
    (original space; the products must be formed before rotation).  Returns a :class:`ScanResult` with
    ``lrt``, ``df``, ``pvalue``, ``lod`` per pair and, with ``with_effects``, ``effects``/``effect_se``
    ``(n_pairs, 4)`` for (aa, ad, da, dd) (BLUPs and prediction SE in the random model) and
    ``variance_ratios (n_pairs, 4)`` in the random model.
    """
    if background is None:
        background = null_background(rotation, y_rot, X_rot)
    z_t, w_t = transposed_codes(Z, W, background.n_individuals)
    first, second = pair_block.pairs()
    if first.size and second.max() >= z_t.shape[0]:
        raise InputError(f"pair block {pair_block} reaches marker {second.max()} but there are {z_t.shape[0]} markers")
    return scan_pairs(background, z_t, w_t, first, second, model=model, pvalue=pvalue,
                      with_effects=with_effects, tile_pairs=tile_pairs, max_iter=max_iter, tol=tol)


def transposed_codes(Z, W, n_individuals):
    """Validated ``(Z', W')``, each ``(n_markers, n_individuals)`` C-contiguous float64."""
    Z = np.asarray(Z, dtype=np.float64)
    W = np.asarray(W, dtype=np.float64)
    if Z.ndim != 2 or Z.shape[0] != n_individuals or W.shape != Z.shape:
        raise InputError(f"codes Z and W must both be (n_individuals={n_individuals}, n_markers); "
                         f"got {Z.shape} and {W.shape}")
    if not (np.all(np.isfinite(Z)) and np.all(np.isfinite(W))):
        raise InputError("codes Z or W contain NaN: fill missing genotypes with their expectations first")
    return np.ascontiguousarray(Z.T), np.ascontiguousarray(W.T)


#: pairs whose four product columns are formed, rotated and reduced to Gram matrices together: about 1 MB
#: of columns (n = 278), so each sub-tile stays in a core's own cache between the three passes
REDUCE_PAIRS = 128


def scan_pairs(background: NullBackground, z_t, w_t, first, second, *, model="random", pvalue="mixture",
               with_effects=False, tile_pairs=1024, max_iter=50, tol=1e-9, reduce_pairs=None) -> ScanResult:
    """Kernel of :func:`scan2d_block` for explicit pair lists ``first (n_pairs,)``, ``second (n_pairs,)``.

    Pairs are fitted ``tile_pairs`` at a time; within a tile their columns are formed, rotated and reduced
    to 4 x 4 Gram matrices ``reduce_pairs`` (default :data:`REDUCE_PAIRS`) at a time.
    """
    first = np.ascontiguousarray(first, dtype=np.int64)
    second = np.ascontiguousarray(second, dtype=np.int64)
    n = background.n_individuals
    n_cov = background.n_covariates
    step = max(1, min(reduce_pairs or REDUCE_PAIRS, tile_pairs))
    products = np.empty((4, min(step, max(first.size, 1)), n))
    parts = []
    for start in range(0, first.size, tile_pairs):
        stop = min(start + tile_pairs, first.size)
        grams_proj, grams = np.empty((stop - start, 4, 4)), np.empty((stop - start, 4, 4))
        scores = np.empty((stop - start, 4))
        for sub in range(start, stop, step):
            sub_stop = min(sub + step, stop)
            tile = products[:, : sub_stop - sub] if sub_stop - sub == products.shape[1] else np.empty((4, sub_stop - sub, n))
            fill_epistatic_columns(z_t, w_t, first[sub:sub_stop], second[sub:sub_stop], tile)
            rotated, side = reduce_columns(background, tile)
            rows = slice(sub - start, sub_stop - start)
            reduce_grams(rotated, side, n_cov, grams_proj[rows], grams[rows], scores[rows])
        parts.append(fit_grams(grams_proj, grams, scores, background, model, pvalue, with_effects, max_iter, tol))
    if not parts:
        empty = (np.empty((4, 0, n)), np.empty((4, 0, n_cov + 1)))
        return fit_units(empty, background, model, pvalue, with_effects, max_iter, tol)
    return concatenate_results(parts)
