"""Block-mixture eQTL clustering (Wang, Gosik, Li, Lindsay & Wu 2016, Sci. Rep. 6:21193): gene clusters and the
eQTL that shape them, by the row + column composite likelihood of a Gaussian latent block model whose row
classes are QTL genotypes (specs/blockmix-cocluster.md Part A; docs/blockmix.md).

Python API (arrays and ``comm`` in, arrays out):

* :func:`select_starts` - stage 1, every (K, start) fit with its CL-BIC; :func:`best_per_k` picks per K;
* :func:`fit_null` - the H0 fit of test (i); :func:`scan_positions` - stage 2, LR at every position;
* :func:`permutation_maxima` - stage 3; :func:`constrained_lr` - one test (ii)-(iv) at a position;
* :func:`bootstrap_lr`, :func:`bootstrap_pvalue` - the parametric bootstrap of tests (ii)-(iv);
  :func:`bootstrap_replicates` - a test's replicates over the ranks;
* :func:`genotype_networks` - cluster networks by genotype and their homogeneity test (Figs. 6-7);
* :func:`group_spots` - significant positions grouped into spots;
* :func:`composite_loglik`, :func:`fit_em` - the kernels.
"""

from qtlhpc.methods.blockmix.distributed import (
    bootstrap_replicates, permutation_maxima, scan_positions, select_starts)
from qtlhpc.methods.blockmix.fitting import (
    EMSettings, best_per_k, bootstrap_lr, bootstrap_pvalue, constrained_lr, fit_null, fit_position, fit_start,
    permutation_maximum)
from qtlhpc.methods.blockmix.kernels import composite_loglik, constraint_rows, fit_em
from qtlhpc.methods.blockmix.networks import genotype_networks
from qtlhpc.methods.blockmix.spots import group_spots

__all__ = ["EMSettings", "best_per_k", "bootstrap_lr", "bootstrap_pvalue", "bootstrap_replicates", "composite_loglik", "constrained_lr",
           "constraint_rows", "fit_em", "fit_null", "fit_position", "fit_start", "genotype_networks", "group_spots",
           "permutation_maxima", "permutation_maximum", "scan_positions", "select_starts"]
