"""Lock trace: which locks each revision's upgrade takes on PostgreSQL, statement by statement.

For each step a throwaway PostgreSQL database is brought to the revision's parents, then
``alembic.command.upgrade(config, revision)`` runs through env.py while SQLAlchemy's
``after_cursor_execute`` event (on the ``Engine`` class: whatever engine env.py uses) asks, on the
migration's own connection, what its backend holds (``pg_locks`` where ``pid = pg_backend_pid()``,
relation locks, granted) and whether a table's ``pg_class.relfilenode`` changed (a rewrite). Only
statements sent inside the revision's ``upgrade()`` count (the tracker says when). A statement sent
on a connection in autocommit (an env.py that sets ``isolation_level="AUTOCOMMIT"``) would release its
locks before they could be asked for, so it is wrapped in a transaction of its own (BEGIN … COMMIT on
the driver connection) unless it cannot run in one (``CONCURRENTLY``, ``VACUUM`` …); its locks are then
held for that statement only. Lock modes: https://www.postgresql.org/docs/current/explicit-locking.html
"""

from __future__ import annotations

import re
import time
from typing import Any, Dict, List, Optional, Tuple

from . import guard
from .recording import revision_line
from .stepwise import Walker, class_listening, revision_files

_TABLES = ("SELECT c.oid, n.nspname, c.relname, c.relfilenode FROM pg_class c "
           "JOIN pg_namespace n ON n.oid = c.relnamespace "
           "WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_'")
_HELD = ("SELECT t.oid, c.relfilenode, ARRAY(SELECT l.mode FROM pg_locks l WHERE l.pid = pg_backend_pid() "
         "AND l.locktype = 'relation' AND l.granted AND l.relation = t.oid) "
         "FROM unnest(%s::oid[]) AS t(oid) LEFT JOIN pg_class c ON c.oid = t.oid")


# statements PostgreSQL refuses inside a transaction block, and the app's own transaction control
_NO_TRANSACTION = re.compile(r"\bCONCURRENTLY\b|^\s*(VACUUM|CREATE\s+DATABASE|DROP\s+DATABASE|CREATE\s+TABLESPACE|"
                             r"DROP\s+TABLESPACE|ALTER\s+SYSTEM|BEGIN|START|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|"
                             r"RELEASE|PREPARE\s+TRANSACTION)\b", re.IGNORECASE)


def _driver_connection(conn: Any) -> Any:
    fairy = conn.connection
    return getattr(fairy, "dbapi_connection", None) or fairy.connection  # SQLAlchemy < 1.4.24: .connection


def _idle_in_autocommit(dbapi: Any) -> bool:
    """The driver connection is in autocommit and outside any transaction (psycopg 2 and 3: status 0, IDLE)."""
    info = getattr(dbapi, "info", None)
    return bool(getattr(dbapi, "autocommit", False)) and getattr(info, "transaction_status", None) == 0


def _send(dbapi: Any, sql: str) -> None:
    cur = dbapi.cursor()
    try:
        cur.execute(sql)
    finally:
        cur.close()


