"""Input readers: one import point for every format, and plain tables attached to a cross by ID.

Formats (each in its own module):

* R/qtl ``csv`` / ``csvs``: :func:`read_rqtl_csv`, :func:`read_rqtl_csvs` (:mod:`qtlhpc.io.rqtl`);
* PLINK ``.bed/.bim/.fam``: :func:`read_plink` (:mod:`qtlhpc.io.plink`);
* PEPIS Z / W matrices: :func:`read_pepis` (:mod:`qtlhpc.io.pepis`);
* plain TSV/CSV tables (phenotypes, covariates, expression): :func:`read_matrix_table` and the
  ``attach_*`` functions below, which match rows to the cross's individuals by ID.

Every reader raises :class:`qtlhpc.errors.InputError` naming the file, line and column of a bad
value, what was found and what was expected.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Optional, Sequence

import numpy as np

from qtlhpc.io.cross import OBSERVED_CODES, Cross, check_cross_type
from qtlhpc.io.pepis import NumericMatrix, apply_map, read_map, read_numeric_matrix, read_pepis
from qtlhpc.io.plink import read_plink
from qtlhpc.io.rqtl import DEFAULT_GENOTYPE_LABELS, genotype_labels_for, read_rqtl_csv, read_rqtl_csvs
from qtlhpc.io.tables import (
    DEFAULT_MISSING,
    MatrixTable,
    align_ids,
    check_file,
    check_informative,
    check_not_blank,
    check_rectangular,
    check_unique,
    column_label,
    guess_separator,
    log,
    parse_numbers,
    read_matrix_table,
    read_rows,
    show_few,
    split_covariates,
    suggest,
)
from qtlhpc.errors import ConfigError, InputError

__all__ = [
    "read_rqtl_csv", "read_rqtl_csvs", "read_plink", "read_pepis", "read_map", "read_numeric_matrix",
    "read_matrix_table", "read_gene_map", "select_traits", "read_tsv_cross", "attach_phenotypes", "attach_covariates", "attach_expression",
    "DEFAULT_GENOTYPE_LABELS", "DEFAULT_MISSING", "genotype_labels_for", "MatrixTable",
]


def _aligned(cross: Cross, table: MatrixTable, id_mismatch: str):
    """The cross restricted to individuals in ``table`` and the table's matching rows."""
    reference = cross.sources.get("genotypes", "the genotype file")
    keep, take = align_ids(cross.individuals, table.ids, reference, table.path, id_mismatch)
    if len(keep) < cross.n_individuals:
        cross = cross.subset_individuals(keep)
    return cross, table.values[take]


def attach_phenotypes(cross: Cross, path, missing: Sequence[str] = DEFAULT_MISSING, id_column=None,
                      id_mismatch: str = "intersect") -> Cross:
    """A cross whose phenotypes are the table at ``path`` (header; ID column; numeric traits),
    matched by individual ID."""
    table = read_matrix_table(path, missing, id_column, what="a numeric phenotype")
    cross, values = _aligned(cross, table, id_mismatch)
    return replace(cross, phenotypes=values, phenotype_names=table.names,
                   sources={**cross.sources, "phenotypes": str(table.path)})


def attach_covariates(cross: Cross, path, missing: Sequence[str] = DEFAULT_MISSING, id_column=None,
                      id_mismatch: str = "intersect") -> Cross:
    """A cross whose covariates are the table at ``path``, matched by individual ID."""
    table = read_matrix_table(path, missing, id_column, what="a numeric covariate")
    cross, values = _aligned(cross, table, id_mismatch)
    return replace(cross, covariates=values, covariate_names=table.names,
                   sources={**cross.sources, "covariates": str(table.path)})


def read_gene_map(path):
    """Read a gene position table: gene, chromosome, position (header optional; further columns ignored).

    Returns ``(genes, chromosomes, positions)``; positions are in the map's unit (cM or Mb), NaN missing.
    """
    path = check_file(path)
    with open(path, encoding="utf-8-sig") as handle:
        first = handle.readline()
    rows = read_rows(path, guess_separator(path, first))
    width = len(rows.fields[0])
    if width < 3:
        raise InputError(f"has {width} columns; expected gene, chromosome, position", file=path,
                         line=rows.lines[0], hint="one line per gene: name, chromosome, position")
    check_rectangular(rows, width)
    try:
        float(rows.fields[0][2])
        start = 0
    except ValueError:
        start = 1
    table = np.array(rows.fields[start:], dtype=str).reshape(-1, width)
    lines = rows.lines[start:]
    where = lambda k: dict(file=path, line=lines[k], column="1 (gene)")  # noqa: E731
    check_not_blank(table[:, 0], "gene name", where)
    check_unique(table[:, 0], "gene name", where)
    positions = parse_numbers(table[:, 2:3], DEFAULT_MISSING,
                              lambda i, j: dict(file=path, line=lines[i], column="3 (position)"),
                              "a gene position")[:, 0]
    return table[:, 0], table[:, 1], positions


