"""The config's ``[input]`` section: declared keys and :func:`load_cross`.

Example::

    [input]
    format = "rqtl-csvs"
    cross_type = "f2"
    genotypes = "data/geno.csv"
    phenotypes = "data/pheno.csv"
    covariates = ["sex"]          # phenotype columns taken as covariates (or a file name)
    traits = ["weight", "length"] # analyse only these phenotypes

Which file keys each format uses:

============= ==================================================================
format         keys
============= ==================================================================
``rqtl-csv``   ``file``
``rqtl-csvs``  ``genotypes``, ``phenotypes``
``rqtl2``      ``file``: an R/qtl2 control file (YAML or JSON) or a zip bundle (cross type from the file)
``plink``      ``file`` (prefix or .bed path); ``phenotypes`` optional (else .fam column 6)
``pepis``      ``z``, ``w``, ``phenotypes``; ``map`` optional (cross_type is ``generic``)
``tsv``        ``genotypes`` (numeric table); ``map``, ``phenotypes`` optional
============= ==================================================================

``covariates``, ``expression`` (with ``gene_map``) and ``traits`` apply to every format.  IDs are
matched, never positions: with ``id_mismatch = "intersect"`` (default) individuals missing from one
file are dropped with a logged warning and no overlap is an error; ``"error"`` refuses any mismatch.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Dict

from qtlhpc.io.cross import CROSS_TYPES, Cross, check_cross_type
from qtlhpc.io.readers import (
    attach_covariates,
    attach_expression,
    read_pepis,
    read_plink,
    read_rqtl_csv,
    read_rqtl_csvs,
    read_tsv_cross,
    select_traits,
)
from qtlhpc.io.rqtl import genotype_labels_for
from qtlhpc.io.tables import DEFAULT_MISSING, ID_MISMATCH_POLICIES
from qtlhpc.errors import ConfigError

FORMATS = ("rqtl-csv", "rqtl-csvs", "rqtl2", "plink", "pepis", "tsv")

#: every key of the [input] section: name -> (allowed python type(s), default, description)
INPUT_OPTIONS: Dict[str, tuple] = {
    "format": (str, None, "input format: " + ", ".join(FORMATS)),
    "cross_type": (str, None, "cross type: " + ", ".join(CROSS_TYPES) + " (pepis: generic)"),
    "file": (str, None, "the single cross file (rqtl-csv), the R/qtl2 control file (.yaml/.json) or zip bundle "
                        "(rqtl2), or the PLINK prefix / .bed path (plink)"),
    "genotypes": (str, None, "genotype file (rqtl-csvs, tsv)"),
    "phenotypes": (str, None, "phenotype table matched by ID (rqtl-csvs, pepis; optional for plink, tsv)"),
    "covariates": ((list, str), None, "phenotype column names to use as covariates, or a covariate table file"),
    "expression": (str, None, "expression table: individuals in rows, genes in columns, ID column"),
    "gene_map": (str, None, "gene positions: gene, chromosome, position"),
    "genotype_labels": ((list, str), None, "genotype labels in code order (default A,H,B,D,C for f2; A,H bc; "
                                           "A,B RIL)"),
    "missing": ((list, str), list(DEFAULT_MISSING), "strings meaning a missing value (an empty cell is also "
                                                    "missing)"),
    "id_column": (str, None, "name of the individual ID column (default: a column named id, else the first "
                             "column; rqtl-csv without one generates 1, 2, ...)"),
    "z": (str, None, "PEPIS additive code matrix (individuals x markers)"),
    "w": (str, None, "PEPIS dominance code matrix (individuals x markers)"),
    "map": (str, None, "map file: marker, chromosome, position (pepis, tsv)"),
    "traits": (list, None, "analyse only these phenotype columns"),
    "id_mismatch": (str, "intersect", "IDs in only one file: intersect (warn, keep the common ones) or error"),
    "drop_uninformative": (bool, False, "drop markers / individuals with no observed genotype (R/qtl, R/qtl2 "
                                        "input keeps them, as R/qtl; other formats stop with an error)"),
    "sep": (str, ",", "field separator of R/qtl csv files"),
}

#: the file keys each format needs / may use
REQUIRED_KEYS = {"rqtl-csv": ("file", "cross_type"), "rqtl-csvs": ("genotypes", "phenotypes", "cross_type"),
                 "rqtl2": ("file",),
                 "plink": ("file", "cross_type"), "pepis": ("z", "w", "phenotypes"), "tsv": ("genotypes", "cross_type")}
PATH_KEYS = ("file", "genotypes", "phenotypes", "expression", "gene_map", "z", "w", "map")


def _suggestion(name, valid) -> str:
    close = difflib.get_close_matches(str(name), list(valid), n=1, cutoff=0.5)
    return f"; did you mean {close[0]!r}?" if close else ""


def check_input_options(options: dict) -> dict:
    """Validate the [input] keys and value types; return the options with defaults filled in."""
    for key in options:
        if key not in INPUT_OPTIONS:
            raise ConfigError(f"[input]: unknown key {key!r}{_suggestion(key, INPUT_OPTIONS)} "
                              f"(valid keys: {', '.join(INPUT_OPTIONS)})")
    filled = {key: default for key, (_, default, _) in INPUT_OPTIONS.items()}
    for key, value in options.items():
        kind = INPUT_OPTIONS[key][0]
        kinds = kind if isinstance(kind, tuple) else (kind,)
        if value is not None and not isinstance(value, kinds) or (bool not in kinds and isinstance(value, bool)):
            raise ConfigError(f"[input] {key} = {value!r}: expected {' or '.join(k.__name__ for k in kinds)} "
                              f"({INPUT_OPTIONS[key][2]})")
        filled[key] = value
    if filled["format"] is None:
        raise ConfigError(f"[input]: format is required; one of {', '.join(FORMATS)}")
    if filled["format"] not in FORMATS:
        raise ConfigError(f"[input] format = {filled['format']!r} is not a known format"
                          f"{_suggestion(filled['format'], FORMATS)} (known: {', '.join(FORMATS)})")
    if filled["format"] == "pepis" and filled["cross_type"] is None:
        filled["cross_type"] = "generic"
    if filled["format"] == "rqtl2" and filled["cross_type"] is None:
        filled["cross_type"] = "f2"  # placeholder for the checks below; the control file's crosstype is used
    for key in REQUIRED_KEYS[filled["format"]]:
        if filled[key] is None:
            raise ConfigError(f"[input]: format {filled['format']!r} needs {key} ({INPUT_OPTIONS[key][2]})")
    try:
        filled["cross_type"] = check_cross_type(filled["cross_type"])
    except ValueError as err:
        raise ConfigError(f"[input] cross_type: {err}{_suggestion(filled['cross_type'], CROSS_TYPES)}") from None
    if filled["format"] == "pepis" and filled["cross_type"] != "generic":
        raise ConfigError(f"[input] cross_type = {filled['cross_type']!r}: PEPIS input is used as given, so it is "
                          "'generic'; remove cross_type")
    if filled["id_mismatch"] not in ID_MISMATCH_POLICIES:
        raise ConfigError(f"[input] id_mismatch = {filled['id_mismatch']!r}: expected one of "
                          f"{', '.join(ID_MISMATCH_POLICIES)}")
    if isinstance(filled["missing"], str):
        filled["missing"] = [filled["missing"]]
    genotype_labels_for(filled["cross_type"], filled["genotype_labels"])
    return filled


def _resolve(value, base_dir: Path):
    if value is None:
        return None
    path = Path(value).expanduser()
    return path if path.is_absolute() else Path(base_dir) / path


def load_cross(options: dict, base_dir: Path) -> Cross:
    """Read the cross that the [input] section describes; relative paths are taken from ``base_dir``
    (the config file's folder).  Raises ConfigError for bad options, InputError for bad files."""
    opts = check_input_options(dict(options))
    for key in PATH_KEYS:
        opts[key] = _resolve(opts[key], base_dir)
    covariate_file = None
    covariate_names = opts["covariates"]
    if isinstance(covariate_names, str):
        covariate_file, covariate_names = _resolve(covariate_names, base_dir), None
    common = dict(missing=opts["missing"], id_column=opts["id_column"], covariates=covariate_names,
                  drop_uninformative=opts["drop_uninformative"])
    fmt = opts["format"]
    # R/qtl files: markers / individuals without genotypes are kept as R/qtl keeps them unless
    # drop_uninformative; text columns not analysed never stop the run (qtlhpc.io.rqtl)
    rqtl = dict(common, traits=opts["traits"], uninformative="drop" if opts["drop_uninformative"] else "keep")
    if fmt == "rqtl-csv":
        cross = read_rqtl_csv(opts["file"], opts["cross_type"], opts["genotype_labels"], sep=opts["sep"], **rqtl)
    elif fmt == "rqtl-csvs":
        cross = read_rqtl_csvs(opts["genotypes"], opts["phenotypes"], opts["cross_type"], opts["genotype_labels"],
                               sep=opts["sep"], id_mismatch=opts["id_mismatch"], **rqtl)
    elif fmt == "rqtl2":
        from qtlhpc.io.qtl2 import read_qtl2

        cross = read_qtl2(opts["file"], covariates=covariate_names, traits=opts["traits"],
                          uninformative=rqtl["uninformative"])
    elif fmt == "plink":
        cross = read_plink(opts["file"], opts["cross_type"], opts["phenotypes"], id_mismatch=opts["id_mismatch"],
                           **common)
    elif fmt == "pepis":
        cross = read_pepis(opts["z"], opts["w"], opts["phenotypes"], opts["map"], id_mismatch=opts["id_mismatch"],
                           **common)
    else:
        cross = read_tsv_cross(opts["genotypes"], opts["cross_type"], opts["map"], opts["phenotypes"],
                               id_mismatch=opts["id_mismatch"], **common)
    if covariate_file is not None:
        cross = attach_covariates(cross, covariate_file, opts["missing"], opts["id_column"], opts["id_mismatch"])
    if opts["expression"] is not None:
        cross = attach_expression(cross, opts["expression"], opts["gene_map"], opts["missing"], opts["id_column"],
                                  opts["id_mismatch"])
    elif opts["gene_map"] is not None:
        raise ConfigError("[input] gene_map is given without expression; give the expression table too")
    return select_traits(cross, opts["traits"])
