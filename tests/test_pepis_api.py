"""The PEPIS Python API (arrays and a communicator in, arrays out): equal to the serial kernels, and
bit-for-bit the same at 1, 2 and 3 ranks."""

from pathlib import Path

import numpy as np
import pytest

from mpi_helpers import RANK_COUNTS, run_mpi
from qtlhpc.methods import pepis
from qtlhpc.methods.pepis.kernels.kinship import kinship_matrices
from qtlhpc.methods.pepis.kernels.reml import fit_reml
from qtlhpc.methods.pepis.kernels.scan1d import scan1d as scan1d_kernel
from qtlhpc.methods.pepis.kernels.scan2d import scan_pairs, transposed_codes
from qtlhpc.parallel import SERIAL, n_pairs, pair_from_index
from references.pepis_simulation import prepared, simulate

SCRIPT = Path(__file__).parent / "mpi_scripts" / "pepis_api.py"


def serial_api():
    import importlib.util

    spec = importlib.util.spec_from_file_location("pepis_api_script", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.compute(SERIAL)


def test_api_equals_the_plain_kernels():
    Z, W, K0, X, y, rng = simulate(36, 13, seed=11)
    Y = np.column_stack([y, y + rng.normal(size=y.size)])
    api = serial_api()
    reference = kinship_matrices(Z, W)
    for name, matrix in reference.matrices.items():
        np.testing.assert_allclose(api[f"kinship_{name}"], matrix, rtol=1e-12, atol=1e-12)
    kernels = {k: reference.matrices[k] for k in ("a", "d")}
    for t in range(2):
        fit = fit_reml(Y[:, t], X, kernels)
        np.testing.assert_allclose(api["reml_lambdas"][t], fit.lambdas, rtol=1e-6, atol=1e-8)
    background = prepared(K0, X, y)
    np.testing.assert_allclose(api["scan1d_lrt"], scan1d_kernel(background, Z, W).lrt, rtol=1e-8, atol=1e-10)
    z_t, w_t = transposed_codes(Z, W, background.n_individuals)
    first, second = pair_from_index(np.arange(n_pairs(13)), 13)
    np.testing.assert_allclose(api["scan2d_lrt"], scan_pairs(background, z_t, w_t, first, second).lrt,
                               rtol=1e-8, atol=1e-10)
    assert api["scan2d_lrt"].shape == (13 * 12 // 2,)


def test_scan2d_of_one_locus_has_no_pairs():
    Z, W, K0, X, y, _ = simulate(20, 1, seed=3)
    result = pepis.scan2d(prepared(K0, X, y), Z, W)
    assert result.lrt.shape == (0,)


@pytest.mark.mpi
@pytest.mark.parametrize("n_ranks", RANK_COUNTS)
def test_api_under_mpirun_equals_serial_bit_for_bit(tmp_path, n_ranks):
    out = tmp_path / "api.npz"
    run_mpi(n_ranks, [SCRIPT, out], timeout=180)
    parallel = np.load(out)
    assert int(parallel["size"]) == n_ranks
    for name, value in serial_api().items():
        assert np.array_equal(parallel[name], value, equal_nan=True), name
