"""Readers of expression data into :class:`~qtlhpc.io.expression.ExpressionSet`, and of covariate files.

Three inputs, each error naming the file, line and column, what was found and what was expected:

* :func:`read_expression_matrix`: a TSV/CSV matrix (optionally gzipped) with genes in rows or in
  columns, plus a gene annotation table (:func:`read_gene_annotation`) that gives each gene's
  chromosome, start, end and strand.  ``orientation="auto"`` matches the first column and the header
  against the annotation's gene IDs (and ``sample_ids`` when given) and logs which it chose.
* :func:`read_expression_bed`: the phenotype BED of FastQTL, tensorQTL and QTLtools, bgzipped and
  tabix-indexed (plain or gzipped text is read too): the last ``#`` line is the header, then
  ``chr start end id`` (FastQTL, tensorQTL: 4 fixed columns) or ``chr start end pid gid strand``
  (QTLtools: 6), then one column per sample.  Read whole, or one region through the tabix index
  (``pysam``); without an index a region is cut from the whole read (a logged warning says so).
* :func:`read_covariates`: the FastQTL/QTLtools covariate file: a header ``id`` + sample IDs, then one
  row per covariate, optionally gzipped.

Coordinates: an annotation table is 1-based and closed (GTF) unless ``zero_based=True``; a BED row
``s e`` is 0-based half-open and becomes ``start = s + 1``, ``end = e``.  See
:mod:`qtlhpc.io.expression` for the TSS this implies and how it matches FastQTL, QTLtools and tensorQTL.

Categorical covariates: FastQTL and QTLtools accept a covariate row of labels and code a factor with
``F`` levels as ``F - 1`` indicator columns, the first level in sorted order being the reference; a
factor with one level is dropped with a warning.  :func:`read_covariates` does the same
(``categorical="dummy"``, the default, names the columns ``name=level``) or refuses labels
(``categorical="error"``).  A row mixing numbers and labels is always an error (FastQTL would silently
fold the numbers into the reference level).  Numbers are always quantitative: write batch labels as
text (``b1``, ``b2``) to have them dummy coded.  Missing covariate values stay NaN (in every indicator
column of a factor); :func:`qtlhpc.stats.transforms.regress_out` mean-imputes them, as FastQTL does.
"""

from __future__ import annotations

import csv
import gzip
import io
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

from qtlhpc.errors import BackendUnavailableError, InputError, did_you_mean
from qtlhpc.io.expression import STRANDS, ExpressionSet, sample_positions
from qtlhpc.io.tables import (
    DEFAULT_MISSING,
    Rows,
    check_file,
    check_not_blank,
    check_rectangular,
    check_unique,
    column_label,
    guess_separator,
    log,
    missing_mask,
    parse_numbers,
    show_few,
)

ORIENTATIONS = ("auto", "genes-in-rows", "samples-in-rows")
BED_LAYOUTS = ("auto", "fastqtl", "qtltools")
#: fixed columns before the samples in each BED layout (tensorQTL's is FastQTL's)
BED_FIXED_COLUMNS = {"fastqtl": ("chr", "start", "end", "id"),
                     "qtltools": ("chr", "start", "end", "pid", "gid", "strand")}
#: the annotation column of each role: the names tried (case-insensitively) when ``columns`` does not say
ANNOTATION_COLUMNS: Dict[str, Tuple[str, ...]] = {
    "gene_id": ("gene_id", "gene", "id", "pid", "phenotype_id", "geneid", "gene_name", "name"),
    "chromosome": ("chromosome", "chr", "#chr", "chrom", "#chrom", "seqname", "seqid", "contig"),
    "start": ("start", "tss", "gene_start", "start_position", "position", "pos"),
    "end": ("end", "gene_end", "end_position", "stop"),
    "strand": ("strand", "strd"),
}
_REQUIRED_ROLES = ("gene_id", "chromosome", "start")
_CATEGORICAL = ("dummy", "error")
_TABIX_INDEXES = (".tbi", ".csi")


# ---------------------------------------------------------------------------- text input
def _is_gzip(path: Path) -> bool:
    with open(path, "rb") as handle:
        return handle.read(2) == b"\x1f\x8b"


def _read_text(path) -> Tuple[Path, str]:
    """The whole text of a plain or gzip/bgzip file (UTF-8, BOM ignored)."""
    path = check_file(path)
    try:
        if _is_gzip(path):
            with gzip.open(path, "rb") as handle:
                data = handle.read()
        else:
            data = path.read_bytes()
    except (OSError, EOFError) as err:
        raise InputError(f"cannot be read as gzip or text ({err})", file=path,
                         hint="a .gz file must be complete; check that it was copied whole") from None
    try:
        return path, data.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise InputError(f"is not UTF-8 text (byte {err.start})", file=path,
                         hint="give a text file, plain or gzipped") from None


