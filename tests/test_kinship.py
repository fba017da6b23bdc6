"""The six epistatic kinships against the explicit double loop over marker pairs k < l."""

import numpy as np
import pytest

from qtlhpc.io.cross import Cross
from qtlhpc.methods.pepis.kernels.coding import additive_dominance_codes, codes_from_cross
from qtlhpc.methods.pepis.kernels.kinship import (
    KINSHIP_NAMES,
    kinship_diagonals,
    kinship_matrices,
    kinship_rows,
    kinship_scales,
    loco_mask,
)
from qtlhpc.errors import InputError
from qtlhpc.parallel import unit_rng


def brute_force_kinships(additive, dominance):
    """Slow and obvious: the defining sums, one marker and one ordered marker pair at a time."""
    n_individuals, n_markers = additive.shape
    codes = {"a": additive, "d": dominance}
    out = {name: np.zeros((n_individuals, n_individuals)) for name in KINSHIP_NAMES}
    for k in range(n_markers):
        for single in ("a", "d"):
            x = codes[single][:, k]
            out[single] += np.outer(x, x)
        for l in range(k + 1, n_markers):
            for first in ("a", "d"):
                for second in ("a", "d"):
                    feature = codes[first][:, k] * codes[second][:, l]
                    out[first + second] += np.outer(feature, feature)
    return out


def random_codes(seed, n_individuals=13, n_markers=23):
    rng = unit_rng(seed, "test-kinship")
    return rng.normal(size=(n_individuals, n_markers)), rng.normal(size=(n_individuals, n_markers)) + 0.3


def assert_close(fast, slow):
    np.testing.assert_allclose(fast, slow, rtol=1e-10, atol=1e-10 * np.abs(slow).max())


@pytest.mark.parametrize("marker_block", [1, 2, 5, 16, 64])
def test_unscaled_kinships_equal_pair_sums(marker_block):
    additive, dominance = random_codes(1)
    slow = brute_force_kinships(additive, dominance)
    fast = kinship_matrices(additive, dominance, scale=False, marker_block=marker_block, row_block=5)
    for name in KINSHIP_NAMES:
        assert_close(fast.matrices[name], slow[name])
        np.testing.assert_array_equal(fast.matrices[name], fast.matrices[name].T)


@pytest.mark.parametrize("which", [("da",), ("ad",), ("dd", "a"), ("da", "ad", "aa")])
def test_subsets_of_kinships(which):
    additive, dominance = random_codes(2)
    slow = brute_force_kinships(additive, dominance)
    fast = kinship_rows(additive, dominance, 0, additive.shape[0], which=which, marker_block=4)
    assert tuple(fast) == which
    for name in which:
        assert_close(fast[name], slow[name])


@pytest.mark.parametrize("splits", [[0, 13], [0, 1, 13], [0, 4, 9, 13], [0, 3, 3, 7, 12, 13]])
def test_row_blocks_concatenate_to_full(splits):
    additive, dominance = random_codes(3)
    slow = brute_force_kinships(additive, dominance)
    blocks = [kinship_rows(additive, dominance, start, stop, marker_block=3)
              for start, stop in zip(splits[:-1], splits[1:])]
    for name in KINSHIP_NAMES:
        stacked = np.concatenate([block[name] for block in blocks], axis=0)
        assert stacked.shape == (13, 13)
        assert_close(stacked, slow[name])


def test_marker_mask_equals_kinships_of_kept_markers():
    additive, dominance = random_codes(4)
    chromosomes = np.array(["1"] * 8 + ["2"] * 7 + ["3"] * 8)
    mask = loco_mask(chromosomes, "2")
    slow = brute_force_kinships(additive[:, mask], dominance[:, mask])
    rows = kinship_rows(additive, dominance, 2, 11, marker_mask=mask, marker_block=5)
    full = kinship_matrices(additive, dominance, scale=False, marker_mask=mask)
    diagonals = kinship_diagonals(additive, dominance, marker_mask=mask)
    for name in KINSHIP_NAMES:
        assert_close(rows[name], slow[name][2:11])
        assert_close(full.matrices[name], slow[name])
        assert_close(diagonals[name], np.diag(slow[name]))


