"""Extra Alembic script directories with version tables of their own (tests/apps/plugins): the plugin
pattern. The app's history is replayed first, then each plugin's — `plugins/audit/migrations` through
its own env.py, `plugins/tags/versions` through the app's env.py — so drift sees the plugins' tables
as migrated; the graph judges each directory's history on its own; the report names each head."""

from __future__ import annotations

import json

import pytest

import venvs
from support import by_name
from test_check_apps import rule_ids
from test_plan import git

CORE_HEAD = "90a1583c04bd"
AUDIT = "plugins/audit/migrations"
TAGS = "plugins/tags/versions"
HEADS = {AUDIT: ["10891cb15695"], TAGS: ["64140656eab9"]}
PLUGIN_TABLES = {"audit_entry", "tag", "post_tag"}
# upgrade order: the app's history, then each directory in config order
REVISIONS = ["574dfaf260a0", CORE_HEAD, "123abb79f50c", "10891cb15695", "51e5d2fe957d", "64140656eab9"]
SECOND_AUDIT_HEAD = '''"""tidy audit entries

Revision ID: 5e1f0c2b9a77
Revises: 123abb79f50c
Create Date: 2026-12-01 14:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = '5e1f0c2b9a77'
down_revision = '123abb79f50c'
branch_labels = None
depends_on = None


def upgrade():
    pass


def downgrade():
    pass
'''


def check_json(cli, app_dir, server, *extra, env=None):
    result = cli("check", "--sandbox", server, "--format", "json", *extra, cwd=app_dir, env=env)
    assert result.out.strip().startswith("{"), result.text
    return result, json.loads(result.out)


def statuses(report):
    return {c["name"]: c["status"] for c in report["checks"] if c["name"] in ("graph", "replay", "drift")}


@pytest.mark.parametrize("server", ["sqlite", "postgresql"], indirect=True)
@pytest.mark.parametrize("app_dir", ["plugins"], indirect=True)
def test_without_the_plugin_directories_their_tables_are_drift(cli, app_dir, server):
    result, report = check_json(cli, app_dir, server, "--migrations", "migrations")
    assert result.code == 1, result.text
    assert rule_ids(report) == ["CM301"]
    (bind,) = by_name(report, "drift")["facts"]["binds"]
    assert {t["table"]: t["change"] for t in bind["tables"]} == dict.fromkeys(PLUGIN_TABLES, "added")
    assert by_name(report, "graph")["facts"]["directories"] == []


@pytest.mark.parametrize("server", ["sqlite", "postgresql"], indirect=True)
@pytest.mark.parametrize("app_dir", ["plugins"], indirect=True)
def test_plugin_directories_are_replayed_after_the_app_history(cli, app_dir, server):
    result, report = check_json(cli, app_dir, server)
    assert result.code == 0, result.text
    assert statuses(report) == {"graph": "passed", "replay": "passed", "drift": "passed"}
    graph = by_name(report, "graph")
    assert graph["summary"] == (f"1 head {CORE_HEAD}, 2 revisions; {AUDIT}: 1 head 10891cb15695, 2 revisions; "
                                f"{TAGS}: 1 head 64140656eab9, 2 revisions")
    assert graph["facts"]["heads"] == [CORE_HEAD]
    directories = graph["facts"]["directories"]
    assert {d["path"]: d["heads"] for d in directories} == HEADS
    assert {d["path"]: (d["version_table"], d["env_py"]) for d in directories} == {
        AUDIT: ("alembic_version_audit", f"{AUDIT}/env.py"), TAGS: ("alembic_version_tags", None)}
    assert [r["file"] for r in directories[0]["revisions"]] == [
        f"{AUDIT}/versions/123abb79f50c_create_audit_entry_table.py",
        f"{AUDIT}/versions/10891cb15695_add_audit_entry_ip_address.py"]
    replay = by_name(report, "replay")
    assert replay["summary"].startswith("6 revisions applied from 3 script directories on ")
    assert [r["revision"] for r in replay["facts"]["revisions"]] == REVISIONS
    assert all(r["statements"] >= 1 for r in replay["facts"]["revisions"])
    # each history in its own version table: the app's holds only its own head
    assert replay["facts"]["heads_after"] == {"": [CORE_HEAD]}
    assert {d["path"]: (d["version_table"], d["heads"]) for d in replay["facts"]["directories"]} == {
        AUDIT: ("alembic_version_audit", HEADS[AUDIT]), TAGS: ("alembic_version_tags", HEADS[TAGS])}


