"""The co-clustering stages (GaneSh, Joshi et al. 2008), declared once.

``cocluster-runs`` is an array stage over runs (each run a unit with its own keyed stream and a checkpoint
block), merged by ``merge-cocluster-runs``; ``cocluster-matrix`` builds F by row blocks with rho and
H_fuzzy; ``cocluster-fuzzy`` extracts the fuzzy clusters with the eigensolver on the distributed F.

Plan models take genes = ``n_traits`` (G) and conditions = ``n_individuals`` (C) with the defaults
R = 10 runs, T = 100 iterations, S = 50 kept samples per run.
"""

from qtlhpc.stages.spec import ArrayUnits, PlanModel, StageSpec

DRIVERS = "qtlhpc.methods.cocluster.drivers"
RUNS, ITERATIONS, KEPT, ROW_CHUNK = 10, 100, 50, 256


def _clusters(genes: float) -> float:
    """Mean gene clusters assumed for F's density (F_r has about G^2 / K entries): ~ sqrt(G), at least 10."""
    return max(10.0, genes ** 0.5)


def _runs_memory(sizes, ranks):
    genes, conditions = sizes.n_traits, sizes.n_individuals
    total = 120 * genes * conditions + 4 * KEPT * genes
    return total, ("120 G C (the data, its squares and mask; the chain's slot arrays and statistics, G x C each) + "
                   "4 S G (the kept samples of one run); G genes, C conditions, S = 50 kept samples")


def _matrix_memory(sizes, ranks):
    genes = float(sizes.n_traits)
    rows = genes / ranks
    total = 4 * RUNS * KEPT * genes + 8 * ROW_CHUNK * genes + 12 * (RUNS + 3) * rows * genes / _clusters(genes)
    return total, ("4 R S G (every run's samples) + 8 B G (a dense chunk of B = row_chunk rows) + 12 (R + 3) (G / P) "
                   "(G / K) (CSR rows of each run's F_r, their mean and the two halves, K ~ sqrt(G) clusters); "
                   "F by row blocks: no rank holds all of it. G genes, P ranks, R = 10 runs, S = 50")


def _fuzzy_memory(sizes, ranks):
    genes = float(sizes.n_traits)
    rows = genes / ranks
    total = 36 * rows * genes / _clusters(genes) + 48 * genes + 80 * genes
    return total, ("36 (G / P) (G / K) (this rank's CSR rows of F, the deflated copy and the PETSc matrix, 12 bytes "
                   "an entry) + 48 G (residuals, eigenvectors gathered) + 80 G (memberships kept, ~10 per gene); "
                   "G genes, P ranks, K ~ sqrt(G)")


def _runs_work(sizes) -> float:
    return float(sizes.n_traits) * sizes.n_individuals * ITERATIONS * RUNS


STAGES = (
    StageSpec("cocluster-runs", "cocluster", f"{DRIVERS}.runs:run_runs",
              "GaneSh two-way (or one-way) Gibbs runs, each a work unit with its own stream; checkpointed per run",
              section="cocluster", reads=("expression",), needs=("expression",),
              array=ArrayUnits("run", lambda config: _run_units(config), "cocluster.runs", "merge-cocluster-runs"),
              plan=PlanModel(_runs_memory, _runs_work, "gene x condition x iteration x run", 1.1e6,
                             "bench/bench_cocluster.py: 6,000 genes x 173 conditions (K ~ 81), 0.94 s per "
                             "iteration of one run on one core")),
    StageSpec("merge-cocluster-runs", "cocluster", f"{DRIVERS}.runs:run_merge_runs",
              "merge the cocluster-runs task files (names missing runs)", section="cocluster",
              writes="cocluster-runs", merges="cocluster-runs", reads=("expression",), needs=("expression",)),
    StageSpec("cocluster-matrix", "cocluster", f"{DRIVERS}.matrix:run_matrix",
              "the co-clustering matrix F by row blocks (CSR), rho between halves, rho vs k, H_fuzzy",
              section="cocluster", needs=("cocluster-runs",),
              plan=PlanModel(_matrix_memory, lambda s: float(s.n_traits) ** 2 * RUNS * KEPT / _clusters(s.n_traits),
                             "co-clustered gene pair x sample", 1.5e7,
                             "bench/bench_cocluster.py: F of 6,000 genes from 50 samples (2.5 M entries) in "
                             "1.5 s")),
    StageSpec("cocluster-fuzzy", "cocluster", f"{DRIVERS}.fuzzy:run_fuzzy",
              "fuzzy clusters from successive largest eigenvectors of F (SLEPc on the distributed F)",
              section="cocluster_fuzzy", needs=("cocluster-matrix",),
              plan=PlanModel(_fuzzy_memory, lambda s: 500.0 * float(s.n_traits) ** 2 / _clusters(s.n_traits),
                             "fuzzy cluster x stored entry of F", 5.0e6,
                             "bench/bench_cocluster.py: 238 fuzzy clusters of 6,000 genes (F with 2.5 M "
                             "entries) in 21.3 s, SLEPc 14.4 s")),
)


def _run_units(config) -> int:
    options = config.section("cocluster")
    return int(options["max_runs"] if options["runs"] == "auto" else options["runs"])
