"""Replay the whole history (base → heads) on the sandbox through the project's own env.py.

Mirrors ``flask db upgrade``: the probe runs ``alembic.command.upgrade(config, "heads")`` with the
app pointed at the sandbox (:mod:`ci_migrate.probe.replay`), and records what the pending revisions
do while they run. Judged here: CM201 (a revision — or env.py — failed, with file:line, the failing
statement and the database's error), CM202 (the first revision needs tables the history never
creates: configure a baseline), CM203 (the sandbox is not at head afterwards), CM204 (the sandbox
dialect is not production's).
"""

from __future__ import annotations

import re
from typing import Any

from ci_migrate.checks import script_dirs
from ci_migrate.facts import Failure, Recorded, RevisionCall
from ci_migrate.probe.guard import dialect_family
from ci_migrate.report import CheckResult, Finding, ReplayFacts, RevisionRun

# A table (or its index) the revision expects is missing — not any missing object: PostgreSQL's
# `type "datetime" does not exist` is a revision written for another dialect.
_MISSING_TABLE = re.compile(r"no such (table|index)|\b(relation|table|index|sequence|view) \"[^\"]*\" does not "
                            r"exist|Table '[^']*' doesn't exist|Unknown table", re.I)


def run(ctx: Any) -> CheckResult:
    """Upgrade the sandbox from base (or the configured baseline) to heads; see the module docstring.

    On a pull request the base's part comes from the cached base snapshot when there is one for this
    key (:mod:`ci_migrate.cache.base`), else the replay pauses at the base's heads to keep one."""
    from ci_migrate.cache import base as base_cache
    from ci_migrate.checks.walk import walks_from_base
    from ci_migrate.probe.guard import GuardOffence, redirect_note

    pending = ctx.pending
    record = list(pending.revisions) if pending is not None else []
    snapshot_at = before_pending(ctx.history, pending.revisions) if pending is not None and pending.base_ref \
        and pending.revisions and not pending.unavailable else None
    cache = base_cache.start(ctx, snapshot_at)
    if cache is not None:
        cache.walks = walks_from_base(ctx)
        ctx.data["base_snapshot"] = cache
        ctx.runtime.restore_main = cache.restore
        ctx.runtime.probe.checkpoint = lambda _event: cache.build(ctx.runtime.sandbox())
    try:
        sandbox = ctx.sandbox
    finally:
        ctx.runtime.restore_main = None
    restored = bool(sandbox.restored)
    data = replay(ctx, record=record, snapshot_at=snapshot_at, checkpoint=cache is not None and not restored)
    ctx.runtime.probe.checkpoint = None
    ctx.report.notes += [redirect_note(GuardOffence(**r)) for r in data.get("redirected") or ()]
    ctx.recorded = {rev: Recorded.from_data(entry, online=True) for rev, entry in (data.get("recorded") or {}).items()}
    result = judge(ctx, data, sandbox.dialect)
    if cache is not None:
        _with_cache(result, cache)
    snaps = data.get("snapshots") or {}
    if "before" in snaps and "after" in snaps:
        ctx.report.schema_change = schema_changes(snaps["before"], snaps["after"], record)
    prod = ctx.production_dialect
    mismatch = dialect_mismatch(sandbox.dialect, prod, ctx.production_source, bool(ctx.settings.targets))
    if mismatch is not None:
        result.findings.append(mismatch)
        result.status = CheckResult.status_for(result.findings)
    return result


def _with_cache(result: CheckResult, cache: Any) -> None:
    """The base snapshot's outcome on the replay's facts (and summary, when it was restored)."""
    from ci_migrate.report import ReplayCache

    outcome = cache.outcome
    result.facts.cache = ReplayCache(state=outcome.state, key=outcome.key, how=outcome.how, reason=outcome.reason,
                                     revisions=outcome.revisions)
    if cache.summary and not result.findings:
        result.summary += f" + {cache.summary}"


def baseline_request(ctx: Any) -> dict[str, Any] | None:
    """What the probe does before the replay: ``{"create_all": bool, "stamp": revision}``, or None
    without a baseline (a schema file was loaded by the host when it made the sandbox)."""
    baseline = ctx.settings.baseline
    if baseline is None or ctx.runtime.base_models is not None:  # built by the host from the base's models
        return None
    return {"create_all": bool(baseline.create_all), "stamp": baseline.revision or "heads"}


