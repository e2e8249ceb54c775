"""One ``check`` run executes each revision file once (bench/ and docs/performance.md: the graph scan's
modules seed the ScriptDirectory every alembic command of the run uses).

The real CLI runs with ``--python`` naming a wrapper of the interpreter whose
``alembic.util.pyfiles.load_module_py`` — the function alembic (and the probe's graph scan) load every
revision file and env.py with — counts what it executes in the probe process.
"""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter

import pytest

from support import clean_env

# The probe's interpreter, wrapped: a Python that counts what alembic's load_module_py executes in the
# probe process (where the app, env.py and the revision files run) and writes the counts at exit.
COUNTING_PYTHON = """#!/bin/sh
exec {python} {counter} "$@"
"""
COUNTER = """
import atexit, json, pathlib, sys
from collections import Counter
import alembic.util.pyfiles as pyfiles
counts, original = Counter(), pyfiles.load_module_py
def counting(module_id, path, *args, **kw):
    counts[str(pathlib.Path(path).resolve())] += 1
    return original(module_id, path, *args, **kw)
pyfiles.load_module_py = counting
atexit.register(lambda: pathlib.Path("load-counts.json").write_text(json.dumps(counts)))
assert sys.argv[1] == "-c"
code = sys.argv[2]
sys.argv = ["-c"]
exec(compile(code, "<probe>", "exec"), {"__name__": "__main__"})
"""


def run_counting(app_dir, *args, env=None):
    counter = app_dir.parent / "counter.py"
    counter.write_text(COUNTER)
    python = app_dir.parent / "counting-python"
    python.write_text(COUNTING_PYTHON.format(python=sys.executable, counter=counter))
    python.chmod(0o755)
    proc = subprocess.run([sys.executable, "-m", "ci_migrate", "check", "--format", "json", "--python", str(python),
                           *args], cwd=app_dir, env=clean_env(env), capture_output=True, text=True, timeout=240,
                          check=False)
    assert proc.stdout.strip().startswith("{"), proc.stdout + proc.stderr
    data = json.loads((app_dir / "load-counts.json").read_text())
    return proc, json.loads(proc.stdout), Counter(data)


@pytest.mark.parametrize("server", ["sqlite", "postgresql"], indirect=True)
@pytest.mark.parametrize("app_dir", ["branch_merge"], indirect=True)
def test_each_revision_file_is_executed_once_per_run(app_dir, server):
    # every alembic-based check, over every revision: replay, drift, locks and round trip (scope all)
    (app_dir / ".ci-migrate.yml").write_text("checks:\n  locks: {scope: all}\n  roundtrip: {scope: all}\n")
    proc, report, counts = run_counting(app_dir, "--sandbox", server)
    ran = {c["name"]: c["status"] for c in report["checks"]}
    assert ran["replay"] == "passed" and ran["drift"] == "passed", proc.stderr
    assert "roundtrip" in ran, ran
    if server == "postgresql":
        assert "locks" in ran, ran
    revisions = sorted((app_dir / "migrations" / "versions").glob("*.py"))
    assert len(revisions) == 8
    assert {p: counts[str(p.resolve())] for p in revisions} == {p: 1 for p in revisions}
    env_runs = counts[str((app_dir / "migrations" / "env.py").resolve())]
    assert env_runs >= 2  # env.py itself runs for every command (replay, drift, each round-trip step)


@pytest.mark.parametrize("app_dir", ["clean"], indirect=True)
def test_a_revision_that_keeps_an_engine_at_import_gets_the_sandbox(app_dir):
    # A module-level `engine = db.engine` is bound when the file is executed: the graph scan's copy
    # holds the app's own engine, so alembic must load that file again with the sandbox's engines.
    rev = app_dir / "migrations" / "versions" / "9458ded74214_add_user_role_id.py"
    text = rev.read_text().replace("import sqlalchemy as sa\n", "import sqlalchemy as sa\nfrom blogapp import db\n\n"
                                   "engine = db.engine  # kept at import time\n", 1)
    rev.write_text(text.replace("def upgrade():\n", "def upgrade():\n    with open('engine-url.txt', 'a') as fh:\n"
                                "        fh.write(engine.url.render_as_string() + '\\n')\n", 1))
    real = app_dir / "real.db"
    proc, report, counts = run_counting(app_dir, "--sandbox", "sqlite", "--app", "blogapp:create_app('testing')",
                                        env={"DATABASE_URL": f"sqlite:///{real}"})
    assert report["verdict"] == "passed", proc.stdout + proc.stderr
    urls = (app_dir / "engine-url.txt").read_text().split()
    assert urls and all("ci_migrate_" in url and str(real) not in url for url in urls), urls
    assert counts[str(rev.resolve())] == 2  # graph scan + alembic; every other file once
    others = [p for p in rev.parent.glob("*.py") if p != rev]
    assert {counts[str(p.resolve())] for p in others} == {1}
    assert not real.exists()
