"""One run's moving parts on the host side: the probe process, the sandboxes and the clock.

:func:`open_runtime` starts the probe in the app's interpreter (:mod:`ci_migrate.interpreter`), or
adopts the one :mod:`ci_migrate.early_probe` started before the settings were loaded, and sends it
the ``load`` request at once; while the probe imports the app, the host prunes old
sandboxes and makes the first one (:meth:`Runtime.sandbox`). Whatever happens — a finding, an
error, SIGTERM, a probe that died — closing the runtime kills the probe and drops every sandbox.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

from ci_migrate.early_probe import adopt
from ci_migrate.facts import ProjectFacts
from ci_migrate.interpreter import Interpreter, resolve
from ci_migrate.probe import PROTOCOL
from ci_migrate.probe_process import ProbeProcess, probe_environment
from ci_migrate.sandbox import Sandbox, Sandboxes, drop_on_signals, prefix_from, prune

DEFAULT_TIMEOUT_S = 20 * 60


@dataclass
class Runtime:
    """The probe, the project it loaded, and the run's sandboxes (None when nothing needs one)."""

    probe: ProbeProcess
    interpreter: Interpreter
    project: ProjectFacts
    sandboxes: Sandboxes | None
    settings: Any = None
    notices: list[str] = field(default_factory=list)
    base_models: Any = None  # BaseModels: build every sandbox from the base branch's models
    _first: Any = None  # Future of the first sandbox
    _main: Sandbox | None = None
    # ci_migrate.cache.base: fills the main sandbox from the base snapshot (True when it did), and
    # makes the walks' sandboxes from it (None: none)
    restore_main: Callable[[Sandbox], bool] | None = None
    walk_sandbox: Callable[[list[str | None]], Sandbox | None] | None = None

    def sandbox(self) -> Sandbox:
        """The run's main sandbox (one database per bind of the app), made once and sent to the probe."""
        if self._main is None:
            assert self.sandboxes is not None
            first = self._first.result() if self._first is not None else None
            self._first = None
            if first is None:
                first = self.sandboxes.create(self.project.bind_keys)
            main = self.sandboxes.extend(first, self.project.bind_keys)
            if self.restore_main is not None and self.restore_main(main):
                main.restored = True
            else:
                main = self.prepared(main)
            self._main = main
            self.probe.call("sandbox", **self._main.message())
        return self._main

    def fresh_sandbox(self, binds: list[str]) -> dict[str, Any]:
        """A new sandbox for the probe's ``need_sandbox`` (the round trip, the lock trace)."""
        assert self.sandboxes is not None
        keys = [b or None for b in binds]
        restored = self.walk_sandbox(keys) if self.walk_sandbox is not None else None
        return (restored or self.prepared(self.sandboxes.create(keys))).message()

    def prepared(self, sandbox: Sandbox) -> Sandbox:
        """What every sandbox gets before the probe sees it: the config's ``extensions``
        (PostgreSQL) in each database, then the baseline schema file, if any, in the default one."""
        from ci_migrate.baseline import create_extensions, load_schema
        from ci_migrate.sandbox import host_url_text

        settings = self.settings
        if settings is None:
            return sandbox
        for url in sandbox.urls.values():
            create_extensions(host_url_text(url), settings.extensions)
        if self.base_models is not None:
            self.base_models.build(sandbox)
            return sandbox
        baseline = settings.baseline
        if baseline is not None and baseline.schema_file:
            path = settings.resolve_path(baseline.schema_file)
            loaded = load_schema(host_url_text(sandbox.urls[None]), path.read_text(encoding="utf-8"),
                                 source=baseline.schema_file)
            for note in loaded.skipped:
                if note not in self.notices:
                    self.notices.append(f"baseline schema {baseline.schema_file}: skipped {note}")
        return sandbox


