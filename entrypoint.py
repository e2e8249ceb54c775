"""Container entrypoint of ci-migrate: the GitHub Action (action.yml) and ``docker run IMAGE check``.

Thin on purpose; the work is done by the CLI (``python -m ci_migrate``). In order:

1. Settings: action inputs arrive as ``INPUT_<NAME>`` with hyphens kept (``INPUT_SANDBOX-URL``,
   actions/runner ``Handler.AddInputsToEnvironment``; only Python, not a POSIX shell, can read
   those) and, through action.yml's ``runs.env``, as ``CI_MIGRATE_*``: the names that also work
   under plain ``docker run -e``. A non-empty ``CI_MIGRATE_*`` wins; empty ones are removed
   (GitHub passes unset inputs as ``''``).
2. Workspace: ``GITHUB_WORKSPACE``, else ``CI_MIGRATE_WORKSPACE``, else the working directory
   (``/workspace`` in the image, where ``docker run -v "$PWD:/workspace"`` mounts it), plus
   ``working-directory``; it becomes the cwd, and is never put on this process's ``sys.path``: the
   app is imported by the probe, in the app's own environment, and ``post`` holds a write token on a
   fork's files. git is told it is a ``safe.directory`` (the checkout belongs to another uid than
   the container's root).
3. GitHub: secrets (token, URL passwords) are registered with ``::add-mask::`` first.
4. The app gets an environment of its own: a second venv made with uv at run time
   (``/tmp/ci-migrate-app``), into which its requirements go (``requirements``: ``auto`` =
   requirements.txt, else pyproject.toml's dependencies; a failure names the package). An app that
   declares none gets the default stack (current Flask, Flask-SQLAlchemy, Flask-Migrate and the
   PostgreSQL/MySQL drivers), and the log says so. ci-migrate stays in its own venv (/opt/venv) and
   runs the app's code in that second one (``CI_MIGRATE_PYTHON``). Then ``pre-command`` runs
   (``bash -eo pipefail -c``) with the app's venv activated. None of this happens for ``post``,
   which runs with secrets on a ``workflow_run`` and must never execute pull-request code. A
   ``CI_MIGRATE_PYTHON`` given by the user is used as it is.
5. The CLI runs in this process (``runpy``, exactly ``python -m ci_migrate``); its exit code is
   ours (0 pass, 1 findings, 2 usage/config, 3 environment).
6. No root-owned files are left in the workspace: nothing writes bytecode
   (``PYTHONDONTWRITEBYTECODE``), and whatever this run created there (the report asked for,
   build leftovers of the user's own requirements) is chowned to the workspace's owner
   (actions/runner#434).

Exit codes of its own: 2 for a bad input, 3 when the requirements or pre-command fail.
"""

from __future__ import annotations

import os
import re
import runpy
import shutil
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from pathlib import Path

from ci_migrate.masking import TOKEN_VARIABLES, passwords_in, secret_forms

#: action input -> environment variable (action.yml's runs.env maps the same way).
INPUTS = {
    "command": "CI_MIGRATE_COMMAND",
    "config": "CI_MIGRATE_CONFIG",
    "app": "CI_MIGRATE_APP",
    "migrations": "CI_MIGRATE_MIGRATIONS",
    "working-directory": "CI_MIGRATE_WORKING_DIRECTORY",
    "sandbox-url": "CI_MIGRATE_SANDBOX",
    "target": "CI_MIGRATE_TARGET",
    "requirements": "CI_MIGRATE_REQUIREMENTS",
    "pre-command": "CI_MIGRATE_PRE_COMMAND",
    "comment": "CI_MIGRATE_COMMENT",
    "fail-on": "CI_MIGRATE_FAIL_ON",
    "github-token": "GITHUB_TOKEN",
    "report-path": "CI_MIGRATE_OUTPUT",
    "cache-dir": "CI_MIGRATE_CACHE_DIR",
}
#: Variables only this script reads; removed before the CLI runs.
OWN = ("CI_MIGRATE_COMMAND", "CI_MIGRATE_WORKING_DIRECTORY", "CI_MIGRATE_REQUIREMENTS",
       "CI_MIGRATE_PRE_COMMAND", "CI_MIGRATE_WORKSPACE")
