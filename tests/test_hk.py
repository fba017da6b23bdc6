"""Haley-Knott scans against direct least squares, planted QTL and (when installed) R/qtl."""

import subprocess

import numpy as np
import pytest

from qtlhpc.genetics import hk
from qtlhpc.genetics.hk import effects_hk, scan1d_hk, scan2d_hk, xu_codes
from qtlhpc.errors import InputError
from qtlhpc.parallel import PairBlock, pair_blocks
from requirements import require


def _rss(design, y):
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    return ((y - design @ coef) ** 2).sum(axis=0)


def _lod(n, rss0, rss1):
    return n / 2 * np.log10(rss0 / rss1)


def _random_case(n_states, n=50, n_positions=6, n_traits=3, n_covariates=2, seed=0):
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(n_states) * 0.7, size=(n, n_positions))
    phenotypes = rng.normal(size=(n, n_traits))
    covariates = rng.normal(size=(n, n_covariates)) if n_covariates else None
    return probs, phenotypes, covariates


def _null(n, covariates):
    return np.ones((n, 1)) if covariates is None else np.hstack([np.ones((n, 1)), covariates])


def _brute_force_2d(probs, phenotypes, covariates):
    """Per-pair lstsq: dict of LOD arrays (n_pairs, n_traits) in row-major pair order, and lod1."""
    n, n_positions, n_states = probs.shape
    null = _null(n, covariates)
    rss0 = _rss(null, phenotypes)
    cols = [probs[:, j, : n_states - 1] for j in range(n_positions)]
    lod1 = np.array([_lod(n, rss0, _rss(np.hstack([null, c]), phenotypes)) for c in cols])
    out = {name: [] for name in ("full", "add")}
    for j in range(n_positions):
        for k in range(j + 1, n_positions):
            inter = (cols[j][:, :, None] * cols[k][:, None, :]).reshape(n, -1)
            out["add"].append(_lod(n, rss0, _rss(np.hstack([null, cols[j], cols[k]]), phenotypes)))
            out["full"].append(_lod(n, rss0, _rss(np.hstack([null, cols[j], cols[k], inter]), phenotypes)))
    return {k: np.array(v) for k, v in out.items()}, lod1