@pytest.mark.parametrize("stack", [venvs.OLDEST, venvs.NEWEST], ids=lambda s: s.name)
@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
@pytest.mark.parametrize("app_dir", ["plugins"], indirect=True)
def test_plugin_directories_on_each_stack(cli, app_dir, server, stack):
    """The probe on Python 3.9 (alembic 1.7, Flask-Migrate 2.5, Flask-SQLAlchemy 2.5) and 3.13."""
    result, report = check_json(cli, app_dir, server, "--python", str(venvs.venv(stack)))
    assert result.code == 0, result.text
    assert report["interpreter"]["python"].startswith(stack.python + ".")
    replay = by_name(report, "replay")["facts"]
    assert [r["revision"] for r in replay["revisions"]] == REVISIONS
    assert {d["path"]: d["heads"] for d in replay["directories"]} == HEADS
    assert statuses(report) == {"graph": "passed", "replay": "passed", "drift": "passed"}


@pytest.mark.parametrize("app_dir", ["plugins"], indirect=True)
def test_the_console_names_each_directory_head(cli, app_dir):
    result = cli("check", cwd=app_dir)
    assert result.code == 0, result.text
    assert (f"graph   passed   1 head {CORE_HEAD}, 2 revisions; {AUDIT}: 1 head 10891cb15695, 2 revisions; "
            f"{TAGS}: 1 head 64140656eab9, 2 revisions") in result.out
    assert "replay  passed   6 revisions applied from 3 script directories on sqlite" in result.out


@pytest.mark.parametrize("app_dir", ["plugins"], indirect=True)
def test_each_directory_history_is_judged_on_its_own(cli, app_dir):
    (app_dir / AUDIT / "versions" / "5e1f0c2b9a77_tidy_audit_entries.py").write_text(SECOND_AUDIT_HEAD)
    result, report = check_json(cli, app_dir, "sqlite")
    assert result.code == 1, result.text
    assert rule_ids(report) == ["CM101"]
    graph = by_name(report, "graph")
    (finding,) = graph["findings"]
    assert finding["title"] == f"{AUDIT}: 2 heads: 10891cb15695, 5e1f0c2b9a77"
    assert finding["fix"] == (f'flask db merge -d {AUDIT} -m "merge 10891cb15695 and 5e1f0c2b9a77" '
                              "10891cb15695 5e1f0c2b9a77")
    assert finding["details"]["directory"] == AUDIT
    assert graph["facts"]["heads"] == [CORE_HEAD]
    assert {d["path"]: d["heads"] for d in graph["facts"]["directories"]} == {
        AUDIT: ["10891cb15695", "5e1f0c2b9a77"], TAGS: HEADS[TAGS]}
    # `upgrade heads` takes both branches, as alembic does
    replay = by_name(report, "replay")["facts"]
    assert {d["path"]: d["heads"] for d in replay["directories"]} == {
        AUDIT: ["10891cb15695", "5e1f0c2b9a77"], TAGS: HEADS[TAGS]}
    assert statuses(report)["drift"] == "passed"


@pytest.mark.parametrize("app_dir", ["plugins"], indirect=True)
def test_a_broken_plugin_history_skips_the_replay(cli, app_dir):
    first = app_dir / TAGS / "51e5d2fe957d_create_tag_table.py"
    first.write_text(first.read_text().replace("down_revision = None", "down_revision = 'deadbeef0000'"))
    result, report = check_json(cli, app_dir, "sqlite")
    assert result.code == 1, result.text
    assert rule_ids(report) == ["CM102"]
    (finding,) = by_name(report, "graph")["findings"]
    assert finding["title"] == f"{TAGS}: 51e5d2fe957d: down_revision 'deadbeef0000' does not exist"
    assert (finding["file"], finding["line"]) == (f"{TAGS}/51e5d2fe957d_create_tag_table.py", 14)
    why = f"skipped: the revision graph of {TAGS} is broken (CM102)"
    assert {c["name"]: (c["status"], c["summary"]) for c in report["checks"] if c["name"] in ("replay", "drift")} == {
        "replay": ("skipped", why), "drift": ("skipped", why)}


