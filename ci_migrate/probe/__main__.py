"""Entry point of the probe process: ``python <private dir>/ci_migrate_probe`` (see :mod:`ci_migrate.probe`).

Everything the app's code does that would end the process or escape is turned into an event:
``sys.exit()`` in env.py or a revision becomes ``aborted`` (naming the file and line), an exception
of ours becomes ``error`` with kind ``internal``. Only ``os._exit()``, a signal or a crash of the
interpreter end it without ``bye`` — the host knows from the last ``running`` event where it was.
"""

from __future__ import annotations

import os
import sys
import traceback
from typing import Any, Dict


def _where(session: Any, exc: BaseException) -> Dict[str, Any]:
    from .replay import where_in_migrations

    where: Dict[str, Any] = {}
    if session is not None:
        where = where_in_migrations(exc, session.project)
        run = session.tracker.current
        if run is not None:
            where.setdefault("file", run.file)
            where["revision"] = run.revision
    return where


def _end(code: int) -> None:
    """End the process after ``bye``: the app's ``atexit`` handlers run (``atexit._run_exitfuncs``,
    as at a normal exit) and what it printed is flushed, then ``os._exit``. The interpreter's teardown
    of every module — about 0.1 s once Flask, SQLAlchemy and alembic are loaded — is skipped, and so is
    the wait for threads the app started that never end."""
    import atexit

    run_exitfuncs = getattr(atexit, "_run_exitfuncs", None)
    if run_exitfuncs is not None:
        run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except Exception:  # noqa: BLE001 - a closed or broken stream: nothing more to say
            pass
    os._exit(code)


def main() -> int:
    from . import PROTOCOL
    from .channel import Channel
    from .errors import ProbeError, Stopped
    from .session import OPERATIONS, Session, _loaded_modules

    channel = Channel.from_environment()
    channel.emit("hello", protocol=PROTOCOL, pid=os.getpid(), python=sys.executable)
    from .warm import warm_up

    warm_up(channel.waiting)
    session = None
    while True:
        request = channel.request()
        op = request.get("op")
        if op == "exit":
            modules = _loaded_modules(sys.prefix) if request.get("modules") else None
            channel.emit("bye", modules=modules)
            _end(0)
            return 0
        try:
            if op == "load":
                if request.get("protocol") != PROTOCOL:
                    raise ProbeError("usage", f"protocol {request.get('protocol')} is not {PROTOCOL}: the probe "
                                              "and the host are of different ci-migrate versions")
                session = Session(channel, request)
                channel.emit("done", op=op, data=session.facts())
                continue
            if session is None:
                raise ProbeError("usage", f"{op!r} before 'load'")
            handler = OPERATIONS.get(op or "")
            if handler is None:
                raise ProbeError("usage", f"unknown request {op!r}")
            channel.emit("done", op=op, data=handler(session, request))
        except ProbeError as exc:
            channel.emit("error", op=op, **exc.event())
        except Stopped as exc:
            channel.emit("aborted", op=op, why=exc.why, message=exc.message, where=exc.where, **exc.details)
        except SystemExit as exc:
            where = _where(session, exc)
            channel.emit("aborted", op=op, why="exit", code=exc.code, where=where,
                         message=f"sys.exit({exc.code!r}) was called" + (
                             f" in {where['file']}:{where.get('line')}" if where.get("file") else ""))
        except Exception as exc:  # noqa: BLE001 - reported to the host, which names the step
            tail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-4:])
            channel.emit("error", op=op, kind="internal", message=f"{type(exc).__name__}: {exc}", traceback=tail,
                         where=_where(session, exc))


if __name__ == "__main__":
    sys.exit(main())
