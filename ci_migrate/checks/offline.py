"""Offline SQL per revision, and the alembic operations each revision performs.

Mirrors ``flask db upgrade --sql <from>:<to>``: ``alembic.command.upgrade(config, "<from>:<to>", sql=True)``
run through the project's own env.py (reference/alembic-internals.md §5). Offline mode never
connects: every bind is swapped for an engine made for the wanted dialect only. Multidb env.py
writes ``<bind>.sql`` files into the working directory (P6), so each run happens in a temp dir.

While alembic renders, two of its public methods are wrapped for the duration of the run (this is
the only glue here, kept in :func:`_hooks`):

* ``alembic.operations.base.AbstractOperations.invoke`` (``Operations.invoke`` before alembic 1.11)
  — every operation a revision performs,
  ``batch_alter_table`` ones included, with the line of the call in the revision file;
* ``alembic.ddl.impl.DefaultImpl.static_output`` — every SQL text alembic writes, which is split per
  revision at its ``-- Running upgrade a -> b`` markers.
"""

from __future__ import annotations

import contextlib
import io
import os
import re
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Container, Iterator, Sequence

from ci_migrate.alembic_env import alembic_session

_MARKER = re.compile(r"^-- Running upgrade .*?-> (?P<to>[^\s,]+(?:, [^\s,]+)*)\s*$")
_BIND = re.compile(r"Migrating database (?P<name>\S+)")
_TABLE = re.compile(
    r"^\s*(?:ALTER\s+TABLE(?:\s+ONLY)?|CREATE\s+(?:UNIQUE\s+)?INDEX(?:\s+CONCURRENTLY)?(?:\s+IF\s+NOT\s+EXISTS)?"
    r"\s+\S+\s+ON(?:\s+ONLY)?|DROP\s+INDEX\s+\S+\s+ON|CREATE\s+TABLE(?:\s+IF\s+NOT\s+EXISTS)?|"
    r"DROP\s+TABLE(?:\s+IF\s+EXISTS)?|INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?|"
    r"COMMENT\s+ON\s+(?:TABLE|COLUMN))\s+(?P<name>(?:[`\"][^`\"]+[`\"]|[\w$]+)(?:\.(?:[`\"][^`\"]+[`\"]|[\w$]+))?)",
    re.I,
)
TRANSACTION_WORDS = {"BEGIN;", "COMMIT;", "BEGIN TRANSACTION;", "START TRANSACTION;", "GO"}


def statement_table(sql: str) -> str | None:
    """The table a DDL/DML statement acts on (``ALTER TABLE "user" …`` → ``user``), lower-cased,
    schema dropped; None when the statement names no table this understands."""
    match = _TABLE.match(sql)
    if not match:
        return None
    name = match["name"].split(".")[-1]
    return name.strip('`"').lower()


@dataclass
class Statement:
    """One SQL text alembic wrote for a revision; ``op`` is the operation that produced it, if known."""

    text: str
    bind: str | None = None
    op: RecordedOp | None = None

    @property
    def is_version_table(self) -> bool:
        """An ``alembic_version`` statement (offline mode always uses that name, see P7)."""
        return statement_table(self.text) == "alembic_version"

    @property
    def is_transaction(self) -> bool:
        return self.text.strip().upper() in TRANSACTION_WORDS


@dataclass
class RecordedOp:
    """An alembic ``MigrateOperation`` a revision performed (``op.add_column(...)`` → ``AddColumnOp``).

    ``line`` is the 1-based line of the call in the revision file (None when it was made elsewhere);
    ``batch`` is true inside ``batch_alter_table`` (its SQL is written when the block ends).
    """

    op: Any
    revision: str
    bind: str | None = None
    line: int | None = None
    batch: bool = False

    @property
    def kind(self) -> str:
        return type(self.op).__name__

    @property
    def table(self) -> str | None:
        """The table the operation acts on, lower-cased (None for ``op.execute``)."""
        name = getattr(self.op, "table_name", None)
        if name is None and getattr(self.op, "table", None) is not None:  # BulkInsertOp
            name = getattr(self.op.table, "name", None)
        if name is None and getattr(self.op, "source_table", None) is not None:  # CreateForeignKeyOp
            name = self.op.source_table
        return str(name).lower() if name is not None else None


@dataclass
class RenderedRevision:
    """What offline rendering learned about one revision: its operations and SQL, or why it failed."""

    revision: str
    ops: list[RecordedOp] = field(default_factory=list)
    statements: list[Statement] = field(default_factory=list)
    error: str | None = None
    error_line: int | None = None  # line in the revision file where offline rendering failed
    done: bool = False

    @property
    def sql(self) -> str | None:
        """The revision's SQL as alembic wrote it, statement after statement (the run's own BEGIN/COMMIT
        left out); multidb: a ``-- bind: <name>`` line before each database's part. None if it failed."""
        if self.error is not None:
            return None
        parts: list[str] = []
        bind: Any = ()  # no bind yet
        binds = {s.bind for s in self.statements}
        for statement in self.statements:
            if len(binds) > 1 and statement.bind != bind:
                bind = statement.bind
                parts.append(f"-- bind: {bind or '(default)'}")
            parts.append(statement.text)
        return "\n".join(parts)


