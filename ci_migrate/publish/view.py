"""The view model of the comment/summary templates: a :class:`Report` turned into plain data.

:func:`build_view` decides *what* is shown (which sections, which rows, in which order);
the Jinja2 templates in ``templates/`` decide *how* it reads. :class:`Cuts` says which parts
to leave out when the body has to fit a size limit (see :mod:`ci_migrate.publish.markdown`).
Each finding is shown once: the ones a section explains in full (the heads, the drift) are left
out of the findings list while that section is shown.
"""

from __future__ import annotations

import textwrap
from dataclasses import dataclass, field
from typing import Any

from ci_migrate.publish.change_text import counts, ordered, table_lines
from ci_migrate.publish.common import Headline, headline, locate, plural
from ci_migrate.publish.links import Links, default_links
from ci_migrate.publish.mdtext import code, text
from ci_migrate.publish.mermaid import Diagram, change_diagram, er_diagram
from ci_migrate.report import BindDrift, Finding, Report

STATUS_ICON = {"passed": "✅", "warning": "⚠️", "failed": "❌", "skipped": "⏭️", "error": "💥"}
SEVERITY_ICON = {"error": "❌", "warning": "⚠️", "info": "ℹ️"}
#: A schema change touching more tables (or with more lines) than this folds its diagram and list.
LARGE_CHANGE_TABLES = 6
LARGE_CHANGE_LINES = 30
#: Findings a section explains in full, by the section that shows them.
SECTION_RULES = {"heads": {"CM101"}, "drift": {"CM301", "CM302"}}
#: Imports the revision template (``_revision.py.j2``) always writes.
_TEMPLATE_IMPORTS = {"from alembic import op", "import sqlalchemy as sa"}
_NOTE_OF_KIND = {"add_column": "new", "add_table": "new", "modify_type": "type changed",
                 "modify_nullable": "nullable changed", "modify_default": "default changed",
                 "add_fk": "new FK", "add_index": "new index"}


@dataclass(frozen=True)
class Cuts:
    """What to leave out of a body (see :data:`SECTION_STEPS`).

    ``diagram``: the drift diagram. ``change``: how far the schema-change diagram is reduced
    (0 all, 1 without neighbour tables, 2 changed and key columns only); it is never left out.
    ``max_findings``/``max_items``/``max_tables``: findings / rows per list / touched tables
    shown (``None``: all).
    """

    sql: bool = False
    diagram: bool = False
    code: bool = False
    change: int = 0
    max_items: int | None = None
    max_findings: int | None = None
    max_tables: int | None = None


#: Parts left out, one more per step, when a body is too long; after the last step rows are
#: cut (``Cuts.max_*``).
SECTION_STEPS: tuple[Cuts, ...] = (
    Cuts(),
    Cuts(sql=True),
    Cuts(sql=True, diagram=True),
    Cuts(sql=True, diagram=True, code=True),
    Cuts(sql=True, diagram=True, code=True, change=1),
    Cuts(sql=True, diagram=True, code=True, change=2),
)


@dataclass
class Shown:
    """A list cut to ``max`` rows; ``more`` is how many were left out."""

    rows: list[Any]
    more: int = 0

    @classmethod
    def cut(cls, rows: list[Any], limit: int | None) -> Shown:
        if limit is None or len(rows) <= limit:
            return cls(rows)
        return cls(rows[:limit], len(rows) - limit)


@dataclass
class View:
    """Everything the templates read. Sections are ``None``/empty when there is nothing to say."""

    marker: str | None
    headline: Headline
    meta: list[tuple[str, str]]
    checks: list[dict[str, str]]
    notes: list[str]
    findings: Shown
    change: dict[str, Any] | None
    heads: dict[str, Any] | None
    pending: dict[str, Any] | None
    changes: list[dict[str, Any]]
    changes_more: int
    approximate: bool
    diagram: Diagram | None
    drift: dict[str, Any] | None
    sql: list[dict[str, Any]]
    cut: list[str] = field(default_factory=list)
    command: str = "check"
    migrate_command: str = 'flask db migrate -m "…"'
    dialect: str = ""
    limit: int = 0  # the size limit the body was fitted to, in ``unit``
    unit: str = "characters"
    version: str = ""
    schema_version: str = ""
    key: str = ""


