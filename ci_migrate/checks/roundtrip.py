"""Round trip ("stairway"): does each revision's downgrade undo its upgrade?

For each revision of the scope (``checks.roundtrip.scope``), on a throwaway database of its own
(alembic-internals.md §7): bring it to the revision's parents, reflect the schema
(``MetaData.reflect``), ``upgrade(rev)``, downgrade just that revision — ``downgrade("<rev>@-1")``
along its own lineage, never ``"-1"``; for a merge point ``downgrade(<first parent>)`` — then compare
the schema with the one before using alembic's own autogenerate comparison
(``alembic.autogenerate.produce_migrations`` against the reflected snapshot), and ``upgrade(rev)``
again. After a failure the database's state is unknown (SQLite keeps half-applied DDL, PostgreSQL
rolls back), so the revision's descendants are not tried and the walk goes on with a fresh database.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

from ci_migrate.alembic_env import version_table_opts
from ci_migrate.checks import describe, stepwise
from ci_migrate.checks.replay import line_in
from ci_migrate.report import CheckResult, DiffItem, Finding, RoundtripFacts, RoundtripStep

# How a difference reads when the database (after the downgrade) is compared with the schema before
# the upgrade: the diff is what would still have to be done to get back.
_LEFT = {"remove_table": "table {t} is still there", "add_table": "table {t} is gone",
         "remove_column": "column {tc} is still there", "add_column": "column {tc} is gone",
         "remove_index": "index {n} on {t} is still there", "add_index": "index {n} on {t} is gone",
         "remove_constraint": "constraint {n} on {t} is still there", "add_constraint": "constraint {n} on {t} is gone",
         "remove_fk": "foreign key {n} on {t} is still there", "add_fk": "foreign key {n} on {t} is gone"}


class _Failed(Exception):
    """A step the walk cannot continue after: ``phase`` (what failed) and the original exception."""

    def __init__(self, phase: str, exc: BaseException, target: str = "", leftovers: tuple[list[str], str] = ([], "")):
        super().__init__(phase)
        self.phase, self.exc, self.target, self.leftovers = phase, exc, target, leftovers


class _Stairway:
    """Walks the steps on a throwaway database, replacing it after a failure."""

    def __init__(self, ctx: Any, walk: stepwise.Walk):
        self.ctx, self.walk, self.project = ctx, walk, ctx.project
        self.binds = self.project.bind_keys if self.project.multidb else [None]
        self.version_table = self.project.configure_args.get("version_table") or "alembic_version"
        self.statements = stepwise.Statements(self.version_table)
        self.stack = contextlib.ExitStack()
        self.sandbox: Any = None
        self.fresh = True
        self.upgrade_failed: list[str] = []  # revisions whose upgrade failed here (not a downgrade problem)

    def close(self) -> None:
        """Drop the throwaway database in use, if any."""
        self.stack.close()

    def _database(self) -> Any:
        from ci_migrate.sandbox import open_sandbox

        if self.sandbox is None:
            self.sandbox = self.stack.enter_context(
                open_sandbox(self.ctx.settings.sandbox_url(self.ctx.env), self.project.bind_keys))
            self.fresh = True
        return self.sandbox

    def _discard(self) -> None:
        self.stack.close()
        self.stack, self.sandbox = contextlib.ExitStack(), None

    def _run(self, fn: Any, *args: Any) -> int:
        """One alembic command; returns how many statements the revision itself ran."""
        self.statements.reset()
        with stepwise.listening(self.sandbox.engines.values(), before_cursor_execute=self.statements.on_statement):
            stepwise.run_command(self.project, self.sandbox, fn, *args, listener=self.statements.on_log)
        return self.statements.count

    def climb(self) -> tuple[list[RoundtripStep], list[Finding]]:
        steps: list[RoundtripStep] = []
        findings: list[Finding] = []
        stopped: dict[str, list[str]] = {}  # revision → its ancestors whose round trip failed
        for step in self.walk.steps:
            base = RoundtripStep(revision=step.revision, message=step.message, file=step.file, status="ok")
            if step.revision in stopped:
                steps.append(base.model_copy(update={
                    "status": "skipped", "detail": f"not tried: the round trip of its ancestor"
                    f"{'s' if len(stopped[step.revision]) > 1 else ''} {' and '.join(stopped[step.revision])} failed, "
                    "so the database state for its lineage is unknown"}))
                continue
            try:
                result, finding = self._step(step, base)
            except _Failed as failed:
                result, finding = self._failure(step, base, failed)
                self._discard()
                for rev in self.walk.descendants(step.revision):
                    stopped.setdefault(rev, []).append(step.revision)
            steps.append(result)
            if finding is not None:
                findings.append(finding)
        return steps, findings

    def _step(self, step: stepwise.Step, base: RoundtripStep) -> tuple[RoundtripStep, Finding | None]:
        from alembic import command

        sandbox = self._database()
        try:
            stepwise.bring_to_parents(self.project, sandbox, self.ctx.settings, step, fresh=self.fresh)
            self.fresh = False
            before = self._reflect()
            upgraded = self._run(command.upgrade, step.revision)
        except Exception as exc:
            raise _Failed("upgrade", exc) from exc
        target = step.parents[0] if step.is_merge_point else f"{step.revision}@-1"
        try:
            downgraded = self._run(command.downgrade, target)
        except NotImplementedError as exc:
            if self.statements.count:  # it changed something first: the database is not trustworthy
                self._discard()
            detail = f"downgrade() raises NotImplementedError: {exc}" if str(exc) else \
                "downgrade() raises NotImplementedError"
            return base.model_copy(update={"status": "irreversible", "detail": detail}), self._irreversible(step, detail)
        except Exception as exc:
            raise _Failed("downgrade", exc) from exc
        if upgraded and not downgraded:  # `pass`: a lint rule reports it; here it is a fact
            self._run(command.stamp, step.revision)  # the schema is still upgraded: put the version back
            return base.model_copy(update={
                "status": "irreversible", "detail": f"downgrade() runs no statement while upgrade() runs {upgraded}; "
                "the schema stays upgraded"}), None
        items, code = self._differences(before)
        texts = [_leftover(i) for i in items]
        try:
            self._run(command.upgrade, step.revision)
        except Exception as exc:
            raise _Failed("re-upgrade", exc, target, (texts, code)) from exc
        if not items:
            return base, None
        return (base.model_copy(update={"status": "leaky", "differences": texts,
                                        "detail": f"after downgrade {target}: " + "; ".join(texts)}),
                self._leaky(step, target, texts, code))

    def _reflect(self) -> dict[Any, Any]:
        import sqlalchemy as sa

        snapshot = {}
        for bind in self.binds:
            metadata = sa.MetaData()
            with self.sandbox.engines[bind].connect() as conn:
                metadata.reflect(conn)
            if self.version_table in metadata.tables:
                metadata.remove(metadata.tables[self.version_table])
            snapshot[bind] = metadata
        return snapshot

    def _differences(self, before: dict[Any, Any]) -> tuple[list[DiffItem], str]:
        """What would still have to change to get back to ``before``, in words, and as alembic ops."""
        from alembic.autogenerate import produce_migrations, render_python_code
        from alembic.migration import MigrationContext

        items: list[DiffItem] = []
        code = []
        for bind in self.binds:
            engine = self.sandbox.engines[bind]
            with engine.connect() as conn:
                # compare types whatever the project sets (alembic < 1.12 and Flask-Migrate < 3 default to off)
                opts = {**version_table_opts(self.project), "compare_type": True}
                context = MigrationContext.configure(conn, opts=opts)
                script = produce_migrations(context, before[bind])
            ops = script.upgrade_ops
            if ops is None or ops.is_empty():
                continue
            items += [describe.describe(d, engine.dialect) for d in describe.flatten(ops.as_diffs())]
            rendered = render_python_code(ops, render_as_batch=bool(self.project.configure_args.get("render_as_batch")))
            code += [line for line in rendered.strip("\n").splitlines() if not line.strip().startswith("# ###")]
        return items, "\n".join(code)

    def _failure(self, step: stepwise.Step, base: RoundtripStep, failed: _Failed) -> tuple[RoundtripStep, Finding | None]:
        statement, error = stepwise.failure_parts(failed.exc)
        first = error.splitlines()[0]
        later = sorted(self.walk.descendants(step.revision) & {s.revision for s in self.walk.steps})
        skipped = f"\nNot tried after it (its descendants): {', '.join(later)}." if later else ""
        what = {"upgrade": "upgrading to it", "downgrade": "its downgrade",
                "re-upgrade": "upgrading again after its downgrade"}[failed.phase]
        texts, code = failed.leftovers
        step_result = base.model_copy(update={"status": "leaky" if failed.phase == "re-upgrade" else "failed",
                                              "detail": f"{what} failed: {first}", "differences": texts})
        if failed.phase == "upgrade":  # the replay reached heads, yet this path fails: say so in the result
            self.upgrade_failed.append(step.revision)
            return step_result, None
        body = (f"Statement:\n{statement}\n" if statement else "") + f"Error: {error}" + skipped
        if failed.phase == "re-upgrade":
            return step_result, self._leaky(step, failed.target, texts, code, again=(first, body))
        return step_result, Finding(
            check="roundtrip", rule_id="CM702", severity="error", revision=step.revision, file=step.file,
            line=(line_in(failed.exc, step.path) if step.path else None) or stepwise.def_line(step.path, "downgrade"),
            title=f"{_label(step)}: downgrade fails: {first}",
            message=f"After upgrading to {step.revision}, `flask db downgrade` of it fails, so this release cannot "
            "be rolled back.\n" + body,
            fix=f"Reproduce on a scratch database: `flask db upgrade {step.revision}` then `flask db downgrade "
            f"{step.parents[0] if step.is_merge_point else step.revision + '@-1'}`; fix downgrade(), or make it "
            "raise NotImplementedError if the change cannot be undone.",
            details={"statement": statement, "error": error},
        )

    def _leaky(self, step: stepwise.Step, target: str, texts: list[str], code: str,
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
            line=stepwise.def_line(step.path, "downgrade"),
            title=f"{_label(step)}: {title}",
            message="\n".join(lines), fix=fix,
            details={"differences": texts, "missing_operations": code, "upgrade_again_error": again[0] if again else None},
        )

    def _irreversible(self, step: stepwise.Step, detail: str) -> Finding:
        return Finding(
            check="roundtrip", rule_id="CM703", severity="info", revision=step.revision, file=step.file,
            line=stepwise.def_line(step.path, "downgrade"),
            title=f"{_label(step)} cannot be rolled back: {detail}",
            message="Rolling back a release that includes this revision needs a restore from backup (or a "
            "hand-written fix), not `flask db downgrade`.",
            fix="If that is intended, nothing to do; otherwise write a downgrade() that undoes upgrade().",
        )


def _label(step: stepwise.Step) -> str:
    return f"{step.revision}" + (f" ({step.message})" if step.message else "")


def _leftover(item: DiffItem) -> str:
    name = f"`{item.name}`" if item.name else "(unnamed)"
    template = _LEFT.get(item.kind)
    if template:
        return template.format(t=f"`{item.table}`", tc=f"`{item.table}.{item.name}`", n=name)
    if item.kind == "modify_nullable":  # old: now, new: before the upgrade ("True"/"False")
        words = {"True": "nullable", "False": "NOT NULL"}
        return f"`{item.table}.{item.name}` is {words.get(item.old or '', item.old)}, " \
               f"was {words.get(item.new or '', item.new)} before the upgrade"
    if item.kind.startswith("modify_") and item.old is not None:
        what = {"modify_type": "type", "modify_default": "server default", "modify_comment": "comment"}.get(
            item.kind, item.kind)
        return f"{what} of `{item.table}.{item.name}` is {item.old}, was {item.new} before the upgrade"
    return f"differs: {item.text}"


def run(ctx: Any) -> CheckResult | None:
    """Upgrade, downgrade and re-upgrade each revision in scope on a throwaway database.

    Returns None when nothing is in scope (``pending`` without a plan). Facts: :class:`RoundtripFacts`
    (per revision: ok, leaky, failed, irreversible — empty or ``NotImplementedError`` downgrade — or
    skipped). Findings: CM701 leaky downgrade (error), CM702 failing downgrade (error), CM703
    downgrade raises NotImplementedError (info). An empty downgrade is only a fact (a lint rule reports
    it). Raises :class:`DatabaseError` (exit 3) when a throwaway database cannot be created.
    """
    walk = stepwise.plan_walk(ctx, "roundtrip")
    if walk is None:
        return None
    if reason := stepwise.replay_failed(ctx):
        return CheckResult(name="roundtrip", status="skipped", summary=reason)
    started = time.perf_counter()
    stairway = _Stairway(ctx, walk)
    try:
        steps, findings = stairway.climb()
    finally:
        stairway.close()
    paths = {s.revision: s.path for s in walk.steps}
    kept = [f for f in findings if not stepwise.ignored_inline(paths.get(f.revision or ""), f.line, f.rule_id)]
    counts: dict[str, int] = {}
    for s in steps:
        counts[s.status] = counts.get(s.status, 0) + 1
    order = ("ok", "leaky", "failed", "irreversible", "skipped")
    tally = ", ".join(f"{counts[k]} {k}" for k in order if k in counts)
    n = len(steps)
    summary = f"{n} {'pending ' if walk.scope == 'pending' else ''}revision{'s' if n != 1 else ''} round-tripped: {tally}"
    if len(kept) < len(findings):
        summary += f" ({len(findings) - len(kept)} silenced inline)"
    status = CheckResult.status_for(kept)
    if stairway.upgrade_failed:  # unexpected after a clean replay: the walk itself could not do its job
        status = "error"
        summary = f"upgrading to {', '.join(stairway.upgrade_failed)} failed during the round trip ({summary})"
    return CheckResult(name="roundtrip", status=status, summary=summary,
                       duration_s=round(time.perf_counter() - started, 3), findings=kept,
                       facts=RoundtripFacts(scope=walk.scope, steps=steps))
