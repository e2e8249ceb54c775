"""The alembic operations each revision performs, and the SQL each one sends, recorded as data.

Two ways to watch a revision, sharing one recorder:

* **offline** (``flask db upgrade --sql``): ``alembic.command.upgrade(config, "<from>:<to>", sql=True)``
  through the project's env.py; the SQL is what alembic writes (``DefaultImpl.static_output``),
  split per revision at its ``-- Running upgrade a -> b`` markers. A revision that reads the
  database cannot render (it has no connection).
* **online**: while the revision really runs on the sandbox (the replay), the tracker says which
  revision runs; the statements are the ones SQLAlchemy sends (``before_cursor_execute`` on the
  ``Engine`` class), including what ``op.get_bind().execute(...)`` sends.

In both, ``alembic.operations.base.AbstractOperations.invoke`` (``Operations.invoke`` before
alembic 1.11) is wrapped for the duration: every operation a revision performs, ``batch_alter_table``
ones included, with the line of the call in the revision file.
"""

from __future__ import annotations

import contextlib
import os
import re
import sys
from dataclasses import dataclass, field
from typing import Any, Container, Dict, Iterator, List, Optional

from . import describe

_MARKER = re.compile(r"^-- Running upgrade .*?-> (?P<to>[^\s,]+(?:, [^\s,]+)*)\s*$")
_BIND = re.compile(r"Migrating database (?P<name>\S+)")
_TABLE = re.compile(
    r"^\s*(?:ALTER\s+TABLE(?:\s+ONLY)?|CREATE\s+(?:UNIQUE\s+)?INDEX(?:\s+CONCURRENTLY)?(?:\s+IF\s+NOT\s+EXISTS)?"
    r"\s+\S+\s+ON(?:\s+ONLY)?|DROP\s+INDEX\s+\S+\s+ON|CREATE\s+TABLE(?:\s+IF\s+NOT\s+EXISTS)?|"
    r"DROP\s+TABLE(?:\s+IF\s+EXISTS)?|INSERT\s+INTO|UPDATE|DELETE\s+FROM|TRUNCATE(?:\s+TABLE)?|"
    r"COMMENT\s+ON\s+(?:TABLE|COLUMN))\s+(?P<name>(?:[`\"][^`\"]+[`\"]|[\w$]+)(?:\.(?:[`\"][^`\"]+[`\"]|[\w$]+))?)",
    re.I,
)
_DDL = re.compile(r"^\s*(?:CREATE|ALTER|DROP|RENAME|INSERT\s+INTO\s+_alembic_tmp|PRAGMA)\b", re.I)
TRANSACTION_WORDS = {"BEGIN;", "COMMIT;", "BEGIN TRANSACTION;", "START TRANSACTION;", "GO"}


def statement_table(sql: str) -> Optional[str]:
    """The table a DDL/DML statement acts on (``ALTER TABLE "user" …`` → ``user``), lower-cased."""
    match = _TABLE.match(sql)
    return match["name"].split(".")[-1].strip('`"').lower() if match else None


def revision_line(files: Container[str], realpaths: Dict[str, str]) -> Optional[int]:
    """1-based line of the innermost frame on the current stack whose file is a revision file."""
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


@dataclass
class Recording:
    """What was learned about one revision: its operations and statements, or why it failed.

    ``statements`` are ``{"text", "bind", "op"}`` with ``op`` the index of the operation that sent
    it (None when none did, e.g. ``op.get_bind().execute``).
    """

    revision: str
    ops: List[Dict[str, Any]] = field(default_factory=list)
    statements: List[Dict[str, Any]] = field(default_factory=list)
    error: Optional[str] = None
    error_line: Optional[int] = None
    done: bool = False
    _batch: List[int] = field(default_factory=list, repr=False)

    def as_dict(self) -> Dict[str, Any]:
        return {"revision": self.revision, "ops": self.ops, "statements": self.statements, "error": self.error,
                "error_line": self.error_line}

    def close_segment(self) -> None:
        """A BEGIN/COMMIT at the end of the revision's output belongs to the run, not to the revision."""
        while self.statements and self.statements[-1]["text"].strip().upper() in TRANSACTION_WORDS:
            self.statements.pop()


