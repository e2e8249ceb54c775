"""Load the user's Flask app the way ``flask`` does, and find its Flask-Migrate setup.

The app is imported once per run with flask's own loader (``flask.cli.ScriptInfo.load_app``, the
machinery behind ``FLASK_APP``), and everything the checks need is read off it into a
:class:`Project`.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any, Iterator

from ci_migrate.errors import AppLoadError, EnvironmentProblem

# Oldest versions the glue in alembic_env.py is tested with.
MINIMUM_VERSIONS = {
    "SQLAlchemy": "1.4",
    "Flask-SQLAlchemy": "2.5.1",
    "Flask-Migrate": "2.5",
    "alembic": "1.7",
    "Flask": "2.1",
}


@dataclass
class Project:
    """The loaded app and its migration setup.

    ``bind_keys`` lists every database bind (``None`` = the default one); ``multidb`` is true when the
    migrations were made with ``flask db init --multidb`` (one version table per bind).
    ``configure_args`` is a snapshot of ``Migrate(**kwargs)`` options taken before env.py ever ran.
    """

    app: Any
    db: Any
    migrate: Any
    migrate_state: Any  # app.extensions['migrate'] (_MigrateConfig)
    root: Path
    import_string: str | None
    migrations_dir: Path
    configure_args: dict[str, Any]
    bind_keys: list[str | None]
    multidb: bool
    command_name: str = "db"
    notes: list[str] = field(default_factory=list)
    # Loaded once per run (alembic_env.script_directory / capture_revision_modules).
    script: Any = field(default=None, repr=False)
    revision_modules: dict[Path, Any] = field(default_factory=dict, repr=False)

    @contextlib.contextmanager
    def app_context(self) -> Iterator[None]:
        with self.app.app_context():
            yield

    @property
    def versions_dirs(self) -> list[Path]:
        """Directories holding revision files (alembic ``version_locations``, default ``versions/``)."""
        from ci_migrate.alembic_env import script_directory

        return [Path(p) for p in script_directory(self)._version_locations]

    @property
    def metadatas(self) -> dict[str | None, Any]:
        """``MetaData`` per bind key (Flask-SQLAlchemy 3.x ``db.metadatas``; 2.5 has one)."""
        if hasattr(self.db, "metadatas"):
            return dict(self.db.metadatas)
        return {None: self.db.metadata}

    def relative(self, path: str | os.PathLike[str]) -> str:
        """``path`` relative to the repository root, POSIX separators (absolute if outside)."""
        p = Path(path).resolve()
        try:
            return p.relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return p.as_posix()

    def configured_dialect(self) -> str | None:
        """Dialect name of the app's own default database URL (no connection made)."""
        from ci_migrate.alembic_env import engines_of

        with contextlib.suppress(Exception):
            return engines_of(self)[None].dialect.name
        return None


