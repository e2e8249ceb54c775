"""The schema objects an operation creates or drops, as data, and whether a database has them.

An object is a dict ``{"type", "schema", "table", "name", "columns", "referent", "expect", "text"}``:
``type`` is ``table | column | index | unique | foreign_key | check``; ``name`` is None for an
object the database names itself (an unnamed constraint); ``expect`` is ``present`` for what the
operation creates and ``absent`` for what it drops. :func:`of_operation` mirrors what alembic's
``toimpl`` functions send for each operation (``op.create_table`` also creates the table's
indexes, ``op.add_column`` the column's foreign keys and index); :func:`of_ddl` reads the same from
one DDL construct alembic executes (``DefaultImpl._exec``). :func:`states` compares objects with the
database through SQLAlchemy's ``Inspector`` (``get_columns``, ``get_indexes``,
``get_unique_constraints``, ``get_foreign_keys``, ``get_check_constraints``).
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional

# operations whose objects can be checked one by one, so a half-applied revision can be finished
RESUMABLE = ("CreateTableOp", "AddColumnOp", "CreateIndexOp", "CreateUniqueConstraintOp", "CreateForeignKeyOp")

Obj = Dict[str, Any]


def _name(value: Any) -> Optional[str]:
    """A schema item's name, None while the database (or a naming convention at DDL time) names it."""
    return str(value) if isinstance(value, str) else None


def _obj(type_: str, table: Any, schema: Any = None, name: Any = None, columns: Iterable[Any] = (),
         referent: Optional[str] = None, expect: str = "present") -> Obj:
    table_name, label = str(table), _name(name)
    words = {"table": f"table `{table_name}`", "column": f"column `{table_name}.{label}`"}.get(type_)
    if words is None:
        kind = {"foreign_key": "foreign key", "unique": "unique constraint", "check": "check constraint"}.get(type_,
                                                                                                          type_)
        cols = ", ".join(str(c) for c in columns)
        words = f"{kind} {'`' + label + '` ' if label else ''}on `{table_name}` ({cols})"
        if referent:
            words += f" → `{referent}`"
    return {"type": type_, "schema": _name(schema), "table": table_name, "name": label,
            "columns": [str(c) for c in columns], "referent": referent, "expect": expect, "text": words}


def of_table(table: Any) -> Obj:
    return _obj("table", table.name, table.schema)


def of_column(table: str, column: Any, schema: Any = None, expect: str = "present") -> Obj:
    return _obj("column", table, schema, column.name if hasattr(column, "name") else column, expect=expect)


def of_index(index: Any, expect: str = "present") -> Obj:
    table = index.table
    columns = [getattr(e, "name", None) or str(e) for e in getattr(index, "expressions", None) or index.columns]
    return _obj("index", table.name, table.schema, index.name, columns, expect=expect)


def of_constraint(constraint: Any, expect: str = "present") -> Optional[Obj]:
    """A unique, foreign key or check constraint (None for a primary key or another kind)."""
    import sqlalchemy as sa

    table = constraint.table
    if isinstance(constraint, sa.ForeignKeyConstraint):
        target = constraint.elements[0].target_fullname.rsplit(".", 1)[0] if constraint.elements else None
        return _obj("foreign_key", table.name, table.schema, constraint.name, constraint.column_keys, target,
                    expect=expect)
    if isinstance(constraint, sa.UniqueConstraint):
        return _obj("unique", table.name, table.schema, constraint.name, [c.name for c in constraint.columns],
                    expect=expect)
    if isinstance(constraint, sa.CheckConstraint):
        return _obj("check", table.name, table.schema, constraint.name, expect=expect)
    return None


