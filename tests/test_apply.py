"""``ci-migrate apply`` end to end, as a deploy job runs it: real apps, real PostgreSQL/MariaDB/SQLite."""

from __future__ import annotations

import json

import pytest

from apply_support import (CLEAN_APP, CLEAN_HEAD, SLOW_REVS, applied, apply, apply_facts, apply_log, finding, flask_db,
                           rule_ids, scenario_ahead_of_the_code, scenario_multiple_heads, scenario_unknown_revision,
                           scenario_unreachable, scenario_wrong_password, server_of, session, slow_app, state,
                           target_database, write_config)
from support import PG_SERVER, copy_app, run_cli


@pytest.fixture
def kind(request: pytest.FixtureRequest) -> str:
    request.getfixturevalue("pg_server" if request.param == "postgresql" else "mysql_server")
    return request.param


def clean_app(tmp_path, **target):
    app_dir = copy_app("clean", tmp_path)
    write_config(app_dir, CLEAN_APP, **target)
    return app_dir


@pytest.mark.parametrize("kind", ["postgresql", "mysql"], indirect=True)
def test_upgrades_from_base_then_is_at_head(kind, tmp_path):
    app_dir = clean_app(tmp_path)
    with target_database(kind) as url:
        result, report = apply(app_dir, url)
        assert result.code == 0, result.text
        facts = apply_facts(report)
        assert len(applied(report)) == 12 and facts["from_heads"] == {"": []}
        assert facts["to_heads"] == {"": [CLEAN_HEAD]} and state(url)["heads"] == [CLEAN_HEAD]
        assert all(a["statements"] >= 1 and a["duration_ms"] > 0 and a["message"] for a in facts["applied"])
        assert facts["lock"].startswith("pg_advisory_lock(" if kind == "postgresql" else "GET_LOCK('ci-migrate:")
        assert [c["name"] for c in report["checks"]] == ["apply", "drift"]
        assert report["checks"][1]["status"] == "passed"  # the models match the upgraded target
        assert ("MySQL/MariaDB commits every DDL statement" in " ".join(report["notes"])) == (kind == "mysql")
        # the fast path: at head, no lock taken
        result, report = apply(app_dir, url)
        assert result.code == 0 and apply_facts(report)["lock"] is None
        assert "already at head 9458ded74214" in report["checks"][0]["summary"]


@pytest.mark.parametrize("kind", ["postgresql", "mysql"], indirect=True)
def test_upgrades_from_the_middle_of_the_history(kind, tmp_path):
    """With the drift gate on: a schema made by the revisions themselves passes it (no false positives)."""
    app_dir = clean_app(tmp_path, drift_gate=True)
    with target_database(kind) as url:
        flask_db(app_dir, CLEAN_APP, url, "upgrade", "39b9f101090f")
        result = run_cli("apply", "--target", "production", "--sandbox", server_of(kind), cwd=app_dir,
                         env={"PROD_URL": url})
        assert result.code == 0, result.text
        assert "Drift gate: the live schema matches the migrations at 39b9f101090f." in result.out
        assert "applied 5 revisions to production: 39b9f101090f → 9458ded74214" in result.out
        assert "✔ e6125838f08e add role table with default roles" in result.out
        assert "ran b00feacf1d63 add user profile fields about_me and last_seen" in result.err
        assert state(url)["heads"] == [CLEAN_HEAD]
        with session(url) as conn:  # the data migration ran exactly once
            assert conn.exec_driver_sql("SELECT count(*) FROM role").scalar() == 3


@pytest.mark.parametrize("kind", ["postgresql"], indirect=True)
def test_lock_held_elsewhere_names_the_holder_and_at_head_no_lock_is_needed(kind, tmp_path):
    from ci_migrate.apply.locking import lock_key, lock_text

    app_dir = slow_app(tmp_path, lock_wait=0.5)
    with target_database(kind) as url:
        with session(url) as other:
            other.exec_driver_sql("SET application_name = 'deploy #41'")
            other.exec_driver_sql(f"SELECT pg_advisory_lock({lock_key(lock_text('alembic_version', None))})")
            result, report = apply(app_dir, url)
            assert result.code == 1 and rule_ids(report) == ["CM804"], result.text
            lock = finding(report, "CM804")
            assert lock["title"].startswith("the migration lock of production is held by pid ")
            assert "deploy #41" in lock["title"] and lock["details"]["waited_s"] >= 0.5
            assert "waiting up to 0.5 s for the migration lock" in result.err
            assert state(url)["tables"] == []
            # at head, apply takes no lock: the fast path works while another deploy holds it
            flask_db(app_dir, "app.py", url, "upgrade")
            result, report = apply(app_dir, url)
        assert result.code == 0 and apply_facts(report)["lock"] is None, result.text


