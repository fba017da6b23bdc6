"""The block-mixture pipeline submitted to the private single-node SLURM (``tests/slurm_cluster.py``): both array
stages (blockmix-select over (K, start) units, blockmix-permutations over permutation ids) run as job arrays of
3 tasks and are merged by their merge stages; every stored number equals the direct serial run's."""

from __future__ import annotations

import json
import re
import subprocess
import sys

import numpy as np
import pytest

from slurm_cluster import slurm_cluster  # noqa: F401  (the session fixture)
from test_blockmix_stages import STAGES, qtlhpc as run_qtlhpc, same, stored, write_config, write_inputs

SLURM_STAGES = ("expression", "genoprob", "blockmix-select", "blockmix-merge-select", "blockmix-scan",
                "blockmix-permutations", "blockmix-merge-permutations", "blockmix-tests", "report")
RESOURCES = ", ".join(f"{stage} = {{ ntasks = 1, time = '00:10:00', mem_per_cpu = '500M' }}" for stage in SLURM_STAGES)


def write_site(directory):
    site = directory / "site.toml"
    site.write_text(f'name = "test-blockmix"\nlauncher = "mpirun"\npython = {json.dumps(sys.executable)}\n'
                    '[env]\nOMP_NUM_THREADS = "1"\nOPENBLAS_NUM_THREADS = "1"\n')
    return site


@pytest.mark.slurm
@pytest.mark.slow
def test_array_stages_through_slurm_equal_the_direct_run(slurm_cluster, tmp_path):  # noqa: F811
    direct = tmp_path / "direct"
    direct.mkdir()
    write_inputs(direct)
    run_qtlhpc("run", "blockmix", write_config(direct))
    reference = stored(direct / "results.h5")

    submitted = tmp_path / "slurm"
    submitted.mkdir()
    write_inputs(submitted)
    config = write_config(submitted)
    config.write_text(config.read_text() + f"\n[report]\ndirectory = \"report\"\n\n[slurm]\narray_tasks = 3\n"
                                           f"resources = {{ {RESOURCES} }}\n")
    proc = subprocess.run([sys.executable, "-m", "qtlhpc", "submit", "blockmix", str(config), "--site",
                           str(write_site(tmp_path))], env=slurm_cluster.env, capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    run_dir = submitted / "results.slurm"
    assert re.search(r"run directory (\S+)", proc.stdout)
    records = json.loads((run_dir / "jobs.json").read_text())["submissions"]
    states = slurm_cluster.wait({r["job_id"] for r in records}, timeout=400)
    assert set(states.values()) == {"COMPLETED"}, states
    assert len(list((run_dir / "units" / "blockmix-permutations").glob("task-*.h5"))) == 3
    assert len(list((run_dir / "units" / "blockmix-select").glob("task-*.h5"))) == 3
    result = stored(submitted / "results.h5")
    for name, value in reference.items():
        assert same(result[name], value), name
    assert set(STAGES) <= {name.split("/")[0] for name in result}
    assert np.isfinite(result["blockmix-permutations/thresholds"]).all()
