"""Extra Alembic script directories with version tables of their own (a plugin's history): the probe side.

Apps with plugins upgrade each plugin's history after their own, each recorded in its own version
table — CKAN's ``<plugin>_alembic_version`` (a full script directory with an env.py of its own),
Indico's ``alembic_version_plugin_<name>`` (revision files run through a shared env.py). The config
lists them (``migrations:`` entries with a ``version-table``); here they are checked against the
app's own history (:func:`script_dir`), given the Flask-Migrate ``Config`` that runs them
(:func:`config_for`), upgraded on the sandbox after the app's history (:func:`upgrade`) and read
back from their version tables (:func:`heads`). The ScriptDirectory each one gets, loaded once, is
made in :func:`.glue.script_directory`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional

from .errors import ProbeError

CONFIG_KEY = "ci_migrate.script_dir"  # Config.attributes key: the extra directory a Config is for


@dataclass
class ScriptDir:
    """An extra Alembic script directory whose history is kept in a version table of its own.

    With an ``env.py`` of its own it runs through that, as ``flask db upgrade -d <path>`` would;
    without one its revision files are the version location of a copy of the app's
    ``ScriptDirectory``, run through the app's env.py with ``version_table`` passed to
    ``context.configure()``. ``shown`` is the path relative to the repository root; ``script`` its
    ``ScriptDirectory``, made once per run.
    """

    path: Path
    version_table: str
    shown: str = ""
    script: Any = field(default=None, repr=False)

    @property
    def env_py(self) -> Optional[Path]:
        """The directory's own env.py, or None (the app's env.py runs it)."""
        env = self.path / "env.py"
        return env if env.is_file() else None


class VersionTableMismatch(Exception):
    """A directory's own env.py passes another ``version_table`` to ``configure()`` than the config gives it."""


def script_dir(project: Any, entry: Mapping[str, Any]) -> ScriptDir:
    """An extra directory of the ``load`` request (``{"path", "version_table"}``), checked against the
    app's own history. Raises :class:`ProbeError` kind ``usage`` (exit 2) when it is the app's own
    migrations directory or has the app's own version table (``Migrate(version_table=...)``)."""
    path = Path(entry["path"])
    path = (path if path.is_absolute() else project.root / path).resolve()
    shown = project.relative(path)
    if path == project.migrations_dir:
        raise ProbeError("usage", f"migrations: {shown} is the app's own migrations directory (the one its Migrate "
                                  "extension uses); list it without a version-table")
    table = str(entry["version_table"])
    if table.lower() == project.version_table.lower():
        raise ProbeError("usage", f"migrations: {shown} has version-table {table}, which is the version table of the "
                                  "app's own history (Migrate(version_table=...)); give the directory one of its own")
    return ScriptDir(path=path, version_table=table, shown=shown)


def config_for(project: Any, directory: Optional[ScriptDir] = None) -> Any:
    """The Flask-Migrate ``Config`` (``Migrate.get_config``) of the app's migrations directory, or of an
    extra script directory: with its own env.py that directory, as ``flask db upgrade -d <path>``
    reads it; else the app's (its revisions then come from the extra directory,
    :func:`.glue.script_directory`). For an extra directory the main option ``version_table`` holds
    its version table (for env.py files that read ``config.get_main_option("version_table")``) and
    ``config.attributes[CONFIG_KEY]`` the directory."""
    if directory is None:
        return project.migrate.get_config(directory=str(project.migrations_dir))
    own = directory.env_py is not None
    config = project.migrate.get_config(directory=str(directory.path if own else project.migrations_dir))
    config.set_main_option("version_table", directory.version_table)
    config.attributes[CONFIG_KEY] = directory
    return config


def check_version_table(found: str, directory: ScriptDir) -> None:
    """Raise :class:`VersionTableMismatch` when the directory's own env.py passes ``found`` (alembic's
    default when it passes none) as ``version_table``, not the configured one: upgraded with that
    env.py in production, the directory's revisions would be recorded in another table."""
    if found.lower() == directory.version_table.lower():
        return
    whose = " (the version table of the app's own history)" if found == "alembic_version" else ""
    raise VersionTableMismatch(
        f"it records revisions in {found!r}, not in {directory.version_table!r} (the config's version-table)\n"
        f"{directory.shown}/env.py passes version_table={found!r}{whose} to context.configure(), but `migrations:` in "
        f"the ci-migrate config gives this directory version-table {directory.version_table!r}.\n"
        f"Pass version_table='{directory.version_table}' in env.py (or config.get_main_option('version_table'), "
        "which ci-migrate sets), or correct the version-table in the config.")


def upgrade(session: Any, *, stamp: bool = False) -> Optional[Dict[str, Any]]:
    """Upgrade each extra script directory to its heads on the session's sandbox, in config order,
    after the app's history (``alembic.command.upgrade(config, "heads")`` with :func:`config_for`);
    ``stamp``: only stamp them at heads (the sandbox was made by ``create_all()``, which made their
    tables too). Returns the first failure (:func:`.replay.describe_failure`, plus ``directory``) or
    None."""
    from alembic import command

    from . import glue
    from .replay import describe_failure

    project, sandbox = session.project, session.sandbox
    for directory in project.script_dirs:
        with glue.alembic_session(project, sandbox.urls, sandbox.engines, directory=directory) as (config, _c):
            try:
                (command.stamp if stamp else command.upgrade)(config, "heads")
            except Exception as exc:  # noqa: BLE001 - a failing revision is a fact
                return {**describe_failure(exc, session, "stamp" if stamp else "upgrade"), "directory": directory.shown}
    return None


def heads(session: Any) -> Dict[str, List[str]]:
    """Each extra script directory's version table on the sandbox's default database (``shown`` path
    → revisions), read with ``MigrationContext.get_current_heads``."""
    from alembic.migration import MigrationContext

    project, sandbox = session.project, session.sandbox
    found: Dict[str, List[str]] = {}
    with session.guard.allowing(sandbox.urls), sandbox.engines[None].connect() as conn:
        for directory in project.script_dirs:
            context = MigrationContext.configure(conn, opts={"version_table": directory.version_table})
            found[directory.shown] = sorted(context.get_current_heads())
    return found
