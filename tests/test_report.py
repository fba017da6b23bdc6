"""The visual report: figures and index.html from a synthetic results file with planted peaks."""

import re

import numpy as np
import pytest
from matplotlib.image import imread

import qtlhpc.methods.pepis.schema  # noqa: F401  (declares the datasets written below)
from qtlhpc.errors import InputError
from qtlhpc.parallel import n_pairs, pair_index
from qtlhpc.report import write_report
from qtlhpc.report.layout import bin_edges, binned_pair_maximum, chromosome_runs, genome_layout
from qtlhpc.report.ranking import chromosome_peaks, strongest_pairs
from qtlhpc.store import ResultsFile

CHROMOSOMES = {"1": 15, "2": 12, "X": 8}
TRAITS = ["height", "seed weight"]
PLANTED_1D = ("height", "m2_5", 9.5)
PLANTED_PAIR = ("seed weight", "m1_3", "m2_7", 12.0)
COMPONENTS = ["a", "d", "aa", "ad", "da", "dd", "residual"]


def make_loci():
    names, chromosomes, positions = [], [], []
    for chromosome, count in CHROMOSOMES.items():
        for i in range(count):
            names.append(f"m{chromosome}_{i}")
            chromosomes.append(chromosome)
            positions.append(7.5 * i)
    return np.array(names), np.array(chromosomes), np.array(positions)


def write_loci(stage, loci):
    names, chromosomes, positions = loci
    stage.write("locus_names", names)
    stage.write("locus_chromosomes", chromosomes)
    stage.write("locus_positions_cM", positions)


def write_varcomp(results, rng):
    stage = results.begin_stage("varcomp", {"test": 1})
    raw = rng.uniform(0.05, 1.0, size=(len(TRAITS), len(COMPONENTS)))
    stage.write("trait_names", np.array(TRAITS))
    stage.write("component_names", np.array(COMPONENTS))
    stage.write("variance_proportions", raw / raw.sum(axis=1, keepdims=True))
    stage.finish()


def write_scan1d(results, loci, rng):
    names = loci[0]
    n_loci = names.size
    stage = results.begin_stage("scan1d", {"test": 1})
    lod = rng.uniform(0.0, 2.5, size=(len(TRAITS), n_loci))
    trait, locus, value = PLANTED_1D
    lod[TRAITS.index(trait), list(names).index(locus)] = value
    stage.write("trait_names", np.array(TRAITS))
    write_loci(stage, loci)
    stage.write("effect_names", np.array(["a", "d"]))
    stage.write("lod", lod)
    stage.write("lrt", lod * 2 * np.log(10))
    stage.write("pvalue", 10.0 ** -lod)
    stage.write("effects", rng.normal(size=(len(TRAITS), n_loci, 2)))
    stage.write("effect_se", rng.uniform(0.1, 0.3, size=(len(TRAITS), n_loci, 2)))
    stage.finish()


def planted_scan2d_lod(loci, rng):
    names = list(loci[0])
    lod = rng.uniform(0.0, 3.0, size=(len(TRAITS), n_pairs(len(names)))).astype(np.float32)
    trait, first, second, value = PLANTED_PAIR
    lod[TRAITS.index(trait), pair_index(names.index(first), names.index(second), len(names))] = value
    return lod


def write_scan2d(results, loci, rng, *, with_top=True, complete=True):
    names = list(loci[0])
    stage = results.begin_stage("scan2d", {"test": 1, "top": with_top})
    stage.write("trait_names", np.array(TRAITS))
    write_loci(stage, loci)
    lod = planted_scan2d_lod(loci, rng)
    if not complete:
        blocks = np.array_split(np.arange(lod.shape[1]), 4)
        out = stage.blocked({"lod": lod.shape}, n_blocks=4, key="lod")
        out.write_rounds([0], lambda b: {"lod": ((slice(None), slice(blocks[b][0], blocks[b][-1] + 1)),
                                                 lod[:, blocks[b]])})
        return
    stage.write("lod", lod)
    stage.write("pvalue", (10.0 ** -lod.astype(float)).astype(np.float32))
    if with_top:
        trait, first, second, value = PLANTED_PAIR
        stage.write("effect_names", np.array(["aa", "ad", "da", "dd"]))
        stage.write("top_trait", np.array([TRAITS.index(trait), 0]))
        stage.write("top_locus_1", np.array([names.index(first), 0]))
        stage.write("top_locus_2", np.array([names.index(second), 1]))
        stage.write("top_lod", np.array([value, 5.0]))
        stage.write("top_pvalue", np.array([1e-12, 1e-5]))
        stage.write("top_effects", np.array([[1.25, -0.5, 0.25, 0.75], [0.1, 0.2, 0.3, 0.4]]))
        stage.write("top_effect_se", np.full((2, 4), 0.125))
    stage.finish()


