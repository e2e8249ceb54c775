"""What the locks and roundtrip checks share: walking revisions one at a time on a database of their own.

Both checks take the revisions of their scope (``checks.<name>.scope`` in the config) in upgrade
order — ``pending``: ``ctx.data["pending"]`` as the plan check left it; ``all``: every revision,
base → heads, as ``ScriptDirectory.walk_revisions()`` orders them, reversed — and before each one
bring their own throwaway database to the revision's parents with ``alembic.command.upgrade``, so
the step they observe runs exactly that revision (alembic-internals.md §7).
"""

from __future__ import annotations

import contextlib
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from ci_migrate.alembic_env import alembic_session, script_directory, version_table_opts

# alembic.runtime.migration logs "Running upgrade a1 -> b2, msg" / "Running downgrade b2 -> a1, msg".
_RUNNING = re.compile(r"Running (?P<direction>upgrade|downgrade) (?P<src>.*?) -> (?P<dst>[^,\s]*)")
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

    @property
    def is_merge_point(self) -> bool:
        return len(self.parents) > 1


@dataclass
class Walk:
    """The revisions a check walks, in upgrade order, and the whole history's parent → children map."""

    scope: Literal["pending", "all"]
    steps: list[Step]
    children: dict[str, tuple[str, ...]] = field(default_factory=dict)

    def descendants(self, revision: str) -> set[str]:
        """Every revision that has ``revision`` as an ancestor (through ``down_revision``)."""
        found: set[str] = set()
        todo = list(self.children.get(revision, ()))
        while todo:
            rev = todo.pop()
            if rev not in found:
                found.add(rev)
                todo.extend(self.children.get(rev, ()))
        return found


def plan_walk(ctx: Any, check: str) -> Walk | None:
    """The revisions check ``check`` (``locks``/``roundtrip``) walks, or None when there is nothing to walk.

    Scope ``pending`` without ``ctx.data["pending"]`` (no plan ran) means nothing is pending. With a
    ``baseline`` configured, the baseline revision and its ancestors are left out (the replay starts
    there). Reads the history from the run's alembic ``ScriptDirectory`` inside the app context.
    """
    from alembic.util import to_tuple

    scope = ctx.settings.check_scope(check)
    pending = ctx.data.get("pending")
    if scope == "pending" and not pending:
        return None
    project = ctx.project
    with project.app_context():
        script = script_directory(project)
        history = list(reversed(list(script.walk_revisions())))  # base → heads, parents first
        before_baseline: set[str] = set()
        if ctx.settings.baseline is not None:
            with contextlib.suppress(Exception):  # an unknown baseline revision: the replay reports it
                before_baseline = {r.revision for r in script.iterate_revisions(ctx.settings.baseline.revision, "base")}
    by_id = {r.revision: r for r in history}
    order = list(pending) if scope == "pending" else [r.revision for r in history]
    steps = []
    for rev_id in order:
        rev = by_id.get(rev_id)
        if rev is None or rev_id in before_baseline:
            continue
        parents = to_tuple(rev.down_revision) or ()
        path = Path(rev.path).resolve() if rev.path else None
        steps.append(Step(revision=rev_id, message=rev.doc or None, path=path,
                          file=project.relative(path) if path else None, parents=tuple(parents),
                          requires=tuple(parents) + tuple(to_tuple(rev.dependencies) or ())))
    if not steps:
        return None
    return Walk(scope=scope, steps=steps, children={r.revision: tuple(sorted(r.nextrev)) for r in history})


def replay_failed(ctx: Any) -> str | None:
    """Why a walk makes no sense (the replay did not reach heads), or None."""
    replayed = ctx.result("replay")
    if replayed is None or any(f.rule_id in _REPLAY_FAILED for f in replayed.findings):
        return "skipped: the replay did not reach head"
    return None


def run_command(project: Any, sandbox: Any, fn: Callable[..., Any], *args: Any,
                listener: Callable[[Any], None] | None = None) -> None:
    """Run one ``alembic.command`` function (``upgrade``, ``downgrade``, ``stamp``) on ``sandbox``
    through the project's env.py; exceptions from alembic and the database propagate."""
    with alembic_session(project, sandbox.engines, listener=listener) as (config, _capture):
        fn(config, *args)


