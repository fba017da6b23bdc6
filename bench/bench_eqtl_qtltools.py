"""The ``cis`` stage against ``QTLtools cis --permute`` on QTLtools' own example (Debian qtltools-example:
608 chr22 genes, 358 samples, GT genotypes, 53 covariate rows), same permutation count, in the same run.

Usage: python bench/bench_eqtl_qtltools.py [--permutations 1000] [--region chr22] [--threads 1]

The example's BED is rewritten tab-separated (bgzip + tabix; some releases separate sample values with
spaces, which our reader rejects); both programs read that BED, the shipped VCF and covariates.  Our side:
``qtlhpc run expression`` (untimed), then ``qtlhpc run cis`` at 1 rank (timed, whole process).  QTLtools:
``QTLtools cis --vcf --bed --cov --permute P`` (timed, whole process; single-threaded).  Both with one BLAS
thread unless ``--threads`` says otherwise.  Our stage uses FastQTL's covariate model (phenotypes and
genotypes residualised, dof n - 2 - k), QTLtools 1.3.1 residualises phenotypes only: the work per
permutation is the same (one correlation per variant).  Issue target: ours >= 5x faster.
"""

import argparse
import gzip
import os
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

EXAMPLE = Path("/usr/share/doc/qtltools/examples/examples.tar.xz")
BED, VCF, COVARIATES = "genes.50percent.chr22.bed.gz", "genotypes.chr22.vcf.gz", "genes.covariates.pc50.txt.gz"


def environment(threads: int):
    return dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
                MKL_NUM_THREADS=str(threads))


def unpack(directory: Path) -> Path:
    with tarfile.open(EXAMPLE) as archive:
        archive.extractall(directory)
    folder = next(directory.rglob(VCF)).parent
    plain = folder / "phenotypes.tabs.bed"
    with gzip.open(folder / BED, "rt") as lines, open(plain, "w") as out:
        for line in lines:
            out.write("\t".join(line.split()) + "\n")
    subprocess.run(["bgzip", "-f", str(plain)], check=True)
    subprocess.run(["tabix", "-f", "-p", "bed", str(plain) + ".gz"], check=True)
    return folder


def write_config(folder: Path, directory: Path, permutations: int, region: str) -> Path:
    config = directory / "analysis.toml"
    config.write_text(f"""
[run]
output = "results.h5"
seed = 1
progress = false

[expression]
format = "bed"
file = "{folder / 'phenotypes.tabs.bed.gz'}"
covariates = "{folder / COVARIATES}"
region = "{region}"

[cis]
genotypes = "{folder / VCF}"
field = "GT"
permutations = [{permutations}]
chunks = 16
""")
    return config


def timed(command, env) -> float:
    print("$", " ".join(map(str, command)), flush=True)
    start = time.perf_counter()
    subprocess.run(list(map(str, command)), check=True, env=env, stdout=subprocess.DEVNULL)
    return time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--region", default="chr22", help="the whole example by default")
    parser.add_argument("--threads", type=int, default=1, help="BLAS threads of our stage")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        folder = unpack(directory / "example")
        config = write_config(folder, directory, args.permutations, args.region)
        env = environment(args.threads)
        subprocess.run([sys.executable, "-m", "qtlhpc", "run", "expression", config], check=True, env=env,
                       capture_output=True)
        ours = timed([sys.executable, "-m", "qtlhpc", "run", "cis", config], env)
        qtltools = timed(["QTLtools", "cis", "--vcf", folder / VCF, "--bed", folder / "phenotypes.tabs.bed.gz",
                          "--cov", folder / COVARIATES, "--permute", args.permutations, "--region", args.region,
                          "--out", directory / "qtltools.txt", "--silent"], env)
        genes = len((directory / "qtltools.txt").read_text().splitlines())
        print(f"{genes} genes, {args.permutations} permutations, region {args.region}")
        print(f"qtlhpc cis (1 rank): {ours:8.1f} s")
        print(f"QTLtools cis:        {qtltools:8.1f} s")
        print(f"speed-up: {qtltools / ours:.1f}x (target >= 5x)")


if __name__ == "__main__":
    main()
