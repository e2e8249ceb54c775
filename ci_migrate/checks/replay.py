"""Replay the whole history (base → heads) on the sandbox through the project's own env.py.

Mirrors ``flask db upgrade`` (``alembic.command.upgrade(config, "heads")``) with the app's engines
swapped for the sandbox's. Records per revision: duration and statement count; on failure, a
finding naming the revision file, the failing statement and the database's error.
"""

from __future__ import annotations

import re
import time
import traceback
from pathlib import Path
from typing import Any, Callable

from ci_migrate.alembic_env import alembic_session, version_table_opts
from ci_migrate.report import CheckResult, Finding, ReplayFacts, RevisionRun

_RUNNING = re.compile(r"Running upgrade (?P<src>.*?) -> (?P<rev>[^,\s]+)(?:, (?P<msg>.*))?$", re.S)
_BIND = re.compile(r"Migrating database (?P<name>\S+)")

Progress = Callable[[int, int, str], None]  # (done, total, revision)


class Recorder:
    """Follows alembic's log and ``on_version_apply`` callbacks to time each revision."""

    def __init__(self, total: int, progress: Progress | None):
        self.total, self.progress = total, progress
        self.runs: list[RevisionRun] = []
        self.current: str | None = None
        self.message: str | None = None
        self.bind: str | None = None
        self.started = time.perf_counter()
        self.statements = 0

    def on_log(self, record: Any) -> None:
        text = record.getMessage()
        if m := _BIND.match(text):
            name = m["name"]
            self.bind = None if name in ("<default>", "") else name
        elif m := _RUNNING.match(text):
            self.current, self.message = m["rev"], (m["msg"] or "").strip() or None
            self.started = time.perf_counter()
            self.statements = 0

    def on_statement(self, *args: Any) -> None:
        self.statements += 1

    def on_version_apply(self, ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
        if not step.is_upgrade or getattr(step, "is_stamp", False):
            return
        revision = step.up_revision_id
        bind = run_args.get("engine_name") if isinstance(run_args, dict) else None
        self.runs.append(
            RevisionRun(
                revision=revision,
                message=self.message,
                bind=bind or self.bind,
                status="applied",
                duration_ms=round((time.perf_counter() - self.started) * 1000, 2),
                statements=self.statements,
            )
        )
        self.current = None
        if self.progress:
            self.progress(len(self.runs), self.total, revision)


def run(ctx: Any) -> CheckResult:
    """Upgrade the sandbox (``ctx.sandbox``) from base (or the configured baseline) to heads.

    Uses ``ctx.revision_files`` (revision id → file, from the graph scan) to name files in
    findings, and calls ``ctx.progress(done, total, revision)`` after each revision.
    Returns ``CheckResult(name='replay', facts=ReplayFacts)``; findings: CM201 (a revision failed),
    CM202 (the first revision needs tables the history never creates: configure a baseline),
    CM203 (env.py did not migrate the sandbox), CM204 (the sandbox dialect is not production's).
    """
    result = replay(ctx.project, ctx.sandbox, ctx.settings, revision_files=ctx.revision_files,
                    progress=ctx.progress)
    prod = ctx.production_dialect
    if prod and prod != ctx.sandbox.dialect and (ctx.settings.targets or prod != "sqlite"):
        result.findings.append(_dialect_mismatch(ctx.sandbox.dialect, prod, ctx.production_source,
                                                 bool(ctx.settings.targets)))
    return result


def _dialect_mismatch(sandbox: str, production: str, source: str, has_targets: bool) -> Finding:
    example = "postgresql://postgres@localhost/" if production == "postgresql" else f"{production}://root@localhost/"
    return Finding(
        check="replay", rule_id="CM204", severity="warning" if has_targets else "info",
        title=f"the sandbox is {sandbox} but production is {production} ({source})",
        message=f"Migrations were replayed on {sandbox}; {production} can fail where {sandbox} passes "
        "(types, constraints, transactional DDL), and drift results are approximate.",
        fix=f"Point `sandbox:` at a {production} server, e.g. sandbox: {example}",
    )


def replay(project: Any, sandbox: Any, settings: Any, *, revision_files: dict[str, Path],
           progress: Progress | None = None, destination: tuple[str, ...] | None = None) -> CheckResult:
    """Upgrade ``sandbox`` to heads (or to the ``destination`` revisions) through the project's
    env.py; see :func:`run`."""
    from alembic import command
    from sqlalchemy import event

    started = time.perf_counter()
    total = len(revision_files) * max(1, len(project.bind_keys) if project.multidb else 1)
    recorder = Recorder(total, progress)
    facts = ReplayFacts(dialect=sandbox.dialect)
    findings: list[Finding] = []
    for engine in sandbox.engines.values():
        event.listen(engine, "before_cursor_execute", recorder.on_statement)
    try:
        with alembic_session(project, sandbox.engines, extra_args={"on_version_apply": recorder.on_version_apply},
                             listener=recorder.on_log) as (config, _capture):
            baseline = settings.baseline
            try:
                if baseline is not None:
                    facts.start = baseline.revision
                    apply_baseline(project, sandbox, settings)
                    command.stamp(config, baseline.revision)
                command.upgrade(config, destination or "heads")
            except Exception as exc:  # a revision failed: report it, do not crash
                findings.append(_failure(project, recorder, exc, revision_files, settings))
    finally:
        for engine in sandbox.engines.values():
            event.remove(engine, "before_cursor_execute", recorder.on_statement)
    facts.revisions = recorder.runs
    if not findings:
        facts.heads_after, problem = _verify_heads(project, sandbox, destination)
        if problem:
            findings.append(problem)
    facts.duration_s = round(time.perf_counter() - started, 3)
    applied = len({r.revision for r in recorder.runs})
    binds = len({r.bind for r in recorder.runs})
    plural = "s" if applied != 1 else ""
    on_binds = f" on {binds} binds" if binds > 1 else ""
    if findings:
        summary = f"failed after {applied} revision{plural}: {findings[0].title}"
    else:
        summary = f"{applied} revision{plural} applied{on_binds} on {sandbox.dialect} in {facts.duration_s:.1f} s"
    return CheckResult(name="replay", status=CheckResult.status_for(findings), summary=summary,
                       duration_s=facts.duration_s, findings=findings, facts=facts)


def apply_baseline(project: Any, sandbox: Any, settings: Any) -> None:
    """Create the baseline schema: run the schema SQL file, or ``db.create_all()`` on the sandbox."""
    baseline = settings.baseline
    if baseline.create_all:
        project.db.create_all()
        return
    path = Path(baseline.schema_file)
    if not path.is_absolute():
        path = settings.root / path
    sql = path.read_text(encoding="utf-8")
    engine = sandbox.engines[None]
    raw = engine.raw_connection()
    try:
        if sandbox.dialect == "sqlite":
            raw.driver_connection.executescript(sql)
        elif sandbox.dialect == "postgresql":
            cur = raw.cursor()
            cur.execute(sql)
            cur.close()
        else:  # MySQL/MariaDB: one statement at a time
            cur = raw.cursor()
            for statement in (s.strip() for s in sql.split(";")):
                if statement:
                    cur.execute(statement)
            cur.close()
        raw.commit()
    finally:
        raw.close()


def _failure(project: Any, recorder: Recorder, exc: BaseException, revision_files: dict[str, Path],
             settings: Any) -> Finding:
    revision = recorder.current
    file = revision_files.get(revision or "")
    line = line_in(exc, file) if file else None
    statement = getattr(exc, "statement", None)
    db_error = str(getattr(exc, "orig", None) or exc).strip()
    short = db_error.splitlines()[0] if db_error else type(exc).__name__
    parts = [f"Upgrading to revision {revision or '?'}"
             + (f" ({recorder.message})" if recorder.message else "")
             + (f" on bind {recorder.bind!r}" if recorder.bind else "") + " failed."]
    if statement:
        parts.append(f"Statement:\n{statement.strip()}")
    parts.append(f"Database error: {db_error}" if statement else f"{type(exc).__name__}: {db_error}")
    first_revision = revision is not None and not recorder.runs  # nothing applied before it
    missing_table = re.search(r"no such table|does not exist|doesn't exist|Unknown table", db_error, re.I)
    if first_revision and missing_table and settings.baseline is None:
        return Finding(
            check="replay", rule_id="CM202", severity="error", revision=revision,
            file=project.relative(file) if file else None, line=line,
            title=f"first revision {revision} needs tables that no revision creates",
            message="\n".join(parts) + "\nThe app probably creates its first tables with db.create_all() "
            "and then stamps, so the history cannot be replayed from an empty database.",
            fix="Add a baseline to .ci-migrate.yml, e.g.\n  baseline:\n"
            f"    revision: {revision}\n    schema: schema.sql   # pg_dump --schema-only taken at that revision's parent\n"
            "or `create-all: true` to let db.create_all() make the starting schema.",
            details={"statement": statement, "error": db_error},
        )
    return Finding(
        check="replay", rule_id="CM201", severity="error", revision=revision, bind=recorder.bind,
        file=project.relative(file) if file else None, line=line,
        title=f"revision {revision or '?'} failed to apply: {short}",
        message="\n".join(parts),
        fix="Run `flask db upgrade` against a fresh database locally to reproduce, then fix the revision.",
        details={"statement": statement, "error": db_error, "exception": type(exc).__name__},
    )


def line_in(exc: BaseException, file: Path) -> int | None:
    """The innermost line (1-based) of ``file`` in ``exc``'s traceback, or None if it is not there."""
    target = str(Path(file).resolve())
    line = None
    for frame in traceback.extract_tb(exc.__traceback__):
        if str(Path(frame.filename).resolve()) == target:
            line = frame.lineno
    return line


def _verify_heads(project: Any, sandbox: Any, destination: tuple[str, ...] | None = None,
                  ) -> tuple[dict[str, list[str]], Finding | None]:
    """Read each migrated bind's version table: the truth, not the callbacks."""
    from alembic.migration import MigrationContext

    from ci_migrate.alembic_env import script_directory

    with project.app_context():
        expected = set(destination or script_directory(project).get_heads())
    binds = project.bind_keys if project.multidb else [None]
    heads: dict[str, list[str]] = {}
    wrong = []
    for key in binds:
        with sandbox.engines[key].connect() as conn:
            current = MigrationContext.configure(conn, opts=version_table_opts(project)).get_current_heads()
        heads[key or ""] = sorted(current)
        if set(current) != expected:
            wrong.append((key, sorted(current)))
    if not wrong:
        return heads, None
    where = ", ".join(f"{k or 'default'} bind at {v or 'no revision'}" for k, v in wrong)
    return heads, Finding(
        check="replay", rule_id="CM203", severity="error",
        file=project.relative(project.migrations_dir / "env.py"),
        title="the sandbox is not at head after the upgrade",
        message=f"After `upgrade heads` the sandbox has: {where}; expected {sorted(expected)}. "
        "env.py probably builds its own engine (e.g. from DATABASE_URL) instead of using the app's "
        "Flask-SQLAlchemy engine, so the migrations ran somewhere else.",
        fix="Make env.py take the engine from current_app.extensions['migrate'].db, as the "
        "Flask-Migrate template does.",
    )
