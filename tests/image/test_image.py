"""The container image, built and run for real with buildah (opt-in: CI_MIGRATE_IMAGE_TESTS=1).

build-image.sh builds the Dockerfile FROM a debootstrapped Debian bookworm base (python:3.12-slim
cannot be pulled here). Each test then runs the image's ENTRYPOINT in a fresh working container
(`buildah run --isolation chroot`, which shares the host network, so PostgreSQL on 127.0.0.1
and a fake GitHub API on 127.0.0.1 are reachable), with the environment the GitHub runner gives
a container action (actions/runner ``ContainerActionHandler``): at /github/workspace a git
checkout of the PR branch with ``origin/main`` fetched, owned by another uid; HOME=/github/home;
the event payload; the file commands; ``INPUT_*`` for every input and action.yml's ``runs.env``
evaluated from them.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml

pytestmark = pytest.mark.image

ROOT = Path(__file__).resolve().parents[2]
APPS = ROOT / "tests" / "apps"
TAG = os.environ.get("CI_MIGRATE_IMAGE_TAG", "localhost/ci-migrate:test")
RUNNER_UID, RUNNER_GID = 1001, 127  # the runner user on GitHub-hosted Ubuntu
TOKEN = "ghs_imagetestFAKEtoken0123456789"
REPO = "octo-org/blog"
PR = 7
HEAD_SHA = "a" * 40  # the pull request's head commit, as the fake API reports it
HOST_CA = Path(os.environ.get("SSL_CERT_FILE") or "/etc/ssl/certs/ca-certificates.crt")


def _buildah(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(["buildah", *args], capture_output=True, text=True, timeout=timeout, check=check)


@pytest.fixture(scope="session")
def image() -> dict:
    """Build the image (cached base and layers: ~5-30 s warm, ~3 min cold); its config."""
    if not shutil.which("buildah") or not shutil.which("debootstrap"):
        pytest.fail("the image tests need buildah and debootstrap: apt-get install -y buildah debootstrap")
    start = time.monotonic()
    proc = subprocess.run([str(ROOT / "tests" / "image" / "build-image.sh"), TAG],
                          capture_output=True, text=True, timeout=1500, check=False)
    if proc.returncode:
        pytest.fail(f"image build failed ({proc.returncode}):\n{proc.stdout[-4000:]}\n{proc.stderr[-8000:]}")
    print(f"\nimage built in {time.monotonic() - start:.0f}s")
    return json.loads(_buildah("inspect", "--type", "image", TAG).stdout)


@pytest.fixture
def container(image) -> str:
    """A fresh working container from the image, removed afterwards."""
    ctr = _buildah("from", "--quiet", "--pull-never", TAG).stdout.strip()
    yield ctr
    _buildah("rm", ctr, check=False)


@dataclass
class Run:
    code: int
    stdout: str
    stderr: str
    outputs: dict[str, str] = field(default_factory=dict)
    summary: str = ""
    workspace: Path = Path()
    files_before: set[Path] = field(default_factory=set)

    @property
    def log(self) -> str:
        return self.stdout + self.stderr


def run_in(ctr: str, image: dict, env: dict[str, str], volumes: dict[Path, str], workdir: str,
           args: tuple[str, ...] = (), timeout: float = 300) -> subprocess.CompletedProcess:
    """Run the image's ENTRYPOINT (+ args) in ``ctr`` as a container runtime would.

    The container reaches PyPI the way this host does: the host's CA bundle is mounted and named
    by ``SSL_CERT_FILE`` (as build-image.sh does for the build), for the app environment uv makes."""
    entrypoint = image["OCIv1"]["config"]["Entrypoint"]
    cmd = ["buildah", "run", "--isolation", "chroot", "--workingdir", workdir]
    if HOST_CA.is_file():
        volumes = {**volumes, HOST_CA.resolve(): "/run/host-ca.pem:ro"}
        env = {"SSL_CERT_FILE": "/run/host-ca.pem", **env}
    for host, inside in volumes.items():
        cmd += ["-v", f"{host}:{inside}"]
    for key, value in env.items():
        cmd += ["-e", f"{key}={value}"]
    return subprocess.run([*cmd, ctr, "--", *entrypoint, *args], capture_output=True, text=True,
                          timeout=timeout, check=False)


def action_env(with_: dict[str, str]) -> dict[str, str]:
    """What the runner exports for ``uses: ./`` with ``with_``: INPUT_* and the evaluated runs.env."""
    action = yaml.safe_load((ROOT / "action.yml").read_text(encoding="utf-8"))
    values = {}
    for name, spec in action["inputs"].items():
        value = str(with_.get(name, spec.get("default", "")))
        values[name] = value.replace("${{ github.token }}", TOKEN)
    env = {f"INPUT_{name.replace(' ', '_').upper()}": value for name, value in values.items()}
    for var, expr in action["runs"]["env"].items():
        env[var] = re.sub(r"\$\{\{\s*inputs\.([A-Za-z0-9_-]+)\s*\}\}", lambda m: values[m.group(1)], expr)
    return env


def parse_outputs(text: str) -> dict[str, str]:
    """The GITHUB_OUTPUT file: ``name=value`` lines and ``name<<DELIM`` blocks."""
    outputs, lines = {}, iter(text.splitlines())
    for line in lines:
        if "<<" in line:
            name, delim = line.split("<<", 1)
            value = []
            for part in lines:
                if part == delim:
                    break
                value.append(part)
            outputs[name] = "\n".join(value)
        elif "=" in line:
            name, value = line.split("=", 1)
            outputs[name] = value
    return outputs


class FakeGitHub:
    """A GitHub REST/GraphQL API on 127.0.0.1 that records what the action asks of it."""

    def __init__(self) -> None:
        self.requests: list[dict] = []
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # quiet
                pass

            def _reply(self, status: int, data) -> None:
                body = json.dumps(data).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length) if length else b""
                try:
                    body = json.loads(raw) if raw else None
                except ValueError:
                    body = raw.decode(errors="replace")
                fake.requests.append({"method": self.command, "path": self.path, "body": body,
                                      "auth": self.headers.get("Authorization", "")})
                base = f"http://127.0.0.1:{fake.port}"
                path = self.path.split("?")[0]
                if path.endswith("/graphql"):
                    return self._reply(200, {"data": {"viewer": {"login": "github-actions"}}})
                if re.fullmatch(rf"/repos/{REPO}/issues/\d+/comments", path):
                    if self.command == "GET":
                        return self._reply(200, [])
                    if self.command == "POST":
                        return self._reply(201, {
                            "id": 1, "node_id": "IC_1", "body": (body or {}).get("body", ""),
                            "url": f"{base}/repos/{REPO}/issues/comments/1",
                            "html_url": f"https://github.com/{REPO}/pull/{PR}#issuecomment-1",
                            "user": {"login": "github-actions[bot]", "type": "Bot", "id": 41898282},
                            "created_at": "2026-01-01T00:00:00Z", "updated_at": "2026-01-01T00:00:00Z"})
                if path == f"/repos/{REPO}":
                    return self._reply(200, {"id": 1, "name": "blog", "full_name": REPO,
                                             "url": f"{base}/repos/{REPO}", "owner": {"login": "octo-org"}})
                if re.fullmatch(rf"/repos/{REPO}/(issues|pulls)/\d+", path):
                    return self._reply(200, {"number": PR, "url": f"{base}{path}", "state": "open",
                                             "comments_url": f"{base}{path}/comments",
                                             "head": {"sha": HEAD_SHA, "ref": "feature"}})
                return self._reply(404, {"message": "Not Found"})

            do_GET = do_POST = do_PATCH = do_DELETE = _handle

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeGitHub:  # noqa: PYI034
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()


def git_commit(repo: Path, message: str) -> None:
    """Commit everything in ``repo`` (``git init`` first when needed), as a checkout would have it."""
    if not (repo / ".git").exists():
        subprocess.run(["git", "init", "-q", "-b", "main", str(repo)], check=True)
    subprocess.run(["git", "-C", str(repo), "add", "-A"], check=True)
    subprocess.run(["git", "-C", str(repo), "-c", "user.name=ci", "-c", "user.email=ci@example.com",
                    "commit", "-q", "--allow-empty", "-m", message], check=True)


def pull_request_event() -> dict:
    owner = {"login": "octo-org", "id": 1001}
    repo = {"full_name": REPO, "name": "blog", "owner": owner, "id": 42}
    return {"action": "synchronize", "number": PR, "repository": repo,
            "pull_request": {"number": PR, "head": {"ref": "feature/bio", "sha": "a" * 40, "repo": repo},
                             "base": {"ref": "main", "sha": "b" * 40, "repo": repo}}}


@pytest.fixture
def github(tmp_path: Path, container: str, image: dict):
    """Run the action like the runner does: ``github(with_, app=...)`` -> Run.

    The first call makes the workspace from ``tests/apps/<app>`` (+ ``extra_files``, committed on
    the PR branch); later calls in the same test reuse it, as later steps of a job do.
    """
    ws = tmp_path / "workspace"
    home, workflow, commands = (tmp_path / d for d in ("home", "workflow", "file_commands"))

    def run(with_: dict[str, str], app: str | None = None, api_url: str = "http://127.0.0.1:9",
            extra_files: dict[str, str] | None = None, event_name: str = "pull_request",
            event: dict | None = None) -> Run:
        if app is not None:
            shutil.copytree(APPS / app, ws, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.db"))
            git_commit(ws, "main: the app as merged")
            subprocess.run(["git", "-C", str(ws), "update-ref", "refs/remotes/origin/main", "HEAD"], check=True)
            subprocess.run(["git", "-C", str(ws), "checkout", "-q", "-b", "feature/bio"], check=True)
            for rel, text in (extra_files or {}).items():
                (ws / rel).parent.mkdir(parents=True, exist_ok=True)
                (ws / rel).write_text(text, encoding="utf-8")
            git_commit(ws, "feature/bio: the pull request")
        for d in (home, workflow, commands):
            d.mkdir(exist_ok=True)
        (workflow / "event.json").write_text(json.dumps(event or pull_request_event()))
        output_file, summary_file = f"set_output_{uuid.uuid4()}", f"step_summary_{uuid.uuid4()}"
        for f in (output_file, summary_file):
            (commands / f).touch()
        subprocess.run(["chown", "-R", f"{RUNNER_UID}:{RUNNER_GID}", str(ws), str(commands)], check=True)
        pr = event_name in ("pull_request", "pull_request_target")
        env = {
            "GITHUB_ACTIONS": "true", "CI": "true", "HOME": "/github/home",
            "GITHUB_WORKSPACE": "/github/workspace", "GITHUB_EVENT_NAME": event_name,
            "GITHUB_EVENT_PATH": "/github/workflow/event.json",
            "GITHUB_OUTPUT": f"/github/file_commands/{output_file}",
            "GITHUB_STEP_SUMMARY": f"/github/file_commands/{summary_file}",
            "GITHUB_REPOSITORY": REPO, "GITHUB_REPOSITORY_OWNER": "octo-org",
            "GITHUB_SHA": "c" * 40, "GITHUB_REF": f"refs/pull/{PR}/merge" if pr else "refs/heads/main",
            "GITHUB_HEAD_REF": "feature/bio" if pr else "", "GITHUB_BASE_REF": "main" if pr else "",
            "GITHUB_SERVER_URL": "https://github.com", "GITHUB_API_URL": api_url,
            "GITHUB_GRAPHQL_URL": f"{api_url}/graphql", "GITHUB_RUN_ID": "1", "GITHUB_RUN_NUMBER": "1",
            "GITHUB_JOB": "migrations", "GITHUB_WORKFLOW": "ci", "GITHUB_ACTOR": "octocat",
            "RUNNER_OS": "Linux", "RUNNER_TEMP": "/github/runner_temp",
            **action_env(with_),
        }
        files_before = {p.relative_to(ws) for p in ws.rglob("*")}
        proc = run_in(container, image, env,
                      {ws: "/github/workspace", home: "/github/home", workflow: "/github/workflow",
                       commands: "/github/file_commands"}, "/github/workspace")
        return Run(proc.returncode, proc.stdout, proc.stderr,
                   parse_outputs((commands / output_file).read_text(encoding="utf-8")),
                   (commands / summary_file).read_text(encoding="utf-8"), ws, files_before)

    return run


def _new_files(run: Run) -> set[str]:
    return {str(p.relative_to(run.workspace)) for p in run.workspace.rglob("*")} - \
        {str(p) for p in run.files_before}


def _root_owned(ws: Path) -> list[str]:
    return [str(p.relative_to(ws)) for p in [ws, *ws.rglob("*")] if p.lstat().st_uid == 0]


# ------------------------------------------------------------------ tests


def test_image_config(image):
    config = image["OCIv1"]["config"]
    assert config["Entrypoint"] == ["python", "/app/entrypoint.py"]
    assert not config.get("User"), "no USER: GitHub runs container actions as root"
    env = dict(e.split("=", 1) for e in config["Env"])
    assert env["PATH"].startswith("/opt/venv/bin:")
    for var in ("PYTHONUNBUFFERED", "PYTHONDONTWRITEBYTECODE", "PIP_NO_CACHE_DIR"):
        assert env[var] == "1"
    labels = config["Labels"]
    assert labels["org.opencontainers.image.title"] == "ci-migrate"
    assert labels["org.opencontainers.image.licenses"] == "MIT"
    version = re.search(r'__version__ = "(.*)"', (ROOT / "ci_migrate" / "__init__.py").read_text()).group(1)
    assert labels["org.opencontainers.image.version"] == version


def test_version_help_and_tools(container, image):
    run = run_in(container, image, {}, {}, "/", ("--version",))
    assert run.returncode == 0, run.stderr
    assert re.search(r"ci-migrate, version \d+\.\d+", run.stdout)
    run = run_in(container, image, {}, {}, "/", ("check", "--help"))
    assert run.returncode == 0 and "--sandbox" in run.stdout, run.stdout + run.stderr
    script = ("python -m ci_migrate --version && uv --version && git --version && "
              "test ! -e /opt/venv/lib/python3*/site-packages/pip && "
              "du -skx / && du -sk /opt/venv && du -sk /opt/ci-migrate && du -sk /usr/lib/git-core")
    tools = subprocess.run(["buildah", "run", "--isolation", "chroot", container, "--", "sh", "-c", script],
                           capture_output=True, text=True, timeout=60, check=False)
    assert tools.returncode == 0, tools.stdout + tools.stderr
    assert "uv " in tools.stdout and "git version" in tools.stdout
    sizes = {line.split()[1]: int(line.split()[0]) / 1024 for line in tools.stdout.splitlines()
             if re.match(r"^\d+\s+/", line)}
    print("\nimage: " + ", ".join(f"{path} {mib:.0f} MiB" for path, mib in sizes.items()))
    # The venv: pinned dependencies (~105 MiB with their bytecode), squawk's binary (~25 MiB) and
    # uv (37 MiB). A jump means a new heavy dependency: see the size notes in docs/ci-recipes.md.
    assert sizes["/opt/venv"] < 185, sizes


def test_pull_request_check_reports_drift(github, pg_server):
    """tutorial_drift on PostgreSQL: exit 1, outputs, job summary, sticky comment, clean workspace."""
    with FakeGitHub() as api:
        run = github({"sandbox-url": pg_server, "comment": "always", "report-path": "reports/ci-migrate.json",
                      "requirements": "requirements.txt"},
                     app="tutorial_drift", api_url=f"http://127.0.0.1:{api.port}",
                     extra_files={"requirements.txt": "Flask-SQLAlchemy>=3\nFlask-Migrate>=4\npsycopg[binary]\n"})
    assert run.code == 1, run.log
    assert run.outputs.get("verdict") == "failed", (run.outputs, run.log)
    assert run.outputs.get("drift") == "true"
    assert int(run.outputs.get("findings", "0")) >= 1
    assert run.outputs.get("heads"), run.outputs
    assert run.outputs.get("report-path", "").endswith("reports/ci-migrate.json")
    assert "bio" in run.summary, run.summary
    # The token is masked before anything prints it, and never printed otherwise.
    assert f"::add-mask::{TOKEN}" in run.stdout
    assert TOKEN not in run.log.replace(f"::add-mask::{TOKEN}", "")
    # Sticky comment on PR 7 through GITHUB_API_URL, authenticated with the input token.
    posts = [r for r in api.requests if r["method"] in ("POST", "PATCH") and "/comments" in r["path"]]
    assert posts, [(r["method"], r["path"]) for r in api.requests]
    assert f"/repos/{REPO}/issues/{PR}/comments" in posts[0]["path"]
    assert "bio" in posts[0]["body"]["body"]
    assert TOKEN in posts[0]["auth"]
    # Only the report asked for is left, and nothing is root-owned (no bytecode either).
    assert _new_files(run) == {"reports", "reports/ci-migrate.json"}
    assert _root_owned(run.workspace) == []
    report = json.loads((run.workspace / "reports" / "ci-migrate.json").read_text())
    assert "bio" in json.dumps(report)


def test_broken_requirement_names_the_package(github):
    """A requirement that cannot be installed stops the run (code 3) with its name, before the app."""
    backend = ("def get_requires_for_build_wheel(config_settings=None):\n    return []\n\n"
               "def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):\n"
               "    raise RuntimeError('this package cannot be built (test fixture)')\n")
    pyproject = ('[build-system]\nrequires = []\nbuild-backend = "backend"\nbackend-path = ["."]\n\n'
                 '[project]\nname = "broken-pkg"\nversion = "1.0"\n')
    run = github({"pre-command": "touch pre-command-ran"}, app="tutorial_drift",
                 extra_files={"requirements.txt": "./vendor/broken\n",
                              "vendor/broken/pyproject.toml": pyproject, "vendor/broken/backend.py": backend})
    assert run.code == 3, run.log
    assert "::error title=ci-migrate%3A could not install broken-pkg::" in run.stdout, run.log
    assert "this package cannot be built" in run.log
    assert not (run.workspace / "pre-command-ran").exists()
    assert _root_owned(run.workspace) == []


def test_fork_pattern_check_then_post(github, pg_server):
    """check saves the report (no comment); post, on workflow_run, comments from it alone.

    `post` runs with secrets: it must not install the PR's requirements nor run its pre-command.
    """
    first = github({"sandbox-url": pg_server, "comment": "never", "report-path": "ci-migrate/report.json"},
                   app="tutorial_drift")
    assert first.code == 1, first.log
    assert _new_files(first) == {"ci-migrate", "ci-migrate/report.json"}
    (first.workspace / "ci-migrate" / "pr-number").write_text(f"{PR}\n")
    (first.workspace / "requirements.txt").write_text("./not-installable\n")
    event = {"action": "completed", "repository": pull_request_event()["repository"],
             "workflow_run": {"id": 99, "event": "pull_request", "head_sha": HEAD_SHA, "pull_requests": []}}
    with FakeGitHub() as api:
        run = github({"command": "post", "report-path": "ci-migrate/report.json", "comment": "always",
                      "pre-command": "touch pre-command-ran"},
                     api_url=f"http://127.0.0.1:{api.port}", event_name="workflow_run", event=event)
    assert run.code == 0, run.log
    assert not (run.workspace / "pre-command-ran").exists(), run.log
    assert "uv pip install" not in run.log
    posts = [r for r in api.requests if r["method"] == "POST" and r["path"].startswith(f"/repos/{REPO}/issues/")]
    assert posts and f"/issues/{PR}/comments" in posts[0]["path"], api.requests
    assert "bio" in posts[0]["body"]["body"]
    assert "bio" in run.summary
    assert run.outputs.get("verdict") == "failed"
    assert _root_owned(run.workspace) == []


def test_apply_without_target_is_a_usage_error(github):
    run = github({"command": "apply"}, app="tutorial_drift")
    assert run.code == 2, run.log
    assert "::error title=ci-migrate::target" in run.stdout


def test_plain_docker_run_clean_app(container, image, tmp_path, pg_server):
    """`docker run -v "$PWD:/workspace" -e CI_MIGRATE_... IMAGE check` outside GitHub: passes."""
    ws = tmp_path / "ws"
    shutil.copytree(APPS / "clean", ws, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "*.db"))
    run = run_in(container, image, {"CI_MIGRATE_APP": "blogapp:create_app('testing')",
                                    "CI_MIGRATE_SANDBOX": pg_server, "CI": "true"},
                 {ws: "/workspace"}, "/workspace", ("check",))
    assert run.returncode == 0, run.stdout + run.stderr
    assert "passed" in run.stdout + run.stderr
    assert "::" not in run.stdout, "no GitHub workflow commands outside GitHub Actions"
    assert not list(ws.rglob("__pycache__"))
