"""The findings ``apply`` reports (rules CM801–CM810, one page each in docs/rules/).

CM802, CM803 and CM805 are judgements: their severity follows ``rules:`` in the config, and below
``error`` the run goes on. The others report that the deploy did not (fully) happen and are always
errors — lowering them would turn a failed deploy green.
"""

from __future__ import annotations

from typing import Any, Sequence

from ci_migrate.report import Finding

JUDGEMENTS = {"CM802", "CM803", "CM805"}
DIALECTS = {"postgresql": "PostgreSQL", "mysql": "MySQL/MariaDB", "mariadb": "MariaDB", "sqlite": "SQLite"}
NOT_TRANSACTIONAL = ("{dialect} commits every DDL statement at once (DDL is not transactional): a revision that "
                     "fails midway leaves its statements before the failure in the database while the version "
                     "table still names the previous revision. Such a revision is reported as CM808.")
MULTIDB = ("multidb: env.py opens one transaction per database and commits them all at the end, so "
           "transaction_per_migration has no effect and a failing revision rolls back this run's revisions on "
           "every bind (PostgreSQL). The final commits are not two-phase: if one fails, one bind can end "
           "upgraded and another not — each bind's version table is read back and reported. Each bind's "
           "database is locked separately.")


def _revs(revisions: Sequence[str]) -> str:
    return ", ".join(revisions) or "base (no revision)"


def _on(bind: str | None) -> str:
    return f" (bind {bind!r})" if bind else ""


def judged(finding: Finding, settings: Any) -> Finding | None:
    """The finding with the config's ``rules:`` override applied (judgements only); None when off."""
    if finding.rule_id not in JUDGEMENTS:
        return finding
    level = settings.rules.get(finding.rule_id)
    if level is None:
        return finding
    return None if level == "off" else finding.model_copy(update={"severity": level})


def unknown_revision(target: str, where: str, bind: str | None, unknown: list[str], heads: list[str],
                     versions: str) -> Finding:
    first = unknown[0]
    return Finding(
        check="apply", rule_id="CM801", severity="error", bind=bind, revision=first,
        title=f"{target}{_on(bind)} is at revision {_revs(unknown)}, which is not in {versions}",
        message=f"The version table of {where} names {_revs(unknown)}; no revision file here has that id "
        f"(this code's heads: {_revs(heads)}).\nEither the database is ahead of this code — a newer commit's "
        "revisions were applied to it and this deploy runs an older commit (a rollback of the code, or a deploy "
        "from a stale branch) — or the revision was applied by hand (a hotfix) and its file was never committed. "
        "Alembic cannot upgrade from a revision it does not know, and this code's revisions were not written for "
        "that schema. Nothing was changed.",
        fix=f"Deploy the commit that contains the revision file (find it with `git log --all --oneline -- "
        f"'*{first}*'`), or commit the hand-written revision. Do not `flask db stamp` over it without "
        "comparing the schema first.",
        details={"unknown": unknown, "heads": heads},
    )


def multiple_heads(heads: list[str], command_name: str) -> Finding:
    return Finding(
        check="apply", rule_id="CM802", severity="error",
        title=f"the migrations have {len(heads)} heads: {_revs(heads)}",
        message="`flask db upgrade` refuses a history with several heads, and so does apply: which heads the "
        "database should end at is a decision, not a default. Nothing was changed.",
        fix=f"Merge them: `flask {command_name} merge -m \"merge heads\" {' '.join(heads)}`, commit and deploy. "
        "To upgrade to every head anyway (as `flask db upgrade heads` does), pass --allow-multiple-heads.",
        details={"heads": heads},
    )


def unversioned(target: str, where: str, bind: str | None, tables: list[str], command_name: str) -> Finding:
    shown = ", ".join(tables[:6]) + (f" and {len(tables) - 6} more" if len(tables) > 6 else "")
    return Finding(
        check="apply", rule_id="CM803", severity="error", bind=bind,
        title=f"{target}{_on(bind)} has {len(tables)} tables but no revision",
        message=f"{where} has tables ({shown}) but its version table is missing or empty, so alembic takes it "
        "for an empty database and would run every revision from the first — creating tables that already "
        "exist. It was probably made with db.create_all() or by hand. Nothing was changed.",
        fix=f"If its schema is that of a known revision, record it: `flask {command_name} stamp <revision>` "
        "(compare first: targets.<name>.drift-gate: true checks the schema at the stamped revision). To apply "
        "from base anyway, set `rules: {CM803: off}`.",
        details={"tables": tables},
    )


