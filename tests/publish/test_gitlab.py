"""publish_gitlab against the local forge (Notes API), and the Code Quality report."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from ci_migrate.publish.codequality import codequality_entries
from ci_migrate.publish.common import comment_marker
from ci_migrate.publish.gitlab import publish_gitlab
from ci_migrate.publish.markdown import render_comment

from . import reports
from .forge import Forge, Token

PROJECT, MR, BOT = "7", 3, "project_7_bot"


@pytest.fixture
def gl_env(forge: Forge) -> dict[str, str]:
    forge.tokens["gl-token"] = Token(BOT)
    forge.tokens["gl-reporter"] = Token(BOT, writable=False)
    return {"GITLAB_CI": "true", "CI_API_V4_URL": f"{forge.base}/api/v4", "CI_PROJECT_ID": PROJECT,
            "CI_MERGE_REQUEST_IID": str(MR), "GITLAB_TOKEN": "gl-token"}


def notes(forge: Forge) -> list[dict]:
    return [n for n in forge.notes if n["noteable_iid"] == MR]


def test_creates_the_note(forge: Forge, gl_env: dict[str, str]) -> None:
    notices = publish_gitlab(reports.tutorial_drift(), env=gl_env)
    (note,) = notes(forge)
    assert note["body"] == render_comment(reports.tutorial_drift())
    assert [(r.method, r.path) for r in forge.requests] == [
        ("GET", "/api/v4/user"),
        ("GET", f"/api/v4/projects/{PROJECT}/merge_requests/{MR}/notes"),
        ("POST", f"/api/v4/projects/{PROJECT}/merge_requests/{MR}/notes"),
    ]
    assert forge.requests[0].headers["private-token"] == "gl-token"
    assert forge.calls("GET", "/notes")[0].query["per_page"] == "100"
    assert notices == [f"Posted the MR note (note {note['id']})."]


def test_updates_oldest_across_pages_skips_system_and_others(forge: Forge,
                                                             gl_env: dict[str, str]) -> None:
    marker = comment_marker(reports.tutorial_drift().key)
    oldest = forge.add_note(PROJECT, MR, f"{marker}\nrun 1", BOT)
    for i in range(120):
        forge.add_note(PROJECT, MR, f"discussion {i}", "alice")
    system = forge.add_note(PROJECT, MR, f"{marker}\nchanged the description", BOT, system=True)
    quoted = forge.add_note(PROJECT, MR, f"> {marker}\nquoted", "alice")
    dup = forge.add_note(PROJECT, MR, f"{marker}\nrun 2", BOT)

    publish_gitlab(reports.tutorial_drift(), env=gl_env)

    assert len(forge.calls("GET", "/notes")) == 2  # followed the Link header
    assert [r.path.rsplit("/", 1)[-1] for r in forge.calls("PUT")] == [str(oldest["id"])]
    assert [r.path.rsplit("/", 1)[-1] for r in forge.calls("DELETE")] == [str(dup["id"])]
    assert oldest["body"] == render_comment(reports.tutorial_drift())
    assert system in forge.notes and quoted in forge.notes


def test_on_change_leaves_identical_note(forge: Forge, gl_env: dict[str, str]) -> None:
    forge.add_note(PROJECT, MR, render_comment(reports.passing()), BOT)
    notices = publish_gitlab(reports.passing(), env=gl_env, comment="on-change")
    assert not forge.calls("PUT") and notices[0].startswith("MR note unchanged")


def test_forbidden_is_a_notice(forge: Forge, gl_env: dict[str, str]) -> None:
    gl_env["GITLAB_TOKEN"] = "gl-reporter"
    notices = publish_gitlab(reports.tutorial_drift(), env=gl_env)
    assert notices[0].startswith("The token may not write MR notes (403")
    assert notes(forge) == []


def test_not_an_mr_pipeline_or_no_token(forge: Forge, gl_env: dict[str, str],
                                        tmp_path: Path) -> None:
    no_mr = {k: v for k, v in gl_env.items() if k != "CI_MERGE_REQUEST_IID"}
    cq = tmp_path / "gl-code-quality-report.json"
    assert "merge_request_event" in publish_gitlab(reports.tutorial_drift(), env=no_mr,
                                                   codequality_path=str(cq))[0]
    assert json.loads(cq.read_text())[0]["check_name"] == "CM301"
    no_token = {k: v for k, v in gl_env.items() if k != "GITLAB_TOKEN"}
    assert "CI_JOB_TOKEN cannot write notes" in publish_gitlab(reports.passing(), env=no_token)[0]
    assert forge.requests == []


def test_codequality_entries() -> None:
    report = reports.many_findings(30)
    for f in report.findings[:5]:  # same identity five times
        f.rule_id, f.title, f.file, f.revision = "CM400", "same", "a.py", None
    entries = codequality_entries(report)
    assert len(entries) == 30
    assert len({e["fingerprint"] for e in entries}) == 30
    assert {e["severity"] for e in entries} == {"critical", "major", "info"}
    first = entries[0]
    assert first == {"description": "CM400 same: Statement 0 rewrites the table.",
                     "check_name": "CM400", "fingerprint": first["fingerprint"],
                     "severity": "critical", "location": {"path": "a.py", "lines": {"begin": 1}}}


def test_codequality_fingerprints_are_stable_across_runs() -> None:
    a = codequality_entries(reports.tutorial_drift())
    report = reports.tutorial_drift()
    report.checks[2].findings[0].line = 40  # code above moved
    assert [e["fingerprint"] for e in a] == [e["fingerprint"] for e in codequality_entries(report)]
