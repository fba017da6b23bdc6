"""Expression input: ExpressionSet, the matrix/annotation, BED and covariate readers, VCF genotypes, and the
transforms, on small files written here and on FastQTL's example (Debian package fastqtl)."""

from __future__ import annotations

import gzip
import logging
import pickle
import re
import shutil
import subprocess
import tarfile
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from qtlhpc.errors import InputError
from qtlhpc.io import expression as expression_module
from qtlhpc.io.expression import ExpressionSet
from qtlhpc.io.expression_readers import (
    GeneAnnotation,
    parse_region,
    read_covariates,
    read_expression_bed,
    read_expression_matrix,
    read_gene_annotation,
)
from qtlhpc.stats import transforms
from requirements import skip_or_fail

DATA = Path(__file__).parent / "data" / "expression"
FASTQTL_EXAMPLE = Path("/usr/share/doc/fastqtl/examples")
SAMPLES = ["S1", "S2", "S3", "S4", "S5", "S6"]
GENES = ["G1", "G2", "G3", "G4", "G5"]
#: tests/data/expression/expression_genes_in_rows.tsv as numbers
EXPECTED = np.array([
    [1.5, 2.25, -0.5, 3, np.nan, 0.125],
    [10, 11, 12, 13, 14, 15],
    [-1e-3, 200, 0, 0, 0, 7],
    [5.5, np.nan, 4.5, 3.5, 2.5, 1.5],
    [0.1, 0.2, 0.3, 0.4, 0.5, 0.6],
])


def pysam_module():
    try:
        import pysam
    except ImportError as error:
        skip_or_fail(f"pysam is not importable ({error}): apt-get install python3-pysam")
    return pysam


def vcf_module():
    try:
        from qtlhpc.io import vcf
    except ImportError as error:
        skip_or_fail(f"cyvcf2 is not importable ({error}): apt-get install python3-cyvcf2")
    return vcf


def where(*parts: str) -> str:
    """A regex matching the parts in order, anything between them."""
    return ".*".join(re.escape(p) for p in parts)


def write(tmp_path, name, text) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def indexed(tmp_path, source: Path, preset: str) -> Path:
    """A bgzipped, tabix-indexed copy of ``source`` in ``tmp_path``."""
    copy = tmp_path / source.name
    shutil.copy(source, copy)
    return Path(pysam_module().tabix_index(str(copy), preset=preset, force=True))


def assert_same_set(left: ExpressionSet, right: ExpressionSet) -> None:
    for name in ("gene_ids", "chromosomes", "starts", "ends", "strands", "sample_ids"):
        np.testing.assert_array_equal(getattr(left, name), getattr(right, name), err_msg=name)
    np.testing.assert_array_equal(left.values, right.values)


# ---------------------------------------------------------------------------- ExpressionSet
def small_set(**changes) -> ExpressionSet:
    fields = dict(values=EXPECTED.copy(), gene_ids=GENES, chromosomes=["1", "1", "1", "2", "2"],
                  starts=[1001, 5001, 9001, 3001, 7001], ends=[2000, 6000, 9001, 4000, 8000],
                  strands=["+", "-", ".", "+", "-"], sample_ids=SAMPLES)
    fields.update(changes)
    return ExpressionSet(**fields)


def test_expression_set_shapes_tss_and_selections():
    data = small_set()
    assert (data.n_genes, data.n_samples) == (5, 6)
    assert data.values.dtype == np.float64 and data.starts.dtype == np.int64
    np.testing.assert_array_equal(data.tss, [1001, 6000, 9001, 3001, 8000])  # '-' strand: the end
    block = data.gene_block(1, 3)
    np.testing.assert_array_equal(block.gene_ids, ["G2", "G3"])
    np.testing.assert_array_equal(block.values, EXPECTED[1:3])
    picked = data.subset_genes(np.array([True, False, False, True, False]))
    np.testing.assert_array_equal(picked.gene_ids, ["G1", "G4"])
    np.testing.assert_array_equal(data.subset_genes([4, 0]).tss, [8000, 1001])
    aligned = data.align(["S3", "S1"])
    np.testing.assert_array_equal(aligned.sample_ids, ["S3", "S1"])
    np.testing.assert_array_equal(aligned.values, EXPECTED[:, [2, 0]])
    with pytest.raises(ValueError, match="repeats a gene"):
        data.subset_genes([0, 0])
    with pytest.raises(ValueError, match=re.escape("[4, 9) is not within [0, 5]")):
        data.gene_block(4, 9)


def test_expression_set_pickles_small_sets_and_refuses_large_ones(monkeypatch):
    data = small_set(source="expr.tsv")
    copy = pickle.loads(pickle.dumps(data))
    assert_same_set(copy, data)
    assert copy.source == "expr.tsv"
    monkeypatch.setattr(expression_module, "PICKLE_LIMIT_BYTES", 100)
    with pytest.raises(TypeError, match=where("5 genes x 6 samples", "is not pickled whole", "gene_block")):
        pickle.dumps(data)
    pickle.dumps(data.gene_block(0, 2))  # a gene block is small enough


