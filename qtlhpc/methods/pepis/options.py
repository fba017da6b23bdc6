"""Config sections of the PEPIS method: ``[kinship]``, ``[varcomp]``, ``[scan1d]``, ``[scan2d]``,
``[permutations]``."""

from qtlhpc.config import Option
from qtlhpc.stages.spec import SectionSpec

KINSHIPS = ("a", "d", "aa", "ad", "da", "dd")

KINSHIP_OPTIONS = {
    "which": Option(list, list(KINSHIPS), "kinship matrices to compute", KINSHIPS),
    "positions": Option(str, "markers", "build the codes at the markers or at every genoprob position",
                        ("markers", "grid")),
    "block_rows": Option(int, 128, "rows of individuals per checkpointed block", minimum=1),
    "marker_block": Option(int, 16, "markers per block of the ordered prefix sums (speed only)",
                           minimum=1),
    "loco": Option(bool, False, "also compute leave-one-chromosome-out kinships (for scan1d.loco)"),
    "x_chromosome": Option(str, "exclude", "the X chromosome of a bc/f2 (R/qtl's X model): exclude it from the "
                                           "kinships and the kinship scans (autosomes only), or include its codes "
                                           "as if autosomal", ("exclude", "include")),
}

VARCOMP_OPTIONS = {
    "traits": Option(list, [], "traits to analyse (empty: all phenotypes); also the traits of the HK scans"),
    "covariates": Option(list, [], "covariates (by name) added to the intercept as fixed effects; also those "
                                   "of the HK scans"),
    "kinships": Option(list, list(KINSHIPS), "kinships in the polygenic background", KINSHIPS),
    "max_iter": Option(int, 100, "maximum REML iterations", minimum=1),
    "tolerance": Option(float, 1e-8, "relative convergence tolerance on the REML log-likelihood",
                        minimum=0.0, exclusive_minimum=True),
}

SCAN1D_OPTIONS = {
    "model": Option(str, "random", "random (PEPIS), fixed (GLS) or hk (Haley-Knott, no kinship)",
                    ("random", "fixed", "hk")),
    "block_markers": Option(int, 256, "markers per checkpointed block", minimum=1),
    "loco": Option(bool, False, "kinship models: test each chromosome's loci over a background built from the "
                                "other chromosomes (needs kinship.loco; variance ratios from varcomp)"),
}

SCAN2D_OPTIONS = {
    "model": Option(str, "random", "random (PEPIS), fixed (GLS) or hk (Haley-Knott two-QTL scan)",
                    ("random", "fixed", "hk")),
    "tile": Option(int, 256, "a checkpointed block holds about tile^2 pairs (whole rows of the pair triangle)",
                   minimum=1),
    "report_lod": Option(float, 3.0, "pairs with LOD above this get effects and standard errors stored",
                         minimum=0.0),
    "max_reported_pairs": Option(int, 10000, "at most this many top pairs get effects stored",
                                 minimum=0),
    "same_chromosome": Option(str, "joint", "hk: pairs on one chromosome use the joint two-locus genotype "
                                            "probabilities as R/qtl (joint) or the product of the marginal ones "
                                            "(product: faster, differs from R/qtl there)", ("joint", "product")),
}

PERMUTATION_OPTIONS = {
    "n_permutations": Option(int, 100, "number of permutations (ids 0..n-1, each with its own seed); "
                                             "a level alpha needs at least ceil(1/alpha) (a warning otherwise)",
                             minimum=1),
    "scans": Option(list, ["1d"], "which scans get genome-wide thresholds", ("1d", "2d")),
    "batch": Option(int, 50, "permutations evaluated per pass", minimum=1),
    "alphas": Option(list, [0.05, 0.01], "significance levels of the thresholds", minimum=0.0,
                     maximum=1.0, exclusive_minimum=True, exclusive_maximum=True),
    "x_specific": Option(bool, True, "1D HK scan of a bc/f2 with an X and autosomes: also X-specific thresholds as "
                                     "R/qtl's scanone(perm.Xsp = TRUE) (autosome and X maxima apart, "
                                     "ceiling(L_A/L_X n_permutations) X permutations, the level split by "
                                     "chromosome lengths); ignored otherwise"),
}

SECTIONS = (
    SectionSpec("kinship", KINSHIP_OPTIONS, "pepis", "the six kinship matrices"),
    SectionSpec("varcomp", VARCOMP_OPTIONS, "pepis", "polygenic variance components by REML"),
    SectionSpec("scan1d", SCAN1D_OPTIONS, "pepis", "the 1D main-effect scan"),
    SectionSpec("scan2d", SCAN2D_OPTIONS, "pepis", "the 2D marker-pair epistatic scan"),
    SectionSpec("permutations", PERMUTATION_OPTIONS, "pepis", "genome-wide permutation thresholds"),
)
