"""publish_github against the local forge: the sticky comment and the runner's files."""

from __future__ import annotations

import io
import json
import re
from pathlib import Path

import pytest

from ci_migrate.publish.common import comment_marker
from ci_migrate.publish.github import COMPACT_LIMIT, publish_github
from ci_migrate.publish.markdown import render_comment

from . import reports
from .conftest import PR, REPO, pr_payload, write_event
from .forge import Forge, Token

BOT = "github-actions[bot]"
HEAD = "feedc0ffee00" + "1" * 28  # the commit the triggering workflow run analysed


def run(env: dict[str, str], report=None, **kw) -> tuple[list[str], str]:
    out = io.StringIO()
    notices = publish_github(report or reports.tutorial_drift(), env=env, out=out, **kw)
    return notices, out.getvalue()


def marker() -> str:
    return comment_marker(reports.tutorial_drift().key)


def test_first_run_creates_one_comment(forge: Forge, gh_env: dict[str, str]) -> None:
    notices, _ = run(gh_env)
    comments = forge.comments_on(REPO, PR)
    assert len(comments) == 1
    assert comments[0]["body"] == render_comment(reports.tutorial_drift())
    assert comments[0]["body"].startswith(marker())
    assert [(r.method, r.path) for r in forge.requests] == [
        ("GET", f"/repos/{REPO}/issues/{PR}/comments"),
        ("POST", f"/repos/{REPO}/issues/{PR}/comments"),
    ]
    assert forge.calls("GET")[0].query == {"per_page": "100"}
    assert forge.calls("POST", "/comments")[0].headers["authorization"] == "token rw-token"
    assert notices == [f"Posted the PR comment: {comments[0]['html_url']}"]


def test_updates_in_place_across_pages_and_ignores_others(forge: Forge,
                                                          gh_env: dict[str, str]) -> None:
    for i in range(150):
        forge.add_comment(REPO, PR, f"review comment {i}", "alice")
    forge.add_comment(REPO, PR, f"{marker()}\nquoted by a person", "alice")
    forge.add_comment(REPO, PR, comment_marker("another:key") + "\nother app", BOT)
    ours = forge.add_comment(REPO, PR, f"{marker()}\nold body", BOT)  # on page 2

    notices, _ = run(gh_env)

    pages = forge.calls("GET", "/comments")
    assert [p.query.get("page") for p in pages] == [None, "2"]
    assert [(r.method, r.path) for r in forge.requests if r.method in ("PATCH", "POST", "DELETE")
            and r.path != "/graphql"] == [("PATCH", f"/repos/{REPO}/issues/comments/{ours['id']}")]
    assert ours["body"] == render_comment(reports.tutorial_drift())
    bodies = [c["body"] for c in forge.comments_on(REPO, PR)]
    assert f"{marker()}\nquoted by a person" in bodies
    assert comment_marker("another:key") + "\nother app" in bodies
    assert notices[0].startswith("Updated the PR comment: ")


def test_duplicates_from_concurrent_runs_keep_oldest(forge: Forge,
                                                     gh_env: dict[str, str]) -> None:
    oldest = forge.add_comment(REPO, PR, f"{marker()}\nrun 1", BOT)
    dup1 = forge.add_comment(REPO, PR, f"{marker()}\nrun 2", BOT)
    dup2 = forge.add_comment(REPO, PR, f"{marker()}\nrun 3", BOT)

    run(gh_env)

    assert [c["id"] for c in forge.comments_on(REPO, PR)] == [oldest["id"]]
    assert [r.path.rsplit("/", 1)[-1] for r in forge.calls("DELETE")] == [str(dup1["id"]),
                                                                          str(dup2["id"])]
    assert forge.calls("PATCH")[0].path.endswith(f"/{oldest['id']}")


