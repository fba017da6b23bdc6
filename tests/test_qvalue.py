"""Storey q-values: Bioconductor qvalue 2.30.0 run live (one Rscript for every case), FDR calibration on
simulated nulls, a planted truth, and errors worded as R's."""

import re
import shutil
import subprocess

import numpy as np
import pytest
from scipy.special import ndtr

from qtlhpc.errors import InputError
from qtlhpc.stats.fdr import benjamini_hochberg
from qtlhpc.stats.qvalue import DEFAULT_LAMBDAS, empirical_pvalues, pi0_estimate, qvalues
from requirements import skip_or_fail

EXACT = 1e-12  # relative: exact rules (counts, bootstrap, one lambda, q given pi0, empPvals)
SMOOTHER = 1e-12  # relative: the smooth.spline port, default lambdas (worst seen 2.4e-13; spec allows 2e-5)
SMOOTHER_THINNED = 5e-11  # relative: 50 or more lambdas, thinned knots, a worse conditioned system (worst 1.9e-11)


def _mixture(m, null_fraction, seed, shift=3.0):
    """``m`` p-values: a ``null_fraction`` of uniforms, the rest one-sided z-test p-values of N(shift, 1)."""
    rng = np.random.default_rng(seed)
    n_null = round(m * null_fraction)
    p = np.concatenate([rng.uniform(size=n_null), ndtr(-rng.normal(shift, 1.0, size=m - n_null))])
    return rng.permutation(p)


def _with_nan():
    p = _mixture(400, 0.7, 6)
    p[[3, 50, 51]] = np.nan
    return p


P_INPUTS = {
    "mix80": _mixture(2000, 0.8, 1),
    "mix50": _mixture(5000, 0.5, 2, shift=2.0),
    "mix95": _mixture(1000, 0.95, 3),
    "null": _mixture(1500, 1.0, 4),
    "ties": np.round(_mixture(800, 0.7, 5), 2),  # ties, and p-values equal to lambdas (>= counts them)
    "small": np.array([0.001, 0.004, 0.02, 0.03, 0.2, 0.35, 0.5, 0.62, 0.8, 0.91, 0.96, 0.99]),
    "with_nan": _with_nan(),
    "fine_lambdas": np.round(np.arange(1, 96) * 0.01, 10),  # 95 lambdas: R thins the spline's knots
    # the largest p-value is below 0.95
    "low_max": np.minimum(_mixture(300, 0.8, 7), 0.9),
    # pi0(lambda) falls to 0 at lambda = 0.8, and the smoother extrapolates below 0 at 0.95
    "steep": np.append(np.random.default_rng(8).uniform(0, 0.8, size=999), 0.96),
    "outside": np.array([0.1, 0.5, 1.2, 0.96]),
}

# name: (p input, arguments of R's qvalue(), keyword arguments of qvalues())
R_RUNS = {
    "mix80": ("mix80", "", {}),
    "mix50": ("mix50", "", {}),
    "mix95": ("mix95", "", {}),
    "null": ("null", "", {}),
    "ties": ("ties", "", {}),
    "small": ("small", "", {}),
    "df5": ("mix50", "smooth.df = 5", {"smooth_df": 5}),
    "fine_lambdas": ("mix80", 'lambda = rd("fine_lambdas")', {"lambdas": P_INPUTS["fine_lambdas"]}),
    "bootstrap_mix80": ("mix80", 'pi0.method = "bootstrap"', {"method": "bootstrap"}),
    "bootstrap_ties": ("ties", 'pi0.method = "bootstrap"', {"method": "bootstrap"}),
    "bootstrap_small": ("small", 'pi0.method = "bootstrap"', {"method": "bootstrap"}),
    "lambda_half": ("mix80", "lambda = 0.5", {"lambdas": 0.5}),
    "lambda_on_tie": ("ties", "lambda = 0.3", {"lambdas": 0.3}),
    "pi0_given": ("mix80", "pi0 = 0.7", {"pi0": 0.7}),
    "bh": ("ties", "pi0 = 1", {"pi0": 1.0}),
    "nan_omitted": ("with_nan", "", {"nan_policy": "omit"}),
}

