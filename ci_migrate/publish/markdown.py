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

import html
import re
from collections.abc import Callable

import jinja2

from ci_migrate.publish.common import comment_marker
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


def _text(value: object) -> str:
    """Plain text in Markdown: HTML-escaped so a message cannot open a tag."""
    return html.escape(str(value), quote=False)


def _cell(value: object) -> str:
    """Text inside a GFM table cell: escaped, ``|`` escaped, line breaks as ``<br>``."""
    text = _text(value).strip().replace("|", "\\|")
    return re.sub(r"\r?\n", "<br>", text)


def _code(value: object, cell: bool = False) -> str:
    """Inline code span; longer backtick fences when the value has backticks (CommonMark 6.1).

    In a table cell (``cell=True``) ``|`` is written ``\\|``, which GFM unescapes inside code.
    """
    text = " ".join(str(value).split())
    run = max((len(m) for m in re.findall(r"`+", text)), default=0)
    fence = "`" * (run + 1)
    pad = " " if text.startswith("`") or text.endswith("`") else ""
    out = f"{fence}{pad}{text}{pad}{fence}"
    return out.replace("|", "\\|") if cell else out


def _html_code(value: object) -> str:
    """``<code>`` element, for places (``<summary>``) where Markdown is not parsed."""
    return f"<code>{html.escape(str(value))}</code>"


def _fence(value: object, lang: str = "") -> str:
    """Fenced code block whose fence is longer than any backtick run in the value."""
    text = str(value).strip("\n")
    run = max((len(m) for m in re.findall(r"`{3,}", text)), default=2)
    fence = "`" * (run + 1)
    return f"{fence}{lang}\n{text}\n{fence}"


def _and_list(items: list[str], more: int = 0, noun: str = "more") -> str:
    """``a``, ``a and b``, ``a, b and c``; ``a, b and 3 more`` when ``more`` were left out."""
    parts = list(items) + ([f"{more} {noun}"] if more else [])
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


_env.filters.update(text=_text, cell=_cell, code=_code, html_code=_html_code, fence=_fence,
                    and_list=_and_list)


def _render(report: Report, *, marker: str | None, limit: int, unit: str,
            size: Callable[[str], int]) -> str:
    def render(cuts: Cuts) -> str:
        view = build_view(report, marker=marker, cuts=cuts)
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
        body = render(Cuts(last.sql, last.diagram, last.code, max_items=mid, max_findings=mid))
        if size(body) <= limit:
            best, lo = body, mid + 1
        else:
            hi = mid - 1
    if best is not None:
        return best
    return _hard_cut(render(Cuts(True, True, True, max_items=0, max_findings=0)),
                     limit=limit, size=size)


def _longest_list(report: Report) -> int:
    """Length of the longest row list a :class:`Cuts` ``max_items`` applies to."""
    items = [len(t.items) for b in (report.drift.binds if report.drift else []) for t in b.tables]
    return max([len(report.plan.pending) if report.plan else 0, *items])


def _hard_cut(body: str, *, limit: int, size: Callable[[str], int]) -> str:
    """Last resort when even the smallest view is too big (huge checks table or notes)."""
    tail = ("\n\n> ✂️ Cut at the size limit. The full report is in the job log and in "
            "`report.json`.\n")
    keep = len(body)
    while keep > 0 and size(body[:keep] + tail) > limit:
        keep -= max(1, (size(body[:keep] + tail) - limit))
    return body[:keep] + tail


def render_comment(report: Report, *, limit: int = COMMENT_LIMIT) -> str:
    """The PR/MR comment: Markdown with the hidden sticky marker of ``report.key`` on top.

    ``limit`` is in characters (GitHub counts characters; its maximum is 65,536). The result
    is never longer than ``limit``.
    """
    return _render(report, marker=comment_marker(report.key), limit=limit, unit="characters",
                   size=len)


def render_summary(report: Report, *, limit: int = SUMMARY_LIMIT) -> str:
    """The job summary (``GITHUB_STEP_SUMMARY``): the comment's template, without the marker.

    ``limit`` is in bytes of UTF-8 (the step summary limit is 1 MiB). The result never exceeds it.
    """
    return _render(report, marker=None, limit=limit, unit="bytes",
                   size=lambda s: len(s.encode("utf-8")))
