"""Compiled kernels of the two-QTL HK scan against their slow, obvious counterparts."""

import numpy as np
import pytest

from qtlhpc.genetics import hk, hk_kernels
from qtlhpc.genetics.genoprob import chromosome_chain, pair_posterior


@pytest.mark.parametrize("cross_type", ["bc", "f2"])
def test_posterior_chain_products_are_the_joint_probabilities(cross_type):
    """diag(P(g_j)) R_j ... R_{k-1} equals the forward-backward joint posterior of every pair j < k."""
    rng = np.random.default_rng(0)
    genotypes = rng.integers(0, 6 if cross_type == "f2" else 3, size=(15, 6))
    chain = chromosome_chain(genotypes, np.array([0.0, 3.0, 11.0, 12.0, 30.0, 47.0]), cross_type, step=5.0,
                             error_prob=0.01)
    marginals, transitions = chain.marginals(), chain.posterior_transitions()
    np.testing.assert_allclose(transitions.sum(axis=2), 1.0, rtol=1e-12)
    n_positions = marginals.shape[0]
    first, second = np.triu_indices(n_positions, 1)
    expected = pair_posterior(chain.forward, chain.backward, chain.emissions, chain.transitions, first, second)
    for p, (j, k) in enumerate(zip(first, second)):
        for i in range(genotypes.shape[0]):
            product = np.diag(marginals[j, :, i])
            for step in range(j, k):
                product = product @ transitions[step, :, :, i]
            np.testing.assert_allclose(product, expected[i, p], atol=1e-13)


def _one_state_inputs(seed):
    """Tile products of a backcross-like design with two identical positions and one constant position."""
    rng = np.random.default_rng(seed)
    n, m = 40, 9
    probs = rng.uniform(size=(n, m, 1))
    probs[:, 4] = probs[:, 3]          # collinear pair (3, 4)
    probs[:, 7] = 0.5                  # no information: collinear with the intercept
    probs = np.concatenate([probs, 1 - probs], axis=2)
    phenotypes = rng.normal(size=(n, 3))
    covariates = rng.normal(size=(n, 2))
    prep = hk._prepare(probs, phenotypes, covariates)
    return prep, m


def test_one_state_kernel_equals_general_kernel():
    prep, m = _one_state_inputs(1)
    chromosome = np.repeat([0, 1, 2], 3).astype(np.int64)
    for rows, cols in [(slice(0, m), slice(0, m)), (slice(2, 5), slice(3, m))]:
        products = hk._tile_products(prep, rows, cols)
        shape = (2, rows.stop - rows.start, cols.stop - cols.start, 3)
        for skip in (False, True):
            general, fast = np.zeros(shape), np.zeros(shape)
            done_general, done_fast = np.zeros(shape[1:3], bool), np.zeros(shape[1:3], bool)
            hk_kernels.product_tile(rows.start, cols.start, *products, chromosome, skip, hk.PIVOT_TOL,
                                    general, done_general)
            hk_kernels.product_tile_one_state(rows.start, cols.start, *products, chromosome, skip, hk.PIVOT_TOL,
                                              fast, done_fast)
            np.testing.assert_array_equal(done_fast, done_general)
            assert done_general.sum() > 0
            np.testing.assert_allclose(fast, general, rtol=1e-10, atol=1e-10)


def test_one_state_kernel_matches_least_squares_with_collinear_positions():
    prep, m = _one_state_inputs(2)
    result = hk._scan2d_prepared(prep, hk.PairBlock(0, 0, m, 0, m), np.zeros((m, 3)), hk.PIVOT_TOL)
    n = prep.n_individuals
    probs = prep.columns[:, :, 0]
    y = prep.resid_y
    for p, (j, k) in enumerate(zip(result.first, result.second)):
        design = np.column_stack([prep.null_basis, probs[:, j], probs[:, k], probs[:, j] * probs[:, k]])
        coef = np.linalg.lstsq(design, y, rcond=None)[0]
        rss = ((y - design @ coef) ** 2).sum(axis=0)
        expected = n / 2 * np.log10(prep.rss0 / rss)
        np.testing.assert_allclose(result.lod_full[p], expected, rtol=1e-7, atol=1e-8)
