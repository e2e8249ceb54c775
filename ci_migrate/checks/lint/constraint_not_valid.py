"""CM508: PostgreSQL — a foreign key or CHECK constraint is added to an existing table without NOT VALID."""

from __future__ import annotations

from typing import Iterator

from ci_migrate.checks.lint.base import Hit, RevisionView, Rule, quote_identifier

RULE = Rule(
    id="CM508", name="constraint-not-valid", severity="warning",
    summary="adds a foreign key or CHECK constraint to an existing table without NOT VALID (PostgreSQL)",
    dialects=("postgresql",),
    squawk=("constraint-missing-not-valid", "adding-foreign-key-constraint"),
    fix=("Add it NOT VALID, then validate it in the next revision (its own transaction):\n"
         "    op.create_foreign_key('fk_post_user_id_user', 'post', 'user', ['user_id'], ['id'], "
         "postgresql_not_valid=True)\n"
         "    # next revision:\n"
         "    op.execute('ALTER TABLE post VALIDATE CONSTRAINT fk_post_user_id_user')\n"
         "(create_check_constraint(..., postgresql_not_valid=True) likewise). VALIDATE only takes a SHARE UPDATE "
         "EXCLUSIVE lock, so reads and writes go on."),
)


def check(view: RevisionView) -> Iterator[Hit]:
    for op in view.of("CreateForeignKeyOp", "CreateCheckConstraintOp"):
        if op.not_valid or not view.existing(op.table):
            continue
        name = op.constraint_name or "(unnamed)"
        if op.kind == "CreateForeignKeyOp":
            referent = op.referent_table
            call = (f"op.create_foreign_key({name!r}, {op.table!r}, {referent!r}, {list(op.columns)!r}, "
                    f"{list(op.referent_columns)!r}, postgresql_not_valid=True)")
            yield Hit(op.line, f"adds foreign key `{name}` on `{op.table}` → `{referent}` without NOT VALID",
                      f"PostgreSQL checks every row of `{op.table}` while holding SHARE ROW EXCLUSIVE locks on both "
                      f"`{op.table}` and `{referent}`: writes to both tables wait for the whole scan.", bind=op.bind,
                      fix=_fix(call, op.table, name) if op.constraint_name and op.columns else None)
        else:
            call = f"op.create_check_constraint({name!r}, {op.table!r}, {op.condition!r}, postgresql_not_valid=True)"
            yield Hit(op.line, f"adds CHECK constraint `{name}` on `{op.table}` without NOT VALID",
                      f"PostgreSQL checks every row of `{op.table}` under an ACCESS EXCLUSIVE lock: reads and writes "
                      "wait for the whole scan, and the upgrade fails if a row violates it.", bind=op.bind,
                      fix=_fix(call, op.table, name) if op.constraint_name and op.condition else None)


def _fix(call: str, table: str | None, name: str) -> str:
    """The recipe for this constraint (the rule's own names an example one)."""
    return ("Add it NOT VALID, then validate it in the next revision (its own transaction):\n"
            f"    {call}\n"
            "    # next revision:\n"
            f"    op.execute('ALTER TABLE {quote_identifier('postgresql', table or '')} "
            f"VALIDATE CONSTRAINT {quote_identifier('postgresql', name)}')\n"
            "VALIDATE only takes a SHARE UPDATE EXCLUSIVE lock, so reads and writes go on.")

