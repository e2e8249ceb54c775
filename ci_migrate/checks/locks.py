"""Lock trace: which locks each revision's upgrade takes on PostgreSQL, statement by statement.

For each revision of the scope (``checks.locks.scope``) a throwaway PostgreSQL database of its own
is brought to the revision's parents, then ``alembic.command.upgrade(config, revision)`` runs through
the project's env.py while SQLAlchemy's ``after_cursor_execute`` event asks, on the migration's own
connection, what its backend holds (``pg_locks`` where ``pid = pg_backend_pid()``, relation locks,
granted) and whether a table's ``pg_class.relfilenode`` changed (a rewrite). Inside the revision's
transaction locks accumulate until COMMIT; inside ``op.get_context().autocommit_block()`` each
statement commits on its own, so ``CREATE INDEX CONCURRENTLY`` shows no lock held after it.
Lock modes and what they conflict with: https://www.postgresql.org/docs/current/explicit-locking.html
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any

from ci_migrate.checks import stepwise
from ci_migrate.report import CheckResult, Finding, LockFacts, LockHeld, RevisionLocks, StatementLocks

# PostgreSQL's table lock modes, weakest first (pg_locks.mode).
MODES = ("AccessShareLock", "RowShareLock", "RowExclusiveLock", "ShareUpdateExclusiveLock", "ShareLock",
         "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock")
ACCESS_EXCLUSIVE = "AccessExclusiveLock"
_TABLES = ("SELECT c.oid, n.nspname, c.relname, c.relfilenode FROM pg_class c "
           "JOIN pg_namespace n ON n.oid = c.relnamespace "
           "WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'")
_HELD = ("SELECT t.oid, c.relfilenode, ARRAY(SELECT l.mode FROM pg_locks l WHERE l.pid = pg_backend_pid() "
         "AND l.locktype = 'relation' AND l.granted AND l.relation = t.oid) "
         "FROM unnest(%s::oid[]) AS t(oid) LEFT JOIN pg_class c ON c.oid = t.oid")


@dataclass
class _Statement:
    sql: str
    bind: str | None
    line: int | None
    started: float
    duration_ms: float = 0.0
    locks: list[tuple[str, str]] = field(default_factory=list)  # (table, mode) held after it
    rewrites: list[str] = field(default_factory=list)


@dataclass
class _Hold:
    """One lock on a pre-existing table: from the start of the statement that took it until released."""

    table: str
    mode: str
    statement: int  # index into the revision's statements
    started: float
    ended: float | None = None


class _Tracer:
    """Engine-event listeners recording one revision's statements, locks and rewrites."""

    def __init__(self, sandbox: Any, statements: stepwise.Statements, origins: stepwise.Origins, version_table: str):
        self.sandbox, self.statements, self.origins = sandbox, statements, origins
        self.version_table = version_table
        self.bind_of = {id(engine): bind for bind, engine in sandbox.engines.items()}
        self.tables: dict[str | None, dict[int, str]] = {}  # bind → oid → table name
        self.filenodes: dict[str | None, dict[int, int | None]] = {}
        self.steps: list[_Statement] = []
        self.holds: list[_Hold] = []
        self._open: dict[tuple[str | None, int, str], _Hold] = {}
        self._current: _Statement | None = None

    def snapshot(self) -> None:
        """Record the tables that exist before the revision (per bind) and their relfilenodes."""
        self.statements.reset()
        self.steps, self.holds, self._open = [], [], {}
        multi = len(self.sandbox.engines) > 1
        for bind, engine in self.sandbox.engines.items():
            with engine.connect() as conn:
                rows = conn.exec_driver_sql(_TABLES).fetchall()
            tables = {oid: _table_name(schema, name, bind if multi else None)
                      for oid, schema, name, _node in rows if name != self.version_table}
            self.tables[bind] = tables
            self.filenodes[bind] = {oid: node for oid, _s, _n, node in rows if oid in tables}

    def before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self._current = None
        if self.statements.belongs(statement):
            self._current = _Statement(sql=statement.strip(), bind=self.bind_of.get(id(conn.engine)),
                                       line=self.origins.line(), started=time.perf_counter())

    def after(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        step, self._current = self._current, None
        if step is None:
            return
        now = time.perf_counter()
        step.duration_ms = round((now - step.started) * 1000, 3)
        index = len(self.steps)
        self.steps.append(step)
        tables = self.tables.get(step.bind) or {}
        if not tables:
            return
        cur = conn.connection.dbapi_connection.cursor()
        try:
            cur.execute(_HELD, ("{" + ",".join(map(str, tables)) + "}",))
            rows = cur.fetchall()
        finally:
            cur.close()
        held = set()
        for oid, filenode, modes in rows:
            name = tables[oid]
            if filenode is not None and filenode != self.filenodes[step.bind].get(oid):
                step.rewrites.append(name)
                self.filenodes[step.bind][oid] = filenode
            for mode in modes or ():
                held.add((step.bind, oid, mode))
                step.locks.append((name, mode))
                if (step.bind, oid, mode) not in self._open:
                    hold = _Hold(table=name, mode=mode, statement=index, started=step.started)
                    self._open[(step.bind, oid, mode)] = hold
                    self.holds.append(hold)
        for key in [k for k in self._open if k[0] == step.bind and k not in held]:  # released by a commit
            self._open.pop(key).ended = step.started

    def on_end(self, conn: Any) -> None:
        """``commit``/``rollback`` listener: the transaction's locks are released."""
        bind = self.bind_of.get(id(conn.engine))
        now = time.perf_counter()
        for key in [k for k in self._open if k[0] == bind]:
            self._open.pop(key).ended = now

    def result(self, step: stepwise.Step) -> RevisionLocks:
        strongest: dict[str, str] = {}
        for s in self.steps:
            for table, mode in s.locks:
                if _rank(mode) > _rank(strongest.get(table, "")):
                    strongest[table] = mode
        rewrites = sorted({t for s in self.steps for t in s.rewrites})
        return RevisionLocks(
            revision=step.revision, message=step.message, file=step.file, statements=len(self.steps),
            access_exclusive=sorted(t for t, m in strongest.items() if m == ACCESS_EXCLUSIVE), rewrites=rewrites,
            locks=[LockHeld(relation=t, mode=m) for t, m in sorted(strongest.items())],
            steps=[StatementLocks(statement=s.sql, duration_ms=s.duration_ms,
                                  locks=[LockHeld(relation=t, mode=m) for t, m in sorted(set(s.locks))],
                                  rewrites=s.rewrites) for s in self.steps],
        )


def _rank(mode: str) -> int:
    return MODES.index(mode) if mode in MODES else -1


def _table_name(schema: str, name: str, bind: str | None) -> str:
    qualified = name if schema == "public" else f"{schema}.{name}"
    return f"{qualified} (bind {bind})" if bind else qualified


def run(ctx: Any) -> CheckResult | None:
    """Trace the locks of the revisions in scope on a PostgreSQL throwaway database.

    Returns None when nothing is in scope (scope ``pending`` and no plan). Skipped when the sandbox
    is not PostgreSQL or the replay did not reach heads. Facts: :class:`LockFacts` (per revision:
    statements with the locks held after each, rewrites, ACCESS EXCLUSIVE tables); durations in ms.
    Findings: CM601 (ACCESS EXCLUSIVE on a table that existed before the revision, warning),
    CM602 (a pre-existing table is rewritten, error). Raises :class:`DatabaseError` (exit 3) when the
    throwaway database cannot be created.
    """
    from alembic import command

    from ci_migrate.sandbox import open_sandbox

    walk = stepwise.plan_walk(ctx, "locks")
    if walk is None:
        return None
    if ctx.sandbox.dialect != "postgresql":
        return CheckResult(name="locks", status="skipped",
                           summary=f"skipped: the lock trace needs a PostgreSQL sandbox (this one is "
                                   f"{ctx.sandbox.dialect}); set sandbox: postgresql://user@host/")
    if reason := stepwise.replay_failed(ctx):
        return CheckResult(name="locks", status="skipped", summary=reason)
    started = time.perf_counter()
    project = ctx.project
    version_table = project.configure_args.get("version_table") or "alembic_version"
    statements = stepwise.Statements(version_table)
    facts = LockFacts()
    findings: list[Finding] = []
    problem = None
    with open_sandbox(ctx.settings.sandbox_url(ctx.env), project.bind_keys) as sandbox:
        tracer = _Tracer(sandbox, statements, stepwise.Origins(walk.steps), version_table)
        listeners: dict[str, Any] = {"before_cursor_execute": tracer.before, "after_cursor_execute": tracer.after,
                                     "commit": tracer.on_end, "rollback": tracer.on_end}
        for number, step in enumerate(walk.steps):
            try:
                stepwise.bring_to_parents(project, sandbox, ctx.settings, step, fresh=number == 0)
                tracer.snapshot()
                with stepwise.listening(sandbox.engines.values(), **listeners):
                    stepwise.run_command(project, sandbox, command.upgrade, step.revision, listener=statements.on_log)
            except Exception as exc:  # noqa: BLE001 - the replay passed, so say where the trace stopped
                _sql, error = stepwise.failure_parts(exc)
                problem = f"the trace stopped at {step.revision}: {error.splitlines()[0]}"
                break
            facts.revisions.append(tracer.result(step))
            findings += _judge(step, tracer, ctx.settings.severity_for("locks", "CM602", "error") is not None)
    kept = [f for f in findings if not stepwise.ignored_inline(_path(walk, f), f.line, f.rule_id)]
    duration = round(time.perf_counter() - started, 3)
    summary = _summary(facts, walk.scope, len(findings) - len(kept), problem)
    status = "error" if problem else CheckResult.status_for(kept)
    return CheckResult(name="locks", status=status, summary=summary, duration_s=duration, findings=kept, facts=facts)


def _path(walk: stepwise.Walk, finding: Finding) -> Any:
    return next((s.path for s in walk.steps if s.revision == finding.revision), None)


def _summary(facts: LockFacts, scope: str, silenced: int, problem: str | None) -> str:
    n = len(facts.revisions)
    exclusive = sum(1 for r in facts.revisions if r.access_exclusive)
    rewrites = sum(len(r.rewrites) for r in facts.revisions)
    what = f"{n} {'pending ' if scope == 'pending' else ''}revision{'s' if n != 1 else ''} traced"
    parts = []
    if exclusive:
        parts.append(f"{exclusive} take ACCESS EXCLUSIVE on existing tables")
    if rewrites:
        parts.append(f"{rewrites} table rewrite{'s' if rewrites != 1 else ''}")
    text = what + (": " + ", ".join(parts) if parts else ": no ACCESS EXCLUSIVE lock or rewrite of an existing table")
    if silenced:
        text += f" ({silenced} finding{'s' if silenced != 1 else ''} silenced inline)"
    return f"{problem} ({text})" if problem else text


def _judge(step: stepwise.Step, tracer: _Tracer, rewrites_reported: bool) -> list[Finding]:
    """CM601 per table locked ACCESS EXCLUSIVE, CM602 per table rewritten (pre-existing tables only).

    A lock taken by a statement that rewrites that table is told by its CM602 (unless CM602 is off).
    """
    findings = []
    label = f"{step.revision}" + (f" ({step.message})" if step.message else "")
    for hold in tracer.holds:
        if hold.mode != ACCESS_EXCLUSIVE or (rewrites_reported and hold.table in tracer.steps[hold.statement].rewrites):
            continue
        stmt = tracer.steps[hold.statement]
        held_ms = ((hold.ended or time.perf_counter()) - hold.started) * 1000
        until = "until the revision's COMMIT" if hold.ended is not None else "until the end of the revision"
        findings.append(Finding(
            check="locks", rule_id="CM601", severity="warning", revision=step.revision, bind=stmt.bind,
            file=step.file, line=stmt.line,
            title=f"{label} locks `{hold.table}` ACCESS EXCLUSIVE: {stepwise.short_sql(stmt.sql, 100)}",
            message=f"This statement takes an ACCESS EXCLUSIVE lock on `{hold.table}`, a table that existed before "
            f"the revision:\n  {stepwise.short_sql(stmt.sql, 400)}\nThe lock is held from this statement {until}: "
            f"{held_ms:.1f} ms on the empty sandbox; in production also as long as the rest of the revision and "
            f"any rewrite take. While it is held — and while the statement waits for it behind a long query — "
            f"every read and write of `{hold.table}` waits.",
            fix="Make the migration give up instead of queueing the app behind it, and retry it: start upgrade() "
            "with op.execute(\"SET LOCAL lock_timeout = '5s'\"); keep the revision short and alone in its "
            "transaction (Migrate(app, db, transaction_per_migration=True)); deploy it when traffic is low.",
            details={"statement": stmt.sql, "table": hold.table, "held_ms": round(held_ms, 3)},
        ))
    for index, stmt in enumerate(tracer.steps):
        for table in stmt.rewrites:
            findings.append(Finding(
                check="locks", rule_id="CM602", severity="error", revision=step.revision, bind=stmt.bind,
                file=step.file, line=stmt.line,
                title=f"{label} rewrites table `{table}`: {stepwise.short_sql(stmt.sql, 100)}",
                message=f"PostgreSQL writes a new copy of `{table}` (its relfilenode changed) for this statement:\n"
                f"  {stepwise.short_sql(stmt.sql, 400)}\nIt holds ACCESS EXCLUSIVE while it copies every row and "
                f"rebuilds every index, and until the revision commits, so reads and writes of `{table}` wait for "
                f"a time proportional to the table's size ({stmt.duration_ms:.1f} ms on the empty sandbox).",
                fix=_rewrite_recipe(stmt.sql, table),
                details={"statement": stmt.sql, "table": table, "statement_index": index},
            ))
    return findings


def _rewrite_recipe(sql: str, table: str) -> str:
    if re.search(r"\bALTER\s+COLUMN\b.*\bTYPE\b", sql, re.IGNORECASE | re.DOTALL):
        return ("Expand and contract instead of changing the type in place: add a new column of the new type, "
                "backfill it in batches, switch the app to it, then drop the old column in a later revision. "
                "(Widening VARCHAR(n) or changing VARCHAR to TEXT needs no rewrite.)")
    if re.search(r"\bADD\s+COLUMN\b.*\bDEFAULT\b", sql, re.IGNORECASE | re.DOTALL):
        return ("Add the column without the volatile default (a constant default is stored without a rewrite on "
                "PostgreSQL 11+), backfill it in batches, then ALTER COLUMN … SET DEFAULT in a later step.")
    return (f"Avoid rewriting `{table}` under lock: make the change as new objects beside the old ones, "
            "backfill in batches, then switch over (expand/contract).")
