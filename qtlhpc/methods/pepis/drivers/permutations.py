"""Stages ``permutations`` and ``merge-permutations``: genome-wide thresholds from permuted phenotypes.

Permutation ids are global (0 .. n_permutations-1) and each draws its order from the run seed and its id
alone, so the ids can be split over ranks, over SLURM array tasks (``--units START:STOP
--unit-output FILE``, see :mod:`qtlhpc.stages.sharded`), or both, and the merged maxima are identical
to one pass. Work units are
batches of ``permutations.batch`` ids, checkpointed like every other block.

The 1D statistic is the scan1d model's LOD; the 2D statistic is the scan2d model's LOD (``hk``: the full
two-QTL LOD). Kinship models hold the variance ratios at the observed data's estimates.

X-specific 1D thresholds (``permutations.x_specific``, R/qtl's ``scanone(perm.Xsp = TRUE)``): with an HK
1D scan of a bc/f2 that has an X and autosomes, permutation unit ``k`` also scans the autosomes alone
(``max_lod_1d_autosomes``) and owns the X permutations ``[s_k, s_(k+1))`` of
:func:`qtlhpc.genetics.xchr.xsp_unit_starts` (``n_X = ceiling(L_A / L_X * n_permutations)`` in all, R/qtl's
count), stored by X permutation id in ``max_lod_1d_x``.  X permutation ``s_k`` reorders the individuals as
permutation ``k`` does (so ``max_lod_1d`` of unit ``k`` is the genome-wide maximum ``max(autosomes, X)``
of one permutation), every other X id ``j`` draws its own order from ``unit_rng(seed, "permutation-x",
j)``.  As R/qtl's ``scanone`` permutations, the phenotype moves with its individual's covariates, sex
and pgm.  Thresholds: each part's quantile at its own level, R/qtl's split by chromosome lengths
(:func:`qtlhpc.genetics.xchr.xsp_thresholds`).
"""

from __future__ import annotations

import pathlib
from dataclasses import dataclass
from typing import Optional, Sequence

import numpy as np

from qtlhpc.errors import ConfigError, InputError
from qtlhpc.parallel import chunk_ranges
from qtlhpc.parallel.comm import on_root
from qtlhpc.stages.runtime import begin_stage, check_needs, write_blocks
from qtlhpc.stages.sharded import parse_units
from qtlhpc.methods.pepis.drivers.scan_inputs import scan_inputs

STAGE = "permutations"


@dataclass
class XspPlan:
    """X-specific permutations of a run (see the module docstring)."""

    x_name: str
    autosome_length: float
    x_length: float
    n_permutations: int
    n_x: int
    starts: np.ndarray  # (n_permutations + 1,): unit k owns the X ids starts[k]:starts[k + 1]


def xsp_plan(context, options, models, data) -> Optional[XspPlan]:
    """The X-specific permutations of this run, or None when ``x_specific`` does not apply (no 1D HK scan, no X,
    or no autosome)."""
    from qtlhpc.genetics.xchr import chromosome_lengths, x_permutation_counts, xsp_unit_starts

    inputs = data.get("1d")
    if not options["x_specific"] or inputs is None or models["1d"] != "hk" or inputs.x_model is None:
        return None
    name = str(inputs.x_model[0])
    on_x = np.asarray(inputs.loci.chromosomes).astype(str) == name
    if not on_x.any() or on_x.all():
        return None
    cross = context.cross()
    lengths = chromosome_lengths(cross.positions, cross.chromosomes)
    autosome_length = float(sum(v for k, v in lengths.items() if k != name))
    x_length = float(lengths.get(name, 0.0))
    if x_length <= 0 or autosome_length <= 0:
        raise ConfigError(f"permutations.x_specific: the {'X chromosome' if x_length <= 0 else 'autosomes'} "
                          f"span 0 cM (X {x_length:g} cM, autosomes {autosome_length:g} cM), and R/qtl's "
                          "X-specific permutations split the level by chromosome lengths: set "
                          "permutations.x_specific = false for genome-wide thresholds")
    n = int(options["n_permutations"])
    n_x = x_permutation_counts(n, autosome_length, x_length)
    return XspPlan(name, autosome_length, x_length, n, n_x, xsp_unit_starts(n, n_x))


