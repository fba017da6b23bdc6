"""The SEM job on the private single-node SLURM: ``qtlhpc submit sem`` on the 12-gene cross of
test_sem_inputs.py, with sem-search as a 3-task array over its 4 search paths merged by sem-merge, gives the
numbers of a direct serial run (the eQTL stages, the EDN and the search)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from slurm_cluster import slurm_cluster  # noqa: F401  (the session fixture)
from test_sem_inputs import write_config
from test_sem_stages import SEARCH, assert_same, stored
from test_slurm_pipeline import qtlhpc as cluster_qtlhpc
from test_slurm_pipeline import submissions, wait_all, write_site

STAGES = ("expression", "cross-eqtl", "cross-trans", "sem-edn", "sem-search", "sem-merge", "report")
RESOURCES = ", ".join(f"{stage} = {{ ntasks = 1, time = '00:10:00', mem_per_cpu = '500M' }}" for stage in STAGES)


@pytest.mark.slurm
@pytest.mark.slow
def test_sem_array_job_matches_direct_run(tmp_path, slurm_cluster):  # noqa: F811
    direct = tmp_path / "direct"
    direct.mkdir()
    config = write_config(direct, search=SEARCH)
    proc = subprocess.run([sys.executable, "-m", "qtlhpc", "run", "sem", config], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    expected = stored(direct / "results.h5")

    submitted = tmp_path / "slurm"
    submitted.mkdir()
    config = write_config(submitted, search=SEARCH, sources=direct,
                          slurm=f"\n[slurm]\narray_tasks = 3\nresources = {{ {RESOURCES} }}\n")
    text = config.read_text().replace('progress = false', 'progress = false\nstages = ["sem"]')
    config.write_text(text)
    site = write_site(tmp_path, "mpirun")
    out = cluster_qtlhpc(slurm_cluster, "submit", "sem", config, "--site", site).stdout
    run_dir = Path(re.search(r"run directory (\S+)", out).group(1))
    states = wait_all(slurm_cluster, run_dir, timeout=400)
    assert set(states.values()) == {"COMPLETED"}, states
    stages = [r["stage"] for r in submissions(run_dir)]
    assert "sem-search" in stages and "sem-merge" in stages and "sem-edn" in stages
    tasks = sorted((run_dir / "units" / "sem-search").glob("task-*.h5"))
    assert len(tasks) == 3
    found = stored(submitted / "results.h5")
    assert_same(found, expected)
    assert np.array_equal(found["sem-search/paths"], np.arange(4))
    assert (submitted / "results.h5.sem_edges.tsv").is_file()
