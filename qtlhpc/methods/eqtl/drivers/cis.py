"""Stages ``cis`` and ``merge-cis``: population cis-eQTL with permutations, as FastQTL.

Genes are split into ``cis.chunks`` chunks (genes ``block_range(n_genes, chunk, chunks)``), the work
units: checkpoint blocks of a run, and SLURM array units (``--units START:STOP --unit-output FILE``, then
``merge-cis`` with the task files).  A gene's permutations come from its own stream
(``unit_rng(seed, "eqtl-cis-perm", gene)``), so any split over ranks, tasks and chunks gives the same
numbers.  Each rank reads only the expression rows of its own chunks and, per chromosome, the VCF region
of their cis windows.  Once every gene is done, the q-values (Storey; and BH) of ``pval_beta`` are
computed over the genes that have variants.
"""

from __future__ import annotations

import json
import os
import pathlib
from typing import Dict, Optional, Sequence

import numpy as np

from qtlhpc.errors import ConfigError, InputError
from qtlhpc.io.drivers import mapping_covariates
from qtlhpc.io.vcf import read_genotypes
from qtlhpc.methods.eqtl.cis import NOMINAL_COLUMNS, PermutationPlan, map_cis_nominal, map_cis_permutations
from qtlhpc.parallel import block_range, schedule
from qtlhpc.stages.runtime import begin_stage, check_needs, write_blocks
from qtlhpc.stages.sharded import missing_units, parse_units
from qtlhpc.stats import transforms
from qtlhpc.stats.fdr import benjamini_hochberg
from qtlhpc.stats.qvalue import qvalues

STAGE = "cis"
FLOAT_COLUMNS = ("maf", "r", "pval_nominal", "slope", "slope_se", "beta_shape1", "beta_shape2", "true_df",
                 "pval_true_df", "pval_perm", "pval_beta")
INT_COLUMNS = ("num_var", "variant_positions", "tss_distance", "num_perm")
ID_BYTES = 96  # longest variant id stored


def encode_ids(ids) -> np.ndarray:
    """``(n, ID_BYTES)`` uint8, zero-padded UTF-8 of each id; an id longer than ID_BYTES bytes is an error."""
    out = np.zeros((len(ids), ID_BYTES), dtype=np.uint8)
    for row, text in enumerate(ids):
        data = str(text).encode("utf-8")
        if len(data) > ID_BYTES:
            raise InputError(f"variant id {text!r} is longer than {ID_BYTES} bytes")
        out[row, :len(data)] = np.frombuffer(data, dtype=np.uint8)
    return out


def decode_ids(data: np.ndarray) -> np.ndarray:
    return np.array([bytes(row).rstrip(b"\0").decode("utf-8") for row in np.asarray(data, dtype=np.uint8)], dtype=str)


def permutation_plan(counts: Sequence[int]) -> PermutationPlan:
    """``cis.permutations`` as FastQTL's ``--permute``: ``[P]``, ``[hits, max]`` or ``[min, hits, max]``."""
    try:
        return PermutationPlan.from_fastqtl(*counts)
    except InputError as error:
        raise ConfigError(f"cis.permutations = {list(counts)}: {error}") from None


def nominal_file(chunk: int) -> str:
    return f"chunk-{chunk:05d}.txt.gz"


def chunk_genes(chunk: int, n_genes: int, n_chunks: int) -> range:
    return range(*block_range(n_genes, chunk, n_chunks))


class GeneTable:
    """What every rank knows of the genes: ids, chromosomes, TSS (1-based), sample ids, covariates."""

    def __init__(self, results):
        self.gene_ids = results.read("expression/gene_ids")
        self.chromosomes = results.read("expression/gene_chromosomes")
        self.tss = results.read("expression/gene_tss")
        self.sample_ids = results.read("expression/sample_ids")
        self.covariates = mapping_covariates(results)

    @property
    def n_genes(self) -> int:
        return int(self.gene_ids.size)