COMMANDS = ("check", "plan", "apply", "post")
#: Commands that import the user's app, so need its requirements and pre-command.
APP_COMMANDS = ("check", "plan", "apply")
_INFO_FLAGS = {"-h", "--help", "-V", "--version"}
#: What an app that declares no requirements gets in its environment.
DEFAULT_STACK = ("Flask", "Flask-SQLAlchemy", "Flask-Migrate", "psycopg[binary]", "PyMySQL", "python-dotenv")
APP_VENV = Path("/tmp/ci-migrate-app")
_NAME = r"[A-Za-z0-9][A-Za-z0-9._-]*(?:\[[^\]]*\])?"


class Stop(Exception):
    """A problem this script reports itself: ``message`` and the exit ``code``."""

    def __init__(self, message: str, code: int, title: str = "ci-migrate") -> None:
        super().__init__(message)
        self.code, self.title = code, title


# ------------------------------------------------------------------ settings


def apply_inputs(env: MutableMapping[str, str]) -> None:
    """Fill ``CI_MIGRATE_*`` (and ``GITHUB_TOKEN``) from ``INPUT_*`` where not set; drop empty ones.

    ``INPUT_SANDBOX-URL`` is what the runner exports; ``INPUT_SANDBOX_URL`` is accepted too.
    """
    for name, var in INPUTS.items():
        if env.get(var, "").strip():
            continue
        upper = name.upper()
        value = env.get(f"INPUT_{upper}") or env.get(f"INPUT_{upper.replace('-', '_')}") or ""
        if value.strip():
            env[var] = value.strip() if var != "CI_MIGRATE_PRE_COMMAND" else value
    for var in [v for v in env if v.startswith("CI_MIGRATE_") and not env[v].strip()]:
        del env[var]


def cli_args(argv: Sequence[str], env: Mapping[str, str]) -> list[str]:
    """Arguments for the CLI: ``argv`` when given (``docker run IMAGE check --fail-on warning``),
    else the ``command`` input (default ``check``), with the flags that command requires:
    ``--target`` (``target``) for plan/apply, ``--report`` (``report-path``) for post."""
    if argv:
        return list(argv)
    command = env.get("CI_MIGRATE_COMMAND", "check").strip().lower()
    if command not in COMMANDS:
        raise Stop(f"command: expected one of {', '.join(COMMANDS)}, got {command!r}", 2)
    if command in ("plan", "apply"):
        if not env.get("CI_MIGRATE_TARGET"):
            raise Stop(f"target: `{command}` needs a target, a name from `targets:` in .ci-migrate.yml", 2)
        return [command, "--target", env["CI_MIGRATE_TARGET"]]
    if command == "post":
        if not env.get("CI_MIGRATE_OUTPUT"):
            raise Stop("report-path: `post` publishes a saved report; set report-path to the JSON file "
                       "that `check` wrote", 2)
        return [command, "--report", env["CI_MIGRATE_OUTPUT"]]
    return [command]


def needs_app(args: Sequence[str]) -> bool:
    """True when the CLI will import the user's app (``check``/``plan``/``apply``, not ``--help``)."""
    positional = [a for a in args if not a.startswith("-")]
    return bool(positional) and positional[0] in APP_COMMANDS and not _INFO_FLAGS & set(args)


def workspace(env: Mapping[str, str], cwd: Path) -> tuple[Path, Path]:
    """``(root, workdir)``: the checkout and the directory to run in (root + ``working-directory``)."""
    root = cwd
    for var in ("GITHUB_WORKSPACE", "CI_MIGRATE_WORKSPACE"):
        if env.get(var):
            if Path(env[var]).is_dir():
                root = Path(env[var])
                break
            log(f"warning: {var}={env[var]} is not a directory; using {cwd}")
    sub = env.get("CI_MIGRATE_WORKING_DIRECTORY", ".")
    workdir = (root / sub).resolve()
    if not workdir.is_dir():
        raise Stop(f"working-directory: {sub!r} is not a directory in the workspace {root}", 2)
    return root.resolve(), workdir


def secrets(env: Mapping[str, str]) -> list[str]:
    """Values to mask: the CI tokens and the password of every URL in any variable, raw and
    percent-decoded, none shorter than ``MIN_SECRET_LENGTH`` (ci_migrate.masking)."""
    found = [env.get(name, "") for name in TOKEN_VARIABLES]
    for value in env.values():
        found += passwords_in(value)
    return secret_forms(found)


