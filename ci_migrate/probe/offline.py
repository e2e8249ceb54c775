"""Offline SQL per pending revision, with the operations each one performs.

Mirrors ``flask db upgrade --sql <from>:<to>``: ``alembic.command.upgrade(config, "<from>:<to>",
sql=True)`` run through the project's env.py (alembic-internals.md §5). Offline mode never
connects: every bind is pointed at an engine made for the wanted dialect only (the guard allows
nothing, so a revision or env.py that tries to connect is stopped). Multidb env.py writes
``<bind>.sql`` files into the working directory (P6), so each run happens in a temp dir.
"""

from __future__ import annotations

import contextlib
import io
import os
import tempfile
import traceback
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from . import glue
from .errors import Stopped
from .recording import Recorder, Recording, hooks


def chains(pending: Sequence[str], parents: Dict[str, Sequence[str]]) -> List[Tuple[str, List[str]]]:
    """Split ``pending`` (upgrade order) into runs alembic can render in one ``<from>:<to>`` range:
    ``[(from, [revisions…])]``; ``from`` is the first revision's (first) down_revision, or ``base``."""
    runs: List[Tuple[str, List[str]]] = []
    for revision in pending:
        downs = tuple(parents.get(revision, ()))
        if runs and downs == (runs[-1][1][-1],):
            runs[-1][1].append(revision)
        else:
            runs.append((downs[0] if downs else "base", [revision]))
    return runs


@contextlib.contextmanager
def _in_temp_dir() -> Iterator[None]:
    saved = os.getcwd()
    with tempfile.TemporaryDirectory(prefix="ci_migrate_sql_") as tmp:
        os.chdir(tmp)
        try:
            yield
        finally:
            os.chdir(saved)


def render(session: Any, pending: Sequence[str], parents: Dict[str, Sequence[str]], dialect_url: str,
           files: Dict[str, str]) -> Dict[str, Any]:
    """Render the offline SQL of ``pending`` revisions (upgrade order) in the dialect of ``dialect_url``
    (e.g. ``postgresql://``; no password, never connected) and record their operations.

    ``parents``: revision → down_revisions; ``files``: revision → absolute file path. A revision that
    cannot render offline gets ``error`` (and ``error_line``); rendering goes on with the next one.
    Returns ``{"dialect": name, "revisions": {revision: Recording.as_dict()}}``, or ``{"dialect", "error"}``
    when env.py (or a revision) opens a connection in offline mode: the guard stops it, and nothing renders
    (``flask db upgrade --sql`` would connect too; an env.py without an offline branch does).
    """
    try:
        return _render(session, pending, parents, dialect_url, files)
    except Stopped as stop:
        if stop.why != "guard":
            raise
        where = stop.where.get("file")
        where = f"{where}:{stop.where.get('line')}" if where else "code outside the repository"
        code = f" ({stop.where['code']})" if stop.where.get("code") else ""
        return {"dialect": glue.normalize_url(dialect_url).get_backend_name(),
                "error": f"{where}{code} opens a database connection in alembic's offline mode, as "
                         "`flask db upgrade --sql` would: env.py does not branch on context.is_offline_mode()"}


def _render(session: Any, pending: Sequence[str], parents: Dict[str, Sequence[str]], dialect_url: str,
            files: Dict[str, str]) -> Dict[str, Any]:
    from alembic import command

    project = session.project
    url = glue.normalize_url(dialect_url)
    url = url.set(password=None) if url.password else url
    engines = {key: _offline_engine(url) for key in project.bind_keys}
    urls = {key: url for key in project.bind_keys}
    dialect = engines[None].dialect
    recorder = Recorder({os.path.realpath(p): r for r, p in files.items()}, dialect, set(pending))
    try:
        for start, revisions in chains(pending, parents):
            while revisions:
                recorder.start_run()
                try:
                    with session.guard.allowing({}), \
                            glue.alembic_session(project, urls, engines, listener=recorder.on_log) as (config, _c), \
                            hooks(recorder, offline=True), _in_temp_dir():
                        config.output_buffer = io.StringIO()
                        command.upgrade(config, f"{start}:{revisions[-1]}", sql=True)
                except Exception as exc:  # noqa: BLE001 - a revision that cannot render is a fact
                    failed = recorder.last
                    recorder.close_segment()
                    recorder.finish()
                    if failed not in revisions:  # env.py, or a revision rendered on the way, failed
                        why = _reason(exc) if failed is None else (
                            f"revision {failed}, rendered on the way, failed: {_reason(exc)}")
                        for revision in revisions:
                            entry = recorder.recorded.setdefault(revision, Recording(revision))
                            entry.error, entry.statements = why, []
                        break
                    entry = recorder.recorded[failed]
                    entry.error, entry.statements = _reason(exc), []
                    entry.error_line = _line_in(exc, files.get(failed))
                    start, revisions = failed, revisions[revisions.index(failed) + 1:]
                    continue
                recorder.close_segment()
                recorder.finish()
                break
    finally:
        for engine in engines.values():
            engine.dispose()
    out = {}
    for revision in pending:
        entry = recorder.recorded.setdefault(revision, Recording(revision, error="not rendered by alembic"))
        out[revision] = entry.as_dict()
    return {"dialect": dialect.name, "revisions": out}


def _offline_engine(url: Any) -> Any:
    import sqlalchemy as sa

    return sa.create_engine(url)


def _line_in(exc: BaseException, path: Optional[str]) -> Optional[int]:
    """The deepest traceback line in the revision's file."""
    if not path:
        return None
    real = os.path.realpath(path)
    lines = [f.lineno for f in traceback.extract_tb(exc.__traceback__) if os.path.realpath(f.filename) == real]
    return lines[-1] if lines else None


def _reason(exc: BaseException) -> str:
    text = " ".join(str(exc).split()) or type(exc).__name__
    return f"{type(exc).__name__}: {text}"
