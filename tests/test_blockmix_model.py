"""The block-mixture model on genotype probabilities and planted truth:

* genoprob at a QTL between flanking backcross markers equals the closed-form flanking-marker formulas (A1.4);
* the scan statistic is >= 0 everywhere, exactly 0 where genotype is uninformative, small on unlinked null data;
* the kernels' own exponential agrees with numpy's;
* planted replicates of the paper's design (n = 208, six markers on 50 cM, eQTL at 24 cM): the right K, the
  planted clusters, the position within 2 cM (4 replicates here; 20 under ``slow``; 100 under ``paper``).
"""

import numpy as np
import pytest

from qtlhpc.genetics.genoprob import genoprob_chromosome, recombination_fraction
from qtlhpc.methods.blockmix import fitting, kernels
from qtlhpc.methods.blockmix.simulate import Design, simulate
from qtlhpc.methods.blockmix.study import adjusted_rand, analyse_replicate


def haldane(d):
    return 0.5 * (1 - np.exp(-2 * d / 100))


@pytest.mark.parametrize("qtl", [13.0, 17.0, 21.0])
def test_genoprob_between_flanking_markers_equals_backcross_formulas(qtl):
    """Markers at 0, 10 and 25 cM, every genotype combination of the flanking pair (10, 25) present; the QTL
    genotype probability P(AB | flanking markers) of spec A1.4 (genotype 1 = heterozygote AB)."""
    combos = np.array([(a, b, c) for a in (1, 2) for b in (1, 2) for c in (1, 2)], dtype=np.int8)
    result = genoprob_chromosome(combos, np.array([0.0, 10.0, 25.0]), "bc", step=1.0, error_prob=1e-12)
    column = int(np.flatnonzero(np.isclose(result.positions, qtl))[0])
    r1, r2 = haldane(qtl - 10), haldane(25 - qtl)
    r = r1 + r2 - 2 * r1 * r2
    assert r == pytest.approx(recombination_fraction(15.0, "haldane"))
    for row, (_, left, right) in enumerate(combos):
        A, B = left == 2, right == 2       # 2 = AB
        expected = {(True, True): (1 - r1) * (1 - r2) / (1 - r), (True, False): (1 - r1) * r2 / r,
                    (False, True): r1 * (1 - r2) / r, (False, False): r1 * r2 / (1 - r)}[(A, B)]
        assert result.probs[row, column, 1] == pytest.approx(expected, abs=1e-9)


def test_kernel_exponential_matches_numpy():
    near = -np.random.default_rng(0).uniform(0, 5, 20000)
    np.testing.assert_allclose(kernels.exp_shifted(near), np.exp(near), rtol=6e-16, atol=0)
    far = -np.concatenate([np.linspace(0, 708, 7081), np.random.default_rng(1).exponential(30, 5000)])
    np.testing.assert_allclose(kernels.exp_shifted(far), np.exp(far), rtol=4e-14, atol=0)
    np.testing.assert_allclose(kernels.exp_shifted(near + 3.0, 3.0), np.exp(near), rtol=2e-15)
    assert kernels.exp_shifted(np.array([-800.0]))[0] < 1e-300


@pytest.fixture(scope="module")
def planted():
    design = Design(n_individuals=120, n_genes=40, n_clusters=3, effect_sd=0.8)
    data = simulate(design, 21, 0)
    fit = fitting.fit_start(data.expression, 3, 2, 21, 0, fitting.EMSettings(tol=1e-7, max_iter=300))
    null = fitting.fit_null(data.expression, fit.mu, fit.var, fit.rho, fit.pi)
    return design, data, null


def test_statistic_is_nonnegative_at_every_position(planted):
    design, data, null = planted
    geno = genoprob_chromosome(data.genotypes, data.marker_positions, "bc", step=2.5)
    lr = np.array([fitting.fit_position(data.expression, np.ascontiguousarray(geno.probs[:, p]), null).lr
                   for p in range(geno.probs.shape[1])])
    assert lr.min() >= 0.0
    assert abs(geno.positions[np.argmax(lr)] - design.qtl_position_cM) <= 5.0


def test_statistic_is_zero_where_genotype_is_uninformative(planted):
    """pi_iq = 1/2 for every individual: the symmetric start is a fixed point of EM, so LR = 0 even though the
    data carry an eQTL; every variance structure."""
    _, data, _ = planted
    n = data.expression.shape[0]
    for variance in ("cluster", "common", "block"):
        settings = fitting.EMSettings(variance=variance)
        start = fitting.fit_start(data.expression, 3, 2, 21, 0, fitting.EMSettings(variance, tol=1e-7, max_iter=300))
        null = fitting.fit_null(data.expression, start.mu, start.var, start.rho, start.pi, settings)
        fit = fitting.fit_position(data.expression, np.full((n, 2), 0.5), null, settings)
        assert fit.lr == pytest.approx(0.0, abs=1e-6 * abs(fit.cl_null))


