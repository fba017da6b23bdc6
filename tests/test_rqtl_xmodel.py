"""R/qtl's X-chromosome model (qtlhpc.genetics.xchr) against slow, obvious references: hand-built designs
fitted by dense least squares, the recoding table written out, and a planted X QTL."""

from __future__ import annotations

import numpy as np
import pytest

from qtlhpc.genetics.genoprob import genoprob_chromosome
from qtlhpc.genetics.xchr import (
    cross_states_to_x,
    expand_full,
    full_genotype_names,
    individual_classes,
    recode_x,
    scan1d_hk_x,
    x_degrees_of_freedom,
    x_null_covariates,
    x_states_to_cross,
)


def lod_by_lstsq(y, null, alternative):
    def rss(design):
        coef, *_ = np.linalg.lstsq(design, y, rcond=None)
        return float(((y - design @ coef) ** 2).sum())

    return len(y) / 2 * np.log10(rss(null) / rss(alternative))


def random_x(n, n_positions, seed):
    rng = np.random.default_rng(seed)
    return rng.dirichlet(np.ones(2), size=(n, n_positions))


@pytest.mark.parametrize("cross_type, sexes, directions", [
    ("bc", [0, 1], None), ("bc", [1], None), ("bc", [0], None),
    ("f2", [0, 1], [0, 1]), ("f2", [0, 1], [0]), ("f2", [0], [0, 1]), ("f2", [1], [0, 1]), ("f2", [0], [1]),
])
@pytest.mark.parametrize("with_covariate", [False, True])
def test_x_lod_and_df_equal_a_hand_built_regression(cross_type, sexes, directions, with_covariate):
    """The alternative: one column per (sex/direction class, g1/g2) present; the null: intercept, the
    class indicators R/qtl's scanoneXnull uses, and the covariate."""
    n, n_positions = 60, 4
    rng = np.random.default_rng(len(sexes) * 7 + (0 if directions is None else len(directions)))
    sex = np.array([sexes[i % len(sexes)] for i in range(n)], dtype=np.int8)
    pgm = None if directions is None else np.array([directions[(i // 2) % len(directions)] for i in range(n)],
                                                   dtype=np.int8)
    g = random_x(n, n_positions, 3)
    y = rng.normal(size=n) + 0.5 * sex
    covariate = rng.normal(size=(n, 1)) if with_covariate else None
    lod = scan1d_hk_x(g, y, cross_type, sex, pgm, covariate)
    df = x_degrees_of_freedom(g, cross_type, sex, pgm, covariate)
    classes = individual_classes(sex, pgm if cross_type == "f2" else None, n)
    indicators = [(classes == c).astype(float) for c in range(3) if np.any(classes == c)]
    extra = [] if covariate is None else [covariate[:, 0]]
    # R/qtl's null: sex (bc, or f2 in one direction), pgm (f2 females only), sex + reverse-female indicator
    null = np.column_stack([np.ones(n)] + extra + [indicators[k] for k in range(1, len(indicators))])
    for j in range(n_positions):
        columns = [np.where(classes == c, g[:, j, a], 0.0) for c in range(3) if np.any(classes == c) for a in (0, 1)]
        alternative = np.column_stack([null] + columns)
        assert lod[j] == pytest.approx(lod_by_lstsq(y, null, alternative), abs=1e-9)
        assert df[j] == np.linalg.matrix_rank(alternative) - np.linalg.matrix_rank(null)
    assert len(full_genotype_names(cross_type, classes)) == 2 * len(indicators)
    # the null covariates are the class indicators beyond the intercept (R's scanoneXnull), up to a basis
    covariates = x_null_covariates(cross_type, sex, pgm, n)
    assert np.linalg.matrix_rank(np.column_stack([np.ones(n), covariates])) == len(indicators)


def test_recode_x_follows_rqtls_read_cross_table():
    # file codes 1 AA, 2 AB, 3 BB; rows: male, female pgm 0, female pgm 1
    codes = np.array([[1, 2, 3, 0],
                      [1, 2, 3, 5],
                      [1, 2, 3, 4]])
    sex = np.array([1, 0, 0], dtype=np.int8)
    pgm = np.array([0, 0, 1], dtype=np.int8)
    recoded, sex_out, pgm_out = recode_x(codes, "f2", sex, pgm)
    np.testing.assert_array_equal(recoded, [[1, 0, 2, 0],      # AY, (AB omitted), BY
                                            [1, 2, 0, 0],      # AA, AB, (BB omitted), (not AA omitted)
                                            [0, 2, 1, 0]])     # (AA omitted), AB, BB -> g1
    np.testing.assert_array_equal(sex_out, sex)
    np.testing.assert_array_equal(pgm_out, pgm)
    bc, _, _ = recode_x(np.array([[1, 3], [1, 2], [3, 2]]), "bc", np.array([1, 0, 0]), None)
    np.testing.assert_array_equal(bc, [[1, 2], [1, 2], [0, 2]])
    # no sex column: only homozygous codes -> all male; both kinds -> the X is left out (None)
    males, sex_guess, _ = recode_x(np.array([[1, 3], [3, 0]]), "bc", None, None)
    np.testing.assert_array_equal(sex_guess, [1, 1])
    np.testing.assert_array_equal(males, [[1, 2], [2, 0]])
    assert recode_x(np.array([[1, 2], [3, 1]]), "bc", None, None)[0] is None


def test_state_maps_round_trip_and_expansion_keeps_probability():
    n = 9
    classes = np.array([0, 1, 2] * 3, dtype=np.int8)
    g = random_x(n, 3, 1)
    for cross_type, n_states in (("bc", 2), ("f2", 3)):
        stored = x_states_to_cross(g, classes, cross_type, n_states)
        np.testing.assert_allclose(stored.sum(axis=2), 1.0)
        np.testing.assert_array_equal(cross_states_to_x(stored, classes, cross_type), g)
    expanded = expand_full(g, classes)
    assert expanded.shape == (n, 3, 6)
    np.testing.assert_allclose(expanded.sum(axis=2), 1.0)


def test_planted_x_qtl_acting_in_males_is_found():
    """Simulated hemizygous males and backcross females: a QTL on the X moves the males' trait (BY - AY)."""
    rng = np.random.default_rng(12)
    n, positions = 300, np.array([0.0, 10.0, 20.0, 30.0, 40.0])
    sex = (np.arange(n) % 2).astype(np.int8)
    truth = np.zeros((n, len(positions)), dtype=int)
    truth[:, 0] = rng.integers(0, 2, n)
    r = 0.5 * (1 - np.exp(-np.diff(positions) / 50))
    for j in range(1, len(positions)):
        switch = rng.random(n) < r[j - 1]
        truth[:, j] = np.where(switch, 1 - truth[:, j - 1], truth[:, j - 1])
    codes = truth + 1
    codes[rng.random(codes.shape) < 0.2] = 0
    y = rng.normal(size=n) + 1.2 * sex * truth[:, 2] + 0.8 * sex
    g = genoprob_chromosome(codes, positions, "bc", step=5.0).probs
    lod = scan1d_hk_x(np.ascontiguousarray(g), y, "bc", sex, None)
    grid = genoprob_chromosome(codes, positions, "bc", step=5.0).positions
    assert abs(grid[np.argmax(lod)] - 20.0) <= 5.0 and lod.max() > 5
    # without the QTL the X LOD stays small although the sexes differ (the sex effect is in the null)
    null_lod = scan1d_hk_x(np.ascontiguousarray(g), rng.normal(size=n) + 0.8 * sex, "bc", sex, None)
    assert null_lod.max() < 3
