"""The few places that touch Alembic / Flask-Migrate / Flask-SQLAlchemy internals.

Everything here is fragile glue, kept in one room and tested against the supported versions
(see ../shared/reference/alembic-internals.md, pitfalls P1–P9):

* P1: the stock env.py ignores ``config.attributes['connection']``; we point it at the sandbox by
  swapping the engines Flask-SQLAlchemy keeps per app (3.x: ``db._app_engines[app]``; 2.5: the
  engine connectors, driven by ``app.config``).
* P3: env.py writes a ``process_revision_directives`` closure into the shared
  ``configure_args`` dict; we restore a snapshot before every command.
* P4: env.py's ``db.get_engine()`` DeprecationWarning; silenced per command.
* env.py's ``fileConfig()`` wrecks host logging; patched out per command, and alembic's log
  records are captured instead.
* P9: everything that runs env.py needs the app context.
* Revision files are executed once per run: the graph scan's modules seed one ScriptDirectory per
  project, which every ``alembic.command`` inside :func:`alembic_session` gets (see
  :func:`script_directory`).
"""

from __future__ import annotations

import contextlib
import io
import logging
import logging.config
import warnings
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Iterator, Mapping

if TYPE_CHECKING:  # pragma: no cover
    from alembic.config import Config
    from sqlalchemy.engine import Engine

    from ci_migrate.project import Project


def engines_of(project: "Project") -> dict[str | None, "Engine"]:
    """The app's engines per bind key (``None`` = default bind), without connecting.

    Flask-SQLAlchemy 3.x builds all engines in ``init_app`` (``db.engines``); 2.5 builds them
    lazily through ``db.get_engine(app, bind)``.
    """
    db, app = project.db, project.app
    with app.app_context():
        if hasattr(db, "_app_engines"):
            return dict(db.engines)
        return {key: db.get_engine(app, key) for key in project.bind_keys}


@contextlib.contextmanager
def swapped_engines(project: "Project", engines: Mapping[str | None, "Engine"]) -> Iterator[None]:
    """Make every bind of the app use the given engines for the duration of the block.

    ``engines`` maps each bind key (``None`` = default) to an Engine owned by the caller; every key
    the app has must be present (a bind left out would point at the real database). Must be entered
    inside the app context. The app's own engines are restored on exit.
    """
    db, app = project.db, project.app
    missing = set(project.bind_keys) - set(engines)
    if missing:
        raise ValueError(f"no sandbox engine for binds {sorted(map(str, missing))}")
    if hasattr(db, "_app_engines"):  # Flask-SQLAlchemy 3.x
        current = db._app_engines[app]
        saved = dict(current)
        current.update(engines)
        try:
            yield
        finally:
            current.clear()
            current.update(saved)
        return
    # Flask-SQLAlchemy 2.5: each bind has an _EngineConnector that rebuilds its engine when the
    # configured URI changes; point the config at the sandbox, then hand the connector our engine.
    config = app.config
    saved_uri, saved_binds = config.get("SQLALCHEMY_DATABASE_URI"), config.get("SQLALCHEMY_BINDS")
    config["SQLALCHEMY_DATABASE_URI"] = _url_text(engines[None].url)
    binds = {k: _url_text(e.url) for k, e in engines.items() if k is not None}
    config["SQLALCHEMY_BINDS"] = binds or saved_binds
    connectors = app.extensions["sqlalchemy"].connectors
    try:
        for key, engine in engines.items():
            db.get_engine(app, key)  # makes the connector (and a throwaway engine) for the sandbox URI
            connector = connectors[key]
            if connector._engine is not engine:
                connector._engine.dispose()
                connector._engine = engine
        yield
    finally:
        config["SQLALCHEMY_DATABASE_URI"], config["SQLALCHEMY_BINDS"] = saved_uri, saved_binds
        for key in engines:
            connectors.pop(key, None)  # rebuilt from the restored config on next use


def _url_text(url: Any) -> str:
    return url.render_as_string(hide_password=False) if hasattr(url, "render_as_string") else str(url)


