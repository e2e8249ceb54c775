"""Round trip ("stairway"): does each revision's downgrade undo its upgrade?

The probe walks each revision of the scope (``checks.roundtrip.scope``) on a throwaway database of
its own (:mod:`ci_migrate.probe.roundtrip`): bring it to the revision's parents, reflect the schema,
``upgrade(rev)``, downgrade just that revision (``downgrade("<rev>@-1")``; for a merge point
``downgrade(<first parent>)``), compare the schema with the one before with alembic's autogenerate
comparison, and ``upgrade(rev)`` again. Every failing downgrade is reported: after a failure the
walk goes on with the next revision from a schema known to be right.

Findings: CM701 leaky downgrade (error), CM702 failing downgrade (error), CM703 downgrade raises
NotImplementedError (info). An empty downgrade is only a fact here (a lint rule reports it).
"""

from __future__ import annotations

import time
from typing import Any

from ci_migrate.checks import suppress
from ci_migrate.checks import walk as walks
from ci_migrate.facts import Failure
from ci_migrate.report import CheckResult, Finding, RoundtripFacts, RoundtripStep

_STATUS = {"ok": "ok", "leaky": "leaky", "failed": "failed", "irreversible": "irreversible", "skipped": "skipped",
           "upgrade_failed": "failed"}


def run(ctx: Any) -> CheckResult | None:
    """Upgrade, downgrade and re-upgrade each revision in scope; None when nothing is in scope."""
    walk = walks.plan_walk(ctx, "roundtrip")
    if walk is None:
        return None
    if reason := walks.replay_failed(ctx):
        return CheckResult(name="roundtrip", status="skipped", summary=reason)
    started = time.perf_counter()
    with walks.databases(ctx, walk):
        data = ctx.probe.call("roundtrip", steps=[s.request() for s in walk.steps], baseline=walks.baseline_request(ctx))
    by_rev = {s.revision: s for s in walk.steps}
    steps: list[RoundtripStep] = []
    findings: list[Finding] = []
    upgrade_failed: list[str] = []
    for result in data.get("steps") or ():
        step = by_rev[result["revision"]]
        item, finding = _judge(step, result)
        steps.append(item)
        if finding is not None:
            findings.append(finding)
        if result["status"] == "upgrade_failed":
            upgrade_failed.append(step.revision)
    kept, silenced = suppress.silence(findings, lambda f: walk.path_of(f.revision))
    summary = _summary(steps, walk.scope)
    if silenced:
        summary += f" ({silenced} silenced inline)"
    status = CheckResult.status_for(kept)
    if upgrade_failed:  # unexpected after a clean replay: the walk itself could not do its job
        status = "error"
        summary = f"upgrading to {', '.join(upgrade_failed)} failed during the round trip ({summary})"
    return CheckResult(name="roundtrip", status=status, summary=summary,
                       duration_s=round(time.perf_counter() - started, 3), findings=kept,
                       facts=RoundtripFacts(scope=walk.scope, steps=steps))


def _summary(steps: list[RoundtripStep], scope: str) -> str:
    counts: dict[str, int] = {}
    for s in steps:
        counts[s.status] = counts.get(s.status, 0) + 1
    order = ("ok", "leaky", "failed", "irreversible", "skipped")
    tally = ", ".join(f"{counts[k]} {k}" for k in order if k in counts)
    n = len(steps)
    return f"{n} {'pending ' if scope == 'pending' else ''}revision{'s' if n != 1 else ''} round-tripped: {tally}"


