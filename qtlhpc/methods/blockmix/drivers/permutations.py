"""Stages ``blockmix-permutations`` and ``blockmix-merge-permutations``: genome-wide thresholds of test (i)
(spec A2.3).

Permutation r permutes the individuals' rows of every position's genotype probabilities jointly, with the order
drawn from ``unit_rng(seed, "blockmix-permutation", r)`` alone; the null fit is the same under every permutation
(the CL is symmetric in the individuals and H0 ignores genotype) and is read from blockmix-scan.  Each
permutation is a work unit and a checkpoint block, claimed by the ranks; as an array stage the ids are split
over SLURM tasks (``--units START:STOP --unit-output FILE``) and merged by ``blockmix-merge-permutations``, which
names missing ids.  Any split gives bit-identical maxima, hence identical thresholds.
"""

from __future__ import annotations

import pathlib
from typing import Optional, Sequence

import numpy as np

from qtlhpc.methods.blockmix.drivers.inputs import load_inputs, settings
from qtlhpc.methods.blockmix.drivers.scan import read_null
from qtlhpc.methods.blockmix.fitting import permutation_maximum
from qtlhpc.stages.runtime import begin_stage, check_needs, write_blocks
from qtlhpc.stages.sharded import merge_task_files, parse_units

STAGE = "blockmix-permutations"
SECTION = "blockmix_permutations"
ALPHAS = (0.05, 0.01, 0.1)


def alphas(options) -> np.ndarray:
    return np.array(sorted(set((options["alpha"],) + ALPHAS)))


def thresholds(maxima: np.ndarray, levels: np.ndarray) -> np.ndarray:
    """(1 - alpha) quantiles of the permutation maxima (numpy "linear" = R type 7, as R/qtl)."""
    return np.quantile(np.asarray(maxima, dtype=float), 1.0 - levels, method="linear")


def run_permutations(context, units: Optional[str] = None, unit_output: Optional[str] = None, inputs=()) -> None:
    options = context.config.section(SECTION)
    count = options["n_permutations"]
    start, stop = parse_units(units, count, context.spec)
    output = pathlib.Path(unit_output).resolve() if unit_output else context.output
    with context.open_results(mode="a" if output == context.output else "r") as results:
        lineage = check_needs(context, results)
        data = load_inputs(context, results)
        null = read_null(results)
        if output == context.output:
            _permute_into(context, results, data, null, options, start, stop, lineage, count)
            return
        with context.open_results(output) as task_results:
            _permute_into(context, task_results, data, null, options, start, stop, lineage, count)


def _permute_into(context, results, data, null, options, start, stop, lineage, count) -> None:
    stage = begin_stage(context, results, extra={"range": [start, stop]}, lineage=lineage)
    if stage is None:
        return
    em = settings(context)
    n = stop - start
    shapes = {"permutation": (n,), "max_lr": (n,), "argmax": (n,)}
    writer = stage.blocked(shapes, n_blocks=n, key="permutations")

    def compute(block: int):
        best, where = permutation_maximum(data.Y, data.probs, null, context.seed, start + block, em, data.YT)
        row = (slice(block, block + 1),)
        return {"permutation": (row, np.array([start + block])), "max_lr": (row, np.array([best])),
                "argmax": (row, np.array([where]))}

    context.comm.Barrier()
    write_blocks(context, writer, f"blockmix-permutations {start}:{stop}", range(n), compute, claimed=True)
    if (start, stop) == (0, count):
        write_thresholds(stage, results.read(f"{STAGE}/max_lr", allow_incomplete=True), options, context.log)
    stage.finish()


def write_thresholds(stage, maxima: np.ndarray, options, log) -> None:
    levels = alphas(options)
    values = thresholds(maxima, levels)
    stage.write("alphas", levels)
    stage.write("thresholds", values)
    log.info("blockmix-permutations: %d permutations, LR threshold %.4g at alpha = %g", maxima.size,
             values[np.flatnonzero(levels == options["alpha"])[0]], options["alpha"])


def run_merge_permutations(context, units=None, unit_output=None, inputs: Sequence[str] = ()) -> None:
    """Merge the task files; refuses, naming the missing permutation ids, until all are there."""
    options = context.config.section(SECTION)
    count = options["n_permutations"]
    merged = merge_task_files(context, inputs, STAGE, ("permutation", "max_lr", "argmax"), count,
                              "blockmix permutations")
    with context.open_results() as results:
        stage = begin_stage(context, results, extra={"range": [0, count]})
        if stage is None:
            return
        for name, value in merged.items():
            stage.write(name, value)
        write_thresholds(stage, merged["max_lr"], options, context.log)
        stage.finish()
    context.log.info("merged %d blockmix-permutations task files: %d permutations", len(inputs), count)
