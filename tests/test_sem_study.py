"""The paper's simulation study (power and FDR of BIC and BIC(delta)): a small version, and the full one
(`paper`: 20 data sets of 100 genes, 300 RILs; not run by `make test`)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import bench_sem  # noqa: E402


def test_small_study_recovers_planted_edges():
    result = bench_sem.study(1, genes=8, edges=12, lines=300, seed=5)
    bic, strict = result["summary"]["BIC"], result["summary"]["BIC(delta)"]
    rows = result["rows"]
    assert rows[1]["edges"] <= rows[0]["edges"]  # BIC(2) keeps no more edges than BIC
    assert bic["gene_power"] >= 0.5 and strict["gene_power"] >= 0.5
    assert strict["gene_fdr"] <= 0.35
    assert result["paper"]["BIC"]["gene_power"] == 0.88


@pytest.mark.paper
def test_paper_simulation_study():
    result = bench_sem.study(20, genes=100, edges=148, lines=300, seed=1)
    print(bench_sem.table(result))
    strict = result["summary"]["BIC(delta)"]
    assert strict["gene_power"] >= 0.6 and strict["gene_fdr"] <= 0.1
    assert strict["eqtl_power"] >= 0.9
