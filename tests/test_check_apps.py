"""``ci-migrate check`` on each tests/apps/ app, as a user runs it, on SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import json

import pytest

from support import by_name

SERVERS = ["sqlite", "postgresql", "mysql"]


def check_json(cli, app_dir, server, *extra):
    result = cli("check", "--sandbox", server, "--format", "json", *extra, cwd=app_dir)
    assert result.out.strip().startswith("{"), result.text
    return result, json.loads(result.out)


def rule_ids(report):
    return sorted(f["rule_id"] for c in report["checks"] for f in c["findings"])


def statuses(report, names=("graph", "replay", "drift")):
    return {c["name"]: c["status"] for c in report["checks"] if c["name"] in names}


@pytest.mark.parametrize("server", SERVERS, indirect=True)
@pytest.mark.parametrize("app_dir", ["clean"], indirect=True)
def test_clean_app_passes_everywhere(cli, app_dir, server):
    result, report = check_json(cli, app_dir, server, "--app", "blogapp:create_app('testing')")
    assert result.code == 0, result.text
    assert report["verdict"] == "passed"
    assert statuses(report) == {"graph": "passed", "replay": "passed", "drift": "passed"}
    replay = by_name(report, "replay")["facts"]
    assert len({r["revision"] for r in replay["revisions"]}) == 12
    assert all(r["status"] == "applied" and r["statements"] >= 1 for r in replay["revisions"])
    assert by_name(report, "graph")["facts"]["heads"] == replay["heads_after"][""]


@pytest.mark.parametrize("server", SERVERS, indirect=True)
@pytest.mark.parametrize("app_dir", ["tutorial_drift"], indirect=True)
def test_tutorial_drift_reports_user_bio(cli, app_dir, server):
    result, report = check_json(cli, app_dir, server, "--app", "app.py")
    assert result.code == 1, result.text
    assert report["verdict"] == "failed"
    assert rule_ids(report) == ["CM301"]
    drift = by_name(report, "drift")["facts"]
    (bind,) = drift["binds"]
    (table,) = bind["tables"]
    assert table["table"] == "user" and table["change"] == "changed"
    (item,) = table["items"]
    assert item["kind"] == "add_column" and item["name"] == "bio"
    assert item["text"] == "adds column `user.bio` VARCHAR(250), nullable"
    assert "add_column(" in bind["upgrade_code"]  # batch_op.add_column (Flask-Migrate >= 3) or op.add_column
    assert "sa.Column('bio', sa.String(length=250), nullable=True))" in bind["upgrade_code"]
    assert "drop_column(" in bind["downgrade_code"] and "'bio')" in bind["downgrade_code"]
    assert {t["name"] for t in report["tables"]} == {"user"}


@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
@pytest.mark.parametrize("app_dir", ["two_heads"], indirect=True)
def test_two_heads(cli, app_dir, server):
    result, report = check_json(cli, app_dir, server, "--app", "app.py")
    assert result.code == 1
    assert rule_ids(report) == ["CM101"]
    finding = by_name(report, "graph")["findings"][0]
    assert finding["fix"] == 'flask db merge -m "merge 1b5c2ebd16a4 and 34acf19d9d5c" 1b5c2ebd16a4 34acf19d9d5c'
    graph = by_name(report, "graph")["facts"]
    assert sorted(graph["heads"]) == ["1b5c2ebd16a4", "34acf19d9d5c"]
    assert {b["fork_point"] for b in graph["head_branches"]} == {"1521a969f997"}
    # both branches still replay ("upgrade heads") and the models match them
    assert statuses(report)["replay"] == "passed" and statuses(report)["drift"] == "passed"


@pytest.mark.parametrize("app_dir", ["missing_parent"], indirect=True)
def test_missing_parent_skips_database_checks(cli, app_dir):
    result, report = check_json(cli, app_dir, "sqlite", "--app", "app.py")
    assert result.code == 1
    assert rule_ids(report) == ["CM102"]
    finding = by_name(report, "graph")["findings"][0]
    assert finding["file"] == "migrations/versions/ca25b46c16fe_create_comment_table.py"
    assert "66cbc7634180" in finding["title"]
    assert statuses(report) == {"graph": "failed", "replay": "skipped", "drift": "skipped"}


@pytest.mark.parametrize("app_dir", ["duplicate_id"], indirect=True)
def test_duplicate_revision_id_names_both_files(cli, app_dir):
    result, report = check_json(cli, app_dir, "sqlite", "--app", "app.py")
    assert result.code == 1
    assert "CM103" in rule_ids(report)
    finding = next(f for f in by_name(report, "graph")["findings"] if f["rule_id"] == "CM103")
    text = finding["message"] + finding["title"]
    assert "c907c333763e_add_user_last_seen.py" in text and "c907c333763e_create_comment_table.py" in text


@pytest.mark.parametrize("app_dir", ["syntax_error"], indirect=True)
def test_syntax_error_file_and_line(cli, app_dir):
    result, report = check_json(cli, app_dir, "sqlite", "--app", "app.py")
    assert result.code == 1
    finding = next(f for f in by_name(report, "graph")["findings"] if f["rule_id"] == "CM105")
    assert finding["file"] == "migrations/versions/dda3e61facea_add_post_slug_and_post_created_at.py"
    assert finding["line"] == 22


@pytest.mark.parametrize("server", ["sqlite", "postgresql", "mysql"], indirect=True)
@pytest.mark.parametrize("app_dir", ["multidb"], indirect=True)
def test_multidb_every_bind_gets_its_own_sandbox(cli, app_dir, server):
    result, report = check_json(cli, app_dir, server, "--app", "app.py")
    assert result.code == 0, result.text
    replay = by_name(report, "replay")["facts"]
    assert set(replay["heads_after"]) == {"", "audit"}
    assert replay["heads_after"][""] == replay["heads_after"]["audit"]
    assert {r["bind"] for r in replay["revisions"]} == {None, "audit"}


@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
@pytest.mark.parametrize("app_dir", ["branch_merge"], indirect=True)
def test_branch_labels_and_merges_are_valid_history(cli, app_dir, server):
    result, report = check_json(cli, app_dir, server, "--app", "app.py")
    assert result.code == 0, result.text
    assert rule_ids(report) == []
    graph = by_name(report, "graph")["facts"]
    assert len(graph["heads"]) == 1 and graph["merge_points"] and graph["branch_points"]


@pytest.mark.parametrize("app_dir", ["tutorial_drift"], indirect=True)
def test_console_output_reads_well(cli, app_dir):
    result = cli("check", "--app", "app.py", cwd=app_dir)
    assert result.code == 1
    out = result.out
    assert "❌ 1 error — failing at or above 'error'" in out and "drift" in out
    assert "adds column `user.bio` VARCHAR(250), nullable" in out
    assert 'flask db migrate -m "add user.bio"' in out
    assert "def upgrade():" in out and "def downgrade():" in out
    assert not list(app_dir.glob("**/__pycache__")) and not (app_dir / "instance").exists()
