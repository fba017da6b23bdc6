"""Stages ``blockmix-select`` and ``blockmix-merge-select``: the number of gene clusters by composite-likelihood
BIC (spec A2.1).

Work units are the (K, start) pairs, unit u = (K - k_min) * starts + s; start s of K draws from
``unit_rng(seed, "blockmix-start", K, s)`` alone, so any split over ranks (units claimed as ranks free up: the
cost grows with K) or SLURM array tasks (``--units START:STOP --unit-output FILE``, then
``blockmix-merge-select``) gives the same numbers.  Each unit is a checkpoint block.  Once every unit is done the
BIC curve (best start per K), K-hat and the fit at K-hat are written.
"""

from __future__ import annotations

import pathlib
from typing import Dict, Optional, Sequence

import numpy as np

from qtlhpc.errors import ConfigError, InputError
from qtlhpc.methods.blockmix.drivers.inputs import load_inputs, settings
from qtlhpc.methods.blockmix.fitting import fit_start
from qtlhpc.stages.runtime import begin_stage, check_needs, write_blocks
from qtlhpc.stages.sharded import merge_task_files, parse_units

STAGE = "blockmix-select"
SECTION = "blockmix_select"
UNIT_NAMES = ("k", "start", "cl", "bic", "iterations", "converged", "degenerate", "unit_mu", "unit_var", "unit_rho",
              "unit_pi", "unit_labels")


def grid(options) -> np.ndarray:
    if options["k_max"] < options["k_min"]:
        raise ConfigError(f"[{SECTION}] k_max = {options['k_max']} is below k_min = {options['k_min']}")
    return np.arange(options["k_min"], options["k_max"] + 1)


def n_units(config) -> int:
    options = config.section(SECTION)
    return len(grid(options)) * options["starts"]


def unit_of(u: int, options) -> tuple:
    return options["k_min"] + u // options["starts"], u % options["starts"]


def run_select(context, units: Optional[str] = None, unit_output: Optional[str] = None, inputs=()) -> None:
    options = context.config.section(SECTION)
    count = n_units(context.config)
    start, stop = parse_units(units, count, context.spec)
    output = pathlib.Path(unit_output).resolve() if unit_output else context.output
    with context.open_results(mode="a" if output == context.output else "r") as results:
        lineage = check_needs(context, results)
        data = load_inputs(context, results)
        if options["k_max"] > data.Y.shape[1]:
            raise ConfigError(f"[{SECTION}] k_max = {options['k_max']} exceeds the {data.Y.shape[1]} genes")
        if output == context.output:
            _select_into(context, results, data, options, start, stop, lineage, count)
            return
        with context.open_results(output) as task_results:
            _select_into(context, task_results, data, options, start, stop, lineage, count)


def _select_into(context, results, data, options, start, stop, lineage, count) -> None:
    stage = begin_stage(context, results, extra={"range": [start, stop]}, lineage=lineage)
    if stage is None:
        return
    em = settings(context, section=SECTION)
    Q, G, k_max, n = data.n_genotypes, data.Y.shape[1], options["k_max"], stop - start
    shapes = {"k": (n,), "start": (n,), "cl": (n,), "bic": (n,), "iterations": (n,), "converged": (n,),
              "degenerate": (n,), "unit_mu": (n, Q, k_max), "unit_var": (n, Q, k_max), "unit_rho": (n, k_max),
              "unit_pi": (n, Q), "unit_labels": (n, G)}
    writer = stage.blocked(shapes, n_blocks=n, key="units")

    def compute(block: int):
        k, s = unit_of(start + block, options)
        fit = fit_start(data.Y, k, Q, context.seed, s, em, data.YT)
        pad = np.full((Q, k_max), np.nan)
        mu, var = pad.copy(), pad.copy()
        mu[:, :k], var[:, :k] = fit.mu, fit.var
        rho = np.full(k_max, np.nan)
        rho[:k] = fit.rho
        row = (slice(block, block + 1),)
        values = {"k": [k], "start": [s], "cl": [fit.cl], "bic": [fit.bic], "iterations": [fit.iterations],
                  "converged": [fit.converged], "degenerate": [fit.degenerate], "unit_mu": mu[None],
                  "unit_var": var[None], "unit_rho": rho[None], "unit_pi": fit.pi[None],
                  "unit_labels": fit.labels[None].astype(np.int32)}
        return {name: (row + (slice(None),) * (len(shapes[name]) - 1), np.asarray(value))
                for name, value in values.items()}

    context.comm.Barrier()
    write_blocks(context, writer, f"blockmix-select units {start}:{stop}", range(n), compute, claimed=True)
    stage.write("gene_index", data.gene_index)
    if (start, stop) == (0, count):
        unit_values = {name: results.read(f"{STAGE}/{name}", allow_incomplete=True) for name in UNIT_NAMES}
        write_summary(stage, unit_values, options, context.log)
    stage.finish()


def write_summary(stage, unit: Dict[str, np.ndarray], options, log) -> None:
    """BIC curve, K-hat (smallest BIC; ties: the smaller K) and the fit at K-hat, from every unit's values."""
    ks = grid(options)
    curve, cl_curve, best_start = np.full(len(ks), np.inf), np.full(len(ks), np.nan), np.full(len(ks), -1)
    best_unit = {}
    for u in range(len(unit["k"])):
        index = int(unit["k"][u]) - options["k_min"]
        if unit["bic"][u] < curve[index] or best_start[index] < 0:
            curve[index], cl_curve[index], best_start[index] = unit["bic"][u], unit["cl"][u], unit["start"][u]
            best_unit[index] = u
    chosen = int(np.argmin(curve))
    if not np.isfinite(curve[chosen]):
        raise InputError("every start of every K was degenerate: the BIC curve has no finite value")
    k_hat, u = int(ks[chosen]), best_unit[chosen]
    stage.write("k_grid", ks)
    stage.write("bic_curve", curve)
    stage.write("cl_curve", cl_curve)
    stage.write("best_start", best_start.astype(np.int64))
    stage.write("k_hat", np.int64(k_hat))
    stage.write("mu", unit["unit_mu"][u][:, :k_hat])
    stage.write("var", unit["unit_var"][u][:, :k_hat])
    stage.write("rho", unit["unit_rho"][u][:k_hat])
    stage.write("pi", unit["unit_pi"][u])
    stage.write("labels", unit["unit_labels"][u])
    log.info("blockmix-select: K-hat = %d (CL-BIC %.6g) over K = %d..%d", k_hat, curve[chosen], ks[0], ks[-1])


def run_merge_select(context, units=None, unit_output=None, inputs: Sequence[str] = ()) -> None:
    """Merge the task files; refuses, naming the missing units, until they cover every (K, start) unit."""
    options = context.config.section(SECTION)
    count = n_units(context.config)
    merged = merge_task_files(context, inputs, STAGE, UNIT_NAMES, count, "blockmix-select units",
                              shared=("gene_index",))
    with context.open_results() as results:
        stage = begin_stage(context, results, extra={"range": [0, count]})
        if stage is None:
            return
        for name in UNIT_NAMES:
            stage.write(name, merged[name])
        stage.write("gene_index", merged.pop("gene_index"))
        write_summary(stage, merged, options, context.log)
        stage.finish()
    context.log.info("merged %d blockmix-select task files: %d units", len(inputs), count)
