"""The migration lock: one ``apply`` at a time per target database.

A session-level lock held on its own connection (never the migrating one) for the whole run:

* PostgreSQL: ``pg_advisory_lock(key)`` (PostgreSQL docs, "Advisory Locks"; the lock space is per
  database), the wait bounded by ``SET lock_timeout``; the key is a signed 64-bit hash of the
  version table's name.
* MySQL/MariaDB: ``GET_LOCK(name, seconds)`` / ``RELEASE_LOCK(name)`` (server-wide, so the name
  includes the database).
* SQLite: ``flock()`` on the database file (SQLite itself uses POSIX ``fcntl`` locks, so the two
  never interfere).

The server drops a session-level lock when the session ends, so a runner that dies cannot leave
the lock behind.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
import time
from dataclasses import dataclass, field
from typing import Any, Callable

Say = Callable[[str], None]
APPLICATION_NAME = "ci-migrate apply"


class LockNotAcquired(Exception):
    """The lock was not free within the wait; ``holder`` says who holds it (if the server knows)."""

    def __init__(self, lock: "MigrationLock", holder: str | None, waited_s: float):
        super().__init__(f"{lock.label}: held by {holder or 'another session'}")
        self.lock, self.holder, self.waited_s = lock, holder, waited_s


def lock_key(text: str) -> int:
    """A stable signed 64-bit key for ``pg_advisory_lock`` (first 8 bytes of SHA-256)."""
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big", signed=True)


def lock_text(version_table: str, version_table_schema: str | None) -> str:
    """What the lock is named after: ``ci-migrate:<schema>.<version table>``."""
    return f"ci-migrate:{version_table_schema + '.' if version_table_schema else ''}{version_table}"


@dataclass
class MigrationLock:
    """Base: ``label`` is what the report shows (e.g. ``pg_advisory_lock(123) on db:5432/app``)."""

    url: Any
    name: str
    where: str
    label: str = ""
    conn: Any = field(default=None, repr=False)
    engine: Any = field(default=None, repr=False)

    def _connect(self) -> Any:
        import sqlalchemy as sa
        from sqlalchemy.pool import NullPool

        self.engine = sa.create_engine(self.url, poolclass=NullPool, isolation_level="AUTOCOMMIT")
        self.conn = self.engine.connect()
        return self.conn

    def acquire(self, wait_s: float, say: Say) -> float:
        """Take the lock, waiting up to ``wait_s`` seconds; returns the seconds waited.

        Raises :class:`LockNotAcquired` after the wait, ``sqlalchemy.exc.OperationalError`` when
        the server cannot be reached.
        """
        raise NotImplementedError

    def release(self) -> None:
        """Release the lock and close its session (closing alone would release it, too)."""
        try:
            if self.conn is not None:
                with contextlib.suppress(Exception):
                    self._unlock()
                self.conn.close()
        finally:
            self.conn = None
            if self.engine is not None:
                self.engine.dispose()

    def _unlock(self) -> None:  # pragma: no cover - overridden
        pass

    def _waiting(self, say: Say, holder: str | None, wait_s: float) -> None:
        say(f"waiting up to {wait_s:g} s for the migration lock on {self.where}, "
            f"held by {holder or 'another session'} (another deploy is migrating this database)")


class PostgresLock(MigrationLock):
    """``pg_advisory_lock`` on a separate AUTOCOMMIT session, polled with ``pg_try_advisory_lock``.

    Waiting runners poll (every 0.2 s) instead of blocking in ``pg_advisory_lock``: a blocked
    statement holds a snapshot for the whole wait, and ``CREATE INDEX CONCURRENTLY`` in the lock
    holder's revision waits for every older snapshot in the database — holder and waiters would
    wait for each other until the holder's ``lock_timeout`` fired (seen in the concurrency test).
    """

    poll_s = 0.2

    @property
    def key(self) -> int:
        return lock_key(self.name)

    def _try(self) -> bool:
        from sqlalchemy import text

        return bool(self.conn.execute(text("SELECT pg_try_advisory_lock(:k)"), {"k": self.key}).scalar())

    def acquire(self, wait_s: float, say: Say) -> float:
        conn = self._connect()
        conn.exec_driver_sql(f"SET application_name = '{APPLICATION_NAME} (lock)'")
        started = time.monotonic()
        if self._try():
            return 0.0
        holder = self.holder()
        if wait_s > 0:
            self._waiting(say, holder, wait_s)
        while time.monotonic() - started < wait_s:
            time.sleep(self.poll_s)
            if self._try():
                return time.monotonic() - started
        raise LockNotAcquired(self, self.holder() or holder, time.monotonic() - started)

    def holder(self) -> str | None:
        """``pid N (application, client address, since …)`` of the session holding the lock."""
        from sqlalchemy import text

        unsigned = self.key & 0xFFFFFFFFFFFFFFFF
        row = self.conn.execute(text(
            "SELECT a.pid, a.application_name, host(a.client_addr), a.usename, "
            "date_trunc('second', now() - a.backend_start) "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1 "
            "AND l.classid = CAST(:hi AS oid) AND l.objid = CAST(:lo AS oid) "
            "AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())"),
            {"hi": unsigned >> 32, "lo": unsigned & 0xFFFFFFFF}).first()
        if row is None:
            return None
        pid, app, addr, user, age = row
        parts = [p for p in (app or None, f"user {user}" if user else None, f"from {addr}" if addr else None,
                             f"connected {age} ago" if age is not None else None) if p]
        return f"pid {pid}" + (f" ({', '.join(parts)})" if parts else "")

    def _unlock(self) -> None:
        from sqlalchemy import text

        self.conn.execute(text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})


class MySQLLock(MigrationLock):
    """``GET_LOCK`` (MySQL/MariaDB user-level lock; names are server-wide, at most 64 characters)."""

    def acquire(self, wait_s: float, say: Say) -> float:
        from sqlalchemy import text

        conn = self._connect()
        if conn.execute(text("SELECT GET_LOCK(:n, 0)"), {"n": self.name}).scalar() == 1:
            return 0.0
        holder = self.holder()
        if wait_s <= 0:
            raise LockNotAcquired(self, holder, 0.0)
        self._waiting(say, holder, wait_s)
        started = time.monotonic()
        got = conn.execute(text("SELECT GET_LOCK(:n, :s)"), {"n": self.name, "s": max(1, math.ceil(wait_s))}).scalar()
        if got != 1:
            raise LockNotAcquired(self, self.holder(), time.monotonic() - started)
        return time.monotonic() - started

    def holder(self) -> str | None:
        from sqlalchemy import text

        conn_id = self.conn.execute(text("SELECT IS_USED_LOCK(:n)"), {"n": self.name}).scalar()
        if conn_id is None:
            return None
        row = self.conn.execute(text("SELECT USER, HOST, TIME FROM information_schema.PROCESSLIST WHERE ID = :i"),
                                {"i": conn_id}).first()
        if row is None:
            return f"connection {conn_id}"
        return f"connection {conn_id} (user {row[0]}, from {row[1]}, connected {row[2]} s ago)"

    def _unlock(self) -> None:
        from sqlalchemy import text

        self.conn.execute(text("SELECT RELEASE_LOCK(:n)"), {"n": self.name})


class SQLiteLock(MigrationLock):
    """``flock(LOCK_EX)`` on the database file, polled every 0.1 s."""

    fd: int | None = None

    def acquire(self, wait_s: float, say: Say) -> float:
        import fcntl
        import os

        self.fd = os.open(self.url.database, os.O_RDWR | os.O_CREAT, 0o644)
        started, announced = time.monotonic(), False
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return time.monotonic() - started
            except BlockingIOError:
                waited = time.monotonic() - started
                if waited >= wait_s:
                    os.close(self.fd)
                    self.fd = None
                    raise LockNotAcquired(self, None, waited) from None
                if not announced:
                    self._waiting(say, None, wait_s)
                    announced = True
                time.sleep(0.1)

    def release(self) -> None:
        import os

        if self.fd is not None:
            os.close(self.fd)  # closing the descriptor drops the flock
            self.fd = None


def make_lock(url: Any, version_table: str, version_table_schema: str | None) -> MigrationLock | None:
    """The lock for the database at ``url`` (a ``sqlalchemy.engine.URL``); None when the database
    cannot be locked (in-memory SQLite, or a dialect without a known lock)."""
    backend = url.get_backend_name()
    name = lock_text(version_table, version_table_schema)
    where = _where(url)
    if backend == "postgresql":
        lock: MigrationLock = PostgresLock(url, name, where)
        lock.label = f"pg_advisory_lock({lock.key}) on {where}"
    elif backend in ("mysql", "mariadb"):
        full = f"{name}@{url.database}"
        if len(full) > 64:
            full = "ci-migrate:" + hashlib.sha256(full.encode()).hexdigest()[:40]
        lock = MySQLLock(url, full, where)
        lock.label = f"GET_LOCK('{full}') on {where}"
    elif backend == "sqlite" and url.database and url.database != ":memory:" and not url.database.startswith("file:"):
        lock = SQLiteLock(url, name, where)
        lock.label = f"flock({url.database})"
    else:
        return None
    return lock


def _where(url: Any) -> str:
    if url.get_backend_name() == "sqlite":
        return url.database or ":memory:"
    port = f":{url.port}" if url.port else ""
    return f"{url.host or 'localhost'}{port}/{url.database or ''}"


@dataclass
class LockSet:
    """The locks of every migrated bind, taken in a fixed order (so two runners cannot deadlock)."""

    locks: list[MigrationLock]
    held: list[MigrationLock] = field(default_factory=list)
    waited_s: float = 0.0

    @property
    def label(self) -> str | None:
        return "; ".join(lock.label for lock in self.locks) or None

    def acquire(self, wait_s: float, say: Say) -> None:
        """Take every lock (each waiting up to ``wait_s``); on failure the ones taken are released.

        Raises :class:`LockNotAcquired`, or :class:`~ci_migrate.errors.DatabaseError` (exit 3) naming
        the server when a lock session cannot be opened or used.
        """
        import sqlalchemy as sa

        from ci_migrate.errors import DatabaseError
        from ci_migrate.sandbox import describe_connect_error

        for lock in self.locks:
            try:
                self.waited_s += lock.acquire(wait_s, say)
            except BaseException as exc:
                lock.release()  # closes its session
                self.release()
                if isinstance(exc, sa.exc.DBAPIError):
                    raise DatabaseError(f"taking the migration lock {lock.label} failed: "
                                        + describe_connect_error(lock.url, exc)) from None
                raise
            self.held.append(lock)

    def release(self) -> None:
        while self.held:
            self.held.pop().release()
