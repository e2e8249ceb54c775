"""``ci-migrate check`` on the remaining cases: baseline, empty message, import errors, bad config."""

from __future__ import annotations

import json
from importlib.metadata import version

import pytest

from support import by_name, copy_app


def run_json(cli, app_dir, *args, env=None):
    result = cli("check", "--format", "json", *args, cwd=app_dir, env=env)
    return result, (json.loads(result.out) if result.out.strip().startswith("{") else None)


@pytest.mark.parametrize("server", ["sqlite", "postgresql"], indirect=True)
@pytest.mark.parametrize("app_dir", ["baseline_needed"], indirect=True)
def test_first_revision_on_create_all_table_suggests_a_baseline(cli, app_dir, server):
    result, report = run_json(cli, app_dir, "--app", "app.py", "--sandbox", server)
    assert result.code == 1
    (finding,) = [f for c in report["checks"] for f in c["findings"]]
    assert finding["rule_id"] == "CM202"
    assert finding["revision"] == "860473c5a52e"
    assert finding["file"] == "migrations/versions/860473c5a52e_add_user_last_login.py"
    assert "baseline:" in finding["fix"] and "revision: base " in finding["fix"]
    assert by_name(report, "drift")["status"] == "skipped"
    # the suggested baseline, as written, makes the run pass: the first revision still runs on the schema
    suggested = finding["fix"].split("\n")[1:4]
    (app_dir / ".ci-migrate.yml").write_text("app: app.py\n" + "\n".join(line[2:] for line in suggested) + "\n")
    result, report = run_json(cli, app_dir, "--sandbox", server)
    assert result.code == 0, result.text
    assert by_name(report, "replay")["status"] == "passed"


@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
def test_empty_revisions_before_the_first_that_needs_create_all_tables_still_suggest_a_baseline(cli, tmp_path, server):
    """A history that starts with an empty revision (the schema was made with create_all() and stamped
    there): the first revision that changes the schema misses its table — CM202, not CM201."""
    app_dir = copy_app("baseline_needed", tmp_path)
    versions = app_dir / "migrations" / "versions"
    first = versions / "860473c5a52e_add_user_last_login.py"
    first.write_text(first.read_text().replace("down_revision = None", "down_revision = '0c0ffee00001'"))
    (versions / "0c0ffee00001_db_v1.py").write_text(
        '"""db v1\n\nRevision ID: 0c0ffee00001\nRevises:\nCreate Date: 2026-01-01 00:00:00\n\n"""\n'
        "from alembic import op\nimport sqlalchemy as sa\n\n\nrevision = '0c0ffee00001'\ndown_revision = None\n"
        "branch_labels = None\ndepends_on = None\n\n\ndef upgrade():\n    pass\n\n\ndef downgrade():\n    pass\n")
    result, report = run_json(cli, app_dir, "--app", "app.py", "--sandbox", server)
    assert result.code == 1, result.text
    (finding,) = [f for c in report["checks"] for f in c["findings"]]
    assert (finding["rule_id"], finding["revision"]) == ("CM202", "860473c5a52e"), finding["title"]
    assert finding["title"] == "revision 860473c5a52e, the first that changes the schema, needs tables that no revision creates"
    assert "The revisions before it change nothing (0c0ffee00001: empty upgrade())." in finding["message"]
    assert "baseline:" in finding["fix"]


def test_first_revision_failing_on_an_unknown_type_is_no_missing_table(cli, tmp_path, pg_server):
    # An app written for SQLite: its first revision uses sa.DATETIME(), a type PostgreSQL does not
    # have ('type "datetime" does not exist'). That is a failing revision, not a create_all() history.
    app_dir = copy_app("clean", tmp_path)
    first = app_dir / "migrations/versions/2a5ab8d32f0e_create_user_table.py"
    text = first.read_text()
    assert "sa.Column('password_hash'" in text
    first.write_text(text.replace("sa.Column('password_hash'", "sa.Column('seen', sa.DATETIME(), nullable=True),\n"
                                                               "    sa.Column('password_hash'"))
    result, report = run_json(cli, app_dir, "--app", "blogapp:create_app('testing')", "--sandbox", pg_server)
    assert result.code == 1, result.text
    (finding,) = [f for c in report["checks"] for f in c["findings"] if f["rule_id"] in ("CM201", "CM202")]
    assert finding["rule_id"] == "CM201", finding["title"]
    assert finding["revision"] == "2a5ab8d32f0e" and 'type "datetime" does not exist' in finding["message"]
    assert "baseline" not in finding["fix"]


