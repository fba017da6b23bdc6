"""Stages ``cross-eqtl`` and ``cross-trans``: eQTL mapping of a haploid cross as Liu, de la Fuente & Hoeschele
(2008) do it, on the kernels of :mod:`qtlhpc.methods.eqtl.cross`.

Both read the cross (``[input]``: riself/risib/bc codes 1, 2 become the 0/1 genotypes; ``generic`` genotypes
must be 0/1), the expression set (stage ``expression``, aligned to the genotyped individuals) and the physical
map of the markers (``[cross_map]``).  A gene's physical position is its start (``expression/gene_starts``).

``cross-eqtl`` is cheap (seconds at yeast scale): rank 0 reads the expression matrix and runs cis mapping,
cis-eQTL regions, cis-trans targets and PC mapping; the k-means restarts draw from ``unit_rng(seed,
"eqtl-kmeans", restart)``, so the numbers do not depend on the ranks.

``cross-trans`` fits model (1) to every regulator-target pair.  Work units are blocks of
``cross_trans.regulator_block`` regulators, claimed by the ranks as they free up and checkpointed; each block
writes its rows of ``p_iut`` (float64: the q-values are computed from it exactly), of the effects, their SEs
and p-values (float32) and its number of tests.  Once all blocks are on disk, each rank reads its share of the
row blocks, keeps the pairs with ``p_iut <= keep_pvalue``; the kept p-values and the total number of tests give
the exact BH q-values (:func:`~qtlhpc.methods.eqtl.cross.bh_qvalues_of_kept`), and the pairs with
``q <= fdr`` are written as the ``trans_pair`` table.  A rank never holds more than one block of rows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Dict, List, Tuple

import numpy as np

from qtlhpc.errors import ConfigError, InputError, did_you_mean
from qtlhpc.methods.eqtl.cross import (
    EqtlRegions, PeakTargets, bh_qvalues_of_kept, check_marker_map, cis_map, cis_regions, cis_trans_map,
    closest_marker, marker_genotypes_of_genes, nearest_markers, pc_map, prepare_trans, trans_block)
from qtlhpc.parallel import block_range
from qtlhpc.parallel.comm import on_root
from qtlhpc.stages.runtime import begin_stage, check_needs, write_blocks

EQTL_STAGE = "cross-eqtl"
TRANS_STAGE = "cross-trans"
MAP_SECTION = "cross_map"
#: the float32 matrices of cross-trans, besides p_iut (float64)
EFFECTS = ("b1", "b2", "se_b1", "se_b2", "p_b1", "p_b2")
HAPLOID_TYPES = ("riself", "risib", "bc")


# ---------------------------------------------------------------------------------------------------------
# Inputs shared by both stages


def read_marker_positions(path, markers) -> Tuple[np.ndarray, np.ndarray]:
    """The physical map of ``markers`` from a TSV (marker, chromosome, position in bp; an optional header line):
    ``(chromosome (n_markers,) str, position (n_markers,) float)`` in the order of ``markers``."""
    index = {str(name): k for k, name in enumerate(markers)}
    chromosome = np.full(len(index), "", dtype=object)
    position = np.full(len(index), np.nan)
    seen = np.zeros(len(index), dtype=bool)
    first = True
    with open(path, encoding="utf-8") as handle:
        for line_number, line in enumerate(handle, start=1):
            if not line.strip() or line.startswith("#"):
                continue
            fields = line.rstrip("\r\n").split("\t") if "\t" in line else line.split()
            if len(fields) != 3:
                raise InputError(f"expected 3 columns (marker, chromosome, position in bp), found {len(fields)}",
                                 file=path, line=line_number)
            name, label, value = (f.strip() for f in fields)
            is_first, first = first, False
            try:
                bp = float(value)
            except ValueError:
                if is_first:        # a header line
                    continue
                raise InputError(f"position {value!r} of marker {name!r} is not a number", file=path,
                                 line=line_number, column=3) from None
            if name not in index:
                raise InputError(f"marker {name!r} is not a marker of the [input] cross"
                                 + did_you_mean(name, list(index)), file=path, line=line_number, column=1,
                                 hint="list the markers of the cross's genotype file, spelled the same")
            k = index[name]
            if seen[k]:
                raise InputError(f"marker {name!r} is listed twice", file=path, line=line_number, column=1)
            seen[k], chromosome[k], position[k] = True, label, bp
    if not seen.all():
        missing = [str(markers[k]) for k in np.flatnonzero(~seen)[:3]]
        raise InputError(f"{int((~seen).sum())} of the {len(index)} markers of the cross have no physical position "
                         f"here (first: {', '.join(missing)})", file=path,
                         hint="give every marker a line: marker, chromosome, position in bp")
    return chromosome.astype(str), position


def physical_map(options: dict, config, cross) -> Tuple[np.ndarray, np.ndarray]:
    """``[cross_map]``: the markers' chromosomes and bp positions, checked to be in map order."""
    if options["marker_positions"]:
        path = config.path(options["marker_positions"])
        if not path.is_file():
            raise InputError("marker position file not found ([cross_map] marker_positions)", file=path)
        chromosome, position = read_marker_positions(path, cross.markers)
        where = str(path)
    elif options["map_unit"] == "bp":
        chromosome, position, where = cross.chromosomes.astype(str), cross.positions.astype(float), "[input] map"
    else:
        raise ConfigError(f"{config.source}: [cross_map] marker_positions is empty and map_unit = 'cM': the cis "
                          "and trans mappings need the markers' physical (bp) positions; name a TSV (marker, "
                          "chromosome, position) or, if the [input] map is in bp, set map_unit = \"bp\"")
    try:
        check_marker_map(chromosome, position)
    except InputError as error:
        raise InputError(f"{error} (physical map from {where}: the markers of the cross must be in physical "
                         "order)") from None
    return chromosome, position


