"""CAL inputs: binary calls from genotype codes, marker clusters (majority vote, ties, missing calls) against a
hand-worked example, correlation clusters against their definition, the user's binary matrix and its errors,
and cal-prepare from an R/qtl cross."""

import subprocess
import sys

import numpy as np
import pytest

from qtlhpc.errors import InputError
from qtlhpc.io.cross import Cross
from qtlhpc.io.writers import write_matrix_tsv, write_rqtl_csv
from qtlhpc.methods.cal import inputs as I
from qtlhpc.methods.cal.simulate import ril_loci
from qtlhpc.store import open_results


def test_binary_calls_rule():
    codes = np.array([[1, 2, 3, 0, 4, 5]])
    assert I.binary_calls(codes, "f2").tolist() == [[0, -1, 1, -1, -1, -1]]   # AB, not-BB, not-AA: missing
    assert I.binary_calls(codes, "riself").tolist() == [[0, 1, -1, -1, -1, -1]]
    assert I.binary_calls(codes, "bc").tolist() == [[0, 1, -1, -1, -1, -1]]
    with pytest.raises(InputError, match="binary locus matrix"):
        I.binary_calls(codes, "generic")


def test_marker_clusters_hand_worked():
    # 6 strains, 7 markers on 2 chromosomes (-1 missing)
    calls = np.array([
        #  chr1 ----------      chr2 ------
        [0, 0, 0, 1, 1, 0, 0],
        [0, 0, 1, 1, 1, 1, 1],
        [1, 1, 1, 0, 0, 1, 1],
        [1, 1, -1, 0, 0, 0, 0],
        [1, 0, 0, 1, 1, 1, -1],
        [0, 0, 0, 1, -1, 0, 1],
    ], dtype=np.int8)
    chromosomes = ["1", "1", "1", "1", "1", "2", "2"]
    names = [f"m{k}" for k in range(7)]
    out = I.marker_clusters(calls, chromosomes, names, max_distance=1, eta=2)
    # m0..m2 (m1 differs from m0 in strain 5, m2 in strains 2, 5 but strain 4 is missing: 2 > 1 -> new cluster)
    # m0, m1: distance 1 -> one cluster; m2 vs m0: strains 2 (0/1) and 5 (1/0) -> 2 -> new cluster at m2;
    # m3 vs m2: strains 1, 3 (0/1,1/0), 4 (1/0) -> new; m4 vs m3 (strain 6 missing): 0 -> joins; chr 2 restarts.
    assert out.names.tolist() == ["m0..m1", "m2", "m3..m4", "m5..m6"]
    assert out.first.tolist() == [0, 2, 3, 5]
    # m0..m1 vote: strain 5 has 1 vs 0 -> a tie, the member nearest the middle (m0 first) gives 1
    assert out.matrix[:, 0].tolist() == [0, 0, 1, 1, 1, 0]
    # m2: strain 4 has no call in the cluster -> the nearest called marker of chromosome 1 (m1 or m3: m1 first)
    assert out.matrix[:, 1].tolist() == [0, 1, 1, 1, 0, 0]
    # m3..m4: strain 6 called at m3 only
    assert out.matrix[:, 2].tolist() == [1, 1, 0, 0, 1, 1]
    # m5..m6: strain 1 tie 0/0; strain 5 missing at m6 -> 1 from m5; strain 6 0 vs 1 tie -> nearest the middle
    assert out.matrix[:, 3].tolist() == [0, 1, 1, 0, 1, 0]
    assert out.n_markers == 7 and out.dropped == 0


def test_marker_clusters_drop_unbalanced_and_group_identical():
    rng = np.random.default_rng(2)
    base, _ = ril_loci(rng, 20, 10, 1, switch=0.3)
    calls = np.repeat(base, 3, axis=1).astype(np.int8)           # every marker three times
    calls = np.hstack([calls, np.zeros((20, 1), dtype=np.int8)])  # a monomorphic marker
    out = I.marker_clusters(calls, ["1"] * 31, [f"m{k}" for k in range(31)], max_distance=0, eta=3)
    assert out.dropped >= 1
    assert out.matrix.shape[1] <= 10
    # every centroid is one of the original markers
    for column in out.matrix.T:
        assert any(np.array_equal(column, b) for b in base.T)


