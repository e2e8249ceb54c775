"""Quick checks of the container contract that need no image: entrypoint.py, action.yml, Dockerfile
and requirements/image.txt agree with each other. (test_image.py runs the real image.)"""

from __future__ import annotations

import importlib.util
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]


def _load_entrypoint():
    spec = importlib.util.spec_from_file_location("ci_migrate_entrypoint", ROOT / "entrypoint.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


ep = _load_entrypoint()
ACTION = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))

# Real uv 0.13 output, trimmed.
UV_BUILD_FAILED = """\
error: Failed to build `broken-pkg @ file:///github/workspace/broken`
  cause: The build backend returned an error
  cause: Call to `backend.build_wheel` failed (exit status: 1)

         [stderr]
         Traceback (most recent call last):
           File "/github/workspace/broken/backend.py", line 2, in build_wheel
         RuntimeError: this package cannot be built (test fixture)

hint: Build failures usually indicate a problem with the package or the build environment
"""
UV_NO_VERSION = """\
Using Python 3.11.2 environment at: /opt/venv
error: No solution found when resolving dependencies
  cause: Because there is no version of flask==0.0.99 and you require flask==0.0.99, we can conclude that your requirements are unsatisfiable.
"""
UV_NOT_FOUND = """\
  × No solution found when resolving dependencies:
  ╰─▶ Because flask-nonexistent was not found in the package registry and you require flask-nonexistent, we can conclude that your requirements are unsatisfiable.
"""
UV_PARSE = """\
error: Couldn't parse requirement in `requirements.txt` at position 9
  cause: Expected one of `@`, `(`, `<`, `=`, `>`, `~`, `!`, `;`, found `a`
"""


# ------------------------------------------------------------------ action.yml <-> entrypoint


def test_every_input_is_mapped_to_the_variable_the_entrypoint_reads():
    inputs = ACTION["inputs"]
    env = ACTION["runs"]["env"]
    assert set(inputs) == set(ep.INPUTS)
    for name, var in ep.INPUTS.items():
        assert env[var] == f"${{{{ inputs.{name} }}}}", name
        assert re.fullmatch(r"[A-Za-z_][A-Za-z0-9_-]*", name)
        assert inputs[name].get("description"), name
    assert inputs["github-token"]["default"] == "${{ github.token }}"
    assert inputs["command"]["default"] == "check"
    assert inputs["requirements"]["default"] == "auto"


def test_action_metadata():
    assert ACTION["runs"]["using"] == "docker"
    assert ACTION["runs"]["image"] == "Dockerfile"
    assert set(ACTION["outputs"]) == {"verdict", "heads", "pending-count", "drift", "findings", "report-path"}
    assert all(o.get("description") for o in ACTION["outputs"].values())
    assert ACTION["branding"] == {"icon": "database", "color": "blue"}


def test_dockerfile_contract():
    text = (ROOT / "Dockerfile").read_text(encoding="utf-8")
    assert not re.search(r"^\s*USER\b", text, re.MULTILINE), "GitHub runs container actions as root"
    assert 'ENTRYPOINT ["python", "/app/entrypoint.py"]' in text
    assert re.search(r"^ARG BASE_IMAGE=python:3\.12-slim$", text, re.MULTILINE)
    for var in ("PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1", "PIP_NO_CACHE_DIR=1"):
        assert var in text


def _names(lines):
    return {re.split(r"[\s<>=!~;\[]", ln.strip(), maxsplit=1)[0].lower().replace("_", "-")
            for ln in lines if ln.strip() and not ln.lstrip().startswith(("#", "--"))}


def test_image_requirements_pin_every_dependency():
    tomllib = pytest.importorskip("tomllib")
    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    pinned = {}
    for line in (ROOT / "requirements" / "image.txt").read_text(encoding="utf-8").splitlines():
        m = re.match(r"^([A-Za-z0-9._-]+)==(\S+)", line)
        if m:
            pinned[m.group(1).lower().replace("_", "-")] = m.group(2)
    missing = _names(project["dependencies"]) - set(pinned)
    assert not missing, f"not pinned in requirements/image.txt: {sorted(missing)}; run requirements/lock.sh"
    assert "uv" in pinned


# ------------------------------------------------------------------ settings


