"""Stage ``trans``: the population trans-eQTL nominal pass (QTLtools ``trans --nominal``).

Work units are blocks of ``trans.variant_block`` consecutive VCF records of one chromosome (a block never
splits a position), found by rank 0 from one scan of the VCF's CHROM and POS columns: they depend on the
file and the option only, never on the number of ranks.  Every rank reads the whole expression set once
(genes x samples is small for a trans scan) and prepares the genes; then the ranks claim the blocks as
they free up (with rank-0 writes, a static split), each reading its block's records from the VCF by region
and scanning them against every gene (:func:`qtlhpc.methods.eqtl.trans.map_trans_nominal`).

The number of hits of a block is known only once it is scanned, so each block writes its hits to a gzipped
TSV beside the results file (``<results>.trans-hits/block-NNNNN.txt.gz``, written whole and renamed into
place), then its counts (``block_variants``, ``block_tests``, ``block_hits``) into the checkpointed datasets.
Once every block is done, rank 0 reads the block files (the hits are few at p <= 1e-5) and the table is
written whole as the ``trans_hit`` datasets.
"""

from __future__ import annotations

import gzip
import os
import pathlib
from typing import Dict, List, Tuple

import numpy as np

from qtlhpc.errors import ConfigError, InputError
from qtlhpc.methods.eqtl.trans import GEMM_BLOCK, map_trans_nominal, prepare_genes
from qtlhpc.parallel.comm import on_root
from qtlhpc.stages.runtime import begin_stage, check_needs, write_blocks

STAGE = "trans"
HIT_FILE_COLUMNS = ("phenotype_id", "phenotype_chr", "phenotype_start", "variant_id", "variant_chr",
                    "variant_pos", "pval", "r", "slope", "slope_se")
COUNTS = ("block_variants", "block_tests", "block_hits")


def hit_file(block: int) -> str:
    return f"block-{block:05d}.txt.gz"


def variant_units(vcf: pathlib.Path, records_per_unit: int) -> Dict[str, np.ndarray]:
    """The work units of ``vcf``: ``chromosomes``, ``first`` and ``last`` POS and ``records`` of each block
    of ``records_per_unit`` consecutive records of one chromosome (extended so that a position is never
    split between two blocks).  One pass over CHROM and POS (genotypes are not parsed)."""
    units: List[Tuple[str, int, int, int]] = []
    seen = set()
    chromosome, first, last, count = None, 0, 0, 0
    records = _chromosomes_and_positions(vcf)
    try:
        for name, position in records:
            if name != chromosome or (count >= records_per_unit and position != last):
                if chromosome is not None:
                    units.append((chromosome, first, last, count))
                if name != chromosome:
                    if name in seen:
                        raise InputError(f"chromosome {name!r} appears again at POS {position} after other "
                                         "chromosomes: the VCF is not sorted", file=vcf,
                                         hint="sort and index it (bcftools sort; bcftools index)")
                    seen.add(name)
                elif position < last:
                    raise InputError(f"{name}:{position} comes after {name}:{last}: the VCF is not sorted",
                                     file=vcf, hint="sort and index it (bcftools sort; bcftools index)")
                chromosome, first, count = name, position, 0
            elif position < last:
                raise InputError(f"{name}:{position} comes after {name}:{last}: the VCF is not sorted", file=vcf,
                                 hint="sort and index it (bcftools sort; bcftools index)")
            last = position
            count += 1
    finally:
        records.close()
    if chromosome is not None:
        units.append((chromosome, first, last, count))
    if not units:
        raise InputError("the VCF has no record", file=vcf)
    return {"chromosomes": np.array([u[0] for u in units], dtype=str),
            "first": np.array([u[1] for u in units], dtype=np.int64),
            "last": np.array([u[2] for u in units], dtype=np.int64),
            "records": np.array([u[3] for u in units], dtype=np.int64)}


