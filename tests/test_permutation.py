"""Permutation maxima: split invariance, brute force per permutation, thresholds, merge errors."""

import subprocess

import numpy as np
import pytest

from qtlhpc.genetics.hk import scan1d_hk, scan2d_hk
from qtlhpc.methods.pepis.kernels.permutation import (
    PermutationMaxima,
    max_lod_hk_1d,
    max_lod_hk_2d,
    merge_permutations,
    missing_ids,
    permutation_order,
    permuted_phenotypes,
)
from qtlhpc.stats.permutation import adjusted_pvalues, thresholds
from qtlhpc.errors import InputError
from requirements import require


def _case(n_states=2, n=40, n_positions=9, seed=0):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(n_states), size=(n, n_positions))
    covariates = rng.normal(size=(n, 1))
    y = probs[:, 2, 0] + covariates[:, 0] + rng.normal(size=n)
    return probs, y, covariates


def test_permutation_orders_are_permutations_keyed_by_id():
    orders = [permutation_order(7, i, 50) for i in range(20)]
    for order in orders:
        assert sorted(order.tolist()) == list(range(50))
    assert len({tuple(o) for o in orders}) == 20
    np.testing.assert_array_equal(permutation_order(7, 3, 50), orders[3])
    assert not np.array_equal(permutation_order(8, 3, 50), orders[3])
    y = np.arange(50.0)
    np.testing.assert_array_equal(permuted_phenotypes(y, 7, [3, 11])[:, 1], y[orders[11]])


def test_1d_maxima_equal_one_scan_per_permuted_phenotype_and_covariates_stay():
    probs, y, covariates = _case()
    ids = [0, 5, 2, 9]
    result = max_lod_hk_1d(probs, y, covariates, 13, ids, batch=3)
    for index, permutation_id in enumerate(ids):
        order = permutation_order(13, permutation_id, len(y))
        expected = scan1d_hk(probs, y[order], covariates).max()  # covariates in place, phenotype permuted
        assert result.maxima["lod"][index] == pytest.approx(expected, rel=1e-12)
    np.testing.assert_array_equal(result.ids, ids)


def _brute_force_2d_statistics(probs, y, covariates, chromosome):
    """R/qtl's scantwo permutation statistics by explicit loops over chromosome pairs."""
    lod1 = scan1d_hk(probs, y, covariates)
    pairs = scan2d_hk(probs, y, covariates)
    labels = sorted(set(chromosome.tolist()))
    one = {c: lod1[chromosome == c].max() for c in labels}
    rows = []
    for a_index, a in enumerate(labels):
        for b in labels[a_index:]:
            on_pair = ((chromosome[pairs.first] == a) & (chromosome[pairs.second] == b)) | \
                      ((chromosome[pairs.first] == b) & (chromosome[pairs.second] == a))
            if not on_pair.any():
                continue
            full, add = pairs.lod_full[on_pair, 0].max(), pairs.lod_add[on_pair, 0].max()
            rows.append((full, add, max(one[a], one[b])))
    rows = np.array(rows)
    full, add, single = rows.T
    return {"full": full.max(), "fv1": (full - single).max(), "int": (full - add).max(),
            "add": add.max(), "av1": (add - single).max(), "one": lod1.max()}


@pytest.mark.parametrize("n_states", [2, 3])
def test_2d_maxima_equal_brute_force_per_permutation(n_states):
    probs, y, covariates = _case(n_states, n=36, n_positions=8, seed=n_states)
    chromosomes = np.array(["1", "1", "1", "2", "2", "3", "3", "3"])
    ids = [4, 1, 7]
    result = max_lod_hk_2d(probs, y, covariates, 21, ids, chromosomes=chromosomes, tile=3, batch=2)
    codes = np.unique(chromosomes, return_inverse=True)[1]
    for index, permutation_id in enumerate(ids):
        order = permutation_order(21, permutation_id, len(y))
        expected = _brute_force_2d_statistics(probs, y[order], covariates, codes)
        for name, value in expected.items():
            assert result.maxima[name][index] == pytest.approx(value, rel=1e-10, abs=1e-12), name