class Recorder:
    """Collects operations and statements, attributed to the revision being watched."""

    def __init__(self, files: Dict[str, str], dialect: Any, wanted: Container[str]) -> None:
        self.files = files  # realpath of a revision file -> revision id
        self.dialect = dialect
        self.wanted = wanted
        self.recorded: Dict[str, Recording] = {}
        self.current: Optional[Recording] = None
        self.last: Optional[str] = None  # revision of the latest offline marker, watched or not
        self.bind: Optional[str] = None
        self.active: List[int] = []
        self.online = False
        self._paths: Dict[str, str] = {}

    # -- offline: alembic's log and written SQL
    def start_run(self) -> None:
        self.current, self.last, self.bind, self.active = None, None, None, []

    def close_segment(self) -> None:
        if self.current is not None:
            self.current.close_segment()
        self.current = None

    def on_log(self, record: Any) -> None:
        m = _BIND.match(record.getMessage())
        if m:
            self.close_segment()  # multidb: the next database's run starts
            self.bind = None if m["name"] in ("<default>", "") else m["name"]

    def on_static(self, text: str) -> None:
        m = _MARKER.match(text.strip())
        if m:
            self.close_segment()
            revision = self.last = m["to"].split(", ")[-1]
            found = self.recorded.setdefault(revision, Recording(revision))
            self.current = None if found.done or revision not in self.wanted else found
            return
        if self.current is not None:
            self.add_statement(text.strip())

    # -- online: the tracker's enter/leave and the statements sent
    def on_run(self, event: str, run: Any) -> None:
        self.online = True
        if event == "enter" and run.direction == "upgrade" and run.revision in self.wanted:
            self.current = self.recorded.setdefault(run.revision, Recording(run.revision))
            self.bind = run.bind
        elif event == "leave" and self.current is not None and self.current.revision == run.revision:
            if run.status == "failed" and run.failure:
                self.current.error = run.failure.get("error")
                self.current.error_line = run.failure.get("line")
            self.current.done = True
            self.current = None

    def on_cursor(self, conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if self.current is not None:
            autocommit = conn.get_execution_options().get("isolation_level") == "AUTOCOMMIT"
            self.add_statement(statement.strip(), autocommit=autocommit)

    # -- both
    def add_statement(self, text: str, autocommit: bool = False) -> None:
        assert self.current is not None
        op = self.active[0] if self.active else None
        entry: Dict[str, Any] = {"text": text, "bind": self.bind, "op": op}
        if autocommit:
            entry["autocommit"] = True
            entry["line"] = revision_line(self.files, self._paths)
        elif op is None and self.online:
            entry["line"] = revision_line(self.files, self._paths)
        self.current.statements.append(entry)

    def on_invoke(self, operations: Any, operation: Any) -> Optional[int]:
        if self.current is None:
            return None
        from alembic.operations.base import BatchOperations

        batch = isinstance(operations, BatchOperations)
        data = describe.operation(operation, self.dialect, line=revision_line(self.files, self._paths),
                                  batch=batch, bind=self.bind)
        data["objects"] = _objects(operations, operation)
        self.current.ops.append(data)
        return len(self.current.ops) - 1

    def finish(self) -> None:
        """Revisions watched so far are final; later offline runs that pass through them leave them be."""
        for revision, entry in self.recorded.items():
            if revision in self.wanted:
                entry.done = True
        for entry in self.recorded.values():
            _attribute_batch_statements(entry)


def _objects(operations: Any, operation: Any) -> Optional[List[Dict[str, Any]]]:
    """What the operation creates or drops (:func:`.objects.of_operation`); None when unknown."""
    from .objects import of_operation

    try:
        return of_operation(operations, operation)
    except Exception:  # noqa: BLE001 - an operation alembic itself will reject; the run reports that
        return None


@contextlib.contextmanager
def hooks(recorder: Recorder, *, offline: bool) -> Iterator[None]:
    """Wrap ``AbstractOperations.invoke`` (and, offline, ``DefaultImpl.static_output``; online, listen to
    ``before_cursor_execute`` on the Engine class) for the block."""
    from alembic.ddl.impl import DefaultImpl
    from alembic.operations import base
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    AbstractOperations = getattr(base, "AbstractOperations", base.Operations)
    invoke, static_output = AbstractOperations.invoke, DefaultImpl.static_output

    def recording_invoke(self: Any, operation: Any) -> Any:
        index = recorder.on_invoke(self, operation)
        if index is not None:
            recorder.active.append(index)
        try:
            return invoke(self, operation)
        finally:
            if index is not None and recorder.active:
                recorder.active.pop()

    def recording_output(self: Any, text: str) -> None:
        recorder.on_static(text)
        static_output(self, text)

    AbstractOperations.invoke = recording_invoke  # type: ignore[method-assign]
    if offline:
        DefaultImpl.static_output = recording_output  # type: ignore[method-assign]
    else:
        event.listen(Engine, "before_cursor_execute", recorder.on_cursor)
    try:
        yield
    finally:
        AbstractOperations.invoke = invoke  # type: ignore[method-assign]
        if offline:
            DefaultImpl.static_output = static_output  # type: ignore[method-assign]
        else:
            event.remove(Engine, "before_cursor_execute", recorder.on_cursor)


def _attribute_batch_statements(entry: Recording) -> None:
    """Statements written when a ``batch_alter_table`` block ends belong to its operations: match them
    by table and by the object's name appearing in the statement, in order."""
    batch = [i for i, o in enumerate(entry.ops) if o.get("batch")]
    if not batch:
        return
    for statement in entry.statements:
        text = statement["text"]
        if statement["op"] is not None or text.strip().upper() in TRANSACTION_WORDS or not _DDL.match(text):
            continue  # a batch block writes DDL; rows read or written next to it are the revision's own
        table = statement_table(text)
        if table == "alembic_version":
            continue
        same = [i for i in batch if entry.ops[i]["table"] == table and entry.ops[i]["bind"] == statement["bind"]]
        named = [i for i in same if entry.ops[i].get("object") and entry.ops[i]["object"].lower() in text.lower()]
        if named or same:
            statement["op"] = (named or same)[0]
