"""``qtlhpc simulate CONFIG``: write a simulated cross from ``[simulate]`` and its planted truth.

The cross goes through the same files and readers as real data (``simulate.write_format``), so the
demo exercises the whole input path; the truth is written beside it as JSON.
"""

from __future__ import annotations

import dataclasses
import json
import pathlib

import numpy as np

from qtlhpc.errors import ConfigError


def _jsonable(value):
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _jsonable(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.ndarray):
        if value.ndim > 1 or value.size > 10000:
            return f"<array {value.shape} {value.dtype}: not written>"
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    return value


def written_files(prefix: pathlib.Path, write_format: str) -> dict:
    """The files a simulated cross is written to, for each format (what the [input] section reads)."""
    return {
        "rqtl-csv": {"file": prefix.with_suffix(".csv")},
        "rqtl-csvs": {"genotypes": prefix.parent / (prefix.name + "_geno.csv"),
                      "phenotypes": prefix.parent / (prefix.name + "_pheno.csv")},
        "pepis": {"z": prefix.parent / (prefix.name + "_Z.txt"), "w": prefix.parent / (prefix.name + "_W.txt"),
                  "phenotypes": prefix.parent / (prefix.name + "_pheno.txt"),
                  "map": prefix.parent / (prefix.name + "_map.txt")},
    }[write_format]


def simulate_and_write(section: dict, base_dir: pathlib.Path):
    """Simulate from a validated ``[simulate]`` section; write the cross and ``<prefix>_truth.json``."""
    from qtlhpc.io import writers
    from qtlhpc.genetics.simulate import simulate_from_config

    section = dict(section)
    write_format = section.pop("write_format")
    prefix = pathlib.Path(section.pop("write_to"))
    prefix = prefix if prefix.is_absolute() else base_dir / prefix
    prefix.parent.mkdir(parents=True, exist_ok=True)
    cross, truth = simulate_from_config(section)
    files = written_files(prefix, write_format)
    if write_format == "rqtl-csv":
        writers.write_rqtl_csv(cross, files["file"])
    elif write_format == "rqtl-csvs":
        writers.write_rqtl_csvs(cross, files["genotypes"], files["phenotypes"])
    elif write_format == "pepis":
        writers.write_pepis(cross, files["z"], files["w"], files["phenotypes"], files["map"])
    else:  # pragma: no cover - the config's choices prevent it
        raise ConfigError(f"unknown simulate.write_format {write_format!r}")
    truth_path = prefix.parent / (prefix.name + "_truth.json")
    truth_path.write_text(json.dumps(_jsonable(truth), indent=1) + "\n")
    return cross, truth, files, truth_path


def run_simulate(context) -> None:
    if not context.config.has_section("simulate"):
        raise ConfigError(f"{context.config.source}: no [simulate] section; `qtlhpc config-help` lists its keys")
    if context.rank != 0:
        return
    cross, _, files, truth_path = simulate_and_write(context.config.section("simulate"), context.config.base_dir)
    context.log.info("simulated a %s cross: %d individuals, %d markers, %d traits", cross.cross_type,
                     cross.n_individuals, cross.n_markers, cross.n_traits)
    for key, path in files.items():
        context.log.info("  %s: %s", key, path)
    context.log.info("  truth: %s", truth_path)


def compare_with_truth(results_path, truth_path, *, window_cM: float = 10.0, lod_without_threshold: float = 3.0):
    """Was each planted QTL and epistatic pair found? One line per planted effect, and the count found.

    A main-effect QTL is found when the highest 1D LOD within ``window_cM`` of it on its chromosome
    exceeds the 5% genome-wide permutation threshold (or ``lod_without_threshold`` when there are no
    permutations); a pair likewise with the 2D LOD of pairs whose loci lie within the window of both.
    """
    from qtlhpc.parallel import pair_index
    from qtlhpc.store import open_results

    truth = json.loads(pathlib.Path(truth_path).read_text())
    lines, found, planted = [], 0, 0
    with open_results(results_path) as results:
        stages = {info.name: info.status for info in results.describe()}
        markers = results.read("genoprob/marker_names") if stages.get("genoprob") == "complete" else None
        positions = dict(zip(results.read("genoprob/position_names"), results.read("genoprob/positions_cM"))) \
            if markers is not None else {}
        chromosomes = dict(zip(results.read("genoprob/position_names"), results.read("genoprob/position_chromosomes"))) \
            if markers is not None else {}

        def threshold(name):
            if stages.get("permutations") == "complete":
                alphas = list(results.read("permutations/alphas"))
                values = results.read(f"permutations/{name}")
                if 0.05 in alphas and np.all(np.isfinite(values[alphas.index(0.05)])):
                    return float(values[alphas.index(0.05), 0]), "5% genome-wide threshold"
            return lod_without_threshold, "LOD"

        def near(stage, marker_name):
            loci = results.read(f"{stage}/locus_names")
            loci_chromosomes = results.read(f"{stage}/locus_chromosomes")
            loci_positions = results.read(f"{stage}/locus_positions_cM")
            return np.flatnonzero((loci_chromosomes == chromosomes[marker_name])
                                  & (np.abs(loci_positions - positions[marker_name]) <= window_cM)), len(loci)

        if stages.get("scan1d") == "complete":
            lod = results.read("scan1d/lod")[0]
            cut, what = threshold("threshold_1d")
            for qtl in truth["main_qtl"]:
                planted += 1
                index, _ = near("scan1d", qtl["marker_name"])
                best = float(np.nanmax(lod[index])) if index.size else float("nan")
                found += best > cut
                lines.append(f"main-effect QTL at {qtl['marker_name']} (a={qtl['additive']}, d={qtl['dominance']}): "
                             f"max LOD {best:.2f} within {window_cM:g} cM -> "
                             f"{'FOUND' if best > cut else 'not found'} ({what} {cut:.2f})")
        if stages.get("scan2d") == "complete":
            lod = results.read("scan2d/lod")[0]
            cut, what = threshold("threshold_2d")
            for pair in truth["epistatic_pairs"]:
                planted += 1
                first, n_loci = near("scan2d", pair["marker_names"][0])
                second, _ = near("scan2d", pair["marker_names"][1])
                k, l = np.meshgrid(first, second, indexing="ij")
                k, l = np.minimum(k, l).ravel(), np.maximum(k, l).ravel()
                keep = k < l
                best = float(np.nanmax(lod[pair_index(k[keep], l[keep], n_loci)])) if keep.any() else float("nan")
                found += best > cut
                effects = ", ".join(f"{e}={pair[e]}" for e in ("aa", "ad", "da", "dd") if pair[e])
                lines.append(f"epistatic pair {pair['marker_names'][0]} x {pair['marker_names'][1]} ({effects}): "
                             f"max LOD {best:.2f} -> {'FOUND' if best > cut else 'not found'} ({what} {cut:.2f})")
    lines.append(f"found {found} of {planted} planted effects")
    return lines
