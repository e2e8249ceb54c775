"""CM506: a revision changes a column's type in a way that narrows it or rewrites the table."""

from __future__ import annotations

from typing import Iterator

from ci_migrate.checks.lint.base import Hit, RevisionView, Rule, column_name
from ci_migrate.facts import TypeInfo

RULE = Rule(
    id="CM506", name="column-type-change", severity="warning",
    summary="narrows a column's type, or changes it in a way that rewrites the table",
    squawk=("changing-column-type",),
    fix=("Change it in steps: add a column of the new type, write to both from the code, backfill in batches, "
         "switch reads, drop the old column later. Widening VARCHAR(n) to VARCHAR(m > n) or to TEXT needs no "
         "rewrite on PostgreSQL."),
)
_INT_SIZE = {"SmallInteger": 2, "Integer": 4, "BigInteger": 8}


def _int_size(type_: TypeInfo) -> int | None:
    for name in type_.classes:
        if name in _INT_SIZE:
            return _INT_SIZE[name]
    return None


def classify(old: TypeInfo | None, new: TypeInfo | None, dialect: str) -> str | None:
    """``narrowing`` (values may no longer fit), ``rewriting`` (the database rewrites or copies the
    table), ``unknown`` (no ``existing_type`` given), or None (metadata-only or no change).

    ``old``/``new`` are the types as the probe compiled them for ``dialect`` (``sql``) with their
    SQLAlchemy class names (``classes``, most specific first).
    """
    if new is None or new.is_a("Enum") or (old is not None and old.is_a("Enum")):
        return None  # enums: CM510
    if old is None:
        return "unknown"
    if old.sql == new.sql:
        return None
    if old.is_a("String") and new.is_a("String"):
        if new.length is None:
            return "rewriting" if dialect in ("mysql", "mariadb") else None
        if old.length is None or new.length < old.length:
            return "narrowing"
        return None
    old_int, new_int = _int_size(old), _int_size(new)
    if old_int and new_int:
        if new_int < old_int:
            return "narrowing"
        return None if dialect == "sqlite" else "rewriting"
    if old.is_a("Numeric") and new.is_a("Numeric") and old.classes[:1] == new.classes[:1]:
        if (new.scale or 0) != (old.scale or 0) or (new.precision or 0) < (old.precision or 0):
            return "narrowing"
        return None
    return "rewriting"


def check(view: RevisionView) -> Iterator[Hit]:
    for op in view.of("AlterColumnOp"):
        kind = classify(op.existing_type, op.modify_type, view.dialect)
        if kind is None or not view.existing(op.table) or (kind == "rewriting" and view.dialect == "sqlite"):
            continue
        where = column_name(op)
        old = op.existing_type.sql if op.existing_type else "?"
        new = op.modify_type.sql if op.modify_type else "?"
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