def test_on_change_skips_an_identical_body(forge: Forge, gh_env: dict[str, str]) -> None:
    forge.add_comment(REPO, PR, render_comment(reports.tutorial_drift()), BOT)
    notices, _ = run(gh_env, comment="on-change")
    assert not forge.calls("PATCH") and not forge.calls("POST", "/comments")
    assert notices[0].startswith("PR comment unchanged: ")


def test_on_change_updates_a_changed_body(forge: Forge, gh_env: dict[str, str]) -> None:
    forge.add_comment(REPO, PR, render_comment(reports.passing()), BOT)
    run(gh_env, report=reports.passing(), comment="on-change")
    assert not forge.calls("PATCH")
    run(gh_env, comment="on-change")  # same key, new content
    assert len(forge.calls("PATCH")) == 1


def test_always_updates_even_when_unchanged(forge: Forge, gh_env: dict[str, str]) -> None:
    forge.add_comment(REPO, PR, render_comment(reports.tutorial_drift()), BOT)
    run(gh_env, comment="always")
    assert len(forge.calls("PATCH")) == 1


def test_never_makes_no_request_but_writes_files(forge: Forge, gh_env: dict[str, str]) -> None:
    notices, _ = run(gh_env, comment="never")
    assert notices == [] and forge.requests == []
    assert "ci-migrate check: 1 error" in Path(gh_env["GITHUB_STEP_SUMMARY"]).read_text()


def test_unknown_comment_mode_is_a_usage_error(gh_env: dict[str, str]) -> None:
    with pytest.raises(ValueError, match="on-change"):
        run(gh_env, comment="sometimes")


@pytest.mark.parametrize("event", ["push", "merge_group", "schedule"])
def test_no_comment_outside_pull_requests(forge: Forge, gh_env: dict[str, str], tmp_path: Path,
                                          event: str) -> None:
    gh_env.update(GITHUB_EVENT_NAME=event, GITHUB_EVENT_PATH=write_event(tmp_path, {"ref": "x"}))
    notices, _ = run(gh_env)
    assert forge.requests == []
    assert notices == [f"{event} is not a pull request event: no PR comment (the job summary "
                       "has the report)."]
    assert Path(gh_env["GITHUB_STEP_SUMMARY"]).read_text()


def test_issue_comment_on_a_pr(forge: Forge, gh_env: dict[str, str], tmp_path: Path) -> None:
    payload = {"issue": {"number": 7, "pull_request": {"url": "x"}}, "comment": {"body": "/check"}}
    gh_env.update(GITHUB_EVENT_NAME="issue_comment", GITHUB_EVENT_PATH=write_event(tmp_path, payload))
    run(gh_env)
    assert len(forge.comments_on(REPO, 7)) == 1


def test_issue_comment_on_an_issue(forge: Forge, gh_env: dict[str, str], tmp_path: Path) -> None:
    gh_env.update(GITHUB_EVENT_NAME="issue_comment",
                  GITHUB_EVENT_PATH=write_event(tmp_path, {"issue": {"number": 7}}))
    notices, _ = run(gh_env)
    assert forge.requests == [] and "not a pull request" in notices[0]


def test_workflow_run_uses_its_pull_requests(forge: Forge, gh_env: dict[str, str],
                                             tmp_path: Path) -> None:
    payload = {"workflow_run": {"pull_requests": [{"number": 9}], "head_sha": HEAD}}
    gh_env.update(GITHUB_EVENT_NAME="workflow_run", GITHUB_EVENT_PATH=write_event(tmp_path, payload))
    run(gh_env)
    assert len(forge.comments_on(REPO, 9)) == 1
    assert not forge.calls(path="/pulls/"), "a number GitHub gave needs no check"


