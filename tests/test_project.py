"""The probe's library floors and the dialect-mismatch notice."""

from __future__ import annotations

import json
from importlib import metadata

import pytest

from ci_migrate.probe.errors import ProbeError
from ci_migrate.probe.project import FLOORS, REQUIRED, check_stack, stack
from support import by_name, copy_app


def test_the_installed_stack_is_supported():
    packages = stack()["packages"]
    check_stack(packages)
    assert set(REQUIRED) <= set(packages)
    assert packages == {dist: metadata.version(dist) for dist in packages}


@pytest.mark.parametrize("dist, old", [("SQLAlchemy", "1.3.24"), ("Flask-SQLAlchemy", "2.4.4"),
                                       ("Flask-Migrate", "1.8.1"), ("Flask", "1.1.4")])
def test_below_the_floor_names_found_and_minimum(dist, old):
    packages = dict(stack()["packages"], **{dist: old})
    with pytest.raises(ProbeError) as err:
        check_stack(packages)
    assert err.value.kind == "unsupported"
    assert f"{dist} {old} is installed in " in err.value.message
    assert err.value.message.endswith(f"but ci-migrate supports {dist} >= {FLOORS[dist]}. Upgrade it in the app's "
                                      "environment.")


def test_missing_library_names_the_interpreter():
    packages = {k: v for k, v in stack()["packages"].items() if k != "Flask-Migrate"}
    with pytest.raises(ProbeError, match="Flask-Migrate is not installed in ") as err:
        check_stack(packages)
    assert "--python" in err.value.message


def test_sqlite_sandbox_for_a_postgresql_target_is_a_warning(cli, tmp_path, pg_server):
    app_dir = copy_app("tutorial_drift", tmp_path)
    (app_dir / ".ci-migrate.yml").write_text("app: app.py\ntargets:\n  production:\n    url-env: PROD_URL\n")
    result = cli("check", "--format", "json", cwd=app_dir, env={"PROD_URL": pg_server + "prod"})
    report = json.loads(result.out)
    mismatch = [f for f in by_name(report, "replay")["findings"] if f["rule_id"] == "CM204"]
    assert mismatch and mismatch[0]["severity"] == "warning"
    assert "the sandbox is sqlite but production is postgresql (target 'production')" == mismatch[0]["title"]
    assert "sandbox: postgresql://postgres@localhost/" in mismatch[0]["fix"]
    assert by_name(report, "drift")["facts"]["approximate"] is True


def test_unknown_production_dialect_gives_no_advice(cli, tmp_path, pg_server):
    """The target's URL variable is simply unset in CI: production's dialect is unknown, so no CM204 and
    no suggested value (the app's own URL is a local SQLite default)."""
    app_dir = copy_app("tutorial_drift", tmp_path)
    (app_dir / ".ci-migrate.yml").write_text("app: app.py\ntargets:\n  production:\n    url-env: PROD_URL\n")
    result = cli("check", "--format", "json", "--sandbox", pg_server, cwd=app_dir)
    report = json.loads(result.out)
    assert not [f for f in by_name(report, "replay")["findings"] if f["rule_id"] == "CM204"]
    assert "sqlite://root@localhost/" not in result.text


def test_the_app_is_loaded_as_under_the_flask_command(cli, tmp_path):
    """``flask`` sets FLASK_RUN_FROM_CLI=true before it imports the app: an unguarded ``app.run()`` at the end
    of the module is then ignored, and a wsgi.py that monkey-patches only outside ``flask`` commands
    skips it (as under `flask db`). Without it the probe would start a server at import and block until the timeout."""
    app_dir = copy_app("tutorial_drift", tmp_path)
    with (app_dir / "app.py").open("a") as app:
        app.write("\napp.run(port=0)\n")
    result = cli("check", "--format", "json", cwd=app_dir, env={"DATABASE_URL": "sqlite://",
                                                               "CI_MIGRATE_TIMEOUT": "30"}, timeout=120)
    report = json.loads(result.out)
    assert result.code == 1, result.text
    assert by_name(report, "replay")["status"] == "passed"
    assert [f["rule_id"] for f in by_name(report, "drift")["findings"]] == ["CM301"]