def test_inputs_fill_ci_migrate_variables():
    env = {"INPUT_SANDBOX-URL": "postgresql://u:pw@postgres:5432/", "INPUT_APP": "app.py",
           "INPUT_GITHUB-TOKEN": "ghs_abc", "INPUT_FAIL_ON": "warning",
           "CI_MIGRATE_APP": "", "CI_MIGRATE_TARGET": "", "CI_MIGRATE_MIGRATIONS": "db/migrations",
           "INPUT_MIGRATIONS": "other", "INPUT_PRE-COMMAND": "echo hi\n"}
    ep.apply_inputs(env)
    assert env["CI_MIGRATE_SANDBOX"] == "postgresql://u:pw@postgres:5432/"
    assert env["CI_MIGRATE_APP"] == "app.py"
    assert env["GITHUB_TOKEN"] == "ghs_abc"
    assert env["CI_MIGRATE_FAIL_ON"] == "warning"
    assert env["CI_MIGRATE_MIGRATIONS"] == "db/migrations"  # an explicit CI_MIGRATE_* wins
    assert env["CI_MIGRATE_PRE_COMMAND"] == "echo hi\n"
    assert "CI_MIGRATE_TARGET" not in env  # empty = unset


def test_cli_args():
    assert ep.cli_args([], {}) == ["check"]
    assert ep.cli_args([], {"CI_MIGRATE_COMMAND": " Plan ", "CI_MIGRATE_TARGET": "staging"}) == \
        ["plan", "--target", "staging"]
    assert ep.cli_args(["check", "--fail-on", "warning"], {"CI_MIGRATE_COMMAND": "post"}) == \
        ["check", "--fail-on", "warning"]
    with pytest.raises(ep.Stop) as err:
        ep.cli_args([], {"CI_MIGRATE_COMMAND": "deploy"})
    assert err.value.code == 2 and "check, plan, apply, post" in str(err.value)
    assert ep.cli_args([], {"CI_MIGRATE_COMMAND": "apply", "CI_MIGRATE_TARGET": "production"}) == \
        ["apply", "--target", "production"]
    assert ep.cli_args([], {"CI_MIGRATE_COMMAND": "post", "CI_MIGRATE_OUTPUT": "ci-migrate/report.json"}) == \
        ["post", "--report", "ci-migrate/report.json"]
    for command, needed in (("plan", "target"), ("post", "report-path")):
        with pytest.raises(ep.Stop) as err:
            ep.cli_args([], {"CI_MIGRATE_COMMAND": command})
        assert err.value.code == 2 and str(err.value).startswith(needed)


def test_needs_app():
    assert ep.needs_app(["check"]) and ep.needs_app(["apply", "--yes"])
    assert not ep.needs_app(["post"])
    assert not ep.needs_app(["check", "--help"]) and not ep.needs_app(["--version"])


def test_workspace(tmp_path):
    (tmp_path / "services" / "api").mkdir(parents=True)
    env = {"GITHUB_WORKSPACE": str(tmp_path), "CI_MIGRATE_WORKING_DIRECTORY": "services/api"}
    assert ep.workspace(env, Path("/")) == (tmp_path.resolve(), (tmp_path / "services/api").resolve())
    assert ep.workspace({}, tmp_path) == (tmp_path.resolve(), tmp_path.resolve())
    with pytest.raises(ep.Stop) as err:
        ep.workspace({"GITHUB_WORKSPACE": str(tmp_path), "CI_MIGRATE_WORKING_DIRECTORY": "nope"}, Path("/"))
    assert err.value.code == 2 and "nope" in str(err.value)


def test_secrets_are_tokens_and_url_passwords():
    env = {"GITHUB_TOKEN": "ghs_tok", "CI_MIGRATE_SANDBOX": "postgresql://ci:p%40ss@postgres:5432/",
           "DATABASE_URL": "mysql+pymysql://root:hunter2@db/app", "OTHER": "https://example.com/x",
           "NO_PASSWORD": "postgresql://postgres@127.0.0.1/"}
    assert set(ep.secrets(env)) == {"ghs_tok", "p%40ss", "p@ss", "hunter2"}
    # a raw '@', ':' and '/' in a password: the whole password, never a prefix; nothing under 4 characters
    env = {"DATABASE_URL": "postgresql://app:p@ss:w/rd@db/prod", "SHORT": "mysql://root:pw@db/x",
           "INPUT_GITHUB-TOKEN": "ghs_input", "CI_JOB_TOKEN": "glcbt-64x"}
    assert set(ep.secrets(env)) == {"p@ss:w/rd", "ghs_input", "glcbt-64x"}