def test_workflow_run_from_a_fork_reads_pr_number_beside_the_report(
        forge: Forge, gh_env: dict[str, str], tmp_path: Path) -> None:
    artifact = tmp_path / "artifact"
    artifact.mkdir()
    (artifact / "report.json").write_text(reports.tutorial_drift().to_json())
    (artifact / "pr-number").write_text("11\n")
    forge.pulls[(REPO, 11)] = HEAD
    gh_env.update(GITHUB_EVENT_NAME="workflow_run", GITHUB_EVENT_PATH=write_event(
        tmp_path, {"workflow_run": {"pull_requests": [], "head_sha": HEAD}}))
    run(gh_env, report_path=str(artifact / "report.json"))
    assert len(forge.comments_on(REPO, 11)) == 1
    assert forge.calls("GET", f"/repos/{REPO}/pulls/11"), "the number was checked against the PR's head"


@pytest.mark.parametrize("pr_number, pulls, head_sha, why", [
    ("1", {1: "0123456789ab" + "c" * 28}, HEAD,
     "its head commit 0123456789ab is not the commit the triggering workflow run analysed (feedc0ffee00)"),
    ("7", {}, HEAD, "it cannot be read (404)"),
    ("11", {11: HEAD}, None, "the workflow_run event has no head_sha to check the number against"),
])
def test_workflow_run_refuses_a_pr_number_whose_head_is_not_the_runs(
        forge: Forge, gh_env: dict[str, str], tmp_path: Path, pr_number, pulls, head_sha, why) -> None:
    """A fork's workflow writes pr-number: `1` must not put the report on issue #1."""
    (tmp_path / "report.json").write_text(reports.tutorial_drift().to_json())
    (tmp_path / "pr-number").write_text(pr_number)
    forge.pulls.update({(REPO, n): sha for n, sha in pulls.items()})
    run_ = {"pull_requests": [], **({"head_sha": head_sha} if head_sha else {})}
    gh_env.update(GITHUB_EVENT_NAME="workflow_run", GITHUB_EVENT_PATH=write_event(tmp_path, {"workflow_run": run_}))
    notices, _ = run(gh_env, report_path=str(tmp_path / "report.json"))
    assert notices == [f"Refusing to comment on PR #{pr_number}: {why}. The number comes from the pr-number file (or "
                       "--pr-number), which the pull request's own workflow writes; a fork can put any number "
                       "there. No PR comment was posted."]
    assert forge.comments == [] and not forge.calls("POST") and not forge.calls(path="/comments")
    notices, _ = run(gh_env, pr_number=int(pr_number))  # --pr-number is checked the same way
    assert notices[0].startswith(f"Refusing to comment on PR #{pr_number}: ") and forge.comments == []


def test_workflow_run_without_any_pr_number(forge: Forge, gh_env: dict[str, str],
                                            tmp_path: Path) -> None:
    gh_env.update(GITHUB_EVENT_NAME="workflow_run",
                  GITHUB_EVENT_PATH=write_event(tmp_path, {"workflow_run": {"pull_requests": []}}))
    notices, _ = run(gh_env, report_path=str(tmp_path / "report.json"))
    assert forge.requests == [] and "pr-number" in notices[0]


def test_explicit_pr_number_wins(forge: Forge, gh_env: dict[str, str]) -> None:
    run(gh_env, pr_number=5)
    assert len(forge.comments_on(REPO, 5)) == 1 and not forge.comments_on(REPO, PR)


def test_fork_pr_skips_the_comment_but_writes_summary_and_annotations(
        forge: Forge, gh_env: dict[str, str], tmp_path: Path) -> None:
    gh_env["GITHUB_EVENT_PATH"] = write_event(tmp_path, pr_payload(fork=True))
    gh_env["GITHUB_TOKEN"] = "ro-token"
    notices, out = run(gh_env)
    assert forge.requests == []
    assert "fork" in notices[0] and "workflow_run" in notices[0]
    assert "## ❌ ci-migrate check: 1 error" in Path(gh_env["GITHUB_STEP_SUMMARY"]).read_text()
    assert "::error file=app.py,line=12," in out