@pytest.mark.parametrize("kind", ["postgresql"], indirect=True)
def test_dry_run_prints_plan_and_sql_and_writes_nothing(kind, tmp_path):
    app_dir = slow_app(tmp_path)
    with target_database(kind) as url:
        flask_db(app_dir, "app.py", url, "upgrade", SLOW_REVS[1])
        result = run_cli("apply", "--target", "production", "--dry-run", "--output", "report.json", cwd=app_dir,
                         env={"PROD_URL": url})
        assert result.code == 0, result.text
        assert "dry run: 2 revisions would be applied to production (86a2e69763da → a0ec6250bfad)" in result.out
        assert "ALTER TABLE post ADD COLUMN summary VARCHAR(280);" in result.out
        assert "CREATE INDEX CONCURRENTLY ix_post_author_id ON post (author_id);" in result.out
        assert state(url, "post")["heads"] == [SLOW_REVS[1]] and "summary" not in state(url, "post")["columns"]
        facts = apply_facts(json.loads((app_dir / "report.json").read_text()))
        assert facts["dry_run"] and facts["lock"] is None and facts["applied"] == []
        assert [p["revision"] for p in facts["pending"]] == SLOW_REVS[2:] and all(p["sql"] for p in facts["pending"])


@pytest.mark.parametrize("kind", ["postgresql", "mysql"], indirect=True)
def test_unknown_revision_in_the_database_is_refused(kind, tmp_path):
    scenario_unknown_revision(kind, tmp_path)


@pytest.mark.parametrize("kind", ["mysql"], indirect=True)
def test_database_ahead_of_the_code_is_refused(kind, tmp_path):
    scenario_ahead_of_the_code(kind, tmp_path)


@pytest.mark.parametrize("kind", ["postgresql"], indirect=True)
def test_multiple_heads_refused_unless_allowed(kind, tmp_path):
    scenario_multiple_heads(kind, tmp_path)


@pytest.mark.parametrize("kind", ["postgresql"], indirect=True)
def test_tables_without_a_revision_are_refused(kind, tmp_path):
    app_dir = copy_app("baseline_needed", tmp_path)
    write_config(app_dir, "app.py")
    with target_database(kind) as url:
        with session(url) as conn:
            conn.exec_driver_sql((app_dir / "schema.sql").read_text())
            conn.commit()
        result, report = apply(app_dir, url)
        assert result.code == 1 and rule_ids(report) == ["CM803"], result.text
        assert finding(report, "CM803")["details"]["tables"] == ["note", "user"]
        assert "alembic_version" not in state(url)["tables"]


@pytest.mark.parametrize("kind", ["postgresql"], indirect=True)
def test_drift_gate_refuses_a_hand_made_change(kind, tmp_path):
    app_dir = slow_app(tmp_path, drift_gate=True)
    with target_database(kind) as url:
        flask_db(app_dir, "app.py", url, "upgrade", SLOW_REVS[1])
        with session(url) as conn:
            conn.exec_driver_sql("ALTER TABLE post ADD COLUMN hotfix INTEGER")
            conn.commit()
        result, report = apply(app_dir, url, "--sandbox", PG_SERVER)
        assert result.code == 1 and rule_ids(report) == ["CM805"], result.text
        gate = finding(report, "CM805")
        assert gate["title"] == ("the live schema of production differs from its revision 86a2e69763da: "
                                 "drops column `post.hotfix` INTEGER, nullable")
        assert state(url, "post")["heads"] == [SLOW_REVS[1]]
        result, report = apply(app_dir, url, "--sandbox", PG_SERVER, "--allow-drift")
        assert state(url, "post")["heads"] == [SLOW_REVS[-1]]
        assert rule_ids(report) == ["CM301", "CM805"] and result.code == 1  # the models lack post.hotfix
        assert finding(report, "CM805")["severity"] == "warning"


