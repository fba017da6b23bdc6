"""The results store in one process: round trips, provenance, resume, restart, refusals, TSV export."""

import csv
import hashlib
import io
import json
import logging

import h5py
import numpy as np
import pytest

from qtlhpc import schema
from qtlhpc.errors import IncompleteResultError, InputError
from qtlhpc.store import ResultsFile, open_results
from qtlhpc.store.export import export_tsv, format_value, inspect_text

STAGE = "storeunit"
N_TRAITS, N_POSITIONS, N_INDIVIDUALS, N_GENOTYPES = 3, 12, 4, 2
ROWS = 3  # positions per block
N_BLOCKS = N_POSITIONS // ROWS


@pytest.fixture(autouse=True)
def test_schema():
    saved = dict(schema._REGISTRY)
    schema.declare(STAGE, "lod", ("trait", "position"), "float64", "LOD", "test scores")
    schema.declare(STAGE, "best", ("position",), "int32", "", "test integers")
    schema.declare(STAGE, "flags", ("position",), "bool", "", "test flags")
    schema.declare(STAGE, "probs", ("individual", "position", "genotype"), "float32", "probability", "test 3-D")
    schema.declare(STAGE, "threshold", (), "float64", "LOD", "a test scalar")
    schema.declare(STAGE, "trait_names", ("trait",), "str", "", "test trait names", labels_for="trait")
    schema.declare(STAGE, "position_names", ("position",), "str", "", "test position names", labels_for="position")
    yield
    schema._REGISTRY.clear()
    schema._REGISTRY.update(saved)


def planted(seed=1):
    rng = np.random.default_rng(seed)
    return {
        "lod": rng.normal(size=(N_TRAITS, N_POSITIONS)),
        "best": rng.integers(-5, 5, size=N_POSITIONS).astype(np.int32),
        "flags": rng.random(N_POSITIONS) < 0.5,
        "probs": rng.random((N_INDIVIDUALS, N_POSITIONS, N_GENOTYPES)).astype(np.float32),
        "trait_names": np.array(["bodyweight", "größe", "tab\tin name"][:N_TRAITS]),
        "position_names": np.array([f"m{i}" for i in range(N_POSITIONS)]),
    }


def block_pieces(data, block_id):
    rows = slice(block_id * ROWS, (block_id + 1) * ROWS)
    return {"lod": ((slice(None), rows), data["lod"][:, rows]), "best": ((rows,), data["best"][rows])}


def write_all(path, data, config=None, *, finish=True, blocks=range(N_BLOCKS), calls=None):
    calls = [] if calls is None else calls

    def compute(block_id):
        calls.append(block_id)
        return block_pieces(data, block_id)

    with ResultsFile.open(path) as results:
        stage = results.begin_stage(STAGE, config or {"alpha": 0.05, "name": "x"}, command_line="qtlhpc test")
        stage.write("trait_names", data["trait_names"])
        stage.write("position_names", data["position_names"])
        stage.write("flags", data["flags"])
        stage.write("probs", data["probs"])
        stage.write("threshold", 3.5)
        writer = stage.blocked({"lod": (N_TRAITS, N_POSITIONS), "best": (N_POSITIONS,)}, N_BLOCKS, key="rows")
        writer.write_rounds(list(blocks), compute)
        if finish:
            stage.finish()
    return calls


def test_round_trip_with_attributes(tmp_path):
    path = tmp_path / "r.h5"
    data = planted()
    config = {"name": "x", "alpha": 0.05, "nested": {"b": [1, 2], "a": np.int64(3)}}
    write_all(path, data, config)
    with open_results(path) as results:
        assert not results.parallel_io
        for name in ("lod", "best", "flags", "probs", "trait_names", "position_names"):
            value = results.read(f"{STAGE}/{name}")
            assert value.dtype == data[name].dtype or value.dtype.kind == "U", name
            assert np.array_equal(value, data[name]), name
        assert results.read(f"{STAGE}/threshold") == 3.5
        assert isinstance(results.read(f"{STAGE}/trait_names")[1], str)
        assert np.array_equal(results.read(f"{STAGE}/lod", (slice(1, 2), slice(4, 9))), data["lod"][1:2, 4:9])
        assert results.stage_status(STAGE) == "complete"
        assert results.stage_status("nothere") is None
    with h5py.File(path, "r") as h5:
        assert h5.attrs["qtlhpc_version"] and h5.attrs["created"]
        group = h5[STAGE]
        expected_json = json.dumps({"alpha": 0.05, "name": "x", "nested": {"a": 3, "b": [1, 2]}},
                                   sort_keys=True, separators=(",", ":"))
        assert group.attrs["config_json"] == expected_json
        assert group.attrs["config_sha256"] == hashlib.sha256(expected_json.encode()).hexdigest()
        assert group.attrs["status"] == "complete"
        assert group.attrs["command_line"] == "qtlhpc test"
        assert group.attrs["n_ranks"] == 1 and not group.attrs["parallel_io"]
        assert group.attrs["started"] <= group.attrs["finished"]
        lod = group["lod"]
        assert lod.attrs["dims"] == "trait,position"
        assert lod.attrs["unit"] == "LOD" and lod.attrs["description"] == "test scores"
        assert lod.attrs["dtype"] == "float64"
        plist = lod.id.get_create_plist()
        assert plist.get_layout() == h5py.h5d.CONTIGUOUS
        assert plist.get_alloc_time() == h5py.h5d.ALLOC_TIME_EARLY
        assert group["_checkpoint/rows"][()].tolist() == [1] * N_BLOCKS