def test_scaling_constants_are_mean_diagonals():
    additive, dominance = random_codes(5, n_individuals=17, n_markers=11)
    slow = brute_force_kinships(additive, dominance)
    scaled = kinship_matrices(additive, dominance, scale=True, row_block=6)
    scales = kinship_scales(additive, dominance)
    for name in KINSHIP_NAMES:
        expected_scale = np.diag(slow[name]).mean()
        assert scaled.scales[name] == pytest.approx(expected_scale, rel=1e-12)
        assert scales[name] == pytest.approx(expected_scale, rel=1e-12)
        assert_close(scaled.matrices[name], slow[name] / expected_scale)
        assert np.diag(scaled.matrices[name]).mean() == pytest.approx(1.0, rel=1e-12)


def test_f2_codes_from_probabilities_and_observed_genotypes():
    states = ("AA", "AB", "BB")
    probs = np.array([[[0.2, 0.5, 0.3], [1.0, 0.0, 0.0]], [[0.0, 0.0, 1.0], [0.1, 0.8, 0.1]]])
    additive, dominance = additive_dominance_codes(probs, states)
    np.testing.assert_allclose(additive, probs[..., 0] - probs[..., 2])
    np.testing.assert_allclose(dominance, probs[..., 1] - probs[..., 0] - probs[..., 2])

    genotypes = np.array([[1, 2, 3], [3, 2, 1]])
    cross = Cross("f2", ["i1", "i2"], ["m1", "m2", "m3"], ["1"] * 3, [0.0, 1.0, 2.0], genotypes)
    codes = codes_from_cross(cross)
    np.testing.assert_array_equal(codes.additive, [[1, 0, -1], [-1, 0, 1]])
    np.testing.assert_array_equal(codes.dominance, [[-1, 1, -1], [-1, 1, -1]])
    assert codes.dominance_informative


def test_ril_dominance_is_flagged_and_missing_needs_probabilities():
    genotypes = np.array([[1, 2], [2, 1], [1, 1]])
    cross = Cross("riself", ["a", "b", "c"], ["m1", "m2"], ["1", "1"], [0.0, 5.0], genotypes)
    codes = codes_from_cross(cross)
    np.testing.assert_array_equal(codes.additive, [[1, -1], [-1, 1], [1, 1]])
    assert np.all(codes.dominance == -1) and not codes.dominance_informative

    genotypes[0, 1] = 0
    cross = Cross("riself", ["a", "b", "c"], ["m1", "m2"], ["1", "1"], [0.0, 5.0], genotypes)
    with pytest.raises(InputError, match="genotype probabilities"):
        codes_from_cross(cross)
    probs = np.zeros((3, 2, 2))
    probs[..., 0] = [[1.0, 0.25], [0.0, 1.0], [1.0, 1.0]]
    probs[..., 1] = 1 - probs[..., 0]
    codes = codes_from_cross(cross, genoprobs=probs)
    assert codes.additive[0, 1] == pytest.approx(0.25 - 0.75)
    assert not codes.dominance_informative


def test_backcross_codes_follow_cross_conventions():
    probs = np.array([[[0.3, 0.7]]])
    additive, dominance = additive_dominance_codes(probs, ("AA", "AB"))
    assert additive[0, 0] == pytest.approx(0.3) and dominance[0, 0] == pytest.approx(0.7 - 0.3)


def test_input_errors():
    additive, dominance = random_codes(6)
    with pytest.raises(InputError, match="kinships"):
        kinship_rows(additive, dominance, 0, 3, which=("ab",))
    with pytest.raises(InputError, match="row range"):
        kinship_rows(additive, dominance, 5, 40)
    bad = additive.copy()
    bad[0, 0] = np.nan
    with pytest.raises(InputError, match="NaN"):
        kinship_matrices(bad, dominance)
    with pytest.raises(InputError, match="marker_mask"):
        kinship_rows(additive, dominance, 0, 3, marker_mask=np.ones(5, bool))
    with pytest.raises(InputError, match="mean diagonal"):
        kinship_matrices(additive, np.zeros_like(dominance), which=("d",))
    with pytest.raises(InputError, match="sum to"):
        additive_dominance_codes(np.full((2, 2, 3), 0.5), ("AA", "AB", "BB"))
