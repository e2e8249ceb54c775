"""Shared fixtures: the real database servers, copies of tests/apps/, and running the real CLI."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from support import MYSQL_SERVER, PG_SERVER, copy_app, ensure_server, run_cli, sandbox_databases


@pytest.fixture(scope="session")
def pg_server() -> str:
    """URL of the PostgreSQL server (no database part): the sandbox server for tests."""
    versions = sorted(os.listdir("/etc/postgresql")) if os.path.isdir("/etc/postgresql") else ["15"]
    ensure_server(PG_SERVER, ["pg_ctlcluster", "--skip-systemctl-redirect", versions[-1], "main", "start"])
    return PG_SERVER


@pytest.fixture(scope="session")
def mysql_server() -> str:
    """URL of the MariaDB/MySQL server (no database part)."""
    ensure_server(MYSQL_SERVER, ["start-stop-daemon", "--start", "--oknodo", "--background",
                                  "--exec", "/usr/sbin/mariadbd"])
    return MYSQL_SERVER


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


@pytest.fixture
def app_dir(tmp_path: Path, request: pytest.FixtureRequest) -> Path:
    """A fresh copy of the tests/apps/ app named by the test's ``app`` parameter."""
    return copy_app(request.param, tmp_path)


@pytest.fixture
def cli():
    return run_cli
