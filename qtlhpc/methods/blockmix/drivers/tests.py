"""Stage ``blockmix-tests``: tests (ii)-(iv) at the significant positions of test (i) (spec A2.4, A3), their
parametric bootstrap, and the cluster networks by genotype (spec A2.5).

Peaks are the positions whose LR reaches the permutation threshold at ``blockmix_permutations.alpha``, largest
LR first, at most ``blockmix_tests.max_positions``.  At each, every constrained fit starts from the scan's
alternative fit with its means projected onto the constraint and runs ECM to convergence; LR = 2 (cl_full -
cl_constrained); a fit that beats the full fit is rerun from the test-(i) null projected onto the constraint and
flagged ``failed`` if it still does.  Work units are (peak, chunk of 16 tests), claimed by the ranks and
checkpointed (key ``tests``).  The nominal chi-square p-value (df = number of constraints) with Bonferroni over
each family is the default rule [D]: the CL ratio is not chi-square (it is a weighted sum of chi-squares), so
these p-values are anti-conservative.

With ``bootstrap = B > 0`` every test is also referred to B replicates simulated from its constrained fit
(:func:`qtlhpc.methods.blockmix.fitting.bootstrap_lr`; stream keyed by (position, test id, replicate)); the work
units are (peak, test, chunk of 8 replicates), claimed and checkpointed (key ``bootstrap``), after the observed
fits.  The networks are one E-step and a few correlations per peak, computed on rank 0.  Every position at or
above the threshold is grouped into spots (spec A2.2 step 7).
"""

from __future__ import annotations

import numpy as np

from qtlhpc.methods.blockmix import kernels
from qtlhpc.methods.blockmix.drivers.inputs import load_inputs, settings
from qtlhpc.methods.blockmix.drivers.scan import read_null
from qtlhpc.methods.blockmix.fitting import (
    PositionFit, bootstrap_lr, bootstrap_pvalue, constrained_lr, failed_fit, test_units)
from qtlhpc.methods.blockmix.networks import genotype_networks
from qtlhpc.methods.blockmix.spots import group_spots
from qtlhpc.parallel.comm import on_root
from qtlhpc.stats.chi2 import chi2_survival
from qtlhpc.stages.runtime import begin_stage, check_needs, write_blocks

