"""The Report: facts and findings of one run, the verdict, and the exit-code policy.

Everything a publisher renders comes from a :class:`Report`; checks produce :class:`CheckResult`
objects (findings plus the typed facts of that check) and never print. The JSON form
(``Report.model_dump_json()``) is versioned by :data:`SCHEMA_VERSION`; its JSON Schema is
``Report.model_json_schema()`` and is documented in ``docs/report.md``.
"""

from __future__ import annotations

import datetime as _dt
from typing import Annotated, Any, Literal, Union

from pydantic import BaseModel, ConfigDict, Field

# Table shapes live beside the schema change; re-exported here, where the publishers look.
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


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Finding(_Model):
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


# --------------------------------------------------------------------------- facts: graph


class RevisionInfo(_Model):
    """One revision file as found in the versions directory."""

    revision: str
    down_revisions: list[str] = Field(default_factory=list)
    message: str | None = None
    file: str
    branch_labels: list[str] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)


class HeadBranch(_Model):
    """A head and the revisions leading to it back to (excluding) the branch point it forks from.

    ``revisions`` is ordered head first.
    """

    head: str
    revisions: list[str]
    fork_point: str | None = None


class DirectoryGraph(_Model):
    """An extra script directory's history (``migrations:`` entry with a version table): its own
    revisions (base → head), heads and bases. ``env_py`` is its own env.py (None: the app's env.py
    runs its revisions)."""

    path: str
    version_table: str
    env_py: str | None = None
    revisions: list[RevisionInfo] = Field(default_factory=list)
    heads: list[str] = Field(default_factory=list)
    bases: list[str] = Field(default_factory=list)


class GraphFacts(_Model):
    """The app's history (``revisions`` … ``head_branches``) and each extra script directory's."""

    kind: Literal["graph"] = "graph"
    revisions: list[RevisionInfo] = Field(default_factory=list)  # base → head order when known
    heads: list[str] = Field(default_factory=list)
    bases: list[str] = Field(default_factory=list)
    branch_points: list[str] = Field(default_factory=list)
    merge_points: list[str] = Field(default_factory=list)
    head_branches: list[HeadBranch] = Field(default_factory=list)  # only when len(heads) > 1
    directories: list[DirectoryGraph] = Field(default_factory=list)


# --------------------------------------------------------------------------- facts: replay


class RevisionRun(_Model):
    """One revision applied (or failed) on the sandbox; ``duration_ms`` in milliseconds."""

    revision: str
    message: str | None = None
    bind: str | None = None
    status: Literal["applied", "failed"]
    duration_ms: float = 0.0
    statements: int | None = None


class DirectoryHeads(_Model):
    """An extra script directory's version table on the sandbox after the replay."""

    path: str
    version_table: str
    heads: list[str] = Field(default_factory=list)


class ReplayCache(_Model):
    """What the cached base snapshot did for a pull-request replay (ci_migrate.cache).

    ``state``: ``restored`` (the base came from the cache: ``revisions`` of it were not replayed),
    ``built`` (a full replay; the snapshot was kept for the next run), ``unsaved`` (kept for this
    run's walks only), ``full`` (a full replay; ``reason`` says why); ``how``: ``template``
    (PostgreSQL template database), ``dump`` (SQL dump) or ``copy`` (SQLite files); ``key``: the
    sha256 of what shapes the snapshot.
    """

    state: Literal["restored", "built", "unsaved", "full"]
    key: str | None = None
    how: str | None = None
    reason: str | None = None
    revisions: int = 0


class ReplayFacts(_Model):
    kind: Literal["replay"] = "replay"
    dialect: str
    start: str = "base"  # 'base' or the baseline revision
    cache: ReplayCache | None = None  # a pull request's base snapshot, when one applies
    revisions: list[RevisionRun] = Field(default_factory=list)  # the app's history, then each extra directory's
    heads_after: dict[str, list[str]] = Field(default_factory=dict)  # bind ('' = default) → heads
    directories: list[DirectoryHeads] = Field(default_factory=list)  # extra script directories, after the replay
    duration_s: float = 0.0