# name: (p input, arguments of R's qvalue(), keyword arguments of qvalues(), words in R's message, in ours).
# qvalue 2.30.0 has no check of max(p) against max(lambda): its pi0(lambda) becomes NA and smooth.spline
# fails; ours says what later qvalue versions say.
R_ERRORS = {
    "max_below_lambda": ("low_max", "", {}, "missing or infinite values in inputs are not allowed",
                         "maximum p-value is smaller than lambda range"),
    "pi0_not_positive": ("steep", "", {}, "The estimated pi0 <= 0", "The estimated pi0 <= 0"),
    "outside_unit": ("outside", "", {}, "p-values not in valid range [0, 1]", "p-values not in valid range [0, 1]"),
    "pi0_zero": ("mix80", "pi0 = 0", {"pi0": 0.0}, "pi0 is not (0,1]", "pi0 is not (0,1]"),
}


def _statistics():
    """Observed statistics (300,) and their nulls (300, 40), rounded so that many tie, plus one above all."""
    rng = np.random.default_rng(11)
    observed = np.round(rng.normal(size=300) + (rng.uniform(size=300) < 0.2) * 2.0, 1)
    observed[0] = 10.0
    null = np.round(rng.normal(size=(300, 40)), 1)
    return observed, null


R_SCRIPT = """
suppressPackageStartupMessages(library(qvalue))
dir <- "{directory}"
rd <- function(name) {{
  f <- file.path(dir, paste0(name, ".in")); readBin(f, "double", n = file.size(f) / 8, endian = "little")
}}
wr <- function(name, x) writeBin(as.double(x), file.path(dir, paste0(name, ".out")), endian = "little")
run <- function(name, call) {{
  q <- tryCatch(call, error = function(e) e)
  if (inherits(q, "error")) {{
    writeLines(conditionMessage(q), file.path(dir, paste0(name, ".err"))); return(invisible())
  }}
  for (field in c("pi0", "lambda", "pi0.lambda", "pi0.smooth", "qvalues")) wr(paste0(name, "-", field), q[[field]])
}}
{runs}
stat <- rd("emp-statistics"); null <- rd("emp-null")
wr("emp-pooled", empPvals(stat, null, pool = TRUE))
wr("emp-single", empPvals(stat, matrix(null, nrow = length(stat)), pool = FALSE))
"""


def _r_call(name, p_name, arguments):
    extra = f", {arguments}" if arguments else ""
    return f'run("{name}", qvalue(rd("{p_name}"){extra}, lfdr.out = FALSE))'


