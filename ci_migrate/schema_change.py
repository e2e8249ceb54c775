"""Table shapes and the schema change of the pending revisions: typed facts and their builder.

:func:`schema_change` compares two plain-data snapshots of one database, taken by
:func:`ci_migrate.probe.snapshot.snapshot` before and after the pending revisions ran on the
sandbox, and returns :class:`SchemaChangeFacts`: per table, what was added, dropped or changed
(columns with their state before → after; indexes, unique/check constraints and foreign keys
added or dropped), plus the shape of each touched table and of its direct neighbours for the
diagram. It reads what the database *has* (reflection), so it sees what ``op.execute()`` did as
well as what the alembic operations did; a renamed column or table shows as dropped + added, and
an index or constraint whose definition changed under the same name as dropped + added.

Snapshot shape (JSON-safe; one database / bind; the version table left out)::

    {"<table>": {
        "columns": [{"name", "type": "VARCHAR(250)", "nullable": bool, "default": str | None}],
        "primary_key": ["id"],
        "indexes": [{"name", "column_names": [...], "unique": bool}],
        "unique_constraints": [{"name", "column_names": [...]}],
        "check_constraints": [{"name", "sqltext"}],
        "foreign_keys": [{"name", "constrained_columns", "referred_schema", "referred_table",
                          "referred_columns", "options": {"ondelete": ..., "onupdate": ...}}],
    }}

These are the shapes of SQLAlchemy's ``Inspector.get_columns`` / ``get_pk_constraint`` /
``get_indexes`` / ``get_unique_constraints`` / ``get_check_constraints`` / ``get_foreign_keys``,
with types as strings; missing keys are read as empty.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Snapshot = Mapping[str, Mapping[str, Any]]

Change = Literal["added", "dropped", "changed"]
ObjectChange = Literal["added", "dropped"]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- table shapes


class ColumnSchema(_Model):
    name: str
    type: str
    nullable: bool = True
    primary_key: bool = False
    foreign_key: str | None = None  # "table.column"


class TableSchema(_Model):
    name: str
    bind: str | None = None
    columns: list[ColumnSchema] = Field(default_factory=list)


# --------------------------------------------------------------------------- schema change


class ColumnState(_Model):
    """A column as reflected: ``type`` as the database names it (``VARCHAR(250)``), ``default``
    the server default's SQL text (``None``: no default)."""

    type: str
    nullable: bool = True
    default: str | None = None
    primary_key: bool = False


class ColumnChange(_Model):
    """One column added (``before`` is ``None``), dropped (``after`` is ``None``) or changed."""

    name: str
    change: Change
    before: ColumnState | None = None
    after: ColumnState | None = None


class IndexChange(_Model):
    name: str | None = None
    change: ObjectChange
    columns: list[str] = Field(default_factory=list)  # expressions as their SQL text
    unique: bool = False


class ConstraintChange(_Model):
    """A unique constraint (``columns``) or a check constraint (``sqltext``) added or dropped."""

    kind: Literal["unique", "check"]
    name: str | None = None
    change: ObjectChange
    columns: list[str] = Field(default_factory=list)
    sqltext: str | None = None


class ForeignKeyChange(_Model):
    name: str | None = None
    change: ObjectChange
    columns: list[str] = Field(default_factory=list)
    referred_schema: str | None = None
    referred_table: str
    referred_columns: list[str] = Field(default_factory=list)
    ondelete: str | None = None
    onupdate: str | None = None


class TableChange(_Model):
    """What the pending revisions do to one table of one bind (``None``: the default bind)."""

    name: str
    bind: str | None = None
    change: Change
    columns: list[ColumnChange] = Field(default_factory=list)
    indexes: list[IndexChange] = Field(default_factory=list)
    constraints: list[ConstraintChange] = Field(default_factory=list)
    foreign_keys: list[ForeignKeyChange] = Field(default_factory=list)


class SchemaChangeFacts(_Model):
    """The schema change of the pending revisions, from the sandbox reflected before and after.

    ``tables``: the touched tables, by name. ``schemas``: the shape of each touched table (after
    the change; a dropped table as it was) and of its direct neighbours (tables it references or
    that reference it), for the diagram. ``revisions``: the pending revisions it covers, in
    upgrade order.
    """

    kind: Literal["schema_change"] = "schema_change"
    revisions: list[str] = Field(default_factory=list)
    tables: list[TableChange] = Field(default_factory=list)
    schemas: list[TableSchema] = Field(default_factory=list)


# --------------------------------------------------------------------------- builder


def schema_change(before: Snapshot, after: Snapshot, *, bind: str | None = None,
                  revisions: Iterable[str] = ()) -> SchemaChangeFacts:
    """The change from snapshot ``before`` to snapshot ``after`` of one database (``bind``).

    Both are :mod:`ci_migrate.probe.snapshot` snapshots (module docstring). Tables are ordered
    by name; columns in table order (dropped ones after the others). For a multidb app call it
    once per bind and join the results with :func:`combine`. Raises ``KeyError``/``TypeError``
    only for snapshots that do not have the documented shape.
    """
    tables: list[TableChange] = []
    for name in sorted(set(before) | set(after)):
        old, new = before.get(name), after.get(name)
        change = _table_change(name, old or {}, new or {}, bind)
        if old is None:
            change.change = "added"
        elif new is None:
            change.change = "dropped"
        elif not (change.columns or change.indexes or change.constraints or change.foreign_keys):
            continue
        tables.append(change)
    touched = [t.name for t in tables]
    shapes = {n: _shape(n, after[n] if n in after else before[n], bind)
              for n in [*touched, *_neighbours(touched, before, after)]}
    return SchemaChangeFacts(revisions=list(revisions), tables=tables, schemas=list(shapes.values()))


