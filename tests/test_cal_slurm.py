"""The CAL job on the private single-node SLURM: a reduced version of the same job (5 permutation replicates)
submitted with ``qtlhpc submit cal``, cal-search as a 3-task array merged by merge-cal-search, gives the numbers
of a direct serial run."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from slurm_cluster import slurm_cluster  # noqa: F401  (the session fixture)
from test_cal_stages import FIELDS, same, stored, write_config
from test_slurm_pipeline import qtlhpc as cluster_qtlhpc
from test_slurm_pipeline import submissions, wait_all, write_site

STAGES = ("expression", "cal-prepare", "cal-search", "merge-cal-search", "cal-select", "report")
RESOURCES = ", ".join(f"{stage} = {{ ntasks = 1, time = '00:10:00', mem_per_cpu = '500M' }}" for stage in STAGES)


@pytest.mark.slurm
def test_cal_array_job_matches_direct_run(tmp_path, slurm_cluster):  # noqa: F811
    direct = tmp_path / "direct"
    direct.mkdir()
    config = write_config(direct)
    proc = subprocess.run([sys.executable, "-m", "qtlhpc", "run", "cal", config], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    expected = stored(direct / "results.h5")

    submitted = tmp_path / "slurm"
    submitted.mkdir()
    config = write_config(submitted, extra=f"\n[slurm]\narray_tasks = 3\nresources = {{ {RESOURCES} }}\n")
    text = config.read_text().replace('progress = false', 'progress = false\nstages = ["cal"]')
    config.write_text(text)
    site = write_site(tmp_path, "mpirun")
    out = cluster_qtlhpc(slurm_cluster, "submit", "cal", config, "--site", site).stdout
    run_dir = Path(re.search(r"run directory (\S+)", out).group(1))
    states = wait_all(slurm_cluster, run_dir, timeout=300)
    assert set(states.values()) == {"COMPLETED"}, states
    stages = [r["stage"] for r in submissions(run_dir)]
    assert "cal-search" in stages and "merge-cal-search" in stages
    tasks = sorted((run_dir / "units" / "cal-search").glob("task-*.h5"))
    assert len(tasks) == 3
    found = stored(submitted / "results.h5")
    for name in FIELDS + ("replicates", "pvalue", "qvalue", "pi0", "selected"):
        assert same(found[name], expected[name]), name
    assert np.array_equal(found["replicates"], np.arange(6))
