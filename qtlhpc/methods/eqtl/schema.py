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
declare_dimension("cis_chunk", "a chunk of genes of the cis scan (genes block_range(n_genes, chunk, cis.chunks))")
declare(STAGE, "nominal_pairs", ("cis_chunk",), "int64", "",
        "gene-variant pairs in the chunk's nominal table (cis.nominal; 0 without)")
declare(STAGE, "nominal_files", ("cis_chunk",), "str", "",
        "the chunk's nominal table: gzipped TSV with FastQTL's nominal columns, relative to the results file")
declare(STAGE, "pi0", (), "float64", "", "estimated proportion of genes without a cis-eQTL (qvalue's pi0)")

# ---------------------------------------------------------------------------------------------------------
# The mapping of a cross (Liu, de la Fuente & Hoeschele 2008): cross-eqtl (cis, regions, cis-trans, PC
# mapping) and cross-trans (model (1) for every regulator-target pair).  Genes are expression/gene_ids'.

from qtlhpc.methods.eqtl.cross_trans import TRANS_BLOCK_VARIABLES  # noqa: E402

# the expression stage's dimensions (qtlhpc/io/schema.py, word for word: this module may be imported first)
# "gene" and "sample" are declared by qtlhpc/io/schema.py (the registry loads the io room's schema first)

declare_dimension("flank", "a marker flanking a gene: 0 the last at or before its start, 1 the first after it")
declare_dimension("cis_eqtl", "a significant cis-eQTL (one per cis gene), in gene order")
declare_dimension("cis_region", "a cis-eQTL region (merged eQTL), in marker order of its first CI marker")
declare_dimension("cis_trans_hit", "a significant (cis region, target gene) test of the cis-trans mapping")
declare_dimension("pc", "a retained principal component of an e-trait cluster (by cluster, then eigenvalue)")
declare_dimension("pc_eqtl", "a significant PC-eQTL (a PC's best marker on a chromosome), by PC then marker")
declare_dimension("pc_region", "a PC-eQTL region (merged PC-eQTL), in marker order of its first CI marker")
declare_dimension("pc_target_hit", "a significant (PC region, gene) test at the region's peak marker")
declare_dimension("regulator", "a gene as the regulator r of model (1), in expression/gene_ids order")
declare_dimension("target", "a gene as the target t of model (1), in expression/gene_ids order")
declare_dimension("trans_pair", "a regulator-target pair with BH q <= cross_trans.fdr, by regulator then target")

STAGE = "cross-eqtl"
declare(STAGE, "marker_chromosomes", ("marker",), "str", "", "chromosome of each marker on the physical map")
declare(STAGE, "marker_positions_bp", ("marker",), "float64", "bp", "physical position of each marker")
declare(STAGE, "closest_marker", ("gene",), "int64", "", "marker nearest the gene's start (-1: none on its "
                                                         "chromosome); x_r of model (1)")
declare(STAGE, "cis_markers", ("gene", "flank"), "int64", "", "markers tested in cis (-1: none)")
declare(STAGE, "cis_marker_pvalues", ("gene", "flank"), "float64", "p-value", "Kruskal-Wallis p at each cis marker")
declare(STAGE, "cis_pvalue", ("gene",), "float64", "p-value", "min cis marker p x number of cis markers (<= 1)")
declare(STAGE, "cis_qvalue", ("gene",), "float64", "", "BH q of cis_pvalue over the tested genes")
declare(STAGE, "cis_peak_marker", ("gene",), "int64", "", "cis marker with the smaller p (-1: untested)")
declare(STAGE, "cis_significant", ("gene",), "bool", "", "cis_qvalue <= cross_eqtl.alpha")


