"""GaneSh co-clustering of genes and conditions (Joshi, Van de Peer & Michoel 2008, Bioinformatics 24:176).

The API takes arrays (and ``comm``) and returns arrays:

* kernels: :func:`run_chain` (one Gibbs run), :func:`coclustering_score`, :func:`ng_score`,
  :func:`cooccurrence_rows`, :func:`rho`, :func:`fuzziness_entropy`;
* :func:`extract_fuzzy` (successive largest eigenvectors, [J] §2.3) on a row block with any eigensolver;
* distributed: :func:`runs` (runs as work units with keyed streams), :func:`f_rows` (rows of F),
  :func:`fuzzy_clusters` (the extraction with the ``solvers`` eigen interface over ``comm``).

See docs/cocluster.md.
"""

from qtlhpc.methods.cocluster.distributed import f_rows, fuzzy_clusters, one_run, runs
from qtlhpc.methods.cocluster.fuzzy import FuzzyResult, layout_counts
from qtlhpc.methods.cocluster.fuzzy import extract as extract_fuzzy
from qtlhpc.methods.cocluster.kernels import (ChainResult, ChainState, Prior, coclustering_score,
                                               cooccurrence_rows, fuzziness_entropy, ng_score, rho, run_chain)

__all__ = ["ChainResult", "ChainState", "FuzzyResult", "Prior", "coclustering_score", "cooccurrence_rows",
           "extract_fuzzy", "f_rows", "fuzziness_entropy", "fuzzy_clusters", "layout_counts", "ng_score", "one_run",
           "rho", "run_chain", "runs"]