def _judge(step: walks.Step, result: dict[str, Any]) -> tuple[RoundtripStep, Finding | None]:
    status = result["status"]
    failure = Failure.from_data({"where": "revision", "revision": step.revision, **result["failure"]}) \
        if result.get("failure") else None
    phase = (result.get("failure") or {}).get("phase")
    base = RoundtripStep(revision=step.revision, message=step.message, file=step.file, status=_STATUS[status],
                         detail=result.get("detail"), differences=list(result.get("differences") or ()))
    target = result.get("target") or (step.parents[0] if step.is_merge_point else f"{step.revision}@-1")
    if status == "ok":
        return base, None
    if status == "skipped":
        first = failure.first_line if failure else "?"
        return base.model_copy(update={"detail": f"not tried: upgrading to its parents failed ({first})"}), None
    if status == "upgrade_failed":
        return base.model_copy(update={"detail": f"upgrading to it failed: {failure.first_line if failure else '?'}"}), None
    if status == "irreversible":
        detail = result.get("detail") or ""
        if "NotImplementedError" in detail:
            return base, _irreversible(step, detail)
        return base, None
    if status == "failed":
        assert failure is not None
        body = (f"Statement:\n{failure.statement}\n" if failure.statement else "") + f"Error: {failure.error}"
        return base.model_copy(update={"detail": f"its downgrade failed: {failure.first_line}"}), Finding(
            check="roundtrip", rule_id="CM702", severity="error", revision=step.revision, file=step.file,
            line=failure.line or walks.def_line(step.path, "downgrade"),
            title=f"{step.label}: downgrade fails: {failure.first_line}",
            message=f"After upgrading to {step.revision}, `flask db downgrade` of it fails, so this release cannot "
            "be rolled back.\n" + body,
            fix=f"Reproduce on a scratch database: `flask db upgrade {step.revision}` then `flask db downgrade "
            f"{target}`; fix downgrade(), or make it raise NotImplementedError if the change cannot be undone.",
            details={"statement": failure.statement, "error": failure.error},
        )
    # leaky: differences after the downgrade, and/or upgrading again failed
    texts = list(result.get("differences") or ())
    code = result.get("missing_code") or ""
    again = None
    if phase == "re-upgrade" and failure is not None:
        body = (f"Statement:\n{failure.statement}\n" if failure.statement else "") + f"Error: {failure.error}"
        again = (failure.first_line, body)
        base = base.model_copy(update={"detail": f"upgrading again after its downgrade failed: {failure.first_line}"})
    return base, _leaky(step, target, texts, code, again)


def _leaky(step: walks.Step, target: str, texts: list[str], code: str,
           again: tuple[str, str] | None = None) -> Finding:
    """CM701; ``again`` = (first line, body) when upgrading again after the downgrade failed."""
    lines = [f"After `upgrade {step.revision}` and `downgrade {target}`"]
    if texts:
        lines[0] += " the schema differs from before the upgrade:"
        lines += [f"- {t}" for t in texts]
        title = "downgrade leaves the schema changed: " + texts[0] + \
            (f" (+{len(texts) - 1} more)" if len(texts) > 1 else "")
    else:
        lines[0] += " the tables look as before, but something the upgrade made was left behind (rows it " \
                    "inserted, a PostgreSQL ENUM type, a sequence…)."
        title = f"downgrade leaves something behind: upgrading again fails: {again[0] if again else '?'}"
    if again:
        lines.append(f"Upgrading again then fails:\n{again[1]}")
    fix = "Make downgrade() undo everything upgrade() does, then check with `flask db upgrade`, " \
          "`flask db downgrade`, `flask db upgrade` on a scratch database."
    if code:
        fix = "downgrade() is missing these operations (as alembic writes them):\n" + code
    return Finding(
        check="roundtrip", rule_id="CM701", severity="error", revision=step.revision, file=step.file,
        line=walks.def_line(step.path, "downgrade"),
        title=f"{step.label}: {title}",
        message="\n".join(lines), fix=fix,
        details={"differences": texts, "missing_operations": code, "upgrade_again_error": again[0] if again else None},
    )


def _irreversible(step: walks.Step, detail: str) -> Finding:
    return Finding(
        check="roundtrip", rule_id="CM703", severity="info", revision=step.revision, file=step.file,
        line=walks.def_line(step.path, "downgrade"),
        title=f"{step.label} cannot be rolled back: {detail}",
        message="Rolling back a release that includes this revision needs a restore from backup (or a "
        "hand-written fix), not `flask db downgrade`.",
        fix="If that is intended, nothing to do; otherwise write a downgrade() that undoes upgrade().",
    )
