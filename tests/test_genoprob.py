"""Genotype probabilities: against brute-force enumeration of genotype paths, properties, and R/qtl."""

import itertools
import subprocess
import textwrap

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from qtlhpc.io.cross import COMPATIBLE_STATES, Cross
from qtlhpc.errors import ConfigError, InputError
from qtlhpc.genetics.genoprob import (
    calc_genoprob,
    genoprob_chromosome,
    map_distance,
    pair_probabilities,
    pseudomarker_grid,
    recombination_fraction,
)
from requirements import require

# ----------------------------------------------------------------------------------------------
# slow, obvious reference: sum over every path of meiotic products (gametes), not over HMM states
# ----------------------------------------------------------------------------------------------


def reference_fraction(distance, map_function):
    if map_function == "haldane":
        return 0.5 * (1 - np.exp(-2 * distance / 100))
    if map_function == "kosambi":
        return 0.5 * (np.exp(4 * distance / 100) - 1) / (np.exp(4 * distance / 100) + 1)
    raise AssertionError(map_function)


def reference_emission(code, state, n_states, error_prob):
    compatible = COMPATIBLE_STATES["f2" if n_states == 3 else "bc"][code]
    if code == 0:
        return 1.0
    if len(compatible) == 1:
        return 1 - error_prob if state in compatible else error_prob / (n_states - 1)
    return 1 - error_prob / 2 if state in compatible else error_prob  # R/qtl's rule for codes 4, 5


def gamete_path_probability(path, fractions):
    """P(allele path of one gamete): 1/2 for the first allele, r or 1-r per interval."""
    p = 0.5
    for k, r in enumerate(fractions):
        p *= r if path[k] != path[k + 1] else 1 - r
    return p


def brute_force_genoprob(codes, positions, cross_type, error_prob, map_function):
    """Posterior state probabilities by enumerating all gamete paths, ``(n_positions, n_states)``.

    ``codes (n_positions,)`` for one individual (0 at pseudomarkers).  bc: state = allele of the
    F1 gamete; f2: state = number of B alleles of two independent F1 gametes; RILs: one 'gamete'
    with the RIL recombination fraction R (2r/(1+2r) selfing, 4r/(1+6r) sib mating), state = allele.
    """
    n_positions = len(positions)
    fractions = reference_fraction(np.diff(positions), map_function)
    if cross_type == "riself":
        fractions = 2 * fractions / (1 + 2 * fractions)
    elif cross_type == "risib":
        fractions = 4 * fractions / (1 + 6 * fractions)
    n_gametes, n_states = (2, 3) if cross_type == "f2" else (1, 2)
    joint = np.zeros((n_positions, n_states))
    for paths in itertools.product(itertools.product((0, 1), repeat=n_positions), repeat=n_gametes):
        states = np.sum(paths, axis=0)
        weight = np.prod([gamete_path_probability(p, fractions) for p in paths])
        for j in range(n_positions):
            weight *= reference_emission(int(codes[j]), int(states[j]), n_states, error_prob)
        joint[np.arange(n_positions), states] += weight
    return joint / joint.sum(axis=1, keepdims=True)


CASES = [
    # cross type, codes per individual (markers), marker positions, step
    ("bc", [[1, 2, 0], [2, 0, 2], [1, 1, 2], [0, 0, 0]], [0.0, 3.0, 4.5], 1.5),
    ("riself", [[1, 2, 0], [2, 0, 2], [1, 1, 2]], [0.0, 7.0, 9.0], 3.0),
    ("risib", [[1, 2, 0], [2, 0, 2], [1, 2, 1]], [10.0, 14.0, 15.0], 2.0),
    ("f2", [[1, 3, 4], [2, 0, 5], [4, 5, 1], [3, 1, 0]], [0.0, 2.0, 5.0], 2.5),
    ("f2", [[1, 3, 2], [5, 0, 4]], [0.0, 0.0, 1.0], 0.0),          # two markers at one position
    ("bc", [[1, 2, 1], [2, 0, 1]], [2.0, 2.0, 2.0], 0.0),          # three markers at one position
    ("riself", [[1, 2], [0, 2]], [0.0, 40.0], 10.0),
]