def variant_filter(dosages: np.ndarray, options: dict) -> np.ndarray:
    """Keep mask of the variants passing ``cis.min_maf`` and ``cis.max_missing``."""
    keep = np.ones(dosages.shape[0], dtype=bool)
    if options["min_maf"] > 0:
        keep &= transforms.maf_filter(dosages, options["min_maf"])
    if options["max_missing"] < 1:
        keep &= transforms.missingness_filter(dosages, options["max_missing"])
    return keep


def write_nominal(path: pathlib.Path, parts) -> int:
    """The nominal pairs of a chunk as gzipped TSV (FastQTL's nominal columns), written whole then renamed
    into place, so a file that exists is complete.  Returns the number of pairs."""
    import gzip

    temporary = path.with_name(path.name + ".partial")
    n_pairs = 0
    with gzip.open(temporary, "wt") as handle:
        handle.write("\t".join(NOMINAL_COLUMNS) + "\n")
        for gene_ids, variant_ids, pairs in parts:
            for k in range(gene_ids.size):
                handle.write(f"{gene_ids[k]}\t{variant_ids[k]}\t{int(pairs['tss_distance'][k])}\t"
                             f"{int(pairs['ma_samples'][k])}\t{int(pairs['ma_count'][k])}\t{pairs['maf'][k]:.6g}\t"
                             f"{pairs['pval_nominal'][k]:.10g}\t{pairs['slope'][k]:.10g}\t{pairs['slope_se'][k]:.10g}\n")
            n_pairs += gene_ids.size
    os.replace(temporary, path)
    return n_pairs


def scan_chunk(genes: range, values: np.ndarray, table: GeneTable, options: dict, seed: int, vcf: pathlib.Path,
               plan: PermutationPlan, nominal: Optional[list] = None) -> Dict[str, np.ndarray]:
    """The permutation-pass columns of the genes ``genes`` (their expression rows in ``values``); with a list
    ``nominal``, the chunk's nominal pairs are appended to it."""
    columns = {name: np.full(len(genes), np.nan) for name in FLOAT_COLUMNS}
    columns.update({name: np.zeros(len(genes), dtype=np.int64) for name in INT_COLUMNS})
    columns["variant_ids"] = np.full(len(genes), "", dtype=object)
    gene_index = np.arange(genes.start, genes.stop)
    window = options["window"]
    for chromosome in dict.fromkeys(table.chromosomes[gene_index].tolist()):
        rows = np.flatnonzero(table.chromosomes[gene_index] == chromosome)
        tss = table.tss[gene_index[rows]]
        region = f"{chromosome}:{max(1, int(tss.min()) - window)}-{int(tss.max()) + window}"
        block = read_genotypes(vcf, region=region, field=options["field"], samples=table.sample_ids)
        keep = variant_filter(block.dosages, options)
        order = np.flatnonzero(keep)[np.argsort(block.positions[keep], kind="stable")]
        found = map_cis_permutations(values[rows], tss, block.dosages[order], block.positions[order],
                                     table.covariates, seed=seed, plan=plan, window=window,
                                     gene_indices=gene_index[rows])
        if nominal is not None:
            pairs = map_cis_nominal(values[rows], tss, block.dosages[order], block.positions[order],
                                    table.covariates, window=window)
            if pairs:
                nominal.append((table.gene_ids[gene_index[rows]][pairs["gene"]], block.ids[order][pairs["variant_index"]],
                                pairs))
        best = found["variant_index"]
        has = best >= 0
        for name in FLOAT_COLUMNS:
            columns[name][rows] = found[name]
        for name in ("num_var", "tss_distance", "num_perm"):
            columns[name][rows] = found[name]
        columns["variant_positions"][rows[has]] = block.positions[order][best[has]]
        columns["variant_ids"][rows[has]] = block.ids[order][best[has]]
    columns["variant_ids"] = columns["variant_ids"].astype(str)
    return columns