def bring_to_parents(project: Any, sandbox: Any, settings: Any, step: Step, *, fresh: bool) -> None:
    """Upgrade ``sandbox`` so that everything ``step`` needs (parents, ``depends_on``) is applied.

    On a ``fresh`` database with a ``baseline`` configured, the baseline schema is built and stamped
    first (as the replay does). Upgrading to a revision already applied is a no-op in alembic.
    """
    from alembic import command

    from ci_migrate.checks.replay import apply_baseline

    if fresh and settings.baseline is not None:
        with alembic_session(project, sandbox.engines) as (config, _capture):
            apply_baseline(project, sandbox, settings)
            command.stamp(config, settings.baseline.revision)
    heads = current_heads(project, sandbox)
    for revision in step.requires:
        if revision not in heads:
            run_command(project, sandbox, command.upgrade, revision)


def current_heads(project: Any, sandbox: Any) -> tuple[str, ...]:
    """The revisions in the default bind's version table (``MigrationContext.get_current_heads``)."""
    from alembic.migration import MigrationContext

    with sandbox.engines[None].connect() as conn:
        return tuple(MigrationContext.configure(conn, opts=version_table_opts(project)).get_current_heads())


class Statements:
    """Which revision alembic is running (from its "Running upgrade a -> b" log lines) and whether a
    statement belongs to it: statements outside a revision (env.py and version checks) and on the
    version table (``alembic_version`` by default) do not."""

    def __init__(self, version_table: str = "alembic_version"):
        self.running: str | None = None
        self.direction: str | None = None
        self.count = 0
        self._version = re.compile(rf"\b{re.escape(version_table)}\b", re.IGNORECASE)

    def reset(self) -> None:
        self.running = self.direction = None
        self.count = 0

    def on_log(self, record: Any) -> None:
        m = _RUNNING.match(record.getMessage())
        if m:
            self.direction = m["direction"]
            self.running = m["dst"] if self.direction == "upgrade" else m["src"].strip()

    def belongs(self, statement: str) -> bool:
        return self.running is not None and not self._version.search(statement)

    def on_statement(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        """``before_cursor_execute`` listener counting the revision's own statements."""
        if self.belongs(statement):
            self.count += 1


@contextlib.contextmanager
def listening(engines: Any, **listeners: Callable[..., Any]) -> Iterator[None]:
    """SQLAlchemy engine events (``before_cursor_execute=fn``…) on every engine for the block."""
    from sqlalchemy import event

    added = []
    try:
        for engine in engines:
            for name, fn in listeners.items():
                event.listen(engine, name, fn)
                added.append((engine, name, fn))
        yield
    finally:
        for engine, name, fn in added:
            event.remove(engine, name, fn)


class Origins:
    """Maps the code running right now to a revision file line: the innermost frame in one of them."""

    def __init__(self, steps: list[Step]):
        self.files = {str(s.path): s.revision for s in steps if s.path}
        self._real: dict[str, str] = {}

    def line(self) -> int | None:
        """1-based line of the revision file's frame on the current stack (the ``op.*`` call), or None."""
        from ci_migrate.checks.offline import revision_line

        return revision_line(self.files, self._real)


def ignored_inline(path: Path | None, line: int | None, rule_id: str) -> bool:
    """True when ``# ci-migrate: ignore[RULE] reason`` in the revision file silences ``rule_id`` on ``line``
    (or the whole revision), by the rules of :mod:`ci_migrate.checks.suppress`."""
    from ci_migrate.checks import suppress

    return suppress.read(path).find(rule_id, line) is not None


def def_line(path: Path | None, name: str) -> int | None:
    """1-based line of ``def <name>`` (``upgrade``/``downgrade``, multidb ``downgrade_…`` too) in a file."""
    if path is None:
        return None
    with contextlib.suppress(OSError):
        for number, text in enumerate(Path(path).read_text(encoding="utf-8").splitlines(), 1):
            if re.match(rf"def {name}\w*\(", text):
                return number
    return None


def failure_parts(exc: BaseException) -> tuple[str | None, str]:
    """``(failing SQL statement or None, the database's or exception's message)`` of a failed command."""
    statement = getattr(exc, "statement", None)
    error = str(getattr(exc, "orig", None) or exc).strip() or type(exc).__name__
    return (statement.strip() if statement else None), error


def short_sql(statement: str, limit: int = 160) -> str:
    """One line of SQL for a title: whitespace collapsed, cut at ``limit`` characters."""
    text = " ".join(statement.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
