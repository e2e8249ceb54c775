"""The guard: every connection this process opens is checked against the allowed databases.

:class:`EngineGuard` listens to SQLAlchemy's ``do_connect`` event on the ``Engine`` class (SQLAlchemy
docs "Core Events": ``DialectEvents.do_connect``), i.e. for every engine the process makes, however
env.py, the app or a revision makes it. A connection to a database that is not an allowed one (the
sandbox, or the target of ``apply``) is stopped with :class:`~.errors.Stopped` before it is opened.
Databases are compared by identity (:func:`url_identity`): dialect family, host (local names are one),
port (default filled in) and database; SQLite by the file's real path.

One exception, on the sandbox only: a connection to **the app's own database** of a bind (the URL the
app is configured with) made through an engine ci-migrate did not point — env.py that creates the app
again from its factory, or builds an engine from the same variable the app reads — is opened on that
bind's sandbox database instead (the event's connect arguments are rewritten in place, as the
SQLAlchemy docs allow). That is the database ``flask db upgrade`` would migrate; such engines are
disposed when the block that allowed the sandbox ends, and each place that did it is kept in
:attr:`EngineGuard.redirected`.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Tuple

from .errors import Stopped
from .glue import masked, normalize_url

_FAMILY = {"mariadb": "mysql"}


def dialect_family(name: str) -> str:
    """A dialect's family: MariaDB is MySQL, every other dialect is its own."""
    return _FAMILY.get(name, name)
_LOCAL = {"", "localhost", "127.0.0.1", "::1", "0.0.0.0"}
_PORTS = {"postgresql": 5432, "mysql": 3306}


def _identity(backend: str, host: Any, port: Any, database: Any) -> Tuple[str, ...]:
    family = dialect_family(backend)
    if family == "sqlite":
        name = str(database or "")
        if name in ("", ":memory:") or name.startswith("file::memory:"):
            return (family, ":memory:")
        return (family, os.path.realpath(name))
    host_text = str(host or "")
    if host_text.startswith("/") or host_text.lower() in _LOCAL:
        host_text = "localhost"
    return (family, host_text.lower(), str(port or _PORTS.get(family, "")), str(database or ""))


def url_identity(url: Any) -> Tuple[str, ...]:
    """Which database a URL names: ``(family, host, port, database)`` or ``("sqlite", realpath)``."""
    parsed = normalize_url(url) if isinstance(url, str) else url
    host = parsed.host or parsed.query.get("host")
    return _identity(parsed.get_backend_name(), host, parsed.port, parsed.database)


def _connect_identity(dialect: Any, cargs: Any, cparams: Mapping[str, Any]) -> Tuple[str, ...]:
    """Which database a DBAPI ``connect(*cargs, **cparams)`` is about to open (``do_connect`` event)."""
    name = dialect.name
    if dialect_family(name) == "sqlite":
        return _identity(name, None, None, cargs[0] if cargs else cparams.get("database"))
    database = cparams.get("dbname") or cparams.get("database") or cparams.get("db")
    dsn = cparams.get("dsn") or (cargs[0] if cargs and isinstance(cargs[0], str) else None)
    host, port = cparams.get("host"), cparams.get("port")
    if dsn and "=" in dsn:  # libpq key=value string
        parts = dict(p.split("=", 1) for p in dsn.split() if "=" in p)
        database, host, port = parts.get("dbname", database), parts.get("host", host), parts.get("port", port)
    return _identity(name, host, port, database)


# DBAPI connect() keywords that come from the URL (psycopg/psycopg2, PyMySQL/mysqlclient): replaced on a redirect
_URL_KEYS = ("host", "port", "user", "username", "password", "passwd", "dbname", "database", "db", "dsn",
             "unix_socket", "conninfo")


@dataclass
class GuardOffence:
    """A connection the guard stopped: the database (password masked) and where the code made it."""

    database: str
    file: Optional[str]
    line: Optional[int]
    code: Optional[str]

    def where(self) -> str:
        """``file:line (code)`` of the connecting code, or "code outside the repository"."""
        if not self.file:
            return "code outside the repository"
        return f"{self.file}:{self.line}" + (f" ({self.code})" if self.code else "")


