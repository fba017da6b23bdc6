"""Datasets of the block-mixture stages (Wang et al. 2016; spec A2.7)."""

from qtlhpc.schema import declare, declare_dimension

declare_dimension("bm_start_unit", "a (K, start) unit of blockmix-select: unit u has K = k_min + u // starts and "
                                   "start u % starts")
declare_dimension("bm_k", "a number of gene clusters K of the BIC grid, k_min .. k_max")
declare_dimension("bm_cluster", "a gene cluster (in blockmix-select, padded to k_max with NaN)")
declare_dimension("bm_genotype", "a QTL genotype class (row class), in genoprob/genotype_states order")
declare_dimension("bm_gene", "a gene of the fitted expression matrix (after the min_sd filter)")
declare_dimension("bm_position", "a genoprob position (marker or pseudomarker), in genoprob order")
declare_dimension("bm_permutation", "a permutation id of blockmix-permutations")
declare_dimension("bm_peak", "a significant position tested in blockmix-tests, largest LR first")
declare_dimension("bm_test", "a constrained fit of blockmix-tests at one position: (ii) per cluster, then (iii) "
                             "per cluster pair, then (iv) per genotype and cluster pair")
declare_dimension("bm_cluster_other", "the second gene cluster l' of a cluster x cluster matrix")
declare_dimension("bm_replicate", "a parametric-bootstrap replicate of blockmix-tests ([blockmix_tests] bootstrap)")
declare_dimension("bm_spot", "a spot: significant positions of one chromosome grouped over gaps of at most one "
                             "position (spec A2.2 step 7)")
declare_dimension("bm_alpha", "a significance level of the permutation thresholds", as_columns=True)

S = "blockmix-select"
declare(S, "k", ("bm_start_unit",), "int64", "", "number of gene clusters K of the unit")
declare(S, "start", ("bm_start_unit",), "int64", "", "start id s of the unit")
declare(S, "cl", ("bm_start_unit",), "float64", "log CL", "composite log-likelihood at convergence (spec A1.3)")
declare(S, "bic", ("bm_start_unit",), "float64", "", "CL-BIC = -2 cl + d_K log(n G); inf for a degenerate fit")
declare(S, "iterations", ("bm_start_unit",), "int64", "", "EM iterations of the start")
declare(S, "converged", ("bm_start_unit",), "bool", "", "the tolerance was reached before max_iter")
declare(S, "degenerate", ("bm_start_unit",), "bool", "", "a cluster proportion fell below 1e-8 (start discarded)")
declare(S, "unit_mu", ("bm_start_unit", "bm_genotype", "bm_cluster"), "float64", "expression",
        "cell means mu_ql of the unit's fit (NaN beyond its K)")
declare(S, "unit_var", ("bm_start_unit", "bm_genotype", "bm_cluster"), "float64", "expression^2",
        "cell variances of the unit's fit (NaN beyond its K)")
declare(S, "unit_rho", ("bm_start_unit", "bm_cluster"), "float64", "", "cluster proportions (NaN beyond K)")
declare(S, "unit_pi", ("bm_start_unit", "bm_genotype"), "float64", "", "common row-class proportions")
declare(S, "unit_labels", ("bm_start_unit", "bm_gene"), "int32", "", "hard gene-cluster labels (argmax c_jl)")
declare(S, "k_grid", ("bm_k",), "int64", "", "the K values of the BIC grid")
declare(S, "bic_curve", ("bm_k",), "float64", "", "smallest CL-BIC over the starts of each K (Fig. 1)")
declare(S, "cl_curve", ("bm_k",), "float64", "log CL", "composite log-likelihood of the best start of each K")
declare(S, "best_start", ("bm_k",), "int64", "", "start id of the best start of each K")
declare(S, "k_hat", (), "int64", "", "the chosen K: argmin of bic_curve")
declare(S, "mu", ("bm_genotype", "bm_cluster"), "float64", "expression", "mu_ql of the fit at k_hat")
declare(S, "var", ("bm_genotype", "bm_cluster"), "float64", "expression^2", "variances of the fit at k_hat")
declare(S, "rho", ("bm_cluster",), "float64", "", "cluster proportions of the fit at k_hat")
declare(S, "pi", ("bm_genotype",), "float64", "", "row-class proportions of the fit at k_hat")
declare(S, "labels", ("bm_gene",), "int32", "", "gene-cluster label of each gene at k_hat")
declare(S, "gene_index", ("bm_gene",), "int64", "", "row of each fitted gene in expression/values")

