"""The lint check: risk rules on each pending revision's alembic operations and offline SQL.

Reads the plan the plan check left in ``ctx.data["plan"]`` (pending revisions, the
``MigrateOperation`` objects each one performed with the line of the call, and its SQL). Each rule
is one module of this package with ``RULE`` (:class:`~.base.Rule`) and ``check(view)``; rule ids
are CM501–CM514 and CM520 (squawk), documented in ``docs/rules/``. The default "empty message" is
the graph check's CM106 and is not repeated here.

A finding is silenced inline with ``# ci-migrate: ignore[CM502] reason`` on the flagged statement or
on a comment line right above it; such a comment before the first ``def`` of the file (or a line of
the docstring) silences the rule for the whole revision (:mod:`ci_migrate.checks.suppress`). It stays
in the report at severity info with its reason; a suppression without a reason or for an unknown
rule id is CM515. ``rules: {CM502: off}`` in .ci-migrate.yml silences a rule everywhere.
"""

from __future__ import annotations

import re
import time
from types import ModuleType
from typing import Any

from ci_migrate.checks.lint import (
    add_not_null,
    constraint_not_valid,
    data_and_schema,
    drop_column,
    drop_table,
    empty_downgrade,
    enum_change,
    index_not_concurrent,
    mysql_ddl,
    rename,
    set_not_null,
    squawk,
    type_change,
    unique_constraint,
    unnamed_constraint,
)
from ci_migrate.checks import suppress
from ci_migrate.checks.lint.base import Hit, RevisionView, Rule
from ci_migrate.report import CheckResult, Finding, LintFacts

RULES: tuple[ModuleType, ...] = (
    drop_table, drop_column, rename, add_not_null, set_not_null, type_change, index_not_concurrent,
    constraint_not_valid, unique_constraint, enum_change, empty_downgrade, unnamed_constraint, data_and_schema,
    mysql_ddl,
)
_PARAMS = re.compile(r"%\(\w+\)s|%s|\?|(?<!:):\w+\b")  # bound parameters: the statement is not plain SQL


def run(ctx: Any) -> CheckResult:
    """Judge the pending revisions of ``ctx.data["plan"]``; skipped when nothing was planned."""
    plan = ctx.data.get("plan")
    if plan is None:
        why = ctx.blocked or "skipped: nothing pending (use --base origin/main, automatic in PRs)"
        return CheckResult(name="lint", status="skipped", summary=why)
    started = time.perf_counter()
    views = views_of(plan)
    found: list[tuple[RevisionView, Rule, Hit]] = []
    evaluated = [m.RULE for m in RULES if m.RULE.applies_to(plan.dialect)]
    for view in views:
        for module in RULES:
            if module.RULE.applies_to(plan.dialect):
                found += [(view, module.RULE, hit) for hit in module.check(view)]
    covered = {name: m.RULE for m in RULES for name in m.RULE.squawk}
    squawk_version = squawk_problem = None
    if plan.dialect == "postgresql":
        extra, squawk_version, squawk_problem = squawk.lint(views, covered)
        found += extra
        evaluated.append(squawk.RULE)
    findings, suppressed = _findings(found, views)
    findings += [_not_analysed(view) for view in views if not view.rendered]
    facts = LintFacts(revisions=[v.revision for v in views], rules=[r.id for r in evaluated],
                      squawk=squawk_version, suppressed=suppressed)
    return CheckResult(name="lint", status=CheckResult.status_for(findings),
                       summary=_summary(findings, views, plan.dialect, suppressed, squawk_version)
                       + (f"; {squawk_problem}" if squawk_problem else ""),
                       duration_s=round(time.perf_counter() - started, 3), findings=findings, facts=facts)


def views_of(plan: Any) -> list[RevisionView]:
    """One :class:`RevisionView` per pending revision; tables created by earlier pending revisions
    count as new for the later ones (they are empty when those run)."""
    views, created = [], set()
    for item in plan.revisions:
        created |= item.created_tables
        recorded = item.recorded
        offline = item.offline if item.offline is not None and item.offline.error is None else None
        sql = offline.statements if offline is not None else [
            s for s in (recorded.statements if recorded is not None and recorded.online else []) if not _PARAMS.search(s.text)]
        views.append(RevisionView(
            revision=item.revision, message=item.message, file=item.file, rel_file=item.rel_file,
            dialect=plan.dialect, ops=recorded.ops if recorded else [], statements=recorded.statements if recorded else [],
            new_tables=set(created), rendered=item.analysed, online=bool(recorded and recorded.online),
            sql_statements=sql, why_not=None if item.analysed else (
                (item.offline.error if item.offline is not None else None) or "its operations were not recorded")))
    return views


def _findings(found: list[tuple[RevisionView, Rule, Hit]], views: list[RevisionView],
              ) -> tuple[list[Finding], int]:
    findings = [Finding(
        check="lint", rule_id=rule.id, severity=hit.severity or rule.severity,  # type: ignore[arg-type]
        title=f"{view.revision}: {hit.title}", message=hit.message, file=view.rel_file, line=hit.line,
        revision=view.revision, bind=hit.bind, fix=hit.fix or rule.fix, details={"rule": rule.name, **hit.details})
        for view, rule, hit in found]
    files = {v.revision: v.file for v in views}
    findings, silenced = suppress.silence(findings, lambda f: files.get(f.revision or ""))
    for view in views:
        findings += suppress.check_comments(view.file, view.rel_file, view.revision)
    return findings, silenced


def _not_analysed(view: RevisionView) -> Finding:
    """CM516: the rules could not see what a pending revision does."""
    return Finding(
        check="lint", rule_id="CM516", severity="warning", revision=view.revision, file=view.rel_file,
        title=f"{view.revision}: not analysed: {view.why_not}",
        message=(f"Revision {view.revision} cannot be rendered as offline SQL ({view.why_not}) and did not run on a "
                 "sandbox in this run, so the risk rules could not see its operations. It may drop, rewrite or lock "
                 "anything: nothing here says it is safe."),
        fix=("Run `ci-migrate check` (it replays the pending revisions on the sandbox and records what they do), "
             "or review the revision by hand."))


def _summary(findings: list[Finding], views: list[RevisionView], dialect: str, suppressed: int,
             squawk_version: str | None) -> str:
    n, risks = len(views), sum(1 for f in findings if not suppress.is_silenced(f) and f.rule_id != "CM516")
    blind = [v for v in views if not v.rendered]
    if blind:
        return (f"not analysed: {len(blind)} of {n} pending revision{'s' if n != 1 else ''} "
                f"({', '.join(v.revision for v in blind)}); {risks} risk(s) in the others")
    where = f"{n} pending revision{'s' if n != 1 else ''} ({dialect})"
    text = (f"{risks} risk{'s' if risks != 1 else ''} in {where}" if risks
            else f"no risky operations in {where}" if views else "no pending revisions to lint")
    if suppressed:
        text += f"; {suppressed} silenced inline"
    if dialect == "postgresql" and views:
        text += f"; squawk {squawk_version}" if squawk_version else "; squawk not installed (pip install squawk-cli)"
    return text
