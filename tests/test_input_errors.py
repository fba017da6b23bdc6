"""Every user mistake in an input file gives an InputError naming the file, line, column and value."""

from __future__ import annotations

import logging
import re

import numpy as np
import pytest

from qtlhpc.io import load_cross, read_pepis, read_plink, read_rqtl_csv, read_rqtl_csvs, read_tsv_cross
from qtlhpc.errors import ConfigError, InputError

HEADER = "id,weight,m1,m2,m3\n,,1,1,2\n,,0,5,0\n"


def where(*parts: str) -> str:
    """A regex matching the parts in order, anything between them."""
    return ".*".join(re.escape(p) for p in parts)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_unknown_genotype_label_names_line_column_value_and_allowed_labels(tmp_path):
    path = write(tmp_path, "c.csv", HEADER + "a,1,A,H,A\nb,2,H,X,A\nc,3,A,Q,H\n")
    with pytest.raises(InputError, match=where("c.csv, line 5, column 4 ('m2')", "unknown genotype 'X'",
                                               "allowed: 'A', 'H'", "2 unknown cells", "'Q'", "genotype_labels")):
        read_rqtl_csv(path, "bc")


def test_unknown_label_found_by_the_general_path_too(tmp_path):
    """Multi-character labels skip the byte fast path; the location must still be exact."""
    path = write(tmp_path, "c.csv", HEADER + "a,1,AA,AB,AA\nb,2,AB,AA,ZZ\n")
    with pytest.raises(InputError, match=where("c.csv, line 5, column 5 ('m3')", "unknown genotype 'ZZ'")):
        read_rqtl_csv(path, "bc", genotype_labels=["AA", "AB"])


def test_duplicated_individual_id(tmp_path):
    path = write(tmp_path, "c.csv", HEADER + "a,1,A,H,A\nb,2,H,A,A\na,3,A,H,H\n")
    with pytest.raises(InputError, match=where("c.csv, line 6, column 1 ('id')", "duplicated individual ID 'a'",
                                               "first at line 4")):
        read_rqtl_csv(path, "bc")


def test_duplicated_marker_name(tmp_path):
    path = write(tmp_path, "c.csv", "id,weight,m1,m2,m1\n,,1,1,2\n,,0,5,0\na,1,A,H,A\n")
    with pytest.raises(InputError, match=where("c.csv, line 1, column 5 ('m1')", "duplicated marker name 'm1'",
                                               "first at line 1, column 3")):
        read_rqtl_csv(path, "bc")


def test_ids_only_in_phenotype_file_with_strict_policy(tmp_path):
    geno = write(tmp_path, "g.csv", "id,m1,m2\n,1,1\n,0,5\na,A,H\nb,H,A\n")
    pheno = write(tmp_path, "p.csv", "id,y\na,1\nb,2\nzed,3\n")
    with pytest.raises(InputError, match=where("p.csv", "1 IDs in", "p.csv are not in", "g.csv", "'zed'")):
        read_rqtl_csvs(geno, pheno, "bc", id_mismatch="error")


def test_ids_only_in_genotype_file_warns_and_intersects_by_default(tmp_path, caplog):
    geno = write(tmp_path, "g.csv", "id,m1,m2\n,1,1\n,0,5\na,A,H\nb,H,A\nc,A,A\n")
    pheno = write(tmp_path, "p.csv", "id,y\nc,3\na,1\n")
    with caplog.at_level(logging.WARNING, logger="qtlhpc.io"):
        cross = read_rqtl_csvs(geno, pheno, "bc")
    assert list(cross.individuals) == ["a", "c"]
    np.testing.assert_array_equal(cross.phenotypes[:, 0], [1, 3])
    assert re.search(where("1 IDs in", "g.csv are not in", "p.csv: 'b'"), caplog.text)


def test_no_common_ids(tmp_path):
    geno = write(tmp_path, "g.csv", "id,m1,m2\n,1,1\n,0,5\na,A,H\nb,H,A\n")
    pheno = write(tmp_path, "p.csv", "id,y\nA1,1\nB1,2\n")
    with pytest.raises(InputError, match=where("p.csv: no individual ID in common with", "g.csv", "'a', 'b'",
                                               "'A1', 'B1'")):
        read_rqtl_csvs(geno, pheno, "bc")


def test_decreasing_positions_within_a_chromosome(tmp_path):
    path = write(tmp_path, "c.csv", "id,m1,m2,m3\n,1,1,2\n,10,5,0\na,A,H,A\n")
    with pytest.raises(InputError, match=where("c.csv, line 3, column 3 ('m2')", "position 5 of marker 'm2'",
                                               "less than 10", "'m1'", "chromosome '1'")):
        read_rqtl_csv(path, "bc")


