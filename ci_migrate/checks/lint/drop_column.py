"""CM502: a revision drops a column of a table that exists before the deploy."""

from __future__ import annotations

from typing import Iterator

from ci_migrate.checks.lint.base import Hit, RevisionView, Rule, column_name

RULE = Rule(
    id="CM502", name="drop-column", severity="warning", summary="drops a column of an existing table",
    squawk=("ban-drop-column",),
    fix=("Drop it in two releases: first remove the column from the model and deploy (SQLAlchemy selects every "
         "mapped column, so old code breaks the moment it is gone), then drop it in a later revision. Back up the "
         "data if it may be needed: the downgrade re-adds the column empty."),
)


def check(view: RevisionView) -> Iterator[Hit]:
    for op in view.of("DropColumnOp"):
        if not view.existing(op.table):
            continue
        where = column_name(op)
        extra = (" On SQLite, batch mode copies the whole table to drop it." if view.dialect == "sqlite" else
                 " MySQL/MariaDB rebuild the table to drop a column (ALGORITHM=INPLACE, with a table copy)."
                 if view.mysql else "")
        yield Hit(
            op.line, f"drops column `{where}`",
            f"Dropping `{where}` deletes its data for good. App servers still running the previous release select "
            "it (SQLAlchemy names every mapped column in its queries) and fail with \"column does not exist\" "
            f"until they are replaced.{extra}", bind=op.bind,
        )