def write_permutations(results):
    stage = results.begin_stage("permutations", {"test": 1})
    stage.write("trait_names", np.array(TRAITS))
    stage.write("permutation_ids", np.arange(100))
    stage.write("alphas", np.array([0.05, 0.01]))
    stage.write("threshold_1d", np.array([[3.2, 3.3], [4.1, 4.0]]))
    stage.write("threshold_2d", np.array([[6.1, 6.0], [7.2, 7.3]]))
    stage.finish()


def build_file(path, *, scan2d_complete=True, with_top=True):
    rng = np.random.default_rng(20240611)
    loci = make_loci()
    with ResultsFile.open(path) as results:
        write_varcomp(results, rng)
        write_scan1d(results, loci, rng)
        write_permutations(results)
        write_scan2d(results, loci, rng, with_top=with_top, complete=scan2d_complete)
    return path


def table_rows(page, caption_word):
    """Rows (lists of cell texts) of the first table whose caption contains ``caption_word``."""
    for table in re.findall(r"<table>.*?</table>", page, flags=re.S):
        caption = re.search(r"<caption>(.*?)</caption>", table, flags=re.S).group(1)
        if caption_word in caption:
            body = re.search(r"<tbody>(.*?)</tbody>", table, flags=re.S).group(1)
            return [re.findall(r"<td[^>]*>(.*?)</td>", row) for row in re.findall(r"<tr>(.*?)</tr>", body, flags=re.S)]
    raise AssertionError(f"no table with {caption_word!r} in its caption")


def assert_readable_png(path):
    image = imread(path)
    height, width = image.shape[:2]
    assert image.ndim == 3 and image.shape[2] in (3, 4), f"{path.name}: not an RGB(A) image"
    assert 300 <= height <= 1500 and 600 <= width <= 1500, f"{path.name}: unexpected size {width}x{height}"
    assert image[..., :3].std() > 0.05, f"{path.name}: the image is (nearly) uniform"


@pytest.fixture(scope="module")
def full_report(tmp_path_factory):
    directory = tmp_path_factory.mktemp("report")
    results_path = build_file(directory / "run.h5")
    index = write_report(results_path, directory / "out", top=10)
    return index


def test_report_draws_every_complete_stage(full_report):
    out_dir = full_report.parent
    pngs = sorted(p.name for p in out_dir.glob("*.png"))
    assert len([p for p in pngs if p.startswith("scan1d_")]) == len(TRAITS)
    assert len([p for p in pngs if p.startswith("scan2d_")]) == len(TRAITS)
    assert "varcomp_proportions.png" in pngs
    for name in pngs:
        assert_readable_png(out_dir / name)
    page = full_report.read_text(encoding="utf-8")
    linked = set(re.findall(r'src="([^"]+)"', page))
    assert linked == set(pngs)


def test_report_tables_show_planted_peaks(full_report):
    page = full_report.read_text(encoding="utf-8")
    main_rows = table_rows(page, "main-effect QTL")
    trait, locus, lod = PLANTED_1D
    assert main_rows[0][:3] == [trait, locus, "2"] and float(main_rows[0][4]) == lod
    assert len(main_rows) == len(TRAITS) * len(CHROMOSOMES)  # one peak per trait and chromosome, < top
    pair_rows = table_rows(page, "epistatic pairs")
    trait, first, second, lod = PLANTED_PAIR
    assert pair_rows[0][0] == trait and pair_rows[0][1] == first and pair_rows[0][4] == second
    assert float(pair_rows[0][7]) == lod
    assert pair_rows[0][9:11] == ["1.25", "0.125"]  # aa and its SE


def test_report_header_lists_stage_provenance(full_report):
    page = full_report.read_text(encoding="utf-8")
    assert "run.h5" in page and qtlhpc_version() in page
    stages = {row[0]: row for row in table_rows(page, "Stages in the file")}
    for name in ("varcomp", "scan1d", "scan2d", "permutations"):
        assert stages[name][1] == "complete" and stages[name][3] != ""
    assert stages["kinship"][1] == "absent"


def qtlhpc_version():
    import qtlhpc

    return qtlhpc.__version__


def test_incomplete_scan2d_is_named_and_not_drawn(tmp_path):
    results_path = build_file(tmp_path / "partial.h5", scan2d_complete=False)
    index = write_report(results_path, tmp_path / "out")
    page = index.read_text(encoding="utf-8")
    assert "scan2d is incomplete" in page and "1 of 4 blocks done" in page
    assert not list((tmp_path / "out").glob("scan2d_*.png"))
    assert len(list((tmp_path / "out").glob("scan1d_*.png"))) == len(TRAITS)
    assert table_rows(page, "Stages in the file")[4][:2] == ["scan2d", "running"]