@pytest.mark.parametrize("map_function", ["haldane", "kosambi"])
@pytest.mark.parametrize("cross_type, codes, positions, step", CASES)
def test_matches_enumeration_of_all_paths(cross_type, codes, positions, step, map_function):
    error_prob = 0.02
    codes = np.array(codes)
    result = genoprob_chromosome(codes, positions, cross_type, step=step, error_prob=error_prob,
                                 map_function=map_function)
    assert len(result.positions) <= 6
    for i in range(len(codes)):
        full_codes = np.zeros(len(result.positions), dtype=int)
        full_codes[result.is_marker] = codes[i, result.marker_index[result.is_marker]]
        expected = brute_force_genoprob(full_codes, result.positions, cross_type, error_prob, map_function)
        np.testing.assert_allclose(result.probs[i], expected, rtol=1e-9, atol=1e-12)


def test_imf2_is_analysed_as_f2():
    codes = np.array([[1, 5, 3], [0, 2, 4]])
    as_f2 = genoprob_chromosome(codes, [0, 5, 10], "f2", step=2.5)
    as_imf2 = genoprob_chromosome(codes, [0, 5, 10], "imf2", step=2.5)
    np.testing.assert_array_equal(as_f2.probs, as_imf2.probs)


# ----------------------------------------------------------------------------------------------
# properties
# ----------------------------------------------------------------------------------------------

N_STATES = {"bc": 2, "riself": 2, "risib": 2, "f2": 3}


@st.composite
def chromosomes(draw, max_markers=8):
    cross_type = draw(st.sampled_from(["bc", "riself", "risib", "f2"]))
    n_markers = draw(st.integers(1, max_markers))
    n_individuals = draw(st.integers(1, 5))
    gaps = draw(st.lists(st.floats(0.5, 30.0), min_size=n_markers - 1, max_size=n_markers - 1))
    positions = draw(st.floats(0, 50)) + np.cumsum(np.concatenate([[0.0], gaps]))
    codes = draw(st.lists(st.integers(1, N_STATES[cross_type]), min_size=n_markers * n_individuals,
                          max_size=n_markers * n_individuals))
    step = draw(st.sampled_from([0.0, 0.7, 1.0, 5.0]))
    map_function = draw(st.sampled_from(["haldane", "kosambi", "c-f", "morgan"]))
    return cross_type, np.array(codes).reshape(n_individuals, n_markers), positions, step, map_function


@settings(max_examples=60, deadline=None)
@given(chromosomes(), st.floats(0.0, 0.9))
def test_rows_sum_to_one(chromosome, missing_fraction):
    cross_type, codes, positions, step, map_function = chromosome
    rng = np.random.default_rng(codes.size)
    codes = np.where(rng.random(codes.shape) < missing_fraction, 0, codes)
    if cross_type == "f2":
        codes = np.where(rng.random(codes.shape) < 0.2, rng.integers(4, 6, codes.shape), codes)
    result = genoprob_chromosome(codes, positions, cross_type, step=step, error_prob=1e-3,
                                 map_function=map_function)
    assert np.all(result.probs >= 0)
    np.testing.assert_allclose(result.probs.sum(axis=2), 1.0, atol=1e-12)


@settings(max_examples=60, deadline=None)
@given(chromosomes())
def test_fully_observed_markers_are_certain_without_errors(chromosome):
    cross_type, codes, positions, step, map_function = chromosome
    result = genoprob_chromosome(codes, positions, cross_type, step=step, error_prob=1e-20,
                                 map_function=map_function)
    at_markers = result.probs[:, result.is_marker]
    observed_state = codes[:, result.marker_index[result.is_marker]] - 1
    prob_of_observed = np.take_along_axis(at_markers, observed_state[..., None], axis=2)[..., 0]
    np.testing.assert_allclose(prob_of_observed, 1.0, atol=1e-6)


def test_zero_error_prob_works_and_conflicts_do_not_divide_by_zero():
    codes = np.array([[1, 3], [1, 1]])
    result = genoprob_chromosome(codes, [5.0, 5.0], "f2", step=1, error_prob=0.0)
    assert np.all(np.isfinite(result.probs))
    np.testing.assert_allclose(result.probs.sum(axis=2), 1.0)
    np.testing.assert_allclose(result.probs[1], [[1, 0, 0], [1, 0, 0]], atol=1e-12)


