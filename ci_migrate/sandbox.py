"""Throwaway databases ("sandboxes"): a SQLite temp file, or ``CREATE DATABASE`` on a server.

One database per bind. Every database made here is dropped when the sandbox closes — in
``finally``, and on SIGTERM/SIGINT (the handler turns the signal into ``SystemExit`` so the
``finally`` blocks run) — unless it is kept on purpose (``--keep-sandbox``).
"""

from __future__ import annotations

import contextlib
import importlib.util
import secrets
import shutil
import signal
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator

from ci_migrate.errors import DatabaseError, UsageError
from ci_migrate.masking import mask_url


def normalize_url(url: str | Any) -> Any:
    """Parse a server URL and pick an installed driver for plain dialect names.

    ``postgresql://`` (and Heroku's ``postgres://``) → ``postgresql+psycopg`` when psycopg 3 is
    installed, else ``postgresql+psycopg2``; ``mysql://``/``mariadb://`` → ``+pymysql`` when PyMySQL
    is installed. Raises :class:`UsageError` for a URL SQLAlchemy cannot parse.
    """
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    if isinstance(url, str) and url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    try:
        parsed = make_url(url)
    except ArgumentError as exc:
        raise UsageError(f"Not a database URL: {mask_url(str(url))} ({exc})") from None
    if parsed.drivername == "postgresql":
        driver = "psycopg" if _has_psycopg3_dialect() else "psycopg2"
        parsed = parsed.set(drivername=f"postgresql+{driver}")
    elif parsed.drivername in ("mysql", "mariadb") and importlib.util.find_spec("pymysql"):
        parsed = parsed.set(drivername=f"{parsed.drivername}+pymysql")
    return parsed


def _has_psycopg3_dialect() -> bool:
    """psycopg 3 is installed and SQLAlchemy (>= 2.0) has its dialect."""
    return bool(importlib.util.find_spec("psycopg")) and bool(
        importlib.util.find_spec("sqlalchemy.dialects.postgresql.psycopg"))


def same_database(a: Any, b: Any) -> bool:
    """True when two URLs name the same database on the same server (driver and user ignored)."""
    a, b = normalize_url(a), normalize_url(b)
    if a.get_backend_name() != b.get_backend_name():
        return False
    if a.get_backend_name() == "sqlite":
        return bool(a.database) and Path(a.database).resolve() == Path(b.database or "").resolve()
    default_port = {"postgresql": 5432, "mysql": 3306, "mariadb": 3306}.get(a.get_backend_name())
    host = lambda u: (u.host or "localhost").replace("127.0.0.1", "localhost")  # noqa: E731
    return (host(a), a.port or default_port, a.database) == (host(b), b.port or default_port, b.database)


@dataclass
class Sandbox:
    """Open throwaway databases, one per bind key (``None`` = default).

    ``engines`` are ready to use (NullPool, so nothing stays connected between commands).
    """

    dialect: str
    urls: dict[str | None, Any]
    engines: dict[str | None, Any]
    kept: bool = False
    server_url: Any = None
    _tmpdir: str | None = None
    _created: list[str] = field(default_factory=list)

    @property
    def display_url(self) -> str:
        """The default bind's URL with the password masked."""
        return mask_url(self.urls[None])

    def close(self) -> None:
        """Dispose engines and drop the databases (unless kept). Safe to call twice."""
        for engine in self.engines.values():
            engine.dispose()
        if self.kept:
            return
        if self._tmpdir:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None
        if self._created:
            _drop_databases(self.server_url, self._created)
            self._created = []


def _admin_engine(server_url: Any) -> Any:
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    backend = server_url.get_backend_name()
    if backend == "postgresql":
        admin_url = server_url.set(database=server_url.database or "postgres")
    else:
        admin_url = server_url.set(database=None)
    return sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def _quote(backend: str, name: str) -> str:
    return f"`{name}`" if backend in ("mysql", "mariadb") else f'"{name}"'


def _drop_databases(server_url: Any, names: Iterable[str]) -> None:
    backend = server_url.get_backend_name()
    engine = _admin_engine(server_url)
    try:
        with engine.connect() as conn:
            for name in names:
                force = " WITH (FORCE)" if backend == "postgresql" else ""
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {_quote(backend, name)}{force}")
    finally:
        engine.dispose()


