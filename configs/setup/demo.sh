#!/usr/bin/env bash
# The README's demo: simulate a cross with planted QTL, run the epistatic pipeline under mpirun,
# write the report, and say whether the planted QTL and pairs were found.
# Usage: demo.sh VENV OUTPUT_DIR N_RANKS
set -euo pipefail
venv=$1; out=$2; ranks=$3
here=$(cd "$(dirname "$0")/../.." && pwd)
py="$here/$venv/bin/python"
[ -x "$py" ] || py="$venv/bin/python"
mkdir -p "$out"
out=$(cd "$out" && pwd)
config="$here/configs/demo.toml"
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
started=$(date +%s)

echo "== 1/3 simulate an immortalized-F2-like cross with planted QTL -> $out"
"$py" -m qtlhpc simulate "$config" --set "simulate.write_to=\"$out/cross\"" --output "$out/results.h5"
echo "== 2/3 mpirun -n $ranks: genoprob, kinship, varcomp, scan1d, scan2d, permutations, report"
mpirun --oversubscribe -n "$ranks" "$py" -m mpi4py -m qtlhpc run all "$config" \
    --set "input.file=\"$out/cross.csv\"" --set "report.directory=\"$out/report\"" --output "$out/results.h5"
echo "== 3/3 were the planted QTL found?"
"$py" -m qtlhpc check-truth "$out/results.h5" "$out/cross_truth.json"
echo
echo "results: $out/results.h5   (qtlhpc inspect / qtlhpc export)"
echo "report:  $out/report/index.html"
echo "demo finished in $(( $(date +%s) - started )) s"
