"""ci_migrate.masking: the one URL-password parser and the secret values of a run, on hard cases."""

from __future__ import annotations

import pytest

from ci_migrate.config import load
from ci_migrate.masking import Masker, mask_text, mask_url, passwords_in, run_secrets, secret_forms, url_password
from ci_migrate.report import CheckResult, Finding, Report, SandboxInfo


@pytest.mark.parametrize("text, masked", [
    # two URLs on one line: each password masked, the text between them kept
    ("from postgresql://app:pw-one@db1/prod to mysql+pymysql://root:pw-two@db2/app done",
     "from postgresql://app:***@db1/prod to mysql+pymysql://root:***@db2/app done"),
    ("postgresql://a:first@h1/db,mysql://b:second@h2/db",
     "postgresql://a:***@h1/db,mysql://b:***@h2/db"),
    # raw '@', ':' and '/' in the password: all of it is hidden
    ("postgresql://app:p@ss:w/rd@db:5432/prod", "postgresql://app:***@db:5432/prod"),
    ("sandbox 'postgresql://ci:p@ss@localhost/' refused", "sandbox 'postgresql://ci:***@localhost/' refused"),
    # an '@' in the user name (Azure: user@server)
    ("postgresql://app@srv:pw-azure@db/prod", "postgresql://app@srv:***@db/prod"),
    # IPv6 hosts
    ("postgresql://app:s3cret@[::1]:5432/prod", "postgresql://app:***@[::1]:5432/prod"),
    ("postgresql://app@[::1]:5432/prod", "postgresql://app@[::1]:5432/prod"),
    ("postgresql://[2001:db8::1]:5432/prod", "postgresql://[2001:db8::1]:5432/prod"),
    # no password, an empty one, a port without a user
    ("postgresql://postgres@127.0.0.1:5432/", "postgresql://postgres@127.0.0.1:5432/"),
    ("postgresql://app:@db/prod", "postgresql://app:@db/prod"),
    ("postgresql://db:5432/prod", "postgresql://db:5432/prod"),
    # query strings are kept
    ("postgresql://app:pw@db/prod?sslmode=require&options=-csearch_path%3Dapp",
     "postgresql://app:***@db/prod?sslmode=require&options=-csearch_path%3Dapp"),
    # percent-encoded password, and one URL per line
    ("a: postgresql://app:p%40ss@db/x\nb: mysql://root:hunter2@db/y\n",
     "a: postgresql://app:***@db/x\nb: mysql://root:***@db/y\n"),
    ('{"url": "postgresql://app:pw@db/prod", "other": "https://example.com/a@b"}',
     '{"url": "postgresql://app:***@db/prod", "other": "https://example.com/a@b"}'),
])
def test_url_passwords_are_masked(text, masked):
    assert mask_text(text) == masked
    assert mask_url(text) == masked


def test_url_password_is_the_whole_password():
    assert url_password("postgresql://app:p@ss:w/rd@db/prod") == "p@ss:w/rd"
    assert url_password("postgresql://app:p%40ss@db/prod") == "p%40ss"
    assert url_password("postgresql://app@db/prod") is None
    assert url_password("sqlite") is None
    assert passwords_in("postgresql://a:one1@h/x mysql://b:two2@h/y") == ["one1", "two2"]


def test_sqlalchemy_url_is_rendered_masked():
    from sqlalchemy.engine import make_url

    assert mask_url(make_url("postgresql://app:s3cret@db/prod")) == "postgresql://app:***@db/prod"


def test_secret_forms_raw_decoded_and_never_shorter_than_four():
    assert secret_forms(["p%40ss", "", None, "abc", "p%40ss", "ghs_token"]) == ["ghs_token", "p%40ss", "p@ss"]


def test_literal_secrets_are_masked_in_any_text():
    masker = Masker(["ghs_abcdef123", "p%40ss-word"])
    text = "GITHUB_TOKEN=ghs_abcdef123\nPGPASSWORD=p@ss-word\nraw p%40ss-word\n"
    assert masker.text(text) == "GITHUB_TOKEN=***\nPGPASSWORD=***\nraw ***\n"


def test_run_secrets_read_without_failing(tmp_path):
    (tmp_path / ".ci-migrate.yml").write_text(
        "sandbox: postgresql://ci@localhost/\nsandbox-password-env: SANDBOX_PW\n"
        "targets:\n  production:\n    url-env: PROD_URL\n    binds: {audit: AUDIT_URL}\n")
    settings = load(env={}, cwd=tmp_path)
    env = {"PROD_URL": "postgresql://app:prod%2Fpw@db/prod", "AUDIT_URL": "postgresql://app:audit-pw@db/audit",
           "GITHUB_TOKEN": "ghs_token1", "CI_JOB_TOKEN": "glcbt-job", "GITLAB_TOKEN": "glpat-xyz"}
    assert run_secrets(settings, env) == ["ghs_token1", "", "", "glpat-xyz", "glcbt-job", "prod%2Fpw", "audit-pw", ""]
    secrets = Masker.of(settings, {**env, "SANDBOX_PW": "sandbox-pw"}).secrets
    assert set(secrets) == {"sandbox-pw", "prod%2Fpw", "prod/pw", "ghs_token1", "glpat-xyz", "glcbt-job", "audit-pw"}
    assert [len(s) for s in secrets] == sorted(map(len, secrets), reverse=True)
    assert Masker.of(None, env).secrets == ["ghs_token1", "glpat-xyz", "glcbt-job"]


def test_report_is_masked_everywhere_but_its_vocabulary():
    report = Report(version="0.1.0", app="app.py", sandbox=SandboxInfo(dialect="postgresql",
                                                                       url="postgresql://ci:sandbox-pw@h/"),
                    checks=[CheckResult(name="apply", status="failed", summary="backup failed: ghs_token1",
                                        findings=[Finding(check="apply", rule_id="CM806", severity="error",
                                                          title="backup failed", message="GITHUB_TOKEN=ghs_token1",
                                                          details={"output": ["x ghs_token1"], "ghs_token1": 1})])],
                    notes=["postgresql://ci:pw@h/db"])
    masked = Masker(["ghs_token1", "failed"]).report(report)
    assert "ghs_token1" not in masked.model_dump_json() and "sandbox-pw" not in masked.model_dump_json()
    finding = masked.checks[0].findings[0]
    assert (finding.message, finding.details) == ("GITHUB_TOKEN=***", {"output": ["x ***"], "***": 1})
    assert masked.checks[0].status == "failed" and masked.checks[0].summary == "backup ***: ***"
    assert masked.sandbox.url == "postgresql://ci:***@h/" and masked.notes == ["postgresql://ci:***@h/db"]
    assert report.checks[0].summary == "backup failed: ghs_token1"  # the original is left alone
