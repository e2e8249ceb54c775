"""CM514: MySQL/MariaDB — a revision runs several DDL statements, which cannot roll back together."""

from __future__ import annotations

import re
from typing import Iterator

from ci_migrate.checks.lint.base import Hit, RevisionView, Rule, is_query, is_transaction, is_version_table
from ci_migrate.probe.recording import statement_table

RULE = Rule(
    id="CM514", name="non-transactional-ddl", severity="info",
    summary="runs several DDL statements on existing tables (MySQL/MariaDB cannot roll them back)",
    dialects=("mysql", "mariadb"),
    fix=("Give changes that can fail on production data (NOT NULL, unique, type changes, foreign keys) a revision "
         "each, so a failure leaves nothing half-applied; or make the upgrade re-runnable (check with "
         "sa.inspect(op.get_bind()) before each step). After a failure, undo the applied statements by hand before "
         "running the upgrade again."),
)
_DML = re.compile(r"^\s*(INSERT|UPDATE|DELETE|SELECT|REPLACE)\b", re.I)


def check(view: RevisionView) -> Iterator[Hit]:
    ddl = [s for s in view.statements
           if not (is_transaction(s) or is_version_table(s) or is_query(s) or _DML.match(s.text) or s.text.startswith("--"))
           and view.existing(statement_table(s.text))]
    if len(ddl) < 2:
        return
    line = next((s.op.line for s in ddl if s.op is not None and s.op.line), None)
    first = ddl[0].text.splitlines()[0]
    yield Hit(line, f"{len(ddl)} DDL statements on existing tables; MySQL/MariaDB cannot roll them back together",
              "MySQL/MariaDB commit every DDL statement implicitly: if statement k fails, statements 1..k-1 stay "
              f"applied while alembic_version still names {view.revision}'s parent, and running the upgrade again "
              f"fails on the first one (e.g. \"Duplicate column name\"). First statement: {first}",
              details={"statements": [s.text for s in ddl]})
