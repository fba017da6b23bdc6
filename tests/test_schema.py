"""The results schema registry and its docs page."""

import subprocess
import sys
from pathlib import Path

import pytest

from qtlhpc import schema

REPO = Path(__file__).resolve().parents[1]
PAGE = REPO / "docs" / "results-schema.md"


@pytest.fixture
def isolated_schema():
    """Declarations made by a test are removed afterwards."""
    saved = dict(schema._REGISTRY)
    saved_dims = dict(schema.DIMENSIONS)
    saved_columns = set(schema.COLUMN_DIMENSIONS)
    yield schema
    schema._REGISTRY.clear()
    schema._REGISTRY.update(saved)
    schema.DIMENSIONS.clear()
    schema.DIMENSIONS.update(saved_dims)
    schema.COLUMN_DIMENSIONS.clear()
    schema.COLUMN_DIMENSIONS.update(saved_columns)


def test_declare_and_get(isolated_schema):
    variable = schema.declare("schematest", "lod", ("trait", "position"), "float64", "LOD", "a test score")
    assert variable.path == "schematest/lod"
    assert schema.get("schematest/lod") is variable
    assert variable.dims == ("trait", "position") and variable.ndim == 2
    assert variable.unit == "LOD" and variable.description == "a test score"
    assert "schematest" in schema.stages()
    assert schema.variables("schematest") == [variable]
    with pytest.raises(Exception):  # frozen dataclass
        variable.unit = "cM"


def test_duplicate_declaration_refused(isolated_schema):
    schema.declare("schematest", "lod", ("trait",), "float64", "LOD", "a test score")
    with pytest.raises(ValueError, match="already declared"):
        schema.declare("schematest", "lod", ("trait",), "float32", "LOD", "another score")


def test_unknown_name_suggests_nearest(isolated_schema):
    schema.declare("schematest", "position_names", ("position",), "str", "", "names")
    with pytest.raises(KeyError) as caught:
        schema.get("schematest/positon_names")
    assert "did you mean 'schematest/position_names'" in str(caught.value)
    with pytest.raises(KeyError, match="did you mean 'schematest'"):
        schema.get_stage("schematets")


@pytest.mark.parametrize("dims,dtype,labels_for,message", [
    (("traits",), "float64", None, "undeclared dimension"),
    (("trait",), "float16", None, "dtype"),
    (("trait", "position"), "str", "trait", "labels dataset"),
])
def test_bad_declarations_refused(isolated_schema, dims, dtype, labels_for, message):
    with pytest.raises(ValueError, match=message):
        schema.declare("schematest", "x", dims, dtype, "", "something", labels_for=labels_for)


def test_dimensions_extendable(isolated_schema):
    assert {"individual", "marker", "position", "genotype", "trait", "covariate", "kinship", "kinship_row",
            "pair", "permutation", "chromosome"} <= set(schema.DIMENSIONS)
    schema.declare_dimension("module", "a gene module", as_columns=True)
    assert "module" in schema.COLUMN_DIMENSIONS
    schema.declare("schematest", "sizes", ("module",), "int64", "", "genes per module")
    with pytest.raises(ValueError, match="already declared"):
        schema.declare_dimension("module", "something else")


def test_labels_prefer_same_stage(isolated_schema):
    schema.declare("schematest", "position_names", ("position",), "str", "", "names", labels_for="position")
    found = schema.labels_for("position", "schematest")
    assert found[0].path == "schematest/position_names"
    assert "genoprob/position_names" in [v.path for v in found]


def test_markdown_has_a_row_per_declared_dataset(isolated_schema):
    schema.declare("schematest", "lod", ("trait", "position"), "float64", "LOD", "a score | with a pipe")
    page = schema.render_markdown()
    assert "## Stage `schematest`" in page
    assert "| `lod` | (trait, position) | float64 | LOD | a score \\| with a pipe |" in page
    for variable in schema.variables():
        assert f"| `{variable.name}` |" in page
    for attribute in schema.STAGE_ATTRIBUTES:
        assert f"| `{attribute}` |" in page


def run_schema_cli(*args):
    return subprocess.run([sys.executable, "-m", "qtlhpc.schema", *args], cwd=REPO, capture_output=True, text=True)


def test_docs_page_in_sync_with_code():
    proc = run_schema_cli("--check", str(PAGE))
    assert proc.returncode == 0, f"{PAGE} is stale: {proc.stderr}"


def test_check_detects_a_stale_page(tmp_path):
    stale = tmp_path / "page.md"
    stale.write_text(PAGE.read_text(encoding="utf-8").replace("float64", "float32", 1), encoding="utf-8")
    proc = run_schema_cli("--check", str(stale))
    assert proc.returncode == 1
    assert "--write" in proc.stderr
    assert run_schema_cli("--write", str(stale)).returncode == 0
    assert run_schema_cli("--check", str(stale)).returncode == 0
