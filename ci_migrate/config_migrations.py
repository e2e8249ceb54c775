"""The ``migrations`` setting: the app's own migrations directory, and extra Alembic script
directories that keep a history of their own in a version table of their own (plugins).

Two shapes (docs/config.md, ``migrations``)::

    migrations: db/migrations                   # the app's own directory only
    migrations:
      - migrations                              # the app's own directory (no version-table)
      - path: plugins/audit/migrations          # an extra directory ...
        version-table: alembic_version_audit    # ... and the version table its history lives in

The list form mirrors how apps with plugins run them: a plugin's directory is an Alembic script
directory upgraded after the app's history with ``context.configure(version_table=...)`` of its own
(CKAN's ``<plugin>_alembic_version``, Indico's ``alembic_version_plugin_<name>``). Every problem is
located at its entry (``migrations[1].version-table``).
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated, Any

from pydantic import Field, ValidationInfo, WrapValidator, field_validator, model_validator

from ci_migrate.config_checks import migrations_problem
from ci_migrate.config_errors import custom, show
from ci_migrate.config_model import ConfigModel

DEFAULT_VERSION_TABLE = "alembic_version"  # alembic's default (MigrationContext), Flask-Migrate keeps it
_TABLE_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")  # 63: PostgreSQL's identifier limit (NAMEDATALEN - 1)
_SEEN = "migrations_seen"  # validation-context keys: the valid entries so far, (list index, entry) in list order,
_INDEX = "migrations_index"  # and the list index of the entry being validated
_SHAPES = ("a directory (migrations: db/migrations) or a list of directories, e.g. [migrations, "
           "{path: plugins/audit/migrations, version-table: alembic_version_audit}]")


class MigrationsDir(ConfigModel):
    """One Alembic script directory, relative to the root.

    ``version_table`` None: the app's own migrations directory (its version table is the one its
    env.py passes to ``context.configure``, ``alembic_version`` unless ``Migrate(version_table=...)``
    says otherwise). Otherwise an extra directory whose history is upgraded after the app's own,
    recorded in this table (alembic's ``version_table`` option).
    """

    path: str = Field(description="the directory, relative to the root, e.g. path: plugins/audit/migrations")
    version_table: str | None = None

    @model_validator(mode="before")
    @classmethod
    def _plain_path(cls, value: Any, info: ValidationInfo) -> Any:
        """A list entry may be the bare path. Counts the entries (for :meth:`_unlike_the_others`)."""
        context = info.context or {}
        if _SEEN in context:
            context[_INDEX] = context.get(_INDEX, -1) + 1
        return {"path": value} if isinstance(value, str) else value

    @field_validator("path")
    @classmethod
    def _directory(cls, value: str, info: ValidationInfo) -> str:
        root = (info.context or {}).get("root")
        problem = migrations_problem(value, Path(root)) if root is not None else None
        if problem is not None:
            raise custom("migrations_dir", problem)
        return value

    @field_validator("version_table")
    @classmethod
    def _table_name(cls, value: str | None) -> str | None:
        if value is None:
            return None
        if not _TABLE_NAME.fullmatch(value):
            raise custom("version_table", "must be a table name: letters, digits and _, not starting with a digit, "
                                          f"at most 63 characters, e.g. alembic_version_audit (got {show(value)})")
        if value.lower() == DEFAULT_VERSION_TABLE:
            raise custom("version_table", f"{show(value)} is the version table of the app's own history "
                                          "(alembic's default); give this directory a table of its own, "
                                          "e.g. alembic_version_audit")
        return value

    @model_validator(mode="after")
    def _unlike_the_others(self, info: ValidationInfo) -> MigrationsDir:
        """Compared with the entries before it: another directory, a version table of its own, and at
        most one entry (the app's own directory) without a version table."""
        context = info.context or {}
        seen: list[tuple[int, MigrationsDir]] | None = context.get(_SEEN)
        if seen is None:
            return self
        root = Path(context.get("root") or ".")
        for index, other in seen:
            if (root / self.path).resolve() == (root / other.path).resolve():
                raise custom("migrations_twice", f"{show(self.path)} is listed twice (also migrations[{index}])")
            if self.version_table is None and other.version_table is None:
                raise custom("migrations_own", f"{show(self.path)} has no version-table, and neither has "
                                               f"{show(other.path)} (migrations[{index}]): only the app's own "
                                               "migrations directory goes without one — give each other "
                                               "directory the version table its history is kept in, "
                                               "e.g. {path: plugins/audit/migrations, version-table: "
                                               "alembic_version_audit}")
            if self.version_table is not None and self.version_table.lower() == (other.version_table or "").lower():
                raise custom("version_table_twice", f"version table {show(self.version_table)} is also the one of "
                                                    f"{show(other.path)} (migrations[{index}]); each directory "
                                                    "keeps its history in a table of its own")
        seen.append((context.get(_INDEX, len(seen)), self))
        return self


def _migrations(value: Any, handler: Any, info: ValidationInfo) -> list[MigrationsDir] | None:
    """A path (the app's own directory, located at ``migrations:`` itself) or a list of entries."""
    if value is None or isinstance(value, list) and not value:
        return None
    if isinstance(value, str):
        root = (info.context or {}).get("root")
        problem = migrations_problem(value, Path(root)) if root is not None else None
        if problem is not None:
            raise custom("migrations_dir", problem)
        return [MigrationsDir(path=value)]
    if not isinstance(value, list):
        raise custom("migrations", f"must be {_SHAPES} (got {show(value)})")
    if info.context is not None:
        info.context[_SEEN] = []
        info.context.pop(_INDEX, None)
    return handler(value)


Migrations = Annotated[list[MigrationsDir] | None, WrapValidator(_migrations)]
"""The type of the ``migrations`` setting: None (Flask-Migrate's directory) or the entries, in order."""
