"""SEM kernels against lavaan, systemfit, numpy's slogdet, a dense generic optimiser and planted truth."""

from __future__ import annotations

import math
import shutil
import subprocess

import numpy as np
import pytest
import scipy.optimize

from qtlhpc.methods.sem import kernels as K
from requirements import require, skip_or_fail

# gene edges (tail, head) and eQTL edges (qtl, head) of the models fitted in R
ONE_LOOP = dict(p=3, q=3, genes=[(0, 1), (1, 0), (1, 2)], qtls=[(0, 0), (1, 1), (2, 2)])
# two cycles sharing gene 1: 0 <-> 1 and 1 -> 2 -> 3 -> 1; gene 4 below them; two eQTL on gene 2
TWO_LOOPS = dict(p=5, q=6, genes=[(0, 1), (1, 0), (1, 2), (2, 3), (3, 1), (3, 4)],
                 qtls=[(0, 0), (1, 1), (2, 2), (3, 3), (4, 4), (5, 2)])


def _data(model, seed, n=150, noise=0.5):
    rng = np.random.default_rng(seed)
    p, q = model["p"], model["q"]
    X = rng.integers(0, 2, size=(n, q)).astype(float)
    B = np.zeros((p, p))
    for tail, head in model["genes"]:
        B[head, tail] = rng.uniform(0.2, 0.5) * rng.choice([-1, 1])
    F = np.zeros((p, q))
    for qtl, head in model["qtls"]:
        F[head, qtl] = 1.0
    return X, K.simulate_linear(B, F, np.full(p, noise), X, rng), B, F


def _r_formula(model):
    lines = []
    for gene in range(model["p"]):
        terms = [f"y{t}" for t, h in model["genes"] if h == gene] + [f"x{x}" for x, h in model["qtls"] if h == gene]
        if terms:
            lines.append(f"y{gene} ~ " + " + ".join(terms))
    return lines


def _rscript(script: str, library: str) -> dict:
    if shutil.which("Rscript") is None:
        skip_or_fail("Rscript is not on PATH (apt-get install r-base-core)")
    run = subprocess.run(["Rscript", "-e", script], capture_output=True, text=True, timeout=300)
    if run.returncode != 0:
        if f"no package called ‘{library}’" in run.stderr or f"no package called '{library}'" in run.stderr:
            skip_or_fail(f"R package {library} is missing (apt-get install r-cran-{library})")
        raise AssertionError(run.stderr)
    values = {}
    for line in run.stdout.splitlines():
        if line.startswith("VAL "):
            _, name, value = line.split()
            values[name] = float(value)
    return values


def _write(tmp_path, X, Y):
    path = tmp_path / "data.csv"
    header = ",".join([f"y{i}" for i in range(Y.shape[1])] + [f"x{i}" for i in range(X.shape[1])])
    np.savetxt(path, np.hstack([Y, X]), delimiter=",", header=header, comments="", fmt="%.17g")
    return path


LAVAAN = """
suppressMessages(library(lavaan))
d <- read.csv("{path}")
f0 <- sem("{model}", data = d, fixed.x = TRUE, likelihood = "normal")
stopifnot(lavInspect(f0, "converged"))
# polish lavaan's optimum from its own estimates (nlminb's default rel.tol leaves ~1e-6 in the estimates)
f <- suppressWarnings(sem("{model}", data = d, fixed.x = TRUE, likelihood = "normal", start = f0,
                          control = list(rel.tol = 1e-14, iter.max = 10000, eval.max = 10000)))

fmt <- function(x) formatC(x, digits = 17, format = "g")
cat("VAL loglik", fmt(as.numeric(suppressWarnings(logLik(f)))), "\\n")
cat("VAL bic", fmt(suppressWarnings(BIC(f))), "\\n")
cat("VAL npar", fmt(fitMeasures(f0, "npar")), "\\n")
cat("VAL loglik_default", fmt(as.numeric(logLik(f0))), "\\n")
pe <- parameterEstimates(f)
for (i in seq_len(nrow(pe))) cat("VAL", paste0(pe$lhs[i], pe$op[i], pe$rhs[i]), fmt(pe$est[i]), "\\n")
"""


