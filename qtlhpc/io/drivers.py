"""Driver of the ``expression`` input stage, and the block reader every expression method uses."""

from __future__ import annotations

import numpy as np

from qtlhpc.errors import InputError
from qtlhpc.io.expression import ExpressionSet
from qtlhpc.parallel.comm import on_root
from qtlhpc.stages.runtime import begin_stage

STAGE = "expression"


def load_expression(options: dict, config, cross_individuals=None):
    """The expression set and covariates of ``[expression]`` after alignment, filters and transforms.

    Returns ``(ExpressionSet, covariate_names, covariates (k, n_samples), dropped_gene_ids, notes)``.
    """
    from qtlhpc.io.expression_readers import read_covariates, read_expression_bed, read_expression_matrix
    from qtlhpc.stats import transforms

    if not options["file"]:
        raise InputError(f"{config.source}: [expression] file is empty: name the expression file")
    path = config.path(options["file"])
    region = options["region"] or None
    if options["format"] == "bed":
        expression = read_expression_bed(path, region=region)
    else:
        if not options["annotation"]:
            raise InputError(f"{config.source}: [expression] format = 'tsv' needs an annotation file "
                             "(gene id, chromosome, start, end, strand)")
        expression = read_expression_matrix(path, config.path(options["annotation"]), options["orientation"],
                                            sample_ids=cross_individuals)
    notes = []
    if cross_individuals is not None:
        genotyped = [str(s) for s in cross_individuals]
        common = [s for s in genotyped if s in set(expression.sample_ids.tolist())]
        if not common:
            raise InputError(f"no sample of the expression file is a genotyped individual of [input] (first "
                             f"samples: {', '.join(expression.sample_ids[:3])}; first individuals: "
                             f"{', '.join(genotyped[:3])})", file=path)
        if len(common) < expression.n_samples or len(common) < len(genotyped):
            notes.append(f"{len(common)} samples are both genotyped and in the expression file "
                         f"({expression.n_samples} in the file, {len(genotyped)} genotyped): the others are dropped")
        expression = expression.align(common)
    names, covariates = np.array([], dtype=str), np.empty((0, expression.n_samples))
    if options["covariates"]:
        table = read_covariates(config.path(options["covariates"]), categorical=options["categorical"])
        order = {s: i for i, s in enumerate(table.sample_ids.tolist())}
        missing = [s for s in expression.sample_ids.tolist() if s not in order]
        if missing:
            raise InputError(f"{len(missing)} expression samples have no covariate values (first: "
                             f"{', '.join(missing[:3])})", file=config.path(options["covariates"]))
        names = table.names
        covariates = table.values[:, [order[s] for s in expression.sample_ids.tolist()]]
    values = expression.values
    dropped = np.array([], dtype=str)
    if options["variability_filter"] > 0:
        keep = transforms.variability_filter(values, options["variability_filter"])
        dropped = expression.gene_ids[~keep]
        expression = expression.subset_genes(np.flatnonzero(keep))
        values = expression.values
        notes.append(f"variability filter: {dropped.size} of {keep.size} genes dropped")
    if options["normalize"] == "inverse-normal":
        values = transforms.rank_inverse_normal(values, axis=1)
    elif options["normalize"] == "standardize":
        values = transforms.standardize(values)
    if options["regress_covariates"] and covariates.size:
        values = transforms.regress_out(values, covariates)
    if values is not expression.values:
        expression = ExpressionSet(values, expression.gene_ids, expression.chromosomes, expression.starts,
                                   expression.ends, expression.strands, expression.sample_ids,
                                   expression.group_ids, expression.source)
    return expression, names, covariates, dropped, notes


def run_expression(context) -> None:
    options = context.config.section(STAGE)
    if not context.config.has_section(STAGE):
        raise InputError(f"{context.config.source}: no [expression] section: say which file holds the expression "
                         "data (format, file, and for tsv an annotation)")
    cross_individuals = context.cross().individuals if context.config.has_section("input") else None
    held = {}

    def read():
        held["data"] = load_expression(options, context.config, cross_individuals)
        expression = held["data"][0]
        return expression.n_genes, expression.n_samples, held["data"][1].size, held["data"][4]

    # read on rank 0 alone; the other ranks learn only the sizes (the values never travel whole)
    n_genes, n_samples, n_covariates, notes = on_root(context.comm, read)
    expression, names, covariates, dropped, _ = held.get("data", (None,) * 5)
    with context.open_results() as results:
        stage = begin_stage(context, results)
        if stage is None:
            return

        def field(getter):
            return getter() if context.rank == 0 else None

        stage.write("values", field(lambda: expression.values))
        stage.write("gene_ids", field(lambda: expression.gene_ids))
        stage.write("gene_chromosomes", field(lambda: expression.chromosomes))
        stage.write("gene_starts", field(lambda: expression.starts))
        stage.write("gene_ends", field(lambda: expression.ends))
        stage.write("gene_strands", field(lambda: expression.strands))
        stage.write("gene_tss", field(lambda: expression.tss))
        stage.write("sample_ids", field(lambda: expression.sample_ids))
        stage.write("covariate_names", field(lambda: np.asarray(names, dtype=str)))
        stage.write("covariates", field(lambda: covariates))
        stage.write("dropped_gene_ids", field(lambda: np.asarray(dropped, dtype=str)))
        stage.write("covariates_regressed", np.bool_(bool(options["regress_covariates"] and n_covariates)))
        stage.finish()
    for note in notes:
        context.log.info("expression: %s", note)
    context.log.info("expression: %d genes x %d samples", n_genes, n_samples)


def read_expression_block(results, start: int, stop: int) -> ExpressionSet:
    """Genes ``[start, stop)`` of the ``expression`` stage, each rank its own block (collective)."""
    values = results.read_own("expression/values", (slice(start, stop),))
    rows = slice(start, stop)
    return ExpressionSet(values, results.read("expression/gene_ids")[rows],
                         results.read("expression/gene_chromosomes")[rows],
                         results.read("expression/gene_starts")[rows], results.read("expression/gene_ends")[rows],
                         results.read("expression/gene_strands")[rows], results.read("expression/sample_ids"))


def mapping_covariates(results):
    """The covariates ``(n_samples, k)`` a mapping stage adjusts for, or None: none given, or already regressed
    out of the values by the expression stage (collective)."""
    if bool(results.read("expression/covariates_regressed")):
        return None
    covariates = results.read("expression/covariates")
    return covariates.T if covariates.size else None
