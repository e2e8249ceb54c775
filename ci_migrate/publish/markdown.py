"""Markdown bodies of the PR/MR comment and the job summary, from ``templates/comment.md.j2``.

Both bodies come from the same template (as atlas-action renders one template into the summary
and the comment). A body is fitted to a size limit by leaving out, in this order, the offline
SQL, the diagram, the suggested revision body, then rows of long lists
(:data:`~ci_migrate.publish.view.SECTION_STEPS`); the body says what it left out. Limits:
GitHub rejects comments over 65,536 characters with 422 "Body is too long"
(danger/danger#424) and drops step summaries over 1 MiB (GitHub docs, workflow-commands
"Adding a job summary").
"""

from __future__ import annotations

from collections.abc import Callable

import jinja2

from ci_migrate.publish.common import comment_marker
from ci_migrate.publish.links import Links
from ci_migrate.publish.mdtext import and_list, cell, code, fence, html_code, prose, text
from ci_migrate.publish.view import SECTION_STEPS, Cuts, build_view
from ci_migrate.report import Report

COMMENT_LIMIT = 65_000
SUMMARY_LIMIT = 1_048_576

_env = jinja2.Environment(
    loader=jinja2.PackageLoader("ci_migrate.publish", "templates"),
    autoescape=False,  # Markdown, not HTML: the filters below escape per context
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
    undefined=jinja2.StrictUndefined,
)


_env.filters.update(text=text, cell=cell, code=code, html_code=html_code, fence=fence,
                    and_list=and_list, prose=prose)


def _render(report: Report, *, marker: str | None, limit: int, unit: str,
            size: Callable[[str], int], links: Links | None) -> str:
    def render(cuts: Cuts) -> str:
        view = build_view(report, marker=marker, cuts=cuts, links=links)
        view.limit, view.unit = limit, unit
        return _env.get_template("comment.md.j2").render(v=view)

    for cuts in SECTION_STEPS:
        body = render(cuts)
        if size(body) <= limit:
            return body
    # Still too long: keep as many rows as fit (fewer rows never make a longer body).
    last = SECTION_STEPS[-1]
    lo, hi = 0, max(len(report.findings), _longest_list(report))
    best = None
    while lo <= hi:
        mid = (lo + hi) // 2
        body = render(Cuts(last.sql, last.diagram, last.code, last.change, max_items=mid,
                           max_findings=mid, max_tables=max(mid, 1)))
        if size(body) <= limit:
            best, lo = body, mid + 1
        else:
            hi = mid - 1
    if best is not None:
        return best
    return _hard_cut(render(Cuts(True, True, True, 2, max_items=0, max_findings=0, max_tables=1)),
                     limit=limit, size=size)


def _longest_list(report: Report) -> int:
    """Length of the longest row list a :class:`Cuts` ``max_items`` applies to."""
    items = [len(t.items) for b in (report.drift.binds if report.drift else []) for t in b.tables]
    tables = len(report.schema_change.tables) if report.schema_change else 0
    return max([len(report.plan.pending) if report.plan else 0, tables, *items])


def _hard_cut(body: str, *, limit: int, size: Callable[[str], int]) -> str:
    """Last resort when even the smallest view is too big (huge checks table or notes)."""
    tail = ("\n\n> ✂️ Cut at the size limit. The full report is in the job log and in "
            "`report.json`.\n")
    keep = len(body)
    while keep > 0 and size(body[:keep] + tail) > limit:
        keep -= max(1, (size(body[:keep] + tail) - limit))
    return body[:keep] + tail


def render_comment(report: Report, *, limit: int = COMMENT_LIMIT, links: Links | None = None) -> str:
    """The PR/MR comment: Markdown with the hidden sticky marker of ``report.key`` on top.

    ``limit`` is in characters (GitHub counts characters; its maximum is 65,536). The result
    is never longer than ``limit``. ``links``: where rule ids and file names link to
    (:func:`~ci_migrate.publish.links.links_for`; default: rule pages only).
    """
    return _render(report, marker=comment_marker(report.key), limit=limit, unit="characters",
                   size=len, links=links)


def render_summary(report: Report, *, limit: int = SUMMARY_LIMIT, links: Links | None = None) -> str:
    """The job summary (``GITHUB_STEP_SUMMARY``): the comment's template, without the marker.

    ``limit`` is in bytes of UTF-8 (the step summary limit is 1 MiB). The result never exceeds it.
    """
    return _render(report, marker=None, limit=limit, unit="bytes",
                   size=lambda s: len(s.encode("utf-8")), links=links)