@contextlib.contextmanager
def open_runtime(settings: Any, env: Mapping[str, str], *, sandbox: bool, target_dialect: str | None = None,
                 refuse: list[Any] | None = None, on_event: Callable[[dict[str, Any]], None] | None = None,
                 timeout_s: float | None = None) -> Iterator[Runtime]:
    """Start the probe, load the app, and yield the :class:`Runtime`.

    ``sandbox``: the run needs sandboxes (made from ``settings.sandbox``; the first one is made while
    the app is imported). ``timeout_s`` bounds the whole probe (None: no limit). Raises what
    :class:`ProbeProcess` raises for a failed load (``AppLoadError``, ``EnvironmentProblem``, exit 3).
    """
    interpreter = resolve(settings.python, settings.python_source, settings.root, env)
    sandboxes = None
    spec = None
    if sandbox:
        spec = settings.sandbox_url(env)
        sandboxes = Sandboxes(spec, keep=settings.keep_sandbox, refuse=refuse or [], prefix=prefix_from(env))
    deadline = time.monotonic() + timeout_s if timeout_s else None
    early = adopt(interpreter.path, settings.root, env)
    probe = early or ProbeProcess(python=interpreter.path, root=settings.root, env=probe_environment(env))
    probe.deadline, probe.on_event = deadline, on_event
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ci-migrate-sandbox")
    with drop_on_signals(), contextlib.ExitStack() as stack:
        # Undone in reverse: the probe ends, the sandbox still being made meanwhile is waited for, and
        # only then is every sandbox dropped (one made after close() would be left behind).
        if sandboxes is not None:
            stack.callback(sandboxes.close)
        stack.callback(pool.shutdown, wait=True)
        stack.callback(probe.close)
        if early is not None:
            early.greet()
        else:
            probe.start()
        probe.send("load", **load_request(settings, settings.root, target_dialect=target_dialect,
                                          sandbox_dialect=sandboxes.dialect if sandboxes else None))
        notices: list[str] = []
        first = None
        if sandboxes is not None:
            first = pool.submit(_prepare, sandboxes, spec, settings, notices)
        facts = ProjectFacts.from_data(probe.receive())
        runtime = Runtime(probe=probe, interpreter=interpreter, project=facts, sandboxes=sandboxes,
                          settings=settings, notices=notices, _first=first)
        probe.sandbox_for = runtime.fresh_sandbox
        if sandboxes is not None:
            probe.drop_sandbox = sandboxes.drop
        try:
            yield runtime
        finally:
            if runtime._first is not None:  # made while the app loaded but never used: still dropped
                with contextlib.suppress(Exception):
                    runtime._first.result()


def load_request(settings: Any, root: Path, *, sandbox_dialect: str | None,
                 target_dialect: str | None = None) -> dict[str, Any]:
    """The probe's ``load`` request for the project checked out at ``root`` (the settings' root, or a
    checkout of the base branch): the app, its migrations directory and the extra script directories
    (``{"path": absolute, "version_table": name}``, upgraded after the app's history) that exist there."""
    own = settings.app_migrations
    extra = [{"path": str(root / d.path), "version_table": d.version_table}
             for d in settings.extra_migrations if (root / d.path).is_dir()]
    return {"protocol": PROTOCOL, "root": str(root), "app": settings.app,
            "migrations": str(root / own) if own else None, "script_dirs": extra,
            "sandbox_dialect": sandbox_dialect, "target_dialect": target_dialect}


def _prepare(sandboxes: Sandboxes, spec: str, settings: Any, notices: list[str]) -> Sandbox:
    """Prune what killed runs left (server sandboxes, unless turned off), then make the first sandbox."""
    if sandboxes.server is not None and settings.prune_after:
        with contextlib.suppress(Exception):
            dropped = prune(spec, settings.prune_after, sandboxes.prefix)
            if dropped:
                notices.append(f"dropped {len(dropped)} sandbox database(s) older than "
                               f"{settings.prune_after / 3600:g} h left by killed runs: {', '.join(dropped)}")
    return sandboxes.create([None])


def timeout_for(settings: Any) -> float | None:
    """The probe's time limit in seconds (``timeout`` setting; 0 = none)."""
    value = settings.timeout if settings.timeout is not None else DEFAULT_TIMEOUT_S
    return float(value) or None