def build_view(report: Report, *, marker: str | None, cuts: Cuts = Cuts(),
               links: Links | None = None) -> View:
    """The view of ``report`` with the parts named by ``cuts`` left out; ``links`` says where rule
    ids and file names link to (default: rule pages from the package metadata, no file links)."""
    links = links or default_links()
    changes, changes_more = _changes(report, cuts.max_items)
    diagram = None if cuts.diagram else _diagram(report)
    sql = [] if cuts.sql else _sql(report)
    heads, drift = _heads(report), _drift(report, with_code=not cuts.code)
    explained = set().union(*(rules for name, rules in SECTION_RULES.items()
                              if {"heads": heads, "drift": drift}[name]))
    listed = [_finding(report, f, links) for f in report.findings
              if f.rule_id not in explained or f.details.get("directory")]  # sections explain the app's history
    for i, f in enumerate(listed):
        f["same_fix"] = bool(f["fix"]) and any(f["fix"] == g["fix"] for g in listed[:i])
    findings = Shown.cut(listed, cuts.max_findings)
    change = _change(report, cuts, links)
    pending = _pending(report, cuts.max_items, links)
    if change and pending and change["revisions"].rows and pending["against"].startswith("base:"):
        pending = None  # the schema change section lists the pull request's revisions
    return View(
        marker=marker,
        headline=headline(report),
        meta=_meta(report),
        checks=[{"name": c.name, "status": c.status, "icon": STATUS_ICON[c.status],
                 "summary": c.summary} for c in report.checks],
        notes=list(report.notes),
        findings=findings,
        change=change,
        heads=heads,
        pending=pending,
        changes=changes,
        changes_more=changes_more,
        approximate=bool(report.drift and report.drift.approximate),
        diagram=diagram,
        drift=drift,
        sql=sql,
        cut=_cut_labels(report, cuts, findings_more=findings.more, changes_more=changes_more,
                        change=change),
        command=report.command,
        migrate_command=_fix_of(report, "CM301") or 'flask db migrate -m "…"',
        dialect=report.drift.dialect if report.drift else "",
        version=report.version,
        schema_version=report.schema_version,
        key=report.key,
    )


def _meta(report: Report) -> list[tuple[str, str]]:
    items = [("app", report.app), ("migrations", report.migrations), ("target", report.target),
             ("sandbox", report.sandbox.dialect if report.sandbox else None)]
    return [(k, v) for k, v in items if v]


def _finding(report: Report, f: Finding, links: Links) -> dict[str, Any]:
    """One finding's line: where it is, its rule's page, one sentence; the why and the fix apart."""
    file, line = locate(report, f)
    url = links.file(file, line)
    where = f"{file}:{line}" if file and line else file
    name = (where or "").rsplit("/", 1)[-1]
    return {"rule_id": f.rule_id, "url": links.rule(f.rule_id), "severity": f.severity,
            "icon": SEVERITY_ICON[f.severity], "where": name, "where_url": url,
            "revision": None if f.revision and name.startswith(f.revision) else f.revision,
            "sentence": _sentence(f), "message": f.message.strip(), "fix": (f.fix or "").strip()}


def _sentence(f: Finding) -> str:
    """The title without the revision it starts with ("<rev>: …", "<rev> (message) …"): the
    revision has its own place on the line."""
    title, rev = f.title.strip(), f.revision
    if not rev or not title.startswith(rev) or title[len(rev):len(rev) + 1] not in (" ", ":"):
        return title
    rest = title[len(rev):].lstrip()
    if rest.startswith("(") and ")" in rest:
        rest = rest[rest.index(")") + 1:]
    return rest.lstrip(": ").strip() or title


