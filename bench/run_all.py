"""Run every benchmark of bench/ in turn and print what each measured (`make bench`).

The numbers quoted in the issues' notes come from these scripts; run them on a quiet machine.
Use `--quick` for smaller sizes (a smoke test of the scripts, not the issue's figures).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent

# (script, full-size arguments, quick arguments); the full sizes are the issues' targets
BENCHMARKS = [
    ("bench_genoprob.py", [], []),
    ("bench_kinship.py", [], ["--individuals", "300", "--markers", "3000"]),
    ("bench_reml.py", [], ["--individuals", "1000"]),
    ("bench_scan2d.py", [], ["--markers", "400"]),
    ("bench_hk2d.py", [], ["--no-r", "--repeats", "1"]),
    ("bench_hk2d_same_chromosome.py", ["--cross", "bc", "--chromosomes", "8", "--markers", "82", "--step", "0"],
     ["--cross", "bc", "--chromosomes", "4", "--markers", "20"]),
    ("bench_pipeline.py", [], ["--bins-per-chromosome", "40"]),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="small sizes: check that the scripts run")
    parser.add_argument("names", nargs="*", help="run only these (e.g. kinship reml)")
    args = parser.parse_args()
    failed = []
    for script, full, quick in BENCHMARKS:
        if args.names and not any(name in script for name in args.names):
            continue
        command = [sys.executable, str(HERE / script)] + (quick if args.quick else full)
        print(f"== {' '.join(command[1:])}", flush=True)
        started = time.perf_counter()
        if subprocess.run(command).returncode:
            failed.append(script)
        print(f"   ({time.perf_counter() - started:.0f} s)\n", flush=True)
    if failed:
        sys.exit(f"failed: {', '.join(failed)}")


if __name__ == "__main__":
    main()