def revision_line(files: Container[str], realpaths: dict[str, str]) -> int | None:
    """1-based line of the innermost frame on the current stack whose file is a revision file.

    ``files`` holds the revision files' real paths; ``realpaths`` caches ``os.path.realpath`` of
    each frame's file name between calls. Used to point a finding at the ``op.*`` call that made it.
    """
    frame: Any = sys._getframe(1)
    while frame is not None:
        name = frame.f_code.co_filename
        real = realpaths.get(name)
        if real is None:
            real = realpaths[name] = os.path.realpath(name)
        if real in files:
            return frame.f_lineno
        frame = frame.f_back
    return None


class _Recorder:
    """Collects statements and operations, attributed to the revision being rendered."""

    def __init__(self, files: dict[str, str]):
        self.files = files  # realpath of a revision file -> revision id
        self.rendered: dict[str, RenderedRevision] = {}
        self.current: RenderedRevision | None = None
        self.last: str | None = None  # revision of the latest marker, rendered or not
        self.bind: str | None = None
        self.active: list[RecordedOp] = []
        self._paths: dict[str, str] = {}  # frame file name -> realpath

    def start_run(self) -> None:
        self.current, self.last, self.bind, self.active = None, None, None, []

    def close_segment(self) -> None:
        """The revision's part of the output ends: a BEGIN/COMMIT at its end is the run's (or the
        next revision's) transaction, not the revision's own."""
        if self.current is not None:
            statements = self.current.statements
            while statements and statements[-1].is_transaction:
                statements.pop()
        self.current = None

    def on_log(self, record: Any) -> None:
        if m := _BIND.match(record.getMessage()):
            self.close_segment()  # multidb: the next database's run starts
            name = m["name"]
            self.bind = None if name in ("<default>", "") else name

    def on_static(self, text: str) -> None:
        if m := _MARKER.match(text.strip()):
            self.close_segment()
            revision = self.last = m["to"].split(", ")[-1]
            found = self.rendered.setdefault(revision, RenderedRevision(revision))
            # a revision already rendered by an earlier run is rendered again only to reach the next one
            self.current = None if found.done else found
            return
        if self.current is not None:
            self.current.statements.append(Statement(text.strip(), self.bind, self.active[0] if self.active else None))

    def on_invoke(self, operations: Any, operation: Any) -> RecordedOp | None:
        if self.current is None:
            return None
        from alembic.operations.base import BatchOperations

        recorded = RecordedOp(operation, self.current.revision, self.bind, revision_line(self.files, self._paths),
                              isinstance(operations, BatchOperations))
        self.current.ops.append(recorded)
        return recorded


@contextlib.contextmanager
def _hooks(recorder: _Recorder) -> Iterator[None]:
    """Wrap ``AbstractOperations.invoke`` and ``DefaultImpl.static_output`` while alembic renders."""
    from alembic.ddl.impl import DefaultImpl
    from alembic.operations import base

    # alembic >= 1.11 defines invoke() on AbstractOperations; before, on Operations
    AbstractOperations = getattr(base, "AbstractOperations", base.Operations)
    invoke, static_output = AbstractOperations.invoke, DefaultImpl.static_output

    def recording_invoke(self: Any, operation: Any) -> Any:
        recorded = recorder.on_invoke(self, operation)
        if recorded is not None:
            recorder.active.append(recorded)
        try:
            return invoke(self, operation)
        finally:
            if recorded is not None:
                recorder.active.pop()

    def recording_output(self: Any, text: str) -> None:
        recorder.on_static(text)
        static_output(self, text)

    AbstractOperations.invoke = recording_invoke  # type: ignore[method-assign]
    DefaultImpl.static_output = recording_output  # type: ignore[method-assign]
    try:
        yield
    finally:
        AbstractOperations.invoke = invoke  # type: ignore[method-assign]
        DefaultImpl.static_output = static_output  # type: ignore[method-assign]


@contextlib.contextmanager
def _in_temp_dir() -> Iterator[None]:
    saved = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="ci_migrate_sql_") as tmp:
        os.chdir(tmp)
        try:
            yield
        finally:
            os.chdir(saved)


def offline_engines(url: Any, bind_keys: Sequence[str | None]) -> dict[str | None, Any]:
    """An engine per bind for ``url`` (a target's URL or a bare ``postgresql://``), never connected.

    The password is dropped: offline mode only needs the dialect. ``create_engine`` imports the
    dialect's DBAPI, so its driver must be installed.
    """
    import sqlalchemy as sa

    from ci_migrate.sandbox import normalize_url

    url = normalize_url(url)
    url = url.set(password=None) if url.password else url
    return {key: sa.create_engine(url) for key in bind_keys}