class EngineGuard:
    """Stops every connection of this process to a database that is not allowed.

    ``allow(urls)`` sets the allowed databases (replacing the previous set); ``None`` means the guard
    is off (while the app is imported, as ``flask db`` would run it). Installed once on the
    ``Engine`` class (``do_connect``), so it sees engines made by env.py, the app or a revision alike.
    ``root`` is the repository root (for the file:line of the offending call); ``offences`` keeps
    what was stopped.
    """

    def __init__(self, root: Path) -> None:
        self.root = root
        self.allowed: Optional[Dict[Tuple[str, ...], str]] = None
        self.what = "the sandbox"
        self.offences: List[GuardOffence] = []
        self.redirected: List[GuardOffence] = []
        self.own: Dict[Optional[str], Tuple[str, ...]] = {}  # bind key → identity of the app's own database
        self._redirects: Dict[Tuple[str, ...], Any] = {}  # app's own database → the sandbox URL of its bind
        self._identities: Dict[Tuple[str, ...], Tuple[str, ...]] = {}
        self._pools: List[Any] = []
        self._rewritten: List[Tuple[Any, Any, List[Any], Dict[str, Any]]] = []  # (cargs, cparams, as they were)
        self._installed = False

    def own_databases(self, urls: Mapping[Optional[str], Optional[str]]) -> None:
        """The app's own database per bind key (its configured URLs; None: not set or not a URL)."""
        self.own = {}
        for key, url in urls.items():
            with contextlib.suppress(Exception):
                if url:
                    self.own[key] = url_identity(url)

    def release(self) -> None:
        """Close the idle connections of the engines redirected to the sandbox so far (before the host
        copies the sandbox, which must have no connection)."""
        for pool in self._pools:
            with contextlib.suppress(Exception):
                pool.dispose()

    def effective_identity(self, url: Any) -> Tuple[str, ...]:
        """Which database an engine of ``url`` really opens: the sandbox's for the app's own database
        while it is redirected, else :func:`url_identity`."""
        identity = url_identity(url)
        return self._identities.get(identity, identity)

    def install(self) -> None:
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        if not self._installed:
            event.listen(Engine, "do_connect", self._check)
            self._installed = True

    @contextlib.contextmanager
    def allowing(self, urls: Mapping[Any, Any], what: str = "the sandbox") -> Iterator[None]:
        """Inside the block only the databases of ``urls`` (values: URL strings or objects) may be opened;
        ``what`` names them in the message ("the sandbox", "the target")."""
        saved = self.allowed, self.what, self._redirects, self._identities
        self.allowed = {url_identity(u): masked(normalize_url(u) if isinstance(u, str) else u)
                        for u in urls.values() if u is not None}
        self.what = what
        sandbox = what == "the sandbox"
        self._redirects = {self.own[k]: u for k, u in urls.items()
                           if sandbox and u is not None and k in self.own and self.own[k] not in self.allowed}
        self._identities = {own: url_identity(u) for own, u in self._redirects.items()}
        pools, self._pools = self._pools, []
        rewritten, self._rewritten = self._rewritten, []
        try:
            yield
        finally:
            self.release()
            for cargs, cparams, old_args, old_params in self._rewritten:  # the engine names its own database again
                cargs[:] = old_args
                cparams.clear()
                cparams.update(old_params)
            self._pools, self._rewritten = pools, rewritten
            self.allowed, self.what, self._redirects, self._identities = saved

    def _check(self, dialect: Any, conn_rec: Any, cargs: Any, cparams: Any) -> None:
        if self.allowed is None:
            return
        identity = _connect_identity(dialect, cargs, cparams)
        if identity in self.allowed or identity[1:] == (":memory:",):
            return
        file, line, code = self._caller()
        described = _describe_identity(dialect.name, cparams, identity)
        sandbox = self._redirects.get(identity)
        before = (list(cargs), dict(cparams)) if isinstance(cargs, list) else None
        if sandbox is not None and before is not None and _redirect(dialect, cargs, cparams, sandbox):
            self._rewritten.append((cargs, cparams, *before))
            pool = getattr(conn_rec, "_ConnectionRecord__pool", None)  # SQLAlchemy 1.4–2.1
            if pool is not None and all(p is not pool for p in self._pools):
                self._pools.append(pool)
            if all((r.database, r.file, r.line) != (described, file, line) for r in self.redirected):
                self.redirected.append(GuardOffence(database=described, file=file, line=line, code=code))
            return
        offence = GuardOffence(database=described, file=file, line=line, code=code)
        self.offences.append(offence)
        where = f"{file}:{line}" if file else "code outside the repository"
        own = identity in self.own.values() and self.what == "the sandbox"  # of another dialect than the sandbox
        raise Stopped("guard", f"{where} opened a connection to {described}, which is not {self.what}",
                      where={"file": file, "line": line, "code": code}, database=described,
                      allowed=sorted(self.allowed.values()), expected=self.what,
                      own_dialect=dialect_family(dialect.name) if own else None)

    def _caller(self) -> Tuple[Optional[str], Optional[int], Optional[str]]:
        return _caller(self.root)


