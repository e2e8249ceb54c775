"""Apps whose history starts with ``db.create_all()`` + ``flask db stamp head`` (tests/apps/baseline_needed):
with ``baseline: {create-all: true}`` and no revision, a pull request's new revision is built on the base
branch's models and really runs — replayed, linted, lock-traced, round-tripped."""

from __future__ import annotations

import json

import pytest

from support import copy_app
from test_plan import git

HEAD = "1feb6e0abffe"
NEW = '''"""add user.age

Revision ID: 5d1c0ffee001
Revises: 1feb6e0abffe
Create Date: 2026-11-30 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5d1c0ffee001'
down_revision = '1feb6e0abffe'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('age', sa.Integer(), nullable=False))


def downgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('age')
'''


def pull_request(tmp_path):
    repo = copy_app("baseline_needed", tmp_path)
    (repo / ".ci-migrate.yml").write_text("app: app.py\nbaseline:\n  create-all: true\n")
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base: tables made by create_all, then stamped")
    git(repo, "checkout", "-q", "-b", "feature")
    (repo / "migrations" / "versions" / "5d1c0ffee001_add_user_age.py").write_text(NEW)
    app = repo / "app.py"
    app.write_text(app.read_text().replace("    last_login = db.Column(db.DateTime)\n",
                                           "    last_login = db.Column(db.DateTime)\n"
                                           "    age = db.Column(db.Integer, nullable=False)\n", 1))
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "the pull request")
    return repo


@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
def test_a_pull_request_on_a_create_all_app_runs_its_new_revision(cli, tmp_path, server):
    repo = pull_request(tmp_path)
    result = cli("check", "--sandbox", server, "--base", "main", "--format", "json", cwd=repo)
    report = json.loads(result.out)
    checks = {c["name"]: c for c in report["checks"]}
    assert result.code == 1, result.text
    assert not [f for c in report["checks"] for f in c["findings"] if f["rule_id"] in ("CM201", "CM202")]
    replay = checks["replay"]
    assert replay["facts"]["start"] == HEAD and [r["revision"] for r in replay["facts"]["revisions"]] == [
        "5d1c0ffee001"]
    lint = [(f["rule_id"], f["revision"]) for f in checks["lint"]["findings"]]
    assert ("CM504", "5d1c0ffee001") in lint
    assert [r["revision"] for r in checks["locks"]["facts"]["revisions"]] == ["5d1c0ffee001"]
    assert checks["locks"]["facts"]["revisions"][0]["statements"] >= 1
    assert [s["revision"] for s in checks["roundtrip"]["facts"]["steps"]] == ["5d1c0ffee001"]
    assert checks["drift"]["status"] == "passed"  # the PR's models match the base's plus its revision
    assert any("create_all() from the models of main" in n for n in report["notes"])


def test_a_full_run_with_a_create_all_baseline_says_what_was_not_checked(cli, tmp_path):
    repo = copy_app("baseline_needed", tmp_path)
    (repo / ".ci-migrate.yml").write_text("app: app.py\nbaseline:\n  create-all: true\n")
    result = cli("check", "--format", "json", cwd=repo)
    report = json.loads(result.out)
    assert result.code == 0, result.text
    assert any(n.startswith("Baseline create-all without a revision: the sandbox is the models' create_all() "
                            f"stamped at head {HEAD}. No revision was replayed") for n in report["notes"])
