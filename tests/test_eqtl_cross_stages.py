"""The ``cross-eqtl`` and ``cross-trans`` stages on a simulated cross written to files (R/qtl csv, an expression
matrix with its annotation, a physical map): the planted cis and trans effects are found, the stored numbers
are the kernels' numbers, the files are the same at 1, 2 and 3 ranks and with rank-0 writes, a killed
cross-trans resumes to the same numbers, and a change of [cross_trans] reruns cross-trans alone."""

import os
import signal
import subprocess
import sys
import time

import h5py
import numpy as np
import pytest

from mpi_helpers import RANK_COUNTS, run_mpi
from qtlhpc.errors import InputError
from qtlhpc.io.cross import Cross
from qtlhpc.io.writers import write_map, write_matrix_tsv, write_rqtl_csv
from qtlhpc.methods.eqtl.cross import (
    cis_map, cis_regions, cis_trans_map, closest_marker, marker_genotypes_of_genes, nearest_markers, pc_map,
    trans_map)
from qtlhpc.methods.eqtl.drivers.cross import EFFECTS, read_marker_positions
from qtlhpc.methods.eqtl.simulate import CrossDesign, simulate_cross

DESIGN = CrossDesign(n_individuals=80, n_markers=120, n_genes=150, chromosome_lengths_bp=(600_000,) * 4,
                     n_cis=25, n_cis_trans_regulators=3, targets_per_cis_trans=4, n_trans_regulators=4,
                     targets_per_trans=3, noise_sd=0.4, missing_genotype_rate=0.01, missing_expression_rate=0.005)
SEED = 11
TRANS_TABLE = ("regulator", "target") + EFFECTS + ("p_iut", "q_iut")


def write_inputs(sim, directory):
    individuals = np.array([f"seg{i + 1}" for i in range(DESIGN.n_individuals)])
    markers = np.array([f"m{k + 1}" for k in range(DESIGN.n_markers)])
    genes = np.array([f"g{k + 1}" for k in range(DESIGN.n_genes)])
    codes = np.where(np.isnan(sim.genotypes), 0, sim.genotypes + 1).astype(np.int8)
    cross = Cross("riself", individuals, markers, sim.marker_chromosome.astype(str), sim.marker_position_cM, codes)
    write_rqtl_csv(cross, directory / "cross.csv")
    write_matrix_tsv(directory / "expression.tsv", individuals, genes, sim.expression.T)
    starts = np.round(sim.gene_position_bp).astype(np.int64)
    lines = ["gene_id\tchromosome\tstart\tend\tstrand"]
    lines += [f"{g}\t{c}\t{s}\t{s}\t+" for g, c, s in zip(genes, sim.gene_chromosome, starts)]
    (directory / "genes.tsv").write_text("\n".join(lines) + "\n")
    write_map(directory / "markers_bp.tsv", markers, sim.marker_chromosome.astype(str), sim.marker_position_bp)


def write_config(directory, fdr=0.05, block=16, parallel_io="auto"):
    config = directory / "analysis.toml"
    config.write_text(f"""
[run]
output = "results.h5"
seed = {SEED}
progress = false
parallel_io = "{parallel_io}"

[input]
format = "rqtl-csv"
cross_type = "riself"
file = "cross.csv"

[expression]
format = "tsv"
file = "expression.tsv"
annotation = "genes.tsv"

[cross_map]
marker_positions = "markers_bp.tsv"

[cross_eqtl]
clusters = 12
restarts = 3

[cross_trans]
regulator_block = {block}
fdr = {fdr}
""")
    return config


def qtlhpc(*args, env=None):
    proc = subprocess.run([sys.executable, "-m", "qtlhpc", *map(str, args)], capture_output=True, text=True, env=env)
    assert proc.returncode == 0, proc.stderr
    return proc


def stored(path):
    """Every dataset of both stages (the cross-trans matrices included) and the stages' result ids."""
    out = {}
    with h5py.File(path, "r", locking=False) as h5:
        for stage in ("cross-eqtl", "cross-trans"):
            out[stage] = h5[stage].attrs["result_id"]
            for name, dataset in h5[stage].items():
                if isinstance(dataset, h5py.Dataset):
                    out[f"{stage}/{name}"] = dataset[()]
        out["values"] = h5["expression/values"][()]
    return out


def same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def assert_same_numbers(found, expected):
    names = [name for name in expected if "/" in name]
    assert sorted(name for name in found if "/" in name) == sorted(names)
    for name in names:
        assert same(found[name], expected[name]), name


