"""Blocked, checkpointed writes into a results file by every rank (run under mpirun by tests/test_store_mpi.py).

usage: store_blocked.py OUT.h5 [--rank0-io] [--claimed] [--sleep SECONDS] [--n-blocks N]

Writes stage "storetest" (declared here) with small datasets and two blocked datasets whose block b holds
numbers drawn from unit_rng(seed, "store-test", b), so any split of the blocks gives the same file contents.
Every rank prints "ROUND <i> <blocks...>" once blocks are durable and marked, rank 0 then "PARALLEL_IO <bool>" and
"COMPUTED <blocks computed by all ranks>" and "DONE".
"""

import argparse
import os
import sys
import time

import numpy as np

from qtlhpc import schema
from qtlhpc.parallel import schedule, unit_rng, world
from qtlhpc.store import ResultsFile

N_TRAITS = 3
ROWS_PER_BLOCK = 4
SEED = 20240601

schema.declare("storetest", "lod", ("trait", "position"), "float64", "LOD", "test scores, written in blocks")
schema.declare("storetest", "best", ("position",), "int32", "", "test integers, written in blocks")
schema.declare("storetest", "trait_names", ("trait",), "str", "", "test trait names", labels_for="trait")


def say(*words) -> None:
    """One line in one write(2): lines of several ranks on one pipe never interleave (print writes a line
    in pieces, which mix character by character between ranks under PYTHONUNBUFFERED)."""
    os.write(sys.stdout.fileno(), (" ".join(map(str, words)) + "\n").encode())


def block_values(block_id):
    rng = unit_rng(SEED, "store-test", block_id)
    return rng.normal(size=(N_TRAITS, ROWS_PER_BLOCK)), rng.integers(0, 1000, size=ROWS_PER_BLOCK).astype(np.int32)


def main(argv):
    parser = argparse.ArgumentParser()
    parser.add_argument("out")
    parser.add_argument("--rank0-io", action="store_true")
    parser.add_argument("--sleep", type=float, default=0.0)
    parser.add_argument("--n-blocks", type=int, default=10)
    parser.add_argument("--claimed", action="store_true", help="ranks claim blocks from a shared counter")
    args = parser.parse_args(argv)
    comm = world()
    rank = comm.Get_rank()
    n_positions = args.n_blocks * ROWS_PER_BLOCK
    computed = []

    def compute(block_id):
        time.sleep(args.sleep)
        computed.append(block_id)
        lod, best = block_values(block_id)
        rows = slice(block_id * ROWS_PER_BLOCK, (block_id + 1) * ROWS_PER_BLOCK)
        return {"lod": ((slice(None), rows), lod), "best": ((rows,), best)}

    def on_round(round_index, n_rounds, blocks):
        # lockstep writers report a round's blocks on every rank; independent ones their own blocks
        say("ROUND", round_index, *blocks)

    with ResultsFile.open(args.out, comm, parallel_io=False if args.rank0_io else None) as results:
        stage = results.begin_stage("storetest", {"n_blocks": args.n_blocks, "rows": ROWS_PER_BLOCK})
        stage.write("trait_names", [f"trait_{t}" for t in range(N_TRAITS)] if rank == 0 else ["wrong"])
        writer = stage.blocked({"lod": (N_TRAITS, n_positions), "best": (n_positions,)},
                               n_blocks=args.n_blocks, key="rows")
        claimed = args.claimed and writer.independent
        with schedule.units(writer.pending(range(args.n_blocks)), comm, claimed=claimed) as my_units:
            writer.write(my_units, compute, on_round=on_round)
        assert writer.done.all()
        stage.finish()
        lod = results.read("storetest/lod")
        expected = np.concatenate([block_values(b)[0] for b in range(args.n_blocks)], axis=1)
        assert np.array_equal(lod, expected), "read-back differs from the blocks written"
        assert results.read("storetest/trait_names").tolist() == [f"trait_{t}" for t in range(N_TRAITS)]
        assert results.read("storetest/best", (slice(2, 3),)).tolist() == [block_values(0)[1][2]]
        n_computed = comm.allreduce(len(computed))
        if rank == 0:
            say("PARALLEL_IO", results.parallel_io)
            say("COMPUTED", n_computed)
            say("DONE")


if __name__ == "__main__":
    main(sys.argv[1:])
