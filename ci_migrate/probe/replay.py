"""Replay the history on the sandbox through the project's own env.py (``flask db upgrade``).

``alembic.command.upgrade(config, "heads")`` with the app pointed at the sandbox. What ran comes from
the tracker (each revision's own ``upgrade()``), the truth about where the sandbox ends up from its
version tables. The operations of the revisions in ``record`` (the pending ones of a pull request)
are recorded while they run (:mod:`.recording`, online).
"""

from __future__ import annotations

import dataclasses
import os
import time
import traceback
from typing import Any, Dict, List, Optional, Sequence

from . import glue, script_dirs
from .recording import Recorder, hooks
from .tracker import failure_of


def where_in_migrations(exc: BaseException, project: Any) -> Dict[str, Any]:
    """The innermost traceback frame in the migrations directory or an extra script directory (env.py
    or a revision file): ``{"file": rel, "line": n}`` or ``{}``."""
    tops = tuple(str(d) + os.sep for d in [project.migrations_dir, *(d.path for d in project.script_dirs)])
    found: Dict[str, Any] = {}
    for frame in traceback.extract_tb(exc.__traceback__):
        real = os.path.realpath(frame.filename)
        if real.startswith(tops):
            found = {"file": project.relative(real), "line": frame.lineno, "code": (frame.line or "").strip() or None}
    return found


def replay(session: Any, *, destination: Optional[Sequence[str]] = None, baseline: Optional[Dict[str, Any]] = None,
           record: Sequence[str] = (), files: Optional[Dict[str, str]] = None,
           snapshot_at: Optional[Sequence[str]] = None, checkpoint: bool = False) -> Dict[str, Any]:
    """Upgrade the session's sandbox to heads (or ``destination``), optionally from a baseline.

    ``baseline``: ``{"create_all": bool, "stamp": revision}`` — the schema file, if any, was loaded by
    the host; ``create_all`` runs ``db.create_all()`` (``metadata.create_all`` for plain bases) on the
    sandbox; then the version table is stamped. ``record``: revisions whose operations are recorded.
    ``snapshot_at``: the base branch's heads (``[]``: before any revision): the upgrade stops there
    first and every migrated database is reflected (:func:`.snapshot.snapshot`), then again at the
    end of the app's history — the schema change of the pending revisions. ``checkpoint``: once
    there, every connection closed, the probe sends a ``checkpoint`` event (``{"name": "base",
    "heads": [...]}``) and waits for the host's ``continue`` (the host copies the sandbox: the cached
    base snapshot). When the host restored the sandbox at ``snapshot_at`` from that snapshot (baseline
    included; ``Sandbox.restored``), the baseline and the upgrade to ``snapshot_at`` are skipped.
    Without a ``destination``, the extra script directories are upgraded to their heads after the
    app's history, each recording its revisions in its own version table (:func:`.script_dirs.upgrade`).
    Returns ``{"runs": [...], "failure": {...} | None, "heads_after": {bind: [...]},
    "directories_after": {directory: [...]}, "recorded": {revision: Recording}, "snapshots": {"before":
    {bind: snapshot}, "after": {...}} (with ``snapshot_at``), "duration_s": s, "redirected": [{database,
    file, line, code}]}`` (``redirected``: where a connection to the app's own database was opened on the
    sandbox instead, :mod:`.guard`); ``failure`` has
    ``where`` ("revision" / "env.py" / "baseline"), ``revision``, ``file``, ``line``, ``statement``,
    ``error``, ``exception`` (and ``directory`` when it failed in an extra directory).
    """
    from alembic import command

    project, sandbox = session.project, session.sandbox
    restored = sandbox.restored
    tracker = session.tracker
    tracker.start("replay")
    started = time.perf_counter()
    recorder = Recorder({os.path.realpath(p): r for r, p in (files or {}).items()}, sandbox.engines[None].dialect,
                        set(record))
    tracker.listeners.append(recorder.on_run)
    failure = None
    stage = "upgrade"
    snapshots: Dict[str, Any] = {}
    try:
        with session.guard.allowing(sandbox.urls), hooks(recorder, offline=False):
            with glue.alembic_session(project, sandbox.urls, sandbox.engines) as (config, _capture):
                try:
                    if baseline and not restored:
                        if baseline.get("create_all"):
                            stage = "baseline"
                            create_all(project, sandbox)
                        stage = "stamp"
                        command.stamp(config, baseline["stamp"])
                    stage = "upgrade"
                    if snapshot_at is not None:
                        if snapshot_at and not restored:
                            command.upgrade(config, tuple(snapshot_at))
                        if checkpoint:
                            _checkpoint(session, list(snapshot_at))
                        snapshots["before"] = _snapshots(session)
                    command.upgrade(config, tuple(destination) if destination else "heads")
                    if snapshot_at is not None:
                        snapshots["after"] = _snapshots(session)
                except Exception as exc:  # noqa: BLE001 - a failing revision is a fact
                    failure = describe_failure(exc, session, stage)
            if failure is None and not destination:
                failure = script_dirs.upgrade(session, stamp=bool(baseline and baseline.get("create_all")))
    finally:
        tracker.listeners.remove(recorder.on_run)
        recorder.finish()
    heads_after = {} if failure else sandbox_heads(session)
    return {"runs": [r.as_dict() for r in tracker.runs if r.direction == "upgrade"], "failure": failure,
            "heads_after": heads_after, "directories_after": {} if failure else script_dirs.heads(session),
            "recorded": {k: v.as_dict() for k, v in recorder.recorded.items()},
            "snapshots": snapshots, "duration_s": round(time.perf_counter() - started, 3),
            "redirected": [dataclasses.asdict(r) for r in session.guard.redirected]}