STAGE = "blockmix-tests"
SECTION = "blockmix_tests"
CHUNK = 16
BOOTSTRAP_CHUNK = 8
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
        null = read_null(results)
        stage = begin_stage(context, results, lineage=lineage)
        if stage is None:
            return
        Q, K = mu.shape[1], mu.shape[2]
        every = test_units(Q, K)
        units = [u for u in every if u[0] in options["tests"]]
        index_of = {u: t for t, u in enumerate(every)}
        test_ids = [index_of[u] for u in units]
        stage.write("peak_position", peaks.astype(np.int64))
        stage.write("peak_lr", lr[peaks])
        stage.write("peak_pvalue", (1.0 + (maxima[None, :] >= lr[peaks, None]).sum(axis=1)) / (maxima.size + 1.0))
        stage.write("test_kind", np.array([KIND[u[0]] for u in units], dtype=np.int64))
        stage.write("test_cluster", np.array([u[1] for u in units], dtype=np.int64))
        stage.write("test_other", np.array([u[2] for u in units], dtype=np.int64))
        stage.write("test_genotype", np.array([u[3] for u in units], dtype=np.int64))
        n_peaks, n_tests, B = len(peaks), len(units), options["bootstrap"]
        chunks = [(a, min(a + CHUNK, n_tests)) for a in range(0, n_tests, CHUNK)]
        blocks = [(p, c) for p in range(n_peaks) for c in range(len(chunks))]
        shapes = {"lr": (n_peaks, n_tests), "failed": (n_peaks, n_tests),
                  "constrained_mu": (n_peaks, n_tests, Q, K), "constrained_var": (n_peaks, n_tests, Q, K),
                  "constrained_rho": (n_peaks, n_tests, K)}

        def full_fit(position: int) -> PositionFit:
            return PositionFit(float(lr[position]), float(cl_alt[position]), np.nan, mu[position], var[position],
                               rho[position], 0, True, False, np.empty((0, K)))

        def compute(block: int):
            p, c = blocks[block]
            position = int(peaks[p])
            pi = np.ascontiguousarray(data.probs[:, position, :])
            full = full_fit(position)
            a, b = chunks[c]
            values, failed, fits = [], [], []
            for test, cluster, other, genotype in units[a:b]:
                statistic, fit = constrained_lr(data.Y, pi, full, test, cluster, other, genotype, em, data.YT, null)
                values.append(statistic)
                failed.append(failed_fit(statistic, full.cl_alt))
                fits.append(fit)
            rows = (slice(p, p + 1), slice(a, b))
            return {"lr": (rows, np.array([values])), "failed": (rows, np.array([failed])),
                    "constrained_mu": (rows + (slice(None),) * 2, np.array([[f.mu for f in fits]])),
                    "constrained_var": (rows + (slice(None),) * 2, np.array([[f.var for f in fits]])),
                    "constrained_rho": (rows + (slice(None),), np.array([[f.rho for f in fits]]))}

        if blocks:
            writer = stage.blocked(shapes, n_blocks=len(blocks), key="tests")
            context.comm.Barrier()
            write_blocks(context, writer, "blockmix-tests", range(len(blocks)), compute, claimed=True)
            statistics = results.read(f"{STAGE}/lr", allow_incomplete=True)
            replicates = run_bootstrap(context, stage, results, data, peaks, units, test_ids, B, em)
        else:
            statistics = np.zeros((0, n_tests))
            for name, shape in shapes.items():
                stage.write(name, np.zeros(shape, dtype=bool if name == "failed" else float))
            replicates = np.zeros((0, n_tests, B))
            stage.write("bootstrap_lr", replicates)
        write_decisions(stage, statistics, units, peaks, mu, Q, K, options["alpha"], replicates)
        if B and n_peaks and n_tests and B + 1 < max(family_sizes(Q, K)[KIND[u[0]]] for u in units) / options["alpha"]:
            context.log.warning("blockmix-tests: bootstrap = %d replicates give p >= 1/%d, above alpha / family "
                                "size for the largest family: raise [blockmix_tests] bootstrap for the bootstrap "
                                "decisions to reject at all", B, B + 1)
        write_networks(context, stage, data, peaks, mu, var, rho, em, options["network_edge"])
        spots = group_spots(data.chromosomes, lr, threshold)
        stage.write("spot_label", spots.label)
        stage.write("spot_first", spots.first)
        stage.write("spot_last", spots.last)
        stage.write("spot_best", spots.best)
        stage.write("spot_count", spots.count)
        stage.write("peak_spot", spots.of_positions(peaks))
        stage.finish()
    context.log.info("blockmix-tests: %d peaks at LR >= %.4g, %d constrained fits each, %d bootstrap replicates "
                     "per test", n_peaks, threshold, n_tests, B)