def attach_expression(cross: Cross, path, gene_map=None, missing: Sequence[str] = DEFAULT_MISSING,
                      id_column=None, id_mismatch: str = "intersect") -> Cross:
    """A cross with ``expression (n_individuals, n_genes)`` from the table at ``path`` (individuals in
    rows, genes in columns), matched by ID; ``gene_map`` gives each gene's chromosome and position.

    Genes absent from the gene map are an error; genes on a chromosome without markers get a warning.
    """
    table = read_matrix_table(path, missing, id_column, what="a numeric expression value")
    cross, values = _aligned(cross, table, id_mismatch)
    gene_chromosomes = gene_positions = None
    if gene_map is not None:
        genes, chromosomes, positions = read_gene_map(gene_map)
        row_of = {gene: k for k, gene in enumerate(genes)}
        absent = [gene for gene in table.names if gene not in row_of]
        if absent:
            raise InputError(f"{len(absent)} genes of {table.path} are not in the gene map: {show_few(absent)}",
                             file=gene_map, hint="give every expressed gene a line (its position may be NA)")
        rows = np.array([row_of[gene] for gene in table.names], dtype=np.intp)
        gene_chromosomes, gene_positions = chromosomes[rows], positions[rows]
        unmapped = sorted(set(gene_chromosomes.tolist()) - set(cross.chromosomes.tolist()))
        if unmapped:
            log.warning("%s: genes on chromosomes without markers: %s", gene_map, show_few(unmapped))
    return replace(cross, expression=values, gene_names=table.names, gene_chromosomes=gene_chromosomes,
                   gene_positions=gene_positions, sources={**cross.sources, "expression": str(table.path)})


def select_traits(cross: Cross, traits: Optional[Sequence[str]]) -> Cross:
    """Keep only the named phenotype columns (in the given order)."""
    if traits is None:
        return cross
    columns = []
    for name in traits:
        hits = np.flatnonzero(cross.phenotype_names == name)
        if len(hits) == 0 and name in cross.text_phenotypes:
            values = cross.text_phenotypes[name]
            raise InputError(f"trait {name!r} is not numeric (values such as "
                             f"{show_few(sorted(set(values[values != ''].tolist())), 3)}); an analysed trait must be "
                             "numeric", file=cross.sources.get("phenotypes"), column=name,
                             hint="a text column can be a covariate (input.covariates), dummy-coded")
        if len(hits) == 0:
            raise InputError(f"no trait named {name!r} (traits); the phenotypes are "
                             f"{show_few(cross.phenotype_names, 8)}" + suggest(name, cross.phenotype_names),
                             file=cross.sources.get("phenotypes"), line=1,
                             hint="traits lists phenotype column names")
        columns.append(int(hits[0]))
    return replace(cross, phenotypes=cross.phenotypes[:, columns], phenotype_names=cross.phenotype_names[columns])



def _codes_from_numbers(values: np.ndarray, cross_type: str, where) -> np.ndarray:
    """Numeric genotype codes (NaN or 0 missing) checked against the cross type's allowed codes."""
    allowed = np.array(OBSERVED_CODES[cross_type], dtype=float)
    filled = np.where(np.isnan(values), 0.0, values)
    bad = ~np.isin(filled, allowed)
    if bad.any():
        i, j = (int(v[0]) for v in np.nonzero(bad))
        raise InputError(f"genotype code {values[i, j]:g} is not allowed for a {cross_type} cross; expected one "
                         f"of {', '.join(str(int(a)) for a in allowed)} (0 or NA missing)"
                         + (f" ({int(bad.sum())} such cells in all)" if bad.sum() > 1 else ""), **where(i, j),
                         hint="codes follow R/qtl (see qtlhpc.io.cross); use cross_type = \"generic\" for "
                              "other numeric genotypes")
    return filled.astype(np.int8)


def read_tsv_cross(genotypes, cross_type: str, map_path=None, phenotypes=None,
                   missing: Sequence[str] = DEFAULT_MISSING, id_column=None, covariates=None,
                   id_mismatch: str = "intersect", drop_uninformative: bool = False) -> Cross:
    """A cross from plain tables: a genotype matrix (header of marker names, an ID column, one row per
    individual) with numeric codes (R/qtl integer codes, or any numbers for ``generic``), an optional
    map file (marker, chromosome, position; columns are put in map order; see
    :func:`qtlhpc.io.pepis.read_map`) and an optional phenotype table matched by ID."""
    cross_type = check_cross_type(cross_type)
    table = read_matrix_table(genotypes, missing, id_column, what="a numeric genotype code")
    matrix = NumericMatrix(table.path, table.ids, table.names, table.values, table.lines)
    order, markers, chromosomes, positions = apply_map(matrix, None if map_path is None else read_map(map_path))
    values = table.values[:, order]
    where = lambda i, j: dict(file=table.path, line=table.lines[i],  # noqa: E731
                              column=column_label(markers[j], int(order[j]) + 2))
    codes = values if cross_type == "generic" else _codes_from_numbers(values, cross_type, where)
    keep_markers, keep_individuals = check_informative(
        codes, markers, table.ids, table.path, lambda k: dict(file=table.path, line=1, column=markers[k]),
        lambda k: dict(file=table.path, line=table.lines[k]), drop_uninformative)
    cross = Cross(cross_type, table.ids[keep_individuals], markers[keep_markers], chromosomes[keep_markers],
                  positions[keep_markers], codes[np.ix_(keep_individuals, keep_markers)],
                  sources={"genotypes": str(table.path)})
    if phenotypes is None and covariates:
        raise ConfigError(f"covariates {list(covariates)} are phenotype column names, but no phenotype table is "
                          "given; give phenotypes, or a covariate file")
    if phenotypes is not None:
        cross = attach_phenotypes(cross, phenotypes, missing, id_column, id_mismatch)
        if covariates:
            values, names, covariate_values, covariate_names = split_covariates(
                cross.phenotype_names, cross.phenotypes, covariates, cross.sources["phenotypes"], 1)
            cross = replace(cross, phenotypes=values, phenotype_names=names, covariates=covariate_values,
                            covariate_names=covariate_names)
    return cross