def lock_not_acquired(target: str, label: str, holder: str | None, waited_s: float, lock_wait: float,
                      name: str) -> Finding:
    return Finding(
        check="apply", rule_id="CM804", severity="error",
        title=f"the migration lock of {target} is held by {holder or 'another session'}",
        message=f"Waited {waited_s:.1f} s (lock-wait: {lock_wait:g} s) for {label}. Another deploy is most likely "
        "still migrating this database. Nothing was changed.",
        fix="Let the other deploy finish and run again (it finds nothing left to do if that one succeeded). If the "
        "holder is stuck, end its session (PostgreSQL: SELECT pg_terminate_backend(<pid>); MySQL/MariaDB: KILL "
        f"<id>). To wait longer, raise targets.{name}.lock-wait.",
        details={"lock": label, "holder": holder, "waited_s": round(waited_s, 3)},
    )


def drift_gate(target: str, result: Any, allowed: bool) -> Finding:
    severity = "warning" if allowed else "error"
    then = "Applied anyway (--allow-drift)." if allowed else "Nothing was changed."
    if result.error:
        return Finding(check="apply", rule_id="CM805", severity=severity,
                       title=f"the drift gate could not check {target}: {result.error}",
                       message=f"The gate fails closed: without the expected schema it cannot vouch for the live one. "
                       f"{then}", fix="Fix the problem above, or pass --allow-drift to skip the comparison.")
    items = [(bind, item) for bind, tables in result.differences.items() for t in tables for item in t.items]
    lines = [f"- {item.text}{_on(bind)}" for bind, item in items]
    first = items[0][1].text
    return Finding(
        check="apply", rule_id="CM805", severity=severity,
        title=f"the live schema of {target} differs from its revision {_revs(result.revision)}: {first}"
        + (f" and {len(items) - 1} more" if len(items) > 1 else ""),
        message=f"Before upgrading, {target} was compared with a sandbox upgraded to the same revision "
        f"({_revs(result.revision)}). To match what the migrations say, the database would need to:\n"
        + "\n".join(lines) + "\nSomeone changed the schema outside the migrations (a hotfix by hand), or a "
        f"revision was left half-applied. {then}",
        fix="Put the hand-made change into a revision (or undo it) and deploy that; or, once you have checked that "
        "the pending revisions are safe on this schema, pass --allow-drift.",
        details={"differences": [{"bind": b, "kind": i.kind, "table": i.table, "text": i.text} for b, i in items]},
    )


def backup_failed(result: Any, name: str) -> Finding:
    return Finding(
        check="apply", rule_id="CM806", severity="error",
        title=f"the backup command failed (exit {result.exit_code}); nothing was applied",
        message=f"$ {result.command}\n{result.output or '(no output)'}",
        fix=f"Fix targets.{name}.backup-command and run again. apply does not upgrade without the backup it was told "
        "to make.", details={"exit_code": result.exit_code, "seconds": result.seconds},
    )