def add_safe_directory(paths: Sequence[Path], env: Mapping[str, str]) -> None:
    """``git config --global --add safe.directory`` for each path (git refuses another uid's
    checkout: "detected dubious ownership"). Without git in the image, the line is written to
    ``~/.gitconfig`` directly, for a git a pre-command may install."""
    wanted = [str(p) for p in dict.fromkeys(paths)]
    git = shutil.which("git")
    if git:
        have = subprocess.run([git, "config", "--global", "--get-all", "safe.directory"],
                              capture_output=True, text=True, check=False).stdout.split("\n")
        for path in wanted:
            if path not in have:
                subprocess.run([git, "config", "--global", "--add", "safe.directory", path],
                               check=False, capture_output=True)
        return
    config = Path(env.get("HOME") or Path.home()) / ".gitconfig"
    text = config.read_text(encoding="utf-8") if config.exists() else ""
    lines = "".join(f"\tdirectory = {p}\n" for p in wanted if f"directory = {p}\n" not in text)
    if lines:
        config.parent.mkdir(parents=True, exist_ok=True)
        with config.open("a", encoding="utf-8") as fh:
            fh.write(f"[safe]\n{lines}")


def index_env(env: MutableMapping[str, str]) -> None:
    """Let uv reach the index the way pip is told to (``PIP_INDEX_URL`` & co. -> ``UV_*``), and use
    the image's extra CA bundle (build arg ``EXTRA_CA_CERTS``) when there is one."""
    for pip_var, uv_var in (("PIP_INDEX_URL", "UV_INDEX_URL"), ("PIP_EXTRA_INDEX_URL", "UV_EXTRA_INDEX_URL"),
                            ("PIP_TRUSTED_HOST", "UV_INSECURE_HOST"), ("PIP_CERT", "SSL_CERT_FILE")):
        if env.get(pip_var) and not env.get(uv_var):
            env[uv_var] = env[pip_var]
    bundle = Path(sys.prefix) / "ssl" / "ca-bundle.pem"
    if bundle.is_file() and not env.get("SSL_CERT_FILE"):
        env["SSL_CERT_FILE"] = str(bundle)


# ------------------------------------------------------------------ requirements


def requirement_args(spec: str, workdir: Path) -> list[str] | None:
    """``uv pip install`` arguments for the ``requirements`` input.

    ``auto`` (default): ``requirements.txt`` if present, else ``pyproject.toml``'s dependencies
    (``-r pyproject.toml``: the app itself is imported from the checkout, not installed), else
    nothing found (``[]``). ``none``/``false``: install nothing (None). Otherwise a list (spaces,
    commas or lines) of requirement files (``-r``), project directories (installed) and requirement
    specifiers.
    """
    spec = spec.strip()
    if spec.lower() in ("none", "false", "no", "off"):
        return None
    if spec.lower() in ("", "auto"):
        for name in ("requirements.txt", "pyproject.toml"):
            if (workdir / name).is_file():
                return ["-r", name]
        return []
    args: list[str] = []
    for item in filter(None, re.split(r"[\s,]+", spec)):
        path = workdir / item
        if path.is_file():
            args += ["-r", item]
        elif path.is_dir():
            args.append(item if "/" in item or item == "." else f"./{item}")
        elif item.endswith((".txt", ".in", ".toml")):
            raise Stop(f"requirements: file {item!r} not found in {workdir}", 2)
        else:
            args.append(item)
    return args


def failed_package(output: str) -> str | None:
    """The package uv names in a failed install's output, or None."""
    patterns = (
        rf"Failed to (?:build|download|install|prepare distributions for|fetch|resolve)[^`]*`({_NAME})",
        rf"Because ({_NAME})\S* was not found in the package registry",
        rf"Because there (?:is|are) no versions? of ({_NAME})",
        rf"Because ({_NAME})\S* (?:was|were) not found",
        rf"No (?:matching )?(?:distribution|version)s? (?:found )?for ({_NAME})",
        rf"({_NAME}) (?:was not found|not found in the package registry)",
        rf"Failed to fetch: \S*/simple/({_NAME})/",
    )
    for pattern in patterns:
        match = re.search(pattern, output)
        if match:
            return match.group(1)
    return None


def failure_reason(output: str) -> str:
    """A one-line reason from uv's output: its ``error:`` line, plus the exception a build raised
    or uv's last ``cause:``/``hint``-free detail line."""
    lines = [ln.strip() for ln in output.splitlines() if ln.strip()]
    error = next((ln[len("error:"):].strip() for ln in lines if ln.startswith("error:")), "")
    detail = next((ln for ln in reversed(lines) if re.match(r"^[A-Za-z_.]*(Error|Exception): ", ln)), "")
    if not detail:
        causes = [ln[len("cause:"):].strip() for ln in lines if ln.startswith("cause:")]
        detail = causes[-1] if causes else ""
    return " — ".join(p for p in (error, detail) if p) or (lines[-1] if lines else "no output")