def _chromosomes_and_positions(vcf: pathlib.Path):
    """``(CHROM, POS)`` of every record: text VCF (plain or gzip/bgzip) split by hand, three times faster than
    cyvcf2, which reads BCF."""
    with open(vcf, "rb") as handle:
        magic = handle.read(4)
    if magic[:2] == b"\x1f\x8b" or magic[:1] == b"#":
        with (gzip.open(vcf, "rb") if magic[:2] == b"\x1f\x8b" else open(vcf, "rb")) as handle:
            text = True
            for line in handle:
                if line[:3] == b"BCF":
                    text = False
                    break
                if line[:1] != b"#":
                    name, position, _ = line.split(b"\t", 2)
                    yield name.decode(), int(position)
            if text:
                return
    from qtlhpc.io import vcf as vcf_io  # BackendUnavailableError without cyvcf2

    reader = vcf_io.cyvcf2.VCF(str(vcf), lazy=True, threads=1)
    try:
        for record in reader:
            yield record.CHROM, record.POS
    finally:
        reader.close()


def _check_options(options: dict, source) -> None:
    if not options["genotypes"]:
        raise ConfigError(f"{source}: [trans] genotypes is empty: name the VCF/BCF of the samples")
    if not 0 < options["threshold"] <= 1:
        raise ConfigError(f"{source}: trans.threshold = {options['threshold']}: expected a p-value in (0, 1] "
                          "(QTLtools' default is 1e-5)")
    if options["variant_block"] < 1:
        raise ConfigError(f"{source}: trans.variant_block = {options['variant_block']}: expected a positive "
                          "number of VCF records per work unit (e.g. 20000)")


class GeneSet:
    """Every rank's copy of the genes: the prepared expression and what the hit table names."""

    def __init__(self, results):
        values = results.read("expression/values")
        self.gene_ids = results.read("expression/gene_ids")
        self.chromosomes = results.read("expression/gene_chromosomes")
        self.starts = results.read("expression/gene_starts")
        self.sample_ids = results.read("expression/sample_ids")
        from qtlhpc.io.drivers import mapping_covariates

        self.prepared = prepare_genes(values, mapping_covariates(results))


def scan_unit(vcf, options: dict, genes: GeneSet, chromosome: str, first: int, last: int, records: int):
    """Read one unit's records from ``vcf`` and scan them: ``(hits, variants, n_variants)`` with
    ``variants`` the unit's tested block (ids, chromosomes, positions by row of ``hits.variant``)."""
    from qtlhpc.io.vcf import read_genotypes

    block = read_genotypes(vcf, region=f"{chromosome}:{first}-{last}", field=options["field"],
                           samples=genes.sample_ids)
    inside = (block.chromosomes == chromosome) & (block.positions >= first) & (block.positions <= last)
    if int(inside.sum()) != records:
        raise InputError(f"region {chromosome}:{first}-{last} holds {int(inside.sum())} records, {records} when "
                         "the work units were made: the VCF changed during the run", file=vcf,
                         hint="rerun the trans stage from the start (delete its group or the results file)")
    biallelic = inside & (block.alt != "") & (np.char.find(block.alt.astype(str), ",") < 0)  # as QTLtools
    rows = np.flatnonzero(biallelic)
    hits = map_trans_nominal(None, block.dosages[rows], genes=genes.prepared, threshold=options["threshold"],
                             gene_chromosomes=genes.chromosomes, gene_starts=genes.starts,
                             variant_chromosomes=block.chromosomes[rows], variant_positions=block.positions[rows],
                             cis_window=options["cis_window"], variant_block=GEMM_BLOCK)
    variants = {"ids": block.ids[rows], "chromosomes": block.chromosomes[rows], "positions": block.positions[rows]}
    return hits, variants, rows.size


def write_hit_file(path: pathlib.Path, hits, variants, genes: GeneSet) -> None:
    """The hits of a block as gzipped TSV (:data:`HIT_FILE_COLUMNS`, floats to 17 digits: exact), written
    whole then renamed into place, so a file that exists is complete."""
    temporary = path.with_name(path.name + ".partial")
    with gzip.open(temporary, "wt") as handle:
        handle.write("\t".join(HIT_FILE_COLUMNS) + "\n")
        for k in range(hits.n_hits):
            g, v = hits.gene[k], hits.variant[k]
            handle.write(f"{genes.gene_ids[g]}\t{genes.chromosomes[g]}\t{genes.starts[g]}\t{variants['ids'][v]}\t"
                         f"{variants['chromosomes'][v]}\t{variants['positions'][v]}\t{hits.pval[k]:.17g}\t"
                         f"{hits.r[k]:.17g}\t{hits.slope[k]:.17g}\t{hits.slope_se[k]:.17g}\n")
    os.replace(temporary, path)


