"""Resource plan formulas against hand computation; progress output on a log file and a terminal."""

from __future__ import annotations

import io
import os
import select

import pytest

from qtlhpc.cluster import plan as planning
from qtlhpc.progress import Progress, format_seconds

SMALL = planning.ProblemSize(n_individuals=100, n_markers=50, n_positions=200, n_genotypes=3, n_traits=2,
                             n_kinships=6, n_permutations=40, block_rows=10, block_markers=20, tile=8, batch=5)


def test_memory_formulas_match_hand_computation():
    memory = {p.stage: p.memory_per_rank for p in planning.plan(SMALL, ranks=4)}
    # genoprob: ceil(100/4)=25 individuals x 200 positions x 3 states x 8 B, plus 2 x 200 x 3 x 8 B
    assert memory["genoprob"] == 25 * 200 * 3 * 8 + 2 * 200 * 3 * 8 == 129_600
    # kinship: 10 rows x 100 x 8 B x 6 kinships + Z and W (100 x 50 x 8 B each)
    assert memory["kinship"] == 48_000 + 80_000
    # varcomp: 6 kinships of 100 x 100 + 4 working matrices + traits 100 x 2
    assert memory["varcomp"] == 6 * 80_000 + 4 * 80_000 + 1_600 == 801_600
    # scan1d: 2 n x n + Z, W blocks of 20 loci (x2 for the transformed copy) + traits
    assert memory["scan1d"] == 160_000 + 2 * 100 * 20 * 8 * 2 + 1_600 == 225_600
    # scan2d: 2 n x n + the tile's codes + 4 epistatic columns of 64 pairs + 4 results per pair
    assert memory["scan2d"] == 160_000 + 25_600 + 4 * 100 * 64 * 8 + 64 * 8 * 4 == 392_448
    # permutations: 2 n x n + permuted traits (batch 5) + code block + 5 x 50 results
    assert memory["permutations"] == 160_000 + 4_000 + 64_000 + 2_000 == 230_000


def test_memory_shrinks_with_ranks_only_where_the_work_is_split():
    one = {p.stage: p.memory_per_rank for p in planning.plan(SMALL, ranks=1)}
    eight = {p.stage: p.memory_per_rank for p in planning.plan(SMALL, ranks=8)}
    assert eight["genoprob"] < one["genoprob"]
    for stage in ("kinship", "varcomp", "scan1d", "scan2d", "permutations"):
        assert eight[stage] == one[stage]


