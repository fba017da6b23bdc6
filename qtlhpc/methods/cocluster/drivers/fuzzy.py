"""Stage ``cocluster-fuzzy``: fuzzy clusters from successive largest eigenvectors of F ([J] §2.3).

Each rank reads its own rows of F (the row blocks of ``cocluster-matrix``); every deflation scales them and
the two largest eigenpairs come from the eigen interface of :mod:`qtlhpc.solvers` (SLEPc's Krylov-Schur on
the row blocks as one distributed PETSc matrix, or scipy on the gathered matrix).  The extraction is
sequential over clusters; every rank ends with the same memberships, written by rank 0.
"""

from __future__ import annotations

import numpy as np

from qtlhpc.methods.cocluster import distributed
from qtlhpc.methods.cocluster.drivers.matrix import read_rows
from qtlhpc.methods.cocluster.fuzzy import layout_counts
from qtlhpc.stages.runtime import begin_stage, check_needs

STAGE = "cocluster-fuzzy"
SECTION = "cocluster_fuzzy"
CUTOFFS = (0.1, 0.3, 0.5)


def run_fuzzy(context) -> None:
    options = context.config.section(SECTION)
    comm = context.comm
    with context.open_results() as results:
        lineage = check_needs(context, results)
        n_genes = int(results.read("cocluster-matrix/indptr").size - 1)
        stage = begin_stage(context, results, lineage=lineage)
        if stage is None:
            return
        rows, start = read_rows(results, n_genes, comm)
        result = distributed.fuzzy_clusters(
            rows, start, comm, backend=options["backend"], tol=options["tol"], max_clusters=options["max_clusters"],
            eps_zero=options["eps_zero"], eps_degenerate=options["eps_degenerate"],
            eps_negative=options["eps_negative"], threshold=options["threshold"],
            on_degenerate=options["on_degenerate"])
        stage.write("membership_gene", result.genes)
        stage.write("membership_cluster", result.clusters)
        stage.write("membership", result.values)
        stage.write("lambda1", result.lambda1)
        stage.write("lambda2", result.lambda2)
        stage.write("prototype", result.prototype)
        stage.write("size", result.size)
        stage.write("coverage", result.coverage)
        stage.write("stop_reason", result.stop_reason)
        stage.write("stop_lambda", np.array(result.stop_lambda, dtype=np.float64))
        stage.write("cutoffs", np.array(CUTOFFS))
        stage.write("layout_counts", layout_counts(result, CUTOFFS))
        stage.finish()
    context.log.info("cocluster-fuzzy: %d fuzzy clusters, stopped: %s; genes with total membership > 0.98: %d of %d",
                     result.n_clusters, result.stop_reason, int((result.coverage > 0.98).sum()), n_genes)
