"""Stage ``cal-prepare``: binary loci, expression targets, fopt and f_tol, the topology catalogue.

Read and computed on rank 0 (a few MB at the paper's size), written by rank 0.
"""

from __future__ import annotations

import numpy as np

from qtlhpc.errors import InputError
from qtlhpc.methods.cal import inputs as cal_inputs
from qtlhpc.methods.cal.kernels import MAX_STRAINS, optimal_output
from qtlhpc.methods.cal.topology import catalogue
from qtlhpc.parallel.comm import on_root
from qtlhpc.stages.runtime import begin_stage, check_needs


def topologies_of(options):
    return catalogue(options["catalogue"], custom=options["custom_topologies"], polarity=options["polarity"],
                     score=options["score"], where="[cal] catalogue / custom_topologies")


def prepare(options, config, values, gene_ids, samples, cross=None) -> dict:
    """Everything ``cal-prepare`` writes (pure of MPI: the caller reads the expression and the cross)."""
    tops = topologies_of(options)
    bad = np.argwhere(~np.isfinite(values))
    if bad.size:
        g, s = bad[0]
        raise InputError(f"CAL needs complete expression: gene {gene_ids[g]!r} has no value for sample "
                         f"{samples[s]!r} ({bad.shape[0]} missing values): drop or impute them first")
    if options["loci"]:
        path = config.path(options["loci"])
        strains, names, matrix = cal_inputs.read_binary_matrix(path)
        chromosomes = np.full(names.size, "", dtype=str)
        first = np.full(names.size, -1, dtype=np.int64)
        row_of = {s: i for i, s in enumerate(strains.tolist())}
        missing = [s for s in samples.tolist() if s not in row_of]
        if missing:
            raise InputError(f"{len(missing)} expression samples have no row in the binary locus matrix (first: "
                             f"{', '.join(missing[:3])})", file=path)
        matrix = matrix[[row_of[s] for s in samples.tolist()]]
        eta = options["eta"]
        keep = (matrix.sum(axis=0) >= eta) & (matrix.shape[0] - matrix.sum(axis=0) >= eta)
        matrix, names, chromosomes, first = matrix[:, keep], names[keep], chromosomes[keep], first[keep]
        notes = [f"{int((~keep).sum())} loci with fewer than eta = {eta} strains in a group dropped"]
    else:
        row_of = {s: i for i, s in enumerate(cross.individuals.tolist())}
        missing = [s for s in samples.tolist() if s not in row_of]
        if missing:
            raise InputError(f"{len(missing)} expression samples are not individuals of the [input] cross (first: "
                             f"{', '.join(missing[:3])})")
        calls = cal_inputs.binary_calls(cross.genotypes, cross.cross_type)[[row_of[s] for s in samples.tolist()]]
        clusters = cal_inputs.marker_clusters(calls, cross.chromosomes, cross.markers,
                                              max_distance=options["max_cluster_distance"], eta=options["eta"])
        matrix, names, chromosomes, first = clusters.matrix, clusters.names, clusters.chromosomes, clusters.first
        notes = [f"{clusters.n_markers} markers -> {names.size} marker clusters ({clusters.dropped} dropped: fewer "
                 f"than eta strains in a group)"]
    n = samples.size
    if n > MAX_STRAINS:
        raise InputError(f"CAL handles at most {MAX_STRAINS} strains (outputs are 64-bit words); the data have {n}")
    if n < 2 * options["eta"]:
        raise InputError(f"{n} strains: CAL needs at least 2 x eta = {2 * options['eta']}")
    if names.size == 0:
        raise InputError("no binary locus is left (every locus has fewer than eta strains in a group)")
    if options["targets"] == "genes":
        labels = np.arange(gene_ids.size, dtype=np.int64)
        targets = values.astype(float)
        target_ids = gene_ids.copy()
    else:
        labels, targets = cal_inputs.correlation_clusters(values, options["cluster_cutoff"])
        target_ids = np.array([f"cluster{k}:{gene_ids[np.flatnonzero(labels == k)[0]]}"
                               for k in range(targets.shape[0])], dtype=str)
    sizes = np.bincount(labels, minlength=targets.shape[0]).astype(np.int64)
    fopt = np.array([optimal_output(t, eta=options["eta"], tstat=options["tstat"], score_kind=options["score"])[1]
                     for t in targets])
    f_tol = float(np.quantile(fopt, options["tolerance_quantile"]))
    searched = np.flatnonzero(fopt >= f_tol).astype(np.int64)
    notes.append(f"{targets.shape[0]} targets, f_tol = {f_tol:.4g}: {searched.size} searched; "
                 f"{len(tops)} topologies")
    return {"strain_ids": samples, "loci": matrix.astype(np.uint8), "locus_names": names.astype(str),
            "locus_chromosomes": chromosomes.astype(str), "locus_first_marker": first.astype(np.int64),
            "target_ids": target_ids, "target_values": targets, "target_sizes": sizes, "gene_targets": labels,
            "fopt": fopt, "f_tol": np.float64(f_tol), "searched": searched,
            "topology_names": np.array([t.name for t in tops], dtype=str),
            "topology_tables": np.array([t.table for t in tops], dtype=np.int64),
            "topology_inputs": np.array([t.n_inputs for t in tops], dtype=np.int64), "_notes": notes}


def run_cal_prepare(context) -> None:
    with context.open_results() as results:
        lineage = check_needs(context, results)
        options = context.config.section("cal")
        values = results.read("expression/values")
        gene_ids = results.read("expression/gene_ids").astype(str)
        samples = results.read("expression/sample_ids").astype(str)
        cross = None if options["loci"] else context.cross()
        data = on_root(context.comm, lambda: prepare(options, context.config, values, gene_ids, samples, cross))
        stage = begin_stage(context, results, lineage=lineage)
        if stage is None:
            return
        for name, value in data.items():
            if not name.startswith("_"):
                stage.write(name, value)
        stage.finish()
    for note in data["_notes"]:
        context.log.info("cal-prepare: %s", note)
