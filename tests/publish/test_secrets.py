"""Secrets never leave: a backup command that prints its environment, in a GitHub job, on the real CLI.

Every output the run makes — report.json, JUnit, SARIF, Code Quality, the step summary, the
annotations and console on stdout, stderr and the PR comment on the local forge — is searched for
every secret the run knows, raw and percent-decoded.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from apply_support import slow_app, target_database

from support import run_cli

from .conftest import PR, REPO
from .forge import Forge

TOKEN = "rw-token"  # the forge's read-write token, as GITHUB_TOKEN
GITLAB_TOKEN = "glpat-Secret-Gitlab-1"
JOB_TOKEN = "glcbt-Secret-Job-2"
TARGET_PW = "Tr0ub%40dor/pw"  # percent-encoded '@' and a raw '/' in the target URL's password
BIND_PW = "Bind-Secret-3"
SANDBOX_PW = "Sandbox-Secret-4"
SECRETS = [TOKEN, GITLAB_TOKEN, JOB_TOKEN, TARGET_PW, "Tr0ub@dor/pw", BIND_PW, SANDBOX_PW]


@pytest.mark.usefixtures("pg_server")
def test_a_failing_backup_command_that_prints_its_environment_leaks_nothing(
        tmp_path: Path, forge: Forge, gh_env: dict[str, str]) -> None:
    printenv = "printenv GITHUB_TOKEN GITLAB_TOKEN CI_JOB_TOKEN PROD_URL AUDIT_URL SANDBOX_PW MARKER; exit 1"
    app_dir = slow_app(tmp_path, backup_command=printenv, binds={"audit": "AUDIT_URL"})
    config = app_dir / ".ci-migrate.yml"
    config.write_text(config.read_text() + "sandbox: postgresql://postgres@127.0.0.1:5432/\n"
                                           "sandbox-password-env: SANDBOX_PW\n")
    files = {"report": "out/report.json", "junit": "out/junit.xml", "sarif": "out/ci.sarif",
             "codequality": "out/gl-cq.json"}
    with target_database("postgresql") as url:  # trust auth: the password is accepted and ignored
        prod_url = url.replace("postgres@", f"postgres:{TARGET_PW}@")
        env = dict(gh_env, PROD_URL=prod_url, AUDIT_URL=f"postgresql://audit:{BIND_PW}@127.0.0.1/audit",
                   SANDBOX_PW=SANDBOX_PW, GITLAB_TOKEN=GITLAB_TOKEN, CI_JOB_TOKEN=JOB_TOKEN,
                   MARKER="the-backup-output-is-in-the-report")
        result = run_cli("apply", "--target", "production", "--output", files["report"], "--junit", files["junit"],
                         "--sarif", files["sarif"], "--codequality", files["codequality"], cwd=app_dir, env=env)
    assert result.code == 1, result.text
    report = json.loads((app_dir / files["report"]).read_text())
    (finding,) = [f for c in report["checks"] for f in c["findings"] if f["rule_id"] == "CM806"]
    assert "the-backup-output-is-in-the-report" in finding["message"]  # the output did reach the report
    assert "postgresql://postgres:***@127.0.0.1:5432/" in finding["message"]
    (comment,) = forge.comments_on(REPO, PR)
    outputs = {name: (app_dir / path).read_text() for name, path in files.items()}
    masks = [line.removeprefix("::add-mask::").replace("%25", "%") for line in result.out.splitlines() if line.startswith("::add-mask::")]
    stdout = "".join(line for line in result.out.splitlines(True) if not line.startswith("::add-mask::"))
    outputs.update(stdout=stdout, stderr=result.err, comment=comment["body"],
                   summary=Path(gh_env["GITHUB_STEP_SUMMARY"]).read_text())
    assert "the-backup-output-is-in-the-report" in outputs["summary"] + outputs["comment"]
    assert "::error" in result.out  # the annotation, masked too
    for name, text in outputs.items():
        for secret in SECRETS:
            assert secret not in text, f"{secret!r} leaked into {name}"
    assert set(masks) == set(SECRETS)
    assert result.out.startswith("::add-mask::")


def test_apply_and_post_do_not_need_the_sandbox_password(tmp_path: Path, forge: Forge,
                                                         gh_env: dict[str, str]) -> None:
    """A shared config names `sandbox-password-env`; the deploy job has no such variable."""
    app_dir = slow_app(tmp_path)
    config = app_dir / ".ci-migrate.yml"
    config.write_text(config.read_text() + "sandbox: postgresql://ci@127.0.0.1:5432/\n"
                                           "sandbox-password-env: SANDBOX_PW\n")
    env = dict(gh_env, PROD_URL=f"sqlite:///{tmp_path / 'prod.db'}")
    applied = run_cli("apply", "--target", "production", "--output", "report.json", cwd=app_dir, env=env)
    assert applied.code == 0, applied.text
    posted = run_cli("post", "--report", "report.json", cwd=app_dir, env=gh_env)
    assert posted.code == 0, posted.text
    (comment,) = forge.comments_on(REPO, PR)
    assert "a0ec6250bfad" in comment["body"]
    # where a sandbox is used, the unset variable is still a config error
    checked = run_cli("check", cwd=app_dir, env=gh_env)
    assert checked.code == 2
    assert checked.err == ("error: sandbox-password-env: environment variable SANDBOX_PW is not set "
                           "(it should hold the sandbox server's password)\n")