def test_index_env_maps_pip_settings_to_uv(monkeypatch):
    env = {"PIP_INDEX_URL": "https://pypi.corp/simple", "PIP_CERT": "/certs/corp.pem",
           "UV_EXTRA_INDEX_URL": "https://keep", "PIP_EXTRA_INDEX_URL": "https://ignored"}
    ep.index_env(env)
    assert env["UV_INDEX_URL"] == "https://pypi.corp/simple"
    assert env["SSL_CERT_FILE"] == "/certs/corp.pem"
    assert env["UV_EXTRA_INDEX_URL"] == "https://keep"


# ------------------------------------------------------------------ requirements


def test_requirement_args(tmp_path):
    assert ep.requirement_args("auto", tmp_path) == []
    (tmp_path / "pyproject.toml").write_text("[project]\nname='x'\n")
    assert ep.requirement_args("", tmp_path) == ["-r", "pyproject.toml"]
    (tmp_path / "requirements.txt").write_text("flask\n")
    assert ep.requirement_args("auto", tmp_path) == ["-r", "requirements.txt"]
    assert ep.requirement_args("none", tmp_path) is None
    (tmp_path / "lib").mkdir()
    assert ep.requirement_args("requirements.txt, lib\npsycopg2-binary==2.9.9", tmp_path) == \
        ["-r", "requirements.txt", "./lib", "psycopg2-binary==2.9.9"]
    with pytest.raises(ep.Stop) as err:
        ep.requirement_args("requirements/ci.txt", tmp_path)
    assert err.value.code == 2 and "requirements/ci.txt" in str(err.value)


@pytest.mark.parametrize("output, package", [
    (UV_BUILD_FAILED, "broken-pkg"),
    (UV_NO_VERSION, "flask"),
    (UV_NOT_FOUND, "flask-nonexistent"),
    ("error: Failed to fetch: https://pypi.org/simple/flask/\n  cause: invalid peer certificate", "flask"),
    (UV_PARSE, None),
])
def test_failed_package(output, package):
    assert ep.failed_package(output) == package


def test_failure_reason():
    assert ep.failure_reason(UV_BUILD_FAILED) == ("Failed to build `broken-pkg @ file:///github/workspace/broken`"
                                                   " — RuntimeError: this package cannot be built (test fixture)")
    assert "no version of flask==0.0.99" in ep.failure_reason(UV_NO_VERSION)
    assert ep.failure_reason(UV_PARSE).startswith("Couldn't parse requirement in `requirements.txt`")


def test_install_failure_names_the_package(tmp_path):
    python = tmp_path / "app" / "bin" / "python"

    def fake_run(command, cwd):
        assert command[1:5] == ["pip", "install", "--python", str(python)]
        return 1, UV_BUILD_FAILED

    with pytest.raises(ep.Stop) as err:
        ep.install_requirements(["-r", "requirements.txt"], tmp_path, fake_run, python)
    assert err.value.code == 3
    assert "package 'broken-pkg'" in str(err.value) and "requirements.txt" in str(err.value)
    assert err.value.title == "ci-migrate: could not install broken-pkg"


def test_pre_command_failure(tmp_path):
    with pytest.raises(ep.Stop) as err:
        ep.run_pre_command("echo before; exit 7", tmp_path, ep.stream)
    assert err.value.code == 3 and "code 7" in str(err.value)
    ep.run_pre_command("touch made-by-pre-command", tmp_path, ep.stream)
    assert (tmp_path / "made-by-pre-command").exists()


# ------------------------------------------------------------------ git and file ownership


def test_safe_directory_without_git(tmp_path, monkeypatch):
    monkeypatch.setattr(ep.shutil, "which", lambda name: None)
    ep.add_safe_directory([Path("/github/workspace"), Path("/github/workspace")], {"HOME": str(tmp_path)})
    ep.add_safe_directory([Path("/github/workspace")], {"HOME": str(tmp_path)})
    assert (tmp_path / ".gitconfig").read_text() == "[safe]\n\tdirectory = /github/workspace\n"


