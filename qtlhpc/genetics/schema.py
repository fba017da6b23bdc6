"""Datasets of the ``genoprob`` stage: HMM genotype probabilities at markers and pseudomarkers.

``probs`` is float64: the probabilities feed likelihood ratios and variance-component fits that are
compared with R/qtl to many digits, and float32 rounding (1e-7 relative) would show up there.
"""

from qtlhpc.schema import declare

STAGE = "genoprob"

declare(STAGE, "probs", ("individual", "position", "genotype"), "float64", "probability",
        "P(true genotype | observed marker genotypes) of each individual at each position (HMM, Lander & "
        "Green 1987; as R/qtl calc.genoprob); sums to 1 over genotypes")
declare(STAGE, "individual_ids", ("individual",), "str", "",
        "identifier of each individual, as in the input files", labels_for="individual")
declare(STAGE, "genotype_states", ("genotype",), "str", "",
        "name of each genotype state (AA, AB, BB...), the order of the last axis of probs", labels_for="genotype")
declare(STAGE, "position_names", ("position",), "str", "",
        "marker name, or a pseudomarker name c<chromosome>.loc<cM> for grid positions", labels_for="position")
declare(STAGE, "position_chromosomes", ("position",), "str", "",
        "chromosome of each position")
declare(STAGE, "positions_cM", ("position",), "float64", "cM",
        "genetic map position of each position on its chromosome")
declare(STAGE, "is_marker", ("position",), "bool", "",
        "true where the position is a genotyped marker, false for a pseudomarker")
declare(STAGE, "marker_index", ("position",), "int64", "",
        "index of the position's marker in genoprob/marker_names, -1 for a pseudomarker")
declare(STAGE, "marker_names", ("marker",), "str", "",
        "name of each genotyped marker, in map order", labels_for="marker")
declare(STAGE, "chromosome_names", ("chromosome",), "str", "",
        "name of each chromosome, in map order", labels_for="chromosome")
declare(STAGE, "chromosome_position_start", ("chromosome",), "int64", "",
        "index of the chromosome's first position along the position axis (positions are grouped by chromosome)")
declare(STAGE, "chromosome_position_stop", ("chromosome",), "int64", "",
        "one past the index of the chromosome's last position along the position axis")
