"""R/qtl2 input files: a control file (YAML or JSON) naming csv files, or a zip bundle of them.

The format is R/qtl2's (its ``input_files`` vignette; examples in the public rqtl/qtl2data repository).
What is read, for the cross types qtlhpc supports (``bc``, ``f2``, ``riself``, ``risib``; R/qtl2's ``dh``
and the multi-parent types are refused with a message):

* control keys: ``crosstype``, ``geno``, ``gmap`` (else ``pmap``), ``pmap``, ``pheno``, ``covar``,
  ``phenocovar``, ``genotypes`` (file code -> 1, 2, 3 as R/qtl2: AA, AB, BB; RILs AA = 1, BB = 2;
  ``not BB`` / ``not AA`` codes map to 4 / 5; other codes are missing, with a warning, as R/qtl2),
  ``alleles``, ``x_chr``, ``na.strings`` (default ``-``
  and ``NA``), ``sep`` (default ``,``), ``comment.char`` (default ``#``), ``sex`` and ``cross_info``
  (``{covar: column, <value>: code}`` or ``{file: name, <value>: code}``), ``*_transposed`` (a file
  with one row per marker or phenotype instead of one per individual); a file entry may be a list of
  files (their columns are joined by ID);
* csv files: lines starting with ``comment.char`` are skipped; the first row names the columns and the
  first column holds the IDs (individuals; markers in a transposed file).
* the genetic map (cM) gives the positions (the physical map is used only when there is no ``gmap``);
  markers of the genotype file without a map position are dropped with a warning, as R/qtl2 does.
* ``sex`` (female/male) and ``cross_info`` (an intercross's direction, R/qtl's ``pgm``) define the X
  model (:mod:`qtlhpc.genetics.xchr`); R/qtl2's X codes for males are the homozygous codes (AY = 1,
  BY = 3), as in R/qtl files.  ``covar`` columns become covariates when named in ``covariates``
  (text columns dummy-coded, :mod:`qtlhpc.io.rqtl_columns`).
"""

from __future__ import annotations

import csv
import io
import json
import zipfile
from pathlib import Path
from typing import List, Optional, Sequence, Tuple

import numpy as np

from qtlhpc.errors import InputError
from qtlhpc.io.cross import Cross, check_cross_type
from qtlhpc.io.rqtl_columns import Column, build_phenotypes, parse_columns
from qtlhpc.io.tables import align_ids, column_label, log, show_few

SUPPORTED = {"bc": "bc", "f2": "f2", "riself": "riself", "risib": "risib"}
DEFAULT_NA = ("-", "NA")


