"""The block-mixture stages (Wang et al. 2016), declared once: method "blockmix" (`qtlhpc run blockmix CONFIG`
runs genoprob, expression, select, scan, permutations and tests).

``blockmix-select`` and ``blockmix-permutations`` are array stages (units: (K, start) pairs; permutation ids),
each with its merge stage; ``blockmix-scan`` and ``blockmix-tests`` spread checkpointed blocks over the ranks.

Plan models: the cost unit is one cell-class term of an EM iteration (one Gaussian density and its weights),
n G Q K per iteration at a general position (n G K at a fully informative one); I = 30 iterations per fit and
K = 43 clusters are assumed (the paper's K; `qtlhpc plan` sizes have no K), G = n_traits genes.
"""

from qtlhpc.stages.spec import ArrayUnits, PlanModel, StageSpec

DRIVERS = "qtlhpc.methods.blockmix.drivers"
PLAN_CLUSTERS = 43
PLAN_ITERATIONS = 30
#: n G Q K units per second per rank: bench/bench_blockmix.py, one EM iteration at a pseudomarker (both genotypes
#: active, the slower case) took 0.62 s of CPU for 97.5 M units; at a marker the same units take 0.13-0.14 s
TERMS_PER_SECOND = 1.5e8
MEASURED = ("bench/bench_blockmix.py: one EM iteration at 208 x 5,450 x 43 x 2 in 0.62 s CPU at a pseudomarker, "
            "0.13-0.14 s at a marker (see docs/benchmarks.md)")


def _memory(sizes, ranks):
    n, genes, k, q = sizes.n_individuals, sizes.n_traits, PLAN_CLUSTERS, sizes.n_genotypes
    positions = sizes.n_positions or sizes.n_markers
    total = 16 * n * genes + 8 * n * positions * q + 8 * 3 * (n + genes) * q * k + 8 * genes * k * 2
    return total, ("16 n G (Y and its transpose) + 8 n P Q (genotype probabilities) + 24 (n + G) Q K (E-step "
                   "sums) + 16 G K (column layer); K = 43")


def _fit_terms(sizes):
    return float(sizes.n_individuals) * sizes.n_traits * sizes.n_genotypes * PLAN_CLUSTERS * PLAN_ITERATIONS


def _scan_work(sizes):
    return _fit_terms(sizes) * (sizes.n_positions or sizes.n_markers)


def _permutation_work(sizes):
    return _scan_work(sizes) * sizes.n_permutations


def _select_work(sizes):
    return _fit_terms(sizes) * 10 * 9 * 3            # 10 starts x 9 K values, ~100 iterations per start


STAGES = (
    StageSpec("blockmix-select", "blockmix", f"{DRIVERS}.select:run_select",
              "block mixture stage 1: composite-likelihood BIC over a grid of K, seeded starts as (K, start) units",
              section="blockmix_select", reads=("blockmix",), needs=("expression", "genoprob"),
              array=ArrayUnits("start", lambda config: _select_units(config), "blockmix_select.starts",
                               "blockmix-merge-select"),
              plan=PlanModel(_memory, _select_work, "cell-class term", TERMS_PER_SECOND, MEASURED)),
    StageSpec("blockmix-merge-select", "blockmix", f"{DRIVERS}.select:run_merge_select",
              "merge the blockmix-select task files (names missing units), BIC curve and K-hat",
              section="blockmix_select", writes="blockmix-select", merges="blockmix-select", reads=("blockmix",),
              needs=("expression", "genoprob")),
    StageSpec("blockmix-scan", "blockmix", f"{DRIVERS}.scan:run_scan",
              "block mixture stage 2: LR of test (i) at every genoprob position from the null fit (position "
              "blocks, checkpointed, claimed by the ranks)", section="blockmix_scan", reads=("blockmix",),
              needs=("expression", "genoprob", "blockmix-select"),
              plan=PlanModel(_memory, _scan_work, "cell-class term", TERMS_PER_SECOND, MEASURED)),
    StageSpec("blockmix-permutations", "blockmix", f"{DRIVERS}.permutations:run_permutations",
              "block mixture stage 3: genome-wide thresholds of test (i), permutations keyed by id",
              section="blockmix_permutations", reads=("blockmix",),
              needs=("expression", "genoprob", "blockmix-scan"),
              array=ArrayUnits("permutation", lambda config: config.section("blockmix_permutations")["n_permutations"],
                               "blockmix_permutations.n_permutations", "blockmix-merge-permutations"),
              plan=PlanModel(_memory, _permutation_work, "cell-class term", TERMS_PER_SECOND, MEASURED)),
    StageSpec("blockmix-merge-permutations", "blockmix", f"{DRIVERS}.permutations:run_merge_permutations",
              "merge the blockmix-permutations task files (names missing ids), thresholds",
              section="blockmix_permutations", writes="blockmix-permutations", merges="blockmix-permutations",
              reads=("blockmix",), needs=("expression", "genoprob", "blockmix-scan")),
    StageSpec("blockmix-tests", "blockmix", f"{DRIVERS}.tests:run_tests",
              "block mixture stage 4: tests (ii)-(iv) at significant positions by constrained (ECM) fits, "
              "optional parametric bootstrap, cluster networks by genotype, spots",
              section="blockmix_tests", reads=("blockmix", "blockmix_permutations"),
              needs=("expression", "genoprob", "blockmix-scan", "blockmix-permutations")),
)


def _select_units(config) -> int:
    from qtlhpc.methods.blockmix.drivers.select import n_units

    return n_units(config)
