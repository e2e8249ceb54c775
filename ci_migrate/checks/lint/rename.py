"""CM503: a revision renames a table or a column that exists before the deploy."""

from __future__ import annotations

from typing import Iterator

from ci_migrate.checks.lint.base import Hit, RevisionView, Rule

RULE = Rule(
    id="CM503", name="rename", severity="warning", summary="renames an existing table or column",
    squawk=("renaming-column", "renaming-table"),
    fix=("Rename in steps (expand/contract): add the new column (or table), write to both from the code, backfill, "
         "switch reads to the new name, and drop the old one in a later release. For a table, a view with the old "
         "name can bridge the deploy."),
)


def check(view: RevisionView) -> Iterator[Hit]:
    for op in view.of("RenameTableOp"):
        if view.existing(op.table):
            yield Hit(op.line, f"renames table `{op.table}` to `{op.new_table_name}`",
                      f"The previous release, still serving while the deploy rolls out, queries `{op.table}` and "
                      "fails with \"relation does not exist\" until every app server runs the new code.", bind=op.bind)
    for op in view.of("AlterColumnOp"):
        if op.modify_name and view.existing(op.table):
            old = f"{op.table}.{op.column_name}"
            yield Hit(op.line, f"renames column `{old}` to `{op.modify_name}`",
                      f"The previous release, still serving while the deploy rolls out, selects `{old}` (SQLAlchemy "
                      "names every mapped column) and fails until every app server runs the new code.", bind=op.bind)
