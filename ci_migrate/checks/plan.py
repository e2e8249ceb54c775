"""The plan check: the pending revisions, the operations each one performs and the SQL it runs.

The pending revisions come from :mod:`.pending` (against the base branch or a target). What each
one does is recorded by the probe in two ways (:mod:`ci_migrate.probe.recording`): while it ran on
the sandbox during the replay (online — this sees revisions that read the database through
``op.get_bind()`` or reflection), and as alembic's offline SQL (``flask db upgrade --sql``, in the
target's dialect, else production's, else the sandbox's). Lint reads the online recording when
there is one; the offline SQL stays the view a reviewer reads, where it renders.

Leaves ``ctx.data["plan"]`` (a :class:`Plan`) for lint. Findings: those of :mod:`.pending`
(CM401–CM403, CM406), CM404 (a revision cannot be rendered as offline SQL), CM405 (offline SQL
ignores the app's version table option).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ci_migrate.checks import base_branch
from ci_migrate.facts import Recorded
from ci_migrate.report import CheckResult, Finding, PlanFacts, PlannedRevision


@dataclass
class PlanItem:
    """One pending revision: what it does (``recorded``: online when it ran on the sandbox, else the
    offline rendering) and its offline SQL (``offline``; None when it was not rendered)."""

    revision: str
    message: str | None
    file: Path | None  # absolute
    rel_file: str | None
    status: str  # new | modified | pending
    recorded: Recorded | None
    offline: Recorded | None
    created_tables: set[str] = field(default_factory=set)  # tables this revision creates (lower-case)

    @property
    def analysed(self) -> bool:
        """Its operations are known completely (it ran on the sandbox, or rendered offline)."""
        return self.recorded is not None and (self.recorded.online or self.recorded.error is None)


@dataclass
class Plan:
    """What lint reads: the pending revisions in upgrade order and the dialect of their operations."""

    against: str
    dialect: str
    revisions: list[PlanItem] = field(default_factory=list)


def run(ctx: Any) -> CheckResult | None:
    """The plan of ``ctx.pending``; None when there is neither a base nor a target."""
    pending = ctx.pending
    if pending is None:
        return None
    started = time.perf_counter()
    findings = list(pending.findings)
    if pending.unavailable:
        status = CheckResult.status_for(findings)
        return CheckResult(name="plan", status=status if findings else "skipped",
                           summary=f"pending revisions unknown: {pending.unavailable}", findings=findings,
                           duration_s=round(time.perf_counter() - started, 3),
                           facts=PlanFacts(against=pending.against, current=list(pending.current)))
    project = ctx.project
    sql_url = target_dialect_url(pending.target_url) if pending.target_url else dialect_url(ctx)
    offline, dialect, offline_error = _render(ctx, pending.revisions, sql_url)
    by_id = ctx.history.by_id
    plan = Plan(against=pending.against, dialect=dialect)
    facts = PlanFacts(against=pending.against, dialect=dialect, current=list(pending.current))
    for rid in pending.revisions:
        file = ctx.revision_files.get(rid)
        online = ctx.recorded.get(rid)
        rendered = offline.get(rid)
        item = PlanItem(rid, by_id[rid].message if rid in by_id else None, file,
                        project.relative(file) if file else None, pending.status(rid),
                        online if online is not None else rendered, rendered)
        if item.recorded is not None:
            item.created_tables = {o.table for o in item.recorded.ops if o.kind == "CreateTableOp" and o.table}
        plan.revisions.append(item)
        sql, sql_error = _sql(item, offline_error)
        facts.pending.append(PlannedRevision(
            revision=rid, message=item.message, file=item.rel_file, status=item.status,  # type: ignore[arg-type]
            author=base_branch.author(project.root, file) if file and pending.base_ref else None,
            operations=[o.text for o in item.recorded.ops] if item.recorded else [], sql=sql, sql_error=sql_error))
        if rendered is not None and rendered.error:
            findings.append(_unrenderable(item, rendered, dialect))
    if pending.revisions and (project.version_table or project.version_table_schema):
        findings.append(_version_table_note(project))
    ctx.data["plan"] = plan
    return CheckResult(name="plan", status=CheckResult.status_for(findings),
                       summary=_summary(facts, pending.target, pending.base_ref),
                       duration_s=round(time.perf_counter() - started, 3), findings=findings, facts=facts)


def _render(ctx: Any, revisions: list[str], sql_url: str) -> tuple[dict[str, Recorded], str, str | None]:
    """Offline SQL of ``revisions`` from the probe: ``({revision: Recorded}, dialect, error)``."""
    dialect = sql_url.split(":", 1)[0].split("+", 1)[0]
    if not revisions:
        return {}, dialect, None
    parents = {rid: list(rev.down_revisions) for rid, rev in ctx.history.by_id.items()}
    data = ctx.probe.call("offline", pending=list(revisions), parents=parents, dialect_url=sql_url)
    if data.get("error"):
        return {}, dialect, data["error"]
    found = {rid: Recorded.from_data(entry, online=False) for rid, entry in (data.get("revisions") or {}).items()}
    return found, data.get("dialect") or dialect, None


def _sql(item: PlanItem, offline_error: str | None) -> tuple[str | None, str | None]:
    """The SQL shown for a revision: its offline SQL, else (with why) the statements it ran on the sandbox."""
    if item.offline is not None and item.offline.error is None:
        return sql_text(item.offline), None
    why = (item.offline.error if item.offline is not None else offline_error) or "not rendered"
    if item.recorded is not None and item.recorded.online and item.recorded.statements:
        reason = " ".join(why.split())
        reason = reason if len(reason) <= 300 else reason[:299] + "…"
        header = f"-- as run on the sandbox (offline SQL cannot be rendered)\n-- {reason}\n"
        return header + sql_text(item.recorded), why
    return None, why


def sql_text(recorded: Recorded) -> str:
    """A revision's statements one after another; multidb: a ``-- bind: <name>`` line before each
    database's part."""
    parts: list[str] = []
    binds = {s.bind for s in recorded.statements}
    bind: Any = ()
    for statement in recorded.statements:
        if len(binds) > 1 and statement.bind != bind:
            bind = statement.bind
            parts.append(f"-- bind: {bind or '(default)'}")
        text = statement.text.strip()
        parts.append(text if text.endswith(";") or text.startswith("--") else text + ";")
    return "\n".join(parts)