def _change(report: Report, cuts: Cuts, links: Links) -> dict[str, Any] | None:
    """The schema change of the pending revisions: counts, the revisions that make it, the
    diagram (never left out, only reduced: ``cuts.change``) and one entry per table; large
    changes fold."""
    facts = report.schema_change
    if not facts or not facts.tables:
        return None
    facts = ordered(facts)
    diagram = change_diagram(facts, neighbours=cuts.change < 1, only_changed=cuts.change >= 2,
                             max_tables=cuts.max_tables)
    tables = Shown.cut(table_lines(facts, code=code, text=text), cuts.max_tables)
    for line in tables.rows:
        line.items = line.items[:cuts.max_items] + (
            [f"…and {len(line.items) - cuts.max_items} more"]
            if cuts.max_items is not None and len(line.items) > cuts.max_items else [])
    lines = sum(1 + len(t.items) for t in tables.rows)
    planned = {p.revision: p for p in report.plan.pending} if report.plan else {}
    revisions = []
    for rev in facts.revisions:
        p = planned.get(rev)
        revisions.append({"revision": rev, "message": p.message if p else None,
                          "author": p.author if p else None, "url": links.file(p.file) if p else None})
    return {"counts": counts(facts), "tables": tables, "more": tables.more, "diagram": diagram,
            "revisions": Shown.cut(revisions, cuts.max_items),
            "large": len(facts.tables) > LARGE_CHANGE_TABLES or lines > LARGE_CHANGE_LINES}


def _fix_of(report: Report, rule_id: str) -> str | None:
    """The exact command to run for the first finding of ``rule_id`` about the app's own history (not
    an extra script directory's): its ``details["command"]``, else its ``fix`` (CM101's fix is the
    merge command itself)."""
    return next((f.details.get("command") or f.fix for f in report.findings
                 if f.rule_id == rule_id and (f.fix or f.details.get("command")) and not f.details.get("directory")),
                None)


def _heads(report: Report) -> dict[str, Any] | None:
    graph = report.graph
    if not graph or len(graph.heads) < 2:
        return None
    messages = {r.revision: r.message for r in graph.revisions}
    command = (_fix_of(report, "CM101")
               or f'flask db merge -m "merge heads" {" ".join(graph.heads)}')
    branches = graph.head_branches or []
    rows = [{"head": b.head, "message": messages.get(b.head) or "", "revisions": b.revisions,
             "fork_point": b.fork_point} for b in branches]
    known = {b.head for b in branches}
    rows += [{"head": h, "message": messages.get(h) or "", "revisions": [h], "fork_point": None}
             for h in graph.heads if h not in known]
    return {"count": len(graph.heads), "branches": rows, "command": command}


def _pending(report: Report, limit: int | None, links: Links) -> dict[str, Any] | None:
    plan = report.plan
    if not plan:
        return None
    kind, _, name = plan.against.partition(":")
    if kind == "base":
        intro = f"New in this change compared with `{name}`"
    elif kind == "target":
        at = ", ".join(f"`{c}`" for c in plan.current) or "an empty database"
        intro = f"Not yet applied to target `{name}` (now at {at})"
    else:
        intro = f"Pending against `{plan.against}`"
    rows = [{"revision": p.revision, "message": p.message, "author": p.author,
             "url": links.file(p.file)} for p in plan.pending]
    return {"against": plan.against, "against_text": intro, "current": plan.current,
            "revisions": Shown.cut(rows, limit)}


def _column_notes(items: list[Any]) -> dict[str, str]:
    notes: dict[str, str] = {}
    for item in items:
        if item.name and item.kind in _NOTE_OF_KIND:
            notes.setdefault(item.name, _NOTE_OF_KIND[item.kind])
    return notes


def _changes(report: Report, limit: int | None) -> tuple[list[dict[str, Any]], int]:
    """Schema changes per table, in words; and how many sentences were left out."""
    drift = report.drift
    if not drift:
        return [], 0
    multi = len(drift.binds) > 1
    out: list[dict[str, Any]] = []
    more = 0
    for bind in drift.binds:
        for table in bind.tables:
            shown = Shown.cut([i.text + (" (approximate)" if i.approximate else "")
                               for i in table.items], limit)
            more += shown.more
            out.append({"table": table.table, "change": table.change,
                        "bind": bind.bind if multi else None, "items": shown.rows})
    return out, more