def test_statistic_is_small_on_unlinked_genotypes():
    """Null data (no eQTL) and genotypes drawn independently of them: LR of the order of its K degrees of
    freedom, far below the planted eQTL's LR."""
    design = Design(n_individuals=120, n_genes=40, n_clusters=3, effect_sd=0.0)
    data = simulate(design, 5, 1)
    fit = fitting.fit_start(data.expression, 3, 2, 5, 0, fitting.EMSettings(tol=1e-7, max_iter=300))
    null = fitting.fit_null(data.expression, fit.mu, fit.var, fit.rho, fit.pi)
    genotypes = np.random.default_rng(3).integers(0, 2, size=120)
    lr = fitting.fit_position(data.expression, np.eye(2)[genotypes], null).lr
    assert 0.0 <= lr < 60.0


def test_adjusted_rand_index():
    assert adjusted_rand(np.array([0, 0, 1, 1]), np.array([5, 5, 2, 2])) == 1.0
    # the classic example (Hubert & Arabie): 0.24242...
    a = np.array([0, 0, 0, 1, 1, 1])
    b = np.array([0, 0, 1, 1, 2, 2])
    assert adjusted_rand(a, b) == pytest.approx(0.24242424242424243)


SMALL = Design(n_genes=60, n_clusters=3, effect_sd=0.5)


def _summarise(results):
    right_k = sum(r.k_hat == SMALL.n_clusters for r in results)
    clusters = sum(r.agreement > 0.95 for r in results)
    within = sum(abs(r.position_cM - SMALL.qtl_position_cM) <= 2.0 for r in results)
    return right_k, clusters, within


def test_planted_replicates_small():
    """4 replicates of the paper's genetic design (208 backcross individuals, six markers on a 50 cM group, eQTL
    at 24 cM, scan every 1 cM) with 60 genes in 3 clusters: K-hat = 3, the planted clusters (ARI > 0.95) and
    the position within 2 cM of 24 in each."""
    results = [analyse_replicate(SMALL, 7, r, (2, 3, 4)) for r in range(4)]
    assert _summarise(results) == (4, 4, 4)
    for r in results:
        assert r.lr.min() >= 0.0


def test_planted_f2_three_genotypes():
    """An F2 (three genotype classes from the HMM) runs through the same code: right K, the planted clusters,
    LR >= 0 and the eQTL found near 24 cM."""
    design = Design(cross_type="f2", n_individuals=150, n_genes=40, n_clusters=3, effect_sd=0.8)
    result = analyse_replicate(design, 3, 0, (2, 3, 4), step=2.0)
    assert result.k_hat == 3 and result.agreement > 0.95 and result.lr.min() >= 0.0
    assert abs(result.position_cM - 24.0) <= 4.0


@pytest.mark.slow
def test_planted_replicates_twenty():
    """The issue's 20 small replicates.  The position can be no better than the estimator that knows every
    individual's eQTL genotype (it is limited by the recombinants between the flanking markers): at least 17 of
    20 within 2 cM, and never more than 1 cM from that oracle estimate in more than 2 replicates."""
    results = [analyse_replicate(SMALL, 11, r, (2, 3, 4)) for r in range(20)]
    right_k, clusters, within = _summarise(results)
    assert right_k >= 19 and clusters >= 19 and within >= 17, (right_k, clusters, within)
    assert sum(abs(r.position_cM - r.oracle_position_cM) > 1.0 for r in results) <= 2


API_SCRIPT = """
import sys
import numpy as np
from mpi4py import MPI
from qtlhpc.genetics.genoprob import genoprob_chromosome
from qtlhpc.methods import blockmix
from qtlhpc.methods.blockmix.simulate import Design, simulate

data = simulate(Design(n_individuals=50, n_genes=30, n_clusters=3, effect_sd=0.8), 4, 0)
geno = genoprob_chromosome(data.genotypes, data.marker_positions, "bc", step=10.0)
comm = MPI.COMM_WORLD
starts = blockmix.select_starts(data.expression, (2, 3), 2, 4, 2, comm=comm)
best = blockmix.best_per_k(starts)[3]
null = blockmix.fit_null(data.expression, best.mu, best.var, best.rho, best.pi)
scan = blockmix.scan_positions(data.expression, geno.probs, null, comm=comm)
maxima = blockmix.permutation_maxima(data.expression, geno.probs, null, 4, [0, 1, 2, 3], comm=comm)
boot = blockmix.bootstrap_replicates(np.ascontiguousarray(geno.probs[:, 2]), scan[2].mu, scan[2].var, scan[2].rho,
                                     30, ("iii", 0, 2, -1), 4, 2, 5, [0, 1, 2, 3, 4], comm=comm)
if comm.Get_rank() == 0:
    np.savez(sys.argv[1], cl=[s.cl for s in starts], lr=[scan[p].lr for p in sorted(scan)],
             mu=np.array([scan[p].mu for p in sorted(scan)]), maxima=maxima, boot=boot)
"""