def _declare_regions(prefix: str, eqtl: str, region: str, trait: str, trait_meaning: str) -> None:
    """The eQTL and regions of one mapping (``cis`` or ``pc``): an EqtlRegions as stored."""
    declare(STAGE, f"{prefix}_eqtl_{trait}", (eqtl,), "int64", "", trait_meaning)
    declare(STAGE, f"{prefix}_eqtl_peak", (eqtl,), "int64", "", "peak marker of the eQTL")
    declare(STAGE, f"{prefix}_eqtl_logp", (eqtl,), "float64", "-log10 p", "-log10 p at the peak")
    declare(STAGE, f"{prefix}_eqtl_first", (eqtl,), "int64", "", "first marker of the eQTL's CI (inclusive)")
    declare(STAGE, f"{prefix}_eqtl_last", (eqtl,), "int64", "", "last marker of the eQTL's CI (inclusive)")
    declare(STAGE, f"{prefix}_eqtl_region", (eqtl,), "int64", "", "region the eQTL belongs to")
    declare(STAGE, f"{prefix}_region_peak", (region,), "int64", "", "peak marker of the region (its strongest eQTL's)")
    declare(STAGE, f"{prefix}_region_first", (region,), "int64", "", "first CI marker of the region (inclusive)")
    declare(STAGE, f"{prefix}_region_last", (region,), "int64", "", "last CI marker of the region (inclusive)")
    declare(STAGE, f"{prefix}_region_start_bp", (region,), "float64", "bp", "physical start of the region's CI")
    declare(STAGE, f"{prefix}_region_end_bp", (region,), "float64", "bp", "physical end of the region's CI")


def _declare_hits(prefix: str, hit: str, what: str) -> None:
    """The significant (region, gene) tests of a peak-marker mapping (a PeakTargets as a table)."""
    declare(STAGE, f"{prefix}_region", (hit,), "int64", "", f"the {what} region")
    declare(STAGE, f"{prefix}_gene", (hit,), "int64", "", "the target gene (row of expression/values)")
    declare(STAGE, f"{prefix}_pvalue", (hit,), "float64", "p-value", "Kruskal-Wallis p at the region's peak marker")
    declare(STAGE, f"{prefix}_qvalue", (hit,), "float64", "", "BH q over all tested (region, gene) pairs")
    declare(STAGE, f"{prefix}_tests", (), "int64", "", "number of (region, gene) tests in the BH family")


_declare_regions("cis", "cis_eqtl", "cis_region", "gene", "the cis gene (row of expression/values)")
_declare_hits("cis_trans", "cis_trans_hit", "cis-eQTL")
declare(STAGE, "n_clusters", (), "int64", "", "k-means clusters used (cross_eqtl.clusters capped at n_genes / 2)")
declare(STAGE, "kmeans_labels", ("gene",), "int64", "", "k-means cluster of each gene (distance 1 - |r|)")
declare(STAGE, "kmeans_objective", (), "float64", "", "within-cluster distance sum of the best restart")
declare(STAGE, "kmeans_restart", (), "int64", "", "the restart that won")
declare(STAGE, "pc_cluster", ("pc",), "int64", "", "cluster of the PC")
declare(STAGE, "pc_eigenvalue", ("pc",), "float64", "", "eigenvalue of the cluster's correlation matrix")
declare(STAGE, "pc_scores", ("pc", "sample"), "float64", "", "the PC's value in each sample")
declare(STAGE, "pc_loadings", ("pc", "gene"), "float64", "", "eigenvector entry of each gene (0 outside the cluster)")
declare(STAGE, "pc_scan_pvalue", ("pc", "marker"), "float64", "p-value", "Kruskal-Wallis p of each PC at each marker")
declare(STAGE, "pc_scan_qvalue", ("pc", "marker"), "float64", "", "BH q over all PC x marker tests")
_declare_regions("pc", "pc_eqtl", "pc_region", "pc", "the PC (row of pc_scores)")
_declare_hits("pc_target", "pc_target_hit", "PC-eQTL")

STAGE = "cross-trans"
declare(STAGE, "p_iut", ("regulator", "target"), "float64", "p-value",
        "intersection-union p max(p_b1, p_b2) of model (1); NaN where not tested (written in regulator blocks)")
for _name in ("b1", "b2", "se_b1", "se_b2", "p_b1", "p_b2"):
    _dims, _, _meaning = TRANS_BLOCK_VARIABLES[_name]
    declare(STAGE, _name, _dims, "float32", "p-value" if _name.startswith("p_") else "",
            _meaning + " (float32; NaN where not tested)")
