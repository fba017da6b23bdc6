"""The PEPIS stages, declared once: driver, sections read, stages needed, array units, plan model.

Memory per rank (bytes of float64; n individuals, m loci, t traits, k kinships, and the block sizes of
the config) is the ``memory`` of each :class:`PlanModel`; ``qtlhpc plan`` and docs/memory.md print it.
Throughputs were measured on a 2-core Xeon @ 2.8 GHz VM, one rank with one BLAS thread unless said.
"""

from qtlhpc.stages.spec import ArrayUnits, PlanModel, StageSpec

BYTES = 8
REML_ITERATIONS = 30
DRIVERS = "qtlhpc.methods.pepis.drivers"


def _kinship_memory(size, ranks):
    n, m = size.n_individuals, size.n_markers
    rows = min(size.block_rows, n)
    return rows * n * BYTES * 6 + n * m * BYTES * 2, "block_rows*n*8*6 + n*m*8*2"


def _varcomp_memory(size, ranks):
    n, t, k = size.n_individuals, size.n_traits, size.n_kinships
    return k * n * n * BYTES + 4 * n * n * BYTES + n * t * BYTES, "k*n^2*8 + 4*n^2*8 + n*t*8"


def _scan1d_memory(size, ranks):
    n, m, t = size.n_individuals, size.n_markers, size.n_traits
    block = min(size.block_markers, m)
    return (2 * n * n * BYTES + 2 * n * block * BYTES * 2 + n * t * BYTES,
            "2*n^2*8 + 2*n*block_markers*8*2 + n*t*8")


def _scan2d_memory(size, ranks):
    n, m = size.n_individuals, size.n_markers
    tile = min(size.tile, m)
    # the kernel forms the four epistatic columns for at most 1,024 pairs at a time
    return (2 * n * n * BYTES + 2 * n * tile * BYTES * 2 + 4 * n * min(tile * tile, 1024) * BYTES
            + tile * tile * BYTES * 4, "2*n^2*8 + 2*n*tile*8*2 + 4*n*min(tile^2,1024)*8 + tile^2*8*4")


def _permutation_memory(size, ranks):
    n, m = size.n_individuals, size.n_markers
    block, batch = min(size.block_markers, m), min(size.batch, size.n_permutations)
    return (2 * n * n * BYTES + n * batch * BYTES + 2 * n * block * BYTES * 2 + batch * m * BYTES,
            "2*n^2*8 + n*batch*8 + 2*n*block_markers*8*2 + batch*m*8")


def _permutation_work(size):
    n, m, t = size.n_individuals, size.n_markers, size.n_traits
    per_permutation = n * n * m * t
    if "2d" in size.permutation_scans:
        per_permutation += n * 16 * size.n_pairs * t
    return per_permutation * size.n_permutations


def _scan_needs(scan: str):
    """Stages a scan reads: genoprob for the HK model, the kinships and variance components otherwise."""
    def needs(config):
        model = config.section(scan)["model"]
        return ("genoprob",) if model == "hk" else ("genoprob", "kinship", "varcomp")
    return needs


def _permutation_needs(config):
    scans = config.section("permutations")["scans"]
    models = [config.section({"1d": "scan1d", "2d": "scan2d"}[scan])["model"] for scan in scans]
    return ("genoprob",) if all(model == "hk" for model in models) else ("genoprob", "kinship", "varcomp")


STAGES = (
    StageSpec("kinship", "pepis", f"{DRIVERS}.kinship:run_kinship",
              "the six kinship matrices A, D, AxA, AxD, DxA, DxD (row blocks)",
              reads=("input", "genoprob"), needs=("genoprob",),
              plan=PlanModel(_kinship_memory, lambda s: s.n_individuals ** 2 * s.n_markers * 6,
                             "multiply-add of n^2 * m * 6", 3.0e9,
                             "bench/bench_kinship.py: 1000 x 20000 in 19.9 s on 2 BLAS threads", splits=True)),
    StageSpec("varcomp", "pepis", f"{DRIVERS}.varcomp:run_varcomp",
              "polygenic variance components by REML, per trait",
              reads=("input",), needs=("genoprob", "kinship"),
              plan=PlanModel(_varcomp_memory, lambda s: s.n_individuals ** 3 * REML_ITERATIONS * s.n_traits,
                             "n^3 flop x 30 REML iterations", 1.9e11,
                             "bench/bench_reml.py: n = 10000, 6 kernels, 78 s on 2 BLAS threads")),
    StageSpec("scan1d", "pepis", f"{DRIVERS}.scan1d:run_scan1d",
              "1D scan: the 2-df LRT of every locus (random, fixed or Haley-Knott model)",
              reads=("input", "genoprob", "varcomp"), needs=_scan_needs("scan1d"),
              plan=PlanModel(_scan1d_memory, lambda s: s.n_individuals ** 2 * s.n_markers * s.n_traits,
                             "n^2 multiply-add per locus per trait", 2.0e8,
                             "bench/bench_pipeline.py: 278 x 1620 random model in 0.6 s")),
    StageSpec("scan2d", "pepis", f"{DRIVERS}.scan2d:run_scan2d",
              "2D scan: the epistatic LRT of every marker pair, in tiles of the pair triangle",
              reads=("input", "genoprob", "varcomp"), needs=_scan_needs("scan2d"),
              plan=PlanModel(_scan2d_memory, lambda s: s.n_individuals * 16 * s.n_pairs * s.n_traits,
                             "n x 16 per locus pair per trait", 2.4e8,
                             "bench/bench_scan2d.py: 278 x 1619 random model, 53,000 pairs/s")),
    StageSpec("permutations", "pepis", f"{DRIVERS}.permutations:run_permutations",
              "genome-wide thresholds from permuted phenotypes (an array stage over permutation ids)",
              reads=("input", "genoprob", "varcomp", "scan1d", "scan2d"), needs=_permutation_needs,
              array=ArrayUnits("permutation", lambda config: config.section("permutations")["n_permutations"],
                               "permutations.n_permutations", "merge-permutations"),
              plan=PlanModel(_permutation_memory, _permutation_work,
                             "n^2 multiply-add per locus per permutation", 2.0e8, "as scan1d (one scan per permutation)")),
    StageSpec("merge-permutations", "pepis", f"{DRIVERS}.permutations:run_merge_permutations",
              "merge the permutation task files into the results (names the missing ids)",
              section="permutations", writes="permutations", merges="permutations",
              reads=("input", "genoprob", "varcomp", "scan1d", "scan2d"), needs=_permutation_needs),
)
