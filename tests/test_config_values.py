"""Setting values checked at load, located at file:line:column: rule ids, the app import string
(as `flask --app` reads it) and the migrations directory."""

from __future__ import annotations

import pytest

from ci_migrate.config import CONFIG_FILENAME, ConfigError, MigrationsDir, load
from ci_migrate.config_checks import app_problem

FORMS = "write module, module:name or module:factory(literal arguments), e.g. \"blogapp:create_app('ci')\""
KNOWN = ("    known rules: CM101-CM107, CM201-CM207, CM301-CM303, CM401-CM406, CM501-CM516, CM520, CM601-CM603, "
         "CM701-CM703, CM801-CM810, CM900 (docs/rules/)")


def load_error(tmp_path, text: str, env: dict[str, str] | None = None) -> str:
    (tmp_path / CONFIG_FILENAME).write_text(text, encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        load(env=env or {}, cwd=tmp_path)
    return str(err.value)


def test_unknown_rule_id_with_did_you_mean(tmp_path, cli):
    message = load_error(tmp_path, "rules:\n  CM999: off\n  CM10l: off\n  CM106: off\n")
    assert message.splitlines() == [
        ".ci-migrate.yml:2:3: rules: unknown rule 'CM999' — did you mean 'CM900'?", KNOWN,
        ".ci-migrate.yml:3:3: rules: rule ids look like CM101 (got 'CM10l')",
    ]
    assert load_error(tmp_path, "rules:\n  CM1O6: warning\n").startswith(
        ".ci-migrate.yml:2:3: rules: rule ids look like CM101 (got 'CM1O6')")
    assert load_error(tmp_path, "rules: {CM506: off}\n", env={"CI_MIGRATE_RULES": "{CM605: warning}"}) == (
        f"CI_MIGRATE_RULES: unknown rule 'CM605' — did you mean 'CM805'?\n{KNOWN}")
    (tmp_path / CONFIG_FILENAME).write_text("rules:\n  CM999: off\n")
    result = cli("check", cwd=tmp_path)
    assert (result.code, result.err) == (2, f"error: .ci-migrate.yml:2:3: rules: unknown rule 'CM999' — did you "
                                            f"mean 'CM900'?\n{KNOWN}\n")


@pytest.mark.parametrize("value, problem", [
    ("app:create_app(", f"cannot read 'create_app(' after the ':' ('(' was never closed) — {FORMS}"),
    ("app:create_app(os.environ)", f"the arguments in 'create_app(os.environ)' must be literal values such as "
                                   f"'ci', 1 or True — {FORMS}"),
    ("app:factories.make()", f"the function in 'factories.make()' must be a simple name (flask calls it from the "
                             f"module) — {FORMS}"),
    ("app:app[0]", f"'app[0]' after the ':' is not a name or a function call — {FORMS}"),
    ("create_app(", f"'create_app(' is not a module name or a .py file — {FORMS}"),
    ("my-app:app", f"'my-app' is not a module name or a .py file — {FORMS}"),
    ("", f"must not be empty — {FORMS}"),
])
def test_bad_app_import_strings(value, problem):
    assert app_problem(value) == problem


@pytest.mark.parametrize("value", [
    "app", "app.py", "blogapp:create_app", "blogapp:create_app()", "blogapp:create_app('ci', debug=True)",
    "src/blog/app.py:create_app('x')", "pkg.wsgi:application", "blogapp:create_app(config={'a': [1, 2]})",
    "app: create_app ",
])
def test_good_app_import_strings(value):
    assert app_problem(value) is None


def test_app_syntax_error_is_a_config_error_not_an_app_error(tmp_path, cli):
    (tmp_path / CONFIG_FILENAME).write_text("fail-on: warning\napp: app:create_app(\n")
    result = cli("check", cwd=tmp_path)
    assert (result.code, result.out) == (2, "")
    assert result.err == f"error: .ci-migrate.yml:2:6: app: cannot read 'create_app(' after the ':' ('(' was never " \
                         f"closed) — {FORMS}\n"
    result = cli("check", "--app", "app:create_app(", cwd=tmp_path)
    assert result.code == 2 and result.err.startswith("error: --app: cannot read 'create_app(' after the ':'")


def test_migrations_directory_must_exist(tmp_path, cli):
    (tmp_path / "db" / "migrations").mkdir(parents=True)
    (tmp_path / "db" / "schema.sql").write_text("")
    assert load_error(tmp_path, "app: app.py\nmigrations: db/migration\n") == (
        f".ci-migrate.yml:2:13: migrations: directory not found: 'db/migration' (paths are relative to "
        f"{tmp_path.resolve()}) — did you mean 'migrations'?")
    assert load_error(tmp_path, "migrations: db/schema.sql\n") == (
        ".ci-migrate.yml:1:13: migrations: 'db/schema.sql' is a file, not a directory — name the directory that holds "
        "env.py and versions/")
    assert load(env={"CI_MIGRATE_MIGRATIONS": "db/migrations"}, cwd=tmp_path).app_migrations == "db/migrations"
    (tmp_path / CONFIG_FILENAME).write_text("migrations: nowhere\n")
    result = cli("check", cwd=tmp_path)
    assert (result.code, result.err) == (2, f"error: .ci-migrate.yml:1:13: migrations: directory not found: 'nowhere' "
                                            f"(paths are relative to {tmp_path.resolve()})\n")


def plugin_dirs(tmp_path):
    for name in ("migrations", "plugins/audit/migrations", "plugins/tags/versions"):
        (tmp_path / name).mkdir(parents=True)


def test_extra_script_directories_with_their_version_tables(tmp_path):
    plugin_dirs(tmp_path)
    (tmp_path / CONFIG_FILENAME).write_text(
        "migrations:\n  - migrations\n  - path: plugins/audit/migrations\n    version-table: alembic_version_audit\n"
        "  - {path: plugins/tags/versions, version-table: alembic_version_tags}\n")
    settings = load(env={}, cwd=tmp_path)
    assert settings.app_migrations == "migrations"
    assert settings.extra_migrations == [
        MigrationsDir(path="plugins/audit/migrations", version_table="alembic_version_audit"),
        MigrationsDir(path="plugins/tags/versions", version_table="alembic_version_tags")]
    # plugins only: the app's own directory is the one its Migrate extension has
    settings = load(env={"CI_MIGRATE_MIGRATIONS": "[{path: plugins/tags/versions, version-table: v_tags}]"},
                    cwd=tmp_path)
    assert (settings.app_migrations, settings.extra_migrations) == (
        None, [MigrationsDir(path="plugins/tags/versions", version_table="v_tags")])


def test_extra_script_directory_problems_are_located_at_their_entry(tmp_path, cli):
    plugin_dirs(tmp_path)
    text = ("app: app.py\n"
            "migrations:\n"
            "  - migrations\n"
            "  - path: plugins/audit/migration\n"
            "    version-table: alembic_version_audit\n"
            "  - {path: plugins/tags/versions, version-table: alembic_version}\n"
            "  - plugins/tags/versions\n"
            "  - {path: plugins/audit/migrations, version-table: 9_audit, table: x}\n"
            "  - {path: plugins/tags/versions, version-table: alembic_version_tags}\n"
            "  - {path: plugins/tags/../tags/versions/, version-table: alembic_version_TAGS2}\n"
            "  - {path: plugins/audit/migrations, version-table: Alembic_Version_Tags}\n")
    expected = [
        f".ci-migrate.yml:4:11: migrations[1].path: directory not found: 'plugins/audit/migration' (paths are "
        f"relative to {tmp_path.resolve()}) — did you mean 'migrations'?",
        ".ci-migrate.yml:6:50: migrations[2].version-table: 'alembic_version' is the version table of the app's own "
        "history (alembic's default); give this directory a table of its own, e.g. alembic_version_audit",
        ".ci-migrate.yml:7:5: migrations[3]: 'plugins/tags/versions' has no version-table, and neither has "
        "'migrations' (migrations[0]): only the app's own migrations directory goes without one — give each other "
        "directory the version table its history is kept in, e.g. {path: plugins/audit/migrations, "
        "version-table: alembic_version_audit}",
        ".ci-migrate.yml:8:53: migrations[4].version-table: must be a table name: letters, digits and _, not "
        "starting with a digit, at most 63 characters, e.g. alembic_version_audit (got '9_audit')",
        ".ci-migrate.yml:8:62: migrations[4]: unknown key 'table'",
        "    allowed keys: path, version-table",
        ".ci-migrate.yml:10:5: migrations[6]: 'plugins/tags/../tags/versions/' is listed twice (also migrations[5])",
        ".ci-migrate.yml:11:5: migrations[7]: version table 'Alembic_Version_Tags' is also the one of "
        "'plugins/tags/versions' (migrations[5]); each directory keeps its history in a table of its own",
    ]
    assert load_error(tmp_path, text).splitlines() == expected
    result = cli("check", cwd=tmp_path)
    assert (result.code, result.err.splitlines()) == (2, ["error: " + expected[0], *expected[1:]])
    assert load_error(tmp_path, "migrations: 12\n") == (
        ".ci-migrate.yml:1:13: migrations: must be a directory (migrations: db/migrations) or a list of directories, "
        "e.g. [migrations, {path: plugins/audit/migrations, version-table: alembic_version_audit}] (got 12)")
    assert load_error(tmp_path, "", env={"CI_MIGRATE_MIGRATIONS": "[{path: plugins/tags/versions}, migrations]"}) == (
        "CI_MIGRATE_MIGRATIONS: migrations[1]: 'migrations' has no version-table, and neither has "
        "'plugins/tags/versions' (migrations[0]): only the app's own migrations directory goes without one — give "
        "each other directory the version table its history is kept in, e.g. {path: plugins/audit/migrations, "
        "version-table: alembic_version_audit}")
