"""Config sections of the shared genetics stages: ``[genoprob]`` and ``[simulate]``."""

from qtlhpc.config import Option, as_option
from qtlhpc.genetics.simulate import SIMULATE_OPTIONS
from qtlhpc.stages.spec import SectionSpec

GENOPROB_OPTIONS = {
    "step": Option(float, 1.0, "pseudomarker grid spacing in cM (0: markers only)"),
    "error_prob": Option(float, 1e-4, "genotyping error probability of the HMM"),
    "map_function": Option(str, "haldane", "map function", ("haldane", "kosambi", "c-f", "morgan")),
    "block_individuals": Option(int, 64, "individuals per checkpointed block"),
}

SIMULATE_SECTION = {key: as_option(value) for key, value in SIMULATE_OPTIONS.items()}
SIMULATE_SECTION["write_format"] = Option(str, "rqtl-csv", "file format the simulated cross is written in",
                                          ("rqtl-csv", "rqtl-csvs", "pepis"))
SIMULATE_SECTION["write_to"] = Option(str, "simulated", "file prefix of the simulated cross (relative)")

SECTIONS = (
    SectionSpec("genoprob", GENOPROB_OPTIONS, "qtlhpc.genetics", "genotype probabilities (R/qtl HMM)"),
    SectionSpec("simulate", SIMULATE_SECTION, "qtlhpc.genetics", "`qtlhpc simulate`: a cross with planted QTL",
                optional=True),
)
