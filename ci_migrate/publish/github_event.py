"""Which pull request a GitHub Actions run belongs to, and whether its token can comment.

Reads the event payload at ``GITHUB_EVENT_PATH`` (GitHub Docs "Events that trigger workflows";
actions/toolkit ``context.ts``). Pure functions of the environment: no network.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

#: Events whose payload carries the pull request to comment on.
PR_EVENTS = ("pull_request", "pull_request_target", "issue_comment", "workflow_run")

#: File beside a saved report that holds the PR number (two-workflow pattern for forks).
PR_NUMBER_FILE = "pr-number"


@dataclass(frozen=True)
class Target:
    """Where the comment goes: ``repo`` ``owner/name`` and PR ``number``, or why there is none.

    ``skip`` is a sentence for the console when no comment should be attempted; ``fork`` marks a
    fork PR on ``pull_request`` (read-only token, no secrets). ``expected_head``, when not None,
    is the commit the PR's head must be at before anything is posted (``workflow_run.head_sha``;
    ``''`` when the payload lacks it): the number did not come from GitHub but from a file the
    pull request's own workflow wrote, or from ``--pr-number``.
    """

    repo: str | None
    number: int | None
    skip: str | None = None
    fork: bool = False
    expected_head: str | None = None


def load_event(env: Mapping[str, str]) -> dict[str, Any]:
    """The event payload, ``{}`` when ``GITHUB_EVENT_PATH`` is unset or unreadable."""
    path = env.get("GITHUB_EVENT_PATH")
    if not path:
        return {}
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def saved_pr_number(report_path: str | None) -> int | None:
    """The number in ``pr-number`` beside ``report_path`` (written by the analysis workflow)."""
    if not report_path:
        return None
    try:
        text = (Path(report_path).parent / PR_NUMBER_FILE).read_text(encoding="utf-8")
        return int(text.strip())
    except (OSError, ValueError):
        return None


def is_fork(event: Mapping[str, Any]) -> bool:
    """A PR from a fork: head repo owner differs from base repo owner (reviewdog ``cienv``).

    Falls back to comparing ``full_name`` when owner ids are missing.
    """
    pr = event.get("pull_request") or {}
    head = (pr.get("head") or {}).get("repo") or {}
    base = (pr.get("base") or {}).get("repo") or {}
    if not head or not base:
        return False
    head_owner = (head.get("owner") or {}).get("id")
    base_owner = (base.get("owner") or {}).get("id")
    if head_owner is not None and base_owner is not None:
        return bool(head_owner != base_owner)
    return bool(head.get("full_name") != base.get("full_name"))


def comment_target(env: Mapping[str, str], *, pr_number: int | None = None,
                   report_path: str | None = None) -> Target:
    """Resolve the PR to comment on from the event, an explicit number, or a saved ``pr-number``.

    - ``pull_request`` / ``pull_request_target``: ``pull_request.number``;
    - ``issue_comment``: ``issue.number`` when ``issue.pull_request`` is set;
    - ``workflow_run``: ``workflow_run.pull_requests[0].number``, empty for forks
      (actions/runner#3444), then ``pr_number``, then the ``pr-number`` file beside the report;
      a number GitHub did not give is only trusted once the PR's head is ``workflow_run.head_sha``
      (``expected_head``, checked by the publisher: the file comes from the fork's workflow);
    - ``push``, ``merge_group`` and others: no comment.

    An explicit ``pr_number`` wins over the payload.
    """
    repo = env.get("GITHUB_REPOSITORY")
    event_name = env.get("GITHUB_EVENT_NAME", "")
    event = load_event(env)
    number = pr_number
    if number is None and event_name in ("pull_request", "pull_request_target"):
        number = (event.get("pull_request") or {}).get("number") or event.get("number")
    elif number is None and event_name == "issue_comment":
        issue = event.get("issue") or {}
        if not issue.get("pull_request"):
            return Target(repo, None, skip="the comment that triggered this run is on an issue, "
                          "not a pull request: no PR comment.")
        number = issue.get("number")
    elif number is None and event_name == "workflow_run":
        prs = (event.get("workflow_run") or {}).get("pull_requests") or []
        number = prs[0].get("number") if prs else saved_pr_number(report_path)
        if number is None:
            return Target(repo, None, skip="workflow_run carries no pull request (a fork PR?) and "
                          f"no {PR_NUMBER_FILE} file is beside the report: no PR comment. Save "
                          "the PR number beside report.json in the analysis workflow.")
    elif number is None:
        what = event_name or "this run"
        return Target(repo, None, skip=f"{what} is not a pull request event: no PR comment "
                      "(the job summary has the report).")
    if not repo or not number:
        return Target(repo, None, skip="GITHUB_REPOSITORY or the PR number is missing: "
                      "no PR comment.")
    fork = event_name == "pull_request" and is_fork(event)
    expected_head = None
    if event_name == "workflow_run":
        run = event.get("workflow_run") or {}
        given = [pr.get("number") for pr in run.get("pull_requests") or [] if isinstance(pr, dict)]
        if int(number) not in given:
            expected_head = str(run.get("head_sha") or "")
    return Target(repo, int(number), fork=fork, expected_head=expected_head)
