"""Problem sizes of an SEM config for ``qtlhpc plan``: the EDN's genes, eQTL nodes and edges from the results
file when its ``sem-edn`` stage is complete (else estimated from the genes by the plan model), and the number
of search paths of ``[sem_search]``.
"""

from __future__ import annotations

from typing import Sequence


def edn_sizes(config, stages: Sequence[str]) -> dict:
    """``n_sem_paths`` and, when the results file has a complete sem-edn, ``n_edn_genes``, ``n_edn_eqtl`` and
    ``n_edn_edges`` (fields of :class:`qtlhpc.cluster.plan.ProblemSize`); ``{}`` without an SEM stage."""
    if not any(stage.startswith("sem-") for stage in stages):
        return {}
    sizes = {"n_sem_paths": int(config.section("sem_search")["n_paths"])}
    path = config.output
    if path is None or not path.is_file():
        return sizes
    from qtlhpc.store import open_results

    try:
        with open_results(path) as results:
            state = results.stage_state("sem-edn")
            if state is None or state.status != "complete":
                return sizes
            sizes["n_edn_genes"] = int(results.read("sem-edn/gene_rows").size)
            sizes["n_edn_eqtl"] = int(results.read("sem-edn/eqtl_markers").size)
            sizes["n_edn_edges"] = int(results.read("sem-edn/edge_tail").size)
    except (OSError, KeyError):
        return {"n_sem_paths": sizes["n_sem_paths"]}
    return sizes