def haploid_genotypes(cross) -> np.ndarray:
    """``(n_individuals, n_markers)`` 0/1 genotypes, NaN missing, of a two-genotype cross."""
    if cross.cross_type == "generic":
        return np.asarray(cross.genotypes, dtype=float)
    if cross.cross_type not in HAPLOID_TYPES:
        raise InputError(f"the mapping of a cross (cross-eqtl, cross-trans) needs two genotypes per marker "
                         f"(haploid segregants, RILs: cross_type riself, risib or bc); [input] is a "
                         f"{cross.cross_type} cross")
    codes = np.asarray(cross.genotypes)
    return np.where(codes == 0, np.nan, codes - 1.0)


@dataclass(frozen=True)
class CrossData:
    """Aligned inputs: ``genotypes (n_samples, n_markers)`` 0/1/NaN in expression/sample_ids order; the physical
    map; each gene's chromosome and start."""

    genotypes: np.ndarray
    marker_chromosome: np.ndarray
    marker_position: np.ndarray
    gene_chromosome: np.ndarray
    gene_start: np.ndarray

    @property
    def n_genes(self) -> int:
        return int(self.gene_start.size)


def cross_data(context, results) -> CrossData:
    """The cross, its physical map and the genes, aligned to the expression samples (collective)."""
    cross = context.cross()
    options = context.config.section(MAP_SECTION)
    chromosome, position = on_root(context.comm, lambda: physical_map(options, context.config, cross))
    sample_ids = results.read("expression/sample_ids")
    row = {str(name): k for k, name in enumerate(cross.individuals)}
    absent = [s for s in sample_ids.tolist() if s not in row]
    if absent:
        raise InputError(f"{len(absent)} expression samples are not individuals of the [input] cross (first: "
                         f"{', '.join(absent[:3])}): rerun the expression stage with this [input]")
    genotypes = haploid_genotypes(cross)[[row[s] for s in sample_ids.tolist()]]
    gene_chromosome = results.read("expression/gene_chromosomes").astype(str)
    if not np.isin(gene_chromosome, chromosome).any():
        genes, markers = (", ".join(np.unique(labels)[:3]) for labels in (gene_chromosome, chromosome))
        raise InputError(f"no gene lies on a chromosome of the markers (genes on {genes}...; markers on "
                         f"{markers}...): chromosome names must match")
    return CrossData(genotypes, chromosome, position, gene_chromosome,
                     results.read("expression/gene_starts").astype(float))


