"""CAL statistics: pooled permutation p-values, pi0 and q-values per topology against Bioconductor qvalue run
live (with ties and censored values), null calibration of the q-value calls, and parsimony picking the
single-input topology for a single-locus target."""

import shutil
import subprocess

import numpy as np
import pytest

from qtlhpc.methods.cal import search_networks
from qtlhpc.methods.cal.kernels import optimal_output
from qtlhpc.methods.cal.simulate import ril_loci
from qtlhpc.methods.cal.statistics import parsimony, topology_qvalues
from qtlhpc.methods.cal.topology import catalogue, topology
from requirements import skip_or_fail

R_SCRIPT = """
suppressMessages(library(qvalue))
d <- "{directory}"
rd <- function(name) readBin(file.path(d, name), "double", n = 1e7, endian = "little")
obs <- rd("observed.in"); cens <- rd("censored.in") > 0.5
null <- rd("null.in")
p <- rep(1, length(obs))
p[!cens] <- empPvals(obs[!cens], null, pool = TRUE)
q <- qvalue(p)
writeBin(p, file.path(d, "p.out"), endian = "little")
writeBin(q$qvalues, file.path(d, "q.out"), endian = "little")
writeBin(q$pi0, file.path(d, "pi0.out"), endian = "little")
"""


def _r_qvalues(directory, observed, censored, null):
    np.asarray(observed, "<f8").tofile(directory / "observed.in")
    np.asarray(censored, "<f8").tofile(directory / "censored.in")
    np.asarray(null, "<f8").tofile(directory / "null.in")
    run = subprocess.run(["Rscript", "-e", R_SCRIPT.format(directory=directory)], capture_output=True, text=True,
                         timeout=300)
    assert run.returncode == 0, run.stderr
    return tuple(np.fromfile(directory / f"{name}.out", dtype="<f8") for name in ("p", "q", "pi0"))


@pytest.fixture(scope="module")
def rscript():
    if shutil.which("Rscript") is None:
        skip_or_fail("Rscript is not on PATH (apt-get install r-base-core r-bioc-qvalue)")
    run = subprocess.run(["Rscript", "-e", "library(qvalue)"], capture_output=True, text=True, timeout=120)
    if run.returncode != 0:
        skip_or_fail("`Rscript -e 'library(qvalue)'` failed (apt-get install r-bioc-qvalue)")


@pytest.mark.parametrize("case", ["continuous", "ties"])
def test_pooled_qvalues_equal_r(rscript, tmp_path, case):
    # one topology: 300 targets x 40 replicates of the null; censored values (-inf in the null, p = 1 observed)
    rng = np.random.default_rng(17 if case == "continuous" else 18)
    s, b = 300, 40
    null = rng.gamma(4.0, 1.5, size=(b, s, 1))
    observed = rng.gamma(4.0, 1.5, size=(s, 1))
    observed[:60, 0] += rng.gamma(2.0, 3.0, size=60)
    if case == "ties":  # scores on a grid: observed values tie with null values and with each other
        null, observed = np.round(null * 2) / 2, np.round(observed * 2) / 2
    f_tol = 3.0
    null_censored, observed_censored = null < f_tol, observed < f_tol
    null = np.where(null_censored, f_tol, null)          # as the search stores them
    observed = np.where(observed_censored, f_tol, observed)
    p, q, pi0, notes = topology_qvalues(observed, observed_censored, null, null_censored)
    assert not notes
    r_null = np.where(null_censored, -np.inf, null)[:, :, 0].ravel()
    rp, rq, rpi0 = _r_qvalues(tmp_path, observed[:, 0], observed_censored[:, 0], r_null)
    np.testing.assert_allclose(p[:, 0], rp, rtol=1e-12, atol=0)
    np.testing.assert_allclose(pi0[0], rpi0[0], rtol=1e-10)
    np.testing.assert_allclose(q[:, 0], rq, rtol=1e-10)
    if case == "ties":
        assert np.intersect1d(observed[~observed_censored], null[~null_censored]).size > 10