def _checkpoint(session: Any, heads: list[str]) -> None:
    """Tell the host the sandbox is at ``heads`` (no connection open: NullPool) and wait until it says
    ``continue``."""
    from .errors import ProbeError

    session.guard.release()
    session.channel.emit("checkpoint", name="base", heads=heads)
    reply = session.channel.request()
    if reply.get("op") != "continue":
        raise ProbeError("usage", f"expected 'continue' from the host, got {reply.get('op')!r}")


def _snapshots(session: Any) -> Dict[str, Any]:
    """Every migrated database of the sandbox, reflected (the version table left out)."""
    from .snapshot import snapshot

    project, sandbox = session.project, session.sandbox
    binds = project.bind_keys if project.multidb else [None]
    return {key or "": snapshot(sandbox.engines[key], exclude=tuple(project.version_tables)) for key in binds}


def describe_failure(exc: BaseException, session: Any, stage: str) -> Dict[str, Any]:
    """A failed command as data: the revision that failed (from the tracker) or env.py / the baseline."""
    run = session.tracker.last_failure()
    if run is not None and run.failure is not None:
        return {"where": "revision", "revision": run.revision, "message": run.message, "bind": run.bind,
                "stage": stage, "duration_ms": run.duration_ms, "statements": run.statements, **run.failure}
    data = failure_of(exc, None, session.project.root)
    place = where_in_migrations(exc, session.project)
    where = "env.py" if place.get("file", "").endswith("env.py") else ("baseline" if stage == "baseline" else "alembic")
    data.update(place)
    return {"where": where, "revision": None, "message": None, "bind": None, "stage": stage, **data}


def create_all(project: Any, sandbox: Any) -> None:
    """The models' tables on the sandbox: ``db.create_all()`` (Flask-SQLAlchemy or Alchemical, every
    bind), or ``metadata.create_all(engine)`` per bind for apps with a plain declarative base."""
    if project.flask_sqlalchemy or project.alchemical:
        project.db.create_all()
        return
    for key, metadata in project.metadatas.items():
        metadata.create_all(sandbox.engines[key])


def sandbox_heads(session: Any) -> Dict[str, List[str]]:
    """Each migrated bind's version table (``'' `` = default bind): the truth, not the callbacks."""
    project, sandbox = session.project, session.sandbox
    binds = project.bind_keys if project.multidb else [None]
    with session.guard.allowing(sandbox.urls):
        return {key or "": sorted(glue.current_heads(project, sandbox.engines[key])) for key in binds}
