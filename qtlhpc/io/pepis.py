"""PEPIS-style numeric input: additive (Z) and dominance (W) code matrices, phenotypes, optional map.

Z and W are whitespace- or tab-separated text (tab-separated when the first line has a tab, so that
names may contain spaces; comma-separated for ``.csv`` files), one row per individual, one column per marker, used
as given (Xu 2013: Z = 1/0/-1 for AA/AB/BB, W = 1 for AB and -1 for homozygotes, or expectations).

Codes rule (checked by :func:`check_codes`, errors name file, line and column):

* Z and W must be **complete**: a missing cell (``NA``, ``-``, ``nan`` or empty) is refused.  PEPIS
  codes of a missing or partly informative genotype are its *expectation* (e.g. the marker's mean
  code, i.e. Z = p_AA - p_BB and W = p_AB - p_AA - p_BB under its genotype frequencies); fill them
  before reading.  :func:`qtlhpc.io.writers.write_pepis` (used by ``qtlhpc simulate``) writes such
  complete files.
* every value must be a finite number in [-1, 1]: the integer codes 1/0/-1 (Z) and 1/-1 (W), or an
  expectation between them.  A 2 or 1.5 is refused.  A 0 in W is accepted: it is a legal expectation
  (an F2 marker at 1:2:1, or a marker with no information).

Layout detection (the same rule for Z, W and the phenotype file):

* **header row**: line 1 is a header if any of its fields is not a number (marker or trait names);
* **ID column**: present if the header has one field fewer than the data rows (R's
  ``write.table`` style), or the header's first name is ``id_column`` / ``id`` (any case), or any
  field of the first column below the header is not a number.  Numeric IDs without a header named
  ``id`` cannot be told from a marker column: give such files a header whose first name is ``id``.
  (For Z and W without marker names, a map with one marker fewer than the columns also means the
  first column holds IDs.)

Alignment: W is matched to Z by ID and marker name when both files have them, else it must have the
same shape.  The phenotypes are matched by ID when both Z and the phenotype file have IDs
(``id_mismatch`` policy as elsewhere); otherwise by row order, which requires equal row counts.

Map file (optional): columns marker, chromosome, position (cM), header optional.  With marker names
in Z, every Z marker must be in the map and the columns are put in map order; without names, the map
gives them in column order.  Without a map every marker is put on chromosome ``1`` at position
``0, 1, 2, ...`` (its column index), with a logged warning.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

from qtlhpc.io.cross import Cross
from qtlhpc.io.tables import (
    DEFAULT_MISSING,
    Rows,
    align_ids,
    check_file,
    check_informative,
    check_map,
    check_not_blank,
    check_rectangular,
    check_unique,
    column_label,
    guess_separator,
    log,
    parse_numbers,
    read_rows,
    show_few,
    split_covariates,
    string_block,
)
from qtlhpc.errors import InputError


def _is_number(token: str, missing: Sequence[str]) -> bool:
    if token in missing or token == "":
        return True
    try:
        float(token)
    except ValueError:
        return False
    return True


@dataclass
class NumericMatrix:
    """A numeric text matrix with optional row IDs and column names."""

    path: Path
    ids: Optional[np.ndarray]
    names: Optional[np.ndarray]
    values: np.ndarray
    lines: List[int]


def read_numeric_matrix(path, missing: Sequence[str] = DEFAULT_MISSING, id_column: Optional[str] = None,
                        n_columns_hint: Optional[int] = None, what: str = "a number") -> NumericMatrix:
    """Read a numeric matrix with the header / ID-column detection described in the module docstring.

    ``n_columns_hint``: the expected number of value columns (from a map), used only when the file has
    neither a header nor a non-numeric first column.
    """
    path = check_file(path)
    rows = read_rows(path, sep=_separator(path))
    first = rows.fields[0]
    has_header = not all(_is_number(t, missing) for t in first)
    data_start = 1 if has_header else 0
    if len(rows) == data_start:
        raise InputError("has a header but no data rows", file=path, line=rows.lines[0],
                         hint="one row per individual is expected below the header")
    n_fields = len(rows.fields[data_start])
    check_rectangular(Rows(path, rows.fields[data_start:], rows.lines[data_start:]), n_fields,
                      what="the first data row, line")
    first_column_text = any(not _is_number(row[0], missing) for row in rows.fields[data_start:])
    id_names = {"id"} | ({id_column.lower()} if id_column else set())
    if has_header:
        if len(first) == n_fields - 1:
            has_ids, names = True, first
        elif len(first) == n_fields:
            has_ids = first[0].lower() in id_names or first_column_text
            names = first[1:] if has_ids else first
        else:
            raise InputError(f"the header has {len(first)} names but the data rows have {n_fields} fields",
                             file=path, line=rows.lines[0],
                             hint="give one name per column (optionally none for the ID column)")
    else:
        names = None
        has_ids = first_column_text or (n_columns_hint is not None and n_fields == n_columns_hint + 1)
    offset = 1 if has_ids else 0
    lines = rows.lines[data_start:]
    ids = None
    if has_ids:
        ids = np.array([row[0] for row in rows.fields[data_start:]], dtype=str)
        id_where = lambda k: dict(file=path, line=lines[k], column=1)  # noqa: E731
        check_not_blank(ids, "individual ID", id_where)
        check_unique(ids, "individual ID", id_where)
    if names is not None:
        names = np.array(names, dtype=str)
        check_unique(names, "column name",
                     lambda k: dict(file=path, line=rows.lines[0], column=column_label(names[k], k + 1 + offset)))
    try:  # fast path: every cell a plain number (no missing strings); the checked path below otherwise
        values = np.array([row[offset:] for row in rows.fields[data_start:]], dtype=float)
        if values.ndim != 2 or not np.all(np.isfinite(values)):
            raise ValueError("needs the checked path")
    except ValueError:
        block = string_block(rows, data_start, offset)
        values = parse_numbers(
            block, missing,
            lambda i, j: dict(file=path, line=lines[i],
                              column=column_label("" if names is None else names[j], j + 1 + offset)),
            what)
    return NumericMatrix(path, ids, names, values, lines)


def _separator(path: Path) -> Optional[str]:
    """Comma for .csv files, tab if the first line has a tab (names may then hold spaces), otherwise any
    run of whitespace."""
    if path.suffix.lower() == ".csv":
        return ","
    with open(path, encoding="utf-8-sig") as handle:
        for line in handle:
            if line.strip():
                return "\t" if "\t" in line else None
    return None


_COMPLETE_HINT = ("PEPIS matrices must be complete: give a missing or partly informative genotype its "
                  "expected code, e.g. the marker's mean code (Z = p_AA - p_BB, W = p_AB - p_AA - p_BB)")


def check_codes(matrix: NumericMatrix, what: str) -> None:
    """Refuse missing cells and values outside [-1, 1] in a Z or W matrix (the rule in the module
    docstring), naming the first offending cell (row-major) and how many there are."""
    values = matrix.values
    offset = 1 if matrix.ids is not None else 0

    def where(i: int, j: int) -> dict:
        name = "" if matrix.names is None else str(matrix.names[j])
        return dict(file=matrix.path, line=matrix.lines[i], column=column_label(name, j + 1 + offset))

    def count(mask: np.ndarray) -> str:
        n_bad = int(mask.sum())
        return f" ({n_bad} such cells in all)" if n_bad > 1 else ""

    missing = np.isnan(values)
    if missing.any():
        i, j = (int(v[0]) for v in np.nonzero(missing))
        raise InputError(f"missing value in {what}{count(missing)}", **where(i, j), hint=_COMPLETE_HINT)
    outside = ~(np.abs(values) <= 1.0)
    if outside.any():
        i, j = (int(v[0]) for v in np.nonzero(outside))
        raise InputError(f"{values[i, j]:g} is not a legal code in {what}{count(outside)}; expected a number "
                         "in [-1, 1]", **where(i, j),
                         hint="Z is 1/0/-1 for AA/AB/BB and W is 1 for AB, -1 for AA or BB, or expectations "
                              "between them; recode genotypes (e.g. a count c = 0/1/2 of B alleles as Z = 1 - c)")


@dataclass
class MarkerMap:
    markers: np.ndarray
    chromosomes: np.ndarray
    positions: np.ndarray
    lines: List[int]
    path: Path


def read_map(path) -> MarkerMap:
    """Read a map file: marker, chromosome, position (cM); a header line is optional."""
    path = check_file(path)
    rows = read_rows(path, sep=_separator(path))
    has_header = len(rows.fields[0]) == 3 and not _is_number(rows.fields[0][2], ())
    start = 1 if has_header else 0
    if len(rows) == start:
        raise InputError("has a header but no markers", file=path, hint="one line per marker: name chromosome position")
    body = Rows(path, rows.fields[start:], rows.lines[start:])
    check_rectangular(body, 3, what="a map file (marker, chromosome, position); e.g. line")
    table = np.array(body.fields, dtype=str)
    where = lambda k, field: dict(file=path, line=body.lines[k],  # noqa: E731
                                  column={"name": "1 (marker)", "chromosome": "2 (chromosome)",
                                          "position": "3 (position)"}[field])
    positions = parse_numbers(table[:, 2:3], (), lambda i, j: where(i, "position"), "a position in cM",
                              allow_missing=False)[:, 0]
    check_map(table[:, 0], table[:, 1], positions, where)
    return MarkerMap(table[:, 0], table[:, 1], positions, body.lines, path)


def _match_w_to_z(z: NumericMatrix, w: NumericMatrix) -> np.ndarray:
    """W's values aligned to Z's rows and columns (by ID and name where both have them)."""
    values = w.values
    if z.ids is not None and w.ids is not None:
        if set(z.ids.tolist()) != set(w.ids.tolist()) or len(z.ids) != len(w.ids):
            only_w = [x for x in w.ids if x not in set(z.ids.tolist())]
            only_z = [x for x in z.ids if x not in set(w.ids.tolist())]
            raise InputError(f"W and Z list different individuals: {len(only_w)} IDs only in W "
                             f"({show_few(only_w)}), {len(only_z)} only in Z ({show_few(only_z)}) of {z.path}",
                             file=w.path, column=1, hint="Z and W must describe the same individuals")
        position = {name: k for k, name in enumerate(w.ids)}
        values = values[[position[name] for name in z.ids]]
    if z.names is not None and w.names is not None:
        if set(z.names.tolist()) != set(w.names.tolist()) or len(z.names) != len(w.names):
            only_w = [x for x in w.names if x not in set(z.names.tolist())]
            only_z = [x for x in z.names if x not in set(w.names.tolist())]
            raise InputError(f"W and Z have different markers: {len(only_w)} only in W ({show_few(only_w)}), "
                             f"{len(only_z)} only in Z ({show_few(only_z)}) of {z.path}", file=w.path,
                             line=1, hint="Z and W must have the same marker columns")
        position = {name: k for k, name in enumerate(w.names)}
        values = values[:, [position[name] for name in z.names]]
    if values.shape != z.values.shape:
        raise InputError(f"W has {values.shape[0]} individuals x {values.shape[1]} markers but Z ({z.path}) has "
                         f"{z.values.shape[0]} x {z.values.shape[1]}", file=w.path,
                         hint="Z and W must have the same shape (individuals in rows, markers in columns)")
    return values


def apply_map(z: NumericMatrix, marker_map: Optional[MarkerMap]):
    """``(column_order, markers, chromosomes, positions)`` of Z's columns in genome order."""
    n_markers = z.values.shape[1]
    if marker_map is None:
        log.warning("%s: no map given; all %d markers are put on chromosome '1' at their column index",
                    z.path, n_markers)
        names = z.names if z.names is not None else np.array([f"m{k + 1}" for k in range(n_markers)])
        return np.arange(n_markers), names, np.full(n_markers, "1"), np.arange(n_markers, dtype=float)
    if z.names is None:
        if len(marker_map.markers) != n_markers:
            raise InputError(f"lists {len(marker_map.markers)} markers but Z ({z.path}) has {n_markers} columns "
                             "and no marker names", file=marker_map.path,
                             hint="give Z a header of marker names, or a map with one line per Z column")
        return np.arange(n_markers), marker_map.markers, marker_map.chromosomes, marker_map.positions
    in_map = {name: k for k, name in enumerate(marker_map.markers)}
    absent = [name for name in z.names if name not in in_map]
    if absent:
        raise InputError(f"{len(absent)} markers of Z ({z.path}) are not in the map: {show_few(absent)}",
                         file=marker_map.path, hint="every marker of Z needs a line in the map")
    z_set = set(z.names.tolist())
    unused = [name for name in marker_map.markers if name not in z_set]
    if unused:
        log.warning("%s: %d map markers are not in Z and are ignored: %s", marker_map.path, len(unused),
                    show_few(unused))
    map_rows = np.array(sorted(in_map[name] for name in z.names))
    column_of = {name: k for k, name in enumerate(z.names)}
    order = np.array([column_of[name] for name in marker_map.markers[map_rows]])
    return order, marker_map.markers[map_rows], marker_map.chromosomes[map_rows], marker_map.positions[map_rows]


