"""Every numeric config key declares its range, and loading a config checks it, naming the key, the value
and the allowed range; too few permutations for a significance level is a warning naming the count needed."""

import logging

import pytest

from qtlhpc.config import Config, smallest_resolving_count
from qtlhpc.errors import ConfigError
from qtlhpc.stages import registry

# (section, key, bad value, fragments the message must contain besides "[section] key")
OUT_OF_RANGE = [
    ("genoprob", "block_individuals", 0, ["= 0 ", ">= 1"]),
    ("genoprob", "block_individuals", -1, ["= -1 ", ">= 1"]),
    ("genoprob", "step", -1, ["= -1.0 ", ">= 0"]),
    ("genoprob", "error_prob", 1.5, ["= 1.5 ", "in (0, 1)"]),
    ("genoprob", "error_prob", 0, ["= 0.0 ", "in (0, 1)"]),
    ("kinship", "block_rows", 0, ["= 0 ", ">= 1"]),
    ("kinship", "marker_block", -1, ["= -1 ", ">= 1"]),
    ("varcomp", "max_iter", 0, ["= 0 ", ">= 1"]),
    ("varcomp", "tolerance", 0, ["= 0.0 ", "> 0"]),
    ("scan1d", "block_markers", 0, ["= 0 ", ">= 1"]),
    ("scan1d", "block_markers", -1, ["= -1 ", ">= 1"]),
    ("scan2d", "tile", 0, ["= 0 ", ">= 1"]),
    ("scan2d", "max_reported_pairs", -1, ["= -1 ", ">= 0"]),
    ("permutations", "n_permutations", -5, ["= -5 ", ">= 1"]),
    ("permutations", "n_permutations", 0, ["= 0 ", ">= 1"]),
    ("permutations", "batch", 0, ["= 0 ", ">= 1"]),
    ("permutations", "alphas", [0.05, 1.2], ["[0.05, 1.2]", "item 1.2", "each item in (0, 1)"]),
    ("permutations", "alphas", [0, 0.01], ["item 0", "each item in (0, 1)"]),
    ("permutations", "alphas", ["0.05"], ["item '0.05' is not a number", "in (0, 1)"]),
    ("cis", "window", -1, ["= -1 ", ">= 0"]),
    ("cis", "chunks", 0, ["= 0 ", ">= 1"]),
    ("cis", "permutations", [10, 0, 100], ["item 0", "each item >= 1"]),
    ("cis", "min_maf", 0.6, ["= 0.6 ", "in [0, 0.5]"]),
    ("cis", "max_missing", 1.1, ["= 1.1 ", "in [0, 1]"]),
    ("cis", "fdr", 1.0, ["= 1.0 ", "in (0, 1)"]),
    ("expression", "variability_filter", 1.5, ["= 1.5 ", "in [0, 1)"]),
    ("expression", "variability_filter", -0.1, ["= -0.1 ", "in [0, 1)"]),
    ("cross_eqtl", "clusters", 0, ["= 0 ", ">= 1"]),
    ("cross_eqtl", "min_overlap", 1.5, ["= 1.5 ", "in [0, 1]"]),
    ("cross_trans", "regulator_block", 0, ["= 0 ", ">= 1"]),
    ("cross_trans", "min_recombination", 0.5, ["= 0.5 ", "in [0, 0.5)"]),
    ("trans", "threshold", 0, ["= 0.0 ", "in (0, 1]"]),
    ("trans", "variant_block", 0, ["= 0 ", ">= 1"]),
    ("report", "top", 0, ["= 0 ", ">= 1"]),
    ("simulate", "n_individuals", 0, ["= 0 ", ">= 1"]),
    ("simulate", "missing_rate", 1.0, ["= 1.0 ", "in [0, 1)"]),
    ("run", "seed", -1, ["= -1 ", ">= 0"]),
    ("slurm", "array_tasks", 0, ["= 0 ", ">= 1"]),
]


@pytest.mark.parametrize("section, key, value, fragments", OUT_OF_RANGE,
                         ids=[f"{s}.{k}={v}" for s, k, v, _ in OUT_OF_RANGE])
