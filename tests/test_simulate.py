"""The simulator: determinism, segregation ratios, recombination, planted effects, config form."""

import numpy as np
import pytest

from qtlhpc.errors import ConfigError
from qtlhpc.genetics.simulate import (
    SIMULATE_OPTIONS,
    simulate_cross,
    simulate_from_config,
    simulate_genotypes,
    simulate_map,
    state_codes,
)


def assert_same_cross(a, b):
    np.testing.assert_array_equal(a.genotypes, b.genotypes)
    np.testing.assert_array_equal(a.phenotypes, b.phenotypes)
    np.testing.assert_array_equal(a.positions, b.positions)
    np.testing.assert_array_equal(a.covariates, b.covariates)


def test_same_seed_same_cross_and_different_seed_different_cross():
    options = dict(n_chromosomes=2, markers_per_chromosome=10, missing_rate=0.1, marker_spacing="random",
                   main_qtl=[(3, 1.0, 0.2)], polygenic_variance=0.3, n_covariates=1)
    first, _ = simulate_cross("f2", 50, seed=7, **options)
    again, _ = simulate_cross("f2", 50, seed=7, **options)
    other, _ = simulate_cross("f2", 50, seed=8, **options)
    assert_same_cross(first, again)
    assert not np.array_equal(first.genotypes, other.genotypes)
    assert not np.array_equal(first.positions, other.positions)
    assert not np.array_equal(first.phenotypes, other.phenotypes)


def test_adding_traits_covariates_or_qtl_keeps_the_genotypes_and_first_trait_noise():
    base, _ = simulate_cross("bc", 40, n_chromosomes=2, seed=3)
    more, _ = simulate_cross("bc", 40, n_chromosomes=3, seed=3, n_traits=3, n_covariates=2,
                             main_qtl=[(0, 0.5)], covariate_effect=0.0)
    np.testing.assert_array_equal(base.genotypes, more.genotypes[:, :40])
    z, _ = state_codes(more.genotypes[:, [0]] - 1, "bc")
    np.testing.assert_allclose(base.phenotypes[:, 0], more.phenotypes[:, 0] - 0.5 * z[:, 0])


@pytest.mark.parametrize("cross_type, expected", [
    ("bc", [0.5, 0.5]), ("riself", [0.5, 0.5]), ("risib", [0.5, 0.5]), ("f2", [0.25, 0.5, 0.25]), ("imf2", [0.25, 0.5, 0.25]),
])
def test_segregation_ratios(cross_type, expected):
    genetic_map = simulate_map(1, 100.0, 5, seed=1)
    n_individuals = 4000
    true_states, observed = simulate_genotypes(genetic_map, cross_type, n_individuals, seed=2)
    np.testing.assert_array_equal(observed, true_states + 1)
    for column in true_states.T:   # markers far apart: check each one
        frequencies = np.bincount(column, minlength=len(expected)) / n_individuals
        standard_error = np.sqrt(np.array(expected) * (1 - np.array(expected)) / n_individuals)
        assert np.all(np.abs(frequencies - expected) < 4.5 * standard_error), frequencies


def haldane(d):
    return 0.5 * (1 - np.exp(-d / 50))


def kosambi(d):
    return 0.5 * np.tanh(d / 50)


@pytest.mark.parametrize("cross_type, map_function, expand", [
    ("bc", "haldane", lambda r: r),
    ("bc", "kosambi", lambda r: r),
    ("riself", "haldane", lambda r: 2 * r / (1 + 2 * r)),
    ("risib", "haldane", lambda r: 4 * r / (1 + 6 * r)),
    ("risib", "kosambi", lambda r: 4 * r / (1 + 6 * r)),
])
def test_adjacent_recombination_fraction_two_state_crosses(cross_type, map_function, expand):
    genetic_map = simulate_map(1, 90.0, 10, seed=1)          # 10 cM intervals
    n_individuals = 3000
    true_states, _ = simulate_genotypes(genetic_map, cross_type, n_individuals, seed=5, map_function=map_function)
    r = (haldane if map_function == "haldane" else kosambi)(10.0)
    expected = expand(r)
    observed = np.mean(true_states[:, 1:] != true_states[:, :-1])
    n_intervals = true_states.shape[1] - 1
    standard_error = np.sqrt(expected * (1 - expected) / (n_individuals * n_intervals))
    assert abs(observed - expected) < 4.5 * standard_error, (observed, expected)