C = "blockmix-scan"
declare(C, "position_index", ("bm_position",), "int64", "", "index of the position along genoprob's positions")
declare(C, "lr", ("bm_position",), "float64", "", "test (i): LR = 2 (cl_alt - cl_null) (spec A2.2; >= 0)")
declare(C, "cl_alt", ("bm_position",), "float64", "log CL", "composite log-likelihood of the alternative fit")
declare(C, "cl_null_position", ("bm_position",), "float64", "log CL",
        "composite log-likelihood of the null at the position (the same everywhere unless variance = block)")
declare(C, "mu", ("bm_position", "bm_genotype", "bm_cluster"), "float64", "expression",
        "estimated cluster means by genotype at the position")
declare(C, "var", ("bm_position", "bm_genotype", "bm_cluster"), "float64", "expression^2", "cell variances")
declare(C, "rho", ("bm_position", "bm_cluster"), "float64", "", "estimated cluster proportions")
declare(C, "iterations", ("bm_position",), "int64", "", "EM iterations of the alternative fit")
declare(C, "converged", ("bm_position",), "bool", "", "the alternative fit reached the tolerance")
declare(C, "degenerate", ("bm_position",), "bool", "", "a cluster proportion fell below 1e-8")
declare(C, "null_mu", ("bm_cluster",), "float64", "expression", "cluster means of the null (Q = 1) fit")
declare(C, "null_var", ("bm_cluster",), "float64", "expression^2", "cluster variances of the null fit")
declare(C, "null_rho", ("bm_cluster",), "float64", "", "cluster proportions of the null fit")
declare(C, "null_cl", (), "float64", "log CL", "composite log-likelihood of the null fit")
declare(C, "null_labels", ("bm_gene",), "int32", "", "gene-cluster labels of the null fit")

P = "blockmix-permutations"
declare(P, "permutation", ("bm_permutation",), "int64", "", "permutation id")
declare(P, "max_lr", ("bm_permutation",), "float64", "", "largest LR of test (i) over all positions")
declare(P, "argmax", ("bm_permutation",), "int64", "", "position index of that largest LR")
declare(P, "alphas", ("bm_alpha",), "float64", "", "levels of the thresholds")
declare(P, "thresholds", ("bm_alpha",), "float64", "",
        "genome-wide LR thresholds: (1 - alpha) quantiles of max_lr (numpy linear = R type 7)")

T = "blockmix-tests"
declare(T, "peak_position", ("bm_peak",), "int64", "", "genoprob position index of each tested peak")
declare(T, "peak_lr", ("bm_peak",), "float64", "", "test (i) LR at the peak")
declare(T, "peak_pvalue", ("bm_peak",), "float64", "p-value",
        "genome-wide permutation p-value (1 + #{max_lr >= LR}) / (P + 1)")
declare(T, "test_kind", ("bm_test",), "int64", "", "2, 3 or 4: test (ii), (iii) or (iv)")
declare(T, "test_cluster", ("bm_test",), "int64", "", "cluster l of the test")
declare(T, "test_other", ("bm_test",), "int64", "", "second cluster l' ((iii), (iv)); -1 for (ii)")
declare(T, "test_genotype", ("bm_test",), "int64", "", "genotype q of test (iv); -1 otherwise")
declare(T, "lr", ("bm_peak", "bm_test"), "float64", "", "LR = 2 (cl_full - cl_constrained) (spec A2.4)")
declare(T, "pvalue", ("bm_peak", "bm_test"), "float64", "p-value",
        "nominal chi-square p-value (df = number of constraints); anti-conservative for a composite LR")
declare(T, "reject", ("bm_peak", "bm_test"), "bool", "", "p-value <= alpha / family size (Bonferroni)")
declare(T, "failed", ("bm_peak", "bm_test"), "bool", "",
        "the constrained fit beat the full fit by more than 1e-6 |cl| (convergence failure, LR unreliable)")
