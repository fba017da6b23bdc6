"""Stage ``cocluster-matrix``: the co-clustering matrix F by row blocks, rho and the fuzziness entropy.

Every rank reads the label samples of all runs (``R x S x G`` int32, small) and builds only its own rows
of ``F`` (``block_range(G, rank, size)``, PETSc's split), per run, so that ``F`` never sits whole on one
rank.  ``F = mean over runs of F_r`` is written as CSR: each rank's rows are one checkpoint block of
``data``/``indices`` at the offsets of the global row pointers.  rho ([J] eq. (4)) between the two halves
of the runs, the rho-vs-k table ([J] Fig. 2; pairs of disjoint sets of k runs from the seeded order
``unit_rng(seed, "cocluster-rho-k", k)``) and H_fuzzy ([J] eq. (6)) come from sums reduced over ranks.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from qtlhpc.methods.cocluster import distributed
from qtlhpc.methods.cocluster.kernels import rho_from_sums
from qtlhpc.parallel import allreduce_sum, unit_rng
from qtlhpc.stages.runtime import begin_stage, check_needs

STAGE = "cocluster-matrix"
SECTION = "cocluster"


def per_run_rows(samples: np.ndarray, start: int, stop: int, chunk: int):
    """``[F_r rows start:stop]`` for each run of ``samples (R, S, G)``."""
    return [distributed.f_rows([samples[r]], start, stop, chunk) for r in range(samples.shape[0])]


def mean_of(blocks, members) -> sp.csr_matrix:
    total = blocks[members[0]].copy()
    for r in members[1:]:
        total = total + blocks[r]
    return total / float(len(members))


def rho_by_k(blocks, seed: int, comm) -> np.ndarray:
    """``(R // 2, R // 2)``: row ``k - 1`` holds rho of the ``R // (2k)`` disjoint pairs of k-run averages."""
    n_runs = len(blocks)
    half = n_runs // 2
    table = np.full((half, max(half, 1)), np.nan)
    for k in range(1, half + 1):
        order = unit_rng(seed, "cocluster-rho-k", k).permutation(n_runs)
        for pair in range(n_runs // (2 * k)):
            first = mean_of(blocks, order[2 * pair * k:(2 * pair + 1) * k])
            second = mean_of(blocks, order[(2 * pair + 1) * k:(2 * pair + 2) * k])
            table[k - 1, pair] = rho_from_sums(*distributed.f_sums(first, second, comm))
    return table


def run_matrix(context) -> None:
    options = context.config.section(SECTION)
    comm = context.comm
    with context.open_results() as results:
        lineage = check_needs(context, results)
        used = int(results.read("cocluster-runs/runs_used"))
        samples = results.read("cocluster-runs/samples")[:used]
        stage = begin_stage(context, results, lineage=lineage)
        if stage is None:
            return
        n_genes = samples.shape[2]
        start, stop = distributed.own_rows(n_genes, comm)
        blocks = per_run_rows(samples, start, stop, options["row_chunk"])
        rows = mean_of(blocks, list(range(used)))
        rows.sort_indices()
        half = used // 2
        rho_halves = (rho_from_sums(*distributed.f_sums(mean_of(blocks, list(range(half))),
                                                        mean_of(blocks, list(range(half, 2 * half))), comm))
                      if half else float("nan"))
        table = rho_by_k(blocks, context.seed, comm)
        entropy = distributed.entropy_sum(rows, comm) / float(n_genes) ** 2
        # CSR layout: the global offsets of this rank's rows
        counts = np.zeros(comm.Get_size(), dtype=np.int64)
        counts[comm.Get_rank()] = rows.nnz
        counts = allreduce_sum(comm, counts)
        offset = int(counts[:comm.Get_rank()].sum())
        n_entries = int(counts.sum())
        writer = stage.blocked({"indptr": (n_genes + 1,), "indices": (n_entries,), "data": (n_entries,)},
                               n_blocks=comm.Get_size(), key="rows")

        def compute(block):
            assert block == comm.Get_rank()
            pointers = rows.indptr.astype(np.int64) + offset
            first = 0 if block == 0 else 1
            entries = slice(offset, offset + rows.nnz)
            return {"indptr": ((slice(start + first, stop + 1),), pointers[first:]),
                    "indices": ((entries,), rows.indices.astype(np.int64)),
                    "data": ((entries,), rows.data)}

        writer.write_rounds(writer.pending([comm.Get_rank()]), compute)
        stage.write("n_runs", np.int64(used))
        stage.write("rho_halves", np.float64(rho_halves))
        stage.write("rho_by_k", table)
        stage.write("entropy", np.float64(entropy))
        stage.finish()
    context.log.info("cocluster-matrix: F of %d genes from %d runs, %d stored entries, rho(halves) = %.4f, "
                     "H_fuzzy = %.4g", n_genes, used, n_entries, rho_halves, entropy)


def read_rows(results, n_genes: int, comm) -> tuple:
    """``(rows CSR (stop - start, G), start)``: this rank's rows of the stored F (collective)."""
    start, stop = distributed.own_rows(n_genes, comm)
    pointers = results.read_own("cocluster-matrix/indptr", (slice(start, stop + 1),))
    entries = (slice(int(pointers[0]), int(pointers[-1])),)
    indices = results.read_own("cocluster-matrix/indices", entries)
    data = results.read_own("cocluster-matrix/data", entries)
    rows = sp.csr_matrix((data, indices, pointers - pointers[0]), shape=(stop - start, n_genes))
    return rows, start
