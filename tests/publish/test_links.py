"""Where links point: rule pages (package metadata, `rules-url`) and revision files at the PR's head commit."""

from __future__ import annotations

import io
from pathlib import Path

from ci_migrate.publish.github import publish_github
from ci_migrate.publish.links import Links, default_links, links_for

from . import reports
from .conftest import PR, REPO, pr_payload, write_event
from .forge import Forge

HEAD = "0123456789abcdef0123456789abcdef01234567"
RULES = default_links().rules


def test_github_pull_request_links_files_at_the_head_commit(tmp_path: Path) -> None:
    payload = pr_payload()
    payload["pull_request"]["head"]["sha"] = HEAD
    payload["repository"] = {"html_url": "https://ghe.example.com/octo/shop"}
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request", "GITHUB_SHA": "merge-commit",
           "GITHUB_EVENT_PATH": write_event(tmp_path, payload), "GITHUB_REPOSITORY": REPO}
    links = links_for(env)
    assert links.file("migrations/versions/a b.py", 22) == (
        f"https://ghe.example.com/octo/shop/blob/{HEAD}/migrations/versions/a%20b.py#L22")
    assert links.rule("CM504") == f"{RULES}CM504.md"
    # without repository.html_url in the payload: GITHUB_SERVER_URL + GITHUB_REPOSITORY
    del payload["repository"]
    env["GITHUB_EVENT_PATH"] = write_event(tmp_path, payload)
    env["GITHUB_SERVER_URL"] = "https://github.example.net"
    assert links_for(env).source == f"https://github.example.net/{REPO}/blob/{HEAD}/"


def test_github_without_a_head_commit_links_no_file(tmp_path: Path) -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "pull_request", "GITHUB_SHA": "merge-commit",
           "GITHUB_EVENT_PATH": write_event(tmp_path, pr_payload()), "GITHUB_REPOSITORY": REPO}
    assert links_for(env).file("app.py", 3) is None  # a PR's GITHUB_SHA is a merge commit
    push = {**env, "GITHUB_EVENT_NAME": "push", "GITHUB_EVENT_PATH": write_event(tmp_path, {})}
    assert links_for(push).file("app.py", 3) == f"https://github.com/{REPO}/blob/merge-commit/app.py#L3"


def test_workflow_run_links_its_head_sha(tmp_path: Path) -> None:
    env = {"GITHUB_ACTIONS": "true", "GITHUB_EVENT_NAME": "workflow_run", "GITHUB_REPOSITORY": REPO,
           "GITHUB_EVENT_PATH": write_event(tmp_path, {"workflow_run": {"head_sha": HEAD}})}
    assert links_for(env).source == f"https://github.com/{REPO}/blob/{HEAD}/"


def test_gitlab_links_the_merge_request_source() -> None:
    env = {"GITLAB_CI": "true", "CI_PROJECT_URL": "https://gitlab.example.com/g/shop", "CI_COMMIT_SHA": HEAD}
    assert links_for(env).file("m/v/x.py", 5) == f"https://gitlab.example.com/g/shop/-/blob/{HEAD}/m/v/x.py#L5"
    fork = {**env, "CI_MERGE_REQUEST_SOURCE_PROJECT_URL": "https://gitlab.example.com/me/shop"}
    assert links_for(fork).source == f"https://gitlab.example.com/me/shop/-/blob/{HEAD}/"


def test_rules_url_overrides_the_metadata_and_no_ci_no_file_links() -> None:
    links = links_for({}, "https://mirror.example/ci-migrate/rules")
    assert links.rule("CM101") == "https://mirror.example/ci-migrate/rules/CM101.md"
    assert links.file("app.py", 1) is None
    assert Links().rule("CM101") is None


def test_comment_on_a_pull_request_links_each_finding_to_its_line(forge: Forge, gh_env: dict[str, str],
                                                                   tmp_path: Path) -> None:
    payload = pr_payload()
    payload["pull_request"]["head"]["sha"] = HEAD
    gh_env["GITHUB_EVENT_PATH"] = write_event(tmp_path, payload)
    publish_github(reports.plan(), env=gh_env, out=io.StringIO())
    (comment,) = forge.comments_on(REPO, PR)
    assert (f"[`d4e5f6a7b8c9_add_post_table.py:21`](https://github.com/{REPO}/blob/{HEAD}/"
            "migrations/versions/d4e5f6a7b8c9_add_post_table.py#L21)") in comment["body"]
    assert f"[CM402]({RULES}CM402.md)" in comment["body"]
    summary = Path(gh_env["GITHUB_STEP_SUMMARY"]).read_text()
    assert f"/blob/{HEAD}/migrations/versions/d4e5f6a7b8c9_add_post_table.py#L21" in summary
