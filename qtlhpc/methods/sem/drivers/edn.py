"""Stage ``sem-edn``: the encompassing directed network from the eQTL room's results (read and computed on rank
0, a few regressions per region and trans target; written by rank 0)."""

from __future__ import annotations

import numpy as np

from qtlhpc.errors import ConfigError
from qtlhpc.methods.eqtl.drivers.cross import haploid_genotypes
from qtlhpc.methods.sem.inputs import REGION_DATASETS, TRANS_DATASETS, build_inputs
from qtlhpc.parallel.comm import on_root
from qtlhpc.stages.runtime import begin_stage, check_needs

STAGE = "sem-edn"


def _present(results, stage: str, config) -> None:
    if results.stage_state(stage) is None:
        raise ConfigError(f"{results.path}: sem-edn reads the results of stage {stage!r}, which this file does not "
                          f"have: run the eQTL mapping of the cross first (`qtlhpc run eqtl-cross {config.source}`)"
                          + (" or set [sem_edn] trans = false" if stage == "cross-trans" else ""))


def run_sem_edn(context, units=None, unit_output=None, inputs=()) -> None:
    options = context.config.section("sem_edn")
    with context.open_results() as results:
        needed = ("cross-eqtl",) + (("cross-trans",) if options["trans"] else ())
        for stage in needed:
            _present(results, stage, context.config)
        lineage = check_needs(context, results)
        names = ("marker_chromosomes", "closest_marker") + tuple(n for s in REGION_DATASETS.values() for n in s)
        cross_eqtl = {name: results.read(f"cross-eqtl/{name}") for name in names}
        trans = ({name: results.read(f"cross-trans/{name}") for name in TRANS_DATASETS} if options["trans"]
                 else None)
        values = results.read("expression/values")
        gene_ids = results.read("expression/gene_ids").astype(str)
        sample_ids = results.read("expression/sample_ids").astype(str)
        gene_chromosomes = results.read("expression/gene_chromosomes").astype(str)
        gene_starts = results.read("expression/gene_starts").astype(float)
        cross = context.cross()

        def compute():
            from qtlhpc.errors import InputError

            row = {str(name): k for k, name in enumerate(cross.individuals)}
            absent = [s for s in sample_ids.tolist() if s not in row]
            if absent:
                raise InputError(f"{len(absent)} expression samples are not individuals of the [input] cross "
                                 f"(first: {', '.join(absent[:3])}): rerun the expression stage with this [input]")
            genotypes = haploid_genotypes(cross)[[row[s] for s in sample_ids.tolist()]]
            data = build_inputs(values, genotypes, cross_eqtl, gene_chromosomes, gene_starts, trans_pairs=trans,
                                regions=options["regions"], alpha=options["alpha"],
                                min_recombination=options["min_recombination"], gene_ids=gene_ids,
                                sample_ids=sample_ids)
            if data.network.d == 0:
                raise InputError("the EDN has no edge: the eQTL results give no regulator-target pair (no cis "
                                 "region, PC region or trans pair passed); nothing to search")
            out = data.edge_arrays()
            out.update(gene_rows=data.genes, gene_ids=gene_ids[data.genes], eqtl_markers=data.markers,
                       eqtl_names=np.asarray(cross.markers).astype(str)[data.markers],
                       summary_names=np.array(list(data.summary), dtype=str),
                       summary=np.array(list(data.summary.values()), dtype=np.int64),
                       expression=data.Y, genotypes=data.X)
            return out

        out = on_root(context.comm, compute)
        stage = begin_stage(context, results, lineage=lineage)
        if stage is None:
            return
        for name, value in out.items():
            stage.write(name, value)
        stage.finish()
    summary = dict(zip(out["summary_names"].tolist(), out["summary"].tolist()))
    context.log.info("sem-edn: %d regions, %d trans pairs (%d kept by Eq. 2); EDN %d gene -> gene and %d eQTL -> "
                     "gene edges on %d genes and %d eQTL; %d regulators, %d targets, %d both; %d required pairs "
                     "(%d unreachable dropped), %d cis groups", summary["regions"], summary["trans_pairs"],
                     summary["trans_pairs_kept"], summary["gene_edges"], summary["qtl_edges"], summary["sem_genes"],
                     summary["eqtl_nodes"], summary["regulators"], summary["targets"], summary["both"],
                     summary["required_pairs"], summary["required_unreachable"], summary["cis_groups"])