def test_unwritten_blocks_are_nan_and_stage_refused(tmp_path):
    path = tmp_path / "r.h5"
    data = planted()
    write_all(path, data, blocks=[1], finish=False)
    with open_results(path) as results:
        with pytest.raises(IncompleteResultError) as caught:
            results.read(f"{STAGE}/lod")
        message = str(caught.value)
        assert str(path) in message and repr(STAGE) in message and "Rerun the same command" in message
        partial = results.read(f"{STAGE}/lod", allow_incomplete=True)
        best = results.read(f"{STAGE}/best", allow_incomplete=True)
    assert np.array_equal(partial[:, 3:6], data["lod"][:, 3:6])
    assert np.isnan(np.delete(partial, np.s_[3:6], axis=1)).all()
    assert (np.delete(best, np.s_[3:6]) == 0).all()
    with pytest.raises(IncompleteResultError):
        export_tsv(path, f"{STAGE}/lod", io.StringIO())
    assert "running (interrupted or still running" in inspect_text(path)


def test_resume_skips_done_blocks(tmp_path):
    path, data = tmp_path / "r.h5", planted()
    first = write_all(path, data, blocks=[0, 2], finish=False)
    assert first == [0, 2]
    second = write_all(path, data)
    assert second == [1, 3]  # only the blocks not marked done
    with open_results(path) as results:
        assert np.array_equal(results.read(f"{STAGE}/lod"), data["lod"])
        assert np.array_equal(results.read(f"{STAGE}/best"), data["best"])
    with ResultsFile.open(path) as results:
        stage = results.begin_stage(STAGE, {"alpha": 0.05, "name": "x"})
        assert stage.is_complete and stage.resumed
        writer = stage.blocked({"lod": (N_TRAITS, N_POSITIONS), "best": (N_POSITIONS,)}, N_BLOCKS, key="rows")
        assert writer.done.all() and writer.pending(range(N_BLOCKS)) == []


def test_other_config_restarts_stage(tmp_path, caplog):
    path, data = tmp_path / "r.h5", planted()
    write_all(path, data, blocks=[0, 1], finish=False)
    with caplog.at_level(logging.WARNING, logger="qtlhpc.store"):
        with ResultsFile.open(path) as results:
            stage = results.begin_stage(STAGE, {"alpha": 0.01, "name": "x"})
            assert not stage.is_complete and not stage.resumed
            writer = stage.blocked({"lod": (N_TRAITS, N_POSITIONS), "best": (N_POSITIONS,)}, N_BLOCKS, key="rows")
            assert not writer.done.any()
    assert "another configuration" in caplog.text and "starts over" in caplog.text
    with h5py.File(path, "r") as h5:
        assert "trait_names" not in h5[STAGE]
        assert np.isnan(h5[STAGE]["lod"][()]).all()
    calls = write_all(path, data, {"alpha": 0.01, "name": "x"})
    assert calls == list(range(N_BLOCKS))


def test_changed_shape_recomputes_blocks(tmp_path):
    path, data = tmp_path / "r.h5", planted()
    write_all(path, data, blocks=[0], finish=False)
    with ResultsFile.open(path) as results:
        stage = results.begin_stage(STAGE, {"alpha": 0.05, "name": "x"})
        writer = stage.blocked({"lod": (N_TRAITS, N_POSITIONS + 1)}, N_BLOCKS, key="rows")
        assert not writer.done.any()


