"""Where the cache lives: the ``cache-dir`` setting (``CI_MIGRATE_CACHE_DIR``, ``--cache-dir``).

Default: ``$XDG_CACHE_HOME/ci-migrate``, else ``~/.cache/ci-migrate``. ``off`` (or YAML ``false``)
turns the cache off. A relative path is relative to the project root (the config file's directory).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

OFF_WORDS = ("off", "false", "no", "none")


def default_dir(env: Mapping[str, str]) -> Path:
    """``$XDG_CACHE_HOME/ci-migrate`` (when set and absolute), else ``~/.cache/ci-migrate``."""
    xdg = (env.get("XDG_CACHE_HOME") or "").strip()
    base = Path(xdg) if xdg and Path(xdg).is_absolute() else Path.home() / ".cache"
    return base / "ci-migrate"


def normalize(value: Any) -> Any:
    """YAML ``false`` → ``"off"``; other values as given (a pydantic BeforeValidator)."""
    return "off" if value is False else value


def problem(value: str, root: Path | None) -> str | None:
    """Why ``value`` cannot be the cache directory, or None: empty, or an existing path that is not a
    directory (named, resolved against ``root``)."""
    text = value.strip()
    if not text:
        return "must be a directory path, or off (got an empty value)"
    if text.lower() in OFF_WORDS:
        return None
    path = Path(text).expanduser()
    if root is not None and not path.is_absolute():
        path = Path(root) / path
    if path.exists() and not path.is_dir():
        return f"{path} is a file, not a directory: give a directory for the cache (it is made if missing), or off"
    return None


def resolve(value: str | None, root: Path, env: Mapping[str, str]) -> Path | None:
    """The cache directory for the ``cache-dir`` setting ``value`` (None: the default), or None when
    it is off."""
    if value is None:
        return default_dir(env)
    text = value.strip()
    if text.lower() in OFF_WORDS:
        return None
    path = Path(text).expanduser()
    return path if path.is_absolute() else root / path
