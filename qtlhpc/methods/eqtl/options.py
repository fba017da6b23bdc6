"""Config sections of the eQTL method: ``[cis]`` (population cis-eQTL, FastQTL-compatible)."""

from qtlhpc.config import Option
from qtlhpc.stages.spec import SectionSpec

CIS_OPTIONS = {
    "genotypes": Option(str, "", "VCF/BCF of the samples' genotypes (bgzipped and indexed: read by region)"),
    "field": Option(str, "DS", "genotype FORMAT field: DS (dosage) or GT (alt allele count)", ("DS", "GT")),
    "window": Option(int, 1_000_000, "cis window: variants within this many bp of a gene's TSS (FastQTL's "
                                     "--window)"),
    "permutations": Option(list, [1000], "permutations per gene, as FastQTL's --permute: [P]; [hits, max] "
                                         "(adaptive: stop once `hits` permutations reach the observed |r|, "
                                         "or after max); or [min, hits, max]"),
    "chunks": Option(int, 64, "genes are split into this many chunks, the work units (checkpoint blocks, "
                              "SLURM array units; FastQTL's --chunk K N)"),
    "fdr": Option(float, 0.05, "q-value level at which a gene is called an eGene (reported in the log)"),
}

SECTIONS = (
    SectionSpec("cis", CIS_OPTIONS, "eqtl", "population cis-eQTL with permutations, as FastQTL"),
)