def installed_versions() -> dict[str, str | None]:
    """Installed version of each library in :data:`MINIMUM_VERSIONS` (``None`` if missing)."""
    found: dict[str, str | None] = {}
    for dist in MINIMUM_VERSIONS:
        try:
            found[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            found[dist] = None
    return found


def check_versions(installed: dict[str, str | None] | None = None) -> None:
    """Raise :class:`EnvironmentProblem` when a library is missing or older than supported.

    ``installed`` maps distribution name → version (default: what is installed here).
    """
    from packaging.version import Version

    installed = installed_versions() if installed is None else installed
    for dist, floor in MINIMUM_VERSIONS.items():
        found = installed.get(dist)
        if found is None:
            raise EnvironmentProblem(f"{dist} is not installed; ci-migrate needs {dist} >= {floor}.")
        if Version(found) < Version(floor):
            raise EnvironmentProblem(
                f"{dist} {found} is installed, but ci-migrate supports {dist} >= {floor}. "
                f"Upgrade it in the environment that runs ci-migrate."
            )


def resolve_import_string(app: str | None, root: Path) -> str | None:
    """The app import string: ``app`` if given, else ``FLASK_APP`` after loading ``.flaskenv``/``.env``
    from ``root`` (as ``flask`` does, without overriding variables already set), else ``None``
    (flask's own discovery: ``wsgi.py``, then ``app.py``)."""
    if app:
        return app
    with contextlib.suppress(ImportError):
        import dotenv

        for name in (".env", ".flaskenv"):  # flask loads .env over .flaskenv; neither overrides os.environ
            candidate = root / name
            if candidate.is_file():
                dotenv.load_dotenv(candidate, override=False, encoding="utf-8")
    return os.environ.get("FLASK_APP") or None


def load_project(root: Path, app: str | None = None, migrations: str | None = None) -> Project:
    """Import the app and read its Flask-Migrate setup.

    ``root`` is the repository root: it is put on ``sys.path`` and relative paths (the ``Migrate``
    directory, as ``flask db`` run from the root would resolve it) are taken from it.
    Raises :class:`AppLoadError` (exit 3) when the import fails (message: the app's exception and
    the last frames of its own code) or no Flask-Migrate extension is registered.
    """
    check_versions()
    root = root.resolve()
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    import_string = resolve_import_string(app, root)
    started = time.time()
    flask_app = _load_app(import_string, root)
    _remove_new_empty_dir(Path(flask_app.instance_path), started)
    state = flask_app.extensions.get("migrate")
    if state is None:
        found = ", ".join(sorted(flask_app.extensions)) or "none"
        raise AppLoadError(
            f"The app {flask_app.name!r} ({import_string or 'found by flask discovery'}) has no Flask-Migrate "
            f"extension.\n  extensions registered on it: {found}\n"
            "  ci-migrate needs `Migrate(app, db)` (or `migrate.init_app(app, db)`) to be called "
            "when the app is created. If the app you meant is another one, set `app:` in .ci-migrate.yml."
        )
    directory = Path(migrations or state.directory)
    if not directory.is_absolute():
        directory = root / directory
    if not directory.is_dir():
        raise AppLoadError(
            f"The migrations directory {directory} does not exist.\n"
            "  Run `flask db init` to create it, or set `migrations:` in .ci-migrate.yml."
        )
    project = Project(
        app=flask_app,
        db=state.db,
        migrate=state.migrate,
        migrate_state=state,
        root=root,
        import_string=import_string,
        migrations_dir=directory.resolve(),
        configure_args=dict(state.configure_args),
        bind_keys=[None],
        multidb=False,
        command_name=getattr(state.migrate, "command", "db") or "db",
    )
    project.bind_keys = _bind_keys(project)
    project.multidb = _is_multidb(directory)
    if len(project.bind_keys) > 1 and not project.multidb:
        project.notes.append(
            "The app has SQLALCHEMY_BINDS but its env.py is single-database: tables on the other binds "
            "are never migrated by `flask db upgrade`."
        )
    return project


def _remove_new_empty_dir(path: Path, since: float) -> None:
    """Flask-SQLAlchemy creates the instance folder at import for relative SQLite URLs; ci-migrate
    never uses it, so an empty one made by this import is removed (no stray files in the checkout)."""
    with contextlib.suppress(OSError):
        if path.is_dir() and not any(path.iterdir()) and path.stat().st_ctime >= since - 1:
            path.rmdir()


def _bind_keys(project: Project) -> list[str | None]:
    with project.app.app_context():
        if hasattr(project.db, "_app_engines"):
            keys = list(project.db.engines)
        else:
            keys = [None, *(project.app.config.get("SQLALCHEMY_BINDS") or {})]
    return sorted(keys, key=lambda k: (k is not None, k or ""))


def _is_multidb(directory: Path) -> bool:
    env = directory / "env.py"
    return env.is_file() and "bind_names" in env.read_text(encoding="utf-8", errors="replace")


def _load_app(import_string: str | None, root: Path) -> Any:
    from flask.cli import NoAppException, ScriptInfo

    try:
        kwargs: dict[str, Any] = {"app_import_path": import_string, "set_debug_flag": False}
        try:
            info = ScriptInfo(load_dotenv_defaults=False, **kwargs)
        except TypeError:  # Flask < 2.2
            info = ScriptInfo(**kwargs)
        import flask_sqlalchemy  # noqa: F401 - 2.5 installs an "always" filter at import: ours must come after

        with _cwd(root), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # e.g. Flask-SQLAlchemy 2.5's TRACK_MODIFICATIONS
            return info.load_app()
    except NoAppException as exc:
        cause = exc.__cause__ or exc.__context__
        if cause is not None and not isinstance(cause, NoAppException) and _own_frames(cause, root):
            raise AppLoadError(_import_failure(import_string, cause, root)) from None
        hint = (
            "Set `app:` in .ci-migrate.yml (or --app / CI_MIGRATE_APP / FLASK_APP) to the import string "
            "of your app, e.g. `myapp:create_app()` or `app.py`."
        )
        raise AppLoadError(f"Could not load the Flask app: {exc}\n  {hint}") from None
    except (Exception, SystemExit) as exc:
        raise AppLoadError(_import_failure(import_string, exc, root)) from None


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    saved = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(saved)


def _own_frames(exc: BaseException, root: Path) -> list[traceback.FrameSummary]:
    """Frames of ``exc``'s traceback that are in the app's code (under ``root``, not in a venv)."""
    frames = traceback.extract_tb(exc.__traceback__)
    own = []
    for frame in frames:
        path = Path(frame.filename)
        inside = str(path).startswith(str(root) + os.sep)
        if inside and "site-packages" not in path.parts and ".venv" not in path.parts:
            own.append(frame)
    if isinstance(exc, SyntaxError) and exc.filename:
        own.append(traceback.FrameSummary(exc.filename, exc.lineno or 0, "<module>", line=(exc.text or "").strip()))
    return own


def _import_failure(import_string: str | None, exc: BaseException, root: Path) -> str:
    frames = _own_frames(exc, root)[-5:]
    lines = [f"Importing the Flask app ({import_string or 'flask discovery'}) failed: {type(exc).__name__}: {exc}"]
    if frames:
        lines.append("  in your code (most recent call last):")
        for frame in frames:
            rel = os.path.relpath(frame.filename, root)
            lines.append(f"    {rel}:{frame.lineno} in {frame.name}")
            if frame.line:
                lines.append(f"      {frame.line}")
    lines.append("  Fix the error, or check that the app's dependencies are installed in this environment.")
    return "\n".join(lines)
