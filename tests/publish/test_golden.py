"""Golden files: ``tests/golden/<name>.json`` (a saved Report) → ``tests/golden/<name>.md``.

Every ``*.json`` in ``tests/golden/`` is rendered with :func:`render_comment` and compared with
the ``.md`` beside it. The ``app_*`` pairs are real reports of the ``tests/apps`` apps, written
by ``scripts/golden.py --write`` (tests/test_golden_script.py proves they are current). The
hand-built reports of :data:`reports.GOLDEN` are written to JSON too, and checked to still match
their builder; regenerate those with ``UPDATE_GOLDEN=1 pytest tests/publish/test_golden.py``.
Review the diff of either.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from ci_migrate.publish.markdown import render_comment
from ci_migrate.report import Report

from . import reports

GOLDEN_DIR = Path(__file__).resolve().parent.parent / "golden"
UPDATE = os.environ.get("UPDATE_GOLDEN") == "1"
CASES = sorted(set(reports.GOLDEN) | {p.stem for p in GOLDEN_DIR.glob("*.json")})


def _check(path: Path, actual: str) -> None:
    if UPDATE:
        path.write_text(actual, encoding="utf-8")
        return
    assert path.exists(), f"{path.name} is missing: run with UPDATE_GOLDEN=1"
    expected = path.read_text(encoding="utf-8")
    how = "python scripts/golden.py --write" if path.name.startswith("app_") else "UPDATE_GOLDEN=1"
    assert actual == expected, f"{path.name} differs: run {how} and review the diff"


@pytest.mark.parametrize("name", CASES)
def test_golden_comment(name: str) -> None:
    source = GOLDEN_DIR / f"{name}.json"
    if name in reports.GOLDEN:
        _check(source, reports.GOLDEN[name]().to_json() + "\n")
    report = Report.from_json(source.read_text(encoding="utf-8"))
    _check(GOLDEN_DIR / f"{name}.md", render_comment(report))
