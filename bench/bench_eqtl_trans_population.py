"""Benchmark: the population trans nominal pass (stage ``trans``) against ``QTLtools trans --nominal
--threshold 1e-5`` on QTLtools' own example (Debian qtltools-example: 358 samples, 608 simulated genes,
85,485 chr22 variants, GT genotypes), in the same run; prints both times and whether the hits agree.

Usage: python bench/bench_eqtl_trans_population.py [--ranks 1] [--threads 1] [--variant-block 20000]
                                                   [--keep DIR]
``--ranks N`` runs the qtlhpc pipeline under ``mpirun -n N``; QTLtools is single-threaded.  Our time is
given three ways: the whole command (interpreter start, expression stage, trans stage), the trans stage
alone (from its log), and its parts measured in-process (VCF reading with cyvcf2 vs the scan kernel).
"""

import argparse
import gzip
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

ARCHIVE = "/usr/share/doc/qtltools/examples/examples.tar.xz"


def unpack(folder: Path) -> None:
    with tarfile.open(ARCHIVE) as archive:
        for name in ("genotypes.chr22.vcf.gz", "genotypes.chr22.vcf.gz.tbi", "genes.simulated.chr22.bed.gz",
                     "genes.simulated.chr22.bed.gz.tbi"):
            archive.extract(f"./{name}", folder)
    # sample values are space separated in this BED; qtlhpc's reader wants tabs
    with gzip.open(folder / "genes.simulated.chr22.bed.gz", "rt") as source, \
            gzip.open(folder / "genes.tabs.bed.gz", "wt") as out:
        for line in source:
            out.write(line.replace(" ", "\t"))


def run_qtltools(folder: Path):
    start = time.perf_counter()
    subprocess.run(["QTLtools", "trans", "--vcf", str(folder / "genotypes.chr22.vcf.gz"),
                    "--bed", str(folder / "genes.simulated.chr22.bed.gz"), "--nominal", "--threshold", "1e-5",
                    "--out", str(folder / "qtltools"), "--silent"], check=True, capture_output=True)
    seconds = time.perf_counter() - start
    with gzip.open(folder / "qtltools.hits.txt.gz", "rt") as handle:
        hits = {(f[0], f[3]): float(f[6]) for f in (line.split() for line in handle)}
    return seconds, hits


def run_qtlhpc(folder: Path, ranks: int, threads: int, variant_block: int):
    run_dir = folder / "qtlhpc"
    run_dir.mkdir(exist_ok=True)
    config = run_dir / "analysis.toml"
    config.write_text(f"""[run]
output = "results.h5"
progress = false

[expression]
format = "bed"
file = "{folder / 'genes.tabs.bed.gz'}"

[trans]
genotypes = "{folder / 'genotypes.chr22.vcf.gz'}"
field = "GT"
threshold = 1e-5
variant_block = {variant_block}
""")
    env = dict(os.environ, OPENBLAS_NUM_THREADS=str(threads), OMP_NUM_THREADS=str(threads),
               MKL_NUM_THREADS=str(threads))
    command = [sys.executable, "-m", "qtlhpc", "run", "eqtl-trans", str(config)]
    if ranks > 1:
        env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        command = ["mpirun", "--oversubscribe", "-n", str(ranks), sys.executable, "-m", "mpi4py"] + command[1:]
    start = time.perf_counter()
    proc = subprocess.run(command, cwd=run_dir, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if proc.returncode != 0:
        sys.exit(proc.stderr[-3000:])
    stage = re.search(r"stage trans: done in ([0-9.]+) s", proc.stderr + proc.stdout)
    from qtlhpc.store import open_results

    with open_results(run_dir / "results.h5") as results:
        hits = {(g, v): p for g, v, p in zip(results.read("trans/hit_gene_ids"), results.read("trans/hit_variant_ids"),
                                             results.read("trans/hit_pval"))}
        n_tests = int(results.read("trans/n_tests"))
    return seconds, float(stage.group(1)) if stage else float("nan"), hits, n_tests


def parts_in_process(folder: Path):
    """VCF read (cyvcf2, GT) and the scan kernel, timed apart, one process."""
    from qtlhpc.io.expression_readers import read_expression_bed
    from qtlhpc.io.vcf import read_genotypes
    from qtlhpc.methods.eqtl.trans import map_trans_nominal

    expression = read_expression_bed(folder / "genes.tabs.bed.gz")
    start = time.perf_counter()
    genotypes = read_genotypes(folder / "genotypes.chr22.vcf.gz", field="GT", samples=expression.sample_ids)
    read = time.perf_counter() - start
    start = time.perf_counter()
    map_trans_nominal(expression.values, genotypes.dosages, None, gene_chromosomes=expression.chromosomes,
                      gene_starts=expression.starts, variant_chromosomes=genotypes.chromosomes,
                      variant_positions=genotypes.positions)
    return read, time.perf_counter() - start


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--ranks", type=int, default=1)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--variant-block", type=int, default=20_000)
    parser.add_argument("--keep", default=None, help="work in this folder and keep it")
    args = parser.parse_args()
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        os.environ[name] = str(args.threads)
    if not os.path.isfile(ARCHIVE) or shutil.which("QTLtools") is None:
        sys.exit(f"needs QTLtools and its example {ARCHIVE} (apt-get install qtltools qtltools-example)")
    folder = Path(args.keep or tempfile.mkdtemp(prefix="bench-trans-"))
    folder.mkdir(parents=True, exist_ok=True)
    unpack(folder)
    qt_seconds, qt_hits = run_qtltools(folder)
    total, stage, our_hits, n_tests = run_qtlhpc(folder, args.ranks, args.threads, args.variant_block)
    read, scan = parts_in_process(folder)
    agree = set(qt_hits) == set(our_hits)
    worst = max((abs(our_hits[k] / qt_hits[k] - 1) for k in set(qt_hits) & set(our_hits)), default=0.0)
    print(f"608 genes x 85,485 variants x 358 samples, {n_tests:,} pairs tested outside the 5 Mb cis window")
    print(f"QTLtools trans --nominal --threshold 1e-5:   {qt_seconds:6.2f} s   {len(qt_hits)} hits")
    print(f"qtlhpc run eqtl-trans ({args.ranks} rank(s), {args.threads} BLAS thread(s)): {total:6.2f} s "
          f"(trans stage {stage:.2f} s)   {len(our_hits)} hits")
    print(f"  in-process parts: VCF read (cyvcf2, GT) {read:.2f} s, scan kernel {scan:.2f} s "
          f"({n_tests / scan / 1e6:.1f} M pairs/s)")
    print(f"same hit set: {agree}; largest relative p difference on common hits: {worst:.1e} "
          "(QTLtools prints 6 digits of a float32 computation)")
    if not args.keep:
        shutil.rmtree(folder, ignore_errors=True)


if __name__ == "__main__":
    main()
