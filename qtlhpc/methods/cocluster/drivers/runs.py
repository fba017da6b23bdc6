"""Stages ``cocluster-runs`` and ``merge-cocluster-runs``: independent Gibbs runs of GaneSh ([J] §2.2, §3.1).

Each run ``r`` is a work unit and a checkpoint block, with its own stream ``unit_rng(seed, "cocluster-run",
r)``: which rank (or SLURM array task) runs it never changes its samples.  A killed run resumes with the
runs already written.  ``runs = "auto"`` adds ``auto_batch`` runs per round (runs ``[b * batch, (b+1) *
batch)`` in round ``b``) until rho ([J] eq. (4)) between the averages of the first and second half of the
runs done reaches ``auto_rho``, or ``max_runs``; the rounds are the same on any number of ranks.
"""

from __future__ import annotations

import pathlib
from typing import Optional, Sequence

import numpy as np

from qtlhpc.errors import ConfigError
from qtlhpc.io.drivers import read_expression_block
from qtlhpc.methods.cocluster import distributed
from qtlhpc.methods.cocluster.kernels import Prior, rho_from_sums
from qtlhpc.stages.runtime import begin_stage, check_needs, write_blocks
from qtlhpc.stages.sharded import merge_task_files, parse_units

STAGE = "cocluster-runs"
SECTION = "cocluster"
RUN_DATASETS = ("samples", "score_trace", "n_clusters", "final_partitions")


def run_count(options: dict) -> int:
    """Run units of the stage: ``runs``, or ``max_runs`` under ``runs = "auto"``."""
    return int(options["max_runs"] if options["runs"] == "auto" else options["runs"])


def kept_iterations(options: dict) -> int:
    return len(range(options["burn_in"] + options["thin"], options["iterations"] + 1, options["thin"]))


def chain_options(options: dict) -> dict:
    return dict(n_iterations=options["iterations"], burn_in=options["burn_in"], thin=options["thin"],
                one_way=options["mode"] == "one-way",
                prior=Prior(options["mu0"], options["lambda0"], options["alpha0"], options["beta0"]),
                initial_clusters=options["initial_clusters"],
                initial_condition_clusters=options["initial_condition_clusters"],
                log_bias=options["new_cluster_log_bias"])


def check_options(options: dict, source) -> None:
    if kept_iterations(options) < 1:
        raise ConfigError(f"{source}: [cocluster] burn_in = {options['burn_in']} leaves no kept iteration of "
                          f"iterations = {options['iterations']}: lower burn_in or raise iterations")
    if options["runs"] == "auto" and options["auto_batch"] % 2:
        raise ConfigError(f"{source}: [cocluster] auto_batch = {options['auto_batch']} must be even (the two "
                          f"halves compared by rho are equal)")


def halves_rho(samples: np.ndarray, n_runs: int, comm, chunk: int) -> float:
    """rho between the F of runs ``[0, n/2)`` and ``[n/2, n)`` (``samples (runs, S, G)``), over the ranks' rows."""
    half = n_runs // 2
    if half < 1:
        return float("nan")
    n_genes = samples.shape[2]
    start, stop = distributed.own_rows(n_genes, comm)
    first = distributed.f_rows(list(samples[:half]), start, stop, chunk)
    second = distributed.f_rows(list(samples[half:2 * half]), start, stop, chunk)
    return rho_from_sums(*distributed.f_sums(first, second, comm))


def run_runs(context, units: Optional[str] = None, unit_output: Optional[str] = None, inputs=()) -> None:
    options = context.config.section(SECTION)
    check_options(options, context.config.source)
    count = run_count(options)
    start, stop = parse_units(units, count, context.spec)
    if units and options["runs"] == "auto":
        raise ConfigError(f"{context.config.source}: [cocluster] runs = \"auto\" decides the number of runs as "
                          f"they finish, which SLURM array tasks cannot: give an integer runs for an array")
    output = pathlib.Path(unit_output).resolve() if unit_output else context.output
    with context.open_results(mode="a" if output == context.output else "r") as results:
        lineage = check_needs(context, results)
        n_genes = int(results.read("expression/gene_ids").size)
        expression = read_expression_block(results, 0, n_genes).values
        if output == context.output:
            _runs_into(context, results, expression, options, start, stop, lineage)
            return
        with context.open_results(output) as task_results:
            _runs_into(context, task_results, expression, options, start, stop, lineage)


def _runs_into(context, results, expression, options, start, stop, lineage) -> None:
    stage = begin_stage(context, results, extra={"range": [start, stop]}, lineage=lineage)
    if stage is None:
        return
    n_genes, n_conditions = expression.shape
    n_units = stop - start
    shapes = {"samples": (n_units, kept_iterations(options), n_genes),
              "score_trace": (n_units, options["iterations"]), "n_clusters": (n_units, options["iterations"]),
              "final_partitions": (n_units, n_genes, n_conditions)}
    writer = stage.blocked(shapes, n_blocks=n_units, key="runs")
    chain = chain_options(options)

    def compute(block):
        run = start + block
        result = distributed.one_run(expression, context.seed, run, **chain)
        partitions = np.full((n_genes, n_conditions), -1, dtype=np.int32)
        partitions[:result.condition_partitions.shape[0]] = result.condition_partitions
        rows = (slice(block, block + 1),)
        return {"samples": (rows + (slice(None), slice(None)), result.samples[None]),
                "score_trace": (rows + (slice(None),), result.score_trace[None]),
                "n_clusters": (rows + (slice(None),), result.n_clusters[None].astype(np.int32)),
                "final_partitions": (rows + (slice(None), slice(None)), partitions[None])}

    label = f"cocluster runs {start}:{stop}"
    rhos = []
    if options["runs"] == "auto":
        batch = options["auto_batch"]
        used = 0
        for first in range(0, n_units, batch):
            used = min(first + batch, n_units)
            write_blocks(context, writer, label, range(first, used), compute)
            samples = results.read(f"{STAGE}/samples", allow_incomplete=True)[:used]
            rhos.append(halves_rho(samples, used, context.comm, options["row_chunk"]))
            context.log.info("cocluster-runs: %d runs, rho between halves %.4f", used, rhos[-1])
            if rhos[-1] >= options["auto_rho"]:
                break
    else:
        write_blocks(context, writer, label, range(n_units), compute)
        used = n_units
    stage.write("run_index", np.arange(start, stop, dtype=np.int64))
    stage.write("runs_used", np.int64(used))
    stage.write("auto_rho", np.array(rhos, dtype=np.float64))
    stage.finish()
    context.log.info("cocluster-runs: runs %d:%d (%d used) of %d genes x %d conditions", start, stop, used,
                     n_genes, n_conditions)


def run_merge_runs(context, units=None, unit_output=None, inputs: Sequence[str] = ()) -> None:
    """Merge the array tasks' files; refuses, naming the missing runs, until every run is there."""
    options = context.config.section(SECTION)
    count = run_count(options)
    merged = merge_task_files(context, inputs, STAGE, RUN_DATASETS, count, "cocluster runs")
    with context.open_results() as results:
        stage = begin_stage(context, results, extra={"range": [0, count]})
        if stage is None:
            return
        stage.write("run_index", np.arange(count, dtype=np.int64))
        for name in RUN_DATASETS:
            stage.write(name, merged[name])
        stage.write("runs_used", np.int64(count))
        stage.write("auto_rho", np.zeros(0))
        stage.finish()
    context.log.info("merged %d cocluster-runs task files: %d runs", len(inputs), count)
