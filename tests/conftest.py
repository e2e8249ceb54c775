"""Shared fixtures: the real database servers, copies of tests/apps/, and running the real CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support import (CACHE_ROOT, MYSQL_SERVER, PG_SERVER, copy_app, drop_base_templates, ensure_server, left_behind,
                     reachable, run_cli, sandbox_databases)


#: Fixtures that start a database server, and the marker a test using them must carry.
SERVER_FIXTURES = {"pg_server": "postgres", "mysql_server": "mysql"}
#: Indirectly parametrized fixtures whose parameter names the server kind ("postgresql", "mysql").
KIND_FIXTURES = ("server", "kind", "staging_db")
_KIND_MARKS = {"postgresql": "postgres", "mysql": "mysql"}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Mark every test that needs the PostgreSQL or MariaDB server (``-m "not mysql"`` skips them).

    A test needs a server when it asks for ``pg_server``/``mysql_server`` or when one of the
    :data:`KIND_FIXTURES` is parametrized with that server's kind.
    """
    for item in items:
        wanted = {mark for name, mark in SERVER_FIXTURES.items() if name in getattr(item, "fixturenames", ())}
        params = getattr(getattr(item, "callspec", None), "params", {})
        wanted |= {_KIND_MARKS[value] for name, value in params.items()
                   if name in KIND_FIXTURES and value in _KIND_MARKS}
        for mark in sorted(wanted):
            item.add_marker(mark)


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    """Remove what this run's CLI runs kept in their base-snapshot caches: the cache directories and,
    on the PostgreSQL server, the template databases named with this run's prefix."""
    import shutil

    shutil.rmtree(CACHE_ROOT, ignore_errors=True)
    if reachable(PG_SERVER):
        drop_base_templates(PG_SERVER)


def _require_mark(request: pytest.FixtureRequest, mark: str) -> None:
    """Fail a test that reaches a server without its marker (the marking above missed it)."""
    if request.node.get_closest_marker(mark) is None:
        pytest.fail(f"{request.node.nodeid} uses a database server but is not marked '{mark}': "
                    f"request it through {', '.join(SERVER_FIXTURES)} or {', '.join(KIND_FIXTURES)}")


@pytest.fixture(scope="session")
def _pg_started() -> str:
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else ["15"]
    ensure_server(PG_SERVER, ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"])
    return PG_SERVER


@pytest.fixture(scope="session")
def _mysql_started() -> str:
    ensure_server(MYSQL_SERVER, ["start-stop-daemon", "--start", "--oknodo", "--background",
                                  "--exec", "/usr/sbin/mariadbd"])
    return MYSQL_SERVER


@pytest.fixture
def pg_server(request: pytest.FixtureRequest, _pg_started: str) -> str:
    """URL of the PostgreSQL server (no database part): the sandbox server for tests."""
    _require_mark(request, "postgres")
    return _pg_started


@pytest.fixture
def mysql_server(request: pytest.FixtureRequest, _mysql_started: str) -> str:
    """URL of the MariaDB/MySQL server (no database part)."""
    _require_mark(request, "mysql")
    return _mysql_started


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
    left = left_behind(url, before)
    assert not left, f"sandbox databases left behind: {sorted(left)}"


@pytest.fixture
def app_dir(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A fresh copy of the tests/apps/ app named by the test's ``app`` parameter."""
    return copy_app(request.param, tmp_path)


@pytest.fixture
def cli():
    return run_cli
