"""CAL: combinatorial association logic networks (de Ridder et al. 2010, Bioinformatics 26:i149).

Python API (arrays in, arrays out; ``comm=None`` serial):

* :func:`search_networks` -- the best network of every topology for every target, observed and on strain
  permutations (:class:`qtlhpc.methods.cal.distributed.SearchProblem`);
* :func:`qtlhpc.methods.cal.kernels.search` -- one target, one topology;
* :func:`qtlhpc.methods.cal.topology.catalogue` -- the topologies;
* :func:`qtlhpc.methods.cal.statistics.topology_qvalues`, :func:`~qtlhpc.methods.cal.statistics.parsimony`.
"""

from __future__ import annotations

import numpy as np

from qtlhpc.methods.cal.topology import catalogue

__all__ = ["search_networks", "catalogue", "SearchProblem"]


def __getattr__(name):
    # the compiled kernels (numba) load on first use, not when the registry reads this room's declarations
    if name == "SearchProblem":
        from qtlhpc.methods.cal.distributed import SearchProblem

        return SearchProblem
    raise AttributeError(name)


def search_networks(targets, loci, topologies, *, eta: int = 3, tstat: str = "welch", score: str = "signed",
                    tolerance: float = -np.inf, seed: int = 0, replicates=(0,), target_block: int = 16, comm=None):
    """Best network per (replicate, target, topology) for ``targets (S, T)`` and binary ``loci (T, L)``;
    ``replicates`` a contiguous range of replicate ids (0 = observed)."""
    from qtlhpc.methods.cal.distributed import SearchProblem, search_all

    replicates = list(replicates)
    assert replicates == list(range(replicates[0], replicates[0] + len(replicates)))
    problem = SearchProblem(targets, loci, tuple(topologies), eta, tstat, score, float(tolerance), int(seed),
                            replicates[0], len(replicates), target_block)
    return search_all(problem, comm)