def replay(ctx: Any, *, record: list[str] | None = None, destination: list[str] | None = None,
           snapshot_at: list[str] | None = None, checkpoint: bool = False) -> dict[str, Any]:
    """Ask the probe to replay on the main sandbox (after loading the baseline, if any); with
    ``snapshot_at`` (the base's heads) it reflects the sandbox there and at the end. ``checkpoint``:
    it pauses there for the base snapshot. A sandbox restored from the snapshot says so itself."""
    ctx.sandbox  # made (and prepared) before the probe replays on it
    return ctx.probe.call("replay", baseline=baseline_request(ctx), record=record or [], destination=destination,
                          snapshot_at=snapshot_at, checkpoint=checkpoint)


def before_pending(history: Any, pending: list[str]) -> list[str]:
    """Where this branch's history stands before its pending revisions: the revisions that are not
    pending and have no child that is not pending (the base's heads as this branch has them), less
    those below another one of them — a pull request that modifies a merged revision makes its parent
    such a revision, and alembic refuses an upgrade to two revisions of one line ("overlaps")."""
    left = set(pending)
    by_id = history.by_id
    found = [r for r in history.order if r not in left and all(c in left for c in by_id[r].children)]
    below = set().union(*(history.ancestors(by_id[r].down_revisions + by_id[r].depends_on) for r in found))
    return [r for r in found if r not in below]


def schema_changes(before: dict[str, Any], after: dict[str, Any], revisions: list[str]) -> Any:
    """The schema change of the pending revisions, per migrated bind, as one fact."""
    from ci_migrate.schema_change import combine, schema_change

    return combine(schema_change(before.get(bind, {}), after.get(bind, {}), bind=bind or None, revisions=revisions)
                   for bind in sorted(set(before) | set(after)))


def judge(ctx: Any, data: dict[str, Any], dialect: str, destination: list[str] | None = None) -> CheckResult:
    """The replay check's result from the probe's answer."""
    calls = [RevisionCall.from_data(r) for r in data.get("runs") or ()]
    failure = Failure.from_data(data.get("failure"))
    facts = ReplayFacts(dialect=dialect, start=_start(ctx),
                        duration_s=float(data.get("duration_s") or 0))
    facts.revisions = [RevisionRun(revision=c.revision, message=c.message, bind=c.bind,
                                   status="applied" if c.status == "ok" else "failed",
                                   duration_ms=round(c.duration_ms, 2), statements=c.statements) for c in calls]
    findings: list[Finding] = []
    if failure is not None:
        applied_before = [c for c in calls if c.status == "ok"]
        empty_before = None if any(c.statements for c in applied_before) else [c.revision for c in applied_before]
        findings.append(failure_finding(ctx, failure, empty_before=empty_before))
    else:
        facts.heads_after = {k: list(v) for k, v in (data.get("heads_after") or {}).items()}
        problem = verify_heads(ctx, facts.heads_after, destination)
        if problem is not None:
            findings.append(problem)
        if not destination and ctx.directories:
            after = data.get("directories_after") or {}
            facts.directories = script_dirs.directory_heads(ctx.directories, after)
            findings += script_dirs.verify_directory_heads(ctx.directories, after)
    applied = len({c.revision for c in calls if c.status == "ok"})
    binds = len({c.bind for c in calls})
    plural = "s" if applied != 1 else ""
    on_binds = f" on {binds} binds" if binds > 1 else ""
    if ctx.directories and not destination:
        on_binds += f" from {len(ctx.directories) + 1} script directories"
    if findings:
        summary = f"failed after {applied} revision{plural}: {findings[0].title}"
    else:
        summary = f"{applied} revision{plural} applied{on_binds} on {dialect} in {facts.duration_s:.1f} s"
    return CheckResult(name="replay", status=CheckResult.status_for(findings), summary=summary,
                       duration_s=facts.duration_s, findings=findings, facts=facts)


def _start(ctx: Any) -> str:
    """Where the replay started: ``base``, the baseline revision, or the heads a create-all baseline was
    stamped at (the base branch's on a pull request, else the history's)."""
    baseline = ctx.settings.baseline
    if baseline is None:
        return "base"
    if baseline.revision:
        return baseline.revision
    heads = ctx.pending.current if ctx.runtime.base_models is not None else ctx.history.heads
    return ",".join(heads) or "base"


