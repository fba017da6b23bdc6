"""Stages ``cal-search`` and ``merge-cal-search``.

Replicates ``0 .. cal.permutations`` (0 = observed) are the array units: ``--units START:STOP --unit-output
FILE`` computes replicates START..STOP-1 into FILE, ``merge-cal-search`` gathers the task files into the run's
file, naming missing replicates.  Within a run, the work units (replicate, topology, target block) are the
checkpoint blocks, claimed by the ranks as they free up (with parallel I/O; static shares otherwise), so a
killed run resumes without losing finished blocks.
"""

from __future__ import annotations

import pathlib
from typing import Optional, Sequence

import numpy as np

from qtlhpc.methods.cal.distributed import RESULT_FIELDS, SearchProblem
from qtlhpc.methods.cal.topology import topology
from qtlhpc.stages.runtime import begin_stage, check_needs, write_blocks
from qtlhpc.stages.sharded import merge_task_files, parse_units

STAGE = "cal-search"
SHAPE_SUFFIX = {"inputs": (3,)}


def problem_from(results, options, seed: int, start: int, stop: int) -> SearchProblem:
    names = results.read("cal-prepare/topology_names").astype(str)
    tables = results.read("cal-prepare/topology_tables")
    tops = []
    for name, table in zip(names, tables):
        top = topology(str(name), score=options["score"])
        assert top.table == int(table), (name, top.table, table)
        tops.append(top)
    searched = results.read("cal-prepare/searched")
    targets = results.read("cal-prepare/target_values")[searched]
    return SearchProblem(targets, results.read("cal-prepare/loci"), tuple(tops), options["eta"], options["tstat"],
                         options["score"], float(results.read("cal-prepare/f_tol")), seed, start, stop - start,
                         options["target_block"])


def run_cal_search(context, units: Optional[str] = None, unit_output: Optional[str] = None, inputs=()) -> None:
    options = context.config.section("cal")
    count = options["permutations"] + 1
    start, stop = parse_units(units, count, context.spec)
    output = pathlib.Path(unit_output).resolve() if unit_output else context.output
    with context.open_results(mode="a" if output == context.output else "r") as results:
        lineage = check_needs(context, results)
        problem = problem_from(results, options, context.seed, start, stop)
        if output == context.output:
            _search_into(context, results, problem, start, stop, lineage)
            return
        with context.open_results(output) as task_results:
            _search_into(context, task_results, problem, start, stop, lineage)


def _search_into(context, results, problem: SearchProblem, start: int, stop: int, lineage) -> None:
    stage = begin_stage(context, results, extra={"range": [start, stop]}, lineage=lineage)
    if stage is None:
        return
    base = (stop - start, problem.n_targets, len(problem.topologies))
    shapes = {name: base + SHAPE_SUFFIX.get(name, ()) for name in RESULT_FIELDS}
    writer = stage.blocked(shapes, n_blocks=problem.n_blocks, key="units")

    def compute(block):
        r, j, k = problem.unpack(block)
        rows = problem.targets_of(k)
        values = problem.compute_block(block)
        return {name: ((slice(r, r + 1), slice(rows.start, rows.stop), slice(j, j + 1))
                       + (slice(None),) * len(SHAPE_SUFFIX.get(name, ())),
                       values[name].reshape((1, len(rows), 1) + SHAPE_SUFFIX.get(name, ())))
                for name in RESULT_FIELDS}

    context.comm.Barrier()
    write_blocks(context, writer, f"cal-search replicates {start}:{stop}", problem.block_ids(), compute,
                 claimed=True)
    stage.write("replicates", np.arange(start, stop, dtype=np.int64))
    stage.finish()
    context.log.info("cal-search: replicates %d:%d, %d targets x %d topologies", start, stop, problem.n_targets,
                     len(problem.topologies))


def run_merge_cal_search(context, units=None, unit_output=None, inputs: Sequence[str] = ()) -> None:
    """Merge task files into the run's results; refuses, naming the missing replicates, until all are there."""
    options = context.config.section("cal")
    count = options["permutations"] + 1
    merged = merge_task_files(context, inputs, STAGE, RESULT_FIELDS, count, "cal-search replicates")
    with context.open_results() as results:
        stage = begin_stage(context, results, extra={"range": [0, count]})
        if stage is None:
            return
        stage.write("replicates", np.arange(count, dtype=np.int64))
        for name in RESULT_FIELDS:
            stage.write(name, merged[name])
        stage.finish()
    context.log.info("merged %d cal-search task files: %d replicates", len(inputs), count)
