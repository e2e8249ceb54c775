"""Load the user's Flask app the way ``flask`` does, and read its Flask-Migrate setup.

The app is imported once per run with flask's own loader (``flask.cli.ScriptInfo.load_app``, the
machinery behind ``FLASK_APP``). Before that, :func:`check_stack` compares the installed libraries
with the floors this probe is tested with, so an old stack gets a clear message, not a traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
import time
import traceback
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, Iterator, List, Mapping, Optional, Sequence, Tuple

from .errors import ProbeError
from .script_dirs import ScriptDir, script_dir

# Oldest versions the glue in .glue is tested with (distribution name → version).
FLOORS = {"SQLAlchemy": "1.4", "Flask": "2.0", "Flask-Migrate": "2.0", "alembic": "1.6", "Flask-SQLAlchemy": "2.5"}
REQUIRED = ("Flask", "Flask-Migrate", "alembic", "SQLAlchemy")
# Database drivers per sandbox/target dialect: (import name, distribution to suggest).
DRIVERS = {
    "postgresql": (("psycopg", "psycopg[binary]"), ("psycopg2", "psycopg2-binary")),
    "mysql": (("pymysql", "PyMySQL"), ("MySQLdb", "mysqlclient")),
    "mariadb": (("pymysql", "PyMySQL"), ("MySQLdb", "mysqlclient")),
    "sqlite": (("sqlite3", "the sqlite3 module of the standard library"),),
}
_STACK = ("Flask", "Flask-SQLAlchemy", "alchemical", "Flask-Migrate", "alembic", "SQLAlchemy", "psycopg",
          "psycopg2-binary", "psycopg2", "PyMySQL", "mysqlclient")


def _version(dist: str) -> Optional[str]:
    from importlib import metadata

    try:
        return metadata.version(dist)
    except metadata.PackageNotFoundError:
        return None


def _tuple(version: str) -> Tuple[int, ...]:
    parts = []
    for piece in version.split("."):
        digits = "".join(c for c in piece if c.isdigit()) if not piece.isdigit() else piece
        if not digits:
            break
        parts.append(int(digits))
        if not piece.isdigit():
            break
    return tuple(parts)


def stack() -> Dict[str, Any]:
    """The interpreter and the app stack installed next to it: ``{"python": path, "python_version": "3.11.7",
    "packages": {dist: version}}`` (only installed distributions are listed)."""
    packages = {d: v for d in _STACK if (v := _version(d)) is not None}
    return {"python": sys.executable, "python_version": ".".join(map(str, sys.version_info[:3])),
            "prefix": sys.prefix, "packages": packages}


def check_stack(packages: Dict[str, str]) -> None:
    """Raise :class:`ProbeError` (kind ``unsupported``) when a required library is missing or a library
    is older than its floor in :data:`FLOORS`."""
    where = sys.executable
    for dist in REQUIRED:
        if dist not in packages:
            raise ProbeError("unsupported", f"{dist} is not installed in {where}; ci-migrate imports your app with "
                             f"that interpreter, so it needs your app's requirements there (Flask, Flask-Migrate, "
                             "SQLAlchemy, alembic). Install them, or point ci-migrate at the right interpreter "
                             "with --python / CI_MIGRATE_PYTHON.")
    for dist, floor in FLOORS.items():
        found = packages.get(dist)
        if found is not None and _tuple(found) < _tuple(floor):
            raise ProbeError("unsupported", f"{dist} {found} is installed in {where}, but ci-migrate supports "
                             f"{dist} >= {floor}. Upgrade it in the app's environment.")


def check_driver(dialect: Optional[str], purpose: str) -> None:
    """Raise :class:`ProbeError` (kind ``driver``) when no DBAPI driver for ``dialect`` is importable here."""
    import importlib.util

    if not dialect or dialect not in DRIVERS:
        return
    options = DRIVERS[dialect]
    if any(importlib.util.find_spec(module) for module, _ in options):
        return
    names = " or ".join(dist for _, dist in options)
    raise ProbeError("driver", f"The {purpose} is {dialect}, but the app's environment ({sys.executable}) has no "
                     f"{dialect} driver. Install {names} there (e.g. `{sys.executable} -m pip install "
                     f"{options[0][1]}`).")


@dataclass
class Project:
    """The loaded app and its migration setup.

    ``bind_keys`` lists every database bind (``None`` = the default one); ``multidb`` is true when the
    migrations were made with ``flask db init --multidb``. ``configure_args`` is a snapshot of
    ``Migrate(**kwargs)`` options taken before env.py ever ran. ``db`` is the Flask-SQLAlchemy
    object, or whatever was passed to ``Migrate(app, db)`` (a declarative base, for apps without
    Flask-SQLAlchemy).
    """

    app: Any
    db: Any
    migrate: Any
    migrate_state: Any
    root: Path
    import_string: Optional[str]
    migrations_dir: Path
    configure_args: Dict[str, Any]
    bind_keys: List[Optional[str]]
    multidb: bool
    command_name: str = "db"
    notes: List[str] = field(default_factory=list)
    script: Any = field(default=None, repr=False)
    revision_modules: Dict[Path, Any] = field(default_factory=dict, repr=False)
    engine_holders: Dict[Path, Any] = field(default_factory=dict, repr=False)  # files keeping an engine at import
    script_dirs: List[ScriptDir] = field(default_factory=list)  # extra histories, upgraded after the app's

    @property
    def version_table(self) -> str:
        """The version table of the app's own history (``Migrate(version_table=...)``, else alembic's default)."""
        return str(self.configure_args.get("version_table") or "alembic_version")

    @property
    def version_tables(self) -> List[str]:
        """Every version table of the project: the app's own, then each extra directory's."""
        return [self.version_table] + [d.version_table for d in self.script_dirs]

    @contextlib.contextmanager
    def app_context(self) -> Iterator[None]:
        with self.app.app_context():
            yield

    @property
    def alchemical(self) -> bool:
        """Whether ``db`` is Alchemical's Flask extension (``alchemical.flask.Alchemical`` or a subclass),
        which Flask-Migrate supports: its engines are ``db.engines`` (bind key → Engine, made lazily by
        ``db.get_engine``), its URLs ``db.url`` and ``db.binds``."""
        return any(c.__module__.split(".")[0] == "alchemical" for c in type(self.db).__mro__)

    @property
    def flask_sqlalchemy(self) -> Optional[str]:
        """``"3"`` for Flask-SQLAlchemy 3.x, ``"2"`` for 2.x, None when ``db`` is not Flask-SQLAlchemy."""
        if self.alchemical:
            return None
        if hasattr(self.db, "_app_engines"):
            return "3"
        if "sqlalchemy" in self.app.extensions and hasattr(self.db, "get_engine"):
            return "2"
        return None

    @property
    def metadatas(self) -> Dict[Optional[str], Any]:
        """``MetaData`` per bind key (Flask-SQLAlchemy 3.x ``db.metadatas``; 2.5 and plain bases have one)."""
        if hasattr(self.db, "metadatas"):
            return dict(self.db.metadatas)
        metadata = getattr(self.db, "metadata", None)
        return {None: metadata} if metadata is not None else {}

    def relative(self, path: Any) -> str:
        """``path`` relative to the repository root, POSIX separators (absolute if outside)."""
        p = Path(path).resolve()
        try:
            return p.relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return p.as_posix()

    def configured_url(self, key: Optional[str] = None) -> Optional[str]:
        """The app's own configured URL of a bind (``SQLALCHEMY_DATABASE_URI`` / ``SQLALCHEMY_BINDS``;
        Alchemical: ``db.url`` / ``db.binds``, from its ``ALCHEMICAL_*`` settings)."""
        config = self.app.config
        if self.alchemical:
            value = self.db.url if key is None else (self.db.binds or {}).get(key)
        elif key is None:
            value = config.get("SQLALCHEMY_DATABASE_URI")
        else:
            value = (config.get("SQLALCHEMY_BINDS") or {}).get(key)
            if isinstance(value, dict):
                value = value.get("url")
        return None if value is None else str(value)

    def configured_dialect(self) -> Optional[str]:
        """Dialect name of the app's own default database URL (no connection made)."""
        url = self.configured_url()
        if not url:
            return None
        with contextlib.suppress(Exception):
            from sqlalchemy.engine import make_url

            return make_url(url).get_backend_name()
        return None