@pytest.mark.parametrize("n_ranks", (1, 2, 3))
def test_api_same_numbers_at_1_2_3_ranks(tmp_path, n_ranks):
    from mpi_helpers import run_mpi

    script = tmp_path / "api.py"
    script.write_text(API_SCRIPT)
    run_mpi(n_ranks, [script, tmp_path / "out.npz"], timeout=300)
    found = np.load(tmp_path / "out.npz")
    from qtlhpc.methods import blockmix

    data = simulate(Design(n_individuals=50, n_genes=30, n_clusters=3, effect_sd=0.8), 4, 0)
    geno = genoprob_chromosome(data.genotypes, data.marker_positions, "bc", step=10.0)
    starts = [fitting.fit_start(data.expression, k, 2, 4, s, fitting.EMSettings(tol=1e-7, max_iter=300))
              for k in (2, 3) for s in (0, 1)]
    np.testing.assert_array_equal(found["cl"], [s.cl for s in starts])
    best = blockmix.best_per_k(starts)[3]
    null = fitting.fit_null(data.expression, best.mu, best.var, best.rho, best.pi)
    lr = [fitting.fit_position(data.expression, np.ascontiguousarray(geno.probs[:, p]), null).lr
          for p in range(geno.probs.shape[1])]
    np.testing.assert_array_equal(found["lr"], lr)
    maxima = [fitting.permutation_maximum(data.expression, geno.probs, null, 4, r) for r in range(4)]
    np.testing.assert_array_equal(found["maxima"], np.array(maxima, dtype=float))
    at = fitting.fit_position(data.expression, np.ascontiguousarray(geno.probs[:, 2]), null)
    boot = [fitting.bootstrap_lr(np.ascontiguousarray(geno.probs[:, 2]), at.mu, at.var, at.rho, 30, "iii", 0, 2, -1,
                                 4, 2, 5, r) for r in range(5)]
    np.testing.assert_array_equal(found["boot"], boot)


@pytest.fixture(scope="module")
def paper_results():
    """100 replicates of the paper's design at reduced size (60 genes in 3 clusters; bench/bench_blockmix_paper.py
    runs any size, and gave the figures of docs/benchmarks.md with this seed)."""
    return [analyse_replicate(SMALL, 2016, r, (2, 3, 4)) for r in range(100)]


@pytest.mark.paper
def test_paper_simulation_k_and_position(paper_results):
    """K right in at least 96 % (the paper: 480 of 500) and the position mean within 0.3 cM of 24 (the paper:
    23.70 +- 1.17)."""
    position = np.array([r.position_cM for r in paper_results])
    assert np.mean([r.k_hat == SMALL.n_clusters for r in paper_results]) >= 0.96
    assert abs(position.mean() - 24.0) <= 0.30


@pytest.mark.paper
@pytest.mark.xfail(strict=True, reason="the reduced design (60 genes) leaves each individual's genotype uncertain: "
                                       "SD 1.56 cM here against the paper's 1.17 (and 1.23 for the estimator that "
                                       "knows the genotypes); the paper-size run (5,450 genes) was not made")
def test_paper_simulation_position_sd(paper_results):
    position = np.array([r.position_cM for r in paper_results])
    assert position.std(ddof=1) <= 1.17


def test_paper_design_file_and_bad_keys():
    import tomllib
    from pathlib import Path

    from qtlhpc.errors import ConfigError
    import qtlhpc.methods.blockmix as room

    path = Path(room.__file__).with_name("paper_design.toml")
    design = Design.from_mapping(tomllib.loads(path.read_text())["design"])
    assert (design.n_individuals, design.n_genes, design.n_clusters, design.n_markers) == (208, 5450, 43, 6)
    assert (design.chromosome_length_cM, design.qtl_position_cM) == (50.0, 24.0)
    with pytest.raises(ConfigError, match="n_gene"):
        Design.from_mapping({"n_gene": 10})
    with pytest.raises(ConfigError, match="qtl_position_cM = 60"):
        Design.from_mapping({"qtl_position_cM": 60.0})
