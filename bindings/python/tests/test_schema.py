"""The case format's JSON Schema: one schema for the reader, the docs and Python."""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import jsonschema
import pytest

import volta

ROOT = Path(__file__).resolve().parents[3]
CASES = ROOT / "datasets" / "cases"


@pytest.fixture(scope="module")
def validator() -> jsonschema.Draft202012Validator:
    schema = volta.case_schema()
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def _document(path: Path) -> dict:
    text = path.read_text()
    return json.loads(text) if path.suffix == ".json" else tomllib.loads(text)


def test_the_published_schema_is_the_one_the_reader_is_built_from():
    published = json.loads((ROOT / "docs" / "case.schema.json").read_text())
    assert published == volta.case_schema(), "regenerate docs/case.schema.json: `volta schema > docs/case.schema.json`"


@pytest.mark.parametrize(
    "case", ["campus.toml", "islanded.toml", "benchmarks/kazarlis10.toml", "infeasible/short_heat.toml"]
)
def test_every_example_case_matches_the_schema(validator, case):
    errors = [e.message for e in validator.iter_errors(_document(CASES / case))]
    assert errors == []


def test_the_documented_example_matches_the_schema(validator):
    doc = (ROOT / "docs" / "case-format.md").read_text()
    start = doc.index("```toml\n") + len("```toml\n")
    example = tomllib.loads(doc[start : doc.index("```", start)])
    assert [e.message for e in validator.iter_errors(example)] == []


def test_a_misspelt_field_and_a_wrong_type_are_found_with_their_paths(validator):
    case = _document(CASES / "campus.toml")
    unit = next(a for a in case["assets"] if "capacity_kw" in a)
    unit["capacity_kv"] = unit.pop("capacity_kw")
    case["time"]["steps"] = "24"
    found = {tuple(e.absolute_path) for e in validator.iter_errors(case)}
    assert ("time", "steps") in found
    assert any(path[:1] == ("assets",) for path in found), found


@pytest.mark.parametrize(
    "case", sorted(p.name for p in (CASES / "invalid").iterdir() if p.suffix in (".toml", ".json"))
)
def test_what_the_schema_refuses_the_reader_refuses(validator, case):
    """The schema describes shape only: it may accept a case the reader
    refuses (a rule between fields), never refuse one the reader accepts."""
    path = CASES / "invalid" / case
    try:
        document = _document(path)
    except (tomllib.TOMLDecodeError, json.JSONDecodeError, UnicodeDecodeError):
        return
    if next(validator.iter_errors(document), None) is not None:
        with pytest.raises(volta.CaseError):
            volta.Case.from_file(path)