declare(T, "n_affected", ("bm_peak",), "int64", "", "clusters for which test (ii) rejects (pleiotropy)")
declare(T, "interaction_direction", ("bm_peak", "bm_test"), "bool", "",
        "(iii) rejected with genotype effects of opposite sign in the two clusters (direction-varying)")
declare(T, "constrained_mu", ("bm_peak", "bm_test", "bm_genotype", "bm_cluster"), "float64", "expression",
        "cell means of each test's constrained (H0) fit: the model the bootstrap simulates from")
declare(T, "constrained_var", ("bm_peak", "bm_test", "bm_genotype", "bm_cluster"), "float64", "expression^2",
        "cell variances of each test's constrained fit")
declare(T, "constrained_rho", ("bm_peak", "bm_test", "bm_cluster"), "float64", "",
        "cluster proportions of each test's constrained fit")
declare(T, "bootstrap_lr", ("bm_peak", "bm_test", "bm_replicate"), "float64", "",
        "LR of each parametric-bootstrap replicate: data from the constrained fit (gene clusters from rho, genotypes "
        "from the position's probabilities), stream unit_rng(seed, 'blockmix-bootstrap', position, test id, "
        "replicate); H1 by EM from the generating parameters, H0 by ECM from H1 projected (empty when bootstrap = 0)")
declare(T, "bootstrap_pvalue", ("bm_peak", "bm_test"), "float64", "p-value",
        "parametric-bootstrap p-value (1 + #{bootstrap_lr >= lr}) / (B + 1); NaN when bootstrap = 0")
declare(T, "bootstrap_reject", ("bm_peak", "bm_test"), "bool", "",
        "bootstrap_pvalue <= alpha / family size (Bonferroni, as reject); false when bootstrap = 0")
declare(T, "n_affected_bootstrap", ("bm_peak",), "int64", "",
        "clusters for which test (ii) rejects by the bootstrap p-value (0 when bootstrap = 0)")
declare(T, "network_corr", ("bm_peak", "bm_genotype", "bm_cluster", "bm_cluster_other"), "float64", "",
        "correlation of the cluster scores z_il = sum_j c_jl y_ij / sum_j c_jl across individuals weighted by "
        "pi_iq at the peak: the cluster network of genotype q (spec A2.5, Figs. 6-7)")
declare(T, "network_corr_all", ("bm_peak", "bm_cluster", "bm_cluster_other"), "float64", "",
        "the same correlation over every individual unweighted (the overall network, Fig. 7A)")
declare(T, "network_n_eff", ("bm_peak", "bm_genotype"), "float64", "",
        "Kish effective number of individuals of each genotype, (sum pi_iq)^2 / sum pi_iq^2")
declare(T, "network_difference", ("bm_peak", "bm_cluster", "bm_cluster_other"), "float64", "",
        "homogeneity of a pair's correlation over the genotypes: sum_q (n_q - 3)(atanh r_q - zbar)^2 (NaN on the "
        "diagonal)")
declare(T, "network_difference_pvalue", ("bm_peak", "bm_cluster", "bm_cluster_other"), "float64", "p-value",
        "chi-square (Q - 1 df) p-value of network_difference (asymptotic; our test, the paper gives none)")
declare(T, "network_edge", (), "float64", "", "edge threshold on |network_corr| ([blockmix_tests] network_edge)")
declare(T, "spot_label", ("bm_spot",), "str", "", "chromosome and rank along it (II1, IV2, ...)",
        labels_for="bm_spot")
declare(T, "spot_first", ("bm_spot",), "int64", "", "genoprob position index of the spot's first significant position")
declare(T, "spot_last", ("bm_spot",), "int64", "", "genoprob position index of its last significant position")
declare(T, "spot_best", ("bm_spot",), "int64", "", "position index of the spot's largest LR")
declare(T, "spot_count", ("bm_spot",), "int64", "", "significant positions in the spot")
declare(T, "peak_spot", ("bm_peak",), "int64", "", "spot index of each tested peak")
