"""Text tables: reading delimited files with line numbers, numeric parsing, ID alignment, map checks.

Everything that reads a text input goes through :func:`read_rows`, which keeps the 1-based line
number of every row so that a bad cell found later (after a vectorised check) can be reported as
``file, line L, column C: ...``.  The helpers here raise :class:`qtlhpc.errors.InputError` for user
mistakes; internal invariants use ``assert``.

Conventions shared by all readers:

* blank lines are skipped; a UTF-8 byte-order mark is ignored; fields are stripped of spaces;
* a cell is missing when it is empty or equals one of the ``missing`` strings (default ``-``, ``NA``);
* IDs are compared as exact strings.
"""

from __future__ import annotations

import csv
import difflib
import io
import itertools
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, List, Optional, Sequence, Tuple

import numpy as np

from qtlhpc.errors import InputError

log = logging.getLogger("qtlhpc.io")

DEFAULT_MISSING = ("-", "NA")
#: ID alignment policies, see :func:`align_ids`
ID_MISMATCH_POLICIES = ("intersect", "error")
_SHOW = 5  # how many offending items an error message lists


def show_few(items: Sequence, n: int = _SHOW) -> str:
    """``'a', 'b', 'c' and 7 more`` for messages."""
    items = [str(x) for x in items]
    text = ", ".join(repr(x) for x in items[:n])
    return text + (f" and {len(items) - n} more" if len(items) > n else "")


def column_label(name: str, number: int) -> str:
    """How a column is named in messages: ``3 ('D1M1')`` (number is 1-based)."""
    return f"{number} ({name!r})" if name != "" else str(number)


@dataclass
class Rows:
    """The non-blank rows of a delimited file: ``fields[k]`` was on line ``lines[k]`` (1-based)."""

    path: Path
    fields: List[List[str]]
    lines: List[int]

    def __len__(self) -> int:
        return len(self.fields)


def check_file(path) -> Path:
    """Raise a clear :class:`InputError` if ``path`` does not exist or is not a file."""
    path = Path(path)
    if not path.exists():
        raise InputError("file not found", file=path,
                         hint="check the path; relative paths are resolved against the config file's folder")
    if not path.is_file():
        raise InputError("is not a file (a folder?)", file=path, hint="give the path of a file")
    return path


def _read_text(path: Path) -> str:
    try:
        return check_file(path).read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"is not UTF-8 text (byte {err.start}: {err.object[err.start:err.start + 4]!r})",
                         file=path, hint="save it as UTF-8 text; binary files are not read here") from None


def read_rows(path, sep: Optional[str] = ",") -> Rows:
    """Read a delimited text file into stripped fields, keeping line numbers.

    ``sep=None`` splits on any run of whitespace (PEPIS matrices).  Double-quoted fields are
    understood (the ``csv`` module is used when the file contains a quote); otherwise the faster
    ``str.split`` is used.  Raises InputError if the file is missing or has no non-blank line.
    """
    path = Path(path)
    text = _read_text(path)
    fields: List[List[str]] = []
    lines: List[int] = []
    if sep is not None and '"' in text:
        reader = csv.reader(io.StringIO(text), delimiter=sep)
        line_before = 0
        for row in reader:
            start = line_before + 1
            line_before = reader.line_num
            row = [f.strip() for f in row]
            if not any(row) and len(row) <= 1:
                continue
            fields.append(row)
            lines.append(start)
    else:
        for number, line in enumerate(text.splitlines(), start=1):
            if not line.strip():
                continue
            if sep is None:
                row = line.split()
            else:
                row = line.split(sep)
                if " " in line or ("\t" in line and sep != "\t"):
                    row = [f.strip() for f in row]
            fields.append(row)
            lines.append(number)
    if not fields:
        raise InputError("the file is empty (no non-blank line)", file=path,
                         hint="check that the right file was given and that it was written completely")
    if sep != ";" and len(fields[0]) == 1 and ";" in fields[0][0]:
        raise InputError("the header has one column only and contains ';': the file seems to be separated by ';'",
                         file=path, line=lines[0], hint="set input.sep = ';' in the config, or save the file with "
                                                        "commas or tabs")
    return Rows(path, fields, lines)