def revision_failed(target: str, where: str, failure: Any, after: str, kept: list[str], dialect: str,
                    retries: int, name: str, lock_timeout: float, file: str | None,
                    line: int | None = None) -> Finding:
    what = f"revision {failure.revision}" if failure.revision else "the upgrade"
    about = f" ({failure.message})" if failure.message else ""
    lines = [f"Upgrading {where}{_on(failure.bind)} to {what}{about} failed"
             + (f" after {retries} retr{'y' if retries == 1 else 'ies'}." if retries else ".")]
    if failure.statement:
        lines.append(f"Statement:\n{failure.statement}")
    lines.append(f"Database error: {failure.error}" if failure.statement else f"{failure.exception}: {failure.error}")
    state = f"The database is at {after} (read back from its version table)."
    if kept:
        state += f" Revisions applied before the failure stay applied: {', '.join(kept)}."
    if not failure.committed and failure.revision:
        state += f" Nothing of {failure.revision} was kept" + (
            " (the revision's transaction was rolled back)." if dialect == "postgresql" else ".")
    lines.append(state)
    if failure.lock:
        lines.append("Another session held a lock the revision needed for longer than lock-timeout "
                     f"({lock_timeout:g} s).")
        fix = ("Find the blocking session (PostgreSQL: SELECT pid, state, query FROM pg_stat_activity WHERE pid IN "
               "(SELECT unnest(pg_blocking_pids(pid)) FROM pg_stat_activity); MySQL/MariaDB: SHOW PROCESSLIST) and "
               f"run again once it is done, or raise targets.{name}.lock-timeout / retries.")
    else:
        fix = ("Reproduce with `flask db upgrade` against a copy of the database, fix the revision and run again; "
               "revisions already applied are not repeated.")
    return Finding(
        check="apply", rule_id="CM807", severity="error", revision=failure.revision, bind=failure.bind, file=file,
        line=line,
        title=f"{what} failed on {target}: {failure.error.splitlines()[0]}",
        message="\n".join(lines), fix=fix,
        details={"statement": failure.statement, "error": failure.error, "exception": failure.exception,
                 "lock": failure.lock, "retries": retries},
    )


def half_applied(target: str, failure: Any, before: str, dialect: str, command_name: str,
                 file: str | None, line: int | None = None) -> Finding:
    why = ("they ran in an autocommit block, which commits as it goes" if dialect == "postgresql"
           else f"{DIALECTS.get(dialect, dialect)} does not roll back DDL")
    statements = "\n".join(f"  {s}" for s in failure.committed) or "  (none before the failing statement)"
    if failure.outside_transaction:
        statements += ("\nThe failing statement itself ran outside a transaction (autocommit block) and may have "
                       f"left something behind:\n  {failure.statement}\n(a failed CREATE INDEX CONCURRENTLY leaves "
                       "an INVALID index: DROP INDEX CONCURRENTLY it before running again)")
    return Finding(
        check="apply", rule_id="CM808", severity="error", revision=failure.revision, bind=failure.bind, file=file,
        line=line,
        title=f"revision {failure.revision} was left half-applied on {target}",
        message=f"These statements of {failure.revision} ran and stay in the database ({why}), but its version "
        f"table still says {before}:\n{statements}\nA rerun would run them again and fail.",
        fix=f"Repair by hand, then run again: undo the statements above so the revision can run again, or finish "
        f"its remaining statements and record it with `flask {command_name} stamp {failure.revision}`. Keeping one "
        "DDL statement per revision on MySQL/MariaDB makes this rare.",
        details={"committed": failure.committed},
    )


def not_at_head(target: str, after: dict[str, list[str]], heads: list[str], env_py: str) -> Finding:
    where = ", ".join(f"{k or 'default'} bind at {_revs(v)}" for k, v in after.items())
    return Finding(
        check="apply", rule_id="CM809", severity="error", file=env_py,
        title=f"{target} is not at head after the upgrade",
        message=f"The upgrade reported no error, but the version tables read afterwards say: {where}; expected "
        f"{_revs(heads)}. env.py probably builds its own engine (e.g. from an environment variable) instead of "
        "using the app's Flask-SQLAlchemy engine, so the revisions ran somewhere else — without the lock and "
        "timeouts of this run.",
        fix="Make env.py take the engine from current_app.extensions['migrate'].db, as the Flask-Migrate template "
        "does, and check which database the revisions went to.",
        details={"after": after, "heads": heads},
    )


def unverified(target: str, error: str) -> Finding:
    return Finding(
        check="apply", rule_id="CM809", severity="error",
        title=f"the revision of {target} could not be read back after the upgrade",
        message=f"The upgrade ended, but reading the version table afterwards failed:\n{error}\nThe revisions "
        "listed as applied are what alembic reported, not what the database confirms.",
        fix="Check the database's state with `flask db current` once it is reachable, then run apply again: it "
        "applies whatever is still pending.",
    )


