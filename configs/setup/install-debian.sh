#!/usr/bin/env bash
# Install what qtlhpc needs on Debian 12, idempotently and quietly when it is already there:
#   1. Debian's packages (the MPI / parallel HDF5 / PETSc / SLEPc stack, or the test extras);
#   2. a virtual environment on /usr/bin/python3 with the system site packages;
#   3. qtlhpc in editable mode with its extras, numpy & co. held at Debian's versions.
# Usage: install-debian.sh [--packages-only] VENV PACKAGE...
set -euo pipefail

packages_only=0
if [ "${1:-}" = "--packages-only" ]; then packages_only=1; shift; fi
venv=$1; shift
here=$(cd "$(dirname "$0")/../.." && pwd)

say() { echo "qtlhpc setup: $*"; }

if [ ! -r /etc/debian_version ] || ! command -v dpkg-query >/dev/null 2>&1; then
    say "this is not a Debian system, so the automatic set-up cannot install the stack."
    say "Install MPI, parallel HDF5 with h5py, mpi4py, numpy, scipy (and petsc4py/slepc4py for the"
    say "PETSc/SLEPc backends) from your modules, Spack or conda-forge, then: pip install -e '.[test,plink,plots]'"
    say "See docs/install.md, section 'On a cluster'."
    exit 1
fi

missing=()
for pkg in "$@"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed"; then
        missing+=("$pkg")
    fi
done
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" != 0 ]; then
        say "these Debian packages are missing: ${missing[*]}"
        say "run as root:  apt-get install -y ${missing[*]}   (or ask your administrator), then run make again."
        exit 1
    fi
    say "installing Debian packages: ${missing[*]}"
    log=$(mktemp)
    recommends=()
    [ "$packages_only" = 1 ] && recommends=(--no-install-recommends)
    if ! { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${recommends[@]}" "${missing[@]}"; } >"$log" 2>&1; then
        cat "$log"; say "apt-get failed (above)"; exit 1
    fi
    rm -f "$log"
fi
[ "$packages_only" = 1 ] && exit 0

if [ ! -x "$venv/bin/python" ]; then
    say "creating the virtual environment $venv (Debian's python3, with system site packages)"
    /usr/bin/python3 -m venv --system-site-packages "$venv"
fi
py="$venv/bin/python"
site=$("$py" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')
# petsc4py / slepc4py are found through .pth files that read PETSC_DIR / SLEPC_DIR; Debian sets no
# default without its -dev packages, so the venv sets one (a user's own PETSC_DIR wins).
cat > "$site/00-qtlhpc-petsc-dirs.pth" <<'PTH'
import os, glob; os.environ.setdefault("PETSC_DIR", (sorted(glob.glob("/usr/lib/petscdir/petsc3*/*-real")) or [""])[-1]); os.environ.setdefault("SLEPC_DIR", (sorted(glob.glob("/usr/lib/slepcdir/slepc3*/*-real")) or [""])[-1])
PTH

say "installing qtlhpc (editable) and its extras into $venv"
log=$(mktemp)
extras=$("$py" - "$here/pyproject.toml" <<'PY'
import sys, tomllib
deps = tomllib.load(open(sys.argv[1], "rb"))["project"]["optional-dependencies"]
print(" ".join(deps["jit"] + deps["test"] + deps["plink"] + deps["plots"]))
PY
)
# The project is installed without dependency resolution: its compiled core dependencies (numpy,
# scipy, h5py, mpi4py) come from Debian, whose MPI build of h5py pip does not recognise as "h5py";
# the pure-PyPI one (numba) comes with the "jit" extra.
if ! { "$py" -m pip install -q --disable-pip-version-check --no-deps -e "$here" \
       && "$py" -m pip install -q --disable-pip-version-check -c "$here/configs/pip-constraints.txt" $extras; } >"$log" 2>&1; then
    grep -v "is ignored: it is neither" "$log" || true
    say "pip failed (above)"; exit 1
fi
rm -f "$log"
"$py" -c "import numpy, scipy, h5py, mpi4py, qtlhpc" || { say "the environment does not import (above)"; exit 1; }
say "ready: $venv (run: $venv/bin/qtlhpc info)"