@pytest.mark.parametrize("model", [ONE_LOOP, TWO_LOOPS], ids=["one-loop", "two-loops-sharing-a-gene"])
@pytest.mark.parametrize("seed", [1, 2])
def test_fit_equals_lavaan(tmp_path, model, seed):
    X, Y, _, _ = _data(model, seed)
    path = _write(tmp_path, X, Y)
    r = _rscript(LAVAAN.format(path=path, model="\n".join(_r_formula(model))), "lavaan")
    fit = K.fit_model(Y, X, model["genes"], model["qtls"])
    n = Y.shape[0]
    assert fit.loglik == pytest.approx(r["loglik"], abs=1e-6)
    assert fit.loglik == pytest.approx(r["loglik_default"], abs=1e-6)
    assert fit.loglik >= r["loglik"] - 1e-9  # never a worse optimum than lavaan's
    assert fit.ic(n) == pytest.approx(r["bic"], abs=1e-6)
    assert fit.n_params == r["npar"]
    for tail, head in model["genes"]:
        assert fit.B[head, tail] == pytest.approx(r[f"y{head}~y{tail}"], abs=1e-6)
    for qtl, head in model["qtls"]:
        assert fit.F[head, qtl] == pytest.approx(r[f"y{head}~x{qtl}"], abs=1e-6)
    for gene in range(model["p"]):
        assert fit.sigma2[gene] == pytest.approx(r[f"y{gene}~~y{gene}"], abs=1e-6)


SYSTEMFIT = """
suppressMessages(library(systemfit))
d <- read.csv("{path}")
eqs <- list({equations})
f <- systemfit(eqs, method = "2SLS", inst = {instruments}, data = d)
cf <- coef(f)
for (n in names(cf)) cat("VAL", n, formatC(cf[[n]], digits = 17, format = "g"), "\\n")
"""


def test_two_stage_least_squares_equals_systemfit(tmp_path):
    model = TWO_LOOPS
    X, Y, _, _ = _data(model, 5)
    path = _write(tmp_path, X, Y)
    p = model["p"]
    gene_parents, qtl_parents = K.parent_lists(p, model["genes"], model["qtls"])
    members = np.array([0, 1, 2, 3])  # the cyclic factor
    Yc, Xc = K.centre(Y, X)
    stats = K.factor_stats(Yc, Xc, members, gene_parents, qtl_parents)
    betas, flags = K.two_stage_least_squares(Yc, Xc, stats)
    assert not flags.any()
    formulas = _r_formula(model)[:4]
    equations = ", ".join(f"eq{i} = {f}" for i, f in enumerate(formulas))
    r = _rscript(SYSTEMFIT.format(path=path, equations=equations, instruments="~ x0 + x1 + x2 + x3 + x5"),
                 "systemfit")
    for i, gene in enumerate(members):
        parents = members[stats.inside[i]]
        for parent, value in zip(parents, betas[i]):
            assert value == pytest.approx(r[f"eq{i}_y{parent}"], abs=1e-8)


def test_two_stage_least_squares_by_hand():
    """2SLS of a two-gene loop: b = (Zhat'Zhat)^-1 Zhat'y with Zhat the fits on all instruments."""
    model = ONE_LOOP
    X, Y, _, _ = _data(model, 9)
    Yc, Xc = K.centre(Y, X)
    gene_parents, qtl_parents = K.parent_lists(3, model["genes"], model["qtls"])
    stats = K.factor_stats(Yc, Xc, np.array([0, 1]), gene_parents, qtl_parents)
    betas, _ = K.two_stage_least_squares(Yc, Xc, stats)
    Z = Xc[:, [0, 1]]
    projection = Z @ np.linalg.pinv(Z)
    for gene, other, own in ((0, 1, 0), (1, 0, 1)):
        W = np.column_stack([projection @ Yc[:, other], Xc[:, own]])
        expected = np.linalg.solve(W.T @ W, W.T @ Yc[:, gene])
        assert betas[gene][0] == pytest.approx(expected[0], abs=1e-10)


def _random_i_minus_b(n, seed, density=0.2):
    rng = np.random.default_rng(seed)
    mask = rng.random((n, n)) < density
    np.fill_diagonal(mask, False)
    A = np.eye(n) - np.where(mask, rng.normal(0, 0.6, (n, n)), 0.0)
    return A


def test_logdet_scipy_equals_slogdet():
    from qtlhpc.solvers import sparse_lu

    for seed in range(5):
        A = _random_i_minus_b(40, seed)
        assert K.logabsdet(A, sparse_lu("scipy")) == pytest.approx(np.linalg.slogdet(A)[1], abs=1e-9)


def test_logdet_petsc_backends_equal_slogdet():
    require("petsc")
    from qtlhpc.solvers import available_lu_solvers, sparse_lu
    from qtlhpc.solvers.sparse_lu import LogDetUnsupportedError

    solvers = available_lu_solvers()
    assert "mumps" in solvers
    checked, solve_only = [], []
    for solver in solvers:
        backend = sparse_lu("petsc", solver=solver)
        for seed in range(3):
            A = _random_i_minus_b(60, seed)
            expected = np.linalg.slogdet(A)
            with backend.factor(A) as factors:
                np.testing.assert_allclose(factors.solve(np.arange(60.0)), np.linalg.solve(A, np.arange(60.0)),
                                           rtol=1e-9, atol=1e-9)
                try:
                    sign, value = factors.logabsdet()
                except LogDetUnsupportedError:
                    solve_only.append(solver)
                    continue
            assert sign == expected[0] and value == pytest.approx(expected[1], abs=1e-9)
        if solver not in solve_only:
            checked.append(solver)
    # the SEM kernels take the determinant from scipy when the backend cannot give it
    assert K.logabsdet(_random_i_minus_b(60, 0), sparse_lu("petsc", solver="umfpack")) == pytest.approx(
        np.linalg.slogdet(_random_i_minus_b(60, 0))[1], abs=1e-9)
    assert "mumps" in checked and "petsc" in checked


