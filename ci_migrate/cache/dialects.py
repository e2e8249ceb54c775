"""Keeping and restoring a sandbox's databases, per dialect (the host's side; it never imports the app).

Each class works on :class:`ci_migrate.sandbox.Sandbox` databases (one per bind, ``None`` = the
default one; the cache writes ``''``):

* :class:`Postgres`: ``CREATE DATABASE <template> TEMPLATE <sandbox db>`` on the sandbox server, and
  ``pg_dump`` of the template into the cache (plain SQL) when a ``pg_dump`` at least as new as the
  server is installed; restored from the template when it is on the server, else with ``psql``.
* :class:`Sqlite`: the database files, copied.
* :class:`Mysql`: ``mysqldump`` (or ``mariadb-dump``) into the cache, restored with ``mysql``.

Every failure raises :class:`ci_migrate.cache.store.CacheDoubt` with the reason in words.
"""

from __future__ import annotations

import contextlib
import os
import re
import shutil
import subprocess
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ci_migrate.cache.store import CacheDoubt, Entry

TOOL_TIMEOUT_S = 600


def bind_name(key: str | None) -> str:
    return key or ""


def _file_name(key: str | None, suffix: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", key or "default") + suffix


def _tool(*names: str) -> str | None:
    return next((found for found in (shutil.which(n) for n in names) if found), None)


def _run(cmd: list[str], env_extra: Mapping[str, str], *, stdin: Path | None = None,
         stdout: Path | None = None) -> None:
    env = {**os.environ, **env_extra}
    with contextlib.ExitStack() as stack:
        src = stack.enter_context(open(stdin, "rb")) if stdin else subprocess.DEVNULL
        out = stack.enter_context(open(stdout, "wb")) if stdout else subprocess.DEVNULL
        try:
            proc = subprocess.run(cmd, stdin=src, stdout=out, stderr=subprocess.PIPE, env=env, timeout=TOOL_TIMEOUT_S,
                                  check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise CacheDoubt(f"{Path(cmd[0]).name} failed: {exc}") from None
    if proc.returncode != 0:
        tail = proc.stderr.decode("utf-8", "replace").strip().splitlines()[-1:] or ["no message"]
        raise CacheDoubt(f"{Path(cmd[0]).name} failed: {tail[0]}")


def _scalar(server: Any, sql: str) -> Any:
    """One value from the server's maintenance database."""
    from ci_migrate.sandbox import admin_engine

    engine = admin_engine(server)
    try:
        with engine.connect() as conn:
            return conn.exec_driver_sql(sql).scalar()
    finally:
        engine.dispose()


class Postgres:
    """Template databases + ``pg_dump``/``psql`` on the sandbox server ``server`` (a SQLAlchemy URL)."""

    dialect = "postgresql"

    def __init__(self, server: Any, prefix: str):
        self.server, self.prefix = server, prefix

    def major(self) -> str:
        return str(int(_scalar(self.server, "SHOW server_version_num")) // 10000)

    def identity(self) -> str:
        return f"{self.server.host or 'localhost'}:{self.server.port or 5432}"

    def template_name(self, key: str, bind: str | None) -> str:
        from ci_migrate.sandbox import bind_suffix

        return f"{self.prefix}_base_{key[:20]}" + bind_suffix(bind)

    def _admin(self, statements: list[str]) -> list[Any]:
        from ci_migrate.sandbox import admin_engine

        engine = admin_engine(self.server)
        try:
            with engine.connect() as conn:
                out = []
                for sql in statements:
                    result = conn.exec_driver_sql(sql)
                    out.append(result.fetchall() if sql.lstrip().upper().startswith("SELECT") else None)
                return out
        except Exception as exc:  # noqa: BLE001 - any database error is a doubt, never a failed run
            first = str(getattr(exc, "orig", exc)).strip().splitlines()
            raise CacheDoubt(f"PostgreSQL refused: {first[0] if first else type(exc).__name__}") from None
        finally:
            engine.dispose()

    def existing(self, names: list[str]) -> set[str]:
        listed = ", ".join("'" + n.replace("'", "''") + "'" for n in names) or "''"
        (rows,) = self._admin([f"SELECT datname FROM pg_database WHERE datname IN ({listed})"])
        return {r[0] for r in rows}

    def keep(self, sandbox: Any, key: str) -> dict[str, str]:
        """Copy each database of ``sandbox`` into a template database; bind → template name."""
        from ci_migrate.sandbox import quote_name

        templates = {bind_name(b): self.template_name(key, b) for b in sandbox.urls}
        there = self.existing(list(templates.values()))
        self._admin([f"CREATE DATABASE {quote_name('postgresql', t)} TEMPLATE "
                     f"{quote_name('postgresql', sandbox.urls[b or None].database)}"
                     for b, t in templates.items() if t not in there])
        return templates

    def _libpq(self, database: str) -> tuple[str, dict[str, str]]:
        url = self.server.set(drivername="postgresql", database=database, password=None)
        env = {"PGPASSWORD": self.server.password} if self.server.password else {}
        return url.render_as_string(hide_password=False), env

    def dump(self, templates: Mapping[str, str], staging: Path) -> dict[str, str]:
        """``pg_dump`` each template into ``staging``; bind → file name. {} when no usable pg_dump."""
        tool = _tool("pg_dump")
        if tool is None:
            return {}
        version = subprocess.run([tool, "--version"], capture_output=True, text=True, check=False).stdout
        found = re.search(r"(\d+)(?:\.\d+)?", version)
        if found is None or int(found[1]) < int(self.major()):
            return {}
        files = {}
        for bind, template in templates.items():
            name = _file_name(bind or None, ".sql")
            dsn, env = self._libpq(template)
            _run([tool, "--no-owner", "--no-privileges", "--format=plain", f"--file={staging / name}",
                  f"--dbname={dsn}"], env)
            files[bind] = name
        return files

    def restore(self, sandbox: Any, entry: Entry) -> str:
        """Fill ``sandbox``'s (empty) databases from ``entry``: from its templates when all are on this
        server (``"template"``), else from its dumps with psql (``"dump"``; the templates are made
        again from the restored databases). Raises :class:`CacheDoubt`."""
        from ci_migrate.sandbox import quote_name

        binds = [bind_name(b) for b in sandbox.urls]
        templates = [entry.templates.get(b) for b in binds]
        if entry.server == self.identity() and all(templates) and \
                self.existing([t for t in templates if t]) == set(templates):
            q = lambda n: quote_name("postgresql", n)
            self._admin([sql for b, t in zip(binds, templates) for sql in (
                f"DROP DATABASE IF EXISTS {q(sandbox.urls[b or None].database)}",
                f"CREATE DATABASE {q(sandbox.urls[b or None].database)} TEMPLATE {q(t)}")])
            return "template"
        tool = _tool("psql")
        files = {b: entry.file(b) for b in binds}
        if tool is None or not all(files.values()):
            why = "psql is not installed" if tool is None else "the cache holds no dump of it (pg_dump was missing)"
            raise CacheDoubt(f"the base's template database is not on this server and {why}")
        for bind, path in files.items():
            dsn, env = self._libpq(sandbox.urls[bind or None].database)
            _run([tool, "-X", "-q", "-v", "ON_ERROR_STOP=1", f"--dbname={dsn}", f"--file={path}"], env)
        with contextlib.suppress(CacheDoubt):  # for the walks of this run and the next runs
            self._admin([f"DROP DATABASE IF EXISTS {quote_name('postgresql', t)}" for t in templates if t])
            self.keep(sandbox, entry.key)
        return "dump"

    def drop(self, templates: list[str]) -> None:
        from ci_migrate.sandbox import quote_name

        names = [t for t in templates if t.startswith(f"{self.prefix}_base_")]
        if names:
            self._admin([f"DROP DATABASE IF EXISTS {quote_name('postgresql', t)}" for t in names])


class Sqlite:
    """Copies of the sandbox's SQLite files."""

    dialect = "sqlite"

    def major(self) -> str:
        import sqlite3

        return sqlite3.sqlite_version.split(".")[0]

    def identity(self) -> None:
        return None

    def copy_out(self, sandbox: Any, staging: Path) -> dict[str, str]:
        files = {}
        for key, url in sandbox.urls.items():
            name = _file_name(key, ".db")
            try:
                shutil.copyfile(url.database, staging / name)
            except OSError as exc:
                raise CacheDoubt(f"copying {url.database} failed: {exc.strerror}") from None
            files[bind_name(key)] = name
        return files

    def restore(self, sandbox: Any, entry: Entry) -> str:
        for key, url in sandbox.urls.items():
            path = entry.file(bind_name(key))
            if path is None:
                raise CacheDoubt(f"the cache entry {entry.path} has no file for bind {bind_name(key) or 'default'}")
            try:
                shutil.copyfile(path, url.database)
            except OSError as exc:
                raise CacheDoubt(f"copying {path} failed: {exc.strerror}") from None
        return "copy"


class Mysql:
    """``mysqldump`` into the cache, ``mysql`` to restore."""

    dialect = "mysql"

    def __init__(self, server: Any):
        self.server = server

    def major(self) -> str:
        version = str(_scalar(self.server, "SELECT VERSION()"))
        found = re.match(r"(\d+\.\d+)", version)
        return ("mariadb-" if "mariadb" in version.lower() else "mysql-") + (found[1] if found else version)

    def identity(self) -> str:
        return f"{self.server.host or 'localhost'}:{self.server.port or 3306}"

    def _args(self, tool: str) -> tuple[list[str], dict[str, str]]:
        args = [tool, f"--host={self.server.host or '127.0.0.1'}", f"--port={self.server.port or 3306}"]
        if self.server.username:
            args.append(f"--user={self.server.username}")
        return args, ({"MYSQL_PWD": self.server.password} if self.server.password else {})

    def dump(self, sandbox: Any, staging: Path) -> dict[str, str]:
        """``mysqldump`` each database of ``sandbox``; {} when no dump tool is installed."""
        tool = _tool("mysqldump", "mariadb-dump")
        if tool is None or _tool("mysql", "mariadb") is None:
            return {}
        files = {}
        for key, url in sandbox.urls.items():
            name = _file_name(key, ".sql")
            args, env = self._args(tool)
            _run([*args, "--single-transaction", "--skip-comments", "--no-tablespaces", "--routines", url.database],
                 env, stdout=staging / name)
            files[bind_name(key)] = name
        return files

    def restore(self, sandbox: Any, entry: Entry) -> str:
        tool = _tool("mysql", "mariadb")
        if tool is None:
            raise CacheDoubt("the mysql client is not installed")
        for key, url in sandbox.urls.items():
            path = entry.file(bind_name(key))
            if path is None:
                raise CacheDoubt(f"the cache entry {entry.path} has no dump for bind {bind_name(key) or 'default'}")
            args, env = self._args(tool)
            _run([*args, url.database], env, stdin=path)
        return "dump"


def for_sandboxes(sandboxes: Any) -> Postgres | Sqlite | Mysql | None:
    """The operations for the run's sandbox dialect; None for other dialects."""
    if sandboxes.server is None:
        return Sqlite()
    backend = sandboxes.server.get_backend_name()
    if backend == "postgresql":
        return Postgres(sandboxes.server, sandboxes.prefix)
    if backend in ("mysql", "mariadb"):
        return Mysql(sandboxes.server)
    return None
