"""2D PEPIS scan (aa, ad, da, dd over the polygenic background) against dense references."""

import numpy as np
import pytest

from qtlhpc.methods.pepis.kernels.null_model import null_background, rotate, rotate_columns
from qtlhpc.methods.pepis.kernels.scan2d import scan2d_block, scan_pairs
from qtlhpc.parallel import PairBlock, pair_blocks, triangle_row_blocks
from references.dense_ml import dense_fixed_fit, dense_random_lrt
from references.pepis_simulation import prepared, simulate


def epistatic_columns(Z, W, k, l):
    return np.column_stack([Z[:, k] * Z[:, l], Z[:, k] * W[:, l], W[:, k] * Z[:, l], W[:, k] * W[:, l]])


def whole_block(n_markers):
    return PairBlock(0, 0, n_markers, 0, n_markers)


def test_random_model_matches_dense_ml_on_random_pairs():
    Z, W, K0, X, y, rng = simulate(45, 6, seed=11)
    y = y + 1.0 * Z[:, 1] * W[:, 4]
    background = prepared(K0, X, y)
    result = scan2d_block(None, None, None, Z, W, whole_block(6), background=background, with_effects=True)
    first, second = whole_block(6).pairs()
    planted = int(np.flatnonzero((first == 1) & (second == 4))[0])
    for p in set(rng.choice(len(first), size=6, replace=False)) | {planted}:
        G = epistatic_columns(Z, W, first[p], second[p])
        lrt_dense, _, negative = dense_random_lrt(y, X, K0, G, extra_starts=[result.variance_ratios[p]])
        l0 = -negative(np.zeros(4))
        assert 2 * (-negative(result.variance_ratios[p]) - l0) == pytest.approx(result.lrt[p], rel=1e-6, abs=1e-8)
        assert result.lrt[p] == pytest.approx(lrt_dense, rel=1e-5, abs=1e-6)
        assert result.df[p] == 4
    assert np.argmax(result.lrt) == planted


def test_fixed_model_matches_explicit_gls():
    Z, W, K0, X, y, rng = simulate(40, 5, seed=12)
    background = prepared(K0, X, y)
    result = scan2d_block(None, None, None, Z, W, whole_block(5), model="fixed", background=background,
                          with_effects=True)
    first, second = whole_block(5).pairs()
    for p in range(len(first)):
        lrt, df, effects, se = dense_fixed_fit(y, X, K0, epistatic_columns(Z, W, first[p], second[p]))
        assert result.df[p] == df == 4
        assert result.lrt[p] == pytest.approx(lrt, rel=1e-8, abs=1e-10)
        np.testing.assert_allclose(result.effects[p], effects, rtol=1e-7, atol=1e-12)
        np.testing.assert_allclose(result.effect_se[p], se, rtol=1e-7)


def test_ril_like_pairs_have_reduced_fixed_df_and_random_model_matches_dense():
    Z, W, K0, X, y, rng = simulate(40, 4, seed=13, ril=True)
    Z[:, 3] = Z[:, 2]                                   # two markers in complete linkage
    W[:, 3] = W[:, 2]
    y = y + 0.8 * Z[:, 0] * Z[:, 1]
    background = prepared(K0, X, y)
    block = whole_block(4)
    fixed = scan2d_block(None, None, None, Z, W, block, model="fixed", background=background, with_effects=True)
    random = scan2d_block(None, None, None, Z, W, block, model="random", background=background, with_effects=True)
    first, second = block.pairs()
    for p in range(len(first)):
        G = epistatic_columns(Z, W, first[p], second[p])
        lrt, df, _, _ = dense_fixed_fit(y, X, K0, G)
        # RIL: w = -1, so dd = 1 is the intercept and ad = -z_k, da = -z_l; linked pair: aa = 1, ad = da
        assert fixed.df[p] == df == (1 if (first[p], second[p]) == (2, 3) else 3)
        assert fixed.lrt[p] == pytest.approx(lrt, rel=1e-8, abs=1e-10)
        assert np.isnan(fixed.effects[p, 3])
        assert random.df[p] == fixed.df[p]
        lrt_dense, _, _ = dense_random_lrt(y, X, K0, G, extra_starts=[random.variance_ratios[p]])
        assert random.lrt[p] == pytest.approx(lrt_dense, rel=1e-5, abs=1e-6)


def test_planted_epistatic_pair_is_the_top_pair():
    n, m = 150, 16
    Z, W, K0, X, y, rng = simulate(n, m, seed=14)
    y = y + 1.2 * Z[:, 3] * Z[:, 11] + 0.8 * W[:, 3] * W[:, 11]
    background = prepared(K0, X, y)
    block = whole_block(m)
    first, second = block.pairs()
    for model in ("random", "fixed"):
        result = scan2d_block(None, None, None, Z, W, block, model=model, background=background)
        top = int(np.argmax(result.lrt))
        assert (first[top], second[top]) == (3, 11)
        assert result.pvalue[top] < 1e-6


def test_any_tiling_of_the_pairs_gives_the_same_results():
    Z, W, K0, X, y, rng = simulate(35, 13, seed=15)
    rotation = rotate(K0, X)
    y_rot = rotate_columns(rotation, y)[:, 0]
    X_rot = rotate_columns(rotation, X)
    whole = scan2d_block(rotation, y_rot, X_rot, Z, W, whole_block(13), with_effects=True)
    background = null_background(rotation, y_rot, X_rot)
    index = {pair: i for i, pair in enumerate(zip(*whole_block(13).pairs()))}
    for blocks, tile_pairs in ((pair_blocks(13, 4), 3), (triangle_row_blocks(13, 10), 7)):
        seen = []
        for block in blocks:
            part = scan2d_block(None, None, None, Z, W, block, background=background, with_effects=True,
                                tile_pairs=tile_pairs)
            rows = [index[pair] for pair in zip(*block.pairs())]
            seen += rows
            for name in ("lrt", "df", "pvalue", "lod", "effects", "effect_se", "variance_ratios"):
                # equal up to BLAS summation order (GEMMs of different tile shapes)
                np.testing.assert_allclose(getattr(part, name), getattr(whole, name)[rows], rtol=1e-9, atol=1e-12)
            np.testing.assert_array_equal(part.df, whole.df[rows])
        assert sorted(seen) == list(range(len(index)))
    # columns reduced a few pairs at a time within each fitted tile
    first, second = whole_block(13).pairs()
    z_t, w_t = np.ascontiguousarray(Z.T), np.ascontiguousarray(W.T)
    sub_tiled = scan_pairs(background, z_t, w_t, first, second, with_effects=True, tile_pairs=20, reduce_pairs=3)
    for name in ("lrt", "df", "pvalue", "lod", "effects", "effect_se", "variance_ratios"):
        np.testing.assert_allclose(getattr(sub_tiled, name), getattr(whole, name), rtol=1e-9, atol=1e-12)
