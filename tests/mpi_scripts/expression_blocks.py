"""Each rank reads its own block of genes of the ``expression`` stage (tests/test_expression_stage.py).

usage: expression_blocks.py CONFIG OUT.npz

Rank r reads genes block_range(n_genes, r, size) with read_expression_block; rank 0 gathers the blocks
in rank order and writes them to OUT.npz.
"""

import sys

import numpy as np

from qtlhpc.config import Config
from qtlhpc.io.drivers import read_expression_block
from qtlhpc.parallel import block_range, world
from qtlhpc.store import ResultsFile


def main(config_path, out):
    comm = world()
    config = Config.load(config_path)
    parallel_io = False if config.section("run")["parallel_io"] == "rank0" else None
    with ResultsFile.open(config.output, comm, mode="r", parallel_io=parallel_io) as results:
        n_genes = results.read("expression/gene_ids").size
        start, stop = block_range(n_genes, comm.Get_rank(), comm.Get_size())
        block = read_expression_block(results, start, stop)
    parts = comm.gather((block.values, block.gene_ids), root=0)
    if comm.Get_rank() == 0:
        np.savez(out, values=np.concatenate([p[0] for p in parts]), gene_ids=np.concatenate([p[1] for p in parts]))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
