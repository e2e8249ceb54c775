"""A plain-data snapshot of a database's schema, reflected with SQLAlchemy's public Inspector.

:func:`snapshot` returns the shape :func:`ci_migrate.schema_change.schema_change` compares
(see that module's docstring): JSON-safe dicts and lists, types as the dialect compiles them.
It needs nothing but SQLAlchemy (1.4 or 2.x) and the standard library, so it can run in the
app's own interpreter, next to the sandbox connection.

On SQLAlchemy 2.x the Inspector's batch methods (``get_multi_columns`` and friends, one query per
kind of object for all tables on PostgreSQL) are used; SQLAlchemy 1.4 has none, and there each table
is reflected on its own (``get_columns(table)`` …). Both give the same data.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

#: Alembic's default version table; it is bookkeeping, not the app's schema.
VERSION_TABLE = "alembic_version"
_KINDS = ("columns", "pk_constraint", "indexes", "unique_constraints", "check_constraints", "foreign_keys")


def snapshot(bind: Any, *, schema: str | None = None, exclude: Iterable[str] = (VERSION_TABLE,),
             only: Iterable[str] | None = None, batched: bool = True) -> dict[str, dict[str, Any]]:
    """Reflect every table of ``bind`` (an ``Engine`` or ``Connection``) in ``schema``.

    Returns ``{table: {"columns", "primary_key", "indexes", "unique_constraints",
    "check_constraints", "foreign_keys"}}`` with tables in ``exclude`` left out (and, with ``only``,
    every table not named there). Indexes that only back a unique constraint
    (``duplicates_constraint``, PostgreSQL and MySQL) are left out of ``indexes``: the constraint
    is listed. A dialect without check-constraint reflection gives ``[]``. ``batched=False``
    reflects table by table even where the batch methods exist (the SQLAlchemy 1.4 path). Raises
    what the Inspector raises (``sqlalchemy.exc.SQLAlchemyError``).
    """
    import sqlalchemy as sa

    inspector = sa.inspect(bind)
    skipped = set(exclude)
    wanted = None if only is None else set(only)
    tables = sorted(t for t in inspector.get_table_names(schema=schema)
                    if t not in skipped and (wanted is None or t in wanted))
    if not tables:
        return {}
    raw = _batched(inspector, tables, schema) if batched and hasattr(inspector, "get_multi_columns") else None
    if raw is None:
        raw = {t: _per_table(inspector, t, schema) for t in tables}
    return {t: _shape(raw[t], inspector.dialect) for t in tables}


def _per_table(inspector: Any, table: str, schema: str | None) -> dict[str, Any]:
    """One table's reflection, kind by kind (SQLAlchemy 1.4)."""
    try:
        checks = inspector.get_check_constraints(table, schema=schema)
    except NotImplementedError:
        checks = []
    return {"columns": inspector.get_columns(table, schema=schema),
            "pk_constraint": inspector.get_pk_constraint(table, schema=schema),
            "indexes": inspector.get_indexes(table, schema=schema),
            "unique_constraints": inspector.get_unique_constraints(table, schema=schema),
            "check_constraints": checks,
            "foreign_keys": inspector.get_foreign_keys(table, schema=schema)}


def _batched(inspector: Any, tables: list[str], schema: str | None) -> dict[str, dict[str, Any]] | None:
    """Every table's reflection through ``Inspector.get_multi_<kind>`` (SQLAlchemy 2.x), or None when a
    kind cannot be read that way (then the caller reflects table by table)."""
    out: dict[str, dict[str, Any]] = {t: {} for t in tables}
    filter_names = tables if len(tables) < 1000 else None
    for kind in _KINDS:
        method = getattr(inspector, f"get_multi_{kind}")
        try:
            found = method(schema=schema, filter_names=filter_names)
        except NotImplementedError:
            if kind != "check_constraints":
                return None
            found = {}
        by_name = {key[1]: value for key, value in found.items()}
        for table in tables:
            default = {} if kind == "pk_constraint" else []
            out[table][kind] = by_name.get(table, default)
    return out


def _shape(raw: dict[str, Any], dialect: Any) -> dict[str, Any]:
    return {
        "columns": [{"name": c["name"], "type": _type_name(c["type"], dialect),
                     "nullable": bool(c.get("nullable", True)),
                     "default": None if c.get("default") is None else str(c["default"])}
                    for c in raw["columns"]],
        "primary_key": list((raw["pk_constraint"] or {}).get("constrained_columns") or []),
        "indexes": [{"name": i.get("name"), "column_names": _index_columns(i), "unique": bool(i.get("unique"))}
                    for i in raw["indexes"] if not i.get("duplicates_constraint")],
        "unique_constraints": [{"name": u.get("name"), "column_names": list(u["column_names"])}
                               for u in raw["unique_constraints"]],
        "check_constraints": [{"name": c.get("name"), "sqltext": str(c["sqltext"])} for c in raw["check_constraints"]],
        "foreign_keys": [{"name": f.get("name"),
                          "constrained_columns": list(f["constrained_columns"]),
                          "referred_schema": f.get("referred_schema"),
                          "referred_table": f["referred_table"],
                          "referred_columns": list(f["referred_columns"]),
                          "options": {k: str(v) for k, v in (f.get("options") or {}).items()}}
                         for f in raw["foreign_keys"]],
    }


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
