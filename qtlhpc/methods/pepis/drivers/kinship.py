"""Stage ``kinship``: the six PEPIS kinship matrices, blocks of rows spread over the ranks.

Each rank holds the codes ``Z, W (n_individuals, n_loci)`` and computes whole rows of every kinship
for its blocks of individuals (``kinship.block_rows``); rows go straight to the results file, so no
rank ever holds a full ``n x n`` matrix. Scaling constants (mean diagonals) cost ``O(n m)`` and are
computed before the blocks.
"""

from __future__ import annotations

import numpy as np

from qtlhpc.methods.pepis.kernels.kinship import KINSHIP_NAMES, kinship_rows, kinship_scales, loco_mask
from qtlhpc.parallel import chunk_ranges
from qtlhpc.stages.runtime import begin_stage, write_blocks
from qtlhpc.methods.pepis.drivers.epistasis_inputs import loci_from_cross_or_genoprob, require_stage

STAGE = "kinship"
DOMINANCE_KINSHIPS = ("d", "ad", "da", "dd")


def kinships_to_compute(requested, dominance_informative: bool, log):
    which = [name for name in KINSHIP_NAMES if name in requested]
    if not dominance_informative:
        dropped = [name for name in which if name in DOMINANCE_KINSHIPS]
        if dropped:
            log.warning("kinship: the dominance codes are constant (no heterozygotes, e.g. RILs): "
                        "leaving out %s", ", ".join(dropped))
        which = [name for name in which if name not in DOMINANCE_KINSHIPS]
    return which


def warn_monomorphic(loci, log) -> None:
    """Name the loci whose codes do not vary: they add nothing to the kinships and cannot be tested."""
    constant = np.flatnonzero((np.ptp(loci.additive, axis=0) == 0) & (np.ptp(loci.dominance, axis=0) == 0))
    if constant.size:
        shown = ", ".join(str(loci.names[k]) for k in constant[:10])
        log.warning("kinship: %d of %d loci are monomorphic (same genotype in every individual): %s%s; their "
                    "scans are reported with 0 degrees of freedom", constant.size, loci.n_loci, shown,
                    ", ..." if constant.size > 10 else "")


def run_kinship(context) -> None:
    options = context.config.section(STAGE)
    with context.open_results() as results:
        cross = context.cross()
        if cross.additive_codes is None and cross.cross_type != "generic":  # before the stage begins: no stub left
            require_stage(results, "genoprob", f"kinship stage (the codes of a {cross.cross_type} cross come from "
                          "its genotype probabilities)", context.output)
        stage = begin_stage(context, results)
        if stage is None:
            return
        loci = loci_from_cross_or_genoprob(context, results, options["positions"], options["x_chromosome"])
        which = kinships_to_compute(options["which"], loci.dominance_informative, context.log)
        warn_monomorphic(loci, context.log)
        cross = context.cross()
        n = cross.n_individuals
        scales = kinship_scales(loci.additive, loci.dominance, which)
        stage.write("kinship_names", np.array(which, dtype=str))
        stage.write("scale", np.array([scales[name] for name in which]))
        stage.write("individual_ids", cross.individuals)
        stage.write("locus_names", loci.names)
        stage.write("locus_chromosomes", loci.chromosomes)
        stage.write("locus_positions_cM", loci.positions)
        stage.write("additive_codes", loci.additive)
        stage.write("dominance_codes", loci.dominance)

        blocks = chunk_ranges(n, options["block_rows"])
        # whole-genome kinships, then (kinship.loco) one set per left-out chromosome; a block is a
        # (kinship set, rows) pair, so every set is written row block by row block
        sets = [("", None)]
        if options["loco"]:
            chromosomes = list(dict.fromkeys(str(c) for c in loci.chromosomes))
            sets += [(c, loco_mask(loci.chromosomes, c)) for c in chromosomes]
            loco_scales = [kinship_scales(loci.additive, loci.dominance, which, mask) for _, mask in sets[1:]]
            stage.write("loco_chromosomes", np.array(chromosomes, dtype=str))
            stage.write("loco_scale", np.array([[sc[name] for name in which] for sc in loco_scales]))
        shapes = {"matrices": (len(which), n, n)}
        if options["loco"]:
            shapes["loco_matrices"] = (len(sets) - 1, len(which), n, n)
        units = [(s_index, start, stop) for s_index in range(len(sets)) for start, stop in blocks]
        writer = stage.blocked(shapes, n_blocks=len(units), key="matrices")

        def compute(unit_id):
            set_index, start, stop = units[unit_id]
            mask = sets[set_index][1]
            set_scales = scales if set_index == 0 else loco_scales[set_index - 1]
            rows = kinship_rows(loci.additive, loci.dominance, start, stop, which,
                                marker_block=options["marker_block"], marker_mask=mask)
            stacked = np.stack([rows[name] / set_scales[name] for name in which])
            if set_index == 0:
                return {"matrices": ((slice(None), slice(start, stop), slice(None)), stacked)}
            selection = (slice(set_index - 1, set_index), slice(None), slice(start, stop), slice(None))
            return {"loco_matrices": (selection, stacked[None])}

        write_blocks(context, writer, "kinship", range(len(units)), compute)
        stage.finish()
    context.log.info("kinship: %s for %d individuals from %d loci; scales %s", ", ".join(which), n, loci.n_loci,
                     ", ".join(f"{k}={v:.4g}" for k, v in scales.items()))
