"""CM505: a revision makes an existing column NOT NULL."""

from __future__ import annotations

from typing import Iterator

from ci_migrate.checks.lint.base import Hit, RevisionView, Rule, column_name

RULE = Rule(
    id="CM505", name="set-not-null", severity="warning", summary="makes an existing column NOT NULL",
    squawk=("adding-not-nullable-field",),
    fix=("Backfill the NULLs first (UPDATE in batches, in an earlier revision). On PostgreSQL 12+ avoid the "
         "locked scan: op.execute(\"ALTER TABLE t ADD CONSTRAINT t_c_not_null CHECK (c IS NOT NULL) NOT VALID\"), "
         "then in the next revision VALIDATE CONSTRAINT t_c_not_null, alter_column(..., nullable=False) (which then "
         "needs no scan), and drop the CHECK constraint."),
)


def check(view: RevisionView) -> Iterator[Hit]:
    for op in view.of("AlterColumnOp"):
        if op.modify_nullable is not False or not view.existing(op.table):
            continue
        where = column_name(op)
        if view.postgresql:
            why = (f"PostgreSQL scans all of `{op.table}` to check for NULLs while holding an ACCESS EXCLUSIVE lock: "
                   "reads and writes wait for the whole scan. ")
        elif view.mysql:
            why = f"MySQL/MariaDB rebuild `{op.table}` to change nullability (a full table copy). "
        else:
            why = f"SQLite batch mode copies all of `{op.table}` into a new table. "
        yield Hit(op.line, f"makes `{where}` NOT NULL",
                  why + "The upgrade fails if any row still has NULL in it.", bind=op.bind)