declare(STAGE, "block_tests", ("block",), "int64", "", "pairs tested in each regulator block")
declare(STAGE, "n_tests", (), "int64", "", "pairs tested in all (the BH family size)")
declare(STAGE, "n_kept", (), "int64", "", "pairs with p_iut <= cross_trans.keep_pvalue")
declare(STAGE, "pair_regulator", ("trans_pair",), "int64", "", "regulator gene r (row of expression/values)")
declare(STAGE, "pair_target", ("trans_pair",), "int64", "", "target gene t")
for _name in ("b1", "b2", "se_b1", "se_b2", "p_b1", "p_b2"):
    declare(STAGE, f"pair_{_name}", ("trans_pair",), "float64", "p-value" if _name.startswith("p_") else "",
            TRANS_BLOCK_VARIABLES[_name][2] + " (from the float32 matrix)")
declare(STAGE, "pair_p_iut", ("trans_pair",), "float64", "p-value", "intersection-union p-value")
declare(STAGE, "pair_q_iut", ("trans_pair",), "float64", "", "BH q of p_iut over all n_tests tests (exact)")

# ---------------------------------------------------------------------------------------------------------
# Population trans-eQTL nominal pass (QTLtools trans --nominal), stage trans.  Work units are blocks of
# consecutive VCF records of one chromosome (trans.variant_block records, never splitting a position).

declare_dimension("trans_block", "a work unit of the trans scan: consecutive VCF records of one chromosome")
declare_dimension("trans_hit", "a gene-variant pair with p <= trans.threshold, by block, then variant (file "
                               "order), then gene (expression order)")

STAGE = "trans"
declare(STAGE, "block_chromosomes", ("trans_block",), "str", "", "chromosome of the block's records")
declare(STAGE, "block_first_positions", ("trans_block",), "int64", "bp", "POS of the block's first record")
declare(STAGE, "block_last_positions", ("trans_block",), "int64", "bp", "POS of the block's last record")
declare(STAGE, "block_records", ("trans_block",), "int64", "", "VCF records in the block")
declare(STAGE, "block_variants", ("trans_block",), "int64", "",
        "variants tested in the block (biallelic records; QTLtools skips the others)")
declare(STAGE, "block_tests", ("trans_block",), "int64", "", "gene-variant pairs tested (outside the cis window)")
declare(STAGE, "block_hits", ("trans_block",), "int64", "", "pairs with p <= trans.threshold in the block")
declare(STAGE, "hit_files", ("trans_block",), "str", "",
        "the block's hits as gzipped TSV (phenotype_id phenotype_chr phenotype_start variant_id variant_chr "
        "variant_pos pval r slope slope_se), relative to the results file")
declare(STAGE, "n_tests", (), "int64", "", "gene-variant pairs tested in all blocks")
declare(STAGE, "hit_gene", ("trans_hit",), "int64", "", "the gene (row of expression/values)")
declare(STAGE, "hit_gene_ids", ("trans_hit",), "str", "", "identifier of the gene")
declare(STAGE, "hit_variant_ids", ("trans_hit",), "str", "", "identifier of the variant (VCF ID)")
declare(STAGE, "hit_variant_chromosomes", ("trans_hit",), "str", "", "chromosome of the variant")
declare(STAGE, "hit_variant_positions", ("trans_hit",), "int64", "bp", "position of the variant (VCF POS)")
declare(STAGE, "hit_r", ("trans_hit",), "float64", "", "correlation of gene and dosage after covariates")
declare(STAGE, "hit_pval", ("trans_hit",), "float64", "p-value", "two-sided nominal p-value, dof = n - 2 - k")
declare(STAGE, "hit_slope", ("trans_hit",), "float64", "phenotype per allele", "covariate-adjusted OLS slope")
declare(STAGE, "hit_slope_se", ("trans_hit",), "float64", "phenotype per allele", "standard error of the slope")
declare(STAGE, "hit_block", ("trans_hit",), "int64", "", "the work unit (trans_block) of the hit")
