"""Which revision runs, how long it takes, how many statements it sends and how it fails.

Told by the revision modules themselves, not by alembic's log text or by callbacks env.py may not
forward: as each revision file is loaded (once per run), its ``upgrade()`` and ``downgrade()`` are
wrapped (:meth:`Tracker.wrap`). The wrapper tells the host which revision is running (a ``running``
event, so a run that dies in it can name it), times it, counts its statements (SQLAlchemy's
``before_cursor_execute`` event on the ``Engine`` class), and records a failure with the revision
file's line, the failing statement and the database's error.
"""

from __future__ import annotations

import contextlib
import functools
import os
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional

Emit = Callable[..., None]


@dataclass
class Run:
    """One call of a revision's ``upgrade()``/``downgrade()``; ``duration_ms`` in milliseconds."""

    revision: str
    direction: str  # upgrade | downgrade
    bind: Optional[str]
    file: Optional[str]  # relative to the repository root
    message: Optional[str]
    started: float = 0.0
    duration_ms: float = 0.0
    statements: int = 0
    status: str = "running"  # running | ok | failed
    failure: Optional[Dict[str, Any]] = None

    def as_dict(self) -> Dict[str, Any]:
        return {"revision": self.revision, "direction": self.direction, "bind": self.bind, "file": self.file,
                "message": self.message, "duration_ms": self.duration_ms, "statements": self.statements,
                "status": self.status, "failure": self.failure}


def failure_of(exc: BaseException, path: Optional[Path], root: Path) -> Dict[str, Any]:
    """``{statement, error, exception, line, file}`` of a failed revision or command: the failing SQL
    statement and the database's message (DBAPI errors), else the exception's; ``line`` is the
    innermost line of ``path`` (the revision file) in the traceback."""
    statement = getattr(exc, "statement", None)
    orig = getattr(exc, "orig", None)
    error = str(orig or exc).strip() or type(exc).__name__
    line = None
    if path is not None:
        target = os.path.realpath(path)
        for frame in traceback.extract_tb(exc.__traceback__):
            if os.path.realpath(frame.filename) == target:
                line = frame.lineno
        if isinstance(exc, SyntaxError) and exc.filename and os.path.realpath(exc.filename) == target:
            line = exc.lineno
    return {"statement": statement.strip() if isinstance(statement, str) else None, "error": error,
            "exception": type(orig or exc).__name__, "line": line,
            "file": os.path.relpath(path, root).replace(os.sep, "/") if path is not None else None}


class Tracker:
    """Follows revision calls for the whole probe run; :attr:`runs` is reset per request."""

    def __init__(self, emit: Emit, root: Path) -> None:
        self.emit, self.root = emit, root
        self.phase = "load"
        self.runs: List[Run] = []
        self.current: Optional[Run] = None
        self.listeners: List[Callable[[str, Optional[Run]], None]] = []  # (event 'enter'|'leave', run)
        self.muted = False  # inside :meth:`own_statements`
        self._installed = False

    def install(self) -> None:
        """Count statements of the running revision, for every engine of the process."""
        from sqlalchemy import event
        from sqlalchemy.engine import Engine

        if not self._installed:
            event.listen(Engine, "before_cursor_execute", self._on_statement)
            self._installed = True

    def start(self, phase: str) -> None:
        self.phase, self.runs, self.current = phase, [], None

    @contextlib.contextmanager
    def own_statements(self) -> Iterator[None]:
        """Statements sent in the block are ci-migrate's (the apply log, reflection), not the running
        revision's: they are neither counted nor followed."""
        saved, self.muted = self.muted, True
        try:
            yield
        finally:
            self.muted = saved

    def _on_statement(self, *args: Any) -> None:
        if self.current is not None and not self.muted:
            self.current.statements += 1

    def wrap(self, module: Any, path: Path) -> None:
        """Wrap ``module.upgrade`` / ``module.downgrade`` (alembic calls them by these names)."""
        revision = str(getattr(module, "revision", "") or "")
        doc = (module.__doc__ or "").strip().split("\n\n")[0] or None
        for direction in ("upgrade", "downgrade"):
            fn = getattr(module, direction, None)
            if callable(fn) and not getattr(fn, "_ci_migrate_wrapped", False):
                setattr(module, direction, self._wrapped(fn, revision, direction, path, doc))

    def _wrapped(self, fn: Callable[..., Any], revision: str, direction: str, path: Path,
                 doc: Optional[str]) -> Callable[..., Any]:
        tracker = self

        @functools.wraps(fn)
        def call(*args: Any, **kw: Any) -> Any:
            bind = kw.get("engine_name", args[0] if args else None)
            run = tracker.enter(revision, direction, bind or None, path, doc)
            try:
                result = fn(*args, **kw)
            except BaseException as exc:
                tracker.leave(run, exc, path)
                raise
            tracker.leave(run, None, path)
            return result

        call._ci_migrate_wrapped = True  # type: ignore[attr-defined]
        return call

    def enter(self, revision: str, direction: str, bind: Optional[str], path: Path, doc: Optional[str]) -> Run:
        rel = os.path.relpath(path, self.root).replace(os.sep, "/")
        run = Run(revision=revision, direction=direction, bind=bind, file=rel, message=doc,
                  started=time.perf_counter())
        self.current = run
        self.runs.append(run)
        self.emit("running", phase=self.phase, revision=revision, direction=direction, bind=bind, file=rel)
        for listener in self.listeners:
            listener("enter", run)
        return run

    def leave(self, run: Run, exc: Optional[BaseException], path: Path) -> None:
        run.duration_ms = round((time.perf_counter() - run.started) * 1000, 3)
        if exc is None:
            run.status = "ok"
        else:
            run.status = "failed"
            run.failure = failure_of(exc, path, self.root)
        for listener in self.listeners:
            listener("leave", run)
        self.current = None
        self.emit("ran", phase=self.phase, revision=run.revision, direction=run.direction, bind=run.bind,
                  status=run.status, duration_ms=run.duration_ms, statements=run.statements, message=run.message)

    def env_py(self, path: Path) -> None:
        """env.py (or a revision file, at import) is about to run: a ``running`` event without a revision."""
        self.emit("running", phase=self.phase, revision=None,
                  file=os.path.relpath(path, self.root).replace(os.sep, "/"))

    def last_failure(self) -> Optional[Run]:
        return next((r for r in reversed(self.runs) if r.status == "failed"), None)
