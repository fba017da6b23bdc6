"""Stage ``scan2d``: every locus pair k < l, checkpointed by blocks of whole rows of the pair triangle.

Kinship models (``random`` as PEPIS, ``fixed`` GLS): the 4-df test of the aa, ad, da, dd effects over the
polygenic background. ``hk``: R/qtl's Haley-Knott two-QTL scan on the genoprob positions (LODs full,
fv1, int, add, av1); pairs on one chromosome use their joint two-locus probabilities, computed block by
block from the cross's HMM. A block is a run of rows of the triangle holding about ``scan2d.tile``^2
pairs, so it is one contiguous slice of the packed pair arrays; blocks depend only on the loci and
``tile``, never on the number of ranks. With parallel I/O the ranks claim blocks from a shared counter as
they go (a slow core computes fewer blocks); with rank-0 I/O they are split statically. After the blocks,
the pairs above ``scan2d.report_lod`` (at most ``max_reported_pairs``) get their effects and standard errors.
"""

from __future__ import annotations


import numpy as np

from qtlhpc.stats.chi2 import LOD_TO_LRT
from qtlhpc.parallel import packed_slice, pair_from_index, triangle_row_blocks
from qtlhpc.stages.runtime import begin_stage, write_blocks
from qtlhpc.methods.pepis.drivers.scan_inputs import require_scan_stages, scan_inputs, stack_traits, write_scan_labels

STAGE = "scan2d"
HK_STATISTICS = ("full", "fv1", "int", "add", "av1")


def kinship_block(inputs, block):
    from qtlhpc.methods.pepis.kernels.scan2d import scan2d_block

    out = []
    for trait in inputs.traits:
        result = scan2d_block(None, None, None, trait.additive, trait.dominance,
                              block, model=inputs.model, background=trait.background)
        out.append(dict(lrt=result.lrt, df=result.df, pvalue=result.pvalue, lod=result.lod))
    return out


def trait_pair_probs(inputs, trait):
    """``pair_probs(first, second)`` of ``scan2d_hk`` for the trait's individuals (None without a cross HMM)."""
    if inputs.pair_probs is None:
        return None
    return inputs.pair_probs.for_individuals(None if trait.keep.all() else trait.keep)


def hk_block(inputs, block, single_qtl_lods):
    from qtlhpc.genetics.hk import scan2d_hk
    from qtlhpc.stats.chi2 import chi2_survival

    out = []
    n_states = inputs.probs.shape[2]
    df_full = 2 * (n_states - 1) + (n_states - 1) ** 2
    for trait, single in zip(inputs.traits, single_qtl_lods):
        covariates = trait.design[:, 1:] if trait.design.shape[1] > 1 else None
        if inputs.x_model is not None:  # R/qtl's X model for the pairs with an X position
            from qtlhpc.genetics.xchr import scan2d_hk_x

            name, sex, pgm = inputs.x_model
            lods = scan2d_hk_x(inputs.probs[trait.keep], inputs.loci.chromosomes, name, inputs.cross_type,
                               None if sex is None else sex[trait.keep], None if pgm is None else pgm[trait.keep],
                               trait.phenotype, covariates, pair_probs=trait_pair_probs(inputs, trait),
                               single_qtl_lod=single, block=block)
        else:
            lods = scan2d_hk(inputs.probs[trait.keep], trait.phenotype, covariates, block, single_qtl_lod=single,
                             chromosomes=inputs.loci.chromosomes, pair_probs=trait_pair_probs(inputs, trait))
        statistics = np.stack([np.asarray(getattr(lods, f"lod_{s}")).reshape(-1) for s in HK_STATISTICS], axis=1)
        lrt = LOD_TO_LRT * statistics[:, 0]
        out.append(dict(lrt=lrt, df=np.full(lrt.shape, df_full), pvalue=chi2_survival(lrt, df_full),
                        lod=statistics[:, 0], hk_lods=statistics))
    return out


def hk_single_qtl_lods(inputs):
    from qtlhpc.genetics.hk import scan1d_hk

    lods = []
    for trait in inputs.traits:
        covariates = trait.design[:, 1:] if trait.design.shape[1] > 1 else None
        if inputs.x_model is not None:  # the X's single-QTL LOD by R/qtl's X model
            from qtlhpc.genetics.xchr import x_single_qtl_lod

            name, sex, pgm = inputs.x_model
            lods.append(x_single_qtl_lod(inputs.probs[trait.keep], inputs.loci.chromosomes, name, inputs.cross_type,
                                         None if sex is None else sex[trait.keep],
                                         None if pgm is None else pgm[trait.keep], trait.phenotype, covariates))
        else:
            lods.append(scan1d_hk(inputs.probs[trait.keep], trait.phenotype, covariates))
    return lods