# ---------------------------------------------------------------------------------------------------------
# cross-eqtl


def _regions_columns(prefix: str, trait: str, regions: EqtlRegions) -> Dict[str, np.ndarray]:
    return {f"{prefix}_eqtl_{trait}": regions.trait, f"{prefix}_eqtl_peak": regions.peak,
            f"{prefix}_eqtl_logp": regions.logp, f"{prefix}_eqtl_first": regions.first,
            f"{prefix}_eqtl_last": regions.last, f"{prefix}_eqtl_region": regions.region,
            f"{prefix}_region_peak": regions.region_peak, f"{prefix}_region_first": regions.region_first,
            f"{prefix}_region_last": regions.region_last, f"{prefix}_region_start_bp": regions.region_start_bp,
            f"{prefix}_region_end_bp": regions.region_end_bp}


def _hit_columns(prefix: str, targets: PeakTargets) -> Dict[str, np.ndarray]:
    region, gene = np.nonzero(targets.significant)
    return {f"{prefix}_region": region, f"{prefix}_gene": gene, f"{prefix}_pvalue": targets.pvalue[region, gene],
            f"{prefix}_qvalue": targets.qvalue[region, gene],
            f"{prefix}_tests": np.int64(np.count_nonzero(~np.isnan(targets.pvalue)))}


