"""CM520: squawk (``squawk-cli``) on each pending revision's PostgreSQL SQL, mapped back to the
revision file.

squawk runs once over one ``<revision>.sql`` file per revision (the offline SQL wrapped in the
BEGIN/COMMIT alembic runs it in). Out of the box it is mostly style on Alembic output
(prefer-text-field, prefer-bigint-over-int, prefer-identity, timeouts…), so only its safety rules
count. Violations on tables the plan creates are dropped. A violation whose risk one of ci-migrate's
own rules covers is reported by that rule: squawk only adds it for raw SQL (``op.execute``), which
those rules cannot see; the rest of squawk's safety rules become CM520.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from ci_migrate.checks.lint.base import Hit, RevisionView, Rule, is_version_table
from ci_migrate.facts import Statement
from ci_migrate.probe.recording import statement_table

RULE = Rule(
    id="CM520", name="squawk", severity="warning", summary="squawk reports a PostgreSQL migration risk",
    dialects=("postgresql",),
    fix="See squawk's page for the rule (https://squawkhq.com/docs/<rule>) for the safe way to write it.",
)
# squawk's rules about locks, rewrites and statements that fail; everything else it has is style
# or needs settings the deploy (not the migration) owns (timeouts).
SAFETY = {
    "adding-field-with-default", "adding-serial-primary-key-field", "ban-concurrent-index-creation-in-transaction",
    "ban-drop-database", "ban-truncate-cascade", "transaction-nesting", "ban-create-domain-with-constraint",
    "ban-alter-domain-with-add-constraint", "require-concurrent-reindex", "require-concurrent-partition-detach",
    "identifier-too-long",
}


def executable() -> str | None:
    """The squawk binary: on PATH, or next to this Python (a virtualenv's bin/)."""
    found = shutil.which("squawk")
    if found:
        return found
    beside = Path(sys.executable).parent / "squawk"
    return str(beside) if beside.is_file() and os.access(beside, os.X_OK) else None


def version(binary: str) -> str | None:
    proc = subprocess.run([binary, "--version"], capture_output=True, text=True, check=False)
    words = proc.stdout.split()
    return words[-1] if proc.returncode == 0 and words else None


def _script(view: RevisionView) -> tuple[str, list[Statement | None]]:
    """The SQL squawk reads for one revision, and for each of its lines the statement it belongs to."""
    lines: list[str] = ["BEGIN;"]
    owners: list[Statement | None] = [None]
    for statement in view.sql_statements:
        if is_version_table(statement):
            continue
        text = statement.text
        if not (text.endswith(";") or text.startswith("--")):
            text += ";"
        for line in text.splitlines():
            lines.append(line)
            owners.append(statement)
    lines.append("COMMIT;")
    owners.append(None)
    return "\n".join(lines) + "\n", owners


def lint(views: list[RevisionView], covered: dict[str, Rule]
         ) -> tuple[list[tuple[RevisionView, Rule, Hit]], str | None, str | None]:
    """Run squawk on the views' SQL. ``covered`` maps squawk rule names to the ci-migrate rule that
    reports the same risk. Returns ``([(view, rule, hit)], squawk version or None when not installed,
    why squawk's output could not be used or None)``."""
    binary = executable()
    views = [v for v in views if v.postgresql and v.rendered and v.sql_statements]
    if binary is None:
        return [], None, None
    found = version(binary)
    if not views:
        return [], found, None
    hits: list[tuple[RevisionView, Rule, Hit]] = []
    with tempfile.TemporaryDirectory(prefix="ci_migrate_squawk_") as tmp:
        owners: dict[str, tuple[RevisionView, list[Statement | None]]] = {}
        for view in views:
            path = Path(tmp) / f"{view.revision}.sql"
            text, lines = _script(view)
            path.write_text(text, encoding="utf-8")
            owners[path.name] = (view, lines)
        proc = subprocess.run([binary, "--reporter", "json", *sorted(owners)], cwd=tmp, capture_output=True,
                              text=True, check=False)
    try:
        violations = json.loads(proc.stdout or "[]")
    except json.JSONDecodeError:
        return [], found, f"squawk failed (exit {proc.returncode}): {(proc.stderr or proc.stdout).strip()[:200]}"
    seen: set[tuple[str, str, int | None]] = set()
    for violation in violations:
        owner = owners.get(Path(violation.get("file", "")).name)
        line = violation.get("line")
        if owner is None or not isinstance(line, int) or not 0 <= line < len(owner[1]):
            continue
        view, statement = owner[0], owner[1][line]
        if statement is None:
            continue
        result = _judge(view, statement, violation, covered)
        if result is None:
            continue
        rule, hit = result
        key = (rule.id, violation["rule_name"], hit.line)
        if key not in seen:
            seen.add(key)
            hits.append((view, rule, hit))
    return hits, found, None


def _judge(view: RevisionView, statement: Statement, violation: dict[str, Any],
           covered: dict[str, Rule]) -> tuple[Rule, Hit] | None:
    name = violation.get("rule_name", "")
    op = statement.op
    table = (op.table if op is not None and op.table else None) or statement_table(statement.text)
    if not view.existing(table):
        return None  # the plan creates this table: it is empty when the statement runs
    raw_sql = op is None or op.kind == "ExecuteSQLOp"
    if name in covered and not raw_sql:
        return None  # the ci-migrate rule judged the operation itself
    if name not in covered and name not in SAFETY:
        return None  # style
    rule = covered.get(name, RULE)
    first = statement.text.splitlines()[0]
    message = f"squawk {name}: {violation.get('message', '').strip()}"
    if violation.get("help"):
        message += f" ({violation['help'].strip().rstrip('.')}.)"
    fix = None if name in covered else f"See https://squawkhq.com/docs/{name} for the safe way to write it."
    origin = "op.execute(): " if op is not None and op.kind == "ExecuteSQLOp" else ""
    return rule, Hit(op.line if op is not None else None, f"{origin}{first[:90]} (squawk {name})",
                     f"{message}\nStatement: {first}",
                     fix=fix, bind=statement.bind, details={"squawk_rule": name, "statement": statement.text})
