"""Shared fixtures: the real database servers, copies of tests/apps/, and running the real CLI."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
APPS = ROOT / "tests" / "apps"
PG_SERVER = "postgresql://postgres@127.0.0.1:5432/"
MYSQL_SERVER = "mysql+pymysql://root@127.0.0.1:3306/"


def _reachable(url: str) -> bool:
    import sqlalchemy as sa

    engine = sa.create_engine(url + ("postgres" if url.startswith("postgresql") else ""))
    try:
        with engine.connect():
            return True
    except Exception:  # noqa: BLE001
        return False
    finally:
        engine.dispose()


def _ensure_server(url: str, start: list[str]) -> None:
    """Make sure a database server answers; start it with the machine's own command if not."""
    if _reachable(url):
        return
    subprocess.run(start, check=False, capture_output=True)
    for _ in range(60):
        if _reachable(url):
            return
        time.sleep(0.5)
    pytest.fail(f"database server {url} is not reachable and could not be started with {' '.join(start)}")


@pytest.fixture(scope="session")
def pg_server() -> str:
    """URL of the PostgreSQL server (no database part): the sandbox server for tests."""
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else ["15"]
    _ensure_server(PG_SERVER, ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"])
    return PG_SERVER


@pytest.fixture(scope="session")
def mysql_server() -> str:
    """URL of the MariaDB/MySQL server (no database part)."""
    _ensure_server(MYSQL_SERVER, ["start-stop-daemon", "--start", "--oknodo", "--background",
                                  "--exec", "/usr/sbin/mariadbd"])
    return MYSQL_SERVER


def sandbox_databases(server: str) -> list[str]:
    """Names of ci_migrate_* databases left on a server."""
    import sqlalchemy as sa

    if server.startswith("postgresql"):
        url, sql = server + "postgres", "SELECT datname FROM pg_database WHERE datname LIKE 'ci\\_migrate\\_%%'"
    else:
        url, sql = server, "SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE 'ci\\_migrate\\_%%'"
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [row[0] for row in conn.exec_driver_sql(sql)]
    finally:
        engine.dispose()


@pytest.fixture
def server(request: pytest.FixtureRequest) -> str:
    """Parametrized sandbox: 'sqlite', 'postgresql' or 'mysql' → the --sandbox value.

    Asserts that the test leaves no sandbox database behind.
    """
    kind = request.param
    if kind == "sqlite":
        yield "sqlite"
        return
    url = request.getfixturevalue("pg_server" if kind == "postgresql" else "mysql_server")
    before = set(sandbox_databases(url))
    yield url
    left = set(sandbox_databases(url)) - before
    assert not left, f"sandbox databases left behind: {sorted(left)}"


def copy_app(name: str, dest: Path) -> Path:
    """Copy tests/apps/<name> (or examples/<name> when given as 'examples/x') into ``dest``."""
    source = ROOT / name if name.startswith("examples/") else APPS / name
    target = dest / Path(name).name
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("__pycache__", "instance", "*.db"))
    return target


@pytest.fixture
def app_dir(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A fresh copy of the tests/apps/ app named by the test's ``app`` parameter."""
    return copy_app(request.param, tmp_path)


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def text(self) -> str:
        return self.out + self.err


def clean_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CI_MIGRATE_", "GITHUB_", "GITLAB_", "INPUT_", "FLASK_")) and k != "DATABASE_URL"}
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "COLUMNS": "200", "NO_COLOR": "1"})
    env.update(extra or {})
    return env


def run_cli(*args: str, cwd: Path, env: dict[str, str] | None = None, timeout: float = 240) -> Result:
    """Run ``python -m ci_migrate ARGS`` as a user would, in ``cwd``."""
    proc = subprocess.run([sys.executable, "-m", "ci_migrate", *args], cwd=cwd, env=clean_env(env),
                          capture_output=True, text=True, timeout=timeout)
    return Result(proc.returncode, proc.stdout, proc.stderr)


@pytest.fixture
def cli():
    return run_cli
