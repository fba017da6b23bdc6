"""The input sections: ``[input]`` (the cross, keys in :data:`qtlhpc.io.loader.INPUT_OPTIONS`) and
``[expression]`` (an expression set and its covariates, read once into the results file)."""

from qtlhpc.config import Option, as_option
from qtlhpc.io.loader import INPUT_OPTIONS
from qtlhpc.stages.spec import SectionSpec

EXPRESSION_FORMATS = ("tsv", "bed")

EXPRESSION_OPTIONS = {
    "format": Option(str, "bed", "bed (FastQTL/QTLtools/tensorQTL phenotype BED, bgzipped) or tsv (a matrix and "
                                 "a gene annotation table)", EXPRESSION_FORMATS),
    "file": Option(str, "", "the expression file (relative to the config file)"),
    "annotation": Option(str, "", "tsv: gene annotation table (gene id, chromosome, start, end, strand)"),
    "orientation": Option(str, "auto", "tsv: genes-in-rows, samples-in-rows, or auto (matched against the "
                                       "annotation's genes and the samples)",
                          ("auto", "genes-in-rows", "samples-in-rows")),
    "region": Option(str, "", "read only the genes overlapping this region (chr or chr:start-end, 1-based)"),
    "covariates": Option(str, "", "covariates file, FastQTL/QTLtools layout: one row per covariate"),
    "categorical": Option(str, "dummy", "non-numeric covariate rows: dummy (indicator columns) or error",
                          ("dummy", "error")),
    "variability_filter": Option(float, 0.0, "drop this fraction of the least variable genes (Liu et al. 2008: "
                                             "0.2)", minimum=0.0, maximum=1.0, exclusive_maximum=True),
    "normalize": Option(str, "none", "per gene: none, inverse-normal (rank-based) or standardize",
                        ("none", "inverse-normal", "standardize")),
    "regress_covariates": Option(bool, False, "replace each gene's values by its residuals on the covariates "
                                              "(as FastQTL); the mapping stages then use no covariates"),
}

SECTIONS = (
    SectionSpec("input", {key: as_option(value) for key, value in INPUT_OPTIONS.items()}, "qtlhpc.io",
                "the input files of the cross", optional=True),
    SectionSpec("expression", EXPRESSION_OPTIONS, "qtlhpc.io",
                "expression data: genes x samples, gene positions, covariates", optional=True),
)
