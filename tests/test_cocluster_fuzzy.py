"""Fuzzy extraction ([J] §2.3) on hand-worked matrices, against a dense reference loop, and SLEPc against
LAPACK at 1, 2 and 3 ranks."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp

from mpi_helpers import run_mpi
from requirements import require
from qtlhpc.methods.cocluster import fuzzy
from qtlhpc.methods.cocluster.distributed import fuzzy_clusters
from qtlhpc.solvers import ScipyEigen

SCRIPT = Path(__file__).parent / "mpi_scripts" / "cocluster_fuzzy.py"


def serial(matrix, **options):
    solver = ScipyEigen()
    return fuzzy.extract(sp.csr_matrix(matrix), 0, lambda block: solver.largest(block, 2), **options)


def reference_extraction(F, max_clusters=50, eps_zero=1e-12, eps_degenerate=1e-8):
    """The rule written out with numpy.linalg.eigh on the dense deflated matrix, one cluster at a time."""
    F = np.asarray(F, dtype=float)
    r = np.ones(F.shape[0])
    columns, reason = [], "max_clusters"
    for _ in range(max_clusters):
        D = np.outer(r, r) * F
        if D.max() <= eps_zero:
            reason = "exhausted"
            break
        w, V = np.linalg.eigh(D)
        if w[-1] - w[-2] <= eps_degenerate * w[-1]:
            reason = "degenerate"
            break
        v = V[:, -1] * np.sign(V[:, -1].sum())
        if v.min() < -1e-8 * v.max():
            reason = "negative"
            break
        v = np.maximum(v, 0)
        top = np.flatnonzero(v >= v.max() * (1 - 1e-9))[0]
        p = np.array([min(r[top] * v[i] / v[top], r[i]) for i in range(len(r))])
        p[top] = r[top]
        r = np.maximum(r - p, 0)
        r[top] = 0
        columns.append(p)
    return (np.array(columns).T if columns else np.zeros((F.shape[0], 0))), reason


def test_hard_blocks_give_one_cluster_each_then_exhaust():
    F = sp.block_diag([np.ones((3, 3)), np.ones((2, 2))]).toarray()
    result = serial(F)
    assert result.stop_reason == "exhausted"
    np.testing.assert_allclose(result.dense(), [[1, 0], [1, 0], [1, 0], [0, 1], [0, 1]], atol=1e-10)
    np.testing.assert_allclose(result.lambda1, [3.0, 2.0])
    np.testing.assert_allclose(result.lambda2, [2.0, 0.0], atol=1e-12)
    assert list(result.prototype) == [0, 3]
    np.testing.assert_allclose(result.size, [3.0, 2.0])
    np.testing.assert_allclose(result.coverage, 1.0)


@pytest.mark.parametrize("backend", ["scipy", "slepc"])
def test_tie_between_two_identical_blocks_stops_as_degenerate(backend):
    if backend == "slepc":
        require("slepc")
    F = sp.block_diag([np.ones((2, 2)), np.ones((2, 2))]).toarray()
    result = fuzzy_clusters(sp.csr_matrix(F), 0, backend=backend)
    assert result.stop_reason == "degenerate"
    assert result.n_clusters == 0
    assert result.stop_lambda == pytest.approx((2.0, 2.0))


def test_chain_of_three_genes_by_hand():
    """F = [[1,.5,0],[.5,1,.5],[0,.5,1]]: lambda1 = 1 + 1/sqrt(2), v ~ (1, sqrt 2, 1), so p_1 = (1/sqrt2, 1, 1/sqrt2).
    The residuals (1 - 1/sqrt2) of genes 0 and 2 are then isolated and equal: F^(2) = diag(r0^2, 0, r0^2)
    has a double largest eigenvalue, and criterion 2 stops the extraction."""
    F = np.array([[1, .5, 0], [.5, 1, .5], [0, .5, 1]])
    result = serial(F)
    s = 1 / math.sqrt(2)
    np.testing.assert_allclose(result.dense()[:, 0], [s, 1, s], rtol=1e-12)
    assert result.lambda1[0] == pytest.approx(1 + s)
    assert result.lambda2[0] == pytest.approx(1.0)
    assert result.prototype[0] == 1
    assert result.stop_reason == "degenerate"
    assert result.stop_lambda == pytest.approx(((1 - s) ** 2, (1 - s) ** 2))


def test_second_cluster_uses_the_min_rule_by_hand():
    """F = [[1, 1, 0], [1, 1, x], [0, x, 1]] with x = 0.2: the second cluster's prototype is gene 2, and gene 1's
    membership is capped by its residual (the 'min' of [J] §2.3)."""
    x = 0.2
    F = np.array([[1, 1, 0], [1, 1, x], [0, x, 1]])
    result = serial(F, max_clusters=2)
    # cluster 1, by hand: the Perron vector of F
    w, V = np.linalg.eigh(F)
    v = np.abs(V[:, -1])
    p1 = v / v.max()
    r = 1 - p1
    assert result.prototype[0] == 1
    np.testing.assert_allclose(result.dense()[:, 0], p1, rtol=1e-10)
    # cluster 2: prototype gene 2 takes its whole residual; gene 1 has none left; gene 0 gets min(...)
    D = np.outer(r, r) * F
    w2, V2 = np.linalg.eigh(D)
    v2 = np.abs(V2[:, -1])
    assert result.prototype[1] == 2
    expected = np.minimum(r[2] * v2 / v2[2], r)
    np.testing.assert_allclose(result.dense()[:, 1], expected, rtol=1e-8, atol=1e-12)
    assert result.dense()[1, 1] == 0.0
    assert (result.dense().sum(axis=1) <= 1 + 1e-12).all()


def random_co_clustering_matrix(n_genes=40, n_samples=30, seed=1):
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 5, n_genes)
    samples = np.where(rng.random((n_samples, n_genes)) < 0.15, rng.integers(0, 8, (n_samples, n_genes)), truth)
    return np.mean([(s[:, None] == s[None, :]) for s in samples], axis=0)


def test_extraction_equals_dense_reference_on_a_sampled_matrix():
    F = random_co_clustering_matrix()
    result = serial(F, max_clusters=60)
    expected, reason = reference_extraction(F, max_clusters=60)
    assert result.stop_reason == reason
    np.testing.assert_allclose(result.dense(), expected, atol=1e-8)
    assert (result.coverage <= 1 + 1e-12).all()
    counts = fuzzy.layout_counts(result)
    dense = result.dense()
    for row, cutoff in enumerate((0.1, 0.3, 0.5)):
        assert counts[row, 0] == int(((dense >= cutoff).sum(axis=1) >= 1).sum())
        assert counts[row, 1] == int(((dense >= cutoff).sum(axis=1) >= 2).sum())


def test_cap_stops_at_max_clusters():
    F = random_co_clustering_matrix()
    result = serial(F, max_clusters=3)
    assert result.stop_reason == "max_clusters" and result.n_clusters == 3


def test_slepc_serial_equals_lapack():
    require("slepc")
    F = random_co_clustering_matrix(n_genes=60)
    ours = fuzzy_clusters(sp.csr_matrix(F), 0, backend="slepc", max_clusters=25)
    expected, _ = reference_extraction(F, max_clusters=25)
    np.testing.assert_allclose(ours.dense(), expected, atol=1e-7)


@pytest.mark.parametrize("n_ranks", [1, 2, 3])
def test_slepc_on_ranks_equals_dense_solver(n_ranks, tmp_path):
    require("slepc")
    F = random_co_clustering_matrix(n_genes=70, seed=4)
    np.save(tmp_path / "F.npy", F)
    proc = run_mpi(n_ranks, [SCRIPT, tmp_path / "F.npy", tmp_path / "out.npz"], timeout=300)
    assert "DONE" in proc.stdout
    out = np.load(tmp_path / "out.npz")
    expected, reason = reference_extraction(F, max_clusters=30)
    assert str(out["stop_reason"]) == reason
    np.testing.assert_allclose(out["memberships"], expected, atol=1e-7)
    w = np.linalg.eigvalsh(F)
    assert out["lambda1"][0] == pytest.approx(w[-1], rel=1e-9)
    assert out["lambda2"][0] == pytest.approx(w[-2], rel=1e-9)
    # the first eigenpairs themselves, on every rank count
    np.testing.assert_allclose(out["first_vector"], np.abs(np.linalg.eigh(F)[1][:, -1]), atol=1e-8)


@pytest.mark.parametrize("backend", ["scipy", "slepc"])
def test_component_rule_continues_through_ties(backend):
    """Beyond the paper: with on_degenerate = "component", identical blocks are taken one at a time, the block of
    the lowest-index gene first; [J]'s rule stops at the tie (tested above)."""
    if backend == "slepc":
        require("slepc")
    F = sp.block_diag([np.ones((2, 2)), np.ones((2, 2)), np.ones((3, 3)) * 0.8 + 0.2 * np.eye(3)]).toarray()
    result = fuzzy_clusters(sp.csr_matrix(F), 0, backend=backend, on_degenerate="component")
    dense = result.dense()
    assert result.stop_reason == "exhausted"
    # cluster 1: the 3-block (lambda 2.6, simple); then the two 2-blocks tie at lambda 2: genes 0-1 first, then 2-3
    np.testing.assert_allclose(dense[:, 0], [0, 0, 0, 0, 1, 1, 1], atol=1e-9)
    np.testing.assert_allclose(dense[:, 1], [1, 1, 0, 0, 0, 0, 0], atol=1e-9)
    np.testing.assert_allclose(dense[:, 2], [0, 0, 1, 1, 0, 0, 0], atol=1e-9)
    assert result.n_clusters == 3
    np.testing.assert_allclose(result.coverage, 1.0)


def test_scipy_backend_solves_on_the_support_of_large_matrices():
    """Above 500 genes scipy uses ARPACK; exhausted genes' empty rows are left out of each solve."""
    F = random_co_clustering_matrix(n_genes=520, n_samples=20, seed=6)
    ours = fuzzy_clusters(sp.csr_matrix(F), 0, backend="scipy", max_clusters=12)
    expected, _ = reference_extraction(F, max_clusters=12)
    np.testing.assert_allclose(ours.dense(), expected, atol=1e-7)
