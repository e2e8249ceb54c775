"""A plain-data snapshot of a database's schema, reflected with SQLAlchemy's public Inspector.

:func:`snapshot` returns the shape :func:`ci_migrate.schema_change.schema_change` compares
(see that module's docstring): JSON-safe dicts and lists, types as the dialect compiles them.
It needs nothing but SQLAlchemy (1.4 or 2.x) and the standard library, so it can run in the
app's own interpreter, next to the sandbox connection.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: Alembic's default version table; it is bookkeeping, not the app's schema.
VERSION_TABLE = "alembic_version"


def snapshot(bind: Any, *, schema: str | None = None,
             exclude: Iterable[str] = (VERSION_TABLE,)) -> dict[str, dict[str, Any]]:
    """Reflect every table of ``bind`` (an ``Engine`` or ``Connection``) in ``schema``.

    Returns ``{table: {"columns", "primary_key", "indexes", "unique_constraints",
    "check_constraints", "foreign_keys"}}`` with tables in ``exclude`` left out. Indexes that
    only back a unique constraint (``duplicates_constraint``, PostgreSQL and MySQL) are left out
    of ``indexes``: the constraint is listed. A dialect without check-constraint reflection
    gives ``[]``. Raises what the Inspector raises (``sqlalchemy.exc.SQLAlchemyError``).
    """
    import sqlalchemy as sa

    inspector = sa.inspect(bind)
    dialect = inspector.dialect
    skipped = set(exclude)
    out: dict[str, dict[str, Any]] = {}
    for table in sorted(inspector.get_table_names(schema=schema)):
        if table in skipped:
            continue
        try:
            checks = inspector.get_check_constraints(table, schema=schema)
        except NotImplementedError:
            checks = []
        out[table] = {
            "columns": [{"name": c["name"], "type": _type_name(c["type"], dialect),
                         "nullable": bool(c.get("nullable", True)),
                         "default": None if c.get("default") is None else str(c["default"])}
                        for c in inspector.get_columns(table, schema=schema)],
            "primary_key": list(inspector.get_pk_constraint(table, schema=schema)
                                .get("constrained_columns") or []),
            "indexes": [{"name": i.get("name"), "column_names": _index_columns(i),
                         "unique": bool(i.get("unique"))}
                        for i in inspector.get_indexes(table, schema=schema)
                        if not i.get("duplicates_constraint")],
            "unique_constraints": [{"name": u.get("name"), "column_names": list(u["column_names"])}
                                   for u in inspector.get_unique_constraints(table, schema=schema)],
            "check_constraints": [{"name": c.get("name"), "sqltext": str(c["sqltext"])} for c in checks],
            "foreign_keys": [{"name": f.get("name"),
                              "constrained_columns": list(f["constrained_columns"]),
                              "referred_schema": f.get("referred_schema"),
                              "referred_table": f["referred_table"],
                              "referred_columns": list(f["referred_columns"]),
                              "options": {k: str(v) for k, v in (f.get("options") or {}).items()}}
                             for f in inspector.get_foreign_keys(table, schema=schema)],
        }
    return out


def _type_name(type_: Any, dialect: Any) -> str:
    """The type as the dialect writes it in DDL (``VARCHAR(250)``, ``TIMESTAMP WITHOUT TIME ZONE``)."""
    from sqlalchemy.exc import CompileError

    try:
        return str(type_.compile(dialect=dialect))
    except (CompileError, NotImplementedError, TypeError, AttributeError):
        return str(type_) if type(type_).__name__ != "NullType" else "NULL"


def _index_columns(index: dict[str, Any]) -> list[str]:
    """Column names; an expression (``lower(email)``, SQLAlchemy 2 ``expressions``) as its SQL text."""
    names = list(index.get("column_names") or [])
    expressions = list(index.get("expressions") or [])
    return [str(n) if n is not None else (str(expressions[i]) if i < len(expressions) else "<expression>")
            for i, n in enumerate(names)]