def app_environment(args: list[str] | None, workdir: Path, run: Callable[..., tuple[int, str]],
                    venv: Path = APP_VENV) -> Path:
    """Make the app's own venv with uv (``uv venv --seed``, on the image's Python) and install the
    app's requirements there — the default stack when none are found, nothing for ``None``
    (``requirements: none``). Returns its Python. ``Stop(code 3)`` naming the package when an
    install fails."""
    uv = _uv()
    python = venv / "bin" / "python"
    if not python.is_file():
        code, output = run([uv, "venv", "--seed", "--quiet", "--python", sys.executable, str(venv)], workdir)
        if code:
            raise Stop(f"making the app's environment ({venv}) failed: {failure_reason(output)}", 3,
                       title="ci-migrate: could not make the app's environment")
    if args is None:
        log(f"requirements: none; the app's environment ({venv}) starts empty (install with pre-command)")
        return python
    if not args:
        log("requirements: none found (requirements.txt / pyproject.toml); installing the default stack "
            f"into the app's environment: {' '.join(DEFAULT_STACK)}")
        args = list(DEFAULT_STACK)
    install_requirements(args, workdir, run, python)
    return python


def _uv() -> str:
    """uv: on PATH (the image), else beside this Python (a venv's bin/)."""
    beside = Path(sys.executable).parent / "uv"
    return shutil.which("uv") or (str(beside) if beside.is_file() else "uv")


def install_requirements(args: list[str], workdir: Path, run: Callable[..., tuple[int, str]], python: Path) -> None:
    """``uv pip install`` into the app's venv (``python``); ``Stop(code 3)`` naming the package on failure."""
    command = [_uv(), "pip", "install", "--python", str(python), *args]
    with group(f"Installing the app's requirements into {python.parent.parent}: uv pip install {' '.join(args)}"):
        code, output = run(command, workdir)
    if code:
        package = failed_package(output)
        what = f"package {package!r}" if package else "a requirement"
        raise Stop(f"installing the app's requirements ({' '.join(args)}) failed on {what}: "
                   f"{failure_reason(output)}\nFix the requirement, or set `requirements: none` and "
                   "install what the app needs with `pre-command`.", 3,
                   title=f"ci-migrate: could not install {package or 'the requirements'}")


def run_pre_command(command: str, workdir: Path, run: Callable[..., tuple[int, str]]) -> None:
    """Run the ``pre-command`` input in ``workdir`` (with the app's venv activated by the caller's
    environment); ``Stop(code 3)`` when it fails."""
    if not command.strip():
        return
    shell = ["bash", "-eo", "pipefail", "-c"] if shutil.which("bash") else ["sh", "-ec"]
    with group("pre-command"):
        code, _ = run([*shell, command], workdir)
    if code:
        raise Stop(f"pre-command exited with code {code}", 3, title="ci-migrate: pre-command failed")


def activate(env: MutableMapping[str, str], venv: Path) -> None:
    """The app's venv for what runs next: ``CI_MIGRATE_PYTHON`` (the probe's interpreter) and, for
    ``pre-command``, ``VIRTUAL_ENV`` and ``PATH`` (its ``pip`` installs there)."""
    env["CI_MIGRATE_PYTHON"] = str(venv / "bin" / "python")
    env["VIRTUAL_ENV"] = str(venv)
    env["PATH"] = f"{venv / 'bin'}{os.pathsep}{env.get('PATH', '')}"


def stream(command: list[str], cwd: Path) -> tuple[int, str]:
    """Run ``command``, echoing its output to stderr; ``(exit code, last 200 lines)``."""
    env = {**os.environ, "NO_COLOR": "1", "UV_NO_PROGRESS": "1"}
    try:
        proc = subprocess.Popen(command, cwd=cwd, env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.STDOUT, text=True, errors="replace")
    except OSError as exc:
        return 127, f"{command[0]}: {exc}"
    tail: deque[str] = deque(maxlen=200)
    try:
        assert proc.stdout is not None
        for line in proc.stdout:
            sys.stderr.write(line)
            tail.append(line)
        return proc.wait(), "".join(tail)
    finally:
        if proc.poll() is None:
            proc.kill()


# ------------------------------------------------------------------ files


def snapshot(root: Path) -> set[str]:
    """Relative paths under ``root`` (``.git`` left out)."""
    found: set[str] = set()
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if d != ".git"]
        rel = os.path.relpath(dirpath, root)
        found.update(os.path.normpath(os.path.join(rel, n)) for n in dirnames + filenames)
    return found


