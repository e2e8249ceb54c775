"""The real CLI, in a GitHub/GitLab job environment, against the local forge server.

``ci-migrate check`` on the tutorial drift app (User.bio without a migration) creates one sticky
comment, a second run updates it in place, a fork PR gets only the summary and annotations,
``post`` publishes a saved report without importing the app, and a GitLab MR gets one note.
"""

from __future__ import annotations

import json
from pathlib import Path

from support import copy_app, run_cli

from .conftest import PR, REPO, pr_payload, write_event
from .forge import Forge


def outputs(path: str) -> dict[str, str]:
    """Parse a GITHUB_OUTPUT file (``name<<DELIM`` … ``DELIM`` blocks)."""
    lines, values, i = Path(path).read_text().splitlines(), {}, 0
    while i < len(lines):
        name, delim = lines[i].split("<<", 1)
        end = lines.index(delim, i + 1)
        values[name] = "\n".join(lines[i + 1:end])
        i = end + 1
    return values


def test_check_comments_once_then_updates(tmp_path: Path, forge: Forge, gh_env: dict[str, str]) -> None:
    app = copy_app("tutorial_drift", tmp_path)
    first = run_cli("check", "--app", "app.py", cwd=app, env=gh_env)
    assert first.code == 1, first.text
    (comment,) = forge.comments_on(REPO, PR)
    body = comment["body"]
    assert "adds column `user.bio` VARCHAR(250), nullable" in body
    assert "```mermaid" in body and "erDiagram" in body
    assert "<details>" in body and "```python" in body
    assert "<!--" in body  # the hidden sticky marker

    second = run_cli("check", "--app", "app.py", cwd=app, env=gh_env)
    assert second.code == 1
    assert len(forge.comments_on(REPO, PR)) == 1
    assert [c.method for c in forge.calls(path=f"/repos/{REPO}/issues")].count("POST") == 1
    assert forge.calls("PATCH"), "the second run updates the comment in place"

    summary = Path(gh_env["GITHUB_STEP_SUMMARY"]).read_text()
    assert "user.bio" in summary
    values = outputs(gh_env["GITHUB_OUTPUT"])
    assert values["verdict"] == "failed" and values["drift"] == "true" and values["heads"] == "94cb0f560e51"
    assert "::error" in first.out and "CM301" in first.out


def test_fork_pr_gets_summary_and_annotations_only(tmp_path: Path, forge: Forge,
                                                   gh_env: dict[str, str]) -> None:
    app = copy_app("tutorial_drift", tmp_path)
    env = dict(gh_env, GITHUB_EVENT_PATH=write_event(tmp_path, pr_payload(fork=True)), GITHUB_TOKEN="ro-token")
    result = run_cli("check", "--app", "app.py", cwd=app, env=env)
    assert result.code == 1  # the findings decide, not the missing comment
    assert forge.comments_on(REPO, PR) == []
    assert not forge.calls("POST")
    assert "fork" in result.err.lower()
    assert "user.bio" in Path(env["GITHUB_STEP_SUMMARY"]).read_text()
    assert "::error" in result.out


def test_post_publishes_a_saved_report_without_the_app(tmp_path: Path, forge: Forge,
                                                      gh_env: dict[str, str]) -> None:
    app = copy_app("tutorial_drift", tmp_path)
    saved = run_cli("check", "--app", "app.py", "--output", str(tmp_path / "report.json"), cwd=app)
    assert saved.code == 1
    empty = tmp_path / "elsewhere"  # no app, no migrations: post must not need them
    empty.mkdir()
    forge.pulls[(REPO, PR)] = "c0ffee" * 6 + "abcd"
    env = dict(gh_env, GITHUB_EVENT_NAME="workflow_run", GITHUB_EVENT_PATH=write_event(
        tmp_path, {"workflow_run": {"pull_requests": [], "head_sha": "c0ffee" * 6 + "abcd"}}))
    result = run_cli("post", "--report", str(tmp_path / "report.json"), "--pr-number", str(PR), cwd=empty, env=env)
    assert result.code == 0, result.text
    (comment,) = forge.comments_on(REPO, PR)
    assert "user.bio" in comment["body"]
    assert json.loads((tmp_path / "report.json").read_text())["verdict"] == "failed"


def test_gitlab_merge_request_note(tmp_path: Path, forge: Forge) -> None:
    app = copy_app("tutorial_drift", tmp_path)
    env = {"GITLAB_CI": "true", "CI_API_V4_URL": f"{forge.base}/api/v4", "CI_PROJECT_ID": "7",
           "CI_MERGE_REQUEST_IID": "3", "GITLAB_TOKEN": "rw-token", "CI_PIPELINE_SOURCE": "merge_request_event"}
    for _ in range(2):
        result = run_cli("check", "--app", "app.py", "--codequality", "gl-code-quality.json", cwd=app, env=env)
        assert result.code == 1, result.text
    (note,) = [n for n in forge.notes if n["noteable_iid"] == 3]
    assert "user.bio" in note["body"]
    quality = json.loads((app / "gl-code-quality.json").read_text())
    assert [q["check_name"] for q in quality] == ["CM301"]
