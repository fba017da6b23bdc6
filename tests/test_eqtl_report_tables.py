"""The eQTL report sections of a cross (eQTL map, p-value histograms, cis-eQTL, regions and trans tables) and
the eQTL export tables (``cis/table``, ``cross-trans/pairs``, ``cross-eqtl/cis``), on results files written by
the real stages: the population cis scan on FastQTL's example region (few permutations) and the mapping of a
simulated cross written to files (as tests/test_eqtl_cis_stage.py and tests/test_eqtl_cross_stages.py)."""

import csv
import subprocess
import sys

import numpy as np
import pytest

from qtlhpc.methods.eqtl.report import CROSS_SECTION_BUILDERS, storey_pi0
from qtlhpc.methods.eqtl.tables import CIS_COLUMNS, TRANS_PAIR_COLUMNS
from qtlhpc.report.collect import read_header
from qtlhpc.report.html import render_page
from qtlhpc.store import open_results
from references import fastqtl_example
from requirements import skip_or_fail
from test_eqtl_cross_stages import DESIGN, SEED, simulate_cross, write_config, write_inputs

SECTION_TITLES = ("eQTL map of the cross", "p-values of the cross mapping", "cis-eQTL and regions of the cross",
                  "trans pairs of the cross")
IMAGES = ("cross_eqtl_map.png", "cross_cis_pvalues.png", "cross_trans_pvalues.png")


def qtlhpc(*args, check=True):
    proc = subprocess.run([sys.executable, "-m", "qtlhpc", *map(str, args)], capture_output=True, text=True)
    assert not check or proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture(scope="module")
def cross_inputs(tmp_path_factory):
    directory = tmp_path_factory.mktemp("cross")
    write_inputs(simulate_cross(DESIGN, seed=SEED), directory)
    return directory


@pytest.fixture(scope="module")
def cross_results(cross_inputs):
    qtlhpc("run", "eqtl-cross", write_config(cross_inputs))
    return cross_inputs / "results.h5"


@pytest.fixture(scope="module")
def cis_results(tmp_path_factory):
    if not fastqtl_example.EXAMPLE_ARCHIVE.is_file():
        skip_or_fail(f"FastQTL's example {fastqtl_example.EXAMPLE_ARCHIVE} is missing (apt-get install fastqtl-doc)")
    directory = tmp_path_factory.mktemp("population")
    folder = fastqtl_example.unpack_example(directory)
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
region = "22:17000000-18000000"