def combine(parts: Iterable[SchemaChangeFacts]) -> SchemaChangeFacts:
    """The facts of several binds as one (revisions kept once, in first-seen order)."""
    out = SchemaChangeFacts()
    for part in parts:
        out.revisions += [r for r in part.revisions if r not in out.revisions]
        out.tables += part.tables
        out.schemas += part.schemas
    return out


def _state(col: Mapping[str, Any], pk: set[str]) -> ColumnState:
    default = col.get("default")
    return ColumnState(type=str(col["type"]), nullable=bool(col.get("nullable", True)),
                       default=None if default is None else str(default),
                       primary_key=col["name"] in pk)


def _table_change(name: str, old: Mapping[str, Any], new: Mapping[str, Any],
                  bind: str | None) -> TableChange:
    old_pk, new_pk = set(old.get("primary_key") or []), set(new.get("primary_key") or [])
    old_cols = {c["name"]: _state(c, old_pk) for c in old.get("columns") or []}
    new_cols = {c["name"]: _state(c, new_pk) for c in new.get("columns") or []}
    columns = []
    for col, state in new_cols.items():
        if col not in old_cols:
            columns.append(ColumnChange(name=col, change="added", after=state))
        elif old_cols[col] != state:
            columns.append(ColumnChange(name=col, change="changed", before=old_cols[col], after=state))
    columns += [ColumnChange(name=col, change="dropped", before=state)
                for col, state in old_cols.items() if col not in new_cols]
    return TableChange(
        name=name, bind=bind, change="changed", columns=columns,
        indexes=[IndexChange(name=i.get("name"), change=how, columns=_names(i.get("column_names")),
                             unique=bool(i.get("unique")))
                 for how, i in _objects(old, new, "indexes", ("column_names", "unique"))],
        constraints=[
            *(ConstraintChange(kind="unique", name=u.get("name"), change=how,
                               columns=_names(u.get("column_names")))
              for how, u in _objects(old, new, "unique_constraints", ("column_names",))),
            *(ConstraintChange(kind="check", name=c.get("name"), change=how, sqltext=c.get("sqltext"))
              for how, c in _objects(old, new, "check_constraints", ("sqltext",))),
        ],
        foreign_keys=[
            ForeignKeyChange(name=f.get("name"), change=how, columns=_names(f.get("constrained_columns")),
                             referred_schema=f.get("referred_schema"), referred_table=f["referred_table"],
                             referred_columns=_names(f.get("referred_columns")),
                             ondelete=(f.get("options") or {}).get("ondelete"),
                             onupdate=(f.get("options") or {}).get("onupdate"))
            for how, f in _objects(old, new, "foreign_keys",
                                   ("constrained_columns", "referred_schema", "referred_table",
                                    "referred_columns", "options"))],
    )


def _names(values: Iterable[Any] | None) -> list[str]:
    return [str(v) for v in values or []]


def _objects(old: Mapping[str, Any], new: Mapping[str, Any], key: str,
             fields: tuple[str, ...]) -> list[tuple[ObjectChange, Mapping[str, Any]]]:
    """Objects of kind ``key`` dropped from ``old`` / added in ``new``, matched by definition
    (``fields``) and name: a renamed or redefined object is one dropped and one added."""

    def ident(obj: Mapping[str, Any]) -> str:
        return repr((obj.get("name"), *(_plain(obj.get(f)) for f in fields)))

    before = {ident(o): o for o in old.get(key) or []}
    after = {ident(o): o for o in new.get(key) or []}
    return ([("dropped", o) for i, o in before.items() if i not in after]
            + [("added", o) for i, o in after.items() if i not in before])


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return tuple(sorted((k, _plain(v)) for k, v in value.items() if v is not None))
    if isinstance(value, (list, tuple)):
        return tuple(_plain(v) for v in value)
    return value


def _references(table: Mapping[str, Any]) -> set[str]:
    return {f["referred_table"] for f in table.get("foreign_keys") or []}


def _neighbours(touched: list[str], before: Snapshot, after: Snapshot) -> list[str]:
    """Tables, not touched themselves, that a touched table references or that reference one."""
    near: set[str] = set()
    for snap in (after, before):
        for name, table in snap.items():
            refs = _references(table)
            if name in touched:
                near |= refs
            elif refs & set(touched):
                near.add(name)
    return sorted(n for n in near - set(touched) if n in after or n in before)


def _shape(name: str, table: Mapping[str, Any], bind: str | None) -> TableSchema:
    pk = set(table.get("primary_key") or [])
    refs: dict[str, str] = {}
    for fk in table.get("foreign_keys") or []:
        for col, ref in zip(fk.get("constrained_columns") or [], fk.get("referred_columns") or []):
            refs.setdefault(col, f"{fk['referred_table']}.{ref}")
    return TableSchema(name=name, bind=bind, columns=[
        ColumnSchema(name=c["name"], type=str(c["type"]), nullable=bool(c.get("nullable", True)),
                     primary_key=c["name"] in pk, foreign_key=refs.get(c["name"]))
        for c in table.get("columns") or []])