def run_cis(context, units: Optional[str] = None, unit_output: Optional[str] = None, inputs=()) -> None:
    options = context.config.section(STAGE)
    if not options["genotypes"]:
        raise ConfigError(f"{context.config.source}: [cis] genotypes is empty: name the VCF/BCF of the samples")
    vcf = context.config.path(options["genotypes"])
    if not vcf.is_file():
        raise InputError("genotype file not found ([cis] genotypes)", file=vcf)
    plan = permutation_plan(options["permutations"])
    n_chunks = options["chunks"]
    start, stop = parse_units(units, n_chunks, context.spec)
    output = pathlib.Path(unit_output).resolve() if unit_output else context.output
    with context.open_results(mode="a" if output == context.output else "r") as results:
        lineage = check_needs(context, results)
        table = GeneTable(results)
        if n_chunks > table.n_genes:
            raise ConfigError(f"cis.chunks = {n_chunks} is more than the {table.n_genes} genes: lower it")
        if output == context.output:
            _scan_into(context, results, results, table, options, vcf, plan, start, stop, lineage)
            return
        # an array task: the run's file is only read; this task's genes go to its own file
        with context.open_results(output) as task_results:
            _scan_into(context, results, task_results, table, options, vcf, plan, start, stop, lineage)


def _scan_into(context, source, results, table: GeneTable, options, vcf, plan, start, stop, lineage) -> None:
    n_chunks = options["chunks"]
    stage = begin_stage(context, results, extra={"range": [start, stop]}, lineage=lineage)
    if stage is None:
        return
    first_gene = chunk_genes(start, table.n_genes, n_chunks).start
    last_gene = chunk_genes(stop - 1, table.n_genes, n_chunks).stop
    n_task = last_gene - first_gene
    stage.write("gene_index", np.arange(first_gene, last_gene))
    stage.write("gene_ids", table.gene_ids[first_gene:last_gene])
    shapes = {name: (n_task,) for name in FLOAT_COLUMNS + INT_COLUMNS}
    shapes["variant_id_bytes"] = (n_task, ID_BYTES)
    shapes["nominal_pairs"] = (stop - start,)
    nominal_dir = results.path.with_name(results.path.stem + ".cis-nominal")
    if options["nominal"] and context.rank == 0:
        nominal_dir.mkdir(exist_ok=True)
    writer = stage.blocked(shapes, n_blocks=stop - start, key="chunks")
    # this rank's chunks are its static share of the pending ones (as write_blocks schedules them): read
    # the expression rows of exactly those genes, each rank its own (collective)
    pending = writer.pending(range(stop - start))
    mine = schedule.UnitSchedule(pending, context.comm).static_share()
    genes_of = {b: chunk_genes(start + b, table.n_genes, n_chunks) for b in range(stop - start)}
    lo = min((genes_of[b].start for b in mine), default=first_gene)
    hi = max((genes_of[b].stop for b in mine), default=first_gene)
    values = source.read_own("expression/values", (slice(lo, hi),))

    def compute(block):
        genes = genes_of[block]
        nominal = [] if options["nominal"] else None
        columns = scan_chunk(genes, values[genes.start - lo:genes.stop - lo], table, options, context.seed, vcf, plan,
                             nominal)
        columns["variant_id_bytes"] = encode_ids(columns.pop("variant_ids"))
        n_pairs = write_nominal(nominal_dir / nominal_file(start + block), nominal) if nominal is not None else 0
        rows = slice(genes.start - first_gene, genes.stop - first_gene)
        pieces = {name: ((rows,) + (slice(None),) * (len(shapes[name]) - 1), columns[name])
                  for name in shapes if name != "nominal_pairs"}
        pieces["nominal_pairs"] = ((slice(block, block + 1),), np.array([n_pairs]))
        return pieces

    context.comm.Barrier()
    write_blocks(context, writer, f"cis chunks {start}:{stop}", range(stop - start), compute)
    stage.write("nominal_files", np.array([f"{nominal_dir.name}/{nominal_file(start + b)}" if options["nominal"]
                                           else "" for b in range(stop - start)], dtype=str))
    stage.write("variant_ids", decode_ids(results.read("cis/variant_id_bytes", allow_incomplete=True)))
    if (start, stop) == (0, n_chunks):
        write_qvalues(stage, results.read("cis/pval_beta", allow_incomplete=True), context.log, options["fdr"])
    stage.finish()
    context.log.info("cis: chunks %d:%d of %d, %d genes", start, stop, n_chunks, n_task)


