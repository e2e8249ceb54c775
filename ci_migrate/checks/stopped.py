"""Findings for a run the app's code stopped: the probe was told to stop, ended, or ran out of time.

* CM205 — env.py (or a revision, or the app) opened a connection to a database that is not the
  sandbox; the guard stopped it before it was opened.
* CM206 — the migrations ended the process: ``sys.exit()`` in env.py or a revision (caught), or the
  process ended without a result (``os._exit()``, a signal, a crash).
* CM207 — the run passed its ``timeout``; the process was killed.
* CM900 — the probe's own code failed (a bug, or a setup it does not handle).

Each names the revision (file:line when known) or the env.py line that was running, and says what
the app printed last. The check gets status ``error``; a run with any of them never passes.
"""

from __future__ import annotations

from typing import Any

from ci_migrate.report import CheckResult, Finding


def _where(problem: Any) -> tuple[str | None, int | None, str | None, str]:
    """``(file, line, revision, words)`` of what was running."""
    running = problem.running
    where = getattr(problem, "where", {}) or {}
    file = where.get("file") or running.file
    line = where.get("line")
    revision = where.get("revision") or running.revision
    if revision:
        words = f"revision {revision} ({file}{':' + str(line) if line else ''})" if file else f"revision {revision}"
    elif file:
        words = f"{file}{':' + str(line) if line else ''}"
    else:
        words = f"the {running.phase or 'run'}"
    return file, line, revision, words


def _output(problem: Any) -> str:
    tail = (problem.output or "").strip()
    return f"\nLast lines the app printed:\n{tail}" if tail else ""


def finding(check: str, problem: Any) -> Finding:
    """The finding for a stopped run (see the module docstring for the rule ids)."""
    from ci_migrate.probe_process import ProbeAborted, ProbeTimedOut

    file, line, revision, words = _where(problem)
    phase = problem.running.phase or check
    if isinstance(problem, ProbeAborted) and problem.why == "guard":
        database = problem.details.get("database", "another database")
        expected = problem.details.get("expected", "the sandbox")
        code = problem.where.get("code")
        own_dialect = problem.details.get("own_dialect")
        if own_dialect:
            return _own_database_elsewhere(check, file, line, revision, words, phase, database, code, own_dialect)
        return Finding(
            check=check, rule_id="CM205", severity="error", file=file, line=line, revision=revision,
            title=f"{words} opened a connection to {database}, which is not {expected}",
            message=(f"During the {phase}, {words} opened a connection to {database}"
                     + (f":\n  {code}\n" if code else ". ")
                     + f"ci-migrate points the app at {expected} before env.py runs (SQLALCHEMY_DATABASE_URI, "
                     "SQLALCHEMY_BINDS, Flask-SQLAlchemy's engines, alembic's sqlalchemy.url) and stops any other "
                     "connection before it is opened, so nothing ran there. `flask db upgrade` would have "
                     "migrated that database instead."),
            fix=("Take the engine (or URL) from the app's configuration, as Flask-Migrate's env.py does: "
                 "current_app.extensions['migrate'].db.engine, or current_app.config['SQLALCHEMY_DATABASE_URI'] — "
                 "not from an environment variable or a module-level engine of its own."),
            details={"database": database, "code": code})
    if isinstance(problem, ProbeTimedOut):
        return Finding(
            check=check, rule_id="CM207", severity="error", file=file, line=line, revision=revision,
            title=f"timed out while running {words}",
            message=(f"The run took longer than its timeout and was stopped during the {phase}, while running "
                     f"{words}. A revision that loops or waits for a lock that is never released never finishes "
                     f"`flask db upgrade` either.{_output(problem)}"),
            fix=("Find what the revision waits for (a loop, a sleep, a lock held by another session). If it is "
                 "merely slow, raise `timeout` (seconds) in .ci-migrate.yml, CI_MIGRATE_TIMEOUT or --timeout."))
    code = getattr(problem, "details", {}).get("code") if isinstance(problem, ProbeAborted) else None
    exit_code = problem.details.get("exit_code")
    how = (f"called sys.exit({code!r})" if isinstance(problem, ProbeAborted)
           else f"ended the process (exit code {exit_code})" if exit_code is not None and exit_code >= 0
           else f"was killed by signal {-exit_code}" if exit_code is not None else "ended the process")
    return Finding(
        check=check, rule_id="CM206", severity="error", file=file, line=line, revision=revision,
        title=f"{words} {how} before the {phase} finished",
        message=(f"During the {phase}, {words} {how}, so the migrations never reported a result. "
                 "`flask db upgrade` stops there too — and a CI job that only looks at the exit code may see a "
                 f"success.{_output(problem)}"),
        fix="Raise an exception instead of exiting (or let it fail): migrations must not end the process.",
        details={"exit_code": exit_code})


def _own_database_elsewhere(check: str, file: str | None, line: int | None, revision: str | None, words: str,
                            phase: str, database: str, code: str | None, dialect: str) -> Finding:
    """CM205 for a connection to the app's own database through an app or engine of env.py's own, on a
    sandbox of another dialect (on one of the same dialect it is opened there instead)."""
    example = {"postgresql": "postgresql://postgres@localhost/", "mysql": "mysql://root@localhost/"}.get(
        dialect, f"{dialect}://…")
    return Finding(
        check=check, rule_id="CM205", severity="error", file=file, line=line, revision=revision,
        title=f"{words} opened a connection to the app's own database {database}, which is not the sandbox",
        message=(f"During the {phase}, {words} opened a connection to the app's own database {database}"
                 + (f":\n  {code}\n" if code else ". ")
                 + "through an app or engine of its own (env.py calling the app factory again, or an engine from "
                 "the variable the app reads), not the one ci-migrate points at the sandbox. On a sandbox of the "
                 f"same dialect, ci-migrate opens such a connection there instead; this sandbox is not {dialect}, "
                 "so it was stopped before it was opened and nothing ran there."),
        fix=f"Use a {dialect} sandbox: `sandbox: {example}` in .ci-migrate.yml (or --sandbox / CI_MIGRATE_SANDBOX).",
        details={"database": database, "code": code, "own_dialect": dialect})


def result(check: str, problem: Any, project: Any = None) -> CheckResult:
    """The check's result when the run was stopped in it."""
    found = finding(check, problem)
    return CheckResult(name=check, status="error", summary=f"stopped: {found.title}", findings=[found])


def reason(problem: Any) -> str:
    """Why the checks after this one are not run."""
    return f"the run was stopped earlier ({_where(problem)[3]})"


def crashed(check: str, problem: Any) -> CheckResult:
    """CM900: an exception in the probe's own code."""
    tail = problem.details.get("traceback") or ""
    finding_ = Finding(check=check, rule_id="CM900", severity="error",
                       title=f"the {check} check crashed: {problem}",
                       message=(tail + _output(problem)).strip(),
                       fix="This is a bug in ci-migrate or an unusual setup; please report it with this message.")
    return CheckResult(name=check, status="error", summary=f"crashed: {str(problem)[:80]}", findings=[finding_])