@pytest.mark.parametrize("server", ["sqlite", "postgresql"], indirect=True)
@pytest.mark.parametrize("app_dir", ["baseline_needed"], indirect=True)
def test_baseline_schema_file_lets_the_replay_start_there(cli, app_dir, server):
    # the baseline is the state *before* the first revision: stamp its parent ('base' is not a
    # revision), so the config names the first revision's parent via the schema and stamps nothing
    (app_dir / ".ci-migrate.yml").write_text(
        "app: app.py\nbaseline:\n  revision: base\n  schema: schema.sql\n")
    result, report = run_json(cli, app_dir, "--sandbox", server)
    assert result.code == 0, result.text
    replay = by_name(report, "replay")["facts"]
    assert [r["revision"] for r in replay["revisions"]] == ["860473c5a52e", "4a0f79a0c0e8", "1feb6e0abffe"]
    assert by_name(report, "drift")["status"] == "passed"


@pytest.mark.parametrize("app_dir", ["baseline_needed"], indirect=True)
def test_baseline_create_all(cli, app_dir):
    (app_dir / ".ci-migrate.yml").write_text("app: app.py\nbaseline:\n  revision: 1feb6e0abffe\n  create-all: true\n")
    result, report = run_json(cli, app_dir)
    assert result.code == 0, result.text
    assert by_name(report, "replay")["facts"]["start"] == "1feb6e0abffe"
    assert by_name(report, "replay")["facts"]["revisions"] == []


@pytest.mark.parametrize("app_dir", ["empty_message"], indirect=True)
def test_empty_message_of_the_history_is_an_info_line(cli, app_dir):
    result, report = run_json(cli, app_dir, "--app", "app.py", "--fail-on", "warning")
    assert result.code == 0, result.text  # a full run: old revisions are history, not findings
    (finding,) = [f for c in report["checks"] for f in c["findings"]]
    assert finding["rule_id"] == "CM106" and finding["severity"] == "info"
    assert finding["title"] == "1 revision keeps Flask-Migrate's default message \"empty message\""
    assert "f8a3c1278c97  migrations/versions/f8a3c1278c97_.py  empty message" in finding["message"]
    (app_dir / ".ci-migrate.yml").write_text("app: app.py\nrules:\n  CM106: warning\nfail-on: warning\n")
    result, _ = run_json(cli, app_dir)
    assert result.code == 1
    (app_dir / ".ci-migrate.yml").write_text("app: app.py\nrules:\n  CM106: off\nfail-on: warning\n")
    result, report = run_json(cli, app_dir)
    assert result.code == 0 and not [f for c in report["checks"] for f in c["findings"]]


def test_app_url_naming_a_driver_the_environment_lacks_names_the_package_and_the_driver_it_has(cli, tmp_path):
    # SQLAlchemy 2.1 picks psycopg 3 for a plain postgresql:// URL; an environment with only the other
    # driver fails when the app makes its engine. Here: the URL asks for psycopg2, and the app's
    # environment (the newest stack's venv) has psycopg only.
    import venvs

    python = venvs.venv(venvs.NEWEST)
    (tmp_path / "app.py").write_text(
        "import sqlalchemy as sa\nfrom flask import Flask\nfrom flask_migrate import Migrate\n"
        "from flask_sqlalchemy import SQLAlchemy\n\napp = Flask(__name__)\n"
        "app.config['SQLALCHEMY_DATABASE_URI'] = 'postgresql+psycopg2://postgres@127.0.0.1:5432/postgres'\n"
        "db = SQLAlchemy(app)\nMigrate(app, db)\nengine = sa.create_engine(app.config['SQLALCHEMY_DATABASE_URI'])\n")
    result = cli("check", "--app", "app.py", "--python", str(python), cwd=tmp_path)
    assert result.code == 3, result.text
    assert "failed: ModuleNotFoundError: No module named 'psycopg2'" in result.err
    assert ("`psycopg2` is the database driver the app's URL asks for: install psycopg2-binary in " in result.err
            and "or name the driver it has in the URL: `postgresql+psycopg://…`." in result.err), result.err


@pytest.mark.parametrize("app_dir", ["import_error"], indirect=True)
def test_app_import_error_shows_the_apps_own_frames(cli, app_dir):
    result = cli("check", "--app", "app.py", cwd=app_dir)
    assert result.code == 3
    assert "Importing the Flask app (app.py) failed: AttributeError" in result.err
    assert "models.py:23" in result.err and "db.Strin(500)" in result.err
    assert "site-packages" not in result.err


@pytest.mark.parametrize("app_dir", ["no_migrate"], indirect=True)
def test_app_without_flask_migrate(cli, app_dir):
    result = cli("check", "--app", "app.py", cwd=app_dir)
    assert result.code == 3
    assert "has no Flask-Migrate extension" in result.err
    assert "extensions registered on it: sqlalchemy" in result.err


