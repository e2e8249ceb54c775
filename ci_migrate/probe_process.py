"""The host's handle on the probe: start it in the app's interpreter, talk to it, bound it in time.

The probe's code (the :mod:`ci_migrate.probe` package, standard library only) is copied into a
private directory of its own and run from there as ``ci_migrate_probe``: nothing of ci-migrate's
own environment is on the probe's ``sys.path``. Requests go to the probe's stdin, events come back
on a pipe of their own (``CI_MIGRATE_PROBE_FD``); what the app prints goes to a log file whose tail
is shown when something goes wrong.

The host owns the clock: :class:`ProbeProcess` kills the probe's whole process group when the
run's deadline passes (:class:`ProbeTimedOut`), and a probe that ends without answering
(``os._exit``, a signal, a crash) raises :class:`ProbeDied`. Both name the phase and the revision
that was running, from the last ``running`` event.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import shutil
import signal
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ci_migrate.errors import AppLoadError, CiMigrateError, DatabaseError, EnvironmentProblem, UsageError
from ci_migrate.probe import COPY_PREFIX, PROTOCOL

PACKAGE = "ci_migrate_probe"
BYE_S = 10.0  # seconds an idle probe gets to run its atexit handlers and say ``bye``
_BOOTSTRAP = ("import sys; sys.path.insert(0, {dir!r}); "
              "from ci_migrate_probe.__main__ import main; sys.exit(main())")


@dataclass
class Running:
    """What the probe said it was doing last: the phase (request) and the revision or env.py file."""

    phase: str | None = None
    revision: str | None = None
    file: str | None = None
    direction: str | None = None

    def describe(self) -> str:
        if self.revision:
            what = f"revision {self.revision}" + (f" ({self.file})" if self.file else "")
            return f"{what}, {self.direction or 'upgrade'} during {self.phase}"
        if self.file:
            return f"{self.file} during {self.phase}"
        if self.phase == "load":
            return "the import of the app"
        return f"{self.phase}" if self.phase else "start-up"


class ProbeProblem(CiMigrateError):
    """The probe ended a request without data. ``running`` says where it was; ``output`` is the tail of
    what the app printed."""

    def __init__(self, message: str, running: Running, output: str = "", **details: Any) -> None:
        super().__init__(message)
        self.running, self.output, self.details = running, output, details


class ProbeDied(ProbeProblem):
    """The probe process ended (any exit code, a signal) before its answer."""


class ProbeTimedOut(ProbeProblem):
    """The run's ``timeout`` passed; the probe was killed."""


class ProbeAborted(ProbeProblem):
    """The app's code stopped the run: ``sys.exit()`` in env.py or a revision (``why='exit'``), or a
    connection to a database that is not the sandbox (``why='guard'``); ``where`` has file and line."""

    def __init__(self, message: str, running: Running, why: str, where: Mapping[str, Any], **details: Any) -> None:
        super().__init__(message, running, **details)
        self.why, self.where = why, dict(where)


class ProbeCrashed(ProbeProblem):
    """An exception inside the probe's own code (a bug, or a setup it does not handle)."""


_ERRORS = {"app_load": AppLoadError, "unsupported": EnvironmentProblem, "driver": EnvironmentProblem,
           "database": DatabaseError, "usage": UsageError}


def with_printed(message: str, printed: str) -> str:
    """An error message followed by the last lines the app printed (indented), when it printed any."""
    printed = printed.strip()
    if not printed:
        return message
    return message + "\n  Last lines the app printed:\n" + "\n".join(f"    {line}" for line in printed.splitlines())


def database_message(event: Mapping[str, Any]) -> str:
    """A database problem the probe reported (``phase`` connect/read), worded for a person: server,
    database, user and the database's message; the URL with its password masked."""
    where = f"{event.get('host') or 'localhost'}{':' + str(event['port']) if event.get('port') else ''}"
    first = event.get("message")
    if event.get("phase") == "connect":
        return (f"Cannot connect to the {event.get('backend')} server at {where} (database "
                f"{event.get('database') or '(none)'}, user {event.get('user') or '(default)'}): {first}\n"
                "  Check that the server is running and reachable from here, and the user and password "
                f"(URL used: {event.get('url')}).")
    return (f"Connected to {event.get('url')} but could not read its version table: {first}\n  The user needs SELECT "
            "on the version table (alembic_version unless Migrate(version_table=...) says otherwise).")


