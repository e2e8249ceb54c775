"""The few places that touch Alembic / Flask-Migrate / Flask-SQLAlchemy / SQLAlchemy internals.

Everything here is fragile glue, kept in one room and tested against the supported versions
(reference: alembic-internals.md, pitfalls P1–P9):

* Pointing the app at the sandbox before env.py runs (:func:`pointed_at`): ``SQLALCHEMY_DATABASE_URI``
  and ``SQLALCHEMY_BINDS`` in ``app.config`` (what Flask-Migrate's oldest template and many custom
  env.py files read), Flask-SQLAlchemy 3.x's engines (``db._app_engines[app]``, P1) and 2.5's engine
  connectors, or Alchemical's engines. Apps with a plain base (``Migrate(app, Base)``) get the config only.
* ``context.configure()`` (:func:`alembic_session`): ci-migrate's own options (``include_object``,
  ``on_version_apply``, ``transaction_per_migration``) are merged into whatever env.py passes, by
  wrapping ``EnvironmentContext.configure``; an ``include_object`` of env.py's own is wrapped, not
  duplicated. Flask-Migrate's ``configure_args`` are restored from a snapshot before every command (P3).
* env.py's ``fileConfig()`` is patched out per command (it disables other loggers), P4's
  DeprecationWarnings are silenced, and everything runs inside the app context (P9).
* Revision files are executed once per run (:func:`module_loader`, :func:`script_directory`), and
  each one's ``upgrade()``/``downgrade()`` is wrapped by :mod:`.tracker` as it is loaded; the same
  holds for the extra script directories of :mod:`.script_dirs` (a ScriptDirectory each).
"""

from __future__ import annotations

import contextlib
import io
import logging
import logging.config
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Tuple

from .script_dirs import CONFIG_KEY, check_version_table, config_for

# ----------------------------------------------------------------------------- URLs and drivers


def normalize_url(url: Any) -> Any:
    """Parse a URL and pick a driver installed in this environment for plain dialect names.

    ``postgres://``/``postgresql://`` → ``postgresql+psycopg`` when psycopg 3 and SQLAlchemy's
    dialect for it are installed, else ``+psycopg2``; ``mysql://``/``mariadb://`` → ``+pymysql``
    when PyMySQL is installed, else SQLAlchemy's default (mysqlclient).
    """
    import importlib.util

    from sqlalchemy.engine import make_url

    if isinstance(url, str) and url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        psycopg3 = importlib.util.find_spec("psycopg") and importlib.util.find_spec(
            "sqlalchemy.dialects.postgresql.psycopg")
        parsed = parsed.set(drivername="postgresql+psycopg" if psycopg3 else "postgresql+psycopg2")
    elif parsed.drivername in ("mysql", "mariadb") and importlib.util.find_spec("pymysql"):
        parsed = parsed.set(drivername=f"{parsed.drivername}+pymysql")
    return parsed


def url_text(url: Any) -> str:
    """A URL as a string with its password (SQLAlchemy 1.4's ``str()`` hides nothing, 2.x's does)."""
    return url.render_as_string(hide_password=False) if hasattr(url, "render_as_string") else str(url)


def masked(url: Any) -> str:
    """A URL with its password replaced by ``***``."""
    if hasattr(url, "render_as_string"):
        return url.render_as_string(hide_password=True)
    return repr(url)


