"""The ``cis`` stage on FastQTL's example (364 genes, 373 samples, 1,000 permutations per gene) at 1 and 2 ranks.

Usage: python bench/bench_eqtl_cis_stage.py [--permutations 1000] [--repeats 2] [--ranks 1 2]

The expression stage runs once; each timed run copies that results file and runs only ``cis`` under
``mpirun -n R python -m mpi4py -m qtlhpc run cis``, interleaved 1, 2, 1, 2, ... Prints each run's wall time
and the speed-up of the medians.
"""

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

EXAMPLE = Path("/usr/share/doc/fastqtl/examples/examples.tar.xz")


def environment():
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OPENBLAS_NUM_THREADS="1", OMP_NUM_THREADS="1")
    env.setdefault("OMPI_MCA_btl", "self,vader")
    return env


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--permutations", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--ranks", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--chunks", type=int, default=64)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        with tarfile.open(EXAMPLE) as archive:
            archive.extractall(folder)
        data = next(folder.rglob("genotypes.vcf.gz")).parent
        config = folder / "analysis.toml"
        config.write_text(f"""
[run]
output = "base.h5"
progress = false
[expression]
file = "{data / 'phenotypes.bed.gz'}"
covariates = "{data / 'covariates.txt.gz'}"
[cis]
genotypes = "{data / 'genotypes.vcf.gz'}"
permutations = [{args.permutations}]
chunks = {args.chunks}
""")
        subprocess.run([sys.executable, "-m", "qtlhpc", "run", "expression", str(config)], check=True,
                       capture_output=True, env=environment())
        times = {r: [] for r in args.ranks}
        for repeat in range(args.repeats):
            for ranks in args.ranks:
                output = folder / f"run-{ranks}-{repeat}.h5"
                shutil.copy(folder / "base.h5", output)
                oversubscribe = ["--oversubscribe"] if ranks > (os.cpu_count() or 1) else []
                command = ["mpirun", *oversubscribe, "-n", str(ranks), sys.executable, "-m", "mpi4py", "-m", "qtlhpc",
                           "run", "cis", str(config), "--output", str(output)]
                started = time.perf_counter()
                proc = subprocess.run(command, capture_output=True, text=True, env=environment())
                elapsed = time.perf_counter() - started
                if proc.returncode:
                    sys.exit(proc.stderr[-3000:])
                times[ranks].append(elapsed)
                print(f"{ranks} rank(s), run {repeat + 1}: {elapsed:.1f} s", flush=True)
        medians = {r: statistics.median(v) for r, v in times.items()}
        for ranks, median in medians.items():
            print(f"{ranks} rank(s): median {median:.1f} s over {len(times[ranks])} runs "
                  f"({364 / median:.1f} genes/s, {args.permutations} permutations per gene)")
        if 1 in medians and 2 in medians:
            print(f"speed-up at 2 ranks: {medians[1] / medians[2]:.2f}x on the medians")


if __name__ == "__main__":
    main()
