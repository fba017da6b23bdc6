"""Phenotype columns of R/qtl files as R/qtl reads them: numbers, text (factors), sex and cross direction.

R/qtl turns a phenotype column into numbers when every non-missing cell is a number and into a factor
otherwise.  Here:

* a **numeric** column (every non-missing cell a number) is a trait, or a covariate when named in
  ``covariates``;
* a **text** column (no cell is a number, e.g. ``sex`` with ``female``/``male``) is kept beside the
  traits (``Cross.text_phenotypes``): it never stops a run that does not analyse it.  Named in
  ``covariates`` it is dummy-coded with R's treatment contrasts (:func:`treatment_contrasts`); named
  in ``traits`` it is an error naming the column;
* a **mixed** column (some cells numbers, some not: usually a typing error such as ``12,5``) is an
  error naming its first bad cell when it is analysed (named in ``traits``, or every column when no
  ``traits`` are given); otherwise it is kept as text.

Sex and cross direction follow R/qtl's ``getsex``: the first phenotype column named ``sex`` (any case)
and the first named ``pgm`` (any case).  Sex: numbers 0 (female) / 1 (male), or a text column whose
levels start with ``f``/``F`` and ``m``/``M`` (one level: ``f``, ``female``, ``m``, ``male`` in any
case).  ``pgm``: 0/1 (0 = the cross (AxB)x(AxB), 1 = (BxA)x(BxA)).  A missing sex is set as R/qtl sets
it: like the others when all known sexes agree, female otherwise.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from typing import Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from qtlhpc.errors import InputError
from qtlhpc.io.tables import missing_mask, show_few, suggest

log = logging.getLogger("qtlhpc")


@dataclass
class Column:
    """One phenotype column: ``numbers (n,)`` (NaN missing or not a number), ``text (n,)`` ('' missing)."""

    name: str
    numbers: np.ndarray
    text: np.ndarray
    n_bad: int                 # non-missing cells that are not numbers
    first_bad: Optional[int]   # row of the first such cell
    n_numbers: int             # cells that are numbers

    @property
    def kind(self) -> str:
        if self.n_bad == 0:
            return "numeric"
        return "text" if self.n_numbers == 0 else "mixed"


def parse_columns(names: Sequence[str], block: np.ndarray, missing: Sequence[str]) -> List[Column]:
    """Classify every column of the string ``block (n, k)``; ``missing`` strings and empty cells are missing."""
    mask = missing_mask(block, missing)
    columns = []
    for j, name in enumerate(names):
        cells = block[:, j]
        numbers = np.full(len(cells), np.nan)
        bad = np.zeros(len(cells), dtype=bool)
        present = ~mask[:, j]
        try:  # fast path: the whole column converts
            numbers[present] = cells[present].astype(float)
        except ValueError:
            for i in np.flatnonzero(present):
                try:
                    numbers[i] = float(cells[i])
                except ValueError:
                    bad[i] = True
        text = np.where(mask[:, j], "", cells).astype(str)
        n_bad = int(bad.sum())
        columns.append(Column(str(name), numbers, text, n_bad, int(np.flatnonzero(bad)[0]) if n_bad else None,
                              int((~mask[:, j] & ~bad).sum())))
    return columns


def treatment_contrasts(values: np.ndarray, name: str) -> Tuple[np.ndarray, List[str], List[str]]:
    """Dummy coding of a factor with R's treatment contrasts (``contr.treatment``).

    ``values (n,)`` strings, ``''`` missing.  Levels are the distinct values **sorted** (by code point,
    as R's ``factor()`` in the C locale); the first level is the reference.  Returns ``(matrix (n,
    n_levels - 1), column names '<name>=<level>', levels)``; a missing value gives NaN in every column.
    """
    present = values != ""
    levels = sorted(set(values[present].tolist()))
    matrix = np.full((len(values), max(len(levels) - 1, 0)), np.nan)
    for k, level in enumerate(levels[1:]):
        matrix[present, k] = (values[present] == level).astype(float)
    return matrix, [f"{name}={level}" for level in levels[1:]], levels


@dataclass
class Phenotypes:
    """What the phenotype columns give a cross (rows in the reader's individual order)."""

    values: np.ndarray            # (n, n_traits) numeric traits
    names: np.ndarray
    covariates: np.ndarray        # (n, n_covariate_columns), dummy columns for text covariates
    covariate_names: np.ndarray
    text: Dict[str, np.ndarray]   # text (and mixed) columns, '' missing
    sex: Optional[np.ndarray]     # (n,) int8 0 female / 1 male, or None
    pgm: Optional[np.ndarray]     # (n,) int8 0/1, or None


def build_phenotypes(columns: List[Column], where: Callable[[int, int], dict], path, line: int,
                     covariates: Optional[Sequence[str]] = None,
                     traits: Optional[Sequence[str]] = None, n_rows: Optional[int] = None) -> Phenotypes:
    """Traits, covariates (dummy-coded when text), text columns, sex and pgm from parsed columns.

    ``where(i, j)``: location of cell (row i, column j) for errors; ``line``: the header's line; ``n_rows``:
    the number of individuals (needed when there is no phenotype column: a cross of genotypes only).
    """
    names = [c.name for c in columns]
    index = {c.name: j for j, c in reversed(list(enumerate(columns)))}
    covariates = [] if covariates is None else [str(c) for c in covariates]
    for name in covariates:
        if name not in index:
            raise InputError(f"no phenotype column named {name!r} to use as a covariate; columns are "
                             f"{show_few(names, 8)}" + suggest(name, names), file=path, line=line,
                             hint="covariates lists phenotype column names")
    for name in traits or []:
        if str(name) not in index:
            raise InputError(f"no trait named {name!r} (traits); the phenotypes are {show_few(names, 8)}"
                             + suggest(str(name), names), file=path, line=line,
                             hint="traits lists phenotype column names")
    analysed = [c for c in columns if c.name not in covariates] if traits is None else \
        [columns[index[str(t)]] for t in traits]
    for column in analysed:
        if column.kind == "mixed" or (traits is not None and column.kind == "text"):
            j = index[column.name]
            raise InputError(f"{column.text[column.first_bad]!r} is not a number; expected a numeric phenotype "
                             f"(column {column.name!r} is analysed as a trait"
                             + (f"; {column.n_bad} such cells in all)" if column.n_bad > 1 else ")"),
                             **where(column.first_bad, j),
                             hint="write numbers with a '.' decimal point; a text column (e.g. sex) can be a "
                                  "covariate (input.covariates) but not a trait")
    numeric = [c for c in columns if c.kind == "numeric" and c.name not in covariates] if traits is None else \
        [columns[index[str(t)]] for t in traits]
    for column in numeric + [columns[index[name]] for name in covariates]:
        infinite = np.flatnonzero(np.isinf(column.numbers))
        if infinite.size:
            noun = "covariate" if column.name in covariates else "phenotype"
            i = int(infinite[0])
            raise InputError(f"{column.text[i]!r} is infinite: Inf is not a valid {noun} value; expected a numeric "
                             f"{noun}, finite" + (f" ({infinite.size} infinite cells in all)" if infinite.size > 1
                                                  else ""), **where(i, index[column.name]),
                             hint="write a missing value (empty or NA) instead, or fix the transform that gave Inf "
                                  "(a log of zero?)")
    text_columns = {c.name: c.text for c in columns if c.kind != "numeric"}
    skipped = [c.name for c in columns if c.kind == "text" and c.name not in covariates]
    if skipped and traits is None:
        log.info("%s: text column(s) %s are not traits (not numeric); name them in input.covariates to use "
                 "them as covariates", path, show_few(skipped))
    n = len(columns[0].numbers) if columns else (n_rows or 0)
    values = np.column_stack([c.numbers for c in numeric]) if numeric else np.empty((n, 0))
    cov_blocks, cov_names = [], []
    for name in covariates:
        column = columns[index[name]]
        if column.kind == "numeric":
            cov_blocks.append(column.numbers[:, None])
            cov_names.append(name)
        else:
            matrix, dummy_names, levels = treatment_contrasts(column.text, name)
            log.info("%s: covariate %r is text with levels %s (sorted); dummy-coded against %r", path, name,
                     show_few(levels), levels[0] if levels else "")
            cov_blocks.append(matrix)
            cov_names.extend(dummy_names)
    cov_values = np.hstack(cov_blocks) if cov_blocks else np.empty((n, 0))
    sex, pgm = sex_and_direction(columns, path)
    return Phenotypes(values, np.array([c.name for c in numeric], dtype=str), cov_values,
                      np.array(cov_names, dtype=str), text_columns, sex, pgm)


def _first_named(columns: List[Column], pattern: str) -> Optional[Column]:
    hits = [c for c in columns if re.fullmatch(pattern, c.name)]
    if len(hits) > 1:
        log.warning("%d phenotype columns are named %r; the first one is used", len(hits), hits[0].name)
    return hits[0] if hits else None


def sex_and_direction(columns: List[Column], path="") -> Tuple[Optional[np.ndarray], Optional[np.ndarray]]:
    """Sex (0 female, 1 male) and pgm (0/1) per individual, read as R/qtl's ``getsex``; None if absent."""
    sex = pgm = None
    column = _first_named(columns, "[Ss][Ee][Xx]")
    if column is not None:
        if column.kind == "numeric":
            known = column.numbers[~np.isnan(column.numbers)]
            if np.all((known == 0) | (known == 1)):
                sex = column.numbers.copy()
            else:
                log.warning("%s: sex column %r should be 0 = female, 1 = male; sex ignored", path, column.name)
        else:
            values = column.text
            levels = sorted(set(values[values != ""].tolist()))
            if len(levels) == 1:
                level = levels[0]
                if level in ("F", "f") or level.upper() == "FEMALE":
                    sex = np.zeros(len(values))
                elif level in ("M", "m") or level.upper() == "MALE":
                    sex = np.ones(len(values))
                else:
                    log.warning("%s: sex column %r should be 0/1 or female/male; sex ignored", path, column.name)
            elif len(levels) == 2 and any(v[:1] in "Ff" for v in levels) and any(v[:1] in "Mm" for v in levels):
                male = [v for v in levels if v[:1] in "Mm"][0]
                sex = np.where(values == "", np.nan, (values == male).astype(float))
            else:
                log.warning("%s: sex column %r has levels %s; expected two levels (female/male); sex ignored",
                            path, column.name, show_few(levels))
    if sex is not None and np.isnan(sex).any():
        known = sex[~np.isnan(sex)]
        fill = 1.0 if known.size and np.all(known == 1) else 0.0
        log.warning("%s: %d individuals have no sex; taken as %s (as R/qtl)", path, int(np.isnan(sex).sum()),
                    "male like the others" if fill else "female")
        sex = np.where(np.isnan(sex), fill, sex)
    column = _first_named(columns, "[Pp][Gg][Mm]")
    if column is not None:
        if column.kind == "numeric":
            numbers = column.numbers
        else:  # R: as.numeric(factor) - 1, levels sorted
            levels = sorted(set(column.text[column.text != ""].tolist()))
            numbers = np.array([levels.index(v) if v else np.nan for v in column.text], dtype=float)
        known = numbers[~np.isnan(numbers)]
        if np.all((known == 0) | (known == 1)):
            pgm = np.where(np.isnan(numbers), 0.0, numbers)
        else:
            log.warning("%s: pgm column %r should be 0/1; pgm ignored", path, column.name)
    return (None if sex is None else sex.astype(np.int8)), (None if pgm is None else pgm.astype(np.int8))


@dataclass
class TextTable:
    """A phenotype table read as strings: ``cells (n, k)`` of the non-ID columns ``names``."""

    path: object
    ids: np.ndarray
    names: np.ndarray
    cells: np.ndarray
    lines: List[int]
    columns: List[int]   # 1-based file column of each name
    header_line: int

    def where(self, i: int, j: int) -> dict:
        from qtlhpc.io.tables import column_label

        return dict(file=self.path, line=self.lines[i], column=column_label(self.names[j], self.columns[j]))


def read_text_table(path, id_column: Optional[str] = None, sep: Optional[str] = ",",
                    id_names: Sequence[str] = ("id",)) -> TextTable:
    """A phenotype table (header, one row per individual, an ID column) kept as strings, checked as
    :func:`qtlhpc.io.tables.read_matrix_table` checks its tables (names, rectangular, unique IDs)."""
    from qtlhpc.io.tables import (check_file, check_not_blank, check_rectangular, check_unique, column_label,
                                  find_column, read_rows, string_block)

    path = check_file(path)
    rows = read_rows(path, sep)
    header = rows.fields[0]
    check_not_blank(header[1:], "column name", lambda k: dict(file=path, line=rows.lines[0], column=k + 2))
    check_rectangular(rows, len(header))
    id_index = find_column(header, id_column, path, rows.lines[0], default=0, fallback_names=id_names)
    other = [j for j in range(len(header)) if j != id_index]
    names = np.array([header[j] for j in other], dtype=str)
    check_unique(names, "column name",
                 lambda k: dict(file=path, line=rows.lines[0], column=column_label(names[k], other[k] + 1)))
    ids = np.array([row[id_index] for row in rows.fields[1:]], dtype=str)
    id_where = lambda k: dict(file=path, line=rows.lines[1 + k],  # noqa: E731
                              column=column_label(header[id_index], id_index + 1))
    check_not_blank(ids, "individual ID", id_where)
    check_unique(ids, "individual ID", id_where)
    block = string_block(rows, 1, 0)[:, other] if len(rows) > 1 else np.empty((0, len(other)), dtype=str)
    return TextTable(path, ids, names, block, rows.lines[1:], [j + 1 for j in other], rows.lines[0])