def test_adjacent_genotype_table_f2():
    genetic_map = simulate_map(1, 60.0, 5, seed=1)           # 15 cM intervals
    n_individuals = 5000
    true_states, _ = simulate_genotypes(genetic_map, "f2", n_individuals, seed=9)
    r = haldane(15.0)
    # P(states s, t at adjacent markers): two independent F1 gametes, each recombining with probability r
    expected = np.zeros((3, 3))
    for a1 in (0, 1):
        for b1 in (0, 1):
            for a2 in (0, 1):
                for b2 in (0, 1):
                    p = 0.25 * (r if a1 != a2 else 1 - r) * (r if b1 != b2 else 1 - r)
                    expected[a1 + b1, a2 + b2] += p
    table = np.zeros((3, 3))
    for k in range(true_states.shape[1] - 1):
        np.add.at(table, (true_states[:, k], true_states[:, k + 1]), 1)
    frequencies = table / table.sum()
    standard_error = np.sqrt(expected * (1 - expected) / table.sum())
    assert np.all(np.abs(frequencies - expected) < 4.5 * standard_error + 1e-12)


def test_missing_and_error_rates_honoured():
    genetic_map = simulate_map(2, 100.0, 25, seed=1)
    true_states, observed = simulate_genotypes(genetic_map, "f2", 2000, seed=4, missing_rate=0.2, error_rate=0.05)
    n = observed.size
    missing = np.mean(observed == 0)
    assert abs(missing - 0.2) < 4.5 * np.sqrt(0.2 * 0.8 / n)
    present = observed > 0
    errors = np.mean(observed[present] != true_states[present] + 1)
    assert abs(errors - 0.05) < 4.5 * np.sqrt(0.05 * 0.95 / present.sum())
    assert set(np.unique(observed)) <= {0, 1, 2, 3}


def test_map_layout():
    genetic_map = simulate_map(3, 80.0, 5, seed=2)
    assert list(genetic_map.chromosomes) == ["1"] * 5 + ["2"] * 5 + ["3"] * 5
    np.testing.assert_allclose(genetic_map.positions[:5], [0, 20, 40, 60, 80])
    assert genetic_map.markers[6] == "D2M2"
    random_map = simulate_map(2, 80.0, 6, seed=2, spacing="random")
    for c in range(2):
        pos = random_map.positions[6 * c:6 * (c + 1)]
        assert pos[0] == 0 and np.all(np.diff(pos) >= 0) and pos[-1] <= 80


def ols(design, y):
    coefficients, *_ = np.linalg.lstsq(design, y, rcond=None)
    residual = y - design @ coefficients
    sigma2 = residual @ residual / (len(y) - design.shape[1])
    covariance = sigma2 * np.linalg.inv(design.T @ design)
    return coefficients, np.sqrt(np.diag(covariance))