def write_qvalues(stage, pval_beta: np.ndarray, log, fdr: float) -> None:
    """Storey q-values and BH of ``pval_beta`` over the genes that have variants (NaN elsewhere)."""
    tested = np.isfinite(pval_beta)
    q, bh, pi0 = np.full(pval_beta.shape, np.nan), np.full(pval_beta.shape, np.nan), np.nan
    if tested.any():
        bh[tested] = benjamini_hochberg(pval_beta[tested])
        try:
            result = qvalues(pval_beta[tested])
            q[tested], pi0 = result.qvalues, result.pi0
        except InputError as error:  # e.g. few genes, all p below the lambda grid: qvalue refuses too
            log.warning("cis: pi0 cannot be estimated (%s): q-values are taken with pi0 = 1 (Benjamini-Hochberg)",
                        error)
            q[tested], pi0 = bh[tested], 1.0
    stage.write("qvalue", q)
    stage.write("qvalue_bh", bh)
    stage.write("pi0", np.float64(pi0))
    log.info("cis: %d of %d genes with variants are eGenes at q <= %g (pi0 = %.3f)",
             int(np.sum(q <= fdr)), int(tested.sum()), fdr, pi0)


def run_merge_cis(context, units=None, unit_output=None, inputs: Sequence[str] = ()) -> None:
    """Merge task files into the run's results; refuses, naming the missing chunks, until all are there."""
    from qtlhpc.parallel.comm import on_root
    from qtlhpc.store import open_results

    options = context.config.section(STAGE)
    if not inputs:
        raise ConfigError("merge-cis needs the task files: qtlhpc run merge-cis CONFIG RUN_DIR/units/cis/task-*.h5")
    names = FLOAT_COLUMNS + INT_COLUMNS + ("gene_ids", "variant_ids", "variant_id_bytes")

    def read_parts():
        parts = []
        for path in inputs:
            if not pathlib.Path(path).is_file():
                raise InputError("cis task file not found (that task has not run, or failed)", file=path)
            with open_results(path) as task:
                config = task.describe()
                attrs = next(s.attributes for s in config if s.name == STAGE)
                chunk_range = json.loads(attrs["config_json"])["range"]
                files = [str(pathlib.Path(path).resolve().parent / name) if name else ""
                         for name in task.read("cis/nominal_files")]
                parts.append((chunk_range, task.read("cis/gene_index"),
                              {name: task.read(f"cis/{name}") for name in names},
                              (task.read("cis/nominal_pairs"), files)))
        return parts

    parts = on_root(context.comm, read_parts)
    with context.open_results() as results:
        n_genes = results.read("expression/gene_ids").size
        missing = missing_units([tuple(p[0]) for p in parts], options["chunks"])
        if missing:
            runs = ", ".join(f"{a}:{b}" for a, b in missing)
            raise InputError(f"the task files do not cover cis chunks {runs} of 0:{options['chunks']}: run those "
                             f"units (qtlhpc run cis CONFIG --units START:STOP --unit-output FILE) or resubmit")
        merged = {}
        for name in names:
            sample = parts[0][2][name]
            merged[name] = np.empty((n_genes,) + sample.shape[1:], dtype=sample.dtype if sample.dtype.kind != "U" else object)
        pairs, files = np.zeros(options["chunks"], dtype=np.int64), [""] * options["chunks"]
        for chunk_range, index, columns, (task_pairs, task_files) in parts:
            for name in names:
                merged[name][index] = columns[name]
            pairs[chunk_range[0]:chunk_range[1]] = task_pairs
            base = results.path.resolve().parent
            for offset, name in enumerate(task_files):
                files[chunk_range[0] + offset] = os.path.relpath(name, base) if name else ""
        stage = begin_stage(context, results, extra={"range": [0, options["chunks"]]})
        if stage is None:
            return
        stage.write("gene_index", np.arange(n_genes))
        for name in names:
            stage.write(name, merged[name].astype(str) if merged[name].dtype == object else merged[name])
        stage.write("nominal_pairs", pairs)
        stage.write("nominal_files", np.array(files, dtype=str))
        write_qvalues(stage, merged["pval_beta"], context.log, options["fdr"])
        stage.finish()
    context.log.info("merged %d cis task files: %d genes", len(inputs), n_genes)
