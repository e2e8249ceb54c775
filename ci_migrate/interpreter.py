"""Which Python runs the probe: the app's own interpreter.

Order (first found wins): ``--python PATH``, ``python:`` in the config, ``CI_MIGRATE_PYTHON``
(both already merged into ``Settings.python``, flag > env > file); else ``$VIRTUAL_ENV`` (an
activated venv); else ``.venv/`` or ``venv/`` in the project root; else the interpreter ci-migrate
itself runs in (ci-migrate installed into the app's venv).
"""

from __future__ import annotations

import os
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from ci_migrate.errors import UsageError

_BIN = "Scripts" if os.name == "nt" else "bin"
_EXE = "python.exe" if os.name == "nt" else "python"


@dataclass(frozen=True)
class Interpreter:
    """``path`` of the Python executable and ``source``: how it was chosen, in words
    (``--python``, ``$VIRTUAL_ENV``, ``.venv/ in the project``, ``ci-migrate's own``…)."""

    path: str
    source: str


def _in_venv(directory: Path) -> Path | None:
    candidate = directory / _BIN / _EXE
    return candidate if candidate.is_file() else None


def resolve(explicit: str | None, explicit_source: str, root: Path, env: Mapping[str, str]) -> Interpreter:
    """The interpreter for the probe; see the module docstring for the order.

    ``explicit`` is ``Settings.python`` (from ``--python``, ``CI_MIGRATE_PYTHON`` or ``python:``) and
    ``explicit_source`` says which. A path that is a venv directory means its ``bin/python``.
    Raises :class:`UsageError` (exit 2) when an explicit path is not an executable Python.
    """
    if explicit:
        path = Path(explicit).expanduser()
        if not path.is_absolute():
            path = (root / path) if (root / path).exists() else Path.cwd() / path
        if path.is_dir():
            inside = _in_venv(path)
            if inside is None:
                raise UsageError(f"{explicit_source}: {explicit} is a directory without {_BIN}/{_EXE}; give the "
                                 "path of the app's Python (e.g. .venv/bin/python) or of its virtualenv")
            path = inside
        if not path.is_file() or not os.access(path, os.X_OK):
            raise UsageError(f"{explicit_source}: {explicit} is not an executable Python interpreter")
        return Interpreter(os.path.normpath(os.path.abspath(path)), explicit_source)
    active = env.get("VIRTUAL_ENV", "").strip()
    if active:
        inside = _in_venv(Path(active))
        if inside is not None:
            return Interpreter(str(inside), "$VIRTUAL_ENV")
    for name in (".venv", "venv"):
        inside = _in_venv(root / name)
        if inside is not None:
            return Interpreter(str(inside), f"{name}/ in the project")
    return Interpreter(os.path.normpath(os.path.abspath(sys.executable)), "ci-migrate's own")
