"""scan2d.same_chromosome: 'joint' (R/qtl's joint two-locus probabilities) and 'product' differ only on
pairs whose two positions lie on the same chromosome."""

import subprocess
import sys

import h5py
import numpy as np

from qtlhpc.parallel import pair_from_index

CONFIG = """
[run]
output = "results.h5"
stages = ["genoprob", "scan2d"]
progress = false
[simulate]
cross_type = "bc"
n_individuals = 60
n_chromosomes = 2
markers_per_chromosome = 6
missing_rate = 0.15
main_qtl = [{ marker = 2, additive = 1.0 }]
write_to = "cross"
[input]
format = "rqtl-csv"
cross_type = "bc"
file = "cross.csv"
[genoprob]
step = 10.0
[scan2d]
model = "hk"
same_chromosome = "MODE"
"""


def run(tmp_path, mode):
    directory = tmp_path / mode
    directory.mkdir()
    config = directory / "analysis.toml"
    config.write_text(CONFIG.replace("MODE", mode))
    for command in (["simulate"], ["run", "all"]):
        subprocess.run([sys.executable, "-m", "qtlhpc", *command, str(config)], check=True, capture_output=True)
    with h5py.File(directory / "results.h5", "r") as results:
        return results["scan2d/lod"][0], results["scan2d/locus_chromosomes"][()].astype(str)


def test_modes_differ_only_on_same_chromosome_pairs(tmp_path):
    joint, chromosomes = run(tmp_path, "joint")
    product, _ = run(tmp_path, "product")
    k, l = pair_from_index(np.arange(joint.size), len(chromosomes))
    same = chromosomes[k] == chromosomes[l]
    np.testing.assert_array_equal(joint[~same], product[~same])
    assert np.max(np.abs(joint[same] - product[same])) > 1e-3
