"""Drift: the models against the fully migrated sandbox, per bind (``flask db check``).

The probe runs the project's env.py exactly as ``alembic check`` does and keeps the generated
operations (:mod:`ci_migrate.probe.drift`); they arrive grouped per table in words, with the
revision body ``flask db migrate`` would write. Judged here: CM301 (the models have changes that no
migration contains), CM302 (only differences that are artefacts of the sandbox dialect), CM303 (drift
on a table a library creates outside migrations, :mod:`.known_tables`).
"""

from __future__ import annotations

import time
from typing import Any

from ci_migrate.report import BindDrift, CheckResult, DriftFacts, Finding, TableSchema

_REPLAY_FAILED = ("CM201", "CM202", "CM203")


def ignore_request(settings: Any) -> dict[str, Any]:
    """The config's ``ignore`` rules as the probe takes them."""
    return {"tables": list(settings.ignore.tables), "objects": list(settings.ignore.objects),
            "diff_kinds": list(settings.ignore.diff_kinds)}


def run(ctx: Any) -> CheckResult:
    """Compare the models with the sandbox, which the replay check brought to heads.

    Skipped when the replay did not reach heads. Sets ``ctx.report.tables`` (changed tables and the
    tables they reference, for diagrams).
    """
    replayed = ctx.result("replay")
    if replayed is None or replayed.status == "error" or any(f.rule_id in _REPLAY_FAILED for f in replayed.findings):
        return CheckResult(name="drift", status="skipped", summary="skipped: the replay did not reach head")
    started = time.perf_counter()
    sandbox = ctx.sandbox
    # SQLite reflects types loosely: against a server production, its type differences are approximate
    approximate = sandbox.dialect == "sqlite" and ctx.production_dialect not in (None, "sqlite")
    request = ignore_request(ctx.settings)
    data = ctx.probe.call("drift", ignore=request, approximate=approximate)
    known = _known_in(data, ctx.settings.ignore.known_tables)
    if known:  # the suggested revision body leaves them out: a migration must not create what the library does
        again = ctx.probe.call("drift", ignore={**request, "tables": [*request["tables"], *known]},
                               approximate=approximate)
        code = {b["bind"]: b for b in again.get("binds") or ()}
        for bind in data.get("binds") or ():
            if bind["bind"] in code:
                bind.update({k: code[bind["bind"]][k] for k in ("upgrade_code", "downgrade_code", "imports")})
    result = judge(ctx.project, data, sandbox.dialect, approximate, ctx.settings.ignore.known_tables)
    result.duration_s = round(time.perf_counter() - started, 3)
    ctx.report.tables = [TableSchema.model_validate(t) for t in data.get("diagram") or ()]
    return result


def _known_in(data: dict[str, Any], setting: Any) -> list[str]:
    """The drifted tables (``table`` or ``schema.table``) that a library creates outside migrations."""
    from ci_migrate.checks import known_tables as known

    names = {t["table"] for b in data.get("binds") or () for t in b.get("tables") or ()}
    return sorted(n for n in names if known.known_table(n.rpartition(".")[2], n.rpartition(".")[0] or None,
                                                         setting=setting))


def judge(project: Any, data: dict[str, Any], dialect: str, approximate: bool,
          known_tables: Any = True) -> CheckResult:
    """The drift check's result from the probe's answer (``binds``: per bind, tables and code).

    Tables that libraries create outside migrations (:mod:`.known_tables`, ``ignore.known-tables``)
    are set apart first: CM303, info.
    """
    from ci_migrate.checks import known_tables as known

    facts = DriftFacts(dialect=dialect, approximate=approximate,
                       binds=[BindDrift.model_validate(b) for b in data.get("binds") or ()])
    facts, findings = known.judge(facts, known_tables)
    findings += [_finding(project, b, facts) for b in facts.binds if b.tables]
    changed = sum(len(b.tables) for b in facts.binds)
    if not changed:
        summary = "models match the migrations"
    else:
        first = next(i for b in facts.binds for t in b.tables for i in t.items)
        more = sum(len(t.items) for b in facts.binds for t in b.tables) - 1
        summary = first.text + (f" (+{more} more)" if more else "")
    return CheckResult(name="drift", status=CheckResult.status_for(findings), summary=summary,
                       findings=findings, facts=facts)


def suggest_message(items: list[Any]) -> str:
    """A revision message like a person would write: ``add user.bio``."""
    first = items[0]
    verb = {"add_column": "add", "remove_column": "drop", "add_table": "add table", "remove_table": "drop table",
            "add_index": "add index", "remove_index": "drop index"}.get(first.kind, "update")
    what = f"{first.table}.{first.name}" if first.name and first.kind.endswith("column") else (first.name or first.table)
    return f"{verb} {what}" + (" and more" if len(items) > 1 else "")


def _finding(project: Any, drift: BindDrift, facts: DriftFacts) -> Finding:
    items = [i for t in drift.tables for i in t.items]
    exact = [i for i in items if not i.approximate]
    bind = f" (bind {drift.bind!r})" if drift.bind else ""
    lines = [f"- {i.text}" + (" (may be a sandbox-dialect artefact)" if i.approximate else "") for i in items]
    command = f"{project.cli} migrate -m \"{suggest_message(exact or items)}\""
    if exact:
        return Finding(
            check="drift", rule_id="CM301", severity="error", bind=drift.bind,
            title=f"the models have changes that no migration contains{bind}: {exact[0].text}"
            + (f" and {len(items) - 1} more" if len(items) > 1 else ""),
            message="Autogenerate against the fully migrated sandbox found:\n" + "\n".join(lines),
            fix=f"Create the missing revision with `{command}`, review it, and commit it.",
            details={"command": command, "upgrade_code": drift.upgrade_code, "downgrade_code": drift.downgrade_code},
        )
    return Finding(
        check="drift", rule_id="CM302", severity="info", bind=drift.bind,
        title=f"{len(items)} difference(s) that may be {facts.dialect} artefacts{bind}",
        message="The sandbox dialect differs from production, so these type differences are approximate:\n"
        + "\n".join(lines),
        fix="Use a sandbox of the production dialect (sandbox: postgresql://user@host/) for exact results.",
    )
