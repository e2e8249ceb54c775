"""CM507: PostgreSQL — an index is created or dropped on an existing table without CONCURRENTLY."""

from __future__ import annotations

from typing import Iterator

from ci_migrate.checks.lint.base import Hit, RevisionView, Rule

_BUILD = "Build it concurrently, outside the migration's transaction:\n    with op.get_context().autocommit_block():\n"
_AFTER = ("Do the same for op.drop_index(..., postgresql_concurrently=True) in downgrade(). Use op.*, not batch_op, "
          "and keep it the only operation of its revision: if it fails it leaves an INVALID index to drop before "
          "retrying.")
RULE = Rule(
    id="CM507", name="index-not-concurrent", severity="warning",
    summary="creates or drops an index on an existing table without CONCURRENTLY (PostgreSQL)",
    dialects=("postgresql",),
    squawk=("require-concurrent-index-creation", "require-concurrent-index-deletion"),
    fix=_BUILD + "        op.create_index('ix_post_title', 'post', ['title'], postgresql_concurrently=True)\n" + _AFTER,
)


def check(view: RevisionView) -> Iterator[Hit]:
    for op in view.of("CreateIndexOp", "DropIndexOp"):
        if op.concurrently or not view.existing(op.table):
            continue
        name = op.index_name
        if op.kind == "CreateIndexOp":
            title = f"creates index `{name}` on `{op.table}` without CONCURRENTLY"
            why = (f"CREATE INDEX holds a SHARE lock on `{op.table}` for the whole build: inserts, updates and "
                   "deletes wait (reads go on). On a big table that is minutes of failed or stuck requests.")
            columns = list(op.columns)
            unique = ", unique=True" if op.unique else ""
            call = f"op.create_index({name!r}, {op.table!r}, {columns!r}{unique}, postgresql_concurrently=True)"
        else:
            title = f"drops index `{name}`" + (f" on `{op.table}`" if op.table else "") + " without CONCURRENTLY"
            why = ("DROP INDEX takes an ACCESS EXCLUSIVE lock on the table: every query on it waits, and while it "
                   "waits for running queries to finish, new ones queue behind it.")
            where = f", table_name={op.table!r}" if op.table else ""
            call = f"op.drop_index({name!r}{where}, postgresql_concurrently=True)"
        fix = f"{_BUILD}        {call}\n{_AFTER}"
        yield Hit(op.line, title, why, fix=fix, bind=op.bind)