def dialect_mismatch(sandbox: str, production: str | None, source: str, has_targets: bool) -> Finding | None:
    """CM204: the sandbox is not production's dialect. Nothing when production's dialect is unknown
    (no target URL set and no server URL in the app), or when the app only says SQLite without
    targets (the usual local default)."""
    if not production or production == sandbox or (production == "sqlite" and not has_targets):
        return None
    if dialect_family(production) == dialect_family(sandbox):
        return None
    example = {"postgresql": "sandbox: postgresql://postgres@localhost/",
               "mysql": "sandbox: mysql+pymysql://root@localhost/",
               "mariadb": "sandbox: mysql+pymysql://root@localhost/"}.get(production)
    return Finding(
        check="replay", rule_id="CM204", severity="warning" if has_targets else "info",
        title=f"the sandbox is {sandbox} but production is {production} ({source})",
        message=f"Migrations were replayed on {sandbox}; {production} can fail where {sandbox} passes "
        "(types, constraints, transactional DDL), and drift results are approximate.",
        fix=f"Point `sandbox:` at a {production} server where throwaway databases can be created, e.g. {example}"
        if example else f"Replay on a {production} sandbox for exact results.",
    )


def failure_finding(ctx: Any, failure: Failure, *, empty_before: list[str] | None, check: str = "replay") -> Finding:
    """CM201 (or CM202) for a failed upgrade: the revision (or env.py) with file:line, the statement
    and the database's error. ``empty_before``: the revisions applied before the failing one when none
    of them sent a statement (``[]``: it is the first), else None — a missing table then means a
    history that starts from ``db.create_all()`` (CM202)."""
    project = ctx.project
    revision = failure.revision
    file = failure.file or (project.relative(ctx.revision_files[revision]) if revision in ctx.revision_files else None)
    db_error = failure.error.strip()
    short = failure.first_line
    if failure.where == "revision":
        head = (f"Upgrading to revision {revision}" + (f" ({failure.message})" if failure.message else "")
                + (f" on bind {failure.bind!r}" if failure.bind else "") + " failed"
                + (f" at {file}:{failure.line}" if file and failure.line else "") + ".")
        title = f"revision {revision} failed to apply: {short}"
    elif failure.where == "env.py":
        head = f"env.py failed before a revision ran, at {failure.file}:{failure.line}" + (
            f":\n  {failure.code}" if failure.code else ".")
        title = f"{failure.file}:{failure.line} failed: {short}"
    elif failure.where == "baseline":
        head = "Building the baseline schema with db.create_all() failed."
        title = f"the baseline (create-all) failed: {short}"
    else:
        head = "alembic stopped before any revision ran."
        title = f"the upgrade failed: {short}"
    parts = [head]
    if failure.statement:
        parts.append(f"Statement:\n{failure.statement}")
    parts.append(f"Database error: {db_error}" if failure.statement else f"{failure.exception}: {db_error}")
    details = {"statement": failure.statement, "error": db_error, "exception": failure.exception}
    if failure.directory:
        return _directory_failure(failure, parts, title, details, check)
    if (failure.where == "revision" and empty_before is not None and _MISSING_TABLE.search(db_error)
            and ctx.settings.baseline is None):
        which = (f"first revision {revision}" if not empty_before
                 else f"revision {revision}, the first that changes the schema,")
        before = (f"\nThe revisions before it change nothing ({', '.join(empty_before)}: empty upgrade())."
                  if empty_before else "")
        return Finding(
            check=check, rule_id="CM202", severity="error", revision=revision, file=file, line=failure.line,
            title=f"{which} needs tables that no revision creates",
            message="\n".join(parts) + before + "\nThe app probably creates its first tables with db.create_all() "
            "and then stamps, so the history cannot be replayed from an empty database.",
            fix="Add a baseline to .ci-migrate.yml, e.g.\n  baseline:\n"
            f"    revision: base       # the schema is the state before {revision} runs\n"
            "    schema: schema.sql   # e.g. pg_dump --schema-only of a database the app's create_all() made then\n"
            "or `baseline: {create-all: true}` alone to build the schema with db.create_all() and stamp the heads.",
            details=details)
    fix = (f"Run `{project.cli} upgrade` against a fresh database locally to reproduce, then fix "
           + ("the revision." if failure.where == "revision" else "env.py."))
    hint = _dialect_hint(ctx, failure)
    if hint is not None:
        parts.append(hint[0])
        fix = hint[1]
    return Finding(check=check, rule_id="CM201", severity="error", revision=revision, bind=failure.bind,
                   file=file, line=failure.line, title=title, message="\n".join(parts), fix=fix, details=details)