def _split(line: str, sep: Optional[str]) -> List[str]:
    if sep is None:
        return line.split()
    return [field.strip() for field in line.split(sep)]


def _table_rows(path, sep: Optional[str] = "auto") -> Rows:
    """Non-blank rows of a delimited, possibly gzipped, text file with their 1-based line numbers.

    ``sep="auto"``: comma for ``.csv``/``.csv.gz``, else tab if the first line has one, else comma if it
    has one, else any whitespace.  Double-quoted fields are understood.
    """
    path, text = _read_text(path)
    lines = text.splitlines()
    first = next((line for line in lines if line.strip()), "")
    if sep == "auto":
        sep = guess_separator(path.with_suffix("") if path.suffix.lower() == ".gz" else path, first)
    fields, numbers = [], []
    if sep is not None and '"' in text:
        reader = csv.reader(io.StringIO(text), delimiter=sep)
        before = 0
        for row in reader:
            start, before = before + 1, reader.line_num
            if any(field.strip() for field in row):
                fields.append([field.strip() for field in row])
                numbers.append(start)
    else:
        for number, line in enumerate(lines, start=1):
            if line.strip():
                fields.append(_split(line, sep))
                numbers.append(number)
    if not fields:
        raise InputError("the file is empty (no non-blank line)", file=path,
                         hint="check that the right file was given and that it was written completely")
    return Rows(path, fields, numbers)


def _parse_row(cells: Sequence[str], missing: Sequence[str], where, what: str) -> np.ndarray:
    """One row of numbers (missing -> NaN); a bad or infinite cell is reported through ``where(j)``."""
    try:
        values = np.array(cells, dtype=np.float64)
    except ValueError:
        values = parse_numbers(np.array([cells], dtype=str), missing, lambda i, j: where(j), what)[0]
    infinite = np.isinf(values)
    if infinite.any():
        j = int(np.flatnonzero(infinite)[0])
        raise InputError(f"{cells[j]!r} is infinite; expected {what}", **where(j),
                         hint="a log of zero? add a pseudo-count before taking logs, or write the value as NA")
    return values


def _parse_integer(text: str, where: dict, what: str) -> int:
    try:
        return int(text)
    except ValueError:
        pass
    try:
        value = float(text)
    except ValueError:
        value = float("nan")
    if not np.isfinite(value) or value != round(value):
        raise InputError(f"{text!r} is not a whole number; expected {what}", **where,
                         hint="positions are whole base pairs")
    return int(value)


# ---------------------------------------------------------------------------- gene annotation
@dataclass(frozen=True, eq=False)
class GeneAnnotation:
    """Gene positions: ``gene_ids``, ``chromosomes``, ``starts``, ``ends`` (int64, 1-based closed),
    ``strands`` (``+ - .``), all ``(n_genes,)``; ``lines`` the line each gene was read from."""

    path: Path
    gene_ids: np.ndarray
    chromosomes: np.ndarray
    starts: np.ndarray
    ends: np.ndarray
    strands: np.ndarray
    lines: np.ndarray

    def rows_of(self, gene_ids: np.ndarray, where) -> np.ndarray:
        """Annotation rows of ``gene_ids``; a gene missing here is an error at ``where(k)`` (its place in
        the expression file) naming this annotation and how many are missing."""
        position = {name: k for k, name in enumerate(self.gene_ids.tolist())}
        missing = [k for k, name in enumerate(gene_ids.tolist()) if name not in position]
        if missing:
            names = gene_ids[missing]
            raise InputError(
                f"gene {names[0]!r} is missing from the gene annotation {self.path} ({len(missing)} of "
                f"{len(gene_ids)} genes are missing there: {show_few(names)})" + did_you_mean(names[0], self.gene_ids),
                **where(missing[0]),
                hint="give every gene a line in the annotation (gene id, chromosome, start, end, strand); "
                     "gene IDs must match exactly, version suffixes such as '.1' included")
        return np.array([position[name] for name in gene_ids.tolist()], dtype=np.intp)