@pytest.mark.parametrize("changes, fragments", [
    (dict(values=EXPECTED[:, :5]), ("sample_ids has 6 entries but values has 5 samples",)),
    (dict(values=EXPECTED[:4]), ("gene_ids has 5 entries but values has 4 genes", "transpose")),
    (dict(values=np.where(EXPECTED == 200, np.inf, EXPECTED)),
     ("value inf for gene 'G3', sample 'S2' is infinite", "finite or NaN")),
    (dict(gene_ids=["G1", "G2", "G1", "G4", "G5"]), ("duplicated gene IDs: 'G1'",)),
    (dict(strands=["+", "-", "?", "+", "-"]), ("gene 'G3' has strand '?'",)),
    (dict(ends=[2000, 6000, 9000, 4000, 8000]), ("gene 'G3' ends at 9000 before it starts at 9001",)),
    (dict(starts=[1001.5, 5001, 9001, 3001, 7001]), ("starts[0] = 1001.5 is not a whole base-pair position",)),
])
def test_expression_set_validation_says_what_is_wrong(changes, fragments):
    with pytest.raises(InputError, match=where("expr.tsv", *fragments)):
        small_set(source="expr.tsv", **changes)


def test_align_names_missing_samples_and_suggests():
    with pytest.raises(InputError, match=where("2 of the 3 samples asked for are not in expr.tsv", "'S7', 'SS1'",
                                               "did you mean", "matched by ID")):
        small_set(source="expr.tsv").align(["S1", "S7", "SS1"])


# ---------------------------------------------------------------------------- matrix + annotation
def test_annotation_reads_positions_strands_and_ignores_other_columns():
    annotation = read_gene_annotation(DATA / "genes.tsv")
    np.testing.assert_array_equal(annotation.gene_ids, GENES + ["G6"])
    np.testing.assert_array_equal(annotation.starts, [1001, 5001, 9001, 3001, 7001, 9500])
    np.testing.assert_array_equal(annotation.strands, ["+", "-", ".", "+", "-", "+"])
    np.testing.assert_array_equal(annotation.lines, [2, 3, 4, 5, 6, 7])


def test_annotation_with_configured_column_names_and_zero_based_starts(tmp_path):
    path = write(tmp_path, "ann.csv", "name,seq,tss0,orientation\nA,X,99,+\nB,X,199,-\n")
    annotation = read_gene_annotation(path, columns={"gene_id": "name", "chromosome": "seq", "start": "tss0",
                                                     "strand": "orientation"}, zero_based=True)
    np.testing.assert_array_equal(annotation.starts, [100, 200])
    np.testing.assert_array_equal(annotation.ends, [100, 200])  # no end column: a TSS table
    np.testing.assert_array_equal(annotation.chromosomes, ["X", "X"])


def test_matrix_orientation_auto_detected_both_ways(caplog):
    with caplog.at_level(logging.INFO, logger="qtlhpc.io"):
        by_genes = read_expression_matrix(DATA / "expression_genes_in_rows.tsv", DATA / "genes.tsv")
        by_samples = read_expression_matrix(DATA / "expression_samples_in_rows.csv", DATA / "genes.tsv")
    assert re.search(where("expression_genes_in_rows.tsv: orientation 'auto' chose genes-in-rows",
                           "5 of 5 row IDs"), caplog.text)
    assert re.search(where("expression_samples_in_rows.csv: orientation 'auto' chose samples-in-rows",
                           "5 of 5 column names are annotated genes"), caplog.text)
    np.testing.assert_array_equal(by_genes.values, EXPECTED)
    np.testing.assert_array_equal(by_genes.tss, [1001, 6000, 9001, 3001, 8000])
    assert_same_set(by_genes, by_samples)
    explicit = read_expression_matrix(DATA / "expression_samples_in_rows.csv", DATA / "genes.tsv",
                                      orientation="samples-in-rows")
    assert_same_set(explicit, by_genes)


def test_orientation_decided_by_sample_ids_when_genes_do_not_settle_it(tmp_path, caplog):
    """A square file whose row IDs and column names are both gene names: the sample IDs decide."""
    annotation = GeneAnnotation(Path("a.tsv"), np.array(["S1", "S2", "G1"]), np.array(["1"] * 3),
                                np.array([1, 2, 3]), np.array([1, 2, 3]), np.array(["+"] * 3), np.array([2, 3, 4]))
    path = write(tmp_path, "square.tsv", "id\tS1\tS2\nS1\t1\t2\nG1\t3\t4\n")
    with caplog.at_level(logging.INFO, logger="qtlhpc.io"):
        data = read_expression_matrix(path, annotation, sample_ids=["S1", "S2"])
    assert "chose genes-in-rows" in caplog.text
    np.testing.assert_array_equal(data.gene_ids, ["S1", "G1"])


def test_gzipped_matrix_with_r_style_header(tmp_path):
    text = "S1\tS2\nG1\t1\t2\nG2\t3\tNA\n"  # write.table: no name above the row IDs
    path = tmp_path / "expr.tsv.gz"
    with gzip.open(path, "wt") as handle:
        handle.write(text)
    data = read_expression_matrix(path, DATA / "genes.tsv", orientation="genes-in-rows")
    np.testing.assert_array_equal(data.values, [[1, 2], [3, np.nan]])