def run_bootstrap(context, stage, results, data, peaks, units, test_ids, B, em) -> np.ndarray:
    """The ``(n_peaks, n_tests, B)`` bootstrap LRs: blocks of (peak, test, chunk of replicates), claimed and
    checkpointed; reads the constrained fits the observed blocks stored."""
    n_peaks, n_tests = len(peaks), len(units)
    if B == 0:
        empty = np.zeros((n_peaks, n_tests, 0))
        stage.write("bootstrap_lr", empty)
        return empty
    c_mu = results.read(f"{STAGE}/constrained_mu", allow_incomplete=True)
    c_var = results.read(f"{STAGE}/constrained_var", allow_incomplete=True)
    c_rho = results.read(f"{STAGE}/constrained_rho", allow_incomplete=True)
    chunks = [(a, min(a + BOOTSTRAP_CHUNK, B)) for a in range(0, B, BOOTSTRAP_CHUNK)]
    blocks = [(p, t, c) for p in range(n_peaks) for t in range(n_tests) for c in range(len(chunks))]
    n_genes = data.Y.shape[1]

    def compute(block: int):
        p, t, c = blocks[block]
        position = int(peaks[p])
        pi = np.ascontiguousarray(data.probs[:, position, :])
        test, cluster, other, genotype = units[t]
        a, b = chunks[c]
        values = [bootstrap_lr(pi, c_mu[p, t], c_var[p, t], c_rho[p, t], n_genes, test, cluster, other, genotype,
                               context.seed, position, test_ids[t], r, em) for r in range(a, b)]
        return {"bootstrap_lr": ((slice(p, p + 1), slice(t, t + 1), slice(a, b)), np.array([[values]]))}

    writer = stage.blocked({"bootstrap_lr": (n_peaks, n_tests, B)}, n_blocks=len(blocks), key="bootstrap")
    context.comm.Barrier()
    write_blocks(context, writer, "blockmix-tests bootstrap", range(len(blocks)), compute, claimed=True)
    return results.read(f"{STAGE}/bootstrap_lr", allow_incomplete=True)


def family_sizes(Q: int, K: int) -> dict:
    """Bonferroni family of each test kind at a position: K, K (K - 1) / 2, Q K (K - 1) / 2."""
    return {2: K, 3: K * (K - 1) // 2, 4: Q * K * (K - 1) // 2}


def write_decisions(stage, statistics, units, peaks, mu, Q, K, alpha, replicates) -> None:
    """Nominal and bootstrap p-values, Bonferroni decisions per family, pleiotropy counts and interaction
    classes."""
    kinds = np.array([KIND[u[0]] for u in units], dtype=np.int64)
    df = np.where(kinds == 4, 1, Q - 1).astype(float)
    family = family_sizes(Q, K)
    pvalue = chi2_survival(np.maximum(statistics, 0.0), df[None, :]) if statistics.size else statistics
    limits = np.array([alpha / max(family[k], 1) for k in kinds])
    reject = pvalue <= limits[None, :] if statistics.size else np.zeros(statistics.shape, bool)
    boot = bootstrap_pvalue(statistics, replicates)
    boot_reject = np.zeros(statistics.shape, dtype=bool)
    if statistics.size:
        with np.errstate(invalid="ignore"):
            boot_reject = boot <= limits[None, :]
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
    stage.write("bootstrap_pvalue", np.asarray(boot, dtype=float).reshape(statistics.shape))
    stage.write("bootstrap_reject", np.asarray(boot_reject, dtype=bool).reshape(statistics.shape))
    stage.write("n_affected_bootstrap", (boot_reject & (kinds == 2)[None, :]).sum(axis=1).astype(np.int64))


def write_networks(context, stage, data, peaks, mu, var, rho, em, edge: float) -> None:
    """The cluster networks by genotype at every peak (spec A2.5), computed on rank 0: the column posterior of
    the peak's fit (one E-step), cluster scores, weighted correlations and their homogeneity test."""
    Q, K = mu.shape[1], mu.shape[2]

    def compute():
        found = []
        for position in peaks:
            pi = np.ascontiguousarray(data.probs[:, int(position), :])
            stats = kernels.estep_stats(data.Y, pi, rho[position], mu[position], var[position], parts=em.parts,
                                        YT=data.YT)
            column = kernels.posterior(stats, pi, rho[position], em.parts).column
            found.append(genotype_networks(data.Y, column, pi))
        return found

    networks = on_root(context.comm, compute)
    n = len(peaks)
    stage.write("network_corr", np.array([w.corr for w in networks]).reshape(n, Q, K, K))
    stage.write("network_corr_all", np.array([w.corr_all for w in networks]).reshape(n, K, K))
    stage.write("network_n_eff", np.array([w.n_eff for w in networks]).reshape(n, Q))
    stage.write("network_difference", np.array([w.statistic for w in networks]).reshape(n, K, K))
    stage.write("network_difference_pvalue", np.array([w.pvalue for w in networks]).reshape(n, K, K))
    stage.write("network_edge", np.float64(edge))