class Tracer:
    """Engine-event listeners recording one revision's statements, locks and rewrites."""

    def __init__(self, walker: Walker, files: Dict[str, str], version_table: str) -> None:
        self.walker, self.files, self.version_table = walker, files, version_table
        self._version = re.compile(rf"\b{re.escape(version_table)}\b", re.IGNORECASE)
        self.tables: Dict[Tuple[str, ...], Dict[int, str]] = {}  # database identity → oid → table name
        self.filenodes: Dict[Tuple[str, ...], Dict[int, Optional[int]]] = {}
        self.steps: List[Dict[str, Any]] = []
        self.holds: List[Dict[str, Any]] = []
        self._open: Dict[Tuple[Any, int, str], Dict[str, Any]] = {}
        self._current: Optional[Dict[str, Any]] = None
        self._paths: Dict[str, str] = {}
        self._bind_of: Dict[Tuple[str, ...], Optional[str]] = {}

    def snapshot(self) -> None:
        """Record the tables that exist before the revision (per bind) and their relfilenodes."""
        sandbox = self.walker.database()
        self.steps, self.holds, self._open = [], [], {}
        multi = len(self.walker.binds) > 1
        for bind in self.walker.binds:
            identity = guard.url_identity(sandbox.urls[bind])
            self._bind_of[identity] = bind
            with self.walker.session.guard.allowing(sandbox.urls), sandbox.engines[bind].connect() as conn:
                rows = conn.exec_driver_sql(_TABLES).fetchall()
            tables = {oid: _table_name(schema, name, bind if multi else None)
                      for oid, schema, name, _node in rows if name != self.version_table}
            self.tables[identity] = tables
            self.filenodes[identity] = {oid: node for oid, _s, _n, node in rows if oid in tables}

    def _identity(self, conn: Any) -> Tuple[str, ...]:
        return self.walker.session.guard.effective_identity(conn.engine.url)

    def before(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        self._current = None
        run = self.walker.session.tracker.current
        if run is None or self._version.search(statement):
            return
        identity = self._identity(conn)
        own_transaction = False
        if self.tables.get(identity) and not _NO_TRANSACTION.search(statement):
            dbapi = _driver_connection(conn)
            if _idle_in_autocommit(dbapi):
                _send(dbapi, "BEGIN")
                own_transaction = True
        self._current = {"sql": statement.strip(), "bind": self._bind_of.get(identity, run.bind),
                         "identity": identity, "line": revision_line(self.files, self._paths),
                         "started": time.perf_counter(), "duration_ms": 0.0, "locks": [], "rewrites": [],
                         "own_transaction": own_transaction}

    def after(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        step, self._current = self._current, None
        if step is None:
            return
        step["duration_ms"] = round((time.perf_counter() - step["started"]) * 1000, 3)
        index = len(self.steps)
        self.steps.append(step)
        identity = step["identity"]
        tables = self.tables.get(identity) or {}
        if not tables:
            return
        cur = conn.connection.cursor()
        try:
            cur.execute(_HELD, ("{" + ",".join(map(str, tables)) + "}",))
            rows = cur.fetchall()
        finally:
            cur.close()
        held = set()
        for oid, filenode, modes in rows:
            name = tables[oid]
            if filenode is not None and filenode != self.filenodes[identity].get(oid):
                step["rewrites"].append(name)
                self.filenodes[identity][oid] = filenode
            for mode in modes or ():
                held.add((identity, oid, mode))
                step["locks"].append([name, mode])
                if (identity, oid, mode) not in self._open:
                    hold = {"table": name, "mode": mode, "statement": index, "started": step["started"], "ended": None}
                    self._open[(identity, oid, mode)] = hold
                    self.holds.append(hold)
        for key in [k for k in self._open if k[0] == identity and k not in held]:  # released by a commit
            self._open.pop(key)["ended"] = step["started"]
        if step["own_transaction"]:  # the statement's own transaction: its locks end with it
            _send(_driver_connection(conn), "COMMIT")
            now = time.perf_counter()
            for key in [k for k in self._open if k[0] == identity]:
                hold = self._open.pop(key)
                hold["ended"], hold["statement_only"] = now, True

    def on_end(self, conn: Any) -> None:
        """``commit``/``rollback`` listener: the transaction's locks are released."""
        identity = self._identity(conn)
        now = time.perf_counter()
        for key in [k for k in self._open if k[0] == identity]:
            self._open.pop(key)["ended"] = now

    def result(self, step: Dict[str, Any]) -> Dict[str, Any]:
        """``{revision, statements: [{sql, bind, line, duration_ms, locks, rewrites, own_transaction}], holds: [{table,
        mode, statement, held_ms, until_commit, statement_only}]}``; ``held_ms`` in milliseconds on the sandbox
        (``statement_only``: the statement ran in a transaction of its own, see the module docstring)."""
        now = time.perf_counter()
        statements = [{k: s[k] for k in ("sql", "bind", "line", "duration_ms", "locks", "rewrites", "own_transaction")}
                      for s in self.steps]
        holds = [{"table": h["table"], "mode": h["mode"], "statement": h["statement"],
                  "held_ms": round(((h["ended"] or now) - h["started"]) * 1000, 3),
                  "until_commit": h["ended"] is not None, "statement_only": h.get("statement_only", False)}
                 for h in self.holds]
        return {"revision": step["revision"], "statements": statements, "holds": holds}


def _table_name(schema: str, name: str, bind: Optional[str]) -> str:
    qualified = name if schema == "public" else f"{schema}.{name}"
    return f"{qualified} (bind {bind})" if bind else qualified


def trace(session: Any, steps: List[Dict[str, Any]], baseline: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Trace every step; stops at the first step that cannot be upgraded (``stopped``: where and why)."""
    from alembic import command

    session.tracker.start("locks")
    walker = Walker(session, baseline)
    version_table = session.project.configure_args.get("version_table") or "alembic_version"
    tracer = Tracer(walker, revision_files(steps), version_table)
    traced: List[Dict[str, Any]] = []
    stopped = None
    try:
        for step in steps:
            try:
                walker.bring_to_parents(step)
                tracer.snapshot()
                with class_listening(before_cursor_execute=tracer.before, after_cursor_execute=tracer.after,
                                     commit=tracer.on_end, rollback=tracer.on_end):
                    walker.run(command.upgrade, step["revision"])
            except Exception as exc:  # noqa: BLE001 - the replay passed, so say where the trace stopped
                error = str(getattr(exc, "orig", None) or exc).strip() or type(exc).__name__
                stopped = {"revision": step["revision"], "error": error.splitlines()[0]}
                break
            traced.append(tracer.result(step))
    finally:
        walker.close()
    return {"revisions": traced, "stopped": stopped}
