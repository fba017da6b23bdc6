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

# ---------------------------------------------------------------------------------------------------------
# The mapping of a cross (Liu, de la Fuente & Hoeschele 2008), method "eqtl-cross" (its own pipeline:
# `qtlhpc run eqtl-cross CONFIG` runs expression, cross-eqtl and cross-trans; `qtlhpc run eqtl` is unchanged).

from qtlhpc.stages.spec import PlanModel  # noqa: E402


def _cross_trans_memory(sizes, ranks):
    """Bytes per rank of cross-trans (the genes are the traits, G = n_traits): the block's trans_block outputs
    and their float32 copies, the prepared inputs and the expression, one canonical tile."""
    genes, individuals, block = sizes.n_traits, sizes.n_individuals, 256
    total = 113 * block * genes + 8 * 7 * genes * individuals + 8 * 18 * 64 * 1024
    return total, ("113 R G (a block of R = regulator_block regulators: trans_block's outputs, 89 R G, and their "
                   "float32 copies, 24 R G) + 56 G N (expression and prepared inputs) + 9.4 MB (a GEMM tile); "
                   "G = genes (n_traits), N = individuals")


STAGES = STAGES + (
    StageSpec("cross-eqtl", "eqtl-cross", f"{DRIVERS}.cross:run_cross_eqtl",
              "eQTL of a haploid cross (Liu et al. 2008): cis mapping, cis-eQTL regions, cis-trans targets, "
              "PC mapping", section="cross_eqtl", reads=("input", "expression", "cross_map"),
              needs=("expression",)),
    StageSpec("cross-trans", "eqtl-cross", f"{DRIVERS}.cross:run_cross_trans",
              "trans mapping of a haploid cross: model (1) for every regulator-target pair, IUT, BH (regulator "
              "blocks, checkpointed, claimed by the ranks)", section="cross_trans",
              reads=("input", "expression", "cross_map"), needs=("expression",),
              plan=PlanModel(_cross_trans_memory, lambda s: float(s.n_traits) ** 2,
                             "regulator-target pair", 1.3e6,
                             "bench/bench_eqtl_cross_pipeline.py: 20.7 M pairs (4589 genes x 112 segregants) in "
                             "16 s on 1 rank")),
)