def _annotation_roles(header: List[str], columns: Optional[Mapping[str, str]], path, line) -> Dict[str, int]:
    """Column index of each role found in ``header``."""
    columns = dict(columns or {})
    for role in columns:
        if role not in ANNOTATION_COLUMNS:
            raise InputError(f"unknown annotation role {role!r} in columns" + did_you_mean(role, ANNOTATION_COLUMNS),
                             hint=f"roles are {', '.join(ANNOTATION_COLUMNS)}")
    lowered = [name.lower() for name in header]
    found = {}
    for role, candidates in ANNOTATION_COLUMNS.items():
        if role in columns:
            if columns[role] not in header:
                raise InputError(f"no column named {columns[role]!r} (the {role} column); columns are "
                                 f"{show_few(header, 8)}" + did_you_mean(columns[role], header),
                                 file=path, line=line, hint=f"set columns[{role!r}] to a column name of the header")
            found[role] = header.index(columns[role])
            continue
        for candidate in candidates:
            if candidate in lowered and lowered.index(candidate) not in found.values():
                found[role] = lowered.index(candidate)
                break
    for role in _REQUIRED_ROLES:
        if role not in found:
            raise InputError(f"no {role} column: none of the names {', '.join(ANNOTATION_COLUMNS[role])} is in the "
                             f"header ({show_few(header, 8)})", file=path, line=line,
                             hint=f"name the column, or pass columns={{{role!r}: 'its name'}}")
    return found


def read_gene_annotation(path, columns: Optional[Mapping[str, str]] = None, sep: Optional[str] = "auto",
                         zero_based: bool = False) -> GeneAnnotation:
    """Read a gene annotation table: a header, then one row per gene.

    Columns are found by name (case-insensitive; see :data:`ANNOTATION_COLUMNS`) unless ``columns`` maps a
    role (``gene_id``, ``chromosome``, ``start``, ``end``, ``strand``) to a header name.  ``end`` defaults to
    ``start`` (a TSS table) and ``strand`` to ``.``.  Positions are 1-based closed, or 0-based half-open as in
    BED with ``zero_based=True`` (1 is then added to starts).  Other columns are ignored.
    """
    rows = _table_rows(path, sep)
    header = rows.fields[0]
    header_line = rows.lines[0]
    check_rectangular(rows, len(header))
    roles = _annotation_roles(header, columns, rows.path, header_line)
    body = rows.fields[1:]
    lines = np.array(rows.lines[1:], dtype=np.int64)

    def where(k: int, role: str) -> dict:
        return dict(file=rows.path, line=int(lines[k]), column=column_label(header[roles[role]], roles[role] + 1))

    def text(role: str, default: str) -> np.ndarray:
        if role not in roles:
            return np.full(len(body), default, dtype=object).astype(str)
        return np.array([row[roles[role]] for row in body], dtype=str).reshape(-1)

    gene_ids, chromosomes, strands = text("gene_id", ""), text("chromosome", ""), text("strand", ".")
    check_not_blank(gene_ids, "gene ID", lambda k: where(k, "gene_id"))
    check_unique(gene_ids, "gene ID", lambda k: where(k, "gene_id"))
    check_not_blank(chromosomes, "chromosome", lambda k: where(k, "chromosome"))
    starts = np.array([_parse_integer(row[roles["start"]], where(k, "start"), "a start position")
                       for k, row in enumerate(body)], dtype=np.int64) + (1 if zero_based else 0)
    ends = starts if "end" not in roles else np.array(
        [_parse_integer(row[roles["end"]], where(k, "end"), "an end position") for k, row in enumerate(body)],
        dtype=np.int64)
    for k in range(len(body)):
        if strands[k] not in STRANDS:
            raise InputError(f"strand {strands[k]!r} of gene {gene_ids[k]!r}; expected one of "
                             f"{', '.join(repr(s) for s in STRANDS)}", **where(k, "strand"),
                             hint="'.' means unknown")
        if ends[k] < starts[k] or starts[k] < 1:
            raise InputError(f"gene {gene_ids[k]!r} spans {starts[k]}..{ends[k]}; expected 1 <= start <= end "
                             f"(1-based{', after adding 1 to the 0-based start' if zero_based else ''})",
                             **where(k, "end" if "end" in roles else "start"),
                             hint="set zero_based=True for BED-style 0-based starts")
    return GeneAnnotation(rows.path, gene_ids, chromosomes, starts, ends, strands, lines)


