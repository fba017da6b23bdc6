"""Stage ``genoprob``: HMM genotype probabilities, blocks of individuals spread over the ranks.

The HMM is independent per individual, so a block is a range of ``genoprob.block_individuals``
individuals; blocks are fixed by that size alone (not by the number of ranks), checkpointed, and
skipped on a rerun.
"""

from __future__ import annotations

import numpy as np

from qtlhpc.genetics.genoprob import calc_genoprob
from qtlhpc.parallel import chunk_ranges
from qtlhpc.stages.runtime import begin_stage, write_blocks

STAGE = "genoprob"


def chromosome_bounds(chromosomes: np.ndarray):
    """Names of the chromosomes in order and the ``[start, stop)`` positions of each."""
    names, starts, stops = [], [], []
    for index, name in enumerate(chromosomes):
        if not names or names[-1] != name:
            names.append(str(name))
            starts.append(index)
            stops.append(index)
        stops[-1] = index + 1
    return np.array(names, dtype=str), np.array(starts, dtype=np.int64), np.array(stops, dtype=np.int64)


def run_genoprob(context) -> None:
    options = context.config.section(STAGE)
    cross = context.cross()
    if cross.cross_type == "generic" or cross.additive_codes is not None:
        context.log.info("genoprob: the cross carries numeric codes (generic or PEPIS input); no HMM to run")
        return
    parameters = dict(step=options["step"], error_prob=options["error_prob"],
                      map_function=options["map_function"])
    grid = calc_genoprob(cross, individuals=slice(0, 0), **parameters)
    blocks = chunk_ranges(cross.n_individuals, options["block_individuals"])
    with context.open_results() as results:
        stage = begin_stage(context, results)
        if stage is None:
            return
        names, starts, stops = chromosome_bounds(grid.chromosomes)
        stage.write("individual_ids", cross.individuals)
        stage.write("genotype_states", np.array(grid.states, dtype=str))
        stage.write("position_names", grid.position_names)
        stage.write("position_chromosomes", grid.chromosomes)
        stage.write("positions_cM", grid.positions)
        stage.write("is_marker", grid.is_marker)
        stage.write("marker_index", grid.marker_index)
        stage.write("marker_names", cross.markers)
        stage.write("chromosome_names", names)
        stage.write("chromosome_position_start", starts)
        stage.write("chromosome_position_stop", stops)

        shape = (cross.n_individuals, grid.n_positions, len(grid.states))
        writer = stage.blocked({"probs": shape}, n_blocks=len(blocks), key="probs")

        def compute(block_id):
            start, stop = blocks[block_id]
            probs = calc_genoprob(cross, individuals=slice(start, stop), **parameters).probs
            return {"probs": ((slice(start, stop), slice(None), slice(None)), probs)}

        write_blocks(context, writer, "genoprob", range(len(blocks)), compute)
        stage.finish()
    context.log.info("genoprob: %d individuals x %d positions (%d markers) x %d states written to %s",
                     shape[0], shape[1], int(grid.is_marker.sum()), shape[2], context.output)
