"""The cache key of a base snapshot: a hash of everything that shapes the sandbox at the base's heads.

That is: the revision files that run before the snapshot (each file's bytes, as this checkout has
them), the heads it stands at, env.py and alembic.ini, the baseline (its settings and schema file),
the PostgreSQL extensions, the binds and version table, the app stack's versions as the probe
reported them (Python, Flask, SQLAlchemy, alembic, the driver…), ci-migrate's version, and the
sandbox dialect with the server's major version. Code the revisions import from the app itself is
not in it: a revision that imports the models runs them as they are on the branch.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class SnapshotKey:
    """``digest``: sha256 hex of the inputs; ``dialect`` and ``server_major`` say where it applies."""

    digest: str
    dialect: str
    server_major: str

    @property
    def short(self) -> str:
        """The first 20 hex digits (names of template databases)."""
        return self.digest[:20]


def sha256_of(path: Path) -> str:
    """sha256 hex of a file's bytes, read in blocks of 1 MiB; raises ``OSError``."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def file_digest(path: Path | None) -> str | None:
    """:func:`sha256_of` a file; None when there is no such file."""
    if path is None:
        return None
    try:
        return sha256_of(Path(path))
    except OSError:
        return None


@dataclass(frozen=True)
class KeyInputs:
    """What a snapshot depends on (see the module docstring). ``revisions``: (id, file digest) of every
    revision applied in the snapshot; ``files``: (name, digest) of env.py, alembic.ini and the
    baseline schema file; ``settings``: the baseline and extensions as plain data."""

    dialect: str
    server_major: str
    tool_version: str
    stack: Mapping[str, Any]
    heads: tuple[str, ...]
    revisions: tuple[tuple[str, str | None], ...]
    files: tuple[tuple[str, str | None], ...]
    binds: tuple[str, ...]
    version_table: str | None
    settings: Mapping[str, Any]

    def key(self) -> SnapshotKey:
        data = {"dialect": self.dialect, "server_major": self.server_major, "tool": self.tool_version,
                "stack": dict(self.stack), "heads": sorted(self.heads), "revisions": sorted(self.revisions),
                "files": sorted(self.files, key=lambda f: f[0]), "binds": sorted(self.binds),
                "version_table": self.version_table, "settings": dict(self.settings)}
        text = json.dumps(data, sort_keys=True, default=str)
        return SnapshotKey(hashlib.sha256(text.encode()).hexdigest(), self.dialect, self.server_major)


def revision_digests(files: Mapping[str, Path], revisions: Iterable[str]) -> tuple[tuple[str, str | None], ...]:
    """``(revision, sha256 of its file)`` for ``revisions`` (``files``: revision id → path)."""
    return tuple((r, file_digest(files.get(r))) for r in sorted(set(revisions)))
