"""The target of ``apply``: engines with session timeouts, its revisions, and the upgrade itself.

Engines (NullPool, one per migrated bind) get a ``connect`` event that sets the session's timeouts
before SQLAlchemy uses the connection (SQLAlchemy's "setting a default schema on connect" recipe;
alembic-internals.md §6): PostgreSQL ``lock_timeout``, ``statement_timeout`` and
``application_name``; MySQL/MariaDB ``lock_wait_timeout`` and ``innodb_lock_wait_timeout`` (whole
seconds) and MariaDB ``max_statement_time`` / MySQL ``max_execution_time``; SQLite ``busy_timeout``.

The upgrade is ``alembic.command.upgrade(config, "heads")`` through env.py with
``transaction_per_migration=True`` merged into env.py's ``configure()`` (a failure rolls back only
its revision, where DDL is transactional). A lock timeout or deadlock is retried — the next upgrade
starts where the database is — unless the failing revision already committed part of its work
(MySQL/MariaDB DDL, or an ``autocommit_block``), which a rerun would repeat.
"""

from __future__ import annotations

import math
import re
import time
from typing import Any, Dict, List, Mapping, Optional

from . import glue
from .replay import describe_failure
from .stepwise import class_listening

APPLICATION_NAME = "ci-migrate apply"
_DDL = re.compile(r"^\s*(CREATE|ALTER|DROP|RENAME|TRUNCATE|COMMENT)\b", re.I)
_LOCK_SQLSTATES = {"55P03": "lock timeout", "40P01": "deadlock"}  # PostgreSQL Appendix A, class 55/40
_LOCK_MYSQL_ERRORS = {1205: "lock wait timeout", 1213: "deadlock"}  # ER_LOCK_WAIT_TIMEOUT, ER_LOCK_DEADLOCK


def session_statements(backend: str, lock_timeout: float, statement_timeout: float, mariadb: bool = False) -> List[str]:
    """SQL that sets the migrating session's timeouts (seconds; 0 = no limit, the server's default)."""
    out: List[str] = []
    if backend == "postgresql":
        out.append(f"SET lock_timeout = '{int(lock_timeout * 1000)}ms'")
        out.append(f"SET statement_timeout = '{int(statement_timeout * 1000)}ms'")
        out.append(f"SET application_name = '{APPLICATION_NAME}'")
    elif backend in ("mysql", "mariadb"):
        if lock_timeout > 0:
            seconds = max(1, math.ceil(lock_timeout))
            out += [f"SET SESSION lock_wait_timeout = {seconds}", f"SET SESSION innodb_lock_wait_timeout = {seconds}"]
        if statement_timeout > 0:
            out.append(f"SET SESSION max_statement_time = {statement_timeout:g}" if mariadb
                       else f"SET SESSION max_execution_time = {int(statement_timeout * 1000)}")
    elif backend == "sqlite" and lock_timeout > 0:
        out.append(f"PRAGMA busy_timeout = {int(lock_timeout * 1000)}")
    return out


_READ_ONLY = {
    "postgresql": "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
    "mysql": "SET SESSION TRANSACTION READ ONLY",
    "mariadb": "SET SESSION TRANSACTION READ ONLY",
    "sqlite": "PRAGMA query_only = ON",
}


def _read_only(backend: str) -> Any:
    """A ``connect`` listener that makes every session refuse writes (``plan --target``)."""
    def set_read_only(dbapi_conn: Any, _record: Any) -> None:
        statement = _READ_ONLY.get(backend)
        if statement:
            cursor = dbapi_conn.cursor()
            cursor.execute(statement)
            cursor.close()
            dbapi_conn.commit()

    return set_read_only


def _on_connect(backend: str, lock_timeout: float, statement_timeout: float) -> Any:
    def set_timeouts(dbapi_conn: Any, _record: Any) -> None:
        saved = None
        if backend == "postgresql":  # outside any transaction, as the SQLAlchemy recipe does
            saved, dbapi_conn.autocommit = dbapi_conn.autocommit, True
        cursor = dbapi_conn.cursor()
        try:
            mariadb = False
            if backend in ("mysql", "mariadb") and statement_timeout > 0:
                cursor.execute("SELECT VERSION()")
                mariadb = "mariadb" in str(cursor.fetchone()[0]).lower()
            for sql in session_statements(backend, lock_timeout, statement_timeout, mariadb):
                cursor.execute(sql)
        finally:
            cursor.close()
            if saved is not None:
                dbapi_conn.autocommit = saved

    return set_timeouts


