"""PLINK 1 binary filesets (``.bed`` + ``.bim`` + ``.fam``), read through ``bed-reader``.

Allele coding: the ``.bim`` file's allele 1 (A1, column 5) is the cross's ``A`` allele and allele 2
(A2, column 6) its ``B`` allele.  With ``n_A1`` the number of A1 copies that bed-reader returns
(``count_A1=True``, the PLINK convention):

=========== ======================================= =========================================
cross type  n_A1 = 2 / 1 / 0                         note
=========== ======================================= =========================================
f2, imf2    1 (AA) / 2 (AB) / 3 (BB)
bc          1 (AA) / 2 (AB) / error                  BB cannot occur in a backcross
riself/sib  1 (AA) / error / 2 (BB)                  recode residual heterozygotes as missing
generic     2.0 / 1.0 / 0.0 (float, NaN missing)     the allele count n_A1 itself
=========== ======================================= =========================================

The map comes from the ``.bim`` file: chromosome (column 1), marker name (2), position in cM (3);
if every cM position is 0, the base-pair positions (column 4) divided by 1e6 are used instead (a
logged warning says so).  The phenotype is ``.fam`` column 6 (``-9`` or ``NA`` missing) unless a
separate phenotype table is given, which is matched to the ``.fam`` IIDs by ID.
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional, Sequence

import numpy as np

from qtlhpc.io.cross import Cross, check_cross_type
from qtlhpc.io.tables import (
    DEFAULT_MISSING,
    align_ids,
    check_file,
    check_informative,
    check_map,
    check_not_blank,
    check_rectangular,
    check_unique,
    log,
    parse_numbers,
    read_matrix_table,
    read_rows,
    split_covariates,
)
from qtlhpc.errors import BackendUnavailableError, ConfigError, InputError

BED_MAGIC = bytes([0x6C, 0x1B])
FAM_FIELDS = ("FID", "IID", "father", "mother", "sex", "phenotype")
BIM_FIELDS = ("chromosome", "marker", "cM", "bp", "allele 1", "allele 2")
PLINK_MISSING_PHENOTYPE = ("NA",)  # and the number -9 (written -9 or -9.0)


def plink_paths(prefix):
    """``(bed, bim, fam)`` paths from a prefix or a path ending in .bed/.bim/.fam."""
    prefix = Path(prefix)
    if prefix.suffix.lower() in (".bed", ".bim", ".fam"):
        prefix = prefix.with_suffix("")
    return tuple(Path(f"{prefix}{ext}") for ext in (".bed", ".bim", ".fam"))


def _read_whitespace_table(path, fields):
    rows = read_rows(path, sep=None)
    check_rectangular(rows, len(fields), what=f"a PLINK {path.suffix} file ({', '.join(fields)}); e.g. line")
    return rows, np.array(rows.fields, dtype=str)


def _expected_bed_size(n_individuals: int, n_markers: int) -> int:
    return 3 + n_markers * ((n_individuals + 3) // 4)


def _check_bed(bed: Path, n_individuals: int, n_markers: int, fam: Path, bim: Path) -> None:
    check_file(bed)
    with open(bed, "rb") as handle:
        head = handle.read(3)
    if len(head) < 3 or head[:2] != BED_MAGIC:
        raise InputError(f"does not start with the PLINK .bed magic bytes 6c 1b (found {head.hex(' ')!r})",
                         file=bed, hint="give a PLINK 1 binary .bed file (plink --make-bed)")
    if head[2] != 1:
        raise InputError(f"is in individual-major mode (third byte {head[2]:#04x}); expected SNP-major (0x01)",
                         file=bed, hint="rewrite it with plink --make-bed")
    size = bed.stat().st_size
    expected = _expected_bed_size(n_individuals, n_markers)
    if size != expected:
        raise InputError(
            f"has {size} bytes; {n_individuals} individuals in {fam.name} and {n_markers} markers in "
            f"{bim.name} need {expected} bytes", file=bed,
            hint="the .bed, .bim and .fam files do not belong together, or one of them is truncated")


def _read_counts(bed: Path, n_individuals: int, n_markers: int) -> np.ndarray:
    try:
        from bed_reader import open_bed
    except ImportError:  # pragma: no cover - depends on the installation
        raise BackendUnavailableError("reading PLINK files needs bed-reader: pip install 'qtlhpc[plink]'") from None
    with open_bed(bed, iid_count=n_individuals, sid_count=n_markers, count_A1=True, num_threads=1,
                  properties={"iid": np.arange(n_individuals).astype(str),
                              "sid": np.arange(n_markers).astype(str)}) as reader:
        return reader.read(dtype="int8")


def _counts_to_codes(counts: np.ndarray, cross_type: str, markers, individuals, bed: Path) -> np.ndarray:
    """Allele counts (n_A1, -127 missing) to cross codes; see the module docstring."""
    missing = counts == -127
    if cross_type == "generic":
        values = counts.astype(float)
        values[missing] = np.nan
        return values
    table = {"f2": {2: 1, 1: 2, 0: 3}, "imf2": {2: 1, 1: 2, 0: 3}, "bc": {2: 1, 1: 2},
             "riself": {2: 1, 0: 2}, "risib": {2: 1, 0: 2}}[cross_type]
    codes = np.zeros(counts.shape, dtype=np.int8)
    known = missing.copy()
    for count, code in table.items():
        hit = counts == count
        codes[hit] = code
        known |= hit
    if not known.all():
        i, j = (int(v[0]) for v in np.nonzero(~known))
        genotype = {0: "BB (0 copies of allele 1)", 1: "AB (heterozygous)"}[int(counts[i, j])]
        raise InputError(
            f"individual {individuals[i]!r} has genotype {genotype} at marker {markers[j]!r}, which a "
            f"{cross_type} cross cannot have ({int((~known).sum())} such calls in all)", file=bed,
            column=f"marker {j + 1} ({markers[j]!r})",
            hint="check cross_type, or set these calls to missing with plink")
    return codes


def read_plink(
    prefix,
    cross_type: str,
    phenotypes=None,
    missing: Optional[Sequence[str]] = None,
    id_column: Optional[str] = None,
    covariates: Optional[Sequence[str]] = None,
    id_mismatch: str = "intersect",
    drop_uninformative: bool = False,
) -> Cross:
    """Read a PLINK fileset ``prefix.bed/.bim/.fam`` into a Cross (IDs are the .fam IIDs).

    ``phenotypes``: a table file (header, an ID column ``id_column`` or named ``id``/``IID``, else the
    first; a column named ``FID`` is ignored) matched by IID; ``None`` uses ``.fam`` column 6 as a trait
    named ``phenotype``.  ``covariates`` names columns of that table to take as covariates.
    """
    cross_type = check_cross_type(cross_type)
    bed, bim, fam = plink_paths(prefix)
    fam_rows, fam_table = _read_whitespace_table(check_file(fam), FAM_FIELDS)
    bim_rows, bim_table = _read_whitespace_table(check_file(bim), BIM_FIELDS)
    individuals = fam_table[:, 1]
    fam_where = lambda k: dict(file=fam, line=fam_rows.lines[k], column="2 (IID)")  # noqa: E731
    check_unique(individuals, "individual ID (IID)", fam_where)
    markers = bim_table[:, 1]
    chromosomes = bim_table[:, 0]
    bim_column = {"name": "2 (marker)", "chromosome": "1 (chromosome)", "position": "3 (cM)"}
    bim_where = lambda k, field="name": dict(file=bim, line=bim_rows.lines[k], column=bim_column[field])  # noqa
    centimorgans = parse_numbers(bim_table[:, 2:3], (), lambda i, j: bim_where(i, "position"),
                                 "a position in cM", allow_missing=False)[:, 0]
    base_pairs = parse_numbers(bim_table[:, 3:4], (), lambda i, j: dict(file=bim, line=bim_rows.lines[i],
                                                                      column="4 (bp)"),
                               "a base-pair position", allow_missing=False)[:, 0]
    positions = centimorgans
    if len(positions) and np.all(centimorgans == 0):
        positions = base_pairs / 1e6
        bim_column["position"] = "4 (bp)"
        log.warning("%s: every cM position is 0; using base-pair positions / 1e6 as marker positions", bim)
    check_map(markers, chromosomes, positions, bim_where)
    _check_bed(bed, len(individuals), len(markers), fam, bim)
    genotypes = _counts_to_codes(_read_counts(bed, len(individuals), len(markers)), cross_type, markers,
                                 individuals, bed)
    sources = {"genotypes": str(bed), "map": str(bim), "individuals": str(fam)}
    if phenotypes is None:
        if covariates:
            raise ConfigError(f"covariates {list(covariates)} are column names, but no phenotype table is given "
                              f"({fam.name} has a single phenotype); give phenotypes, or a covariate file")
        values = parse_numbers(fam_table[:, 5:6], PLINK_MISSING_PHENOTYPE,
                               lambda i, j: dict(file=fam, line=fam_rows.lines[i], column="6 (phenotype)"),
                               "a numeric phenotype (-9 missing)")
        values[values == -9] = np.nan
        names = np.array(["phenotype"])
        sources["phenotypes"] = str(fam)
        covariate_values, covariate_names = np.empty((len(individuals), 0)), np.empty(0, dtype=str)
    else:
        table = read_matrix_table(phenotypes, DEFAULT_MISSING if missing is None else missing, id_column,
                                  what="a numeric phenotype", ignore_columns=("FID",),
                                  id_names=("id", "iid"))
        keep, take = align_ids(individuals, table.ids, fam, table.path, id_mismatch)
        individuals, genotypes = individuals[keep], genotypes[keep]
        fam_rows.lines = [fam_rows.lines[k] for k in keep]
        values, names = table.values[take], table.names
        values, names, covariate_values, covariate_names = split_covariates(names, values, covariates,
                                                                            table.path, 1)
        sources["phenotypes"] = str(table.path)
    check_not_blank(individuals, "individual ID", fam_where)
    keep_markers, keep_individuals = check_informative(
        genotypes, markers, individuals, bed, lambda k: bim_where(k), lambda k: fam_where(k), drop_uninformative)
    return Cross(cross_type, individuals[keep_individuals], markers[keep_markers], chromosomes[keep_markers],
                 positions[keep_markers], genotypes[np.ix_(keep_individuals, keep_markers)],
                 values[keep_individuals], names, covariate_values[keep_individuals], covariate_names,
                 sources=sources)