def test_planted_effects_recovered_by_least_squares():
    main = [{"marker": "D1M5", "additive": 0.8, "dominance": -0.5}, {"marker": 30, "additive": 0.4}]
    pairs = [{"markers": [12, 45], "aa": 0.6, "ad": 0.3, "da": -0.4, "dd": 0.25}]
    cross, truth = simulate_cross("f2", 3000, n_chromosomes=3, markers_per_chromosome=20, seed=21, main_qtl=main,
                                  epistatic_pairs=pairs, noise_variance=1.0, n_covariates=1, covariate_effect=0.7)
    z, w = state_codes(truth.true_genotypes, "f2")
    k, l = 12, 45
    columns = [np.ones(3000), z[:, 4], w[:, 4], z[:, 30], w[:, 30], z[:, k], w[:, k], z[:, l], w[:, l],
               z[:, k] * z[:, l], z[:, k] * w[:, l], w[:, k] * z[:, l], w[:, k] * w[:, l], cross.covariates[:, 0]]
    planted = [0, 0.8, -0.5, 0.4, 0, 0, 0, 0, 0, 0.6, 0.3, -0.4, 0.25, 0.7]
    estimate, standard_error = ols(np.column_stack(columns), cross.phenotypes[:, 0])
    assert np.all(np.abs(estimate - planted) < 4.5 * standard_error), (estimate, standard_error)
    assert truth.main_qtl[0].marker == 4 and truth.main_qtl[1].marker_name == "D2M11"
    assert truth.epistatic_pairs[0].marker_names == ("D1M13", "D3M6")
    residual = cross.phenotypes[:, 0] - truth.genetic_values[:, 0] - 0.7 * cross.covariates[:, 0]
    assert abs(residual.var() - 1.0) < 4.5 * np.sqrt(2 / 3000)


def test_polygenic_background_has_the_requested_variance():
    cross, truth = simulate_cross("bc", 500, seed=2, polygenic_variance=2.0, noise_variance=0.0, n_traits=2)
    np.testing.assert_allclose(cross.phenotypes.var(axis=0), 2.0)
    z, _ = state_codes(truth.true_genotypes, "bc")
    polygenic = z @ truth.polygenic_effects
    np.testing.assert_allclose(polygenic - polygenic.mean(axis=0), cross.phenotypes)
    assert not np.allclose(cross.phenotypes[:, 0], cross.phenotypes[:, 1])


def test_qtl_can_be_restricted_to_some_traits():
    cross, _ = simulate_cross("riself", 100, seed=2, noise_variance=0.0, n_traits=2,
                              main_qtl=[{"marker": 0, "additive": 1.0, "traits": [1]}])
    assert np.all(cross.phenotypes[:, 0] == 0) and np.all(np.abs(cross.phenotypes[:, 1]) == 1)


def test_config_form_matches_keyword_form_and_rejects_mistakes():
    section = {"cross_type": "bc", "n_individuals": 30, "n_chromosomes": 2, "seed": 4,
               "main_qtl": [{"marker": "D2M3", "additive": 0.5}],
               "epistatic_pairs": [{"markers": [1, 25], "aa": 0.3}]}
    from_config, truth = simulate_from_config(section)
    direct, _ = simulate_cross("bc", 30, n_chromosomes=2, seed=4, main_qtl=[(22, 0.5)], epistatic_pairs=[(1, 25, 0.3)])
    assert_same_cross(from_config, direct)
    assert set(SIMULATE_OPTIONS) >= set(section) and all(len(v) == 3 for v in SIMULATE_OPTIONS.values())
    with pytest.raises(ConfigError, match="did you mean 'n_traits'"):
        simulate_from_config({"n_trait": 2})
    with pytest.raises(ConfigError, match="expected int"):
        simulate_from_config({"n_individuals": "many"})
    with pytest.raises(ConfigError, match="did you mean 'D2M3'"):
        simulate_from_config({"main_qtl": [{"marker": "D2M33x", "additive": 1}], "n_chromosomes": 2})
    with pytest.raises(ConfigError, match="did you mean 'additive'"):
        simulate_from_config({"main_qtl": [{"marker": 1, "addtive": 1}]})
    with pytest.raises(ConfigError, match="out of range"):
        simulate_from_config({"main_qtl": [{"marker": 1000, "additive": 1}]})
    with pytest.raises(ConfigError, match="cross_type"):
        simulate_from_config({"cross_type": "f3"})