def _diagram(report: Report) -> Diagram | None:
    drift = report.drift
    if not drift or not report.tables:
        return None
    changed: dict[str, dict[str, str]] = {}
    bind_of: dict[str, str | None] = {}
    for bind in drift.binds:
        for table in bind.tables:
            if table.change != "removed":
                changed.setdefault(table.table, {}).update(_column_notes(table.items))
                bind_of[table.table] = bind.bind
    return er_diagram(report.tables, changed, bind_of=bind_of) if changed else None


def function_body(code: str) -> str:
    """Alembic-rendered commands as the body of a function, indented four spaces.

    Accepts both alembic's ``render_python_code`` form (first line flush, the rest already
    indented for ``script.py.mako``) and fully dedented code. Empty code becomes ``pass``.
    """
    lines = code.strip("\n").splitlines()
    if not any(line.strip() for line in lines):
        return "    pass"
    rest = textwrap.dedent("\n".join(lines[1:])).splitlines() if len(lines) > 1 else []
    body = [lines[0].strip(), *rest]
    return "\n".join(("    " + line) if line.strip() else "" for line in body)


def _drift(report: Report, *, with_code: bool) -> dict[str, Any] | None:
    """Drift over all binds: counts, tables, and one suggested body per drifted bind."""
    drift = report.drift
    if not drift or not drift.has_drift:
        return None
    multi = len(drift.binds) > 1
    drifted = [b for b in drift.binds if b.tables]
    return {"changes": sum(len(t.items) for b in drifted for t in b.tables),
            "tables": Shown.cut([t.table for b in drifted for t in b.tables], 5),
            "ignored": sum(b.ignored for b in drift.binds),
            "bodies": [_body(b, multi) for b in drifted] if with_code else []}


def _body(b: BindDrift, multi: bool) -> dict[str, Any]:
    """The revision body of one bind; Flask-Migrate's multidb template names functions
    ``upgrade_<bind>()`` (``upgrade_()`` for the default bind)."""
    return {"bind": (b.bind or "default") if multi else None,
            "imports": [i for i in b.imports if i not in _TEMPLATE_IMPORTS],
            "suffix": f"_{b.bind or ''}" if multi else "",
            "upgrade": function_body(b.upgrade_code),
            "downgrade": function_body(b.downgrade_code)}


def _sql(report: Report) -> list[dict[str, Any]]:
    plan = report.plan
    if not plan:
        return []
    return [{"revision": p.revision, "message": p.message or "", "sql": p.sql,
             "lines": len(p.sql.strip().splitlines()) if p.sql else 0,
             "error": p.sql_error, "dialect": plan.dialect}
            for p in plan.pending if p.sql or p.sql_error]


def _cut_labels(report: Report, cuts: Cuts, *, findings_more: int, changes_more: int,
                change: dict[str, Any] | None) -> list[str]:
    """Human names of what ``cuts`` left out of this report, for the "shortened" note."""
    pending = len(report.plan.pending) if report.plan else 0
    tables_more = change["more"] if change else 0
    facts = report.schema_change
    labels = [
        ("offline SQL", cuts.sql and bool(_sql(report))),
        ("the drift diagram", cuts.diagram and _diagram(report) is not None),
        ("the neighbour tables of the schema diagram", cuts.change >= 1 and bool(facts and {
            s.name for s in facts.schemas} - {t.name for t in facts.tables})),
        ("its unchanged columns", cuts.change >= 2 and bool(facts and any(
            t.change == "changed" for t in facts.tables))),
        (f"{plural(tables_more, 'changed table')}", tables_more > 0),
        ("the suggested revision body",
         cuts.code and bool(report.drift and report.drift.has_drift)),
        (f"{plural(changes_more, 'schema change')}", changes_more > 0),
        (f"{plural(findings_more, 'finding')}", findings_more > 0),
        (f"{plural(pending - (cuts.max_items or 0), 'pending revision')}",
         cuts.max_items is not None and pending > cuts.max_items),
    ]
    return [text for text, on in labels if on]
