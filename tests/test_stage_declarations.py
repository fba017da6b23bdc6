"""Stages declared once: the config hash covers every section a stage reads, an upstream rerun makes the
stages that read it stale, and a stage that cannot run deletes nothing."""

import argparse
import subprocess
import sys

import h5py
import numpy as np
import pytest

from qtlhpc.config import Config
from qtlhpc.errors import StaleResultError
from qtlhpc.stages import registry
from qtlhpc.stages.runtime import RunContext, UndeclaredSectionError
from qtlhpc.stages.spec import StageSpec
from qtlhpc.store import open_results

CONFIG = """
[run]
output = "results.h5"
progress = false

[varcomp]
traits = ["trait1", "trait2"]

[scan1d]
model = "{model}"

[scan2d]
model = "hk"

[input]
format = "rqtl-csv"
cross_type = "f2"
file = "cross.csv"

[simulate]
cross_type = "f2"
n_individuals = 50
n_chromosomes = 2
markers_per_chromosome = 6
n_traits = 3
n_covariates = 1
covariate_effect = 2.0
main_qtl = [{{ marker = 3, additive = 1.0 }}]
write_to = "cross"
"""


def qtlhpc(*args, cwd=None):
    return subprocess.run([sys.executable, "-m", "qtlhpc", *map(str, args)], capture_output=True, text=True,
                          cwd=cwd)


def ok(*args):
    proc = qtlhpc(*args)
    assert proc.returncode == 0, proc.stderr
    return proc


@pytest.fixture
def analysis(tmp_path):
    def make(model="random"):
        config = tmp_path / "analysis.toml"
        config.write_text(CONFIG.format(model=model))
        ok("simulate", config)
        return config
    return make


def _changed(option):
    """Another valid value of a declared option (None when there is no obvious one)."""
    choices = option.allowed()
    if option.type is bool:
        return not option.default
    if option.type is int:
        return (option.default or 0) + 3
    if option.type is float:
        value = (option.default or 0.0) * 2 + 0.5
        if not option.in_range(value):   # e.g. a fraction whose default is near 1: halfway to the minimum
            value = (option.default + option.minimum) / 2
        return value
    if option.type is str and choices and not isinstance(option.default, list):
        return next(c for c in choices if c != option.default)
    if option.type is list and choices:
        default = list(option.default or [])
        return default[:-1] if len(default) > 1 else [c for c in choices if c not in default][:1]
    return None


@pytest.mark.parametrize("stage", list(registry.stages()))
def test_changing_any_declared_section_changes_the_stage_config_hash(tmp_path, stage):
    spec = registry.get(stage)
    base = Config({"input": {"format": "rqtl-csv", "cross_type": "f2", "file": "x.csv"}}, tmp_path)
    reference = base.stage_config(spec)
    sections = registry.sections()
    assert spec.sections, f"{stage} declares no section"
    for section in spec.sections:
        changed_one = False
        for key, option in sections[section].options.items():
            value = _changed(option)
            if value is None:
                continue
            raw = {name: dict(values) for name, values in base.raw.items()}
            raw.setdefault(section, {})[key] = value
            assert Config(raw, tmp_path).stage_config(spec) != reference, f"{stage}: [{section}] {key}"
            changed_one = True
        assert changed_one, f"no key of [{section}] could be changed"


def test_a_stage_reading_an_undeclared_section_fails(tmp_path):
    spec = StageSpec("probe", "test", "builtins:print", "a stage that declares only [genoprob]", section="",
                     reads=("genoprob",))
    context = RunContext(Config({}, tmp_path), None).for_stage(spec)
    assert context.config.section("genoprob")["step"] == 1.0
    assert context.config.section("run")["seed"] == 1   # the framework's own section is always readable
    with pytest.raises(UndeclaredSectionError, match=r"\[varcomp\].*does not name"):
        context.config.section("varcomp")
    with pytest.raises(UndeclaredSectionError, match=r"\[input\]"):
        context.cross()