def test_unknown_import_string(cli, tmp_path):
    app_dir = copy_app("tutorial_drift", tmp_path)
    result = cli("check", "--app", "nosuchmodule:create_app()", cwd=app_dir)
    assert result.code == 3
    assert "Could not load the Flask app" in result.err and "nosuchmodule" in result.err


def test_app_from_flaskenv(cli, tmp_path):
    """No --app: FLASK_APP from .flaskenv, as `flask` itself finds it."""
    app_dir = copy_app("clean", tmp_path)
    result, report = run_json(cli, app_dir)
    assert result.code == 0, result.text
    assert report["app"] == "blogapp:create_app"


def test_app_found_by_flask_discovery(cli, tmp_path):
    app_dir = copy_app("tutorial_drift", tmp_path)
    result, report = run_json(cli, app_dir)
    assert result.code == 1 and report["app"] is None
    assert by_name(report, "drift")["findings"][0]["rule_id"] == "CM301"


def test_config_typo_is_a_usage_error(cli, tmp_path):
    app_dir = copy_app("tutorial_drift", tmp_path)
    (app_dir / ".ci-migrate.yml").write_text("app: app.py\nsandbx: sqlite\n")
    result = cli("check", cwd=app_dir)
    assert result.code == 2
    assert ".ci-migrate.yml:2:1: unknown key 'sandbx' — did you mean 'sandbox'?" in result.err


def test_env_var_overrides_file_and_flag_overrides_env(cli, tmp_path):
    app_dir = copy_app("empty_message", tmp_path)
    # CM106 as a warning even on a full run, where the history's default messages are one info line
    (app_dir / ".ci-migrate.yml").write_text("app: app.py\nfail-on: error\nrules: {CM106: warning}\n")
    assert cli("check", cwd=app_dir).code == 0
    assert cli("check", cwd=app_dir, env={"CI_MIGRATE_FAIL_ON": "warning"}).code == 1
    assert cli("check", "--fail-on", "error", cwd=app_dir, env={"CI_MIGRATE_FAIL_ON": "warning"}).code == 0


def test_output_file_and_only(cli, tmp_path):
    app_dir = copy_app("two_heads", tmp_path)
    result = cli("check", "--app", "app.py", "--only", "graph", "--output", "out/report.json", cwd=app_dir)
    assert result.code == 1
    report = json.loads((app_dir / "out" / "report.json").read_text())
    assert [c["name"] for c in report["checks"]] == ["graph"]
    assert report["schema_version"] == "1" and report["verdict"] == "failed"
    assert cli("check", "--only", "grpah", cwd=app_dir).code == 2


def test_init_writes_a_starter_that_loads(cli, tmp_path):
    app_dir = copy_app("tutorial_drift", tmp_path)
    result = cli("init", cwd=app_dir)
    assert result.code == 0 and (app_dir / ".ci-migrate.yml").exists()
    assert cli("init", cwd=app_dir).code == 2  # refuses to overwrite
    assert cli("check", cwd=app_dir).code == 1  # the starter is valid; drift fails the check


def test_version_is_fast_and_plain(cli, tmp_path):
    from ci_migrate import __version__

    result = cli("--version", cwd=tmp_path)
    assert result.code == 0 and result.out.strip() == f"ci-migrate, version {__version__}"


def test_target_from_config_or_env_and_none_named(cli, tmp_path):
    app_dir = copy_app("tutorial_drift", tmp_path)
    (app_dir / ".ci-migrate.yml").write_text("app: app.py\ntargets:\n  staging:\n    url-env: STAGING_URL\n")
    result = cli("plan", cwd=app_dir)
    assert result.code == 2 and "name a target with --target NAME" in result.err and "staging" in result.err
    result = cli("plan", cwd=app_dir, env={"CI_MIGRATE_TARGET": "staging"})
    assert result.code == 2 and "STAGING_URL" in result.err  # the variable holding the URL is not set
    result = cli("apply", "--target", "stagin", cwd=app_dir)
    assert result.code == 2 and "did you mean 'staging'" in result.err


