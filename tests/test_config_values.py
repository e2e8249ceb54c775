"""Setting values checked at load, located at file:line:column: rule ids, the app import string
(as `flask --app` reads it) and the migrations directory."""

from __future__ import annotations

import pytest

from ci_migrate.config import CONFIG_FILENAME, ConfigError, load
from ci_migrate.config_checks import app_problem

FORMS = "write module, module:name or module:factory(literal arguments), e.g. \"blogapp:create_app('ci')\""
KNOWN = ("    known rules: CM101-CM107, CM201-CM207, CM301-CM302, CM401-CM406, CM501-CM515, CM520, CM601-CM603, "
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
    assert load(env={"CI_MIGRATE_MIGRATIONS": "db/migrations"}, cwd=tmp_path).migrations == "db/migrations"
    (tmp_path / CONFIG_FILENAME).write_text("migrations: nowhere\n")
    result = cli("check", cwd=tmp_path)
    assert (result.code, result.err) == (2, f"error: .ci-migrate.yml:1:13: migrations: directory not found: 'nowhere' "
                                            f"(paths are relative to {tmp_path.resolve()})\n")
