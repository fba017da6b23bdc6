"""qtlhpc.parallel: partitions (property tests), keyed random streams, and the work pool under mpirun."""

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mpi_helpers import RANK_COUNTS, run_mpi
from qtlhpc.parallel import (
    schedule,
    SERIAL,
    balanced_split,
    block_range,
    chunk_ranges,
    n_pairs,
    pair_blocks,
    pair_from_index,
    pair_index,
    partition_pair_blocks,
    unit_rng,
)

SCRIPTS = Path(__file__).parent / "mpi_scripts"


# -- block_range / chunk_ranges ---------------------------------------------------------------

@given(st.integers(0, 10_000), st.integers(1, 64))
def test_block_range_covers_once_and_balanced(n_items, size):
    ranges = [block_range(n_items, rank, size) for rank in range(size)]
    covered = np.concatenate([np.arange(start, stop) for start, stop in ranges])
    assert np.array_equal(covered, np.arange(n_items))  # contiguous, in rank order, each item once
    sizes = [stop - start for start, stop in ranges]
    assert max(sizes) - min(sizes) <= 1


@pytest.mark.parametrize("args", [(5, -1, 2), (5, 2, 2), (5, 0, 0), (-1, 0, 1)])
def test_block_range_refuses_bad_arguments(args):
    with pytest.raises(ValueError):
        block_range(*args)


@given(st.integers(0, 5_000), st.integers(1, 700))
def test_chunk_ranges_cover_in_order(n_items, chunk):
    ranges = chunk_ranges(n_items, chunk)
    assert [i for start, stop in ranges for i in range(start, stop)] == list(range(n_items))
    assert all(0 < stop - start <= chunk for start, stop in ranges)


# -- balanced_split ---------------------------------------------------------------------------

weights_strategy = st.lists(st.floats(0, 1000, allow_nan=False, allow_infinity=False), max_size=200)


@given(weights_strategy, st.integers(1, 40))
def test_balanced_split_contiguous_and_bounded(weights, size):
    parts = balanced_split(weights, size)
    assert len(parts) == size
    assert parts[0][0] == 0 and parts[-1][1] == len(weights)
    for (start, stop), (next_start, _) in zip(parts, parts[1:]):
        assert start <= stop == next_start  # contiguous, in order, no gap or overlap
    weights = np.asarray(weights, dtype=float)
    if weights.size:
        ideal = weights.sum() / size
        heaviest = max(weights[start:stop].sum() for start, stop in parts)
        assert heaviest <= ideal + weights.max() + 1e-9 * max(1.0, weights.sum())


@given(st.integers(0, 50), st.integers(1, 10))
def test_balanced_split_of_equal_weights_is_even(n_items, size):
    sizes = [stop - start for start, stop in balanced_split(np.ones(n_items), size)]
    assert sum(sizes) == n_items and max(sizes) - min(sizes) <= 1


def test_balanced_split_refuses_negative_weights():
    with pytest.raises(ValueError):
        balanced_split([1.0, -1.0], 2)


# -- pairs --------------------------------------------------------------------------------------

@given(st.integers(2, 60))
def test_pair_index_row_major_and_inverse_exhaustive(n_markers):
    pairs = [(k, l) for k in range(n_markers) for l in range(k + 1, n_markers)]  # row-major by definition
    k, l = np.array(pairs).T
    index = pair_index(k, l, n_markers)
    assert np.array_equal(index, np.arange(n_pairs(n_markers)))
    back_k, back_l = pair_from_index(index, n_markers)
    assert np.array_equal(back_k, k) and np.array_equal(back_l, l)


@given(st.integers(2, 3_000_000), st.data())
@settings(max_examples=300)
def test_pair_from_index_inverse_large(n_markers, data):
    total = n_pairs(n_markers)
    # row starts and ends are where floating point square roots go wrong: test them and random indices
    k = data.draw(st.integers(0, n_markers - 2))
    row_start = int(pair_index(k, k + 1, n_markers))
    candidates = [0, total - 1, row_start, row_start - 1, row_start + n_markers - k - 2,
                  data.draw(st.integers(0, total - 1))]
    index = np.array([i for i in candidates if 0 <= i < total])
    back_k, back_l = pair_from_index(index, n_markers)
    assert np.all(back_k < back_l) and np.all(back_l < n_markers) and np.all(back_k >= 0)
    assert np.array_equal(pair_index(back_k, back_l, n_markers), index)


def test_pair_index_refuses_lower_triangle():
    with pytest.raises(ValueError):
        pair_index(3, 3, 5)


@given(st.integers(0, 80), st.integers(1, 30))
def test_pair_blocks_cover_every_pair_once(n_markers, tile):
    blocks = pair_blocks(n_markers, tile)
    assert [b.block_id for b in blocks] == list(range(len(blocks)))
    seen = np.zeros((n_markers, n_markers), dtype=int)
    for block in blocks:
        k, l = block.pairs()
        assert len(k) == block.n_pairs > 0
        assert np.all(k < l)
        np.add.at(seen, (k, l), 1)
    assert np.array_equal(seen, np.triu(np.ones((n_markers, n_markers), dtype=int), 1))


@given(st.integers(2, 60), st.integers(1, 20), st.integers(1, 8))
def test_partition_pair_blocks_covers_blocks_in_order(n_markers, tile, size):
    blocks = pair_blocks(n_markers, tile)
    shares = [partition_pair_blocks(blocks, rank, size) for rank in range(size)]
    assert [b for share in shares for b in share] == blocks