def test_pull_request_target_from_a_fork_comments(forge: Forge, gh_env: dict[str, str],
                                                  tmp_path: Path) -> None:
    gh_env.update(GITHUB_EVENT_NAME="pull_request_target",
                  GITHUB_EVENT_PATH=write_event(tmp_path, pr_payload(fork=True)))
    run(gh_env)
    assert len(forge.comments_on(REPO, PR)) == 1


def test_read_only_token_is_a_notice_not_an_error(forge: Forge, gh_env: dict[str, str]) -> None:
    gh_env["GITHUB_TOKEN"] = "ro-token"
    notices, _ = run(gh_env)
    assert len(forge.calls("POST", "/comments")) == 1 and not forge.comments_on(REPO, PR)
    assert notices == [
        "The token may not write PR comments (403 Resource not accessible by integration); no PR "
        "comment was posted. Grant `permissions: pull-requests: write` to the job (repositories "
        "created since 2023 default to a read-only GITHUB_TOKEN). The job summary and "
        "annotations have the report."]
    assert Path(gh_env["GITHUB_STEP_SUMMARY"]).read_text()


def test_bad_token_and_missing_token(forge: Forge, gh_env: dict[str, str]) -> None:
    gh_env["GITHUB_TOKEN"] = "expired"
    notices, _ = run(gh_env)
    assert notices[0].startswith("The token may not write PR comments (401 Bad credentials)")
    del gh_env["GITHUB_TOKEN"]
    forge.requests.clear()
    notices, _ = run(gh_env)
    assert forge.requests == [] and notices[0].startswith("No GITHUB_TOKEN")


def test_too_long_body_is_retried_compact(forge: Forge, gh_env: dict[str, str]) -> None:
    forge.max_body = 30_000  # the server counts differently from us
    notices, _ = run(gh_env, report=reports.huge())
    posts = forge.calls("POST", "/comments")
    assert [len(p.body["body"]) > 30_000 for p in posts] == [True, False]
    assert len(posts[1].body["body"]) <= COMPACT_LIMIT
    (comment,) = forge.comments_on(REPO, PR)
    assert "✂️ Shortened to stay under 16,000 characters" in comment["body"]
    assert notices[0].startswith("Posted the PR comment")


def test_enterprise_server_api_url(forge: Forge, gh_env: dict[str, str]) -> None:
    gh_env["GITHUB_API_URL"] = forge.base + "/api/v3"
    forge.api_prefix = "/api/v3"
    ours = forge.add_comment(REPO, PR, f"{marker()}\nold", BOT)
    run(gh_env)
    assert [r.path for r in forge.requests] == [
        f"/api/v3/repos/{REPO}/issues/{PR}/comments", "/api/graphql",
        f"/api/v3/repos/{REPO}/issues/comments/{ours['id']}"]


def test_app_token_login_from_graphql_viewer(forge: Forge, gh_env: dict[str, str]) -> None:
    forge.tokens["app-token"] = Token("migrations-app[bot]")
    ours = forge.add_comment(REPO, PR, f"{marker()}\nold", "migrations-app[bot]")
    forge.add_comment(REPO, PR, f"{marker()}\nby the default token", BOT)
    gh_env["GITHUB_TOKEN"] = "app-token"
    run(gh_env)
    assert [r.path.rsplit("/", 1)[-1] for r in forge.calls("PATCH")] == [str(ours["id"])]
    assert not forge.calls("DELETE")


# ---------------------------------------------------------------- runner files and commands


def test_masks_come_before_anything_else(gh_env: dict[str, str]) -> None:
    _, out = run(gh_env, comment="never")
    assert out.splitlines()[0] == "::add-mask::rw-token"


def test_summary_is_the_comment_template_without_marker(gh_env: dict[str, str]) -> None:
    Path(gh_env["GITHUB_STEP_SUMMARY"]).write_text("earlier step output\n")
    run(gh_env, comment="never")
    text = Path(gh_env["GITHUB_STEP_SUMMARY"]).read_text()
    assert text.startswith("earlier step output\n## ❌ ci-migrate check: 1 error")
    assert "<!-- ci-migrate" not in text


