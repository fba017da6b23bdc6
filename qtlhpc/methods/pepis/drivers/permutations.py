"""Stages ``permutations`` and ``merge-permutations``: genome-wide thresholds from permuted phenotypes.

Permutation ids are global (0 .. n_permutations-1) and each draws its order from the run seed and its id
alone, so the ids can be split over ranks, over SLURM array tasks (``--units START:STOP
--unit-output FILE``, see :mod:`qtlhpc.stages.sharded`), or both, and the merged maxima are identical
to one pass. Work units are
batches of ``permutations.batch`` ids, checkpointed like every other block.

The 1D statistic is the scan1d model's LOD; the 2D statistic is the scan2d model's LOD (``hk``: the full
two-QTL LOD). Kinship models hold the variance ratios at the observed data's estimates.
"""

from __future__ import annotations

import pathlib
from typing import Optional, Sequence

import numpy as np

from qtlhpc.errors import ConfigError, InputError
from qtlhpc.parallel import chunk_ranges
from qtlhpc.parallel.comm import on_root
from qtlhpc.stages.runtime import begin_stage, check_needs, write_blocks
from qtlhpc.stages.sharded import parse_units
from qtlhpc.methods.pepis.drivers.scan_inputs import scan_inputs

STAGE = "permutations"


def _maxima_1d(inputs, trait, model, seed, ids):
    if model == "hk":
        from qtlhpc.methods.pepis.kernels.permutation import max_lod_hk_1d

        covariates = trait.design[:, 1:] if trait.design.shape[1] > 1 else None
        if inputs.x_model is not None:
            return _maxima_1d_hk_x(inputs, trait, covariates, seed, ids)
        return max_lod_hk_1d(inputs.probs[trait.keep], trait.phenotype, covariates, seed, ids).maxima["lod"]
    from qtlhpc.methods.pepis.kernels.permutation_kinship import max_lod_kinship_1d

    return max_lod_kinship_1d(trait.rotation, trait.phenotype, trait.design, trait.additive, trait.dominance,
                              seed, ids, model=model).maxima["lod"]


def _maxima_1d_hk_x(inputs, trait, covariates, seed, ids):
    """Genome-wide HK maxima with R/qtl's X model: the autosomes as usual, the X positions by
    :func:`qtlhpc.genetics.xchr.scan1d_hk_x` with the individuals' sex and pgm moved with the phenotype
    (as R/qtl's permutations move the whole phenotype table)."""
    from qtlhpc.genetics.xchr import cross_states_to_x, individual_classes, scan1d_hk_x
    from qtlhpc.methods.pepis.kernels.permutation import max_lod_hk_1d, permutation_order

    name, sex, pgm = inputs.x_model
    probs = inputs.probs[trait.keep]
    on_x = np.asarray(inputs.loci.chromosomes).astype(str) == str(name)
    sex = None if sex is None else sex[trait.keep]
    pgm = None if pgm is None else pgm[trait.keep]
    maxima = max_lod_hk_1d(probs[:, ~on_x], trait.phenotype, covariates, seed, ids).maxima["lod"]
    if on_x.any():
        f2 = inputs.cross_type in ("f2", "imf2")
        g = cross_states_to_x(probs[:, on_x], individual_classes(sex, pgm if f2 else None, len(trait.phenotype)),
                              inputs.cross_type)
        for k, permutation_id in enumerate(ids):
            order = permutation_order(seed, permutation_id, len(trait.phenotype))
            lod = scan1d_hk_x(g, trait.phenotype[order], inputs.cross_type, None if sex is None else sex[order],
                              None if pgm is None else pgm[order], covariates)
            maxima[k] = max(maxima[k], float(np.max(lod)))
    return maxima


