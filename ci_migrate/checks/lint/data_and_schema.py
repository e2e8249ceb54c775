"""CM513: a revision mixes data changes (op.execute DML, op.bulk_insert) with schema changes."""

from __future__ import annotations

from typing import Iterator

from ci_migrate.checks.lint.base import Hit, RevisionView, Rule, data_table, is_data_op, is_data_statement
from ci_migrate.probe.recording import statement_table

RULE = Rule(
    id="CM513", name="data-and-schema", severity="warning",
    summary="changes data and schema of existing tables in the same revision",
    fix=("Move the data change into its own revision, after the schema change (and the schema change that needs "
         "the data, such as NOT NULL, into the one after). Backfill big tables in batches "
         "(UPDATE ... WHERE id BETWEEN :a AND :b), or outside the migration."),
)


def check(view: RevisionView) -> Iterator[Hit]:
    data = [o for o in view.ops if is_data_op(o) and view.existing(data_table(o))]
    # sent without an operation (op.get_bind().execute(...)), seen while the revision ran on the sandbox
    raw = [s for s in view.statements if s.op is None and is_data_statement(s)
           and statement_table(s.text) != "alembic_version" and view.existing(statement_table(s.text))]
    schema = [o for o in view.ops if not is_data_op(o) and view.existing(o.table)]
    if not (data or raw) or not schema:
        return
    tables = sorted({t for t in [*(data_table(o) for o in data), *(statement_table(s.text) for s in raw)] if t})
    written = ", ".join(f"`{t}`" for t in tables) or "existing tables"
    altered = sorted({o.table for o in schema if o.table})
    if view.mysql:
        why = ("MySQL/MariaDB commit every DDL statement implicitly, so the two are not atomic: if the data change "
               "fails, the schema change stays applied while alembic_version still names the previous revision, "
               "and the next upgrade fails re-running it.")
    elif view.postgresql:
        why = ("Both run in one transaction: the locks the schema change took (ACCESS EXCLUSIVE for ALTER TABLE) "
               f"are held until the data change has gone over every row of {written}, so the table is blocked "
               "for the whole backfill.")
    else:
        why = "A long data change keeps the schema change's transaction, and its locks, open for its whole run."
    line = data[0].line if data else raw[0].line
    bind = data[0].bind if data else raw[0].bind
    yield Hit(line, f"writes data to {written} in the same revision as it alters "
              f"{', '.join(f'`{t}`' for t in altered) or 'the schema'}", why, bind=bind)
