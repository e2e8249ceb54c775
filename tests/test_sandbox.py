"""Sandbox databases: always dropped, refused when pointing at a target, clear errors, no passwords."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import time

import pytest

from support import clean_env, copy_app, left_behind, sandbox_databases

PASSWORD = "s3cret-Pw-91"  # trust auth accepts any password; it must never be printed


@pytest.fixture
def clean_app(tmp_path):
    return copy_app("clean", tmp_path)


APP = ["--app", "blogapp:create_app('testing')"]


def test_password_never_printed(cli, clean_app, pg_server):
    url = pg_server.replace("postgres@", f"postgres:{PASSWORD}@")
    result = cli("check", *APP, "--sandbox", url, cwd=clean_app)
    assert result.code == 0, result.text
    assert PASSWORD not in result.text
    assert "postgres:***@127.0.0.1" in result.out
    # The header names no driver: the app connects with its own (psycopg2 or psycopg), not the host's.
    assert "sandbox postgresql://postgres:***@127.0.0.1:5432/ci_migrate_" in result.out.splitlines()[0]
    result = cli("check", *APP, "--sandbox", url, "--format", "json", cwd=clean_app)
    assert PASSWORD not in result.text
    assert re.match(r"postgresql://postgres:\*\*\*@", json.loads(result.out)["sandbox"]["url"])


def test_password_from_env_var(cli, clean_app, pg_server):
    (clean_app / ".ci-migrate.yml").write_text(
        f"app: \"blogapp:create_app('testing')\"\nsandbox: {pg_server}\nsandbox-password-env: SANDBOX_PW\n")
    result = cli("check", cwd=clean_app, env={"SANDBOX_PW": PASSWORD})
    assert result.code == 0, result.text
    assert PASSWORD not in result.text and "postgres:***@" in result.out


@pytest.mark.parametrize("url, where", [
    ("postgresql://postgres:pw@127.0.0.1:1/", "127.0.0.1:1"),
    ("mysql+pymysql://root:pw@127.0.0.1:1/", "127.0.0.1:1"),
])
def test_unreachable_server_is_an_environment_error(cli, clean_app, url, where):
    result = cli("check", *APP, "--sandbox", url, cwd=clean_app)
    assert result.code == 3, result.text
    assert f"Cannot connect to the" in result.err and where in result.err
    assert ":pw@" not in result.text and "Check that the server is running" in result.err


def test_wrong_user_on_mysql_names_host_and_user(cli, clean_app, mysql_server):
    url = mysql_server.replace("root@", f"nobody_here:{PASSWORD}@")
    result = cli("check", *APP, "--sandbox", url, cwd=clean_app)
    assert result.code == 3
    assert "127.0.0.1:3306" in result.err and "nobody_here" in result.err and PASSWORD not in result.text


def test_sandbox_pointing_at_a_target_is_refused(cli, clean_app, pg_server):
    (clean_app / ".ci-migrate.yml").write_text(
        "app: \"blogapp:create_app('testing')\"\ntargets:\n  production:\n    url-env: PROD_URL\n")
    result = cli("check", "--sandbox", pg_server + "test", cwd=clean_app,
                 env={"PROD_URL": "postgresql://app:x@localhost:5432/test"})
    assert result.code == 2, result.text
    assert "points at the database of a configured target" in result.err


def test_keep_sandbox_keeps_and_prints_the_url(cli, clean_app, pg_server):
    result = cli("check", *APP, "--sandbox", pg_server, "--keep-sandbox", cwd=clean_app)
    shown = " ".join(result.out.split())
    found = re.search(r"The sandbox was kept: postgresql://postgres@127\.0\.0\.1:5432/(ci_migrate_\w+)", shown)
    name = found.group(1) if found else None
    try:
        assert result.code == 0, result.text
        assert name is not None, result.out
        assert name in sandbox_databases(pg_server)  # other runs share the server: look for ours only
    finally:
        import sqlalchemy as sa

        from ci_migrate.sandbox import normalize_url

        if name is not None:
            engine = sa.create_engine(normalize_url(pg_server + "postgres"), isolation_level="AUTOCOMMIT")
            with engine.connect() as conn:
                conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
            engine.dispose()


def test_sigterm_drops_the_sandbox(clean_app, pg_server, tmp_path):
    """A long replay is interrupted as a runner cancels a job: SIGTERM, then SIGKILL a few seconds
    later. The host stops the probe mid-statement and drops the database within that grace period."""
    versions = clean_app / "migrations" / "versions"
    slow = versions / "ffff00000001_slow.py"
    head = _head(versions)  # a revision on top of the head that sleeps inside the database
    slow.write_text(f'''"""slow data migration"""
from alembic import op
revision = "ffff00000001"
down_revision = "{head}"
def upgrade():
    op.execute("SELECT pg_sleep(30)")
def downgrade():
    pass
''')
    before = set(sandbox_databases(pg_server))
    proc = subprocess.Popen([sys.executable, "-m", "ci_migrate", "check", *APP, "--sandbox", pg_server],
                            cwd=clean_app, env=clean_env(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.time() + 60
    while time.time() < deadline and not (set(sandbox_databases(pg_server)) - before):
        time.sleep(0.2)
    time.sleep(2.0)  # inside the replay now
    proc.send_signal(signal.SIGTERM)
    try:
        out, err = proc.communicate(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, err = proc.communicate()
    assert proc.returncode == 143, (proc.returncode, err)
    assert left_behind(pg_server, before) == set(), err


def _head(versions):
    ids, downs = set(), set()
    for path in versions.glob("*.py"):
        text = path.read_text()
        ids.add(re.search(r"^revision = ['\"](\w+)", text, re.M)[1])
        down = re.search(r"^down_revision = ['\"](\w+)", text, re.M)
        if down:
            downs.add(down[1])
    (head,) = ids - downs
    return head



def test_a_failing_second_bind_database_does_not_leave_the_first_one(mysql_server):
    """MySQL refuses the second bind's database (its name is longer than 64 characters) after the first
    one was made: closing the sandboxes drops the first one too."""
    from ci_migrate.errors import DatabaseError
    from ci_migrate.sandbox import Sandboxes
    from support import SANDBOX_PREFIX

    sandboxes = Sandboxes(mysql_server, prefix=SANDBOX_PREFIX)
    try:
        with pytest.raises(DatabaseError, match="Could not create a sandbox database"):
            sandboxes.create([None, "a" * 60])
        made = [n for s in sandboxes.open.values() for n in s.names]
        assert len(made) == 1 and made[0] in sandbox_databases(mysql_server)
    finally:
        sandboxes.close()
    assert not set(made) & set(sandbox_databases(mysql_server))


class SlowRelay:
    """A TCP relay to the local PostgreSQL that waits ``delay`` seconds before it connects each client:
    a database server that is slow to answer, so that the first sandbox is still being made when
    the app has already failed to load."""

    def __init__(self, port: int, delay: float) -> None:
        import socket
        import threading

        self.port, self.delay = port, delay
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.address = self.listener.getsockname()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        import threading

        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client) -> None:
        import socket
        import threading

        time.sleep(self.delay)
        server = socket.create_connection(("127.0.0.1", self.port))

        def pump(src, dst) -> None:
            try:
                while chunk := src.recv(65536):
                    dst.sendall(chunk)
            except OSError:
                pass
            finally:
                for end in (src, dst):
                    try:
                        end.shutdown(socket.SHUT_RDWR)
                    except OSError:
                        pass

        threading.Thread(target=pump, args=(server, client), daemon=True).start()
        pump(client, server)

    def close(self) -> None:
        self.listener.close()


def test_a_sandbox_still_being_made_when_the_app_fails_to_load_is_dropped(clean_app, pg_server):
    """The first sandbox is made while the app loads; an app that fails to load ends the run before
    the (slow) server has made it. The run waits for it and drops it."""
    relay = SlowRelay(5432, delay=1.5)
    try:
        before = set(sandbox_databases(pg_server))
        server = f"postgresql://postgres@127.0.0.1:{relay.address[1]}/"
        proc = subprocess.run([sys.executable, "-m", "ci_migrate", "check", "--app", "no_such_module:app",
                               "--sandbox", server], cwd=clean_app, env=clean_env(), capture_output=True, text=True,
                              timeout=120)
    finally:
        relay.close()
    assert proc.returncode == 3 and "no_such_module" in proc.stderr, proc.stderr
    assert left_behind(pg_server, before, grace=5.0) == set()
