"""Config sections of the SEM gene networks (Liu, de la Fuente & Hoeschele 2008).

``[sem_edn]``: how the encompassing directed network (EDN) is built from the ``cross-eqtl`` / ``cross-trans``
results (stage ``sem-edn``).  ``[sem_search]``: the Occam's-window search over the EDN's submodels (stages
``sem-search`` and ``sem-merge``); a change here reruns the search only, not the EDN.
"""

from qtlhpc.config import Option
from qtlhpc.stages.spec import SectionSpec

REGION_SOURCES = ("cis+pc", "cis", "pc")

EDN_OPTIONS = {
    "regions": Option(str, "cis+pc", "eQTL regions whose regulator-target pairs enter the EDN: the cis-eQTL "
                                     "regions, the PC-eQTL regions, or both (the paper's three steps per region)",
                      REGION_SOURCES),
    "trans": Option(bool, True, "add the cross-trans regulator-target pairs (q <= cross_trans.fdr), locally "
                                "sparsified by the paper's Eq. (2); false: regions only (cross-trans not needed)"),
    "alpha": Option(float, 0.05, "p-value level of the pair tests (steps 1-2 and Eq. (2); step 3 uses alpha / K)",
                    minimum=0.0, maximum=1.0, exclusive_minimum=True, exclusive_maximum=True),
    "min_recombination": Option(float, 0.25, "in Eq. (2) x_r' is left out when the recombination fraction between "
                                             "the markers of r and r' is below this", minimum=0.0, maximum=0.5),
}

SEARCH_OPTIONS = {
    "delta": Option(float, 2.0, "penalty multiplier of BIC(delta) = -2 l + delta k log N (1: BIC; 2: the default, "
                                "spec D13: the paper does not state its value)", minimum=0.0,
                    exclusive_minimum=True, maximum=100.0),
    "threshold": Option(float, 0.0, "Occam's window threshold T_ow (< 0) on IC differences; 0: the default "
                                    "-delta log N - 2 log 20", minimum=-1e9, maximum=0.0),
    "w": Option(float, 0.0, "probability of also following a weak improvement (T_ow < dIC < 0 but not the best of "
                            "the step)", minimum=0.0, maximum=1.0),
    "n_paths": Option(int, 4, "search paths (path 0 in canonical edge order, the others seeded shuffles): the work "
                              "units over ranks and SLURM array tasks", minimum=1, maximum=100_000),
    "seed": Option(int, -1, "seed of the paths' edge orders, choices and random starts; -1: the [run] seed",
                   minimum=-1),
    "n_random": Option(int, 0, "random N(0, 0.3^2) starts per factor fit, besides 2SLS and OLS", minimum=0,
                       maximum=100),
    "max_candidates": Option(int, 10_000, "guard rail: candidate models queued per pass of a path", minimum=1),
    "max_evaluations": Option(int, 10_000_000, "guard rail: model evaluations per path", minimum=1),
    "up": Option(bool, True, "run the up pass (add edges) after the down pass"),
    "keep_accepted": Option(int, 100, "accepted models stored per path (best IC first); the inclusion "
                                      "frequencies and counts always use all of them", minimum=1,
                            maximum=100_000),
}

SECTIONS = (
    SectionSpec("sem_edn", EDN_OPTIONS, "sem", "SEM gene networks: the encompassing directed network from the "
                                               "cross-eqtl / cross-trans results"),
    SectionSpec("sem_search", SEARCH_OPTIONS, "sem", "SEM gene networks: Occam's window search over the EDN "
                                                     "(BIC(delta), paths, guard rails)"),
)