def make_engine(url: Any) -> Any:
    """An engine (NullPool: nothing stays connected between commands) for a sandbox or target URL."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    return sa.create_engine(normalize_url(url), poolclass=NullPool)


# ----------------------------------------------------------------------------- pointing the app elsewhere


@contextlib.contextmanager
def pointed_at(project: Any, urls: Mapping[Optional[str], Any], engines: Mapping[Optional[str], Any]) -> Iterator[None]:
    """Make every bind of the app use the given database for the duration of the block.

    ``urls`` and ``engines`` map each bind key (``None`` = default) to a URL and an Engine owned by
    the caller; every key the app has must be present (a bind left out would point at the real
    database). Sets ``SQLALCHEMY_DATABASE_URI``/``SQLALCHEMY_BINDS`` (every Flask-SQLAlchemy version,
    and none) and swaps Flask-SQLAlchemy's engines (3.x: ``db._app_engines[app]``; 2.5: the engine
    connectors), or Alchemical's (``db.engines``, ``db.table_binds``, ``db.url``, ``db.binds``, and its
    cached sessionmaker). Must be entered inside the app context; everything is restored on exit.
    """
    missing = set(project.bind_keys) - set(engines)
    if missing:
        raise ValueError(f"no engine for binds {sorted(map(str, missing))}")
    app, db = project.app, project.db
    config = app.config
    saved = {k: config[k] for k in ("SQLALCHEMY_DATABASE_URI", "SQLALCHEMY_BINDS") if k in config}
    config["SQLALCHEMY_DATABASE_URI"] = url_text(normalize_url(urls[None]))
    binds = {k: url_text(normalize_url(u)) for k, u in urls.items() if k is not None}
    if binds or "SQLALCHEMY_BINDS" in saved:
        config["SQLALCHEMY_BINDS"] = {**(saved.get("SQLALCHEMY_BINDS") or {}), **binds}
    kind = project.flask_sqlalchemy
    try:
        if kind == "3":
            current = db._app_engines[app]
            before = dict(current)
            current.update(engines)
            try:
                yield
            finally:
                current.clear()
                current.update(before)
        elif kind == "2":
            connectors = app.extensions["sqlalchemy"].connectors
            previous = dict(connectors)
            try:
                for key, engine in engines.items():
                    connectors.pop(key, None)
                    # a connector for the new URI that holds our engine: none is built from the app's engine
                    # options, which may not fit the sandbox (max_overflow with SQLite's NullPool)
                    db.create_engine = lambda _url, _options, engine=engine: engine
                    try:
                        db.get_engine(app, key)
                    finally:
                        del db.create_engine
                    connectors[key]._engine = engine
                yield
            finally:
                connectors.clear()
                connectors.update(previous)
        elif project.alchemical:
            saved_db = (db.url, db.binds, db.engines, db.table_binds, db.session_class)
            db.url, db.binds = config["SQLALCHEMY_DATABASE_URI"], binds or None
            db.engines = dict(engines)
            db.table_binds = {table: engines[key] for key, metadata in db.metadatas.items()
                              if key is not None for table in metadata.tables.values()}
            db.session_class = None  # a sessionmaker made from the app's engines
            try:
                yield
            finally:
                db.url, db.binds, db.engines, db.table_binds, db.session_class = saved_db
        else:
            yield
    finally:
        for key in ("SQLALCHEMY_DATABASE_URI", "SQLALCHEMY_BINDS"):
            if key in saved:
                config[key] = saved[key]
            else:
                config.pop(key, None)


def app_engines(project: Any) -> Dict[Optional[str], Any]:
    """The app's own engines per bind key, without connecting (Flask-SQLAlchemy 3.x ``db.engines``,
    2.5 ``db.get_engine(app, bind)``, Alchemical ``db.get_engine(bind)``); empty for a plain base."""
    with project.app_context():
        if project.flask_sqlalchemy == "3":
            return dict(project.db.engines)
        if project.flask_sqlalchemy == "2":
            return {key: project.db.get_engine(project.app, key) for key in project.bind_keys}
        if project.alchemical:
            return {key: project.db.get_engine(key) for key in project.bind_keys}
    return {}


# ----------------------------------------------------------------------------- one alembic command


@dataclass
class Capture:
    """What alembic said during one command: log records (``alembic.*``) and stdout text."""

    records: List[logging.LogRecord] = field(default_factory=list)
    stdout: io.StringIO = field(default_factory=io.StringIO)


class _ListHandler(logging.Handler):
    def __init__(self, sink: List[logging.LogRecord], listener: Optional[Callable[[logging.LogRecord], None]]):
        super().__init__(logging.INFO)
        self.sink, self.listener = sink, listener

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record)
        if self.listener:
            self.listener(record)


@contextlib.contextmanager
def quiet_env_logging(capture: Capture, listener: Optional[Callable[[logging.LogRecord], None]] = None) -> Iterator[None]:
    """Patch out env.py's ``fileConfig`` and collect alembic's log records into ``capture``.

    Also re-enables alembic's loggers for the block: an app's own logging setup
    (``disable_existing_loggers=True``) may have disabled them.
    """
    handler = _ListHandler(capture.records, listener)
    logger = logging.getLogger("alembic")
    children = [logging.getLogger(n) for n in list(logging.root.manager.loggerDict) if n.startswith("alembic.")]
    saved = (logging.config.fileConfig, logger.level, logger.propagate, list(logger.handlers), logger.disabled,
             [(c, c.disabled) for c in children])
    logging.config.fileConfig = lambda *a, **k: None  # env.py does `from logging.config import fileConfig`
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.handlers = [handler]
    logger.disabled = False
    for child in children:
        child.disabled = False
    try:
        yield
    finally:
        logging.config.fileConfig = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]
        logger.handlers = saved[3]
        logger.disabled = saved[4]
        for child, disabled in saved[5]:
            child.disabled = disabled


def merge_options(theirs: Dict[str, Any], ours: Mapping[str, Any]) -> Dict[str, Any]:
    """``context.configure()`` keywords with ci-migrate's options merged in.

    ``include_object``: both apply (ours first); ``on_version_apply``: both are called; anything else of
    ours wins (``transaction_per_migration`` for ``apply``).
    """
    merged = dict(theirs)
    for key, value in ours.items():
        existing = merged.get(key)
        if key == "include_object" and existing is not None and existing is not value:
            merged[key] = _both_include(value, existing)
        elif key == "on_version_apply" and existing is not None and existing is not value:
            merged[key] = _both_called(existing, value)
        else:
            merged[key] = value
    return merged


def _both_include(ours: Callable[..., bool], theirs: Callable[..., bool]) -> Callable[..., bool]:
    def include_object(*args: Any, **kw: Any) -> bool:
        return bool(ours(*args, **kw)) and bool(theirs(*args, **kw))

    return include_object


def _both_called(first: Callable[..., Any], second: Callable[..., Any]) -> Callable[..., Any]:
    def on_version_apply(*args: Any, **kw: Any) -> None:
        first(*args, **kw)
        second(*args, **kw)

    return on_version_apply


@contextlib.contextmanager
def configure_merged(options: Mapping[str, Any], directory: Any = None) -> Iterator[None]:
    """Wrap ``EnvironmentContext.configure`` so every call env.py makes gets :func:`merge_options`.

    ``directory``: an extra script directory (:class:`.script_dirs.ScriptDir`) being run. Through the
    app's env.py its ``version_table`` is passed to ``configure()``; its own env.py must pass it
    itself (the plugin's runner in production depends on that), else
    :class:`.script_dirs.VersionTableMismatch`.
    """
    from alembic.runtime.environment import EnvironmentContext

    original = EnvironmentContext.configure
    own_env = directory is not None and directory.env_py is not None
    if directory is not None and not own_env:
        options = {**options, "version_table": directory.version_table}
    if not options and not own_env:
        yield
        return

    def configure(self: Any, *args: Any, **kw: Any) -> Any:
        if own_env:
            check_version_table(kw.get("version_table") or "alembic_version", directory)
        return original(self, *args, **merge_options(kw, options))

    EnvironmentContext.configure = configure  # type: ignore[method-assign]
    try:
        yield
    finally:
        EnvironmentContext.configure = original  # type: ignore[method-assign]


@contextlib.contextmanager
def alembic_session(project: Any, urls: Optional[Mapping[Optional[str], Any]] = None,
                    engines: Optional[Mapping[Optional[str], Any]] = None, *,
                    options: Optional[Mapping[str, Any]] = None,
                    listener: Optional[Callable[[logging.LogRecord], None]] = None,
                    directory: Any = None) -> Iterator[Tuple[Any, Capture]]:
    """Everything needed to run one ``alembic.command`` through the project's own env.py.

    Yields ``(config, capture)``: a fresh Flask-Migrate ``Config`` (``Migrate.get_config``) whose output
    goes to ``capture.stdout``. Inside the block: the app context is pushed; the app points at
    ``urls``/``engines`` (when given); ``configure_args`` is the snapshot taken at load time (restored
    afterwards); ``options`` are merged into env.py's ``context.configure()`` call;
    DeprecationWarnings are silenced; env.py's logging setup is patched out and alembic's records go to
    ``capture`` (and ``listener``); every revision file is loaded once (:func:`shared_script_directory`).
    ``directory``: an extra script directory (:class:`.script_dirs.ScriptDir`) to run instead of the app's
    history (:func:`.script_dirs.config_for`, :func:`configure_merged`).
    """
    from contextlib import redirect_stdout

    capture = Capture()
    args = getattr(project.migrate_state, "configure_args", None)
    with contextlib.ExitStack() as stack:
        stack.enter_context(project.app.app_context())
        if engines is not None and urls is not None:
            stack.enter_context(pointed_at(project, urls, engines))
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore", DeprecationWarning)
        stack.enter_context(quiet_env_logging(capture, listener))
        stack.enter_context(redirect_stdout(capture.stdout))
        stack.enter_context(shared_script_directory(project))
        stack.enter_context(configure_merged(options or {}, directory))
        reload_engine_holders(project)
        if args is not None:
            args.clear()
            args.update(project.configure_args)
        try:
            config = config_for(project, directory)
            config.stdout = capture.stdout
            yield config, capture
        finally:
            if args is not None:
                args.clear()
                args.update(project.configure_args)


def version_table_opts(project: Any) -> Dict[str, Any]:
    """The ``version_table``/``version_table_schema`` options the project passes to ``configure``."""
    keys = ("version_table", "version_table_schema")
    return {k: v for k, v in project.configure_args.items() if k in keys}


def current_heads(project: Any, engine: Any) -> Tuple[str, ...]:
    """The revisions in a database's version table (``MigrationContext.get_current_heads``)."""
    from alembic.migration import MigrationContext

    with engine.connect() as conn:
        return tuple(MigrationContext.configure(conn, opts=version_table_opts(project)).get_current_heads())


# ----------------------------------------------------------------------------- revision files, loaded once


def _pyfiles() -> Any:
    import alembic.util.pyfiles as pyfiles  # where load_python_file() finds load_module_py()

    return pyfiles


@contextlib.contextmanager
def module_loader(modules: Dict[Any, Any], *, reuse: bool, on_load: Optional[Callable[[Any, Path], None]] = None,
                  on_env: Optional[Callable[[Path], None]] = None,
                  holders: Optional[Dict[Any, Any]] = None) -> Iterator[None]:
    """Record every module alembic's ``load_python_file`` executes into ``modules`` (resolved path →
    module); with ``reuse``, hand back the recorded module instead of executing the file again.
    ``on_load(module, path)`` is called for each revision module executed (to wrap its functions);
    ``on_env(path)`` just before env.py runs.

    alembic loads each file with ``importlib`` and never puts it in ``sys.modules``
    (``alembic.util.pyfiles.load_module_py``), so a second load re-executes the file. A module that
    keeps an engine at import (``engine = db.engine``) goes into ``holders`` instead (its revision
    identifiers still serve alembic's revision map), and :func:`alembic_session` executes it again when
    the engine it holds is not one the app has for that command, so it gets the sandbox's engine, as
    alembic's own load would.
    """
    pyfiles = _pyfiles()
    original = pyfiles.load_module_py

    def load_module_py(module_id: str, path: Any, *rest: Any, **kw: Any) -> Any:
        key = Path(path).resolve()
        if key.name == "env.py" and on_env is not None:
            on_env(key)
        if reuse and key in modules:
            return modules[key]
        if reuse and holders is not None and key in holders:
            return holders[key]
        module = original(module_id, path, *rest, **kw)
        if hasattr(module, "revision"):
            if on_load is not None:
                on_load(module, key)
            if not _holds_engine(module):
                modules[key] = module
            elif holders is not None:
                holders[key] = module
        return module

    pyfiles.load_module_py = load_module_py
    try:
        yield
    finally:
        pyfiles.load_module_py = original


def _engines_held(module: Any) -> List[Any]:
    """The Engines a module's globals hold: directly, through a Connection, or bound to one
    (``Session(bind=...)``, ``sessionmaker(bind=...)``)."""
    import types

    from sqlalchemy.engine import Connection, Engine

    plain = (types.ModuleType, types.FunctionType, type, str, bytes, int, float, tuple, list, dict, type(None))
    found = []
    for name, value in vars(module).items():
        if name.startswith("__") or isinstance(value, plain):
            continue
        candidates = [value]
        try:
            kw = getattr(value, "kw", None)
            candidates += [getattr(value, "bind", None), kw.get("bind") if isinstance(kw, dict) else None]
        except Exception:  # noqa: BLE001 - a proxy or property that cannot answer outside a migration
            pass
        for item in candidates:
            if isinstance(item, Connection):
                item = item.engine
            if isinstance(item, Engine):
                found.append(item)
    return found


def _holds_engine(module: Any) -> bool:
    """True when a module global is an Engine/Connection or is bound to one."""
    return bool(_engines_held(module))


class Loading:
    """The run's hooks for loaded files: set by the probe once (revision wrapping, env.py events)."""

    on_load: Optional[Callable[[Any, Path], None]] = None
    on_env: Optional[Callable[[Path], None]] = None


def capture_revision_modules(project: Any) -> "contextlib.AbstractContextManager[None]":
    """Keep the modules of the revision files loaded inside the block (the graph scan)."""
    return module_loader(project.revision_modules, reuse=False, on_load=Loading.on_load,
                         holders=project.engine_holders)


def reload_engine_holders(project: Any) -> None:
    """Execute again the revision files that keep an engine at import, so that inside this command
    they hold the engine the app has now (the sandbox's), and put them in alembic's revision map."""
    if not project.engine_holders or project.script is None or not project.script.revision_map._revision_map:
        return
    from alembic.util import load_python_file

    current = {id(e) for e in app_engines(project).values()}
    by_path = {Path(s.path).resolve(): s for s in project.script.walk_revisions() if getattr(s, "path", None)}
    for path, held in list(project.engine_holders.items()):
        script = by_path.get(path)
        if script is None or all(id(e) in current for e in _engines_held(script.module)):
            continue
        module = load_python_file(str(path.parent), path.name)
        if Loading.on_load is not None:
            Loading.on_load(module, path)
        script.module = module
        project.engine_holders[path] = module


def script_directory(project: Any, directory: Any = None) -> Any:
    """The alembic ``ScriptDirectory`` (``ScriptDirectory.from_config``) of the project's history, or of
    an extra script directory (:class:`.script_dirs.ScriptDir`), made once per run.

    Its revision map is built lazily, as alembic's is, from the modules the scan kept (files not kept
    are loaded by alembic as usual). Errors of a broken history (``CommandError``, ``CycleDetected``,
    ``KeyError``) surface where alembic raises them: when the map is first used. An extra directory
    without env.py is the single version location of a copy of the app's ``ScriptDirectory`` (as
    Indico's plugin migrations are run).
    """
    holder = directory if directory is not None else project
    if holder.script is None:
        from alembic.script import ScriptDirectory
        from alembic.script.revision import RevisionMap

        with project.app_context():
            config = config_for(project, directory)
        script = _original_from_config(ScriptDirectory)(config)
        if directory is not None and directory.env_py is None:
            script.version_locations = [str(directory.path)]
            script.__dict__.pop("_version_locations", None)  # alembic memoizes the resolved paths

        def load_revisions() -> Iterator[Any]:
            with module_loader(project.revision_modules, reuse=True, on_load=Loading.on_load,
                               holders=project.engine_holders):
                yield from script._load_revisions()

        script.revision_map = RevisionMap(load_revisions)
        holder.script = script
    return holder.script


def version_locations(project: Any, directory: Any = None) -> Tuple[List[Path], bool]:
    """The directories holding revision files and whether alembic walks them recursively
    (``version_locations`` / ``recursive_version_locations`` of alembic.ini)."""
    script = script_directory(project, directory)
    return [Path(p) for p in script._version_locations], bool(getattr(script, "recursive_version_locations", False))


def _original_from_config(cls: Any) -> Callable[[Any], Any]:
    method = cls.__dict__["from_config"].__func__
    return lambda config: getattr(method, "original", method)(cls, config)


@contextlib.contextmanager
def shared_script_directory(project: Any) -> Iterator[None]:
    """Inside the block, ``ScriptDirectory.from_config(config)`` — what every ``alembic.command``
    calls first — returns :func:`script_directory` for the project's migrations directory (or for the
    extra directory a :func:`.script_dirs.config_for` Config is for), and env.py loads go through
    :func:`module_loader`'s ``on_env`` hook."""
    from alembic.script import ScriptDirectory

    saved = ScriptDirectory.__dict__["from_config"]
    original = getattr(saved.__func__, "original", saved.__func__)
    ours = str(project.migrations_dir)

    def from_config(cls: Any, config: Any) -> Any:
        location = config.get_main_option("script_location")
        directory = getattr(config, "attributes", {}).get(CONFIG_KEY)
        if cls is ScriptDirectory and directory is not None:
            return script_directory(project, directory)
        if location and cls is ScriptDirectory and str(Path(location).resolve()) == ours:
            return script_directory(project)
        return original(cls, config)

    from_config.original = original  # type: ignore[attr-defined]
    ScriptDirectory.from_config = classmethod(from_config)  # type: ignore[method-assign,assignment]
    try:
        with module_loader({}, reuse=False, on_env=Loading.on_env):
            yield
    finally:
        ScriptDirectory.from_config = saved  # type: ignore[method-assign]
