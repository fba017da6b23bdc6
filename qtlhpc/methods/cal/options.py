"""Config sections of CAL (de Ridder et al. 2010): ``[cal]`` (inputs, score, topologies, permutations: everything
that changes a search result) and ``[cal_select]`` (the FDR level and pi0 method of the q-values and the
parsimony step, which rerun only ``cal-select``)."""

from qtlhpc.config import Option
from qtlhpc.methods.cal.topology import CATALOGUES, POLARITIES, SCORES, TSTATS
from qtlhpc.stages.spec import SectionSpec

CAL_OPTIONS = {
    "loci": Option(str, "", "binary locus matrix (TSV: header 'strain' then locus names, one row per strain, 0/1); "
                            "empty: marker clusters of the [input] cross"),
    "max_cluster_distance": Option(int, 1, "a marker joins the current marker cluster while it differs from the "
                                           "cluster's first marker in at most this many strains", minimum=0),
    "targets": Option(str, "clusters", "expression targets: clusters (centroids of correlation clusters) or genes",
                      ("clusters", "genes")),
    "cluster_cutoff": Option(float, 0.2, "correlation distance (1 - r) at which the complete-linkage tree of the "
                                         "genes is cut (the paper's 0.2)", minimum=0.0, maximum=2.0,
                             exclusive_minimum=True),
    "eta": Option(int, 3, "group-size guard: an output with fewer than eta strains in a group scores 0",
                  minimum=2),
    "tstat": Option(str, "welch", "t statistic of the score: welch (the paper) or student (pooled variance)",
                    TSTATS),
    "score": Option(str, "signed", "signed t (group 1 = high expression) or abs (|t|)", SCORES),
    "catalogue": Option(str, "singles+paper7", "topologies: singles+paper7, paper7, singles or custom", CATALOGUES),
    "custom_topologies": Option(list, [], "more topologies as expressions over A, B, C with ~ & | ^ (added to the "
                                          "catalogue; the only ones with catalogue = custom)"),
    "polarity": Option(str, "as-written", "as-written, or expand: every negation pattern of each topology's "
                                          "inputs (e.g. A&B -> A&B, A&~B, ~A&~B)", POLARITIES),
    "tolerance_quantile": Option(float, 0.75, "f_tol = this quantile of fopt over the targets (the paper's 75th "
                                              "percentile); targets below f_tol are not searched, and search results "
                                              "below it are censored", minimum=0.0, maximum=1.0),
    "permutations": Option(int, 100, "replicates of the whole search on strain permutations (the paper's 100)",
                           minimum=0),
    "target_block": Option(int, 16, "targets per work unit (replicate, topology, target block): the checkpoint "
                                    "and claiming grain", minimum=1),
}

SELECT_OPTIONS = {
    "fdr": Option(float, 0.1, "q-value level of a significant network (the paper's 10% FDR)", minimum=0.0,
                  maximum=1.0, exclusive_minimum=True, exclusive_maximum=True),
    "pi0_method": Option(str, "smoother", "pi0 estimate of qvalue: smoother, bootstrap, or one (pi0 = 1, BH)",
                         ("smoother", "bootstrap", "one")),
}

SECTIONS = (
    SectionSpec("cal", CAL_OPTIONS, "cal", "CAL logic networks: loci, targets, score, topologies, permutations"),
    SectionSpec("cal_select", SELECT_OPTIONS, "cal", "CAL q-values and parsimony selection"),
)