def test_pairs_without_top_datasets_come_from_the_lod(tmp_path):
    results_path = build_file(tmp_path / "notop.h5", with_top=False)
    page = write_report(results_path, tmp_path / "out", top=5).read_text(encoding="utf-8")
    rows = table_rows(page, "pairs by LOD")
    trait, first, second, lod = PLANTED_PAIR
    assert rows[0][:2] == [trait, first] and rows[0][4] == second and float(rows[0][7]) == lod
    assert len(rows) == 5 and all(len(row) == 9 for row in rows)  # no effect columns
    lods = [float(row[7]) for row in rows]
    assert lods == sorted(lods, reverse=True)


def test_missing_results_file_is_an_input_error(tmp_path):
    with pytest.raises(InputError, match="not found"):
        write_report(tmp_path / "absent.h5", tmp_path / "out")


# ------------------------------------------------------------------------------------------ pure helpers


def brute_force_binned_maximum(packed, n_loci, edges):
    n_bins = len(edges) - 1
    result = np.full((n_bins, n_bins), np.nan)
    bin_of = np.searchsorted(edges, np.arange(n_loci), side="right") - 1
    for k in range(n_loci):
        for l in range(k + 1, n_loci):
            value = packed[pair_index(k, l, n_loci)]
            row, column = bin_of[l], bin_of[k]
            if np.isfinite(value) and not value <= result[row, column]:
                result[row, column] = value
    return result


@pytest.mark.parametrize("n_loci,max_bins", [(2, 4), (9, 9), (37, 5), (41, 40), (50, 7)])
def test_binned_pair_maximum_equals_brute_force(n_loci, max_bins):
    rng = np.random.default_rng(n_loci)
    packed = rng.normal(size=n_pairs(n_loci)).astype(np.float32)
    packed[rng.random(packed.size) < 0.1] = np.nan
    edges = bin_edges(n_loci, max_bins)
    assert edges.size - 1 <= max_bins and edges[0] == 0 and edges[-1] == n_loci
    fast = binned_pair_maximum(packed, n_loci, edges)
    np.testing.assert_array_equal(fast, brute_force_binned_maximum(packed, n_loci, edges))
    assert np.all(np.isnan(fast[np.triu_indices(edges.size - 1, 1)]))  # upper triangle empty


def test_genome_layout_keeps_chromosomes_apart_and_in_order():
    names, chromosomes, positions = make_loci()
    layout = genome_layout(chromosomes, positions)
    assert layout.names == list(CHROMOSOMES)
    for run, (start, stop) in enumerate(zip(layout.starts, layout.stops)):
        x = layout.cumulative_cM[start:stop]
        np.testing.assert_allclose(np.diff(x), np.diff(positions[start:stop]))
        assert x[0] == layout.run_left_cM[run] and x[-1] == layout.run_right_cM[run]
    assert np.all(layout.run_left_cM[1:] > layout.run_right_cM[:-1])
    assert chromosome_runs(["1", "1", "2", "1"])[0] == ["1", "2", "1"]


def test_chromosome_peaks_and_strongest_pairs_match_sorting():
    rng = np.random.default_rng(3)
    lod = rng.random((3, 20))
    lod[1, 4] = np.nan
    starts, stops = np.array([0, 8, 15]), np.array([8, 15, 20])
    traits, loci = chromosome_peaks(lod, starts, stops, top=4)
    expected = sorted(((np.nanmax(lod[t, s:e]), t, s + int(np.nanargmax(lod[t, s:e])))
                       for t in range(3) for s, e in zip(starts, stops)), reverse=True)[:4]
    assert list(zip(traits, loci)) == [(t, k) for _, t, k in expected]

    packed = [rng.random(45), rng.random(45)]
    packed[0][7] = np.nan
    traits, pairs, values = strongest_pairs(iter(packed), top=6)
    everything = sorted(((v, t, p) for t, row in enumerate(packed) for p, v in enumerate(row) if np.isfinite(v)),
                        reverse=True)[:6]
    assert list(zip(traits, pairs)) == [(t, p) for _, t, p in everything]
    np.testing.assert_array_equal(values, [v for v, _, _ in everything])


def test_absent_stages_are_named_missing(tmp_path):
    with ResultsFile.open(tmp_path / "only1d.h5") as results:
        write_scan1d(results, make_loci(), np.random.default_rng(5))
    page = write_report(tmp_path / "only1d.h5", tmp_path / "out").read_text(encoding="utf-8")
    for stage in ("varcomp", "scan2d", "permutations"):
        assert f"{stage} is missing" in page
    assert "show no genome-wide threshold" in page
    assert sorted(p.name for p in (tmp_path / "out").glob("*.png")) == ["scan1d_000_height.png",
                                                                        "scan1d_001_seed_weight.png"]
