"""Datasets of the eQTL stages."""

from qtlhpc.schema import declare, declare_dimension

declare_dimension("cis_gene", "a gene of the cis scan, in the order of the expression stage's genes (or of "
                              "cis/gene_index in an array task's file)")

STAGE = "cis"
declare(STAGE, "gene_index", ("cis_gene",), "int64", "", "row of the gene in expression/values")
declare(STAGE, "gene_ids", ("cis_gene",), "str", "", "identifier of the gene", labels_for="cis_gene")
declare(STAGE, "num_var", ("cis_gene",), "int64", "", "variants in the gene's cis window")
declare(STAGE, "variant_ids", ("cis_gene",), "str", "", "best variant (largest |r|; empty when no variant)")
declare_dimension("id_byte", "a byte of a fixed-width UTF-8 identifier")
declare(STAGE, "variant_id_bytes", ("cis_gene", "id_byte"), "uint8", "",
        "the best variant's id as UTF-8 bytes, zero-padded (checkpointed per chunk; variant_ids is its text)")
declare(STAGE, "variant_positions", ("cis_gene",), "int64", "bp", "position of the best variant (1-based)")
declare(STAGE, "tss_distance", ("cis_gene",), "int64", "bp", "best variant's position minus the gene's TSS")
declare(STAGE, "maf", ("cis_gene",), "float64", "", "minor allele frequency of the best variant")
declare(STAGE, "r", ("cis_gene",), "float64", "", "correlation of phenotype and best variant after covariates")
declare(STAGE, "pval_nominal", ("cis_gene",), "float64", "p-value", "nominal p-value of the best variant")
declare(STAGE, "slope", ("cis_gene",), "float64", "phenotype per allele", "regression slope of the best variant")
declare(STAGE, "slope_se", ("cis_gene",), "float64", "phenotype per allele", "standard error of the slope")
declare(STAGE, "beta_shape1", ("cis_gene",), "float64", "", "shape1 of the Beta fitted to the permutation "
                                                            "best p-values (Ongen et al. 2016)")
declare(STAGE, "beta_shape2", ("cis_gene",), "float64", "", "shape2 of that Beta")
declare(STAGE, "true_df", ("cis_gene",), "float64", "", "effective degrees of freedom learned from the permutations")
declare(STAGE, "pval_true_df", ("cis_gene",), "float64", "p-value", "best variant's p-value on true_df")
declare(STAGE, "pval_perm", ("cis_gene",), "float64", "p-value", "direct permutation p-value (1 + hits)/(1 + num_perm)")
declare(STAGE, "pval_beta", ("cis_gene",), "float64", "p-value", "beta-approximated permutation p-value")
declare(STAGE, "num_perm", ("cis_gene",), "int64", "", "permutations run for the gene")
declare(STAGE, "qvalue", ("cis_gene",), "float64", "",
        "Storey q-value of pval_beta over the genes with variants (Bioconductor qvalue's rules); NaN without")
declare(STAGE, "qvalue_bh", ("cis_gene",), "float64", "", "Benjamini-Hochberg adjusted pval_beta")
declare(STAGE, "pi0", (), "float64", "", "estimated proportion of genes without a cis-eQTL (qvalue's pi0)")
