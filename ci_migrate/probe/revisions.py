"""Read the migrations: every revision file loaded once (the graph scan), then alembic's own history.

Alembic's ``ScriptDirectory`` stops at the first broken file and only warns about duplicate ids, so
:func:`scan` loads each file itself, with alembic's filename rule and loader
(``alembic.util.load_python_file``), and reports every file — loaded or not — as plain data for
the host's graph check. The modules it loads are kept (:func:`.glue.capture_revision_modules`) and
seed the one ``ScriptDirectory`` every later alembic command uses. :func:`history` then asks alembic
for the history (``walk_revisions``, topological) when it can load it.
"""

from __future__ import annotations

import os
import re
import traceback
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from . import glue

try:  # alembic's own filename rule for revision files (ScriptDirectory, sourceless=False)
    from alembic.script.base import _only_source_rev_file as _SOURCE_FILE
except ImportError:  # pragma: no cover - private name moved
    _SOURCE_FILE = re.compile(r"(?!\.\#|__init__)(.*\.py)$")


def _strings(value: Any) -> List[str]:
    from alembic.util import to_tuple

    return [str(v) for v in to_tuple(value, default=())]


def scan(project: Any, on_file: Any = None) -> Dict[str, Any]:
    """Load every revision file of the project's version locations and never stop at the first failure.

    Mirrors ``ScriptDirectory._load_revisions``: missing directories are skipped, file names must
    match alembic's ``_only_source_rev_file``, ``__pycache__`` is skipped, subdirectories are walked
    only with ``recursive_version_locations``, a file reached twice is loaded once. Any exception a
    file raises (``SystemExit`` included) is recorded instead. ``on_file(path)`` is called before each
    file is executed.

    Returns ``{"versions_dirs": [abs paths], "recursive": bool, "revisions": [{path, revision,
    down_revisions, branch_labels, depends_on, message, error, error_line}]}`` sorted by path, and
    ``"directories"``: the same, plus ``path``, ``version_table``, ``env_py`` and ``history``
    (:func:`history`), for each extra script directory of the project.
    """
    found = _scan_one(project, None, on_file)
    found["directories"] = []
    for directory in project.script_dirs:
        entry = _scan_one(project, directory, on_file)
        env_py = directory.env_py
        entry.update(path=str(directory.path), version_table=directory.version_table,
                     env_py=project.relative(env_py) if env_py else None, history=history(project, directory))
        found["directories"].append(entry)
    return found


def _scan_one(project: Any, directory: Any, on_file: Any) -> Dict[str, Any]:
    with project.app_context():
        dirs, recursive = glue.version_locations(project, directory)
        with glue.capture_revision_modules(project):
            found = scan_files(dirs, recursive, on_file)
    return {"versions_dirs": [str(d) for d in dirs], "recursive": recursive, "revisions": found}


def scan_files(dirs: Sequence[Path], recursive: bool = False, on_file: Any = None) -> List[Dict[str, Any]]:
    """Load every revision file of ``dirs`` (see :func:`scan`); one dict per file, sorted by path."""
    seen = set()
    found = []
    for path in _source_files(dirs, recursive):
        real = path.resolve()
        if real not in seen:
            seen.add(real)
            if on_file is not None:
                on_file(path)
            found.append(_load(path))
    found.sort(key=lambda r: r["path"])
    return found


def _source_files(dirs: Sequence[Path], recursive: bool) -> Iterator[Path]:
    for top_dir in dirs:
        for top, subdirs, files in os.walk(Path(top_dir).absolute()):
            subdirs[:] = sorted(d for d in subdirs if not d.endswith("__pycache__")) if recursive else []
            for name in sorted(files):
                if _SOURCE_FILE.match(name):
                    yield Path(top, name)


def _load(path: Path) -> Dict[str, Any]:
    from alembic.util import load_python_file

    entry: Dict[str, Any] = {"path": str(path), "revision": None, "down_revisions": [], "branch_labels": [],
                             "depends_on": [], "message": None, "error": None, "error_line": None}
    try:
        module = load_python_file(str(path.parent), path.name)
    except (Exception, SystemExit) as exc:
        entry["error"], entry["error_line"] = _failure(exc, path)
        return entry
    rev = getattr(module, "revision", None)
    doc = re.split("\n\n", (module.__doc__ or "").strip())[0]  # alembic Script.doc
    entry.update(revision=None if rev is None else str(rev), down_revisions=_strings(getattr(module, "down_revision", None)),
                 branch_labels=_strings(getattr(module, "branch_labels", None)),
                 depends_on=_strings(getattr(module, "depends_on", None)), message=doc or None)
    return entry


def _failure(exc: BaseException, path: Path) -> Tuple[str, Optional[int]]:
    """``("Type: first line of message", line in path)``: the SyntaxError's own line or the deepest
    traceback frame in ``path``."""
    def here(name: Optional[str]) -> bool:
        return bool(name) and os.path.realpath(name) == os.path.realpath(path)

    if isinstance(exc, SyntaxError) and here(exc.filename):
        return f"{type(exc).__name__}: {exc.msg}", exc.lineno
    if isinstance(exc, SystemExit):
        text = f"sys.exit({exc.code!r}) at import"
    else:
        text = (str(exc).strip().splitlines() or [""])[0]
    lines = [n for frame, n in traceback.walk_tb(exc.__traceback__) if here(frame.f_code.co_filename)]
    return f"{type(exc).__name__}{': ' if text else ''}{text}", lines[-1] if lines else None


def history(project: Any, directory: Any = None) -> Dict[str, Any]:
    """The history as alembic reads it: ``{"revisions": [{revision, down_revisions, depends_on,
    branch_labels, message, path, children}], "heads": [...], "bases": [...]}`` base → heads
    (``ScriptDirectory.walk_revisions()``, reversed), or ``{"error": "Type: message"}`` when alembic
    cannot load it (the host's graph check says why). ``directory``: an extra script directory's
    history instead of the app's."""
    try:
        with project.app_context():
            script = glue.script_directory(project, directory)
            scripts = list(script.walk_revisions())
            heads = list(script.get_heads())
            bases = list(script.get_bases())
    except Exception as exc:  # noqa: BLE001 - a broken history is a fact, judged by the graph check
        return {"error": f"{type(exc).__name__}: {exc}"}
    scripts.reverse()
    return {
        "revisions": [{"revision": s.revision, "down_revisions": _strings(s.down_revision),
                       "depends_on": _strings(getattr(s, "dependencies", None)),
                       "branch_labels": sorted(s.branch_labels or ()), "message": s.doc or None,
                       "path": str(Path(s.path).resolve()) if s.path else None,
                       "children": sorted(s.nextrev)} for s in scripts],
        "heads": heads, "bases": bases,
    }


def ancestors(project: Any, revisions: Sequence[str]) -> List[str]:
    """``revisions`` and everything below them (``ScriptDirectory.iterate_revisions(revs, "base")``)."""
    if not revisions:
        return []
    with project.app_context():
        script = glue.script_directory(project)
        return [s.revision for s in script.iterate_revisions(tuple(revisions), "base")]
