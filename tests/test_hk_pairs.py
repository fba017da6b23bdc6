"""Two-QTL Haley-Knott scans of pairs on one chromosome: joint genotype probabilities, as R/qtl."""

import subprocess

import numpy as np
import pytest

from qtlhpc.io.cross import Cross
from qtlhpc.genetics import hk
from qtlhpc.genetics.hk import scan1d_hk, scan2d_hk
from qtlhpc.errors import InputError
from qtlhpc.genetics.genoprob import GenomePairProbabilities, calc_genoprob
from qtlhpc.parallel import PairBlock, pair_blocks
from requirements import require


def _rss(design, y):
    coef = np.linalg.lstsq(design, y, rcond=None)[0]
    return ((y - design @ coef) ** 2).sum(axis=0)


def _lod(n, rss0, rss1):
    return n / 2 * np.log10(rss0 / rss1)


def _small_cross(cross_type, n=60, seed=0):
    """Two chromosomes with missing genotypes (so the joint probabilities differ from products)."""
    rng = np.random.default_rng(seed)
    positions = [0.0, 8.0, 15.0, 30.0, 0.0, 12.0, 20.0]
    chromosomes = ["1", "1", "1", "1", "2", "2", "2"]
    high = 6 if cross_type == "f2" else 3
    genotypes = rng.integers(0, high, size=(n, len(positions)))
    return Cross(cross_type, [f"i{k}" for k in range(n)], [f"m{k}" for k in range(len(positions))], chromosomes,
                 positions, genotypes)


def _joint_class_lods(probs, chromosomes, pair_probs, phenotypes, covariates):
    """Per-pair lstsq: full model on the indicators' expectations of all joint genotype classes.

    Same chromosome: class (a, b) has column Pr(g_j = a, g_k = b); different chromosomes: the
    product of the marginals.  Additive model: intercept, covariates and every marginal column.
    """
    n, n_positions, n_states = probs.shape
    null = np.ones((n, 1)) if covariates is None else np.hstack([np.ones((n, 1)), covariates])
    rss0 = _rss(null, phenotypes)
    full, add = [], []
    for j in range(n_positions):
        for k in range(j + 1, n_positions):
            if chromosomes[j] == chromosomes[k]:
                joint = pair_probs(np.array([j]), np.array([k]))[:, 0]
            else:
                joint = probs[:, j, :, None] * probs[:, k, None, :]
            classes = joint.reshape(n, -1)          # all n_states**2 classes: they contain the intercept
            covs = null[:, 1:]
            full.append(_lod(n, rss0, _rss(np.hstack([classes, covs]), phenotypes)))
            add.append(_lod(n, rss0, _rss(np.hstack([null, probs[:, j], probs[:, k]]), phenotypes)))
    return np.array(full), np.array(add)


