"""The cache directory's entries: one directory per snapshot key, written atomically.

Layout: ``<cache dir>/<dialect>-<server major>/<key digest>/`` holding ``manifest.json`` (an
:class:`Entry`) and the snapshot's files (SQLite copies, SQL dumps). An entry is built in a
temporary directory next to it and renamed into place, so a reader sees a whole entry or none;
each file's sha256 is in the manifest and checked before it is used. The newest :data:`KEEP`
entries per dialect directory are kept.
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from ci_migrate.cache.key import sha256_of

MANIFEST = "manifest.json"
FORMAT = 1
KEEP = 3  # entries kept per dialect directory (older ones are removed, with their template databases)


class CacheDoubt(Exception):
    """The cache cannot be trusted or used for this run; the message says why, in words."""


@dataclass
class Entry:
    """One cached base snapshot.

    ``templates``: bind (``''`` = default) → template database on ``server`` (PostgreSQL);
    ``files``: bind → file name in the entry directory (a SQLite copy or an SQL dump), with
    ``sha256`` per file name; ``heads``: the base's heads it stands at; ``revisions``: how many
    revisions it holds; ``created``: UNIX time. ``path`` is the entry directory (not stored).
    """

    key: str
    dialect: str
    server_major: str
    heads: list[str]
    binds: list[str]
    revisions: int = 0
    server: str | None = None
    templates: dict[str, str] = field(default_factory=dict)
    files: dict[str, str] = field(default_factory=dict)
    sha256: dict[str, str] = field(default_factory=dict)
    version: str = ""
    created: float = 0.0
    format: int = FORMAT
    path: Path | None = None

    def to_json(self) -> str:
        data = asdict(self)
        data.pop("path")
        return json.dumps(data, indent=2, sort_keys=True)

    @classmethod
    def from_json(cls, text: str, path: Path) -> Entry:
        """Raises :class:`CacheDoubt` for anything but a manifest of this format."""
        try:
            data = json.loads(text)
        except ValueError as exc:
            raise CacheDoubt(f"the cache entry {path} is corrupt ({exc})") from None
        if not isinstance(data, dict) or data.get("format") != FORMAT:
            raise CacheDoubt(f"the cache entry {path} is corrupt (not a manifest of format {FORMAT})")
        try:
            entry = cls(**{k: v for k, v in data.items() if k != "path"}, path=path)
        except TypeError as exc:
            raise CacheDoubt(f"the cache entry {path} is corrupt ({exc})") from None
        if not all(isinstance(v, t) for v, t in ((entry.heads, list), (entry.files, dict), (entry.templates, dict),
                                                  (entry.sha256, dict), (entry.key, str))):
            raise CacheDoubt(f"the cache entry {path} is corrupt (wrong field types)")
        return entry

    def file(self, bind: str) -> Path | None:
        """The verified file of ``bind``; None when the entry has none. Raises :class:`CacheDoubt` when
        it is missing or its sha256 differs from the manifest's."""
        name = self.files.get(bind)
        if name is None or self.path is None:
            return None
        path = self.path / name
        try:
            digest = sha256_of(path)
        except OSError:
            raise CacheDoubt(f"the cache file {path} is missing") from None
        if digest != self.sha256.get(name):
            raise CacheDoubt(f"the cache file {path} is corrupt (its sha256 differs from the manifest's)")
        return path


class Store:
    """The entries of one dialect and server major version under ``root`` (the cache directory)."""

    def __init__(self, root: Path, dialect: str, server_major: str):
        self.root = root
        self.dir = root / f"{dialect}-{server_major}"

    def lookup(self, key: str) -> Entry | None:
        """The entry for ``key``; None when there is none. Raises :class:`CacheDoubt` when it is
        there but unreadable, or its manifest names another key."""
        where = self.dir / key
        if not where.is_dir():
            return None
        try:
            text = (where / MANIFEST).read_text(encoding="utf-8")
        except OSError as exc:
            raise CacheDoubt(f"the cache entry {where} has no readable manifest ({exc.strerror})") from None
        entry = Entry.from_json(text, where)
        if entry.key != key:
            raise CacheDoubt(f"the cache entry {where} is for another key")
        return entry

    def staging(self) -> Path:
        """A new empty directory next to the entries (same file system: the rename is atomic)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        path = self.dir / f".tmp-{secrets.token_hex(6)}"
        path.mkdir()
        return path

    def save(self, entry: Entry, staging: Path) -> Entry:
        """Write ``entry``'s manifest into ``staging`` (which holds its files), then rename it to the
        key's directory. When another run saved the same key first, theirs is kept and ``staging``
        removed. Raises OSError."""
        entry.created = entry.created or time.time()
        entry.sha256 = {name: sha256_of(staging / name) for name in entry.files.values()}
        tmp = staging / (MANIFEST + ".tmp")
        tmp.write_text(entry.to_json(), encoding="utf-8")
        os.replace(tmp, staging / MANIFEST)
        final = self.dir / entry.key
        try:
            os.rename(staging, final)
        except OSError:
            if not final.is_dir():
                raise
            try:
                self.lookup(entry.key)  # another run saved it first: theirs is as good
                shutil.rmtree(staging, ignore_errors=True)
            except CacheDoubt:  # a corrupt entry: replace it
                aside = self.dir / f".tmp-{secrets.token_hex(6)}"
                os.rename(final, aside)
                os.rename(staging, final)
                shutil.rmtree(aside, ignore_errors=True)
        entry.path = final
        return entry

    def evict(self, keep: int = KEEP) -> list[Entry]:
        """Remove all but the newest ``keep`` entries (and stale staging directories older than a
        day); returns the entries removed that could be read (their templates are the caller's)."""
        if not self.dir.is_dir():
            return []
        entries: list[Entry] = []
        for path in self.dir.iterdir():
            if path.name.startswith(".tmp-"):
                with contextlib.suppress(OSError):
                    if time.time() - path.stat().st_mtime > 86400:
                        shutil.rmtree(path, ignore_errors=True)
                continue
            try:
                entries.append(Entry.from_json((path / MANIFEST).read_text(encoding="utf-8"), path))
            except (OSError, CacheDoubt):
                shutil.rmtree(path, ignore_errors=True)
        entries.sort(key=lambda e: e.created, reverse=True)
        removed = entries[keep:]
        for entry in removed:
            if entry.path is not None:
                shutil.rmtree(entry.path, ignore_errors=True)
        return removed
