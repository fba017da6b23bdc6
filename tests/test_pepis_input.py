"""PEPIS Z/W input: missing cells and illegal codes are named by file, line and column, and what
``qtlhpc simulate`` writes in the PEPIS format is read back and mapped (the rule: qtlhpc.io.pepis)."""

import re
import subprocess
import sys

import numpy as np
import pytest

from qtlhpc.errors import InputError
from qtlhpc.io import Cross, read_pepis
from qtlhpc.io.writers import expected_epistatic_codes, write_pepis

W_OK = "id m1 m2\na 1 -1\nb -1 1\n"
Y_OK = "id y\na 1\nb 2\n"


def write_trio(tmp_path, z_text, w_text=W_OK):
    paths = []
    for name, text in (("z.txt", z_text), ("w.txt", w_text), ("y.txt", Y_OK)):
        (tmp_path / name).write_text(text)
        paths.append(tmp_path / name)
    return paths


def where(*parts):
    return ".*".join(re.escape(p) for p in parts)


@pytest.mark.parametrize("cell", ("NA", "-", ""))
def test_missing_cell_in_z_names_file_line_and_column(tmp_path, cell):
    z_text = f"id\tm1\tm2\na\t1\t0\nb\t{cell}\t1\n"
    with pytest.raises(InputError, match=where("z.txt, line 3, column 2 ('m1')", "missing value in Z",
                                               "must be complete", "expected code")):
        read_pepis(*write_trio(tmp_path, z_text))


def test_missing_cell_in_w_is_named_and_counted(tmp_path):
    with pytest.raises(InputError, match=where("w.txt, line 2, column 3 ('m2')", "missing value in W",
                                               "2 such cells")):
        read_pepis(*write_trio(tmp_path, "id m1 m2\na 1 0\nb 0 1\n", "id m1 m2\na 1 NA\nb NA 1\n"))


@pytest.mark.parametrize("value", ("2", "1.5", "-3", "inf"))
def test_code_outside_minus_one_to_one_is_named(tmp_path, value):
    z_text = f"id m1 m2\na 1 0\nb -1 {value}\n"
    with pytest.raises(InputError, match=where("z.txt, line 3, column 3 ('m2')", "is not a legal code in Z",
                                               "in [-1, 1]")):
        read_pepis(*write_trio(tmp_path, z_text))


def test_code_2_in_w_without_header_is_named_by_column_number(tmp_path):
    z, w, _ = write_trio(tmp_path, "1 0\n0 1\n", "1 -1\n2 1\n")
    (tmp_path / "bare_y.txt").write_text("1\n2\n")
    with pytest.raises(InputError, match=where("w.txt, line 2, column 1", "2 is not a legal code in W")):
        read_pepis(z, w, tmp_path / "bare_y.txt")


def test_expectations_and_zero_in_w_are_accepted(tmp_path):
    """Non-integer codes in [-1, 1] are expectations; W = 0 is the F2 expectation at 1:2:1."""
    cross = read_pepis(*write_trio(tmp_path, "id m1 m2\na 0.25 0\nb -1 1\n", "id m1 m2\na 0 -0.5\nb -1 1\n"))
    np.testing.assert_array_equal(cross.additive_codes, [[0.25, 0], [-1, 1]])
    np.testing.assert_array_equal(cross.dominance_codes, [[0, -0.5], [-1, 1]])


def test_writer_fills_missing_and_partial_genotypes_with_marker_mean_codes(tmp_path):
    # f2 codes: 1 AA, 2 AB, 3 BB, 0 missing, 4 not BB, 5 not AA
    genotypes = np.array([[1, 2, 0], [3, 2, 0], [0, 4, 0], [1, 5, 0]])
    cross = Cross("f2", ["a", "b", "c", "d"], ["m1", "m2", "m3"], ["1"] * 3, np.arange(3.0), genotypes,
                  np.arange(4.0).reshape(4, 1), ["y"])
    additive, dominance = expected_epistatic_codes(cross)
    np.testing.assert_allclose(additive[:, 0], [1, -1, 1 / 3, 1])      # p_AA - p_BB = 2/3 - 1/3
    np.testing.assert_allclose(dominance[:, 0], [-1, -1, -1, -1])      # no AB observed
    np.testing.assert_allclose(additive[:, 1], [0, 0, 0, 0])           # all AB among the informative
    np.testing.assert_allclose(dominance[:, 1], [1, 1, 1, 1])
    np.testing.assert_array_equal(additive[:, 2], 0)                    # no information at all
    np.testing.assert_array_equal(dominance[:, 2], 0)
    write_pepis(cross, tmp_path / "z.tsv", tmp_path / "w.tsv", tmp_path / "y.tsv", tmp_path / "map.tsv")
    assert "NA" not in (tmp_path / "z.tsv").read_text() + (tmp_path / "w.tsv").read_text()
    got = read_pepis(tmp_path / "z.tsv", tmp_path / "w.tsv", tmp_path / "y.tsv", tmp_path / "map.tsv",
                     drop_uninformative=True)
    np.testing.assert_array_equal(got.additive_codes, additive[:, :got.n_markers])


PEPIS_RUN = """
[run]
output = "results.h5"
stages = ["kinship"]
progress = false

[input]
format = "pepis"
z = "cross_Z.txt"
w = "cross_W.txt"
phenotypes = "cross_pheno.txt"
map = "cross_map.txt"

[simulate]
cross_type = "f2"
n_individuals = 40
n_chromosomes = 2
markers_per_chromosome = 6
missing_rate = 0.1
seed = 5
main_qtl = [{ marker = 3, additive = 1.0 }]
write_format = "pepis"
write_to = "cross"
"""


def qtlhpc(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "qtlhpc", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


def test_simulated_pepis_with_missing_genotypes_is_read_and_mapped(tmp_path):
    config = tmp_path / "analysis.toml"
    config.write_text(PEPIS_RUN)
    simulated = qtlhpc("simulate", config)
    assert simulated.returncode == 0, simulated.stderr
    z_text = (tmp_path / "cross_Z.txt").read_text()
    assert "NA" not in z_text and "NA" not in (tmp_path / "cross_W.txt").read_text()
    assert re.search(r"\t-?0\.\d", z_text), "missing_rate = 0.1 should leave some expected (fractional) codes"
    result = qtlhpc("run", "all", config)
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "results.h5").exists()