def test_chromosome_split_into_two_runs(tmp_path):
    path = write(tmp_path, "c.csv", "id,m1,m2,m3,m4\n,1,2,1,2\n,0,0,5,5\na,A,H,A,H\n")
    with pytest.raises(InputError, match=where("c.csv, line 2, column 4 ('m3')", "chromosome '1' appears again",
                                               "'m3'", "column 2 ('m1')")):
        read_rqtl_csv(path, "bc")


def test_ragged_row(tmp_path):
    path = write(tmp_path, "c.csv", HEADER + "a,1,A,H,A\nb,2,H,A\n")
    with pytest.raises(InputError, match=where("c.csv, line 5: has 4 fields, expected 5", "line 1")):
        read_rqtl_csv(path, "bc")


def test_non_numeric_phenotype(tmp_path):
    path = write(tmp_path, "c.csv", HEADER + "a,1,A,H,A\nb,heavy,H,A,A\n")
    with pytest.raises(InputError, match=where("c.csv, line 5, column 2 ('weight')", "'heavy' is not a number",
                                               "numeric phenotype")):
        read_rqtl_csv(path, "bc")


def test_non_numeric_position(tmp_path):
    path = write(tmp_path, "c.csv", "id,m1,m2\n,1,1\n,0,5cM\na,A,H\n")
    with pytest.raises(InputError, match=where("c.csv, line 3, column 3 ('m2')", "'5cM' is not a number",
                                               "position in cM")):
        read_rqtl_csv(path, "bc")


def test_all_missing_marker(tmp_path):
    path = write(tmp_path, "c.csv", HEADER + "a,1,A,-,A\nb,2,H,NA,A\n")
    with pytest.raises(InputError, match=where("c.csv, line 1, column 4 ('m2')", "marker 'm2' has no observed",
                                               "drop_uninformative")):
        read_rqtl_csv(path, "bc")
    cross = read_rqtl_csv(path, "bc", drop_uninformative=True)
    assert list(cross.markers) == ["m1", "m3"]


def test_all_missing_individual(tmp_path):
    path = write(tmp_path, "c.csv", HEADER + "a,1,A,H,A\nb,2,-,NA,\n")
    with pytest.raises(InputError, match=where("c.csv, line 5", "individual 'b' has no observed genotype")):
        read_rqtl_csv(path, "bc")


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=where("nothere.csv: file not found", "relative paths")):
        read_rqtl_csv(tmp_path / "nothere.csv", "f2")


def test_empty_file(tmp_path):
    path = write(tmp_path, "empty.csv", "\n  \n")
    with pytest.raises(InputError, match=where("empty.csv: the file is empty")):
        read_rqtl_csv(path, "f2")


def test_marker_without_chromosome(tmp_path):
    path = write(tmp_path, "c.csv", "id,m1,m2\n,1,\n,0,5\na,A,H\n")
    with pytest.raises(InputError, match=where("c.csv, line 2, column 3 ('m2')", "marker 'm2' has no chromosome")):
        read_rqtl_csv(path, "bc")


def test_value_in_phenotype_column_of_the_position_row(tmp_path):
    path = write(tmp_path, "c.csv", "id,y,m1,m2\n,,1,1\na,1,A,H\nb,2,H,A\n")
    with pytest.raises(InputError, match=where("c.csv, line 3, column 1 ('id')", "found 'a'", "expected a blank")):
        read_rqtl_csv(path, "bc")


def test_unknown_format_and_config_key_suggest_the_nearest(tmp_path):
    with pytest.raises(ConfigError, match=where("format = 'rqtl_csv'", "did you mean 'rqtl-csv'")):
        load_cross({"format": "rqtl_csv", "file": "x.csv", "cross_type": "f2"}, tmp_path)
    with pytest.raises(ConfigError, match=where("unknown key 'phenotype'", "did you mean 'phenotypes'")):
        load_cross({"format": "rqtl-csv", "file": "x.csv", "cross_type": "f2", "phenotype": "p.csv"}, tmp_path)
    with pytest.raises(ConfigError, match=where("cross_type", "'f3'", "did you mean 'f2'")):
        load_cross({"format": "rqtl-csv", "file": "x.csv", "cross_type": "f3"}, tmp_path)


def test_unknown_trait_suggests_the_nearest(tmp_path):
    write(tmp_path, "c.csv", "id,weight,m1\n,,1\n,,0\na,1,A\nb,2,H\n")
    with pytest.raises(InputError, match=where("c.csv, line 1", "no trait named 'wieght'", "did you mean 'weight'")):
        load_cross({"format": "rqtl-csv", "file": "c.csv", "cross_type": "bc", "traits": ["wieght"]}, tmp_path)


