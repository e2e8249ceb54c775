"""``ci-migrate apply``: upgrade a target database to head, safely.

1. Read the target's current revision(s); refuse an unknown revision (CM801), several heads in the
   repository (CM802) and a database with tables but no revision (CM803).
2. Already at head: say so, take no lock (the fast path).
3. Take the migration lock of every migrated bind (:mod:`ci_migrate.apply.locking`), waiting up to
   ``lock-wait``; read the revision again (another deploy may have done the work meanwhile).
4. Optional drift gate (CM805) and backup command (CM806).
5. Upgrade one revision per transaction with lock/statement timeouts, lock timeouts retried
   (:mod:`ci_migrate.apply.upgrade`); CM807 for a failing revision, CM808 when it was left half-applied.
6. Read the revision again — the truth, not the callbacks (CM809) — run the drift check against the
   models (CM301), and release the lock in ``finally``.

``--dry-run`` stops after step 2 with the plan and each revision's offline SQL
(:func:`ci_migrate.checks.offline.render`, as ``flask db upgrade --sql``).
"""

from __future__ import annotations

import os
import time
from typing import Any, Callable, Mapping

from ci_migrate import __version__
from ci_migrate.apply import findings as rules
from ci_migrate.errors import DatabaseError
from ci_migrate.report import AppliedRevision, ApplyFacts, CheckResult, Finding, PlannedRevision, Report, SandboxInfo

Say = Callable[[str], None]


def run_apply(settings: Any, target: str, *, dry_run: bool = False, allow_drift: bool = False,
              allow_multiple_heads: bool = False, drift_gate: bool | None = None,
              env: Mapping[str, str] | None = None, say: Say | None = None) -> Report:
    """Apply the pending revisions to target ``target`` and return the Report (``command='apply'``).

    ``drift_gate`` overrides ``targets.<name>.drift-gate``; ``say`` receives progress lines (lock
    waits, retries, each revision run). Raises ``ConfigError`` (exit 2: unknown target, unset URL
    variable), :class:`~ci_migrate.errors.UsageError` (exit 2) and ``AppLoadError``/``DatabaseError``
    (exit 3: the app does not import, the target cannot be reached). Refusals and failures are
    findings on the Report (exit 1).
    """
    from ci_migrate.project import load_project

    started = time.perf_counter()
    env = os.environ if env is None else env
    settings.target_url(target, env)  # a config problem shows before the app is imported
    project = load_project(settings.root, settings.app, settings.migrations)
    migrations = project.relative(project.migrations_dir)
    report = Report(version=__version__, command="apply", app=project.import_string, migrations=migrations,
                    target=target, fail_on=settings.fail_on, notes=list(project.notes),
                    key=f"{project.import_string or project.app.name}:{migrations}:{target}")
    gate = settings.targets[target].drift_gate if drift_gate is None else drift_gate
    runner = _Apply(settings, project, report, env, say or (lambda _line: None), target)
    runner.run(dry_run=dry_run, allow_drift=allow_drift, allow_multiple_heads=allow_multiple_heads, gate=gate)
    report.duration_s = round(time.perf_counter() - started, 3)
    return report


def _revs(revisions: Any) -> str:
    return ", ".join(revisions) or "base"


