"""The target database(s) ``apply`` writes to: engines with session timeouts, current revisions.

One engine per bind the migrations touch (multidb: every bind, each from its own environment
variable), made from the target's URL with ``NullPool`` and a ``connect`` event that sets the
session's timeouts before SQLAlchemy uses the connection (SQLAlchemy's "setting a default schema
on connect" recipe; reference/alembic-internals.md §6):

* PostgreSQL: ``lock_timeout``, ``statement_timeout`` (PostgreSQL docs, "Client Connection
  Defaults"), and ``application_name`` so other sessions can see who is migrating;
* MySQL/MariaDB: ``lock_wait_timeout`` (metadata locks, i.e. DDL) and ``innodb_lock_wait_timeout``
  (row locks), whole seconds; statement timeout: MariaDB ``max_statement_time`` (seconds), MySQL
  ``max_execution_time`` (milliseconds, SELECT only);
* SQLite: ``PRAGMA busy_timeout``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from ci_migrate.apply.locking import APPLICATION_NAME, LockSet, make_lock
from ci_migrate.errors import DatabaseError, EnvironmentProblem
from ci_migrate.masking import mask_url


def session_statements(backend: str, lock_timeout: float, statement_timeout: float,
                       mariadb: bool = False) -> list[str]:
    """SQL that sets the migrating session's timeouts (seconds; 0 = no limit, the server's default)."""
    out: list[str] = []
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


@dataclass
class TargetDatabases:
    """A target's databases: ``urls`` per migrated bind, ``engines`` for every bind of the app.

    Binds the migrations never touch (an app with ``SQLALCHEMY_BINDS`` but a single-database
    env.py) keep the app's own engines, which env.py does not use.
    """

    name: str
    dialect: str
    urls: dict[str | None, Any]
    engines: dict[str | None, Any]
    version_opts: dict[str, Any] = field(default_factory=dict)

    @property
    def migrated(self) -> list[str | None]:
        return list(self.urls)

    @property
    def display_url(self) -> str:
        return mask_url(self.urls[None])

    @property
    def transactional_ddl(self) -> bool:
        """Whether alembic runs this dialect's DDL inside the transaction (PostgreSQL: yes;
        MySQL/MariaDB, SQLite: no — ``alembic.ddl.impl.DefaultImpl.transactional_ddl``)."""
        from alembic.ddl.impl import DefaultImpl

        try:
            return bool(DefaultImpl.get_by_dialect(self.engines[None].dialect).transactional_ddl)
        except KeyError:
            return False

    def where(self, key: str | None) -> str:
        """``host:port/database`` of a bind (no user, no password)."""
        url = self.urls[key]
        if url.get_backend_name() == "sqlite":
            return url.database or ":memory:"
        return f"{url.host or 'localhost'}{':' + str(url.port) if url.port else ''}/{url.database or ''}"

    def connect(self, key: str | None) -> Any:
        """A connection to a bind; :class:`DatabaseError` (exit 3) naming host and database when
        the server cannot be reached or refuses the login."""
        import sqlalchemy as sa

        from ci_migrate.sandbox import describe_connect_error

        try:
            return self.engines[key].connect()
        except sa.exc.DBAPIError as exc:
            bind = f" (bind {key!r})" if key else ""
            raise DatabaseError(f"target {self.name!r}{bind}: " + describe_connect_error(self.urls[key], exc)) from None

    def current_heads(self) -> dict[str | None, tuple[str, ...]]:
        """The revisions in each migrated bind's version table (``MigrationContext.get_current_heads``)."""
        from alembic.migration import MigrationContext

        import sqlalchemy as sa

        heads = {}
        for key in self.migrated:
            with self.connect(key) as conn:
                try:
                    heads[key] = tuple(MigrationContext.configure(conn, opts=self.version_opts).get_current_heads())
                except sa.exc.DBAPIError as exc:
                    raise DatabaseError(f"target {self.name!r}: could not read the version table of {self.where(key)}: "
                                        f"{_first_line(exc)}") from None
        return heads

    def table_names(self, key: str | None) -> list[str]:
        """Tables in the bind's default schema, the version table left out."""
        import sqlalchemy as sa

        version_table = self.version_opts.get("version_table", "alembic_version")
        with self.connect(key) as conn:
            names = sa.inspect(conn).get_table_names(schema=self.version_opts.get("version_table_schema"))
        return sorted(n for n in names if n != version_table)

    def locks(self) -> LockSet:
        """The migration locks of every migrated bind, one per database, default bind first."""
        locks, seen = [], set()
        for key in self.migrated:
            lock = make_lock(self.urls[key], self.version_opts.get("version_table", "alembic_version"),
                             self.version_opts.get("version_table_schema"))
            if lock is not None and lock.label not in seen:
                seen.add(lock.label)
                locks.append(lock)
        return LockSet(locks)

    def dispose(self) -> None:
        for key in self.migrated:
            self.engines[key].dispose()