def test_z_and_w_of_different_shapes(tmp_path):
    z = write(tmp_path, "z.txt", "1 0 -1\n0 1 1\n")
    w = write(tmp_path, "w.txt", "1 -1\n-1 1\n")
    y = write(tmp_path, "y.txt", "1\n2\n")
    with pytest.raises(InputError, match=where("w.txt: W has 2 individuals x 2 markers", "z.txt", "has 2 x 3")):
        read_pepis(z, w, y)


def test_non_numeric_value_in_z(tmp_path):
    z = write(tmp_path, "z.txt", "id m1 m2\na 1 0\nb 0 one\n")
    w = write(tmp_path, "w.txt", "id m1 m2\na 1 -1\nb -1 1\n")
    y = write(tmp_path, "y.txt", "id y\na 1\nb 2\n")
    with pytest.raises(InputError, match=where("z.txt, line 3, column 3 ('m2')", "'one' is not a number",
                                               "additive code")):
        read_pepis(z, w, y)


def test_map_with_empty_chromosome_and_map_missing_markers(tmp_path):
    z = write(tmp_path, "z.txt", "id m1 m2\na 1 0\nb 0 1\n")
    w = write(tmp_path, "w.txt", "id m1 m2\na 1 -1\nb -1 1\n")
    y = write(tmp_path, "y.txt", "id y\na 1\nb 2\n")
    empty = write(tmp_path, "map.tsv", "marker\tchromosome\tposition\nm1\t1\t0\nm2\t\t4\n")
    with pytest.raises(InputError, match=where("map.tsv, line 3, column 2 (chromosome)",
                                               "marker 'm2' has an empty chromosome")):
        read_pepis(z, w, y, empty)
    short = write(tmp_path, "short.tsv", "m1\t1\t0\nm9\t1\t3\n")
    with pytest.raises(InputError, match=where("short.tsv: 1 markers of Z", "z.txt", "not in the map: 'm2'")):
        read_pepis(z, w, y, short)


def test_code_not_allowed_for_the_cross_type_in_a_tsv_matrix(tmp_path):
    geno = write(tmp_path, "g.tsv", "id\tm1\tm2\na\t1\t2\nb\t2\t3\n")
    with pytest.raises(InputError, match=where("g.tsv, line 3, column 3 ('m2')", "genotype code 3 is not allowed",
                                               "bc cross", "0, 1, 2")):
        read_tsv_cross(geno, "bc")


@pytest.fixture
def plink_set(tmp_path, bed_reader):
    counts = np.array([[2, 1, 0], [0, 1, 2], [1, 2, 2]], dtype=np.int8)
    bed_reader.to_bed(tmp_path / "g.bed", counts, properties={
        "iid": ["a", "b", "c"], "sid": ["x", "y", "z"], "chromosome": ["1", "1", "2"], "cm_position": [0, 1, 2]})
    return tmp_path / "g"


def test_plink_bim_and_bed_disagree(plink_set):
    bim = plink_set.with_suffix(".bim")
    bim.write_text(bim.read_text() + "2\tw\t3\t0\tA\tG\n")
    with pytest.raises(InputError, match=where("g.bed: has 6 bytes", "3 individuals in g.fam",
                                               "4 markers in g.bim need 7 bytes")):
        read_plink(plink_set, "f2")


def test_plink_fam_line_with_too_few_fields(plink_set):
    fam = plink_set.with_suffix(".fam")
    lines = fam.read_text().splitlines()
    lines[1] = "0 b 0 0 0"
    fam.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match=where("g.fam, line 2: has 5 fields, expected 6", "FID, IID")):
        read_plink(plink_set, "f2")


def test_plink_duplicated_iid(plink_set):
    fam = plink_set.with_suffix(".fam")
    fam.write_text(fam.read_text().replace(" c ", " a "))
    with pytest.raises(InputError, match=where("g.fam, line 3, column 2 (IID)", "duplicated individual ID (IID) 'a'",
                                               "first at line 1")):
        read_plink(plink_set, "f2")


def test_plink_genotype_impossible_in_a_backcross(plink_set):
    with pytest.raises(InputError, match=where("g.bed", "column marker 3 ('z')", "individual 'a'",
                                               "BB (0 copies of allele 1)", "bc cross")):
        read_plink(plink_set, "bc")


def test_plink_non_numeric_cm_position(plink_set):
    bim = plink_set.with_suffix(".bim")
    bim.write_text(bim.read_text().replace("\t1.0\t", "\tone\t", 1).replace("\t1\t", "\tone\t", 1))
    with pytest.raises(InputError, match=where("g.bim, line 2, column 3 (cM)", "'one' is not a number")):
        read_plink(plink_set, "f2")
