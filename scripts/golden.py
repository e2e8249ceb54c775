"""Golden PR comments from real runs of the tests/apps apps.

    python scripts/golden.py --check    exit 1, with a diff, when a golden file is not current
    python scripts/golden.py --write    regenerate tests/golden/app_*.json and app_*.md
    python scripts/golden.py --check schema_pr two_heads    only these cases
    python scripts/golden.py --check --dir DIR               golden files in DIR (default tests/golden)

Each case copies an app from tests/apps/ to a temporary directory (a pull request case makes it a
git repository: branch ``main`` with the base revisions, branch ``feature`` with the others), runs
the real CLI there (``python -m ci_migrate check --format json`` on a PostgreSQL sandbox), makes
the JSON report stable (durations, timestamps, sandbox names, the interpreter) and renders the PR
comment from it. A pull request's report carries the schema change of its revisions, as the run
reflected it. The cases run side by side (one thread each, up to the machine's CPU count). Review
the Markdown by eye when it changes. Needs the PostgreSQL server at 127.0.0.1:5432.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import difflib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
APPS = ROOT / "tests" / "apps"
GOLDEN = ROOT / "tests" / "golden"
PG_SERVER = os.environ.get("CI_MIGRATE_GOLDEN_SERVER", "postgresql://postgres@127.0.0.1:5432/")
STARTED = "2026-01-02T03:04:05Z"
_DURATION = re.compile(r"\b\d+(?:\.\d+)? (ms|s)\b")
_SANDBOX_DB = re.compile(r"ci_migrate\w*?_\d{12}_[0-9a-f]{8}")  # <prefix>_<UTC stamp>_<random>
_DRIVER = re.compile(r"\b(postgresql|mysql)\+\w+://")  # psycopg or psycopg2, as installed


@dataclass(frozen=True)
class Case:
    """One run: ``app`` (directory in tests/apps), ``target`` (``--app``), ``base``: revisions
    on the base branch of a pull request (empty: no git repository, no ``--base``)."""

    app: str
    target: str = "app.py"
    base: tuple[str, ...] = ()
    args: tuple[str, ...] = field(default=())


CASES: dict[str, Case] = {
    "baseline_needed": Case("baseline_needed"),
    "branch_merge": Case("branch_merge"),
    "clean": Case("clean", "blogapp:create_app('testing')"),
    "duplicate_id": Case("duplicate_id"),
    "empty_message": Case("empty_message"),
    "missing_parent": Case("missing_parent"),
    "multidb": Case("multidb"),
    "schema_pr": Case("schema_pr", base=("6f27727a8d85", "2579b38b2ff9")),
    "syntax_error": Case("syntax_error"),
    "tutorial_drift": Case("tutorial_drift"),
    "two_heads": Case("two_heads"),
}


def _env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment of a developer's shell: no CI, no ci-migrate or Flask settings."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("CI_MIGRATE_", "GITHUB_", "GITLAB_", "INPUT_", "FLASK_"))
           and k not in ("DATABASE_URL", "CI")}
    env.update({"PYTHONDONTWRITEBYTECODE": "1", "NO_COLOR": "1"}, **(extra or {}))
    return env


def _git(repo: Path, *args: str, author: str) -> None:
    subprocess.run(["git", "-c", f"user.name={author}", "-c", "user.email=dev@example.com", *args],
                   cwd=repo, check=True, capture_output=True)


def _checkout(case: Case, tmp: Path) -> Path:
    """A copy of the app; for a pull request a git repository with ``feature`` checked out."""
    repo = tmp / case.app
    shutil.copytree(APPS / case.app, repo, ignore=shutil.ignore_patterns("__pycache__", "instance", "*.db"))
    if not case.base:
        return repo
    held = tmp / "held"
    held.mkdir()
    for path in (repo / "migrations" / "versions").glob("*.py"):
        if path.name.split("_", 1)[0] not in case.base:
            shutil.move(path, held / path.name)
    _git(repo, "init", "-q", "-b", "main", author="Base Dev")
    _git(repo, "add", "-A", author="Base Dev")
    _git(repo, "commit", "-q", "-m", "base history", author="Base Dev")
    _git(repo, "checkout", "-q", "-b", "feature", author="Base Dev")
    for path in held.iterdir():
        shutil.move(path, repo / "migrations" / "versions" / path.name)
    _git(repo, "add", "-A", author="PR Author")
    _git(repo, "commit", "-q", "-m", "the pull request", author="PR Author")
    return repo


def run_case(case: Case) -> dict[str, Any]:
    """The report of a real ``check`` run of ``case``, as JSON data."""
    with tempfile.TemporaryDirectory(prefix="ci-migrate-golden-") as tmp:
        repo = _checkout(case, Path(tmp))
        args = ["check", "--app", case.target, "--sandbox", PG_SERVER, "--format", "json", "--cache-dir", "off",
                *case.args]
        if case.base:
            args += ["--base", "main"]
        proc = subprocess.run([sys.executable, "-m", "ci_migrate", *args], cwd=repo, env=_env(),
                              capture_output=True, text=True, timeout=300)
        if not proc.stdout.lstrip().startswith("{"):
            raise SystemExit(f"{case.app}: ci-migrate check exited {proc.returncode} without a report:\n"
                             f"{proc.stderr[-3000:]}")
        data = json.loads(proc.stdout)
        return data


def normalize(data: Any, key: str = "") -> Any:
    """Make a report stable across runs and machines: timestamps, durations, sandbox database
    names, the database driver (the sandbox URL says ``postgresql://``), the app's interpreter
    (its path and library versions are the machine's)."""
    if key == "interpreter" and isinstance(data, dict):
        return {**data, "path": "python", "python": "3", "packages": {}}
    if isinstance(data, dict):
        return {k: normalize(v, k) for k, v in data.items()}
    if isinstance(data, list):
        return [normalize(v, key) for v in data]
    if key == "started_at":
        return STARTED
    if key == "key" and isinstance(data, str) and re.fullmatch(r"[0-9a-f]{64}", data):
        return "0" * 64  # a base snapshot's key: a hash of the machine's app stack, among others
    timing = key.startswith(("duration", "lock_wait")) or key.endswith(("_ms", "_s"))
    if isinstance(data, (int, float)) and not isinstance(data, bool) and timing:
        return 0.0
    if isinstance(data, str):
        data = _DRIVER.sub(r"\1://", _DURATION.sub(lambda m: f"0 {m.group(1)}", data))
        return _SANDBOX_DB.sub("ci_migrate_00000000", data)
    return data


def render(data: dict[str, Any]) -> tuple[str, str]:
    """``(report JSON, comment Markdown)`` of a normalized report."""
    from ci_migrate.publish.markdown import render_comment
    from ci_migrate.report import Report

    text = json.dumps(data, indent=2, ensure_ascii=False) + "\n"
    return text, render_comment(Report.from_json(text))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    mode = parser.add_mutually_exclusive_group(required=True)
    mode.add_argument("--check", action="store_true", help="compare with tests/golden/, exit 1 on a difference")
    mode.add_argument("--write", action="store_true", help="rewrite tests/golden/app_*.json and .md")
    parser.add_argument("--dir", type=Path, default=GOLDEN, help="golden files (default: tests/golden)")
    parser.add_argument("cases", nargs="*", metavar="CASE", help=f"cases to run (default all: {', '.join(CASES)})")
    args = parser.parse_args(argv)
    unknown = [c for c in args.cases if c not in CASES]
    if unknown:
        parser.error(f"unknown case(s) {', '.join(unknown)}; choose from {', '.join(CASES)}")
    stale = []
    names = args.cases or list(CASES)
    with concurrent.futures.ThreadPoolExecutor(max_workers=os.cpu_count() or 2) as pool:
        reports = list(pool.map(lambda name: normalize(run_case(CASES[name])), names))
    for name, report in zip(names, reports):
        report_json, comment = render(report)
        for path, new in ((args.dir / f"app_{name}.json", report_json), (args.dir / f"app_{name}.md", comment)):
            old = path.read_text(encoding="utf-8") if path.exists() else ""
            if old == new:
                continue
            if args.write:
                path.write_text(new, encoding="utf-8")
                print(f"wrote {path}")
            else:
                stale.append(path)
                sys.stdout.writelines(difflib.unified_diff(
                    old.splitlines(True), new.splitlines(True), f"{path} (golden)", f"{path} (this run)"))
    if stale:
        print(f"\n{len(stale)} golden file(s) are not current: run `python scripts/golden.py --write` "
              "and review the diff.", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