# ---------------------------------------------------------------------------- BED
def test_fastqtl_bed_whole_gzipped_and_region(tmp_path, caplog):
    plain = read_expression_bed(DATA / "phenotypes_fastqtl.bed")
    np.testing.assert_array_equal(plain.values, EXPECTED)
    np.testing.assert_array_equal(plain.starts, [1001, 6000, 9001, 3001, 8000])  # BED start + 1
    np.testing.assert_array_equal(plain.tss, plain.ends)  # one-base intervals: TSS = start + 1 = end
    assert plain.group_ids is None
    bgzipped = indexed(tmp_path, DATA / "phenotypes_fastqtl.bed", "bed")
    assert_same_set(read_expression_bed(bgzipped), plain)
    for region in ("1:5000-9000", "1:6000-6000", "2", "2:8000-", "1:9001-9100"):
        chromosome, start, end = parse_region(region)
        by_index = read_expression_bed(bgzipped, region=region)
        expected = plain.subset_genes((plain.chromosomes == chromosome) & (plain.ends >= start)
                                      & (plain.starts <= (end or 10**9)))
        assert by_index.n_genes > 0
        assert_same_set(by_index, expected)
        with caplog.at_level(logging.WARNING, logger="qtlhpc.io"):
            assert_same_set(read_expression_bed(DATA / "phenotypes_fastqtl.bed", region=region), expected)
        assert "has no tabix index" in caplog.text


def test_qtltools_bed_layout_strand_and_groups(tmp_path, caplog):
    with caplog.at_level(logging.INFO, logger="qtlhpc.io"):
        data = read_expression_bed(DATA / "phenotypes_qtltools.bed")
    assert "BED layout qtltools (6 fixed columns" in caplog.text
    np.testing.assert_array_equal(data.gene_ids, ["G1.e1", "G2.e1", "G2.e2", "G4.e1", "G5.e1"])
    np.testing.assert_array_equal(data.group_ids, ["G1", "G2", "G2", "G4", "G5"])
    np.testing.assert_array_equal(data.tss, [1001, 6000, 6000, 3001, 8000])
    np.testing.assert_array_equal(data.sample_ids, SAMPLES)
    bgzipped = indexed(tmp_path, DATA / "phenotypes_qtltools.bed", "bed")
    region = read_expression_bed(bgzipped, region="1:5500-5600")
    np.testing.assert_array_equal(region.gene_ids, ["G2.e1", "G2.e2"])
    np.testing.assert_array_equal(region.group_ids, ["G2", "G2"])


def test_qtltools_example_piece_bed_and_space_separated_covariates(caplog):
    """QTLtools's own example (cut, see data/expression/README.md): its 5th column is the gene length."""
    path = DATA / "qtltools_genes.50percent.chr22.head.bed"
    with caplog.at_level(logging.INFO, logger="qtlhpc.io"):
        data = read_expression_bed(path)
    assert "BED layout qtltools (6 fixed columns: #chr, start, end, gene, length, strand)" in caplog.text
    rows = [line.split("\t") for line in path.read_text().splitlines()]
    assert (data.n_genes, data.n_samples) == (8, 10)
    np.testing.assert_array_equal(data.gene_ids, [row[3] for row in rows[1:]])
    np.testing.assert_array_equal(data.group_ids, [row[4] for row in rows[1:]])
    np.testing.assert_array_equal(data.strands, ["+"] * 5 + ["-"] * 3)
    np.testing.assert_array_equal(data.tss, [int(row[1]) + 1 for row in rows[1:]])
    np.testing.assert_array_equal(data.values, np.array([row[6:] for row in rows[1:]], dtype=float))
    covariates = read_covariates(DATA / "qtltools_genes.covariates.pc50.head.txt")
    assert covariates.values.shape == (3, 10)
    assert covariates.names[0].endswith("genotypes_1_1_svd_PC1")
    np.testing.assert_array_equal(covariates.sample_ids, data.sample_ids)
    assert covariates.values[2, 9] == -50.2792


def test_region_strings():
    assert parse_region("22:17,000,000-18,000,000") == ("22", 17000000, 18000000)
    assert parse_region("chr22") == ("chr22", 1, None)
    assert parse_region("22:100") == ("22", 100, 100)
    assert parse_region("22:100-") == ("22", 100, None)
    with pytest.raises(InputError, match=where("region '22:5-1' has start 5 and end 1", "1-based")):
        parse_region("22:5-1")
    with pytest.raises(InputError, match="is not 'chr', 'chr:start-end'"):
        parse_region("22:a-b")


def test_region_with_an_unknown_chromosome_names_the_file_chromosomes(tmp_path):
    bgzipped = indexed(tmp_path, DATA / "phenotypes_fastqtl.bed", "bed")
    with pytest.raises(InputError, match=where("phenotypes_fastqtl.bed.gz", "region 'chr1:1-100'",
                                               "no chromosome 'chr1'", "'1', '2'")):
        read_expression_bed(bgzipped, region="chr1:1-100")