def test_correlation_clusters_definition():
    rng = np.random.default_rng(4)
    centres = rng.normal(size=(5, 24))
    values = np.repeat(centres, 4, axis=0) + 0.15 * rng.normal(size=(20, 24))
    values = np.vstack([values, rng.normal(size=(6, 24))])
    labels, centroids = I.correlation_clusters(values, 0.2)
    r = np.corrcoef(values)
    # complete linkage: within a cluster every pair has 1 - r <= 0.2; the planted groups are found
    for k in range(centroids.shape[0]):
        members = np.flatnonzero(labels == k)
        assert np.all(1 - r[np.ix_(members, members)] <= 0.2 + 1e-12)
    for g in range(5):
        assert len(set(labels[4 * g:4 * g + 4])) == 1
    z = (values - values.mean(1, keepdims=True)) / values.std(1, ddof=1, keepdims=True)
    np.testing.assert_allclose(centroids[labels[0]], z[labels == labels[0]].mean(axis=0))
    assert labels[0] == 0 and labels.max() + 1 == centroids.shape[0]


@pytest.mark.parametrize("text, fragment", [
    ("strain\tL1\tL2\nS1\t0\t1\nS2\t1\tx\n", "line 3, column 3: locus 'L2': 'x' is not 0 or 1"),
    ("strain\tL1\tL2\nS1\t0\t1\nS2\t1\n", "line 3: 2 fields; the header has 3"),
    ("strain\tL1\nS1\t0\nS1\t1\n", "a strain id appears twice"),
])
def test_binary_matrix_errors(tmp_path, text, fragment):
    path = tmp_path / "loci.tsv"
    path.write_text(text)
    with pytest.raises(InputError, match=fragment.replace("(", r"\(")):
        I.read_binary_matrix(path)


def test_prepare_from_an_rqtl_cross(tmp_path):
    # a riself cross in R/qtl's csv format: loci are marker clusters; expression samples are aligned to it
    rng = np.random.default_rng(12)
    n, per = 24, 15
    base, _ = ril_loci(rng, n, 2 * per, 2, switch=0.25)
    codes = (base + 1).astype(np.int8)
    codes[3, 4] = 0                                              # a missing call
    individuals = np.array([f"BXD{k}" for k in range(n)])
    markers = np.array([f"m{k}" for k in range(2 * per)])
    cross = Cross("riself", individuals, markers, np.repeat(["1", "2"], per), np.tile(np.arange(per) * 5.0, 2), codes,
                  phenotypes=rng.normal(size=(n, 1)), phenotype_names=np.array(["trait"]))
    write_rqtl_csv(cross, tmp_path / "cross.csv")
    genes = np.array([f"g{k}" for k in range(12)])
    values = rng.normal(size=(12, n))
    values[0] = base[:, 7] + 0.1 * values[0]
    order = rng.permutation(n)                                   # the expression file has its own sample order
    write_matrix_tsv(tmp_path / "expression.tsv", individuals[order], genes, values[:, order].T)
    (tmp_path / "genes.tsv").write_text("gene_id\tchromosome\tstart\tend\tstrand\n"
                                        + "".join(f"{g}\t1\t{100 * (k + 1)}\t{100 * (k + 1)}\t+\n"
                                                  for k, g in enumerate(genes)))
    config = tmp_path / "analysis.toml"
    config.write_text("""
[run]
output = "results.h5"
progress = false
[input]
format = "rqtl-csv"
cross_type = "riself"
file = "cross.csv"
[expression]
format = "tsv"
file = "expression.tsv"
annotation = "genes.tsv"
[cal]
targets = "genes"
permutations = 0
""")
    for stage in ("expression", "cal-prepare"):
        proc = subprocess.run([sys.executable, "-m", "qtlhpc", "run", stage, config], capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr
    with open_results(tmp_path / "results.h5") as results:
        strains = results.read("cal-prepare/strain_ids")
        loci = results.read("cal-prepare/loci")
        first = results.read("cal-prepare/locus_first_marker")
        fopt = results.read("cal-prepare/fopt")
        searched = results.read("cal-prepare/searched")
    rows = [int(s[3:]) for s in strains]
    expected = I.marker_clusters(I.binary_calls(codes, "riself")[rows], cross.chromosomes, markers, eta=3)
    assert np.array_equal(loci, expected.matrix)
    assert np.array_equal(first, expected.first)
    assert 0 in searched and fopt[0] == fopt.max()