def _maxima_2d_hk_x(inputs, trait, covariates, seed, ids, pair_probs):
    """Genome-wide maxima of the full two-QTL HK LOD with R/qtl's X model (one scan per permutation, the
    individuals' sex and pgm moved with the phenotype)."""
    from qtlhpc.genetics.xchr import scan2d_hk_x
    from qtlhpc.methods.pepis.kernels.permutation import permutation_order

    name, sex, pgm = inputs.x_model
    sex = None if sex is None else sex[trait.keep]
    pgm = None if pgm is None else pgm[trait.keep]
    maxima = np.empty(len(ids))
    for k, permutation_id in enumerate(ids):
        order = permutation_order(seed, permutation_id, len(trait.phenotype))
        lods = scan2d_hk_x(inputs.probs[trait.keep], inputs.loci.chromosomes, name, inputs.cross_type,
                           None if sex is None else sex[order], None if pgm is None else pgm[order],
                           trait.phenotype[order], covariates, pair_probs=pair_probs)
        maxima[k] = float(np.max(lods.lod_full)) if lods.lod_full.size else 0.0
    return maxima


def _maxima_2d(inputs, trait, model, seed, ids):
    if model == "hk":
        from qtlhpc.methods.pepis.kernels.permutation import max_lod_hk_2d

        covariates = trait.design[:, 1:] if trait.design.shape[1] > 1 else None
        from qtlhpc.methods.pepis.drivers.scan2d import trait_pair_probs

        if inputs.x_model is not None:
            return _maxima_2d_hk_x(inputs, trait, covariates, seed, ids, trait_pair_probs(inputs, trait))
        return max_lod_hk_2d(inputs.probs[trait.keep], trait.phenotype, covariates, seed, ids,
                             chromosomes=inputs.loci.chromosomes,
                             pair_probs=trait_pair_probs(inputs, trait)).maxima["full"]
    from qtlhpc.methods.pepis.kernels.permutation_kinship import max_lod_kinship_2d

    return max_lod_kinship_2d(trait.rotation, trait.phenotype, trait.design, trait.additive, trait.dominance,
                              seed, ids, model=model).maxima["lod"]


def run_permutations(context, units: Optional[str] = None, unit_output: Optional[str] = None,
                     inputs: Sequence[str] = ()) -> None:
    options = context.config.section(STAGE)
    n_total = options["n_permutations"]
    start, stop = parse_units(units, n_total, context.spec)
    models = {"1d": context.config.section("scan1d")["model"], "2d": context.config.section("scan2d")["model"]}
    scans = options["scans"]
    output = pathlib.Path(unit_output).resolve() if unit_output else context.output
    if output == context.output:
        with context.open_results() as results:
            lineage = check_needs(context, results)
            data = {scan: scan_inputs(context, results, models[scan], f"{scan} permutations", pairs=scan == "2d") for scan in scans}
            _permute_into(context, results, data, options, models, start, stop, n_total, lineage)
        return
    # an array task: the run's results file is only read (other tasks read it at the same time),
    # the maxima go to the task's own file, merged later by `merge-permutations`
    with context.open_results(mode="r") as results:
        lineage = check_needs(context, results)
        data = {scan: scan_inputs(context, results, models[scan], f"{scan} permutations", pairs=scan == "2d") for scan in scans}
    with context.open_results(output) as task_results:
        _permute_into(context, task_results, data, options, models, start, stop, n_total, lineage)