@dataclass
class Capture:
    """What alembic said during one command: log records (``alembic.*``) and stdout text."""

    records: list[logging.LogRecord] = field(default_factory=list)
    stdout: io.StringIO = field(default_factory=io.StringIO)

    def messages(self) -> list[str]:
        return [r.getMessage() for r in self.records]


class _ListHandler(logging.Handler):
    def __init__(self, sink: list[logging.LogRecord], listener: Callable[[logging.LogRecord], None] | None):
        super().__init__(logging.INFO)
        self.sink, self.listener = sink, listener

    def emit(self, record: logging.LogRecord) -> None:
        self.sink.append(record)
        if self.listener:
            self.listener(record)


@contextlib.contextmanager
def quiet_env_logging(capture: Capture, listener: Callable[[logging.LogRecord], None] | None = None) -> Iterator[None]:
    """Patch out env.py's ``fileConfig`` and collect alembic's log records into ``capture``."""
    handler = _ListHandler(capture.records, listener)
    logger = logging.getLogger("alembic")
    saved = (logging.config.fileConfig, logger.level, logger.propagate, list(logger.handlers))
    logging.config.fileConfig = lambda *a, **k: None  # env.py does `from logging.config import fileConfig`
    logger.setLevel(logging.INFO)
    logger.propagate = False
    logger.handlers = [handler]
    try:
        yield
    finally:
        logging.config.fileConfig = saved[0]
        logger.setLevel(saved[1])
        logger.propagate = saved[2]
        logger.handlers = saved[3]


@contextlib.contextmanager
def alembic_session(
    project: "Project",
    engines: Mapping[str | None, "Engine"] | None = None,
    *,
    extra_args: Mapping[str, Any] | None = None,
    listener: Callable[[logging.LogRecord], None] | None = None,
) -> Iterator[tuple["Config", Capture]]:
    """Everything needed to run one ``alembic.command`` through the project's own env.py.

    Yields ``(config, capture)``: a fresh Flask-Migrate ``Config`` for the migrations directory
    (``Migrate.get_config``) whose output goes to ``capture.stdout``. Inside the block: the app
    context is pushed; the app's binds use ``engines`` (when given); ``configure_args`` is the snapshot
    taken at load time plus ``extra_args`` (restored afterwards); DeprecationWarnings are silenced;
    env.py's logging setup is patched out and alembic's records go to ``capture`` (and ``listener``).
    """
    from contextlib import redirect_stdout

    capture = Capture()
    args = project.migrate_state.configure_args
    with contextlib.ExitStack() as stack:
        stack.enter_context(project.app.app_context())
        if engines is not None:
            stack.enter_context(swapped_engines(project, engines))
        stack.enter_context(warnings.catch_warnings())
        warnings.simplefilter("ignore", DeprecationWarning)
        stack.enter_context(quiet_env_logging(capture, listener))
        stack.enter_context(redirect_stdout(capture.stdout))
        stack.enter_context(shared_script_directory(project))
        args.clear()
        args.update(project.configure_args)
        args.update(extra_args or {})
        try:
            config = project.migrate.get_config(directory=str(project.migrations_dir))
            config.stdout = capture.stdout
            yield config, capture
        finally:
            args.clear()
            args.update(project.configure_args)


def version_table_opts(project: "Project") -> dict[str, Any]:
    """The ``version_table``/``version_table_schema`` options the project passes to ``configure``."""
    keys = ("version_table", "version_table_schema")
    return {k: v for k, v in project.configure_args.items() if k in keys}


# --------------------------------------------------------------------------- revision files, loaded once


def _pyfiles() -> Any:
    import alembic.util.pyfiles as pyfiles  # where load_python_file() finds load_module_py()

    return pyfiles