class _Apply:
    """One apply run; fills ``report`` with an ``apply`` result (and the ``drift`` one after it)."""

    def __init__(self, settings: Any, project: Any, report: Report, env: Mapping[str, str], say: Say, name: str):
        self.settings, self.project, self.report, self.env, self.say, self.name = (
            settings, project, report, env, say, name)
        self.config = settings.targets[name]
        self.findings: list[Finding] = []
        self.facts: ApplyFacts | None = None
        self.started = time.perf_counter()
        self.files: dict[str, Any] = {}
        self.heads: list[str] = []
        self.target: Any = None

    # ------------------------------------------------------------------ the run

    def run(self, *, dry_run: bool, allow_drift: bool, allow_multiple_heads: bool, gate: bool) -> None:
        from ci_migrate.apply.target import open_target
        from ci_migrate.pipeline import Context, apply_overrides, scan_graph

        ctx = Context(settings=self.settings, project=self.project, report=self.report, env=self.env)
        graph = scan_graph(ctx)
        self.files = ctx.revision_files
        if ctx.blocked:
            self.report.checks.append(apply_overrides(graph, self.settings))
            self.report.checks.append(CheckResult(name="apply", status="skipped",
                                                  summary="not applied: the revision graph is broken"))
            return
        self.target = open_target(self.settings, self.name, self.project, self.env)
        self.facts = ApplyFacts(target=self.name, dialect=self.target.dialect, url=self.target.display_url,
                                dry_run=dry_run)
        if self.target.dialect in ("mysql", "mariadb"):
            self.report.notes.append(rules.NOT_TRANSACTIONAL.format(dialect="MySQL/MariaDB"))
        if self.project.multidb:
            self.report.notes.append(rules.MULTIDB)
        self.allow_multiple_heads = allow_multiple_heads
        try:
            self._load_script()
            current = self.target.current_heads()
            # tables without a revision are judged under the lock (or in a dry run): before it, another
            # runner's first revision may be half-way (MySQL commits its CREATE TABLE at once)
            if self._refused(current, check_tables=dry_run):
                return self._finish(f"not applied: {self.findings[0].title}")
            if self._at_head(current):
                return self._finish(f"{self.name} is already at head {_revs(self.heads)}; nothing to apply")
            self.facts.pending = self._plan(current)
            if dry_run:
                return self._dry_run()
            self._locked(allow_drift, gate)
        finally:
            self.target.dispose()

    def _locked(self, allow_drift: bool, gate: bool) -> None:
        from ci_migrate.apply.locking import LockNotAcquired

        locks = self.target.locks()
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
            current = self.target.current_heads()  # another deploy may have moved it while we waited
            if self._refused(current):
                return self._finish(f"not applied: {self.findings[0].title}")
            if self._at_head(current):
                return self._finish(f"nothing to apply: {self.name} reached head {_revs(self.heads)} while this run "
                                    "waited for the lock (another deploy applied it)")
            self.facts.pending = self._plan(current)
            if gate and not self._gate(current, allow_drift):
                return self._finish(f"not applied: {self.findings[-1].title}")
            if self.config.backup_command and not self._backup():
                return self._finish(f"not applied: {self.findings[-1].title}")
            self._upgrade()
        finally:
            locks.release()

    # ------------------------------------------------------------------ steps

    def _load_script(self) -> None:
        from ci_migrate.alembic_env import script_directory

        self.script = script_directory(self.project)
        with self.project.app_context():  # a revision may use current_app when it is imported
            self.heads = sorted(self.script.get_heads())
            self.known = {sc.revision for sc in self.script.walk_revisions()}

    def _record_from(self, current: Mapping[str | None, tuple[str, ...]]) -> None:
        self.facts.from_heads = {key or "": sorted(revs) for key, revs in current.items()}

    def _refused(self, current: Mapping[str | None, tuple[str, ...]], check_tables: bool = True) -> bool:
        """Judge the starting point; True when a finding at error severity stops the run."""
        self._record_from(current)
        self.findings = []
        versions = self.project.relative(self.project.versions_dirs[0]) if self.project.versions_dirs else "versions"
        for key, revisions in current.items():
            unknown = [r for r in revisions if r not in self.known]
            if unknown:
                self._add(rules.unknown_revision(self.name, self.target.where(key), key, unknown, self.heads, versions))
        if len(self.heads) > 1 and not self.allow_multiple_heads:
            self._add(rules.multiple_heads(self.heads, self.project.command_name))
        for key, revisions in current.items():
            if check_tables and not revisions and not any(f.rule_id == "CM801" for f in self.findings):
                tables = [t for t in self.target.table_names(key) if not self.settings.ignore.table_ignored(t)]
                if tables:
                    self._add(rules.unversioned(self.name, self.target.where(key), key, tables,
                                                self.project.command_name))
        return any(f.severity == "error" for f in self.findings)

    def _add(self, finding: Finding) -> None:
        judged = rules.judged(finding, self.settings)
        if judged is not None:
            self.findings.append(judged)

    def _at_head(self, current: Mapping[str | None, tuple[str, ...]]) -> bool:
        return all(set(revs) == set(self.heads) for revs in current.values())

    def _applied_set(self, revisions: tuple[str, ...]) -> set[str]:
        return {sc.revision for sc in self.script.iterate_revisions(revisions, "base")} if revisions else set()

    def _plan(self, current: Mapping[str | None, tuple[str, ...]]) -> list[PlannedRevision]:
        """Pending revisions of every bind, base → head."""
        done = [self._applied_set(revs) for revs in current.values()]
        plan = []
        for sc in reversed(list(self.script.walk_revisions())):
            if any(sc.revision not in d for d in done):
                file = self.files.get(sc.revision)
                plan.append(PlannedRevision(revision=sc.revision, message=sc.doc,
                                            file=self.project.relative(file) if file else None))
        return plan

    def _dry_run(self) -> None:
        from alembic.util import to_tuple

        from ci_migrate.checks import offline

        pending = [p.revision for p in self.facts.pending]
        parents = {r: tuple(to_tuple(self.script.get_revision(r).down_revision, default=())) for r in pending}
        engines = offline.offline_engines(self.target.urls[None], self.project.bind_keys)
        rendered = offline.render(self.project, engines, pending, parents, self.files)
        for planned in self.facts.pending:
            entry = rendered.get(planned.revision)
            planned.sql, planned.sql_error = (entry.sql, entry.error) if entry else (None, "not rendered")
        self.report.notes.append("Dry run: nothing was written and no lock was taken. The SQL is alembic's offline "
                                 "rendering (`flask db upgrade --sql`); a revision that reads the database renders "
                                 "differently, or not at all.")
        n = len(pending)
        self._finish(f"dry run: {n} revision{'s' if n != 1 else ''} would be applied to {self.name} "
                     f"({_revs(self._from())} → {_revs(self.heads)})")

    def _gate(self, current: Mapping[str | None, tuple[str, ...]], allow_drift: bool) -> bool:
        from ci_migrate.apply.gate import drift_gate

        self.say(f"drift gate: comparing {self.name} with a sandbox at {_revs(self._from())}")
        result = drift_gate(self.project, self.target, self.settings, self.env, current, self.files)
        if result.sandbox:
            self.report.sandbox = SandboxInfo(dialect=self.target.dialect, url=result.sandbox)
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
                    if (p := url_password(self.env.get(key, "")))]
        self.say(f"backup: running targets.{self.name}.backup-command")
        result = run_backup(self.config.backup_command, cwd=self.settings.root, env=self.env, secrets=secrets,
                            extra_env={"CI_MIGRATE_APPLY_TARGET": self.name,
                                       "CI_MIGRATE_APPLY_FROM": _revs(self._from()),
                                       "CI_MIGRATE_APPLY_TO": _revs(self.heads)})
        if not result.ok:
            self.findings.append(rules.backup_failed(result, self.name))
            return False
        self.report.notes.append(f"Backup: `{result.command}` finished in {result.seconds:.1f} s before the first "
                                 "revision.")
        return True

    def _upgrade(self) -> None:
        from ci_migrate.apply.upgrade import run_upgrade

        n = len(self.facts.pending)
        self.say(f"applying {n} revision{'s' if n != 1 else ''} to {self.name} ({self.target.display_url})")
        destination = tuple(self.heads) if len(self.heads) > 1 else "heads"
        outcome = run_upgrade(self.project, self.target, destination, retries=self.config.retries,
                              backoff=self.config.retry_backoff, say=self.say,
                              total=n * max(1, len(self.target.migrated)))
        self.facts.retries = outcome.retries
        try:
            after = self.target.current_heads()
        except DatabaseError as exc:  # the server went away: report what alembic said, unverified
            self.findings.append(rules.unverified(self.name, str(exc)))
            after = {key: tuple(r.revision for r in outcome.runs[-1:]) for key in self.target.migrated}
        self.facts.to_heads = {key or "": sorted(revs) for key, revs in after.items()}
        applied_sets = {key: self._applied_set(revs) for key, revs in after.items()}
        for run in outcome.runs:
            done = applied_sets.get(run.bind if self.project.multidb else None, set())
            self.facts.applied.append(AppliedRevision(
                revision=run.revision, message=run.message, bind=run.bind, duration_ms=run.duration_ms,
                statements=run.statements, status="applied" if run.revision in done else "rolled_back"))
        applied = [a.revision for a in self.facts.applied if a.status == "applied"]
        failure = outcome.failure
        if failure is not None:
            self._failed(failure, after, applied, outcome.retries)
        elif not self.findings and any(set(revs) != set(self.heads) for revs in after.values()):
            self.findings.append(rules.not_at_head(self.name, self.facts.to_heads, self.heads,
                                                   self.project.relative(self.project.migrations_dir / "env.py")))
        count = len(dict.fromkeys(applied))
        summary = (f"applied {count} revision{'s' if count != 1 else ''} to {self.name}: "
                   f"{_revs(self._from())} → {_revs(sorted(set().union(*after.values())))}")
        if failure is not None:
            summary = f"failed at revision {failure.revision or '?'} after {count} applied; {self.name} is at " \
                      f"{_revs(sorted(set().union(*after.values())))}"
        self._finish(summary)
        if not any(f.severity == "error" for f in self.findings):  # upgraded: models vs the target
            self._after_drift()

    def _failed(self, failure: Any, after: Mapping[str | None, tuple[str, ...]], applied: list[str],
                retries: int) -> None:
        from ci_migrate.checks.replay import line_in

        file = self.files.get(failure.revision or "")
        rel = self.project.relative(file) if file else None
        line = line_in(failure.exc, file) if file and failure.exc is not None else None
        at = after.get(failure.bind if self.project.multidb else None, ())
        self.facts.applied.append(AppliedRevision(
            revision=failure.revision or "?", message=failure.message, bind=failure.bind, status="failed",
            duration_ms=failure.duration_ms, statements=failure.statements, failed_statement=failure.statement,
            error=failure.error))
        self.findings.append(rules.revision_failed(
            self.name, self.target.where(failure.bind if self.project.multidb else None), failure, _revs(at),
            list(dict.fromkeys(applied)), self.target.dialect, retries, self.name, self.config.lock_timeout, rel, line))
        if failure.committed or failure.outside_transaction:
            self.findings.append(rules.half_applied(self.name, failure, _revs(at), self.target.dialect,
                                                    self.project.command_name, rel, line))

    def _after_drift(self) -> None:
        """The drift check (models vs the upgraded target), reported as its own ``drift`` result."""
        from ci_migrate.checks import drift
        from ci_migrate.pipeline import apply_overrides

        self.say(f"drift: comparing the models with {self.name}")
        try:
            result = drift.compare(self.project, self.target, self.settings, production_dialect=self.target.dialect)
        except Exception as exc:  # noqa: BLE001 - the upgrade is done; report the check's failure
            result = CheckResult(name="drift", status="error",
                                 summary=f"could not compare the models with {self.name}: {type(exc).__name__}: {exc}")
        self.report.checks.append(apply_overrides(result, self.settings))

    # ------------------------------------------------------------------ result

    def _from(self) -> list[str]:
        return sorted(set().union(*map(set, self.facts.from_heads.values()))) if self.facts else []

    def _finish(self, summary: str) -> None:
        result = CheckResult(name="apply", status=CheckResult.status_for(self.findings), summary=summary,
                             duration_s=round(time.perf_counter() - self.started, 3), findings=self.findings,
                             facts=self.facts)
        self.report.checks.append(result)