@pytest.mark.skipif(not shutil.which("git"), reason="git is not installed")
def test_safe_directory_with_git(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.delenv("GIT_CONFIG_GLOBAL", raising=False)
    for _ in range(2):
        ep.add_safe_directory([tmp_path / "ws"], {"HOME": str(tmp_path)})
    out = subprocess.run(["git", "config", "--global", "--get-all", "safe.directory"],
                         capture_output=True, text=True, check=True).stdout
    assert out.splitlines() == [str(tmp_path / "ws")]


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to chown")
def test_files_created_in_a_foreign_workspace_are_given_back(tmp_path):
    ws = tmp_path / "ws"
    (ws / "old").mkdir(parents=True)
    for path in (ws, ws / "old"):
        os.chown(path, 1001, 1002)
    before = ep.snapshot(ws)
    (ws / "reports").mkdir()
    (ws / "reports" / "report.json").write_text("{}")
    os.symlink("reports/report.json", ws / "latest.json")
    assert sorted(ep.give_back(ws, before)) == ["latest.json", "reports", "reports/report.json"]
    for rel in ("reports", "reports/report.json"):
        st = (ws / rel).stat()
        assert (st.st_uid, st.st_gid) == (1001, 1002)
    assert (ws / "latest.json").lstat().st_uid == 1001
    assert ep.give_back(tmp_path, set()) == []  # our own directory: nothing to do


# ------------------------------------------------------------------ the whole script, on this host


def test_entrypoint_runs_the_cli_in_the_workspace(tmp_path):
    """entrypoint.py with a GitHub-like env, outside the image: the CLI runs in working-directory."""
    ws = tmp_path / "ws"
    shutil.copytree(ROOT / "tests" / "apps" / "tutorial_drift", ws / "svc")
    summary, outputs = tmp_path / "summary.md", tmp_path / "outputs"
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CI_MIGRATE_", "GITHUB_", "INPUT_"))}
    env.update({"GITHUB_ACTIONS": "true", "GITHUB_WORKSPACE": str(ws), "HOME": str(tmp_path),
                "GITHUB_STEP_SUMMARY": str(summary), "GITHUB_OUTPUT": str(outputs),
                "INPUT_WORKING-DIRECTORY": "svc", "INPUT_REQUIREMENTS": "none", "INPUT_COMMAND": "check",
                "INPUT_SANDBOX-URL": "sqlite", "INPUT_GITHUB-TOKEN": "ghs_entrypointtesttoken",
                "INPUT_COMMENT": "never", "PYTHONDONTWRITEBYTECODE": "",
                "CI_MIGRATE_PYTHON": sys.executable})  # the app's Python given: no environment is made
    env.pop("PYTHONDONTWRITEBYTECODE")
    before = {p.relative_to(ws) for p in ws.rglob("*")}
    proc = subprocess.run([sys.executable, str(ROOT / "entrypoint.py")], cwd="/", env=env,
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "::add-mask::ghs_entrypointtesttoken" in proc.stdout
    assert "bio" in proc.stdout + proc.stderr
    after = {p.relative_to(ws) for p in ws.rglob("*")}
    assert after == before, f"files left in the workspace: {sorted(map(str, after - before))}"


def test_the_app_gets_an_environment_of_its_own(tmp_path):
    """No requirements declared: a venv beside ci-migrate's, with the default stack, made with uv."""
    venv = tmp_path / "app"
    python = ep.app_environment([], tmp_path, ep.stream, venv=venv)
    assert python == venv / "bin" / "python"
    code = "import flask, flask_sqlalchemy, flask_migrate, psycopg, pymysql; print(flask.__name__)"
    out = subprocess.run([str(python), "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "flask", out.stderr
    empty = ep.app_environment(None, tmp_path, ep.stream, venv=tmp_path / "empty")
    missing = subprocess.run([str(empty), "-c", "import flask"], capture_output=True, text=True, check=False)
    assert missing.returncode != 0  # requirements: none — nothing installed
    env = {"PATH": "/usr/bin"}
    ep.activate(env, venv)
    assert env["CI_MIGRATE_PYTHON"] == str(python) and env["PATH"].startswith(f"{venv}/bin")

