"""Stage ``scan1d``: the 2-df test of every locus's additive and dominance effects.

Models (``scan1d.model``): ``random`` (PEPIS: both effects random with their own variance ratios,
ML per locus, LRT against the polygenic null), ``fixed`` (GLS, LRT with 2 df) and ``hk`` (Haley-Knott
regression on genotype probabilities, no kinship, LOD = (n/2) log10(RSS0/RSS1)). Blocks of loci are the
work units (checkpointed); every block is computed for all traits.
"""

from __future__ import annotations


import numpy as np

from qtlhpc.stats.chi2 import LOD_TO_LRT
from qtlhpc.parallel import chunk_ranges
from qtlhpc.stages.runtime import begin_stage, write_blocks
from qtlhpc.errors import ConfigError
from qtlhpc.methods.pepis.drivers.scan_inputs import require_scan_stages, scan_inputs, stack_traits, write_scan_labels, set_background

STAGE = "scan1d"


def hk_block(inputs, start: int, stop: int):
    """Per-trait arrays of an HK block: lrt, df, pvalue, lod (n_loci,), effects and se (n_loci, 2)."""
    from qtlhpc.genetics.hk import effects_hk
    from qtlhpc.stats.chi2 import chi2_survival

    out = []
    for trait in inputs.traits:
        probs = inputs.probs[trait.keep, start:stop, :]
        covariates = trait.design[:, 1:] if trait.design.shape[1] > 1 else None
        fit = effects_hk(probs, trait.phenotype, covariates, cross_type=inputs.cross_type)
        n_effects = fit.estimate.shape[1]
        effects = np.full((stop - start, 2), np.nan)
        errors = np.full((stop - start, 2), np.nan)
        effects[:, :n_effects], errors[:, :n_effects] = fit.estimate, fit.std_error
        df = np.full(stop - start, probs.shape[2] - 1)
        lod = fit.lod
        if inputs.x_model is not None:
            lod, df = _x_positions(inputs, trait, start, stop, probs, covariates, lod, df, effects, errors)
        lrt = LOD_TO_LRT * lod
        out.append(dict(lrt=lrt, df=df, pvalue=chi2_survival(lrt, df), lod=lod, effects=effects,
                        effect_se=errors, variance_ratios=np.full((stop - start, 2), np.nan)))
    return out


def _x_positions(inputs, trait, start, stop, probs, covariates, lod, df, effects, errors):
    """R/qtl's X model at the block's X positions: LOD of scanone(method = "hk") with the sex/direction
    covariates, its degrees of freedom; effects in Xu's coding are not defined there (NaN)."""
    from qtlhpc.genetics.xchr import cross_states_to_x, individual_classes, scan1d_hk_x, x_degrees_of_freedom

    name, sex, pgm = inputs.x_model
    on_x = np.flatnonzero(np.asarray(inputs.loci.chromosomes[start:stop]).astype(str) == str(name))
    if on_x.size == 0:
        return lod, df
    sex = None if sex is None else sex[trait.keep]
    pgm = None if pgm is None else pgm[trait.keep]
    classes = individual_classes(sex, pgm if inputs.cross_type in ("f2", "imf2") else None, len(trait.phenotype))
    g = cross_states_to_x(probs[:, on_x, :], classes, inputs.cross_type)
    lod, df = lod.copy(), df.copy()
    lod[on_x] = scan1d_hk_x(g, trait.phenotype, inputs.cross_type, sex, pgm, covariates)
    df[on_x] = x_degrees_of_freedom(g, inputs.cross_type, sex, pgm, covariates)
    effects[on_x] = np.nan
    errors[on_x] = np.nan
    return lod, df


def kinship_block(inputs, start: int, stop: int):
    from qtlhpc.methods.pepis.kernels.scan1d import scan1d

    out = []
    for trait in inputs.traits:
        result = scan1d(trait.background, trait.additive[:, start:stop], trait.dominance[:, start:stop],
                        model=inputs.model)
        ratios = result.variance_ratios if result.variance_ratios is not None else np.full((stop - start, 2), np.nan)
        out.append(dict(lrt=result.lrt, df=result.df, pvalue=result.pvalue, lod=result.lod, effects=result.effects,
                        effect_se=result.effect_se, variance_ratios=ratios))
    return out


def _has_loco(results) -> bool:
    return any(d.path == "kinship/loco_matrices" for info in results.describe() if info.name == "kinship"
               for d in info.datasets)


def run_scan1d(context) -> None:
    options = context.config.section(STAGE)
    model = options["model"]
    with context.open_results() as results:
        require_scan_stages(context, results, model, "1D scan")  # before the stage begins: no stub left
        stage = begin_stage(context, results)
        if stage is None:
            return
        inputs = scan_inputs(context, results, model, "1D scan")
        loci, n_traits = inputs.loci, len(inputs.traits)
        n_loci = len(loci.names)
        write_scan_labels(stage, inputs)
        stage.write("effect_names", np.array(["a", "d"], dtype=str))
        shapes = {name: (n_traits, n_loci) for name in ("lrt", "df", "pvalue", "lod")}
        shapes.update({name: (n_traits, n_loci, 2) for name in ("effects", "effect_se", "variance_ratios")})
        # blocks never straddle chromosomes (a LOCO background is per chromosome)
        chromosome_runs = [np.flatnonzero(loci.chromosomes == c) for c in dict.fromkeys(loci.chromosomes)]
        blocks, block_chromosome = [], []
        for c_index, run in enumerate(chromosome_runs):
            for start, stop in chunk_ranges(len(run), options["block_markers"]):
                blocks.append((int(run[start]), int(run[start]) + stop - start))
                block_chromosome.append(c_index)
        writer = stage.blocked(shapes, n_blocks=len(blocks), key="loci")
        compute_block = hk_block if model == "hk" else kinship_block

        def compute(block_id):
            start, stop = blocks[block_id]
            return stack_traits(compute_block(inputs, start, stop), shapes, slice(start, stop))

        if not options["loco"]:
            write_blocks(context, writer, "scan1d", range(len(blocks)), compute)
        else:
            if model == "hk":
                raise ConfigError("scan1d.loco applies to the kinship models (random, fixed), not to hk")
            if not _has_loco(results):
                raise ConfigError("scan1d.loco needs the leave-one-chromosome-out kinships: set kinship.loco = true "
                                  "and rerun the kinship stage")
            loco_chromosomes = [str(c) for c in results.read("kinship/loco_chromosomes")]
            for c_index, chromosome in enumerate(dict.fromkeys(str(c) for c in loci.chromosomes)):
                # collective: every rank reads this chromosome's kinships and builds the backgrounds
                loco = results.read("kinship/loco_matrices", (slice(loco_chromosomes.index(chromosome),
                                                                     loco_chromosomes.index(chromosome) + 1),))[0]
                for t, trait in enumerate(inputs.traits):
                    set_background(trait, inputs.variance_ratios[t],
                                   [loco[inputs.kinship_names.index(c)] for c in inputs.components])
                mine = [b for b, c in enumerate(block_chromosome) if c == c_index]
                write_blocks(context, writer, f"scan1d (LOCO, chromosome {chromosome})", mine, compute)
        stage.finish()
    context.log.info("scan1d (%s model): %d traits x %d loci", model, n_traits, n_loci)
