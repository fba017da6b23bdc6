"""Config sections of the block-mixture method (Wang et al. 2016): the model ``[blockmix]`` (read by every
stage), and one section per stage: ``[blockmix_select]``, ``[blockmix_scan]``, ``[blockmix_permutations]``,
``[blockmix_tests]``.  Defaults are the spec's (specs/blockmix-cocluster.md A1.5, A1.9, A2), with the
deviations documented in docs/blockmix.md."""

from qtlhpc.config import Option
from qtlhpc.stages.spec import SectionSpec

MODEL_OPTIONS = {
    "variance": Option(str, "cluster", "variance structure of the Gaussian cells: cluster (one per gene cluster, "
                                       "shared by the genotypes; the null fit is then the same at every position "
                                       "and permutation), block (one per genotype x cluster) or common (one)",
                       ("cluster", "block", "common")),
    "parts": Option(str, "row+column", "composite likelihood: row+column (the paper's, spec A1.3) or column "
                                       "(gene clustering with an interval-mapping mixture per gene; cheaper, "
                                       "not the paper's method)", ("row+column", "column")),
    "tol": Option(float, 1e-9, "EM of the scan, permutations and tests stops when cl gains at most tol * |cl| "
                               "in an iteration", minimum=0.0, exclusive_minimum=True, maximum=1e-3),
    "max_iter": Option(int, 1000, "most EM iterations of one fit (scan, permutations, tests)", minimum=1),
    "min_sd": Option(float, 0.0, "drop genes whose sample SD (n - 1) is below this before fitting (the paper: "
                                 "0.9 on the C. elegans arrays); 0 keeps every gene", minimum=0.0),
}

SELECT_OPTIONS = {
    "k_min": Option(int, 2, "smallest number of gene clusters K of the BIC grid", minimum=1),
    "k_max": Option(int, 8, "largest K of the BIC grid (the paper's data: up to 60)", minimum=1),
    "starts": Option(int, 10, "seeded starts per K (start s of K draws from unit_rng(seed, 'blockmix-start', K, "
                              "s)); the work units are the (K, start) pairs", minimum=1),
    "tol": Option(float, 1e-7, "EM of stage 1 stops when cl gains at most tol * |cl| (the latent row classes "
                               "creep: 1e-9 is not reached in 1000 iterations on planted data)",
                  minimum=0.0, exclusive_minimum=True, maximum=1e-3),
    "max_iter": Option(int, 300, "most EM iterations of one start", minimum=1),
}

SCAN_OPTIONS = {
    "block": Option(int, 4, "positions per work unit (checkpoint block; fixed, not derived from the ranks)",
                    minimum=1),
}

PERMUTATION_OPTIONS = {
    "n_permutations": Option(int, 1000, "permutations of the individuals (the work units, SLURM array units)",
                             minimum=1),
    "alpha": Option(float, 0.05, "genome-wide level of the permutation threshold of test (i)", minimum=0.0,
                    maximum=1.0, exclusive_minimum=True, exclusive_maximum=True),
}

TESTS_OPTIONS = {
    "tests": Option(list, ["ii", "iii", "iv"], "which of tests (ii) cluster affected, (iii) genotype x cluster "
                                               "interaction, (iv) cluster structure to run at each significant "
                                               "position", ("ii", "iii", "iv")),
    "alpha": Option(float, 0.05, "family-wise level of tests (ii)-(iv): nominal chi-square p-value with "
                                 "Bonferroni over each test's family at a position", minimum=0.0, maximum=1.0,
                    exclusive_minimum=True, exclusive_maximum=True),
    "max_positions": Option(int, 20, "test at most this many significant positions (the largest LR first)",
                            minimum=1),
    "bootstrap": Option(int, 0, "parametric-bootstrap replicates B of every test (ii)-(iv) at every position "
                                "(data simulated from the test's constrained fit, genotypes drawn from the "
                                "position's probabilities; p = (1 + #{LR* >= LR}) / (B + 1), stored beside the "
                                "chi-square p-value); 0 keeps the chi-square reference only.  The spec suggests "
                                "200; Bonferroni needs B + 1 >= family size / alpha to reject at all",
                        minimum=0),
    "network_edge": Option(float, 0.5, "cluster co-expression networks by genotype (Figs. 6-7): an edge where "
                                       "the absolute correlation of two cluster scores is at least this",
                           minimum=0.0, maximum=1.0),
}

SECTIONS = (
    SectionSpec("blockmix", MODEL_OPTIONS, "blockmix", "block-mixture model (Wang et al. 2016): read by every "
                                                       "blockmix stage"),
    SectionSpec("blockmix_select", SELECT_OPTIONS, "blockmix", "stage 1: the number of gene clusters by "
                                                              "composite-likelihood BIC"),
    SectionSpec("blockmix_scan", SCAN_OPTIONS, "blockmix", "stage 2: the LR scan of test (i)"),
    SectionSpec("blockmix_permutations", PERMUTATION_OPTIONS, "blockmix", "stage 3: genome-wide permutation "
                                                                         "threshold of test (i)"),
    SectionSpec("blockmix_tests", TESTS_OPTIONS, "blockmix", "stage 4: tests (ii)-(iv) at significant positions"),
)