def check_rectangular(rows: Rows, n_fields: int, first: int = 0, what: str = "the header on line") -> None:
    """Every row from ``first`` on must have ``n_fields`` fields (ragged rows are an error).

    A row that is one field longer only because of a trailing separator is accepted and trimmed.
    """
    for k in range(first, len(rows)):
        row = rows.fields[k]
        if len(row) == n_fields + 1 and row[-1] == "":
            row.pop()
        if len(row) != n_fields:
            raise InputError(
                f"has {len(row)} fields, expected {n_fields} as in {what} {rows.lines[0]}",
                file=rows.path, line=rows.lines[k],
                hint="every row needs one value per column; check for a missing or extra separator",
            )


def string_block(rows: Rows, row_start: int, col_start: int, col_stop: Optional[int] = None) -> np.ndarray:
    """The rectangular block ``fields[row_start:, col_start:col_stop]`` as a numpy string array."""
    block = [row[col_start:col_stop] for row in rows.fields[row_start:]]
    if not block:
        width = (col_stop if col_stop is not None else len(rows.fields[0])) - col_start
        return np.empty((0, max(width, 0)), dtype="U1")
    return np.array(block, dtype=str)


def missing_mask(block: np.ndarray, missing: Sequence[str]) -> np.ndarray:
    """True where a cell is empty or one of the missing strings."""
    mask = block == ""
    for token in missing:
        mask |= block == token
    return mask


def parse_numbers(
    block: np.ndarray,
    missing: Sequence[str],
    where: Callable[[int, int], dict],
    what: str,
    allow_missing: bool = True,
    allow_infinite: Optional[bool] = None,
) -> np.ndarray:
    """Convert a string block to float (missing -> NaN), vectorised.

    On failure, the first offending cell (row-major) is located with ``where(i, j)`` (which returns
    ``file``/``line``/``column`` keyword arguments for :class:`InputError`) and reported with its
    value; ``what`` says what was expected there, e.g. ``"a numeric phenotype"``.
    ``allow_infinite=None`` refuses ``Inf``/``-Inf`` where ``what`` names a phenotype or covariate
    (an infinite trait value would otherwise turn into a missing one downstream) and accepts it elsewhere.
    """
    mask = missing_mask(block, missing)
    values = np.full(block.shape, np.nan)
    present = ~mask
    try:
        values[present] = block[present].astype(float)
    except ValueError:
        for i, j in zip(*np.nonzero(present)):
            try:
                float(block[i, j])
            except ValueError:
                n_bad = _count_non_numeric(block[present])
                raise InputError(
                    f"{block[i, j]!r} is not a number; expected {what}"
                    + (f" ({n_bad} such cells in all)" if n_bad > 1 else ""),
                    **where(int(i), int(j)),
                    hint="write numbers with a '.' decimal point; missing values as "
                         + " or ".join(repr(m) for m in missing) + " or an empty cell",
                ) from None
        raise AssertionError("astype(float) failed but no cell failed float()")
    if allow_infinite is None:
        allow_infinite = "phenotype" not in what and "covariate" not in what
    if not allow_infinite:
        _refuse_infinite(block, values, where, what)
    if not allow_missing and mask.any():
        i, j = (int(v[0]) for v in np.nonzero(mask))
        raise InputError(f"{block[i, j]!r} is missing; expected {what}", **where(i, j),
                         hint="every value here is required")
    return values


def _refuse_infinite(block: np.ndarray, values: np.ndarray, where: Callable[[int, int], dict], what: str) -> None:
    infinite = np.isinf(values)
    if infinite.any():
        i, j = (int(v[0]) for v in np.nonzero(infinite))
        n_bad = int(infinite.sum())
        noun = "covariate" if "covariate" in what else "phenotype"
        raise InputError(f"{block[i, j]!r} is infinite: Inf is not a valid {noun} value; expected {what}, finite"
                         + (f" ({n_bad} infinite cells in all)" if n_bad > 1 else ""), **where(i, j),
                         hint="write a missing value (empty or NA) instead, or fix the transform that gave Inf "
                              "(a log of zero?)")


def _count_non_numeric(cells: np.ndarray) -> int:
    bad = 0
    for cell in cells:
        try:
            float(cell)
        except ValueError:
            bad += 1
    return bad


