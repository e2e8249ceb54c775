"""Lock trace: which locks each revision's upgrade takes on PostgreSQL, statement by statement.

For each revision of the scope (``checks.locks.scope``) the probe brings a throwaway PostgreSQL
database to the revision's parents and runs ``upgrade(revision)`` through env.py while it asks, after
every statement the revision sends, what the migration's own session holds (``pg_locks``) and
whether a table's ``pg_class.relfilenode`` changed (a rewrite) — see :mod:`ci_migrate.probe.locks`.
Inside the revision's transaction locks accumulate until COMMIT; inside
``op.get_context().autocommit_block()`` each statement commits on its own, so ``CREATE INDEX
CONCURRENTLY`` shows no lock held after it. An env.py that runs everything in AUTOCOMMIT has each
statement traced in a transaction of its own: its locks are held for that statement only.
Lock modes and what they conflict with: https://www.postgresql.org/docs/current/explicit-locking.html

Findings: CM601 (ACCESS EXCLUSIVE on a table that existed before the revision, warning), CM602 (a
pre-existing table is rewritten, error), CM603 (a revision that changes the schema was not traced:
0 statements seen, warning — never "passed").
"""

from __future__ import annotations

import re
import time
from typing import Any

from ci_migrate.checks import suppress
from ci_migrate.checks import walk as walks
from ci_migrate.report import CheckResult, Finding, LockFacts, LockHeld, RevisionLocks, StatementLocks

# PostgreSQL's table lock modes, weakest first (pg_locks.mode).
MODES = ("AccessShareLock", "RowShareLock", "RowExclusiveLock", "ShareUpdateExclusiveLock", "ShareLock",
         "ShareRowExclusiveLock", "ExclusiveLock", "AccessExclusiveLock")
ACCESS_EXCLUSIVE = "AccessExclusiveLock"


def _rank(mode: str) -> int:
    return MODES.index(mode) if mode in MODES else -1


def revision_locks(step: walks.Step, traced: dict[str, Any]) -> RevisionLocks:
    """The report's facts for one traced revision."""
    strongest: dict[str, str] = {}
    for s in traced["statements"]:
        for table, mode in s["locks"]:
            if _rank(mode) > _rank(strongest.get(table, "")):
                strongest[table] = mode
    rewrites = sorted({t for s in traced["statements"] for t in s["rewrites"]})
    return RevisionLocks(
        revision=step.revision, message=step.message, file=step.file, statements=len(traced["statements"]),
        access_exclusive=sorted(t for t, m in strongest.items() if m == ACCESS_EXCLUSIVE), rewrites=rewrites,
        locks=[LockHeld(relation=t, mode=m) for t, m in sorted(strongest.items())],
        steps=[StatementLocks(statement=s["sql"], duration_ms=s["duration_ms"],
                              locks=[LockHeld(relation=t, mode=m) for t, m in sorted({tuple(x) for x in s["locks"]})],
                              rewrites=list(s["rewrites"])) for s in traced["statements"]])


def run(ctx: Any) -> CheckResult | None:
    """Trace the locks of the revisions in scope on a PostgreSQL throwaway database.

    Returns None when nothing is in scope (scope ``pending`` and nothing pending). Skipped when the
    sandbox is not PostgreSQL or the replay did not reach heads. Facts: :class:`LockFacts`;
    durations in ms.
    """
    walk = walks.plan_walk(ctx, "locks")
    if walk is None:
        return None
    dialect = ctx.runtime.sandboxes.dialect if ctx.runtime.sandboxes else "none"
    if dialect != "postgresql":
        return CheckResult(name="locks", status="skipped",
                           summary=f"skipped: the lock trace needs a PostgreSQL sandbox (this one is "
                                   f"{dialect}); set sandbox: postgresql://user@host/")
    if reason := walks.replay_failed(ctx):
        return CheckResult(name="locks", status="skipped", summary=reason)
    started = time.perf_counter()
    with walks.databases(ctx, walk):
        data = ctx.probe.call("locks", steps=[s.request() for s in walk.steps], baseline=walks.baseline_request(ctx))
    by_rev = {s.revision: s for s in walk.steps}
    facts = LockFacts()
    findings: list[Finding] = []
    untraced = []
    rewrites_reported = ctx.settings.severity_for("locks", "CM602", "error") is not None
    for traced in data.get("revisions") or ():
        step = by_rev[traced["revision"]]
        facts.revisions.append(revision_locks(step, traced))
        findings += _judge(step, traced, rewrites_reported)
        if not traced["statements"] and _changes_schema(ctx, step.revision):
            untraced.append(step)
            findings.append(_not_traced(step))
    stopped = data.get("stopped")
    problem = f"the trace stopped at {stopped['revision']}: {stopped['error']}" if stopped else None
    kept, silenced = suppress.silence(findings, lambda f: walk.path_of(f.revision))
    summary = _summary(facts, walk.scope, silenced, problem, len(untraced))
    status = "error" if problem else CheckResult.status_for(kept)
    return CheckResult(name="locks", status=status, summary=summary, duration_s=round(time.perf_counter() - started, 3),
                       findings=kept, facts=facts)


def _changes_schema(ctx: Any, revision: str) -> bool:
    """Whether the revision sent statements when it ran on the sandbox (the replay's count), or its
    recorded operations are not empty."""
    replayed = ctx.result("replay")
    runs = replayed.facts.revisions if replayed is not None and replayed.facts is not None else []
    if any(r.revision == revision and (r.statements or 0) > 0 for r in runs):
        return True
    recorded = ctx.recorded.get(revision)
    return bool(recorded and recorded.ops)


