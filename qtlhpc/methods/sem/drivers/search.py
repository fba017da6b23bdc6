"""Stages ``sem-search`` and ``sem-merge``.

Search paths ``0 .. sem_search.n_paths - 1`` are the work units: within a run, each path is one checkpoint
block of the results file (its accepted models, edge counts, evaluations, guard rail), claimed by the ranks as
they free up (with parallel I/O; static shares otherwise), so a killed run resumes without losing finished
paths.  The paths left over when fewer remain than ranks (a single path on 2 ranks, the third of 3 paths
on 2) run on all ranks in turn, the candidate models of each window step split over them.  Every path's random draws come from ``unit_rng`` keyed by (seed, path, ...) and factor fits are pure
functions of the factor and its parent sets, so the numbers do not depend on the ranks.

As a SLURM array (``--units START:STOP --unit-output FILE``) a task computes paths START..STOP-1 into FILE;
``sem-merge`` gathers the task files into the run's file, naming missing paths.  Once all paths are there,
both stages store the distinct accepted models, the inclusion frequencies and the best model refitted for its
coefficients (rank 0), and write the best model's edge table (TSV) and network (GraphML) beside the results
file: ``<results>.sem_edges.tsv`` and ``<results>.sem_network.graphml``.
"""

from __future__ import annotations

import pathlib
from typing import Optional, Sequence

import numpy as np

from qtlhpc.methods.sem import search as S
from qtlhpc.methods.sem.distributed import GUARDS, PATH_FIELDS, parallel_deltas, path_record, path_shapes, summarise
from qtlhpc.methods.sem.inputs import network_from_arrays
from qtlhpc.parallel.comm import on_root
from qtlhpc.stages.runtime import begin_stage, check_needs, write_blocks
from qtlhpc.stages.sharded import merge_task_files, parse_units

STAGE = "sem-search"
EDN_FIELDS = ("edge_tail", "edge_head", "edge_is_eqtl", "cis_group_edge", "cis_group", "required_eqtl",
              "required_gene")


def search_options(options: dict) -> S.SearchOptions:
    """The :class:`SearchOptions` of a ``[sem_search]`` section."""
    return S.SearchOptions(delta=options["delta"], threshold=options["threshold"] or None, w=options["w"],
                           max_candidates=options["max_candidates"], max_evaluations=options["max_evaluations"],
                           up=options["up"])


def run_seed(context, options: dict) -> int:
    return int(context.seed if options["seed"] < 0 else options["seed"])


def read_edn(results):
    """``(network, Y, X, gene_ids, eqtl_names, edge_kind)`` of stage sem-edn."""
    Y = results.read("sem-edn/expression")
    X = results.read("sem-edn/genotypes")
    network = network_from_arrays(Y.shape[1], X.shape[1],
                                  {name: results.read(f"sem-edn/{name}") for name in EDN_FIELDS})
    return (network, Y, X, results.read("sem-edn/gene_ids").astype(str),
            results.read("sem-edn/eqtl_names").astype(str))


def run_sem_search(context, units: Optional[str] = None, unit_output: Optional[str] = None, inputs=()) -> None:
    options = context.config.section("sem_search")
    count = options["n_paths"]
    start, stop = parse_units(units, count, context.spec)
    output = pathlib.Path(unit_output).resolve() if unit_output else context.output
    with context.open_results(mode="a" if output == context.output else "r") as results:
        lineage = check_needs(context, results)
        edn = read_edn(results)
        if output == context.output:
            _search_into(context, results, edn, options, start, stop, lineage, summary=True)
            return
        with context.open_results(output) as task_results:
            _search_into(context, task_results, edn, options, start, stop, lineage, summary=False)


def _search_into(context, results, edn, options, start: int, stop: int, lineage, summary: bool) -> None:
    network, Y, X = edn[:3]
    stage = begin_stage(context, results, extra={"range": [start, stop]}, lineage=lineage)
    if stage is None:
        return
    seed = run_seed(context, options)
    opts = search_options(options)
    keep = options["keep_accepted"]
    writer = stage.blocked(path_shapes(stop - start, network.d, keep), n_blocks=stop - start, key="paths")
    evaluator = S.Evaluator(Y, X, network, seed=seed, n_random=options["n_random"])

    def pieces(block: int, record: dict):
        where = slice(block, block + 1)
        return {name: ((where,) + (slice(None),) * (np.ndim(value)), np.asarray(value)[None, ...])
                for name, value in record.items()}

    def compute(block: int):
        path = start + block
        return pieces(block, path_record(S.occam_window(evaluator, opts, path=path, seed=seed), network.d, keep))

    pending = writer.pending(list(range(stop - start)))
    finished = (stop - start) - len(pending)
    if finished:
        context.log.info("sem-search: %d of %d paths already in the file (kept), %d to compute", finished,
                         stop - start, stop - start - finished)
    context.comm.Barrier()
    label = f"sem-search paths {start}:{stop}"
    # whole rounds of paths go one path per rank; the paths left over (fewer than the ranks) run one after
    # the other on all ranks, each window step's candidate models split over them
    whole = len(pending) - len(pending) % context.size
    write_blocks(context, writer, label, pending[:whole], compute, claimed=True)
    for block in pending[whole:]:
        result = S.occam_window(evaluator, opts, path=start + block, seed=seed,
                                delta_fn=parallel_deltas(context.comm))
        record = path_record(result, network.d, keep)
        write_blocks(context, writer, label, [block], lambda b: pieces(b, record))
    stage.write("paths", np.arange(start, stop, dtype=np.int64))
    _write_common(stage, opts, evaluator.N, seed)
    if summary:
        records = {name: results.read(f"{STAGE}/{name}", allow_incomplete=True) for name in PATH_FIELDS}
        _write_summary(context, stage, records, edn)
    stage.finish()
    context.log.info("sem-search: paths %d:%d of an EDN with %d edges (%d genes, %d eQTL), BIC(delta = %g)", start,
                     stop, network.d, network.p, network.q, opts.delta)