def map_cross_eqtl(expression: np.ndarray, data: CrossData, options: dict, seed: int) -> Dict[str, np.ndarray]:
    """Every dataset of ``cross-eqtl`` from ``expression (n_genes, n_samples)`` (the kernels, in the paper's
    order: cis, cis regions, cis-trans targets, PC mapping)."""
    chromosome, position, genotypes = data.marker_chromosome, data.marker_position, data.genotypes
    alpha, drop, overlap, rule = options["alpha"], options["logp_drop"], options["min_overlap"], options["merge_rule"]
    flanks = nearest_markers(data.gene_chromosome, data.gene_start, chromosome, position)
    cis = cis_map(expression, genotypes, flanks, alpha=alpha)
    regions = cis_regions(expression, genotypes, cis, chromosome, position, drop=drop, min_overlap=overlap, rule=rule)
    cis_trans = cis_trans_map(expression, genotypes, regions, alpha=alpha)
    n_clusters = max(1, min(options["clusters"], data.n_genes // 2))
    pcs = pc_map(expression, genotypes, chromosome, position, n_clusters=n_clusters, n_restarts=options["restarts"],
                 seed=seed, centroid=options["centroid"], min_eigenvalue=options["min_eigenvalue"], alpha=alpha,
                 drop=drop, min_overlap=overlap, merge_rule=rule)
    out = {
        "marker_chromosomes": chromosome, "marker_positions_bp": position,
        "closest_marker": closest_marker(data.gene_chromosome, data.gene_start, chromosome, position),
        "cis_markers": cis.marker, "cis_marker_pvalues": cis.marker_pvalue, "cis_pvalue": cis.pvalue,
        "cis_qvalue": cis.qvalue, "cis_peak_marker": cis.peak_marker, "cis_significant": cis.significant,
        "n_clusters": np.int64(n_clusters), "kmeans_labels": pcs.kmeans.labels,
        "kmeans_objective": np.float64(pcs.kmeans.objective), "kmeans_restart": np.int64(pcs.kmeans.restart),
        "pc_cluster": pcs.components.cluster, "pc_eigenvalue": pcs.components.eigenvalue,
        "pc_scores": pcs.components.scores, "pc_loadings": pcs.components.loadings,
        "pc_scan_pvalue": pcs.scan_pvalue, "pc_scan_qvalue": pcs.scan_qvalue,
    }
    out.update(_regions_columns("cis", "gene", regions))
    out.update(_hit_columns("cis_trans", cis_trans))
    out.update(_regions_columns("pc", "pc", pcs.regions))
    out.update(_hit_columns("pc_target", pcs.targets))
    return out


def _check_eqtl_options(options: dict, source) -> None:
    for key in ("alpha", "min_overlap"):
        if not 0 < options[key] <= 1:
            raise ConfigError(f"{source}: [cross_eqtl] {key} = {options[key]} must lie in (0, 1]")
    if options["clusters"] < 1 or options["restarts"] < 1:
        raise ConfigError(f"{source}: [cross_eqtl] clusters and restarts must be at least 1, got "
                          f"{options['clusters']} and {options['restarts']}")


def run_cross_eqtl(context, units=None, unit_output=None, inputs=()) -> None:
    options = context.config.section("cross_eqtl")
    _check_eqtl_options(options, context.config.source)
    with context.open_results() as results:
        lineage = check_needs(context, results)
        data = cross_data(context, results)
        stage = begin_stage(context, results, lineage=lineage)
        if stage is None:
            return
        # rank 0 reads the whole matrix, the other ranks nothing (collective)
        n_rows = data.n_genes if context.rank == 0 else 0
        values = results.read_own("expression/values", (slice(0, n_rows),))
        held = {}

        def compute():
            held["out"] = map_cross_eqtl(values, data, options, context.seed)
            out = held["out"]
            return list(out), (int(out["cis_significant"].sum()), int(out["cis_region_peak"].size),
                               int(out["cis_trans_gene"].size), int(out["pc_cluster"].size),
                               int(out["pc_region_peak"].size), int(out["pc_target_gene"].size))

        names, summary = on_root(context.comm, compute)
        for name in names:
            stage.write(name, held["out"][name] if context.rank == 0 else None)
        stage.finish()
    context.log.info("cross-eqtl: %d cis genes in %d regions, %d cis-trans targets; %d PCs, %d PC-eQTL regions, "
                     "%d PC targets", *summary)


# ---------------------------------------------------------------------------------------------------------
# cross-trans


def regulator_rows(block: int, block_size: int, n_genes: int) -> Tuple[int, int]:
    return block * block_size, min(n_genes, (block + 1) * block_size)


def _check_trans_options(options: dict, source) -> None:
    if options["regulator_block"] < 1:
        raise ConfigError(f"{source}: [cross_trans] regulator_block = {options['regulator_block']} must be at least 1")
    if not 0 < options["keep_pvalue"] <= 1:
        raise ConfigError(f"{source}: [cross_trans] keep_pvalue = {options['keep_pvalue']} must lie in (0, 1]")
    if not 0 < options["fdr"] <= options["keep_pvalue"]:
        raise ConfigError(f"{source}: [cross_trans] fdr = {options['fdr']} must lie in (0, keep_pvalue = "
                          f"{options['keep_pvalue']}]: q-values above keep_pvalue are not exact; raise keep_pvalue")


def trans_inputs(context, results, options: dict):
    """Model (1)'s prepared inputs for all genes, on every rank (each rank needs every target)."""
    data = cross_data(context, results)
    expression = results.read("expression/values")
    marker_of_gene = closest_marker(data.gene_chromosome, data.gene_start, data.marker_chromosome,
                                    data.marker_position)
    marker_genotypes = marker_genotypes_of_genes(data.genotypes, marker_of_gene)
    return prepare_trans(expression, marker_genotypes, interaction=options["interaction"])


def run_cross_trans(context, units=None, unit_output=None, inputs=()) -> None:
    options = context.config.section("cross_trans")
    _check_trans_options(options, context.config.source)
    with context.open_results() as results:
        lineage = check_needs(context, results)
        prepared = trans_inputs(context, results, options)      # input errors before anything is deleted
        stage = begin_stage(context, results, lineage=lineage)
        if stage is None:
            return
        n_genes, block_size = prepared.n_genes, options["regulator_block"]
        n_blocks = math.ceil(n_genes / block_size)
        shapes = {name: (n_genes, n_genes) for name in ("p_iut",) + EFFECTS}
        shapes["block_tests"] = (n_blocks,)
        writer = stage.blocked(shapes, n_blocks=n_blocks, key="regulator_blocks")

        def compute(block):
            r0, r1 = regulator_rows(block, block_size, n_genes)
            pairs = trans_block(None, None, (r0, r1), None, interaction=options["interaction"],
                                min_recombination=options["min_recombination"], prepared=prepared)
            rows = (slice(r0, r1), slice(None))
            pieces = {"p_iut": (rows, pairs.p_iut),
                      "block_tests": ((slice(block, block + 1),), np.array([pairs.n_tests]))}
            pieces.update({name: (rows, getattr(pairs, name).astype(np.float32)) for name in EFFECTS})
            return pieces

        write_blocks(context, writer, "cross-trans regulator blocks", range(n_blocks), compute, claimed=True)
        table, n_tests, n_kept = significant_pairs(context, results, writer.independent, n_genes, block_size,
                                                   n_blocks, options)
        stage.write("n_tests", np.int64(n_tests))
        stage.write("n_kept", np.int64(n_kept))
        for name, column in table.items():
            stage.write(f"pair_{name}", column)
        stage.finish()
    context.log.info("cross-trans: %d pairs tested, %d with p_iut <= %g, %d with q <= %g", n_tests, n_kept,
                     options["keep_pvalue"], table["regulator"].size, options["fdr"])


def _read_rows(results, name: str, rows: Tuple[int, int]) -> np.ndarray:
    return results.read(f"{TRANS_STAGE}/{name}", (slice(*rows),), allow_incomplete=True)


def significant_pairs(context, results, independent: bool, n_genes: int, block_size: int, n_blocks: int,
                      options: dict):
    """The ``trans_pair`` table (columns ``regulator, target, b1, b2, se_b1, se_b2, p_b1, p_b2, p_iut, q_iut``,
    the same on every rank), the number of tests and of kept pairs (collective).

    With independent (parallel) reads each rank reads its static share of the row blocks; with rank-0 reads
    every rank goes through all blocks (each read is a broadcast of one block from rank 0).  Either way a rank
    holds one block of rows at a time, and the kept pairs (p_iut <= keep_pvalue)."""
    comm = context.comm
    if independent:
        start, stop = block_range(n_blocks, context.rank, context.size)
        mine = range(start, stop)
    else:
        mine = range(n_blocks)
    parts: List[Tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    for block in mine:
        rows = regulator_rows(block, block_size, n_genes)
        p_iut = _read_rows(results, "p_iut", rows)
        regulator, target = np.nonzero(p_iut <= options["keep_pvalue"])
        parts.append((regulator + rows[0], target, p_iut[regulator, target]))
    regulator, target, p_kept = (np.concatenate([p[k] for p in parts]) if parts else np.zeros(0, dtype=dtype)
                                 for k, dtype in enumerate((np.int64, np.int64, float)))
    n_tests = int(results.read(f"{TRANS_STAGE}/block_tests", allow_incomplete=True).sum())
    all_kept = np.concatenate(comm.allgather(p_kept)) if independent else p_kept
    q_all = bh_qvalues_of_kept(all_kept, max(n_tests, 1))
    offset = sum(comm.allgather(p_kept.size)[:context.rank]) if independent else 0
    q_mine = q_all[offset:offset + p_kept.size]
    chosen = q_mine <= options["fdr"]
    regulator, target, p_kept, q_mine = regulator[chosen], target[chosen], p_kept[chosen], q_mine[chosen]
    effects = {name: np.zeros(regulator.size) for name in EFFECTS}
    for block in mine:
        r0, r1 = regulator_rows(block, block_size, n_genes)
        inside = np.flatnonzero((regulator >= r0) & (regulator < r1))
        if inside.size == 0:     # rank-0 reads: every rank holds the same pairs, so asks for the same rows
            continue
        lo, hi = int(regulator[inside].min()), int(regulator[inside].max()) + 1
        for name in EFFECTS:
            effects[name][inside] = _read_rows(results, name, (lo, hi))[regulator[inside] - lo, target[inside]]
    table = {"regulator": regulator, "target": target, **effects, "p_iut": p_kept, "q_iut": q_mine}
    if independent:
        pieces = comm.allgather(table)
        table = {name: np.concatenate([piece[name] for piece in pieces]) for name in table}
    return table, n_tests, int(all_kept.size)