@contextlib.contextmanager
def _module_loader(modules: dict[Any, Any], *, reuse: bool) -> Iterator[None]:
    """Record every module alembic's ``load_python_file`` executes into ``modules`` (resolved path →
    module); with ``reuse``, hand back the recorded module instead of executing the file again.

    alembic loads each file with ``importlib`` and never puts it in ``sys.modules``
    (``alembic.util.pyfiles.load_module_py``), so a second load re-executes the file. A module that
    keeps an engine at import (``engine = db.engine``) is never reused: loaded again inside
    :func:`alembic_session`, it gets the sandbox's engine, as alembic's own load would.
    """
    from pathlib import Path

    pyfiles = _pyfiles()
    original = pyfiles.load_module_py

    def load_module_py(module_id: str, path: Any) -> Any:
        key = Path(path).resolve()
        if reuse and key in modules:
            return modules[key]
        module = original(module_id, path)
        if not _holds_engine(module):
            modules[key] = module
        return module

    pyfiles.load_module_py = load_module_py
    try:
        yield
    finally:
        pyfiles.load_module_py = original


def _holds_engine(module: Any) -> bool:
    """True when a module global is an Engine/Connection or is bound to one (``Session(bind=...)``,
    ``sessionmaker(bind=...)``)."""
    import types

    from sqlalchemy.engine import Connection, Engine

    plain = (types.ModuleType, types.FunctionType, type, str, bytes, int, float, tuple, list, dict, type(None))
    for name, value in vars(module).items():
        if name.startswith("__") or isinstance(value, plain):
            continue
        if isinstance(value, (Engine, Connection)):
            return True
        try:
            kw = getattr(value, "kw", None)
            bound = [getattr(value, "bind", None), kw.get("bind") if isinstance(kw, dict) else None]
        except Exception:  # noqa: BLE001 - a proxy or property that cannot answer outside a migration
            continue
        if any(isinstance(b, (Engine, Connection)) for b in bound):
            return True
    return False


def capture_revision_modules(project: "Project") -> contextlib.AbstractContextManager[None]:
    """Keep the modules of the revision files loaded inside the block (the graph scan) so that
    :func:`script_directory` does not execute them a second time."""
    return _module_loader(project.revision_modules, reuse=False)


def script_directory(project: "Project") -> Any:
    """The project's alembic ``ScriptDirectory`` (``ScriptDirectory.from_config`` of its migrations
    directory), made once per run and reused by every command.

    Its revision map is built lazily, as alembic's is, from the modules :func:`capture_revision_modules`
    kept (files not kept are loaded by alembic as usual). Reusing it is safe because nothing in a
    ``check`` run writes revision files; alembic's own ``RevisionMap`` is memoized the same way.
    Errors of a broken history (``CommandError``, ``CycleDetected``, ``KeyError``) surface where
    alembic raises them: when the map is first used.
    """
    if project.script is None:
        from alembic.script import ScriptDirectory
        from alembic.script.revision import RevisionMap

        with project.app_context():
            config = project.migrate.get_config(directory=str(project.migrations_dir))
        script = _original_from_config(ScriptDirectory)(config)

        def load_revisions() -> Iterator[Any]:
            with _module_loader(project.revision_modules, reuse=True):
                yield from script._load_revisions()

        script.revision_map = RevisionMap(load_revisions)
        project.script = script
    return project.script


def _original_from_config(cls: Any) -> Callable[[Any], Any]:
    method = cls.__dict__["from_config"].__func__
    return lambda config: getattr(method, "original", method)(cls, config)


@contextlib.contextmanager
def shared_script_directory(project: "Project") -> Iterator[None]:
    """Inside the block, ``ScriptDirectory.from_config(config)`` — what every ``alembic.command``
    calls first — returns :func:`script_directory` for a config of the project's migrations
    directory (and a fresh one for any other)."""
    from pathlib import Path

    from alembic.script import ScriptDirectory

    saved = ScriptDirectory.__dict__["from_config"]
    original = getattr(saved.__func__, "original", saved.__func__)
    ours = str(project.migrations_dir)

    def from_config(cls: Any, config: Any) -> Any:
        location = config.get_main_option("script_location")
        if location and cls is ScriptDirectory and str(Path(location).resolve()) == ours:
            return script_directory(project)
        return original(cls, config)

    from_config.original = original  # type: ignore[attr-defined]
    ScriptDirectory.from_config = classmethod(from_config)  # type: ignore[method-assign,assignment]
    try:
        yield
    finally:
        ScriptDirectory.from_config = saved  # type: ignore[method-assign]
