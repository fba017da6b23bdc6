"""FastQTL's example data set (Debian ``fastqtl``: 373 samples, 364 chr22 genes, ~150k variants), for tests.

A small loader of its own, test-only: unpack the archive, read the BED phenotypes, the covariates and the
VCF ``DS`` dosages (cyvcf2, tabix regions), and run ``fastQTL`` on it.  The production readers live in
``qtlhpc.io``; this one stays simple on purpose so that a bug there cannot hide here.
"""

from __future__ import annotations

import gzip
import shutil
import subprocess
import tarfile
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Sequence

import numpy as np

EXAMPLE_ARCHIVE = Path("/usr/share/doc/fastqtl/examples/examples.tar.xz")
FILES = ("genotypes.vcf.gz", "phenotypes.bed.gz", "covariates.txt.gz")


def unpack_example(directory) -> Path:
    """Extract the archive into ``directory``; the folder holding genotypes/phenotypes/covariates."""
    directory = Path(directory)
    with tarfile.open(EXAMPLE_ARCHIVE) as archive:
        archive.extractall(directory)
    found = sorted(directory.rglob(FILES[0]))
    if not found:
        raise FileNotFoundError(f"{EXAMPLE_ARCHIVE} has no {FILES[0]}")
    folder = found[0].parent
    for name in FILES:
        assert (folder / name).exists(), name
    return folder


@dataclass
class Phenotypes:
    """BED phenotypes: ids, chromosomes and 0-based starts ``(n_genes,)``; values ``(n_genes, n_samples)``."""

    sample_ids: List[str]
    ids: List[str]
    chromosomes: List[str]
    starts: np.ndarray
    ends: np.ndarray
    values: np.ndarray


def read_bed(path) -> Phenotypes:
    """A FastQTL BED (chr, start, end, id, one column per sample; ``NA`` missing)."""
    with gzip.open(path, "rt") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        rows = [line.rstrip("\n").split("\t") for line in handle if line.strip()]
    values = np.array([[np.nan if v == "NA" else float(v) for v in row[4:]] for row in rows])
    return Phenotypes(header[4:], [row[3] for row in rows], [row[0] for row in rows],
                      np.array([int(row[1]) for row in rows]), np.array([int(row[2]) for row in rows]), values)


def read_covariates(path, sample_ids: Sequence[str]):
    """FastQTL covariates (one row per covariate, one column per sample): ``(ids, (n_samples, k))``
    with samples in the order of ``sample_ids``."""
    with gzip.open(path, "rt") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        rows = [line.rstrip("\n").split("\t") for line in handle if line.strip()]
    column = {sample: i for i, sample in enumerate(header[1:])}
    order = [column[s] for s in sample_ids]
    values = np.array([[float(row[1:][i]) for i in order] for row in rows]).T
    return [row[0] for row in rows], values


@dataclass
class Genotypes:
    """VCF DS dosages: ids and positions ``(n_variants,)``, dosages ``(n_variants, n_samples)`` (NaN missing)."""

    ids: List[str]
    positions: np.ndarray
    dosages: np.ndarray


def read_dosages(path, sample_ids: Sequence[str], region: Optional[str] = None) -> Genotypes:
    """The ``DS`` field of a bgzipped, tabix-indexed VCF, samples in the order of ``sample_ids``."""
    from cyvcf2 import VCF

    vcf = VCF(str(path), gts012=True, lazy=True)
    column = {sample: i for i, sample in enumerate(vcf.samples)}
    order = np.array([column[s] for s in sample_ids])
    ids, positions, rows = [], [], []
    for variant in (vcf(region) if region else vcf):
        dosage = variant.format("DS")
        if dosage is None:
            continue
        row = np.asarray(dosage[:, 0], dtype=np.float64)[order]
        row[(row < -1e30) | (row > 1e30)] = np.nan
        ids.append(variant.ID)
        positions.append(variant.POS)
        rows.append(row)
    vcf.close()
    dosages = np.array(rows) if rows else np.empty((0, len(order)))
    return Genotypes(ids, np.array(positions, dtype=np.int64), dosages)


def run_fastqtl(folder: Path, out: Path, *options: str, covariates: bool = True, seed: int = 1) -> Path:
    """Run ``fastQTL`` on the example in ``folder`` with ``options`` (e.g. ``--chunk 1 20``); the output."""
    command = ["fastQTL", "--vcf", str(folder / FILES[0]), "--bed", str(folder / FILES[1]),
               "--seed", str(seed), "--out", str(out), "--log", str(out) + ".log", *options]
    if covariates:
        command += ["--cov", str(folder / FILES[2])]
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0 or not out.exists():
        raise RuntimeError(f"{' '.join(command)} failed ({run.returncode}): {run.stderr[-2000:]}")
    return out


def read_fastqtl_table(path) -> List[List[str]]:
    """Rows of a fastQTL output (gzip or text), split on whitespace."""
    opener = gzip.open if Path(path).read_bytes()[:2] == b"\x1f\x8b" else open
    with opener(path, "rt") as handle:
        return [line.split() for line in handle if line.strip()]


def have_fastqtl() -> bool:
    return shutil.which("fastQTL") is not None
