"""R/qtl ``csv`` and ``csvs`` cross files.

``csv`` (one file)::

    id,weight,D1M1,D1M2,D2M1       <- line 1: column names; phenotype columns first, then markers
    ,,1,1,2                         <- line 2: chromosome of each marker; blank for phenotype columns
    ,,0,12.5,0                      <- line 3: position (cM) of each marker; blank for phenotypes
    m1,31.2,A,H,B                   <- one row per individual
    m2,NA,H,-,D

The number of leading blank cells on line 2 is the number of phenotype columns (as in R/qtl).
The ID column is ``id_column`` if given, else a phenotype column named ``id`` (any case), else IDs
``1, 2, ...`` are generated from the row order.

``csvs`` (two files): a genotype file laid out as above whose non-marker columns hold the ID
(required), and a phenotype file with a header, an ID column (same ``id_column`` rule, first column
otherwise) and numeric phenotype columns.  The two are matched by ID, never by row order.

Genotype labels are given in code order: ``genotype_labels[k]`` means code ``k + 1`` (see
:mod:`qtlhpc.io.cross`): default ``A H B D C`` for f2/imf2 (AA, AB, BB, not BB, not AA),
``A H`` for bc, ``A B`` for riself/risib.  A ``generic`` cross reads numbers (NaN missing).
Missing cells: empty, or one of ``missing`` (default ``-`` and ``NA``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from qtlhpc.io.cross import OBSERVED_CODES, Cross, check_cross_type
from qtlhpc.io.tables import (
    DEFAULT_MISSING,
    Rows,
    align_ids,
    check_informative,
    check_map,
    check_not_blank,
    check_rectangular,
    check_unique,
    column_label,
    find_column,
    lookup_codes,
    map_labels,
    parse_numbers,
    read_matrix_table,
    read_rows,
    single_char_codes,
    split_covariates,
    string_block,
)
from qtlhpc.errors import ConfigError, InputError

#: default genotype labels, in code order (label k -> code k + 1)
DEFAULT_GENOTYPE_LABELS = {
    "f2": ("A", "H", "B", "D", "C"),
    "imf2": ("A", "H", "B", "D", "C"),
    "bc": ("A", "H"),
    "riself": ("A", "B"),
    "risib": ("A", "B"),
}
ID_NAMES = ("id",)


def genotype_labels_for(cross_type: str, labels=None) -> tuple:
    """The labels for a cross type, validated: a list/tuple or a comma-separated string."""
    cross_type = check_cross_type(cross_type)
    if cross_type == "generic":
        return ()
    if labels is None:
        return DEFAULT_GENOTYPE_LABELS[cross_type]
    if isinstance(labels, str):
        labels = [x.strip() for x in labels.split(",")]
    labels = tuple(str(x) for x in labels)
    n_codes = len(OBSERVED_CODES[cross_type]) - 1
    if not 1 <= len(labels) <= n_codes:
        raise ConfigError(f"genotype_labels has {len(labels)} labels {list(labels)}; a {cross_type} cross has "
                          f"{n_codes} codes, give 1 to {n_codes} labels in code order "
                          f"(default {list(DEFAULT_GENOTYPE_LABELS[cross_type])})")
    if len(set(labels)) != len(labels) or "" in labels:
        raise ConfigError(f"genotype_labels {list(labels)} must be distinct and non-empty")
    return labels


def _as_missing(missing) -> tuple:
    if missing is None:
        return DEFAULT_MISSING
    if isinstance(missing, str):
        return (missing,)
    return tuple(str(x) for x in missing)


@dataclass
class _GenotypeFile:
    """What the genotype part of a csv/csvs file holds, before phenotypes are attached."""

    rows: Rows
    extra_names: List[str]          # non-marker columns (phenotypes, ID), in file order
    extra_block: np.ndarray         # (n_individuals, n_extra) strings
    markers: np.ndarray
    chromosomes: np.ndarray
    positions: np.ndarray
    genotypes: np.ndarray

    def cell(self, i: int, j: int) -> dict:
        """Location of genotype cell (individual i, marker j)."""
        n_extra = len(self.extra_names)
        return dict(file=self.rows.path, line=self.rows.lines[3 + i],
                    column=column_label(self.markers[j], n_extra + j + 1))

    def extra_cell(self, i: int, j: int) -> dict:
        return dict(file=self.rows.path, line=self.rows.lines[3 + i],
                    column=column_label(self.extra_names[j], j + 1))


def _read_genotype_file(path, cross_type, labels, missing, sep) -> _GenotypeFile:
    rows = read_rows(path, sep)
    path = rows.path
    header = rows.fields[0]
    if len(rows) < 3:
        raise InputError(f"has {len(rows)} non-blank lines; an R/qtl csv needs a header, a chromosome row "
                         "and a position row before the individuals", file=path,
                         hint="line 2 gives each marker's chromosome, line 3 its position in cM")
    check_rectangular(rows, len(header))
    chromosome_row = rows.fields[1]
    n_extra = 0
    while n_extra < len(header) and chromosome_row[n_extra] == "":
        n_extra += 1
    check_not_blank(header, "column name", lambda k: dict(file=path, line=rows.lines[0], column=k + 1))
    for j in range(n_extra, len(header)):
        if chromosome_row[j] == "":
            raise InputError(f"marker {header[j]!r} has no chromosome", file=path, line=rows.lines[1],
                             column=column_label(header[j], j + 1),
                             hint="line 2 must give a chromosome for every marker column, blanks only for "
                                  "the phenotype columns before them")
    position_row = rows.fields[2]
    for j in range(n_extra):
        if position_row[j] != "":
            raise InputError(
                f"found {position_row[j]!r} in phenotype column {header[j]!r} of the position row; expected "
                "a blank", file=path, line=rows.lines[2], column=column_label(header[j], j + 1),
                hint="line 3 must give marker positions in cM (blank for phenotype columns); "
                     "maps without positions are not supported")
    markers = np.array(header[n_extra:], dtype=str)
    chromosomes = np.array(chromosome_row[n_extra:], dtype=str)

    def map_where(k, field):
        line = {"name": rows.lines[0], "chromosome": rows.lines[1], "position": rows.lines[2]}[field]
        return dict(file=path, line=line, column=column_label(markers[k], n_extra + k + 1))

    positions = parse_numbers(np.array([position_row[n_extra:]], dtype=str), (), lambda i, j: map_where(j, "position"),
                              "a marker position in cM", allow_missing=False)[0]
    check_map(markers, chromosomes, positions, map_where)
    extra_block = string_block(rows, 3, 0, n_extra)
    result = _GenotypeFile(rows, list(header[:n_extra]), extra_block, markers, chromosomes, positions, None)
    if cross_type == "generic":
        result.genotypes = parse_numbers(string_block(rows, 3, n_extra), missing, result.cell, "a numeric genotype")
    else:
        result.genotypes = single_char_codes(rows, 3, n_extra, labels, missing, sep)
        if result.genotypes is None:
            result.genotypes = lookup_codes(rows, 3, n_extra, labels, missing)
        if result.genotypes is None:
            result.genotypes = map_labels(string_block(rows, 3, n_extra), labels, missing, result.cell)
    return result


def _finish(cross_type, ids, id_where, geno: _GenotypeFile, phenotypes, phenotype_names, covariates,
            drop_uninformative, sources) -> Cross:
    check_not_blank(ids, "individual ID", id_where)
    check_unique(ids, "individual ID", id_where)
    pheno_values, pheno_names, covariate_values, covariate_names = split_covariates(
        phenotype_names, phenotypes, covariates, sources.get("phenotypes", geno.rows.path), 1)
    keep_markers, keep_individuals = check_informative(
        geno.genotypes, geno.markers, ids, geno.rows.path,
        lambda k: dict(file=geno.rows.path, line=geno.rows.lines[0],
                       column=column_label(geno.markers[k], len(geno.extra_names) + k + 1)),
        lambda k: dict(file=geno.rows.path, line=geno.rows.lines[3 + k]),
        drop=drop_uninformative,
    )
    return Cross(
        cross_type, ids[keep_individuals], geno.markers[keep_markers], geno.chromosomes[keep_markers],
        geno.positions[keep_markers], geno.genotypes[np.ix_(keep_individuals, keep_markers)],
        pheno_values[keep_individuals], pheno_names, covariate_values[keep_individuals], covariate_names,
        sources=sources,
    )


def read_rqtl_csv(
    path,
    cross_type: str,
    genotype_labels: Optional[Sequence[str]] = None,
    missing: Optional[Sequence[str]] = None,
    id_column: Optional[str] = None,
    covariates: Optional[Sequence[str]] = None,
    sep: str = ",",
    drop_uninformative: bool = False,
) -> Cross:
    """Read an R/qtl ``csv`` cross file (see the module docstring for the layout).

    ``covariates`` names phenotype columns to take as covariates (moved out of the phenotypes).
    Markers or individuals with no observed genotype are an error unless ``drop_uninformative``.
    """
    cross_type = check_cross_type(cross_type)
    labels = genotype_labels_for(cross_type, genotype_labels)
    missing = _as_missing(missing)
    geno = _read_genotype_file(path, cross_type, labels, missing, sep)
    path = geno.rows.path
    n_individuals = geno.genotypes.shape[0]
    id_index = find_column(geno.extra_names, id_column, path, geno.rows.lines[0], fallback_names=ID_NAMES)
    if id_index is None:
        ids = np.array([str(k + 1) for k in range(n_individuals)], dtype=str)
    else:
        ids = geno.extra_block[:, id_index].astype(str) if n_individuals else np.empty(0, dtype=str)
    phenotype_columns = [j for j in range(len(geno.extra_names)) if j != id_index]
    names = np.array([geno.extra_names[j] for j in phenotype_columns], dtype=str)
    check_unique(names, "phenotype name",
                 lambda k: dict(file=path, line=geno.rows.lines[0],
                                column=column_label(names[k], phenotype_columns[k] + 1)))
    values = parse_numbers(geno.extra_block[:, phenotype_columns], missing,
                           lambda i, j: geno.extra_cell(i, phenotype_columns[j]), "a numeric phenotype")
    id_where = lambda k: dict(file=path, line=geno.rows.lines[3 + k],  # noqa: E731
                              column=None if id_index is None else column_label(geno.extra_names[id_index],
                                                                                id_index + 1))
    return _finish(cross_type, ids, id_where, geno, values, names, covariates, drop_uninformative,
                   {"genotypes": str(path), "phenotypes": str(path)})


def read_rqtl_csvs(
    genotype_path,
    phenotype_path,
    cross_type: str,
    genotype_labels: Optional[Sequence[str]] = None,
    missing: Optional[Sequence[str]] = None,
    id_column: Optional[str] = None,
    covariates: Optional[Sequence[str]] = None,
    sep: str = ",",
    id_mismatch: str = "intersect",
    drop_uninformative: bool = False,
) -> Cross:
    """Read an R/qtl ``csvs`` pair: a genotype file and a phenotype file, matched by individual ID.

    The ID column (``id_column``, else a column named ``id``) is required in the genotype file; in the
    phenotype file it is ``id_column``, else a column named ``id``, else the first column.
    ``id_mismatch``: ``"intersect"`` (default; individuals in only one file are dropped with a
    warning, no overlap is an error) or ``"error"``.  The result is in genotype-file order.
    """
    cross_type = check_cross_type(cross_type)
    labels = genotype_labels_for(cross_type, genotype_labels)
    missing = _as_missing(missing)
    geno = _read_genotype_file(genotype_path, cross_type, labels, missing, sep)
    path = geno.rows.path
    id_index = find_column(geno.extra_names, id_column, path, geno.rows.lines[0], fallback_names=ID_NAMES)
    if id_index is None:
        if len(geno.extra_names) == 1:
            id_index = 0
        else:
            raise InputError(
                f"no ID column among the non-marker columns {geno.extra_names}; a csvs genotype file needs one",
                file=path, line=geno.rows.lines[0],
                hint="name the ID column 'id' or set id_column; phenotypes are matched to genotypes by ID")
    ids = geno.extra_block[:, id_index].astype(str)
    id_where = lambda k: dict(file=path, line=geno.rows.lines[3 + k],  # noqa: E731
                              column=column_label(geno.extra_names[id_index], id_index + 1))
    check_not_blank(ids, "individual ID", id_where)
    check_unique(ids, "individual ID", id_where)
    table = read_matrix_table(phenotype_path, missing, id_column, sep=sep, what="a numeric phenotype")
    keep, take = align_ids(ids, table.ids, path, table.path, id_mismatch)
    geno.genotypes = geno.genotypes[keep]
    geno.rows = Rows(geno.rows.path, geno.rows.fields[:3] + [geno.rows.fields[3 + k] for k in keep],
                     geno.rows.lines[:3] + [geno.rows.lines[3 + k] for k in keep])
    return _finish(cross_type, ids[keep], id_where, geno, table.values[take], table.names, covariates,
                   drop_uninformative, {"genotypes": str(path), "phenotypes": str(table.path)})

