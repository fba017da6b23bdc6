"""The CAL stages (de Ridder et al. 2010), declared once; method ``cal`` (`qtlhpc run cal CONFIG`).

``cal-prepare`` binarises the loci, builds the targets, computes fopt and f_tol and fixes the catalogue;
``cal-search`` is an array stage over replicates (0 = observed, b = strain permutation b) whose work units are
(replicate, topology, block of targets), claimed by the ranks; ``merge-cal-search`` gathers the task files and
names missing replicates; ``cal-select`` computes the p-values, q-values and the parsimonious topology.
"""

from qtlhpc.stages.spec import ArrayUnits, PlanModel, StageSpec

DRIVERS = "qtlhpc.methods.cal.drivers"

#: searches per second per rank at the paper's size (T = 24, L = 453, singles + paper7), measured by
#: bench/bench_cal_search.py (see docs/benchmarks.md)
SEARCH_RATE = 291.0
TOPOLOGIES = 9
SEARCHED_FRACTION = 0.25


def _search_memory(sizes, ranks):
    """Bytes per rank of cal-search: the targets (8 G T), the pair-xor table of the parity search (24 L^2 / 2)
    and one block's results."""
    genes, strains, loci = sizes.n_traits, sizes.n_individuals, sizes.n_markers
    total = 8 * genes * strains + 12 * loci * loci + 8 * loci * 64
    return total, "8 G T (targets) + 12 L^2 (pair-xor table) + 512 L; G = targets (n_traits), T strains, L loci"


def _search_work(sizes):
    return float(sizes.n_traits) * SEARCHED_FRACTION * TOPOLOGIES * (sizes.n_permutations + 1)


STAGES = (
    StageSpec("cal-prepare", "cal", f"{DRIVERS}.prepare:run_cal_prepare",
              "CAL inputs: binary loci (marker clusters or a user matrix), expression targets (genes or "
              "correlation-cluster centroids), fopt, tolerance f_tol, topology catalogue",
              section="cal", reads=("expression", "input"), needs=("expression",)),
    StageSpec("cal-search", "cal", f"{DRIVERS}.search:run_cal_search",
              "CAL exact search of every topology for every searched target, observed (replicate 0) and on "
              "strain permutations (work units: replicate x topology x target block, claimed by the ranks)",
              section="cal", needs=("cal-prepare",),
              array=ArrayUnits("replicate", lambda config: config.section("cal")["permutations"] + 1,
                               "cal.permutations", "merge-cal-search"),
              plan=PlanModel(_search_memory, _search_work, "target-topology search", SEARCH_RATE,
                             "bench/bench_cal_search.py: 291 searches/s per rank in CPU time (T = 24, L = 453, "
                             "singles + paper7); 25% of the targets searched, [cal] permutations "
                             "replicates")),
    StageSpec("merge-cal-search", "cal", f"{DRIVERS}.search:run_merge_cal_search",
              "merge the cal-search task files (names missing replicates)",
              section="cal", writes="cal-search", merges="cal-search", needs=("cal-prepare",)),
    StageSpec("cal-select", "cal", f"{DRIVERS}.select:run_cal_select",
              "CAL pooled permutation p-values, Storey q-values per topology, parsimonious topology per target",
              section="cal_select", reads=("cal",), needs=("cal-prepare", "cal-search")),
)
