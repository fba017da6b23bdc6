"""Datasets of the CAL stages (de Ridder et al. 2010)."""

from qtlhpc.schema import declare, declare_dimension

declare_dimension("cal_locus", "a binary locus (marker cluster centroid, or a column of the user's matrix)")
declare_dimension("cal_strain", "a strain: an expression sample with loci, in expression/sample_ids order")
declare_dimension("cal_target", "an expression target (a gene, or a correlation cluster's centroid)")
declare_dimension("cal_searched", "a target whose fopt reaches f_tol (searched), in target order")
declare_dimension("cal_topology", "a topology of the catalogue, in catalogue order")
declare_dimension("cal_replicate", "a replicate of the search: 0 the observed data, b >= 1 strain permutation b "
                                   "(in an array task's file, its own replicates)")
declare_dimension("cal_slot", "an input slot of a topology (A, B, C)")
declare_dimension("cal_gene", "a gene of the expression stage, in expression/gene_ids order")

STAGE = "cal-prepare"
declare(STAGE, "strain_ids", ("cal_strain",), "str", "", "strain id", labels_for="cal_strain")
declare(STAGE, "loci", ("cal_strain", "cal_locus"), "uint8", "", "binary locus matrix (1 = second parental allele)")
declare(STAGE, "locus_names", ("cal_locus",), "str", "", "locus (first..last member marker)", labels_for="cal_locus")
declare(STAGE, "locus_chromosomes", ("cal_locus",), "str", "", "chromosome of the locus ('' for a user matrix)")
declare(STAGE, "locus_first_marker", ("cal_locus",), "int64", "", "index of the locus's first marker in [input] "
                                                                  "(-1 for a user matrix)")
declare(STAGE, "target_ids", ("cal_target",), "str", "", "target: gene id, or 'cluster<k>:<first gene>'",
        labels_for="cal_target")
declare(STAGE, "target_values", ("cal_target", "cal_strain"), "float64", "expression",
        "target expression (a gene's values, or the mean z-scored profile of a cluster)")
declare(STAGE, "target_sizes", ("cal_target",), "int64", "", "genes in the target")
declare(STAGE, "gene_targets", ("cal_gene",), "int64", "", "target of each gene of the expression stage")
declare(STAGE, "fopt", ("cal_target",), "float64", "", "best score over all outputs (threshold split)")
declare(STAGE, "f_tol", (), "float64", "", "tolerance: the cal.tolerance_quantile quantile of fopt")
declare(STAGE, "searched", ("cal_searched",), "int64", "", "targets with fopt >= f_tol")
declare(STAGE, "topology_names", ("cal_topology",), "str", "", "topology expression over A, B, C",
        labels_for="cal_topology")
declare(STAGE, "topology_tables", ("cal_topology",), "int64", "", "truth table (bit r = output at input row r)")
declare(STAGE, "topology_inputs", ("cal_topology",), "int64", "", "inputs of the topology")

STAGE = "cal-search"
declare(STAGE, "replicates", ("cal_replicate",), "int64", "", "replicate id of each row (0 observed)")
declare(STAGE, "score", ("cal_replicate", "cal_searched", "cal_topology"), "float64", "",
        "best score of the topology (f_tol when censored)")
declare(STAGE, "censored", ("cal_replicate", "cal_searched", "cal_topology"), "bool", "",
        "no network of the topology reaches f_tol")
declare(STAGE, "inputs", ("cal_replicate", "cal_searched", "cal_topology", "cal_slot"), "int32", "",
        "locus of each input slot (-1 unused or censored)")
declare(STAGE, "output", ("cal_replicate", "cal_searched", "cal_topology"), "uint64", "",
        "network output, bit tau = strain tau (in the replicate's permuted order of the expression)")
declare(STAGE, "nodes", ("cal_replicate", "cal_searched", "cal_topology"), "int64", "",
        "bounds and leaves evaluated by the search")
declare(STAGE, "seconds", ("cal_replicate", "cal_searched", "cal_topology"), "float64", "s", "search time")

STAGE = "cal-select"
declare(STAGE, "pvalue", ("cal_searched", "cal_topology"), "float64", "p-value",
        "pooled empirical p-value against the topology's null (qvalue empPvals, pool = TRUE); 1 when censored")
declare(STAGE, "qvalue", ("cal_searched", "cal_topology"), "float64", "", "Storey q-value per topology")
declare(STAGE, "pi0", ("cal_topology",), "float64", "", "estimated proportion of true nulls per topology")
declare(STAGE, "null_size", ("cal_topology",), "int64", "", "null values per topology (replicates x searched)")
declare(STAGE, "n_significant", ("cal_topology",), "int64", "", "targets with q <= fdr")
declare(STAGE, "n_selected", ("cal_topology",), "int64", "", "targets whose selected topology it is")
declare(STAGE, "selected", ("cal_searched",), "int64", "",
        "selected topology: minimal q among q <= fdr (ties: fewer inputs, larger score, catalogue order); -1 none")
declare(STAGE, "selected_q", ("cal_searched",), "float64", "", "q-value of the selected topology (NaN none)")
declare(STAGE, "fdr", (), "float64", "", "the FDR level of significance and selection (cal_select.fdr)")
