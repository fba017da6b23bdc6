"""The eQTL stages, declared once.

``cis`` is an array stage over chunks of genes (FastQTL's ``--chunk K N`` with a checkpoint per chunk);
``merge-cis`` gathers the task files, names missing chunks and computes the q-values over all genes.
"""

from qtlhpc.stages.spec import ArrayUnits, StageSpec

DRIVERS = "qtlhpc.methods.eqtl.drivers"

from qtlhpc.stages.spec import PlanModel  # noqa: E402


def _window_variants(sizes) -> float:
    return float(sizes.n_window_variants if sizes.n_window_variants is not None else min(sizes.n_markers, 8000))


def _cis_memory(sizes, ranks):
    """Bytes per rank of cis (one chunk at a time; chunks = 64 by default): the chunk's expression, the VCF
    region's dosages and residualised copies, the permuted phenotypes and the null correlations of one gene."""
    genes, samples, permutations = sizes.n_traits, sizes.n_individuals, sizes.n_permutations
    chunk_genes = -(-genes // 64)
    region = sizes.n_markers / 64 + 2 * _window_variants(sizes)
    total = 8 * chunk_genes * samples + 20 * region * samples + 8 * permutations * samples \
        + 4 * permutations * min(_window_variants(sizes), 2048)
    return total, ("8 g N (a chunk of g = G / 64 genes) + 20 V_r N (the chunk's VCF region, V_r ~ M / 64 + 2 W "
                   "variants: dosages, residualised, float32) + 8 P N (permuted phenotypes) + 4 P min(W, 2048) "
                   "(null correlations); G genes, N samples, M variants, W = variants in a cis window, "
                   "P permutations")


def _cis_work(sizes) -> float:
    return float(sizes.n_traits) * (sizes.n_permutations + 1) * _window_variants(sizes) * sizes.n_individuals


STAGES = (
    StageSpec("cis", "eqtl", f"{DRIVERS}.cis:run_cis",
              "population cis-eQTL: nominal best variant, permutations and beta-approximated p-value per gene, "
              "q-values", reads=("expression",), needs=("expression",),
              array=ArrayUnits("chunk", lambda config: config.section("cis")["chunks"], "cis.chunks",
                               "merge-cis"),
              plan=PlanModel(_cis_memory, _cis_work, "gene x (permutation + 1) x window variant x sample",
                             3.46e10, "bench/bench_eqtl_cis.py: FastQTL's example (364 genes, 373 samples, "
                             "7,949 variants per cis window on average, 1,000 permutations) in 31.2 s on one "
                             "core")),
    StageSpec("merge-cis", "eqtl", f"{DRIVERS}.cis:run_merge_cis",
              "merge the cis task files (names missing chunks), q-values over all genes",
              section="cis", writes="cis", merges="cis", reads=("expression",), needs=("expression",)),
)

# ---------------------------------------------------------------------------------------------------------
# The mapping of a cross (Liu, de la Fuente & Hoeschele 2008), method "eqtl-cross" (its own pipeline:
# `qtlhpc run eqtl-cross CONFIG` runs expression, cross-eqtl and cross-trans; `qtlhpc run eqtl` is unchanged).


def _cross_trans_memory(sizes, ranks):
    """Bytes per rank of cross-trans (the genes are the traits, G = n_traits): the block's trans_block outputs
    and their float32 copies, the prepared inputs and the expression, one canonical tile."""
    genes, individuals, block = sizes.n_traits, sizes.n_individuals, 256
    total = 113 * block * genes + 8 * 7 * genes * individuals + 8 * 18 * 64 * 1024
    return total, ("113 R G (a block of R = regulator_block regulators: trans_block's outputs, 89 R G, and their "
                   "float32 copies, 24 R G) + 56 G N (expression and prepared inputs) + 9.4 MB (a GEMM tile); "
                   "G = genes (n_traits), N = individuals")


def _cross_eqtl_memory(sizes, ranks):
    """Bytes on rank 0 of cross-eqtl (the other ranks wait): expression, its ranks and standardised copy, the
    genotypes, and the p- and q-value tables of the PC scan (about one PC per five genes at yeast scale)."""
    genes, individuals, markers = sizes.n_traits, sizes.n_individuals, sizes.n_markers
    total = 24 * genes * individuals + 8 * individuals * markers + 16 * (genes / 5) * markers
    return total, ("24 G N (expression, ranks, standardised) + 8 N M (genotypes) + 16 (G / 5) M (PC scan p- and "
                   "q-values, ~G/5 PCs); rank 0 only; G genes, N individuals, M markers")


STAGES = STAGES + (
    StageSpec("cross-eqtl", "eqtl-cross", f"{DRIVERS}.cross:run_cross_eqtl",
              "eQTL of a haploid cross (Liu et al. 2008): cis mapping, cis-eQTL regions, cis-trans targets, "
              "PC mapping", section="cross_eqtl", reads=("input", "expression", "cross_map"),
              needs=("expression",),
              plan=PlanModel(_cross_eqtl_memory, lambda s: float(s.n_traits) * s.n_markers, "gene x marker",
                             2.3e6, "bench/bench_eqtl_cross_pipeline.py: 4,589 genes x 2,956 markers x 112 "
                             "segregants in 6.0 s on rank 0", splits=False)),
    StageSpec("cross-trans", "eqtl-cross", f"{DRIVERS}.cross:run_cross_trans",
              "trans mapping of a haploid cross: model (1) for every regulator-target pair, IUT, BH (regulator "
              "blocks, checkpointed, claimed by the ranks)", section="cross_trans",
              reads=("input", "expression", "cross_map"), needs=("expression",),
              plan=PlanModel(_cross_trans_memory, lambda s: float(s.n_traits) ** 2,
                             "regulator-target pair", 1.3e6,
                             "bench/bench_eqtl_cross_pipeline.py: 20.7 M pairs (4589 genes x 112 segregants) in "
                             "16 s on 1 rank")),
)

# ---------------------------------------------------------------------------------------------------------
# Population trans-eQTL nominal pass (QTLtools trans --nominal), method "eqtl-trans" (its own pipeline:
# `qtlhpc run eqtl-trans CONFIG` runs expression and trans; `qtlhpc run eqtl` is unchanged).


def _trans_memory(sizes, ranks):
    """Bytes per rank of trans: the genes (values and standardised, 16 G N), a unit of R = 20,000 records
    (dosages read and standardised, 24 R N) and a GEMM block of 1,024 variants (r and masks, 10 x 1024 G)."""
    genes, samples, records = sizes.n_traits, sizes.n_individuals, 20_000
    total = 16 * genes * samples + 24 * records * samples + 10 * 1024 * genes
    return total, ("16 G N (expression, standardised) + 24 R N (a unit of R = trans.variant_block records) + "
                   "10 x 1024 G (a GEMM block of correlations and masks); G = genes (n_traits), N = samples")


STAGES = STAGES + (
    StageSpec("trans", "eqtl-trans", f"{DRIVERS}.trans:run_trans",
              "population trans-eQTL nominal pass (QTLtools trans --nominal): every gene against every variant "
              "outside the cis window, pairs with p <= threshold (variant blocks, checkpointed, claimed by the "
              "ranks)", reads=("expression",), needs=("expression",),
              plan=PlanModel(_trans_memory, lambda s: float(s.n_traits) * float(s.n_markers),
                             "gene-variant pair", 8.7e6,
                             "bench/bench_eqtl_trans_population.py: 52 M pairs (608 genes x 85,485 GT variants "
                             "x 358 samples) in 6.0 s on 1 rank, of which 4.4 s reading the VCF")),
)
