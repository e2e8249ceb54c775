"""Round trip ("stairway"): does each revision's downgrade undo its upgrade?

For each step, on a throwaway database (alembic-internals.md §7): bring it to the revision's parents,
reflect the schema (``MetaData.reflect``; with the step's ``tables``, only the tables the revision
touched as recorded during the replay, plus the list of table names), ``upgrade(rev)``, downgrade just that revision —
``downgrade("<rev>@-1")`` along its own lineage, never ``"-1"``; for a merge point
``downgrade(<first parent>)`` — compare the schema with the one before with alembic's own
comparison (``alembic.autogenerate.produce_migrations`` against the reflected snapshot), and
``upgrade(rev)`` again.

Every failing downgrade is reported, not only the first: after a failure the walk goes on with the
next revision from a schema known to be right — the same database when the failed downgrade rolled
back and the version table still says so (PostgreSQL's transactional DDL), else a fresh database
brought up to that revision's parents.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

from . import describe, glue
from .stepwise import Walker
from .tracker import failure_of

# How a difference reads when the database (after the downgrade) is compared with the schema before
# the upgrade: the diff is what would still have to be done to get back.
_LEFT = {"remove_table": "table {t} is still there", "add_table": "table {t} is gone",
         "remove_column": "column {tc} is still there", "add_column": "column {tc} is gone",
         "remove_index": "index {n} on {t} is still there", "add_index": "index {n} on {t} is gone",
         "remove_constraint": "constraint {n} on {t} is still there", "add_constraint": "constraint {n} on {t} is gone",
         "remove_fk": "foreign key {n} on {t} is still there", "add_fk": "foreign key {n} on {t} is gone"}


class _Failed(Exception):
    def __init__(self, phase: str, exc: BaseException) -> None:
        super().__init__(phase)
        self.phase, self.exc = phase, exc


def leftover(item: Dict[str, Any]) -> str:
    """A difference after the downgrade, in words ("column `user.age` is still there")."""
    name = f"`{item['name']}`" if item.get("name") else "(unnamed)"
    template = _LEFT.get(item["kind"])
    if template:
        return template.format(t=f"`{item['table']}`", tc=f"`{item['table']}.{item['name']}`", n=name)
    if item["kind"] == "modify_nullable":  # old: now, new: before the upgrade ("True"/"False")
        words = {"True": "nullable", "False": "NOT NULL"}
        return (f"`{item['table']}.{item['name']}` is {words.get(item['old'] or '', item['old'])}, "
                f"was {words.get(item['new'] or '', item['new'])} before the upgrade")
    if item["kind"].startswith("modify_") and item.get("old") is not None:
        what = {"modify_type": "type", "modify_default": "server default", "modify_comment": "comment"}.get(
            item["kind"], item["kind"])
        return f"{what} of `{item['table']}.{item['name']}` is {item['old']}, was {item['new']} before the upgrade"
    return f"differs: {item['text']}"


class Stairway:
    """Walks the steps, one database at a time."""

    def __init__(self, session: Any, baseline: Optional[Dict[str, Any]]) -> None:
        self.session = session
        self.walker = Walker(session, baseline)
        self.project = session.project
        self.version_table = self.project.configure_args.get("version_table") or "alembic_version"

    def climb(self, steps: List[Dict[str, Any]]) -> List[Dict[str, Any]]:
        results = []
        try:
            for step in steps:
                results.append(self._step(step))
        finally:
            self.walker.close()
        return results

    def _result(self, step: Dict[str, Any], status: str, **data: Any) -> Dict[str, Any]:
        base = {"revision": step["revision"], "status": status, "detail": None, "differences": [],
                "missing_code": "", "failure": None, "target": None}
        base.update(data)
        return base

    def _step(self, step: Dict[str, Any]) -> Dict[str, Any]:
        from alembic import command

        revision = step["revision"]
        target = step["parents"][0] if len(step["parents"]) > 1 else f"{revision}@-1"
        try:
            self.walker.bring_to_parents(step)
        except Exception as exc:  # noqa: BLE001 - an ancestor does not upgrade on this path
            self.walker.discard()
            return self._result(step, "skipped", failure=self._failure("parents", exc, step),
                                detail="its parents could not be upgraded to")
        tables = step.get("tables")
        try:
            before = self._reflect(tables)
            upgraded = self.walker.run(command.upgrade, revision)
        except Exception as exc:  # noqa: BLE001
            self.walker.discard()
            return self._result(step, "upgrade_failed", failure=self._failure("upgrade", exc, step))
        try:
            downgraded = self.walker.run(command.downgrade, target)
        except NotImplementedError as exc:
            if self.session.tracker.runs and self.session.tracker.runs[-1].statements:
                self.walker.discard()  # it changed something first: the database is not trustworthy
            detail = (f"downgrade() raises NotImplementedError: {exc}" if str(exc)
                      else "downgrade() raises NotImplementedError")
            return self._result(step, "irreversible", detail=detail, target=target)
        except Exception as exc:  # noqa: BLE001
            failure = self._failure("downgrade", exc, step)
            if revision not in self._heads_or_none():
                self.walker.discard()  # not rolled back (no transactional DDL): start again elsewhere
            return self._result(step, "failed", failure=failure, target=target)
        if upgraded and not downgraded:  # `pass`: a lint rule reports it; here it is a fact
            self._restamp(revision)
            return self._result(step, "irreversible", target=target,
                                detail=f"downgrade() runs no statement while upgrade() runs {upgraded}; "
                                       "the schema stays upgraded")
        items, code = self._differences(before, tables)
        texts = [leftover(i) for i in items]
        try:
            self.walker.run(command.upgrade, revision)
        except Exception as exc:  # noqa: BLE001
            self.walker.discard()
            return self._result(step, "leaky", differences=texts, missing_code=code, target=target,
                                failure=self._failure("re-upgrade", exc, step))
        if not items:
            return self._result(step, "ok", target=target)
        return self._result(step, "leaky", differences=texts, missing_code=code, target=target,
                            detail=f"after downgrade {target}: " + "; ".join(texts))

    def _heads_or_none(self) -> Tuple[str, ...]:
        try:
            return self.walker.heads()
        except Exception:  # noqa: BLE001 - the database is in an unknown state
            return ()

    def _restamp(self, revision: str) -> None:
        from alembic import command

        self.walker.run(command.stamp, revision)

    def _failure(self, phase: str, exc: BaseException, step: Dict[str, Any]) -> Dict[str, Any]:
        from pathlib import Path

        path = Path(step["path"]) if step.get("path") else None
        data = failure_of(exc, path, self.project.root)
        data["phase"] = phase
        return data

    def _reflect(self, tables: dict[str, list[str]] | None) -> dict[Any, Any]:
        """Per bind, the tables there (one ``get_table_names``) and the schema of those the revision
        touches (``tables``: ``{bind or "": [name]}``; None: every table), reflected."""
        import sqlalchemy as sa

        sandbox = self.walker.database()
        snapshot = {}
        with self.session.guard.allowing(sandbox.urls):
            for bind in self.walker.binds:
                metadata = sa.MetaData()
                with sandbox.engines[bind].connect() as conn:
                    names = set(sa.inspect(conn).get_table_names()) - {self.version_table}
                    wanted = _wanted(names, tables, bind)
                    if wanted:
                        metadata.reflect(conn, only=sorted(wanted))
                snapshot[bind] = (metadata, names)
        return snapshot

    def _differences(self, before: dict[Any, Any], tables: dict[str, list[str]] | None
                     ) -> tuple[list[dict[str, Any]], str]:
        """What would still have to change to get back to ``before``, in words, and as alembic ops.

        With ``tables``, alembic compares only the touched tables and those that appeared since
        (``include_name``); a table that disappeared is reported from the table names alone."""
        import sqlalchemy as sa
        from alembic.autogenerate import produce_migrations, render_python_code
        from alembic.migration import MigrationContext

        sandbox = self.walker.database()
        items: list[dict[str, Any]] = []
        code: list[str] = []
        with self.session.guard.allowing(sandbox.urls):
            for bind in self.walker.binds:
                engine = sandbox.engines[bind]
                metadata, names_before = before[bind]
                with engine.connect() as conn:
                    # compare types whatever the project sets (alembic < 1.12 and Flask-Migrate < 3 default to off)
                    opts = {**glue.version_table_opts(self.project), "compare_type": True}
                    if tables is not None:
                        names_now = set(sa.inspect(conn).get_table_names()) - {self.version_table}
                        # reflect() also brought in the tables the touched ones refer to: compared too
                        keep = {n.lower() for n in _wanted(names_before, tables, bind) | (names_now - names_before)
                                | {t.name for t in metadata.tables.values()}}
                        opts["include_name"] = lambda name, type_, parents, keep=keep: (
                            type_ != "table" or (name or "").lower() in keep)
                        gone = sorted(n for n in names_before - names_now if n.lower() not in keep)
                        items += [{"kind": "add_table", "table": n, "name": None, "old": None, "new": None,
                                   "text": f"add table {n}"} for n in gone]
                    script = produce_migrations(MigrationContext.configure(conn, opts=opts), metadata)
                ops = script.upgrade_ops
                if ops is None or ops.is_empty():
                    continue
                items += [describe.describe(d, engine.dialect) for d in describe.flatten(ops.as_diffs())]
                rendered = render_python_code(ops, render_as_batch=bool(self.project.configure_args.get("render_as_batch")))
                code += [line for line in rendered.strip("\n").splitlines() if not line.strip().startswith("# ###")]
        return items, "\n".join(code)


def _wanted(names: Any, tables: dict[str, list[str]] | None, bind: str | None) -> Any:
    """The tables of ``names`` to reflect: all of them without ``tables``, else those the revision
    touches on ``bind`` (names compared case-insensitively)."""
    if tables is None:
        return set(names)
    touched = {t.lower() for t in tables.get(bind or "") or ()}
    return {n for n in names if n.lower() in touched}


def roundtrip(session: Any, steps: List[Dict[str, Any]], baseline: Optional[Dict[str, Any]]) -> Dict[str, Any]:
    """Round-trip every step; ``{"steps": [{revision, status, detail, differences, missing_code, failure,
    target}]}`` with status ok | leaky | failed | irreversible | skipped | upgrade_failed."""
    session.tracker.start("roundtrip")
    return {"steps": Stairway(session, baseline).climb(steps)}