# ---------------------------------------------------------------------------- expression matrix
def _choose_orientation(row_ids: np.ndarray, column_names: np.ndarray, gene_ids: np.ndarray,
                        sample_ids: Optional[np.ndarray], path) -> str:
    """``genes-in-rows`` or ``samples-in-rows`` from how many row IDs / column names are known genes or
    samples; logs the evidence, and refuses to guess when it is absent or even."""
    genes = set(gene_ids.tolist())
    samples = set() if sample_ids is None else set(sample_ids.tolist())
    rows_genes = sum(name in genes for name in row_ids.tolist())
    columns_genes = sum(name in genes for name in column_names.tolist())
    rows_samples = sum(name in samples for name in row_ids.tolist())
    columns_samples = sum(name in samples for name in column_names.tolist())
    evidence_rows = rows_genes + columns_samples
    evidence_columns = columns_genes + rows_samples
    summary = (f"{rows_genes} of {len(row_ids)} row IDs and {columns_genes} of {len(column_names)} column names "
               f"are annotated genes"
               + ("" if sample_ids is None else
                  f"; {columns_samples} column names and {rows_samples} row IDs are given sample IDs"))
    if evidence_rows == evidence_columns:
        raise InputError(
            f"cannot tell whether genes are in rows or in columns: {summary}", file=path,
            hint="set orientation='genes-in-rows' or 'samples-in-rows', or check that the annotation and sample "
                 "IDs match the file's IDs exactly")
    chosen = "genes-in-rows" if evidence_rows > evidence_columns else "samples-in-rows"
    log.info("%s: orientation 'auto' chose %s (%s)", path, chosen, summary)
    return chosen


def read_expression_matrix(path, annotation, orientation: str = "auto", sample_ids: Optional[Sequence[str]] = None,
                           sep: Optional[str] = "auto", missing: Sequence[str] = DEFAULT_MISSING,
                           annotation_columns: Optional[Mapping[str, str]] = None) -> ExpressionSet:
    """An expression matrix (TSV/CSV, optionally gzipped) with its gene annotation, as an ExpressionSet.

    The file has a header row and an ID column (its first column).  ``orientation``: ``genes-in-rows``
    (header: samples), ``samples-in-rows`` (header: genes), or ``auto``: the orientation whose row IDs and
    column names match more of the annotation's gene IDs and of ``sample_ids`` (logged at INFO; an even
    match is an error).  ``annotation`` is a :class:`GeneAnnotation` or a path for
    :func:`read_gene_annotation` (``annotation_columns`` passed on).  Genes keep the file's order; every
    gene must be annotated (extra annotation rows are ignored).  Samples keep the file's order: use
    :meth:`ExpressionSet.align` to order them as the genotypes.
    """
    if orientation not in ORIENTATIONS:
        raise InputError(f"unknown orientation {orientation!r}" + did_you_mean(orientation, ORIENTATIONS),
                         hint=f"choose one of {', '.join(ORIENTATIONS)}")
    if not isinstance(annotation, GeneAnnotation):
        annotation = read_gene_annotation(annotation, annotation_columns)
    rows = _table_rows(path, sep)
    header = rows.fields[0]
    if len(rows) > 1 and len(header) == len(rows.fields[1]) - 1 and rows.fields[1][-1] != "":
        header = [""] + header  # R's write.table: no name above the ID column
        rows.fields[0] = header
    check_rectangular(rows, len(header))
    if len(rows) < 2 or len(header) < 2:
        raise InputError(f"has {len(rows) - 1} data rows and {len(header) - 1} value columns; expected at least one "
                         "of each", file=rows.path, hint="a header row, then one row per gene or per sample")
    row_ids = np.array([row[0] for row in rows.fields[1:]], dtype=str)
    column_names = np.array(header[1:], dtype=str)
    if orientation == "auto":
        wanted = None if sample_ids is None else np.asarray(sample_ids, dtype=str).reshape(-1)
        orientation = _choose_orientation(row_ids, column_names, annotation.gene_ids, wanted, rows.path)
    row_what, column_what = ("gene ID", "sample ID") if orientation == "genes-in-rows" else ("sample ID", "gene ID")
    row_where = lambda k: dict(file=rows.path, line=rows.lines[k + 1], column=column_label(header[0], 1))  # noqa: E731
    column_where = lambda k: dict(file=rows.path, line=rows.lines[0],  # noqa: E731
                                  column=column_label(column_names[k], k + 2))
    check_not_blank(row_ids, row_what, row_where)
    check_unique(row_ids, row_what, row_where)
    check_not_blank(column_names, column_what, column_where)
    check_unique(column_names, column_what, column_where)
    what = "a numeric expression value"
    values = np.empty((len(row_ids), len(column_names)))
    for k, row in enumerate(rows.fields[1:]):
        values[k] = _parse_row(row[1:], missing, lambda j, k=k: dict(
            file=rows.path, line=rows.lines[k + 1], column=column_label(column_names[j], j + 2)), what)
    if orientation == "genes-in-rows":
        gene_ids, samples, gene_where = row_ids, column_names, row_where
    else:
        gene_ids, samples, gene_where, values = column_names, row_ids, column_where, values.T
    take = annotation.rows_of(gene_ids, gene_where)
    return ExpressionSet(values, gene_ids, annotation.chromosomes[take], annotation.starts[take],
                         annotation.ends[take], annotation.strands[take], samples, source=str(rows.path))