def test_markers_at_same_position_share_their_information():
    codes = np.array([[3, 0, 1], [0, 2, 0]])
    result = genoprob_chromosome(codes, [0.0, 0.0, 20.0], "f2", step=0, error_prob=1e-4)
    np.testing.assert_allclose(result.probs[:, 0], result.probs[:, 1], atol=1e-10)
    assert result.probs[0, 1, 2] > 0.99 and result.probs[1, 0, 1] > 0.999


# ----------------------------------------------------------------------------------------------
# the grid (R/qtl create.map, stepwidth = "fixed", off.end = 0)
# ----------------------------------------------------------------------------------------------


def test_grid_contains_markers_and_every_step_from_the_first_marker():
    grid = pseudomarker_grid([10.0, 12.5, 12.5, 17.3], 1.0, marker_names=["a", "b", "c", "d"], chromosome="3")
    expected_positions = [10, 11, 12, 12.5, 12.5, 13, 14, 15, 16, 17, 17.3]
    np.testing.assert_allclose(grid.positions, expected_positions)
    assert list(grid.names) == ["a", "c3.loc1", "c3.loc2", "b", "c", "c3.loc3", "c3.loc4", "c3.loc5",
                                "c3.loc6", "c3.loc7", "d"]
    assert list(grid.marker_index) == [0, -1, -1, 1, 2, -1, -1, -1, -1, -1, 3]
    np.testing.assert_array_equal(grid.is_marker, grid.marker_index >= 0)


def test_grid_drops_points_on_markers_and_step_zero_is_markers_only():
    grid = pseudomarker_grid([0.0, 2.0, 4.0], 1.0)
    assert list(grid.names) == ["m1", "loc1", "m2", "loc3", "m3"]
    # as R: 3 * 0.1 != 0.3 in floating point, so the grid point "loc0.3" stays beside marker m2
    grid = pseudomarker_grid([0.0, 0.3, 4.0], 0.1)
    assert len(grid.positions) == 42 and list(grid.names[2:5]) == ["loc0.2", "m2", "loc0.3"]
    grid = pseudomarker_grid([0.0, 2.0, 4.0], 0.0)
    assert list(grid.names) == ["m1", "m2", "m3"]


def test_single_marker_chromosome_gets_five_cM_either_side_as_in_rqtl():
    grid = pseudomarker_grid([30.0], 2.5, chromosome="X")
    np.testing.assert_allclose(grid.positions, [25, 27.5, 30, 32.5, 35])
    assert list(grid.names) == ["cX.loc-5", "cX.loc-2.5", "m1", "cX.loc2.5", "cX.loc5"]


# ----------------------------------------------------------------------------------------------
# map functions
# ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("map_function", ["haldane", "kosambi", "c-f", "morgan"])
def test_map_function_and_inverse(map_function):
    distances = np.array([0.0, 0.1, 1.0, 10.0, 45.0])
    fractions = recombination_fraction(distances, map_function)
    assert fractions[0] == 0 and np.all(np.diff(fractions) > 0) and np.all(fractions < 0.5)
    np.testing.assert_allclose(map_distance(fractions, map_function), distances, rtol=1e-9, atol=1e-12)
    # for small distances every map function is additive: r ~ d / 100
    np.testing.assert_allclose(fractions[1], 0.001, rtol=1e-3)


def test_carter_falconer_solves_its_definition():
    r = recombination_fraction(np.array([5.0, 30.0, 80.0]), "c-f")
    d = 12.5 * np.log((1 + 2 * r) / (1 - 2 * r)) + 25 * np.arctan(2 * r)
    np.testing.assert_allclose(d, [5.0, 30.0, 80.0], rtol=1e-10)


# ----------------------------------------------------------------------------------------------
# whole cross, errors
# ----------------------------------------------------------------------------------------------


def small_cross(cross_type="f2"):
    rng = np.random.default_rng(3)
    genotypes = rng.integers(0, 4, size=(6, 5))
    return Cross(cross_type, [f"i{k}" for k in range(6)], ["a", "b", "c", "d", "e"], ["1", "1", "1", "2", "2"],
                 [0.0, 5.0, 12.0, 3.0, 9.0], genotypes)