def foreign(root: Path) -> bool:
    """True when ``root`` belongs to another user than us (a runner's checkout, seen as root)."""
    try:
        return hasattr(os, "geteuid") and root.stat().st_uid != os.geteuid()
    except OSError:
        return False


def give_back(root: Path, before: set[str]) -> list[str]:
    """Chown what this run created under ``root`` to ``root``'s owner (when that is not us)."""
    if not foreign(root):
        return []
    st = root.stat()
    changed = []
    for rel in sorted(snapshot(root) - before):
        path = root / rel
        try:
            if path.lstat().st_uid != st.st_uid:
                os.lchown(path, st.st_uid, st.st_gid)
                changed.append(rel)
        except OSError as exc:
            log(f"warning: could not chown {path}: {exc}")
    return changed


# ------------------------------------------------------------------ output


def on_github(env: Mapping[str, str] = os.environ) -> bool:
    return env.get("GITHUB_ACTIONS") == "true"


def log(message: str) -> None:
    print(f"ci-migrate: {message}", file=sys.stderr, flush=True)


def _escape(value: str, prop: bool = False) -> str:
    value = value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")
    return value.replace(":", "%3A").replace(",", "%2C") if prop else value


def workflow_command(name: str, message: str, **props: str) -> None:
    given = ",".join(f"{k}={_escape(v, True)}" for k, v in props.items())
    print(f"::{name}{' ' + given if given else ''}::{_escape(message)}", flush=True)


class group:
    """A collapsible ``::group::`` in the GitHub log; a plain header elsewhere."""

    def __init__(self, title: str) -> None:
        self.title = title

    def __enter__(self) -> None:
        if on_github():
            workflow_command("group", self.title)
        else:
            log(self.title)

    def __exit__(self, *exc: object) -> None:
        if on_github():
            print("::endgroup::", flush=True)


def report_stop(stop: Stop) -> None:
    if on_github():
        workflow_command("error", str(stop), title=stop.title)
    print(f"error: {stop}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------ main


def run_cli(args: list[str]) -> int:
    """``python -m ci_migrate ARGS`` in this process; its exit code."""
    sys.argv = ["ci-migrate", *args]
    try:
        runpy.run_module("ci_migrate", run_name="__main__", alter_sys=True)
    except SystemExit as exc:
        if exc.code is None or isinstance(exc.code, int):
            return exc.code or 0
        print(exc.code, file=sys.stderr)
        return 1
    return 0


def _terminate(signum: int, frame: object) -> None:
    # PID 1 ignores SIGTERM unless it has a handler: exit through `finally` blocks instead,
    # so sandbox databases are dropped when the job is cancelled.
    raise SystemExit(128 + signum)


def main(argv: Sequence[str] | None = None) -> int:
    env = os.environ
    if sys.path and os.path.abspath(sys.path[0] or ".") == os.path.dirname(os.path.abspath(__file__)):
        del sys.path[0]  # python put /app there
    sys.dont_write_bytecode = True
    env["PYTHONDONTWRITEBYTECODE"] = "1"
    signal.signal(signal.SIGTERM, _terminate)
    apply_inputs(env)
    if on_github():
        for secret in secrets(env):
            workflow_command("add-mask", secret)
    before: set[str] = set()
    root = None
    try:
        args = cli_args(sys.argv[1:] if argv is None else argv, env)
        root, workdir = workspace(env, Path.cwd())
        before = snapshot(root) if foreign(root) else set()
        if needs_app(args) and not any(root.iterdir()):
            log(f"warning: the workspace {root} is empty; mount the repository there "
                '(docker run -v "$PWD:/workspace" …) or set working-directory')
        add_safe_directory([root, workdir], env)
        index_env(env)
        os.chdir(workdir)
        settings = {v: env.pop(v) for v in OWN if v in env}
        if needs_app(args):
            if not env.get("CI_MIGRATE_PYTHON"):
                spec = settings.get("CI_MIGRATE_REQUIREMENTS", "auto")
                python = app_environment(requirement_args(spec, workdir), workdir, stream)
                activate(env, python.parent.parent)
            run_pre_command(settings.get("CI_MIGRATE_PRE_COMMAND", ""), workdir, stream)
        return run_cli(args)
    except Stop as stop:
        report_stop(stop)
        return stop.code
    finally:
        if root is not None:
            give_back(root, before)


if __name__ == "__main__":
    sys.exit(main())
