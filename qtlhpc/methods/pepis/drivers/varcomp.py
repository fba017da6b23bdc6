"""Stage ``varcomp``: REML variance ratios of the polygenic background, one trait per work block.

Traits share the kinship matrices; each trait is a block (checkpointed), traits are spread over the
ranks. Every rank that fits a trait reads the kinships it needs (memory: ``k n^2`` floats per rank,
see docs/memory.md).
"""

from __future__ import annotations

import numpy as np

from qtlhpc.methods.pepis.kernels.reml import fit_reml
from qtlhpc.errors import InputError
from qtlhpc.methods.pepis.drivers.epistasis_inputs import (KINSHIP_MODEL_TESTED, design_matrix, require_stage,
                                                           select_traits, trait_problem)
from qtlhpc.parallel.comm import on_root
from qtlhpc.stages.runtime import begin_stage, write_blocks

STAGE = "varcomp"


def background_kinships(results, requested):
    """Names and indices (in kinship/matrices) of the kinships of the background, in stored order."""
    stored = [str(n) for n in results.read("kinship/kinship_names")]
    names = [name for name in stored if name in requested]
    return names, [stored.index(name) for name in names]


def run_varcomp(context) -> None:
    options = context.config.section(STAGE)
    cross = context.cross()
    trait_indices = select_traits(cross, options["traits"])
    design, covariate_names = design_matrix(cross, options["covariates"])
    trait_names = [str(cross.phenotype_names[j]) for j in trait_indices]
    with context.open_results() as results:
        require_stage(results, "kinship", "variance-component fit", context.output)
        names, stored_index = background_kinships(results, options["kinships"])
        # every trait checked once, up front, against the largest model of the run (the background's
        # variance components, the 2D scan's tested effects): one that cannot be fitted is skipped, the
        # others go on (on rank 0, broadcast)
        checks = on_root(context.comm, lambda: [
            trait_problem(name, cross.phenotypes[:, j], design, context.log, n_variance=len(names) + 1,
                          n_tested=KINSHIP_MODEL_TESTED, model="kinship model")
            for name, j in zip(trait_names, trait_indices)])
        masks = [keep for keep, _ in checks]
        reasons = [reason or "" for _, reason in checks]
        for name, reason in zip(trait_names, reasons):
            if reason:
                context.log.warning("varcomp: trait %s is skipped (not fitted, not scanned): %s", name, reason)
        if all(reasons):
            raise InputError("no trait can be fitted: " + "; ".join(f"{n}: {r}" for n, r in zip(trait_names, reasons)),
                             hint="give more individuals with data, or fewer kinships (varcomp.kinships) or covariates")
        stage = begin_stage(context, results)
        if stage is None:
            return
        n_traits, n_kinships = len(trait_names), len(names)
        stage.write("trait_names", np.array(trait_names, dtype=str))
        stage.write("component_names", np.array(names + ["residual"], dtype=str))
        stage.write("covariate_names", np.array(covariate_names, dtype=str))
        stage.write("n_individuals_used", np.array([int(m.sum()) for m in masks]))
        stage.write("skipped", np.array([bool(r) for r in reasons]))
        stage.write("skip_reasons", np.array(reasons, dtype=str))
        shapes = {
            "variance_ratios": (n_traits, n_kinships), "variance_ratio_se": (n_traits, n_kinships),
            "residual_variance": (n_traits,), "variance_proportions": (n_traits, n_kinships + 1),
            "fixed_effects": (n_traits, design.shape[1]), "fixed_effect_se": (n_traits, design.shape[1]),
            "reml_loglik": (n_traits,), "iterations": (n_traits,), "converged": (n_traits,), "used_fallback": (n_traits,),
        }
        writer = stage.blocked(shapes, n_blocks=n_traits, key="traits")
        # reading is collective: every rank reads, even one with no trait to fit
        kernels = dict(zip(names, results_read_kinships(results, stored_index)))

        def compute(trait):
            if reasons[trait]:
                return skipped_pieces(trait, shapes)
            keep = masks[trait]
            subset = kernels if keep.all() else {name: matrix[np.ix_(keep, keep)] for name, matrix in kernels.items()}
            fit = fit_reml(cross.phenotypes[keep, trait_indices[trait]], design[keep], subset,
                           max_iterations=options["max_iter"], tolerance=options["tolerance"])
            row = slice(trait, trait + 1)
            values = {
                "variance_ratios": fit.lambdas, "variance_ratio_se": fit.lambda_se,
                "residual_variance": [fit.sigma2], "variance_proportions": fit.proportions,
                "fixed_effects": fit.fixed_effects, "fixed_effect_se": fit.fixed_effects_se,
                "reml_loglik": [fit.loglik], "iterations": [fit.iterations], "converged": [fit.converged],
                "used_fallback": ["lbfgsb" in fit.method],
            }
            pieces = {}
            for name, value in values.items():
                value = np.asarray(value)
                pieces[name] = ((row,) + (slice(None),) * (len(shapes[name]) - 1), value.reshape((1,) + shapes[name][1:]))
            if fit.on_boundary is not None and fit.on_boundary[-1]:
                context.log.warning("varcomp: trait %s: the residual variance is on its boundary 0 (a kinship of full "
                                    "rank absorbs all variance); its ratios are unstable, consider fewer kinships "
                                    "(varcomp.kinships)", trait_names[trait])
            context.log.info("varcomp: trait %s: %s, sigma2 %.4g, REML logL %.6f (%s, %d iterations%s)",
                             trait_names[trait], ", ".join(f"{k}={v:.4g}" for k, v in zip(names, fit.lambdas)),
                             fit.sigma2, fit.loglik, fit.method, fit.iterations,
                             "" if fit.converged else ", NOT converged")
            return pieces

        write_blocks(context, writer, "varcomp", range(n_traits), compute)
        stage.finish()


def skipped_pieces(trait, shapes):
    """The rows of a skipped trait: NaN estimates, 0 iterations, not converged."""
    row = slice(trait, trait + 1)
    pieces = {}
    for name, shape in shapes.items():
        fill = 0 if name == "iterations" else False if name in ("converged", "used_fallback") else np.nan
        value = np.full((1,) + shape[1:], fill, dtype=int if name == "iterations" else bool if fill is False else float)
        pieces[name] = ((row,) + (slice(None),) * (len(shape) - 1), value)
    return pieces


def results_read_kinships(results, stored_index):
    """The selected kinship matrices ``(n, n)`` each, read one at a time (memory: ``k n^2`` floats)."""
    return [results.read("kinship/matrices", (slice(i, i + 1),))[0] for i in stored_index]