def test_calc_genoprob_concatenates_chromosomes_and_selects_individuals():
    cross = small_cross()
    result = calc_genoprob(cross, step=2.0, error_prob=1e-3)
    assert result.states == ("AA", "AB", "BB")
    assert result.probs.shape == (6, len(result.positions), 3)
    np.testing.assert_array_equal(result.marker_index[result.is_marker], np.arange(5))
    assert list(result.chromosomes).count("1") == 8 and list(result.chromosomes).count("2") == 4
    chromosome_2 = genoprob_chromosome(cross.genotypes[:, 3:], [3.0, 9.0], "f2", step=2.0, error_prob=1e-3)
    np.testing.assert_array_equal(result.probs[:, result.chromosomes == "2"], chromosome_2.probs)
    assert "c2.loc2" in result.position_names
    block = calc_genoprob(cross, step=2.0, error_prob=1e-3, individuals=slice(2, 5))
    np.testing.assert_array_equal(block.probs, result.probs[2:5])
    picked = calc_genoprob(cross, step=2.0, error_prob=1e-3, individuals=np.array([5, 0]))
    np.testing.assert_array_equal(picked.probs, result.probs[[5, 0]])


def test_clear_errors():
    generic = Cross("generic", ["i"], ["a"], ["1"], [0.0], [[0.5]])
    with pytest.raises(InputError, match="numeric genotypes"):
        calc_genoprob(generic)
    with pytest.raises(InputError, match="code 4 .*individual 1, marker 2.*cross type bc"):
        genoprob_chromosome(np.array([[1, 4]]), [0, 1], "bc")
    with pytest.raises(InputError, match="non-decreasing"):
        genoprob_chromosome(np.array([[1, 2]]), [5, 1], "bc")
    with pytest.raises(ConfigError, match="map function"):
        genoprob_chromosome(np.array([[1, 2]]), [0, 1], "bc", map_function="haldan")
    with pytest.raises(ConfigError, match="step"):
        genoprob_chromosome(np.array([[1, 2]]), [0, 1], "bc", step=-1)


# ----------------------------------------------------------------------------------------------
# R/qtl itself
# ----------------------------------------------------------------------------------------------

R_SCRIPT = textwrap.dedent("""
    suppressMessages(library(qtl))
    args <- commandArgs(trailingOnly=TRUE)
    type <- args[1]; step <- as.numeric(args[2]); err <- as.numeric(args[3]); mf <- args[4]
    geno <- as.matrix(read.table(args[5]))
    map <- scan(args[6], quiet=TRUE)
    chrom <- scan(args[7], what="", quiet=TRUE)
    geno[geno == 0] <- NA
    cross <- list(geno=list(), pheno=data.frame(y=rnorm(nrow(geno))))
    for (ch in unique(chrom)) {
      cols <- which(chrom == ch)
      d <- geno[, cols, drop=FALSE]
      colnames(d) <- paste0("m", cols)
      m <- map[cols]; names(m) <- colnames(d)
      cross$geno[[ch]] <- structure(list(data=d, map=m), class="A")
    }
    class(cross) <- c(type, "cross")
    cross <- calc.genoprob(cross, step=step, error.prob=err, map.function=mf)
    for (ch in names(cross$geno)) {
      pr <- cross$geno[[ch]]$prob
      pos <- attr(pr, "map")
      for (k in seq_along(pos)) {
        nm <- names(pos)[k]
        if (!grepl("^m[0-9]+$", nm)) nm <- paste0("c", ch, ".", nm)
        cat(ch, nm, sprintf("%.17g", pos[k]), sprintf("%.17g", pr[, k, ]), "\\n")
      }
    }
""")


