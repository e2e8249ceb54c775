"""GitLab CI publisher: the sticky merge request note and the Code Quality report.

The note goes through python-gitlab (GitLab Docs "Notes API": ``GET/POST
/projects/:id/merge_requests/:iid/notes``, ``PUT/DELETE …/notes/:note_id``) at
``CI_API_V4_URL`` with a ``PRIVATE-TOKEN`` from ``GITLAB_TOKEN``; ``CI_JOB_TOKEN`` cannot post
notes (gitlab-org/gitlab#464591). Conventions: ``ci-conventions.md`` §4.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import gitlab
import requests
from gitlab.exceptions import GitlabError
from gitlab.v4.objects import ProjectMergeRequest, ProjectMergeRequestNote

from ci_migrate.publish.codequality import write_codequality
from ci_migrate.publish.common import (
    check_comment_mode,
    comment_marker,
    same_body,
    split_sticky,
)
from ci_migrate.publish.links import Links, links_for
from ci_migrate.publish.markdown import render_comment
from ci_migrate.report import Report



def publish_gitlab(
    report: Report,
    *,
    env: Mapping[str, str],
    comment: str = "always",
    codequality_path: str | None = None,
    links: Links | None = None,
) -> list[str]:
    """Publish ``report`` in a GitLab CI job; returns notices for the console.

    Writes the Code Quality JSON to ``codequality_path`` when given, then creates or updates
    the sticky MR note (``comment``: ``always`` | ``on-change`` | ``never``) in merge request
    pipelines (``CI_MERGE_REQUEST_IID`` set); ``links`` (default
    :func:`~ci_migrate.publish.links.links_for` of ``env``) point at rule pages and at the
    revision files of the pipeline's commit. Never raises for a note that cannot be posted
    (missing token, 401/403, API error): that becomes a notice. Raises ``ValueError`` for an
    unknown ``comment`` mode and ``OSError`` when the Code Quality file cannot be written.
    """
    check_comment_mode(comment)
    if codequality_path:
        write_codequality(report, Path(codequality_path))
    if comment == "never":
        return []
    return post_note(report, env=env, mode=comment, links=links)


def post_note(report: Report, *, env: Mapping[str, str], mode: str,
              links: Links | None = None) -> list[str]:
    """Create or update the sticky note of ``report.key`` on the pipeline's MR; notices back.

    Matches by marker and author (the token's user), skipping system notes; keeps the oldest
    and deletes duplicates; ``on-change`` leaves an identical body alone.
    """
    iid, project_id = env.get("CI_MERGE_REQUEST_IID"), env.get("CI_PROJECT_ID")
    api_url = env.get("CI_API_V4_URL", "")
    if not iid or not project_id or not api_url:
        return ["Not a merge request pipeline (CI_MERGE_REQUEST_IID is unset): no MR note. Run "
                'the job with `rules: - if: $CI_PIPELINE_SOURCE == "merge_request_event"`.']
    token = env.get("GITLAB_TOKEN")
    if not token:
        return ["No GITLAB_TOKEN: no MR note was posted. CI_JOB_TOKEN cannot write notes; set "
                "GITLAB_TOKEN to a project access token with the `api` scope (not protected, "
                "or MR pipelines cannot read it)."]
    from ci_migrate import __version__

    gl = gitlab.Gitlab(api_url.removesuffix("/").removesuffix("/api/v4"), private_token=token,
                       user_agent=f"ci-migrate/{__version__}", timeout=30)
    try:
        gl.auth()
        login = gl.user.username if gl.user else ""
        mr = gl.projects.get(project_id, lazy=True).mergerequests.get(int(iid), lazy=True)
        body = render_comment(report, links=links or links_for(env))
        return _publish(mr, comment_marker(report.key), login, body, mode)
    except GitlabError as exc:
        return [_explain(exc, iid)]
    except requests.RequestException as exc:
        return [f"Could not reach the GitLab API ({type(exc).__name__}): no MR note was posted."]


def _publish(mr: ProjectMergeRequest, marker: str, login: str, body: str, mode: str) -> list[str]:
    ours = [n for n in mr.notes.list(iterator=True, per_page=100)
            if not n.system and marker in (n.body or "") and n.author.get("username") == login]
    keep, duplicates = split_sticky(ours, key=lambda n: (n.created_at, n.id))
    notices = []
    if keep is not None and mode == "on-change" and same_body(keep.body, body):
        notices.append(f"MR note unchanged (note {keep.id}).")
    elif keep is not None:
        keep.body = body
        keep.save()
        notices.append(f"Updated the MR note (note {keep.id}).")
    else:
        note: ProjectMergeRequestNote = mr.notes.create({"body": body})  # type: ignore[assignment]
        notices.append(f"Posted the MR note (note {note.id}).")
    for dup in duplicates:
        try:
            dup.delete()
        except GitlabError as exc:
            notices.append(f"Could not delete duplicate MR note {dup.id} ({exc.response_code}).")
    return notices


def _explain(exc: GitlabError, iid: str) -> str:
    code = exc.response_code
    if code in (401, 403):
        return (f"The token may not write MR notes ({code} {exc.error_message}); no MR note was "
                "posted. Use a project access token with the `api` scope and at least the "
                "Reporter role; fork MRs run without the parent project's variables.")
    if code == 404:
        return f"MR !{iid} is not visible to the token (404): no MR note was posted."
    return f"GitLab refused the MR note ({code} {exc.error_message}): no MR note was posted."