# ---------------------------------------------------------------------------- covariates
def test_covariates_numeric_and_dummy_coded_categorical(caplog):
    with caplog.at_level(logging.INFO, logger="qtlhpc.io"):
        covariates = read_covariates(DATA / "covariates.txt")
    np.testing.assert_array_equal(covariates.names, ["PC1", "sex=M", "batch=b2", "batch=b3", "PC2"])
    np.testing.assert_array_equal(covariates.sample_ids, SAMPLES)
    np.testing.assert_array_equal(covariates.values, [
        [0.5, -0.25, 0.125, 1, -1, 0],
        [1, 0, 0, 1, np.nan, 0],  # reference 'F' (first in sorted order); NA stays missing
        [1, 0, 0, 0, 1, 0],
        [0, 0, 1, 0, 0, 1],
        [1, 2, np.nan, 4, 5, 6],
    ])
    assert "covariate 'batch' is categorical with 3 levels" in caplog.text
    aligned = covariates.align(["S6", "S1"])
    np.testing.assert_array_equal(aligned.values[0], [0, 0.5])


# ---------------------------------------------------------------------------- bad input, table-driven
MATRIX_HEADER = "gene_id\tS1\tS2\tS3\n"
BED_HEADER = "#chr\tstart\tend\tid\tS1\tS2\n"
VCF_HEADER = ("##fileformat=VCFv4.2\n##contig=<ID=1>\n"
              "##FORMAT=<ID=GT,Number=1,Type=String,Description=\"Genotype\">\n"
              "#CHROM\tPOS\tID\tREF\tALT\tQUAL\tFILTER\tINFO\tFORMAT\tS1\tS2\n")


def read_matrix(path):
    return read_expression_matrix(path, DATA / "genes.tsv")


def read_genotypes_ds(path):
    return vcf_module().read_genotypes(path, field="DS")


def read_genotypes_for(samples):
    return lambda path: vcf_module().read_genotypes(path, field="GT", samples=samples)