# ---------------------------------------------------------------------------- region strings
def parse_region(region: str) -> Tuple[str, int, Optional[int]]:
    """``(chromosome, start, end)`` of a tabix-style region ``chr``, ``chr:start-end`` or ``chr:start-``
    (1-based, closed; thousands separators allowed); ``end`` is None for "to the end"."""
    match = re.fullmatch(r"\s*([^:\s]+)(?::([\d,]+)?-?([\d,]+)?)?\s*", str(region))
    if not match:
        raise InputError(f"region {region!r} is not 'chr', 'chr:start-end' or 'chr:start-'",
                         hint="e.g. '22:17000000-18000000' (1-based, both ends included)")
    chromosome, start, end = match.groups()
    start_value = int(start.replace(",", "")) if start else 1
    end_value = int(end.replace(",", "")) if end else None
    if ":" in str(region) and start and not end and not str(region).rstrip().endswith("-"):
        end_value = start_value  # 'chr:pos' is one base
    if start_value < 1 or (end_value is not None and end_value < start_value):
        raise InputError(f"region {region!r} has start {start_value} and end {end_value}; expected 1 <= start <= end",
                         hint="regions are 1-based with both ends included")
    return chromosome, start_value, end_value


def _overlaps(starts: np.ndarray, ends: np.ndarray, start: int, end: Optional[int]) -> np.ndarray:
    """1-based closed intervals overlapping ``start..end`` (tabix's rule; an empty BED interval counts as
    its one base)."""
    hits = np.maximum(ends, starts) >= start
    if end is not None:
        hits &= starts <= end
    return hits


def tabix_index_path(path) -> Optional[Path]:
    """The ``.tbi`` or ``.csi`` index next to ``path``, or None."""
    for suffix in _TABIX_INDEXES:
        candidate = Path(f"{path}{suffix}")
        if candidate.exists():
            return candidate
    return None


# ---------------------------------------------------------------------------- phenotype BED
def _bed_layout(header: List[str], first: Optional[List[str]], layout: str, path, line: int) -> str:
    """``fastqtl`` (4 fixed columns) or ``qtltools`` (6) from the header names and the first row."""
    if layout not in BED_LAYOUTS:
        raise InputError(f"unknown BED layout {layout!r}" + did_you_mean(layout, BED_LAYOUTS),
                         hint=f"choose one of {', '.join(BED_LAYOUTS)}")
    if layout != "auto":
        chosen = layout
    else:
        named_strand = len(header) > 6 and header[5].lower() in ANNOTATION_COLUMNS["strand"]
        strand_values = first is not None and len(first) > 6 and first[5] in ("+", "-")  # '.' may mean missing
        chosen = "qtltools" if named_strand or strand_values else "fastqtl"
        log.info("%s: BED layout %s (%d fixed columns: %s)", path, chosen, len(BED_FIXED_COLUMNS[chosen]),
                 ", ".join(header[:len(BED_FIXED_COLUMNS[chosen])]))
    n_fixed = len(BED_FIXED_COLUMNS[chosen])
    if len(header) <= n_fixed:
        raise InputError(f"the header has {len(header)} columns: no sample column after the {n_fixed} fixed ones "
                         f"({', '.join(BED_FIXED_COLUMNS[chosen])})", file=path, line=line,
                         hint="the last '#' line before the data names the samples: "
                              "#chr start end id sample1 sample2 ...")
    return chosen


@dataclass
class _BedColumns:
    """Fixed columns of the BED rows read so far."""

    gene_ids: List[str]
    chromosomes: List[str]
    starts: List[int]
    ends: List[int]
    strands: List[str]
    group_ids: List[str]
    lines: List[Optional[int]]


def _bed_header(path: Path, lines: List[str]) -> Tuple[int, List[str], int]:
    """``(index of the header line, its fields, index of the first data line)``: the header is the last
    line starting with '#' before the first data line (as tabix and FastQTL read it)."""
    header_index = None
    for index, line in enumerate(lines):
        if not line.strip():
            continue
        if line.startswith("#"):
            header_index = index
            continue
        break
    else:
        index = len(lines)
    if header_index is None:
        raise InputError("no header line: the first line must start with '#' and name the columns and samples",
                         file=path, line=1, hint="#chr start end id sample1 sample2 ... (tab separated)")
    return header_index, _bed_fields(lines[header_index]), index


def _bed_fields(line: str) -> List[str]:
    return line.rstrip("\r\n").split("\t") if "\t" in line else line.split()