def test_summary_respects_the_remaining_budget(gh_env: dict[str, str]) -> None:
    Path(gh_env["GITHUB_STEP_SUMMARY"]).write_text("x" * (1_048_576 - 20_000))
    run(gh_env, report=reports.huge(), comment="never")
    assert Path(gh_env["GITHUB_STEP_SUMMARY"]).stat().st_size <= 1_048_576


def parse_outputs(text: str) -> dict[str, str]:
    """Parse the ``name<<DELIM`` file format the runner reads."""
    values, lines = {}, iter(text.splitlines())
    for line in lines:
        name, delim = line.split("<<", 1)
        assert re.fullmatch(r"ghadelimiter_[0-9a-f-]{36}", delim)
        body = []
        for value_line in lines:
            if value_line == delim:
                break
            body.append(value_line)
        values[name] = "\n".join(body)
    return values


def test_outputs(gh_env: dict[str, str]) -> None:
    run(gh_env, comment="never", report_path="out/report.json")
    assert parse_outputs(Path(gh_env["GITHUB_OUTPUT"]).read_text()) == {
        "verdict": "failed", "heads": reports.INITIAL, "pending-count": "", "drift": "true",
        "findings": "1", "report-path": "out/report.json"}
    Path(gh_env["GITHUB_OUTPUT"]).write_text("")
    run(gh_env, report=reports.two_heads(), comment="never")
    outputs = parse_outputs(Path(gh_env["GITHUB_OUTPUT"]).read_text())
    assert outputs["heads"] == "a1 b2" and outputs["drift"] == ""
    Path(gh_env["GITHUB_OUTPUT"]).write_text("")
    run(gh_env, report=reports.plan(), comment="never")
    outputs = parse_outputs(Path(gh_env["GITHUB_OUTPUT"]).read_text())
    assert outputs["pending-count"] == "3" and outputs["verdict"] == "passed"


def test_annotations_capped_most_severe_first(gh_env: dict[str, str]) -> None:
    _, out = run(gh_env, report=reports.many_findings(30), comment="never")
    lines = [line for line in out.splitlines() if not line.startswith("::add-mask::")]
    kinds = [line.split(" ", 1)[0].split("::")[1] for line in lines]
    assert kinds == ["error"] * 10 + ["warning"] * 10 + ["notice"] * 6
    assert lines[0].startswith("::error file=migrations/versions/r00_step.py,line=1,"
                               "title=CM400 Risky operation 0::")
    assert lines[9] == "::error title=ci-migrate::3 more errors in the job summary."
    assert lines[19] == "::warning title=ci-migrate::3 more warnings in the job summary."


def test_annotation_escaping(gh_env: dict[str, str]) -> None:
    report = reports.tutorial_drift()
    finding = report.checks[2].findings[0]
    finding.title, finding.message = "a, b: 100%", "line 1\nline 2"
    _, out = run(gh_env, report=report, comment="never")
    assert ("::error file=app.py,line=12,title=CM301 a%2C b%3A 100%25::line 1%0Aline 2%0A"
            "Fix: flask db migrate -m \"add user.bio\"") in out.splitlines()


def test_report_json_round_trip_posts_the_same(forge: Forge, gh_env: dict[str, str],
                                               tmp_path: Path) -> None:
    """``ci-migrate post`` renders a saved report: the body equals the one of the live run."""
    from ci_migrate.report import Report

    saved = Report.from_json(reports.tutorial_drift().to_json())
    run(gh_env, report=saved)
    assert forge.comments_on(REPO, PR)[0]["body"] == render_comment(reports.tutorial_drift())
    assert json.loads(saved.to_json())["verdict"] == "failed"
