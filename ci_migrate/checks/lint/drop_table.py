"""CM501: a revision drops a table that exists before the deploy."""

from __future__ import annotations

from typing import Iterator

from ci_migrate.checks.lint.base import Hit, RevisionView, Rule

RULE = Rule(
    id="CM501", name="drop-table", severity="warning", summary="drops an existing table",
    squawk=("ban-drop-table",),
    fix=("Drop it in two releases: first deploy code that no longer reads or writes the table (remove its model), "
         "then drop it in a later revision. Take a backup (or rename it to `<name>_old`) if the data may be needed."),
)


def check(view: RevisionView) -> Iterator[Hit]:
    for op in view.of("DropTableOp"):
        if not view.existing(op.table):
            continue
        yield Hit(
            op.line, f"drops table `{op.table}`",
            f"Dropping `{op.table}` deletes its rows for good; the downgrade can recreate the table but not the data. "
            "App servers still running the previous release fail on every query that touches it while the "
            "deploy rolls out.", bind=op.bind,
        )