def _bed_record(fields: List[str], header: List[str], n_fixed: int, where, missing, columns: _BedColumns,
                line: Optional[int]) -> np.ndarray:
    """Parse one BED row into ``columns`` and return its values ``(n_samples,)``."""
    if len(fields) != len(header):
        raise InputError(f"has {len(fields)} fields, expected {len(header)} as in the header", **where(None),
                         hint="every row needs the fixed columns and one value per sample; tabs separate fields")
    gene = fields[3]
    start = _parse_integer(fields[1], where(1), "a 0-based start position")
    end = _parse_integer(fields[2], where(2), "an end position")
    if start < 0 or end < start:
        raise InputError(f"phenotype {gene!r} has start {start} and end {end}; expected 0 <= start <= end "
                         "(BED: 0-based start, end excluded)", **where(2), hint="for a TSS at base p write p-1 and p")
    strand = fields[5] if n_fixed == 6 else "."
    if strand not in STRANDS:
        raise InputError(f"strand {strand!r} of phenotype {gene!r}; expected one of "
                         f"{', '.join(repr(s) for s in STRANDS)}", **where(5), hint="'.' means unknown")
    columns.gene_ids.append(gene)
    columns.chromosomes.append(fields[0])
    columns.starts.append(start + 1)
    columns.ends.append(end)
    columns.strands.append(strand)
    columns.group_ids.append(fields[4] if n_fixed == 6 else "")
    columns.lines.append(line)
    return _parse_row(fields[n_fixed:], missing, lambda j: where(n_fixed + j),
                      f"a numeric value for phenotype {gene!r}")


def _check_bed_sorted(columns: _BedColumns, path) -> None:
    """Chromosomes contiguous and starts non-decreasing within each (tabix needs this)."""
    seen = {}
    for k in range(len(columns.gene_ids)):
        chromosome = columns.chromosomes[k]
        if k and chromosome == columns.chromosomes[k - 1]:
            if columns.starts[k] < columns.starts[k - 1]:
                raise InputError(
                    f"the BED is not sorted: phenotype {columns.gene_ids[k]!r} starts at {columns.starts[k] - 1}, "
                    f"before {columns.gene_ids[k - 1]!r} at {columns.starts[k - 1] - 1} on the line above, on "
                    f"chromosome {chromosome!r}", file=path, line=columns.lines[k], column="2 ('start')",
                    hint="sort it: (head -1 f.bed; tail -n +2 f.bed | sort -k1,1V -k2,2n) | bgzip > f.bed.gz; "
                         "tabix -p bed f.bed.gz")
            continue
        if chromosome in seen:
            raise InputError(
                f"the BED is not sorted: chromosome {chromosome!r} appears again after other chromosomes (first at "
                f"line {seen[chromosome]})", file=path, line=columns.lines[k], column="1 ('chr')",
                hint="sort by chromosome, then start, and index with tabix -p bed")
        seen[chromosome] = columns.lines[k]


def _expression_from_bed(values: List[np.ndarray], columns: _BedColumns, header: List[str], n_fixed: int,
                         path, header_line: Optional[int]) -> ExpressionSet:
    samples = np.array(header[n_fixed:], dtype=str)
    sample_where = lambda k: dict(file=path, line=header_line,  # noqa: E731
                                  column=column_label(samples[k], n_fixed + k + 1))
    check_not_blank(samples, "sample ID", sample_where)
    check_unique(samples, "sample ID", sample_where)
    genes = np.array(columns.gene_ids, dtype=str)
    gene_where = lambda k: dict(file=path, line=columns.lines[k], column=column_label(header[3], 4))  # noqa: E731
    check_unique(genes, "phenotype ID", gene_where)
    matrix = np.vstack(values) if values else np.empty((0, len(samples)))
    groups = np.array(columns.group_ids, dtype=str) if n_fixed == 6 else None
    return ExpressionSet(matrix, genes, np.array(columns.chromosomes, dtype=str),
                         np.array(columns.starts, dtype=np.int64), np.array(columns.ends, dtype=np.int64),
                         np.array(columns.strands, dtype=str), samples, group_ids=groups, source=str(path))


def _read_bed_whole(path: Path, layout: str, missing) -> ExpressionSet:
    _, text = _read_text(path)
    lines = text.splitlines()
    header_index, header, first_data = _bed_header(path, lines)
    first = next((_bed_fields(line) for line in lines[first_data:] if line.strip()), None)
    layout = _bed_layout(header, first, layout, path, header_index + 1)
    n_fixed = len(BED_FIXED_COLUMNS[layout])
    columns = _BedColumns([], [], [], [], [], [], [])
    values = []
    for index in range(first_data, len(lines)):
        line = lines[index]
        if not line.strip() or line.startswith("#"):
            continue
        fields = _bed_fields(line)
        where = lambda j, n=index + 1: dict(file=path, line=n, column=None if j is None else  # noqa: E731
                                            column_label(header[j] if j < len(header) else "", j + 1))
        values.append(_bed_record(fields, header, n_fixed, where, missing, columns, index + 1))
    _check_bed_sorted(columns, path)
    return _expression_from_bed(values, columns, header, n_fixed, path, header_index + 1)


