"""The shared ``expression`` input stage: read once into the results file, the same at 1, 2 and 3 ranks
and in both write modes, aligned to the genotyped individuals, and read back by each rank in blocks."""

import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from mpi_helpers import RANK_COUNTS, run_mpi
from qtlhpc.io.expression_readers import read_covariates, read_expression_bed
from qtlhpc.stats import transforms
from qtlhpc.store import open_results
from requirements import skip_or_fail

EXAMPLE = Path("/usr/share/doc/fastqtl/examples/examples.tar.xz")
SCRIPT = Path(__file__).parent / "mpi_scripts" / "expression_blocks.py"
DATASETS = ("values", "gene_ids", "gene_chromosomes", "gene_starts", "gene_ends", "gene_strands", "gene_tss",
            "sample_ids", "covariate_names", "covariates", "dropped_gene_ids", "covariates_regressed")


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    if not EXAMPLE.is_file():
        skip_or_fail(f"FastQTL's example {EXAMPLE} is missing (apt-get install fastqtl-doc, or `make setup-test`)")
    directory = tmp_path_factory.mktemp("fastqtl")
    with tarfile.open(EXAMPLE) as archive:
        archive.extractall(directory, members=[m for m in archive.getmembers()
                                               if m.name.split("/")[-1].startswith(("phenotypes", "covariates"))])
    return {p.name: p for p in directory.rglob("*") if p.is_file()}


def config_text(example, **expression):
    lines = ["[run]", 'output = "results.h5"', "progress = false", "", "[expression]",
             'format = "bed"', f'file = "{example["phenotypes.bed.gz"]}"',
             f'covariates = "{example["covariates.txt.gz"]}"']
    lines += [f"{key} = {value!r}".replace("'", '"') if isinstance(value, str) else f"{key} = {str(value).lower()}"
              for key, value in expression.items()]
    return "\n".join(lines) + "\n"


def qtlhpc(*args):
    return subprocess.run([sys.executable, "-m", "qtlhpc", *map(str, args)], capture_output=True, text=True)


def stored(path):
    with open_results(path) as results:
        return {name: results.read(f"expression/{name}") for name in DATASETS}


def test_stage_stores_the_bed_and_covariates_as_read(example, tmp_path):
    config = tmp_path / "analysis.toml"
    config.write_text(config_text(example))
    proc = qtlhpc("run", "expression", config)
    assert proc.returncode == 0, proc.stderr
    data = stored(tmp_path / "results.h5")
    direct = read_expression_bed(example["phenotypes.bed.gz"])
    covariates = read_covariates(example["covariates.txt.gz"])
    assert data["values"].shape == (364, 373)
    np.testing.assert_array_equal(data["values"], direct.values)
    np.testing.assert_array_equal(data["gene_ids"], direct.gene_ids)
    np.testing.assert_array_equal(data["gene_tss"], direct.tss)
    np.testing.assert_array_equal(data["covariate_names"], covariates.names)
    order = [list(covariates.sample_ids).index(s) for s in direct.sample_ids]
    np.testing.assert_array_equal(data["covariates"], covariates.values[:, order])
    assert "364 genes x 373 samples" in proc.stderr


def test_filters_and_transforms_are_applied_and_rerun_on_change(example, tmp_path):
    config = tmp_path / "analysis.toml"
    config.write_text(config_text(example, variability_filter=0.2, normalize="inverse-normal"))
    assert qtlhpc("run", "expression", config).returncode == 0
    data = stored(tmp_path / "results.h5")
    direct = read_expression_bed(example["phenotypes.bed.gz"])
    keep = transforms.variability_filter(direct.values, 0.2)
    assert data["values"].shape[0] == keep.sum() == 364 - int(0.2 * 364)
    np.testing.assert_array_equal(data["dropped_gene_ids"], direct.gene_ids[~keep])
    np.testing.assert_allclose(data["values"], transforms.rank_inverse_normal(direct.values[keep], axis=1))
    # another transform is another configuration: the stage starts over
    proc = qtlhpc("run", "expression", config, "--set", 'expression.normalize="standardize"')
    assert proc.returncode == 0 and "skipped" not in proc.stderr
    np.testing.assert_allclose(stored(tmp_path / "results.h5")["values"],
                               transforms.standardize(direct.values[keep]))


def test_regressed_covariates_are_not_adjusted_for_again(example, tmp_path):
    from qtlhpc.io.drivers import mapping_covariates

    config = tmp_path / "analysis.toml"
    config.write_text(config_text(example, regress_covariates=True))
    proc = qtlhpc("run", "expression", config)
    assert proc.returncode == 0, proc.stderr
    direct = read_expression_bed(example["phenotypes.bed.gz"])
    covariates = read_covariates(example["covariates.txt.gz"])
    order = [list(covariates.sample_ids).index(s) for s in direct.sample_ids]
    data = stored(tmp_path / "results.h5")
    np.testing.assert_allclose(data["values"], transforms.regress_out(direct.values, covariates.values[:, order]),
                               rtol=1e-12, atol=1e-12)
    with open_results(tmp_path / "results.h5") as results:
        assert bool(results.read("expression/covariates_regressed"))
        assert mapping_covariates(results) is None
    plain = tmp_path / "plain"
    plain.mkdir()
    (plain / "analysis.toml").write_text(config_text(example))
    assert qtlhpc("run", "expression", plain / "analysis.toml").returncode == 0
    with open_results(plain / "results.h5") as results:
        np.testing.assert_array_equal(mapping_covariates(results), covariates.values[:, order].T)


def test_missing_file_and_missing_annotation_are_clear_errors(tmp_path):
    config = tmp_path / "analysis.toml"
    config.write_text('[expression]\nformat = "tsv"\nfile = "expr.tsv"\n')
    (tmp_path / "expr.tsv").write_text("id\ts1\ng1\t1.0\n")
    proc = qtlhpc("run", "expression", config)
    assert proc.returncode == 2 and "annotation" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.mpi
@pytest.mark.parametrize("n_ranks", RANK_COUNTS)
@pytest.mark.parametrize("parallel_io", ["auto", "rank0"])
def test_same_file_at_every_rank_count_and_blocks_read_back_per_rank(example, tmp_path, n_ranks, parallel_io):
    config = tmp_path / "analysis.toml"
    config.write_text(config_text(example).replace("progress = false", f'progress = false\nparallel_io = "{parallel_io}"'))
    run_mpi(n_ranks, ["-m", "qtlhpc", "run", "expression", config], timeout=120)
    data = stored(tmp_path / "results.h5")
    np.testing.assert_array_equal(data["values"], read_expression_bed(example["phenotypes.bed.gz"]).values)
    out = tmp_path / "blocks.npz"
    run_mpi(n_ranks, [SCRIPT, config, out], timeout=120)
    blocks = np.load(out)
    np.testing.assert_array_equal(blocks["values"], data["values"])
    np.testing.assert_array_equal(blocks["gene_ids"], data["gene_ids"])
