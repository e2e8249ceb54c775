"""One run's use of the cached base snapshot: restore it, or build it at the base's heads.

Used by the replay check (:mod:`ci_migrate.checks.replay`) on a pull-request run, and by the lock
trace and the round trip for their databases (:func:`ci_migrate.checks.walk.databases`):

1. :func:`start` decides whether the run can use a snapshot at all (a pull request whose base is
   known, no create-all baseline, a PostgreSQL/SQLite/MySQL sandbox) and computes the key.
2. :meth:`BaseSnapshot.restore` fills the main sandbox from the cache entry of that key, if there
   is one; the probe then replays only the pending revisions.
3. Otherwise the replay stops at the base's heads (the probe's ``checkpoint``) and
   :meth:`BaseSnapshot.build` keeps the sandbox there: a template database, file copies or a dump.
4. :meth:`BaseSnapshot.fresh_sandbox` gives the walks databases at the base's heads from it. As
   many as the run's walks will ask for (:attr:`BaseSnapshot.walks`) are copied in the background,
   side by side, as soon as the snapshot is there — while the probe replays the pending revisions
   and compares the models — and before the ``pg_dump``, which would hold the template.
5. :meth:`BaseSnapshot.close` saves the entry into the cache directory (atomically) and evicts old
   ones; a template nobody will find again is dropped.

Any doubt is one line in :attr:`BaseSnapshot.notes` and the replay facts, and the run replays in full.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_migrate import __version__
from ci_migrate.cache import dialects, location
from ci_migrate.cache.key import KeyInputs, SnapshotKey, file_digest, revision_digests
from ci_migrate.cache.store import CacheDoubt, Entry, Store


@dataclass
class CacheOutcome:
    """What the cache did for this run: ``state`` restored | built | full (a full replay; ``reason``
    says why) | unsaved (built for this run's walks, not kept); ``how`` template | dump | copy."""

    state: str
    key: str | None = None
    how: str | None = None
    reason: str | None = None
    revisions: int = 0


class BaseSnapshot:
    """The base snapshot of one run (see the module docstring)."""

    def __init__(self, runtime: Any, ops: Any, key: SnapshotKey, store: Store | None, heads: list[str],
                 revisions: int):
        self.runtime, self.ops, self.key, self.store = runtime, ops, key, store
        self.heads, self.revisions = heads, revisions
        self.entry: Entry | None = None  # what walks restore from (restored, or built by this run)
        self.walks = 0  # walk databases the run will ask for (copied ahead)
        self._ahead: list[concurrent.futures.Future] = []  # walk sandboxes being copied (None: failed)
        self.outcome = CacheOutcome("full", key.digest, revisions=revisions)
        self.notes: list[str] = []
        self._staging: Path | None = None
        self._dump: concurrent.futures.Future | None = None
        self._pool: concurrent.futures.ThreadPoolExecutor | None = None

    # -- the main sandbox
    def restore(self, sandbox: Any) -> bool:
        """Fill the main sandbox from the cache entry of this run's key; False (and one note) when
        there is none or it cannot be used — the sandbox is then empty again, for a full replay."""
        if self.store is None:
            self._doubt("the cache is off (cache-dir: off)", note=False)
            return False
        try:
            entry = self.store.lookup(self.key.digest)
            if entry is None:
                self._doubt(f"no cached snapshot of the base at {', '.join(self.heads) or 'base'} yet "
                            f"(key {self.key.short}, {self.store.dir})")
                return False
            how = self.ops.restore(sandbox, entry)
        except CacheDoubt as exc:
            self._doubt(str(exc))
            self._empty(sandbox)
            return False
        except Exception as exc:  # noqa: BLE001 - the cache never fails a run
            self._doubt(f"restoring it failed: {type(exc).__name__}: {exc}")
            self._empty(sandbox)
            return False
        self.entry = entry
        self.outcome = CacheOutcome("restored", self.key.digest, how, revisions=entry.revisions)
        self._copy_ahead()
        return True

    def _empty(self, sandbox: Any) -> None:
        """Make a half-restored sandbox empty again (drop and create its databases, or its files)."""
        from ci_migrate.sandbox import admin_engine, drop_databases, quote_name

        with contextlib.suppress(Exception):
            if sandbox.tmpdir:
                for url in sandbox.urls.values():
                    Path(url.database).unlink(missing_ok=True)
                return
            server = self.runtime.sandboxes.server
            drop_databases(server, sandbox.names)
            backend = server.get_backend_name()
            engine = admin_engine(server)
            try:
                with engine.connect() as conn:
                    for name in sandbox.names:
                        conn.exec_driver_sql(f"CREATE DATABASE {quote_name(backend, name)}")
            finally:
                engine.dispose()

    def build(self, sandbox: Any) -> None:
        """At the probe's checkpoint (the main sandbox at the base's heads, no connection open): keep
        it. PostgreSQL: template databases now, their ``pg_dump`` in the background; SQLite: file
        copies; MySQL: ``mysqldump``. A failure is a note; the run goes on."""
        try:
            self._staging = self.store.staging() if self.store is not None else Path(
                tempfile.mkdtemp(prefix="ci-migrate-base-"))
            entry = Entry(key=self.key.digest, dialect=self.key.dialect, server_major=self.key.server_major,
                          heads=list(self.heads), binds=[dialects.bind_name(b) for b in sandbox.urls],
                          revisions=self.revisions, server=self.ops.identity(), version=__version__,
                          path=self._staging)
            if isinstance(self.ops, dialects.Postgres):
                entry.templates = self.ops.keep(sandbox, self.key.digest)
            elif isinstance(self.ops, dialects.Sqlite):
                entry.files = self.ops.copy_out(sandbox, self._staging)
            else:
                entry.files = self.ops.dump(sandbox, self._staging)
                if not entry.files:
                    raise CacheDoubt("mysqldump (and the mysql client) are not installed")
        except Exception as exc:  # noqa: BLE001 - CacheDoubt, an unwritable cache directory…: never a failed run
            why = str(exc) if isinstance(exc, CacheDoubt) else f"{type(exc).__name__}: {exc}"
            self.notes.append(f"base snapshot not kept: {why}")
            self.outcome.reason = f"{self.outcome.reason}; not kept: {why}" if self.outcome.reason else f"not kept: {why}"
            return
        self.entry = entry
        self.outcome.state = "built" if self.store is not None else "unsaved"
        self._copy_ahead()  # first: a copy would wait for the dump's connection to the template
        if isinstance(self.ops, dialects.Postgres) and self.store is not None:
            self._dump = self._background().submit(self._dump_after, list(self._ahead), dict(entry.templates),
                                                   self._staging)

    def _dump_after(self, copies: list[concurrent.futures.Future], templates: dict[str, str],
                    staging: Path) -> dict[str, str]:
        concurrent.futures.wait(copies)  # pg_dump's connection to a template would hold a copy back
        return self.ops.dump(templates, staging)

    # -- the walks' databases
    def _background(self) -> concurrent.futures.ThreadPoolExecutor:
        """Two threads: the walks' databases are copied side by side (the dump queues behind them)."""
        if self._pool is None:
            self._pool = concurrent.futures.ThreadPoolExecutor(2, thread_name_prefix="ci-migrate-snapshot")
        return self._pool

    def _copy_ahead(self) -> None:
        binds = list(self.runtime.project.bind_keys)
        self._ahead = [self._background().submit(self._copy, binds) for _ in range(self.walks)]

    def fresh_sandbox(self, binds: list[str | None]) -> Any:
        """A new sandbox at the base's heads, from the snapshot (one copied ahead when there is one
        left); None when there is none (or it fails: the walk then brings an empty database up as
        before)."""
        if self.entry is None:
            return None
        if self._ahead and list(binds) == list(self.runtime.project.bind_keys):
            return self._ahead.pop(0).result()
        if self._dump is not None:  # pg_dump is connected to the template: a copy would wait for it
            concurrent.futures.wait([self._dump])
        return self._copy(binds)

    def _copy(self, binds: list[str | None]) -> Any:
        entry = self.entry
        assert entry is not None
        sandboxes = self.runtime.sandboxes
        try:
            if isinstance(self.ops, dialects.Postgres):
                sandbox = sandboxes.create(binds, templates={b: entry.templates[dialects.bind_name(b)] for b in binds})
            else:
                sandbox = sandboxes.create(binds)
                try:
                    self.ops.restore(sandbox, entry)
                except CacheDoubt:
                    sandboxes.drop(sandbox.id)
                    return None
        except Exception:  # noqa: BLE001 - the walk falls back to its own replay
            return None
        sandbox.restored = True
        return sandbox

    # -- the end of the run
    def close(self) -> None:
        """Save what :meth:`build` made (waiting for the dump), evict old entries, and drop templates
        that no saved entry names. Never raises."""
        entry, staging = self.entry, self._staging
        try:
            if self._pool is not None:  # copies still being made use the templates (and are dropped with the run)
                self._pool.shutdown(wait=True)
            if staging is None or entry is None or self.outcome.state not in ("built", "unsaved"):
                return
            if self._dump is not None:
                try:
                    entry.files = self._dump.result()
                except CacheDoubt as exc:
                    self.notes.append(f"base snapshot: no dump kept ({exc}); the template database still serves")
            if self.store is None:
                self._drop_templates(entry)
                return
            try:
                self.store.save(entry, staging)
                staging = None
            except OSError as exc:
                self.notes.append(f"base snapshot not kept: writing {self.store.dir} failed ({exc.strerror or exc})")
                self.outcome.state = "unsaved"
                self._drop_templates(entry)
                return
            for old in self.store.evict():
                if old.server == self.ops.identity() and old.key != entry.key:
                    self._drop_templates(old)
        except Exception as exc:  # noqa: BLE001 - the cache never fails a run
            self.notes.append(f"base snapshot not kept: {type(exc).__name__}: {exc}")
        finally:
            if staging is not None:
                shutil.rmtree(staging, ignore_errors=True)

    def _drop_templates(self, entry: Entry) -> None:
        if isinstance(self.ops, dialects.Postgres) and entry.templates:
            with contextlib.suppress(CacheDoubt):
                self.ops.drop(list(entry.templates.values()))

    def _doubt(self, reason: str, *, note: bool = True) -> None:
        self.outcome = CacheOutcome("full", self.key.digest, reason=reason, revisions=self.revisions)
        if note:
            self.notes.append(f"base snapshot: full replay — {reason}")

    @property
    def summary(self) -> str | None:
        """Words for the replay summary (restored), else None."""
        if self.outcome.state == "restored":
            return f"the base's {self.outcome.revisions} from the cached snapshot, {self.outcome.how}"
        return None


def start(ctx: Any, at: list[str] | None) -> BaseSnapshot | None:
    """The run's :class:`BaseSnapshot`, or None when a snapshot does not apply: no pull-request base
    or one without revisions, a create-all baseline (the models are not in the key), a pending revision below the base's heads
    (the pull request modifies a merged revision: what stands at the base's heads is not the base), a
    sandbox dialect without copies, or an unreachable server (never an error here)."""
    settings, runtime, pending = ctx.settings, ctx.runtime, ctx.pending
    if not at or pending is None or runtime.sandboxes is None or runtime.base_models is not None:
        return None  # (an empty base, [], has nothing to keep)
    if settings.baseline is not None and settings.baseline.create_all:
        return None
    if ctx.history.ancestors(at) & set(pending.revisions):
        return None  # a pending revision (a modified merged one) runs before the base's heads: not the base
    ops = dialects.for_sandboxes(runtime.sandboxes)
    if ops is None:
        return None
    try:
        major = ops.major()
    except Exception:  # noqa: BLE001 - no cache rather than a failed run
        return None
    applied = [r for r in ctx.history.order if r not in set(pending.revisions)]
    key = key_inputs(ctx, ops.dialect, major, at, applied).key()
    root = location.resolve(getattr(settings, "cache_dir", None), settings.root, ctx.env)
    return BaseSnapshot(runtime, ops, key, Store(root, ops.dialect, major) if root is not None else None,
                        list(at), len(applied))


def key_inputs(ctx: Any, dialect: str, major: str, at: list[str], applied: list[str]) -> KeyInputs:
    """The :class:`KeyInputs` of this run's base snapshot (see :mod:`ci_migrate.cache.key`)."""
    project, settings = ctx.project, ctx.settings
    baseline = settings.baseline
    files = [("env.py", file_digest(project.migrations_dir / "env.py")),
             ("alembic.ini", file_digest(project.migrations_dir / "alembic.ini"))]
    if baseline is not None and baseline.schema_file:
        files.append(("baseline", file_digest(settings.resolve_path(baseline.schema_file))))
    stack = ctx.runtime.probe.stack or {}
    return KeyInputs(
        dialect=dialect, server_major=major, tool_version=__version__,
        stack={"python": stack.get("python_version"), "packages": stack.get("packages") or {}},
        heads=tuple(at), revisions=revision_digests(ctx.revision_files, applied), files=tuple(files),
        binds=tuple(b or "" for b in project.bind_keys),
        version_table=f"{project.version_table_schema or ''}.{project.version_table or 'alembic_version'}",
        settings={"baseline": baseline.model_dump() if baseline is not None else None,
                  "extensions": sorted(settings.extensions)})


