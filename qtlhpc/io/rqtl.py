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
``A H B`` for bc (the third, BB, occurs only on the X, for hemizygous BY males: R/qtl's ``write.cross``
writes males' AY and BY with the AA and BB labels), ``A B`` for riself/risib.  A ``generic`` cross reads
numbers (NaN missing).  Missing cells: empty, or one of ``missing`` (default ``-`` and ``NA``).

Phenotype columns that are not numeric (``sex`` as ``female``/``male``...) are kept as text and are
never a trait unless named in ``traits`` (then an error naming the column); named in ``covariates`` they
are dummy-coded (:mod:`qtlhpc.io.rqtl_columns`).  ``sex`` and ``pgm`` are read as R/qtl's ``getsex``.

The X chromosome (named ``X`` or ``x``) of a bc or f2 is recoded to R/qtl's g1/g2 codes per sex and
cross direction (:func:`qtlhpc.genetics.xchr.recode_x`); RILs analyse it as an autosome, as R/qtl.

Markers or individuals with no observed genotype: ``uninformative = "keep"`` keeps them as R/qtl does
(the HMM gives them probabilities from their neighbours, or the prior), ``"drop"`` drops them with a
warning, ``"error"`` refuses them.  The Python default follows ``drop_uninformative`` (True: drop, False:
error); ``qtlhpc run`` keeps them unless ``input.drop_uninformative`` is set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence

import numpy as np

from qtlhpc.io.cross import Cross, check_cross_type
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
    read_rows,
    single_char_codes,
    string_block,
)
from qtlhpc.errors import ConfigError, InputError
from qtlhpc.io.rqtl_columns import build_phenotypes, parse_columns, read_text_table
from qtlhpc.io.tables import log, show_few

UNINFORMATIVE = ("keep", "drop", "error")

