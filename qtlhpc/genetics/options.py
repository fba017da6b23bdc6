"""Config sections of the shared genetics stages: ``[genoprob]`` and ``[simulate]``."""

from qtlhpc.config import Option, as_option
from qtlhpc.genetics.simulate import SIMULATE_OPTIONS
from qtlhpc.stages.spec import SectionSpec

GENOPROB_OPTIONS = {
    "step": Option(float, 1.0, "pseudomarker grid spacing in cM (0: markers only)", minimum=0.0),
    "error_prob": Option(float, 1e-4, "genotyping error probability of the HMM", minimum=0.0, maximum=1.0,
                         exclusive_minimum=True, exclusive_maximum=True),
    "map_function": Option(str, "haldane", "map function", ("haldane", "kosambi", "c-f", "morgan")),
    "block_individuals": Option(int, 64, "individuals per checkpointed block", minimum=1),
}

#: the ranges of the numeric [simulate] keys (their types and defaults are in SIMULATE_OPTIONS)
SIMULATE_RANGES = {
    "n_individuals": dict(minimum=1),
    "n_chromosomes": dict(minimum=1),
    "chromosome_length_cM": dict(minimum=0.0),
    "markers_per_chromosome": dict(minimum=1),
    "missing_rate": dict(minimum=0.0, maximum=1.0, exclusive_maximum=True),
    "error_rate": dict(minimum=0.0, maximum=1.0, exclusive_maximum=True),
    "seed": dict(minimum=0),
    "polygenic_variance": dict(minimum=0.0),
    "noise_variance": dict(minimum=0.0),
    "n_traits": dict(minimum=1),
    "n_covariates": dict(minimum=0),
}

SIMULATE_SECTION = {key: as_option(value, **SIMULATE_RANGES.get(key, {})) for key, value in SIMULATE_OPTIONS.items()}
SIMULATE_SECTION["write_format"] = Option(str, "rqtl-csv", "file format the simulated cross is written in",
                                          ("rqtl-csv", "rqtl-csvs", "pepis"))
SIMULATE_SECTION["write_to"] = Option(str, "simulated", "file prefix of the simulated cross (relative)")

SECTIONS = (
    SectionSpec("genoprob", GENOPROB_OPTIONS, "qtlhpc.genetics", "genotype probabilities (R/qtl HMM)"),
    SectionSpec("simulate", SIMULATE_SECTION, "qtlhpc.genetics", "`qtlhpc simulate`: a cross with planted QTL",
                optional=True),
)