@pytest.fixture(scope="module")
def r_qvalue():
    """Rscript with Bioconductor qvalue: skip the test without them (fail under CI)."""
    if shutil.which("Rscript") is None:
        skip_or_fail("Rscript is not on PATH (apt-get install r-base-core r-bioc-qvalue)")
    run = subprocess.run(["Rscript", "-e", "library(qvalue)"], capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        last = (run.stderr.strip().splitlines() or ["no message"])[-1]
        skip_or_fail(f"`Rscript -e 'library(qvalue)'` failed: {last} (apt-get install r-bioc-qvalue)")


@pytest.fixture(scope="module")
def reference(r_qvalue, tmp_path_factory):
    """Every R result of R_RUNS, R_ERRORS and empPvals, from one Rscript run: ``{name: {field: array}}``
    and ``{name: message}`` for the errors."""
    directory = tmp_path_factory.mktemp("qvalue_r")
    for name, values in P_INPUTS.items():
        values.astype("<f8").tofile(directory / f"{name}.in")
    observed, null = _statistics()
    observed.astype("<f8").tofile(directory / "emp-statistics.in")
    null.ravel(order="F").astype("<f8").tofile(directory / "emp-null.in")  # R's matrix(nrow = 300): column-major
    calls = [_r_call(name, p_name, arguments) for name, (p_name, arguments, _) in R_RUNS.items()]
    calls += [_r_call(name, p_name, arguments) for name, (p_name, arguments, *_) in R_ERRORS.items()]
    script = R_SCRIPT.format(directory=directory, runs="\n".join(calls))
    run = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr

    def read(stem):
        return np.fromfile(directory / f"{stem}.out", dtype="<f8")

    results = {name: {field: read(f"{name}-{field}") for field in ("pi0", "lambda", "pi0.lambda", "pi0.smooth",
                                                                     "qvalues")}
               for name in R_RUNS if not (directory / f"{name}.err").exists()}
    errors = {name: (directory / f"{name}.err").read_text().strip() for name in R_ERRORS
              if (directory / f"{name}.err").exists()}
    return {"runs": results, "errors": errors, "emp-pooled": read("emp-pooled"), "emp-single": read("emp-single")}


def _assert_relative(actual, expected, rtol, what):
    actual, expected = np.asarray(actual, dtype=float), np.asarray(expected, dtype=float)
    assert actual.shape == expected.shape, what
    np.testing.assert_array_equal(np.isnan(actual), np.isnan(expected), err_msg=what)
    np.testing.assert_allclose(actual, expected, rtol=rtol, atol=0, equal_nan=True, err_msg=what)


def test_default_lambdas_are_rs_grid_bit_for_bit(reference):
    np.testing.assert_array_equal(DEFAULT_LAMBDAS, reference["runs"]["mix80"]["lambda"])


@pytest.mark.parametrize("name", list(R_RUNS))
def test_qvalues_match_r(reference, name):
    p_name, _, keywords = R_RUNS[name]
    expected = reference["runs"][name]
    result = qvalues(P_INPUTS[p_name], **keywords)
    smoothed = expected["pi0.smooth"].size > 0
    tolerance = EXACT if not smoothed else SMOOTHER_THINNED if expected["lambda"].size >= 50 else SMOOTHER
    _assert_relative(result.pi0, expected["pi0"][0], tolerance, "pi0")
    _assert_relative(result.qvalues, expected["qvalues"], tolerance, "q-values")
    if "pi0" in keywords:
        assert result.pi0_estimate is None and expected["lambda"].size == 0
        return
    estimate = result.pi0_estimate
    np.testing.assert_array_equal(estimate.lambdas, expected["lambda"])
    _assert_relative(estimate.pi0_lambda, expected["pi0.lambda"], EXACT, "pi0(lambda)")
    if smoothed:
        _assert_relative(estimate.fitted, expected["pi0.smooth"], tolerance, "smoother fitted values")
    else:
        assert estimate.fitted is None


def test_cases_reach_the_rules_they_check(reference):
    """The reference cases are not trivial: pi0 < 1 from the smoother and the bootstrap, the capped case is
    capped, the tie case has p-values equal to lambdas, and the bootstrap picks an interior lambda."""
    runs = reference["runs"]
    assert runs["mix80"]["pi0"][0] < 0.9 and runs["bootstrap_mix80"]["pi0"][0] < 0.9
    assert runs["null"]["pi0"][0] == 1.0
    assert np.isin(P_INPUTS["ties"], DEFAULT_LAMBDAS).sum() > 10 and (P_INPUTS["ties"] == 0.3).any()
    assert runs["bootstrap_ties"]["pi0"][0] not in runs["bootstrap_ties"]["pi0.lambda"][[0, -1]]


def test_empirical_pvalues_match_r_pooled_strict_and_per_test_inclusive(reference):
    observed, null = _statistics()
    assert np.isin(observed, null).sum() > 100  # ties between observed and null values: > and >= differ
    pooled = empirical_pvalues(observed, null, pool=True)
    single = empirical_pvalues(observed, null, pool=False)
    _assert_relative(pooled, reference["emp-pooled"], EXACT, "pooled")
    _assert_relative(single, reference["emp-single"], EXACT, "per test")
    # the slow obvious rules
    flat = null.reshape(-1)
    np.testing.assert_array_equal(pooled, [max((flat > s).sum(), 1) / flat.size for s in observed])
    np.testing.assert_array_equal(single, [max((row >= s).sum(), 1) / row.size for s, row in zip(observed, null)])
    assert pooled[0] == 1 / flat.size and single[0] == 1 / null.shape[1]


@pytest.mark.parametrize("name", list(R_ERRORS))
def test_errors_as_r(reference, name):
    p_name, _, keywords, r_words, our_words = R_ERRORS[name]
    assert r_words in reference["errors"][name]
    with pytest.raises(InputError, match=re.escape(our_words)):
        qvalues(P_INPUTS[p_name], **keywords)


def test_nan_refused_by_default_naming_count_and_first_index():
    with pytest.raises(InputError, match=r"3 of 400 p-values are NaN, the first at index 3; .*nan_policy='omit'"):
        qvalues(P_INPUTS["with_nan"])
    matrix = P_INPUTS["with_nan"].reshape(20, 20)
    with pytest.raises(InputError, match=r"the first at index \(0, 3\)"):
        pi0_estimate(matrix)
    with pytest.raises(InputError, match="statistics are NaN"):
        empirical_pvalues([1.0, np.nan], [0.5, 2.0])


def test_argument_errors_say_what_was_expected():
    p = P_INPUTS["mix80"]
    with pytest.raises(InputError, match="at least 4 values"):
        qvalues(p, lambdas=[0.2, 0.5, 0.7])
    with pytest.raises(InputError, match=r"within \[0, 1\)"):
        pi0_estimate(p, lambdas=[0.1, 0.2, 0.5, 1.0])
    with pytest.raises(InputError, match="did you mean 'bootstrap'"):
        pi0_estimate(p, method="bootsrap")
    with pytest.raises(InputError, match=r"smooth_df=1 must lie in \(1, 19\]"):
        pi0_estimate(p, smooth_df=1)
    with pytest.raises(InputError, match="looks transposed"):
        empirical_pvalues(np.zeros(3), np.zeros((5, 3)), pool=False)


def test_shapes_are_kept_and_pi0_one_is_benjamini_hochberg():
    p = P_INPUTS["ties"].reshape(40, 20)
    result = qvalues(p, pi0=1.0)
    assert result.qvalues.shape == (40, 20) and result.n_tests == 800
    np.testing.assert_array_equal(result.qvalues, benjamini_hochberg(p))
    np.testing.assert_array_equal(qvalues(p).qvalues, qvalues(p.reshape(-1)).qvalues.reshape(40, 20))


def _mean_and_se(values):
    values = np.asarray(values, dtype=float)
    return values.mean(), values.std(ddof=1) / np.sqrt(values.size)


def test_fdr_is_controlled_on_all_null_data():
    """m = 2000 uniform p-values, 200 replicates: every call is false, so FDP = 1 if anything is called at
    q <= 0.05; its mean (the FDR, here the family-wise error rate) must be <= 0.05 + 3 SE, for BH and q."""
    fdp = {"bh": [], "q": []}
    for seed in range(200):
        p = np.random.default_rng(1000 + seed).uniform(size=2000)
        fdp["bh"].append(float((benjamini_hochberg(p) <= 0.05).any()))
        fdp["q"].append(float((qvalues(p).qvalues <= 0.05).any()))
    for name, values in fdp.items():
        mean, se = _mean_and_se(values)
        assert mean <= 0.05 + 3 * max(se, np.sqrt(0.05 * 0.95 / 200)), (name, mean, se)


def test_planted_truth_pi0_and_fdr():
    """80% null uniforms, 20% strong signals (z ~ N(4, 1)), m = 2000, 100 replicates.

    pi0: the smoother's spar depends on the lambda grid only, so its fitted value is linear in pi0(lambda),
    whose mean is 0.8 plus the signals' share above lambda (< 0.002 here): the mean estimate must be within
    3 SE + 0.002 of 0.8, and one replicate's spread (SD 0.059 measured at this m) below 0.08.
    FDR: the mean FDP of the calls at q <= 0.05 is <= 0.05 + 3 SE, with most signals called."""
    estimates, fdp, power = [], [], []
    for seed in range(100):
        rng = np.random.default_rng(2000 + seed)
        is_null = np.arange(2000) < 1600
        p = np.where(is_null, rng.uniform(size=2000), ndtr(-rng.normal(4.0, 1.0, size=2000)))
        result = qvalues(p)
        called = result.qvalues <= 0.05
        estimates.append(result.pi0)
        fdp.append((called & is_null).sum() / max(called.sum(), 1))
        power.append((called & ~is_null).sum() / 400)
    mean, se = _mean_and_se(estimates)
    assert abs(mean - 0.8) <= 3 * se + 0.002 and se * np.sqrt(len(estimates)) < 0.08, (mean, se)
    mean, se = _mean_and_se(fdp)
    assert mean <= 0.05 + 3 * se, (mean, se)
    assert np.mean(power) > 0.8  # the test is not passed by calling nothing
