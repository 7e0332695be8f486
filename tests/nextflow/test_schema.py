"""nextflow_schema.json (nf-core schema, JSON Schema draft 2020-12) matches nextflow.config's params
one to one, defaults included, and README's parameter table is generated from it."""
import json
import re
import subprocess
import sys

import pytest

from nf_parse import ROOT, config_params, strip_comments

SCHEMA_PATH = ROOT / "nextflow_schema.json"
DRAFT_2020_12 = "https://json-schema.org/draft/2020-12/schema"
JSON_TYPES = {"string": str, "boolean": bool, "integer": int, "number": (int, float)}


@pytest.fixture(scope="module")
def schema():
    return json.loads(SCHEMA_PATH.read_text())


def properties(schema):
    """{param: property} over the schema's $defs groups (and top-level properties, if any)."""
    found = {}
    for group in [schema] + list(schema.get("$defs", {}).values()):
        for name, prop in group.get("properties", {}).items():
            assert name not in found, f"nextflow_schema.json: {name} is in two groups"
            found[name] = prop
    return found


def test_schema_shape(schema):
    assert schema["$schema"] == DRAFT_2020_12
    assert schema["type"] == "object" and "definitions" not in schema, "nf-core 2020-12 uses $defs"
    refs = [entry["$ref"] for entry in schema["allOf"]]
    assert refs == [f"#/$defs/{name}" for name in schema["$defs"]], "allOf names every $defs group once"
    for name, group in schema["$defs"].items():
        assert group["title"] and group["description"] and group["type"] == "object", name


def test_every_config_param_is_in_the_schema(schema):
    missing = set(config_params()) - set(properties(schema))
    assert not missing, f"params of nextflow.config missing from nextflow_schema.json: {sorted(missing)}"


def test_every_schema_property_is_a_config_param(schema):
    extra = set(properties(schema)) - set(config_params())
    assert not extra, f"nextflow_schema.json describes params nextflow.config lacks: {sorted(extra)}"


@pytest.mark.parametrize("name", sorted(config_params()))
def test_default_and_type_match_config(schema, name):
    """A null param has no schema default (nf-core's rule); any other has the same default, of
    the schema's type."""
    prop, value = properties(schema).get(name), config_params()[name]
    if prop is None:
        pytest.skip(f"{name} is not in the schema (reported by test_every_config_param_is_in_the_schema)")
    assert prop.get("description"), f"{name}: a description"
    if value is None:
        assert "default" not in prop, f"{name}: null in nextflow.config, so no default in the schema"
        return
    assert "default" in prop, f"{name}: nextflow.config sets {value!r}; the schema has no default"
    assert prop["default"] == value and type(prop["default"]) is type(value), \
        f"{name}: schema default {prop['default']!r}, nextflow.config {value!r}"
    expected = JSON_TYPES[prop["type"]]
    assert isinstance(value, expected) and not (isinstance(value, bool) and prop["type"] != "boolean"), \
        f"{name}: {value!r} is not of schema type {prop['type']}"


def test_lineage_choices_are_the_model_lists(schema):
    from helixtune import models

    assert properties(schema)["lineage"]["enum"] == models.lineages(models.load_model_list())


def test_schema_is_valid_draft_2020_12(schema):
    jsonschema = pytest.importorskip(
        "jsonschema", reason="the jsonschema package is not installed in .venv: the schema is not "
                             "checked against the draft 2020-12 meta-schema")
    jsonschema.Draft202012Validator.check_schema(schema)
    defaults = {name: value for name, value in config_params().items() if value is not None}
    jsonschema.Draft202012Validator(schema).validate(defaults)


def test_readme_parameter_table_is_current():
    out = subprocess.run([sys.executable, str(ROOT / ".ci" / "schema_usage.py"), "--check"],
                         capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


def test_every_param_the_pipeline_reads_is_declared():
    """params.X in main.nf, subworkflows/, workflows/ and conf/ is a param of nextflow.config (so
    it is in the schema too)."""
    files = [*ROOT.glob("*.nf"), *ROOT.glob("workflows/**/*.nf"), *ROOT.glob("subworkflows/**/*.nf"),
             *ROOT.glob("conf/*.config")]
    used = {name for path in files for name in re.findall(r"\bparams\.(\w+)", strip_comments(path.read_text()))}
    undeclared = used - set(config_params())
    assert not undeclared, f"params read by the pipeline but not declared in nextflow.config: {sorted(undeclared)}"