def test_a_value_out_of_range_is_rejected_on_load_naming_key_value_and_range(tmp_path, section, key, value,
                                                                             fragments):
    with pytest.raises(ConfigError) as error:
        Config({section: {key: value}}, tmp_path, "analysis.toml")
    message = str(error.value)
    for fragment in [f"[{section}] {key}"] + fragments:
        assert fragment in message, f"{fragment!r} not in {message!r}"


def test_an_override_out_of_range_is_rejected_when_the_config_is_loaded(tmp_path):
    (tmp_path / "analysis.toml").write_text("[scan2d]\ntile = 64\n")
    with pytest.raises(ConfigError, match=r"\[scan2d\] tile = 0 is out of range; expected >= 1"):
        Config.load(tmp_path / "analysis.toml", ["scan2d.tile=0"])


VALID_EDGES = [
    ("genoprob", "block_individuals", 1),
    ("genoprob", "step", 0),
    ("genoprob", "error_prob", 1e-12),
    ("scan2d", "tile", 1),
    ("scan2d", "report_lod", 0),
    ("scan2d", "max_reported_pairs", 0),
    ("permutations", "n_permutations", 1),
    ("permutations", "alphas", [0.999, 1e-6]),
    ("cis", "window", 0),
    ("cis", "chunks", 1),
    ("cis", "permutations", [1, 10, 100]),
    ("cis", "min_maf", 0.5),
    ("cis", "max_missing", 0),
    ("cis", "max_missing", 1),
    ("expression", "variability_filter", 0),
    ("cross_eqtl", "min_overlap", 1),
    ("cross_trans", "min_recombination", 0),
    ("cross_trans", "keep_pvalue", 1),
    ("trans", "threshold", 1),
    ("trans", "cis_window", -1),   # negative: test every pair
    ("simulate", "n_covariates", 0),
    ("run", "seed", 0),
]


@pytest.mark.parametrize("section, key, value", VALID_EDGES, ids=[f"{s}.{k}={v}" for s, k, v in VALID_EDGES])
def test_values_on_the_edge_of_a_range_are_accepted(tmp_path, section, key, value):
    config = Config({section: {key: value}}, tmp_path)
    assert config.section(section)[key] == value


def test_every_numeric_key_declares_a_range_and_its_default_is_in_it():
    unbounded = {("trans", "cis_window"), ("simulate", "covariate_effect")}   # any value has a meaning
    for section, declared in registry.sections().items():
        for key, option in declared.options.items():
            if option.type not in (int, float) or (section, key) in unbounded:
                continue
            assert option.range_text(), f"[{section}] {key} declares no range"
            if option.default is not None:
                assert option.in_range(option.default), f"[{section}] {key} default {option.default} out of range"


@pytest.mark.parametrize("alpha, count", [(0.05, 20), (0.01, 100), (0.1, 10), (0.3, 4), (0.5, 2), (0.999, 2)])
def test_the_smallest_count_that_resolves_a_level_is_ceil_of_one_over_alpha(alpha, count):
    assert smallest_resolving_count(alpha) == count


def test_too_few_permutations_for_a_level_is_a_warning_naming_the_smallest_count(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="qtlhpc"):
        Config({"permutations": {"n_permutations": 1, "alphas": [0.05, 0.01]}}, tmp_path)
    messages = [record.getMessage() for record in caplog.records if record.name == "qtlhpc"]
    assert any("n_permutations = 1" in m and "alpha = 0.05" in m and "smallest count that does is 20" in m
               for m in messages), messages
    assert any("alpha = 0.01" in m and "smallest count that does is 100" in m for m in messages), messages


def test_enough_permutations_give_no_warning(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="qtlhpc"):
        Config({"permutations": {"n_permutations": 100, "alphas": [0.05, 0.01]}}, tmp_path)
        Config({}, tmp_path)   # the defaults resolve their levels
    assert not [record for record in caplog.records if record.name == "qtlhpc"]


def test_the_reference_shows_each_range():
    from qtlhpc.config import describe_sections

    text = describe_sections()
    assert "| key | type | default | range | meaning |" in text
    assert "| `tile` | integer | `256` | >= 1 |" in text
    assert "| `alphas` | list | `[0.05, 0.01]` | each in (0, 1) |" in text