def _first_line(exc: BaseException) -> str:
    text = str(getattr(exc, "orig", None) or exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def open_target(settings: Any, name: str, project: Any, env: Mapping[str, str]) -> TargetDatabases:
    """Engines for target ``name``: its ``url-env`` for the default bind, ``binds.<key>`` for the
    others of a multidb app. Nothing is connected yet.

    Raises ``ConfigError`` (exit 2) for an unknown target or an unset variable (including a multidb
    bind without ``binds`` entry), :class:`EnvironmentProblem` (exit 3) when the driver is missing.
    """
    from ci_migrate.alembic_env import engines_of, version_table_opts
    from ci_migrate.config_errors import ConfigError
    from ci_migrate.sandbox import normalize_url

    urls = {None: normalize_url(settings.target_url(name, env))}  # raises for an unknown target
    target = settings.targets[name]
    if project.multidb:
        for key in project.bind_keys:
            if key is None:
                continue
            var = target.binds.get(key)
            if var is None:
                raise ConfigError(f"target '{name}': the app's migrations are multidb and bind '{key}' has no URL — "
                                  f"add it to the config:\n    targets:\n      {name}:\n        binds:\n"
                                  f"          {key}: {key.upper()}_DATABASE_URL")
            value = env.get(var, "")
            if not value.strip():
                state = "empty" if var in env else "not set"
                raise ConfigError(f"target '{name}': environment variable {var} is {state} "
                                  f"(targets.{name}.binds.{key} names it; it should hold bind '{key}''s database URL)")
            urls[key] = normalize_url(value)
    engines = {key: _engine(url, target, project) for key, url in urls.items()}
    for key in project.bind_keys:
        if key not in engines:
            engines[key] = engines_of(project)[key]
    return TargetDatabases(name=name, dialect=urls[None].get_backend_name(), urls=urls, engines=engines,
                           version_opts=version_table_opts(project))


def _engine(url: Any, target: Any, project: Any) -> Any:
    """A NullPool engine for ``url`` with the session timeouts; keeps the app's ``connect_args``
    (SSL settings and the like) when the app's own database is of the same kind."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    kwargs: dict[str, Any] = {"poolclass": NullPool}
    options = project.app.config.get("SQLALCHEMY_ENGINE_OPTIONS") or {}
    if options.get("connect_args") and project.configured_dialect() == url.get_backend_name():
        kwargs["connect_args"] = dict(options["connect_args"])
    try:
        engine = sa.create_engine(url, **kwargs)
    except ImportError as exc:
        raise EnvironmentProblem(f"The database driver for {mask_url(url)} is not installed: {exc}. "
                                 "Install it in the environment that runs ci-migrate (e.g. psycopg[binary] "
                                 "or PyMySQL).") from None
    sa.event.listen(engine, "connect", _on_connect(url.get_backend_name(), target.lock_timeout,
                                                   target.statement_timeout), insert=True)
    return engine
