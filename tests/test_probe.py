"""The probe in the app's own interpreter: old and new stacks in venvs of their own, imports, exits,
loops, kills, prune.

The app environments are real venvs built with uv (tests/venvs.py): the oldest stack on Python 3.9
with pydantic 1 installed in it, the newest on Python 3.13. ci-migrate runs from the tool's venv
(this one) with ``--python`` or an activated ``$VIRTUAL_ENV``.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

import pytest

import venvs
from support import clean_env, copy_app, probe_copy, sandbox_databases

VERSIONS = "migrations/versions/"
CLEAN_THIRD = "bd1b00e93290_add_post_author_id_foreign_key_to_user.py"


def report_of(result):
    assert result.out.strip().startswith("{"), result.text
    return json.loads(result.out)


def findings(report, check=None):
    return [(f["rule_id"], f["revision"]) for c in report["checks"] if check in (None, c["name"])
            for f in c["findings"]]


def clean_app(tmp_path: Path) -> tuple[Path, dict[str, str]]:
    """The `clean` fixture app, with its own database variable naming a file that must never appear."""
    app = copy_app("clean", tmp_path)
    return app, {"DATABASE_URL": f"sqlite:///{tmp_path / 'production.db'}"}


# --------------------------------------------------------------------------- real stacks


@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
def test_oldest_stack_in_an_activated_venv_passes_and_installs_nothing(cli, tmp_path, server):
    """A project whose activated venv pins pydantic 1, SQLAlchemy 1.4, Flask-SQLAlchemy 2.5 and
    Flask-Migrate 2.5 on Python 3.9; ci-migrate runs from its own venv."""
    python = venvs.venv(venvs.OLDEST)
    before = venvs.freeze(python)
    app, env = clean_app(tmp_path)
    result = cli("check", "--sandbox", server, cwd=app, env={**env, "VIRTUAL_ENV": str(python.parent.parent)})
    assert result.code == 0, result.text
    header = result.out.splitlines()[1]
    assert header.startswith(f"python {python} ($VIRTUAL_ENV) · Python 3.9."), header
    assert "SQLAlchemy 1.4.54" in result.out and "Flask-Migrate 2.5.3" in result.out
    assert venvs.freeze(python) == before
    assert not (tmp_path / "production.db").exists()


@pytest.mark.parametrize("stack", [venvs.OLDEST, venvs.NEWEST], ids=lambda s: s.name)
@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
def test_pull_request_run_on_each_stack(cli, tmp_path, server, stack):
    """The whole PR flow — replay, plan, lint, locks, round trip — through the probe on Python 3.9 and 3.13,
    twice: the second run restores the base from the cached snapshot and finds the same."""
    from test_plan import RISKY_BASE, pr_repo

    python = venvs.venv(stack)
    repo = pr_repo(tmp_path, "risky", RISKY_BASE)
    env = {"DATABASE_URL": f"sqlite:///{tmp_path / 'production.db'}", "CI_MIGRATE_CACHE_DIR": str(tmp_path / "cache")}
    runs = [cli("check", "--python", str(python), "--sandbox", server, "--base", "main", "--format", "json",
                cwd=repo, env=env) for _ in range(2)]
    cold, warm = (report_of(r) for r in runs)
    assert [next(c for c in r["checks"] if c["name"] == "replay")["facts"]["cache"]["state"] for r in (cold, warm)] \
        == ["built", "restored"]
    assert findings(warm) == findings(cold) and runs[1].code == runs[0].code
    result, report = runs[0], cold
    assert report["interpreter"]["path"] == str(python) and report["interpreter"]["source"] == "--python"
    assert report["interpreter"]["python"].startswith(stack.python + ".")
    assert result.code == 1, result.text
    rules = {r for r, _ in findings(report, "lint")}
    assert {"CM502", "CM504", "CM507"} <= rules, rules
    assert {c["name"]: c["status"] for c in report["checks"]}["replay"] == "passed"
    assert [s["revision"] for s in next(c for c in report["checks"] if c["name"] == "locks")["facts"]["revisions"]] \
        == ["c18d439fc80f", "3aff0bf00a12", "537e5de07cd4"]
    assert not (tmp_path / "production.db").exists()


@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
def test_an_alchemical_app_runs_on_the_sandbox(cli, tmp_path, server):
    """An app on Alchemical instead of Flask-SQLAlchemy (env.py takes ``db.get_engine()``): its engine
    is pointed at the sandbox like Flask-SQLAlchemy's, so the pull-request flow runs there — replay,
    lint, drift, locks, round trip — and a model change without a revision is drift."""
    from test_plan import pr_repo

    python = venvs.venv(venvs.ALCHEMICAL)
    repo = pr_repo(tmp_path, "alchemical", ["05474b56cf2b"])
    env = {"DATABASE_URL": server + "never_connected"}  # the app's own database: it does not even exist
    args = ("check", "--python", str(python), "--app", "app:create_app()", "--sandbox", server, "--base", "main",
            "--format", "json")
    result = cli(*args, cwd=repo, env=env)
    report = report_of(result)
    assert result.code == 1, result.text
    assert report["interpreter"]["packages"]["alchemical"] == "1.0.3"
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses["replay"] == statuses["drift"] == statuses["roundtrip"] == "passed", statuses
    assert findings(report, "lint") == [("CM504", "c2a9af948cd7")]
    (traced,) = next(c for c in report["checks"] if c["name"] == "locks")["facts"]["revisions"]
    assert traced["revision"] == "c2a9af948cd7" and traced["statements"] == 1
    app = repo / "app.py"
    app.write_text(app.read_text().replace("    body: Mapped[str] = mapped_column(sa.Text)\n", (
        "    body: Mapped[str] = mapped_column(sa.Text)\n"
        "    pinned: Mapped[bool] = mapped_column(default=False)\n")))
    report = report_of(cli(*args, cwd=repo, env=env))
    (drift,) = findings(report, "drift")
    assert drift[0] == "CM301"
    assert "adds column `note.pinned` BOOLEAN" in next(c for c in report["checks"] if c["name"] == "drift")["summary"]


@pytest.mark.parametrize("stack", [venvs.OLDEST, venvs.NEWEST], ids=lambda s: s.name)
def test_pool_options_for_the_production_server_do_not_reach_the_sqlite_sandbox(cli, tmp_path, stack):
    """An app that sets SQLALCHEMY_ENGINE_OPTIONS for its server database (max_overflow, which SQLAlchemy 1.4
    refuses for SQLite's NullPool): the app's engine is never built for the sandbox, so the replay runs."""
    app = copy_app("tutorial_drift", tmp_path)
    source = (app / "app.py").read_text()
    (app / "app.py").write_text(source.replace("db = SQLAlchemy(app)", (
        "if not app.config['SQLALCHEMY_DATABASE_URI'].startswith('sqlite'):\n"
        "    app.config['SQLALCHEMY_ENGINE_OPTIONS'] = {'max_overflow': 20, 'pool_pre_ping': True}\n\n"
        "db = SQLAlchemy(app)")))
    result = cli("check", "--python", str(venvs.venv(stack)), "--format", "json", cwd=app,
                 env={"DATABASE_URL": "postgresql://postgres@127.0.0.1:9/production"})
    report = report_of(result)
    assert result.code == 1, result.text
    assert {c["name"]: c["status"] for c in report["checks"]}["replay"] == "passed"
    assert findings(report) == [("CM204", None), ("CM301", None)]


def test_the_probe_imports_nothing_of_the_tool(tmp_path):
    """Every module the probe process imported comes from the app's venv, the standard library of
    its Python, or the probe's own private copy — never from ci-migrate's environment. pydantic 1 is
    installed in the app's venv, and the probe never touches it."""
    from ci_migrate.probe import PROTOCOL
    from ci_migrate.probe_process import ProbeProcess

    python = venvs.venv(venvs.OLDEST)
    app, env = clean_app(tmp_path)
    probe = ProbeProcess(python=str(python), root=app, env=clean_env(env)).start()
    try:
        probe.call("load", protocol=PROTOCOL, root=str(app), app=None, migrations=None, sandbox_dialect="sqlite")
        probe.call("scan")
        probe.call("sandbox", id=1, dialect="sqlite", urls={"": f"sqlite:///{tmp_path / 'sandbox.db'}"})
        replay = probe.call("replay", record=["9458ded74214"])
        assert replay["failure"] is None and replay["recorded"]["9458ded74214"]["ops"]
        assert probe.call("drift", ignore={})["binds"][0]["tables"] == []
        private = probe._tmp
    finally:
        modules = probe.close(modules=True)
    assert modules, "the probe did not report its modules"
    out = subprocess.run([str(python), "-c", "import sys, sysconfig; print(sys.base_prefix); "
                          "print(sysconfig.get_paths()['purelib'])"], capture_output=True, text=True, check=True)
    base_prefix, app_site = out.stdout.split()
    allowed = (os.path.realpath(base_prefix), os.path.realpath(app_site), os.path.realpath(private),
               os.path.realpath(app))  # the app's own code
    tool_site = os.path.realpath(sysconfig.get_paths()["purelib"])
    foreign = [m for m in modules if m["file"] and not m["file"].startswith(allowed)]
    assert not foreign, foreign
    assert not [m for m in modules if m["file"].startswith(tool_site)]
    names = {m["name"] for m in modules}
    assert {"flask", "flask_migrate", "alembic", "sqlalchemy", "ci_migrate_probe"} <= names
    assert not names & {"pydantic", "rich", "ci_migrate", "yaml", "github", "gitlab", "jinja2_time"}


def test_below_the_floor_is_an_environment_error(cli, tmp_path):
    python = venvs.venv(venvs.TOO_OLD)
    app, env = clean_app(tmp_path)
    result = cli("check", "--python", str(python), cwd=app, env=env)
    assert result.code == 3, result.text
    assert result.err.startswith(f"error: SQLAlchemy 1.3.24 is installed in {python}, but ci-migrate supports "
                                 "SQLAlchemy >= 1.4."), result.err
    assert "Traceback" not in result.text


def test_missing_driver_names_the_package_to_install(cli, tmp_path, pg_server):
    python = venvs.venv(venvs.NO_DRIVER)
    app, env = clean_app(tmp_path)
    result = cli("check", "--python", str(python), "--sandbox", pg_server, cwd=app, env=env)
    assert result.code == 3, result.text
    assert f"The sandbox is postgresql, but the app's environment ({python}) has no postgresql driver." in result.err
    assert "Install psycopg[binary] or psycopg2-binary there" in result.err and "Traceback" not in result.text


def test_an_explicit_python_that_does_not_exist_is_a_usage_error(cli, tmp_path):
    app, env = clean_app(tmp_path)
    result = cli("check", "--python", str(tmp_path / "nope" / "python"), cwd=app, env=env)
    assert result.code == 2 and "--python: " in result.err and "is not an executable Python" in result.err


def test_project_venv_is_found(cli, tmp_path):
    """Without --python or $VIRTUAL_ENV, a .venv/ in the project is the app's interpreter."""
    python = venvs.venv(venvs.NEWEST)
    app, env = clean_app(tmp_path)
    (app / ".venv").symlink_to(python.parent.parent, target_is_directory=True)
    # no python-dotenv in that venv: .flaskenv is not read (as `flask` would not), so the app is named
    result = cli("check", "--format", "json", "--app", "blogapp:create_app('testing')", cwd=app, env=env)
    report = report_of(result)
    assert result.code == 0, result.text
    assert report["interpreter"]["source"] == ".venv/ in the project"
    assert report["interpreter"]["python"].startswith("3.13.")


# --------------------------------------------------------------------------- a run without a verdict fails


def _inject(app: Path, where: str, code: str) -> tuple[str, int]:
    """Put ``code`` at the start of env.py's run_migrations_online() or of the third revision's upgrade();
    returns (file, line)."""
    if where == "env.py":
        path = app / "migrations" / "env.py"
        anchor = "def run_migrations_online():\n"
    else:
        path = app / VERSIONS / CLEAN_THIRD
        anchor = "def upgrade():\n"
    text = path.read_text()
    head, tail = text.split(anchor, 1)
    path.write_text(head + anchor + f"    {code}\n" + tail)
    line = head.count("\n") + 2
    return path.relative_to(app).as_posix(), line


@pytest.mark.parametrize("code", ["import sys; sys.exit(0)", "import os; os._exit(0)"])
@pytest.mark.parametrize("where", ["env.py", "revision"])
@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
def test_migrations_that_exit_never_pass(cli, tmp_path, server, where, code):
    app, env = clean_app(tmp_path)
    file, line = _inject(app, where, code)
    result = cli("check", "--sandbox", server, "--format", "json", cwd=app, env=env)
    report = report_of(result)
    assert result.code == 1, result.text
    assert report["verdict"] == "failed"
    replay = next(c for c in report["checks"] if c["name"] == "replay")
    (finding,) = replay["findings"]
    assert replay["status"] == "error" and finding["rule_id"] == "CM206" and finding["file"] == file
    if where == "revision":
        assert finding["revision"] == "bd1b00e93290"
    if "sys.exit" in code:
        assert finding["line"] == line and "called sys.exit(0)" in finding["title"]
    else:
        assert "ended the process (exit code 0)" in finding["title"]
    assert [c["status"] for c in report["checks"] if c["name"] == "drift"] == ["skipped"]


def test_a_revision_file_that_ends_the_process_at_import_names_the_step_and_shows_its_output(cli, tmp_path):
    """Loading the revision files happens before any check: a file that ends the process there is an
    error of the run (exit 3), with what the app printed last."""
    app, env = clean_app(tmp_path)
    path = app / VERSIONS / CLEAN_THIRD
    path.write_text("import os, sys\nprint('closing down now', file=sys.stderr, flush=True)\nos._exit(4)\n"
                    + path.read_text())
    result = cli("check", "--format", "json", cwd=app, env=env)
    assert result.code == 3, result.text
    assert result.out == ""
    assert result.err == ("error: The app's process exited with code 4 while running "
                          f"{VERSIONS}{CLEAN_THIRD} during scan, before it reported a result.\n  Last lines the app printed:\n    closing down now\n")


def test_a_thread_the_app_starts_does_not_hold_the_run_and_its_atexit_handlers_run(cli, tmp_path):
    """After ``bye`` the probe ends without waiting for a non-daemon thread the app started at import
    (the run is not held until the host gives up on it, BYE_S later); the app's atexit handlers run."""
    from ci_migrate.probe_process import BYE_S

    app, env = clean_app(tmp_path)
    init = app / "blogapp" / "__init__.py"
    init.write_text("import atexit, pathlib, threading, time\n"
                    "threading.Thread(target=time.sleep, args=(600,), name='poller').start()\n"
                    f"atexit.register(pathlib.Path({str(tmp_path / 'exited')!r}).write_text, 'atexit ran')\n"
                    + init.read_text())
    started = time.monotonic()
    result = cli("check", "--format", "json", cwd=app, env=env)
    assert result.code == 0, result.text
    assert time.monotonic() - started < BYE_S
    assert (tmp_path / "exited").read_text() == "atexit ran"


@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
def test_a_looping_revision_times_out(cli, tmp_path, server):
    app, env = clean_app(tmp_path)
    file, line = _inject(app, "revision", "while True: pass")
    started = time.monotonic()
    result = cli("check", "--sandbox", server, "--timeout", "4", "--format", "json", cwd=app, env=env)
    assert time.monotonic() - started < 40
    report = report_of(result)
    assert result.code == 1, result.text
    (finding,) = next(c for c in report["checks"] if c["name"] == "replay")["findings"]
    assert finding["rule_id"] == "CM207" and finding["revision"] == "bd1b00e93290" and finding["file"] == file
    assert finding["title"] == f"timed out while running revision bd1b00e93290 ({file})"


def _children(pid: int) -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if int(stat.rsplit(")", 1)[1].split()[1]) == pid:
                found.append(int(entry.name))
    return found


def _sleeping_run(tmp_path: Path, server: str) -> tuple[subprocess.Popen, Path]:
    """``ci-migrate check`` whose third revision writes a marker and sleeps."""
    app, env = clean_app(tmp_path)
    marker = tmp_path / "running"
    _inject(app, "revision", f"open({str(marker)!r}, 'w').close(); import time; time.sleep(120)")
    proc = subprocess.Popen([sys.executable, "-m", "ci_migrate", "check", "--sandbox", server, "--format", "json"],
                            cwd=app, env=clean_env(env), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    for _ in range(300):
        if marker.exists():
            return proc, marker
        time.sleep(0.1)
    proc.kill()
    pytest.fail("the revision never started: " + proc.communicate()[1])


@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
def test_a_killed_probe_is_a_failure_and_the_sandbox_is_dropped(tmp_path, server):
    proc, _marker = _sleeping_run(tmp_path, server)
    (probe,) = _children(proc.pid)
    os.kill(probe, signal.SIGKILL)
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 1, err
    (finding,) = next(c for c in json.loads(out)["checks"] if c["name"] == "replay")["findings"]
    assert finding["rule_id"] == "CM206" and finding["revision"] == "bd1b00e93290"
    assert "was killed by signal 9" in finding["title"]


@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
def test_a_killed_host_stops_the_probe_and_prune_drops_what_is_left(cli, tmp_path, server):
    proc, _marker = _sleeping_run(tmp_path, server)
    (probe,) = _children(proc.pid)
    copy = probe_copy(Path(f"/proc/{probe}/cmdline").read_text())
    assert Path(copy).is_dir()
    long_ago = time.time() - 3 * 86400
    os.utime(copy, (long_ago, long_ago))
    pruned = cli("prune", "--sandbox", "sqlite", "--older-than", "1h", cwd=tmp_path)
    assert pruned.code == 0 and str(copy) not in pruned.out, pruned.text
    assert Path(copy, "ci_migrate_probe").is_dir(), "prune removed the copy of a run that is alive"
    left = sandbox_databases(server)
    assert left, "the sandbox should exist while the revision runs"
    proc.kill()
    proc.wait(timeout=30)
    for _ in range(100):  # the probe notices its host is gone (stdin closed) and ends
        if not Path(f"/proc/{probe}").exists() or "zombie" in _state(probe):
            break
        time.sleep(0.1)
    else:
        pytest.fail("the probe outlived its host")
    assert not Path(copy).exists(), "the probe's private copy outlived the run"
    assert set(left) <= set(sandbox_databases(server))  # a killed host cannot drop anything...
    time.sleep(1)
    result = cli("prune", "--sandbox", server, "--older-than", "0s", cwd=tmp_path)
    assert result.code == 0, result.text
    assert all(name in result.out for name in left)
    assert not set(left) & set(sandbox_databases(server))  # ...prune does


def _state(pid: int) -> str:
    try:
        return "zombie" if " Z " in Path(f"/proc/{pid}/stat").read_text() else "alive"
    except OSError:
        return "gone"


def test_prune_drops_only_old_sandboxes_of_its_own_name(cli, tmp_path, pg_server):
    import sqlalchemy as sa

    from ci_migrate.sandbox import normalize_url
    from support import SANDBOX_PREFIX

    old = f"{SANDBOX_PREFIX}_202001010000_0123abcd"
    fresh = f"{SANDBOX_PREFIX}_{time.strftime('%Y%m%d%H%M', time.gmtime())}_0123abcd"
    other = f"{SANDBOX_PREFIX}_keep_me"
    engine = sa.create_engine(normalize_url(pg_server + "postgres"), isolation_level="AUTOCOMMIT")
    try:
        with engine.connect() as conn:
            for name in (old, fresh, other):
                conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
        result = cli("prune", "--sandbox", pg_server, "--older-than", "1h", cwd=tmp_path)
        assert result.code == 0, result.text
        assert result.out.splitlines() == ["dropped 1 sandbox databases older than 1h:", f"  {old}"]
        assert {fresh, other} <= set(sandbox_databases(pg_server)) and old not in sandbox_databases(pg_server)
    finally:
        with engine.connect() as conn:
            for name in (old, fresh, other):
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}"')
        engine.dispose()


def test_prune_clears_old_sqlite_sandbox_directories(cli, tmp_path):
    from support import SANDBOX_PREFIX

    temp = tmp_path / "tmp"
    (temp / f"{SANDBOX_PREFIX}_202001010000_0123abcd").mkdir(parents=True)
    (temp / "unrelated").mkdir()
    result = cli("prune", "--sandbox", "sqlite", "--older-than", "2h", cwd=tmp_path, env={"TMPDIR": str(temp)})
    assert result.code == 0, result.text
    assert sorted(p.name for p in temp.iterdir()) == ["unrelated"]


def test_prune_removes_the_probe_copies_of_killed_runs(cli, tmp_path):
    """A run killed together with its probe (a vanished runner) leaves the probe's private copy;
    prune removes the old ones and leaves a live run's (young) copy and anything else alone."""
    temp = tmp_path / "tmp"
    old, young, other = temp / "ci_migrate_probe_old12345", temp / "ci_migrate_probe_new12345", temp / "ci_migrate_probe_x"
    for directory in (old / "ci_migrate_probe", young / "ci_migrate_probe", other):
        directory.mkdir(parents=True)
    three_hours_ago = time.time() - 3 * 3600
    os.utime(old, (three_hours_ago, three_hours_ago))
    os.utime(other, (three_hours_ago, three_hours_ago))  # not a probe copy: no package inside
    result = cli("prune", "--sandbox", "sqlite", "--older-than", "2h", cwd=tmp_path, env={"TMPDIR": str(temp)})
    assert result.code == 0, result.text
    assert f"removed 1 probe copies older than 2h:\n  {old}" in result.out
    assert sorted(p.name for p in temp.iterdir()) == sorted([other.name, young.name])


@pytest.mark.parametrize("config, kept", [("", False), ("prune-after: off\n", True)])
def test_a_server_check_prunes_sandboxes_older_than_a_day(cli, tmp_path, pg_server, config, kept):
    import sqlalchemy as sa

    from ci_migrate.sandbox import normalize_url
    from support import SANDBOX_PREFIX

    old = f"{SANDBOX_PREFIX}_202001010000_fedcba98"
    engine = sa.create_engine(normalize_url(pg_server + "postgres"), isolation_level="AUTOCOMMIT")
    app, env = clean_app(tmp_path)
    (app / ".ci-migrate.yml").write_text(config + f"sandbox: {pg_server}\n")
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'CREATE DATABASE "{old}"')
        result = cli("check", "--format", "json", cwd=app, env=env)
        assert result.code == 0, result.text
        assert (old in sandbox_databases(pg_server)) == kept
        notes = " ".join(report_of(result)["notes"])
        assert ("older than 24 h left by killed runs" in notes) != kept
    finally:
        with engine.connect() as conn:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{old}"')
        engine.dispose()
