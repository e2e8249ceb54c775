"""Tests for ci_migrate.config: loading, precedence, validation messages, starter file."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest

from ci_migrate.config import (CONFIG_FILENAME, Baseline, CheckSetting, ConfigError, Ignore, MigrationsDir, Settings,
                               Target, load, starter_config, write_starter)

ALLOWED = ("    allowed keys: app, migrations, python, timeout, prune-after, sandbox, sandbox-password-env, targets, "
           "checks, rules, ignore, baseline, extensions, fail-on, keep-sandbox, cache-dir, format, output, target, base, "
           "comment, junit, sarif, codequality, rules-url")


def write(directory: Path, text: str, name: str = CONFIG_FILENAME) -> Path:
    path = directory / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(textwrap.dedent(text).lstrip("\n"), encoding="utf-8")
    return path


def errors(directory: Path, text: str | None = None, **kwargs) -> str:
    """The ConfigError message load() raises for ``text`` as the config file."""
    if text is not None:
        write(directory, text)
    kwargs.setdefault("env", {})
    with pytest.raises(ConfigError) as info:
        load(cwd=directory, **kwargs)
    return str(info.value)


def assert_defaults(s: Settings) -> None:
    assert (s.app, s.migrations, s.sandbox, s.sandbox_password_env) == (None, None, "sqlite", None)
    assert (s.targets, s.checks, s.rules, s.baseline) == ({}, {}, {}, None)
    assert s.ignore == Ignore()
    assert (s.fail_on, s.keep_sandbox, s.format, s.output) == ("error", False, "console", None)


# ------------------------------------------------------------ defaults, sources


def test_defaults_without_a_file(tmp_path):
    s = load(env={}, cwd=tmp_path)
    assert_defaults(s)
    assert s.root == tmp_path.resolve()
    assert s.config_path is None


@pytest.mark.parametrize("text", ["", "# nothing but a comment\n", "~\n"])
def test_empty_file_means_defaults(tmp_path, text):
    path = write(tmp_path, text)
    s = load(env={}, cwd=tmp_path)
    assert_defaults(s)
    assert s.config_path == path


def test_every_key_from_the_file(tmp_path):
    write(tmp_path, "db/schema.sql", name="db/schema.sql")
    (tmp_path / "migrations").mkdir()
    write(tmp_path, """
        app: "blogapp:create_app('ci')"
        migrations: migrations
        sandbox: postgresql://ci@localhost:5432/
        sandbox-password-env: PGPASSWORD
        targets:
          production:
            url-env: DATABASE_URL
          staging: {url-env: STAGING_URL, lock-wait: 12.5}
        checks:
          graph: on
          drift: {enabled: true, severity: warning}
        rules:
          CM106: off
          CM201: info
        ignore:
          tables: [spatial_ref_sys, "audit_*"]
          objects: ["ix_legacy_*"]
          diff-kinds: [modify_comment]
        baseline:
          revision: 1a2b3c4d
          schema: db/schema.sql
        fail-on: warning
        keep-sandbox: true
        format: json
        output: report.json
    """)
    s = load(env={}, cwd=tmp_path)
    assert s.app == "blogapp:create_app('ci')"
    assert (s.app_migrations, s.extra_migrations) == ("migrations", [])
    assert s.sandbox == "postgresql://ci@localhost:5432/"
    assert s.sandbox_password_env == "PGPASSWORD"
    assert s.targets == {"production": Target(url_env="DATABASE_URL", lock_wait=300),
                         "staging": Target(url_env="STAGING_URL", lock_wait=12.5)}
    assert s.checks == {"graph": CheckSetting(enabled=True), "drift": CheckSetting(enabled=True, severity="warning")}
    assert s.rules == {"CM106": "off", "CM201": "info"}
    assert s.ignore == Ignore(tables=["spatial_ref_sys", "audit_*"], objects=["ix_legacy_*"],
                              diff_kinds=["modify_comment"])
    assert s.baseline == Baseline(revision="1a2b3c4d", schema_file="db/schema.sql")
    assert (s.fail_on, s.keep_sandbox, s.format, s.output) == ("warning", True, "json", "report.json")
    assert s.resolve_path(s.output) == tmp_path.resolve() / "report.json"


ENV_CASES = [
    ("CI_MIGRATE_APP", "blogapp:create_app('ci')", "app", "blogapp:create_app('ci')"),
    ("CI_MIGRATE_MIGRATIONS", "db/migrations", "app_migrations", "db/migrations"),
    ("CI_MIGRATE_SANDBOX", "mysql+pymysql://root:pw@db/", "sandbox", "mysql+pymysql://root:pw@db/"),
    ("CI_MIGRATE_SANDBOX_PASSWORD_ENV", "PGPASSWORD", "sandbox_password_env", "PGPASSWORD"),
    ("CI_MIGRATE_TARGETS", "{production: {url-env: DATABASE_URL}}", "targets",
     {"production": Target(url_env="DATABASE_URL")}),
    ("CI_MIGRATE_CHECKS", "{roundtrip: off, lint: error}", "checks",
     {"roundtrip": CheckSetting(enabled=False), "lint": CheckSetting(severity="error")}),
    ("CI_MIGRATE_RULES", "{CM106: off}", "rules", {"CM106": "off"}),
    ("CI_MIGRATE_IGNORE", "{tables: [spatial_ref_sys]}", "ignore", Ignore(tables=["spatial_ref_sys"])),
    ("CI_MIGRATE_BASELINE", "{revision: 0123, create-all: true}", "baseline",
     Baseline(revision="0123", create_all=True)),
    ("CI_MIGRATE_FAIL_ON", "warning", "fail_on", "warning"),
    ("CI_MIGRATE_KEEP_SANDBOX", "true", "keep_sandbox", True),
    ("CI_MIGRATE_FORMAT", "json", "format", "json"),
    ("CI_MIGRATE_OUTPUT", "out/report.json", "output", "out/report.json"),
]


@pytest.mark.parametrize("var, value, attr, expected", ENV_CASES, ids=[c[0] for c in ENV_CASES])
def test_each_key_from_the_environment(tmp_path, var, value, attr, expected):
    (tmp_path / "db" / "migrations").mkdir(parents=True)
    assert getattr(load(env={var: value}, cwd=tmp_path), attr) == expected


OVERRIDE_CASES = [
    ("app", "wsgi:app"), ("migrations", [MigrationsDir(path="db/migrations")]), ("sandbox", "postgresql://u:pw@h/"),
    ("sandbox_password_env", "PW"), ("targets", {"prod": Target(url_env="URL")}),
    ("checks", {"drift": CheckSetting(enabled=False)}), ("rules", {"CM101": "warning"}),
    ("ignore", Ignore(objects=["ix_*"])), ("baseline", Baseline(revision="abc", create_all=True)),
    ("fail_on", "warning"), ("keep_sandbox", True), ("format", "json"), ("output", "r.json"),
]


@pytest.mark.parametrize("name, value", OVERRIDE_CASES, ids=[c[0] for c in OVERRIDE_CASES])
def test_each_key_from_an_override(tmp_path, name, value):
    (tmp_path / "db" / "migrations").mkdir(parents=True)
    assert getattr(load(overrides={name: value}, env={}, cwd=tmp_path), name) == value


def test_overrides_accept_plain_data(tmp_path):
    s = load(overrides={"targets": {"prod": {"url-env": "URL"}}, "checks": {"lint": "off"}}, env={}, cwd=tmp_path)
    assert s.targets["prod"].url_env == "URL"
    assert not s.check_enabled("lint")


def test_precedence_flag_over_env_over_file_over_default(tmp_path):
    write(tmp_path, "fail-on: warning\nformat: json\napp: from_file\n")
    env = {"CI_MIGRATE_FORMAT": "console", "CI_MIGRATE_APP": "from_env"}
    s = load(env=env, overrides={"app": "from_flag", "format": None, "output": None}, cwd=tmp_path)
    assert s.fail_on == "warning"  # file over default
    assert s.format == "console"  # env over file; a None flag is ignored
    assert s.app == "from_flag"  # flag over env
    assert s.output is None


def test_empty_env_value_counts_as_unset(tmp_path):
    write(tmp_path, "fail-on: warning\n")
    assert load(env={"CI_MIGRATE_FAIL_ON": "", "CI_MIGRATE_TARGETS": " "}, cwd=tmp_path).fail_on == "warning"


def test_env_replaces_the_whole_top_level_key(tmp_path):
    write(tmp_path, "targets:\n  production: {url-env: A}\n  staging: {url-env: B}\n")
    s = load(env={"CI_MIGRATE_TARGETS": "{qa: {url-env: C}}"}, cwd=tmp_path)
    assert list(s.targets) == ["qa"]


def test_env_beats_a_file_key_spelled_with_underscores(tmp_path):
    write(tmp_path, "fail_on: warning\n")
    assert load(env={}, cwd=tmp_path).fail_on == "warning"
    assert load(env={"CI_MIGRATE_FAIL_ON": "error"}, cwd=tmp_path).fail_on == "error"


def test_explicit_path_and_ci_migrate_config(tmp_path):
    path = write(tmp_path, "app: elsewhere\n", name="conf/ci.yml")
    s = load("conf/ci.yml", env={}, cwd=tmp_path)
    assert (s.app, s.config_path, s.root) == ("elsewhere", path, path.parent.resolve())
    assert load(env={"CI_MIGRATE_CONFIG": str(path)}, cwd=tmp_path).app == "elsewhere"


def test_explicit_missing_path(tmp_path):
    assert errors(tmp_path, config_path="nope.yml") == "nope.yml: config file not found"
    assert errors(tmp_path, env={"CI_MIGRATE_CONFIG": "x.yml"}) == "x.yml: config file not found (from CI_MIGRATE_CONFIG)"


def test_unknown_override_is_a_programming_error(tmp_path):
    with pytest.raises(ValueError, match="did you mean 'fail_on'"):
        load(overrides={"failon": "error"}, env={}, cwd=tmp_path)


def test_null_section_means_default(tmp_path):
    write(tmp_path, "targets:\nchecks:\nignore:\n  tables:\n")
    assert_defaults(load(env={}, cwd=tmp_path))


# ------------------------------------------------------------------ messages


def test_all_errors_at_once_with_locations(tmp_path):
    (tmp_path / "migrations").mkdir()
    message = errors(tmp_path, """
        app: "blogapp:create_app('ci')"
        migrations: migrations
        sandbx: sqlite
        checks:
          graph: on
        keep-sandbox: false
        fail-on: critical
        targets: {production: {url-env: DATABASE_URL,
            url: "postgresql://app:hunter2@db/prod"}}
    """)
    assert message.splitlines() == [
        ".ci-migrate.yml:3:1: unknown key 'sandbx' — did you mean 'sandbox'?",
        ALLOWED,
        ".ci-migrate.yml:7:10: fail-on: must be one of 'error', 'warning' (got 'critical')",
        ".ci-migrate.yml:9:5: targets.production: unknown key 'url' — a literal URL would put a password in the "
        "repository; name the environment variable that holds it with 'url-env'",
    ]


def test_literal_target_url_is_refused_without_a_missing_url_env_error(tmp_path):
    message = errors(tmp_path, "targets:\n  production:\n    url: postgresql://app:hunter2@db/prod\n")
    assert message == (".ci-migrate.yml:3:5: targets.production: unknown key 'url' — a literal URL would put a "
                       "password in the repository; name the environment variable that holds it with 'url-env'")
    assert "hunter2" not in message


def test_nested_unknown_key_lists_that_levels_keys(tmp_path):
    message = errors(tmp_path, "targets:\n  prod:\n    url-env: DB\n    lock-wiat: 5\n")
    assert message == (".ci-migrate.yml:4:5: targets.prod: unknown key 'lock-wiat' — did you mean 'lock-wait'?\n"
                       "    allowed keys: url-env, lock-wait, lock-timeout, statement-timeout, retries, retry-backoff, "
                       "backup-command, drift-gate, binds")


def test_target_apply_keys(tmp_path):
    write(tmp_path, """
        targets:
          production:
            url-env: DATABASE_URL
            lock-timeout: 2.5
            statement-timeout: 600
            retries: 0
            retry-backoff: 0.5
            backup-command: pg_dump "$DATABASE_URL" -Fc -f before-deploy.dump
            drift-gate: true
            binds: {audit: AUDIT_DATABASE_URL}
          staging: {url-env: STAGING_URL}
    """)
    prod, staging = load(env={}, cwd=tmp_path).targets.values()
    assert (prod.lock_timeout, prod.statement_timeout, prod.retries, prod.retry_backoff) == (2.5, 600, 0, 0.5)
    assert prod.backup_command == 'pg_dump "$DATABASE_URL" -Fc -f before-deploy.dump'
    assert prod.drift_gate is True and prod.binds == {"audit": "AUDIT_DATABASE_URL"}
    assert staging == Target(url_env="STAGING_URL", lock_wait=300, lock_timeout=5, statement_timeout=0, retries=3,
                             retry_backoff=2, backup_command=None, drift_gate=False, binds={})


def test_target_apply_key_errors(tmp_path):
    message = errors(tmp_path, """
        targets:
          prod:
            url-env: DB
            lock-timeout: -1
            retries: 1.5
            drift-gate: maybe
            binds: {audit: "postgresql://u:hunter2@h/audit"}
    """)
    assert message.splitlines() == [
        ".ci-migrate.yml:4:19: targets.prod.lock-timeout: must be at least 0 (got -1)",
        ".ci-migrate.yml:5:14: targets.prod.retries: must be a whole number (got 1.5)",
        ".ci-migrate.yml:6:17: targets.prod.drift-gate: must be true or false (on/off) (got 'maybe')",
        ".ci-migrate.yml:7:20: targets.prod.binds.audit: must be the name of an environment variable, such as "
        "DATABASE_URL (got 'postgresql://u:***@h/audit')",
    ]


def test_target_errors(tmp_path):
    message = errors(tmp_path, """
        targets:
          a: {}
          b:
            url-env: postgresql://u:hunter2@h/db
            lock-wait: -1
          c: 5
    """)
    assert message.splitlines() == [
        ".ci-migrate.yml:2:3: targets.a: missing required key 'url-env' — the name of the environment variable "
        "holding this target's database URL, e.g. url-env: DATABASE_URL",
        ".ci-migrate.yml:4:14: targets.b.url-env: must be the name of an environment variable, such as "
        "DATABASE_URL (got 'postgresql://u:***@h/db')",
        ".ci-migrate.yml:5:16: targets.b.lock-wait: must be at least 0 (got -1)",
        ".ci-migrate.yml:6:6: targets.c: must be a mapping of key: value pairs (got 5)",
    ]


def test_invalid_yaml(tmp_path):
    assert errors(tmp_path, "app: a: b\n") == ".ci-migrate.yml:1:7: invalid YAML: mapping values are not allowed here"
    assert errors(tmp_path, "checks:\n\tgraph: on\n").startswith(
        ".ci-migrate.yml:2:1: invalid YAML: found character '\\t' that cannot start any token (YAML does not allow tabs")


def test_top_level_must_be_a_mapping(tmp_path):
    assert errors(tmp_path, "- app\n- sandbox\n") == (
        ".ci-migrate.yml:1:1: the top level must be a mapping of settings (key: value), got a list")


def test_duplicate_keys_name_both_lines(tmp_path):
    message = errors(tmp_path, "fail-on: error\napp: a\nfail-on: warning\nignore:\n  tables: [a]\n  tables: [b]\n")
    assert message.splitlines() == [
        ".ci-migrate.yml:3:1: duplicate key 'fail-on' (also on line 1) — YAML keeps only the last one; remove one",
        ".ci-migrate.yml:6:3: ignore: duplicate key 'tables' (also on line 5) — YAML keeps only the last one; "
        "remove one",
    ]


def test_errors_from_env_and_flags_name_the_variable_and_flag(tmp_path):
    message = errors(tmp_path, env={"CI_MIGRATE_FAIL_ON": "warn", "CI_MIGRATE_TARGETS": "{prod: {url: x}}"},
                     overrides={"format": "xml"})
    assert message.splitlines() == [
        "CI_MIGRATE_FAIL_ON: must be one of 'error', 'warning' (got 'warn') — did you mean 'warning'?",
        "CI_MIGRATE_TARGETS: targets.prod: unknown key 'url' — a literal URL would put a password in the "
        "repository; name the environment variable that holds it with 'url-env'",
        "--format: must be one of 'console', 'json' (got 'xml')",
    ]


def test_env_name_typos_and_bad_yaml(tmp_path):
    message = errors(tmp_path, env={"CI_MIGRATE_SANDBX": "sqlite", "CI_MIGRATE_GITHUB_TOKEN": "t",
                                    "CI_MIGRATE_CHECKS": "{lint: [off"})
    lines = message.splitlines()
    assert lines[0].startswith("CI_MIGRATE_CHECKS: invalid YAML: expected ',' or ']'")
    assert lines[1] == "CI_MIGRATE_SANDBX: unknown setting — did you mean CI_MIGRATE_SANDBOX?"
    assert lines[2].startswith("    settings: CI_MIGRATE_APP, CI_MIGRATE_MIGRATIONS, CI_MIGRATE_PYTHON, CI_MIGRATE_TIMEOUT, ")
    assert len(lines) == 3  # CI_MIGRATE_GITHUB_TOKEN is not a typo of a setting: left alone


def test_check_rule_and_diff_kind_typos(tmp_path):
    message = errors(tmp_path, """
        checks:
          grap: on
          lint: maybe
          drift: {severity: warn}
        rules:
          cm106: off
          CM107: on
        ignore:
          diff-kinds: [modify_coment]
    """)
    assert message.splitlines() == [
        ".ci-migrate.yml:2:3: checks: unknown check 'grap' — did you mean 'graph'?",
        "    known checks: graph, replay, drift, plan, lint, locks, roundtrip",
        ".ci-migrate.yml:3:9: checks.lint: must be on, off, a severity ('info', 'warning', 'error'), a scope "
        "('pending', 'all') or a mapping {enabled: ..., severity: ..., scope: ...} (got 'maybe')",
        ".ci-migrate.yml:4:21: checks.drift.severity: must be one of 'info', 'warning', 'error' (got 'warn') "
        "— did you mean 'warning'?",
        ".ci-migrate.yml:6:3: rules: rule ids look like CM101 (got 'cm106') — did you mean 'CM106'?",
        ".ci-migrate.yml:7:10: rules.CM107: 'on' is not a severity — use 'info', 'warning' or 'error', or delete "
        "the line to keep the rule's own severity",
        ".ci-migrate.yml:9:16: ignore.diff-kinds[0]: unknown diff kind 'modify_coment' — did you mean "
        "'modify_comment'?",
        "    known diff kinds: add_table, remove_table, add_column, remove_column, modify_type, modify_nullable, "
        "modify_default, modify_comment, add_index, remove_index, add_constraint, remove_constraint, add_fk, "
        "remove_fk, add_table_comment, remove_table_comment",
    ]


def test_type_errors(tmp_path):
    message = errors(tmp_path, "app: 12\nkeep-sandbox: maybe\nignore:\n  tables: spatial_ref_sys\nformat: JSON\n")
    assert message.splitlines() == [
        ".ci-migrate.yml:1:6: app: must be a string (got 12) — put it in quotes",
        ".ci-migrate.yml:2:15: keep-sandbox: must be true or false (on/off) (got 'maybe')",
        ".ci-migrate.yml:4:11: ignore.tables: must be a list such as [a, b] (got 'spatial_ref_sys')",
        ".ci-migrate.yml:5:9: format: must be one of 'console', 'json' (got 'JSON') — did you mean 'json'?",
    ]


def test_sandbox_password_in_the_file_is_refused(tmp_path):
    message = errors(tmp_path, "sandbox: postgresql://ci:hunter2@localhost:5432/\n")
    assert message == (".ci-migrate.yml:1:10: sandbox: the URL contains a password, which would be committed with "
                       "this file — put the password in an environment variable named by 'sandbox-password-env', "
                       "or pass the URL via CI_MIGRATE_SANDBOX")
    env = {"CI_MIGRATE_SANDBOX": "postgresql://ci:hunter2@localhost:5432/"}
    assert load(env=env, cwd=tmp_path).sandbox_url(env={}) == "postgresql://ci:hunter2@localhost:5432/"
    assert load(overrides={"sandbox": "mysql://root:pw@db/"}, env={}, cwd=tmp_path).sandbox == "mysql://root:pw@db/"


def test_bad_sandbox_url_is_masked(tmp_path):
    message = errors(tmp_path, env={"CI_MIGRATE_SANDBOX": "oracle://scott:tiger@db/"})
    assert message == ("CI_MIGRATE_SANDBOX: must be 'sqlite' or a PostgreSQL/MySQL server URL such as "
                       "postgresql://user@host:5432/ or mysql+pymysql://root@host/ (got 'oracle://scott:***@db/')")
    assert "did you mean 'sqlite'" in errors(tmp_path, "sandbox: sqlit\n")
    message = errors(tmp_path, "targets:\n  prod:\n    url-env: postgresql://u:p@ss@db/x\n")
    assert message.endswith("(got 'postgresql://u:***@db/x')")


# ------------------------------------------------------------ Settings methods


def test_sandbox_url_fills_in_the_password(tmp_path):
    write(tmp_path, "sandbox: postgresql://ci@localhost:5432/\nsandbox-password-env: PGPASSWORD\n")
    s = load(env={}, cwd=tmp_path)
    assert s.sandbox_url(env={"PGPASSWORD": "p@ss/word"}) == "postgresql://ci:p%40ss%2Fword@localhost:5432/"
    with pytest.raises(ConfigError, match="environment variable PGPASSWORD is not set"):
        s.sandbox_url(env={})
    assert Settings().sandbox_url(env={}) == "sqlite"
    assert Settings(sandbox="mysql://root@db/").sandbox_url(env={}) == "mysql://root@db/"


def test_target_url(tmp_path):
    write(tmp_path, "targets:\n  production: {url-env: DATABASE_URL}\n  staging: {url-env: STAGING_URL}\n")
    s = load(env={}, cwd=tmp_path)
    assert s.target_url("production", env={"DATABASE_URL": "postgresql://x/y"}) == "postgresql://x/y"
    with pytest.raises(ConfigError) as info:
        s.target_url("production", env={})
    assert str(info.value) == ("target 'production': environment variable DATABASE_URL is not set "
                               "(targets.production.url-env names it; it should hold the database URL)")
    with pytest.raises(ConfigError, match="STAGING_URL is empty"):
        s.target_url("staging", env={"STAGING_URL": ""})
    with pytest.raises(ConfigError) as info:
        s.target_url("prod", env={})
    assert str(info.value) == ("unknown target 'prod' — did you mean 'production'?\n"
                               "    configured targets: production, staging")
    with pytest.raises(ConfigError, match="no targets are configured"):
        Settings().target_url("production", env={})


def test_severity_for_precedence():
    s = Settings(checks={"lint": "warning", "locks": False, "drift": {"enabled": True}},
                 rules={"CM106": "off", "CM107": "error", "CM105": "info"})
    assert s.severity_for("lint", "CM501", "error") == "warning"  # check beats default
    assert s.severity_for("lint", "CM107", "info") == "error"  # rule beats check
    assert s.severity_for("lint", "CM106", "error") is None  # rule off
    assert s.severity_for("drift", "CM301", "info") == "info"  # default
    assert s.severity_for("graph", "CM101", "error") == "error"  # unconfigured check
    assert s.severity_for("locks", "CM601", "error") is None  # disabled check
    assert s.severity_for("locks", "CM105", "error") == "info"  # rule still beats check
    with pytest.raises(ValueError, match="did you mean 'lint'"):
        s.severity_for("lnt", "CM101", "error")


@pytest.mark.parametrize("value, enabled, severity", [
    ("on", True, None), ("off", False, None), ("true", True, None), ("false", False, None),
    ("'off'", False, None), ("warning", True, "warning"), ("info", True, "info"),
    ("{enabled: false, severity: error}", False, "error"), ("{severity: error}", True, "error"),
])
def test_check_shorthand(tmp_path, value, enabled, severity):
    write(tmp_path, f"checks:\n  drift: {value}\n")
    s = load(env={}, cwd=tmp_path)
    assert s.checks["drift"] == CheckSetting(enabled=enabled, severity=severity)
    assert s.check_enabled("drift") is enabled
    assert s.check_enabled("graph") is True


def test_check_scope_for_locks_and_roundtrip(tmp_path):
    write(tmp_path, "checks:\n  locks: {scope: all, severity: info}\n  roundtrip: all\n")
    s = load(env={}, cwd=tmp_path)
    assert s.checks["locks"] == CheckSetting(enabled=True, severity="info", scope="all")
    assert s.checks["roundtrip"] == CheckSetting(scope="all")
    assert (s.check_scope("locks"), s.check_scope("roundtrip")) == ("all", "all")
    assert Settings().check_scope("roundtrip") == "pending"  # the default: what the plan found pending
    assert load(env={"CI_MIGRATE_CHECKS": "{roundtrip: pending}"}, cwd=tmp_path).check_scope("roundtrip") == "pending"
    assert errors(tmp_path, "checks:\n  drift: all\n  lint: {scope: pending}\n") == (
        ".ci-migrate.yml:1:1: checks: a scope ('pending', 'all') only applies to the locks and roundtrip checks "
        "(got one for 'drift', 'lint')")
    assert errors(tmp_path, "checks:\n  locks: {scope: some}\n") == (
        ".ci-migrate.yml:2:18: checks.locks.scope: must be one of 'pending', 'all' (got 'some')")
    assert "did you mean 'all'?" in errors(tmp_path, "checks:\n  roundtrip: al\n")


def test_ignore_globbing():
    ignore = Ignore(tables=["spatial_ref_sys", "audit_*", "legacy.*"], objects=["ix_legacy_*"])
    assert ignore.table_ignored("spatial_ref_sys")
    assert ignore.table_ignored("spatial_ref_sys", schema="public")
    assert ignore.table_ignored("AUDIT_log")
    assert not ignore.table_ignored("users")
    assert ignore.table_ignored("anything", schema="legacy")
    assert not ignore.table_ignored("anything")  # schema.table globs need the schema
    assert not ignore.table_ignored("anything", schema="public")
    assert ignore.object_ignored("ix_legacy_email")
    assert not ignore.object_ignored("ix_users_email")
    assert not ignore.object_ignored(None)


def test_baseline_needs_exactly_one_of_schema_or_create_all(tmp_path):
    assert errors(tmp_path, "baseline:\n  revision: abc\n") == (
        ".ci-migrate.yml:1:1: baseline: needs 'schema: <SQL file>' or 'create-all: true' to say how the database "
        "at that revision is built")
    write(tmp_path, "", name="schema.sql")
    assert errors(tmp_path, "baseline: {revision: abc, schema: schema.sql, create-all: true}\n") == (
        ".ci-migrate.yml:1:1: baseline: give either 'schema' or 'create-all: true', not both")
    assert errors(tmp_path, "baseline: {revision: abc, schema: missing.sql}\n") == (
        f".ci-migrate.yml:1:35: baseline.schema: file not found: 'missing.sql' "
        f"(paths are relative to {tmp_path.resolve()})")
    assert errors(tmp_path, "baseline: {schema: schema.sql}\n") == (
        ".ci-migrate.yml:1:1: baseline: a schema file needs 'revision: <id>', the revision the file's schema "
        "corresponds to (the sandbox is stamped there)")
    write(tmp_path, "baseline: {create-all: true}\n")  # the models' schema is that of the heads
    assert load(env={}, cwd=tmp_path).baseline == Baseline(revision=None, create_all=True)
    write(tmp_path, "baseline:\n  revision: 0123\n  create-all: true\n")
    assert load(env={}, cwd=tmp_path).baseline == Baseline(revision="0123", create_all=True)  # not octal 83
    write(tmp_path, "baseline: {revision: abc, schema: schema.sql}\n")
    assert load(env={}, cwd=tmp_path).baseline.schema_file == "schema.sql"


# ------------------------------------------------------------------ starter


def test_starter_file_loads_as_defaults(tmp_path):
    path = tmp_path / CONFIG_FILENAME
    write_starter(path)
    s = load(env={}, cwd=tmp_path)
    assert_defaults(s)
    assert s.config_path == path


def test_starter_shows_every_key_and_its_examples_are_valid(tmp_path):
    text = starter_config()
    for key in ("app", "migrations", "sandbox", "sandbox-password-env", "targets", "checks", "rules", "ignore",
                "baseline", "fail-on", "keep-sandbox", "format", "output"):
        assert f"\n# {key}:" in text or f"\n{key}:" in text, key
    write(tmp_path, "", name="db/schema.sql")
    (tmp_path / "migrations").mkdir()
    write(tmp_path, starter_config(commented=False))
    s = load(env={}, cwd=tmp_path)
    assert s.model_fields_set >= {"app", "migrations", "sandbox", "sandbox_password_env", "targets", "checks",
                                  "rules", "ignore", "baseline", "fail_on", "keep_sandbox", "format", "output"}


def test_write_starter_refuses_to_overwrite(tmp_path):
    path = write(tmp_path, "app: mine\n")
    with pytest.raises(ConfigError, match="already exists; use --force"):
        write_starter(path)
    assert path.read_text() == "app: mine\n"
    write_starter(path, force=True)
    assert path.read_text() == starter_config()


def test_python_timeout_and_prune_after(tmp_path):
    write(tmp_path, """
        python: .venv/bin/python
        timeout: 90
        prune-after: 36h
    """)
    settings = load(cwd=tmp_path, env={})
    assert (settings.python, settings.timeout, settings.prune_after) == (".venv/bin/python", 90, 36 * 3600)
    assert settings.python_source == "python: in .ci-migrate.yml"
    settings = load(cwd=tmp_path, env={"CI_MIGRATE_PYTHON": "/opt/app/bin/python", "CI_MIGRATE_PRUNE_AFTER": "off"})
    assert (settings.python, settings.python_source, settings.prune_after) == (
        "/opt/app/bin/python", "CI_MIGRATE_PYTHON", 0)
    settings = load(cwd=tmp_path, env={}, overrides={"python": "/usr/bin/python3", "timeout": 0})
    assert (settings.python_source, settings.timeout) == ("--python", 0)
    assert load(cwd=tmp_path, env={"CI_MIGRATE_TIMEOUT": "5"}).timeout == 5


@pytest.mark.parametrize("text, message", [
    ("timeout: -1\n", "timeout: must be at least 0 (got -1)"),
    ("prune-after: soon\n", "prune-after: must be a duration such as 12h, 90m, 2d or a number of seconds, or off"),
])
def test_python_timeout_and_prune_after_errors(tmp_path, text, message):
    write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load(cwd=tmp_path, env={})
    assert message in str(err.value) and ".ci-migrate.yml:1" in str(err.value)


def test_known_tables_setting(tmp_path):
    """ignore.known-tables: on (default), off, or per table: off hides a catalog entry, a reason adds one."""
    assert load(cwd=tmp_path, env={}).ignore.known_tables is True
    write(tmp_path, 'ignore:\n  known-tables: {spatial_ref_sys: off, "topology.layer": "on", jobs: made by cron}\n')
    assert load(cwd=tmp_path, env={}).ignore.known_tables == {
        "spatial_ref_sys": False, "topology.layer": True, "jobs": "made by cron"}
    assert load(cwd=tmp_path, env={"CI_MIGRATE_IGNORE": "{known-tables: off}"}).ignore.known_tables is False
    assert errors(tmp_path, "ignore:\n  known-tables:\n    sesions: off\n").startswith(
        ".ci-migrate.yml:2:3: ignore.known-tables: 'sesions' is not a known table — did you mean 'sessions'? "
        "(known: sessions, flask_sessions, apscheduler_jobs,")
    assert errors(tmp_path, "ignore:\n  known-tables: [sessions]\n") == (
        ".ci-migrate.yml:2:3: ignore.known-tables: must be on, off or a mapping {table: off | \"reason\"} "
        "(got a list)")


def test_extensions_are_a_list_of_names(tmp_path):
    assert load(env={}, cwd=tmp_path).extensions == []
    write(tmp_path, "extensions: [pg_trgm, uuid-ossp]\n")
    assert load(env={}, cwd=tmp_path).extensions == ["pg_trgm", "uuid-ossp"]
    assert load(env={"CI_MIGRATE_EXTENSIONS": "[citext]"}, cwd=tmp_path).extensions == ["citext"]
    assert errors(tmp_path, "extensions: pg_trgm\n") == (
        ".ci-migrate.yml:1:13: extensions: must be a list such as [a, b] (got 'pg_trgm')")
    assert errors(tmp_path, "extensions: [pg_trgm, 'drop table x']\n") == (
        ".ci-migrate.yml:1:23: extensions[1]: must be a PostgreSQL extension name such as pg_trgm, citext or "
        "uuid-ossp (got 'drop table x')")


# ------------------------------------------------------------ rules-url


def test_rules_url_from_file_and_environment(tmp_path):
    write(tmp_path, "rules-url: https://github.com/me/ci-migrate/blob/main/docs/rules/\n")
    assert load(env={}, cwd=tmp_path).rules_url == "https://github.com/me/ci-migrate/blob/main/docs/rules/"
    env = {"CI_MIGRATE_RULES_URL": "https://mirror.example/rules"}
    assert load(env=env, cwd=tmp_path).rules_url == "https://mirror.example/rules"


def test_rules_url_must_be_a_web_address(tmp_path):
    message = errors(tmp_path, "rules-url: docs/rules\n")
    assert ".ci-migrate.yml:1:12: rules-url: must be the http(s) URL of the folder holding the rule pages" in message
    assert "(got 'docs/rules')" in message


def test_rules_url_reaches_the_console_and_a_bad_one_exits_2(tmp_path, cli):
    from support import copy_app

    app = copy_app("tutorial_drift", tmp_path)
    result = cli("check", "--app", "app.py", cwd=app, env={"CI_MIGRATE_RULES_URL": "https://mirror.example/rules/"})
    assert result.code == 1, result.text
    assert "https://mirror.example/rules/CM301.md" in result.out
    bad = cli("check", "--app", "app.py", cwd=app, env={"CI_MIGRATE_RULES_URL": "mirror.example/rules"})
    assert bad.code == 2
    assert "CI_MIGRATE_RULES_URL: must be the http(s) URL of the folder holding the rule pages" in bad.err