BAD_INPUTS = [
    # (case, file name, text, reader, fragments that must appear in order)
    ("non-numeric cell", "e.tsv", MATRIX_HEADER + "G1\t1\t2\t3\nG2\t4\tabc\t6\n", read_matrix,
     ("e.tsv, line 3, column 3 ('S2')", "'abc' is not a number", "numeric expression value")),
    ("duplicated gene", "e.tsv", MATRIX_HEADER + "G1\t1\t2\t3\nG2\t4\t5\t6\nG1\t7\t8\t9\n", read_matrix,
     ("e.tsv, line 4, column 1 ('gene_id')", "duplicated gene ID 'G1'", "first at line 2")),
    ("gene missing from annotation", "e.tsv", MATRIX_HEADER + "G1\t1\t2\t3\nG9\t4\t5\t6\n", read_matrix,
     ("e.tsv, line 3, column 1", "gene 'G9' is missing from the gene annotation", "genes.tsv", "1 of 2 genes")),
    ("infinite value", "e.tsv", MATRIX_HEADER + "G1\t1\tinf\t3\n", read_matrix,
     ("e.tsv, line 2, column 3 ('S2')", "'inf' is infinite", "pseudo-count")),
    ("ragged row", "e.tsv", MATRIX_HEADER + "G1\t1\t2\t3\nG2\t4\t5\n", read_matrix,
     ("e.tsv, line 3", "has 3 fields, expected 4")),
    ("duplicated sample", "e.tsv", "gene_id\tS1\tS2\tS1\nG1\t1\t2\t3\n", read_matrix,
     ("e.tsv, line 1, column 4 ('S1')", "duplicated sample ID 'S1'", "first at line 1, column 2")),
    ("orientation undecidable", "e.tsv", "id\tA\tB\nX\t1\t2\n", read_matrix,
     ("e.tsv", "cannot tell whether genes are in rows or in columns", "0 of 1 row IDs", "orientation=")),
    ("annotation bad strand", "a.tsv", "gene_id\tchr\tstart\tend\tstrand\nG1\t1\t10\t20\t*\n", read_gene_annotation,
     ("a.tsv, line 2, column 5 ('strand')", "strand '*' of gene 'G1'")),
    ("annotation without a start column", "a.tsv", "gene_id\tchr\tbegin\nG1\t1\t10\n", read_gene_annotation,
     ("a.tsv, line 1", "no start column", "columns={'start'")),
    ("annotation fractional start", "a.tsv", "gene_id\tchr\tstart\nG1\t1\t12.5\n", read_gene_annotation,
     ("a.tsv, line 2, column 3 ('start')", "'12.5' is not a whole number")),
    ("annotation end before start", "a.tsv", "gene_id\tchr\tstart\tend\nG1\t1\t30\t20\n", read_gene_annotation,
     ("a.tsv, line 2, column 4 ('end')", "gene 'G1' spans 30..20")),
    ("BED unsorted", "p.bed", BED_HEADER + "1\t500\t501\tG1\t1\t2\n1\t100\t101\tG2\t3\t4\n", read_expression_bed,
     ("p.bed, line 3, column 2 ('start')", "the BED is not sorted", "'G2' starts at 100, before 'G1' at 500",
      "tabix -p bed")),
    ("BED chromosome split", "p.bed", BED_HEADER + "1\t1\t2\tG1\t1\t2\n2\t1\t2\tG2\t3\t4\n1\t5\t6\tG3\t5\t6\n",
     read_expression_bed, ("p.bed, line 4, column 1", "chromosome '1' appears again", "first at line 2")),
    ("BED non-numeric value", "p.bed", BED_HEADER + "1\t1\t2\tG1\t1\tx\n", read_expression_bed,
     ("p.bed, line 2, column 6 ('S2')", "'x' is not a number", "phenotype 'G1'")),
    ("BED without header", "p.bed", "1\t1\t2\tG1\t1\t2\n", read_expression_bed,
     ("p.bed, line 1", "no header line", "#chr start end id")),
    ("BED short row", "p.bed", BED_HEADER + "1\t1\t2\tG1\t1\n", read_expression_bed,
     ("p.bed, line 2", "has 5 fields, expected 6")),
    ("BED duplicated phenotype", "p.bed", BED_HEADER + "1\t1\t2\tG1\t1\t2\n1\t5\t6\tG1\t3\t4\n",
     read_expression_bed, ("p.bed, line 3, column 4 ('id')", "duplicated phenotype ID 'G1'")),
    ("BED QTLtools bad strand", "p.bed", "#chr\tstart\tend\tpid\tgid\tstrd\tS1\n1\t1\t2\tP1\tG1\tx\t1\n",
     lambda path: read_expression_bed(path, layout="qtltools"),
     ("p.bed, line 2, column 6 ('strd')", "strand 'x' of phenotype 'P1'")),
    ("BED start after end", "p.bed", BED_HEADER + "1\t10\t5\tG1\t1\t2\n", read_expression_bed,
     ("p.bed, line 2, column 3 ('end')", "has start 10 and end 5")),
    ("covariate mixing labels and numbers", "c.txt", "id\tS1\tS2\tS3\nsex\tM\t1\tF\n", read_covariates,
     ("c.txt, line 2, column 2 ('S1')", "covariate 'sex' mixes labels and numbers", "'M' here, '1' in column 3")),
    ("covariate label refused", "c.txt", "id\tS1\tS2\nsex\tM\tF\n",
     lambda path: read_covariates(path, categorical="error"),
     ("c.txt, line 2, column 2 ('S1')", "'M' is not a number", "covariate 'sex'")),
    ("covariate duplicated", "c.txt", "id\tS1\tS2\nPC1\t1\t2\nPC1\t3\t4\n", read_covariates,
     ("c.txt, line 3, column 1 ('id')", "duplicated covariate name 'PC1'")),
    ("VCF without DS", "g.vcf", VCF_HEADER + "1\t100\trs1\tA\tG\t.\tPASS\t.\tGT\t0/1\t1/1\n", read_genotypes_ds,
     ("g.vcf", "no FORMAT field 'DS' in the VCF header", "first record 1:100 (rs1)", "use field='GT'")),
    ("VCF samples missing", "g.vcf", VCF_HEADER + "1\t100\trs1\tA\tG\t.\tPASS\t.\tGT\t0/1\t1/1\n",
     read_genotypes_for(["S2", "S9", "s1"]),
     ("2 of the 3 samples asked for are not in", "g.vcf", "'S9', 's1'", "did you mean")),
]


@pytest.mark.parametrize("call, fragments", [
    (lambda: read_expression_matrix(DATA / "expression_genes_in_rows.tsv", DATA / "genes.tsv", orientation="genes"),
     ("unknown orientation 'genes'", "did you mean 'genes-in-rows'")),
    (lambda: read_expression_bed(DATA / "phenotypes_fastqtl.bed", layout="qtltool"),
     ("unknown BED layout 'qtltool'", "did you mean 'qtltools'")),
    (lambda: read_gene_annotation(DATA / "genes.tsv", columns={"strnd": "strand"}),
     ("unknown annotation role 'strnd'", "did you mean 'strand'")),
    (lambda: read_gene_annotation(DATA / "genes.tsv", columns={"start": "begin"}),
     ("genes.tsv, line 1", "no column named 'begin' (the start column)")),
    (lambda: read_covariates(DATA / "covariates.txt", categorical="dumy"),
     ("unknown categorical 'dumy'", "did you mean 'dummy'")),
    (lambda: vcf_module().read_genotypes(DATA / "genotypes.vcf", field="DOS"), ("unknown genotype field 'DOS'",)),
    (lambda: vcf_module().read_genotypes(DATA / "genes.tsv"), ("genes.tsv: cannot be read as VCF/BCF",)),
    (lambda: vcf_module().read_genotypes(DATA / "genotypes.vcf", region="chr1"),
     ("region 'chr1': no chromosome 'chr1' in the VCF", "'1', '2'")),
])
def test_bad_options_are_named_with_a_suggestion(call, fragments):
    with pytest.raises(InputError, match=where(*fragments)):
        call()