def top_pairs(lod: np.ndarray, threshold: float, limit: int):
    """``(trait, pair_index)`` of the pairs with LOD above ``threshold``, strongest first, at most ``limit``."""
    traits, pairs = np.nonzero(np.nan_to_num(lod, nan=-np.inf) > threshold)
    values = lod[traits, pairs]
    order = np.lexsort((pairs, traits, -values))[:limit]
    return traits[order], pairs[order]


def pair_effects(inputs, traits, first, second):
    """aa, ad, da, dd effects and standard errors of selected pairs (kinship models; NaN for hk)."""
    effects = np.full((len(traits), 4), np.nan)
    errors = np.full((len(traits), 4), np.nan)
    if inputs.model == "hk":
        return effects, errors
    from qtlhpc.methods.pepis.kernels.scan2d import scan_pairs, transposed_codes

    for t, trait in enumerate(inputs.traits):
        rows = np.flatnonzero(traits == t)
        if rows.size == 0:
            continue
        z_t, w_t = transposed_codes(trait.additive, trait.dominance,
                                    int(trait.keep.sum()))
        result = scan_pairs(trait.background, z_t, w_t, first[rows], second[rows], model=inputs.model,
                            with_effects=True)
        effects[rows], errors[rows] = result.effects, result.effect_se
    return effects, errors


def run_scan2d(context) -> None:
    options = context.config.section(STAGE)
    model = options["model"]
    with context.open_results() as results:
        require_scan_stages(context, results, model, "2D scan")  # before the stage begins: no stub left
        stage = begin_stage(context, results)
        if stage is None:
            return
        inputs = scan_inputs(context, results, model, "2D scan", pairs=True)
        loci, n_traits = inputs.loci, len(inputs.traits)
        n_loci = len(loci.names)
        n_pairs = n_loci * (n_loci - 1) // 2
        write_scan_labels(stage, inputs)
        stage.write("effect_names", np.array(["aa", "ad", "da", "dd"], dtype=str))
        shapes = {name: (n_traits, n_pairs) for name in ("lrt", "df", "pvalue", "lod")}
        if model == "hk":
            stage.write("hk_statistic_names", np.array(HK_STATISTICS, dtype=str))
            shapes["hk_lods"] = (n_traits, n_pairs, len(HK_STATISTICS))
            single_qtl_lods = hk_single_qtl_lods(inputs)
        # the last tenth of the pairs in quarter-size blocks: claimed last, they even out the ranks' finish
        blocks = triangle_row_blocks(n_loci, max(1, options["tile"] ** 2), tail_fraction=0.1)
        writer = stage.blocked(shapes, n_blocks=len(blocks), key="pairs")

        def compute(block_id):
            block = blocks[block_id]
            columns = packed_slice(block, n_loci)
            per_trait = hk_block(inputs, block, single_qtl_lods) if model == "hk" else kinship_block(inputs, block)
            return stack_traits(per_trait, shapes, columns)

        # the ranks claim blocks as they go (blocks hold about equal numbers of pairs, but cores are not equal)
        write_blocks(context, writer, "scan2d", range(len(blocks)), compute, claimed=True)

        lod = results.read("scan2d/lod", allow_incomplete=True)
        traits, pairs = top_pairs(lod, options["report_lod"], options["max_reported_pairs"])
        locus_1, locus_2 = pair_from_index(pairs, n_loci)
        effects, errors = pair_effects(inputs, traits, locus_1, locus_2)
        pvalue = results.read("scan2d/pvalue", allow_incomplete=True)
        stage.write("top_trait", traits)
        stage.write("top_locus_1", locus_1)
        stage.write("top_locus_2", locus_2)
        stage.write("top_lod", lod[traits, pairs].astype(np.float64))
        stage.write("top_pvalue", pvalue[traits, pairs].astype(np.float64))
        stage.write("top_effects", effects)
        stage.write("top_effect_se", errors)
        stage.finish()
    context.log.info("scan2d (%s model): %d traits x %d pairs; %d pairs above LOD %.3g reported", model, n_traits,
                     n_pairs, len(traits), options["report_lod"])