@pytest.mark.parametrize("app_dir", ["plugins"], indirect=True)
def test_a_plugin_env_py_with_another_version_table_fails_the_replay(cli, app_dir):
    config = app_dir / ".ci-migrate.yml"
    config.write_text(config.read_text().replace("alembic_version_audit", "alembic_version_auditlog"))
    env_py = (app_dir / AUDIT / "env.py").read_text().splitlines()
    line = [i for i, text in enumerate(env_py, 1) if "context.configure(" in text][-1]  # the online one
    result, report = check_json(cli, app_dir, "sqlite")
    assert result.code == 1, result.text
    assert rule_ids(report) == ["CM201"]
    (finding,) = by_name(report, "replay")["findings"]
    assert (finding["file"], finding["line"]) == (f"{AUDIT}/env.py", line)
    assert finding["title"] == (f"{AUDIT}: {AUDIT}/env.py:{line} failed: it records revisions in "
                                "'alembic_version_audit', not in 'alembic_version_auditlog' (the config's version-table)")
    assert finding["fix"] == ("Pass version_table='alembic_version_auditlog' in env.py (or "
                              "config.get_main_option('version_table'), which ci-migrate sets), or correct the "
                              "version-table in the config.")
    assert by_name(report, "drift")["status"] == "skipped"


@pytest.mark.parametrize("app_dir", ["plugins"], indirect=True)
def test_an_extra_directory_that_is_the_app_own_is_refused(cli, app_dir):
    (app_dir / ".ci-migrate.yml").write_text("app: app.py\nmigrations:\n"
                                             "  - {path: migrations, version-table: alembic_version_core}\n")
    result = cli("check", cwd=app_dir)
    assert (result.code, result.err) == (2, "error: migrations: migrations is the app's own migrations directory "
                                            "(the one its Migrate extension uses); list it without a version-table\n")


@pytest.mark.parametrize("app_dir", ["plugins"], indirect=True)
def test_a_create_all_baseline_stamps_the_plugin_directories(cli, app_dir):
    result, report = check_json(cli, app_dir, "sqlite", env={"CI_MIGRATE_BASELINE": "{create-all: true}"})
    assert result.code == 0, result.text
    replay = by_name(report, "replay")["facts"]
    assert replay["revisions"] == []  # create_all() made every table, the plugins' too
    assert {d["path"]: d["heads"] for d in replay["directories"]} == HEADS
    assert statuses(report) == {"graph": "passed", "replay": "passed", "drift": "passed"}


NEW_CORE = '''"""add user.bio

Revision ID: b10b10b10b10
Revises: 90a1583c04bd
Create Date: 2026-12-01 14:00:00.000000

"""
from alembic import op
import sqlalchemy as sa


# revision identifiers, used by Alembic.
revision = 'b10b10b10b10'
down_revision = '90a1583c04bd'
branch_labels = None
depends_on = None


def upgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.add_column(sa.Column('bio', sa.String(length=250), nullable=True))


def downgrade():
    with op.batch_alter_table('user', schema=None) as batch_op:
        batch_op.drop_column('bio')
'''


@pytest.mark.parametrize("app_dir", ["plugins"], indirect=True)
def test_a_pull_request_schema_change_leaves_the_plugins_out(cli, app_dir):
    git(app_dir, "init", "-q", "-b", "main")
    git(app_dir, "add", "-A")
    git(app_dir, "commit", "-q", "-m", "the app and its plugins")
    git(app_dir, "checkout", "-q", "-b", "feature")
    (app_dir / "migrations" / "versions" / "b10b10b10b10_add_user_bio.py").write_text(NEW_CORE)
    app = app_dir / "app.py"
    app.write_text(app.read_text().replace("    email = db.Column(db.String(120), nullable=False)\n",
                                           "    email = db.Column(db.String(120), nullable=False)\n"
                                           "    bio = db.Column(db.String(250))\n", 1))
    git(app_dir, "add", "-A")
    git(app_dir, "commit", "-q", "-m", "add user.bio")
    result, report = check_json(cli, app_dir, "sqlite", "--base", "main")
    assert result.code == 0, result.text
    assert [r["revision"] for r in by_name(report, "plan")["facts"]["pending"]] == ["b10b10b10b10"]
    change = report["schema_change"]
    assert [(t["name"], t["change"]) for t in change["tables"]] == [("user", "changed")]
    assert by_name(report, "drift")["status"] == "passed"