def test_drift_gate_needs_a_sandbox_of_the_targets_kind(pg_server, tmp_path):
    app_dir = slow_app(tmp_path)
    with target_database("postgresql") as url:
        result = run_cli("apply", "--target", "production", "--drift-gate", cwd=app_dir, env={"PROD_URL": url})
        assert result.code == 2, result.text
        assert "needs a sandbox server of the same kind" in result.err and "sandbox is sqlite" in result.err
        assert state(url)["tables"] == []


def test_sqlite_target_with_backup_command(tmp_path):
    app_dir = slow_app(tmp_path, backup_command="exit 7")
    url = f"sqlite:///{tmp_path / 'prod.db'}"
    result, report = apply(app_dir, url)
    assert result.code == 1 and rule_ids(report) == ["CM806"], result.text
    assert finding(report, "CM806")["title"] == "the backup command failed (exit 7); nothing was applied"
    assert state(url)["tables"] == []
    write_config(app_dir, "app.py", backup_command='echo "$CI_MIGRATE_APPLY_FROM -> $CI_MIGRATE_APPLY_TO" > backup.txt')
    result, report = apply(app_dir, url)
    assert result.code == 0, result.text
    assert (app_dir / "backup.txt").read_text() == "base -> a0ec6250bfad\n"
    assert apply_facts(report)["lock"] == f"flock({tmp_path / 'prod.db'})"
    assert applied(report) == SLOW_REVS and state(url)["heads"] == [SLOW_REVS[-1]]
    assert "ci_migrate_apply_log" not in state(url)["tables"]  # SQLite keeps no apply log


@pytest.mark.parametrize("kind", ["postgresql"], indirect=True)
def test_the_apply_log_is_not_one_of_the_apps_tables(kind, tmp_path):
    """The log apply keeps in the target is neither drift, nor a table without a revision (CM803),
    nor a difference for the drift gate."""
    app_dir = slow_app(tmp_path)
    with target_database(kind) as url:
        result, report = apply(app_dir, url)
        assert result.code == 0 and report["checks"][1]["status"] == "passed", result.text  # drift: models match
        assert apply_log(url) == [(revision, "ok") for revision in SLOW_REVS]
        flask_db(app_dir, "app.py", url, "downgrade", "base")
        assert state(url)["tables"] == ["alembic_version", "ci_migrate_apply_log"] and state(url)["heads"] == []
        result, report = apply(app_dir, url, "--drift-gate", "--sandbox", PG_SERVER)
        assert result.code == 0, result.text
        assert "Drift gate: the live schema matches the migrations at base." in report["notes"]
        assert applied(report) == SLOW_REVS and len(apply_log(url)) == 2 * len(SLOW_REVS)


@pytest.mark.parametrize("kind", ["postgresql"], indirect=True)
def test_an_apply_log_it_cannot_write_is_a_note_and_the_upgrade_goes_on(kind, tmp_path):
    """The deploying user may not write the log (made by someone else): the revisions are applied,
    and the report says an interrupted one would not be recognised."""
    import secrets

    app_dir = slow_app(tmp_path)
    role = f"ci_apply_{secrets.token_hex(4)}"
    with target_database(kind) as url:
        with session(url) as admin:
            admin.exec_driver_sql(f"CREATE ROLE {role} LOGIN")
            admin.exec_driver_sql(f"GRANT CREATE, USAGE ON SCHEMA public TO {role}")
            admin.exec_driver_sql("CREATE TABLE ci_migrate_apply_log (id SERIAL PRIMARY KEY, revision VARCHAR(255) "
                                  "NOT NULL, bind VARCHAR(255) NOT NULL, started_at TIMESTAMP NOT NULL, finished_at "
                                  "TIMESTAMP, outcome VARCHAR(16), runner VARCHAR(255))")
            admin.commit()
        try:
            result, report = apply(app_dir, url.replace("//postgres@", f"//{role}@"))
            assert result.code == 0 and applied(report) == SLOW_REVS, result.text
            (note,) = [n for n in report["notes"] if n.startswith("The apply log could not be written on production")]
            assert "permission denied for table ci_migrate_apply_log" in note, note
            assert "the next one cannot tell which" in note
        finally:
            with session(url) as admin:
                admin.exec_driver_sql(f"DROP OWNED BY {role}")
                admin.exec_driver_sql(f"DROP ROLE {role}")
                admin.commit()