def test_the_list_of_stages_is_the_registry():
    names = list(registry.stages())
    assert {"expression", "genoprob", "report", "scan2d", "merge-permutations"} <= set(names)
    assert registry.pipeline("pepis") == ["genoprob", "kinship", "varcomp", "scan1d", "scan2d", "permutations"]
    from qtlhpc.cli import build_parser

    run = build_parser()._subparsers._group_actions[0].choices["run"]
    stage_name = next(a for a in run._actions if a.dest == "stage").type  # checks the name, suggests the nearest
    for name in set(names) | set(registry.pipelines()) | {"all"}:
        assert stage_name(name) == name
    with pytest.raises(argparse.ArgumentTypeError, match="did you mean 'scan2d'"):
        stage_name("scan2")
    assert {"pepis", "eqtl"} <= set(registry.pipelines())


def _lod(results_path, stage="scan1d"):
    with open_results(results_path) as results:
        return results.read(f"{stage}/lod")


def test_hk_scan1d_reruns_when_its_traits_or_covariates_change(analysis):
    config = analysis(model="hk")
    ok("run", "genoprob", config)
    ok("run", "scan1d", config)
    results = config.parent / "results.h5"
    before = _lod(results)
    assert before.shape[0] == 2
    proc = ok("run", "scan1d", config, "--set", 'varcomp.covariates=["covar1"]')
    assert "skipped" not in proc.stderr
    after = _lod(results)
    assert after.shape == before.shape and not np.allclose(after, before)
    proc = ok("run", "scan1d", config, "--set", 'varcomp.covariates=["covar1"]', "--set",
              'varcomp.traits=["trait3"]')
    assert _lod(results).shape[0] == 1


def test_an_upstream_rerun_marks_every_dependent_stale(analysis, tmp_path):
    config = analysis()
    ok("run", "pepis", config, "--set", 'run.stages=["genoprob"]')  # the pipeline: genoprob .. permutations
    results = config.parent / "results.h5"
    assert "complete" in ok("inspect", results).stdout
    ok("run", "genoprob", config, "--set", "genoprob.step=2")
    inspect = ok("inspect", results).stdout
    for stage in ("kinship", "varcomp", "scan1d", "scan2d", "permutations"):
        line = next(line for line in inspect.splitlines() if line.startswith(f"[{stage}]"))
        assert "stale" in line and "rerun" in line, line
    with pytest.raises(StaleResultError, match="'genoprob' was recomputed"):
        _lod(results)
    export = qtlhpc("export", results, "scan1d/lod")
    assert export.returncode == 2 and "stale" in export.stderr and "scan1d" in export.stderr
    assert "Traceback" not in export.stderr
    # the next stage refuses to read a stale one, naming the stage to rerun
    refused = qtlhpc("run", "scan1d", config, "--set", "genoprob.step=2")
    assert refused.returncode == 2 and "kinship" in refused.stderr and "stale" in refused.stderr
    report = qtlhpc("report", results, "-o", tmp_path / "report")
    assert report.returncode == 2 or "stale" in (tmp_path / "report" / "index.html").read_text()
    # rerunning the pipeline with the new grid makes everything current again
    ok("run", "pepis", config, "--set", "genoprob.step=2")
    assert "stale" not in ok("inspect", results).stdout
    assert _lod(results).shape[0] == 2


def test_nothing_finished_is_deleted_before_a_stage_knows_it_can_run(analysis):
    config = analysis(model="hk")
    ok("run", "genoprob", config)
    ok("run", "scan1d", config)
    results = config.parent / "results.h5"
    before = _lod(results)
    with h5py.File(results, "r") as h5:
        result_id = h5["scan1d"].attrs["result_id"]
    refused = qtlhpc("run", "scan1d", config, "--set", "genoprob.step=2")
    assert refused.returncode == 2
    assert "genoprob" in refused.stderr and "another configuration" in refused.stderr
    assert "qtlhpc run genoprob" in refused.stderr
    with h5py.File(results, "r") as h5:
        assert h5["scan1d"].attrs["status"] == "complete" and h5["scan1d"].attrs["result_id"] == result_id
    np.testing.assert_array_equal(_lod(results), before)
    # the advice works: rerun genoprob with the new grid, then the scan
    ok("run", "genoprob", config, "--set", "genoprob.step=2")
    ok("run", "scan1d", config, "--set", "genoprob.step=2")
    assert _lod(results).shape[1] != before.shape[1]
