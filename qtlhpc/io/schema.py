"""Datasets of the ``expression`` input stage (the expression set every expression method reads)."""

from qtlhpc.schema import declare, declare_dimension

declare_dimension("gene", "a gene (an expression trait, e-trait), in the order of the expression input after "
                          "filters")
declare_dimension("sample", "a sample (individual) of the expression data, aligned to the genotyped ones")
declare_dimension("dropped_gene", "a gene dropped by the expression variability filter")
declare_dimension("expression_covariate", "a covariate of the expression data (one row of its covariates "
                                          "file; dummy columns for labels)")

STAGE = "expression"
declare(STAGE, "values", ("gene", "sample"), "float64", "expression",
        "expression value of each gene in each sample after the configured filters and transforms; NaN missing")
declare(STAGE, "gene_ids", ("gene",), "str", "", "identifier of each gene", labels_for="gene")
declare(STAGE, "gene_chromosomes", ("gene",), "str", "", "chromosome of each gene")
declare(STAGE, "gene_starts", ("gene",), "int64", "bp", "start of each gene, 1-based")
declare(STAGE, "gene_ends", ("gene",), "int64", "bp", "end of each gene, 1-based, closed")
declare(STAGE, "gene_strands", ("gene",), "str", "", "strand of each gene: +, - or .")
declare(STAGE, "gene_tss", ("gene",), "int64", "bp", "transcription start site: start on + and ., end on -")
declare(STAGE, "sample_ids", ("sample",), "str", "", "identifier of each sample", labels_for="sample")
declare(STAGE, "covariate_names", ("expression_covariate",), "str", "", "name of each covariate column",
        labels_for="expression_covariate")
declare(STAGE, "covariates", ("expression_covariate", "sample"), "float64", "",
        "covariate values (empty when no covariates file was given)")
declare(STAGE, "covariates_regressed", (), "bool", "",
        "true when values are already residuals on the covariates (expression.regress_covariates): the mapping "
        "stages then use no covariates")
declare(STAGE, "dropped_gene_ids", ("dropped_gene",), "str", "",
        "genes read but dropped by the variability filter")
