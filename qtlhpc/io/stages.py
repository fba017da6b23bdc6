"""The shared ``expression`` input stage: the expression set is read once, into the results file.

Every expression method (eQTL mapping, SEM, CAL, block mixture, co-clustering) reads it from there,
each rank its own block of genes (:func:`qtlhpc.io.drivers.read_expression_block`), so it is never sent
whole to every rank.
"""

from qtlhpc.stages.spec import StageSpec

STAGES = (
    StageSpec("expression", "shared", "qtlhpc.io.drivers:run_expression",
              "read the expression set (and covariates) into the results file, aligned to the genotyped "
              "individuals, with the configured filters and transforms", reads=("input",)),
)
