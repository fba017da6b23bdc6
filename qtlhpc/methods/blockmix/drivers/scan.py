"""Stage ``blockmix-scan``: the LR of test (i) at every genoprob position (spec A2.2).

The null fit (the Q = 1 model, from the stage-1 fit at K-hat) is computed once on rank 0 and broadcast; every
position's alternative starts at the null's parameters, so LR >= 0 and a position's numbers depend on nothing
but its own probabilities.  Work units are blocks of ``blockmix_scan.block`` consecutive positions, claimed by
the ranks as they free up, each a checkpoint block (a killed run resumes without losing finished blocks).
"""

from __future__ import annotations

import numpy as np

from qtlhpc.methods.blockmix.drivers.inputs import load_inputs, settings
from qtlhpc.methods.blockmix.fitting import NullFit, fit_null, fit_position
from qtlhpc.parallel import chunk_ranges
from qtlhpc.parallel.comm import on_root
from qtlhpc.stages.runtime import begin_stage, check_needs, write_blocks

STAGE = "blockmix-scan"
SECTION = "blockmix_scan"


def read_select_fit(results):
    """``(mu, var, rho, pi)`` of the stage-1 fit at K-hat."""
    return tuple(results.read(f"blockmix-select/{name}") for name in ("mu", "var", "rho", "pi"))


def read_null(results) -> NullFit:
    """The null fit stored by blockmix-scan (reused by the permutations)."""
    read = results.read
    return NullFit(read(f"{STAGE}/null_mu"), read(f"{STAGE}/null_var"), read(f"{STAGE}/null_rho"),
                   float(read(f"{STAGE}/null_cl")), 0, True, read(f"{STAGE}/null_labels"))


def run_scan(context) -> None:
    options = context.config.section(SECTION)
    em = settings(context)
    with context.open_results() as results:
        lineage = check_needs(context, results)
        data = load_inputs(context, results)
        select_genes = results.read("blockmix-select/gene_index")
        if not np.array_equal(select_genes, data.gene_index):
            from qtlhpc.errors import ConfigError

            raise ConfigError("blockmix-select was fitted to other genes than [blockmix] min_sd keeps now: rerun "
                              "`qtlhpc run blockmix-select CONFIG`")
        mu, var, rho, pi = read_select_fit(results)
        stage = begin_stage(context, results, lineage=lineage)
        if stage is None:
            return
        null = on_root(context.comm, lambda: fit_null(data.Y, mu, var, rho, pi, em, data.YT))
        stage.write("null_mu", null.mu)
        stage.write("null_var", null.var)
        stage.write("null_rho", null.rho)
        stage.write("null_cl", np.float64(null.cl))
        stage.write("null_labels", null.labels.astype(np.int32))
        n_positions, Q, K = data.probs.shape[1], data.n_genotypes, len(null.rho)
        stage.write("position_index", np.arange(n_positions))
        blocks = chunk_ranges(n_positions, options["block"])
        shapes = {"lr": (n_positions,), "cl_alt": (n_positions,), "cl_null_position": (n_positions,),
                  "mu": (n_positions, Q, K), "var": (n_positions, Q, K), "rho": (n_positions, K),
                  "iterations": (n_positions,), "converged": (n_positions,), "degenerate": (n_positions,)}
        writer = stage.blocked(shapes, n_blocks=len(blocks), key="positions")

        def compute(block: int):
            first, last = blocks[block]
            fits = [fit_position(data.Y, np.ascontiguousarray(data.probs[:, p, :]), null, em, data.YT)
                    for p in range(first, last)]
            rows = slice(first, last)
            values = {"lr": [f.lr for f in fits], "cl_alt": [f.cl_alt for f in fits],
                      "cl_null_position": [f.cl_null for f in fits], "mu": [f.mu for f in fits],
                      "var": [f.var for f in fits], "rho": [f.rho for f in fits],
                      "iterations": [f.iterations for f in fits], "converged": [f.converged for f in fits],
                      "degenerate": [f.degenerate for f in fits]}
            return {name: ((rows,) + (slice(None),) * (len(shapes[name]) - 1), np.asarray(value))
                    for name, value in values.items()}

        context.comm.Barrier()
        write_blocks(context, writer, "blockmix-scan positions", range(len(blocks)), compute, claimed=True)
        lr = results.read(f"{STAGE}/lr", allow_incomplete=True)
        stage.finish()
    best = int(np.argmax(lr))
    context.log.info("blockmix-scan: %d positions, largest LR %.4g at %s %s (%.2f cM)", n_positions, lr[best],
                     data.chromosomes[best], data.position_names[best], data.positions_cM[best])