def resolve_import_string(app: Optional[str], root: Path) -> Optional[str]:
    """The app import string: ``app`` if given, else ``FLASK_APP`` after loading ``.flaskenv``/``.env``
    from ``root`` (as ``flask`` does, without overriding variables already set), else ``None``."""
    if app:
        return app
    with contextlib.suppress(ImportError):
        import dotenv

        for name in (".env", ".flaskenv"):
            candidate = root / name
            if candidate.is_file():
                dotenv.load_dotenv(candidate, override=False, encoding="utf-8")
    return os.environ.get("FLASK_APP") or None


def load_project(root: Path, app: Optional[str] = None, migrations: Optional[str] = None,
                 script_dirs: Sequence[Mapping[str, Any]] = ()) -> Project:
    """Import the app and read its Flask-Migrate setup.

    ``root`` (the repository root) is put on ``sys.path``; relative paths are taken from it.
    ``script_dirs``: the extra script directories, ``{"path", "version_table"}`` each
    (:func:`.script_dirs.script_dir`). Raises :class:`ProbeError` kind ``app_load`` when the import fails (the app's
    exception and the last frames of its own code) or no Flask-Migrate extension is registered, or the
    migrations directory does not exist; kind ``usage`` when an extra directory is the app's own one or
    shares its version table.
    """
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
        raise ProbeError("app_load",
                         f"The app {flask_app.name!r} ({import_string or 'found by flask discovery'}) has no "
                         f"Flask-Migrate extension.\n  extensions registered on it: {found}\n"
                         "  ci-migrate needs `Migrate(app, db)` (or `migrate.init_app(app, db)`) to be called "
                         "when the app is created. If the app you meant is another one, set `app:` in .ci-migrate.yml.")
    directory = Path(migrations or state.directory)
    if not directory.is_absolute():
        directory = root / directory
    if not directory.is_dir():
        found = _migration_dirs(root)
        if found:
            where = found[0]
            hint = (f"  The project has one at {where}" + (f" (and {', '.join(found[1:])})" if found[1:] else "")
                    + f": set `migrations: {where}` in .ci-migrate.yml (or --migrations {where}); "
                    f"`flask db` finds it with `-d {where}`.")
        else:
            hint = "  Run `flask db init` to create it, or set `migrations:` in .ci-migrate.yml."
        raise ProbeError("app_load", f"The migrations directory {directory} does not exist.\n{hint}")
    project = Project(app=flask_app, db=state.db, migrate=state.migrate, migrate_state=state, root=root,
                      import_string=import_string, migrations_dir=directory.resolve(),
                      configure_args=dict(getattr(state, "configure_args", {}) or {}), bind_keys=[None],
                      multidb=False, command_name=getattr(state.migrate, "command", "db") or "db")
    project.bind_keys = _bind_keys(project)
    project.multidb = _is_multidb(directory)
    project.script_dirs = [script_dir(project, entry) for entry in script_dirs]
    if len(project.bind_keys) > 1 and not project.multidb:
        project.notes.append("The app has SQLALCHEMY_BINDS but its env.py is single-database: tables on the other "
                             "binds are never migrated by `flask db upgrade`.")
    return project


