"""Throwaway databases ("sandboxes"), owned by the host: made, handed to the probe, always dropped.

A sandbox is one database per bind: a SQLite file in a temp directory of its own, or
``CREATE DATABASE`` on a PostgreSQL/MySQL server. Its name carries its creation time,
``ci_migrate_<UTC yyyymmddhhmm>_<random>`` (``_<bind>`` for extra binds; the directory of a SQLite
sandbox is named the same way), so that :func:`prune` can drop what a killed run left behind. The
prefix ``ci_migrate`` can be changed with ``CI_MIGRATE_SANDBOX_PREFIX`` (a test suite uses its own,
to count only its own databases on a shared server).

Every database made here is dropped when :class:`Sandboxes` closes — in ``finally``, and on
SIGTERM/SIGINT (:func:`drop_on_signals` turns the signal into ``SystemExit`` so the ``finally``
blocks run) — unless kept on purpose (``--keep-sandbox``), whatever the probe did.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import re
import secrets
import shutil
import signal
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

from ci_migrate.errors import DatabaseError, UsageError
from ci_migrate.masking import mask_url

DEFAULT_PREFIX = "ci_migrate"
PREFIX_VARIABLE = "CI_MIGRATE_SANDBOX_PREFIX"
_STAMP = "%Y%m%d%H%M"


def prefix_from(env: Mapping[str, str]) -> str:
    """The sandbox name prefix: ``CI_MIGRATE_SANDBOX_PREFIX`` (letters, digits, ``_``) or ``ci_migrate``."""
    value = env.get(PREFIX_VARIABLE, "").strip()
    if value and not re.fullmatch(r"[a-z][a-z0-9_]{0,30}", value):
        raise UsageError(f"{PREFIX_VARIABLE}={value!r}: use lower-case letters, digits and _ (at most 31 characters)")
    return value or DEFAULT_PREFIX


def _name_pattern(prefix: str) -> re.Pattern[str]:
    return re.compile(rf"^{re.escape(prefix)}_(?P<stamp>\d{{12}})_[0-9a-f]{{8}}(?:_[a-z0-9_]+)?$")


def new_name(prefix: str, now: _dt.datetime | None = None) -> str:
    """``<prefix>_<UTC yyyymmddhhmm>_<8 hex>``."""
    now = now or _dt.datetime.now(_dt.timezone.utc)
    return f"{prefix}_{now.strftime(_STAMP)}_{secrets.token_hex(4)}"


def created_at(name: str, prefix: str) -> _dt.datetime | None:
    """When a sandbox of that name was made (UTC, to the minute), or None for other names."""
    match = _name_pattern(prefix).match(name)
    if not match:
        return None
    return _dt.datetime.strptime(match["stamp"], _STAMP).replace(tzinfo=_dt.timezone.utc)


def normalize_url(url: str | Any) -> Any:
    """Parse a server URL and pick a driver installed here (the host) for plain dialect names, as the
    probe does in the app's environment (:func:`ci_migrate.probe.glue.normalize_url`: psycopg 3 when
    SQLAlchemy has its dialect, else psycopg2; PyMySQL for MySQL/MariaDB). Raises
    :class:`UsageError` for a URL SQLAlchemy cannot parse."""
    from sqlalchemy.exc import ArgumentError

    from ci_migrate.probe.glue import normalize_url as normalize

    try:
        return normalize(url)
    except (ArgumentError, ValueError) as exc:
        raise UsageError(f"Not a database URL: {mask_url(str(url))} ({exc})") from None


def url_text(url: Any) -> str:
    """A URL as text with its password and without a driver (for the probe, which connects with the
    driver the app's environment has: ``postgresql://…``, not the host's ``postgresql+psycopg://…``)."""
    if hasattr(url, "render_as_string"):
        return url.set(drivername=url.get_backend_name()).render_as_string(hide_password=False)
    return str(url)


def host_url_text(url: Any) -> str:
    """A URL as text with its password and the host's driver (for the host's own connections)."""
    return url.render_as_string(hide_password=False) if hasattr(url, "render_as_string") else str(url)


def is_sqlite(spec: str) -> bool:
    return spec.strip().lower() in ("sqlite", "", "sqlite://")


def dialect_of(spec: str) -> str:
    """``sqlite`` or the backend name of a sandbox server URL."""
    return "sqlite" if is_sqlite(spec) else normalize_url(spec).get_backend_name()


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


def shown_url(url: Any) -> str:
    """A server URL as a person uses it: without the host's driver (``postgresql://``, which psql
    takes too; the app's probe connects with its own driver), password masked."""
    return mask_url(url.set(drivername=url.get_backend_name()))


def describe_connect_error(url: Any, exc: BaseException) -> str:
    """A person-readable message for a failed connection: host, port, database, never the password."""
    detail = str(getattr(exc, "orig", exc)).strip().splitlines()
    first = detail[0] if detail else type(exc).__name__
    where = f"{url.host or 'localhost'}{':' + str(url.port) if url.port else ''}"
    return (
        f"Cannot connect to the {url.get_backend_name()} server at {where} "
        f"(database {url.database or '(none)'!s}, user {url.username or '(default)'}): {first}\n"
        "  Check that the server is running and reachable from here, and the user and password "
        f"(URL used: {shown_url(url)})."
    )


def admin_engine(server_url: Any) -> Any:
    """An AUTOCOMMIT engine on the server's maintenance database (``postgres``; none on MySQL)."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    if server_url.get_backend_name() == "postgresql":
        admin_url = server_url.set(database=server_url.database or "postgres")
    else:
        admin_url = server_url.set(database=None)
    return sa.create_engine(admin_url, isolation_level="AUTOCOMMIT", poolclass=NullPool)


def bind_suffix(bind: str | None) -> str:
    """What a bind's database name adds to a sandbox's (``_audit`` for bind ``audit``; nothing for the
    default bind): lower case, anything but letters, digits and ``_`` made ``_``."""
    return f"_{re.sub(r'[^a-z0-9_]', '_', bind.lower())}" if bind else ""


def quote_name(backend: str, name: str) -> str:
    """A database name quoted for ``backend`` (backticks on MySQL/MariaDB, double quotes elsewhere)."""
    return f"`{name}`" if backend in ("mysql", "mariadb") else f'"{name}"'


def drop_databases(server_url: Any, names: Iterable[str]) -> None:
    """``DROP DATABASE IF EXISTS`` each of ``names`` on the server (PostgreSQL: ``WITH (FORCE)``)."""
    backend = server_url.get_backend_name()
    engine = admin_engine(server_url)
    try:
        with engine.connect() as conn:
            for name in names:
                force = " WITH (FORCE)" if backend == "postgresql" else ""
                conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quote_name(backend, name)}{force}")
    finally:
        engine.dispose()


@dataclass
class Sandbox:
    """The databases of one sandbox, per bind key (``None`` = default)."""

    id: int
    dialect: str
    urls: dict[str | None, Any]
    kept: bool = False
    names: list[str] = field(default_factory=list)  # server databases made
    tmpdir: str | None = None  # SQLite: the directory holding its files
    restored: bool = False  # filled from the cached base snapshot (ci_migrate.cache)

    @property
    def display_url(self) -> str:
        """The default bind's URL as a person uses it — without the host's driver (``postgresql://``,
        which psql accepts too; the app's probe uses its own driver) — with the password masked."""
        return shown_url(self.urls[None])

    def message(self) -> dict[str, Any]:
        """What the probe gets: ``{"id", "dialect", "urls": {bind or "": url text}, "restored"}``."""
        return {"id": self.id, "dialect": self.dialect, "urls": {k or "": url_text(u) for k, u in self.urls.items()},
                "restored": self.restored}


class Sandboxes:
    """Makes and drops the sandboxes of one run (``spec``: ``"sqlite"`` or a server URL).

    ``refuse`` lists target URLs the sandbox server must not point at. Thread-safe: the first
    sandbox is made while the probe imports the app.
    """

    def __init__(self, spec: str, *, keep: bool = False, refuse: Iterable[Any] = (), prefix: str = DEFAULT_PREFIX):
        self.spec, self.keep, self.prefix = spec, keep, prefix
        self.dialect = dialect_of(spec)
        self.server = None if is_sqlite(spec) else normalize_url(spec)
        self.open: dict[int, Sandbox] = {}
        self._lock = threading.Lock()
        self._count = 0
        if self.server is not None:
            for target in refuse:
                if self.server.database and same_database(self.server, target):
                    raise UsageError(
                        f"The sandbox URL {shown_url(self.server)} points at the database of a configured target. "
                        "The sandbox must be a server where throwaway databases can be created and dropped; "
                        "give it without a database name (e.g. postgresql://user@host/).")

    def create(self, bind_keys: Iterable[str | None], templates: Mapping[str | None, str] | None = None) -> Sandbox:
        """A new sandbox with one database per bind key; on a PostgreSQL server, ``templates`` (bind →
        database) makes each one a copy of that database (``CREATE DATABASE … TEMPLATE``). Raises
        :class:`DatabaseError` (exit 3)."""
        keys = list(dict.fromkeys(bind_keys)) or [None]
        base = new_name(self.prefix)
        with self._lock:
            self._count += 1
            number = self._count
        if self.server is None:
            from sqlalchemy.engine import make_url

            tmpdir = Path(tempfile.gettempdir()) / base
            tmpdir.mkdir(mode=0o700)
            urls = {key: make_url(f"sqlite:///{tmpdir / ((key or 'default') + '.db')}") for key in keys}
            sandbox = Sandbox(number, "sqlite", urls, kept=self.keep, tmpdir=str(tmpdir))
        else:
            names = {key: base + bind_suffix(key) for key in keys}
            sandbox = Sandbox(number, self.dialect, {}, kept=self.keep)
            with self._lock:
                self.open[number] = sandbox
            self._create_server_databases(sandbox, names, templates)
        with self._lock:
            self.open[number] = sandbox
        return sandbox

    def extend(self, sandbox: Sandbox, bind_keys: Iterable[str | None]) -> Sandbox:
        """Add databases for more binds to a sandbox (the binds are known once the app is loaded)."""
        missing = [k for k in dict.fromkeys(bind_keys) if k not in sandbox.urls]
        if not missing:
            return sandbox
        if sandbox.tmpdir:
            from sqlalchemy.engine import make_url

            for key in missing:
                sandbox.urls[key] = make_url(f"sqlite:///{Path(sandbox.tmpdir) / ((key or 'default') + '.db')}")
            return sandbox
        base = sandbox.names[0] if sandbox.names else new_name(self.prefix)
        self._create_server_databases(sandbox, {key: base + bind_suffix(key) for key in missing})
        return sandbox

    def _create_server_databases(self, sandbox: Sandbox, names: dict[str | None, str],
                                 templates: Mapping[str | None, str] | None = None) -> None:
        import sqlalchemy as sa

        backend = self.server.get_backend_name()
        engine = admin_engine(self.server)
        try:
            with engine.connect() as conn:
                for key, name in names.items():
                    template = (templates or {}).get(key)
                    suffix = f" TEMPLATE {quote_name(backend, template)}" if template else ""
                    conn.exec_driver_sql(f"CREATE DATABASE {quote_name(backend, name)}{suffix}")
                    sandbox.names.append(name)  # recorded at once: dropped even if the next one fails
                    sandbox.urls[key] = self.server.set(database=name)
        except sa.exc.OperationalError as exc:
            raise DatabaseError(describe_connect_error(engine.url, exc)) from None
        except sa.exc.DBAPIError as exc:
            raise DatabaseError(
                f"Could not create a sandbox database on {shown_url(engine.url)}: {exc.orig}\n"
                "  The sandbox user needs the right to CREATE DATABASE (PostgreSQL: CREATEDB).") from None
        finally:
            engine.dispose()

    def drop(self, number: Any) -> None:
        """Drop one sandbox now (unless kept). Unknown ids are ignored."""
        with self._lock:
            sandbox = self.open.pop(number, None)
        if sandbox is None or sandbox.kept:
            return
        if sandbox.tmpdir:
            shutil.rmtree(sandbox.tmpdir, ignore_errors=True)
        if sandbox.names:
            drop_databases(self.server, sandbox.names)

    def close(self) -> None:
        """Drop every sandbox still open (unless kept). Safe to call twice."""
        for number in list(self.open):
            self.drop(number)


@contextlib.contextmanager
def drop_on_signals() -> Iterator[None]:
    """Turn SIGTERM into SystemExit(143) for the block, so ``finally`` drops the sandboxes.

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


def prune(spec: str, older_than_s: float, prefix: str = DEFAULT_PREFIX, now: _dt.datetime | None = None) -> list[str]:
    """Drop the sandboxes of ``spec``'s kind that killed runs left behind: server databases (or SQLite
    temp directories) named ``<prefix>_<stamp>_<random>`` whose stamp is more than ``older_than_s``
    seconds old. Returns what was dropped (names, or directory paths). Raises DatabaseError (exit 3)
    when the server cannot be reached."""
    import sqlalchemy as sa

    now = now or _dt.datetime.now(_dt.timezone.utc)
    cutoff = now - _dt.timedelta(seconds=older_than_s)

    def old(name: str) -> bool:
        stamp = created_at(name, prefix)
        return stamp is not None and stamp < cutoff

    if is_sqlite(spec):
        dropped = []
        top = Path(tempfile.gettempdir())
        for entry in sorted(top.iterdir()) if top.is_dir() else []:
            if entry.is_dir() and old(entry.name):
                shutil.rmtree(entry, ignore_errors=True)
                dropped.append(str(entry))
        return dropped
    server = normalize_url(spec)
    backend = server.get_backend_name()
    listing = ("SELECT datname FROM pg_database" if backend == "postgresql"
               else "SELECT schema_name FROM information_schema.schemata")
    engine = admin_engine(server)
    try:
        with engine.connect() as conn:
            names = [row[0] for row in conn.exec_driver_sql(listing)]
    except sa.exc.DBAPIError as exc:
        raise DatabaseError(describe_connect_error(engine.url, exc)) from None
    finally:
        engine.dispose()
    stale = [n for n in names if old(n)]
    if stale:
        drop_databases(server, stale)
    return stale


def parse_duration(text: str | float | int) -> float:
    """Seconds in ``2h``, ``30m``, ``1d``, ``90s``, ``45`` (seconds) or a number. ValueError otherwise."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        return float(text)
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*", str(text).lower())
    if not match:
        raise ValueError(f"not a duration: {text!r} (use e.g. 90s, 30m, 2h, 1d)")
    return float(match[1]) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match[2]]

