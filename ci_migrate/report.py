"""The Report: facts and findings of one run, the verdict, and the exit-code policy.

Everything a publisher renders comes from a :class:`Report`; checks produce :class:`CheckResult`
objects (findings plus the typed facts of that check) and never print. The JSON form
(``Report.model_dump_json()``) is versioned by :data:`SCHEMA_VERSION`; its JSON Schema is
``Report.model_json_schema()`` and is documented in ``docs/report.md``.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any, Literal

from pydantic import Field

# Each check's facts and the table shapes live in modules of their own; re-exported here, where the
# checks and publishers look.
from ci_migrate.report_facts import (  # noqa: F401
    AppliedRevision,
    ApplyFacts,
    BindDrift,
    DiffItem,
    DirectoryGraph,
    DirectoryHeads,
    DriftFacts,
    Facts,
    GraphFacts,
    HeadBranch,
    InterruptedOperation,
    InterruptedRevision,
    LintFacts,
    LockFacts,
    LockHeld,
    PlanFacts,
    PlannedRevision,
    ReplayCache,
    ReplayFacts,
    ReportModel,
    RevisionInfo,
    RevisionLocks,
    RevisionRun,
    RoundtripFacts,
    RoundtripStep,
    StatementLocks,
    TableDiff,
)
from ci_migrate.schema_change import ColumnSchema, SchemaChangeFacts, TableSchema  # noqa: F401

SCHEMA_VERSION = "1"

Severity = Literal["info", "warning", "error"]
SEVERITY_RANK: dict[str, int] = {"info": 0, "warning": 1, "error": 2}

CheckStatus = Literal["passed", "warning", "failed", "skipped", "error"]

# Exit codes (DESIGN.md "Errors are for people").
EXIT_OK = 0
EXIT_FINDINGS = 1
EXIT_USAGE = 2
EXIT_ENVIRONMENT = 3


class Finding(ReportModel):
    """One judgement a check makes.

    ``rule_id`` is stable (``CM101``-style) and documented in ``docs/rules/<rule_id>.md``.
    ``file`` is relative to the repository root (POSIX separators); ``line`` is 1-based.
    ``fix`` is the suggested remedy (a command or a recipe), shown apart from ``message``.
    """

    check: str
    rule_id: str
    severity: Severity
    title: str
    message: str = ""
    file: str | None = None
    line: int | None = None
    revision: str | None = None
    bind: str | None = None
    fix: str | None = None
    details: dict[str, Any] = Field(default_factory=dict)


# --------------------------------------------------------------------------- results and report


class CheckResult(ReportModel):
    """Outcome of one check: ``status``, a one-line ``summary``, findings and the check's facts."""

    name: str
    status: CheckStatus
    summary: str
    duration_s: float = 0.0
    findings: list[Finding] = Field(default_factory=list)
    facts: Facts | None = None

    @staticmethod
    def status_for(findings: list[Finding]) -> CheckStatus:
        """``failed`` if any error, ``warning`` if any warning, else ``passed``."""
        worst = max((SEVERITY_RANK[f.severity] for f in findings), default=-1)
        return "failed" if worst >= 2 else "warning" if worst == 1 else "passed"


class InterpreterInfo(ReportModel):
    """The interpreter the probe ran in and the app stack found there.

    ``source`` says how it was chosen (``--python``, ``CI_MIGRATE_PYTHON``, ``$VIRTUAL_ENV``,
    ``.venv/ in the project``, ``ci-migrate's own``…); ``packages`` maps distribution → version
    (Flask, Flask-SQLAlchemy, Flask-Migrate, alembic, SQLAlchemy, the drivers found).
    """

    path: str
    source: str
    python: str | None = None
    packages: dict[str, str] = Field(default_factory=dict)

    @property
    def stack(self) -> str:
        """``Python 3.11.7, Flask 3.1.3, …`` for a header line."""
        parts = [f"Python {self.python}"] if self.python else []
        parts += [f"{name} {version}" for name, version in self.packages.items()]
        return ", ".join(parts)


class SandboxInfo(ReportModel):
    dialect: str
    url: str  # password masked
    kept: bool = False


class Report(ReportModel):
    """Facts + findings + verdict of one ``check``/``plan``/``apply`` run (JSON schema version 1)."""

    schema_version: Literal["1"] = SCHEMA_VERSION
    tool: str = "ci-migrate"
    version: str
    command: str = "check"
    key: str = ""  # identifies app + migrations dir + target (sticky comment key)
    app: str | None = None
    migrations: str | None = None
    target: str | None = None
    fail_on: Literal["error", "warning"] = "error"
    started_at: _dt.datetime = Field(default_factory=lambda: _dt.datetime.now(_dt.timezone.utc))
    duration_s: float = 0.0
    interpreter: InterpreterInfo | None = None
    sandbox: SandboxInfo | None = None
    checks: list[CheckResult] = Field(default_factory=list)
    tables: list[TableSchema] = Field(default_factory=list)
    #: What the pending revisions do to the schema (sandbox reflected before and after them);
    #: ``None`` when no revision is pending or the check that fills it did not run.
    schema_change: SchemaChangeFacts | None = None
    notes: list[str] = Field(default_factory=list)

    # ---- derived views (not serialized)
    @property
    def findings(self) -> list[Finding]:
        """All findings, most severe first, in check order within a severity."""
        items = [f for c in self.checks for f in c.findings]
        return sorted(items, key=lambda f: -SEVERITY_RANK[f.severity])

    def check(self, name: str) -> CheckResult | None:
        return next((c for c in self.checks if c.name == name), None)

    def _facts(self, name: str) -> Any:
        c = self.check(name)
        return c.facts if c else None

    @property
    def graph(self) -> GraphFacts | None:
        return self._facts("graph")

    @property
    def replay(self) -> ReplayFacts | None:
        return self._facts("replay")

    @property
    def drift(self) -> DriftFacts | None:
        return self._facts("drift")

    @property
    def plan(self) -> PlanFacts | None:
        return self._facts("plan")

    @property
    def locks(self) -> LockFacts | None:
        return self._facts("locks")

    @property
    def roundtrip(self) -> RoundtripFacts | None:
        return self._facts("roundtrip")

    @property
    def apply(self) -> ApplyFacts | None:
        return self._facts("apply")

    @property
    def failing(self) -> list[Finding]:
        """Findings at or above ``fail_on``."""
        floor = SEVERITY_RANK[self.fail_on]
        return [f for f in self.findings if SEVERITY_RANK[f.severity] >= floor]

    @property
    def verdict(self) -> Literal["passed", "failed"]:
        bad = self.failing or any(c.status == "error" for c in self.checks)
        return "failed" if bad else "passed"

    @property
    def exit_code(self) -> int:
        """0 when the verdict is passed, else 1 (findings at/above ``fail_on``)."""
        return EXIT_OK if self.verdict == "passed" else EXIT_FINDINGS

    def to_json(self, indent: int | None = 2) -> str:
        """Serialize; adds the derived ``verdict`` for consumers that do not recompute it."""
        data = self.model_dump(mode="json")
        data["verdict"] = self.verdict
        import json

        return json.dumps(data, indent=indent)

    @classmethod
    def from_json(cls, text: str) -> "Report":
        """Parse a report written by :meth:`to_json`; raises ``pydantic.ValidationError``."""
        import json

        data = json.loads(text)
        data.pop("verdict", None)
        return cls.model_validate(data)
