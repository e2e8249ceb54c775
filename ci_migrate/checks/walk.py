"""What the locks and roundtrip checks share: which revisions they walk, one at a time.

Both take the revisions of their scope (``checks.<name>.scope`` in the config) in upgrade order —
``pending``: the revisions :mod:`.pending` found; ``all``: every revision, base → heads, as
``ScriptDirectory.walk_revisions()`` orders them, reversed — and the probe walks them on databases
of their own (:mod:`ci_migrate.probe.stepwise`). With a ``baseline``, the baseline revision and
its ancestors are left out (every walk database starts there).
"""

from __future__ import annotations

import contextlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

_REPLAY_FAILED = ("CM201", "CM202", "CM203")


@dataclass
class Step:
    """One revision to walk. ``path`` is the absolute revision file, ``file`` the same relative to the
    repository root; ``parents`` its ``down_revision`` ids; ``requires`` parents plus ``depends_on``."""

    revision: str
    message: str | None
    path: Path | None
    file: str | None
    parents: tuple[str, ...]
    requires: tuple[str, ...]
    tables: dict[str, list[str]] | None = None  # bind ('' = default) → tables it touches; None: unknown

    @property
    def is_merge_point(self) -> bool:
        return len(self.parents) > 1

    @property
    def label(self) -> str:
        return self.revision + (f" ({self.message})" if self.message else "")

    def request(self) -> dict[str, Any]:
        """The step as the probe takes it."""
        return {"revision": self.revision, "parents": list(self.parents), "requires": list(self.requires),
                "path": str(self.path) if self.path else None, "tables": self.tables}


@dataclass
class Walk:
    """The revisions a check walks, in upgrade order."""

    scope: Literal["pending", "all"]
    steps: list[Step]

    def path_of(self, revision: str | None) -> Path | None:
        return next((s.path for s in self.steps if s.revision == revision), None)


def plan_walk(ctx: Any, check: str) -> Walk | None:
    """The revisions check ``check`` (``locks``/``roundtrip``) walks, or None when there is nothing to walk."""
    scope = ctx.settings.check_scope(check)
    pending = ctx.pending.revisions if ctx.pending is not None else []
    if scope == "pending" and not pending:
        return None
    history = ctx.history
    before_baseline: set[str] = set()
    baseline = ctx.settings.baseline
    if baseline is not None:  # the walk databases start there: the baseline revision, else the base's or the heads
        start = [baseline.revision] if baseline.revision else (
            ctx.pending.current if ctx.runtime.base_models is not None else list(history.heads))
        before_baseline = history.ancestors(start)
    by_id = history.by_id
    order = list(pending) if scope == "pending" else history.order
    steps = []
    for rev_id in order:
        rev = by_id.get(rev_id)
        if rev is None or rev_id in before_baseline:
            continue
        steps.append(Step(revision=rev_id, message=rev.message, path=rev.path,
                          file=ctx.project.relative(rev.path) if rev.path else None, parents=rev.down_revisions,
                          requires=rev.down_revisions + rev.depends_on, tables=touched_tables(ctx.recorded.get(rev_id))))
    return Walk(scope=scope, steps=steps) if steps else None


_HARMLESS = re.compile(r"^\s*(?:SELECT|SHOW|PRAGMA|BEGIN|COMMIT|ROLLBACK|SET|SAVEPOINT|RELEASE|START\s+TRANSACTION)\b",
                       re.IGNORECASE)


def touched_tables(recorded: Any) -> dict[str, list[str]] | None:
    """The tables a revision's upgrade touched, per bind (``''`` = default), from what the replay
    recorded (:class:`ci_migrate.facts.Recorded`, online): each operation's table (and a renamed
    table's new name), and the table each statement names. None when that is not known for sure —
    no online recording, an operation without a table, or a statement whose table cannot be read
    (then the round trip reflects every table)."""
    from ci_migrate.probe.recording import statement_table

    if recorded is None or not recorded.online or recorded.error:
        return None
    found: dict[str, set[str]] = {}
    for op in recorded.ops:
        if op.table is None and op.kind != "ExecuteSQLOp":
            return None
        names = found.setdefault(op.bind or "", set())
        names.update(n for n in (op.table, op.new_table_name) if n)
    for statement in recorded.statements:
        table = statement_table(statement.text)
        if table is not None:
            found.setdefault(statement.bind or "", set()).add(table)
        elif not _HARMLESS.match(statement.text):
            return None
    return {bind: sorted(names) for bind, names in found.items()}


def walks_from_base(ctx: Any) -> int:
    """How many walk databases this run will ask the base snapshot for: one for each of the lock
    trace (PostgreSQL sandboxes only) and the round trip that runs over the pending revisions."""
    dialect = ctx.runtime.sandboxes.dialect if ctx.runtime.sandboxes is not None else None
    return sum(1 for name in ("locks", "roundtrip") if name in ctx.checks
               and ctx.settings.check_scope(name) == "pending" and (name != "locks" or dialect == "postgresql"))


@contextlib.contextmanager
def databases(ctx: Any, walk: Walk) -> Any:
    """For the block, the walk's databases come from the base snapshot (at the base's heads) when the
    walk is over a pull request's pending revisions and the replay kept or restored a snapshot."""
    snapshot = ctx.data.get("base_snapshot")
    use = snapshot is not None and snapshot.entry is not None and walk.scope == "pending" \
        and ctx.pending is not None and ctx.pending.base_ref
    if use:
        ctx.runtime.walk_sandbox = snapshot.fresh_sandbox
    try:
        yield
    finally:
        ctx.runtime.walk_sandbox = None


def baseline_request(ctx: Any) -> dict[str, Any] | None:
    """What the probe does on a fresh walk database: ``create_all`` and/or stamp the baseline revision
    (a schema file, or the base branch's models, were loaded by the host when it made the database)."""
    from ci_migrate.checks.replay import baseline_request as replay_baseline

    return replay_baseline(ctx)


def replay_failed(ctx: Any) -> str | None:
    """Why a walk makes no sense (the replay did not reach heads), or None."""
    replayed = ctx.result("replay")
    if replayed is None or replayed.status == "error" or any(f.rule_id in _REPLAY_FAILED for f in replayed.findings):
        return "skipped: the replay did not reach head"
    return None


def def_line(path: Path | None, name: str) -> int | None:
    """1-based line of ``def <name>`` (``upgrade``/``downgrade``, multidb ``downgrade_…`` too) in a file."""
    if path is None:
        return None
    with contextlib.suppress(OSError):
        for number, text in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            if re.match(rf"def {name}\w*\(", text):
                return number
    return None


def short_sql(statement: str, limit: int = 160) -> str:
    """One line of SQL for a title: whitespace collapsed, cut at ``limit`` characters."""
    text = " ".join(statement.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