def _migration_dirs(root: Path, depth: int = 3) -> List[str]:
    """Directories under ``root`` (at most ``depth`` levels down, not in hidden directories or
    virtualenvs) that look like a migrations directory: an ``env.py`` beside a ``versions/``."""
    found = []
    skip = {"node_modules", "site-packages", "venv", "env", "__pycache__", "build", "dist"}
    for current, dirs, files in os.walk(root):
        rel = Path(current).relative_to(root)
        if "env.py" in files and "versions" in dirs and rel.parts:
            found.append(rel.as_posix())
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in skip) if len(rel.parts) < depth else []
    return found


def _remove_new_empty_dir(path: Path, since: float) -> None:
    """Flask-SQLAlchemy creates the instance folder at import for relative SQLite URLs; ci-migrate
    never uses it, so an empty one made by this import is removed (no stray files in the checkout)."""
    with contextlib.suppress(OSError):
        if path.is_dir() and not any(path.iterdir()) and path.stat().st_ctime >= since - 1:
            path.rmdir()


def _bind_keys(project: Project) -> List[Optional[str]]:
    keys: List[Optional[str]] = [None]
    with project.app.app_context():
        if project.flask_sqlalchemy == "3":
            keys = list(project.db.engines)
        elif project.alchemical:
            keys += list(project.db.binds or {})
        else:
            keys += list(project.app.config.get("SQLALCHEMY_BINDS") or {})
    return sorted(dict.fromkeys(keys), key=lambda k: (k is not None, k or ""))


def _is_multidb(directory: Path) -> bool:
    env = directory / "env.py"
    return env.is_file() and "bind_names" in env.read_text(encoding="utf-8", errors="replace")


