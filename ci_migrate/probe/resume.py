"""Finishing a revision an earlier ``apply`` left half-done (``apply --resume-interrupted``).

The revision runs again through alembic and env.py, as any other, with two hooks active only while
its ``upgrade()`` runs (the tracker says which revision runs):

* ``AbstractOperations.invoke`` (``Operations.invoke`` before alembic 1.11) lets through only the
  operations whose objects can be checked one by one (:data:`.objects.RESUMABLE`: create table, add
  column, create index, unique constraint, foreign key). Any other one stops the revision *before it
  runs* with :class:`NotResumable`: what ``op.execute``, ``alter_column``, ``drop_*`` or
  ``bulk_insert`` already did cannot be told from the schema. So does a ``batch_alter_table`` that
  copies the table (``recreate="always"``).
* ``DefaultImpl._exec`` skips a ``CREATE TABLE`` / ``ADD COLUMN`` / ``CREATE INDEX`` /
  ``ADD CONSTRAINT`` whose object the database already has (:func:`.objects.state`, reflected on
  the revision's own connection), and runs every other statement — the version table's update too.
"""

from __future__ import annotations

import contextlib
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from . import objects

Key = Tuple[str, Optional[str]]  # (revision, bind)


class NotResumable(Exception):
    """The revision performs an operation whose effect cannot be checked; nothing more of it ran."""


class Resume:
    """Which revisions to finish, and what was skipped and run in each (:meth:`report`)."""

    def __init__(self, session: Any, wanted: Iterable[Dict[str, Any]]) -> None:
        self.session = session
        self.wanted = {(w["revision"], w.get("bind") or None) for w in wanted}
        self.done: Dict[Key, Dict[str, List[str]]] = {}

    def active(self) -> Optional[Key]:
        run = self.session.tracker.current
        if run is None or run.direction != "upgrade" or self.session.tracker.phase != "apply":
            return None
        key = (run.revision, run.bind or None)
        return key if key in self.wanted else None

    def report(self) -> List[Dict[str, Any]]:
        """``[{revision, bind, skipped: [object texts], ran: [object texts]}]``."""
        return [{"revision": r, "bind": b, "skipped": d["skipped"], "ran": d["ran"]} for (r, b), d in self.done.items()]

    def _entry(self, key: Key) -> Dict[str, List[str]]:
        return self.done.setdefault(key, {"skipped": [], "ran": []})

    def check_operation(self, operations: Any, operation: Any) -> None:
        key = self.active()
        if key is None:
            return
        self._entry(key)
        kind = type(operation).__name__
        if kind not in objects.RESUMABLE:
            from .describe import describe_op

            what = describe_op(operation, operations.migration_context.dialect)
            raise NotResumable(
                f"--resume-interrupted: revision {key[0]} {what} ({kind}); what such an operation did cannot be "
                "told from the schema, so it was not run. "
                "Finish the revision by hand and `flask db stamp` it, or undo what it left and run apply again.")
        if getattr(operations.impl, "recreate", None) == "always":
            raise NotResumable(f"--resume-interrupted: revision {key[0]} rebuilds table "
                               f"`{operation.table_name}` (batch_alter_table(recreate='always')); it was not run.")

    def skip(self, impl: Any, construct: Any) -> bool:
        """Whether ``construct`` creates an object the database already has (then it is not run)."""
        key = self.active()
        obj = objects.of_ddl(construct) if key is not None else None
        if key is None or obj is None:
            return False
        with self.session.tracker.own_statements():  # reflection on the revision's own connection
            present = objects.state(impl.connection, obj)["present"]
        self._entry(key)["skipped" if present else "ran"].append(obj["text"])
        return bool(present)


@contextlib.contextmanager
def hooks(resume: Optional[Resume]) -> Iterator[None]:
    """Wrap ``AbstractOperations.invoke`` and ``DefaultImpl._exec`` for the block (no-op without ``resume``)."""
    if resume is None or not resume.wanted:
        yield
        return
    from alembic.ddl.impl import DefaultImpl
    from alembic.operations import base

    operations_class = getattr(base, "AbstractOperations", base.Operations)
    invoke, execute = operations_class.invoke, DefaultImpl._exec

    def checked_invoke(self: Any, operation: Any) -> Any:
        resume.check_operation(self, operation)
        return invoke(self, operation)

    def skipping_exec(self: Any, construct: Any, *args: Any, **kw: Any) -> Any:
        if not self.as_sql and resume.skip(self, construct):
            return None
        return execute(self, construct, *args, **kw)

    operations_class.invoke = checked_invoke  # type: ignore[method-assign]
    DefaultImpl._exec = skipping_exec  # type: ignore[method-assign]
    try:
        yield
    finally:
        operations_class.invoke = invoke  # type: ignore[method-assign]
        DefaultImpl._exec = execute  # type: ignore[method-assign]
