"""Simulated PEPIS data with planted effects, and its null background, for tests/test_scan1d.py and
tests/test_scan2d.py."""

import numpy as np

from qtlhpc.methods.pepis.kernels.null_model import null_background, rotate, rotate_columns


def simulate(n_individuals, n_markers, seed, ril=False):
    """F2-like codes (z in {1,0,-1}, w = 1 for AB else -1; RIL: no AB), kinship K0, covariates, trait."""
    rng = np.random.default_rng(seed)
    if ril:
        genotypes = rng.choice([1, 3], size=(n_individuals, n_markers))
    else:
        genotypes = rng.choice([1, 2, 3], size=(n_individuals, n_markers), p=[0.25, 0.5, 0.25])
    Z = np.select([genotypes == 1, genotypes == 2], [1.0, 0.0], -1.0)
    W = np.where(genotypes == 2, 1.0, -1.0)
    background = rng.choice([-1.0, 0.0, 1.0], size=(n_individuals, 40))
    K0 = 0.7 * background @ background.T / 40 + 0.05 * np.eye(n_individuals)
    X = np.column_stack([np.ones(n_individuals), rng.normal(size=n_individuals)])
    polygenic = rng.multivariate_normal(np.zeros(n_individuals), K0)
    y = X @ np.array([1.0, 0.3]) + polygenic + rng.normal(size=n_individuals)
    return Z, W, K0, X, y, rng


def prepared(K0, X, y):
    """The null background (rotation by ``K0``, null fit of ``y`` on ``X``) the scans start from."""
    rotation = rotate(K0, X)
    return null_background(rotation, rotate_columns(rotation, y)[:, 0], rotate_columns(rotation, X))