# --------------------------------------------------------------------------- facts: drift


class DiffItem(_Model):
    """One autogenerate difference, in words.

    ``kind`` is the alembic diff kind (``add_column``, ``modify_type``…); ``text`` is the sentence a
    person reads, e.g. "adds column `user.bio` VARCHAR(250), nullable".
    """

    kind: str
    table: str | None = None
    name: str | None = None
    old: str | None = None
    new: str | None = None
    text: str
    approximate: bool = False


class TableDiff(_Model):
    table: str
    change: Literal["added", "removed", "changed"]
    items: list[DiffItem] = Field(default_factory=list)


class BindDrift(_Model):
    """Drift of one bind: what the models have that the migrations lack, grouped per table."""

    bind: str | None = None
    tables: list[TableDiff] = Field(default_factory=list)
    upgrade_code: str = ""
    downgrade_code: str = ""
    imports: list[str] = Field(default_factory=list)
    ignored: int = 0
    # drift on tables a library creates outside migrations (CM303, checks/known_tables.yaml); not in `tables`
    known_tables: list[TableDiff] = Field(default_factory=list)


class DriftFacts(_Model):
    kind: Literal["drift"] = "drift"
    dialect: str
    approximate: bool = False  # sandbox dialect differs from the targets' dialect
    binds: list[BindDrift] = Field(default_factory=list)

    @property
    def has_drift(self) -> bool:
        return any(b.tables for b in self.binds)


# --------------------------------------------------------------------------- facts: plan


class PlannedRevision(_Model):
    revision: str
    message: str | None = None
    file: str | None = None
    author: str | None = None
    status: Literal["new", "modified", "pending"] = "pending"  # vs the base branch / target
    operations: list[str] = Field(default_factory=list)  # alembic operations in words
    sql: str | None = None
    sql_error: str | None = None  # why offline SQL could not be rendered


class PlanFacts(_Model):
    kind: Literal["plan"] = "plan"
    against: str  # 'base:<git ref>' or 'target:<name>'
    dialect: str | None = None
    current: list[str] = Field(default_factory=list)
    pending: list[PlannedRevision] = Field(default_factory=list)


# --------------------------------------------------------------------------- facts: lint


class LintFacts(_Model):
    kind: Literal["lint"] = "lint"
    revisions: list[str] = Field(default_factory=list)  # revisions the rules were run on
    rules: list[str] = Field(default_factory=list)  # rule ids evaluated
    squawk: str | None = None  # squawk version used, if any
    suppressed: int = 0  # findings silenced inline (# ci-migrate: ignore[ID] reason)


# --------------------------------------------------------------------------- facts: locks


class LockHeld(_Model):
    relation: str
    mode: str  # PostgreSQL lock mode, e.g. "AccessExclusiveLock"


class StatementLocks(_Model):
    statement: str
    duration_ms: float = 0.0
    locks: list[LockHeld] = Field(default_factory=list)
    rewrites: list[str] = Field(default_factory=list)


class RevisionLocks(_Model):
    """Locks one revision's upgrade takes on tables that existed before it (PostgreSQL)."""

    revision: str
    message: str | None = None
    file: str | None = None
    statements: int = 0
    access_exclusive: list[str] = Field(default_factory=list)  # pre-existing tables
    rewrites: list[str] = Field(default_factory=list)  # tables whose relfilenode changed
    locks: list[LockHeld] = Field(default_factory=list)  # strongest mode per relation
    steps: list[StatementLocks] = Field(default_factory=list)


class LockFacts(_Model):
    kind: Literal["locks"] = "locks"
    revisions: list[RevisionLocks] = Field(default_factory=list)


# --------------------------------------------------------------------------- facts: roundtrip


