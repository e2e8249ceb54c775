"""CM506: a revision changes a column's type in a way that narrows it or rewrites the table."""

from __future__ import annotations

from typing import Any, Iterator

from ci_migrate.checks.lint.base import Hit, RevisionView, Rule, column_name

RULE = Rule(
    id="CM506", name="column-type-change", severity="warning",
    summary="narrows a column's type, or changes it in a way that rewrites the table",
    squawk=("changing-column-type",),
    fix=("Change it in steps: add a column of the new type, write to both from the code, backfill in batches, "
         "switch reads, drop the old column later. Widening VARCHAR(n) to VARCHAR(m > n) or to TEXT needs no "
         "rewrite on PostgreSQL."),
)
_INT_SIZE = {"SmallInteger": 2, "Integer": 4, "BigInteger": 8}


def _int_size(type_: Any) -> int | None:
    for cls in type(type_).__mro__:
        if cls.__name__ in _INT_SIZE:
            return _INT_SIZE[cls.__name__]
    return None


def classify(old: Any, new: Any, dialect: Any) -> str | None:
    """``narrowing`` (values may no longer fit), ``rewriting`` (the database rewrites or copies the
    table), ``unknown`` (no ``existing_type`` given), or None (metadata-only or no change)."""
    import sqlalchemy as sa

    if new is None or isinstance(new, sa.Enum) or isinstance(old, sa.Enum):
        return None  # enums: CM510
    if old is None:
        return "unknown"
    name = dialect.name
    try:
        if str(old.compile(dialect=dialect)) == str(new.compile(dialect=dialect)):
            return None
    except Exception:
        pass
    if isinstance(old, sa.String) and isinstance(new, sa.String):
        if new.length is None:
            return "rewriting" if name in ("mysql", "mariadb") else None
        if old.length is None or new.length < old.length:
            return "narrowing"
        return None
    old_int, new_int = _int_size(old), _int_size(new)
    if old_int and new_int:
        if new_int < old_int:
            return "narrowing"
        return None if name == "sqlite" else "rewriting"
    if isinstance(old, sa.Numeric) and isinstance(new, sa.Numeric) and type(old) is type(new):
        if (new.scale or 0) != (old.scale or 0) or (new.precision or 0) < (old.precision or 0):
            return "narrowing"
        return None
    return "rewriting"


def check(view: RevisionView) -> Iterator[Hit]:
    from ci_migrate.checks.describe import type_sql
    from ci_migrate.checks.offline import dialect_named

    dialect = dialect_named(view.dialect)
    for op in view.of("AlterColumnOp"):
        alter = op.op
        kind = classify(alter.existing_type, alter.modify_type, dialect)
        if kind is None or not view.existing(op.table) or (kind == "rewriting" and view.dialect == "sqlite"):
            continue
        where = column_name(op)
        old, new = type_sql(alter.existing_type, dialect), type_sql(alter.modify_type, dialect)
        if kind == "unknown":
            yield Hit(op.line, f"changes the type of `{where}` to {new} without existing_type",
                      "Without existing_type=... ci-migrate cannot tell whether this narrows the column or makes the "
                      "database rewrite the table; alembic also needs it for some dialects.",
                      fix="Add existing_type=<the current type> to the alter_column call, as autogenerate writes it.",
                      bind=op.bind)
            continue
        if view.postgresql:
            cost = (f"PostgreSQL rewrites `{op.table}` and its indexes under an ACCESS EXCLUSIVE lock: reads and "
                    "writes wait until it is done.")
        elif view.mysql:
            cost = f"MySQL/MariaDB copy `{op.table}` (ALGORITHM=COPY): writes wait until the copy is done."
        else:
            cost = f"SQLite batch mode copies `{op.table}` into a new table."
        if kind == "narrowing":
            yield Hit(op.line, f"narrows `{where}` from {old} to {new}",
                      "Values that no longer fit make the upgrade fail (\"value too long\"/\"out of range\"), or are "
                      f"truncated where the database allows it. {cost}", bind=op.bind)
        else:
            yield Hit(op.line, f"changes the type of `{where}` from {old} to {new}", cost, bind=op.bind)
