"""``apply --dry-run``: what a reviewer of the deploy needs, with nothing written and no lock taken.

The plan of the pending revisions (each one's offline SQL, as ``flask db upgrade --sql`` renders it)
and the risk rules on it run as the ``plan`` and ``lint`` checks of ``check --target``; the row
counts of the tables they touch come from the target's statistics (:mod:`ci_migrate.apply.rows`).
"""

from __future__ import annotations

from typing import Any, Mapping

NOTE = ("Dry run: nothing was written and no lock was taken. The SQL is alembic's offline rendering (`flask db "
        "upgrade --sql`); a revision that reads the database renders differently, or not at all. Row counts are the "
        "target's statistics (estimates).")


def review(ctx: Any, facts: Any, target: Any, name: str, current: Mapping[str | None, tuple[str, ...]]) -> None:
    """Add the ``plan`` and ``lint`` results to ``ctx.report``, and to ``facts`` (ApplyFacts) each pending
    revision's SQL and operations and the touched tables' row counts (``target``: TargetUrls)."""
    from ci_migrate.apply.rows import row_counts
    from ci_migrate.checks.pending import Pending
    from ci_migrate.pipeline import _run_one

    pending = [p.revision for p in facts.pending]
    ctx.pending = Pending(against=f"target:{name}", revisions=pending,
                          current=sorted(set().union(*current.values())) if current else [],
                          target=name, target_url=ctx.settings.target_url(name, ctx.env))
    _run_one(ctx, "plan")
    _run_one(ctx, "lint")
    planned = ctx.report.plan
    if planned is not None:
        by_id = {p.revision: p for p in planned.pending}
        for entry in facts.pending:
            found = by_id.get(entry.revision)
            if found is not None:
                entry.sql, entry.sql_error, entry.operations = found.sql, found.sql_error, found.operations
    plan = ctx.data.get("plan")
    touched = sorted({o.table for item in (plan.revisions if plan else []) if item.recorded
                      for o in item.recorded.ops if o.table})
    facts.table_rows = row_counts(target, touched)
    ctx.report.notes.append(NOTE)
