"""The console report outside a terminal (a pipe, a CI log): lines as long as their text, never
padded or wrapped; a reader that goes away early ends the output, not the run."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import version

from support import clean_env, copy_app

# The line `flask db migrate` writes for user.bio: Flask-Migrate 3.0+ renders SQLite changes as batch
# operations (Migrate's render_as_batch default), 2.x as plain ones.
UPGRADE_LINE = ("            batch_op.add_column(sa.Column('bio', sa.String(length=250), nullable=True))"
                if int(version("Flask-Migrate").split(".")[0]) >= 3
                else "        op.add_column('user', sa.Column('bio', sa.String(length=250), nullable=True))")


def run_into_closed_pipe(*args: str, cwd) -> tuple[int, str]:
    """``ci-migrate ARGS | head -c0``, deterministically: stdout is a pipe whose reader is gone."""
    read, write = os.pipe()
    os.close(read)
    try:
        proc = subprocess.run([sys.executable, "-m", "ci_migrate", *args], cwd=cwd, env=clean_env(), stdout=write,
                              stderr=subprocess.PIPE, text=True, timeout=240)
    finally:
        os.close(write)
    return proc.returncode, proc.stderr


def test_a_closed_pipe_keeps_the_verdicts_exit_code(tmp_path):
    clean = copy_app("clean", tmp_path)
    assert run_into_closed_pipe("check", cwd=clean) == (0, "")
    assert run_into_closed_pipe("check", "--format", "json", cwd=clean) == (0, "")
    drift = copy_app("tutorial_drift", tmp_path)
    assert run_into_closed_pipe("check", "--app", "app.py", "--output", "report.json", cwd=drift) == (1, "")
    assert json.loads((drift / "report.json").read_text())["verdict"] == "failed"  # the run went on to the end


def test_piped_output_is_neither_padded_nor_wrapped(tmp_path):
    deep = tmp_path / ("a" * 70) / ("b" * 70)
    deep.mkdir(parents=True)
    app_dir = copy_app("tutorial_drift", deep)
    app = str(app_dir / "app.py")
    proc = subprocess.run([sys.executable, "-m", "ci_migrate", "check", "--app", app], cwd=app_dir,
                          env=clean_env({"COLUMNS": "80"}), capture_output=True, text=True, timeout=240)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    lines = proc.stdout.splitlines()
    assert [line for line in lines if line != line.rstrip()] == [], "no line ends in spaces"
    assert lines[0] == f"ci-migrate 0.1.0 · app {app} · migrations migrations · sandbox sqlite (temporary file)"
    assert UPGRADE_LINE in lines  # the suggested revision body copies as it is
    assert ("  ERROR   CM301 the models have changes that no migration contains: adds column `user.bio` "
            "VARCHAR(250), nullable") in lines
    assert ("          fix: Create the missing revision with `flask db migrate -m \"add user.bio\"`, review it, and "
            "commit it.") in lines
    body = lines[lines.index("    def upgrade():"):lines.index("    def downgrade():")]
    assert "" in body and all(not line or line.startswith("        ") for line in body[1:])
