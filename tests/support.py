"""Helpers for the tests: the real database servers, copies of tests/apps/, running the real CLI."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ROOT / "tests" / "apps"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432/"
MYSQL_SERVER = "mysql+pymysql://root@127.0.0.1:3306/"
# This test run's own sandbox name prefix (CI_MIGRATE_SANDBOX_PREFIX): the servers are shared with
# other processes, so the leak checks count only the databases of this run.
SANDBOX_PREFIX = f"ci_migrate_t{os.getpid():x}"[:31]


def reachable(url: str) -> bool:
    import sqlalchemy as sa

    from ci_migrate.sandbox import normalize_url

    engine = sa.create_engine(normalize_url(url + ("postgres" if url.startswith("postgresql") else "")))
    try:
        with engine.connect():
            return True
    except Exception:  # noqa: BLE001
        return False
    finally:
        engine.dispose()


def ensure_server(url: str, start: list[str]) -> None:
    """Make sure a database server answers; start it with the machine's own command if not."""
    if reachable(url):
        return
    subprocess.run(start, check=False, capture_output=True)
    for _ in range(60):
        if reachable(url):
            return
        time.sleep(0.5)
    pytest.fail(f"database server {url} is not reachable and could not be started with {' '.join(start)}")


def sandbox_databases(server: str) -> list[str]:
    """Names of this test run's sandbox databases (``SANDBOX_PREFIX``) on a server."""
    like = SANDBOX_PREFIX.replace("_", "\\_") + "\\_%%"
    base = (SANDBOX_PREFIX + "_base_").replace("_", "\\_") + "%%"  # cached base snapshots, not sandboxes
    return [n for n in _names(server, like) if n not in set(_names(server, base))]


def _names(server: str, like: str) -> list[str]:
    import sqlalchemy as sa

    if server.startswith("postgresql"):
        url, sql = server + "postgres", f"SELECT datname FROM pg_database WHERE datname LIKE '{like}'"
    else:
        url, sql = server, f"SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE '{like}'"
    from ci_migrate.sandbox import normalize_url

    engine = sa.create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            return [row[0] for row in conn.exec_driver_sql(sql)]
    finally:
        engine.dispose()


def left_behind(server: str, before: set[str], grace: float = 60.0) -> set[str]:
    """Sandbox databases made since ``before`` that are still there after ``grace`` seconds.

    The servers are shared with other test runs, whose sandboxes come and go meanwhile; a run of
    ours that has ended drops its own before it exits, so what is still there after the grace
    period was left behind.
    """
    deadline = time.monotonic() + grace
    while True:
        left = set(sandbox_databases(server)) - before
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(1.0)


def copy_app(name: str, dest: Path) -> Path:
    """Copy tests/apps/<name> (or examples/<name> when given as 'examples/x') into ``dest``."""
    source = ROOT / name if name.startswith("examples/") else APPS / name
    target = dest / Path(name).name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "instance", "*.db"))
    return target


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


#: Where this test run's CLI runs keep their base-snapshot caches: each run gets an empty one (a cold
#: cache) unless the test names its own with CI_MIGRATE_CACHE_DIR. Removed at the end of the session.
CACHE_ROOT = Path(tempfile.gettempdir()) / f"{SANDBOX_PREFIX}_caches"


def fresh_cache_dir() -> str:
    CACHE_ROOT.mkdir(exist_ok=True)
    return tempfile.mkdtemp(dir=CACHE_ROOT)


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CI_MIGRATE_", "GITHUB_", "GITLAB_", "INPUT_", "FLASK_")) and k != "DATABASE_URL"}
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "200", "NO_COLOR": "1",
                "CI_MIGRATE_SANDBOX_PREFIX": SANDBOX_PREFIX, "CI_MIGRATE_CACHE_DIR": fresh_cache_dir()})
    env.update(extra or {})
    return env


def base_templates(server: str) -> list[str]:
    """This test run's base-snapshot template databases (``<prefix>_base_…``) on a PostgreSQL server."""
    like = (SANDBOX_PREFIX + "_base_").replace("_", "\\_") + "%%"
    return _names(server, like)


def drop_base_templates(server: str) -> None:
    """Drop this test run's base-snapshot template databases (made by its CLI runs) on a PostgreSQL server."""
    import sqlalchemy as sa

    from ci_migrate.sandbox import normalize_url

    names = base_templates(server)
    if not names:
        return
    engine = sa.create_engine(normalize_url(server + "postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for name in names:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
    finally:
        engine.dispose()


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 240) -> Result:
    """Run ``python -m ci_migrate ARGS`` as a user would, in ``cwd``."""
    proc = subprocess.run([sys.executable, "-m", "ci_migrate", *args], cwd=cwd, env=clean_env(env),
                          capture_output=True, text=True, timeout=timeout)
    return Result(proc.returncode, proc.stdout, proc.stderr)



def by_name(report: dict, name: str) -> dict:
    """The result of check ``name`` in a JSON report."""
    return next(c for c in report["checks"] if c["name"] == name)


def probe_copy(command_line: str) -> Path | None:
    """The private copy of the probe a probe process runs from, read from its command line (the
    bootstrap's ``sys.path.insert(0, '<copy>')``); ``/proc/<pid>/cmdline`` text works as it is."""
    found = re.search(r"sys\.path\.insert\(0, '([^']+)'\)", command_line)
    return Path(found[1]) if found else None