@pytest.mark.parametrize("n_states", [2, 3])
@pytest.mark.parametrize("n_covariates", [0, 2])
def test_scan1d_matches_least_squares(n_states, n_covariates):
    probs, phenotypes, covariates = _random_case(n_states, n_covariates=n_covariates)
    n = probs.shape[0]
    null = _null(n, covariates)
    rss0 = _rss(null, phenotypes)
    expected = np.array([_lod(n, rss0, _rss(np.hstack([null, probs[:, j, : n_states - 1]]), phenotypes))
                         for j in range(probs.shape[1])])
    np.testing.assert_allclose(scan1d_hk(probs, phenotypes, covariates), expected, rtol=1e-9, atol=1e-10)
    np.testing.assert_allclose(scan1d_hk(probs, phenotypes[:, 1], covariates), expected[:, 1], rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("n_states", [2, 3])
@pytest.mark.parametrize("n_covariates", [0, 2])
def test_scan2d_matches_least_squares(n_states, n_covariates):
    probs, phenotypes, covariates = _random_case(n_states, n_covariates=n_covariates, seed=n_states)
    expected, lod1 = _brute_force_2d(probs, phenotypes, covariates)
    result = scan2d_hk(probs, phenotypes, covariates)
    k, l = PairBlock(0, 0, probs.shape[1], 0, probs.shape[1]).pairs()
    np.testing.assert_array_equal(result.first, k)
    np.testing.assert_array_equal(result.second, l)
    best = np.maximum(lod1[k], lod1[l])
    tol = dict(rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(result.lod_full, expected["full"], **tol)
    np.testing.assert_allclose(result.lod_add, expected["add"], **tol)
    np.testing.assert_allclose(result.lod_int, expected["full"] - expected["add"], **tol)
    np.testing.assert_allclose(result.lod_fv1, expected["full"] - best, **tol)
    np.testing.assert_allclose(result.lod_av1, expected["add"] - best, **tol)


@pytest.mark.parametrize("n_states", [2, 3])
def test_tiles_and_row_chunks_concatenate_to_full_result(n_states, monkeypatch):
    probs, phenotypes, covariates = _random_case(n_states, n_positions=11, n_traits=2, seed=5)
    full = scan2d_hk(probs, phenotypes, covariates)
    tiles = [scan2d_hk(probs, phenotypes, covariates, b) for b in pair_blocks(11, 4)]
    order_full = full.first * 11 + full.second
    order_tiles = np.concatenate([t.first * 11 + t.second for t in tiles])
    assert sorted(order_tiles.tolist()) == order_full.tolist()
    position = np.searchsorted(order_full, order_tiles)
    for name in hk.PairLods.STATISTICS:
        np.testing.assert_allclose(np.concatenate([getattr(t, name) for t in tiles]),
                                   getattr(full, name)[position], rtol=1e-12, atol=1e-12)
    monkeypatch.setattr(hk, "PAIR_MEMORY_BYTES", 1)  # one row per chunk
    chunked = scan2d_hk(probs, phenotypes, covariates)
    for name in hk.PairLods.STATISTICS:
        np.testing.assert_allclose(getattr(chunked, name), getattr(full, name), rtol=1e-12, atol=1e-12)


def test_collinear_positions_are_handled_like_a_rank_revealing_fit():
    """Fully informative, identical neighbouring positions: the duplicate column is dropped."""
    rng = np.random.default_rng(3)
    n = 40
    genotype = rng.integers(0, 3, size=(n, 3))
    genotype[:, 1] = genotype[:, 0]          # position 1 duplicates position 0
    probs = np.eye(3)[genotype]             # 0/1 probabilities (F2)
    phenotypes = rng.normal(size=(n, 2))
    expected, _ = _brute_force_2d(probs, phenotypes, None)
    result = scan2d_hk(probs, phenotypes)
    assert np.all(np.isfinite(result.lod_full))
    np.testing.assert_allclose(result.lod_full, expected["full"], rtol=1e-7, atol=1e-8)
    np.testing.assert_allclose(result.lod_add, expected["add"], rtol=1e-7, atol=1e-8)


def _simulate_backcross(n, n_positions, spacing_cm, rng, error=0.15):
    """True bc genotypes along one chromosome (Haldane) and noisy probabilities of them."""
    r = 0.5 * (1 - np.exp(-2 * spacing_cm / 100))
    genotype = np.empty((n, n_positions), dtype=int)
    genotype[:, 0] = rng.integers(0, 2, n)
    for j in range(1, n_positions):
        flip = rng.random(n) < r
        genotype[:, j] = np.where(flip, 1 - genotype[:, j - 1], genotype[:, j - 1])
    p_aa = np.where(genotype == 0, 1 - error, error) + rng.uniform(-0.1, 0.1, size=genotype.shape)
    p_aa = np.clip(p_aa, 0.01, 0.99)
    return genotype, np.stack([p_aa, 1 - p_aa], axis=2)


def test_planted_epistatic_pair_is_found():
    rng = np.random.default_rng(11)
    n, n_positions = 300, 40
    genotype, probs = _simulate_backcross(n, n_positions, 10.0, rng)
    q1, q2 = 6, 31
    y = 1.0 * (genotype[:, q1] == genotype[:, q2]) + rng.normal(scale=0.7, size=n)  # pure interaction
    result = scan2d_hk(probs, y)
    best = np.argmax(result.lod_int[:, 0])
    assert abs(result.first[best] - q1) <= 1 and abs(result.second[best] - q2) <= 1
    assert result.lod_int[best, 0] > 10
    lod1 = scan1d_hk(probs, y)
    assert lod1.max() < 3  # no marginal effect: only the pair scan sees it


def test_planted_additive_qtl_found_by_1d_scan_and_effects():
    rng = np.random.default_rng(2)
    n = 400
    genotype = rng.integers(0, 3, size=(n, 30))  # F2, unlinked positions
    probs = 0.9 * np.eye(3)[genotype] + 0.1 / 3
    additive = 1 - genotype[:, 12]               # Xu's Z: 1 AA, 0 AB, -1 BB
    y = 0.8 * additive + rng.normal(scale=1.0, size=n)
    lod = scan1d_hk(probs, y)
    assert np.argmax(lod) == 12 and lod[12] > 15
    effects = effects_hk(probs, y, cross_type="f2")
    assert effects.names == ("additive", "dominance")
    # the codes are shrunk by the probability noise (Z in [-0.9, 0.9] rescaled), so the estimate is 0.8/0.9
    assert abs(effects.estimate[12, 0] - 0.8 / 0.9) < 3 * effects.std_error[12, 0]


@pytest.mark.parametrize("cross_type", ["bc", "riself", "f2"])
def test_effects_match_least_squares_and_scan_lod(cross_type):
    n_states = 3 if cross_type == "f2" else 2
    probs, phenotypes, covariates = _random_case(n_states, n=60, seed=9)
    names, codes = xu_codes(probs, cross_type)
    effects = effects_hk(probs, phenotypes, covariates, cross_type=cross_type)
    n = probs.shape[0]
    for j in range(probs.shape[1]):
        design = np.hstack([_null(n, covariates), codes[:, j, :]])
        coef, rss = np.linalg.lstsq(design, phenotypes, rcond=None)[0], _rss(design, phenotypes)
        cov_unscaled = np.linalg.inv(design.T @ design)
        se = np.sqrt(np.outer(np.diag(cov_unscaled), rss / (n - design.shape[1])))
        np.testing.assert_allclose(effects.estimate[j], coef[-len(names):], rtol=1e-8, atol=1e-10)
        np.testing.assert_allclose(effects.std_error[j], se[-len(names):], rtol=1e-8)
    np.testing.assert_allclose(effects.lod, scan1d_hk(probs, phenotypes, covariates), rtol=1e-8, atol=1e-9)
    if cross_type == "bc":
        np.testing.assert_allclose(codes[:, :, 0], probs[:, :, 0])
    if cross_type == "f2":
        np.testing.assert_allclose(codes[:, :, 1], probs[:, :, 1] - probs[:, :, 0] - probs[:, :, 2])


def test_input_errors_say_what_was_expected():
    probs, phenotypes, _ = _random_case(2, n=20)
    with pytest.raises(InputError, match=r"expected \(20,\) or \(20, n_traits\)"):
        scan1d_hk(probs, phenotypes[:10])
    bad = phenotypes.copy()
    bad[4, 1] = np.nan
    with pytest.raises(InputError, match="individual 4 .* trait 1"):
        scan2d_hk(probs, bad)
    with pytest.raises(InputError, match="n_individuals, n_positions, n_states"):
        scan1d_hk(probs[:, :, 0], phenotypes)
    with pytest.raises(InputError, match="linearly dependent"):
        scan1d_hk(probs, phenotypes, np.ones((20, 1)))
    with pytest.raises(InputError, match="does not fit 6 positions"):
        scan2d_hk(probs, phenotypes, block=PairBlock(0, 0, 3, 0, 9))
    with pytest.raises(InputError, match="3 states"):
        xu_codes(probs, "f2")


# ---------------------------------------------------------------------------------------------
# R/qtl, when installed (Debian: apt-get install --no-install-recommends r-cran-qtl)

R_SCRIPT = r"""
suppressMessages(library(qtl))
set.seed(20240611)
map <- sim.map(len=c(60, 40), n.mar=c(7, 5), include.x=FALSE, eq.spacing=FALSE)
model <- if ("{cross}" == "bc") rbind(c(1, 20, 0.6)) else rbind(c(1, 20, 0.6, 0))
cross <- sim.cross(map, n.ind=80, type="{cross}", model=model, error.prob=0.01,
                   missing.prob=0.1)
cross$pheno$cov <- rnorm(80)
cross <- calc.genoprob(cross, step=5, error.prob=0.01)
pr <- do.call(cbind, lapply(cross$geno, function(g) matrix(aperm(g$prob, c(1, 3, 2)), nrow=nind(cross))))
out1 <- scanone(cross, method="hk", addcovar=cross$pheno$cov)
out2 <- scantwo(cross, method="hk", addcovar=cross$pheno$cov, incl.markers=TRUE, verbose=FALSE)
write.table(pr, "{dir}/probs.txt", row.names=FALSE, col.names=FALSE)
write.table(cross$pheno[, c(1, 2)], "{dir}/pheno.txt", row.names=FALSE, col.names=FALSE)
write.table(out1$lod, "{dir}/lod1.txt", row.names=FALSE, col.names=FALSE)
write.table(out2$lod, "{dir}/lod2.txt", row.names=FALSE, col.names=FALSE)
write.table(as.numeric(out1$chr), "{dir}/chrom.txt", row.names=FALSE, col.names=FALSE)
cat(nlevels(factor(out1$chr)), dim(cross$geno[[1]]$prob)[3], "\n", file="{dir}/dims.txt")
"""


@pytest.mark.parametrize("cross", ["bc", "f2"])
def test_matches_r_qtl(cross, tmp_path):
    require("rqtl")
    subprocess.run(["Rscript", "-e", R_SCRIPT.replace("{cross}", cross).replace("{dir}", str(tmp_path))],
                   check=True, capture_output=True)
    n_states = int((tmp_path / "dims.txt").read_text().split()[1])
    flat = np.loadtxt(tmp_path / "probs.txt")
    n_individuals = flat.shape[0]
    # written as (individual, position x state) with the state varying fastest
    lod1_r = np.loadtxt(tmp_path / "lod1.txt")
    n_positions = lod1_r.shape[0]
    probs = flat.reshape(n_individuals, n_positions, n_states)
    pheno = np.loadtxt(tmp_path / "pheno.txt")
    y, covariate = pheno[:, 0], pheno[:, 1]
    np.testing.assert_allclose(scan1d_hk(probs, y, covariate), lod1_r, atol=1e-5)
    lod2_r = np.loadtxt(tmp_path / "lod2.txt")  # lower triangle: full, upper: additive, diagonal: scanone
    pairs = scan2d_hk(probs, y, covariate)
    np.testing.assert_allclose(pairs.lod_add[:, 0], lod2_r[pairs.first, pairs.second], atol=1e-5)
    # For two positions on the same chromosome R/qtl's interaction columns are the joint two-locus
    # probabilities (calc.pairprob); without pair_probs ours are products of the marginals, so compare
    # the other pairs here (tests/test_hk_pairs.py compares every pair with pair_probs).
    chromosome = np.loadtxt(tmp_path / "chrom.txt")
    other = chromosome[pairs.first] != chromosome[pairs.second]
    assert other.sum() > 100
    np.testing.assert_allclose(pairs.lod_full[other, 0], lod2_r[pairs.second, pairs.first][other], atol=1e-5)
