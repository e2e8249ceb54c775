"""`post` in a workflow_run job holds a write token over files a fork wrote: it runs none of their
code, and it comments only on the pull request the triggering run analysed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from support import ROOT, clean_env, run_cli

from . import reports
from .conftest import PR, REPO, write_event
from .forge import Forge

HEAD = "5eed" * 10
TRAPS = ("click", "jinja2", "yaml", "pydantic", "github", "requests", "rich", "markupsafe")


def artifact(directory: Path, pr_number: str = str(PR)) -> Path:
    """A downloaded artifact as a fork's workflow could shape it: report, pr-number and modules
    named like the libraries post imports, each of which would leave a mark if it ran."""
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "report.json").write_text(reports.tutorial_drift().to_json())
    (directory / "pr-number").write_text(pr_number + "\n")
    for name in TRAPS:
        (directory / f"{name}.py").write_text(
            "import pathlib\n"
            f"pathlib.Path(__file__).with_name('RAN-{name}').write_text('workspace code ran')\n"
            "raise SystemExit('workspace code ran')\n")
    return directory


def workflow_run_env(gh_env: dict[str, str], tmp_path: Path) -> dict[str, str]:
    payload = {"workflow_run": {"pull_requests": [], "head_sha": HEAD}}
    return dict(gh_env, GITHUB_EVENT_NAME="workflow_run", GITHUB_EVENT_PATH=write_event(tmp_path, payload))


def test_python_m_post_imports_nothing_from_the_working_directory(tmp_path: Path, forge: Forge,
                                                                  gh_env: dict[str, str]) -> None:
    forge.pulls[(REPO, PR)] = HEAD
    work = artifact(tmp_path / "ci-migrate")
    result = run_cli("post", "--report", "report.json", cwd=work, env=workflow_run_env(gh_env, tmp_path))
    assert result.code == 0, result.text
    assert sorted(p.name for p in work.glob("RAN-*")) == []
    (comment,) = forge.comments_on(REPO, PR)
    assert "user.bio" in comment["body"]


def test_the_action_post_imports_nothing_from_the_workspace(tmp_path: Path, forge: Forge,
                                                            gh_env: dict[str, str]) -> None:
    forge.pulls[(REPO, PR)] = HEAD
    workspace = tmp_path / "ws"
    work = artifact(workspace / "ci-migrate")
    artifact(workspace)  # the workspace root too
    env = clean_env(workflow_run_env(gh_env, tmp_path))
    env.update({"GITHUB_WORKSPACE": str(workspace), "HOME": str(tmp_path), "INPUT_COMMAND": "post",
                "INPUT_REPORT-PATH": "ci-migrate/report.json", "INPUT_GITHUB-TOKEN": "rw-token"})
    proc = subprocess.run([sys.executable, str(ROOT / "entrypoint.py")], cwd="/", env=env, capture_output=True,
                          text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert sorted(p.name for p in [*work.glob("RAN-*"), *workspace.glob("RAN-*")]) == []
    assert len(forge.comments_on(REPO, PR)) == 1


def test_a_forged_pr_number_gets_no_comment(tmp_path: Path, forge: Forge, gh_env: dict[str, str]) -> None:
    forge.pulls[(REPO, PR)] = HEAD
    forge.pulls[(REPO, 1)] = "0ld" + "0" * 37
    work = artifact(tmp_path / "ci-migrate", pr_number="1")
    result = run_cli("post", "--report", "report.json", cwd=work, env=workflow_run_env(gh_env, tmp_path))
    assert result.code == 0, result.text
    assert forge.comments == [] and not forge.calls("POST", "/comments")
    assert result.err == (
        "notice: Refusing to comment on PR #1: its head commit 0ld000000000 is not the commit the triggering "
        "workflow run analysed (5eed5eed5eed). The number comes from the pr-number file (or --pr-number), which "
        "the pull request's own workflow writes; a fork can put any number there. No PR comment was posted.\n")
    assert os.path.exists(gh_env["GITHUB_STEP_SUMMARY"]) and "user.bio" in Path(gh_env["GITHUB_STEP_SUMMARY"]).read_text()
