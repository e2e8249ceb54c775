"""CM509: a revision adds a unique constraint to a table that exists before the deploy."""

from __future__ import annotations

from typing import Iterator

from ci_migrate.checks.lint.base import Hit, RevisionView, Rule

RULE = Rule(
    id="CM509", name="unique-constraint", severity="warning",
    summary="adds a unique constraint to an existing table",
    squawk=("disallowed-unique-constraint",),
    fix=("Check for duplicates first (SELECT col, count(*) FROM t GROUP BY col HAVING count(*) > 1). On PostgreSQL "
         "build the index concurrently, then attach it:\n"
         "    with op.get_context().autocommit_block():\n"
         "        op.create_index('uq_user_email', 'user', ['email'], unique=True, postgresql_concurrently=True)\n"
         "    op.execute('ALTER TABLE \"user\" ADD CONSTRAINT uq_user_email UNIQUE USING INDEX uq_user_email')"),
)


def check(view: RevisionView) -> Iterator[Hit]:
    for op in view.of("CreateUniqueConstraintOp"):
        if not view.existing(op.table):
            continue
        columns = ", ".join(op.columns)
        name = op.constraint_name or "(unnamed)"
        if view.postgresql:
            lock = (f"PostgreSQL builds its index under an ACCESS EXCLUSIVE lock on `{op.table}`: reads and writes "
                    "wait for the whole build. The upgrade also fails")
        elif view.mysql:
            lock = "MySQL/MariaDB build the index online, but the upgrade fails"
        else:
            lock = f"SQLite batch mode copies `{op.table}`, and the upgrade fails"
        yield Hit(op.line, f"adds unique constraint `{name}` on `{op.table}` ({columns})",
                  lock + " if the existing rows already have duplicates.", bind=op.bind)
