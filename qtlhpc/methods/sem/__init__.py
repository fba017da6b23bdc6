"""Gene networks with feedback loops by structural equation modelling (Liu, de la Fuente & Hoeschele 2008).

Python API (arrays in, arrays out): :func:`fit_model` (ML of a given cyclic model), :func:`encompassing_network`
(regulator-target pairs and the EDN), :func:`search.search` (Occam's window over the EDN's submodels),
:func:`search_paths` (paths as work units over ``comm``, checkpointed).  See docs/sem.md.
"""

from qtlhpc.methods.sem.distributed import search_one_path, search_paths
from qtlhpc.methods.sem.edn import Region, encompassing_network, regions_from_cross_eqtl
from qtlhpc.methods.sem.kernels import fit_model, loglik_full
from qtlhpc.methods.sem.search import Network, SearchOptions

__all__ = ["Network", "Region", "SearchOptions", "encompassing_network", "fit_model", "loglik_full",
           "regions_from_cross_eqtl", "search_one_path", "search_paths"]
