"""The shared ``genoprob`` stage (every method that maps QTL in a cross reads it)."""

import math

from qtlhpc.stages.spec import PlanModel, StageSpec

BYTES = 8


def _genoprob_memory(size, ranks):
    p, s = size.positions, size.n_genotypes
    own = math.ceil(size.n_individuals / ranks)
    return own * p * s * BYTES + 2 * p * s * BYTES, "ceil(n/r)*p*s*8 + 2*p*s*8"


STAGES = (
    StageSpec("genoprob", "shared", "qtlhpc.genetics.drivers.genoprob:run_genoprob",
              "genotype probabilities on the marker/pseudomarker grid (R/qtl HMM)",
              reads=("input",),
              plan=PlanModel(_genoprob_memory, lambda size: size.n_individuals * size.positions * size.n_genotypes ** 2,
                             "individual x position x state^2 (HMM)", 5.4e7,
                             "bench/bench_genoprob.py: 1000 x 3980 x 3 in 0.66 s")),
)