@pytest.mark.parametrize("cross_type, map_function, step", [
    ("f2", "haldane", 1.0), ("bc", "kosambi", 2.5), ("riself", "haldane", 1.0), ("risib", "kosambi", 0.0),
    ("f2", "c-f", 2.0), ("bc", "morgan", 1.5),
])
def test_matches_rqtl_calc_genoprob(tmp_path, cross_type, map_function, step):
    require("rqtl")
    rng = np.random.default_rng(11)
    n_individuals, chromosomes = 12, ["1"] * 6 + ["2"] * 4 + ["3"]
    positions = np.array([0.0, 3.2, 3.2, 10.0, 17.5, 30.1, 5.0, 7.0, 12.25, 40.0, 22.0])
    max_code = 5 if cross_type == "f2" else 2
    genotypes = rng.integers(0, max_code + 1, size=(n_individuals, len(positions)))
    np.savetxt(tmp_path / "geno.txt", genotypes, fmt="%d")
    np.savetxt(tmp_path / "map.txt", positions, fmt="%.17g")
    (tmp_path / "chrom.txt").write_text(" ".join(chromosomes))
    (tmp_path / "script.R").write_text(R_SCRIPT)
    run = subprocess.run(["Rscript", str(tmp_path / "script.R"), cross_type, str(step), "0.01", map_function,
                          str(tmp_path / "geno.txt"), str(tmp_path / "map.txt"), str(tmp_path / "chrom.txt")],
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    rows = [line.split() for line in run.stdout.strip().splitlines()]
    n_states = 3 if cross_type == "f2" else 2
    r_names = [row[1] for row in rows]
    r_positions = np.array([float(row[2]) for row in rows])
    r_probs = np.array([[float(v) for v in row[3:]] for row in rows]).reshape(len(rows), n_states, n_individuals)
    cross = Cross(cross_type, [f"i{k}" for k in range(n_individuals)], [f"m{k + 1}" for k in range(len(positions))],
                  chromosomes, positions, genotypes)
    ours = calc_genoprob(cross, step=step, error_prob=0.01, map_function=map_function)
    assert list(ours.position_names) == r_names
    np.testing.assert_allclose(ours.positions, r_positions, rtol=0, atol=1e-9)
    np.testing.assert_allclose(ours.probs, r_probs.transpose(2, 0, 1), rtol=1e-6, atol=1e-9)


# ----------------------------------------------------------------------------------------------
# planted truth: simulated crosses (exact meioses) against the model's calibration
# ----------------------------------------------------------------------------------------------


def calibration_bias(cross, true_genotypes):
    """Per missing genotype, P(true state) minus its expectation E[sum_s p_s^2] under the model.

    Returns (mean bias, z score with individuals as independent clusters).
    """
    result = calc_genoprob(cross, step=0, error_prob=1e-4)
    missing = cross.genotypes == 0
    probs = result.probs[:, result.is_marker]
    prob_of_truth = np.take_along_axis(probs, true_genotypes[..., None].astype(int), axis=2)[..., 0]
    per_individual = np.where(missing, prob_of_truth - (probs ** 2).sum(axis=2), 0.0).sum(axis=1)
    z_score = per_individual.mean() / (per_individual.std() / np.sqrt(len(per_individual)))
    return per_individual.sum() / missing.sum(), z_score


def simulated(cross_type):
    from qtlhpc.genetics.simulate import simulate_cross

    return simulate_cross(cross_type, 1000, n_chromosomes=2, chromosome_length_cM=60, markers_per_chromosome=13,
                          missing_rate=0.4, seed=5)


@pytest.mark.parametrize("cross_type", ["bc", "f2"])
def test_probabilities_are_calibrated_on_simulated_crosses(cross_type):
    cross, truth = simulated(cross_type)
    bias, z_score = calibration_bias(cross, truth.true_genotypes)
    assert abs(z_score) < 4.5, (bias, z_score)


@pytest.mark.parametrize("cross_type", ["riself", "risib"])
def test_ril_probabilities_nearly_calibrated_and_better_than_without_map_expansion(cross_type):
    # the genotypes of a RIL along a chromosome are not exactly a Markov chain (Haldane & Waddington
    # 1931; Broman 2005), so R/qtl's HMM is a close approximation there, not exact
    cross, truth = simulated(cross_type)
    bias, _ = calibration_bias(cross, truth.true_genotypes)
    cross.cross_type = "bc"      # the same data without the RIL map expansion
    bias_without_expansion, _ = calibration_bias(cross, truth.true_genotypes)
    assert abs(bias) < 0.015 and abs(bias) < abs(bias_without_expansion) / 3, (bias, bias_without_expansion)


# ----------------------------------------------------------------------------------------------
# joint probabilities of two positions (R/qtl calc.pairprob)
# ----------------------------------------------------------------------------------------------


def brute_force_pairprob(codes, positions, cross_type, error_prob, map_function):
    """``P(state_j = a, state_k = b | codes)`` for every ``j, k`` by enumerating all gamete paths.

    Returns ``(n_positions, n_positions, n_states, n_states)``; conventions of brute_force_genoprob.
    """
    n_positions = len(positions)
    fractions = reference_fraction(np.diff(positions), map_function)
    if cross_type == "riself":
        fractions = 2 * fractions / (1 + 2 * fractions)
    elif cross_type == "risib":
        fractions = 4 * fractions / (1 + 6 * fractions)
    n_gametes, n_states = (2, 3) if cross_type == "f2" else (1, 2)
    joint = np.zeros((n_positions, n_positions, n_states, n_states))
    j_index, k_index = np.meshgrid(np.arange(n_positions), np.arange(n_positions), indexing="ij")
    for paths in itertools.product(itertools.product((0, 1), repeat=n_positions), repeat=n_gametes):
        states = np.sum(paths, axis=0)
        weight = np.prod([gamete_path_probability(p, fractions) for p in paths])
        for j in range(n_positions):
            weight *= reference_emission(int(codes[j]), int(states[j]), n_states, error_prob)
        joint[j_index, k_index, states[j_index], states[k_index]] += weight
    return joint / joint.sum(axis=(2, 3), keepdims=True)


@pytest.mark.parametrize("cross_type, codes, positions, step", CASES)
def test_pair_probabilities_match_enumeration_of_all_paths(cross_type, codes, positions, step):
    error_prob, map_function = 0.02, "kosambi"
    codes = np.array(codes)
    marginal = genoprob_chromosome(codes, positions, cross_type, step=step, error_prob=error_prob,
                                   map_function=map_function)
    n_positions = len(marginal.positions)
    first, second = np.triu_indices(n_positions, k=1)
    order = np.random.default_rng(1).permutation(len(first))  # any pair order
    first, second = first[order], second[order]
    joint = pair_probabilities(codes, positions, cross_type, first, second, step=step, error_prob=error_prob,
                               map_function=map_function)
    n_states = marginal.probs.shape[2]
    assert joint.shape == (len(codes), len(first), n_states, n_states)
    for i in range(len(codes)):
        full_codes = np.zeros(n_positions, dtype=int)
        full_codes[marginal.is_marker] = codes[i, marginal.marker_index[marginal.is_marker]]
        expected = brute_force_pairprob(full_codes, marginal.positions, cross_type, error_prob, map_function)
        np.testing.assert_allclose(joint[i], expected[first, second], rtol=1e-9, atol=1e-12)
    # the margins of the joint are the single-position probabilities
    np.testing.assert_allclose(joint.sum(axis=3), marginal.probs[:, first], rtol=1e-10, atol=1e-13)
    np.testing.assert_allclose(joint.sum(axis=2), marginal.probs[:, second], rtol=1e-10, atol=1e-13)


def test_pair_probabilities_of_long_chromosome_margins_and_subsets():
    """Many positions (scaling must prevent underflow); a subset of pairs equals the same pairs of all."""
    rng = np.random.default_rng(4)
    positions = np.sort(rng.uniform(0, 150, 60))
    codes = rng.integers(0, 6, size=(7, 60))
    marginal = genoprob_chromosome(codes, positions, "f2", step=2.0, error_prob=0.01)
    n_positions = len(marginal.positions)
    assert n_positions > 100
    first, second = np.triu_indices(n_positions, k=1)
    joint = pair_probabilities(codes, positions, "f2", first, second, step=2.0, error_prob=0.01)
    assert np.all(np.isfinite(joint))
    np.testing.assert_allclose(joint.sum(axis=3), marginal.probs[:, first], atol=1e-10)
    np.testing.assert_allclose(joint.sum(axis=2), marginal.probs[:, second], atol=1e-10)
    pick = rng.choice(len(first), 25, replace=False)
    subset = pair_probabilities(codes, positions, "f2", first[pick], second[pick], step=2.0, error_prob=0.01)
    np.testing.assert_allclose(subset, joint[:, pick], rtol=1e-12, atol=1e-15)
    # far apart and unlinked-looking: close to independence only when the markers say nothing
    empty = pair_probabilities(np.zeros((1, 60), int), positions, "f2", [0], [n_positions - 1], step=2.0)
    np.testing.assert_allclose(empty[0, 0].sum(axis=1), [0.25, 0.5, 0.25], atol=1e-12)


def test_pair_probabilities_reject_bad_pairs():
    codes = np.array([[1, 2, 1]])
    with pytest.raises(InputError, match=r"pair 1 is \(2, 2\)"):
        pair_probabilities(codes, [0.0, 5.0, 9.0], "bc", [0, 2], [1, 2], step=0.0)
    with pytest.raises(InputError, match="one length"):
        pair_probabilities(codes, [0.0, 5.0, 9.0], "bc", [0, 1], [1], step=0.0)