@pytest.mark.parametrize("app_dir", ["tutorial_drift"], indirect=True)
def test_recursive_version_locations_find_revisions_in_subdirectories(cli, app_dir):
    """alembic.ini's recursive_version_locations: a revision in versions/2024/ is part of the history
    (`flask db heads` shows one head), not a missing down_revision. alembic before 1.10 has no such
    option and, as `flask db heads` there, sees only the two revisions left in versions/."""
    versions = app_dir / "migrations" / "versions"
    (versions / "2024").mkdir()
    head = next(versions.glob("94cb0f560e51_*.py"))
    head.rename(versions / "2024" / head.name)
    ini = app_dir / "migrations" / "alembic.ini"
    ini.write_text(ini.read_text().replace("[alembic]\n", "[alembic]\nrecursive_version_locations = true\n", 1))
    result = cli("check", "--format", "json", cwd=app_dir)
    report = json.loads(result.out)
    graph = next(c for c in report["checks"] if c["name"] == "graph")
    recursive = tuple(int(n) for n in version("alembic").split(".")[:2]) >= (1, 10)
    head, count = ("94cb0f560e51", 3) if recursive else ("586f194eec66", 2)
    assert graph["status"] == "passed" and graph["facts"]["heads"] == [head], graph
    replay = next(c for c in report["checks"] if c["name"] == "replay")
    assert replay["summary"].startswith(f"{count} revisions applied"), replay["summary"]


def test_a_revision_sqlite_cannot_run_outside_batch_mode_points_at_the_production_dialect(cli, tmp_path, pg_server):
    """A unique constraint added with plain op.create_unique_constraint (as on PostgreSQL or MySQL):
    alembic refuses it on SQLite; the finding says why and how to replay on the real dialect."""
    app_dir = copy_app("clean", tmp_path)
    revision = app_dir / "migrations/versions/d6a012b31354_add_unique_constraint_on_user_email.py"
    text = revision.read_text()
    batch = ("    with op.batch_alter_table('user', schema=None) as batch_op:\n"
             "        batch_op.create_unique_constraint(batch_op.f('uq_user_email'), ['email'])\n")
    assert batch in text
    revision.write_text(text.replace(batch, "    op.create_unique_constraint(op.f('uq_user_email'), 'user', ['email'])\n"))
    app = ("--app", "blogapp:create_app('testing')")
    result, report = run_json(cli, app_dir, *app, env={"DATABASE_URL": "sqlite://"})
    assert result.code == 1, result.text
    (finding,) = by_name(report, "replay")["findings"]
    assert (finding["rule_id"], finding["revision"]) == ("CM201", "d6a012b31354")
    assert finding["message"].endswith("alembic cannot run this operation on SQLite outside batch mode: the revision "
                                       "was written for another database.")
    assert "`sandbox: postgresql://user@host/`" in finding["fix"] and "op.batch_alter_table" in finding["fix"]
    result, report = run_json(cli, app_dir, *app, "--sandbox", pg_server, env={"DATABASE_URL": "sqlite://"})
    assert result.code == 0, result.text


@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
def test_env_py_failing_on_a_sandbox_of_another_dialect_than_the_app_names_both(cli, tmp_path, server):
    """An app that sets its SQLite connections up in an engine ``connect`` listener (PRAGMA
    foreign_keys) when it is created with a SQLite URL: on a PostgreSQL sandbox env.py's connection
    fails, and the finding says the app was made for SQLite; given a PostgreSQL URL, it passes."""
    app_dir = copy_app("clean", tmp_path)
    init = app_dir / "blogapp" / "__init__.py"
    text = init.read_text()
    assert "    db.init_app(app)\n" in text
    init.write_text(text.replace("    db.init_app(app)\n", (
        "    db.init_app(app)\n"
        "    if app.config['SQLALCHEMY_DATABASE_URI'].startswith('sqlite'):\n"
        "        from sqlalchemy import event\n"
        "        from sqlalchemy.engine import Engine\n\n"
        "        @event.listens_for(Engine, 'connect')\n"
        "        def foreign_keys_on(dbapi_connection, _record):\n"
        "            cursor = dbapi_connection.cursor()\n"
        "            cursor.execute('PRAGMA foreign_keys=ON')\n"
        "            cursor.close()\n"), 1))
    app = ("--app", "blogapp:create_app('testing')", "--sandbox", server)
    result, report = run_json(cli, app_dir, *app, env={"DATABASE_URL": "sqlite://"})
    assert result.code == 1, result.text
    (finding,) = by_name(report, "replay")["findings"]
    assert finding["rule_id"] == "CM201" and finding["file"] == "migrations/env.py", finding
    assert 'syntax error at or near "PRAGMA"' in finding["message"]
    assert ("The app was created with a sqlite database URL and the sandbox is postgresql: what the app set up for "
            "its own database when it was created") in finding["message"]
    assert finding["fix"] == ("Give the app a postgresql URL when ci-migrate runs it (the variable its config reads, "
                              "e.g. DATABASE_URL), or replay on a sqlite sandbox.")
    result, report = run_json(cli, app_dir, *app, env={"DATABASE_URL": server + "never_connected"})
    assert result.code == 0, result.text
