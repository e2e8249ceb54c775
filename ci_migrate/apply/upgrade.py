"""Upgrade a target: one revision per transaction, lock timeouts retried, every statement seen.

Runs ``alembic.command.upgrade(config, "heads")`` through the project's env.py with the target's
engines swapped in and two options injected through ``configure_args`` (reference/
alembic-internals.md §6): ``transaction_per_migration=True`` (a failure rolls back only the
revision it happened in, on databases with transactional DDL) and ``on_version_apply`` (timing per
revision). Revisions using ``op.get_context().autocommit_block()`` keep working: alembic commits
the revision's transaction, runs the block in AUTOCOMMIT, and begins a new one.

A lock timeout or deadlock is retried — the next ``upgrade`` starts where the database is — unless
the failing revision already committed part of its work (MySQL/MariaDB DDL, or an autocommit
block), which a rerun would repeat.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from typing import Any, Callable

from ci_migrate.alembic_env import alembic_session
from ci_migrate.checks.replay import Recorder
from ci_migrate.report import RevisionRun

Say = Callable[[str], None]
_DDL = re.compile(r"^\s*(CREATE|ALTER|DROP|RENAME|TRUNCATE|COMMENT)\b", re.I)
_LOCK_SQLSTATES = {"55P03": "lock timeout", "40P01": "deadlock"}  # PostgreSQL Appendix A, class 55/40
_LOCK_MYSQL_ERRORS = {1205: "lock wait timeout", 1213: "deadlock"}  # ER_LOCK_WAIT_TIMEOUT, ER_LOCK_DEADLOCK


def lock_failure(exc: BaseException) -> str | None:
    """``'lock timeout'``/``'deadlock'``/… when ``exc`` is a DBAPI error about waiting for a lock, else None."""
    orig = getattr(exc, "orig", None)
    if orig is None:
        return None
    state = getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)  # psycopg 3 / psycopg2
    if state in _LOCK_SQLSTATES:
        return _LOCK_SQLSTATES[state]
    args = getattr(orig, "args", ())
    if args and isinstance(args[0], int) and args[0] in _LOCK_MYSQL_ERRORS:
        return _LOCK_MYSQL_ERRORS[args[0]]
    if type(orig).__module__.startswith("sqlite3") and "database is locked" in str(orig):
        return "database is locked"
    return None


class ApplyRecorder(Recorder):
    """The replay recorder, plus the statements of the revision in progress that succeeded."""

    def __init__(self, total: int, say: Say):
        super().__init__(total, None)
        self.say = say
        self.done: list[tuple[str, bool]] = []  # (statement, ran in AUTOCOMMIT)
        self.running: tuple[str, bool] | None = None  # the statement being executed

    def on_log(self, record: Any) -> None:
        before = (self.current, self.started)
        super().on_log(record)
        if (self.current, self.started) != before:  # "Running upgrade a -> b": a new revision began
            self.done = []

    def on_statement(self, conn: Any = None, cursor: Any = None, statement: str = "", *args: Any) -> None:
        super().on_statement()
        self.running = (statement, _autocommit(conn))

    def on_executed(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self.done.append((statement, _autocommit(conn)))
        self.running = None

    @property
    def failed_outside_transaction(self) -> bool:
        """The statement that failed ran in AUTOCOMMIT (an ``autocommit_block``): whatever it did
        before failing stays (a failed CREATE INDEX CONCURRENTLY leaves an INVALID index)."""
        return bool(self.running and self.running[1])

    def on_version_apply(self, ctx: Any, step: Any, heads: Any, run_args: Any) -> None:
        count = len(self.runs)
        super().on_version_apply(ctx, step, heads, run_args)
        if len(self.runs) > count:
            run = self.runs[-1]
            bind = f" [bind {run.bind}]" if run.bind else ""
            self.say(f"  ran {run.revision}{bind} {run.message or ''} ({run.duration_ms:.0f} ms, "
                     f"{run.statements} statements)")

    def committed(self, transactional_ddl: bool) -> list[str]:
        """Statements of the revision in progress that the database has already made permanent.

        Without transactional DDL every DDL statement commits (and with it what ran before it); an
        ``autocommit_block`` commits the revision's transaction so far and then runs in AUTOCOMMIT.
        """
        if self.failed_outside_transaction:  # the block committed everything before it
            return [sql.strip() for sql, _ in self.done]
        marks = [autocommit or (not transactional_ddl and bool(_DDL.match(sql))) for sql, autocommit in self.done]
        last = max((i for i, mark in enumerate(marks) if mark), default=-1)
        return [sql.strip() for sql, _ in self.done[:last + 1]]


@dataclass
class Failure:
    """The revision that failed, with the statement and the database's error."""

    revision: str | None
    message: str | None
    bind: str | None
    error: str
    exception: str
    statement: str | None = None
    duration_ms: float = 0.0
    statements: int = 0
    committed: list[str] = field(default_factory=list)  # statements of it the database kept
    outside_transaction: bool = False  # the failing statement itself ran in AUTOCOMMIT
    lock: str | None = None  # 'lock timeout' / 'deadlock' / … when it was waiting for a lock
    exc: BaseException | None = field(default=None, repr=False)  # for the line in the revision file