def _check_chromosome(chromosome: str, known: Iterable[str], path, region: str) -> None:
    known = list(known)
    if chromosome not in known:
        raise InputError(f"region {region!r}: no chromosome {chromosome!r} in the file"
                         + did_you_mean(chromosome, known), file=path,
                         hint=f"its chromosomes are {show_few(known, 8)}; names must match exactly "
                              "('22' is not 'chr22')")


def _read_bed_region(path: Path, index: Path, region: str, layout: str, missing) -> ExpressionSet:
    try:
        import pysam  # optional: only region reads of indexed files need it
    except ImportError as error:
        raise BackendUnavailableError(
            f"pysam is not importable ({error}): install python3-pysam (`make setup`) or `pip install pysam` to "
            f"read a region of the indexed {path}; or read it whole (region=None)") from error

    chromosome, start, end = parse_region(region)
    with pysam.TabixFile(str(path), index=str(index)) as tabix:
        header_lines = list(tabix.header)
        if not header_lines:
            raise InputError("no header line: the first line must start with '#' and name the columns and samples",
                             file=path, line=1, hint="#chr start end id sample1 sample2 ... (tab separated)")
        header = _bed_fields(header_lines[-1])
        header_line = len(header_lines)
        _check_chromosome(chromosome, tabix.contigs, path, region)
        records = list(tabix.fetch(chromosome, start - 1, end))
    first = _bed_fields(records[0]) if records else None
    layout = _bed_layout(header, first, layout, path, header_line)
    n_fixed = len(BED_FIXED_COLUMNS[layout])
    columns = _BedColumns([], [], [], [], [], [], [])
    values = []
    for number, record in enumerate(records, start=1):
        fields = _bed_fields(record)
        where = lambda j, n=number, gene=fields[3] if len(fields) > 3 else "?": dict(  # noqa: E731
            file=f"{path} (region {region}, record {n}: {gene!r})", line=None,
            column=None if j is None else column_label(header[j] if j < len(header) else "", j + 1))
        values.append(_bed_record(fields, header, n_fixed, where, missing, columns, None))
    return _expression_from_bed(values, columns, header, n_fixed, path, header_line)


def read_expression_bed(path, region: Optional[str] = None, layout: str = "auto",
                        missing: Sequence[str] = DEFAULT_MISSING) -> ExpressionSet:
    """A phenotype BED (FastQTL/tensorQTL 4 fixed columns, QTLtools 6) as an ExpressionSet.

    ``layout="auto"`` takes the QTLtools layout when the header's 6th name is ``strd``/``strand`` or the
    first row's 6th field is ``+`` or ``-``; the choice is logged.  ``region`` (``chr``,
    ``chr:start-end``, 1-based closed as tabix) keeps the phenotypes whose interval overlaps it, read
    through the tabix index when there is one (``pysam``).  A whole read checks the file is sorted
    (tabix needs it).  Starts become 1-based (``start + 1``); see :mod:`qtlhpc.io.expression` for the TSS.
    The QTLtools 5th column is kept as ``group_ids`` whatever it holds (QTLtools's ``gid``; its own example
    files put the gene length there).
    """
    path = check_file(path)
    if region is None:
        return _read_bed_whole(path, layout, missing)
    index = tabix_index_path(path)
    if index is not None and _is_gzip(path):
        return _read_bed_region(path, index, region, layout, missing)
    log.warning("%s has no tabix index (.tbi/.csi): reading it whole to cut region %s (bgzip it and run "
                "tabix -p bed to read regions directly)", path, region)
    whole = _read_bed_whole(path, layout, missing)
    chromosome, start, end = parse_region(region)
    _check_chromosome(chromosome, dict.fromkeys(whole.chromosomes.tolist()), path, region)
    hits = (whole.chromosomes == chromosome) & _overlaps(whole.starts, whole.ends, start, end)
    return whole.subset_genes(hits)


# ---------------------------------------------------------------------------- covariates
@dataclass(frozen=True, eq=False)
class Covariates:
    """Covariates by sample: ``values (n_covariates, n_samples)`` float64 (NaN missing), ``names
    (n_covariates,)`` (``name=level`` for an indicator of a categorical covariate), ``sample_ids
    (n_samples,)``."""

    names: np.ndarray
    values: np.ndarray
    sample_ids: np.ndarray
    source: str = ""

    @property
    def n_covariates(self) -> int:
        return self.values.shape[0]

    def align(self, sample_ids: Sequence[str]) -> "Covariates":
        """Samples reordered (and subset) to ``sample_ids``; an :class:`InputError` names missing ones."""
        wanted = np.asarray(sample_ids, dtype=str).reshape(-1)
        order = sample_positions(self.sample_ids, wanted, self.source or "the covariates")
        return Covariates(self.names, self.values[:, order], self.sample_ids[order], self.source)


