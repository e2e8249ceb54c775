"""One probe run: the loaded project, the guard, the tracker and the sandbox in use.

The requests the host sends are handled by :data:`OPERATIONS` (name → function of the session and
the request returning plain data). See :mod:`ci_migrate.probe` for the protocol.
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional

from . import glue, guard
from .errors import ProbeError, database_error
from .project import check_driver, check_stack, load_project, stack
from .tracker import Tracker

__all__ = ["OPERATIONS", "Sandbox", "Session"]


def _key(name: Optional[str]) -> Optional[str]:
    """Bind keys cross as strings: ``""`` is the default bind (``None``)."""
    return name or None


@dataclass
class Sandbox:
    """Databases the host made for this run, one per bind key (``None`` = default)."""

    id: Any
    dialect: str
    urls: Dict[Optional[str], Any]
    engines: Dict[Optional[str], Any]
    restored: bool = False  # the host filled it from the cached base snapshot (baseline included)

    def dispose(self) -> None:
        for engine in self.engines.values():
            engine.dispose()


class Session:
    """Loads the app (``load`` request) and serves the requests that follow."""

    def __init__(self, channel: Any, request: Dict[str, Any]) -> None:
        self.channel = channel
        self.root = Path(request["root"]).resolve()
        self.tracker = Tracker(channel.emit, self.root)
        self.guard = guard.EngineGuard(self.root)
        self.sandbox: Optional[Sandbox] = None
        self.target: Any = None
        found = stack()
        channel.emit("stack", **found)
        check_stack(found["packages"])
        for purpose, dialect in (("sandbox", request.get("sandbox_dialect")), ("target", request.get("target_dialect"))):
            check_driver(dialect, purpose)
        with guard.watching(self.root) as opened:
            self.project = load_project(self.root, request.get("app"), request.get("migrations"),
                                        request.get("script_dirs") or ())
        self.project.notes += [guard.import_note(o) for o in opened]
        with self.project.app_context():
            self.guard.own_databases({k: self.project.configured_url(k) for k in self.project.bind_keys})
        glue.Loading.on_load = self.tracker.wrap
        glue.Loading.on_env = self.tracker.env_py
        self.tracker.install()
        self.guard.install()

    # -- sandboxes come from the host
    def _sandbox_from(self, message: Dict[str, Any]) -> Sandbox:
        urls = {_key(k): glue.normalize_url(v) for k, v in message["urls"].items()}
        missing = [k for k in self.project.bind_keys if k not in urls]
        if missing:
            raise ProbeError("usage", f"the sandbox has no database for binds {missing}")
        return Sandbox(message.get("id"), message.get("dialect") or urls[None].get_backend_name(), urls,
                       {k: glue.make_engine(u) for k, u in urls.items()}, bool(message.get("restored")))

    def new_sandbox(self) -> Sandbox:
        """A fresh sandbox from the host (``need_sandbox`` → the host's ``sandbox`` reply)."""
        self.channel.emit("need_sandbox", binds=[k or "" for k in self.project.bind_keys])
        reply = self.channel.request()
        if reply.get("op") != "sandbox":
            raise ProbeError("usage", f"expected a sandbox from the host, got {reply.get('op')!r}")
        return self._sandbox_from(reply)

    def drop_sandbox(self, sandbox: Sandbox) -> None:
        """Release a sandbox early; the host drops it."""
        sandbox.dispose()
        self.channel.emit("drop_sandbox", id=sandbox.id)

    def files(self) -> Dict[str, str]:
        """revision id → absolute path of its file (from alembic's history)."""
        from .revisions import history

        found = history(self.project)
        return {r["revision"]: r["path"] for r in found.get("revisions", []) if r.get("path")}

    def facts(self) -> Dict[str, Any]:
        """The project as the host sees it."""
        project = self.project
        env_py = project.migrations_dir / "env.py"
        opts = glue.version_table_opts(project)
        return {
            "app": project.import_string, "app_name": project.app.name, "root": str(project.root),
            "migrations_dir": str(project.migrations_dir), "migrations": project.relative(project.migrations_dir),
            "env_py": project.relative(env_py) if env_py.is_file() else None,
            "bind_keys": [k or "" for k in project.bind_keys], "multidb": project.multidb,
            "command_name": project.command_name, "configured_dialect": project.configured_dialect(),
            "flask_sqlalchemy": project.flask_sqlalchemy, "version_table": opts.get("version_table"),
            "version_table_schema": opts.get("version_table_schema"),
            "configure_args": sorted(project.configure_args), "render_as_batch":
                bool(project.configure_args.get("render_as_batch")), "notes": list(project.notes),
        }


def _loaded_modules(prefix_dir: str) -> List[Dict[str, str]]:
    """Top-level modules this process imported and where they came from (for the isolation test)."""
    seen: Dict[str, str] = {}
    for name, module in list(sys.modules.items()):
        top = name.split(".")[0]
        if top in seen:
            continue
        origin = getattr(module, "__file__", None) or ""
        seen[top] = os.path.realpath(origin) if origin else ""
    return [{"name": k, "file": v} for k, v in sorted(seen.items())]


def _sandbox(session: Session, request: Dict[str, Any]) -> Dict[str, Any]:
    if session.sandbox is not None:
        session.sandbox.dispose()
    session.sandbox = session._sandbox_from(request)
    return {"id": session.sandbox.id}


def _scan(session: Session, request: Dict[str, Any]) -> Dict[str, Any]:
    from .revisions import history, scan

    session.tracker.start("scan")
    found = scan(session.project, on_file=session.tracker.env_py)
    found["history"] = history(session.project)
    return found


def _need_sandbox(session: Session) -> Sandbox:
    if session.sandbox is None:
        raise ProbeError("usage", "no sandbox: the host sends one before this request")
    return session.sandbox


def _replay(session: Session, request: Dict[str, Any]) -> Dict[str, Any]:
    from .replay import replay

    _need_sandbox(session)
    return replay(session, destination=request.get("destination"), baseline=request.get("baseline"),
                  record=request.get("record") or (), files=session.files() if request.get("record") else {},
                  snapshot_at=request.get("snapshot_at"), checkpoint=bool(request.get("checkpoint")))


def _offline(session: Session, request: Dict[str, Any]) -> Dict[str, Any]:
    from .offline import render
    from .project import check_driver as driver

    dialect_url = request["dialect_url"]
    try:
        driver(glue.normalize_url(dialect_url).get_backend_name(), "dialect of the offline SQL")
    except ProbeError as exc:
        return {"dialect": None, "revisions": {}, "error": exc.message}
    return render(session, request["pending"], request["parents"], dialect_url, session.files())


def _drift(session: Session, request: Dict[str, Any]) -> Dict[str, Any]:
    from .drift import compare

    if request.get("against") == "target":
        target = session.target
        return compare(session, target.all_urls, target.engines, request.get("ignore") or {}, False)
    sandbox = _need_sandbox(session)
    return compare(session, sandbox.urls, sandbox.engines, request.get("ignore") or {},
                   bool(request.get("approximate")))


def _locks(session: Session, request: Dict[str, Any]) -> Dict[str, Any]:
    from .locks import trace

    return trace(session, request["steps"], request.get("baseline"))


def _roundtrip(session: Session, request: Dict[str, Any]) -> Dict[str, Any]:
    from .roundtrip import roundtrip

    return roundtrip(session, request["steps"], request.get("baseline"))


def _target(session: Session, request: Dict[str, Any]) -> Dict[str, Any]:
    from .target import Target

    if session.target is not None:
        session.target.dispose()
    urls = {_key(k): v for k, v in request["urls"].items()}
    session.target = Target(session, urls, float(request.get("lock_timeout", 0)),
                            float(request.get("statement_timeout", 0)), read_only=bool(request.get("read_only")))
    return {"dialect": session.target.urls[None].get_backend_name(),
            "transactional_ddl": session.target.transactional_ddl}


def _target_state(session: Session, request: Dict[str, Any]) -> Dict[str, Any]:
    from .errors import ProbeError as Error

    target = session.target
    target.connectable()
    try:
        heads = target.heads()
        tables = target.tables() if request.get("tables") else {}
    except Error:
        raise
    except Exception as exc:  # noqa: BLE001 - a target that refuses reads is the user's environment
        raise database_error("read", target.urls[None], exc) from None
    return {"heads": heads, "tables": tables}


def _upgrade(session: Session, request: Dict[str, Any]) -> Dict[str, Any]:
    from .target import upgrade

    return upgrade(session, session.target, request.get("destination") or "heads",
                   retries=int(request.get("retries", 0)), backoff=float(request.get("backoff", 0)),
                   resume=request.get("resume") or None)


def _apply_log(session: Session, request: Dict[str, Any]) -> Dict[str, Any]:
    from .apply_log import read

    return read(session, session.target, request.get("revisions") or [])


def _target_objects(session: Session, request: Dict[str, Any]) -> Dict[str, Any]:
    """Which of ``objects`` (``{bind: [object]}``, see :mod:`.objects`) each migrated bind has."""
    from .objects import states

    target = session.target
    out = {}
    with session.guard.allowing(target.urls, what="the target"):
        for key, found in (request.get("objects") or {}).items():
            with target.engines[_key(key)].connect() as conn:
                out[key] = states(conn, found)
    return {"states": out}


def _compare_live(session: Session, request: Dict[str, Any]) -> Dict[str, Any]:
    from .target import compare_live

    return compare_live(session, session.target, request.get("ignore") or {})


def _build_baseline(session: Session, request: Dict[str, Any]) -> Dict[str, Any]:
    """``create_all()`` of this app's models on the current sandbox, then stamp it at ``stamp``."""
    from alembic import command

    from . import script_dirs
    from .replay import create_all

    sandbox = _need_sandbox(session)
    with session.guard.allowing(sandbox.urls), \
            glue.alembic_session(session.project, sandbox.urls, sandbox.engines) as (config, _capture):
        if request.get("create_all"):
            create_all(session.project, sandbox)
        stamp = request.get("stamp") or []
        if stamp:
            command.stamp(config, tuple(stamp) if len(stamp) > 1 else stamp[0])
    if request.get("create_all"):  # the extra directories' tables were made too
        failure = script_dirs.upgrade(session, stamp=True)
        if failure is not None:
            raise ProbeError("usage", f"stamping {failure['directory']} at its heads failed: {failure['error']}")
    return {"tables": sorted(t for md in session.project.metadatas.values() for t in md.tables)}


def _ancestors(session: Session, request: Dict[str, Any]) -> Dict[str, Any]:
    from .revisions import ancestors

    return {"revisions": ancestors(session.project, request.get("revisions") or [])}


OPERATIONS: Dict[str, Callable[[Session, Dict[str, Any]], Dict[str, Any]]] = {
    "sandbox": _sandbox, "scan": _scan, "replay": _replay, "offline": _offline, "drift": _drift,
    "locks": _locks, "roundtrip": _roundtrip, "target": _target, "target_state": _target_state,
    "upgrade": _upgrade, "compare_live": _compare_live, "ancestors": _ancestors, "build_baseline": _build_baseline,
    "apply_log": _apply_log, "target_objects": _target_objects,
}
