"""Every env.py shape of real Flask-Migrate apps runs on the sandbox, and only there.

tests/apps/envpy_shapes/env_shapes/ holds Flask-Migrate's env.py as `flask db init` writes it in
versions 2.0, 2.5, 3.1 and 4.1, and custom shapes seen in public apps (an engine from the config URL,
from ``db.engine.url``, from the app's settings; env.py's own ``include_object``; options given
explicitly without Flask-Migrate's ``configure_args``; an engine from an environment variable of its
own). Each test points the app's own database variable at a "production" PostgreSQL database that
must have no table afterwards, and compares the findings with what the real ``flask db upgrade`` +
``flask db check`` say on a fresh database.
"""

from __future__ import annotations

import contextlib
import json
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from support import APPS, clean_env, copy_app

SHAPES = ["flask_migrate_2_0", "flask_migrate_2_5", "flask_migrate_3_1", "flask_migrate_4_1",
          "engine_from_config_url", "db_engine_url", "app_settings", "own_include_object", "explicit_options"]
FLASK = str(Path(sys.executable).parent / "flask")


@contextlib.contextmanager
def scratch_database(server: str):
    """A PostgreSQL database of the test's own (not a sandbox name), dropped afterwards."""
    import sqlalchemy as sa

    from ci_migrate.sandbox import normalize_url

    name = f"ci_shapes_{secrets.token_hex(4)}"
    admin = sa.create_engine(normalize_url(server + "postgres"), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    try:
        yield server + name
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        admin.dispose()


def tables(url: str) -> list[str]:
    import sqlalchemy as sa

    from ci_migrate.sandbox import normalize_url

    engine = sa.create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            return sorted(sa.inspect(conn).get_table_names())
    finally:
        engine.dispose()


def shape_app(tmp_path: Path, shape: str, app: str = "envpy_shapes") -> Path:
    target = copy_app(app, tmp_path)
    shutil.copy(APPS / app / "env_shapes" / f"{shape}.py", target / "migrations" / "env.py")
    return target


def flask_db(app: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([FLASK, "db", *args], cwd=app, env=clean_env({"FLASK_APP": "app.py", **env}),
                          capture_output=True, text=True, timeout=120)


def flask_db_check(app: Path, env: dict[str, str]) -> tuple[bool, str]:
    """What Flask-Migrate says about models vs. the database ``env`` names: (changes found, its text).

    ``flask db check`` (Flask-Migrate 4.0+) where the venv has it; on older Flask-Migrate, the same
    autogenerate through ``flask db migrate``, whose written revision file holds the changes."""
    checked = flask_db(app, env, "check")
    if "No such command 'check'" not in checked.stderr:
        assert checked.returncode in (0, 1), checked.stderr
        return checked.returncode == 1, checked.stdout + checked.stderr
    versions = app / "migrations" / "versions"
    before = set(versions.glob("*.py"))
    migrated = flask_db(app, env, "migrate", "-m", "flask db check")
    assert migrated.returncode == 0, migrated.stderr
    written = set(versions.glob("*.py")) - before
    assert len(written) == 1, migrated.stdout + migrated.stderr
    text = written.pop().read_text()
    return "op.add_column" in text or "op.create_table" in text or "op.drop_" in text, text


def check(cli, app: Path, server: str, env: dict[str, str], *args: str) -> tuple[object, dict]:
    result = cli("check", "--sandbox", server, "--format", "json", *args, cwd=app, env=env)
    assert result.out.strip().startswith("{"), result.text
    return result, json.loads(result.out)


def rule_ids(report: dict) -> list[str]:
    return sorted(f["rule_id"] for c in report["checks"] for f in c["findings"])


@pytest.mark.parametrize("shape", SHAPES)
def test_every_shape_migrates_the_sandbox_only_and_agrees_with_flask_db_check(cli, tmp_path, pg_server, shape):
    app = shape_app(tmp_path, shape)
    toggles = {"SHAPES_DRIFT": "1", **({"SHAPES_LEGACY": "1"} if shape == "own_include_object" else {})}
    with scratch_database(pg_server) as production, scratch_database(pg_server) as fresh:
        result, report = check(cli, app, pg_server, {"DATABASE_URL": production, **toggles})
        assert tables(production) == [], "the app's own database was written to"
        assert result.code == 1 and rule_ids(report) == ["CM301"], result.text
        replay = next(c for c in report["checks"] if c["name"] == "replay")
        assert replay["summary"].startswith("2 revisions applied on postgresql"), replay["summary"]
        drift = next(c for c in report["checks"] if c["name"] == "drift")
        assert [i["text"] for t in drift["facts"]["binds"][0]["tables"] for i in t["items"]] == [
            "adds column `user.bio` VARCHAR(250), nullable"]
        upgraded = flask_db(app, {"DATABASE_URL": fresh, **toggles}, "upgrade")
        assert upgraded.returncode == 0, upgraded.stderr
        changed, said = flask_db_check(app, {"DATABASE_URL": fresh, **toggles})
        assert changed and "'bio'" in said, said
        assert "legacy_audit" not in said


def test_env_py_include_object_and_the_config_ignore_list_both_apply(cli, tmp_path, pg_server):
    """env.py passes its own include_object next to **configure_args; ci-migrate's ignore list wraps
    it (no "multiple values for keyword argument 'include_object'")."""
    app = shape_app(tmp_path, "own_include_object")
    (app / ".ci-migrate.yml").write_text("app: app.py\nignore:\n  tables: [user]\n")
    result, report = check(cli, app, pg_server, {"SHAPES_DRIFT": "1", "SHAPES_LEGACY": "1"})
    assert result.code == 0, result.text  # bio (in `user`, ignored here) and legacy_audit (env.py's) both left out
    drift = next(c for c in report["checks"] if c["name"] == "drift")
    assert drift["status"] == "passed" and drift["facts"]["binds"][0]["ignored"] >= 1


def test_an_env_py_that_connects_elsewhere_is_stopped_before_it_connects(cli, tmp_path, pg_server):
    """env.py takes its engine from a variable of its own that names another database than the app's:
    `flask db upgrade` would migrate that one; the guard stops the connection before it is opened."""
    app = shape_app(tmp_path, "environment_url")
    with scratch_database(pg_server) as production, scratch_database(pg_server) as elsewhere:
        result, report = check(cli, app, pg_server, {"DATABASE_URL": production,
                                                     "MIGRATIONS_DATABASE_URL": elsewhere})
        assert tables(production) == [] and tables(elsewhere) == []
    assert result.code == 1, result.text
    (finding,) = [f for c in report["checks"] for f in c["findings"]]
    assert finding["rule_id"] == "CM205" and finding["file"] == "migrations/env.py"
    assert elsewhere.rsplit("/", 1)[1] in finding["title"] and finding["title"].endswith("which is not the sandbox")
    assert "with connectable.connect() as connection:" in finding["message"]
    assert [c["status"] for c in report["checks"] if c["name"] == "drift"] == ["skipped"]


def test_an_env_py_engine_of_its_own_on_the_apps_database_runs_on_the_sandbox(cli, tmp_path, pg_server):
    """env.py takes its engine from a variable of its own that names the app's own database: that is
    the database `flask db upgrade` migrates, so its connections are opened on the sandbox (a note says
    where) and the check runs as for Flask-Migrate's env.py."""
    app = shape_app(tmp_path, "environment_url")
    with scratch_database(pg_server) as production:
        result, report = check(cli, app, pg_server, {"DATABASE_URL": production, "MIGRATIONS_DATABASE_URL": production,
                                                     "SHAPES_DRIFT": "1"})
        assert tables(production) == []
    assert result.code == 1 and rule_ids(report) == ["CM301"], result.text
    assert next(c for c in report["checks"] if c["name"] == "replay")["status"] == "passed"
    (note,) = [n for n in report["notes"] if "the app's own database" in n]
    assert note.startswith("migrations/env.py:") and production.rsplit("/", 1)[1] in note


def test_the_apps_own_database_on_a_sandbox_of_another_dialect_is_stopped_and_says_which_sandbox(cli, tmp_path,
                                                                                                 pg_server):
    """The same env.py, with the default SQLite sandbox: the app's PostgreSQL database cannot be opened on
    it, so the connection is stopped (CM205) and the fix names a PostgreSQL sandbox."""
    app = shape_app(tmp_path, "environment_url")
    with scratch_database(pg_server) as production:
        result, report = check(cli, app, "sqlite", {"DATABASE_URL": production, "MIGRATIONS_DATABASE_URL": production})
        assert tables(production) == []
    assert result.code == 1, result.text
    (finding,) = [f for c in report["checks"] for f in c["findings"]]
    assert finding["rule_id"] == "CM205" and finding["file"] == "migrations/env.py"
    assert finding["title"].startswith("migrations/env.py:") and "the app's own database" in finding["title"]
    assert "this sandbox is not postgresql" in finding["message"]
    assert finding["fix"].startswith("Use a postgresql sandbox: `sandbox: postgresql://")


OWN_APP_ENV_PY = """\
# env.py that makes the app again from its factory, as some apps do, and migrates that app's database
from logging.config import fileConfig

from alembic import context
from flask import current_app
from sqlalchemy import engine_from_config, pool, text

from blogapp import create_app

app = create_app('testing')
config = context.config
fileConfig(config.config_file_name)


def run_migrations_online():
    engine = engine_from_config(config.get_section(config.config_ini_section), prefix='sqlalchemy.',
                                poolclass=pool.NullPool)
    with engine.connect() as connection:
        context.configure(connection=connection, target_metadata=target_metadata,
                          **current_app.extensions['migrate'].configure_args)
        with context.begin_transaction():
            context.run_migrations()


with app.app_context():
    config.set_main_option('sqlalchemy.url', current_app.config['SQLALCHEMY_DATABASE_URI'])
    target_metadata = current_app.extensions['migrate'].db.metadata
    db = current_app.extensions['migrate'].db
    db.session.execute(text('SELECT 1'))  # its own pooled engine, on the app's database: left connected
    db.session.remove()
    run_migrations_online()
"""


def test_an_env_py_that_makes_the_app_again_runs_every_check_on_the_sandboxes(cli, tmp_path, pg_server):
    """env.py calls the app factory itself (a second app, with its own engines, configured from the
    environment like the first): on a pull request the replay, the base snapshot, the lock trace and
    the round trip — each on a database of its own — all run on sandboxes, never on the app's database."""
    from test_plan import pr_repo

    repo = pr_repo(tmp_path, "clean", ["2a5ab8d32f0e", "647cefc691b5", "bd1b00e93290", "d6a012b31354",
                                       "77e171e7ca87", "632a428d5a9a", "39b9f101090f", "b00feacf1d63",
                                       "1217fcb42dcc", "e655c2b3178d"])
    (repo / "migrations" / "env.py").write_text(OWN_APP_ENV_PY)
    with scratch_database(pg_server) as production:
        env = {"DATABASE_URL": production, "CI_MIGRATE_CACHE_DIR": str(tmp_path / "cache")}
        args = ("--app", "blogapp:create_app('testing')", "--base", "main")
        result, report = check(cli, repo, pg_server, env, *args)
        again, warm = check(cli, repo, pg_server, env, *args)
        assert tables(production) == []
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses["replay"] == statuses["drift"] == statuses["roundtrip"] == "passed", (statuses, result.text)
    locks = next(c for c in report["checks"] if c["name"] == "locks")["facts"]["revisions"]
    assert [r["revision"] for r in locks] == ["e6125838f08e", "9458ded74214"] and locks[1]["locks"], locks
    assert any("the app's own database" in n for n in report["notes"])
    replay = next(c for c in warm["checks"] if c["name"] == "replay")
    assert replay["facts"]["cache"]["state"] == "restored", warm["notes"]
    assert sorted(f["rule_id"] for c in warm["checks"] for f in c["findings"]) == \
        sorted(f["rule_id"] for c in report["checks"] for f in c["findings"])


def test_app_logging_that_silences_alembic_still_names_the_failing_revision(cli, tmp_path, pg_server):
    app = shape_app(tmp_path, "flask_migrate_4_1")
    post = app / "migrations" / "versions" / "9aa8e86e022c_create_post_table.py"
    text = post.read_text()
    post.write_text(text.replace("    # ### end Alembic commands ###\n",
                                 "    op.execute('SELECT no_such_column FROM post')\n    # ### end Alembic commands ###\n", 1))
    line = post.read_text().splitlines().index("    op.execute('SELECT no_such_column FROM post')") + 1
    result, report = check(cli, app, pg_server, {"SHAPES_LOGGING": "1"})
    assert result.code == 1, result.text
    (finding,) = [f for c in report["checks"] for f in c["findings"]]
    assert (finding["rule_id"], finding["revision"], finding["line"]) == ("CM201", "9aa8e86e022c", line)
    assert finding["file"] == "migrations/versions/9aa8e86e022c_create_post_table.py"
    assert finding["details"]["statement"] == "SELECT no_such_column FROM post"
    assert "no_such_column" in finding["title"]


def test_env_py_that_does_not_forward_configure_args_still_counts_its_revisions(cli, tmp_path, pg_server):
    app = shape_app(tmp_path, "explicit_options")
    result, report = check(cli, app, pg_server, {})
    assert result.code == 0, result.text
    replay = next(c for c in report["checks"] if c["name"] == "replay")
    assert [r["revision"] for r in replay["facts"]["revisions"]] == ["17fca93b7a1e", "9aa8e86e022c"]


@pytest.mark.parametrize("shape", ["flask_migrate_2_0", "app_settings"])
def test_with_the_sqlite_default_no_file_appears_in_the_project(cli, tmp_path, shape):
    app = shape_app(tmp_path, shape)
    before = sorted(p.relative_to(app).as_posix() for p in app.rglob("*") if "__pycache__" not in p.parts)
    result = cli("check", "--format", "json", cwd=app, env={"SHAPES_DRIFT": "1"})
    assert result.code == 1, result.text  # the drift is found on the sandbox...
    after = sorted(p.relative_to(app).as_posix() for p in app.rglob("*") if "__pycache__" not in p.parts)
    assert after == before  # ...and no shapes.db (or instance/) appeared next to the app


def test_a_plain_declarative_base_without_flask_sqlalchemy(cli, tmp_path, pg_server):
    """Migrate(app, Base): the app's own engine and session, Flask-Migrate 2.0's env.py."""
    app = copy_app("plain_base", tmp_path)
    with scratch_database(pg_server) as production, scratch_database(pg_server) as fresh:
        result, report = check(cli, app, pg_server, {"DATABASE_URL": production})
        assert result.code == 0, result.text
        result, report = check(cli, app, pg_server, {"DATABASE_URL": production, "PLAIN_DRIFT": "1"})
        assert result.code == 1 and rule_ids(report) == ["CM301"], result.text
        assert "note.pinned" in report["checks"][-1]["findings"][0]["title"]
        assert tables(production) == []
        assert flask_db(app, {"DATABASE_URL": fresh, "PLAIN_DRIFT": "1"}, "upgrade").returncode == 0
        changed, said = flask_db_check(app, {"DATABASE_URL": fresh, "PLAIN_DRIFT": "1"})
        assert changed and "'pinned'" in said, said


def test_flask_migrate_2_5_multidb_template_migrates_every_bind_on_the_sandbox(cli, tmp_path, pg_server):
    """The 2.5 multidb template calls ``db.get_engine(app, bind)``, which Flask-SQLAlchemy 3 refuses (as
    `flask db upgrade` would): it runs in the app's own oldest stack (Flask-SQLAlchemy 2.5.1)."""
    import venvs

    python = venvs.venv(venvs.OLDEST)
    app = shape_app(tmp_path, "flask_migrate_2_5_multidb", app="multidb")
    with scratch_database(pg_server) as production, scratch_database(pg_server) as audit:
        result, report = check(cli, app, pg_server, {"DATABASE_URL": production, "AUDIT_DATABASE_URL": audit},
                               "--python", str(python))
        assert tables(production) == [] and tables(audit) == []
    assert result.code == 0, result.text
    replay = next(c for c in report["checks"] if c["name"] == "replay")
    assert replay["facts"]["heads_after"] == {"": ["c8bfe16d6ca7"], "audit": ["c8bfe16d6ca7"]}
