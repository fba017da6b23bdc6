"""Config validation: unknown sections and keys with suggestions, types, choices, overrides."""

import pytest

from qtlhpc.stages import registry
from qtlhpc.config import Config, apply_override, describe_sections
from qtlhpc.errors import ConfigError


def write(tmp_path, text):
    path = tmp_path / "analysis.toml"
    path.write_text(text)
    return path


def test_defaults_fill_missing_keys(tmp_path):
    config = Config.load(write(tmp_path, "[run]\nseed = 7\n"))
    assert config.seed == 7
    assert config.section("genoprob")["step"] == 1.0
    assert config.section("scan2d")["model"] == "random"
    assert config.output == tmp_path / "results.h5"


def test_unknown_key_suggests_nearest(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown key 'stpe' in \[genoprob\]; did you mean 'step'\?"):
        Config.load(write(tmp_path, "[genoprob]\nstpe = 2.0\n"))


def test_unknown_section_suggests_nearest(tmp_path):
    with pytest.raises(ConfigError, match=r"unknown section \[scan2\]; did you mean 'scan2d'\?"):
        Config.load(write(tmp_path, "[scan2]\ntile = 3\n"))


def test_wrong_type_names_key_value_and_expected(tmp_path):
    with pytest.raises(ConfigError, match=r"\[genoprob\] step = 'one' is a str; expected a number"):
        Config.load(write(tmp_path, "[genoprob]\nstep = 'one'\n"))


def test_boolean_is_not_a_number(tmp_path):
    with pytest.raises(ConfigError, match="expected a integer"):
        Config.load(write(tmp_path, "[run]\nseed = true\n"))


def test_choice_outside_allowed_values(tmp_path):
    with pytest.raises(ConfigError, match=r"'kosambii' is not allowed; expected one of .*did you mean 'kosambi'"):
        Config.load(write(tmp_path, "[genoprob]\nmap_function = 'kosambii'\n"))


def test_list_choices_checked_per_item(tmp_path):
    with pytest.raises(ConfigError, match="'ax' is not allowed"):
        Config.load(write(tmp_path, "[kinship]\nwhich = ['a', 'ax']\n"))


def test_integer_accepted_where_number_expected(tmp_path):
    config = Config.load(write(tmp_path, "[genoprob]\nstep = 2\n"))
    assert config.section("genoprob")["step"] == 2.0
    assert isinstance(config.section("genoprob")["step"], float)


def test_invalid_toml_names_file(tmp_path):
    path = write(tmp_path, "[run\nseed = 1\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Config.load(path)


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        Config.load(tmp_path / "nope.toml")


def test_override_sets_any_key(tmp_path):
    path = write(tmp_path, "[scan2d]\ntile = 32\n")
    config = Config.load(path, ["scan2d.tile=128", "run.output=\"x/out.h5\"", "kinship.which=['a','d']"])
    assert config.section("scan2d")["tile"] == 128
    assert config.output == tmp_path / "x" / "out.h5"
    assert config.section("kinship")["which"] == ["a", "d"]


def test_override_is_validated(tmp_path):
    with pytest.raises(ConfigError, match="did you mean 'tile'"):
        Config.load(write(tmp_path, ""), ["scan2d.tiles=3"])


def test_override_syntax_error():
    with pytest.raises(ConfigError, match="expected section.key=value"):
        apply_override({}, "tile=3")


def test_stage_config_changes_with_its_section_only(tmp_path):
    a = Config.load(write(tmp_path, "[scan2d]\ntile = 32\n"))
    b = Config.load(tmp_path / "analysis.toml", ["scan2d.tile=64"])
    assert a.stage_config(registry.get("genoprob")) == b.stage_config(registry.get("genoprob"))
    assert a.stage_config(registry.get("scan2d")) != b.stage_config(registry.get("scan2d"))


def test_reference_lists_every_section():
    text = describe_sections()
    for section in ("[run]", "[genoprob]", "[kinship]", "[scan2d]", "[slurm]"):
        assert f"## {section}" in text