def _write_common(stage, opts: S.SearchOptions, n_obs: int, seed: int) -> None:
    stage.write("guard_names", np.array(GUARDS, dtype=str))
    stage.write("delta", np.float64(opts.delta))
    stage.write("t_ow", np.float64(opts.t_ow(n_obs)))
    stage.write("seed", np.int64(seed))


def _write_summary(context, stage, records: dict, edn) -> None:
    network, Y, X, gene_ids, eqtl_names = edn
    out = on_root(context.comm, lambda: summarise(records, network, Y, X))
    for name, value in out.items():
        stage.write(name, value)
    if context.rank == 0:
        write_exports(context.output, network, out, gene_ids, eqtl_names)
    hit = records["path_guard"] > 0
    if hit.any():
        context.log.warning("sem-search: guard rails hit on %d of %d paths (%s): the search stopped early there",
                            int(hit.sum()), hit.size, ", ".join(sorted({GUARDS[g - 1] for g in
                                                                        records["path_guard"][hit]})))
    truncated = records["path_n_accepted"] > records["accepted_mask"].shape[1]
    if truncated.any():
        context.log.warning("sem-search: %d paths accepted more models than sem_search.keep_accepted = %d; the "
                            "best are stored (the inclusion frequencies count all)", int(truncated.sum()),
                            records["accepted_mask"].shape[1])
    if out["model_ic"].size == 0:
        context.log.warning("sem-search: no path kept an accepted model (the guard rails stopped them first): no "
                            "best model; raise sem_search.max_evaluations / max_candidates")
        return
    context.log.info("sem-search: %d distinct accepted models; best BIC(delta) %.3f with %d of %d edges",
                     out["model_ic"].size, float(out["best_ic"]), int(out["best_mask"].sum()), network.d)


def export_paths(output) -> tuple:
    """``(tsv, graphml)`` paths of the edge table and network beside the results file ``output``."""
    output = pathlib.Path(output)
    return output.with_name(output.name + ".sem_edges.tsv"), output.with_name(output.name + ".sem_network.graphml")


def write_exports(output, network, out: dict, gene_ids, eqtl_names) -> tuple:
    """The best model's edge table (every EDN edge) as TSV and its network as GraphML beside ``output``."""
    from qtlhpc.methods.sem import report as R

    nodes = np.arange(network.p)
    rows = R.edge_table(network, out["best_mask"], out["inclusion_frequency"], gene_names=gene_ids[nodes],
                        qtl_names=eqtl_names)
    rows = [row[:5] + (float(out["best_coefficient"][e]),) + row[6:] for e, row in enumerate(rows)]
    tsv, graphml = export_paths(output)
    R.write_tsv(tsv, rows)
    R.write_graphml(graphml, rows)
    return tsv, graphml


def run_sem_merge(context, units=None, unit_output=None, inputs: Sequence[str] = ()) -> None:
    """Merge task files into the run's results; refuses, naming the missing paths, until all are there."""
    options = context.config.section("sem_search")
    count = options["n_paths"]
    merged = merge_task_files(context, inputs, STAGE, ("paths",) + PATH_FIELDS, count, "sem-search paths")
    with context.open_results() as results:
        edn = read_edn(results)
        stage = begin_stage(context, results, extra={"range": [0, count]})
        if stage is None:
            return
        for name in ("paths",) + PATH_FIELDS:
            stage.write(name, merged[name])
        opts = search_options(options)
        _write_common(stage, opts, edn[1].shape[0], run_seed(context, options))
        _write_summary(context, stage, {name: merged[name] for name in PATH_FIELDS}, edn)
        stage.finish()
    context.log.info("merged %d sem-search task files: %d paths", len(inputs), count)
