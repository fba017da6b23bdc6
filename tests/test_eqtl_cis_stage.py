"""The ``cis`` and ``merge-cis`` stages on FastQTL's own example: the kernels' numbers through the results
file, FastQTL's best variants, the same file at 1, 2 and 3 ranks, and an array run merged to the same
numbers (with a missing task named)."""

import subprocess
import sys

import numpy as np
import pytest

from mpi_helpers import RANK_COUNTS, run_mpi
from qtlhpc.io.expression_readers import read_covariates, read_expression_bed
from qtlhpc.io.vcf import read_genotypes
from qtlhpc.methods.eqtl.cis import PermutationPlan, map_cis_permutations
from qtlhpc.store import open_results
from references import fastqtl_example
from requirements import skip_or_fail

PERMUTATIONS = 50
COLUMNS = ("num_var", "variant_positions", "tss_distance", "pval_nominal", "slope", "slope_se", "beta_shape1",
           "beta_shape2", "true_df", "pval_perm", "pval_beta", "num_perm", "qvalue", "qvalue_bh")


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    if not fastqtl_example.EXAMPLE_ARCHIVE.is_file():
        skip_or_fail(f"FastQTL's example {fastqtl_example.EXAMPLE_ARCHIVE} is missing (apt-get install fastqtl-doc)")
    return fastqtl_example.unpack_example(tmp_path_factory.mktemp("fastqtl"))


def write_config(folder, directory, chunks=6, region="22:17000000-19000000", extra=""):
    config = directory / "analysis.toml"
    config.write_text(f"""
[run]
output = "results.h5"
seed = 5
progress = false

[expression]
format = "bed"
file = "{folder / 'phenotypes.bed.gz'}"
covariates = "{folder / 'covariates.txt.gz'}"
region = "{region}"

[cis]
genotypes = "{folder / 'genotypes.vcf.gz'}"
permutations = [{PERMUTATIONS}]
chunks = {chunks}
{extra}
""")
    return config