def of_operation(operations: Any, op: Any) -> Optional[List[Obj]]:
    """What ``op`` creates or drops, in the order alembic sends it; None when that cannot be told
    (``op.execute``, ``alter_column``, ``bulk_insert``, …)."""
    import sqlalchemy as sa
    from alembic.operations import ops as o

    context = operations.migration_context
    if isinstance(op, o.CreateTableOp):
        table = op.to_table(context)
        return [of_table(table)] + [of_index(i) for i in table.indexes]
    if isinstance(op, o.AddColumnOp):
        column = op.column._copy() if hasattr(op.column, "_copy") else op.column.copy()
        table = operations.schema_obj.table(op.table_name, column, schema=op.schema)
        found = [of_column(op.table_name, column, op.schema)]
        found += [c for c in (of_constraint(k) for k in table.constraints
                              if not isinstance(k, sa.PrimaryKeyConstraint)) if c is not None]
        return found + [of_index(i) for i in table.indexes]
    if isinstance(op, o.CreateIndexOp):
        return [of_index(op.to_index(context))]
    if isinstance(op, (o.CreateUniqueConstraintOp, o.CreateForeignKeyOp, o.CreateCheckConstraintOp)):
        found = of_constraint(op.to_constraint(context))
        return [found] if found else None
    if isinstance(op, o.DropTableOp):
        return [_obj("table", op.table_name, op.schema, expect="absent")]
    if isinstance(op, o.DropColumnOp):
        return [of_column(op.table_name, op.column_name, op.schema, expect="absent")]
    if isinstance(op, o.DropIndexOp) and op.table_name:
        return [_obj("index", op.table_name, op.schema, op.index_name, expect="absent")]
    if isinstance(op, o.DropConstraintOp) and op.table_name and _name(op.constraint_name):
        type_ = {"foreignkey": "foreign_key", "unique": "unique", "check": "check"}.get(op.constraint_type or "")
        if type_:
            return [_obj(type_, op.table_name, op.schema, op.constraint_name, expect="absent")]
    return None


def of_ddl(construct: Any) -> Optional[Obj]:
    """The object one DDL construct creates (``CreateTable``, alembic's ``AddColumn``, ``CreateIndex``,
    ``AddConstraint``); None for any other statement."""
    from alembic.ddl import base
    from sqlalchemy import schema

    if isinstance(construct, schema.CreateTable):
        return of_table(construct.element)
    if isinstance(construct, base.AddColumn):
        return of_column(str(construct.table_name), construct.column, construct.schema)
    if isinstance(construct, schema.CreateIndex):
        return of_index(construct.element)
    if isinstance(construct, schema.AddConstraint):
        return of_constraint(construct.element)
    return None


# ----------------------------------------------------------------------------- the database's side


def _same(a: Optional[str], b: Optional[str]) -> bool:
    return a is not None and b is not None and a.lower() == b.lower()


def _columns(found: Iterable[Any]) -> List[str]:
    return [str(c).lower() for c in found or () if c is not None]


def _find(inspector: Any, obj: Obj) -> Optional[str]:
    """The name the database gives ``obj``; ``""`` when it has no name; None when it is not there.
    Raises ``NotImplementedError`` when the dialect cannot reflect that kind."""
    table, schema, name, type_ = obj["table"], obj["schema"], obj["name"], obj["type"]
    tables = [t.lower() for t in inspector.get_table_names(schema=schema)]
    if table.lower() not in tables:
        return None
    if type_ == "table":
        return table
    if type_ == "column":
        return next((c["name"] for c in inspector.get_columns(table, schema=schema) if _same(c["name"], name)), None)
    wanted = [c.lower() for c in obj["columns"]]
    if type_ in ("index", "unique"):  # MySQL reflects a unique constraint as a unique index too
        entries = [(i.get("name"), _columns(i.get("column_names")), bool(i.get("unique")))
                   for i in inspector.get_indexes(table, schema=schema)]
        entries += [(u.get("name"), _columns(u.get("column_names")), True)
                    for u in inspector.get_unique_constraints(table, schema=schema)]
        for found, columns, unique in entries:
            if _same(found, name) or (name is None and wanted and columns == wanted
                                      and (unique or type_ == "index")):
                return found or ""
        return None
    if type_ == "foreign_key":
        referent = (obj.get("referent") or "").rsplit(".", 1)[-1].lower()
        for fk in inspector.get_foreign_keys(table, schema=schema):
            if _same(fk.get("name"), name) or (name is None and _columns(fk.get("constrained_columns")) == wanted
                                               and str(fk.get("referred_table") or "").lower() == referent):
                return fk.get("name") or ""
        return None
    if type_ == "check" and name:
        checks = inspector.get_check_constraints(table, schema=schema)
        return next((c["name"] for c in checks if _same(c.get("name"), name)), None)
    raise NotImplementedError(type_)


def state(connection: Any, obj: Obj) -> Dict[str, Any]:
    """``{"present": bool | None, "found": name}`` of one object in the database behind
    ``connection`` (a fresh ``Inspector`` each time: nothing cached across DDL). ``present`` is None
    when the dialect cannot tell."""
    import sqlalchemy as sa

    try:
        found = _find(sa.inspect(connection), obj)
    except NotImplementedError:
        return {"present": None, "found": None}
    return {"present": found is not None, "found": found or None}


def states(connection: Any, objects: Iterable[Obj]) -> List[Dict[str, Any]]:
    """:func:`state` of each object, in order."""
    return [state(connection, obj) for obj in objects]