class RoundtripStep(_Model):
    revision: str
    message: str | None = None
    file: str | None = None
    status: Literal["ok", "leaky", "failed", "irreversible", "skipped"]
    detail: str | None = None
    differences: list[str] = Field(default_factory=list)


class RoundtripFacts(_Model):
    kind: Literal["roundtrip"] = "roundtrip"
    scope: Literal["pending", "all"] = "pending"
    steps: list[RoundtripStep] = Field(default_factory=list)


# --------------------------------------------------------------------------- facts: apply


class AppliedRevision(_Model):
    """One revision ``apply`` ran on a target; ``duration_ms`` in milliseconds.

    ``rolled_back``: it ran, but the version table read afterwards does not include it (multidb
    env.py rolls back every bind of the run together when one revision fails).
    """

    revision: str
    message: str | None = None
    bind: str | None = None
    status: Literal["applied", "failed", "rolled_back"]
    duration_ms: float = 0.0
    statements: int | None = None
    failed_statement: str | None = None
    error: str | None = None


class InterruptedOperation(_Model):
    """An operation of an interrupted revision, compared with the target's schema. ``state``: ``ran``
    (what it creates is there, what it drops is gone), ``partly``, ``not_run``, or ``unknown`` (what
    ``op.execute``, ``alter_column``… did cannot be told from the schema); ``inferred`` when the state
    follows from the order (an operation after it ran, or one before it did not)."""

    text: str
    kind: str
    line: int | None = None
    state: Literal["ran", "partly", "not_run", "unknown"]
    inferred: bool = False
    present: list[str] = Field(default_factory=list)  # its objects as it leaves them (created: there; dropped: gone)
    missing: list[str] = Field(default_factory=list)  # the others


class InterruptedRevision(_Model):
    """A pending revision an earlier ``apply`` started on the target and did not finish (its apply log):
    ``outcome`` None when that run ended inside it (killed), ``failed``, or ``ok`` when it finished but
    its version was never recorded. ``error``: why its operations could not be listed. With
    ``--resume-interrupted``: ``resumed``, and the objects ``skipped`` (there already) and ``created``."""

    revision: str
    message: str | None = None
    bind: str | None = None
    file: str | None = None
    started_at: str | None = None  # ISO 8601, UTC
    finished_at: str | None = None
    outcome: Literal["ok", "failed"] | None = None
    runner: str | None = None  # host/pid of that apply
    operations: list[InterruptedOperation] = Field(default_factory=list)
    error: str | None = None
    resumed: bool = False
    skipped: list[str] = Field(default_factory=list)
    created: list[str] = Field(default_factory=list)


class ApplyFacts(_Model):
    kind: Literal["apply"] = "apply"
    target: str
    dialect: str
    url: str  # password masked
    dry_run: bool = False
    from_heads: dict[str, list[str]] = Field(default_factory=dict)  # bind ('' = default) → heads
    to_heads: dict[str, list[str]] = Field(default_factory=dict)
    applied: list[AppliedRevision] = Field(default_factory=list)
    lock: str | None = None  # e.g. "pg_advisory_lock(123…)", None when no lock was needed
    lock_wait_s: float = 0.0
    pending: list[PlannedRevision] = Field(default_factory=list)  # the plan, base → head; SQL in dry runs
    retries: int = 0  # lock timeouts retried
    table_rows: dict[str, int | None] = Field(default_factory=dict)  # dry runs: rows of the touched tables (estimates)
    interrupted: list[InterruptedRevision] = Field(default_factory=list)  # what earlier runs left unfinished


Facts = Annotated[
    Union[GraphFacts, ReplayFacts, DriftFacts, PlanFacts, LintFacts, LockFacts, RoundtripFacts, ApplyFacts],
    Field(discriminator="kind"),
]


# --------------------------------------------------------------------------- results and report


class CheckResult(_Model):
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


class InterpreterInfo(_Model):
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


class SandboxInfo(_Model):
    dialect: str
    url: str  # password masked
    kept: bool = False


class Report(_Model):
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