@pytest.fixture(scope="module")
def sim():
    return simulate_cross(DESIGN, seed=SEED)


@pytest.fixture(scope="module")
def inputs(sim, tmp_path_factory):
    directory = tmp_path_factory.mktemp("cross-inputs")
    write_inputs(sim, directory)
    return directory


def fresh_run_dir(inputs, tmp_path, **config):
    for name in ("cross.csv", "expression.tsv", "genes.tsv", "markers_bp.tsv"):
        (tmp_path / name).symlink_to(inputs / name)
    return write_config(tmp_path, **config)


@pytest.fixture(scope="module")
def serial_run(inputs, tmp_path_factory):
    directory = tmp_path_factory.mktemp("serial")
    config = fresh_run_dir(inputs, directory)
    qtlhpc("run", "eqtl-cross", config)
    return config, stored(directory / "results.h5")


def test_planted_cis_and_trans_effects_are_found(sim, serial_run):
    _, found = serial_run
    cis = found["cross-eqtl/cis_significant"]
    planted = sim.truth.cis_genes
    assert cis[planted].mean() >= 0.8
    assert cis.sum() <= planted.size + 5
    pairs = set(zip(found["cross-trans/pair_regulator"].tolist(), found["cross-trans/pair_target"].tolist()))
    trans = sim.truth.trans_pairs
    assert len(pairs & trans) >= 0.5 * len(trans), (len(pairs & trans), len(trans))
    # cis-trans: a planted target is hit from the region of its cis regulator
    region_of_gene = dict(zip(found["cross-eqtl/cis_eqtl_gene"].tolist(), found["cross-eqtl/cis_eqtl_region"].tolist()))
    hits = set(zip(found["cross-eqtl/cis_trans_region"].tolist(), found["cross-eqtl/cis_trans_gene"].tolist()))
    cis_trans = [(region_of_gene[r], t) for r, t in sim.truth.cis_trans_pairs if r in region_of_gene]
    assert cis_trans and np.mean([pair in hits for pair in cis_trans]) >= 0.6


def test_stage_results_equal_the_kernels(sim, serial_run):
    _, found = serial_run
    expression = found["values"]
    genotypes = sim.genotypes
    chromosome = sim.marker_chromosome.astype(str)
    position = sim.marker_position_bp
    gene_chromosome = sim.gene_chromosome.astype(str)
    gene_start = np.round(sim.gene_position_bp)
    assert same(found["cross-eqtl/marker_positions_bp"], position)
    cis = cis_map(expression, genotypes, nearest_markers(gene_chromosome, gene_start, chromosome, position))
    assert same(found["cross-eqtl/cis_pvalue"], cis.pvalue) and same(found["cross-eqtl/cis_qvalue"], cis.qvalue)
    assert same(found["cross-eqtl/cis_peak_marker"], cis.peak_marker)
    regions = cis_regions(expression, genotypes, cis, chromosome, position)
    assert same(found["cross-eqtl/cis_region_peak"], regions.region_peak)
    assert same(found["cross-eqtl/cis_region_start_bp"], regions.region_start_bp)
    targets = cis_trans_map(expression, genotypes, regions)
    rows, cols = np.nonzero(targets.significant)
    assert same(found["cross-eqtl/cis_trans_gene"], cols) and same(found["cross-eqtl/cis_trans_qvalue"],
                                                                  targets.qvalue[rows, cols])
    pcs = pc_map(expression, genotypes, chromosome, position, n_clusters=12, n_restarts=3, seed=SEED)
    assert same(found["cross-eqtl/kmeans_labels"], pcs.kmeans.labels)
    assert same(found["cross-eqtl/pc_scan_pvalue"], pcs.scan_pvalue)
    assert same(found["cross-eqtl/pc_region_peak"], pcs.regions.region_peak)
    rows, cols = np.nonzero(pcs.targets.significant)
    assert same(found["cross-eqtl/pc_target_gene"], cols)

    marker_genotypes = marker_genotypes_of_genes(
        genotypes, closest_marker(gene_chromosome, gene_start, chromosome, position))
    direct = trans_map(expression, marker_genotypes, alpha=0.05)
    assert found["cross-trans/n_tests"] == direct.n_tests
    assert found["cross-trans/n_kept"] == direct.kept["p_iut"].size
    significant = direct.significant
    assert same(found["cross-trans/pair_regulator"], direct.kept["regulator"][significant])
    assert same(found["cross-trans/pair_target"], direct.kept["target"][significant])
    assert same(found["cross-trans/pair_p_iut"], direct.kept["p_iut"][significant])
    assert same(found["cross-trans/pair_q_iut"], direct.q_iut[significant])
    for name in ("b1", "b2", "p_b1", "p_b2"):
        np.testing.assert_allclose(found[f"cross-trans/pair_{name}"], direct.kept[name][significant], rtol=1e-6,
                                   err_msg=name)


