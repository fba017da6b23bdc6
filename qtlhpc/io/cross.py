"""The cross: individuals, markers and their map, genotypes, phenotypes, covariates, expression.

Genotypes are stored as small integer codes, the same as R/qtl uses internally, so that the
genotype-probability HMM and every method share one convention:

========== ======================= ==================================================
cross type  genotype states          observed codes (0 = missing)
========== ======================= ==================================================
``bc``      AA, AB                   1 = AA, 2 = AB
``riself``  AA, BB                   1 = AA, 2 = BB
``risib``   AA, BB                   1 = AA, 2 = BB
``f2``      AA, AB, BB               1 = AA, 2 = AB, 3 = BB, 4 = not BB, 5 = not AA
``imf2``    as ``f2`` (immortalized F2, treated as an F2)
``generic`` any numeric genotype     float matrix, NaN missing, used as given
========== ======================= ==================================================

The X chromosome of a bc or f2 (``Cross.x_chromosome``, set by the R/qtl and R/qtl2 readers) holds
R/qtl's two-state codes instead: 1 = g1, 2 = g2, whose meaning depends on the individual's sex and
cross direction (``Cross.sex``, ``Cross.pgm``): female AA/AB, reverse-direction female BB/AB, male
AY/BY (:mod:`qtlhpc.genetics.xchr`).  Phenotype columns that are not numeric are kept apart, as text
(``Cross.text_phenotypes``).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Tuple

import numpy as np

MISSING = 0

CROSS_TYPES = ("bc", "riself", "risib", "f2", "imf2", "generic")

#: genotype states (true, fully informative genotypes) per cross type
GENOTYPE_STATES: Dict[str, Tuple[str, ...]] = {
    "bc": ("AA", "AB"),
    "riself": ("AA", "BB"),
    "risib": ("AA", "BB"),
    "f2": ("AA", "AB", "BB"),
    "imf2": ("AA", "AB", "BB"),
}

#: observed codes allowed per cross type (0 = missing); 4 and 5 are F2's partially informative codes
OBSERVED_CODES: Dict[str, Tuple[int, ...]] = {
    "bc": (0, 1, 2),
    "riself": (0, 1, 2),
    "risib": (0, 1, 2),
    "f2": (0, 1, 2, 3, 4, 5),
    "imf2": (0, 1, 2, 3, 4, 5),
}

#: which true states each observed code is compatible with (indices into GENOTYPE_STATES)
COMPATIBLE_STATES: Dict[str, Dict[int, Tuple[int, ...]]] = {
    "bc": {0: (0, 1), 1: (0,), 2: (1,)},
    "riself": {0: (0, 1), 1: (0,), 2: (1,)},
    "risib": {0: (0, 1), 1: (0,), 2: (1,)},
    "f2": {0: (0, 1, 2), 1: (0,), 2: (1,), 3: (2,), 4: (0, 1), 5: (1, 2)},
    "imf2": {0: (0, 1, 2), 1: (0,), 2: (1,), 3: (2,), 4: (0, 1), 5: (1, 2)},
}

#: the HMM's cross type for each cross type (immortalized F2 is treated as F2)
HMM_CROSS_TYPE = {"bc": "bc", "riself": "riself", "risib": "risib", "f2": "f2", "imf2": "f2"}

#: additive (Z) and dominance (W) codes of each true state, Xu (2013) / PEPIS:
#: Z = 1 (AA), 0 (AB), -1 (BB); W = 1 (AB), -1 (AA or BB)
ADDITIVE_CODE = {"AA": 1.0, "AB": 0.0, "BB": -1.0}
DOMINANCE_CODE = {"AA": -1.0, "AB": 1.0, "BB": -1.0}


def is_x_chromosome(chromosome: str, cross_type: str) -> bool:
    """R/qtl's rule: a chromosome named ``X`` or ``x`` is the X chromosome; only bc and f2 (and imf2)
    model it as such (R/qtl analyses the X of RILs as an autosome)."""
    return str(chromosome) in ("X", "x") and HMM_CROSS_TYPE.get(str(cross_type), "") in ("bc", "f2")


def check_cross_type(cross_type: str) -> str:
    """Return the canonical cross type name or raise ``ValueError`` naming the allowed ones."""
    name = str(cross_type).lower()
    aliases = {"backcross": "bc", "f2": "f2", "ril": "riself", "ri": "riself", "ril-selfing": "riself",
               "ril-sib": "risib", "immortalized-f2": "imf2", "if2": "imf2", "numeric": "generic"}
    name = aliases.get(name, name)
    if name not in CROSS_TYPES:
        raise ValueError(f"unknown cross type {cross_type!r}; expected one of {', '.join(CROSS_TYPES)}")
    return name


@dataclass
class Cross:
    """A mapping population, aligned by individual ID.

    Shapes: ``genotypes (n_individuals, n_markers)`` (int8 codes, or float for ``generic``),
    ``phenotypes (n_individuals, n_traits)`` float with NaN missing, ``covariates
    (n_individuals, n_covariates)``, ``expression (n_individuals, n_genes)``.
    Markers are in genome order: chromosome blocks in ``chromosome_order``, positions (cM)
    non-decreasing within a chromosome.
    """

    cross_type: str
    individuals: np.ndarray
    markers: np.ndarray
    chromosomes: np.ndarray
    positions: np.ndarray
    genotypes: np.ndarray
    phenotypes: np.ndarray = None
    phenotype_names: np.ndarray = None
    covariates: np.ndarray = None
    covariate_names: np.ndarray = None
    expression: Optional[np.ndarray] = None
    gene_names: Optional[np.ndarray] = None
    gene_chromosomes: Optional[np.ndarray] = None
    gene_positions: Optional[np.ndarray] = None
    #: user-supplied epistatic-model codes (PEPIS input), used as given when present
    additive_codes: Optional[np.ndarray] = None
    dominance_codes: Optional[np.ndarray] = None
    sources: Dict[str, str] = field(default_factory=dict)
    #: phenotype columns that are not numeric (R/qtl factors), '' missing: never analysed as traits
    text_phenotypes: Dict[str, np.ndarray] = field(default_factory=dict)
    #: sex (0 female, 1 male) and cross direction pgm (0/1) as R/qtl's getsex reads them; None if absent
    sex: Optional[np.ndarray] = None
    pgm: Optional[np.ndarray] = None
    #: the chromosome modelled as R/qtl's X (bc/f2): its genotypes are g1/g2 codes (qtlhpc.genetics.xchr)
    x_chromosome: Optional[str] = None

    def __post_init__(self):
        self.cross_type = check_cross_type(self.cross_type)
        self.individuals = np.asarray(self.individuals, dtype=str)
        self.markers = np.asarray(self.markers, dtype=str)
        self.chromosomes = np.asarray(self.chromosomes, dtype=str)
        self.positions = np.asarray(self.positions, dtype=float)
        n, m = len(self.individuals), len(self.markers)
        if self.cross_type == "generic":
            self.genotypes = np.asarray(self.genotypes, dtype=float)
        else:
            self.genotypes = np.asarray(self.genotypes, dtype=np.int8)
        if self.phenotypes is None:
            self.phenotypes = np.empty((n, 0))
            self.phenotype_names = np.empty(0, dtype=str)
        self.phenotypes = np.asarray(self.phenotypes, dtype=float).reshape(n, -1)
        self.phenotype_names = np.asarray(self.phenotype_names, dtype=str)
        if self.covariates is None:
            self.covariates = np.empty((n, 0))
            self.covariate_names = np.empty(0, dtype=str)
        self.covariates = np.asarray(self.covariates, dtype=float).reshape(n, -1)
        self.covariate_names = np.asarray(self.covariate_names, dtype=str)
        assert self.genotypes.shape == (n, m), (self.genotypes.shape, (n, m))
        assert self.chromosomes.shape == (m,) and self.positions.shape == (m,)
        assert self.phenotypes.shape[1] == len(self.phenotype_names)
        assert self.covariates.shape[1] == len(self.covariate_names)

    @property
    def n_individuals(self) -> int:
        return len(self.individuals)

    @property
    def n_markers(self) -> int:
        return len(self.markers)

    @property
    def n_traits(self) -> int:
        return self.phenotypes.shape[1]

    @property
    def genotype_states(self) -> Tuple[str, ...]:
        return GENOTYPE_STATES.get(self.cross_type, ())

    @property
    def chromosome_order(self) -> List[str]:
        """Chromosome names in the order they first appear."""
        seen: Dict[str, None] = {}
        for c in self.chromosomes:
            seen.setdefault(str(c), None)
        return list(seen)

    def chromosome_slices(self) -> Dict[str, slice]:
        """Marker column range of each chromosome (markers of a chromosome are contiguous)."""
        out = {}
        for name in self.chromosome_order:
            idx = np.flatnonzero(self.chromosomes == name)
            assert np.all(np.diff(idx) == 1), f"markers of chromosome {name} are not contiguous"
            out[name] = slice(int(idx[0]), int(idx[-1]) + 1)
        return out

    def trait(self, name: str) -> np.ndarray:
        hits = np.flatnonzero(self.phenotype_names == name)
        if len(hits) != 1:
            raise KeyError(f"no trait named {name!r}; traits are {', '.join(self.phenotype_names)}")
        return self.phenotypes[:, hits[0]]

    def subset_individuals(self, keep: np.ndarray) -> "Cross":
        """A new cross with the individuals selected by a boolean mask or index array."""
        keep = np.asarray(keep)
        per_individual = ("individuals", "genotypes", "phenotypes", "covariates", "expression",
                          "additive_codes", "dominance_codes", "sex", "pgm")
        changes = {name: getattr(self, name)[keep] for name in per_individual if getattr(self, name) is not None}
        text = {name: values[keep] for name, values in self.text_phenotypes.items()}
        return dataclasses.replace(self, sources=dict(self.sources), text_phenotypes=text, **changes)

    def is_x(self, chromosome: str) -> bool:
        """Whether ``chromosome`` is modelled as R/qtl's X (set by the readers, see ``x_chromosome``)."""
        return self.x_chromosome is not None and str(chromosome) == self.x_chromosome

    def x_classes(self) -> np.ndarray:
        """``(n,)`` 0 female (pgm 0), 1 female (pgm 1), 2 male (qtlhpc.genetics.xchr.individual_classes)."""
        sex = np.zeros(self.n_individuals, np.int8) if self.sex is None else self.sex
        pgm = np.zeros(self.n_individuals, np.int8) if self.pgm is None or HMM_CROSS_TYPE.get(
            self.cross_type) != "f2" else self.pgm
        return np.where(sex == 1, 2, np.where(pgm == 1, 1, 0)).astype(np.int8)