def test_time_is_work_over_throughput_and_ranks():
    plans = {p.stage: p for p in planning.plan(SMALL, ranks=2)}
    rate = planning.throughput("scan2d")[1]
    assert plans["scan2d"].work == 100 * 16 * (50 * 49 // 2) * 2
    assert plans["scan2d"].seconds == pytest.approx(plans["scan2d"].work / (rate * 2))
    assert plans["permutations"].work == 40 * 100 * 100 * 50 * 2


def test_warning_when_memory_does_not_fit():
    big = planning.ProblemSize(n_individuals=20_000, n_markers=10_000)
    plans = {p.stage: p for p in planning.plan(big, ranks=4, mem_per_cpu="2G")}
    # varcomp needs 10 matrices of 20000^2 float64 = 32 GB per rank: it cannot fit 2G
    assert plans["varcomp"].memory_per_rank == 10 * 20_000 ** 2 * 8 + 20_000 * 8
    assert plans["varcomp"].warning and "varcomp needs" in plans["varcomp"].warning
    assert planning.parse_memory(plans["varcomp"].suggested_mem_per_cpu) >= plans["varcomp"].memory_per_rank
    text = planning.format_plan(list(plans.values()))
    assert "warning: varcomp needs" in text
    fits = planning.plan(SMALL, ranks=1, mem_per_cpu="1G")
    assert not any(p.warning for p in fits)


def test_suggested_ntasks_meets_the_target_time():
    plans = planning.plan(planning.ProblemSize(n_individuals=2_000, n_markers=5_000), target_seconds=600)
    for p in plans:
        rate = planning.throughput(p.stage)[1]
        assert p.work / (rate * p.suggested_ntasks) <= 600 or p.suggested_ntasks == 1024


def test_problem_from_config_takes_block_settings():
    config = {"kinship": {"block_rows": 32}, "scan2d": {"tile": 16},
              "permutations": {"n_permutations": 500, "batch": 10, "scans": ["1d", "2d"]},
              "varcomp": {"kinships": ["a", "d"]}}
    size = planning.problem_from_config(config, n_individuals=300, n_markers=1000)
    assert (size.block_rows, size.tile, size.n_permutations, size.batch, size.n_kinships) == (32, 16, 500, 10, 2)
    assert size.permutation_scans == ("1d", "2d")


def test_parse_and_format_memory():
    assert planning.parse_memory("4G") == 4 * 1024 ** 3
    assert planning.parse_memory("500M") == 500 * 1024 ** 2
    assert planning.parse_memory("100") == 100 * 1024 ** 2
    assert planning.format_memory(1) == "1M"
    assert planning.format_memory(3 * 1024 ** 3 + 1) == "4G"


class FakeClock:
    def __init__(self):
        self.now = 0.0

    def __call__(self):
        return self.now


def test_progress_writes_plain_lines_to_a_log():
    stream, clock = io.StringIO(), FakeClock()
    progress = Progress(100, "scan2d", stream=stream, min_interval=10, clock=clock)
    for done, now in [(10, 1), (20, 5), (40, 12), (60, 15), (100, 30)]:
        clock.now = now
        progress.update(done)
    progress.close()
    text = stream.getvalue()
    assert "\r" not in text and "\033" not in text
    assert text.splitlines() == [
        "scan2d: 10/100 (10%) elapsed 1s ETA 9s",  # first update always written
        "scan2d: 40/100 (40%) elapsed 12s ETA 18s",  # 11 s after the last line
        "scan2d: 100/100 (100%) elapsed 30s done",  # the final state always written, once
    ]


def test_progress_redraws_a_bar_on_a_terminal():
    primary, secondary = os.openpty()
    try:
        with open(secondary, "w", closefd=False) as terminal:
            clock = FakeClock()
            with Progress(4, "kinship", stream=terminal, clock=clock) as progress:
                for done in range(1, 5):
                    clock.now += 1
                    progress.update(done)
        # a pty hands the output over in pieces: read until nothing more arrives
        chunks = []
        while select.select([primary], [], [], 0.5)[0]:
            chunk = os.read(primary, 65536)
            if not chunk:
                break
            chunks.append(chunk)
        output = b"".join(chunks).decode()
    finally:
        os.close(primary)
        os.close(secondary)
    assert output.count("\r") >= 4
    assert "[" + "#" * 30 + "]" in output and "kinship" in output and "4/4 (100%)" in output


class FakeComm:
    """Rank 1 of 2: reports nothing; its collective update sums like a two-rank allreduce."""

    def __init__(self, rank, other):
        self.rank, self.other = rank, other

    def Get_rank(self):
        return self.rank

    def Get_size(self):
        return 2

    def Allreduce(self, send, recv, op=None):
        recv[...] = send + self.other


def test_progress_reports_from_rank_zero_only_and_sums_ranks():
    quiet, loud = io.StringIO(), io.StringIO()
    Progress(10, "x", comm=FakeComm(1, 3), stream=quiet).update_collective(2)
    reporter = Progress(10, "x", comm=FakeComm(0, 3), stream=loud)
    assert reporter.update_collective(2) == 5
    assert quiet.getvalue() == ""
    assert loud.getvalue().startswith("x: 5/10 (50%)")


def test_format_seconds():
    assert [format_seconds(s) for s in (4.6, 187, 7500)] == ["5s", "3m07s", "2h05m"]


def test_plan_takes_the_permutation_count_of_the_runs_own_array_stage(tmp_path):
    """PEPIS counts [permutations] n_permutations; CAL replicates [cal] permutations searches of permuted
    strains (its replicate 0 is the observed search), block-mixture [blockmix_permutations] n_permutations."""
    from qtlhpc.cluster.plan import problem_for_config
    from qtlhpc.config import Config

    cases = {"pepis": ("[permutations]\nn_permutations = 23\n", 23),
             "cal": ("[cal]\npermutations = 37\n", 37),
             "blockmix": ("[blockmix_permutations]\nn_permutations = 19\n", 19)}
    for method, (section, expected) in cases.items():
        config = tmp_path / f"{method}.toml"
        config.write_text(f'[run]\nstages = ["{method}"]\n[simulate]\nn_individuals = 24\n{section}')
        assert problem_for_config(Config.load(config))[0].n_permutations == expected, method