def _redirect(dialect: Any, cargs: Any, cparams: Any, sandbox: Any) -> bool:
    """Point a DBAPI ``connect(*cargs, **cparams)`` of ``dialect`` at ``sandbox`` (same dialect family),
    in place; False when it cannot be (another family, or arguments that are not a list)."""
    url = normalize_url(sandbox) if isinstance(sandbox, str) else sandbox
    if dialect_family(url.get_backend_name()) != dialect_family(dialect.name) or not isinstance(cargs, list):
        return False
    driver = getattr(dialect, "driver", None)
    url = url.set(drivername=f"{dialect.name}+{driver}" if driver else dialect.name)
    new_args, new_params = dialect.create_connect_args(url)
    if dialect.name != "sqlite":
        for key in _URL_KEYS:
            cparams.pop(key, None)
        cparams.update(new_params)
    cargs[:] = list(new_args)
    return True


def _caller(root: Path) -> Tuple[Optional[str], Optional[int], Optional[str]]:
    """The innermost frame of the repository's own code (env.py, a revision, the app)."""
    import linecache
    import sys

    frame: Any = sys._getframe(2)
    prefix = str(root) + os.sep
    while frame is not None:
        source = frame.f_code.co_filename
        name = os.path.realpath(source)
        ours = name.startswith(prefix) and "site-packages" not in name and os.sep + ".venv" not in name
        if ours and not source.startswith("<"):  # not "<string>", "<sqlalchemy generated …>": they resolve under cwd
            rel = os.path.relpath(name, root).replace(os.sep, "/")
            return rel, frame.f_lineno, linecache.getline(name, frame.f_lineno).strip() or None
        frame = frame.f_back
    return None, None, None


@contextlib.contextmanager
def watching(root: Path) -> Iterator[List[GuardOffence]]:
    """Record, without stopping them, the connections opened inside the block (the app's import, which
    runs before the app can be pointed at the sandbox): one entry per database, where it was first opened."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    seen: List[GuardOffence] = []

    def record(dialect: Any, conn_rec: Any, cargs: Any, cparams: Any) -> None:
        identity = _connect_identity(dialect, cargs, cparams)
        described = _describe_identity(dialect.name, cparams, identity)
        if identity[1:] != (":memory:",) and all(s.database != described for s in seen):
            seen.append(GuardOffence(described, *_caller(root)))

    event.listen(Engine, "do_connect", record)
    try:
        yield seen
    finally:
        event.remove(Engine, "do_connect", record)


def import_note(opened: GuardOffence) -> str:
    """A note for a connection the app's import opened (see :func:`watching`)."""
    return (f"Importing the app connected to {opened.database} at {opened.where()}, before ci-migrate could point it "
            "at the sandbox: what the app runs when it is created (create_all(), upgrade(), seed data) ran there, as "
            "it would under `flask db`.")


def redirect_note(redirected: GuardOffence) -> str:
    """A note for a connection to the app's own database that was opened on the sandbox instead
    (:attr:`EngineGuard.redirected`): env.py made an app or engine of its own for that database."""
    return (f"{redirected.where()} connected to the app's own database {redirected.database} through an app or "
            "engine of its own (not the one ci-migrate points at the sandbox); that connection was opened on the "
            "sandbox instead, the database `flask db upgrade` would have migrated.")


def _describe_identity(dialect: str, cparams: Mapping[str, Any], identity: Tuple[str, ...]) -> str:
    if identity[0] == "sqlite":
        return f"sqlite:///{identity[1]}"
    user = cparams.get("user") or cparams.get("username")
    host = cparams.get("host") or identity[1]
    port = cparams.get("port")
    auth = f"{user}:***@" if user and (cparams.get("password") or cparams.get("passwd")) else (f"{user}@" if user else "")
    return f"{dialect}://{auth}{host}{':' + str(port) if port else ''}/{identity[3]}"
