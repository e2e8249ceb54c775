"""CM504: a revision adds a NOT NULL column without a server default to a table that has rows."""

from __future__ import annotations

from typing import Iterator

from ci_migrate.checks.lint.base import Hit, RevisionView, Rule, column_name, quote_identifier
from ci_migrate.facts import ColumnInfo, RecordedOp

RULE = Rule(
    id="CM504", name="add-not-null-column", severity="error",
    summary="adds a NOT NULL column without a server default to an existing table",
    squawk=("adding-required-field",),
    fix=("Add it nullable, backfill, then make it NOT NULL:\n"
         "  1. batch_op.add_column(sa.Column('age', sa.Integer(), nullable=True))\n"
         "  2. op.execute('UPDATE ... SET age = ... WHERE age IS NULL')  (in batches for big tables)\n"
         "  3. in a later revision: batch_op.alter_column('age', existing_type=sa.Integer(), nullable=False)\n"
         "Or give it a constant server_default=sa.text('0') (PostgreSQL 11+ adds it without rewriting the table)."),
)


def check(view: RevisionView) -> Iterator[Hit]:
    for op in view.of("AddColumnOp"):
        column = op.column
        if column is None or column.nullable or column.server_default is not None or column.primary_key:
            continue
        if not view.existing(op.table) or column.computed or column.identity:
            continue
        where = column_name(op)
        if view.mysql:
            yield Hit(op.line, f"adds NOT NULL column `{where}` without a server default",
                      f"MySQL/MariaDB accept it and silently fill every existing row of `{op.table}` with the type's "
                      "implicit default (0, '' or a zero date), which is rarely the value you meant; the app cannot "
                      "tell those rows from real ones.", severity="warning", bind=op.bind)
            continue
        failure = ("column \"{c}\" of relation \"{t}\" contains null values" if view.postgresql
                   else "NOT NULL constraint failed / Cannot add a NOT NULL column with default value NULL")
        yield Hit(
            op.line, f"adds NOT NULL column `{where}` without a server default",
            f"Existing rows of `{op.table}` have no value for it, so the upgrade fails with "
            f"\"{failure.format(c=column.name, t=op.table)}\" as soon as the table has a row: it passes on an "
            "empty CI database and fails in production.", fix=_recipe(op, column, view.dialect), bind=op.bind,
        )


def _recipe(op: RecordedOp, column: ColumnInfo, dialect: str) -> str:
    """The rule's recipe with this column's name and type."""
    quoted = quote_identifier(dialect, op.table or "")
    prefix = "batch_op." if op.batch else "op."
    table = "" if op.batch else f"{op.table!r}, "
    type_ = f"sa.{column.type.repr if column.type else 'Integer()'}"
    return RULE.fix.replace("sa.text('0')", _constant(type_)) \
        .replace("batch_op.add_column(sa.Column('age', sa.Integer(), nullable=True)",
                            f"{prefix}add_column({table}sa.Column({column.name!r}, {type_}, nullable=True)") \
        .replace("UPDATE ... SET age = ... WHERE age IS NULL",
                 f"UPDATE {quoted} SET {column.name} = ... WHERE {column.name} IS NULL") \
        .replace("batch_op.alter_column('age', existing_type=sa.Integer(), nullable=False)",
                 f"{prefix}alter_column({table}{column.name!r}, existing_type={type_}, nullable=False)")


def _constant(type_: str) -> str:
    """A constant server default of the column's type, for the recipe: ``''`` for text, ``false`` for
    booleans, ``0`` otherwise (numbers; dates need a value of your own)."""
    name = type_.removeprefix("sa.").split("(")[0].upper()
    if any(word in name for word in ("STRING", "CHAR", "TEXT", "UNICODE")):
        return 'sa.text("\'\'")'
    if "BOOL" in name:
        return "sa.text('false')"
    return "sa.text('0')"