def test_factorised_equals_unfactorised_and_backends_agree():
    model = TWO_LOOPS
    X, Y, _, _ = _data(model, 3)
    fit = K.fit_model(Y, X, model["genes"], model["qtls"])
    assert len(fit.factors) == 2  # the 4-gene component and gene 4
    assert fit.loglik == pytest.approx(K.loglik_full(Y, X, fit.B, fit.F, fit.sigma2), abs=1e-8)
    from qtlhpc.solvers import sparse_lu

    backends = [sparse_lu("scipy")]
    try:
        backends.append(sparse_lu("petsc", solver="mumps"))
        backends.append(sparse_lu("petsc", solver="umfpack"))
    except Exception:  # PETSc is optional here; the dense path is the reference
        pass
    for backend in backends:
        other = K.fit_model(Y, X, model["genes"], model["qtls"], factor_fit_kwargs={"backend": backend})
        assert other.loglik == pytest.approx(fit.loglik, abs=1e-7), backend


def test_bcd_reaches_the_generic_optimiser_maximum():
    """BCD's concentrated maximum equals Nelder-Mead/BFGS on the unconcentrated Eq. (4)."""
    model = ONE_LOOP
    X, Y, _, _ = _data(model, 4, n=80)
    fit = K.fit_model(Y, X, model["genes"], model["qtls"])
    Yc, Xc = K.centre(Y, X)
    genes, qtls = model["genes"], model["qtls"]

    def negative(theta):
        B = np.zeros((3, 3))
        F = np.zeros((3, 3))
        for j, (t, h) in enumerate(genes):
            B[h, t] = theta[j]
        for j, (x, h) in enumerate(qtls):
            F[h, x] = theta[len(genes) + j]
        sigma2 = np.exp(theta[len(genes) + len(qtls):])
        value = K.loglik_full(Yc, Xc, B, F, sigma2, centred=True)
        return -value if math.isfinite(value) else 1e10

    best = math.inf
    for seed in range(3):
        x0 = np.random.default_rng(seed).normal(0, 0.3, len(genes) + len(qtls) + 3)
        result = scipy.optimize.minimize(negative, x0, method="BFGS", options={"gtol": 1e-9, "maxiter": 10000})
        best = min(best, result.fun)
    assert -best <= fit.loglik + 1e-6
    assert -best == pytest.approx(fit.loglik, abs=1e-4)


def test_bcd_is_monotone():
    model = TWO_LOOPS
    X, Y, _, _ = _data(model, 6)
    Yc, Xc = K.centre(Y, X)
    gp, qp = K.parent_lists(5, model["genes"], model["qtls"])
    stats = K.factor_stats(Yc, Xc, np.array([0, 1, 2, 3]), gp, qp)
    betas = K.zero_start(stats)
    values = [K.factor_loglik(stats, betas)]
    for _ in range(6):
        betas = K.bcd(stats, betas, max_sweeps=1).betas
        values.append(K.factor_loglik(stats, betas))
    assert np.all(np.diff(values) >= -1e-9)


def test_recovers_planted_coefficients():
    model = TWO_LOOPS
    X, Y, B, F = _data(model, 11, n=20000, noise=0.3)
    fit = K.fit_model(Y, X, model["genes"], model["qtls"])
    assert np.max(np.abs(fit.B - B)) < 0.05
    assert np.max(np.abs(fit.F - F)) < 0.05
    assert np.max(np.abs(fit.sigma2 - 0.3)) < 0.03


def test_under_identified_equations_are_flagged():
    # 0 <-> 1, only gene 0 has an eQTL: gene 0's equation has no excluded instrument
    rng = np.random.default_rng(0)
    X = rng.integers(0, 2, size=(100, 1)).astype(float)
    Y = rng.normal(size=(100, 2))
    fit = K.fit_model(Y, X, [(0, 1), (1, 0)], [(0, 0)])
    assert fit.under_identified.tolist() == [0]
    assert math.isfinite(fit.loglik)
    identified = K.fit_model(Y, np.column_stack([X, rng.integers(0, 2, 100)]), [(0, 1), (1, 0)], [(0, 0), (1, 1)])
    assert identified.under_identified.tolist() == []


def test_information_criteria():
    assert K.information_criterion(-10.0, 4, 100) == pytest.approx(20 + 4 * math.log(100))
    assert K.information_criterion(-10.0, 4, 100, delta=2.0) == pytest.approx(20 + 8 * math.log(100))
