"""The JSON report's documented schema (docs/report-schema.json) matches the Report model."""

from __future__ import annotations

import json
import os
from pathlib import Path

from ci_migrate.report import SCHEMA_VERSION, CheckResult, Finding, GraphFacts, Report

SCHEMA = Path(__file__).resolve().parent.parent / "docs" / "report-schema.json"


def current_schema() -> dict:
    schema = Report.model_json_schema()
    schema["$id"] = f"https://ci-migrate.dev/schemas/report-v{SCHEMA_VERSION}.json"
    schema["properties"]["verdict"] = {"enum": ["passed", "failed"], "title": "Verdict"}
    return schema


def test_documented_schema_is_current():
    if os.environ.get("UPDATE_GOLDEN") == "1":
        SCHEMA.write_text(json.dumps(current_schema(), indent=2) + "\n")
    assert json.loads(SCHEMA.read_text()) == current_schema(), "run with UPDATE_GOLDEN=1 to regenerate"


def test_report_round_trips_and_validates_against_the_schema():
    import jsonschema

    report = Report(version="0.1.0", checks=[CheckResult(
        name="graph", status="failed", summary="2 heads",
        findings=[Finding(check="graph", rule_id="CM101", severity="error", title="2 heads: a, b")],
        facts=GraphFacts(heads=["a", "b"]))])
    data = json.loads(report.to_json())
    jsonschema.validate(data, json.loads(SCHEMA.read_text()))
    assert data["verdict"] == "failed"
    again = Report.from_json(report.to_json())
    assert again == report and again.graph.heads == ["a", "b"] and again.exit_code == 1