def chains(pending: Sequence[str], parents: dict[str, tuple[str, ...]]) -> list[tuple[str, list[str]]]:
    """Split ``pending`` (upgrade order) into runs alembic can render in one ``<from>:<to>`` range.

    Returns ``[(from, [revisions…])]``; ``from`` is the first revision's (first) down_revision, or
    ``base``. A revision continues the current run when its only down_revision is the previous one.
    """
    runs: list[tuple[str, list[str]]] = []
    for revision in pending:
        downs = parents.get(revision, ())
        if runs and downs == (runs[-1][1][-1],):
            runs[-1][1].append(revision)
        else:
            runs.append((downs[0] if downs else "base", [revision]))
    return runs


def render(project: Any, engines: dict[str | None, Any], pending: Sequence[str],
           parents: dict[str, tuple[str, ...]], files: dict[str, Path]) -> dict[str, RenderedRevision]:
    """Render the offline SQL of ``pending`` revisions (upgrade order) and record their operations.

    ``parents`` maps revision → down_revisions; ``files`` revision → file (for the lines of calls).
    A revision that cannot be rendered offline (it reads the database through ``op.get_bind()``,
    or needs reflection, as SQLite batch mode does) gets ``error`` set; rendering goes on with the
    next one. Returns ``{revision: RenderedRevision}`` for every revision of ``pending``.
    """
    from alembic import command

    recorder = _Recorder({os.path.realpath(p): r for r, p in files.items()})
    wanted = set(pending)
    for start, revisions in chains(pending, parents):
        while revisions:
            recorder.start_run()
            try:
                with alembic_session(project, engines, listener=recorder.on_log) as (config, _capture), \
                        _hooks(recorder), _in_temp_dir():
                    config.output_buffer = io.StringIO()
                    command.upgrade(config, f"{start}:{revisions[-1]}", sql=True)
            except Exception as exc:
                failed = recorder.last
                recorder.close_segment()
                _finish(recorder, wanted)
                if failed not in revisions:  # env.py, or a revision rendered on the way, failed
                    why = _reason(exc) if failed is None else (
                        f"revision {failed}, rendered on the way, failed: {_reason(exc)}")
                    for revision in revisions:
                        entry = recorder.rendered.setdefault(revision, RenderedRevision(revision))
                        entry.error, entry.statements = why, []
                    break
                entry = recorder.rendered[failed]
                entry.error, entry.statements = _reason(exc), []
                entry.error_line = _line_in(exc, recorder.files, failed)
                start, revisions = failed, revisions[revisions.index(failed) + 1:]
                continue
            recorder.close_segment()
            _finish(recorder, wanted)
            break
    out = {}
    for revision in pending:
        entry = recorder.rendered.setdefault(revision, RenderedRevision(revision, error="not rendered by alembic"))
        _attribute_batch_statements(entry)
        out[revision] = entry
    return out


def _finish(recorder: _Recorder, wanted: set[str]) -> None:
    """Revisions rendered by this run are final; later runs that pass through them leave them be."""
    for revision, entry in recorder.rendered.items():
        if revision in wanted:
            entry.done = True


def _line_in(exc: BaseException, files: dict[str, str], revision: str) -> int | None:
    """The deepest traceback line in ``revision``'s file."""
    import traceback

    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__)
             if files.get(os.path.realpath(f.filename)) == revision]
    return lines[-1] if lines else None


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"


def _attribute_batch_statements(entry: RenderedRevision) -> None:
    """Statements written when a ``batch_alter_table`` block ends belong to its operations: match
    them by table and by the object's name appearing in the statement, in order."""
    batch_ops = [o for o in entry.ops if o.batch]
    if not batch_ops:
        return
    for statement in entry.statements:
        if statement.op is not None or statement.is_transaction or statement.is_version_table:
            continue
        table = statement_table(statement.text)
        same_table = [o for o in batch_ops if o.table == table and o.bind == statement.bind]
        named = [o for o in same_table if (n := object_name(o.op)) and n.lower() in statement.text.lower()]
        if named or same_table:
            statement.op = (named or same_table)[0]


def object_name(op: Any) -> str | None:
    """The column, index or constraint an operation names (None when it names none)."""
    for attr in ("column_name", "index_name", "constraint_name"):
        if getattr(op, attr, None):
            return str(getattr(op, attr))
    column = getattr(op, "column", None)
    return getattr(column, "name", None)


def dialect_named(name: str) -> Any:
    """A SQLAlchemy dialect object for ``name`` (``postgresql`` → PGDialect), for compiling types."""
    from sqlalchemy.engine import make_url

    return make_url(f"{name}://").get_dialect()()
