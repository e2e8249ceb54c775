"""Database URLs from the environment and the config: a wrong part is a config error (exit 2) that
names the variable and the part, with the password masked — never a traceback."""

from __future__ import annotations

import pytest

from ci_migrate.config import load
from ci_migrate.config_errors import ConfigError
from ci_migrate.urls import parse_url, url_problem

CONFIG = ("app: \"blogapp:create_app('testing')\"\n"
          "targets:\n  production:\n    url-env: PROD_URL\n    binds: {audit: AUDIT_URL}\n")


@pytest.mark.parametrize("url, problem", [
    ("postgresql://app:s3cret@db:abc/prod",
     "the port in postgresql://app:***@db:abc/prod is 'abc', not a number from 1 to 65535"),
    ("postgresql://app:s3cret@db:99999/prod",
     "the port in postgresql://app:***@db:99999/prod is '99999', not a number from 1 to 65535"),
    ("postgresql://app:p@ss:w/rd@db:5432/prod",
     "the password in postgresql://app:***@db:5432/prod contains a raw '@', which ends the password early — "
     "percent-encode it as %40 (in Python: urllib.parse.quote(password, safe=''))"),
    ("postgresql://app:p@ss@db/prod",
     "the password in postgresql://app:***@db/prod contains a raw '@', which ends the password early — "
     "percent-encode it as %40 (in Python: urllib.parse.quote(password, safe=''))"),
    ("db.internal:5432/prod",
     "'db.internal:5432/prod' is not a database URL (dialect://user:password@host:port/database, such as "
     "postgresql://app:secret@db.internal:5432/shop)"),
    ("my-db://app:s3cret@db/prod",
     "my-db://app:***@db/prod cannot be read as a database URL (dialect://user:password@host:port/database, such as "
     "postgresql://app:secret@db.internal:5432/shop)"),
    ("postgresql://app:s3cret@[::1/prod",
     "the host in postgresql://app:***@[::1/prod cannot be read (an IPv6 address goes in brackets: [::1]:5432)"),
])
def test_url_problems_name_the_part(url, problem):
    assert url_problem(url) == problem


@pytest.mark.parametrize("url", [
    "postgresql://app:p%40ss@db:5432/prod", "postgresql://app:pa/ss@db/prod", "postgresql://app:p:w?x@db/prod",
    "postgresql://app@srv:pw@db/prod", "postgresql://app:pw@[::1]:5432/prod", "postgresql://postgres@127.0.0.1/",
    "mysql+pymysql://root@db/app?charset=utf8mb4", "sqlite:///relative.db", "sqlite:////abs/path.db", "sqlite://",
    "postgres://u@h/",
])
def test_good_urls_pass(url):
    assert url_problem(url) is None
    assert parse_url(url, "X").drivername


def test_target_url_names_the_variable(tmp_path):
    (tmp_path / ".ci-migrate.yml").write_text(CONFIG)
    settings = load(env={}, cwd=tmp_path)
    with pytest.raises(ConfigError) as err:
        settings.target_url("production", {"PROD_URL": "postgresql://app:s3cret@db:abc/prod"})
    assert str(err.value) == ("PROD_URL (targets.production.url-env): the port in postgresql://app:***@db:abc/prod "
                              "is 'abc', not a number from 1 to 65535")


@pytest.mark.parametrize("command", [["check"], ["plan", "--target", "production"], ["apply", "--target", "production"]])
@pytest.mark.parametrize("variable, url, message", [
    ("PROD_URL", "postgresql://app:s3cret@db:abc/prod",
     "error: PROD_URL (targets.production.url-env): the port in postgresql://app:***@db:abc/prod is 'abc', "
     "not a number from 1 to 65535\n"),
    ("AUDIT_URL", "postgresql://app:p@ss:w/rd@db/audit",
     "error: AUDIT_URL (targets.production.binds.audit): the password in postgresql://app:***@db/audit contains a "
     "raw '@', which ends the password early — percent-encode it as %40 (in Python: urllib.parse.quote(password, "
     "safe=''))\n"),
])
def test_a_bad_url_in_the_environment_exits_2(cli, tmp_path, command, variable, url, message):
    (tmp_path / ".ci-migrate.yml").write_text(CONFIG)
    env = {"PROD_URL": "postgresql://app:fine-pw@db/prod", variable: url}
    result = cli(*command, cwd=tmp_path, env=env)
    assert (result.code, result.err, result.out) == (2, message, "")


@pytest.mark.parametrize("value, message", [
    ("postgres://ci@localhost:5432/",
     "must be 'sqlite' or a PostgreSQL/MySQL server URL such as postgresql://user@host:5432/ or "
     "mysql+pymysql://root@host/ (got 'postgres://ci@localhost:5432/') — did you mean 'postgresql://ci@localhost:5432/'?"),
    ("postgresql://ci@localhost:5o32/",
     "the port in postgresql://ci@localhost:5o32/ is '5o32', not a number from 1 to 65535"),
])
def test_sandbox_url_in_the_file(tmp_path, value, message):
    (tmp_path / ".ci-migrate.yml").write_text(f"sandbox: {value}\n")
    with pytest.raises(ConfigError) as err:
        load(env={}, cwd=tmp_path)
    assert str(err.value) == f".ci-migrate.yml:1:10: sandbox: {message}"


def test_sandbox_url_in_the_environment(tmp_path):
    with pytest.raises(ConfigError) as err:
        load(env={"CI_MIGRATE_SANDBOX": "postgresql://ci:p@ss@db/"}, cwd=tmp_path)
    assert str(err.value) == ("CI_MIGRATE_SANDBOX: the password in postgresql://ci:***@db/ contains a raw '@', which "
                              "ends the password early — percent-encode it as %40 (in Python: "
                              "urllib.parse.quote(password, safe=''))")
    with pytest.raises(ConfigError) as err:
        load(env={"CI_MIGRATE_SANDBOX": "postgres+psycopg2://ci:pw@db/"}, cwd=tmp_path)
    assert str(err.value).endswith("did you mean 'postgresql+psycopg2://ci:***@db/'?")