@pytest.mark.parametrize("cross_type", ["bc", "f2"])
def test_same_chromosome_pairs_match_least_squares_on_joint_classes(cross_type):
    cross = _small_cross(cross_type)
    genoprob = calc_genoprob(cross, step=5.0, error_prob=0.01)
    pair_probs = GenomePairProbabilities(cross, step=5.0, error_prob=0.01)
    np.testing.assert_array_equal(pair_probs.chromosomes, genoprob.chromosomes)
    rng = np.random.default_rng(1)
    n = genoprob.probs.shape[0]
    phenotypes = rng.normal(size=(n, 2))
    covariates = rng.normal(size=(n, 1))
    result = scan2d_hk(genoprob.probs, phenotypes, covariates, chromosomes=genoprob.chromosomes,
                       pair_probs=pair_probs)
    full, add = _joint_class_lods(genoprob.probs, genoprob.chromosomes, pair_probs, phenotypes, covariates)
    np.testing.assert_allclose(result.lod_full, full, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(result.lod_add, add, rtol=1e-8, atol=1e-9)
    np.testing.assert_allclose(result.lod_int, full - add, rtol=1e-8, atol=1e-9)
    lod1 = scan1d_hk(genoprob.probs, phenotypes, covariates)
    best = np.maximum(lod1[result.first], lod1[result.second])
    np.testing.assert_allclose(result.lod_fv1, full - best, rtol=1e-8, atol=1e-9)
    # the joint probabilities change the same-chromosome full LODs only
    plain = scan2d_hk(genoprob.probs, phenotypes, covariates)
    same = genoprob.chromosomes[result.first] == genoprob.chromosomes[result.second]
    np.testing.assert_allclose(plain.lod_full[~same], result.lod_full[~same], rtol=1e-10, atol=1e-12)
    np.testing.assert_allclose(plain.lod_add, result.lod_add, rtol=1e-10, atol=1e-12)
    assert np.abs(plain.lod_full[same] - result.lod_full[same]).max() > 1e-3


def test_tiles_small_batches_and_subsets_of_individuals_agree(monkeypatch):
    cross = _small_cross("f2", n=40, seed=2)
    genoprob = calc_genoprob(cross, step=4.0)
    pair_probs = GenomePairProbabilities(cross, step=4.0)
    y = np.random.default_rng(3).normal(size=40)
    n_positions = genoprob.n_positions
    full = scan2d_hk(genoprob.probs, y, chromosomes=genoprob.chromosomes, pair_probs=pair_probs)
    tiles = [scan2d_hk(genoprob.probs, y, block=b, chromosomes=genoprob.chromosomes, pair_probs=pair_probs)
             for b in pair_blocks(n_positions, 5)]
    position = np.searchsorted(full.first * n_positions + full.second,
                               np.concatenate([t.first * n_positions + t.second for t in tiles]))
    np.testing.assert_allclose(np.concatenate([t.lod_full for t in tiles]), full.lod_full[position], rtol=1e-12)
    monkeypatch.setattr(hk, "PAIR_MEMORY_BYTES", 1)  # one row per chunk and one pair per batch
    small = scan2d_hk(genoprob.probs, y, chromosomes=genoprob.chromosomes, pair_probs=pair_probs)
    np.testing.assert_allclose(small.lod_full, full.lod_full, rtol=1e-12)
    monkeypatch.undo()
    keep = np.arange(40) % 3 != 0
    subset = scan2d_hk(genoprob.probs[keep], y[keep], chromosomes=genoprob.chromosomes,
                       pair_probs=pair_probs.for_individuals(keep))
    direct = GenomePairProbabilities(Cross("f2", cross.individuals[keep], cross.markers, cross.chromosomes,
                                           cross.positions, cross.genotypes[keep]), step=4.0)
    expected = scan2d_hk(genoprob.probs[keep], y[keep], chromosomes=genoprob.chromosomes, pair_probs=direct)
    np.testing.assert_allclose(subset.lod_full, expected.lod_full, rtol=1e-12)
    # a plain callable takes the batched route over explicit joint probabilities: the same numbers
    generic = scan2d_hk(genoprob.probs[keep], y[keep], chromosomes=genoprob.chromosomes,
                        pair_probs=lambda f, s: pair_probs(f, s, individuals=keep))
    np.testing.assert_allclose(generic.lod_full, expected.lod_full, rtol=1e-9)


def test_pair_probs_input_errors():
    cross = _small_cross("bc", n=20)
    genoprob = calc_genoprob(cross, step=5.0)
    y = np.random.default_rng(0).normal(size=20)
    pair_probs = GenomePairProbabilities(cross, step=5.0)
    with pytest.raises(InputError, match="needs chromosomes"):
        scan2d_hk(genoprob.probs, y, pair_probs=pair_probs)
    with pytest.raises(InputError, match=r"expected \(%d,\)" % genoprob.n_positions):
        scan2d_hk(genoprob.probs, y, chromosomes=genoprob.chromosomes[:3], pair_probs=pair_probs)
    with pytest.raises(InputError, match="pair_probs returned shape"):
        scan2d_hk(genoprob.probs, y, chromosomes=genoprob.chromosomes,
                  pair_probs=lambda f, s: np.ones((20, len(f), 3, 3)))
    with pytest.raises(InputError, match="one chromosome"):
        pair_probs(np.array([0]), np.array([genoprob.n_positions - 1]))


# ---------------------------------------------------------------------------------------------
# R/qtl scantwo(method="hk"), all pairs including those on one chromosome

R_SCRIPT = r"""
suppressMessages(library(qtl))
set.seed(20240612)
map <- sim.map(len=c(50, 35), n.mar=c(6, 4), include.x=FALSE, eq.spacing=FALSE)
model <- if ("{cross}" == "bc") rbind(c(1, 20, 0.6)) else rbind(c(1, 20, 0.6, 0))
cross <- sim.cross(map, n.ind=70, type="{cross}", model=model, error.prob=0.01, missing.prob=0.15)
cross$pheno$cov <- rnorm(70)
cross <- calc.genoprob(cross, step=5, error.prob=0.01, map.function="kosambi")
out2 <- scantwo(cross, method="hk", addcovar=cross$pheno$cov, incl.markers=TRUE, verbose=FALSE)
write.table(pull.geno(cross), "{dir}/geno.txt", row.names=FALSE, col.names=FALSE, na="0")
m <- pull.map(cross, as.table=TRUE)
write.table(data.frame(as.character(m$chr), m$pos), "{dir}/map.txt", row.names=FALSE, col.names=FALSE)
write.table(cross$pheno[, c(1, 2)], "{dir}/pheno.txt", row.names=FALSE, col.names=FALSE)
write.table(out2$lod, "{dir}/lod2.txt", row.names=FALSE, col.names=FALSE)
"""


@pytest.mark.parametrize("cross_type", ["bc", "f2"])
def test_matches_r_qtl_scantwo_including_same_chromosome_pairs(cross_type, tmp_path):
    require("rqtl")
    script = R_SCRIPT.replace("{cross}", cross_type).replace("{dir}", str(tmp_path))
    subprocess.run(["Rscript", "-e", script], check=True, capture_output=True)
    genotypes = np.loadtxt(tmp_path / "geno.txt", dtype=int)
    chromosomes = np.loadtxt(tmp_path / "map.txt", usecols=0, dtype=str)
    chromosomes = np.char.strip(chromosomes, '"')
    positions = np.loadtxt(tmp_path / "map.txt", usecols=1)
    n = genotypes.shape[0]
    cross = Cross(cross_type, [f"i{k}" for k in range(n)], [f"m{k}" for k in range(len(positions))], chromosomes,
                  positions, genotypes)
    options = dict(step=5.0, error_prob=0.01, map_function="kosambi")
    genoprob = calc_genoprob(cross, **options)
    pheno = np.loadtxt(tmp_path / "pheno.txt")
    y, covariate = pheno[:, 0], pheno[:, 1]
    lod2_r = np.loadtxt(tmp_path / "lod2.txt")  # lower triangle: full, upper: additive, diagonal: scanone
    assert lod2_r.shape == (genoprob.n_positions, genoprob.n_positions)
    pairs = scan2d_hk(genoprob.probs, y, covariate, chromosomes=genoprob.chromosomes,
                      pair_probs=GenomePairProbabilities(cross, **options))
    same = genoprob.chromosomes[pairs.first] == genoprob.chromosomes[pairs.second]
    assert same.sum() > 100 and (~same).sum() > 100
    full_r = lod2_r[pairs.second, pairs.first]
    add_r = lod2_r[pairs.first, pairs.second]
    np.testing.assert_allclose(pairs.lod_full[:, 0], full_r, atol=1e-5)
    np.testing.assert_allclose(pairs.lod_add[:, 0], add_r, atol=1e-5)
    np.testing.assert_allclose(pairs.lod_int[:, 0], full_r - add_r, atol=1e-5)


R_SAME_POSITION = r"""
suppressMessages(library(qtl))
x <- read.cross("csv", file="{file}", genotypes=c("A", "H", "B"), alleles=c("A", "B"), crosstype="f2",
                estimate.map=FALSE)
x <- calc.genoprob(x, step=0, error.prob={error})
o <- scantwo(x, method="hk", verbose=FALSE)
write.table(o$lod, "{out}", row.names=FALSE, col.names=FALSE)
"""


@pytest.mark.parametrize("error_prob", [1e-4, 1e-12])
def test_matches_r_qtl_for_markers_at_one_position(error_prob, tmp_path):
    """Two markers at one position (identical genotypes): nearly empty joint classes are dropped as R/qtl does."""
    require("rqtl")
    rng = np.random.default_rng(0)
    n = 50
    genotypes = rng.integers(1, 4, size=(n, 4))
    genotypes[:, 1] = genotypes[:, 0]
    y = rng.normal(size=n)
    positions = [0.0, 0.0, 10.0, 10.0]
    lines = ["y,a,b,c,d", ",1,1,1,1", ",0,0,10,10"]
    lines += [f"{y[i]!r}," + ",".join("AHB"[code - 1] for code in genotypes[i]) for i in range(n)]
    (tmp_path / "cross.csv").write_text("\n".join(lines) + "\n")
    script = (R_SAME_POSITION.replace("{file}", str(tmp_path / "cross.csv")).replace("{error}", repr(error_prob))
              .replace("{out}", str(tmp_path / "lod2.txt")))
    subprocess.run(["Rscript", "-e", script], check=True, capture_output=True)
    lod2_r = np.loadtxt(tmp_path / "lod2.txt")
    cross = Cross("f2", [f"i{k}" for k in range(n)], list("abcd"), ["1"] * 4, positions, genotypes)
    genoprob = calc_genoprob(cross, step=0, error_prob=error_prob)
    pairs = scan2d_hk(genoprob.probs, y, chromosomes=genoprob.chromosomes,
                      pair_probs=GenomePairProbabilities(cross, step=0, error_prob=error_prob))
    np.testing.assert_allclose(pairs.lod_full[:, 0], lod2_r[pairs.second, pairs.first], atol=1e-5)
    np.testing.assert_allclose(pairs.lod_add[:, 0], lod2_r[pairs.first, pairs.second], atol=1e-5)


def test_stage_block_uses_joint_probabilities_for_each_traits_individuals():
    from qtlhpc.methods.pepis.drivers.scan2d import hk_block
    from qtlhpc.methods.pepis.drivers.scan_inputs import ScanInputs, TraitData

    cross = _small_cross("f2", n=30, seed=5)
    genoprob = calc_genoprob(cross, step=5.0)
    pair_probs = GenomePairProbabilities(cross, step=5.0)
    rng = np.random.default_rng(6)
    keep = rng.random(30) < 0.8
    y = rng.normal(size=keep.sum())
    trait = TraitData("t", keep, y, np.ones((keep.sum(), 1)))

    class Loci:
        chromosomes = genoprob.chromosomes

    inputs = ScanInputs("hk", [trait], Loci(), genoprob.probs, "f2", pair_probs=pair_probs)
    block = PairBlock(0, 2, 9, 0, genoprob.n_positions)
    single = scan1d_hk(genoprob.probs[keep], y)
    out = hk_block(inputs, block, [single])[0]
    subset = Cross("f2", cross.individuals[keep], cross.markers, cross.chromosomes, cross.positions,
                   cross.genotypes[keep])
    expected = scan2d_hk(genoprob.probs[keep], y, block=block, chromosomes=genoprob.chromosomes,
                         pair_probs=GenomePairProbabilities(subset, step=5.0))
    np.testing.assert_allclose(out["hk_lods"][:, 0], expected.lod_full[:, 0], rtol=1e-12)
    np.testing.assert_allclose(out["hk_lods"][:, 3], expected.lod_add[:, 0], rtol=1e-12)


def test_permutation_maxima_use_the_joint_probabilities():
    """max_lod_hk_2d with pair_probs: the full-LOD maximum of each permutation is that of a direct scan."""
    from qtlhpc.methods.pepis.kernels.permutation import max_lod_hk_2d, permuted_phenotypes

    cross = _small_cross("f2", n=50, seed=3)
    genoprobs = calc_genoprob(cross, step=10.0)
    pair_probs = GenomePairProbabilities(cross, step=10.0)
    y = genoprobs.probs[:, 2, 0] * 1.5 + np.random.default_rng(3).normal(size=50)  # a QTL at position 2
    ids = [0, 4]
    maxima = max_lod_hk_2d(genoprobs.probs, y, None, 9, ids, chromosomes=genoprobs.chromosomes,
                           pair_probs=pair_probs, tile=5).maxima["full"]
    permuted = permuted_phenotypes(y, 9, ids)
    for column, value in enumerate(maxima):
        direct = scan2d_hk(genoprobs.probs, permuted[:, column], None, chromosomes=genoprobs.chromosomes,
                           pair_probs=pair_probs)
        assert value == pytest.approx(float(np.max(direct.lod_full)), rel=1e-9)
    products_only = max_lod_hk_2d(genoprobs.probs, y, None, 9, ids, chromosomes=genoprobs.chromosomes,
                                  tile=5).maxima["full"]
    assert not np.allclose(products_only, maxima)


@pytest.mark.parametrize("cross_type", ["bc", "f2"])
def test_elimination_and_column_refit_agree(cross_type, monkeypatch):
    """Same-chromosome pairs: the batched normal equations and the per-pair Gram-Schmidt refit give the
    same LODs on well-conditioned pairs, and least squares on the joint classes either way."""
    cross = _small_cross(cross_type, n=50, seed=7)
    genoprob = calc_genoprob(cross, step=5.0, error_prob=0.01)
    pair_probs = GenomePairProbabilities(cross, step=5.0, error_prob=0.01)
    y = np.random.default_rng(8).normal(size=(50, 2))
    scan = lambda: scan2d_hk(genoprob.probs, y, chromosomes=genoprob.chromosomes, pair_probs=pair_probs)  # noqa: E731
    monkeypatch.setattr(hk, "ELIMINATION_FALLBACK_TOL", 2.0)   # every pair refitted column by column
    refit = scan()
    monkeypatch.setattr(hk, "ELIMINATION_FALLBACK_TOL", 0.0)   # no pair refitted
    eliminated = scan()
    full, add = _joint_class_lods(genoprob.probs, genoprob.chromosomes, pair_probs, y, None)
    for result in (refit, eliminated):
        np.testing.assert_allclose(result.lod_full, full, rtol=1e-8, atol=1e-9)
        np.testing.assert_allclose(result.lod_add, add, rtol=1e-8, atol=1e-9)