def test_resume_interrupted_and_dry_run_together_are_a_usage_error(tmp_path):
    app_dir = slow_app(tmp_path)
    result = run_cli("apply", "--target", "production", "--dry-run", "--resume-interrupted", cwd=app_dir,
                     env={"PROD_URL": f"sqlite:///{tmp_path / 'prod.db'}"})
    assert result.code == 2, result.text
    assert result.err.strip() == ("error: --resume-interrupted finishes a revision on the target, and --dry-run "
                                  "writes nothing: use one or the other")
    assert not (tmp_path / "prod.db").exists()


def test_unset_url_variable_is_a_config_error(tmp_path):
    app_dir = slow_app(tmp_path)
    result = run_cli("apply", "--target", "production", cwd=app_dir)
    assert result.code == 2
    assert result.err.strip() == ("error: target 'production': environment variable PROD_URL is not set "
                                  "(targets.production.url-env names it; it should hold the database URL)")


def test_unreachable_server_exits_3_naming_host_and_database(pg_server, tmp_path):
    scenario_unreachable(tmp_path)


def test_wrong_password_exits_3_without_the_password(mysql_server, tmp_path):
    scenario_wrong_password(tmp_path)


@pytest.mark.parametrize("kind", ["postgresql", "mysql"], indirect=True)
def test_statement_timeout_stops_a_long_revision(kind, tmp_path):
    app_dir = slow_app(tmp_path, statement_timeout=1)
    with target_database(kind) as url:
        result, report = apply(app_dir, url, env={"SLOW_MIGRATION_PAUSE": "before:20"})
        assert result.code == 1 and rule_ids(report) == ["CM807"], result.text
        failed = finding(report, "CM807")
        assert failed["revision"] == "b7b5059fb788" and failed["details"]["lock"] is None
        assert "statement timeout" in failed["details"]["error"] or "max_statement_time" in failed["details"]["error"]
        assert apply_facts(report)["retries"] == 0 and apply_facts(report)["applied"][-1]["duration_ms"] < 10_000
        assert state(url)["heads"] == [SLOW_REVS[1]]


def test_sqlite_lock_is_a_flock_on_the_database_file(tmp_path):
    import fcntl

    app_dir = slow_app(tmp_path, lock_wait=0.3)
    db = tmp_path / "prod.db"
    with open(db, "a") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        result, report = apply(app_dir, f"sqlite:///{db}")
    assert result.code == 1 and rule_ids(report) == ["CM804"], result.text
    assert finding(report, "CM804")["details"]["lock"] == f"flock({db})"
    assert state(f"sqlite:///{db}")["tables"] == []


def test_session_timeouts_per_dialect():
    from ci_migrate.probe.target import session_statements

    assert session_statements("postgresql", 5, 0) == [
        "SET lock_timeout = '5000ms'", "SET statement_timeout = '0ms'", "SET application_name = 'ci-migrate apply'"]
    assert session_statements("mysql", 0.5, 30, mariadb=True) == [
        "SET SESSION lock_wait_timeout = 1", "SET SESSION innodb_lock_wait_timeout = 1",
        "SET SESSION max_statement_time = 30"]
    assert session_statements("mysql", 0, 2.5) == ["SET SESSION max_execution_time = 2500"]
    assert session_statements("sqlite", 2, 0) == ["PRAGMA busy_timeout = 2000"]
    assert session_statements("sqlite", 0, 0) == []


def test_env_py_with_its_own_engine_is_stopped_before_it_connects(tmp_path):
    """env.py edited to build its engine from another variable: the guard stops that connection before it
    is opened (CM205, naming env.py's line), so nothing runs elsewhere and the target stays as it was."""
    app_dir = slow_app(tmp_path)
    env_py = app_dir / "migrations" / "env.py"
    text = env_py.read_text()
    stock = "def get_engine():\n    try:"
    assert stock in text
    env_py.write_text(text.replace(stock, "def get_engine():\n    import os\n    import sqlalchemy\n"
                                          "    return sqlalchemy.create_engine(os.environ['MIGRATIONS_DB'])\n    try:"))
    target, elsewhere = f"sqlite:///{tmp_path / 'prod.db'}", f"sqlite:///{tmp_path / 'other.db'}"
    result, report = apply(app_dir, target, env={"MIGRATIONS_DB": elsewhere})
    assert result.code == 1 and rule_ids(report) == ["CM205"], result.text
    stop = finding(report, "CM205")
    assert stop["file"] == "migrations/env.py" and stop["line"] == 102  # `with connectable.connect()`
    assert "other.db" in stop["title"] and stop["title"].endswith("which is not the target")
    assert state(target)["heads"] == [] and not (tmp_path / "other.db").exists()