def probe_environment(env: Mapping[str, str]) -> dict[str, str]:
    """The probe's environment: the caller's, as ``flask`` would see it."""
    return dict(env)


def prune_copies(older_than_s: float, now: float | None = None) -> list[str]:
    """Remove the probe copies (``ci_migrate_probe_*`` in the temporary directory) that runs killed
    together with their probe left behind, when last changed more than ``older_than_s`` seconds ago.
    A copy whose run is still alive is never removed, however old: its host and probe hold an
    ``flock`` on the copy's directory (:meth:`ProbeProcess.spawn`) that goes only with both
    processes. Returns the paths removed."""
    now = time.time() if now is None else now
    top = Path(tempfile.gettempdir())
    removed = []
    for entry in sorted(top.glob(COPY_PREFIX + "*")):
        try:
            stale = entry.is_dir() and (entry / PACKAGE).is_dir() and now - entry.stat().st_mtime > older_than_s
        except OSError:
            continue
        if stale and _remove_unlocked(entry):
            removed.append(str(entry))
    return removed


def _remove_unlocked(copy: Path) -> bool:
    """Remove ``copy`` unless a live run holds its lock; whether it was removed."""
    try:
        fd = os.open(copy, os.O_RDONLY)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:  # held: the run is alive
        return False
    else:
        shutil.rmtree(copy, ignore_errors=True)
        return True
    finally:
        os.close(fd)


def probe_source() -> Path:
    """The directory of the :mod:`ci_migrate.probe` package."""
    return Path(__file__).resolve().parent / "probe"


