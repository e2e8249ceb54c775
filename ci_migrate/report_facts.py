"""The typed facts each check reports (graph, replay, drift, plan, lint, locks, round trip, apply).

They are part of the :class:`ci_migrate.report.Report` (``CheckResult.facts``, discriminated by
``kind``) and of its versioned JSON form; :mod:`ci_migrate.report` re-exports them, where the
checks and publishers import them from.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import BaseModel, ConfigDict, Field


class ReportModel(BaseModel):
    """Base of every model of the report: unknown fields are refused (the JSON form is versioned)."""

    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- facts: graph


class RevisionInfo(ReportModel):
    """One revision file as found in the versions directory."""

    revision: str
    down_revisions: list[str] = Field(default_factory=list)
    message: str | None = None
    file: str
    branch_labels: list[str] = Field(default_factory=list)
    depends_on: list[str] = Field(default_factory=list)


class HeadBranch(ReportModel):
    """A head and the revisions leading to it back to (excluding) the branch point it forks from.

    ``revisions`` is ordered head first.
    """

    head: str
    revisions: list[str]
    fork_point: str | None = None


class DirectoryGraph(ReportModel):
    """An extra script directory's history (``migrations:`` entry with a version table): its own
    revisions (base → head), heads and bases. ``env_py`` is its own env.py (None: the app's env.py
    runs its revisions)."""

    path: str
    version_table: str
    env_py: str | None = None
    revisions: list[RevisionInfo] = Field(default_factory=list)
    heads: list[str] = Field(default_factory=list)
    bases: list[str] = Field(default_factory=list)


class GraphFacts(ReportModel):
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


class RevisionRun(ReportModel):
    """One revision applied (or failed) on the sandbox; ``duration_ms`` in milliseconds."""

    revision: str
    message: str | None = None
    bind: str | None = None
    status: Literal["applied", "failed"]
    duration_ms: float = 0.0
    statements: int | None = None


class DirectoryHeads(ReportModel):
    """An extra script directory's version table on the sandbox after the replay."""

    path: str
    version_table: str
    heads: list[str] = Field(default_factory=list)


class ReplayCache(ReportModel):
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


class ReplayFacts(ReportModel):
    kind: Literal["replay"] = "replay"
    dialect: str
    start: str = "base"  # 'base' or the baseline revision
    cache: ReplayCache | None = None  # a pull request's base snapshot, when one applies
    revisions: list[RevisionRun] = Field(default_factory=list)  # the app's history, then each extra directory's
    heads_after: dict[str, list[str]] = Field(default_factory=dict)  # bind ('' = default) → heads
    directories: list[DirectoryHeads] = Field(default_factory=list)  # extra script directories, after the replay
    duration_s: float = 0.0


# --------------------------------------------------------------------------- facts: drift


class DiffItem(ReportModel):
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


class TableDiff(ReportModel):
    table: str
    change: Literal["added", "removed", "changed"]
    items: list[DiffItem] = Field(default_factory=list)


class BindDrift(ReportModel):
    """Drift of one bind: what the models have that the migrations lack, grouped per table."""

    bind: str | None = None
    tables: list[TableDiff] = Field(default_factory=list)
    upgrade_code: str = ""
    downgrade_code: str = ""
    imports: list[str] = Field(default_factory=list)
    ignored: int = 0
    # drift on tables a library creates outside migrations (CM303, checks/known_tables.yaml); not in `tables`
    known_tables: list[TableDiff] = Field(default_factory=list)


class DriftFacts(ReportModel):
    kind: Literal["drift"] = "drift"
    dialect: str
    approximate: bool = False  # sandbox dialect differs from the targets' dialect
    binds: list[BindDrift] = Field(default_factory=list)

    @property
    def has_drift(self) -> bool:
        return any(b.tables for b in self.binds)


# --------------------------------------------------------------------------- facts: plan


class PlannedRevision(ReportModel):
    revision: str
    message: str | None = None
    file: str | None = None
    author: str | None = None
    status: Literal["new", "modified", "pending"] = "pending"  # vs the base branch / target
    operations: list[str] = Field(default_factory=list)  # alembic operations in words
    sql: str | None = None
    sql_error: str | None = None  # why offline SQL could not be rendered


class PlanFacts(ReportModel):
    kind: Literal["plan"] = "plan"
    against: str  # 'base:<git ref>' or 'target:<name>'
    dialect: str | None = None
    current: list[str] = Field(default_factory=list)
    pending: list[PlannedRevision] = Field(default_factory=list)


# --------------------------------------------------------------------------- facts: lint


class LintFacts(ReportModel):
    kind: Literal["lint"] = "lint"
    revisions: list[str] = Field(default_factory=list)  # revisions the rules were run on
    rules: list[str] = Field(default_factory=list)  # rule ids evaluated
    squawk: str | None = None  # squawk version used, if any
    suppressed: int = 0  # findings silenced inline (# ci-migrate: ignore[ID] reason)


# --------------------------------------------------------------------------- facts: locks


class LockHeld(ReportModel):
    relation: str
    mode: str  # PostgreSQL lock mode, e.g. "AccessExclusiveLock"


class StatementLocks(ReportModel):
    statement: str
    duration_ms: float = 0.0
    locks: list[LockHeld] = Field(default_factory=list)
    rewrites: list[str] = Field(default_factory=list)


class RevisionLocks(ReportModel):
    """Locks one revision's upgrade takes on tables that existed before it (PostgreSQL)."""

    revision: str
    message: str | None = None
    file: str | None = None
    statements: int = 0
    access_exclusive: list[str] = Field(default_factory=list)  # pre-existing tables
    rewrites: list[str] = Field(default_factory=list)  # tables whose relfilenode changed
    locks: list[LockHeld] = Field(default_factory=list)  # strongest mode per relation
    steps: list[StatementLocks] = Field(default_factory=list)


class LockFacts(ReportModel):
    kind: Literal["locks"] = "locks"
    revisions: list[RevisionLocks] = Field(default_factory=list)


# --------------------------------------------------------------------------- facts: roundtrip


class RoundtripStep(ReportModel):
    revision: str
    message: str | None = None
    file: str | None = None
    status: Literal["ok", "leaky", "failed", "irreversible", "skipped"]
    detail: str | None = None
    differences: list[str] = Field(default_factory=list)


class RoundtripFacts(ReportModel):
    kind: Literal["roundtrip"] = "roundtrip"
    scope: Literal["pending", "all"] = "pending"
    steps: list[RoundtripStep] = Field(default_factory=list)


# --------------------------------------------------------------------------- facts: apply


class AppliedRevision(ReportModel):
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


class InterruptedOperation(ReportModel):
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


class InterruptedRevision(ReportModel):
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


class ApplyFacts(ReportModel):
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
