"""Benchmark: the cost of X-specific permutation thresholds (``permutations.x_specific``, R/qtl's
``scanone(perm.Xsp = TRUE)``) at hyper's size, one core.

A backcross of 250 individuals, autosomes of 1250 cM and an X of 43 cM at a 1 cM grid (hyper at
``calc.genoprob(step = 1)``), 1,000 permutations: the autosome part scans 1,000 permutations, the X part
``ceiling(1250 / 43 x 1000) = 29,070``.  Timed with :func:`qtlhpc.genetics.xchr.xsp_maxima` (what the
stage calls per permutation unit):

* ``males only``: one sex class, no covariates: R/qtl's batch mode (one regression on a matrix of permuted
  phenotypes) for both parts;
* ``both sexes``: two sex classes: each X permutation moves sex with the phenotype (as R/qtl);
* ``both sexes + covariate``: also a covariate, moved with the phenotype in both parts (as R/qtl).

The last two cannot batch the phenotype alone (the null model moves too); they run as matrix products over
batches of permutations (:func:`qtlhpc.genetics.xchr.moved_scan_maxima`).  Before that kernel (this
session, same machine) one X scan per permutation took 1.4 ms (both sexes: 40.7 s for the X part) and
the autosome part with a covariate one scan per permutation (7.8-9.5 s).

    python bench/bench_xsp.py                     # hyper's size
    python bench/bench_xsp.py --permutations 200  # smaller
Probabilities are random (the cost depends on the shapes only).
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402

from qtlhpc.genetics.xchr import x_permutation_counts, xsp_maxima  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--individuals", type=int, default=250)
    parser.add_argument("--autosome-cm", type=float, default=1250.0)
    parser.add_argument("--x-cm", type=float, default=43.0)
    parser.add_argument("--permutations", type=int, default=1000)
    args = parser.parse_args()
    rng = np.random.default_rng(1)
    n = args.individuals
    p_a, p_x = int(args.autosome_cm) + 19, int(args.x_cm) + 1
    autosomes = rng.dirichlet(np.ones(2), size=(n, p_a))
    x = rng.dirichlet(np.ones(2), size=(n, p_x))
    y = rng.normal(size=n)
    n_x = x_permutation_counts(args.permutations, args.autosome_cm, args.x_cm)
    orders_a = [rng.permutation(n) for _ in range(args.permutations)]
    orders_x = [rng.permutation(n) for _ in range(n_x)]
    print(f"n = {n}, {p_a} autosome and {p_x} X positions, {args.permutations} autosome and {n_x} X permutations")
    both = (np.arange(n) % 2).astype(np.int8)
    for label, sex, covariate in (("males only", np.ones(n, dtype=np.int8), None), ("both sexes", both, None),
                                  ("both sexes + covariate", both, rng.normal(size=(n, 1)))):
        started = time.perf_counter()
        xsp_maxima(autosomes, x, y, "bc", sex, None, orders_a, [], covariates=covariate)
        autosome_seconds = time.perf_counter() - started
        started = time.perf_counter()
        xsp_maxima(autosomes, x, y, "bc", sex, None, [], orders_x, covariates=covariate)
        x_seconds = time.perf_counter() - started
        print(f"{label}: autosome part {autosome_seconds:.2f} s, X part {x_seconds:.2f} s "
              f"({1e3 * x_seconds / n_x:.3f} ms per X permutation)")


if __name__ == "__main__":
    main()