class Target:
    """A target's databases: ``urls`` per migrated bind, ``engines`` for every bind of the app
    (binds the migrations never touch keep the app's own engines, which env.py does not use)."""

    def __init__(self, session: Any, urls: Mapping[Optional[str], str], lock_timeout: float,
                 statement_timeout: float, read_only: bool = False) -> None:
        import sqlalchemy as sa
        from sqlalchemy.pool import NullPool

        project = session.project
        self.session, self.project = session, project
        self.urls = {key: glue.normalize_url(u) for key, u in urls.items()}
        options = project.app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {}
        self.engines: Dict[Optional[str], Any] = {}
        for key, url in self.urls.items():
            kwargs: Dict[str, Any] = {"poolclass": NullPool}
            if options.get("connect_args") and project.configured_dialect() == url.get_backend_name():
                kwargs["connect_args"] = dict(options["connect_args"])
            engine = sa.create_engine(url, **kwargs)
            listener = (_read_only(url.get_backend_name()) if read_only
                        else _on_connect(url.get_backend_name(), lock_timeout, statement_timeout))
            sa.event.listen(engine, "connect", listener, insert=True)
            self.engines[key] = engine
        own = glue.app_engines(project)
        for key in project.bind_keys:
            if key not in self.engines:
                self.engines[key] = own.get(key) or next(iter(self.engines.values()))
        self.all_urls = {key: self.urls.get(key, getattr(e, "url", None)) for key, e in self.engines.items()}

    @property
    def transactional_ddl(self) -> bool:
        """Whether alembic runs this dialect's DDL inside the transaction (``DefaultImpl.transactional_ddl``)."""
        from alembic.ddl.impl import DefaultImpl

        try:
            return bool(DefaultImpl.get_by_dialect(self.engines[None].dialect).transactional_ddl)
        except KeyError:
            return False

    def connectable(self) -> None:
        """Open and close a connection to every migrated bind; a failure is a ProbeError (``database``,
        phase ``connect``) naming the server, never the password."""
        from .errors import database_error

        with self.session.guard.allowing(self.urls, what="the target"):
            for key, url in self.urls.items():
                try:
                    self.engines[key].connect().close()
                except Exception as exc:  # noqa: BLE001 - an unreachable target is the user's environment
                    raise database_error("connect", url, exc) from None

    def heads(self) -> Dict[str, List[str]]:
        """Each migrated bind's version table (``''`` = default bind)."""
        with self.session.guard.allowing(self.urls, what="the target"):
            return {key or "": sorted(glue.current_heads(self.project, self.engines[key])) for key in self.urls}

    def tables(self) -> Dict[str, List[str]]:
        """Tables in each migrated bind's default schema, the version table and the apply log left out."""
        import sqlalchemy as sa

        from .apply_log import LOG_TABLE

        opts = glue.version_table_opts(self.project)
        version_table = opts.get("version_table", "alembic_version")
        out = {}
        with self.session.guard.allowing(self.urls, what="the target"):
            for key in self.urls:
                with self.engines[key].connect() as conn:
                    names = sa.inspect(conn).get_table_names(schema=opts.get("version_table_schema"))
                out[key or ""] = sorted(n for n in names if n not in (version_table, LOG_TABLE))
        return out

    def where(self, key: Optional[str]) -> str:
        """``host:port/database`` of a bind (no user, no password)."""
        url = self.urls[key]
        if url.get_backend_name() == "sqlite":
            return url.database or ":memory:"
        return f"{url.host or 'localhost'}{':' + str(url.port) if url.port else ''}/{url.database or ''}"

    def dispose(self) -> None:
        for key in self.urls:
            self.engines[key].dispose()


def lock_failure(exc: BaseException) -> Optional[str]:
    """``'lock timeout'``/``'deadlock'``/… when ``exc`` is a DBAPI error about waiting for a lock."""
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


