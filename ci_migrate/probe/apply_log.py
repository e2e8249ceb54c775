"""The apply log: a table in the target itself saying which revision ``apply`` started and finished.

MySQL/MariaDB commit DDL at once, so a run killed inside a revision can leave part of it in the
database while the version table still names the revision before. To know that on the next run,
``apply`` writes a row **before** a revision's first statement and completes it after the
revision's ``upgrade()`` returns or raises, on a connection of its own in AUTOCOMMIT (so the row
survives a kill, and a rollback of the revision). The rows are written from the tracker's
``enter``/``leave`` events of the ``apply`` phase.

Table ``ci_migrate_apply_log`` (in the version table's schema), one per migrated database:

=============== =============================================================================
``id``          row number
``revision``    the revision id
``bind``        ``''`` for the default bind, else the bind key (multidb)
``started_at``  UTC, when its ``upgrade()`` was called
``finished_at`` UTC, when it returned or raised; NULL while running — or when the run was killed
``outcome``     ``ok`` | ``failed``; NULL with ``finished_at``
``runner``      ``<host name>/<pid of ci-migrate apply>``
=============== =============================================================================

SQLite targets keep no log (one file, one writer: the log's own connection would wait for the
migrating one).
"""

from __future__ import annotations

import datetime
import os
import socket
from typing import Any, Dict, List, Optional, Sequence

LOG_TABLE = "ci_migrate_apply_log"
LOGGED_DIALECTS = ("postgresql", "mysql", "mariadb")


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _iso(value: Any) -> Optional[str]:
    return value.replace(microsecond=0).isoformat() + "Z" if value is not None else None


def log_table(schema: Optional[str]) -> Any:
    """The log's ``sqlalchemy.Table``."""
    import sqlalchemy as sa

    return sa.Table(LOG_TABLE, sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
                    sa.Column("revision", sa.String(255), nullable=False),
                    sa.Column("bind", sa.String(255), nullable=False, server_default=""),
                    sa.Column("started_at", sa.DateTime, nullable=False), sa.Column("finished_at", sa.DateTime),
                    sa.Column("outcome", sa.String(16)), sa.Column("runner", sa.String(255)), schema=schema)


class ApplyLog:
    """Writes the log of one ``upgrade`` request on each migrated bind of ``target``.

    :meth:`open` creates the table where it is missing and keeps one AUTOCOMMIT connection per bind;
    :meth:`on_run` is a tracker listener. A failure to write never stops the upgrade: it is kept in
    :attr:`error` (and the rest of the run is not logged).
    """

    def __init__(self, session: Any, target: Any) -> None:
        from . import glue

        self.session, self.target = session, target
        self.table = log_table(glue.version_table_opts(session.project).get("version_table_schema"))
        self.connections: Dict[Optional[str], Any] = {}
        self.rows: Dict[int, Any] = {}  # id(Run) → row id
        self.error: Optional[str] = None
        self.runner = f"{socket.gethostname()}/{os.getppid()}"

    @property
    def kept(self) -> bool:
        return self.target.urls[None].get_backend_name() in LOGGED_DIALECTS

    def open(self) -> None:
        if not self.kept:
            return
        try:
            for key in self.target.urls:
                conn = self.target.engines[key].connect().execution_options(isolation_level="AUTOCOMMIT")
                self.connections[key] = conn
                try:
                    self.table.create(conn, checkfirst=True)
                except Exception:  # noqa: BLE001 - another app's apply created it just now
                    if not conn.dialect.has_table(conn, LOG_TABLE, self.table.schema):
                        raise
        except Exception as exc:  # noqa: BLE001 - the deploy goes on; the report says the log is missing
            self._failed(exc)

    def close(self) -> None:
        for conn in self.connections.values():
            try:
                conn.close()
            except Exception:  # noqa: BLE001
                pass
        self.connections = {}

    def _failed(self, exc: BaseException) -> None:
        self.error = _first_line(exc)
        self.close()

    def on_run(self, event: str, run: Any) -> None:
        """Tracker listener: a row as an ``apply`` revision's ``upgrade()`` starts, its end as it ends."""
        if run is None or run.direction != "upgrade" or self.session.tracker.phase != "apply":
            return
        conn = self.connections.get(run.bind if run.bind in self.connections else None)
        if conn is None:
            return
        try:
            with self.session.tracker.own_statements():
                if event == "enter":
                    result = conn.execute(self.table.insert().values(
                        revision=run.revision, bind=run.bind or "", started_at=_now(), runner=self.runner))
                    self.rows[id(run)] = result.inserted_primary_key[0]
                elif id(run) in self.rows:
                    conn.execute(self.table.update().where(self.table.c.id == self.rows.pop(id(run))).values(
                        finished_at=_now(), outcome="ok" if run.status == "ok" else "failed"))
        except Exception as exc:  # noqa: BLE001
            self._failed(exc)


def read(session: Any, target: Any, revisions: Sequence[str]) -> Dict[str, Any]:
    """The latest log row of each of ``revisions`` on each migrated bind:
    ``{"rows": {bind: [{revision, bind, started_at, finished_at, outcome, runner}]}, "kept": bool,
    "error": str | None}`` (times ISO 8601 UTC). A database without the table has no rows; one
    where it cannot be read has none either, and ``error`` says why."""
    from . import glue

    table = log_table(glue.version_table_opts(session.project).get("version_table_schema"))
    kept = target.urls[None].get_backend_name() in LOGGED_DIALECTS
    out: Dict[str, List[Dict[str, Any]]] = {}
    error = None
    with session.guard.allowing(target.urls, what="the target"):
        for key in target.urls:
            latest: Dict[tuple, Dict[str, Any]] = {}
            try:
                if kept and revisions:
                    with target.engines[key].connect() as conn:
                        if conn.dialect.has_table(conn, LOG_TABLE, table.schema):
                            query = table.select().where(table.c.revision.in_(list(revisions))).order_by(table.c.id)
                            for row in conn.execute(query).mappings():
                                latest[(row["revision"], row["bind"])] = {
                                    "revision": row["revision"], "bind": row["bind"] or None,
                                    "started_at": _iso(row["started_at"]), "finished_at": _iso(row["finished_at"]),
                                    "outcome": row["outcome"], "runner": row["runner"]}
            except Exception as exc:  # noqa: BLE001 - the deploy goes on; the report says the log was not read
                error = _first_line(exc)
            out[key or ""] = list(latest.values())
    return {"rows": out, "kept": kept, "error": error}


def _first_line(exc: BaseException) -> str:
    first = (str(getattr(exc, "orig", None) or exc).strip().splitlines() or [type(exc).__name__])[0]
    return f"{type(exc).__name__}: {first}"
