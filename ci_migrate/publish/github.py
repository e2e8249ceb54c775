"""GitHub Actions publisher: job summary, annotations, step outputs and the sticky PR comment.

The comment goes through PyGithub (``GET/POST /repos/{o}/{r}/issues/{n}/comments``,
``PATCH``/``DELETE /repos/{o}/{r}/issues/comments/{id}``; GitHub Docs "REST API endpoints for
issue comments") against ``GITHUB_API_URL``, so GitHub Enterprise Server works unchanged.
The rest is written to the runner's files and to ``out`` (workflow commands). Conventions:
``/work/shared/reference/ci-conventions.md`` §2–§3.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import TextIO

import requests
from github import Auth, Github, GithubException
from github.Issue import Issue
from github.IssueComment import IssueComment
from github.Repository import Repository

from ci_migrate.publish.common import (
    COMMENT_MODES,
    check_comment_mode,
    comment_marker,
    same_body,
    split_sticky,
)
from ci_migrate.publish.github_event import comment_target
from ci_migrate.publish.links import Links, links_for
from ci_migrate.publish.markdown import render_comment, render_summary
from ci_migrate.publish.workflow import (
    annotation_lines,
    append_summary,
    outputs_of,
    register_masks,
    summary_budget,
    write_outputs,
)
from ci_migrate.report import Report

__all__ = ["COMMENT_MODES", "post_comment", "publish_github", "register_masks"]

DEFAULT_API_URL = "https://api.github.com"
#: Author of comments made with the workflow's ``GITHUB_TOKEN``.
ACTIONS_LOGIN = "github-actions[bot]"
#: Body limit for the retry after a 422: 65,536 / 4, safe even if GitHub counted UTF-8 bytes.
COMPACT_LIMIT = 16_000
_TOKEN_VARS = ("GITHUB_TOKEN", "INPUT_GITHUB-TOKEN", "INPUT_GITHUB_TOKEN")
_FORK_NOTICE = (
    "Pull request from a fork: its GITHUB_TOKEN is read-only, so no PR comment was posted; the "
    "job summary and the annotations have the report. To comment on fork PRs, post the saved "
    "report from a workflow_run workflow (`ci-migrate post`, see docs/publishing.md)."
)
_FORBIDDEN_NOTICE = (
    "The token may not write PR comments ({status} {message}); no PR comment was posted. Grant "
    "`permissions: pull-requests: write` to the job (repositories created since 2023 default "
    "to a read-only GITHUB_TOKEN). The job summary and annotations have the report."
)


def github_token(env: Mapping[str, str]) -> str | None:
    """The token to post with: ``GITHUB_TOKEN``, else the action input ``github-token``."""
    return next((env[v] for v in _TOKEN_VARS if env.get(v)), None)


def publish_github(
    report: Report,
    *,
    env: Mapping[str, str],
    comment: str = "always",
    report_path: str | None = None,
    out: TextIO = sys.stdout,
    pr_number: int | None = None,
    links: Links | None = None,
) -> list[str]:
    """Publish ``report`` in a GitHub Actions job; returns notices for the console.

    Writes, in order: ``::add-mask::`` for the token; the job summary to
    ``GITHUB_STEP_SUMMARY`` (≤ 1 MiB including what the step already wrote); annotations to
    ``out`` (≤ 10 per kind, see :func:`~ci_migrate.publish.workflow.annotation_lines`); step outputs
    ``verdict``, ``heads``, ``pending-count``, ``drift``, ``findings``, ``report-path`` to
    ``GITHUB_OUTPUT``; then the sticky PR comment (``comment``: ``always`` | ``on-change`` |
    ``never``). ``pr_number`` overrides the event payload (``ci-migrate post --pr-number``).
    ``links`` (default :func:`~ci_migrate.publish.links.links_for` of ``env``): rule pages, and
    revision files at the pull request's head commit.

    Never raises for a comment that cannot be posted (fork PR, read-only token, API error):
    that becomes a notice. Raises ``ValueError`` for an unknown ``comment`` mode.
    """
    check_comment_mode(comment)
    links = links or links_for(env)
    token = github_token(env)
    register_masks([token] if token else [], out)
    summary_path = env.get("GITHUB_STEP_SUMMARY")
    if summary_path:
        append_summary(summary_path, render_summary(report, limit=summary_budget(summary_path),
                                                    links=links))
    for line in annotation_lines(report):
        out.write(line + "\n")
    out.flush()
    if env.get("GITHUB_OUTPUT"):
        write_outputs(env["GITHUB_OUTPUT"], outputs_of(report, report_path))
    if comment == "never":
        return []
    return post_comment(report, env=env, token=token, mode=comment, pr_number=pr_number,
                        report_path=report_path, links=links)


def post_comment(report: Report, *, env: Mapping[str, str], token: str | None, mode: str,
                 pr_number: int | None = None, report_path: str | None = None,
                 links: Links | None = None) -> list[str]:
    """Create or update the sticky comment of ``report.key`` on the run's PR; returns notices.

    Finds our comments by the hidden marker **and** the token's login (through all pages, 100
    per page), updates the oldest in place and deletes the others (duplicates from concurrent
    runs). ``mode`` ``on-change`` leaves an identical body alone. Errors become notices.
    """
    target = comment_target(env, pr_number=pr_number, report_path=report_path)
    if target.skip or not target.repo or not target.number:
        return [target.skip or "No pull request to comment on."]
    if target.fork:
        return [_FORK_NOTICE]
    if not token:
        return ["No GITHUB_TOKEN: no PR comment was posted. Pass `github-token: "
                "${{ github.token }}` to the action (or set GITHUB_TOKEN) with "
                "`permissions: pull-requests: write`."]
    from ci_migrate import __version__

    gh = Github(auth=Auth.Token(token), base_url=env.get("GITHUB_API_URL") or DEFAULT_API_URL,
                per_page=100, lazy=True, user_agent=f"ci-migrate/{__version__}")
    try:
        repo = gh.get_repo(target.repo)
        if target.expected_head is not None:
            refusal = _unverified(repo, target.number, target.expected_head)
            if refusal:
                return [refusal]
        issue = repo.get_issue(target.number)
        sticky = _Sticky(gh, issue, comment_marker(report.key), links or links_for(env))
        return sticky.publish(report, mode)
    except GithubException as exc:
        return [_explain(exc, target.number)]
    except requests.RequestException as exc:
        return [f"Could not reach the GitHub API ({type(exc).__name__}): no PR comment was posted."]
    finally:
        gh.close()


def _unverified(repo: Repository, number: int, expected_head: str) -> str | None:
    """Why PR ``number`` may not get the comment, or None when its head is ``expected_head``.

    ``GET /repos/{owner}/{repo}/pulls/{number}`` → ``head.sha`` (GitHub Docs "REST API endpoints
    for pull requests"). A ``workflow_run`` job gets the number from a file the pull request's
    own workflow wrote; a fork can write any number there, so it must name the PR whose head
    commit is the one the triggering run analysed.
    """
    why = (" The number comes from the pr-number file (or --pr-number), which the pull request's own "
           "workflow writes; a fork can put any number there. No PR comment was posted.")
    if not expected_head:
        return (f"Refusing to comment on PR #{number}: the workflow_run event has no head_sha to check the "
                f"number against.{why}")
    try:
        head = repo.get_pull(number).head.sha
    except GithubException as exc:
        return f"Refusing to comment on PR #{number}: it cannot be read ({exc.status}).{why}"
    if head != expected_head:
        return (f"Refusing to comment on PR #{number}: its head commit {head[:12]} is not the commit the "
                f"triggering workflow run analysed ({expected_head[:12]}).{why}")
    return None


def _viewer_login(gh: Github) -> str:
    """Login of the token's identity (GraphQL ``viewer``, which also works for app tokens)."""
    try:
        _, data = gh.requester.graphql_query("query { viewer { login } }", {})
        return str(data["data"]["viewer"]["login"])
    except (GithubException, requests.RequestException, KeyError, TypeError):
        return ACTIONS_LOGIN


def _same_login(a: str, b: str) -> bool:
    """Logins equal up to the ``[bot]`` suffix REST adds and GraphQL ``viewer`` omits."""
    return a.removesuffix("[bot]").lower() == b.removesuffix("[bot]").lower()


def _explain(exc: GithubException, number: int | None) -> str:
    message = exc.data.get("message", "") if isinstance(exc.data, dict) else str(exc.data or "")
    if exc.status in (401, 403):
        return _FORBIDDEN_NOTICE.format(status=exc.status, message=message or "Forbidden")
    if exc.status == 404:
        return (f"PR #{number} or its repository is not visible to the token (404): no PR "
                "comment was posted.")
    return f"GitHub refused the PR comment ({exc.status} {message}): no PR comment was posted."


@dataclass
class _Sticky:
    """Our comment on one PR: matched by ``marker`` in the body and by the token's login."""

    gh: Github
    issue: Issue
    marker: str
    links: Links

    def find(self) -> tuple[IssueComment | None, list[IssueComment]]:
        marked = [c for c in self.issue.get_comments() if self.marker in (c.body or "")]
        if not marked:  # first run: no need to ask who we are
            return None, []
        login = _viewer_login(self.gh)
        ours = [c for c in marked if c.user and _same_login(c.user.login, login)]
        return split_sticky(ours, key=lambda c: (c.created_at, c.id))

    def publish(self, report: Report, mode: str) -> list[str]:
        keep, duplicates = self.find()
        body = render_comment(report, links=self.links)
        notices: list[str] = []
        if keep is not None and mode == "on-change" and same_body(keep.body, body):
            notices.append(f"PR comment unchanged: {keep.html_url}")
        else:
            url = self._write(keep, body, report)
            notices.append(f"{'Updated' if keep else 'Posted'} the PR comment: {url}")
        notices += self._delete(duplicates)
        return notices

    def _write(self, keep: IssueComment | None, body: str, report: Report) -> str:
        try:
            return self._put(keep, body)
        except GithubException as exc:
            if exc.status != 422:
                raise
            # "Body is too long": GitHub may count differently from us; send the compact form.
            return self._put(keep, render_comment(report, limit=COMPACT_LIMIT, links=self.links))

    def _put(self, keep: IssueComment | None, body: str) -> str:
        if keep is None:
            return self.issue.create_comment(body).html_url
        keep.edit(body)
        return keep.html_url

    def _delete(self, duplicates: Iterable[IssueComment]) -> list[str]:
        notices = []
        for dup in duplicates:
            try:
                dup.delete()
            except GithubException as exc:
                notices.append(f"Could not delete duplicate PR comment {dup.id} ({exc.status}).")
        return notices
