"""``qtlhpc plan`` on expression configs: the sizes come from the expression file and the VCF (counted here
the slow, obvious way), only the stages the config runs are planned, and cross-eqtl (rank 0) does not get
faster with ranks."""

import gzip
import subprocess
import sys

import numpy as np
import pytest

from qtlhpc.cluster.plan import ProblemSize, plan
from references import fastqtl_example
from requirements import skip_or_fail


@pytest.fixture(scope="module")
def example(tmp_path_factory):
    if not fastqtl_example.EXAMPLE_ARCHIVE.is_file():
        skip_or_fail(f"FastQTL's example {fastqtl_example.EXAMPLE_ARCHIVE} is missing (apt-get install fastqtl-doc)")
    return fastqtl_example.unpack_example(tmp_path_factory.mktemp("fastqtl"))


def counted_by_hand(example):
    """Genes, samples, variants and the mean number of variants within 1 Mb of a TSS, read line by line."""
    with gzip.open(example / "phenotypes.bed.gz", "rt") as handle:
        header = handle.readline().rstrip("\n").split("\t")
        genes = [line.split("\t")[:4] for line in handle]  # #chr start end id, then one column per sample
    with gzip.open(example / "genotypes.vcf.gz", "rt") as handle:
        positions = [int(line.split("\t", 2)[1]) for line in handle if not line.startswith("#")]
    positions = np.array(positions)
    in_window = []
    for gene in genes:
        tss = int(gene[1]) + 1  # no strand column: every gene on +, its TSS the 1-based start
        in_window.append(int(np.sum(np.abs(positions - tss) <= 1_000_000)))
    return len(genes), len(header) - 4, positions.size, float(np.mean(in_window))


def test_plan_of_a_cis_config_reads_its_sizes_and_plans_only_its_stages(example, tmp_path):
    config = tmp_path / "analysis.toml"
    config.write_text(f"""
[run]
stages = ["eqtl"]
[expression]
format = "bed"
file = "{example / 'phenotypes.bed.gz'}"
[cis]
genotypes = "{example / 'genotypes.vcf.gz'}"
permutations = [1000]
""")
    proc = subprocess.run([sys.executable, "-m", "qtlhpc", "plan", str(config), "--ranks", "2"],
                          capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    genes, samples, variants, window = counted_by_hand(example)
    first = proc.stdout.splitlines()[0]
    assert f"{genes} genes, {samples} samples, {variants} variants" in first, first
    planned = int(first.split(", ")[3].split()[0])
    assert abs(planned - window) <= 1 + 0.01 * window, (planned, window)  # BED starts are 0-based: +-1 bp
    rows = [line.split()[0] for line in proc.stdout.splitlines()[2:] if line and not line.startswith(("memory",
                                                                                                      "warning"))]
    assert rows == ["cis"], proc.stdout  # not the PEPIS stages nor the trans scans


def test_cross_eqtl_runs_on_rank_zero_so_more_ranks_do_not_shorten_it():
    size = ProblemSize(n_individuals=112, n_markers=2956, n_traits=4589)
    one, two = (plan(size, ranks=r, stages=["cross-eqtl", "cross-trans"], base_memory=0) for r in (1, 2))
    assert one[0].seconds == two[0].seconds and two[0].suggested_ntasks == 1
    assert two[1].seconds == pytest.approx(one[1].seconds / 2)
    genes, individuals, markers = 4589, 112, 2956
    assert one[0].memory_per_rank == 24 * genes * individuals + 8 * individuals * markers + 16 * genes / 5 * markers