def _phenotypes_for(z: NumericMatrix, pheno: NumericMatrix, id_mismatch: str):
    """``(ids, keep_z_rows, pheno_rows)``: match by ID if both have IDs, else by row order."""
    n = z.values.shape[0]
    if z.ids is not None and pheno.ids is not None:
        keep, take = align_ids(z.ids, pheno.ids, z.path, pheno.path, id_mismatch)
        return z.ids[keep], keep, take
    if pheno.values.shape[0] != n:
        raise InputError(f"has {pheno.values.shape[0]} rows but Z ({z.path}) has {n} individuals, and they "
                         "cannot be matched by ID", file=pheno.path,
                         hint="give both files an ID column (matched by ID), or the same rows in the same order")
    log.info("%s: phenotypes matched to Z by row order (no IDs in one of the files)", pheno.path)
    ids = z.ids if z.ids is not None else pheno.ids
    if ids is None:
        ids = np.array([str(k + 1) for k in range(n)])
    return ids, np.arange(n), np.arange(n)


def read_pepis(
    z_path,
    w_path,
    phenotypes,
    map_path=None,
    missing: Optional[Sequence[str]] = None,
    id_column: Optional[str] = None,
    covariates: Optional[Sequence[str]] = None,
    id_mismatch: str = "intersect",
    drop_uninformative: bool = False,
) -> Cross:
    """Read PEPIS Z, W, phenotypes and an optional map into a ``generic`` Cross.

    The result has ``genotypes = additive_codes = Z`` and ``dominance_codes = W``, both
    ``(n_individuals, n_markers)`` float with NaN missing, columns in map order.
    """
    missing = DEFAULT_MISSING if missing is None else tuple(missing)
    marker_map = None if map_path is None else read_map(map_path)
    hint = None if marker_map is None else len(marker_map.markers)
    z = read_numeric_matrix(z_path, missing, id_column, hint, "a number (additive code)")
    check_codes(z, "Z (additive codes)")
    w = read_numeric_matrix(w_path, missing, id_column, hint, "a number (dominance code)")
    check_codes(w, "W (dominance codes)")
    w_values = _match_w_to_z(z, w)
    pheno = read_numeric_matrix(phenotypes, missing, id_column, None, "a numeric phenotype")
    order, markers, chromosomes, positions = apply_map(z, marker_map)
    ids, keep, take = _phenotypes_for(z, pheno, id_mismatch)
    names = pheno.names if pheno.names is not None else np.array(
        [f"trait{k + 1}" for k in range(pheno.values.shape[1])])
    values, names, covariate_values, covariate_names = split_covariates(
        np.asarray(names, dtype=str), pheno.values[take], covariates, pheno.path, 1)
    additive = z.values[np.ix_(keep, order)]
    dominance = w_values[np.ix_(keep, order)]
    z_lines = [z.lines[k] for k in keep]
    keep_markers, keep_individuals = check_informative(
        additive, markers, ids, z.path,
        lambda k: dict(file=z.path, column=column_label(markers[k], int(order[k]) + 1 + (z.ids is not None))),
        lambda k: dict(file=z.path, line=z_lines[k]), drop_uninformative)
    rows, cols = keep_individuals, keep_markers
    return Cross(
        "generic", ids[rows], markers[cols], chromosomes[cols], positions[cols], additive[np.ix_(rows, cols)],
        values[rows], names, covariate_values[rows], covariate_names,
        additive_codes=additive[np.ix_(rows, cols)], dominance_codes=dominance[np.ix_(rows, cols)],
        sources={"additive": str(z.path), "dominance": str(w.path), "phenotypes": str(pheno.path),
                 **({} if marker_map is None else {"map": str(marker_map.path)})},
    )