class _Source:
    """The files of a control file's folder, or of a zip bundle: text by name."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.zip = zipfile.ZipFile(self.path) if self.path.suffix.lower() == ".zip" else None
        self.folder = self.path.parent

    def control(self) -> Tuple[str, str]:
        """``(name, text)`` of the control file."""
        if self.zip is None:
            return str(self.path), self.path.read_text(encoding="utf-8-sig")
        names = [n for n in self.zip.namelist() if n.lower().endswith((".yaml", ".yml", ".json"))]
        if len(names) != 1:
            raise InputError(f"a zip bundle must hold one control file (.yaml, .yml or .json); found "
                             f"{show_few(names) if names else 'none'}", file=self.path)
        self.prefix = names[0].rsplit("/", 1)[0] + "/" if "/" in names[0] else ""
        return f"{self.path}:{names[0]}", self.zip.read(names[0]).decode("utf-8-sig")

    def text(self, name: str) -> Tuple[str, str]:
        if self.zip is None:
            file = self.folder / name
            if not file.is_file():
                raise InputError(f"file {name!r} named in the control file was not found", file=file)
            return str(file), file.read_text(encoding="utf-8-sig")
        member = getattr(self, "prefix", "") + name
        if member not in self.zip.namelist():
            raise InputError(f"file {name!r} named in the control file is not in the bundle", file=self.path)
        return f"{self.path}:{member}", self.zip.read(member).decode("utf-8-sig")


def _parse_control(name: str, text: str) -> dict:
    if name.lower().endswith(".json"):
        try:
            control = json.loads(text)
        except json.JSONDecodeError as error:
            raise InputError(f"not valid JSON: {error.msg}", file=name, line=error.lineno) from None
    else:
        try:
            import yaml
        except ImportError:
            raise InputError("a YAML control file needs the PyYAML package (pip install pyyaml); or give the JSON "
                             "form of the control file", file=name) from None
        try:
            control = yaml.safe_load(text)
        except yaml.YAMLError as error:
            mark = getattr(error, "problem_mark", None)
            raise InputError(f"not valid YAML: {error}", file=name,
                             line=None if mark is None else mark.line + 1) from None
    if not isinstance(control, dict):
        raise InputError("the control file must be a mapping of keys (crosstype, geno, gmap, ...)", file=name)
    return control


def _table(source: _Source, name: str, sep: str, comment: str):
    """``(label, header, ids, cells (n, k) str, lines)`` of one csv file (comment lines skipped)."""
    label, text = source.text(name)
    fields, lines = [], []
    for number, row in enumerate(csv.reader(io.StringIO(text), delimiter=sep), start=1):
        if not row or (comment and row[0].lstrip().startswith(comment)) or not any(f.strip() for f in row):
            continue
        fields.append([f.strip() for f in row])
        lines.append(number)
    if not fields:
        raise InputError("the file has no header row (only comments or blank lines)", file=label)
    header = fields[0]
    for k, row in enumerate(fields[1:], start=1):
        if len(row) != len(header):
            raise InputError(f"has {len(row)} fields; the header has {len(header)}", file=label, line=lines[k],
                             hint="every row needs one value per column (empty or a na.string when missing)")
    ids = np.array([row[0] for row in fields[1:]], dtype=str)
    cells = np.array([row[1:] for row in fields[1:]], dtype=str).reshape(len(ids), len(header) - 1)
    return label, header, ids, cells, lines[1:], lines[0]


def _read(source, control, key, sep, comment, id_what="individual"):
    """One (or a list of) files of ``key``, transposed as the control says, columns joined by ID.

    Returns ``(label, column names, ids, cells (n_ids, n_columns), where(i, j))``.
    """
    names = control[key] if isinstance(control[key], list) else [control[key]]
    transposed = bool(control.get(f"{key}_transposed", False))
    label_all, columns, ids, blocks, wheres = [], [], None, [], []
    for name in names:
        label, header, row_ids, cells, lines, header_line = _table(source, str(name), sep, comment)
        if transposed:
            columns_here, ids_here = row_ids, np.array(header[1:], dtype=str)
            block = cells.T
            where = (lambda lab, lns, hdr: lambda i, j: dict(file=lab, line=lns[j],
                                                              column=column_label(hdr[i + 1], i + 2)))(
                label, lines, header)
        else:
            columns_here, ids_here = np.array(header[1:], dtype=str), row_ids
            block = cells
            where = (lambda lab, lns, hdr: lambda i, j: dict(file=lab, line=lns[i],
                                                              column=column_label(hdr[j + 1], j + 2)))(
                label, lines, header)
        if len(set(ids_here.tolist())) != len(ids_here):
            dup = [x for x in ids_here if (ids_here == x).sum() > 1][0]
            raise InputError(f"{id_what} ID {dup!r} appears more than once", file=label)
        if ids is None:
            ids = ids_here
            take = np.arange(len(ids))
        else:
            keep, take = align_ids(ids, ids_here, label_all[0], label, "intersect")
            ids = ids[keep]
            blocks = [b[keep] for b in blocks]
            wheres = [(lambda w, kp: lambda i, j: w(int(kp[i]), j))(w, keep) for w in wheres]
        label_all.append(label)
        columns.extend(columns_here.tolist())
        blocks.append(block[take])
        wheres.append((lambda w, t: lambda i, j: w(int(t[i]), j))(where, take))
    widths = np.cumsum([0] + [b.shape[1] for b in blocks])

    def where(i, j):
        part = int(np.searchsorted(widths, j, side="right") - 1)
        return wheres[part](i, j - widths[part])

    return ", ".join(label_all), np.array(columns, dtype=str), ids, np.hstack(blocks), where


def _map(source, control, sep, comment):
    key = "gmap" if "gmap" in control else "pmap" if "pmap" in control else None
    if key is None:
        raise InputError("the control file names no map (gmap or pmap)", file=source.path)
    if key == "pmap":
        log.warning("%s: no genetic map (gmap); the physical map's positions are used as cM", source.path)
    label, names, markers, cells, where = _read(source, control, key, sep, comment, id_what="marker")
    lower = [n.lower() for n in names]
    if "chr" not in lower or "pos" not in lower:
        raise InputError(f"the map needs columns chr and pos (after the marker column); found {list(names)}",
                         file=label)
    chromosomes = cells[:, lower.index("chr")]
    raw = cells[:, lower.index("pos")]
    positions = np.full(len(markers), np.nan)
    for i, value in enumerate(raw):
        try:
            positions[i] = float(value)
        except ValueError:
            raise InputError(f"{value!r} is not a number; expected a marker position", **where(i, lower.index("pos")))
    return markers, chromosomes, positions


def read_qtl2(path, covariates: Optional[Sequence[str]] = None, traits: Optional[Sequence[str]] = None,
              uninformative: str = "keep") -> Cross:
    """Read an R/qtl2 cross from its control file (``.yaml``/``.yml``/``.json``) or a zip bundle.

    ``covariates``: columns of the ``covar`` (or ``pheno``) file to use as covariates; ``traits``: the
    phenotypes to analyse (default every numeric ``pheno`` column).  ``uninformative``: see
    :mod:`qtlhpc.io.rqtl` (markers or individuals without genotypes: keep, drop or error).
    """
    from qtlhpc.genetics.xchr import recode_x

    source = _Source(path)
    control_name, text = source.control()
    control = _parse_control(control_name, text)
    crosstype = str(control.get("crosstype", ""))
    if crosstype not in SUPPORTED:
        raise InputError(f"crosstype {crosstype!r} is not supported; qtlhpc reads R/qtl2 crosses of type "
                         f"{', '.join(SUPPORTED)}", file=control_name)
    cross_type = check_cross_type(SUPPORTED[crosstype])
    for key in ("geno",):
        if key not in control:
            raise InputError(f"the control file has no {key!r} entry", file=control_name)
    sep = str(control.get("sep", ","))
    comment = str(control.get("comment.char", "#"))
    na = control.get("na.strings", list(DEFAULT_NA))
    na = tuple(str(x) for x in (na if isinstance(na, list) else [na]))
    codes = {str(k): int(v) for k, v in (control.get("genotypes") or {}).items()}
    if not codes:
        raise InputError("the control file has no 'genotypes' (file code -> 1, 2, 3)", file=control_name)

    # genotypes
    label, markers, ids, cells, where = _read(source, control, "geno", sep, comment)
    table = {code: 0 for code in na}
    table[""] = 0
    table.update(codes)
    genotypes = np.zeros(cells.shape, dtype=np.int8)
    unknown = []
    for i in range(cells.shape[0]):
        for j in range(cells.shape[1]):
            value = table.get(cells[i, j])
            if value is None:  # as R/qtl2: a code not in the control's genotypes is missing
                unknown.append((i, j))
                value = 0
            genotypes[i, j] = value
    if unknown:
        i, j = unknown[0]
        place = where(i, j)
        log.warning("%s, line %s, column %s: genotype %r is not among the control file's genotypes %s; %d such "
                    "cells are taken as missing (as R/qtl2)", place["file"], place["line"], place["column"],
                    cells[i, j], show_few(list(codes)), len(unknown))
    if cross_type in ("riself", "risib"):
        genotypes[genotypes == 3] = 2  # R/qtl2 writes RIL genotypes AA = 1, BB = 2 (or 3 in older files)

    # map: markers in map order (chromosomes in order of appearance, positions sorted within)
    map_markers, map_chromosomes, map_positions = _map(source, control, sep, comment)
    row = {m: k for k, m in enumerate(map_markers)}
    unmapped = [m for m in markers if m not in row]
    if unmapped:
        log.warning("%s: %d genotyped markers are not in the map and are dropped: %s", label, len(unmapped),
                    show_few(unmapped))
    in_geno = {m: k for k, m in enumerate(markers)}
    order_chr = list(dict.fromkeys(map_chromosomes.tolist()))
    ordered = []
    for chromosome in order_chr:
        rows = [k for k in np.flatnonzero(map_chromosomes == chromosome) if map_markers[k] in in_geno]
        rows.sort(key=lambda k: map_positions[k])
        ordered.extend(rows)
    columns = np.array([in_geno[map_markers[k]] for k in ordered], dtype=np.intp)
    genotypes = genotypes[:, columns]
    marker_names = map_markers[ordered]
    chromosomes = map_chromosomes[ordered]
    positions = map_positions[ordered]

    # phenotypes and covariates, matched to the genotyped individuals by ID
    named_columns: List[Column] = []
    column_where = []

    def add(key):
        lab, names, key_ids, key_cells, key_where = _read(source, control, key, sep, comment)
        keep, take = align_ids(ids, key_ids, label, lab, "intersect")
        return lab, names, keep, take, key_cells, key_where

    n = len(ids)
    keep_rows = np.ones(n, dtype=bool)
    pieces = []
    for key in ("pheno", "covar"):
        if key in control:
            pieces.append((key,) + add(key))
    for _, _, _, keep, _, _, _ in pieces:
        mask = np.zeros(n, dtype=bool)
        mask[keep] = True
        keep_rows &= mask
    rows_kept = np.flatnonzero(keep_rows)
    pheno_names: List[str] = []
    for key, lab, names, keep, take, key_cells, key_where in pieces:
        position = {int(k): int(t) for k, t in zip(keep, take)}
        source_rows = np.array([position[int(r)] for r in rows_kept], dtype=np.intp)
        parsed = parse_columns(names, key_cells[source_rows], na)
        for j, column in enumerate(parsed):
            if column.name in [c.name for c in named_columns]:
                continue
            named_columns.append(column)
            column_where.append((lambda w, s, jj: lambda i: w(int(s[i]), jj))(key_where, source_rows, j))
            if key == "pheno":
                pheno_names.append(column.name)
    ids = ids[rows_kept]
    genotypes = genotypes[rows_kept]
    if traits is None:
        numeric = [c.name for c in named_columns if c.name in pheno_names and c.kind == "numeric"]
        traits_used = [t for t in numeric if t not in (covariates or [])]
    else:
        traits_used = list(traits)
    pheno = build_phenotypes(named_columns, lambda i, j: column_where[j](i), control_name, 1,
                             covariates, traits_used)
    sex, pgm = _sex_and_direction(source, control, named_columns, ids, sep, comment, cross_type, control_name)

    # the X chromosome
    x_name = control.get("x_chr")
    x_name = None if x_name is None else str(x_name)
    keep_markers = np.ones(len(marker_names), dtype=bool)
    if x_name is not None and cross_type in ("bc", "f2") and np.any(chromosomes == x_name):
        is_x = chromosomes == x_name
        recoded, sex_x, pgm_x = recode_x(genotypes[:, is_x], cross_type, sex, pgm,
                                         where=f"{label}: chromosome {x_name}")
        if recoded is None:
            keep_markers &= ~is_x
            x_name = None
        else:
            genotypes[:, is_x] = recoded
            sex, pgm = sex_x, pgm_x
    elif x_name is not None and cross_type not in ("bc", "f2"):
        x_name = None  # RILs: the X is analysed as an autosome (as R/qtl)
    else:
        x_name = None
    empty_markers = (genotypes == 0).all(axis=0) & keep_markers
    empty_individuals = (genotypes[:, keep_markers] == 0).all(axis=1)
    if uninformative == "error" and (empty_markers.any() or empty_individuals.any()):
        what = marker_names[empty_markers] if empty_markers.any() else ids[empty_individuals]
        raise InputError(f"{'markers' if empty_markers.any() else 'individuals'} with no observed genotype: "
                         f"{show_few(what)}", file=label, hint="set drop_uninformative = true to drop them")
    keep_individuals = np.ones(len(ids), dtype=bool)
    if uninformative == "drop":
        keep_markers &= ~empty_markers
        keep_individuals = ~empty_individuals
        if empty_markers.any() or empty_individuals.any():
            log.warning("%s: dropping %d markers and %d individuals with no observed genotype", label,
                        int(empty_markers.sum()), int(empty_individuals.sum()))
    elif empty_markers.any():
        log.warning("%s: %d markers have no observed genotype; kept, as R/qtl: %s", label,
                    int(empty_markers.sum()), show_few(marker_names[empty_markers]))
    r = keep_individuals
    return Cross(cross_type, ids[r], marker_names[keep_markers], chromosomes[keep_markers],
                 positions[keep_markers], genotypes[np.ix_(r, keep_markers)], pheno.values[r], pheno.names,
                 pheno.covariates[r], pheno.covariate_names,
                 sources={"genotypes": label, "phenotypes": control_name},
                 text_phenotypes={k: v[r] for k, v in pheno.text.items()},
                 sex=None if sex is None else sex[r], pgm=None if pgm is None else pgm[r], x_chromosome=x_name)


def _codes_of(spec: dict, values: np.ndarray, what: str, where_name) -> np.ndarray:
    """Map a column of values through a control entry ``{<value>: code, ...}`` (other keys ignored)."""
    mapping = {str(k): v for k, v in spec.items() if k not in ("covar", "file")}
    out = np.full(len(values), np.nan)
    for i, value in enumerate(values):
        if value == "":
            continue
        code = mapping.get(value)
        if code is None:
            raise InputError(f"{what} value {value!r} is not in the control file's {what} entry "
                             f"({show_few(list(mapping))})", file=where_name)
        out[i] = code
    return out


def _sex_and_direction(source, control, columns, ids, sep, comment, cross_type, control_name):
    """Sex (0/1) and pgm (0/1) from the control's ``sex`` and ``cross_info`` entries (None if absent)."""

    def values_for(spec, what):
        if "covar" in spec:
            hits = [c for c in columns if c.name == str(spec["covar"])]
            if not hits:
                raise InputError(f"{what}: no covariate column {spec['covar']!r}", file=control_name)
            return hits[0].text if hits[0].kind != "numeric" else np.array(
                ["" if np.isnan(v) else f"{v:g}" for v in hits[0].numbers])
        if "file" in spec:
            label, names, file_ids, cells, _ = _read(source, {"f": spec["file"]}, "f", sep, comment)
            keep, take = align_ids(ids, file_ids, source.path, label, "error")
            return cells[take, 0]
        raise InputError(f"{what} needs 'covar' (a column of the covar file) or 'file'", file=control_name)

    sex = pgm = None
    if isinstance(control.get("sex"), dict):
        spec = control["sex"]
        raw = values_for(spec, "sex")
        mapping = {str(k): str(v).lower() for k, v in spec.items() if k not in ("covar", "file")}
        sex = np.zeros(len(ids), dtype=np.int8)
        for i, value in enumerate(raw):
            code = mapping.get(value, value.lower() if value.lower() in ("female", "male", "f", "m") else None)
            if code is None:
                raise InputError(f"sex value {value!r} is not in the control file's sex entry "
                                 f"({show_few(list(mapping))})", file=control_name)
            sex[i] = 1 if code in ("male", "m") else 0
    if isinstance(control.get("cross_info"), dict) and cross_type in ("f2",):
        spec = control["cross_info"]
        raw = values_for(spec, "cross_info")
        codes = _codes_of(spec, raw, "cross_info", control_name)
        if np.any(~np.isin(codes[~np.isnan(codes)], (0, 1))):
            raise InputError("cross_info of an intercross must be 0 ((AxB)x(AxB)) or 1 ((BxA)x(BxA))",
                             file=control_name)
        pgm = np.where(np.isnan(codes), 0, codes).astype(np.int8)
    return sex, pgm
