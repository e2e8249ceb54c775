"""App environments for the probe tests: real venvs with real (old and new) library stacks.

Each stack is a virtualenv made with uv from one of the machine's Pythons (pyenv's), with pinned
requirements, kept under ``$CI_MIGRATE_TEST_CACHE`` (default ``~/.cache/ci-migrate-tests``) and
reused while its spec is unchanged (the directory name carries a hash of the spec). ci-migrate is
never installed in them: the tests run it from the tool's venv with ``--python``.
"""

from __future__ import annotations

import fcntl
import glob
import hashlib
import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

CACHE = Path(os.environ.get("CI_MIGRATE_TEST_CACHE") or Path.home() / ".cache" / "ci-migrate-tests")


@dataclass(frozen=True)
class Stack:
    """An app environment: a Python version and the pinned requirements installed in it."""

    name: str
    python: str  # "3.9", "3.13"
    requirements: tuple[str, ...]


# What real apps pin: the oldest supported stack (with pydantic 1 in it, which ci-migrate itself must
# never import there), the newest, one below the floor, one without a PostgreSQL driver, and one with
# Alchemical (Flask-Migrate's other database extension) in place of Flask-SQLAlchemy.
OLDEST = Stack("oldest", "3.9", (
    "SQLAlchemy==1.4.54", "Flask==2.0.3", "Werkzeug==2.0.3", "Flask-SQLAlchemy==2.5.1", "Flask-Migrate==2.5.3",
    "alembic==1.7.7", "psycopg2-binary==2.9.9", "PyMySQL==1.1.1", "python-dotenv==0.21.1", "pydantic==1.10.19",
    "Jinja2==3.0.3", "itsdangerous==2.0.1", "click==8.0.4"))
NEWEST = Stack("newest", "3.13", (
    "SQLAlchemy==2.1.9", "Flask==3.1.3", "Flask-SQLAlchemy==3.1.1", "Flask-Migrate==4.1.0", "alembic==1.20.1",
    "psycopg[binary]==3.3.9", "PyMySQL==1.2.4"))
TOO_OLD = Stack("too-old", "3.9", (
    "SQLAlchemy==1.3.24", "Flask==2.0.3", "Werkzeug==2.0.3", "Flask-SQLAlchemy==2.5.1", "Flask-Migrate==2.5.3",
    "alembic==1.7.7", "Jinja2==3.0.3", "itsdangerous==2.0.1", "click==8.0.4"))
ALCHEMICAL = Stack("alchemical", "3.12", (
    "SQLAlchemy==2.1.9", "Flask==3.1.3", "Flask-SQLAlchemy==3.1.1", "Flask-Migrate==4.1.0", "alembic==1.20.1",
    "alchemical==1.0.3", "psycopg[binary]==3.3.9"))
NO_DRIVER = Stack("no-driver", "3.13", (
    "SQLAlchemy==2.1.9", "Flask==3.1.3", "Flask-SQLAlchemy==3.1.1", "Flask-Migrate==4.1.0", "alembic==1.20.1"))


def interpreter(version: str) -> str:
    """The machine's Python ``version`` (pyenv's build). Fails the test — never skips it — when the
    machine has none: the probe's support for that version is then untested."""
    root = os.environ.get("PYENV_ROOT") or str(Path.home() / ".pyenv")
    found = sorted(glob.glob(f"{root}/versions/{version}.*/bin/python{version}"))
    if not found and shutil.which(f"python{version}"):
        found = [shutil.which(f"python{version}")]  # type: ignore[list-item]
    if not found:
        pytest.fail(f"Python {version} is needed for the probe tests but is not installed "
                    f"(looked in {root}/versions and on PATH)")
    return found[-1]


def _uv() -> str:
    uv = Path(sys.executable).parent / "uv"
    if uv.is_file():
        return str(uv)
    found = shutil.which("uv")
    if not found:
        pytest.fail("uv is needed to build the app environments (it is in the test extras: pip install -e '.[test]')")
    return found


def venv(stack: Stack) -> Path:
    """The venv of ``stack``, built once (under a lock: test processes may build it at the same time).
    Returns the path of its Python."""
    spec = json.dumps([stack.python, sorted(stack.requirements)])
    home = CACHE / f"{stack.name}-{hashlib.sha256(spec.encode()).hexdigest()[:12]}"
    python = home / "bin" / "python"
    CACHE.mkdir(parents=True, exist_ok=True)
    with open(CACHE / f".{stack.name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if (home / ".complete").is_file():
            return python
        shutil.rmtree(home, ignore_errors=True)
        uv = _uv()
        env = {k: v for k, v in os.environ.items() if k not in ("VIRTUAL_ENV", "PYTHONPATH")}
        subprocess.run([uv, "venv", "-q", "--python", interpreter(stack.python), str(home)], check=True, env=env)
        proc = subprocess.run([uv, "pip", "install", "-q", "--python", str(python), *stack.requirements],
                              capture_output=True, text=True, env=env)
        if proc.returncode != 0:
            pytest.fail(f"building the {stack.name} app environment failed:\n{proc.stderr[-2000:]}")
        (home / ".complete").write_text(spec)
    return python


def freeze(python: Path) -> str:
    """What is installed in a venv (``uv pip freeze``), to prove a run installed nothing there."""
    return subprocess.run([_uv(), "pip", "freeze", "--python", str(python)], capture_output=True, text=True,
                          check=True).stdout