def test_any_split_of_ids_merges_to_one_pass():
    probs, y, covariates = _case(n_positions=6)
    whole_1d = max_lod_hk_1d(probs, y, covariates, 5, range(12))
    whole_2d = max_lod_hk_2d(probs, y, covariates, 5, range(12), tile=4)
    for split in ([range(0, 5), range(5, 12)], [[11, 0, 3], [1, 2, 4, 5, 6, 7, 8, 9, 10]]):
        merged = merge_permutations([max_lod_hk_1d(probs, y, covariates, 5, ids) for ids in reversed(split)], 12)
        np.testing.assert_array_equal(merged.ids, whole_1d.ids)
        np.testing.assert_array_equal(merged.maxima["lod"], whole_1d.maxima["lod"])
        merged = merge_permutations([max_lod_hk_2d(probs, y, covariates, 5, ids, tile=4) for ids in split], 12)
        for name, values in whole_2d.maxima.items():
            np.testing.assert_array_equal(merged.maxima[name], values)


def test_merge_names_missing_and_duplicate_ids():
    def part(ids):
        return PermutationMaxima(ids, {"lod": np.zeros(len(ids))})

    with pytest.raises(InputError, match=r"missing \(of 0..9\): 3, 4, 9"):
        merge_permutations([part([0, 1, 2]), part([5, 6, 7, 8])], n_total=10)
    with pytest.raises(InputError, match="more than once: 2, 5"):
        merge_permutations([part([0, 1, 2, 5]), part([2, 3, 4, 5])])
    with pytest.raises(InputError, match="beyond the 3 expected: 3"):
        merge_permutations([part([0, 1, 2, 3])], n_total=3)
    with pytest.raises(InputError, match="statistics"):
        merge_permutations([part([0]), PermutationMaxima([1], {"full": [0.0]})])
    np.testing.assert_array_equal(missing_ids([0, 2, 5], 7), [1, 3, 4, 6])


def test_thresholds_are_type_7_quantiles_and_pvalues_count_at_least():
    rng = np.random.default_rng(4)
    maxima = rng.gamma(3.0, size=137)
    got = thresholds(maxima, alphas=(0.05, 0.01, 0.1))
    # R type 7 by hand: h = (N - 1) p, interpolate between the floor(h)-th and next order statistics
    ordered = np.sort(maxima)
    for value, alpha in zip(got, (0.05, 0.01, 0.1)):
        h = (len(maxima) - 1) * (1 - alpha)
        lower = int(np.floor(h))
        assert value == pytest.approx(ordered[lower] + (h - lower) * (ordered[lower + 1] - ordered[lower]))
    by_name = thresholds(PermutationMaxima(np.arange(137), {"lod": maxima}), alphas=(0.05,))
    assert by_name["lod"][0] == pytest.approx(got[0])
    observed = np.array([ordered[0], ordered[100], ordered[-1] + 1, ordered[50] - 1e-9])
    expected = [(maxima >= o).mean() for o in observed]
    np.testing.assert_allclose(adjusted_pvalues(observed, maxima), expected)
    with pytest.raises(InputError, match=r"\(0, 1\)"):
        thresholds(maxima, alphas=(1.5,))


def test_thresholds_and_pvalues_match_r_qtl(tmp_path):
    require("rqtl")
    rng = np.random.default_rng(8)
    maxima = rng.gamma(3.0, size=101)
    observed = np.array([2.0, 4.5, 9.0, maxima[10]])
    np.savetxt(tmp_path / "perm.txt", maxima, fmt="%.17g")
    np.savetxt(tmp_path / "obs.txt", observed, fmt="%.17g")
    script = f"""suppressMessages(library(qtl))
perm <- as.matrix(read.table("{tmp_path}/perm.txt")); colnames(perm) <- "lod"; class(perm) <- c("scanoneperm", "matrix")
obs <- as.matrix(read.table("{tmp_path}/obs.txt"))
write.table(unclass(summary(perm, alpha=c(0.05, 0.01, 0.1))), "{tmp_path}/thr.txt", row.names=FALSE, col.names=FALSE)
write.table(qtl:::calcPermPval(obs, perm), "{tmp_path}/pval.txt", row.names=FALSE, col.names=FALSE)
"""
    subprocess.run(["Rscript", "-e", script], check=True, capture_output=True)
    np.testing.assert_allclose(thresholds(maxima), np.loadtxt(tmp_path / "thr.txt"), rtol=1e-12)
    np.testing.assert_allclose(adjusted_pvalues(observed, maxima), np.loadtxt(tmp_path / "pval.txt"), rtol=1e-12)
