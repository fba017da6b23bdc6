"""Config sections of the eQTL method: ``[cis]`` (population cis-eQTL, FastQTL-compatible)."""

from qtlhpc.config import Option
from qtlhpc.stages.spec import SectionSpec

CIS_OPTIONS = {
    "genotypes": Option(str, "", "VCF/BCF of the samples' genotypes (bgzipped and indexed: read by region)"),
    "field": Option(str, "DS", "genotype FORMAT field: DS (dosage) or GT (alt allele count)", ("DS", "GT")),
    "window": Option(int, 1_000_000, "cis window: variants within this many bp of a gene's TSS (FastQTL's "
                                     "--window)", minimum=0),
    "permutations": Option(list, [1000], "permutations per gene, as FastQTL's --permute: [P]; [hits, max] "
                                         "(adaptive: stop once `hits` permutations reach the observed |r|, "
                                         "or after max); or [min, hits, max]", minimum=1),
    "chunks": Option(int, 64, "genes are split into this many chunks, the work units (checkpoint blocks, "
                              "SLURM array units; FastQTL's --chunk K N)", minimum=1),
    "min_maf": Option(float, 0.0, "drop variants whose minor allele frequency over the samples is below this",
                      minimum=0.0, maximum=0.5),
    "max_missing": Option(float, 1.0, "drop variants missing in more than this fraction of the samples",
                          minimum=0.0, maximum=1.0),
    "nominal": Option(bool, False, "also write the nominal pass: every gene-variant pair in cis, FastQTL's "
                                   "nominal columns, one gzipped TSV per chunk beside the results file"),
    "fdr": Option(float, 0.05, "q-value level at which a gene is called an eGene (reported in the log)",
                  minimum=0.0, maximum=1.0, exclusive_minimum=True, exclusive_maximum=True),
}

SECTIONS = (
    SectionSpec("cis", CIS_OPTIONS, "eqtl", "population cis-eQTL with permutations, as FastQTL"),
)

# ---------------------------------------------------------------------------------------------------------
# The mapping of a cross (Liu, de la Fuente & Hoeschele 2008): stages cross-eqtl and cross-trans.
# [cross_map] is read by both: the physical position of each marker decides which markers are a gene's own
# (cis) and which marker is closest to a regulator (trans); its own section keeps a change of the PC-mapping
# settings ([cross_eqtl]) from rerunning the trans scan, and one of the trans settings from rerunning cross-eqtl.

CROSS_MAP_OPTIONS = {
    "marker_positions": Option(str, "", "TSV of the physical map: marker, chromosome, position (bp), one line per "
                                        "marker of [input] (a header line is allowed); empty: the [input] map "
                                        "positions are taken as bp (needs map_unit = \"bp\")"),
    "map_unit": Option(str, "cM", "unit of the [input] map positions: cM (then marker_positions is needed) or bp",
                       ("cM", "bp")),
}

CROSS_EQTL_OPTIONS = {
    "alpha": Option(float, 0.05, "BH FDR level of the cis, cis-trans, PC scan and PC-target tests",
                    minimum=0.0, maximum=1.0, exclusive_minimum=True, exclusive_maximum=True),
    "logp_drop": Option(float, 1.5, "confidence interval: contiguous markers with -log10 p >= peak - logp_drop",
                        minimum=0.0),
    "min_overlap": Option(float, 0.8, "eQTL merge into one region when their CIs overlap by more than this "
                                      "(|A n B| / min(|A|, |B|), bp), or share the peak marker",
                          minimum=0.0, maximum=1.0),
    "merge_rule": Option(str, "clump", "region merging: clump (strongest first) or transitive (connected "
                                       "components)", ("clump", "transitive")),
    "clusters": Option(int, 100, "k-means clusters of the e-traits for PC mapping (capped at n_genes / 2)",
                       minimum=1),
    "restarts": Option(int, 10, "k-means++ restarts (restart i draws from unit_rng(seed, 'eqtl-kmeans', i))",
                       minimum=1),
    "centroid": Option(str, "sign_mean", "k-means centroid: sign_mean (minimises sum 1 - |r|) or "
                                         "principal_component", ("sign_mean", "principal_component")),
    "min_eigenvalue": Option(float, 1.5, "keep the PCs of a cluster's correlation matrix with a larger eigenvalue",
                             minimum=0.0),
}

CROSS_TRANS_OPTIONS = {
    "regulator_block": Option(int, 256, "regulators per work unit (checkpoint block); memory per rank grows as "
                                        "113 x regulator_block x n_genes bytes", minimum=1),
    "interaction": Option(bool, True, "model (1) with the interaction b3 y_r x_r (false: b1 y_r + b2 x_r only)"),
    "min_recombination": Option(float, 0.25, "pairs whose closest markers have a recombination fraction <= this "
                                             "are not tested", minimum=0.0, maximum=0.5,
                                exclusive_maximum=True),
    "keep_pvalue": Option(float, 0.05, "pairs with p_iut <= keep_pvalue are kept for the BH step (q-values <= "
                                       "keep_pvalue are exact)", minimum=0.0, maximum=1.0,
                          exclusive_minimum=True),
    "fdr": Option(float, 0.05, "BH level: kept pairs with q <= fdr are the trans table (fdr <= keep_pvalue)",
                  minimum=0.0, maximum=1.0, exclusive_minimum=True, exclusive_maximum=True),
}

SECTIONS = SECTIONS + (
    SectionSpec("cross_map", CROSS_MAP_OPTIONS, "eqtl", "physical positions of the cross's markers, for the "
                                                        "mapping of a cross (cross-eqtl, cross-trans)"),
    SectionSpec("cross_eqtl", CROSS_EQTL_OPTIONS, "eqtl", "cis, cis-trans and PC mapping of a haploid cross "
                                                          "(Liu et al. 2008)"),
    SectionSpec("cross_trans", CROSS_TRANS_OPTIONS, "eqtl", "trans mapping of a haploid cross: model (1) for "
                                                            "every regulator-target pair, IUT, BH"),
)

# ---------------------------------------------------------------------------------------------------------
# Population trans-eQTL nominal pass (QTLtools trans --nominal), method "eqtl-trans": stage trans.

TRANS_OPTIONS = {
    "genotypes": Option(str, "", "VCF/BCF of the samples' genotypes (bgzipped and indexed: each work unit reads "
                                 "its variants by region)"),
    "field": Option(str, "DS", "genotype FORMAT field: DS (dosage) or GT (alt allele count)", ("DS", "GT")),
    "threshold": Option(float, 1e-5, "keep the gene-variant pairs with nominal p <= threshold (QTLtools trans "
                                     "--threshold)", minimum=0.0, maximum=1.0,
                        exclusive_minimum=True),
    "cis_window": Option(int, 5_000_000, "pairs with the variant on the gene's chromosome within this many bp of "
                                         "the gene's start (BED start + 1) are not tested (QTLtools trans --window, "
                                         "default 5e6); negative: test every pair"),
    "variant_block": Option(int, 20_000, "VCF records per work unit (checkpoint block): consecutive records of one "
                                         "chromosome, never splitting a position", minimum=1),
}

SECTIONS = SECTIONS + (
    SectionSpec("trans", TRANS_OPTIONS, "eqtl", "population trans-eQTL nominal pass: every gene against every "
                                                "variant outside the cis window, pairs with p <= threshold "
                                                "(QTLtools trans --nominal)"),
)
