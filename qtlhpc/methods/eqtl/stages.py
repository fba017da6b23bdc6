"""The eQTL stages, declared once.

``cis`` is an array stage over chunks of genes (FastQTL's ``--chunk K N`` with a checkpoint per chunk);
``merge-cis`` gathers the task files, names missing chunks and computes the q-values over all genes.
"""

from qtlhpc.stages.spec import ArrayUnits, StageSpec

DRIVERS = "qtlhpc.methods.eqtl.drivers"

STAGES = (
    StageSpec("cis", "eqtl", f"{DRIVERS}.cis:run_cis",
              "population cis-eQTL: nominal best variant, permutations and beta-approximated p-value per gene, "
              "q-values", reads=("expression",), needs=("expression",),
              array=ArrayUnits("chunk", lambda config: config.section("cis")["chunks"], "cis.chunks",
                               "merge-cis")),
    StageSpec("merge-cis", "eqtl", f"{DRIVERS}.cis:run_merge_cis",
              "merge the cis task files (names missing chunks), q-values over all genes",
              section="cis", writes="cis", merges="cis", reads=("expression",), needs=("expression",)),
)
