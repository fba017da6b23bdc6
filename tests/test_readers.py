"""Readers and writers: round trips for every format and cross type, alignment by ID, codes."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pytest

from qtlhpc.io import (
    INPUT_OPTIONS,
    Cross,
    epistatic_codes,
    load_cross,
    read_pepis,
    read_plink,
    read_rqtl_csv,
    read_rqtl_csvs,
    read_tsv_cross,
    write_map,
    write_matrix_tsv,
    write_pepis,
    write_rqtl_csv,
    write_rqtl_csvs,
)
from qtlhpc.io.cross import OBSERVED_CODES
from qtlhpc.io.writers import expected_epistatic_codes

FIXTURES = Path(__file__).parent / "data"
CROSS_TYPES = ("bc", "riself", "risib", "f2", "imf2", "generic")
ARRAY_FIELDS = ("individuals", "markers", "chromosomes", "positions", "genotypes", "phenotypes",
                "phenotype_names", "covariates", "covariate_names")


def random_cross(cross_type: str, seed: int = 0, n_individuals: int = 9, n_markers: int = 7) -> Cross:
    """A small cross with every observed code (missing included), NaN phenotypes, a covariate."""
    rng = np.random.default_rng(seed)
    if cross_type == "generic":
        genotypes = rng.normal(size=(n_individuals, n_markers))
        genotypes[rng.random(genotypes.shape) < 0.1] = np.nan
    else:
        codes = np.array(OBSERVED_CODES[cross_type])
        genotypes = rng.choice(codes, size=(n_individuals, n_markers))
        genotypes[:, 0] = codes[1:][np.arange(n_individuals) % (len(codes) - 1)]  # every code appears
    genotypes[0] = genotypes[0] if cross_type == "generic" else np.maximum(genotypes[0], 1)
    phenotypes = rng.normal(size=(n_individuals, 2)) * 10
    phenotypes[1, 1] = np.nan
    # chromosome "7", not "X": an X of a bc/f2 is recoded per sex (see test_rqtl_crosses.py)
    chromosomes = ["1"] * 3 + ["7"] * (n_markers - 3)
    positions = np.concatenate([np.sort(rng.uniform(0, 90, 3)), np.sort(rng.uniform(0, 50, n_markers - 3))])
    positions[4] = positions[3]  # equal positions are allowed
    return Cross(cross_type, [f"ind{k}" for k in range(n_individuals)], [f"mk{k}" for k in range(n_markers)],
                 chromosomes, positions, genotypes, phenotypes, ["weight", "log length"],
                 rng.integers(0, 2, size=(n_individuals, 1)), ["sex"])


def assert_same_cross(got: Cross, expected: Cross, fields=ARRAY_FIELDS):
    assert got.cross_type == expected.cross_type
    for name in fields:
        a, b = getattr(got, name), getattr(expected, name)
        assert a.shape == b.shape, name
        if a.dtype.kind == "f":
            np.testing.assert_array_equal(a, b, err_msg=name)
        else:
            assert np.array_equal(a, b), name


@pytest.mark.parametrize("cross_type", CROSS_TYPES)
def test_rqtl_csv_round_trip(tmp_path, cross_type):
    cross = random_cross(cross_type, seed=1)
    write_rqtl_csv(cross, tmp_path / "cross.csv")
    got = read_rqtl_csv(tmp_path / "cross.csv", cross_type, covariates=["sex"])
    assert_same_cross(got, cross)


@pytest.mark.parametrize("cross_type", CROSS_TYPES)
def test_rqtl_csvs_round_trip(tmp_path, cross_type):
    cross = random_cross(cross_type, seed=2)
    write_rqtl_csvs(cross, tmp_path / "geno.csv", tmp_path / "pheno.csv")
    got = read_rqtl_csvs(tmp_path / "geno.csv", tmp_path / "pheno.csv", cross_type, covariates=["sex"])
    assert_same_cross(got, cross)


def test_csvs_aligns_phenotypes_by_id_not_position(tmp_path):
    cross = random_cross("f2", seed=3)
    write_rqtl_csvs(cross, tmp_path / "geno.csv", tmp_path / "pheno.csv")
    lines = (tmp_path / "pheno.csv").read_text().splitlines()
    shuffled = [lines[0]] + lines[1:][::-1]
    (tmp_path / "pheno.csv").write_text("\n".join(shuffled) + "\n")
    got = read_rqtl_csvs(tmp_path / "geno.csv", tmp_path / "pheno.csv", "f2", covariates=["sex"])
    assert_same_cross(got, cross)


def test_csvs_keeps_common_individuals_with_a_warning(tmp_path, caplog):
    cross = random_cross("bc", seed=4)
    write_rqtl_csvs(cross, tmp_path / "geno.csv", tmp_path / "pheno.csv")
    lines = (tmp_path / "pheno.csv").read_text().splitlines()
    extra = "stranger," + ",".join(["1"] * 3)
    (tmp_path / "pheno.csv").write_text("\n".join([lines[0], extra] + lines[3:]) + "\n")  # drop ind0, ind1
    with caplog.at_level(logging.WARNING, logger="qtlhpc.io"):
        got = read_rqtl_csvs(tmp_path / "geno.csv", tmp_path / "pheno.csv", "bc")
    assert list(got.individuals) == [f"ind{k}" for k in range(2, 9)]
    np.testing.assert_array_equal(got.genotypes, cross.genotypes[2:])
    np.testing.assert_array_equal(got.phenotypes[:, :2], cross.phenotypes[2:])
    assert "1 IDs in" in caplog.text and "'stranger'" in caplog.text and "'ind0'" in caplog.text


def test_hand_written_csv_fixture_codes():
    """The hand-written fixture: partially informative codes D and C, missing '-' and 'NA', blanks."""
    cross = read_rqtl_csv(FIXTURES / "small_f2.csv", "f2")
    assert list(cross.individuals) == ["m1", "m2", "m3", "m4"]
    assert list(cross.phenotype_names) == ["weight", "length"]
    assert list(cross.chromosomes) == ["1", "1", "1", "2", "2"]
    np.testing.assert_array_equal(cross.positions, [0.0, 10.5, 20.0, 0.0, 33.3])
    # A H B D C -> 1 2 3 4 5; '-', 'NA' and blank -> 0
    np.testing.assert_array_equal(cross.genotypes, [[1, 2, 3, 4, 5],
                                                    [5, 4, 0, 1, 2],
                                                    [3, 0, 1, 2, 0],
                                                    [2, 1, 2, 3, 1]])
    assert np.isnan(cross.phenotypes[1, 0]) and np.isnan(cross.phenotypes[2, 1])
    assert cross.phenotypes[0, 0] == 31.2


def test_custom_labels_and_missing_strings(tmp_path):
    cross = random_cross("f2", seed=5)
    write_rqtl_csv(cross, tmp_path / "c.csv", genotype_labels=["AA", "AB", "BB", "notBB", "notAA"], missing="?")
    assert "notAA" in (tmp_path / "c.csv").read_text()
    got = read_rqtl_csv(tmp_path / "c.csv", "f2", genotype_labels="AA,AB,BB,notBB,notAA", missing=["?", "NA"],
                        covariates=["sex"])
    assert_same_cross(got, cross)


def test_csv_without_id_column_gets_row_numbers(tmp_path):
    (tmp_path / "c.csv").write_text("y,m1,m2\n,1,1\n,0,5\n1.5,A,B\n2.5,B,A\n")
    cross = read_rqtl_csv(tmp_path / "c.csv", "riself")
    assert list(cross.individuals) == ["1", "2"]
    np.testing.assert_array_equal(cross.genotypes, [[1, 2], [2, 1]])


def test_quoted_fields_and_crlf_line_ends(tmp_path):
    text = '"id","y","m1","m2"\r\n"","","1","1"\r\n"","","0","5"\r\n"a","1.5","A","H"\r\n"b","2","H","A"\r\n'
    (tmp_path / "c.csv").write_bytes(text.encode())
    cross = read_rqtl_csv(tmp_path / "c.csv", "bc")
    assert list(cross.individuals) == ["a", "b"]
    np.testing.assert_array_equal(cross.genotypes, [[1, 2], [2, 1]])


@pytest.mark.parametrize("cross_type", ("f2", "imf2", "bc", "riself", "risib", "generic"))
def test_plink_round_trip(tmp_path, cross_type, bed_reader):
    rng = np.random.default_rng(6)
    allowed = {"f2": (0, 1, 2), "imf2": (0, 1, 2), "bc": (1, 2), "riself": (0, 2), "risib": (0, 2),
               "generic": (0, 1, 2)}[cross_type]
    n_individuals, n_markers = 11, 6  # 11 is not a multiple of 4: exercises the padding of .bed rows
    counts = rng.choice(allowed, size=(n_individuals, n_markers)).astype(np.int8)
    counts[3, 2] = -127
    counts[:, 0] = np.array(allowed)[np.arange(n_individuals) % len(allowed)]
    properties = {"iid": [f"s{k}" for k in range(n_individuals)], "sid": [f"rs{k}" for k in range(n_markers)],
                  "chromosome": ["1", "1", "1", "2", "2", "2"], "cm_position": [0, 5, 9.5, 1, 2, 2],
                  "bp_position": [1, 2, 3, 4, 5, 6], "pheno": list(rng.normal(size=n_individuals))}
    properties["pheno"][4] = -9
    bed_reader.to_bed(tmp_path / "g.bed", counts, properties=properties)
    cross = read_plink(tmp_path / "g", cross_type)
    # A1 is the A allele: n_A1 2 -> AA (1); for f2 1 -> AB (2), 0 -> BB (3); RILs 0 -> BB (2)
    expected_code = {"f2": {2: 1, 1: 2, 0: 3}, "imf2": {2: 1, 1: 2, 0: 3}, "bc": {2: 1, 1: 2},
                     "riself": {2: 1, 0: 2}, "risib": {2: 1, 0: 2}}
    if cross_type == "generic":
        expected = np.where(counts == -127, np.nan, counts.astype(float))
        np.testing.assert_array_equal(cross.genotypes, expected)
    else:
        lookup = expected_code[cross_type]
        expected = np.vectorize(lambda c: lookup.get(int(c), 0))(counts)
        np.testing.assert_array_equal(cross.genotypes, expected)
    assert list(cross.individuals) == properties["iid"] and list(cross.markers) == properties["sid"]
    np.testing.assert_array_equal(cross.positions, properties["cm_position"])
    pheno = np.array(properties["pheno"], dtype=float)
    pheno[4] = np.nan
    np.testing.assert_allclose(cross.phenotypes[:, 0], pheno, rtol=1e-6)  # .fam stores a rounded text form


def test_plink_bp_positions_and_phenotype_table(tmp_path, caplog, bed_reader):
    counts = np.array([[2, 1, 0], [0, 1, 2], [1, 1, 1], [2, 2, 0]], dtype=np.int8)
    bed_reader.to_bed(tmp_path / "g.bed", counts, properties={
        "iid": ["a", "b", "c", "d"], "chromosome": ["3", "3", "4"], "sid": ["x", "y", "z"],
        "bp_position": [1_500_000, 2_000_000, 10]})
    write_matrix_tsv(tmp_path / "pheno.tsv", ["d", "b", "a", "c"], ["y", "age"],
                     [[4.0, 40], [2.0, 20], [1.0, 10], [3.0, 30]], id_name="IID")
    with caplog.at_level(logging.WARNING, logger="qtlhpc.io"):
        cross = read_plink(tmp_path / "g.bed", "f2", phenotypes=tmp_path / "pheno.tsv", covariates=["age"])
    assert "base-pair positions / 1e6" in caplog.text
    np.testing.assert_array_equal(cross.positions, [1.5, 2.0, 1e-5])
    np.testing.assert_array_equal(cross.phenotypes[:, 0], [1.0, 2.0, 3.0, 4.0])
    np.testing.assert_array_equal(cross.covariates[:, 0], [10, 20, 30, 40])
    np.testing.assert_array_equal(cross.genotypes, [[1, 2, 3], [3, 2, 1], [2, 2, 2], [1, 1, 3]])


@pytest.mark.parametrize("cross_type", ("f2", "bc", "riself"))
def test_pepis_round_trip(tmp_path, cross_type):
    cross = random_cross(cross_type, seed=7)
    additive, dominance = expected_epistatic_codes(cross)  # PEPIS files are complete: expectations fill NaN
    assert not np.isnan(additive).any() and not np.isnan(dominance).any()
    write_pepis(cross, tmp_path / "z.txt", tmp_path / "w.txt", tmp_path / "p.txt", tmp_path / "map.txt")
    got = read_pepis(tmp_path / "z.txt", tmp_path / "w.txt", tmp_path / "p.txt", tmp_path / "map.txt",
                     covariates=["sex"])
    assert got.cross_type == "generic"
    np.testing.assert_array_equal(got.additive_codes, additive)
    np.testing.assert_array_equal(got.dominance_codes, dominance)
    np.testing.assert_array_equal(got.genotypes, additive)
    assert_same_cross(got, Cross("generic", cross.individuals, cross.markers, cross.chromosomes, cross.positions,
                                 additive, cross.phenotypes, cross.phenotype_names, cross.covariates,
                                 cross.covariate_names))


def test_epistatic_codes_follow_xu_2013():
    cross = Cross("f2", ["a"], ["m1", "m2", "m3", "m4", "m5", "m6"], ["1"] * 6, np.arange(6.0),
                  [[1, 2, 3, 0, 4, 5]])
    additive, dominance = epistatic_codes(cross)
    np.testing.assert_array_equal(additive, [[1, 0, -1, np.nan, np.nan, np.nan]])
    np.testing.assert_array_equal(dominance, [[-1, 1, -1, np.nan, np.nan, np.nan]])


def test_pepis_layouts_without_header_or_ids(tmp_path):
    """Bare numeric matrices (no header, no IDs) with a bare phenotype vector, matched by row order."""
    z = np.array([[1, 0, -1], [0, 0.5, 1], [-1, 1, -0.25]])
    w = np.array([[-1, 1, -1], [1, 0.25, -1], [-1, -1, 1]])
    (tmp_path / "z.txt").write_text("1 0 -1\n0 0.5 1\n-1\t1\t-0.25\n")
    (tmp_path / "w.txt").write_text("-1 1 -1\n1 0.25 -1\n-1 -1 1\n")
    (tmp_path / "y.txt").write_text("2.5\n3\n-1\n")
    cross = read_pepis(tmp_path / "z.txt", tmp_path / "w.txt", tmp_path / "y.txt")
    np.testing.assert_array_equal(cross.additive_codes, z)
    np.testing.assert_array_equal(cross.dominance_codes, w)
    np.testing.assert_array_equal(cross.phenotypes[:, 0], [2.5, 3, -1])
    assert list(cross.individuals) == ["1", "2", "3"] and list(cross.chromosomes) == ["1"] * 3


def test_pepis_aligns_w_and_phenotypes_by_id_and_map_order(tmp_path):
    (tmp_path / "z.txt").write_text("b a c\nr1 1 0 -1\nr2 0 1 1\n")           # header one shorter: IDs
    (tmp_path / "w.txt").write_text("id a b c\nr2 -1 1 -1\nr1 1 -1 -1\n")    # rows and columns reordered
    (tmp_path / "y.txt").write_text("id y\nr2 20\nr1 10\n")
    (tmp_path / "map.txt").write_text("a 1 0\nb 1 5\nc 2 1\n")
    cross = read_pepis(tmp_path / "z.txt", tmp_path / "w.txt", tmp_path / "y.txt", tmp_path / "map.txt")
    assert list(cross.markers) == ["a", "b", "c"] and list(cross.individuals) == ["r1", "r2"]
    np.testing.assert_array_equal(cross.additive_codes, [[0, 1, -1], [1, 0, 1]])
    np.testing.assert_array_equal(cross.dominance_codes, [[1, -1, -1], [-1, 1, -1]])
    np.testing.assert_array_equal(cross.phenotypes[:, 0], [10, 20])


@pytest.mark.parametrize("cross_type", ("f2", "generic"))
def test_tsv_cross_round_trip(tmp_path, cross_type):
    cross = random_cross(cross_type, seed=8)
    values = cross.genotypes.astype(float)
    if cross_type != "generic":
        values[values == 0] = np.nan
    write_matrix_tsv(tmp_path / "geno.tsv", cross.individuals, cross.markers, values)
    write_map(tmp_path / "map.tsv", cross.markers, cross.chromosomes, cross.positions)
    order = np.arange(cross.n_individuals)[::-1]
    write_matrix_tsv(tmp_path / "pheno.tsv", cross.individuals[order], ["weight", "log length", "sex"],
                     np.column_stack([cross.phenotypes, cross.covariates])[order])
    got = read_tsv_cross(tmp_path / "geno.tsv", cross_type, tmp_path / "map.tsv", tmp_path / "pheno.tsv",
                         covariates=["sex"])
    assert_same_cross(got, cross)


def test_load_cross_every_format_with_relative_paths(tmp_path):
    cross = random_cross("f2", seed=9)
    cross.genotypes[cross.genotypes > 3] = 2  # PEPIS codes of partially informative calls need probabilities
    data = tmp_path / "data"
    write_rqtl_csv(cross, data / "cross.csv")
    write_rqtl_csvs(cross, data / "geno.csv", data / "pheno.csv")
    write_pepis(cross, data / "z.tsv", data / "w.tsv", data / "y.tsv", data / "map.tsv")
    write_matrix_tsv(data / "expr.tsv", cross.individuals[::-1], ["g1", "g2"],
                     np.arange(2.0 * cross.n_individuals).reshape(-1, 2)[::-1])
    (data / "genes.tsv").write_text("gene\tchromosome\tposition\ng2\tX\t4.5\ng1\t1\tNA\n")
    common = {"cross_type": "f2", "covariates": ["sex"], "traits": ["log length"]}
    csv_cross = load_cross({"format": "rqtl-csv", "file": "data/cross.csv", **common,
                            "expression": "data/expr.tsv", "gene_map": "data/genes.tsv"}, tmp_path)
    csvs_cross = load_cross({"format": "rqtl-csvs", "genotypes": "data/geno.csv", "phenotypes": "data/pheno.csv",
                             **common}, tmp_path)
    for got in (csv_cross, csvs_cross):
        assert_same_cross(got, cross, ("individuals", "genotypes", "covariates", "positions"))
        assert list(got.phenotype_names) == ["log length"]
        np.testing.assert_array_equal(got.phenotypes[:, 0], cross.phenotypes[:, 1])
    np.testing.assert_array_equal(csv_cross.expression, np.arange(2.0 * cross.n_individuals).reshape(-1, 2))
    assert list(csv_cross.gene_chromosomes) == ["1", "X"] and np.isnan(csv_cross.gene_positions[0])
    pepis_cross = load_cross({"format": "pepis", "z": "data/z.tsv", "w": "data/w.tsv", "phenotypes": "data/y.tsv",
                              "map": "data/map.tsv"}, tmp_path)
    np.testing.assert_array_equal(pepis_cross.dominance_codes, expected_epistatic_codes(cross)[1])


def test_input_options_are_declared_with_type_default_and_description():
    for name, (kind, default, description) in INPUT_OPTIONS.items():
        kinds = kind if isinstance(kind, tuple) else (kind,)
        assert all(isinstance(k, type) for k in kinds), name
        assert default is None or isinstance(default, kinds), name
        assert isinstance(description, str) and len(description) > 10, name


def test_large_csv_reads_in_seconds(tmp_path):
    """A 300 x 5,000 f2 csv (the benchmark in bench/ does 1,000 x 20,000) reads well within seconds."""
    import time
    rng = np.random.default_rng(10)
    n_individuals, n_markers = 300, 5000
    cross = Cross("f2", [f"i{k}" for k in range(n_individuals)], [f"m{k}" for k in range(n_markers)],
                  np.repeat(["1", "2", "3", "4", "5"], n_markers // 5), np.tile(np.arange(n_markers // 5.0), 5),
                  rng.integers(0, 6, size=(n_individuals, n_markers)), rng.normal(size=(n_individuals, 1)), ["y"])
    write_rqtl_csv(cross, tmp_path / "big.csv")
    start = time.perf_counter()
    got = read_rqtl_csv(tmp_path / "big.csv", "f2")
    elapsed = time.perf_counter() - start
    np.testing.assert_array_equal(got.genotypes, cross.genotypes)
    assert elapsed < 10, f"reading 1.5 million genotypes took {elapsed:.1f} s"


@pytest.mark.parametrize("seed", range(3))
def test_fast_label_paths_equal_the_obvious_cell_by_cell_mapping(seed):
    """The byte fast path and the dict path give the same codes as mapping every cell in Python,
    with adjacent blank / 'NA' / '-' cells and cells at the row ends."""
    from qtlhpc.io.tables import Rows, lookup_codes, single_char_codes
    rng = np.random.default_rng(seed)
    vocabulary = np.array(["A", "H", "B", "D", "C", "-", "NA", ""])
    cells = vocabulary[rng.integers(0, len(vocabulary), size=(12, 9))]
    cells[0, :] = "NA"
    cells[1, :] = ""
    rows = Rows(Path("x.csv"), [["id"] + [f"m{k}" for k in range(9)]] +
                [[f"i{k}"] + list(row) for k, row in enumerate(cells)], list(range(1, 14)))
    labels, missing = ("A", "H", "B", "D", "C"), ("-", "NA")
    code_of = {label: k + 1 for k, label in enumerate(labels)}
    expected = np.array([[code_of.get(cell, 0) for cell in row] for row in cells])
    np.testing.assert_array_equal(single_char_codes(rows, 1, 1, labels, missing, ","), expected)
    np.testing.assert_array_equal(lookup_codes(rows, 1, 1, labels, missing), expected)
    rows.fields[5][3] = "X"
    assert single_char_codes(rows, 1, 1, labels, missing, ",") is None
    assert lookup_codes(rows, 1, 1, labels, missing) is None


def test_load_cross_plink_and_tsv_with_a_covariate_file(tmp_path, bed_reader):
    counts = np.array([[2, 1, 0], [0, 1, 2], [1, 2, 2]], dtype=np.int8)
    bed_reader.to_bed(tmp_path / "g.bed", counts, properties={
        "iid": ["a", "b", "c"], "sid": ["x", "y", "z"], "chromosome": ["1", "1", "2"], "cm_position": [0, 1, 2],
        "pheno": [1.0, 2.0, 3.0]})
    write_matrix_tsv(tmp_path / "cov.tsv", ["c", "a", "b"], ["age"], [[30], [10], [20]])
    cross = load_cross({"format": "plink", "file": "g", "cross_type": "f2", "covariates": "cov.tsv"}, tmp_path)
    np.testing.assert_array_equal(cross.covariates[:, 0], [10, 20, 30])
    np.testing.assert_array_equal(cross.phenotypes[:, 0], [1, 2, 3])
    np.testing.assert_array_equal(cross.genotypes, [[1, 2, 3], [3, 2, 1], [2, 1, 1]])
    write_matrix_tsv(tmp_path / "geno.tsv", ["a", "b"], ["x", "y"], [[1, 3], [np.nan, 2]])
    cross = load_cross({"format": "tsv", "genotypes": "geno.tsv", "cross_type": "f2", "covariates": "cov.tsv"},
                       tmp_path)
    np.testing.assert_array_equal(cross.genotypes, [[1, 3], [0, 2]])
    np.testing.assert_array_equal(cross.covariates[:, 0], [10, 20])