def _permute_into(context, results, data, options, models, start, stop, n_total, lineage) -> None:
    stage = begin_stage(context, results, extra={"range": [start, stop]}, lineage=lineage)
    if stage is None:
        return
    first_inputs = next(iter(data.values()))
    trait_names = first_inputs.trait_names
    n_traits, n_ids = len(trait_names), stop - start
    stage.write("trait_names", trait_names)
    stage.write("permutation_ids", np.arange(start, stop))
    shapes = {"max_lod_1d": (n_ids, n_traits), "max_lod_2d": (n_ids, n_traits)}
    batches = chunk_ranges(n_ids, options["batch"])
    writer = stage.blocked(shapes, n_blocks=len(batches), key="batches")

    def compute(batch_id):
        lo, hi = batches[batch_id]
        ids = np.arange(start + lo, start + hi)
        pieces = {}
        for scan, name, function in (("1d", "max_lod_1d", _maxima_1d), ("2d", "max_lod_2d", _maxima_2d)):
            values = np.full((hi - lo, n_traits), np.nan)
            if scan in data:
                for t, trait in enumerate(data[scan].traits):
                    values[:, t] = function(data[scan], trait, models[scan], context.seed, ids)
            pieces[name] = ((slice(lo, hi), slice(None)), values)
        return pieces

    write_blocks(context, writer, f"permutations {start}:{stop}", range(len(batches)), compute)
    if (start, stop) == (0, n_total):
        maxima_1d = results.read("permutations/max_lod_1d", allow_incomplete=True)
        maxima_2d = results.read("permutations/max_lod_2d", allow_incomplete=True)
        write_thresholds(stage, options["alphas"], maxima_1d, maxima_2d)
    stage.finish()
    context.log.info("permutations %d:%d of %d done (%s)", start, stop, n_total, ", ".join(data))


def write_thresholds(stage, alphas, maxima_1d, maxima_2d) -> None:
    from qtlhpc.stats.permutation import thresholds

    alphas = [float(a) for a in alphas]
    stage.write("alphas", np.array(alphas))
    for name, maxima in (("threshold_1d", maxima_1d), ("threshold_2d", maxima_2d)):
        table = np.full((len(alphas), maxima.shape[1]), np.nan)
        for t in range(maxima.shape[1]):
            if np.all(np.isfinite(maxima[:, t])):
                table[:, t] = [thresholds(maxima[:, t], [a])[0] for a in alphas]
        stage.write(name, table)


def run_merge_permutations(context, units=None, unit_output=None, inputs: Sequence[str] = ()) -> None:
    """Merge task files into the run's results; refuses, listing the missing ids, until all are there."""
    from qtlhpc.methods.pepis.kernels.permutation import PermutationMaxima, merge_permutations
    from qtlhpc.store import open_results

    options = context.config.section(STAGE)
    if not inputs:
        raise ConfigError("merge-permutations needs the task files to merge: qtlhpc run merge-permutations "
                          "CONFIG RUN_DIR/units/permutations/task-*.h5")

    def read_parts():
        parts, names = [], None
        for path in inputs:
            if not pathlib.Path(path).is_file():
                raise InputError("permutation task file not found (that task has not run, or failed)", file=path)
            with open_results(path) as task:
                parts.append((task.read("permutations/permutation_ids"), task.read("permutations/max_lod_1d"),
                              task.read("permutations/max_lod_2d")))
                names = task.read("permutations/trait_names") if names is None else names
        return parts, names

    parts, names = on_root(context.comm, read_parts)
    merged_columns = []
    for t in range(len(names)):
        columns = [PermutationMaxima(ids, {"1d": m1[:, t], "2d": m2[:, t]}) for ids, m1, m2 in parts]
        merged_columns.append(on_root(context.comm, lambda: merge_permutations(columns, options["n_permutations"])))
    ids = merged_columns[0].ids
    maxima_1d = np.column_stack([m.maxima["1d"] for m in merged_columns])
    maxima_2d = np.column_stack([m.maxima["2d"] for m in merged_columns])
    with context.open_results() as results:
        stage = begin_stage(context, results, extra={"range": [0, options["n_permutations"]]})
        if stage is None:
            return
        stage.write("trait_names", names)
        stage.write("permutation_ids", ids)
        stage.write("max_lod_1d", maxima_1d)
        stage.write("max_lod_2d", maxima_2d)
        write_thresholds(stage, options["alphas"], maxima_1d, maxima_2d)
        stage.finish()
    context.log.info("merged %d permutations from %d task files", len(ids), len(inputs))
