"""Leave-one-chromosome-out: the stored LOCO kinships equal kinships of the other chromosomes' loci, and the
LOCO 1D scan of a chromosome equals a direct scan over that background (at 1 and 2 ranks)."""

import subprocess
import sys

import h5py
import numpy as np
import pytest

from mpi_helpers import run_mpi
from qtlhpc.methods.pepis.kernels.kinship import kinship_matrices
from qtlhpc.methods.pepis.kernels.null_model import null_background, rotate, rotate_columns
from qtlhpc.methods.pepis.kernels.reml import combined_kinship
from qtlhpc.methods.pepis.kernels.scan1d import scan1d

CONFIG = """
[run]
output = "results.h5"
seed = 3
stages = ["genoprob", "kinship", "varcomp", "scan1d"]
progress = false
[simulate]
cross_type = "f2"
n_individuals = 70
n_chromosomes = 3
markers_per_chromosome = 7
polygenic_variance = 0.5
main_qtl = [{ marker = 9, additive = 0.8 }]
write_to = "cross"
[input]
format = "rqtl-csv"
cross_type = "f2"
file = "cross.csv"
[kinship]
loco = true
block_rows = 30
[varcomp]
kinships = ["a", "d", "aa"]
[scan1d]
loco = true
block_markers = 4
"""


@pytest.mark.mpi
def test_loco_kinships_and_scan_match_direct_computation(tmp_path):
    outputs = {}
    for n_ranks in (1, 2):
        directory = tmp_path / f"ranks{n_ranks}"
        directory.mkdir()
        config = directory / "analysis.toml"
        config.write_text(CONFIG)
        subprocess.run([sys.executable, "-m", "qtlhpc", "simulate", str(config)], check=True, capture_output=True)
        run_mpi(n_ranks, ["-m", "qtlhpc", "run", "all", config])
        with h5py.File(directory / "results.h5", "r") as f:
            outputs[n_ranks] = {name: f[name][()] for name in (
                "kinship/additive_codes", "kinship/dominance_codes", "kinship/locus_chromosomes",
                "kinship/kinship_names", "kinship/loco_matrices", "kinship/loco_chromosomes",
                "varcomp/variance_ratios", "varcomp/component_names", "scan1d/lod", "scan1d/lrt")}
        from qtlhpc.io.loader import load_cross

        cross = load_cross({"format": "rqtl-csv", "cross_type": "f2", "file": str(directory / "cross.csv")}, directory)
        outputs[n_ranks]["y"] = cross.phenotypes[:, 0]
    out = outputs[1]
    Z, W = out["kinship/additive_codes"], out["kinship/dominance_codes"]
    chromosomes = out["kinship/locus_chromosomes"].astype(str)
    names = [n.decode() for n in out["kinship/kinship_names"]]
    components = [c.decode() for c in out["varcomp/component_names"]][:-1]
    for c_index, chromosome in enumerate(out["kinship/loco_chromosomes"].astype(str)):
        others = chromosomes != chromosome
        direct = kinship_matrices(Z[:, others], W[:, others], names)
        for k, name in enumerate(names):
            np.testing.assert_allclose(out["kinship/loco_matrices"][c_index, k], direct.matrices[name], rtol=1e-10)
        K0 = combined_kinship(out["varcomp/variance_ratios"][0], [direct.matrices[c] for c in components])
        X = np.ones((len(out["y"]), 1))
        rotation = rotate(K0, X)
        background = null_background(rotation, rotate_columns(rotation, out["y"])[:, 0], rotate_columns(rotation, X))
        on = ~others
        expected = scan1d(background, Z[:, on], W[:, on], model="random")
        np.testing.assert_allclose(out["scan1d/lrt"][0, on], expected.lrt, rtol=1e-8, atol=1e-10)
    for name in ("kinship/loco_matrices", "scan1d/lod"):
        np.testing.assert_allclose(outputs[2][name], outputs[1][name], rtol=1e-10, atol=1e-12)