#: default genotype labels, in code order (label k -> code k + 1)
DEFAULT_GENOTYPE_LABELS = {
    "f2": ("A", "H", "B", "D", "C"),
    "imf2": ("A", "H", "B", "D", "C"),
    "bc": ("A", "H", "B"),  # B: hemizygous BY males on the X (R/qtl writes them with the BB label)
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
    n_codes = len(DEFAULT_GENOTYPE_LABELS[cross_type])
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


#: the labels R/qtl's write.cross gives crosses whose alleles are A and B (its default), in code order
TWO_LETTER_LABELS = {
    "f2": ("AA", "AB", "BB", "not BB", "not AA"),
    "imf2": ("AA", "AB", "BB", "not BB", "not AA"),
    "bc": ("AA", "AB", "BB"),
    "riself": ("AA", "BB"),
    "risib": ("AA", "BB"),
}


def _read_genotypes(path, cross_type, given_labels, labels, missing, sep) -> _GenotypeFile:
    """:func:`_read_genotype_file`; without labels from the user, a file of R/qtl's two-letter labels
    (``AA AB BB``: write.cross of a cross with alleles A and B) is read with those."""
    try:
        return _read_genotype_file(path, cross_type, labels, missing, sep)
    except InputError as error:
        if given_labels is not None or cross_type not in TWO_LETTER_LABELS or "unknown genotype" not in str(error):
            raise
        try:
            geno = _read_genotype_file(path, cross_type, TWO_LETTER_LABELS[cross_type], missing, sep)
        except InputError:
            raise error from None
        log.info("%s: genotypes read with R/qtl's two-letter labels %s", path, ", ".join(TWO_LETTER_LABELS[cross_type]))
        return geno


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


def uninformative_policy(uninformative: Optional[str], drop_uninformative: bool) -> str:
    """``keep``, ``drop`` or ``error`` (see the module docstring)."""
    if uninformative is None:
        return "drop" if drop_uninformative else "error"
    if uninformative not in UNINFORMATIVE:
        raise ConfigError(f"uninformative = {uninformative!r}; expected one of {', '.join(UNINFORMATIVE)}")
    return uninformative


def _x_recode(cross_type, geno: _GenotypeFile, sex, pgm):
    """Recode the X (bc, f2) to g1/g2; other chromosomes of a bc must not carry code 3.  Returns
    ``(keep_markers mask, sex, pgm, x name or None)``."""
    from qtlhpc.genetics.xchr import recode_x
    from qtlhpc.io.cross import HMM_CROSS_TYPE

    keep = np.ones(len(geno.markers), dtype=bool)
    kind = HMM_CROSS_TYPE.get(cross_type)
    is_x = np.isin(geno.chromosomes, ("X", "x")) if kind in ("bc", "f2") else np.zeros(len(keep), bool)
    if kind == "bc":
        bad = (geno.genotypes == 3) & ~is_x[None, :]
        if bad.any():
            i, j = (int(v[0]) for v in np.nonzero(bad))
            raise InputError(f"genotype code 3 (BB, label {geno.rows.fields[3 + i][len(geno.extra_names) + j]!r}) "
                             f"on chromosome {geno.chromosomes[j]} of a backcross: BB occurs only on the X (for "
                             f"hemizygous males) ({int(bad.sum())} such cells)", **geno.cell(i, j),
                             hint="check genotype_labels (code order AA, AB, BB) and the cross type")
    if not is_x.any():
        return keep, sex, pgm, None
    name = str(geno.chromosomes[is_x][0])
    codes, sex_x, pgm_x = recode_x(geno.genotypes[:, is_x], cross_type, sex, pgm,
                                   where=f"{geno.rows.path}: chromosome {name}")
    if codes is None:
        keep[is_x] = False
        return keep, sex, pgm, None
    geno.genotypes[:, is_x] = codes
    return keep, sex_x, pgm_x, name


def _finish(cross_type, ids, id_where, geno: _GenotypeFile, columns, column_where, header_line, covariates,
            traits, uninformative, sources) -> Cross:
    check_not_blank(ids, "individual ID", id_where)
    check_unique(ids, "individual ID", id_where)
    pheno = build_phenotypes(columns, column_where, sources.get("phenotypes", geno.rows.path), header_line,
                             covariates, traits, n_rows=len(ids))
    keep_x, sex, pgm, x_name = _x_recode(cross_type, geno, pheno.sex, pheno.pgm)
    if uninformative == "keep":
        empty_markers = (geno.genotypes == 0).all(axis=0) & keep_x
        empty_individuals = (geno.genotypes[:, keep_x] == 0).all(axis=1)
        if empty_markers.any():
            log.warning("%s: %d markers have no observed genotype; kept, as R/qtl (their probabilities come from "
                        "their neighbours): %s", geno.rows.path, int(empty_markers.sum()),
                        show_few(geno.markers[empty_markers]))
        if empty_individuals.any():
            log.warning("%s: %d individuals have no observed genotype; kept, as R/qtl: %s", geno.rows.path,
                        int(empty_individuals.sum()), show_few(ids[empty_individuals]))
        keep_markers, keep_individuals = keep_x, np.ones(len(ids), dtype=bool)
    else:
        columns_kept = np.flatnonzero(keep_x)
        keep_markers, keep_individuals = check_informative(
            geno.genotypes[:, keep_x], geno.markers[keep_x], ids, geno.rows.path,
            lambda k: dict(file=geno.rows.path, line=geno.rows.lines[0],
                           column=column_label(geno.markers[columns_kept[k]],
                                               len(geno.extra_names) + columns_kept[k] + 1)),
            lambda k: dict(file=geno.rows.path, line=geno.rows.lines[3 + k]),
            drop=uninformative == "drop",
        )
        full = np.zeros(len(keep_x), dtype=bool)
        full[columns_kept[keep_markers]] = True
        keep_markers = full
    if x_name is not None and not np.any(keep_markers & (geno.chromosomes == x_name)):
        x_name = None
    rows = keep_individuals
    return Cross(
        cross_type, ids[rows], geno.markers[keep_markers], geno.chromosomes[keep_markers],
        geno.positions[keep_markers], geno.genotypes[np.ix_(rows, keep_markers)],
        pheno.values[rows], pheno.names, pheno.covariates[rows], pheno.covariate_names,
        sources=sources, text_phenotypes={k: v[rows] for k, v in pheno.text.items()},
        sex=None if sex is None else sex[rows], pgm=None if pgm is None else pgm[rows], x_chromosome=x_name,
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
    traits: Optional[Sequence[str]] = None,
    uninformative: Optional[str] = None,
) -> Cross:
    """Read an R/qtl ``csv`` cross file (see the module docstring for the layout).

    ``covariates`` names phenotype columns to take as covariates (moved out of the phenotypes; text
    columns are dummy-coded); ``traits`` (default: every numeric column) the columns to analyse.
    Markers or individuals with no observed genotype: ``uninformative`` (module docstring).
    """
    cross_type = check_cross_type(cross_type)
    labels = genotype_labels_for(cross_type, genotype_labels)
    missing = _as_missing(missing)
    geno = _read_genotypes(path, cross_type, genotype_labels, labels, missing, sep)
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
    columns = parse_columns(names, geno.extra_block[:, phenotype_columns], missing)
    id_where = lambda k: dict(file=path, line=geno.rows.lines[3 + k],  # noqa: E731
                              column=None if id_index is None else column_label(geno.extra_names[id_index],
                                                                                id_index + 1))
    return _finish(cross_type, ids, id_where, geno, columns, lambda i, j: geno.extra_cell(i, phenotype_columns[j]),
                   geno.rows.lines[0], covariates, traits, uninformative_policy(uninformative, drop_uninformative),
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
    traits: Optional[Sequence[str]] = None,
    uninformative: Optional[str] = None,
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
    geno = _read_genotypes(genotype_path, cross_type, genotype_labels, labels, missing, sep)
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
    table = read_text_table(phenotype_path, id_column, sep=sep)
    keep, take = align_ids(ids, table.ids, path, table.path, id_mismatch)
    geno.genotypes = geno.genotypes[keep]
    geno.rows = Rows(geno.rows.path, geno.rows.fields[:3] + [geno.rows.fields[3 + k] for k in keep],
                     geno.rows.lines[:3] + [geno.rows.lines[3 + k] for k in keep])
    columns = parse_columns(table.names, table.cells[take], missing)
    return _finish(cross_type, ids[keep], id_where, geno, columns, lambda i, j: table.where(int(take[i]), j),
                   table.header_line, covariates, traits, uninformative_policy(uninformative, drop_uninformative),
                   {"genotypes": str(path), "phenotypes": str(table.path)})