def map_labels(
    block: np.ndarray,
    labels: Sequence[str],
    missing: Sequence[str],
    where: Callable[[int, int], dict],
) -> np.ndarray:
    """Genotype labels to int8 codes: ``labels[k]`` -> ``k + 1``, missing -> 0 (vectorised).

    An unknown label is reported at its line and column with the list of allowed labels.
    """
    codes = np.zeros(block.shape, dtype=np.int8)
    known = missing_mask(block, missing)
    for code, label in enumerate(labels, start=1):
        hit = block == label
        codes[hit] = code
        known |= hit
    if not known.all():
        i, j = (int(v[0]) for v in np.nonzero(~known))
        n_bad = int((~known).sum())
        unknown_values = np.unique(block[~known])
        raise InputError(
            f"unknown genotype {block[i, j]!r}; allowed: {', '.join(repr(x) for x in labels)}"
            f" and missing {', '.join(repr(x) for x in missing)} or empty"
            + (f" ({n_bad} unknown cells in all, values {show_few(unknown_values)})" if n_bad > 1 else ""),
            **where(i, j),
            hint="set genotype_labels (in code order) and missing in the [input] section to match the file",
        )
    return codes


def check_unique(names: Sequence[str], what: str, where: Callable[[int], dict]) -> None:
    """Raise at the second occurrence of a duplicated name, citing the first one too."""
    names = np.asarray(names, dtype=str)
    if len(np.unique(names)) == len(names):
        return
    first_seen = {}
    for k, name in enumerate(names):
        if name in first_seen:
            before = where(first_seen[name])
            before_text = ", ".join(f"{key} {value}" for key, value in before.items() if key != "file")
            n_dup = len(names) - len(np.unique(names))
            raise InputError(
                f"duplicated {what} {name!r} (first at {before_text})"
                + (f"; {n_dup} duplicates in all" if n_dup > 1 else ""),
                **where(k), hint=f"every {what} must be unique; rename or remove the duplicates",
            )
        first_seen[name] = k


def check_not_blank(names: Sequence[str], what: str, where: Callable[[int], dict]) -> None:
    for k, name in enumerate(names):
        if str(name) == "":
            raise InputError(f"empty {what}", **where(k), hint=f"every {what} needs a name")


def align_ids(
    reference_ids: np.ndarray,
    other_ids: np.ndarray,
    reference_file,
    other_file,
    policy: str = "intersect",
) -> Tuple[np.ndarray, np.ndarray]:
    """Match ``other_ids`` to ``reference_ids`` by ID (never by position).

    Returns ``(keep_reference, take_other)``: integer indices such that
    ``reference_ids[keep_reference] == other_ids[take_other]``, in reference order.

    Policy ``"intersect"`` (default): IDs present in only one file are dropped with a logged warning
    saying how many and showing a few; no overlap at all is an error.  ``"error"``: any ID present in
    only one file is an error.
    """
    assert policy in ID_MISMATCH_POLICIES, policy
    position = {name: k for k, name in enumerate(other_ids)}
    keep = np.array([k for k, name in enumerate(reference_ids) if name in position], dtype=np.intp)
    reference_set = set(reference_ids.tolist())
    only_reference = [name for name in reference_ids if name not in position]
    only_other = [name for name in other_ids if name not in reference_set]
    if len(keep) == 0:
        raise InputError(
            f"no individual ID in common with {reference_file} ({len(reference_ids)} IDs there, e.g. "
            f"{show_few(reference_ids, 3)}; {len(other_ids)} here, e.g. {show_few(other_ids, 3)})",
            file=other_file, hint="individuals are matched by ID, never by position; check the id columns",
        )
    if only_reference or only_other:
        text = []
        if only_other:
            text.append(f"{len(only_other)} IDs in {other_file} are not in {reference_file}: {show_few(only_other)}")
        if only_reference:
            text.append(f"{len(only_reference)} IDs in {reference_file} are not in {other_file}: "
                        f"{show_few(only_reference)}")
        message = "; ".join(text)
        if policy == "error":
            raise InputError(message, file=other_file,
                             hint="make the files list the same individuals, or set id_mismatch = \"intersect\"")
        log.warning("%s; keeping the %d individuals in both", message, len(keep))
    take = np.array([position[name] for name in reference_ids[keep]], dtype=np.intp)
    return keep, take


