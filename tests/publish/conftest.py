"""Fixtures of the publisher tests: the local forge server and a GitHub Actions environment."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from . import forge as forge_mod

REPO = "octo/shop"
PR = 42


@pytest.fixture
def forge() -> Iterator[forge_mod.Forge]:
    """A running local GitHub/GitLab API server with a read-write and a read-only token."""
    server, state = forge_mod.start()
    state.tokens = {"rw-token": forge_mod.Token("github-actions[bot]"),
                    "ro-token": forge_mod.Token("github-actions[bot]", writable=False)}
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()


def write_event(tmp_path: Path, payload: dict[str, Any]) -> str:
    path = tmp_path / "event.json"
    path.write_text(json.dumps(payload), encoding="utf-8")
    return str(path)


def pr_payload(number: int = PR, *, fork: bool = False) -> dict[str, Any]:
    """A ``pull_request`` payload; ``fork`` puts the head in another owner's repository."""
    base = {"full_name": REPO, "owner": {"id": 1, "login": "octo"}}
    head = ({"full_name": "mallory/shop", "owner": {"id": 666, "login": "mallory"}}
            if fork else base)
    return {"number": number, "pull_request": {"number": number, "head": {"repo": head},
                                               "base": {"repo": base}}}


@pytest.fixture
def gh_env(tmp_path: Path, forge: forge_mod.Forge) -> dict[str, str]:
    """Environment of a ``pull_request`` job on the local forge, with the runner's files."""
    (tmp_path / "summary.md").touch()
    (tmp_path / "output.txt").touch()
    return {
        "GITHUB_ACTIONS": "true",
        "GITHUB_EVENT_NAME": "pull_request",
        "GITHUB_EVENT_PATH": write_event(tmp_path, pr_payload()),
        "GITHUB_REPOSITORY": REPO,
        "GITHUB_API_URL": forge.base,
        "GITHUB_TOKEN": "rw-token",
        "GITHUB_STEP_SUMMARY": str(tmp_path / "summary.md"),
        "GITHUB_OUTPUT": str(tmp_path / "output.txt"),
    }
