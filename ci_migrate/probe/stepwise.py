"""What the lock trace and the round trip share: walking revisions one at a time on a database of
their own.

The host sends the steps (revisions in upgrade order, each with its parents and ``depends_on``);
before each one the walker brings its throwaway database to the revision's parents with
``alembic.command.upgrade``, so the step it observes runs exactly that revision
(alembic-internals.md §7). A fresh database comes from the host (``need_sandbox``); with a
baseline, it arrives with the baseline schema loaded (schema file) or gets ``create_all`` here,
and is stamped at the baseline revision. On a pull request the host may fill it from the base
snapshot (``restored``: at the base's heads, baseline included); revisions already applied there
are not upgraded to again.
"""

from __future__ import annotations

import contextlib
import os
from typing import Any, Callable, Dict, List, Optional

from . import glue
from .replay import create_all


class Walker:
    """One throwaway database at a time, brought to where each step needs it."""

    def __init__(self, session: Any, baseline: Optional[Dict[str, Any]]) -> None:
        self.session, self.baseline = session, baseline
        self.project = session.project
        self.sandbox: Any = None
        self.files = {}  # realpath of a revision file -> revision id (for the lines of calls)

    @property
    def binds(self) -> List[Optional[str]]:
        return self.project.bind_keys if self.project.multidb else [None]

    def database(self) -> Any:
        """The walk's database, made (and baselined) when there is none."""
        if self.sandbox is None:
            self.sandbox = self.session.new_sandbox()
            if self.baseline and not self.sandbox.restored:
                with self.session.guard.allowing(self.sandbox.urls), \
                        glue.alembic_session(self.project, self.sandbox.urls, self.sandbox.engines) as (config, _c):
                    from alembic import command

                    if self.baseline.get("create_all"):
                        create_all(self.project, self.sandbox)
                    command.stamp(config, self.baseline["stamp"])
        return self.sandbox

    def discard(self) -> None:
        """Give up the database (its state is unknown); the host drops it."""
        if self.sandbox is not None:
            self.session.drop_sandbox(self.sandbox)
            self.sandbox = None

    def run(self, fn: Callable[..., Any], *args: Any) -> int:
        """One ``alembic.command`` function on the database; returns how many statements the
        revisions it ran sent (the tracker counts inside ``upgrade()``/``downgrade()`` only)."""
        sandbox = self.database()
        tracker = self.session.tracker
        before = len(tracker.runs)
        with self.session.guard.allowing(sandbox.urls), \
                glue.alembic_session(self.project, sandbox.urls, sandbox.engines) as (config, _c):
            fn(config, *args)
        return sum(r.statements for r in tracker.runs[before:])

    def heads(self) -> tuple:
        sandbox = self.database()
        with self.session.guard.allowing(sandbox.urls):
            return glue.current_heads(self.project, sandbox.engines[None])

    def bring_to_parents(self, step: Dict[str, Any]) -> None:
        """Upgrade so that everything ``step`` needs (``requires``: parents and ``depends_on``) is applied."""
        from alembic import command

        from .revisions import ancestors

        heads = self.heads()
        applied = set(ancestors(self.project, list(heads))) if heads else set()
        for revision in step["requires"]:
            if revision not in applied:
                self.run(command.upgrade, revision)
                applied.update(ancestors(self.project, [revision]))

    def close(self) -> None:
        self.discard()


def revision_files(steps: List[Dict[str, Any]]) -> Dict[str, str]:
    return {os.path.realpath(s["path"]): s["revision"] for s in steps if s.get("path")}


@contextlib.contextmanager
def class_listening(**listeners: Callable[..., Any]) -> Any:
    """SQLAlchemy ``Engine`` events (``before_cursor_execute=fn``…) for every engine of the process."""
    from sqlalchemy import event
    from sqlalchemy.engine import Engine

    for name, fn in listeners.items():
        event.listen(Engine, name, fn)
    try:
        yield
    finally:
        for name, fn in listeners.items():
            event.remove(Engine, name, fn)