def _covariate_row(name: str, cells: List[str], missing, categorical: str, where) -> Tuple[List[str], np.ndarray]:
    """Names and values ``(n_columns, n_samples)`` of one covariate row (dummy coded when it holds labels)."""
    block = np.array([cells], dtype=str)
    absent = missing_mask(block, missing)[0]
    numeric = np.zeros(len(cells), dtype=bool)
    for j, cell in enumerate(cells):
        if not absent[j]:
            try:
                float(cell)
                numeric[j] = True
            except ValueError:
                pass
    labels = ~absent & ~numeric
    if not labels.any() or categorical == "error":
        return [name], _parse_row(cells, missing, where, f"a numeric value of covariate {name!r}")[None, :]
    if numeric.any():
        j, k = int(np.flatnonzero(labels)[0]), int(np.flatnonzero(numeric)[0])
        raise InputError(f"covariate {name!r} mixes labels and numbers: {cells[j]!r} here, {cells[k]!r} in "
                         f"column {k + 2} ({int(labels.sum())} labels, {int(numeric.sum())} numbers)", **where(j),
                         hint="a covariate is either all numbers (quantitative) or all labels (categorical, "
                              "dummy coded); write batch numbers as labels such as b1, b2")
    levels = sorted(set(np.array(cells)[labels].tolist()))
    if len(levels) == 1:
        log.warning("%s: covariate %r has the single level %r: dropped (as FastQTL and QTLtools do)",
                    where(0)["file"], name, levels[0])
        return [], np.empty((0, len(cells)))
    cells_array = np.array(cells, dtype=str)
    indicators = np.array([(cells_array == level).astype(float) for level in levels[1:]])
    indicators[:, absent] = np.nan
    log.info("%s: covariate %r is categorical with %d levels (%s): %d indicator columns, reference %r",
             where(0)["file"], name, len(levels), show_few(levels), len(levels) - 1, levels[0])
    return [f"{name}={level}" for level in levels[1:]], indicators


def read_covariates(path, categorical: str = "dummy", missing: Sequence[str] = DEFAULT_MISSING,
                    sep: Optional[str] = "auto") -> Covariates:
    """A FastQTL/QTLtools covariate file (optionally gzipped): a header ``id`` + sample IDs, then one row
    per covariate (its name, then one value per sample).

    ``categorical``: ``dummy`` (default) codes a row of labels as indicator columns, as FastQTL and
    QTLtools do (see the module docstring); ``error`` refuses any non-numeric cell.
    """
    if categorical not in _CATEGORICAL:
        raise InputError(f"unknown categorical {categorical!r}" + did_you_mean(categorical, _CATEGORICAL),
                         hint=f"choose one of {', '.join(_CATEGORICAL)}")
    rows = _table_rows(path, sep)
    header = rows.fields[0]
    check_rectangular(rows, len(header))
    samples = np.array(header[1:], dtype=str)
    sample_where = lambda k: dict(file=rows.path, line=rows.lines[0],  # noqa: E731
                                  column=column_label(samples[k], k + 2))
    if len(samples) == 0:
        raise InputError("the header names no sample", file=rows.path, line=rows.lines[0],
                         hint="id sample1 sample2 ... then one row per covariate")
    check_not_blank(samples, "sample ID", sample_where)
    check_unique(samples, "sample ID", sample_where)
    covariate_names = np.array([row[0] for row in rows.fields[1:]], dtype=str)
    name_where = lambda k: dict(file=rows.path, line=rows.lines[k + 1], column=column_label(header[0], 1))  # noqa: E731
    check_not_blank(covariate_names, "covariate name", name_where)
    check_unique(covariate_names, "covariate name", name_where)
    names, blocks = [], []
    for k, row in enumerate(rows.fields[1:]):
        where = lambda j, k=k: dict(file=rows.path, line=rows.lines[k + 1],  # noqa: E731
                                    column=column_label(samples[j], j + 2))
        row_names, row_values = _covariate_row(covariate_names[k], row[1:], missing, categorical, where)
        names.extend(row_names)
        blocks.append(row_values)
    values = np.vstack(blocks) if blocks else np.empty((0, len(samples)))
    return Covariates(np.array(names, dtype=str), values, samples, str(rows.path))
