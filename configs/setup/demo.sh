#!/usr/bin/env bash
# The README's demo: simulate a cross with planted QTL, run the pipeline under mpirun, show the results.
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

echo "== 1/3 simulate a cross with planted QTL -> $out"
"$py" -m qtlhpc simulate "$config" --set "simulate.write_to=\"$out/cross\"" --output "$out/results.h5"
echo "== 2/3 mpirun -n $ranks: run all stages of $config"
mpirun --oversubscribe -n "$ranks" "$py" -m mpi4py -m qtlhpc run all "$config" \
    --set "input.file=\"$out/cross.csv\"" --output "$out/results.h5"
echo "== 3/3 what is in the results file"
"$py" -m qtlhpc inspect "$out/results.h5"
echo "results: $out/results.h5"