def target_dialect_url(url: str) -> str:
    """``<dialect>://`` of a target URL (the offline SQL needs only the dialect)."""
    from ci_migrate.sandbox import normalize_url

    return f"{normalize_url(url).get_backend_name()}://"


def dialect_url(ctx: Any) -> str:
    """No target: SQL in production's dialect (the targets' URLs, else the app's own URL), else the
    sandbox's. An app URL that is SQLite (the usual local default) loses to a server sandbox."""
    from ci_migrate.sandbox import dialect_of

    sandbox_dialect = dialect_of(ctx.settings.sandbox)
    dialect = ctx.production_dialect
    from_app = not ctx.production_source.startswith("target")
    if not dialect or (from_app and dialect == "sqlite" and sandbox_dialect != "sqlite"):
        dialect = sandbox_dialect
    return f"{dialect}://"


def _unrenderable(item: PlanItem, rendered: Recorded, dialect: str) -> Finding:
    ran = item.recorded is not None and item.recorded.online
    return Finding(
        check="plan", rule_id="CM404", severity="info", revision=item.revision, file=item.rel_file,
        line=rendered.error_line or (rendered.ops[-1].line if rendered.ops else None),
        title=f"revision {item.revision} cannot be rendered as offline SQL",
        message=(f"alembic's offline mode ({dialect}) stopped in {item.revision}: {rendered.error}\n"
                 "The revision reads from the database (op.get_bind(), reflection, or SQLite batch mode), "
                 "which offline mode cannot do: `flask db upgrade --sql` fails the same way. "
                 + ("Its operations and statements were recorded while it ran on the sandbox, and checked there."
                    if ran else "It did not run on a sandbox in this run, so it was not analysed.")),
        fix=("Nothing to do if you deploy with `flask db upgrade`. If you deploy offline SQL, guard the "
             "database reads with `if not context.is_offline_mode():` (`from alembic import context`)."),
    )


def _version_table_note(project: Any) -> Finding:
    options = {k: v for k, v in (("version_table", project.version_table),
                                 ("version_table_schema", project.version_table_schema)) if v}
    shown = ", ".join(f"{k}={v!r}" for k, v in options.items())
    return Finding(
        check="plan", rule_id="CM405", severity="info", file=project.env_py,
        title="the offline SQL updates alembic_version, but the app uses " + shown,
        message=(f"Migrate(..., {shown}) is passed to context.configure() only in online mode: Flask-Migrate's "
                 "env.py leaves it out offline, so this SQL (like `flask db upgrade --sql`) writes to "
                 "alembic_version. Online upgrades are not affected."),
        fix=("If you deploy offline SQL, pass the same option in run_migrations_offline() of env.py: "
             "context.configure(url=url, ..., **current_app.extensions['migrate'].configure_args)."),
    )


def _summary(facts: PlanFacts, target: str | None, base_ref: str | None) -> str:
    pending = facts.pending
    where = f"target {target}" if target else f"{base_ref}"
    if not pending:
        if target:
            return f"{where} is at head ({', '.join(facts.current) or 'empty'}): nothing pending"
        return f"this branch adds or changes no revision compared with {base_ref}"
    listed = ", ".join(f"{p.revision} ({p.message or 'no message'})" for p in pending[:3])
    more = f" and {len(pending) - 3} more" if len(pending) > 3 else ""
    verb = "pending on" if target else "new vs"
    noun = "revision" if len(pending) == 1 else "revisions"
    return f"{len(pending)} {noun} {verb} {where} ({facts.dialect} SQL): {listed}{more}"