def _maxima_1d_xsp(inputs, trait, plan: XspPlan, seed, units):
    """Units ``units`` of an X-specific 1D HK permutation run: ``(genome-wide maxima (len(units),), autosome
    maxima (len(units),), X maxima of the X ids the units own)``."""
    from qtlhpc.genetics.xchr import cross_states_to_x, individual_classes, xsp_maxima
    from qtlhpc.methods.pepis.kernels.permutation import permutation_order
    from qtlhpc.parallel.rng import unit_rng

    _, sex, pgm = inputs.x_model
    probs = inputs.probs[trait.keep]
    on_x = np.asarray(inputs.loci.chromosomes).astype(str) == plan.x_name
    sex = None if sex is None else sex[trait.keep]
    pgm = None if pgm is None else pgm[trait.keep]
    f2 = inputs.cross_type in ("f2", "imf2")
    n = len(trait.phenotype)
    g = cross_states_to_x(probs[:, on_x], individual_classes(sex, pgm if f2 else None, n), inputs.cross_type)
    covariates = trait.design[:, 1:] if trait.design.shape[1] > 1 else None
    units = [int(k) for k in units]
    orders_a = [permutation_order(seed, k, n) for k in units]
    x_orders, first_of_unit, extra_of_unit = [], {}, {}
    for k, order in zip(units, orders_a):
        owned = range(int(plan.starts[k]), int(plan.starts[k + 1]))
        for j in owned:
            x_orders.append(order if j == owned.start else unit_rng(seed, "permutation-x", j).permutation(n))
        if len(owned):
            first_of_unit[k] = len(x_orders) - len(owned)
    n_owned = len(x_orders)
    for k, order in zip(units, orders_a):  # units owning no X id (an X longer than the autosomes)
        if k not in first_of_unit:
            extra_of_unit[k] = len(x_orders)
            x_orders.append(order)
    maxima_a, maxima_x = xsp_maxima(probs[:, ~on_x], g, trait.phenotype, inputs.cross_type, sex, pgm, orders_a,
                                    x_orders, covariates=covariates)
    genome = np.array([max(maxima_a[i], maxima_x[first_of_unit[k] if k in first_of_unit else extra_of_unit[k]])
                       for i, k in enumerate(units)])
    return genome, maxima_a, maxima_x[:n_owned]


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
        if covariates is None:  # the whole null model moves with the phenotype: batched (xsp_maxima)
            from qtlhpc.genetics.xchr import xsp_maxima

            orders = [permutation_order(seed, permutation_id, len(trait.phenotype)) for permutation_id in ids]
            _, on_x_maxima = xsp_maxima(probs[:, :0], g, trait.phenotype, inputs.cross_type, sex, pgm, [], orders)
            return np.maximum(maxima, on_x_maxima)
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
            plan = xsp_plan(context, options, models, data)
            _permute_into(context, results, data, options, models, start, stop, n_total, lineage, plan)
        return
    # an array task: the run's results file is only read (other tasks read it at the same time),
    # the maxima go to the task's own file, merged later by `merge-permutations`
    with context.open_results(mode="r") as results:
        lineage = check_needs(context, results)
        data = {scan: scan_inputs(context, results, models[scan], f"{scan} permutations", pairs=scan == "2d") for scan in scans}
    plan = xsp_plan(context, options, models, data)
    with context.open_results(output) as task_results:
        _permute_into(context, task_results, data, options, models, start, stop, n_total, lineage, plan)