def test_refusals(tmp_path):
    path = tmp_path / "r.h5"
    with ResultsFile.open(path) as results:
        with pytest.raises(KeyError, match="did you mean 'storeunit'"):
            results.begin_stage("storeunt", {})
        stage = results.begin_stage(STAGE, {})
        with pytest.raises(KeyError, match="did you mean 'storeunit/lod'"):
            stage.write("lodd", np.zeros((2, 2)))
        with pytest.raises(ValueError, match=r"dims \('trait', 'position'\).*1-D"):
            stage.write("lod", np.zeros(4))
        with pytest.raises(ValueError, match="non-integral"):
            stage.write("best", np.array([1.5, 2.0]))
        with pytest.raises(TypeError, match="text"):
            stage.write("lod", np.array([["a"]]))
        with pytest.raises(ValueError, match="dims"):
            stage.blocked({"lod": (3,)}, 2, key="k")
        writer = stage.blocked({"best": (4,)}, 2, key="k")
        with pytest.raises(AssertionError, match="needs"):
            writer.write_rounds([0], lambda b: {"best": ((slice(0, 2),), np.zeros(3))})
        stage.write("best", np.array([1.0, 2.0]))  # integral floats are cast
        assert results.read(f"{STAGE}/best", allow_incomplete=True).dtype == np.int32
        with pytest.raises(InputError, match="no dataset 'flags'"):
            results.read(f"{STAGE}/flags", allow_incomplete=True)
    with pytest.raises(InputError, match="not found"):
        open_results(tmp_path / "missing.h5")
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as h5:
        h5["x"] = 1
    with pytest.raises(InputError, match="not written by qtlhpc"):
        ResultsFile.open(foreign)
    (tmp_path / "text.h5").write_text("hello")
    with pytest.raises(InputError, match="HDF5"):
        open_results(tmp_path / "text.h5")


def parse_tsv(text):
    return list(csv.reader(io.StringIO(text), delimiter="\t", quoting=csv.QUOTE_NONE))


def test_export_tsv_matches_arrays(tmp_path):
    path, data = tmp_path / "r.h5", planted()
    write_all(path, data)
    trait_labels = ["bodyweight", "größe", "tab in name"]

    # (trait, position): one row per position, one column per trait, labelled by the names datasets
    out = tmp_path / "lod.tsv"
    assert export_tsv(path, f"{STAGE}/lod", out) == N_POSITIONS
    table = parse_tsv(out.read_text(encoding="utf-8"))
    assert table[0] == ["position"] + trait_labels
    assert [row[0] for row in table[1:]] == list(data["position_names"])
    values = np.array([[float(cell) for cell in row[1:]] for row in table[1:]])
    assert np.array_equal(values, data["lod"].T)  # exact: floats are written to round-trip

    stream = io.StringIO()
    export_tsv(path, f"{STAGE}/lod", stream, rows="trait")
    table = parse_tsv(stream.getvalue())
    assert table[0] == ["trait"] + list(data["position_names"])
    assert np.array_equal(np.array([[float(c) for c in row[1:]] for row in table[1:]]), data["lod"])

    stream = io.StringIO()
    export_tsv(path, f"{STAGE}/flags", stream)
    table = parse_tsv(stream.getvalue())
    assert table[0] == ["position", "flags"]
    assert [row[1] == "TRUE" for row in table[1:]] == list(data["flags"])

    # 3-D: long, one row per combination; dims without labels datasets are numbered
    stream = io.StringIO()
    assert export_tsv(path, f"{STAGE}/probs", stream) == data["probs"].size
    table = parse_tsv(stream.getvalue())
    assert table[0] == ["individual", "position", "genotype", "probs"]
    assert len(table) == 1 + data["probs"].size
    for row in table[1:]:
        i, p, g = int(row[0]), list(data["position_names"]).index(row[1]), int(row[2])
        assert np.float32(float(row[3])) == data["probs"][i, p, g]

    stream = io.StringIO()
    export_tsv(path, f"{STAGE}/threshold", stream)
    assert stream.getvalue() == "threshold\n3.5\n"
    with pytest.raises(InputError, match="not a dim"):
        export_tsv(path, f"{STAGE}/lod", io.StringIO(), rows="individual")


def test_export_nan_and_label_fallback(tmp_path):
    path, data = tmp_path / "r.h5", planted()
    data["lod"][0, 0] = np.nan
    data["lod"][1, 0] = -np.inf
    data["position_names"] = data["position_names"][:-1]  # wrong length: positions are numbered instead
    write_all(path, data)
    stream = io.StringIO()
    export_tsv(path, f"{STAGE}/lod", stream)
    table = parse_tsv(stream.getvalue())
    assert [row[0] for row in table[1:]] == [str(i) for i in range(N_POSITIONS)]
    assert table[1][1:3] == ["NaN", "-Inf"]
    # float32 values are written at their own precision: shortest text that reads back to the same float32
    assert format_value(np.float32(0.3)) == "0.3" and format_value(0.1) == "0.1"


def test_inspect_lists_stages_and_datasets(tmp_path):
    path = tmp_path / "r.h5"
    write_all(path, planted())
    text = inspect_text(path)
    assert f"[{STAGE}] complete" in text
    assert "checkpoint rows: 4/4 blocks done" in text
    assert "command: qtlhpc test" in text
    for name in ("lod", "best", "probs", "trait_names"):
        assert f"  {name} " in text
    assert "(trait, position)" in text and "test scores" in text
    with open_results(path) as results:
        (info,) = results.describe()
    lod = next(d for d in info.datasets if d.path == f"{STAGE}/lod")
    assert lod.shape == (N_TRAITS, N_POSITIONS) and lod.dims == ("trait", "position") and lod.unit == "LOD"