@pytest.mark.parametrize("kind", ["postgresql"], indirect=True)
def test_multidb_failure_rolls_back_every_bind_of_the_run(kind, tmp_path):
    """The multidb template commits all binds at the end: a revision failing on `audit` undoes the
    default bind's revisions of the same run, and the report says so (rolled_back)."""
    app_dir = copy_app("multidb", tmp_path)
    write_config(app_dir, "app.py", binds={"audit": "AUDIT_URL"})
    (app_dir / ".ci-migrate.yml").write_text((app_dir / ".ci-migrate.yml").read_text() + "rules: {CM803: off}\n")
    with target_database(kind) as url, target_database(kind) as audit_url:
        with session(audit_url) as conn:  # made by hand: the first audit revision's CREATE TABLE fails
            conn.exec_driver_sql("CREATE TABLE audit_log (id INTEGER PRIMARY KEY)")
            conn.commit()
        result, report = apply(app_dir, url, env={"AUDIT_URL": audit_url})
        assert result.code == 1 and rule_ids(report) == ["CM807"], result.text
        facts = apply_facts(report)
        statuses = {(a["bind"], a["status"]) for a in facts["applied"]}
        assert statuses == {(None, "rolled_back"), ("audit", "failed")}, facts["applied"]
        assert finding(report, "CM807")["bind"] == "audit"
        assert facts["to_heads"] == {"": [], "audit": []}
        # what stays is the apply log, written outside the run's transactions
        assert state(url)["tables"] in (["ci_migrate_apply_log"], ["alembic_version", "ci_migrate_apply_log"])
        assert state(audit_url)["tables"] == ["audit_log", "ci_migrate_apply_log"]
        assert any("multidb" in note and "rolls back" in note for note in report["notes"])


@pytest.mark.parametrize("kind", ["postgresql"], indirect=True)
def test_dry_run_is_the_plan_with_its_risks_and_the_target_rows(kind, tmp_path):
    """A dry run reviews what it would apply: the risk rules flag the NOT NULL column without a default
    (CM504, an error: the run fails), and the row counts of the tables it touches come with it."""
    app_dir = copy_app("risky", tmp_path)
    write_config(app_dir, "app.py")
    with target_database(kind) as url:
        flask_db(app_dir, "app.py", url, "upgrade", "2579b38b2ff9")
        with session(url) as conn:
            conn.exec_driver_sql("""INSERT INTO "user" (username, email) VALUES ('ada', 'a@x'), ('grace', 'g@x')""")
            conn.exec_driver_sql('ANALYZE "user"')
            conn.commit()
        result = run_cli("apply", "--target", "production", "--dry-run", "--format", "json", cwd=app_dir,
                         env={"PROD_URL": url})
        report = json.loads(result.out)
        assert result.code == 1, result.text
        assert [c["name"] for c in report["checks"]][:3] == ["apply", "plan", "lint"]
        assert "CM504" in rule_ids(report) and report["verdict"] == "failed"
        facts = apply_facts(report)
        assert facts["dry_run"] and facts["table_rows"]["user"] == 2
        assert state(url)["heads"] == ["2579b38b2ff9"]  # nothing written


@pytest.mark.parametrize("kind", ["postgresql"], indirect=True)
def test_nothing_to_apply_still_says_where_the_target_is(kind, tmp_path):
    app_dir = slow_app(tmp_path)
    outputs = tmp_path / "outputs"
    outputs.write_text("")
    with target_database(kind) as url:
        flask_db(app_dir, "app.py", url, "upgrade")
        result, report = apply(app_dir, url, env={"GITHUB_ACTIONS": "true", "GITHUB_OUTPUT": str(outputs)})
    assert result.code == 0, result.text
    assert apply_facts(report)["to_heads"] == {"": [SLOW_REVS[-1]]}
    lines = outputs.read_text().splitlines()
    found = {line.split("<<", 1)[0]: lines[i + 1] for i, line in enumerate(lines) if "<<" in line}
    assert found["to"] == found["from"] == SLOW_REVS[-1] and found["applied-count"] == "0"