def suggest(name: str, valid: Sequence[str]) -> str:
    """``"; did you mean 'x'?"`` or an empty string."""
    close = difflib.get_close_matches(str(name), [str(v) for v in valid], n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_map(
    markers: np.ndarray,
    chromosomes: np.ndarray,
    positions: np.ndarray,
    where: Callable[[int, str], dict],
) -> None:
    """Validate a genetic map given in genome order.

    Checks: marker names unique and non-empty, chromosome names non-empty, each chromosome's markers
    contiguous (one run), positions finite and non-decreasing within a chromosome (equal positions are
    allowed).  ``where(k, field)`` gives the location of marker ``k``'s ``field`` ("name",
    "chromosome" or "position") for messages.
    """
    check_not_blank(markers, "marker name", lambda k: where(k, "name"))
    check_unique(markers, "marker name", lambda k: where(k, "name"))
    for k, chromosome in enumerate(chromosomes):
        if chromosome == "":
            raise InputError(f"marker {markers[k]!r} has an empty chromosome", **where(k, "chromosome"),
                             hint="give every marker a chromosome name")
    bad = np.flatnonzero(~np.isfinite(positions))
    if len(bad):
        k = int(bad[0])
        raise InputError(f"marker {markers[k]!r} has position {positions[k]!r}; expected a finite number (cM)",
                         **where(k, "position"), hint="every marker needs a map position")
    if len(markers) == 0:
        return
    changes = np.flatnonzero(chromosomes[1:] != chromosomes[:-1]) + 1
    run_starts = np.concatenate([[0], changes])
    run_names = chromosomes[run_starts]
    seen = {}
    for start, name in zip(run_starts, run_names):
        if name in seen:
            first = where(seen[name], "chromosome")
            first_text = ", ".join(f"{key} {value}" for key, value in first.items() if key != "file")
            raise InputError(
                f"chromosome {name!r} appears again at marker {markers[start]!r} after other chromosomes "
                f"(its first run starts at {first_text})",
                **where(int(start), "chromosome"), hint="sort markers so that each chromosome's markers are together, in map order",
            )
        seen[name] = int(start)
    same_chromosome = chromosomes[1:] == chromosomes[:-1]
    decreasing = np.flatnonzero(same_chromosome & (positions[1:] < positions[:-1])) + 1
    if len(decreasing):
        k = int(decreasing[0])
        raise InputError(
            f"position {positions[k]:g} of marker {markers[k]!r} is less than {positions[k - 1]:g} of the "
            f"previous marker {markers[k - 1]!r} on chromosome {chromosomes[k]!r}",
            **where(k, "position"), hint="markers must be in map order (non-decreasing positions within a chromosome)",
        )


def uninformative(genotypes: np.ndarray) -> Tuple[np.ndarray, np.ndarray]:
    """Boolean masks ``(all_missing_markers (n_markers,), all_missing_individuals (n_individuals,))``."""
    if genotypes.dtype.kind == "f":
        missing = np.isnan(genotypes)
    else:
        missing = genotypes == 0
    return missing.all(axis=0), missing.all(axis=1)


def check_informative(
    genotypes: np.ndarray,
    markers: np.ndarray,
    individuals: np.ndarray,
    path,
    marker_where: Callable[[int], dict],
    individual_where: Callable[[int], dict],
    drop: bool = False,
) -> Tuple[np.ndarray, np.ndarray]:
    """Markers and individuals with no observed genotype: an error, or dropped with a warning.

    Returns ``(keep_markers, keep_individuals)`` boolean masks (all True unless ``drop``).
    """
    empty_markers, empty_individuals = uninformative(genotypes)
    if not drop:
        if empty_markers.any():
            k = int(np.flatnonzero(empty_markers)[0])
            raise InputError(
                f"marker {markers[k]!r} has no observed genotype"
                + (f" ({int(empty_markers.sum())} such markers: {show_few(markers[empty_markers])})"
                   if empty_markers.sum() > 1 else ""),
                **marker_where(k), hint="remove it, or set drop_uninformative = true",
            )
        if empty_individuals.any():
            k = int(np.flatnonzero(empty_individuals)[0])
            raise InputError(
                f"individual {individuals[k]!r} has no observed genotype"
                + (f" ({int(empty_individuals.sum())} such individuals: "
                   f"{show_few(individuals[empty_individuals])})" if empty_individuals.sum() > 1 else ""),
                **individual_where(k), hint="remove it, or set drop_uninformative = true",
            )
    else:
        if empty_markers.any():
            log.warning("%s: dropping %d markers with no observed genotype: %s", path,
                        int(empty_markers.sum()), show_few(markers[empty_markers]))
        if empty_individuals.any():
            log.warning("%s: dropping %d individuals with no observed genotype: %s", path,
                        int(empty_individuals.sum()), show_few(individuals[empty_individuals]))
    return ~empty_markers, ~empty_individuals


def guess_separator(path: Path, first_line: str) -> Optional[str]:
    """``,`` for ``.csv`` files; otherwise tab if the header has one, else comma if it has one, else
    any whitespace."""
    if path.suffix.lower() == ".csv":
        return ","
    if "\t" in first_line:
        return "\t"
    if "," in first_line:
        return ","
    return None


@dataclass
class MatrixTable:
    """A numeric table with an ID column: ``values (n_rows, n_columns)``, NaN missing."""

    path: Path
    ids: np.ndarray
    names: np.ndarray
    values: np.ndarray
    lines: List[int]


def read_matrix_table(
    path,
    missing: Sequence[str] = DEFAULT_MISSING,
    id_column: Optional[str] = None,
    sep: Optional[str] = "auto",
    what: str = "a number",
    ignore_columns: Sequence[str] = (),
    id_names: Sequence[str] = ("id",),
) -> MatrixTable:
    """Read a numeric table: a header row of names, one row per individual, an ID column.

    The ID column is ``id_column`` if given, else the first column named (any case) in ``id_names``,
    else the first column.  Columns named in ``ignore_columns`` are skipped.  ``sep="auto"`` guesses
    (see :func:`guess_separator`).  All other columns must be numeric (missing allowed).
    """
    path = check_file(path)
    if sep == "auto":
        with open(path, encoding="utf-8-sig") as handle:
            first = ""
            for first in handle:
                if first.strip():
                    break
        sep = guess_separator(path, first)
    rows = read_rows(path, sep)
    header = rows.fields[0]
    check_not_blank(header[1:], "column name", lambda k: dict(file=path, line=rows.lines[0], column=k + 2))
    check_rectangular(rows, len(header))
    id_index = find_column(header, id_column, path, rows.lines[0], default=0, fallback_names=id_names)
    other = [j for j in range(len(header)) if j != id_index and header[j] not in ignore_columns]
    names = np.array([header[j] for j in other], dtype=str)
    check_unique(names, "column name",
                 lambda k: dict(file=path, line=rows.lines[0], column=column_label(names[k], other[k] + 1)))
    ids = np.array([row[id_index] for row in rows.fields[1:]], dtype=str)
    id_where = lambda k: dict(file=path, line=rows.lines[1 + k],  # noqa: E731
                              column=column_label(header[id_index], id_index + 1))
    check_not_blank(ids, "individual ID", id_where)
    check_unique(ids, "individual ID", id_where)
    block = string_block(rows, 1, 0)[:, other] if len(rows) > 1 else np.empty((0, len(other)), dtype=str)
    values = parse_numbers(
        block, missing,
        lambda i, j: dict(file=path, line=rows.lines[1 + i], column=column_label(names[j], other[j] + 1)),
        what,
    )
    return MatrixTable(path, ids, names, values, rows.lines[1:])


def find_column(header: Sequence[str], name: Optional[str], path, line: int, default=None,
                fallback_names: Sequence[str] = ()) -> Optional[int]:
    """Index of column ``name`` in ``header`` (error with a suggestion if absent).

    With ``name=None``: the first column whose name (case-insensitively) is in ``fallback_names``,
    else ``default``.
    """
    header = list(header)
    if name is not None:
        if name not in header:
            raise InputError(f"no column named {name!r} (id_column); columns are {show_few(header, 8)}"
                             + suggest(name, header), file=path, line=line,
                             hint="set id_column to the name of the column holding individual IDs")
        return header.index(name)
    lowered = [h.lower() for h in header]
    for candidate in fallback_names:
        if candidate.lower() in lowered:
            return lowered.index(candidate.lower())
    return default


def split_covariates(names: np.ndarray, values: np.ndarray, covariates, path, line):
    """Split phenotype columns ``values (n, n_columns)`` into (phenotypes, names, covariates, names) by covariate name."""
    covariates = [] if covariates is None else [str(c) for c in covariates]
    for name in covariates:
        if name not in names:
            raise InputError(f"no phenotype column named {name!r} to use as a covariate; columns are "
                             f"{show_few(names, 8)}" + suggest(name, names), file=path, line=line,
                             hint="covariates lists phenotype column names")
    is_covariate = np.isin(names, covariates)
    order = [int(np.flatnonzero(names == c)[0]) for c in covariates]
    return values[:, ~is_covariate], names[~is_covariate], values[:, order], names[order]


def single_char_codes(rows: Rows, row_start: int, col_start: int, labels: Sequence[str], missing: Sequence[str],
                      sep: str) -> Optional[np.ndarray]:
    """Fast path of :func:`map_labels` when every genotype label is one ASCII character.

    Joins each row's genotype fields back into one text, turns empty cells and multi-character
    missing strings into a one-character placeholder (C-level ``str.replace``), and reads the bytes
    with numpy: ``(n, m)`` int8 codes, or ``None`` when the fast path does not apply (a cell of
    several characters that is no missing string, non-ASCII text, or an unknown label: the general
    path then locates the problem).
    """
    placeholder = "\0"
    if not sep or len(sep) != 1 or not sep.isascii() or sep == "\n" \
            or any(len(t) != 1 or not t.isascii() or t in (sep, placeholder, "\n") for t in labels):
        return None
    n_rows = len(rows) - row_start
    n_columns = len(rows.fields[0]) - col_start
    if n_rows == 0 or n_columns == 0:
        return None
    lookup = np.full(256, -1, dtype=np.int8)
    lookup[0] = 0
    for code, label in enumerate(labels, start=1):
        lookup[ord(label)] = code
    text = "\n".join(sep + sep.join(row[col_start:]) + sep for row in rows.fields[row_start:]) + "\n"
    for token in sorted({"", *missing}, key=len, reverse=True):
        if token in labels:
            continue
        if len(token) == 1 and token.isascii() and token not in (sep, "\n"):
            lookup[ord(token)] = 0
            continue
        for _ in range(2):  # adjacent cells share a separator: a second pass catches every other one
            text = text.replace(f"{sep}{token}{sep}", f"{sep}{placeholder}{sep}")
    if len(text) != n_rows * (2 * n_columns + 2) or not text.isascii():
        return None
    raw = np.frombuffer(text.encode("ascii"), dtype=np.uint8).reshape(n_rows, 2 * n_columns + 2)
    if not (np.all(raw[:, 0:-1:2] == ord(sep)) and np.all(raw[:, -1] == ord("\n"))):
        return None
    codes = lookup[raw[:, 1:-1:2]]
    if (codes < 0).any():
        return None
    return codes


def lookup_codes(rows: Rows, row_start: int, col_start: int, labels: Sequence[str],
                 missing: Sequence[str]) -> Optional[np.ndarray]:
    """General path of label mapping through a dict: ``(n, m)`` int8 codes, or ``None`` if some cell is
    not a known label (then :func:`map_labels` locates and reports it)."""
    table = {"": 0}
    table.update({token: 0 for token in missing})
    table.update({label: code for code, label in enumerate(labels, start=1)})
    n_rows = len(rows) - row_start
    n_columns = len(rows.fields[0]) - col_start
    cells = itertools.chain.from_iterable(row[col_start:] for row in rows.fields[row_start:])
    try:
        codes = np.fromiter(map(table.__getitem__, cells), dtype=np.int8, count=n_rows * n_columns)
    except KeyError:
        return None
    return codes.reshape(n_rows, n_columns)