class _Statements:
    """The statements of the revision in progress that succeeded, and the one running."""

    def __init__(self, session: Any) -> None:
        self.session = session
        self.done: List[tuple] = []  # (statement, ran in AUTOCOMMIT)
        self.running: Optional[tuple] = None
        self.revision: Optional[str] = None

    def before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        run = self.session.tracker.current
        if run is None or self.session.tracker.muted:
            return
        if run.revision != self.revision:
            self.revision, self.done = run.revision, []
        self.running = (statement, _autocommit(conn))

    def after(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.session.tracker.muted:  # ci-migrate's own statement (the apply log): the running one stays
            return
        if self.session.tracker.current is not None and self.running is not None:
            self.done.append(self.running)
        self.running = None

    def committed(self, transactional_ddl: bool) -> List[str]:
        """Statements of the failing revision the database has already made permanent."""
        if self.running and self.running[1]:  # the autocommit block committed everything before it
            return [sql.strip() for sql, _ in self.done]
        marks = [autocommit or (not transactional_ddl and bool(_DDL.match(sql))) for sql, autocommit in self.done]
        last = max((i for i, mark in enumerate(marks) if mark), default=-1)
        return [sql.strip() for sql, _ in self.done[:last + 1]]


def _autocommit(conn: Any) -> bool:
    return conn is not None and conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"


def upgrade(session: Any, target: Target, destination: Any, *, retries: int, backoff: float,
            resume: Optional[List[Dict[str, Any]]] = None) -> Dict[str, Any]:
    """Upgrade the target to ``destination`` (``"heads"`` or a list of heads), retrying lock timeouts
    ``retries`` times after ``backoff`` × 2ⁿ seconds. Never raises for a failing revision.

    Each revision is recorded in the target's apply log (:mod:`.apply_log`) before its first
    statement. ``resume`` (``[{revision, bind}]``) names half-applied revisions to finish: their
    objects that exist are skipped (:mod:`.resume`).

    Returns ``{"runs": [...every revision run, all attempts...], "failure": {...} | None, "retries": n,
    "resumed": [...], "log_error": str | None}``; ``failure`` adds ``committed`` (statements of it
    the database kept), ``outside_transaction`` and ``lock`` (what it waited for) to the replay's
    failure data.
    """
    from .apply_log import ApplyLog
    from .resume import Resume, hooks

    tracker = session.tracker
    tracker.start("apply")
    log = ApplyLog(session, target)
    resuming = Resume(session, resume or ())
    with session.guard.allowing(target.all_urls, what="the target"):
        log.open()
    tracker.listeners.append(log.on_run)
    try:
        with hooks(resuming):
            outcome = _upgrade(session, target, destination, retries=retries, backoff=backoff)
    finally:
        tracker.listeners.remove(log.on_run)
        log.close()
    outcome.update(resumed=resuming.report(), log_error=log.error)
    return outcome


def _upgrade(session: Any, target: Target, destination: Any, *, retries: int, backoff: float) -> Dict[str, Any]:
    from alembic import command

    tracker = session.tracker
    runs: List[Dict[str, Any]] = []
    attempts = 0
    while True:
        statements = _Statements(session)
        before = len(tracker.runs)
        error = None
        try:
            with session.guard.allowing(target.all_urls, what="the target"), \
                    class_listening(before_cursor_execute=statements.before, after_cursor_execute=statements.after), \
                    glue.alembic_session(session.project, target.all_urls, target.engines,
                                         options={"transaction_per_migration": True}) as (config, _c):
                command.upgrade(config, tuple(destination) if isinstance(destination, list) else destination)
        except Exception as exc:  # noqa: BLE001 - a failing revision is reported, not raised
            error = exc
        runs += [r.as_dict() for r in tracker.runs[before:] if r.direction == "upgrade"]
        if error is None:
            return {"runs": runs, "failure": None, "retries": attempts}
        current = tracker.current or tracker.last_failure()
        committed = statements.committed(target.transactional_ddl) if current is not None else []
        outside = bool(statements.running and statements.running[1])
        kind = lock_failure(error)
        if kind and attempts < retries and not committed and not outside:
            delay = backoff * 2 ** attempts
            attempts += 1
            first = (str(getattr(error, "orig", None) or error).strip().splitlines() or [type(error).__name__])[0]
            session.channel.emit("say", text=f"{kind} in revision {getattr(current, 'revision', None) or '?'} ({first}); "
                                 f"nothing of it was kept — retry {attempts} of {retries} in {delay:g} s")
            time.sleep(delay)
            continue
        failure = describe_failure(error, session, "upgrade")
        failure.update(committed=committed, outside_transaction=outside, lock=kind)
        return {"runs": runs, "failure": failure, "retries": attempts}


def compare_live(session: Any, target: Target, ignore: Mapping[str, Any]) -> Dict[str, Any]:
    """The drift gate: what differs between each migrated bind of the live target and the session's
    sandbox (upgraded to the target's revision by a ``replay`` request before this one).

    The sandbox is reflected and compared with the live database by alembic's ``compare_metadata``
    (the autogenerate comparison), with the project's ``compare_type``/``include_object``/
    ``include_name``/``compare_server_default`` and the config's ``ignore`` rules. Returns
    ``{"differences": {bind: [table diffs as describe.group]}}``.
    """
    import sqlalchemy as sa
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from . import describe
    from .drift import Ignorer

    project, sandbox = session.project, session.sandbox
    own = project.configure_args
    version_opts = glue.version_table_opts(project)
    out: Dict[str, Any] = {}
    for key in target.urls:
        expected = sa.MetaData()
        with session.guard.allowing(sandbox.urls), sandbox.engines[key].connect() as conn:
            expected.reflect(conn)
        version_table = expected.tables.get(version_opts.get("version_table", "alembic_version"))
        if version_table is not None:
            expected.remove(version_table)
        include = Ignorer(ignore)
        chained = own.get("include_object")
        opts = {"compare_type": own.get("compare_type", True),
                "include_object": glue.merge_options({"include_object": chained}, {"include_object": include})[
                    "include_object"] if chained else include, **version_opts}
        for name in ("include_name", "compare_server_default"):
            if name in own:
                opts[name] = own[name]
        with session.guard.allowing(target.urls, what="the target"), target.engines[key].connect() as conn:
            diffs = compare_metadata(MigrationContext.configure(conn, opts=opts), expected)
        out[key or ""] = describe.group(diffs, target.engines[key].dialect)
    return {"differences": out}
