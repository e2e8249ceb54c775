"""Errors the probe reports to the host as ``error`` events (never as tracebacks)."""

from __future__ import annotations

from typing import Any, Dict, Optional


class ProbeError(Exception):
    """A problem the host turns into a message and an exit code.

    ``kind``: ``app_load`` (the app does not import, exit 3), ``unsupported`` (library versions, exit 3),
    ``driver`` (no DBAPI driver for the database, exit 3), ``database`` (a database cannot be reached
    or used, exit 3), ``usage`` (bad request data, exit 2). ``message`` is complete and readable.
    """

    def __init__(self, kind: str, message: str, **details: Any) -> None:
        super().__init__(message)
        self.kind, self.message, self.details = kind, message, details

    def event(self) -> Dict[str, Any]:
        return {"kind": self.kind, "message": self.message, **self.details}


class Stopped(BaseException):
    """The app's code ended the run: ``sys.exit()`` in env.py or a revision, or a connection to a
    database that is not the sandbox. A BaseException so that ``except Exception`` in env.py or a
    revision cannot swallow it. ``why`` is ``exit`` or ``guard``; ``where`` says which file and line."""

    def __init__(self, why: str, message: str, where: Optional[Dict[str, Any]] = None, **details: Any) -> None:
        super().__init__(message)
        self.why, self.message, self.where, self.details = why, message, where or {}, details


def database_error(phase: str, url: Any, exc: BaseException) -> ProbeError:
    """A database problem as the host words it: ``phase`` ``connect`` or ``read``, where, and the first
    line of the database's message (never the password)."""
    orig = str(getattr(exc, "orig", None) or exc).strip().splitlines()
    masked = url.render_as_string(hide_password=True) if hasattr(url, "render_as_string") else repr(url)
    return ProbeError("database", orig[0] if orig else type(exc).__name__, phase=phase,
                      backend=url.get_backend_name(), host=url.host, port=url.port, database=url.database,
                      user=url.username, url=masked)