@dataclass
class ProbeProcess:
    """One probe process for one run. Use :meth:`start`, then :meth:`call` (or :meth:`send` +
    :meth:`receive` to overlap the host's own work), then :meth:`close`.

    ``on_event(event)`` sees every event (progress for the console); ``sandbox_for(binds)`` answers
    the probe's ``need_sandbox`` with ``{"id", "dialect", "urls"}``; ``drop_sandbox(id)`` releases one;
    ``checkpoint(event)`` runs while the probe waits at a ``checkpoint`` (the base snapshot is taken).
    ``deadline`` is a ``time.monotonic()`` value (None: no limit).
    """

    python: str
    root: Path
    env: Mapping[str, str]
    deadline: float | None = None
    on_event: Callable[[dict[str, Any]], None] | None = None
    sandbox_for: Callable[[list[str]], dict[str, Any]] | None = None
    drop_sandbox: Callable[[Any], None] | None = None
    checkpoint: Callable[[dict[str, Any]], None] | None = None
    running: Running = field(default_factory=Running)
    stack: dict[str, Any] = field(default_factory=dict)
    _proc: Any = None
    _events_fd: int = -1
    _buffer: bytes = b""
    _tmp: str | None = None
    _log: Any = None
    _lock_fd: int = -1
    _pending: str | None = None

    def start(self) -> ProbeProcess:
        """:meth:`spawn`, then :meth:`greet`."""
        return self.spawn().greet()

    def spawn(self) -> ProbeProcess:
        """Copy the probe into a private directory and start it, without waiting for it; raises
        :class:`EnvironmentProblem` (exit 3) when the interpreter cannot be started.

        The directory is locked (``flock``) before anything is copied, and the probe inherits the
        lock's descriptor: ``ci-migrate prune`` (:func:`prune_copies`) leaves it alone while either
        process lives."""
        self._tmp = tempfile.mkdtemp(prefix=COPY_PREFIX)
        self._lock_fd = os.open(self._tmp, os.O_RDONLY)
        fcntl.flock(self._lock_fd, fcntl.LOCK_EX)
        shutil.copytree(probe_source(), Path(self._tmp) / PACKAGE,
                        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        read_fd, write_fd = os.pipe()
        self._log = tempfile.TemporaryFile(prefix="ci_migrate_probe_output_")
        env = dict(self.env)
        env["CI_MIGRATE_PROBE_FD"] = str(write_fd)
        try:
            self._proc = subprocess.Popen(
                [self.python, "-c", _BOOTSTRAP.format(dir=self._tmp)], cwd=str(self.root), env=env,
                stdin=subprocess.PIPE, stdout=self._log, stderr=subprocess.STDOUT, pass_fds=(write_fd, self._lock_fd),
                start_new_session=True)
        except OSError as exc:
            os.close(read_fd)
            os.close(write_fd)
            self._cleanup()
            raise EnvironmentProblem(f"Cannot start the app's Python {self.python}: {exc.strerror or exc}") from None
        os.close(write_fd)
        self._events_fd = read_fd
        return self

    def greet(self) -> ProbeProcess:
        """Wait for the spawned probe's ``hello``; raises :class:`ProbeDied` when it ends first and
        :class:`EnvironmentProblem` when it speaks another protocol version."""
        hello = self._next_event()
        if hello is None or hello.get("type") != "hello":
            raise self._died("start-up")
        if hello.get("protocol") != PROTOCOL:
            raise EnvironmentProblem(f"The probe speaks protocol {hello.get('protocol')}, the host {PROTOCOL}.")
        return self

    # ------------------------------------------------------------------ requests
    def send(self, op: str, **data: Any) -> None:
        """Send one request (its answer is read by :meth:`receive`)."""
        self._write({"op": op, **data})
        self._pending = op

    def receive(self) -> dict[str, Any]:
        """Events until the pending request's ``done`` (returns its data) or failure (raises)."""
        op = self._pending
        while True:
            event = self._next_event()
            if event is None:
                raise self._died(op)
            kind = event.get("type")
            if self.on_event is not None:
                self.on_event(event)
            if kind == "running":
                self.running = Running(event.get("phase"), event.get("revision"), event.get("file"),
                                       event.get("direction"))
            elif kind == "stack":
                self.stack = {k: v for k, v in event.items() if k != "type"}
            elif kind == "need_sandbox":
                if self.sandbox_for is None:
                    raise UsageError("the probe asked for a sandbox, but this command has none")
                self._write({"op": "sandbox", **self.sandbox_for(list(event.get("binds") or [""]))})
            elif kind == "drop_sandbox":
                if self.drop_sandbox is not None:
                    self.drop_sandbox(event.get("id"))
            elif kind == "checkpoint":  # the probe waits: the host copies the sandbox, then says continue
                try:
                    if self.checkpoint is not None:
                        self.checkpoint(event)
                finally:
                    self._write({"op": "continue"})
            elif kind == "done":
                self._pending = None
                return dict(event.get("data") or {})
            elif kind == "error":
                self._pending = None
                raise self._error(event)
            elif kind == "aborted":
                self._pending = None
                where = event.get("where") or {}
                raise ProbeAborted(str(event.get("message") or "the run was stopped"), self._where(where, op),
                                   str(event.get("why")), where, output=self.output_tail(),
                                   **{k: v for k, v in event.items() if k not in ("type", "message", "where", "why")})

    def call(self, op: str, **data: Any) -> dict[str, Any]:
        """:meth:`send` then :meth:`receive`."""
        self.send(op, **data)
        return self.receive()

    def close(self, *, modules: bool = False) -> list[dict[str, str]] | None:
        """Ask an idle probe to finish (``bye``, within :data:`BYE_S` seconds), then make sure it is gone.

        A probe that is still working on a request (the run was interrupted: SIGTERM, an error in the
        host) is killed at once, process group and all: its statement must not hold the sandbox while
        the runner's grace period (about 10 s before SIGKILL on GitHub Actions) runs out. Returns the
        modules the probe had imported when ``modules`` is true (for the isolation test)."""
        found = None
        try:
            if self._pending is None and self._proc is not None and self._proc.poll() is None:
                self._write({"op": "exit", "modules": modules})
                limit = time.monotonic() + BYE_S
                self.deadline = limit if self.deadline is None else min(self.deadline, limit)
                while True:
                    event = self._next_event()
                    if event is None or event.get("type") == "bye":
                        found = event.get("modules") if event else None
                        break
                self._proc.stdin.close()
                self._proc.wait(timeout=BYE_S)  # it ends by itself (atexit handlers run); then the group goes
        except (CiMigrateError, OSError, subprocess.TimeoutExpired):
            pass
        finally:
            self.kill()
            self._cleanup()
        return found

    def discard(self) -> None:
        """End a probe that is not needed (never greeted, or from a wrong guess) and remove its copy."""
        self.kill()
        self._cleanup()

    def kill(self) -> None:
        """End the probe and everything it started (its process group), now."""
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:  # pragma: no cover - SIGKILL is not ignorable
            pass
        if proc.stdin is not None:
            try:
                proc.stdin.close()
            except OSError:
                pass

    def output_tail(self, lines: int = 30) -> str:
        """The last lines the probe's process (the app) printed on stdout/stderr."""
        if self._log is None:
            return ""
        try:
            self._log.seek(0)
            text = self._log.read().decode("utf-8", "replace")
        except (OSError, ValueError):
            return ""
        return "\n".join(text.rstrip().splitlines()[-lines:])

    # ------------------------------------------------------------------ plumbing
    def _write(self, message: dict[str, Any]) -> None:
        assert self._proc is not None and self._proc.stdin is not None
        try:
            self._proc.stdin.write((json.dumps(message) + "\n").encode("utf-8"))
            self._proc.stdin.flush()
        except (BrokenPipeError, OSError):
            raise self._died(self._pending or message.get("op")) from None

    def _next_event(self) -> dict[str, Any] | None:
        """The next event, or None when the probe closed its end (it exited)."""
        while b"\n" not in self._buffer:
            timeout = None if self.deadline is None else self.deadline - time.monotonic()
            if timeout is not None and timeout <= 0:
                raise self._timed_out()
            ready, _, _ = select.select([self._events_fd], [], [], timeout)
            if not ready:
                raise self._timed_out()
            chunk = os.read(self._events_fd, 65536)
            if not chunk:
                return None
            self._buffer += chunk
        line, self._buffer = self._buffer.split(b"\n", 1)
        try:
            return json.loads(line.decode("utf-8", "replace"))
        except ValueError:
            return {"type": "garbled", "text": line[:200].decode("utf-8", "replace")}

    def _where(self, where: Mapping[str, Any], op: str | None) -> Running:
        running = Running(self.running.phase or op, self.running.revision, self.running.file, self.running.direction)
        if where.get("revision"):
            running.revision = where["revision"]
        if where.get("file"):
            running.file = where["file"]
        return running

    def _died(self, op: str | None) -> ProbeDied:
        code = None
        if self._proc is not None:
            try:
                code = self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                self.kill()
                code = self._proc.returncode
        how = (f"was killed by signal {-code}" if code is not None and code < 0
               else f"exited with code {code}" if code is not None else "stopped answering")
        running = Running(self.running.phase or op, self.running.revision, self.running.file, self.running.direction)
        return ProbeDied(f"The app's process {how} while running {running.describe()}, before it reported a result.",
                         running, self.output_tail(), exit_code=code)

    def _timed_out(self) -> ProbeTimedOut:
        running = Running(self.running.phase or self._pending, self.running.revision, self.running.file,
                          self.running.direction)
        self.kill()
        hint = ("\n  Importing the app must not start a server, wait for input or poll a service; "
                "`flask db` imports it the same way.") if running.describe() == "the import of the app" else ""
        return ProbeTimedOut(f"The run took longer than its timeout and was stopped while running "
                             f"{running.describe()}.{hint}", running, self.output_tail())

    def _error(self, event: dict[str, Any]) -> CiMigrateError:
        kind = event.get("kind")
        message = str(event.get("message") or "the probe failed")
        if kind == "database" and event.get("phase"):
            return DatabaseError(database_message(event))
        if kind == "app_load" and (printed := self.output_tail(10).strip()):
            # the app's own words: a sys.exit() at import usually comes after the reason was printed
            message = with_printed(message, printed)
        if kind in _ERRORS:
            return _ERRORS[kind](message)
        running = self._where(event.get("where") or {}, event.get("op"))
        return ProbeCrashed(message, running, self.output_tail(), traceback=event.get("traceback"))

    def _cleanup(self) -> None:
        if self._events_fd >= 0:
            os.close(self._events_fd)
            self._events_fd = -1
        if self._log is not None:
            self._log.close()
            self._log = None
        if self._tmp:
            shutil.rmtree(self._tmp, ignore_errors=True)
            self._tmp = None
        if self._lock_fd >= 0:
            os.close(self._lock_fd)
            self._lock_fd = -1