@pytest.mark.parametrize("case, name, text, reader, fragments", BAD_INPUTS, ids=[case[0] for case in BAD_INPUTS])
def test_bad_input_is_reported_with_file_line_and_column(tmp_path, case, name, text, reader, fragments):
    path = write(tmp_path, name, text)
    with pytest.raises(InputError, match=where(*fragments)):
        reader(path)


# ---------------------------------------------------------------------------- VCF
def test_vcf_dosages_from_ds_and_gt_with_regions(tmp_path, caplog):
    vcf = vcf_module()
    whole_ds = vcf.read_genotypes(DATA / "genotypes.vcf", field="DS")
    np.testing.assert_array_equal(whole_ds.positions, [1500, 5500, 8999, 3500, 8000])
    np.testing.assert_array_equal(whole_ds.ids, ["rs1", "rs2", "1:8999:GA:G", "rs4", "rs5"])
    np.testing.assert_array_equal(whole_ds.alt, ["G", "T", "G", "C", "C,G"])
    np.testing.assert_allclose(whole_ds.dosages, [
        [0.1, 1, 1.9, np.nan, 0.9, 1.2],
        [0.8, 0, 0.05, 1.1, 2, 1.5],
        [0, 0, 1, 0.2, 0, 2],
        [2, 1.8, 1, 0, 0.9, 0.1],
        [0, 1.9, 1, 2, 1, np.nan],  # multi-allelic: the dosages of C and G summed
    ], rtol=1e-6)
    whole_gt = vcf.read_genotypes(DATA / "genotypes.vcf", field="GT")
    np.testing.assert_array_equal(whole_gt.dosages, [
        [0, 1, 2, np.nan, 1, 1],
        [1, 0, 0, 1, 2, np.nan],  # './1' is missing, as in FastQTL
        [0, 0, 1, 0, 0, 2],
        [2, 2, 1, 0, 1, 0],
        [0, 2, 1, 2, 1, np.nan],
    ])
    picked = vcf.read_genotypes(DATA / "genotypes.vcf", field="GT", samples=["S6", "S2"])
    np.testing.assert_array_equal(picked.sample_ids, ["S6", "S2"])
    np.testing.assert_array_equal(picked.dosages, whole_gt.dosages[:, [5, 1]])
    bgzipped = indexed(tmp_path, DATA / "genotypes.vcf", "vcf")
    for region in ("1:1500-8999", "1:9000-9000", "2", "1:1501-5499"):
        chromosome, start, end = parse_region(region)
        reach = whole_ds.positions + np.char.str_len(np.array(["A", "C", "GA", "T", "A"])) - 1
        hits = (whole_ds.chromosomes == chromosome) & (reach >= start) & (whole_ds.positions <= (end or 10**9))
        for path in (bgzipped, DATA / "genotypes.vcf"):
            with caplog.at_level(logging.WARNING, logger="qtlhpc.io"):
                block = vcf.read_genotypes(path, region=region, field="DS")
            np.testing.assert_array_equal(block.ids, whole_ds.ids[hits])
            np.testing.assert_array_equal(block.dosages, whole_ds.dosages[hits])
    assert "no .tbi/.csi index: scanning it whole" in caplog.text


def test_bcf_reads_as_the_vcf(tmp_path):
    vcf = vcf_module()
    import cyvcf2

    reader = cyvcf2.VCF(str(DATA / "genotypes.vcf"))
    writer = cyvcf2.Writer(str(tmp_path / "g.bcf"), reader, mode="wb")
    for variant in reader:
        writer.write_record(variant)
    writer.close()
    reader.close()
    from_bcf = vcf.read_genotypes(tmp_path / "g.bcf", field="DS")
    from_vcf = vcf.read_genotypes(DATA / "genotypes.vcf", field="DS")
    np.testing.assert_array_equal(from_bcf.dosages, from_vcf.dosages)
    np.testing.assert_array_equal(from_bcf.ids, from_vcf.ids)


# ---------------------------------------------------------------------------- FastQTL's example data
@pytest.fixture(scope="session")
def fastqtl_example(tmp_path_factory):
    """FastQTL's example (373 samples, 364 genes on chr22) unpacked once per session."""
    archive = FASTQTL_EXAMPLE / "examples.tar.xz"
    if not archive.exists():
        skip_or_fail(f"{archive} is missing: apt-get install fastqtl")
    folder = tmp_path_factory.mktemp("fastqtl_example")
    with tarfile.open(archive) as tar:
        if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4 (PEP 706)
            tar.extractall(folder, filter="data")
        else:
            tar.extractall(folder)
    found = {path.name: path for path in folder.rglob("*") if path.is_file()}
    return {name: found[name] for name in ("phenotypes.bed.gz", "covariates.txt.gz", "genotypes.vcf.gz")}


def naive_bed(path: Path):
    """The BED read the obvious way: (header, rows of fields)."""
    with gzip.open(path, "rt") as handle:
        lines = [line.rstrip("\n").split("\t") for line in handle]
    return lines[0], lines[1:]


