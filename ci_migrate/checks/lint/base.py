"""What every lint rule shares: the :class:`Rule` description, the :class:`Hit` it returns, and the
:class:`RevisionView` it judges (one pending revision: its recorded alembic operations and statements
as data — recorded while it ran on the sandbox, or from its offline SQL — its source, and which
tables already exist when it runs)."""

from __future__ import annotations

import ast
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterator

from ci_migrate.facts import RecordedOp, Statement
from ci_migrate.probe.recording import TRANSACTION_WORDS, statement_table

_DATA_SQL = re.compile(r"^\s*(?:WITH\b.*?\)\s*)?(INSERT|UPDATE|DELETE|MERGE|COPY|TRUNCATE)\b", re.I | re.S)
_QUERY_SQL = re.compile(r"^\s*(?:SELECT|SHOW|PRAGMA|EXPLAIN|DESCRIBE|SET|WITH\b(?!.*\b(?:INSERT|UPDATE|DELETE)\b))\b",
                        re.I | re.S)
VERSION_TABLE = "alembic_version"


def is_transaction(statement: Statement) -> bool:
    return statement.text.strip().upper() in TRANSACTION_WORDS


def is_version_table(statement: Statement) -> bool:
    """An ``alembic_version`` statement (offline mode always uses that name)."""
    return statement_table(statement.text) == VERSION_TABLE


def is_query(statement: Statement) -> bool:
    """A statement that only reads (``SELECT``, ``SHOW``, ``PRAGMA``…): reflection and lookups a
    revision made while it ran."""
    return bool(_QUERY_SQL.match(statement.text))


def is_data_statement(statement: Statement) -> bool:
    return bool(_DATA_SQL.match(statement.text))


@dataclass(frozen=True)
class Rule:
    """A lint rule: stable ``id`` (CM5xx, docs/rules/<id>.md), default ``severity``, the ``dialects``
    it applies to (None: all), the squawk rules that report the same risk, and its safe recipe."""

    id: str
    name: str
    severity: str
    summary: str
    fix: str
    dialects: tuple[str, ...] | None = None
    squawk: tuple[str, ...] = ()

    def applies_to(self, dialect: str) -> bool:
        return self.dialects is None or dialect in self.dialects


@dataclass
class Hit:
    """One risk a rule found; becomes a Finding (file and revision are added by the lint check)."""

    line: int | None
    title: str
    message: str
    fix: str | None = None  # None: the rule's recipe
    severity: str | None = None  # None: the rule's severity
    bind: str | None = None
    details: dict[str, Any] = field(default_factory=dict)


@dataclass
class RevisionView:
    """One pending revision as the rules see it.

    ``new_tables`` are the tables this revision or an earlier pending one creates: they are empty
    when it runs, so locks and rewrites on them are harmless and rules leave them alone.
    """

    revision: str
    message: str | None
    file: Path | None
    rel_file: str | None
    dialect: str
    ops: list[RecordedOp]
    statements: list[Statement]
    new_tables: set[str]
    rendered: bool = True  # False when its operations are not fully known (ops may be partial)
    online: bool = False  # recorded while it ran on the sandbox (statements as sent, not offline SQL)
    sql_statements: list[Statement] = field(default_factory=list)  # the SQL squawk reads (offline when rendered)
    why_not: str | None = None  # why its operations are not known (not ``rendered``)
    _tree: ast.Module | None = None
    _source: str | None = None

    def existing(self, table: str | None) -> bool:
        """True when ``table`` was there before this plan (unknown tables count as existing)."""
        return table is None or table.lower() not in self.new_tables

    def of(self, *kinds: str) -> Iterator[RecordedOp]:
        """Recorded operations of the given alembic class names (``"AddColumnOp"``)."""
        return (o for o in self.ops if o.kind in kinds)

    @property
    def source(self) -> str:
        if self._source is None:
            self._source = self.file.read_text(encoding="utf-8", errors="replace") if self.file else ""
        return self._source

    @property
    def tree(self) -> ast.Module | None:
        if self._tree is None and self.source:
            try:
                self._tree = ast.parse(self.source)
            except SyntaxError:
                return None
        return self._tree

    def functions(self, prefix: str) -> list[ast.FunctionDef]:
        """Top-level functions named ``prefix`` or ``prefix_<bind>`` (multidb: ``downgrade_audit``)."""
        tree = self.tree
        if tree is None:
            return []
        return [n for n in tree.body if isinstance(n, ast.FunctionDef)
                and (n.name == prefix or n.name.startswith(prefix + "_"))]

    @property
    def transactional(self) -> bool:
        return self.dialect not in ("mysql", "mariadb")

    @property
    def postgresql(self) -> bool:
        return self.dialect == "postgresql"

    @property
    def mysql(self) -> bool:
        return self.dialect in ("mysql", "mariadb")


def sql_of(op: RecordedOp) -> str:
    """The SQL text of an ``op.execute()`` (a string, or a Core construct compiled by the probe)."""
    return op.sql or ""


def is_data_op(recorded: RecordedOp) -> bool:
    """``op.bulk_insert`` or an ``op.execute`` of INSERT/UPDATE/DELETE (string or Core construct)."""
    if recorded.kind == "BulkInsertOp":
        return True
    if recorded.kind != "ExecuteSQLOp":
        return False
    return bool(recorded.sql_is_dml) or bool(_DATA_SQL.match(sql_of(recorded)))


def data_table(recorded: RecordedOp) -> str | None:
    """The table a data operation writes to."""
    if recorded.kind == "BulkInsertOp":
        return recorded.table
    return recorded.data_table or statement_table(sql_of(recorded))


def column_name(recorded: RecordedOp) -> str:
    name = recorded.column_name or (recorded.column.name if recorded.column else None)
    return f"{recorded.table}.{name}" if name else str(recorded.table)


def quote_identifier(dialect: str, name: str) -> str:
    """``name`` quoted for ``dialect`` when it needs it (a reserved word such as ``user``, or mixed case),
    by that dialect's own ``IdentifierPreparer``."""
    from sqlalchemy.engine import make_url

    return make_url(f"{dialect}://").get_dialect()().identifier_preparer.quote(name)
