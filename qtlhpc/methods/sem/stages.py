"""The SEM stages (Liu, de la Fuente & Hoeschele 2008), declared once; method ``sem`` (`qtlhpc run sem CONFIG`).

``sem-edn`` builds the encompassing directed network from the ``cross-eqtl`` (and ``cross-trans``) results and
stores it with the search's data; ``sem-search`` runs the Occam's-window search paths as work units claimed by
the ranks, each finished path checkpointed in the results file, and is an array stage over paths;
``sem-merge`` gathers the task files of an array run, naming missing paths.  Both search stages then store
the models over all paths, the best model's coefficients and the inclusion frequencies.
"""

from qtlhpc.stages.spec import ArrayUnits, PlanModel, StageSpec

DRIVERS = "qtlhpc.methods.sem.drivers"

#: without a sem-edn in the results file: EDN edges per gene assumed (the paper's yeast sub-EDN: 1472 edges on
#: 265 genes = 5.6) and eQTL nodes per gene (241 / 265)
EDGES_PER_GENE = 6
EQTL_PER_GENE = 1
#: factors up to this size are fitted with dense inverses (kernels.DENSE_MAX)
DENSE_MAX = 300
#: measured by `python bench/bench_sem.py one --genes 30 --lines 300 --delta 2` (docs/benchmarks.md): an EDN of
#: d = 218 edges, 21,147 evaluations (97 per edge), 8,517 factor fits (0.4 per evaluation) in 294 s wall
EVALUATIONS_PER_EDGE = 100
FITS_PER_EVALUATION = 0.4
EVALUATION_RATE = 72.0
#: bytes of one cached factor fit (key tuples, log-likelihood, warm-start coefficients): an estimate
CACHE_ENTRY_BYTES = 1024


def _edn_needs(config):
    base = ("expression", "cross-eqtl")
    return base + (("cross-trans",) if config.section("sem_edn")["trans"] else ())


def _edn(sizes):
    """(p genes, q eQTL nodes, d edges, paths) of the EDN: from sem-edn when the plan found it, else estimated."""
    p = getattr(sizes, "n_edn_genes", None) or sizes.n_traits
    q = getattr(sizes, "n_edn_eqtl", None) or EQTL_PER_GENE * p
    d = getattr(sizes, "n_edn_edges", None) or EDGES_PER_GENE * p
    paths = getattr(sizes, "n_sem_paths", None) or 4
    return p, q, d, paths


def _search_memory(sizes, ranks):
    """Bytes per rank of sem-search: Y and X with their centred copies, a dense factor's inverse and work, and the
    factor-fit cache of the paths one rank computes (one evaluator per rank, shared by its paths)."""
    import math

    p, q, d, paths = _edn(sizes)
    c = min(p, DENSE_MAX)
    fits = FITS_PER_EVALUATION * EVALUATIONS_PER_EDGE * d * math.ceil(paths / max(ranks, 1))
    total = 16 * sizes.n_individuals * (p + q) + 24 * c * c + CACHE_ENTRY_BYTES * fits + 2000 * d
    return total, ("16 N (p + q) (Y, X, centred copies) + 24 c^2 (dense factor inverse and work, c = min(p, 300)) + "
                   "1 KB x 0.4 x 100 d x ceil(paths / ranks) (cached factor fits: 100 evaluations per edge and "
                   "0.4 fits per evaluation, as measured on a 30-gene EDN) + 2000 d (candidate masks); p genes, "
                   "q eQTL, d edges of the EDN (from sem-edn in the results file, else p = G, q = G, d = 6 G), "
                   "N samples")


def _search_work(sizes):
    _, _, d, paths = _edn(sizes)
    return float(paths) * EVALUATIONS_PER_EDGE * d


STAGES = (
    StageSpec("sem-edn", "sem", f"{DRIVERS}.edn:run_sem_edn",
              "SEM encompassing directed network: the paper's three steps per eQTL region and Eq. (2) on the "
              "trans pairs, from the cross-eqtl / cross-trans results; Y and X of the search",
              section="sem_edn", reads=("input",), needs=_edn_needs),
    StageSpec("sem-search", "sem", f"{DRIVERS}.search:run_sem_search",
              "SEM Occam's window search over the EDN's submodels with BIC(delta): search paths as work units "
              "(claimed by the ranks, each checkpointed), then the models, best model and inclusion frequencies",
              section="sem_search", needs=("sem-edn",),
              array=ArrayUnits("path", lambda config: config.section("sem_search")["n_paths"], "sem_search.n_paths",
                               "sem-merge"),
              plan=PlanModel(_search_memory, _search_work, "model evaluation", EVALUATION_RATE,
                             "bench/bench_sem.py one --genes 30 --lines 300 --delta 2: 21,147 evaluations of an EDN "
                             "of 218 edges in 294 s wall (load ~5; docs/benchmarks.md); 100 evaluations per EDN "
                             "edge and path assumed")),
    StageSpec("sem-merge", "sem", f"{DRIVERS}.search:run_sem_merge",
              "merge the sem-search task files (names missing paths), then the models, best model and inclusion "
              "frequencies", section="sem_search", writes="sem-search", merges="sem-search", needs=("sem-edn",)),
)