@dataclass
class Outcome:
    """Every revision run (all attempts, in order), the failure if any, and the retries made."""

    runs: list[RevisionRun] = field(default_factory=list)
    failure: Failure | None = None
    retries: int = 0


def run_upgrade(project: Any, target: Any, destination: str | tuple[str, ...], *, retries: int, backoff: float,
                say: Say, total: int) -> Outcome:
    """Upgrade ``target`` (a :class:`~ci_migrate.apply.target.TargetDatabases`) to ``destination``.

    A lock timeout/deadlock is retried up to ``retries`` times after ``backoff`` × 2ⁿ seconds
    (n = 0, 1, …). Never raises for a failing revision: it is returned in ``Outcome.failure``.
    """
    outcome = Outcome()
    while True:
        recorder = ApplyRecorder(total, say)
        exc = _run_once(project, target, destination, recorder)
        outcome.runs += recorder.runs
        if exc is None:
            return outcome
        committed = recorder.committed(target.transactional_ddl) if recorder.current else []
        kind = lock_failure(exc)
        if kind and outcome.retries < retries and not committed and not recorder.failed_outside_transaction:
            delay = backoff * 2 ** outcome.retries
            outcome.retries += 1
            say(f"{kind} in revision {recorder.current or '?'} ({_first_line(exc)}); nothing of it was kept — "
                f"retry {outcome.retries} of {retries} in {delay:g} s")
            time.sleep(delay)
            continue
        outcome.failure = _failure(recorder, exc, committed, kind)
        return outcome


def _run_once(project: Any, target: Any, destination: Any, recorder: ApplyRecorder) -> Exception | None:
    from alembic import command
    from sqlalchemy import event

    engines = [target.engines[key] for key in target.migrated]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", recorder.on_statement)
        event.listen(engine, "after_cursor_execute", recorder.on_executed)
    extra = {"transaction_per_migration": True, "on_version_apply": recorder.on_version_apply}
    try:
        with alembic_session(project, target.engines, extra_args=extra, listener=recorder.on_log) as (config, _):
            command.upgrade(config, destination)
    except Exception as exc:  # noqa: BLE001 - a failing revision is reported, not raised
        return exc
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", recorder.on_statement)
            event.remove(engine, "after_cursor_execute", recorder.on_executed)
    return None


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def _failure(recorder: ApplyRecorder, exc: BaseException, committed: list[str], kind: str | None) -> Failure:
    orig = getattr(exc, "orig", None)
    statement = getattr(exc, "statement", None)
    return Failure(
        revision=recorder.current, message=recorder.message, bind=recorder.bind,
        error=str(orig or exc).strip() or type(exc).__name__,
        exception=type(orig or exc).__name__,
        statement=statement.strip() if isinstance(statement, str) else None,
        duration_ms=round((time.perf_counter() - recorder.started) * 1000, 2),
        statements=recorder.statements, committed=committed, lock=kind,
        outside_transaction=recorder.failed_outside_transaction, exc=exc,
    )


def _autocommit(conn: Any) -> bool:
    return conn is not None and conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