def _permute_into(context, results, data, options, models, start, stop, n_total, lineage,
                  plan: Optional[XspPlan] = None) -> None:
    stage = begin_stage(context, results, extra={"range": [start, stop]}, lineage=lineage)
    if stage is None:
        return
    first_inputs = next(iter(data.values()))
    trait_names = first_inputs.trait_names
    n_traits, n_ids = len(trait_names), stop - start
    stage.write("trait_names", trait_names)
    stage.write("permutation_ids", np.arange(start, stop))
    shapes = {"max_lod_1d": (n_ids, n_traits), "max_lod_2d": (n_ids, n_traits)}
    if plan is not None:
        x_start, x_stop = int(plan.starts[start]), int(plan.starts[stop])
        stage.write("autosome_length_cM", plan.autosome_length)
        stage.write("x_length_cM", plan.x_length)
        stage.write("x_permutation_ids", np.arange(x_start, x_stop))
        shapes.update({"max_lod_1d_autosomes": (n_ids, n_traits), "max_lod_1d_x": (x_stop - x_start, n_traits)})
        context.log.info("permutations.x_specific: %d autosome and %d X permutations (R/qtl perm.Xsp; autosomes "
                         "%.1f cM, X %.1f cM)", plan.n_permutations, plan.n_x, plan.autosome_length, plan.x_length)
    batches = chunk_ranges(n_ids, options["batch"])
    writer = stage.blocked(shapes, n_blocks=len(batches), key="batches")

    def compute(batch_id):
        lo, hi = batches[batch_id]
        ids = np.arange(start + lo, start + hi)
        pieces = {}
        for scan, name, function in (("1d", "max_lod_1d", _maxima_1d), ("2d", "max_lod_2d", _maxima_2d)):
            values = np.full((hi - lo, n_traits), np.nan)
            if scan == "1d" and plan is not None:
                x_lo, x_hi = int(plan.starts[start + lo]) - x_start, int(plan.starts[start + hi]) - x_start
                autosomes, x = np.full((hi - lo, n_traits), np.nan), np.full((x_hi - x_lo, n_traits), np.nan)
                for t, trait in enumerate(data[scan].traits):
                    values[:, t], autosomes[:, t], x[:, t] = _maxima_1d_xsp(data[scan], trait, plan, context.seed, ids)
                pieces["max_lod_1d_autosomes"] = ((slice(lo, hi), slice(None)), autosomes)
                pieces["max_lod_1d_x"] = ((slice(x_lo, x_hi), slice(None)), x)
            elif scan in data:
                for t, trait in enumerate(data[scan].traits):
                    values[:, t] = function(data[scan], trait, models[scan], context.seed, ids)
            pieces[name] = ((slice(lo, hi), slice(None)), values)
        return pieces

    write_blocks(context, writer, f"permutations {start}:{stop}", range(len(batches)), compute)
    if (start, stop) == (0, n_total):
        maxima_1d = results.read("permutations/max_lod_1d", allow_incomplete=True)
        maxima_2d = results.read("permutations/max_lod_2d", allow_incomplete=True)
        write_thresholds(stage, options["alphas"], maxima_1d, maxima_2d)
        if plan is not None:
            write_xsp_thresholds(stage, options["alphas"], results.read("permutations/max_lod_1d_autosomes",
                                                                        allow_incomplete=True),
                                 results.read("permutations/max_lod_1d_x", allow_incomplete=True),
                                 plan.autosome_length, plan.x_length)
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


def write_xsp_thresholds(stage, alphas, maxima_autosomes, maxima_x, autosome_length, x_length) -> None:
    """R/qtl's ``summary(scanone(..., perm.Xsp = TRUE))``: each part's threshold at its own level."""
    from qtlhpc.genetics.xchr import xsp_alphas, xsp_thresholds

    alphas = [float(a) for a in alphas]
    alpha_a, alpha_x = xsp_alphas(alphas, autosome_length, x_length)
    stage.write("alphas_autosomes", np.asarray(alpha_a, dtype=float))
    stage.write("alphas_x", np.asarray(alpha_x, dtype=float))
    tables = [np.full((len(alphas), maxima_autosomes.shape[1]), np.nan) for _ in range(2)]
    for t in range(maxima_autosomes.shape[1]):
        if np.all(np.isfinite(maxima_autosomes[:, t])) and np.all(np.isfinite(maxima_x[:, t])):
            tables[0][:, t], tables[1][:, t] = xsp_thresholds(maxima_autosomes[:, t], maxima_x[:, t], alphas,
                                                              autosome_length, x_length)
    stage.write("threshold_1d_autosomes", tables[0])
    stage.write("threshold_1d_x", tables[1])