def describe_connect_error(url: Any, exc: BaseException) -> str:
    """A person-readable message for a failed connection: host, port, database, never the password."""
    detail = str(getattr(exc, "orig", exc)).strip().splitlines()
    first = detail[0] if detail else type(exc).__name__
    where = f"{url.host or 'localhost'}{':' + str(url.port) if url.port else ''}"
    return (
        f"Cannot connect to the {url.get_backend_name()} server at {where} "
        f"(database {url.database or '(none)'!s}, user {url.username or '(default)'}): {first}\n"
        "  Check that the server is running and reachable from here, and the user and password "
        f"(URL used: {mask_url(url)})."
    )


def _create_server_databases(server_url: Any, bind_keys: list[str | None], tag: str) -> dict[str | None, str]:
    import sqlalchemy as sa

    backend = server_url.get_backend_name()
    names = {key: f"ci_migrate_{tag}" + (f"_{key.lower()}" if key else "") for key in bind_keys}
    engine = _admin_engine(server_url)
    try:
        with engine.connect() as conn:
            for name in names.values():
                conn.exec_driver_sql(f"CREATE DATABASE {_quote(backend, name)}")
    except sa.exc.OperationalError as exc:
        raise DatabaseError(describe_connect_error(engine.url, exc)) from None
    except sa.exc.DBAPIError as exc:
        raise DatabaseError(
            f"Could not create a sandbox database on {mask_url(engine.url)}: {exc.orig}\n"
            "  The sandbox user needs the right to CREATE DATABASE (PostgreSQL: CREATEDB)."
        ) from None
    finally:
        engine.dispose()
    return names


@contextlib.contextmanager
def open_sandbox(
    spec: str,
    bind_keys: list[str | None],
    *,
    keep: bool = False,
    refuse: Iterable[Any] = (),
) -> Iterator[Sandbox]:
    """Create the throwaway databases and drop them on exit.

    ``spec`` is ``"sqlite"`` or a server URL (``postgresql://user@host/``, ``mysql+pymysql://root@host/``;
    its database part, if any, is only used to connect for ``CREATE DATABASE``). ``refuse`` lists
    target URLs the sandbox server URL must not point at. Raises :class:`UsageError` when the URL
    names a target database, :class:`DatabaseError` when the server is unreachable or refuses.
    """
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    tag = secrets.token_hex(4)
    if spec.strip().lower() in ("sqlite", "", "sqlite://"):
        tmpdir = tempfile.mkdtemp(prefix="ci_migrate_")
        urls = {
            key: sa.engine.make_url(f"sqlite:///{Path(tmpdir) / ((key or 'default') + '.db')}") for key in bind_keys
        }
        sandbox = Sandbox("sqlite", urls, {}, kept=keep, _tmpdir=tmpdir)
    else:
        server = normalize_url(spec)
        for target in refuse:
            if server.database and same_database(server, target):
                raise UsageError(
                    f"The sandbox URL {mask_url(server)} points at the database of a configured target. "
                    "The sandbox must be a server where throwaway databases can be created and dropped; "
                    "give it without a database name (e.g. postgresql://user@host/)."
                )
        names = _create_server_databases(server, bind_keys, tag)
        urls = {key: server.set(database=name) for key, name in names.items()}
        sandbox = Sandbox(server.get_backend_name(), urls, {}, kept=keep, server_url=server)
        sandbox._created = list(names.values())
    sandbox.engines = {key: sa.create_engine(url, poolclass=NullPool) for key, url in urls.items()}
    with _drop_on_signals():
        try:
            yield sandbox
        finally:
            sandbox.close()


@contextlib.contextmanager
def _drop_on_signals() -> Iterator[None]:
    """Turn SIGTERM into SystemExit(143) while a sandbox is open, so ``finally`` drops it.

    SIGINT already raises KeyboardInterrupt. Only installable from the main thread.
    """

    def _terminate(signum: int, frame: Any) -> None:
        raise SystemExit(128 + signum)

    try:
        previous = signal.signal(signal.SIGTERM, _terminate)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, previous)
