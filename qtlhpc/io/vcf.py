"""Genotype dosages of a population from VCF/BCF (``cyvcf2``), whole or by region.

:func:`read_genotypes` returns a :class:`VariantBlock`: ``dosages (n_variants, n_samples)`` float64 with
NaN for a missing call, variant-major like :class:`~qtlhpc.io.expression.ExpressionSet`.

``field="DS"`` reads the FORMAT ``DS`` dosage (FastQTL's preferred field); at a multi-allelic site
(``Number=A``, one dosage per alternative allele) the dosages are summed into the non-reference dosage.
``field="GT"`` counts non-reference alleles in the called genotype: 0, 1 or 2 for a diploid call (0 or
1 for a haploid one); a call with any missing allele (``./.``, ``./1``) is NaN, as FastQTL treats it
(FastQTL then mean-imputes: :func:`qtlhpc.stats.transforms.mean_impute`).

Positions are the VCF's 1-based ``POS``.  A variant with no ID (``.``) gets ``chrom:pos:ref:alt``.
A region is tabix style (``chr``, ``chr:start-end``, 1-based closed) and keeps the variants overlapping
it (``POS`` to ``POS + len(REF) - 1``); it is read through the ``.tbi``/``.csi`` index when there is one,
otherwise the file is scanned (a logged warning says so).

Importing this module imports cyvcf2 and raises :class:`~qtlhpc.errors.BackendUnavailableError` when it
is missing.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional, Sequence

import numpy as np

from qtlhpc.errors import BackendUnavailableError, InputError, did_you_mean
from qtlhpc.io.expression import sample_positions
from qtlhpc.io.expression_readers import parse_region
from qtlhpc.io.tables import check_file, log, show_few

try:
    import cyvcf2
except ImportError as _error:
    raise BackendUnavailableError(
        f"cyvcf2 is not importable ({_error}): install python3-cyvcf2 (`make setup`) or `pip install cyvcf2` "
        "to read VCF/BCF genotypes") from _error

FIELDS = ("DS", "GT")
_INDEXES = (".tbi", ".csi")


@dataclass(frozen=True, eq=False)
class VariantBlock:
    """Variants by samples.

    Shapes: ``ids``, ``chromosomes``, ``positions`` (int64, 1-based), ``ref``, ``alt`` (comma-joined
    alternative alleles) ``(n_variants,)``; ``dosages (n_variants, n_samples)`` float64, NaN missing;
    ``sample_ids (n_samples,)``.  ``field`` is the FORMAT field read, ``source`` the file.
    """

    ids: np.ndarray
    chromosomes: np.ndarray
    positions: np.ndarray
    ref: np.ndarray
    alt: np.ndarray
    dosages: np.ndarray
    sample_ids: np.ndarray
    field: str
    source: str = ""

    @property
    def n_variants(self) -> int:
        return self.dosages.shape[0]

    @property
    def n_samples(self) -> int:
        return self.dosages.shape[1]


def vcf_samples(path) -> np.ndarray:
    """The sample IDs of a VCF/BCF header, in file order."""
    reader = _open(check_file(path))
    try:
        return np.array(reader.samples, dtype=str)
    finally:
        reader.close()


def read_genotypes(path, region: Optional[str] = None, field: str = "DS",
                   samples: Optional[Sequence[str]] = None) -> VariantBlock:
    """Dosages ``(n_variants, n_samples)`` of the VCF/BCF at ``path`` (see the module docstring).

    ``samples``: the sample IDs to return, in this order (an :class:`InputError` names those missing from
    the file); all samples in file order when None.  ``region``: only variants overlapping it.
    """
    if field not in FIELDS:
        raise InputError(f"unknown genotype field {field!r}" + did_you_mean(field, FIELDS),
                         hint="DS reads the dosage FORMAT field, GT counts alternative alleles in the call")
    path = check_file(path)
    reader = _open(path)
    try:
        file_samples = np.array(reader.samples, dtype=str)
        order = None
        if samples is not None:
            wanted = np.asarray(samples, dtype=str).reshape(-1)
            order = sample_positions(file_samples, wanted, str(path))
            file_samples = file_samples[order]
        _check_field_declared(reader, path, field)
        columns = _Columns()
        calls: list = []  # GT: the calls of up to _GT_BATCH records, decoded together
        for variant in _variants(reader, path, region):
            if field == "GT":
                calls.append(_dosage(variant, field, path, order))
                columns.add(variant, None)
                if len(calls) == _GT_BATCH:
                    columns.rows.append(_gt_dosages(calls, order))
                    calls = []
            else:
                columns.add(variant, _dosage(variant, field, path, order))
        if calls:
            columns.rows.append(_gt_dosages(calls, order))
    finally:
        reader.close()
    return columns.block(file_samples, field, str(path))


def _open(path: Path):
    try:
        return cyvcf2.VCF(str(path), lazy=True, threads=1)
    except (OSError, IOError) as err:
        raise InputError(f"cannot be read as VCF/BCF ({err})", file=path,
                         hint="give a VCF (plain, gzip or bgzip) or a BCF file with a header") from None


def _check_field_declared(reader, path: Path, field: str) -> None:
    declared = {header.info().get("ID") for header in reader.header_iter() if header.type == "FORMAT"}
    if field in declared:
        return
    first = next(iter(reader), None)
    where = "the file has no record" if first is None else f"first record {_describe(first)}"
    raise InputError(
        f"no FORMAT field {field!r} in the VCF header ({where}; FORMAT fields declared: "
        f"{show_few(sorted(d for d in declared if d)) or 'none'})", file=path,
        hint="use field='GT' (hard calls) if the file has it, or add dosages (e.g. bcftools +dosage)"
             if field == "DS" else "use field='DS' (dosages) if the file has it")


def _variants(reader, path: Path, region: Optional[str]) -> Iterator:
    if region is None:
        yield from reader
        return
    chromosome, start, end = parse_region(region)
    try:
        names = list(reader.seqnames)
    except Exception:  # noqa: BLE001 - cyvcf2 raises a bare Exception without ##contig lines or an index
        names = []
    if names and chromosome not in names:
        raise InputError(f"region {region!r}: no chromosome {chromosome!r} in the VCF"
                         + did_you_mean(chromosome, names),
                         file=path, hint=f"its chromosomes are {show_few(names, 8)}; names must match exactly")
    if any(Path(f"{path}{suffix}").exists() for suffix in _INDEXES):
        yield from reader(f"{chromosome}:{start}-{end if end is not None else 2**31 - 1}")
        return
    log.warning("%s has no .tbi/.csi index: scanning it whole for region %s (index it with tabix -p vcf or "
                "bcftools index to read regions directly)", path, region)
    for variant in reader:
        # 0-based half-open [start, end) of the record against 1-based closed [start, end] of the region
        if variant.CHROM == chromosome and variant.end >= start and (end is None or variant.start < end):
            yield variant


def _describe(variant) -> str:
    return f"{variant.CHROM}:{variant.POS} ({variant.ID or '.'})"


def _dosage(variant, field: str, path: Path, order: Optional[np.ndarray]) -> np.ndarray:
    if field == "DS":
        values = variant.format("DS")
        if values is None:
            raise InputError(f"record {_describe(variant)} has no DS value", file=path,
                             hint="every record needs the FORMAT field DS; or read field='GT'")
        values = np.asarray(values, dtype=np.float64)
        if values.ndim == 2 and values.shape[1] > 1:
            observed = ~np.isnan(values)
            summed = np.where(observed, values, 0.0).sum(axis=1)
            dosage = np.where(observed.any(axis=1), summed, np.nan)
        else:
            dosage = values.reshape(-1)
    else:
        calls = variant.genotype
        if calls is None:
            raise InputError(f"record {_describe(variant)} has no GT value", file=path,
                             hint="every record needs the FORMAT field GT; or read field='DS'")
        return calls.array()  # (n_samples, ploidy + 1) alleles and the phased flag: decoded by the block
    return dosage if order is None else dosage[order]


_GT_BATCH = 2048


def _gt_dosages(calls: list, order: Optional[np.ndarray]) -> np.ndarray:
    """Alternative-allele counts ``(n_variants, n_samples)`` of the ``genotype.array()`` of each record, in one
    pass: allele codes > 0 count, -1 (a missing allele) makes the call missing, -2 ends a shorter (haploid)
    call; records of different ploidy are padded with -2."""
    width = max(array.shape[1] for array in calls) - 1
    alleles = np.full((len(calls), calls[0].shape[0], width), -2, dtype=np.int16)
    for row, array in enumerate(calls):
        alleles[row, :, :array.shape[1] - 1] = array[:, :-1]  # last column: phased flag
    dosage = (alleles > 0).sum(axis=2, dtype=np.int16).astype(np.float64)
    dosage[(alleles == -1).any(axis=2)] = np.nan
    return dosage if order is None else dosage[:, order]


class _Columns:
    """Per-variant lists gathered while reading."""

    def __init__(self):
        self.ids, self.chromosomes, self.positions, self.ref, self.alt, self.rows = [], [], [], [], [], []

    def add(self, variant, dosage: np.ndarray) -> None:
        alt = ",".join(variant.ALT)
        self.ids.append(variant.ID or f"{variant.CHROM}:{variant.POS}:{variant.REF}:{alt}")
        self.chromosomes.append(variant.CHROM)
        self.positions.append(variant.POS)
        self.ref.append(variant.REF)
        self.alt.append(alt)
        if dosage is not None:  # GT: decoded in batches by read_genotypes
            self.rows.append(dosage)

    def block(self, sample_ids: np.ndarray, field: str, source: str) -> VariantBlock:
        dosages = np.vstack(self.rows) if self.rows else np.empty((0, len(sample_ids)))
        return VariantBlock(np.array(self.ids, dtype=str), np.array(self.chromosomes, dtype=str),
                            np.array(self.positions, dtype=np.int64), np.array(self.ref, dtype=str),
                            np.array(self.alt, dtype=str), dosages, sample_ids, field, source)