def test_fastqtl_example_bed_whole_and_by_region(fastqtl_example):
    path = fastqtl_example["phenotypes.bed.gz"]
    data = read_expression_bed(path)
    assert (data.n_genes, data.n_samples) == (364, 373)
    header, rows = naive_bed(path)
    np.testing.assert_array_equal(data.sample_ids, header[4:])
    np.testing.assert_array_equal(data.gene_ids, [row[3] for row in rows])
    np.testing.assert_array_equal(data.starts, [int(row[1]) + 1 for row in rows])
    np.testing.assert_array_equal(data.values, np.array([row[4:] for row in rows], dtype=float))
    awk = subprocess.run(f"zcat {path} | awk -F'\\t' 'NR==2 {{print $4, $2, $5}} NR==101 {{print $4, $3, $377}}'",
                         shell=True, capture_output=True, text=True, check=True).stdout.split()
    assert data.gene_ids[0] == awk[0] and data.starts[0] == int(awk[1]) + 1
    assert data.values[0, 0] == float(awk[2])
    assert data.gene_ids[99] == awk[3] and data.ends[99] == int(awk[4])
    assert data.values[99, 372] == float(awk[5])
    region = "22:17000000-18000000"
    by_index = read_expression_bed(path, region=region)
    expected = data.subset_genes((data.ends >= 17000000) & (data.starts <= 18000000))
    assert by_index.n_genes == expected.n_genes > 0
    assert_same_set(by_index, expected)


def test_fastqtl_example_tss_matches_fastqtl_distances(fastqtl_example):
    """fastqtl_expected_output.txt gives, per gene, the best variant and its distance: POS - TSS."""
    vcf = vcf_module()
    data = read_expression_bed(fastqtl_example["phenotypes.bed.gz"])
    tss = dict(zip(data.gene_ids.tolist(), data.tss.tolist()))
    lines = (FASTQTL_EXAMPLE / "fastqtl_expected_output.txt").read_text().splitlines()
    assert len(lines) == 4
    for line in lines:
        gene, _, _, _, _, variant, distance = line.split()[:7]
        position = int(variant.rsplit("_", 1)[1])
        block = vcf.read_genotypes(fastqtl_example["genotypes.vcf.gz"], region=f"22:{position}-{position}")
        assert variant in block.ids.tolist()
        assert int(block.positions[block.ids.tolist().index(variant)]) - tss[gene] == int(distance)


def test_fastqtl_example_covariates(fastqtl_example):
    path = fastqtl_example["covariates.txt.gz"]
    covariates = read_covariates(path)
    with gzip.open(path, "rt") as handle:
        rows = [line.split() for line in handle if line.strip()]
    assert covariates.values.shape == (len(rows) - 1, 373)
    np.testing.assert_array_equal(covariates.sample_ids, rows[0][1:])
    np.testing.assert_array_equal(covariates.names, [row[0] for row in rows[1:]])
    np.testing.assert_array_equal(covariates.values, np.array([row[1:] for row in rows[1:]], dtype=float))
    expression = read_expression_bed(fastqtl_example["phenotypes.bed.gz"])
    np.testing.assert_array_equal(covariates.align(expression.sample_ids).sample_ids, expression.sample_ids)
    genotype_samples = vcf_module().vcf_samples(fastqtl_example["genotypes.vcf.gz"])
    assert sorted(genotype_samples) == sorted(expression.sample_ids)
    reordered = expression.align(genotype_samples[::-1])
    column = {name: k for k, name in enumerate(expression.sample_ids)}
    np.testing.assert_array_equal(reordered.sample_ids, genotype_samples[::-1])
    np.testing.assert_array_equal(reordered.values, expression.values[:, [column[s] for s in genotype_samples[::-1]]])


def test_fastqtl_example_genotypes_against_tabix_text(fastqtl_example):
    vcf = vcf_module()
    path = fastqtl_example["genotypes.vcf.gz"]
    region = "22:17500000-17520000"
    block = vcf.read_genotypes(path, region=region, field="DS")
    with pytest.raises(InputError, match=where("genotypes.vcf.gz: no FORMAT field 'GT'", "first record 22:16050408",
                                               "declared: 'DS'", "use field='DS'")):
        vcf.read_genotypes(path, region=region, field="GT")
    text = subprocess.run(["tabix", str(path), region], capture_output=True, text=True, check=True).stdout
    records = [line.split("\t") for line in text.splitlines()]
    assert block.n_variants == len(records) > 0 and block.n_samples == 373
    np.testing.assert_array_equal(block.positions, [int(r[1]) for r in records])
    np.testing.assert_array_equal(block.ids, [r[2] for r in records])
    assert all(record[8] == "DS" for record in records)
    expected = np.array([[np.nan if cell == "." else float(cell) for cell in record[9:]] for record in records])
    np.testing.assert_allclose(block.dosages, expected, rtol=1e-6)  # DS is stored as float32


# ---------------------------------------------------------------------------- transforms
RNG = np.random.default_rng(20261201)


