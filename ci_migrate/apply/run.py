"""``ci-migrate apply``: upgrade a target database to head, safely.

The probe (in the app's interpreter) reads the target's revisions and runs the upgrade through
env.py; the host judges, holds the migration lock and writes the report.

1. Read the target's current revision(s); refuse an unknown revision (CM801), several heads in the
   repository (CM802) and a database with tables but no revision (CM803).
2. Already at head: say so, take no lock (the fast path).
3. Take the migration lock of every migrated bind (:mod:`ci_migrate.apply.locking`), waiting up to
   ``lock-wait``; read the revision again (another deploy may have done the work meanwhile).
4. Name a revision an earlier run left unfinished (the target's apply log,
   :mod:`ci_migrate.apply.interrupted`): CM810 when part of it is in the database, unless
   ``--resume-interrupted`` is to finish it. Then the optional drift gate (CM805) and backup
   command (CM806).
5. Upgrade one revision per transaction with lock/statement timeouts, lock timeouts retried
   (:func:`ci_migrate.probe.target.upgrade`); CM807 for a failing revision, CM808 when it was left
   half-applied.
6. Read the revision again — the truth, not the callbacks (CM809) — run the drift check against the
   models (CM301), and release the lock in ``finally``.

``--dry-run`` stops after step 2 with what a reviewer needs: the plan (each pending revision's
offline SQL, as ``flask db upgrade --sql``), the risk rules on it (lint), and the row counts of the
tables the pending revisions touch, from the target's statistics.
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Mapping

from ci_migrate.apply import findings as rules
from ci_migrate.apply import interrupted
from ci_migrate.facts import Failure, RevisionCall
from ci_migrate.report import AppliedRevision, ApplyFacts, CheckResult, Finding, PlannedRevision, Report, SandboxInfo

Say = Callable[[str], None]


def run_apply(settings: Any, target: str, *, dry_run: bool = False, allow_drift: bool = False,
              allow_multiple_heads: bool = False, drift_gate: bool | None = None, resume_interrupted: bool = False,
              env: Mapping[str, str] | None = None, say: Say | None = None) -> Report:
    """Apply the pending revisions to target ``target`` and return the Report (``command='apply'``).

    ``drift_gate`` overrides ``targets.<name>.drift-gate``; ``resume_interrupted`` finishes a revision
    an earlier run left half-applied, when its operations can be checked (docs/apply.md); ``say``
    receives progress lines (lock waits, retries, each revision run). Raises ``ConfigError`` (exit 2:
    unknown target, unset URL variable), :class:`~ci_migrate.errors.UsageError` (exit 2) and
    ``AppLoadError``/``DatabaseError`` (exit 3: the app does not import, the target cannot be
    reached). Refusals and failures are findings on the Report (exit 1).
    """
    from ci_migrate.checks import stopped
    from ci_migrate.errors import DatabaseError, UsageError
    from ci_migrate.pipeline import Context, new_report
    from ci_migrate.probe_process import ProbeCrashed, ProbeProblem
    from ci_migrate.runtime import open_runtime
    from ci_migrate.sandbox import normalize_url

    if dry_run and resume_interrupted:
        raise UsageError("--resume-interrupted finishes a revision on the target, and --dry-run writes nothing: "
                         "use one or the other")
    started = time.perf_counter()
    env = os.environ if env is None else env
    say = say or (lambda _line: None)
    url = normalize_url(settings.target_url(target, env))  # a config problem shows before the app is imported
    gate = settings.targets[target].drift_gate if drift_gate is None else drift_gate
    use_sandbox = gate and not dry_run
    if use_sandbox:
        from ci_migrate.apply.gate import check_sandbox_kind
        from ci_migrate.apply.targets import TargetUrls
        from ci_migrate.sandbox import dialect_of

        check_sandbox_kind(dialect_of(settings.sandbox), TargetUrls(target, {None: url}))
    with open_runtime(settings, env, sandbox=use_sandbox, target_dialect=url.get_backend_name(), refuse=[url],
                      on_event=_progress(say), timeout_s=float(settings.timeout) if settings.timeout else None) as rt:
        report = new_report(rt, settings, "apply")
        report.target = target
        report.key = f"{report.key}:{target}"
        ctx = Context(settings=settings, runtime=rt, report=report, env=env, options={"target": target})
        try:
            _Apply(ctx, target, say, resume_interrupted).run(dry_run=dry_run, allow_drift=allow_drift,
                                                             allow_multiple_heads=allow_multiple_heads, gate=gate)
        except DatabaseError as exc:
            raise DatabaseError(f"target {target!r}: {exc}") from None
        except ProbeCrashed as exc:
            report.checks.append(stopped.crashed("apply", exc))
        except ProbeProblem as exc:  # env.py connected elsewhere, exited, died or timed out
            report.checks.append(stopped.result("apply", exc))
    report.duration_s = round(time.perf_counter() - started, 3)
    return report


def _progress(say: Say) -> Callable[[dict[str, Any]], None]:
    """Probe events → progress lines: retries, and each revision as it finishes."""
    def on_event(event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "say":
            say(str(event.get("text")))
        elif kind == "ran" and event.get("phase") == "apply" and event.get("direction") == "upgrade":
            bind = f" [bind {event['bind']}]" if event.get("bind") else ""
            verb = "ran" if event.get("status") == "ok" else "failed in"
            say(f"  {verb} {event.get('revision')}{bind} {event.get('message') or ''} "
                f"({float(event.get('duration_ms') or 0):.0f} ms, {event.get('statements')} statements)")
    return on_event


def _revs(revisions: Any) -> str:
    return ", ".join(revisions) or "base"


class _Apply:
    """One apply run; fills the report with an ``apply`` result (and the ``drift`` one after it)."""

    def __init__(self, ctx: Any, name: str, say: Say, resume: bool = False):
        self.ctx, self.name, self.say, self.resume = ctx, name, say, resume
        self.settings, self.report, self.probe = ctx.settings, ctx.report, ctx.probe
        self.project = ctx.project
        self.config = self.settings.targets[name]
        self.findings: list[Finding] = []
        self.facts: ApplyFacts | None = None
        self.started = time.perf_counter()
        self.heads: list[str] = []
        self.target: Any = None
        self.allow_multiple_heads = False

    # ------------------------------------------------------------------ the run

    def run(self, *, dry_run: bool, allow_drift: bool, allow_multiple_heads: bool, gate: bool) -> None:
        from ci_migrate.apply.targets import target_urls
        from ci_migrate.pipeline import apply_overrides, scan_graph

        graph = scan_graph(self.ctx)
        if self.ctx.blocked:
            self.report.checks.append(apply_overrides(graph, self.settings))
            self.report.checks.append(CheckResult(name="apply", status="skipped",
                                                  summary="not applied: the revision graph is broken"))
            return
        self.target = target_urls(self.settings, self.name, self.project, self.ctx.env)
        self.facts = ApplyFacts(target=self.name, dialect=self.target.dialect, url=self.target.display_url,
                                dry_run=dry_run)
        if self.target.dialect in ("mysql", "mariadb"):
            self.report.notes.append(rules.NOT_TRANSACTIONAL.format(dialect="MySQL/MariaDB"))
        if self.project.multidb:
            self.report.notes.append(rules.MULTIDB)
        self.allow_multiple_heads = allow_multiple_heads
        self.heads = sorted(self.ctx.history.heads)
        opened = self.probe.call("target", urls=self.target.request(), lock_timeout=self.config.lock_timeout,
                                 statement_timeout=self.config.statement_timeout, read_only=dry_run)
        self.transactional_ddl = bool(opened.get("transactional_ddl"))
        state = self._state(tables=dry_run)
        current = state["heads"]
        # tables without a revision are judged under the lock (or in a dry run): before it, another
        # runner's first revision may be half-way (MySQL commits its CREATE TABLE at once)
        if self._refused(current, state.get("tables") if dry_run else None):
            return self._finish(f"not applied: {self.findings[0].title}")
        if self._at_head(current):
            self.facts.to_heads = {key or "": sorted(revs) for key, revs in current.items()}
            return self._finish(f"{self.name} is already at head {_revs(self.heads)}; nothing to apply")
        self.facts.pending = self._plan(current)
        if dry_run:
            return self._dry_run(current)
        self._locked(allow_drift, gate)

    def _state(self, tables: bool = False) -> dict[str, Any]:
        """``{"heads": {bind: (revisions)}, "tables": {bind: [names]}}`` read by the probe."""
        data = self.probe.call("target_state", tables=tables)
        return {"heads": {key or None: tuple(revs) for key, revs in data["heads"].items()},
                "tables": {key or None: list(names) for key, names in (data.get("tables") or {}).items()}}

    def _locked(self, allow_drift: bool, gate: bool) -> None:
        from ci_migrate.apply.locking import LockNotAcquired

        locks = self.target.locks(self.project.version_table, self.project.version_table_schema)
        self.facts.lock = locks.label
        try:
            locks.acquire(self.config.lock_wait, self.say)
        except LockNotAcquired as exc:
            self.facts.lock_wait_s = round(exc.waited_s, 3)
            self.findings.append(rules.lock_not_acquired(self.name, exc.lock.label, exc.holder, exc.waited_s,
                                                         self.config.lock_wait, self.name))
            return self._finish(f"not applied: {self.findings[0].title}")
        try:
            self.facts.lock_wait_s = round(locks.waited_s, 3)
            state = self._state(tables=True)  # another deploy may have moved it while we waited
            current = state["heads"]
            found = self._interrupted(current)  # under the lock: no other run is inside a revision now
            tables = {key: [t for t in names if t not in interrupted.leftover_tables(found, key)]
                      for key, names in state["tables"].items()}
            if self._refused(current, tables):
                return self._finish(f"not applied: {self.findings[0].title}")
            if self._at_head(current):
                self.facts.to_heads = {key or "": sorted(revs) for key, revs in current.items()}
                return self._finish(f"nothing to apply: {self.name} reached head {_revs(self.heads)} while this run "
                                    "waited for the lock (another deploy applied it)")
            self.facts.pending = self._plan(current)
            verdict = interrupted.judge(found, target=self.target, name=self.name, transactional=self.transactional_ddl,
                                        resume=self.resume, current=current, command_name=self.project.command_name)
            self.findings += verdict.findings
            self.report.notes += verdict.notes
            if verdict.findings:
                return self._finish(f"not applied: {verdict.findings[0].title}")
            if gate and not self._gate(current, allow_drift, found, verdict.resume):
                return self._finish(f"not applied: {self.findings[-1].title}")
            if self.config.backup_command and not self._backup():
                return self._finish(f"not applied: {self.findings[-1].title}")
            self._upgrade(found, verdict.resume)
        finally:
            locks.release()

    # ------------------------------------------------------------------ steps

    def _record_from(self, current: Mapping[str | None, tuple[str, ...]]) -> None:
        self.facts.from_heads = {key or "": sorted(revs) for key, revs in current.items()}

    def _refused(self, current: Mapping[str | None, tuple[str, ...]],
                 tables: Mapping[str | None, list[str]] | None) -> bool:
        """Judge the starting point; True when a finding at error severity stops the run."""
        self._record_from(current)
        self.findings = []
        known = set(self.ctx.history.order)
        versions = self.project.relative(self.ctx.versions_dirs[0]) if self.ctx.versions_dirs else "versions"
        for key, revisions in current.items():
            unknown = [r for r in revisions if r not in known]
            if unknown:
                self._add(rules.unknown_revision(self.name, self.target.where(key), key, unknown, self.heads, versions))
        if len(self.heads) > 1 and not self.allow_multiple_heads:
            self._add(rules.multiple_heads(self.heads, self.project.command_name))
        for key, revisions in current.items():
            if tables is not None and not revisions and not any(f.rule_id == "CM801" for f in self.findings):
                present = [t for t in tables.get(key, []) if not self.settings.ignore.table_ignored(t)]
                if present:
                    self._add(rules.unversioned(self.name, self.target.where(key), key, present,
                                                self.project.command_name))
        return any(f.severity == "error" for f in self.findings)

    def _add(self, finding: Finding) -> None:
        judged = rules.judged(finding, self.settings)
        if judged is not None:
            self.findings.append(judged)

    def _at_head(self, current: Mapping[str | None, tuple[str, ...]]) -> bool:
        return all(set(revs) == set(self.heads) for revs in current.values())

    def _done(self, current: Mapping[str | None, tuple[str, ...]]) -> dict[str | None, set[str]]:
        """The revisions each bind has applied: its heads and their ancestors."""
        return {key: set(self.probe.call("ancestors", revisions=list(revs))["revisions"]) if revs else set()
                for key, revs in current.items()}

    def _interrupted(self, current: Mapping[str | None, tuple[str, ...]]) -> list[interrupted.Found]:
        """Revisions an earlier run left unfinished (none when the target is at a revision this code lacks)."""
        known = set(self.ctx.history.order)
        if any(r not in known for revs in current.values() for r in revs):
            return []
        pending = {key: [r for r in self.ctx.history.order if r not in done]
                   for key, done in self._done(current).items()}
        found = interrupted.inspect(self.ctx, self.target.dialect, pending)
        self.facts.interrupted = [f.item for f in found]
        return found

    def _plan(self, current: Mapping[str | None, tuple[str, ...]]) -> list[PlannedRevision]:
        """Pending revisions of every bind, base → head."""
        done = list(self._done(current).values())
        plan = []
        for rev in self.ctx.history.revisions:
            if any(rev.revision not in d for d in done):
                file = self.ctx.revision_files.get(rev.revision)
                plan.append(PlannedRevision(revision=rev.revision, message=rev.message,
                                            file=self.project.relative(file) if file else None))
        return plan

    def _dry_run(self, current: Mapping[str | None, tuple[str, ...]]) -> None:
        """The plan and the risk rules of the pending revisions, and the target's row counts."""
        from ci_migrate.apply.dry_run import review

        review(self.ctx, self.facts, self.target, self.name, current)
        n = len(self.facts.pending)
        self._finish(f"dry run: {n} revision{'s' if n != 1 else ''} would be applied to {self.name} "
                     f"({_revs(self._from())} → {_revs(self.heads)})")
        self.report.checks.insert(0, self.report.checks.pop())  # the apply result first

    def _gate(self, current: Mapping[str | None, tuple[str, ...]], allow_drift: bool, found: list[interrupted.Found],
              resume: list[dict[str, Any]]) -> bool:
        from ci_migrate.apply.gate import drift_gate

        self.say(f"drift gate: comparing {self.name} with a sandbox at {_revs(self._from())}")
        result = drift_gate(self.ctx, self.target, current)
        if result.sandbox:
            self.report.sandbox = SandboxInfo(dialect=self.target.dialect, url=result.sandbox)
        aside = interrupted.set_aside(result, found, resume) if resume else []
        if aside:
            self.report.notes.append("Drift gate: set aside as what the revision being finished left: "
                                     + "; ".join(aside) + ".")
        if result.clean:
            self.report.notes.append(f"Drift gate: the live schema matches the migrations at {_revs(self._from())}.")
            return True
        self._add(rules.drift_gate(self.name, result, allow_drift))
        return not any(f.severity == "error" for f in self.findings)

    def _backup(self) -> bool:
        from ci_migrate.apply.gate import run_backup
        from ci_migrate.masking import url_password

        secrets = [p for url in self.target.urls.values() if (p := url.password)]
        secrets += [p for key in (self.config.url_env, *self.config.binds.values())
                    if (p := url_password(self.ctx.env.get(key, "")))]
        self.say(f"backup: running targets.{self.name}.backup-command")
        result = run_backup(self.config.backup_command, cwd=self.settings.root, env=self.ctx.env, secrets=secrets,
                            extra_env={"CI_MIGRATE_APPLY_TARGET": self.name,
                                       "CI_MIGRATE_APPLY_FROM": _revs(self._from()),
                                       "CI_MIGRATE_APPLY_TO": _revs(self.heads)})
        if not result.ok:
            self.findings.append(rules.backup_failed(result, self.name))
            return False
        self.report.notes.append(f"Backup: `{result.command}` finished in {result.seconds:.1f} s before the first "
                                 "revision.")
        return True

    def _upgrade(self, found: list[interrupted.Found], resume: list[dict[str, Any]]) -> None:
        from ci_migrate.errors import DatabaseError

        n = len(self.facts.pending)
        self.say(f"applying {n} revision{'s' if n != 1 else ''} to {self.name} ({self.target.display_url})")
        destination = list(self.heads) if len(self.heads) > 1 else "heads"
        outcome = self.probe.call("upgrade", destination=destination, retries=self.config.retries,
                                  backoff=self.config.retry_backoff, resume=resume)
        self.facts.retries = int(outcome.get("retries") or 0)
        if outcome.get("log_error"):
            self.report.notes.append(f"The apply log could not be written on {self.name} ({outcome['log_error']}): if "
                                     "a run is stopped inside a revision, the next one cannot tell which.")
        try:
            after = self._state()["heads"]
        except DatabaseError as exc:  # the server went away: report what alembic said, unverified
            self.findings.append(rules.unverified(self.name, str(exc)))
            calls = [RevisionCall.from_data(r) for r in outcome.get("runs") or ()]
            after = {key: tuple(c.revision for c in calls if c.status == "ok")[-1:] for key in self.target.urls}
        self.facts.to_heads = {key or "": sorted(revs) for key, revs in after.items()}
        applied_sets = self._done(after)
        self.report.notes += interrupted.resumed(found, outcome.get("resumed") or (), applied_sets, self.name)
        failure = Failure.from_data(outcome.get("failure"))
        for call in (RevisionCall.from_data(r) for r in outcome.get("runs") or ()):
            if call.status != "ok":
                continue
            done = applied_sets.get(call.bind if self.project.multidb else None, set())
            self.facts.applied.append(AppliedRevision(
                revision=call.revision, message=call.message, bind=call.bind, duration_ms=call.duration_ms,
                statements=call.statements, status="applied" if call.revision in done else "rolled_back"))
        applied = [a.revision for a in self.facts.applied if a.status == "applied"]
        if failure is not None:
            self._failed(failure, after, applied, self.facts.retries)
        elif not self.findings and any(set(revs) != set(self.heads) for revs in after.values()):
            self.findings.append(rules.not_at_head(self.name, self.facts.to_heads, self.heads,
                                                   self.project.env_py or "migrations/env.py"))
        count = len(dict.fromkeys(applied))
        summary = (f"applied {count} revision{'s' if count != 1 else ''} to {self.name}: "
                   f"{_revs(self._from())} → {_revs(sorted(set().union(*after.values())))}")
        if failure is not None:
            summary = f"failed at revision {failure.revision or '?'} after {count} applied; {self.name} is at " \
                      f"{_revs(sorted(set().union(*after.values())))}"
        self._finish(summary)
        if not any(f.severity == "error" for f in self.findings):  # upgraded: models vs the target
            self._after_drift()

    def _failed(self, failure: Failure, after: Mapping[str | None, tuple[str, ...]], applied: list[str],
                retries: int) -> None:
        rel = failure.file
        at = after.get(failure.bind if self.project.multidb else None, ())
        self.facts.applied.append(AppliedRevision(
            revision=failure.revision or "?", message=failure.message, bind=failure.bind, status="failed",
            duration_ms=failure.duration_ms, statements=failure.statements, failed_statement=failure.statement,
            error=failure.error))
        where = self.target.where(failure.bind if self.project.multidb else None)
        self.findings.append(rules.revision_failed(
            self.name, where, failure, _revs(at), list(dict.fromkeys(applied)), self.target.dialect, retries,
            self.name, self.config.lock_timeout, rel, failure.line))
        if failure.committed or failure.outside_transaction:
            self.findings.append(rules.half_applied(self.name, failure, _revs(at), self.target.dialect,
                                                    self.project.command_name, rel, failure.line))

    def _after_drift(self) -> None:
        """The drift check (models vs the upgraded target), reported as its own ``drift`` result."""
        from ci_migrate.checks import drift
        from ci_migrate.pipeline import apply_overrides

        self.say(f"drift: comparing the models with {self.name}")
        try:
            data = self.probe.call("drift", against="target", ignore=drift.ignore_request(self.settings))
            result = drift.judge(self.project, data, self.target.dialect, False, self.settings.ignore.known_tables)
        except Exception as exc:  # noqa: BLE001 - the upgrade is done; report the check's failure
            result = CheckResult(name="drift", status="error",
                                 summary=f"could not compare the models with {self.name}: {type(exc).__name__}: {exc}")
        self.report.checks.append(apply_overrides(result, self.settings))

    # ------------------------------------------------------------------ result

    def _from(self) -> list[str]:
        return sorted(set().union(*map(set, self.facts.from_heads.values()))) if self.facts else []

    def _finish(self, summary: str) -> None:
        if self.facts is not None and not self.facts.to_heads:
            self.facts.to_heads = dict(self.facts.from_heads)
        result = CheckResult(name="apply", status=CheckResult.status_for(self.findings), summary=summary,
                             duration_s=round(time.perf_counter() - self.started, 3), findings=self.findings,
                             facts=self.facts)
        self.report.checks.append(result)