def test_parsimony_rule():
    q = np.array([[0.05, 0.05, 0.2], [0.3, 0.02, 0.02], [0.5, 0.4, 0.3], [0.01, 0.01, 0.01]])
    scores = np.array([[5.0, 6.0, 7.0], [1.0, 6.0, 9.0], [0, 0, 0], [3.0, 4.0, 4.0]])
    n_inputs = np.array([1, 2, 2])
    selected, selected_q = parsimony(q, scores, n_inputs, 0.1)
    # tie in q -> fewer inputs; tie in q and inputs -> larger score; then catalogue order
    assert selected.tolist() == [0, 2, -1, 0]
    assert selected_q[2] != selected_q[2] and selected_q[1] == 0.02
    # p-values at the permutation floor tie whatever their q: fewer inputs wins; a floored p beats a lower q
    p = np.array([[0.01, 0.01, 0.5], [0.02, 0.01, 0.01], [0.5, 0.5, 0.5], [0.01, 0.02, 0.02]])
    q2 = np.array([[0.08, 0.03, 0.6], [0.01, 0.06, 0.05], [0.9, 0.9, 0.9], [0.09, 0.01, 0.01]])
    selected, _ = parsimony(q2, scores, n_inputs, 0.1, p, np.full(3, 0.01))
    assert selected.tolist() == [0, 2, -1, 0]   # row 1: 1 and 2 floored, equal inputs: larger score


def _search_and_select(targets, loci, tops, replicates, f_tol, seed=3):
    found = search_networks(targets, loci, tops, tolerance=f_tol, seed=seed, replicates=range(replicates + 1))
    p, q, pi0, _ = topology_qvalues(found["score"][0], found["censored"][0], found["score"][1:],
                                    found["censored"][1:])
    observed = np.where(found["censored"][0], -np.inf, found["score"][0])
    floors = np.full(len(tops), 1.0 / found["score"][1:, :, 0].size)
    return found, q, parsimony(q, observed, [t.n_inputs for t in tops], 0.1, p, floors)


def test_parsimony_picks_the_single_input_for_a_single_locus_target():
    rng = np.random.default_rng(41)
    loci, _ = ril_loci(rng, 24, 40, 4)
    tops = catalogue("singles+paper7")
    targets = rng.normal(size=(40, 24))
    planted = [0, 1, 2, 3, 4]
    for g, column in zip(planted, (3, 11, 19, 27, 35)):
        targets[g] = loci[:, column] + 0.2 * targets[g]
    targets[5] = (1 - loci[:, 8]) + 0.2 * targets[5]          # the B6 allele: ~A
    f_tol = float(np.quantile([optimal_output(t)[1] for t in targets], 0.5))
    found, q, (selected, _) = _search_and_select(targets, loci, tops, 30, f_tol)
    names = [t.name for t in tops]
    assert [names[s] for s in selected[planted]] == ["A"] * len(planted)
    assert names[selected[5]] == "~A"
    # the single-input network found is the planted locus
    assert found["inputs"][0, planted, names.index("A"), 0].tolist() == [3, 11, 19, 27, 35]
    # multi-input topologies also reach q <= 0.1 for these targets (they contain the locus): parsimony decides
    assert np.sum(q[planted] <= 0.1) > len(planted)


@pytest.mark.slow
def test_null_calibration_of_qvalue_calls():
    # data with no planted network: calls at q <= 0.1 stay within their expected false count.  Under the global
    # null every call is false, and FDR control at 0.1 bounds the chance of any call in a topology by about 0.1;
    # the paper's check (10 permuted data sets) found a mean of at most 0.6 significant clusters per topology.
    tops = [topology(t) for t in ("A", "~A", "A&B", "A|B", "A&~B")]
    families, with_calls, calls = 0, 0, 0
    for k in range(6):
        rng = np.random.default_rng(100 + k)
        loci, _ = ril_loci(rng, 20, 30, 3)
        targets = rng.normal(size=(40, 20))
        f_tol = float(np.quantile([optimal_output(t)[1] for t in targets], 0.25))
        _, q, _ = _search_and_select(targets, loci, tops, 24, f_tol, seed=k)
        n_calls = np.sum(q <= 0.1, axis=0)
        families += len(tops)
        with_calls += int(np.sum(n_calls > 0))
        calls += int(n_calls.sum())
    assert with_calls <= 0.1 * families + 3 * np.sqrt(0.1 * 0.9 * families), (with_calls, families)
    assert calls / families <= 0.6, calls
