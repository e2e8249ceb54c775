"""scripts/golden.py: the golden PR comments in tests/golden/ are those of real runs of tests/apps."""

from __future__ import annotations

import shutil
import subprocess
import sys
from importlib.metadata import version
from pathlib import Path

import pytest
from support import ROOT

SCRIPT = ROOT / "scripts" / "golden.py"


def golden(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, str(SCRIPT), *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=600)


NEWEST = int(version("Flask-Migrate").split(".")[0]) >= 4 and int(version("SQLAlchemy").split(".")[0]) >= 2


@pytest.mark.skipif(not NEWEST, reason="the golden comments are made with the newest supported libraries; "
                    "Flask-Migrate 2/3 renders the suggested revision body without batch mode")
def test_golden_comments_are_current(pg_server: str) -> None:
    proc = golden("--check")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]


def test_a_stale_golden_comment_is_shown_and_fails(pg_server: str, tmp_path: Path) -> None:
    for suffix in ("json", "md"):
        shutil.copy(ROOT / "tests" / "golden" / f"app_two_heads.{suffix}", tmp_path)
    md = tmp_path / "app_two_heads.md"
    md.write_text(md.read_text().replace("## ❌ ci-migrate check: 1 error", "## ❌ ci-migrate check: 1 problem"))
    proc = golden("--check", "--dir", str(tmp_path), "two_heads")
    assert proc.returncode == 1
    assert "-## ❌ ci-migrate check: 1 problem\n+## ❌ ci-migrate check: 1 error\n" in proc.stdout
    assert "golden file(s) are not current: run `python scripts/golden.py --write`" in proc.stderr
    assert golden("--write", "--dir", str(tmp_path), "two_heads").returncode == 0
    assert md.read_text() == (ROOT / "tests" / "golden" / "app_two_heads.md").read_text()


def test_unknown_case_is_a_usage_error() -> None:
    proc = golden("--check", "two_head")
    assert proc.returncode == 2
    assert "unknown case(s) two_head; choose from" in proc.stderr