@pytest.mark.mpi
@pytest.mark.parametrize("n_ranks, parallel_io", [(n, "auto") for n in RANK_COUNTS if n > 1] + [(2, "rank0")])
def test_same_numbers_at_2_and_3_ranks_and_with_rank0_writes(inputs, serial_run, tmp_path, n_ranks, parallel_io):
    config = fresh_run_dir(inputs, tmp_path, parallel_io=parallel_io)
    run_mpi(n_ranks, ["-m", "qtlhpc", "run", "eqtl-cross", config], timeout=300)
    assert_same_numbers(stored(tmp_path / "results.h5"), serial_run[1])


def test_a_killed_cross_trans_resumes_to_the_same_numbers(inputs, serial_run, tmp_path):
    config = fresh_run_dir(inputs, tmp_path)
    qtlhpc("run", "expression", config)
    qtlhpc("run", "cross-eqtl", config)
    results = tmp_path / "results.h5"
    env = dict(os.environ, QTLHPC_BLOCK_DELAY="0.3")
    proc = subprocess.Popen([sys.executable, "-m", "qtlhpc", "run", "cross-trans", config], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    key = "cross-trans/_checkpoint/regulator_blocks"
    deadline, done = time.monotonic() + 120, 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with h5py.File(results, "r", locking=False) as h5:
                done = int(h5[key][()].sum()) if key in h5 else 0
        except (OSError, RuntimeError, KeyError):  # metadata half-written by the run: read again
            done = 0
        if done >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    n_blocks = -(-DESIGN.n_genes // 16)
    assert 2 <= done < n_blocks, f"the run was not caught mid-stage ({done} of {n_blocks} blocks done)"
    with h5py.File(results, "r", locking=False) as h5:
        assert h5["cross-trans"].attrs["status"] == "running"
    resumed = qtlhpc("run", "cross-trans", config, env=dict(os.environ, QTLHPC_BLOCK_DELAY="0"))
    assert "resumes" in resumed.stderr
    found = stored(results)
    for name in serial_run[1]:
        if name.startswith("cross-trans/"):
            assert same(found[name], serial_run[1][name]), name


def test_a_new_cross_trans_setting_reruns_cross_trans_alone(inputs, serial_run, tmp_path):
    config = fresh_run_dir(inputs, tmp_path)
    qtlhpc("run", "eqtl-cross", config)
    before = stored(tmp_path / "results.h5")
    write_config(tmp_path, fdr=1e-6)
    qtlhpc("run", "eqtl-cross", config)
    after = stored(tmp_path / "results.h5")
    assert after["cross-eqtl"] == before["cross-eqtl"]
    assert after["cross-trans"] != before["cross-trans"]
    assert after["cross-trans/n_tests"] == before["cross-trans/n_tests"]
    assert np.all(after["cross-trans/pair_q_iut"] <= 1e-6)
    assert 0 < after["cross-trans/pair_q_iut"].size < before["cross-trans/pair_q_iut"].size


def test_marker_position_errors_name_the_file_and_line(tmp_path):
    path = tmp_path / "markers.tsv"
    path.write_text("marker\tchromosome\tposition\nm1\t1\t100\nmx2\t1\t200\n")
    with pytest.raises(InputError, match=r"line 3.*'mx2' is not a marker|'mx2' is not a marker.*line 3"):
        read_marker_positions(path, ["m1", "m2"])
    path.write_text("m1\t1\t100\n")
    with pytest.raises(InputError, match="1 of the 2 markers.*first: m2"):
        read_marker_positions(path, ["m1", "m2"])
    path.write_text("m1\t1\t100\nm2\t1\tabc\n")
    with pytest.raises(InputError, match="'abc'"):
        read_marker_positions(path, ["m1", "m2"])
    path.write_text("m2\t1\t200\nm1\t1\t100\n")
    chromosome, position = read_marker_positions(path, ["m1", "m2"])
    assert chromosome.tolist() == ["1", "1"] and position.tolist() == [100.0, 200.0]