def _not_traced(step: walks.Step) -> Finding:
    return Finding(
        check="locks", rule_id="CM603", severity="warning", revision=step.revision, file=step.file,
        title=f"{step.label}: not traced: none of its statements were seen",
        message=(f"{step.revision} changes the schema when it runs, but the lock trace saw none of its statements, "
                 "so nothing is known about the locks it takes: this is not a pass."),
        fix="Check that env.py and the revision run their statements through SQLAlchemy (not a raw driver "
            "connection of their own).")


def _summary(facts: LockFacts, scope: str, silenced: int, problem: str | None, untraced: int) -> str:
    n = len(facts.revisions)
    exclusive = sum(1 for r in facts.revisions if r.access_exclusive)
    rewrites = sum(len(r.rewrites) for r in facts.revisions)
    what = f"{n} {'pending ' if scope == 'pending' else ''}revision{'s' if n != 1 else ''} traced"
    parts = []
    if untraced:
        parts.append(f"{untraced} not traced")
    if exclusive:
        parts.append(f"{exclusive} take ACCESS EXCLUSIVE on existing tables")
    if rewrites:
        parts.append(f"{rewrites} table rewrite{'s' if rewrites != 1 else ''}")
    text = what + (": " + ", ".join(parts) if parts else ": no ACCESS EXCLUSIVE lock or rewrite of an existing table")
    if silenced:
        text += f" ({silenced} finding{'s' if silenced != 1 else ''} silenced inline)"
    return f"{problem} ({text})" if problem else text


def _judge(step: walks.Step, traced: dict[str, Any], rewrites_reported: bool) -> list[Finding]:
    """CM601 per table locked ACCESS EXCLUSIVE, CM602 per table rewritten (pre-existing tables only).

    A lock taken by a statement that rewrites that table is told by its CM602 (unless CM602 is off).
    """
    findings = []
    statements = traced["statements"]
    for hold in traced["holds"]:
        stmt = statements[hold["statement"]]
        if hold["mode"] != ACCESS_EXCLUSIVE or (rewrites_reported and hold["table"] in stmt["rewrites"]):
            continue
        findings.append(_access_exclusive(step, stmt, hold))
    for index, stmt in enumerate(statements):
        for table in stmt["rewrites"]:
            findings.append(Finding(
                check="locks", rule_id="CM602", severity="error", revision=step.revision, bind=stmt["bind"],
                file=step.file, line=stmt["line"],
                title=f"{step.label} rewrites table `{table}`: {walks.short_sql(stmt['sql'], 100)}",
                message=f"PostgreSQL writes a new copy of `{table}` (its relfilenode changed) for this statement:\n"
                f"  {walks.short_sql(stmt['sql'], 400)}\nIt holds ACCESS EXCLUSIVE while it copies every row and "
                f"rebuilds every index{_until_commit(stmt)}, so reads and writes of `{table}` wait for "
                f"a time proportional to the table's size ({stmt['duration_ms']:.1f} ms on the empty sandbox).",
                fix=_rewrite_recipe(stmt["sql"], table),
                details={"statement": stmt["sql"], "table": table, "statement_index": index},
            ))
    return findings


def _until_commit(stmt: dict[str, Any]) -> str:
    """How long a rewrite's lock lasts past the statement: to the revision's COMMIT, unless env.py runs the
    statement in AUTOCOMMIT (traced in a transaction of its own)."""
    return " (env.py runs it in AUTOCOMMIT)" if stmt.get("own_transaction") else ", and until the revision commits"


def _access_exclusive(step: walks.Step, stmt: dict[str, Any], hold: dict[str, Any]) -> Finding:
    """CM601 for one ACCESS EXCLUSIVE hold; ``statement_only``: env.py runs the statement in AUTOCOMMIT."""
    table, held_ms = hold["table"], hold["held_ms"]
    if hold.get("statement_only"):
        held = (f"The lock is held while this statement runs (env.py runs it in AUTOCOMMIT): {held_ms:.1f} ms on "
                "the empty sandbox; in production as long as the statement takes.")
        timeout = "op.execute(\"SET lock_timeout = '5s'\") (in AUTOCOMMIT SET LOCAL does nothing)"
    else:
        until = "until the revision's COMMIT" if hold["until_commit"] else "until the end of the revision"
        held = (f"The lock is held from this statement {until}: {held_ms:.1f} ms on the empty sandbox; in "
                "production also as long as the rest of the revision and any rewrite take.")
        timeout = "op.execute(\"SET LOCAL lock_timeout = '5s'\")"
    return Finding(
        check="locks", rule_id="CM601", severity="warning", revision=step.revision, bind=stmt["bind"],
        file=step.file, line=stmt["line"],
        title=f"{step.label} locks `{table}` ACCESS EXCLUSIVE: {walks.short_sql(stmt['sql'], 100)}",
        message=f"This statement takes an ACCESS EXCLUSIVE lock on `{table}`, a table that existed before "
        f"the revision:\n  {walks.short_sql(stmt['sql'], 400)}\n{held} While it is held — and while the statement "
        f"waits for it behind a long query — every read and write of `{table}` waits.",
        fix=f"Make the migration give up instead of queueing the app behind it, and retry it: start upgrade() "
        f"with {timeout}; keep the revision short and alone in its transaction "
        "(Migrate(app, db, transaction_per_migration=True)); deploy it when traffic is low.",
        details={"statement": stmt["sql"], "table": table, "held_ms": round(held_ms, 3)},
    )


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
