"""Stage ``cal-select``: pooled permutation p-values and Storey q-values per topology, then parsimony."""

from __future__ import annotations

import numpy as np

from qtlhpc.methods.cal.statistics import parsimony, topology_qvalues
from qtlhpc.stages.runtime import begin_stage, check_needs


def run_cal_select(context) -> None:
    options = context.config.section("cal_select")
    with context.open_results() as results:
        lineage = check_needs(context, results)
        replicates = results.read("cal-search/replicates")
        score = results.read("cal-search/score")
        censored = results.read("cal-search/censored")
        n_inputs = results.read("cal-prepare/topology_inputs")
        assert replicates[0] == 0
        p, q, pi0, notes = topology_qvalues(score[0], censored[0], score[1:], censored[1:],
                                            pi0_method=options["pi0_method"])
        observed = np.where(censored[0], -np.inf, score[0])
        floors = 1.0 / max(1, score[1:].shape[0] * score.shape[1]) * np.ones(n_inputs.size)
        selected, selected_q = parsimony(q, observed, n_inputs, options["fdr"], p, floors)
        stage = begin_stage(context, results, lineage=lineage)
        if stage is None:
            return
        stage.write("pvalue", p)
        stage.write("qvalue", q)
        stage.write("pi0", pi0)
        stage.write("null_size", np.full(n_inputs.size, score[1:].shape[0] * score.shape[1], dtype=np.int64))
        stage.write("n_significant", np.sum(q <= options["fdr"], axis=0).astype(np.int64))
        stage.write("n_selected", np.bincount(selected[selected >= 0], minlength=n_inputs.size).astype(np.int64))
        stage.write("selected", selected)
        stage.write("selected_q", selected_q)
        stage.write("fdr", np.float64(options["fdr"]))
        stage.finish()
    for note in notes:
        context.log.warning("cal-select: %s", note)
    context.log.info("cal-select: %d of %d searched targets have a network at q <= %g", int(np.sum(selected >= 0)),
                     selected.size, options["fdr"])