def read_hit_files(paths, gene_ids) -> Dict[str, np.ndarray]:
    """The ``trans_hit`` table from the block files, in block order (``hit_*`` columns, without ``hit_``)."""
    row_of = {str(gene): k for k, gene in enumerate(gene_ids)}
    columns: Dict[str, list] = {name: [] for name in ("gene", "gene_ids", "variant_ids", "variant_chromosomes",
                                                      "variant_positions", "pval", "r", "slope", "slope_se",
                                                      "block")}
    for block, path in enumerate(paths):
        with gzip.open(path, "rt") as handle:
            header = handle.readline().rstrip("\n").split("\t")
            assert tuple(header) == HIT_FILE_COLUMNS, (path, header)
            for line in handle:
                f = line.rstrip("\n").split("\t")
                columns["gene"].append(row_of[f[0]])
                columns["gene_ids"].append(f[0])
                columns["variant_ids"].append(f[3])
                columns["variant_chromosomes"].append(f[4])
                columns["variant_positions"].append(int(f[5]))
                for name, value in zip(("pval", "r", "slope", "slope_se"), f[6:10]):
                    columns[name].append(float(value))
                columns["block"].append(block)
    types = {"gene": np.int64, "variant_positions": np.int64, "block": np.int64, "gene_ids": str,
             "variant_ids": str, "variant_chromosomes": str}
    return {name: np.array(values, dtype=types.get(name, np.float64)) for name, values in columns.items()}


def run_trans(context, units=None, unit_output=None, inputs=()) -> None:
    options = context.config.section(STAGE)
    _check_options(options, context.config.source)
    vcf = context.config.path(options["genotypes"])
    if not vcf.is_file():
        raise InputError("genotype file not found ([trans] genotypes)", file=vcf)
    with context.open_results() as results:
        lineage = check_needs(context, results)
        genes = GeneSet(results)
        blocks = on_root(context.comm, lambda: variant_units(vcf, options["variant_block"]))
        stage = begin_stage(context, results, lineage=lineage)   # input errors above delete nothing
        if stage is None:
            return
        n_blocks = blocks["records"].size
        stage.write("block_chromosomes", blocks["chromosomes"])
        stage.write("block_first_positions", blocks["first"])
        stage.write("block_last_positions", blocks["last"])
        stage.write("block_records", blocks["records"])
        hits_dir = results.path.with_name(results.path.stem + ".trans-hits")
        if context.rank == 0:
            hits_dir.mkdir(exist_ok=True)
        writer = stage.blocked({name: (n_blocks,) for name in COUNTS}, n_blocks=n_blocks, key="variant_blocks")

        def compute(block):
            hits, variants, n_variants = scan_unit(vcf, options, genes, str(blocks["chromosomes"][block]),
                                                   int(blocks["first"][block]), int(blocks["last"][block]),
                                                   int(blocks["records"][block]))
            write_hit_file(hits_dir / hit_file(block), hits, variants, genes)
            where = (slice(block, block + 1),)
            return {"block_variants": (where, np.array([n_variants])),
                    "block_tests": (where, np.array([hits.n_tests])),
                    "block_hits": (where, np.array([hits.n_hits]))}

        context.comm.Barrier()
        write_blocks(context, writer, "trans variant blocks", range(n_blocks), compute, claimed=True)
        table = on_root(context.comm, lambda: read_hit_files([hits_dir / hit_file(b) for b in range(n_blocks)],
                                                             genes.gene_ids))
        counts = results.read(f"{STAGE}/block_hits", allow_incomplete=True)
        assert int(counts.sum()) == table["gene"].size, "block files and block_hits disagree"
        n_tests = int(results.read(f"{STAGE}/block_tests", allow_incomplete=True).sum())
        stage.write("hit_files", np.array([f"{hits_dir.name}/{hit_file(b)}" for b in range(n_blocks)], dtype=str))
        stage.write("n_tests", np.int64(n_tests))
        for name, column in table.items():
            stage.write(f"hit_{name}", column)
        stage.finish()
    context.log.info("trans: %d blocks, %d pairs tested, %d with p <= %g", n_blocks, n_tests, table["gene"].size,
                     options["threshold"])