def run_merge_permutations(context, units=None, unit_output=None, inputs: Sequence[str] = ()) -> None:
    """Merge task files into the run's results; refuses, listing the missing ids, until all are there."""
    from qtlhpc.methods.pepis.kernels.permutation import PermutationMaxima, merge_permutations
    from qtlhpc.store import open_results

    options = context.config.section(STAGE)
    if not inputs:
        raise ConfigError("merge-permutations needs the task files to merge: qtlhpc run merge-permutations "
                          "CONFIG RUN_DIR/units/permutations/task-*.h5")

    def read_parts():
        parts, names, xsp = [], None, []
        for path in inputs:
            if not pathlib.Path(path).is_file():
                raise InputError("permutation task file not found (that task has not run, or failed)", file=path)
            with open_results(path) as task:
                parts.append((task.read("permutations/permutation_ids"), task.read("permutations/max_lod_1d"),
                              task.read("permutations/max_lod_2d")))
                names = task.read("permutations/trait_names") if names is None else names
                stored = {d.path for info in task.describe() if info.name == STAGE for d in info.datasets}
                if "permutations/max_lod_1d_x" in stored:
                    xsp.append(tuple(task.read(f"permutations/{name}") for name in
                                     ("x_permutation_ids", "max_lod_1d_autosomes", "max_lod_1d_x",
                                      "autosome_length_cM", "x_length_cM")))
        if xsp and len(xsp) != len(parts):
            raise InputError("some permutation task files hold X-specific permutations and some do not (tasks "
                             "run with different configurations): rerun the tasks with this configuration")
        return parts, names, xsp

    parts, names, xsp = on_root(context.comm, read_parts)
    merged_columns = []
    for t in range(len(names)):
        columns = [PermutationMaxima(ids, {"1d": m1[:, t], "2d": m2[:, t]}) for ids, m1, m2 in parts]
        merged_columns.append(on_root(context.comm, lambda: merge_permutations(columns, options["n_permutations"])))
    ids = merged_columns[0].ids
    maxima_1d = np.column_stack([m.maxima["1d"] for m in merged_columns])
    maxima_2d = np.column_stack([m.maxima["2d"] for m in merged_columns])
    merged_x = _merge_xsp(context, parts, names, xsp, options["n_permutations"]) if xsp else None
    with context.open_results() as results:
        stage = begin_stage(context, results, extra={"range": [0, options["n_permutations"]]})
        if stage is None:
            return
        stage.write("trait_names", names)
        stage.write("permutation_ids", ids)
        stage.write("max_lod_1d", maxima_1d)
        stage.write("max_lod_2d", maxima_2d)
        write_thresholds(stage, options["alphas"], maxima_1d, maxima_2d)
        if merged_x is not None:
            x_ids, maxima_autosomes, maxima_x, autosome_length, x_length = merged_x
            stage.write("autosome_length_cM", autosome_length)
            stage.write("x_length_cM", x_length)
            stage.write("x_permutation_ids", x_ids)
            stage.write("max_lod_1d_autosomes", maxima_autosomes)
            stage.write("max_lod_1d_x", maxima_x)
            write_xsp_thresholds(stage, options["alphas"], maxima_autosomes, maxima_x, autosome_length, x_length)
        stage.finish()
    context.log.info("merged %d permutations from %d task files", len(ids), len(inputs))


def _merge_xsp(context, parts, names, xsp, n_permutations):
    """The X-specific maxima of the task files, merged by id; names missing X ids as missing units do."""
    from qtlhpc.genetics.xchr import x_permutation_counts
    from qtlhpc.methods.pepis.kernels.permutation import PermutationMaxima, merge_permutations

    autosome_length, x_length = float(xsp[0][3]), float(xsp[0][4])
    n_x = x_permutation_counts(n_permutations, autosome_length, x_length)
    autosome_columns, x_columns = [], []
    for t in range(len(names)):
        autosome_columns.append(on_root(context.comm, lambda: merge_permutations(
            [PermutationMaxima(part[0], {"a": x[1][:, t]}) for part, x in zip(parts, xsp)], n_permutations)))
        x_columns.append(on_root(context.comm, lambda: merge_permutations(
            [PermutationMaxima(x[0], {"x": x[2][:, t]}) for x in xsp], n_x)))
    return (x_columns[0].ids, np.column_stack([m.maxima["a"] for m in autosome_columns]),
            np.column_stack([m.maxima["x"] for m in x_columns]), autosome_length, x_length)