def _load_app(import_string: Optional[str], root: Path) -> Any:
    from flask.cli import NoAppException, ScriptInfo

    try:
        kwargs: Dict[str, Any] = {"app_import_path": import_string, "set_debug_flag": False}
        try:
            info = ScriptInfo(load_dotenv_defaults=False, **kwargs)
        except TypeError:  # Flask < 2.2
            info = ScriptInfo(**kwargs)
        with contextlib.suppress(ImportError):
            import flask_sqlalchemy  # noqa: F401 - 2.5 installs an "always" filter at import: ours must come after
        # as `flask` does before it loads the app (FlaskGroup): app.run() at import is then ignored, and
        # code guarded by it (gevent monkey-patching in a wsgi.py) is skipped as under `flask db`
        os.environ["FLASK_RUN_FROM_CLI"] = "true"
        with _cwd(root), warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)
            return info.load_app()
    except NoAppException as exc:
        cause = exc.__cause__ or exc.__context__
        if cause is not None and not isinstance(cause, NoAppException) and _own_frames(cause, root):
            raise ProbeError("app_load", _import_failure(import_string, cause, root)) from None
        hint = ("Set `app:` in .ci-migrate.yml (or --app / CI_MIGRATE_APP / FLASK_APP) to the import string "
                "of your app, e.g. `myapp:create_app()` or `app.py`.")
        raise ProbeError("app_load", f"Could not load the Flask app: {exc}\n  {hint}") from None
    except SystemExit as exc:
        raise ProbeError("app_load", _import_failure(import_string, exc, root,
                                                     what=f"called sys.exit({exc.code!r})")) from None
    except Exception as exc:
        raise ProbeError("app_load", _import_failure(import_string, exc, root)) from None


@contextlib.contextmanager
def _cwd(path: Path) -> Iterator[None]:
    saved = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(saved)


def _own_frames(exc: BaseException, root: Path) -> List[traceback.FrameSummary]:
    """Frames of ``exc``'s traceback that are in the app's code (under ``root``, not in a venv)."""
    own = []
    for frame in traceback.extract_tb(exc.__traceback__):
        path = Path(frame.filename)
        inside = str(path).startswith(str(root) + os.sep)
        if inside and "site-packages" not in path.parts and ".venv" not in path.parts:
            own.append(frame)
    if isinstance(exc, SyntaxError) and exc.filename:
        own.append(traceback.FrameSummary(exc.filename, exc.lineno or 0, "<module>", line=(exc.text or "").strip()))
    return own


def _import_failure(import_string: Optional[str], exc: BaseException, root: Path, what: Optional[str] = None) -> str:
    frames = _own_frames(exc, root)[-5:]
    what = what or f"{type(exc).__name__}: {exc}"
    lines = [f"Importing the Flask app ({import_string or 'flask discovery'}) failed: {what}"]
    if frames:
        lines.append("  in your code (most recent call last):")
        for frame in frames:
            rel = os.path.relpath(frame.filename, root)
            lines.append(f"    {rel}:{frame.lineno} in {frame.name}")
            if frame.line:
                lines.append(f"      {frame.line}")
    driver = _missing_driver(exc)
    if driver:
        lines.append(driver)
    lines.append(f"  Fix the error, or check that the app's dependencies are installed in {sys.executable}'s "
                 "environment.")
    return "\n".join(lines)


def _missing_driver(exc: BaseException) -> Optional[str]:
    """A hint when the app's database URL names a driver its environment lacks (SQLAlchemy 2.1 picks
    psycopg 3 for a plain ``postgresql://``, 2.0 psycopg2), naming one the environment has."""
    import importlib.util

    name = getattr(exc, "name", None) if isinstance(exc, ModuleNotFoundError) else None
    for dialect, drivers in DRIVERS.items():
        if dialect == "sqlite" or name not in [module for module, _ in drivers]:
            continue
        package = dict(drivers)[name]
        hint = (f"  `{name}` is the database driver the app's URL asks for: install {package} in "
                f"{sys.executable}'s environment")
        others = [module for module, _ in drivers if module != name and importlib.util.find_spec(module)]
        if others:
            sa_name = {"MySQLdb": "mysqldb"}.get(others[0], others[0].lower())
            hint += f", or name the driver it has in the URL: `{dialect}+{sa_name}://…`"
        return hint + "."
    return None
