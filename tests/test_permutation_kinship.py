"""Batched permutation maxima of the kinship models equal one full scan per permuted phenotype."""

import numpy as np
import pytest

from qtlhpc.methods.pepis.kernels.null_model import null_background, rotate, rotate_columns
from qtlhpc.methods.pepis.kernels.permutation import permutation_order
from qtlhpc.methods.pepis.kernels.permutation_kinship import max_lod_kinship_1d, max_lod_kinship_2d
from qtlhpc.methods.pepis.kernels.scan1d import scan1d
from qtlhpc.methods.pepis.kernels.scan2d import scan2d_block
from qtlhpc.parallel import triangle_row_blocks


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(5)
    n, m = 60, 9
    genotypes = rng.integers(0, 3, size=(n, m))
    Z = 1.0 - genotypes
    W = np.where(genotypes == 1, 1.0, -1.0)
    K0 = 0.4 * (Z @ Z.T) / m + 0.2 * (W @ W.T) / m
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    y = 0.7 * Z[:, 2] * Z[:, 6] + rng.normal(size=n)
    return rotate(K0, X), X, y, Z, W


def one_background(rotation, X, y, seed, permutation_id):
    permuted = y[permutation_order(seed, permutation_id, len(y))]
    return null_background(rotation, rotate_columns(rotation, permuted)[:, 0], rotate_columns(rotation, X))


@pytest.mark.parametrize("model", ["random", "fixed"])
def test_batched_1d_maxima_equal_one_scan_per_permutation(data, model):
    rotation, X, y, Z, W = data
    ids = [0, 3, 7, 11]
    batched = max_lod_kinship_1d(rotation, y, X, Z, W, 42, ids, model=model, block_markers=4).maxima["lod"]
    for value, permutation_id in zip(batched, ids):
        expected = scan1d(one_background(rotation, X, y, 42, permutation_id), Z, W, model=model).lod.max()
        assert value == pytest.approx(expected, rel=1e-9, abs=1e-10)


@pytest.mark.parametrize("model", ["random", "fixed"])
def test_batched_2d_maxima_equal_one_scan_per_permutation(data, model):
    rotation, X, y, Z, W = data
    ids = [1, 2, 9]
    batched = max_lod_kinship_2d(rotation, y, X, Z, W, 42, ids, model=model, pairs_per_block=10).maxima["lod"]
    for value, permutation_id in zip(batched, ids):
        background = one_background(rotation, X, y, 42, permutation_id)
        expected = max(scan2d_block(None, None, None, Z, W, block, model=model, background=background).lod.max()
                       for block in triangle_row_blocks(Z.shape[1], 10))
        assert value == pytest.approx(expected, rel=1e-9, abs=1e-10)


def test_any_split_of_ids_gives_the_same_maxima(data):
    rotation, X, y, Z, W = data
    whole = max_lod_kinship_1d(rotation, y, X, Z, W, 8, range(6)).maxima["lod"]
    parts = np.concatenate([max_lod_kinship_1d(rotation, y, X, Z, W, 8, ids).maxima["lod"]
                            for ids in ([0, 1], [2], [3, 4, 5])])
    np.testing.assert_allclose(parts, whole, rtol=1e-12)