def with_ties_and_gaps(n_rows=6, n_samples=40):
    values = np.round(RNG.normal(size=(n_rows, n_samples)), 1)  # rounding makes ties
    values[RNG.random(values.shape) < 0.1] = np.nan
    return values


def test_average_ranks_and_inverse_normal_match_scipy():
    values = with_ties_and_gaps()
    values[0, :] = 1.0  # all tied
    values[1, :4] = 99.0  # a tie at the top: QTLtools divides by the largest rank, not by m
    ranks = transforms.average_ranks(values)
    qtltools = transforms.rank_inverse_normal(values)
    waerden = transforms.rank_inverse_normal(values, method="van-der-waerden")
    for row in range(values.shape[0]):
        observed = ~np.isnan(values[row])
        reference = stats.rankdata(values[row, observed])
        np.testing.assert_array_equal(ranks[row, observed], reference)
        assert np.isnan(ranks[row, ~observed]).all() and np.isnan(qtltools[row, ~observed]).all()
        np.testing.assert_allclose(qtltools[row, observed], stats.norm.ppf((reference - 0.5) / reference.max()))
        np.testing.assert_allclose(waerden[row, observed], stats.norm.ppf(reference / (observed.sum() + 1)))
    np.testing.assert_allclose(transforms.rank_inverse_normal(values.T, axis=0), qtltools.T)


def test_regress_out_equals_least_squares_residuals_and_fastqtl_df():
    n = 50
    covariates = RNG.normal(size=(3, n))
    phenotypes = RNG.normal(size=(4, n)) + covariates[0]
    residuals = transforms.regress_out(phenotypes, covariates)
    design = np.column_stack([np.ones(n), covariates.T])
    for row in range(4):
        coefficients = np.linalg.lstsq(design, phenotypes[row], rcond=None)[0]
        np.testing.assert_allclose(residuals[row], phenotypes[row] - design @ coefficients, atol=1e-12)
    collinear = np.vstack([covariates, 2 * covariates[1] - covariates[2]])
    np.testing.assert_allclose(transforms.regress_out(phenotypes, collinear), residuals, atol=1e-12)
    assert transforms.residual_dof(n, covariates) == n - 2 - 3 == transforms.residual_dof(n, collinear)
    assert transforms.residual_dof(n) == n - 2
    # FastQTL: correlation of residualised genotype and phenotype, t with df = n - 2 - k, equals the
    # t statistic of the genotype in the full model y ~ 1 + covariates + g
    genotype = RNG.integers(0, 3, size=n).astype(float)
    g = transforms.regress_out(genotype[None, :], covariates)[0]
    y = residuals[0]
    r = g @ y / np.sqrt((g @ g) * (y @ y))
    df = transforms.residual_dof(n, covariates)
    t_fastqtl = r * np.sqrt(df / (1 - r**2))
    full = np.column_stack([design, genotype])
    beta, rss = np.linalg.lstsq(full, phenotypes[0], rcond=None)[:2]
    se = np.sqrt(rss[0] / (n - full.shape[1]) * np.linalg.inv(full.T @ full)[-1, -1])
    np.testing.assert_allclose(t_fastqtl, beta[-1] / se, rtol=1e-10)


def test_regress_out_mean_imputes_missing_values_or_refuses_them():
    covariates = RNG.normal(size=(2, 12))
    values = RNG.normal(size=(3, 12))
    values[1, [2, 7]] = np.nan
    imputed = values.copy()
    imputed[1, [2, 7]] = np.nanmean(values[1])
    np.testing.assert_allclose(transforms.regress_out(values, covariates), transforms.regress_out(imputed, covariates))
    np.testing.assert_array_equal(transforms.mean_impute(values), imputed)
    with pytest.raises(InputError, match="row 1 has 2 missing values"):
        transforms.regress_out(values, covariates, missing="error")
    with pytest.raises(InputError, match="covariates have 12 samples .* but the values have 5"):
        transforms.regress_out(values[:, :5], covariates)


def test_filters_and_standardize_against_direct_computation():
    values = with_ties_and_gaps(n_rows=10)
    keep = transforms.variability_filter(values, drop_fraction=0.2)
    variance = np.array([np.var(row[~np.isnan(row)], ddof=1) for row in values])
    np.testing.assert_array_equal(keep, variance > np.sort(variance)[1])
    assert keep.sum() == 8
    scaled = transforms.standardize(values)
    for row, original in zip(scaled, values):
        observed = ~np.isnan(original)
        np.testing.assert_allclose(row[observed], stats.zscore(original[observed]))
    np.testing.assert_array_equal(transforms.standardize(np.ones((1, 4))), np.zeros((1, 4)))
    dosages = np.array([[0, 0, 0, 1, np.nan], [2, 2, 2, 2, 2], [0, 1, 2, np.nan, np.nan], [np.nan] * 5])
    np.testing.assert_allclose(transforms.allele_frequency(dosages), [1 / 8, 1, 0.5, np.nan])
    np.testing.assert_array_equal(transforms.maf_filter(dosages, 0.1), [True, False, True, False])
    np.testing.assert_array_equal(transforms.missingness_filter(dosages, 0.2), [True, True, False, False])
