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
    from qtlhpc.data import writers
    from qtlhpc.simulate import simulate_from_config

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