# alembic's NotImplementedError for an ALTER that SQLite can only do by copying the table (batch mode)
_SQLITE_NEEDS_BATCH = re.compile(r"No support for ALTER of constraints in SQLite dialect", re.I)


def _dialect_hint(ctx: Any, failure: Failure) -> tuple[str, str] | None:
    """``(why, fix)`` when the failure comes from running on another dialect than the migrations or
    the app were written for: a revision SQLite cannot run outside batch mode, on a SQLite sandbox; or
    env.py failing on a sandbox of another dialect than the URL the app was created with (what the app
    set up for its own database, such as a SQLite ``PRAGMA`` in an engine ``connect`` listener, runs on
    the sandbox's connections too). None otherwise."""
    sandboxes = ctx.runtime.sandboxes
    sandbox = sandboxes.dialect if sandboxes is not None else None
    configured = ctx.project.configured_dialect
    if sandbox == "sqlite" and failure.where == "revision" and _SQLITE_NEEDS_BATCH.search(failure.error):
        return ("alembic cannot run this operation on SQLite outside batch mode: the revision was written for "
                "another database.",
                "If production runs PostgreSQL or MySQL, replay on it: `sandbox: postgresql://user@host/` (or "
                "`mysql://user@host/`) in .ci-migrate.yml. If the app must migrate SQLite too, put the operation in "
                "`with op.batch_alter_table(...)` (`Migrate(app, db, render_as_batch=True)` makes `flask db migrate` "
                "write it so).")
    if (failure.where == "env.py" and configured and sandbox
            and dialect_family(configured) != dialect_family(sandbox)):
        return (f"The app was created with a {configured} database URL and the sandbox is {sandbox}: what the app set "
                f"up for its own database when it was created (an engine `connect` listener such as a SQLite PRAGMA, "
                f"a dialect option) runs on the sandbox's connections too.",
                f"Give the app a {sandbox} URL when ci-migrate runs it (the variable its config reads, e.g. "
                f"DATABASE_URL), or replay on a {configured} sandbox.")
    return None


def _directory_failure(failure: Failure, parts: list[str], title: str, details: dict[str, Any],
                       check: str) -> Finding:
    """CM201 for a failure while an extra script directory was upgraded (after the app's history)."""
    directory = failure.directory
    head = parts[0]
    parts = [f"{directory} (upgraded after the app's history): {head[0].lower()}{head[1:]}", *parts[1:]]
    what = {"revision": "the revision.", "env.py": "its env.py."}.get(failure.where, "the directory or its entry "
                                                                                     "in `migrations:`.")
    fix = f"Upgrade the app's history and then {directory} on a fresh database to reproduce, then fix {what}"
    if failure.exception == "VersionTableMismatch":  # the probe's own check: its last line says what to do
        fix = failure.error.strip().splitlines()[-1]
    return Finding(check=check, rule_id="CM201", severity="error", revision=failure.revision, bind=failure.bind,
                   file=failure.file, line=failure.line, title=f"{directory}: {title}", message="\n".join(parts),
                   fix=fix, details={**details, "directory": directory})


def verify_heads(ctx: Any, heads_after: dict[str, list[str]], destination: list[str] | None) -> Finding | None:
    """CM203: a migrated bind's version table is not at the expected heads after the upgrade."""
    expected = set(destination or ctx.history.heads)
    wrong = [(k, v) for k, v in heads_after.items() if set(v) != expected]
    if not wrong:
        return None
    project = ctx.project
    where = ", ".join(f"{k or 'default'} bind at {v or 'no revision'}" for k, v in wrong)
    return Finding(
        check="replay", rule_id="CM203", severity="error", file=project.env_py,
        title="the sandbox is not at head after the upgrade",
        message=f"After `upgrade heads` the sandbox has: {where}; expected {sorted(expected)}. env.py ran "
        "without error but did not bring every migrated database to head (a custom env.py that skips a bind, "
        "or stamps instead of migrating).",
        fix="Make env.py migrate every bind with the app's engines, as the Flask-Migrate template does.",
    )

