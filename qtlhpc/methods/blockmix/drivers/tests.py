"""Stage ``blockmix-tests``: tests (ii)-(iv) at the significant positions of test (i) (spec A2.4, A3).

Peaks are the positions whose LR reaches the permutation threshold at ``blockmix_permutations.alpha``, largest
LR first, at most ``blockmix_tests.max_positions``.  At each, every constrained fit starts from the scan's
alternative fit with its means projected onto the constraint and runs ECM to convergence; LR = 2 (cl_full -
cl_constrained).  Work units are (peak, chunk of 16 tests), claimed by the ranks and checkpointed.  The nominal
chi-square p-value (df = number of constraints) with Bonferroni over each family is the default rule [D]: the
CL ratio is not chi-square (it is a weighted sum of chi-squares), so these p-values are anti-conservative.
"""

from __future__ import annotations

import numpy as np

from qtlhpc.methods.blockmix.drivers.inputs import load_inputs, settings
from qtlhpc.methods.blockmix.fitting import PositionFit, constrained_lr, test_units
from qtlhpc.stats.chi2 import chi2_survival
from qtlhpc.stages.runtime import begin_stage, check_needs, write_blocks

STAGE = "blockmix-tests"
SECTION = "blockmix_tests"
CHUNK = 16
KIND = {"ii": 2, "iii": 3, "iv": 4}


def select_peaks(lr: np.ndarray, threshold: float, max_positions: int) -> np.ndarray:
    """Positions with LR >= threshold, largest first (ties: lower index), at most ``max_positions``."""
    significant = np.flatnonzero(lr >= threshold)
    order = np.lexsort((significant, -lr[significant]))
    return significant[order][:max_positions]


def run_tests(context) -> None:
    options = context.config.section(SECTION)
    level = context.config.section("blockmix_permutations")["alpha"]
    em = settings(context)
    with context.open_results() as results:
        lineage = check_needs(context, results)
        data = load_inputs(context, results)
        lr = results.read("blockmix-scan/lr")
        levels = results.read("blockmix-permutations/alphas")
        threshold = float(results.read("blockmix-permutations/thresholds")[np.argmin(np.abs(levels - level))])
        maxima = results.read("blockmix-permutations/max_lr")
        peaks = select_peaks(lr, threshold, options["max_positions"])
        mu, var = results.read("blockmix-scan/mu"), results.read("blockmix-scan/var")
        rho, cl_alt = results.read("blockmix-scan/rho"), results.read("blockmix-scan/cl_alt")
        stage = begin_stage(context, results, lineage=lineage)
        if stage is None:
            return
        Q, K = mu.shape[1], mu.shape[2]
        units = [u for u in test_units(Q, K) if u[0] in options["tests"]]
        stage.write("peak_position", peaks.astype(np.int64))
        stage.write("peak_lr", lr[peaks])
        stage.write("peak_pvalue", (1.0 + (maxima[None, :] >= lr[peaks, None]).sum(axis=1)) / (maxima.size + 1.0))
        stage.write("test_kind", np.array([KIND[u[0]] for u in units], dtype=np.int64))
        stage.write("test_cluster", np.array([u[1] for u in units], dtype=np.int64))
        stage.write("test_other", np.array([u[2] for u in units], dtype=np.int64))
        stage.write("test_genotype", np.array([u[3] for u in units], dtype=np.int64))
        n_peaks, n_tests = len(peaks), len(units)
        chunks = [(a, min(a + CHUNK, n_tests)) for a in range(0, n_tests, CHUNK)]
        blocks = [(p, c) for p in range(n_peaks) for c in range(len(chunks))]
        shapes = {"lr": (n_peaks, n_tests), "failed": (n_peaks, n_tests)}

        def compute(block: int):
            p, c = blocks[block]
            position = int(peaks[p])
            pi = np.ascontiguousarray(data.probs[:, position, :])
            full = PositionFit(float(lr[position]), float(cl_alt[position]), np.nan, mu[position], var[position],
                               rho[position], 0, True, False, np.empty((0, K)))
            a, b = chunks[c]
            values, failed = [], []
            for test, cluster, other, genotype in units[a:b]:
                statistic, _ = constrained_lr(data.Y, pi, full, test, cluster, other, genotype, em, data.YT)
                values.append(statistic)
                failed.append(statistic < -2e-6 * abs(full.cl_alt))
            selection = (slice(p, p + 1), slice(a, b))
            return {"lr": (selection, np.array([values])), "failed": (selection, np.array([failed]))}

        if blocks:
            writer = stage.blocked(shapes, n_blocks=len(blocks), key="tests")
            context.comm.Barrier()
            write_blocks(context, writer, "blockmix-tests", range(len(blocks)), compute, claimed=True)
            statistics = results.read(f"{STAGE}/lr", allow_incomplete=True)
        else:
            statistics = np.zeros((0, n_tests))
            stage.write("lr", statistics)
            stage.write("failed", np.zeros((0, n_tests), dtype=bool))
        write_decisions(stage, statistics, units, peaks, mu, Q, K, options["alpha"])
        stage.finish()
    context.log.info("blockmix-tests: %d peaks at LR >= %.4g, %d constrained fits each", n_peaks, threshold, n_tests)


def write_decisions(stage, statistics, units, peaks, mu, Q, K, alpha) -> None:
    """Nominal p-values, Bonferroni decisions per family, pleiotropy counts and interaction classes."""
    kinds = np.array([KIND[u[0]] for u in units], dtype=np.int64)
    df = np.where(kinds == 4, 1, Q - 1).astype(float)
    family = {2: K, 3: K * (K - 1) // 2, 4: Q * K * (K - 1) // 2}
    pvalue = chi2_survival(np.maximum(statistics, 0.0), df[None, :]) if statistics.size else statistics
    limits = np.array([alpha / max(family[k], 1) for k in kinds])
    reject = pvalue <= limits[None, :] if statistics.size else np.zeros(statistics.shape, bool)
    direction = np.zeros(statistics.shape, dtype=bool)
    for t, (test, cluster, other, _) in enumerate(units):
        if test != "iii" or Q < 2:
            continue
        effect = mu[peaks, 1, :] - mu[peaks, 0, :]
        direction[:, t] = reject[:, t] & (np.sign(effect[:, cluster]) != np.sign(effect[:, other]))
    stage.write("pvalue", np.asarray(pvalue, dtype=float).reshape(statistics.shape))
    stage.write("reject", np.asarray(reject, dtype=bool).reshape(statistics.shape))
    stage.write("n_affected", (reject & (kinds == 2)[None, :]).sum(axis=1).astype(np.int64))
    stage.write("interaction_direction", direction)
