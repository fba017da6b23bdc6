"""Datasets of the co-clustering stages (spec B2.8)."""

from qtlhpc.schema import declare, declare_dimension

declare_dimension("cocluster_run", "an independent Gibbs run of the co-clustering (a work unit)")
declare_dimension("cocluster_sample", "a kept iteration of one run (after burn-in, thinned)")
declare_dimension("cocluster_iteration", "an iteration of one Gibbs run")
declare_dimension("cocluster_slot", "a gene cluster of a run's final state, numbered by first gene")
declare_dimension("cocluster_round", "a round of runs under runs = \"auto\"")
declare_dimension("cocluster_indptr", "a row pointer of the CSR matrix F (G + 1 entries)")
declare_dimension("cocluster_entry", "a stored nonzero entry of the CSR matrix F")
declare_dimension("cocluster_k", "a number k of runs per set in the rho-vs-k study ([J] Fig. 2), k = 1..")
declare_dimension("cocluster_pair", "a pair of disjoint sets of k runs in the rho-vs-k study")
declare_dimension("fuzzy_cluster", "a fuzzy cluster, in extraction order")
declare_dimension("fuzzy_membership", "a stored membership p_ik above the threshold")
declare_dimension("fuzzy_cutoff", "a membership cutoff of the Table-3 layout ([J] Table 3)")
declare_dimension("fuzzy_count", "genes in >= 1 fuzzy cluster, genes in >= 2 fuzzy clusters", as_columns=True)
declare_dimension("fuzzy_eigenvalue", "lambda1, lambda2", as_columns=True)

RUNS = "cocluster-runs"
declare(RUNS, "run_index", ("cocluster_run",), "int64", "", "the run (work unit) of each row")
declare(RUNS, "samples", ("cocluster_run", "cocluster_sample", "gene"), "int32", "",
        "gene-cluster label of each gene in each kept iteration (labels by first gene)")
declare(RUNS, "score_trace", ("cocluster_run", "cocluster_iteration"), "float64", "log",
        "Bayesian score sum_kl S_kl ([J] eq. (2)) after each iteration")
declare(RUNS, "n_clusters", ("cocluster_run", "cocluster_iteration"), "int32", "", "gene clusters after each iteration")
declare(RUNS, "final_partitions", ("cocluster_run", "cocluster_slot", "sample"), "int32", "",
        "condition-cluster label of each condition in each gene cluster of the run's final state (-1: no cluster)")
declare(RUNS, "runs_used", (), "int64", "", "runs done (runs, or where runs = \"auto\" stopped)")
declare(RUNS, "auto_rho", ("cocluster_round",), "float64", "",
        "runs = \"auto\": rho between the two halves of the runs done after each round")

MATRIX = "cocluster-matrix"
declare(MATRIX, "indptr", ("cocluster_indptr",), "int64", "", "CSR row pointers of F (G x G)")
declare(MATRIX, "indices", ("cocluster_entry",), "int64", "", "CSR column (gene) of each stored entry of F")
declare(MATRIX, "data", ("cocluster_entry",), "float64", "probability",
        "F_ij: fraction of the kept samples of all runs in which genes i and j share a cluster ([J] eqs. (3), (5))")
declare(MATRIX, "n_runs", (), "int64", "", "runs averaged into F")
declare(MATRIX, "rho_halves", (), "float64", "", "rho ([J] eq. (4), cosine) between the F of the first and the "
                                                 "second half of the runs (NaN for one run)")
declare(MATRIX, "rho_by_k", ("cocluster_k", "cocluster_pair"), "float64", "",
        "rho between the averages of two disjoint sets of k runs ([J] Fig. 2); NaN where no such pair")
declare(MATRIX, "entropy", (), "float64", "", "fuzziness entropy H_fuzzy of F ([J] eq. (6), 1/G^2 normalisation)")

FUZZY = "cocluster-fuzzy"
declare(FUZZY, "membership_gene", ("fuzzy_membership",), "int64", "", "gene i of a stored membership")
declare(FUZZY, "membership_cluster", ("fuzzy_membership",), "int64", "", "fuzzy cluster k of a stored membership")
declare(FUZZY, "membership", ("fuzzy_membership",), "float64", "probability", "p_ik ([J] section 2.3)")
declare(FUZZY, "lambda1", ("fuzzy_cluster",), "float64", "", "largest eigenvalue of the deflated F of the cluster")
declare(FUZZY, "lambda2", ("fuzzy_cluster",), "float64", "", "second largest eigenvalue")
declare(FUZZY, "prototype", ("fuzzy_cluster",), "int64", "", "prototype gene (largest eigenvector entry)")
declare(FUZZY, "size", ("fuzzy_cluster",), "float64", "genes", "cluster size sum_i p_ik")
declare(FUZZY, "coverage", ("gene",), "float64", "probability", "sum_k p_ik of each gene")
declare(FUZZY, "stop_reason", (), "str", "", "exhausted, degenerate, negative or max_clusters")
declare(FUZZY, "stop_lambda", ("fuzzy_eigenvalue",), "float64", "",
        "lambda1, lambda2 of the deflated F at the stop (NaN unless degenerate or negative)")
declare(FUZZY, "cutoffs", ("fuzzy_cutoff",), "float64", "probability", "membership cutoffs 0.1, 0.3, 0.5")
declare(FUZZY, "layout_counts", ("fuzzy_cutoff", "fuzzy_count"), "int64", "genes",
        "genes with p_ik >= cutoff in at least one / at least two fuzzy clusters ([J] Table 3)")