_STATE_WORDS = {"ran": "ran", "partly": "partly ran", "not_run": "not run", "unknown": "unknown"}


def _earlier(item: Any) -> str:
    """What the earlier run did inside the revision, from its apply-log row."""
    about = f" ({item.message})" if item.message else ""
    started = f"started revision {item.revision}{about}" + (f" at {item.started_at}" if item.started_at else "") + (
        f" (runner {item.runner})" if item.runner else "")
    if item.outcome == "failed":
        return f"{started} and it failed at {item.finished_at}"
    if item.outcome == "ok":
        return f"{started} and finished it at {item.finished_at}, but its version was never recorded"
    return f"{started} and ended before it finished (killed, or its runner was lost)"


def interrupted_note(item: Any, target: str, transactional: bool) -> str:
    """An interrupted revision of which nothing is in the target: it runs again."""
    if item.error:  # transactional: nothing of it stayed, whatever it was
        return (f"An earlier apply on {target} {_earlier(item)}. Its operations could not be listed ({item.error}), "
                "but its transaction was rolled back, so it runs again from its first statement.")
    why = " (its transaction was rolled back)" if transactional else ""
    return (f"An earlier apply on {target} {_earlier(item)}. Nothing of it is in the database{why}, so it runs "
            "again from its first statement.")


def interrupted(target: str, where: str, item: Any, before: str, why_not: str | None, asked: bool,
                command_name: str, leftovers: list[str]) -> Finding:
    """CM810: an earlier run left ``item`` (an InterruptedRevision) half-applied, or what it did is unknown;
    ``leftovers``: what undoing it by hand removes."""
    left = [o for o in item.operations if o.state in ("ran", "partly")]
    lines = []
    for op in item.operations:
        at = f" (line {op.line})" if op.line else ""
        state = _STATE_WORDS[op.state] + (" (follows from the order)" if op.inferred else "")
        extra = ""
        if op.state == "partly":
            extra = f": there: {', '.join(op.present)}; missing: {', '.join(op.missing)}"
        elif op.state == "unknown":
            extra = ": cannot be told from the schema"
        lines.append(f"  {state:<10} {op.text}{at}{extra}")
    listing = "\n".join(lines) if lines else f"  (its operations could not be listed: {item.error})"
    if left:
        title = f"revision {item.revision} is half-applied on {target}: an earlier run did not finish it"
        if item.outcome == "ok":
            title = f"revision {item.revision} ran on {target}, but an earlier run never recorded its version"
        then = ("Running it again from its first statement would fail on what already exists (\"Duplicate column "
                "name\", \"already exists\"), so nothing was applied.")
    else:
        title = f"revision {item.revision} was left unfinished on {target}; what of it ran cannot be told"
        then = ("Running it again could fail on, or repeat, what already ran, so nothing was applied.")
    undo = f"remove what it left ({'; '.join(leftovers)})" if leftovers else "undo what of it ran"
    if why_not is None:
        fix = (f"Either finish it: `ci-migrate apply --target {target} --resume-interrupted` skips its objects that "
               f"exist, creates the others and records the revision. Or {undo}, then run apply again: the whole "
               "revision runs.")
    else:
        fix = (f"By hand: finish its remaining operations and record it with `flask {command_name} stamp "
               f"{item.revision}`; or {undo}, then run apply again. --resume-interrupted cannot finish it: {why_not}.")
    intro = f"--resume-interrupted cannot finish it: {why_not}.\n" if asked and why_not else ""
    return Finding(
        check="apply", rule_id="CM810", severity="error", revision=item.revision, bind=item.bind, file=item.file,
        title=title,
        message=f"{intro}An earlier `ci-migrate apply` on {where}{_on(item.bind)} {_earlier(item)}. The version "
        f"table still says {before}. Its operations, compared with the database's schema:\n{listing}\n{then}",
        fix=fix,
        details={"started_at": item.started_at, "finished_at": item.finished_at, "outcome": item.outcome,
                 "runner": item.runner, "resumable": why_not is None, "left": leftovers,
                 "operations": [o.model_dump() for o in item.operations]},
    )
