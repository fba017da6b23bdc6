"""Derived tables of the CAL stages for ``qtlhpc export RESULTS TABLE`` (TSV with a header line).

``cal-select/networks``: one row per (searched target, topology) of the observed search: the best network
(inputs as locus names, the output as a 0/1 string over the strains in ``cal-prepare/strain_ids`` order), its
score, censoring, p- and q-value, search nodes and time.

``cal-select/selected``: one row per searched target with a topology at q <= fdr: the parsimonious network.
"""

from __future__ import annotations

from typing import Callable, Dict, List, Tuple

Table = Tuple[List[str], List[List[object]]]

NETWORK_COLUMNS = ["target", "topology", "n_inputs", "input_A", "input_B", "input_C", "score", "censored", "pvalue",
                   "qvalue", "output", "nodes", "seconds"]


def _observed(results):
    data = {
        "targets": results.read("cal-prepare/target_ids")[results.read("cal-prepare/searched")],
        "topologies": results.read("cal-prepare/topology_names"),
        "n_inputs": results.read("cal-prepare/topology_inputs"),
        "loci": results.read("cal-prepare/locus_names"),
        "n_strains": results.read("cal-prepare/strain_ids").size,
        "p": results.read("cal-select/pvalue"),
        "q": results.read("cal-select/qvalue"),
    }
    for name in ("score", "censored", "inputs", "output", "nodes", "seconds"):
        data[name] = results.read(f"cal-search/{name}", (slice(0, 1),))[0]
    return data


def _row(d, i, j) -> List[object]:
    inputs = [str(d["loci"][c]) if c >= 0 else "" for c in d["inputs"][i, j]]
    word = int(d["output"][i, j])
    bits = "".join(str((word >> t) & 1) for t in range(d["n_strains"])) if not d["censored"][i, j] else ""
    return [d["targets"][i], d["topologies"][j], int(d["n_inputs"][j]), *inputs, float(d["score"][i, j]),
            bool(d["censored"][i, j]), float(d["p"][i, j]), float(d["q"][i, j]), bits, int(d["nodes"][i, j]),
            float(d["seconds"][i, j])]


def networks(results) -> Table:
    d = _observed(results)
    rows = [_row(d, i, j) for i in range(d["targets"].size) for j in range(d["topologies"].size)]
    return NETWORK_COLUMNS, rows


def selected(results) -> Table:
    d = _observed(results)
    chosen = results.read("cal-select/selected")
    rows = [_row(d, i, int(chosen[i])) for i in range(chosen.size) if chosen[i] >= 0]
    return NETWORK_COLUMNS, rows


TABLES: Dict[str, Callable] = {"cal-select/networks": networks, "cal-select/selected": selected}