# -- random streams -----------------------------------------------------------------------------

def test_unit_rng_is_keyed_by_unit_not_by_order():
    forward = {u: unit_rng(11, "perm", u).random(5) for u in range(20)}
    backward = {u: unit_rng(11, "perm", u).random(5) for u in reversed(range(20))}
    assert all(np.array_equal(forward[u], backward[u]) for u in range(20))
    # different units, streams and seeds give different numbers
    draws = [unit_rng(11, "perm", u).random(5) for u in range(20)]
    draws += [unit_rng(11, "boot", 0).random(5), unit_rng(12, "perm", 0).random(5), unit_rng(11, "perm", 0, 1).random(5)]
    assert len({d.tobytes() for d in draws}) == len(draws)


def test_unit_rng_refuses_negative_keys():
    with pytest.raises(ValueError):
        unit_rng(-1, "perm", 0)
    with pytest.raises(ValueError):
        unit_rng(1, "perm", -3)


# -- the work scheduler ---------------------------------------------------------------------------

def schedule_work(unit_id):
    return unit_rng(777, "schedule-test", unit_id).random(3).tolist()  # as tests/mpi_scripts/schedule_units.py


@pytest.mark.parametrize("claimed", [False, True])
def test_map_units_serial(claimed):
    order = []

    def compute(unit_id):
        order.append(unit_id)
        return schedule_work(unit_id)

    results = schedule.map_units(compute, [4, 1, 3], SERIAL, claimed=claimed)
    assert order == [4, 1, 3]
    assert results == {u: schedule_work(u) for u in (4, 1, 3)}


@given(n_units=st.integers(0, 60), n_ranks=st.integers(1, 9))
def test_static_shares_cover_every_unit_once(n_units, n_ranks):
    class FakeComm:
        def __init__(self, rank):
            self.rank = rank

        def Get_rank(self):
            return self.rank

        def Get_size(self):
            return n_ranks

    ids = list(range(100, 100 + n_units))
    shares = [schedule.UnitSchedule(ids, FakeComm(r)).static_share() for r in range(n_ranks)]
    assert [u for share in shares for u in share] == ids
    assert max(map(len, shares)) - min(map(len, shares)) <= 1


@pytest.mark.mpi
@pytest.mark.parametrize("n_ranks", RANK_COUNTS)
@pytest.mark.parametrize("n_units", [0, 1, 23])
@pytest.mark.parametrize("mode", ["static", "claimed"])
def test_scheduled_units_under_mpirun_equal_serial(tmp_path, n_ranks, n_units, mode):
    out = tmp_path / "units.json"
    run_mpi(n_ranks, [SCRIPTS / "schedule_units.py", n_units, mode, out], timeout=120)
    report = json.loads(out.read_text())
    assert report["size"] == n_ranks
    assert report["results"] == {str(u): schedule_work(u) for u in range(n_units)}
    assert report["runs"] == {str(u): 1 for u in range(n_units)}  # each unit run exactly once
    if n_ranks > 1 and n_units >= 20:
        assert len(set(report["ranks"].values())) > 1, "only one rank did work"


# -- shared counter (self-scheduling) ------------------------------------------------------------

def test_shared_counter_serial_counts_up():
    from qtlhpc.parallel.counter import SharedCounter

    with SharedCounter(SERIAL) as counter:
        assert [counter.claim() for _ in range(4)] == [0, 1, 2, 3]


@pytest.mark.mpi
@pytest.mark.parametrize("n_ranks", RANK_COUNTS)
def test_shared_counter_hands_out_each_index_once(n_ranks):
    proc = run_mpi(n_ranks, [SCRIPTS / "shared_counter.py", 60], timeout=120)
    lines = dict(line.split(" ", 1) for line in proc.stdout.splitlines() if line.startswith(("CLAIMED", "RANKS")))
    assert [int(i) for i in lines["CLAIMED"].split()] == list(range(60))
    assert int(lines["RANKS"]) == n_ranks, "every rank should have claimed work"


@given(n_markers=st.integers(2, 60), pairs_per_block=st.integers(1, 200), tail_fraction=st.sampled_from([0.0, 0.1, 0.5]))
def test_triangle_row_blocks_tile_the_packed_pairs(n_markers, pairs_per_block, tail_fraction):
    from qtlhpc.parallel import packed_slice, triangle_row_blocks

    blocks = triangle_row_blocks(n_markers, pairs_per_block, tail_fraction=tail_fraction)
    slices = [packed_slice(block, n_markers) for block in blocks]
    assert slices[0].start == 0 and slices[-1].stop == n_markers * (n_markers - 1) // 2
    assert all(a.stop == b.start for a, b in zip(slices, slices[1:]))        # contiguous, in order, no overlap
    for block, piece in zip(blocks, slices):
        first, second = block.pairs()
        assert len(first) == piece.stop - piece.start
        np.testing.assert_array_equal(pair_index(first, second, n_markers), np.arange(piece.start, piece.stop))
        if block.row_stop - block.row_start > 1:                               # several rows only within the target
            limit = pairs_per_block if piece.start < (1 - tail_fraction) * slices[-1].stop else max(1, pairs_per_block // 4)
            assert piece.stop - piece.start <= limit