def test_a_connection_the_app_opens_while_it_is_imported_is_noted(cli, tmp_path):
    """`db.create_all()` in the app module runs when the app is imported, before ci-migrate can point it at the
    sandbox (as under `flask db`): the run says which database it touched and where, instead of staying silent."""
    app_dir = copy_app("tutorial_drift", tmp_path)
    production = tmp_path / "production.db"
    with (app_dir / "app.py").open("a") as app:
        app.write("\n\nwith app.app_context():\n    db.create_all()\n")
    line = len((app_dir / "app.py").read_text().splitlines())
    result = cli("check", "--format", "json", cwd=app_dir, env={"DATABASE_URL": f"sqlite:///{production}"})
    report = json.loads(result.out)
    assert report["notes"] == [
        f"Importing the app connected to sqlite:///{production} at app.py:{line} (db.create_all()), before "
        "ci-migrate could point it at the sandbox: what the app runs when it is created (create_all(), upgrade(), "
        "seed data) ran there, as it would under `flask db`."]
    assert "note: Importing the app connected to sqlite:///" in cli("check", cwd=app_dir, env={
        "DATABASE_URL": f"sqlite:///{production}"}).out
    untouched = cli("check", "--format", "json", cwd=copy_app("tutorial_drift", tmp_path / "plain"),
                    env={"DATABASE_URL": f"sqlite:///{tmp_path / 'other.db'}"})
    assert json.loads(untouched.out)["notes"] == [] and not (tmp_path / "other.db").exists()


def test_an_app_that_exits_while_it_is_imported_shows_what_it_printed(cli, tmp_path):
    """An app whose import ends in sys.exit(1) (an upgrade() at import that fails prints its reason, then exits):
    the error shows the app's last lines, where the reason is."""
    app_dir = copy_app("tutorial_drift", tmp_path)
    with (app_dir / "app.py").open("a") as app:
        app.write("\n\nimport sys\nprint(\"ERROR [root] Error: Can't locate revision identified by 'f00'\", "
                  "file=sys.stderr)\nsys.exit(1)\n")
    result = cli("check", cwd=app_dir, env={"DATABASE_URL": "sqlite://"})
    assert result.code == 3, result.text
    assert "Importing the Flask app (flask discovery) failed: called sys.exit(1)" in result.err
    assert result.err.rstrip().endswith(
        "Last lines the app printed:\n    ERROR [root] Error: Can't locate revision identified by 'f00'"), result.err


def test_an_app_whose_import_never_ends_times_out_with_a_hint(cli, tmp_path):
    """The import blocks (a wait for a service that never answers): the run stops at its timeout and says it
    was importing the app, in words, with what to look for."""
    app_dir = copy_app("tutorial_drift", tmp_path)
    with (app_dir / "app.py").open("a") as app:
        app.write("\n\nimport time\nprint('waiting for the cache server')\ntime.sleep(600)\n")
    result = cli("check", cwd=app_dir, env={"DATABASE_URL": "sqlite://", "CI_MIGRATE_TIMEOUT": "3"}, timeout=60)
    assert result.code == 3, result.text
    assert result.err.startswith("error: The run took longer than its timeout and was stopped while running the "
                                 "import of the app.\n  Importing the app must not start a server"), result.err


def test_an_app_that_asks_for_input_while_it_is_imported_gets_end_of_file(cli, tmp_path):
    """The app's stdin is empty, as in CI: an input() at import fails at once, with its line, instead of waiting
    (and reading the host's requests) until the timeout."""
    app_dir = copy_app("tutorial_drift", tmp_path)
    with (app_dir / "app.py").open("a") as app:
        app.write("\nanswer = input('Run database migrations (Y/N)')\n")
    line = len((app_dir / "app.py").read_text().splitlines())
    result = cli("check", cwd=app_dir, env={"DATABASE_URL": "sqlite://", "CI_MIGRATE_TIMEOUT": "30"}, timeout=60)
    assert result.code == 3, result.text
    assert result.err.startswith("error: Importing the Flask app (flask discovery) failed: EOFError: EOF when reading "
                                 f"a line\n  in your code (most recent call last):\n    app.py:{line} in <module>\n"), \
        result.err


def test_a_migrations_directory_elsewhere_in_the_project_is_named_not_flask_db_init(cli, tmp_path):
    # Migrate(app, db) with the default directory, the history kept inside the package and used with
    # `flask db upgrade -d blogapp/migrations`: `flask db init` would start a second, empty history.
    app_dir = copy_app("clean", tmp_path)
    (app_dir / "migrations").rename(app_dir / "blogapp" / "migrations")
    result = cli("check", "--app", "blogapp:create_app('testing')", cwd=app_dir)
    assert result.code == 3, result.text
    assert f"The migrations directory {app_dir / 'migrations'} does not exist." in result.err
    assert ("The project has one at blogapp/migrations: set `migrations: blogapp/migrations` in .ci-migrate.yml "
            "(or --migrations blogapp/migrations); `flask db` finds it with `-d blogapp/migrations`.") in result.err
    assert "flask db init" not in result.err
    result = cli("check", "--app", "blogapp:create_app('testing')", "--migrations", "blogapp/migrations", cwd=app_dir)
    assert result.code == 0, result.text