[cis]
genotypes = "{folder / 'genotypes.vcf.gz'}"
permutations = [20]
chunks = 2
""")
    qtlhpc("run", "eqtl", config)
    return directory / "results.h5"


def cross_page(results_path, out_dir):
    """The page of the cross sections alone (what `qtlhpc report` adds for method eqtl-cross)."""
    out_dir.mkdir()
    with open_results(results_path) as results:
        header = read_header(results)
        sections = [build(results, header, out_dir, 20) for build in CROSS_SECTION_BUILDERS]
    return render_page(header, sections)


def read_tsv(path):
    with open(path, newline="") as handle:
        rows = list(csv.reader(handle, delimiter="\t"))
    return rows[0], [list(column) for column in zip(*rows[1:])]


def assert_column_equals(cells, stored, name):
    stored = np.asarray(stored)
    assert len(cells) == stored.size, name
    if stored.dtype.kind == "f":
        parsed = np.array([float(cell) for cell in cells])   # NaN and Inf parse; floats are written exactly
        assert np.array_equal(parsed, stored, equal_nan=True), name
    elif stored.dtype.kind == "b":
        assert cells == ["TRUE" if value else "FALSE" for value in stored], name
    elif stored.dtype.kind in "iu":
        assert [int(cell) for cell in cells] == stored.tolist(), name
    else:
        assert cells == [str(value) for value in stored], name


def test_report_page_has_the_cross_sections_and_images(cross_results, tmp_path):
    page = cross_page(cross_results, tmp_path / "report")
    for title in SECTION_TITLES:
        assert f"<h2>{title}</h2>" in page
    for image in IMAGES:
        assert f'src="{image}"' in page
        assert (tmp_path / "report" / image).stat().st_size > 8000, image
    with open_results(cross_results) as results:
        genes = results.read("expression/gene_ids")
        q, p = results.read("cross-trans/pair_q_iut"), results.read("cross-trans/pair_p_iut")
        strongest = np.lexsort((p, q))[0]
        regulator = genes[results.read("cross-trans/pair_regulator")[strongest]]
        target = genes[results.read("cross-trans/pair_target")[strongest]]
        best_cis = genes[np.nanargmin(results.read("cross-eqtl/cis_pvalue"))]
    assert len(q) > 0
    assert f"<td>{regulator}</td><td>" in page and f"<td>{target}</td>" in page
    assert page.index(f"<td>{regulator}</td>") < page.index(f"<td>{target}</td>")
    assert f"<td>{best_cis}</td>" in page
    assert "Storey pi0 = " in page and "cis-eQTL regions" in page and "PC-eQTL regions" in page


def test_sections_of_a_file_without_cross_trans_say_so(cross_inputs, tmp_path):
    for name in ("cross.csv", "expression.tsv", "genes.tsv", "markers_bp.tsv"):
        (tmp_path / name).symlink_to(cross_inputs / name)
    config = write_config(tmp_path)
    qtlhpc("run", "expression", config)
    qtlhpc("run", "cross-eqtl", config)
    page = cross_page(tmp_path / "results.h5", tmp_path / "report")
    assert "cross-trans is missing" in page and "No trans table." in page
    assert (tmp_path / "report" / "cross_eqtl_map.png").stat().st_size > 8000   # the cis layers alone
    assert not (tmp_path / "report" / "cross_trans_pvalues.png").exists()


def test_pi0_that_cannot_be_estimated_is_a_note():
    pi0, note = storey_pi0(np.array([0.01, 0.02, 0.03, 0.2]))
    assert np.isnan(pi0) and "cannot be estimated" in note
    pi0, note = storey_pi0(np.random.default_rng(0).uniform(size=500))
    assert 0.8 < pi0 <= 1 and note == ""


def test_report_command_draws_the_cross_sections(cross_results, tmp_path):
    from qtlhpc.report.build import write_report

    page = write_report(cross_results, tmp_path / "report").read_text()
    assert all(f"<h2>{title}</h2>" in page for title in SECTION_TITLES)


def test_export_cross_trans_pairs_equals_the_datasets(cross_results, tmp_path):
    qtlhpc("export", cross_results, "cross-trans/pairs", "-o", tmp_path / "pairs.tsv")
    header, columns = read_tsv(tmp_path / "pairs.tsv")
    assert header == ["regulator", "target"] + list(TRANS_PAIR_COLUMNS)
    with open_results(cross_results) as results:
        genes = results.read("expression/gene_ids")
        assert_column_equals(columns[0], genes[results.read("cross-trans/pair_regulator")], "regulator")
        assert_column_equals(columns[1], genes[results.read("cross-trans/pair_target")], "target")
        for column, name in zip(columns[2:], TRANS_PAIR_COLUMNS):
            assert_column_equals(column, results.read(f"cross-trans/pair_{name}"), name)
    assert len(columns[0]) > 0


def test_export_cross_cis_equals_the_datasets(cross_results, tmp_path):
    qtlhpc("export", cross_results, "cross-eqtl/cis", "-o", tmp_path / "cis.tsv")
    header, columns = read_tsv(tmp_path / "cis.tsv")
    assert header == ["gene", "cis_pvalue", "cis_qvalue", "cis_significant", "peak_marker", "peak_chromosome",
                      "peak_position_bp"]
    with open_results(cross_results) as results:
        peak = results.read("cross-eqtl/cis_peak_marker")
        tested = peak >= 0
        expected = [results.read("expression/gene_ids")] + [
            results.read(f"cross-eqtl/{name}") for name in ("cis_pvalue", "cis_qvalue", "cis_significant")]
        expected += [peak, np.where(tested, results.read("cross-eqtl/marker_chromosomes")[peak], ""),
                     np.where(tested, results.read("cross-eqtl/marker_positions_bp")[peak], np.nan)]
    assert tested.sum() > 100
    for column, values, name in zip(columns, expected, header):
        assert_column_equals(column, values, name)


def test_export_cis_table_equals_the_datasets(cis_results, tmp_path):
    out = qtlhpc("export", cis_results, "cis/table").stdout
    (tmp_path / "cis.tsv").write_text(out)
    header, columns = read_tsv(tmp_path / "cis.tsv")
    assert header == [name for name, _ in CIS_COLUMNS]
    with open_results(cis_results) as results:
        index = results.read("cis/gene_index")
        for column, (name, dataset) in zip(columns, CIS_COLUMNS):
            if name == "chromosome":
                stored = results.read("expression/gene_chromosomes")[index]
            elif name == "tss":
                stored = results.read("expression/gene_tss")[index]
            else:
                stored = results.read(f"cis/{dataset}")
            assert_column_equals(column, stored, name)
        assert len(index) >= 3 and np.isfinite(results.read("cis/pval_beta")).sum() >= 3


def test_unknown_table_suggests_the_nearest(cross_results):
    refused = qtlhpc("export", cross_results, "cross-trans/pair", check=False)
    assert refused.returncode == 2
    assert "did you mean 'cross-trans/pairs'?" in refused.stderr
    for table in ("cis/table", "cross-trans/pairs", "cross-eqtl/cis", "scan2d/top_pairs"):
        assert table in refused.stderr
    assert "did you mean 'cis/table'?" in qtlhpc("export", cross_results, "cis/tabel", check=False).stderr