def qtlhpc(*args):
    proc = subprocess.run([sys.executable, "-m", "qtlhpc", *map(str, args)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    return proc


def same(a, b) -> bool:
    a, b = np.asarray(a), np.asarray(b)
    return np.array_equal(a, b, equal_nan=a.dtype.kind == "f")


def cis_results(path):
    with open_results(path) as results:
        out = {name: results.read(f"cis/{name}") for name in COLUMNS + ("gene_ids", "variant_ids")}
        out["pi0"] = results.read("cis/pi0")
        return out


@pytest.fixture(scope="module")
def serial_run(example, tmp_path_factory):
    directory = tmp_path_factory.mktemp("serial")
    config = write_config(example, directory)
    qtlhpc("run", "eqtl", config)
    return config, cis_results(directory / "results.h5")


def test_stage_equals_the_kernel_on_the_whole_chromosome(example, serial_run):
    _, stored = serial_run
    expression = read_expression_bed(example / "phenotypes.bed.gz", region="22:17000000-19000000")
    covariates = read_covariates(example / "covariates.txt.gz")
    order = [list(covariates.sample_ids).index(s) for s in expression.sample_ids]
    genotypes = read_genotypes(example / "genotypes.vcf.gz", region="22", samples=expression.sample_ids)
    sort = np.argsort(genotypes.positions, kind="stable")
    direct = map_cis_permutations(expression.values, expression.tss, genotypes.dosages[sort],
                                  genotypes.positions[sort], covariates.values[:, order].T, seed=5,
                                  plan=PermutationPlan.fixed(PERMUTATIONS))
    assert stored["gene_ids"].tolist() == expression.gene_ids.tolist() and len(stored["gene_ids"]) >= 5
    for name in ("num_var", "tss_distance", "pval_nominal", "slope", "slope_se", "pval_perm", "pval_beta"):
        np.testing.assert_allclose(stored[name], direct[name], rtol=1e-12, err_msg=name)
    has = direct["variant_index"] >= 0
    assert stored["variant_ids"][has].tolist() == genotypes.ids[sort][direct["variant_index"][has]].tolist()
    assert 0 < float(stored["pi0"]) <= 1
    assert np.all((stored["qvalue"] >= stored["pval_beta"] * 0) & (stored["qvalue"] <= 1))


def test_best_variants_and_nominal_p_equal_fastqtl(example, serial_run, tmp_path):
    if not fastqtl_example.have_fastqtl():
        skip_or_fail("fastQTL is not on PATH (apt-get install fastqtl, or `make setup-test`)")
    _, stored = serial_run
    out = fastqtl_example.run_fastqtl(example, tmp_path / "perm.txt.gz", "--permute", str(PERMUTATIONS),
                                      "--region", "22:17000000-19000000")
    # pid nvar shape1 shape2 true_df pval_true_df variant_id tss_distance ma_samples ma_count maf ref_factor
    # pval_nominal slope slope_se pval_perm pval_beta
    rows = {row[0]: row for row in fastqtl_example.read_fastqtl_table(out)}
    compared = 0
    for k, gene in enumerate(stored["gene_ids"]):
        if gene not in rows or rows[gene][6] == "NA":
            continue
        row = rows[gene]
        assert int(row[1]) == stored["num_var"][k], gene
        assert row[6] == stored["variant_ids"][k], gene
        assert int(row[7]) == stored["tss_distance"][k], gene
        # fastQTL prints 6 significant digits
        np.testing.assert_allclose(float(row[12]), stored["pval_nominal"][k], rtol=1e-5, err_msg=gene)
        np.testing.assert_allclose(float(row[13]), stored["slope"][k], rtol=1e-5, err_msg=gene)
        np.testing.assert_allclose(float(row[14]), stored["slope_se"][k], rtol=1e-5, err_msg=gene)
        compared += 1
    assert compared >= 5


@pytest.mark.mpi
@pytest.mark.parametrize("n_ranks", RANK_COUNTS)
def test_same_numbers_at_1_2_3_ranks(example, serial_run, tmp_path, n_ranks):
    config = write_config(example, tmp_path)
    run_mpi(n_ranks, ["-m", "qtlhpc", "run", "eqtl", config], timeout=300)
    parallel = cis_results(tmp_path / "results.h5")
    for name, value in serial_run[1].items():
        assert same(parallel[name], value), name


def test_array_tasks_merge_to_the_same_numbers_and_a_missing_task_is_named(example, serial_run, tmp_path):
    config = write_config(example, tmp_path)
    qtlhpc("run", "expression", config)
    tasks = []
    for index, units in enumerate(("0:2", "2:5", "5:6")):
        task = tmp_path / f"task-{index}.h5"
        qtlhpc("run", "cis", config, "--units", units, "--unit-output", task)
        tasks.append(task)
    refused = subprocess.run([sys.executable, "-m", "qtlhpc", "run", "merge-cis", config, tasks[0], tasks[2]],
                             capture_output=True, text=True)
    assert refused.returncode == 2 and "chunks 2:5" in refused.stderr
    qtlhpc("run", "merge-cis", config, *tasks)
    merged = cis_results(tmp_path / "results.h5")
    for name, value in serial_run[1].items():
        assert same(merged[name], value), name


def test_a_killed_run_resumes_to_the_same_numbers(example, serial_run, tmp_path):
    import os
    import signal
    import time

    import h5py

    config = write_config(example, tmp_path)
    qtlhpc("run", "expression", config)
    results = tmp_path / "results.h5"
    env = dict(os.environ, QTLHPC_BLOCK_DELAY="0.4")
    proc = subprocess.Popen([sys.executable, "-m", "qtlhpc", "run", "cis", config], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline, done = time.monotonic() + 120, 0
    while time.monotonic() < deadline and proc.poll() is None:
        try:
            with h5py.File(results, "r", locking=False) as h5:
                done = int(h5["cis/_checkpoint/chunks"][()].sum()) if "cis/_checkpoint/chunks" in h5 else 0
        except (OSError, RuntimeError, KeyError):  # metadata half-written by the run: read again
            done = 0
        if done >= 2:
            break
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert 2 <= done < 6, f"the run was not caught mid-stage ({done} chunks done)"
    with h5py.File(results, "r", locking=False) as h5:
        assert h5["cis"].attrs["status"] == "running"
    resumed = qtlhpc("run", "cis", config)
    assert "resumes" in resumed.stderr
    for name, value in cis_results(results).items():
        assert same(value, serial_run[1][name]), name


def test_report_draws_the_cis_section(serial_run, tmp_path):
    config, stored = serial_run
    qtlhpc("report", config.parent / "results.h5", "-o", tmp_path / "report")
    page = (tmp_path / "report" / "index.html").read_text()
    assert "cis-eQTL" in page and "cis_manhattan.png" in page and "cis_pvalues.png" in page
    assert (tmp_path / "report" / "cis_manhattan.png").stat().st_size > 1000
    strongest = stored["gene_ids"][np.nanargmin(stored["pval_beta"])]
    assert strongest in page
    assert "Variance components" not in page   # a PEPIS section has no place in an eQTL run's page


def read_nominal(results_path):
    import gzip

    with open_results(results_path) as results:
        files = results.read("cis/nominal_files")
        counts = results.read("cis/nominal_pairs")
    rows = []
    for name, count in zip(files, counts):
        with gzip.open(results_path.parent / name, "rt") as handle:
            lines = handle.read().splitlines()
        assert lines[0].split("\t")[:3] == ["phenotype_id", "variant_id", "tss_distance"]
        assert len(lines) - 1 == count
        rows += [line.split("\t") for line in lines[1:]]
    return rows


def test_nominal_pass_equals_fastqtl_and_survives_an_array_run(example, tmp_path):
    if not fastqtl_example.have_fastqtl():
        skip_or_fail("fastQTL is not on PATH (apt-get install fastqtl, or `make setup-test`)")
    region = "22:17000000-18000000"
    config = write_config(example, tmp_path, chunks=2, region=region, extra="nominal = true")
    qtlhpc("run", "eqtl", config)
    ours = read_nominal(tmp_path / "results.h5")
    out = fastqtl_example.run_fastqtl(example, tmp_path / "nominal.txt.gz", "--region", region)
    theirs = fastqtl_example.read_fastqtl_table(out)
    assert len(ours) == len(theirs) > 1000
    for mine, reference in zip(ours, theirs):
        assert mine[:3] == reference[:3]           # gene, variant, distance: the same pairs in the same order
        # pval_nominal, slope, slope_se: FastQTL prints 6 digits of float32 correlations (the kernel's own test,
        # tests/test_eqtl_cis.py, bounds that error exactly); here the table must carry the same numbers
        for column in (6, 7, 8):
            np.testing.assert_allclose(float(mine[column]), float(reference[column]), rtol=1e-3, atol=1e-7)
    # an array run: two tasks, merged; the merged file names the tasks' tables
    array_dir = tmp_path / "array"
    array_dir.mkdir()
    config = write_config(example, array_dir, chunks=2, region=region, extra="nominal = true")
    qtlhpc("run", "expression", config)
    (array_dir / "tasks").mkdir()
    tasks = [array_dir / "tasks" / "a.h5", array_dir / "tasks" / "b.h5"]
    qtlhpc("run", "cis", config, "--units", "0:1", "--unit-output", tasks[0])
    qtlhpc("run", "cis", config, "--units", "1:2", "--unit-output", tasks[1])
    qtlhpc("run", "merge-cis", config, *tasks)
    assert read_nominal(array_dir / "results.h5") == ours
