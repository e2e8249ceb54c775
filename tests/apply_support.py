"""Helpers for the ``apply`` tests and bench/stress_apply.py: target databases made per test on
the local servers, setup with the real ``flask db``, and the fault scenarios (each one asserts).

Every scenario takes the server kind ('postgresql' or 'mysql') and a scratch directory, creates its
own ``ci_apply_<random>`` database(s) and drops them afterwards, so a scenario can run many times
in a row (the stress script) or once (the pytest versions).
"""

from __future__ import annotations

import contextlib
import json
import os
import secrets
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, Iterator

from support import MYSQL_SERVER, PG_SERVER, Result, clean_env, copy_app, probe_copy, run_cli

FLASK = str(Path(sys.executable).with_name("flask"))
SLOW = "slow_apply"  # tests/apps/slow_apply: 1a4c867b5838 → 86a2e69763da → b7b5059fb788 → a0ec6250bfad
SLOW_REVS = ["1a4c867b5838", "86a2e69763da", "b7b5059fb788", "a0ec6250bfad"]
INTERRUPTED = "interrupted_apply"  # tests/apps/interrupted_apply: bcd636a358f2 → 5878fb2751bc → 6836fd6b98fe
INTERRUPTED_REVS = ["bcd636a358f2", "5878fb2751bc", "6836fd6b98fe"]
INTERRUPTED_OPS = 7  # operations of 5878fb2751bc, with a kill point (INTERRUPT_APPLY_AT) before and after each
CLEAN_HEAD = "9458ded74214"
CLEAN_APP = "blogapp:create_app('testing')"


def _engine(url: str, **kw: Any) -> Any:
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    from ci_migrate.sandbox import normalize_url

    if sa.__version__.startswith("1."):  # 2.0-style connections (commit/rollback) on SQLAlchemy 1.4 too
        kw.setdefault("future", True)
    return sa.create_engine(normalize_url(url), poolclass=NullPool, **kw)


def server_of(kind: str) -> str:
    return PG_SERVER if kind == "postgresql" else MYSQL_SERVER


@contextlib.contextmanager
def target_database(kind: str) -> Iterator[str]:
    """A fresh ``ci_apply_<random>`` database on the local PostgreSQL or MariaDB; yields its URL."""
    server = server_of(kind)
    name = f"ci_apply_{secrets.token_hex(4)}"
    admin = _engine(server + ("postgres" if kind == "postgresql" else ""), isolation_level="AUTOCOMMIT")
    quote = (lambda n: f'"{n}"') if kind == "postgresql" else (lambda n: f"`{n}`")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {quote(name)}")
    try:
        yield server + name
    finally:
        force = " WITH (FORCE)" if kind == "postgresql" else ""
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quote(name)}{force}")
        admin.dispose()


def app_url(url: str) -> str:
    """The URL with an installed driver, for the app's own DATABASE_URL (flask db)."""
    from ci_migrate.sandbox import normalize_url

    return normalize_url(url).render_as_string(hide_password=False)


def write_config(app_dir: Path, app: str, **target: Any) -> None:
    """``.ci-migrate.yml`` with ``app`` and a target ``production`` (url-env PROD_URL) plus ``target`` keys."""
    lines = [f"app: \"{app}\"", "targets:", "  production:", "    url-env: PROD_URL"]
    for key, value in target.items():
        lines.append(f"    {key.replace('_', '-')}: {json.dumps(value)}")
    (app_dir / ".ci-migrate.yml").write_text("\n".join(lines) + "\n", encoding="utf-8")


def flask_db(app_dir: Path, app: str, url: str, *args: str, extra_env: dict[str, str] | None = None) -> None:
    """Run the real ``flask db ARGS`` against ``url`` (how a database gets to the middle of a history)."""
    env = clean_env({"DATABASE_URL": app_url(url), "FLASK_APP": app, **(extra_env or {})})
    proc = subprocess.run([FLASK, "db", *args], cwd=app_dir, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]


def apply(app_dir: Path, url: str, *args: str, env: dict[str, str] | None = None) -> tuple[Result, dict]:
    """``ci-migrate apply --target production --format json ARGS``; returns (result, report)."""
    result = run_cli("apply", "--target", "production", "--format", "json", *args, cwd=app_dir,
                     env={"PROD_URL": url, **(env or {})})
    assert result.out.strip().startswith("{"), result.text
    return result, json.loads(result.out)


def start_apply(app_dir: Path, url: str, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "ci_migrate", "apply", "--target", "production", "--format", "json",
                             *args], cwd=app_dir, env=clean_env({"PROD_URL": url, **(env or {})}),
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def finish(proc: subprocess.Popen, timeout: float = 120) -> tuple[Result, dict]:
    out, err = proc.communicate(timeout=timeout)
    assert out.strip().startswith("{"), out + err
    return Result(proc.returncode, out, err), json.loads(out)


def apply_facts(report: dict) -> dict:
    return next(c for c in report["checks"] if c["name"] == "apply")["facts"]


def rule_ids(report: dict) -> list[str]:
    return sorted(f["rule_id"] for c in report["checks"] for f in c["findings"])


def finding(report: dict, rule: str) -> dict:
    return next(f for c in report["checks"] for f in c["findings"] if f["rule_id"] == rule)


def state(url: str, table: str | None = None) -> dict[str, Any]:
    """The truth in the database: ``heads`` (alembic_version), ``tables``, and ``table``'s columns."""
    import sqlalchemy as sa

    engine = _engine(url)
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            tables = sorted(inspector.get_table_names())
            heads = sorted(r[0] for r in conn.exec_driver_sql("SELECT version_num FROM alembic_version")) \
                if "alembic_version" in tables else []
            columns = sorted(c["name"] for c in inspector.get_columns(table)) if table and table in tables else []
    finally:
        engine.dispose()
    return {"heads": heads, "tables": tables, "columns": columns}


def schema(url: str) -> dict[str, Any]:
    """The schema of the app's tables as the database reflects it (the version table and the apply
    log left out): per table its columns (name, type, nullable), indexes, unique constraints and
    foreign keys, names included — to compare two databases."""
    import sqlalchemy as sa

    engine = _engine(url)
    out: dict[str, Any] = {}
    try:
        with engine.connect() as conn:
            inspector = sa.inspect(conn)
            for table in sorted(set(inspector.get_table_names()) - {"alembic_version", "ci_migrate_apply_log"}):
                out[table] = {
                    "columns": [(c["name"], str(c["type"]), c["nullable"]) for c in inspector.get_columns(table)],
                    "indexes": sorted((i["name"], tuple(i["column_names"]), bool(i["unique"]))
                                      for i in inspector.get_indexes(table)),
                    "unique": sorted((u["name"], tuple(u["column_names"]))
                                     for u in inspector.get_unique_constraints(table)),
                    "foreign_keys": sorted((f["name"], tuple(f["constrained_columns"]), f["referred_table"])
                                           for f in inspector.get_foreign_keys(table))}
    finally:
        engine.dispose()
    return out


def apply_log(url: str) -> list[tuple[str, str | None]]:
    """``(revision, outcome)`` of each row of the target's apply log, in order."""
    with session(url) as conn:
        rows = conn.exec_driver_sql("SELECT revision, outcome FROM ci_migrate_apply_log ORDER BY id")
        return [tuple(r) for r in rows]


def kill9_inside_revision(app_dir: Path, url: str, step: int, workdir: Path) -> None:
    """Run ``ci-migrate apply`` and ``kill -9`` it — the probe running the revision and the ci-migrate
    process — once revision 5878fb2751bc of tests/apps/interrupted_apply has run its first ``step``
    operations (its INTERRUPT_APPLY_AT hook writes its process id to a file and sleeps there). As a
    runner that vanishes: nothing of ci-migrate gets to clean up."""
    marker = workdir / f"interrupt-{secrets.token_hex(4)}"
    proc = start_apply(app_dir, url, env={"INTERRUPT_APPLY_AT": str(step), "INTERRUPT_APPLY_MARKER": str(marker)})
    deadline = time.monotonic() + 60
    pid = ""
    while not pid:
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(f"apply ended (exit {proc.returncode}) before the kill point:\n{out}\n{err}")
        if time.monotonic() > deadline:
            proc.kill()
            raise AssertionError("apply never reached the kill point")
        pid = marker.read_text().strip() if marker.exists() else ""
        time.sleep(0.05)
    copy = probe_copy(Path(f"/proc/{pid}/cmdline").read_text())
    os.kill(int(pid), signal.SIGKILL)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    if copy:  # what the vanished runner left in its temporary directory (`ci-migrate prune` removes it)
        shutil.rmtree(copy, ignore_errors=True)


def interrupted_app(workdir: Path, **target: Any) -> Path:
    app_dir = copy_app(INTERRUPTED, workdir)
    write_config(app_dir, "app.py", **target)
    return app_dir


@contextlib.contextmanager
def session(url: str) -> Iterator[Any]:
    """A second session on the target (another client of the database)."""
    engine = _engine(url)
    conn = engine.connect()
    try:
        yield conn
    finally:
        with contextlib.suppress(Exception):
            conn.rollback()
        conn.close()
        engine.dispose()


def wait_for_query(url: str, kind: str, needle: str, timeout: float = 60) -> int:
    """Id of the session (PostgreSQL pid / MariaDB connection id) running a query containing ``needle``."""
    sql = ("SELECT pid FROM pg_stat_activity WHERE query LIKE :q AND pid <> pg_backend_pid() "
           "AND datname = current_database()" if kind == "postgresql" else
           "SELECT ID FROM information_schema.PROCESSLIST WHERE INFO LIKE :q AND ID <> CONNECTION_ID() "
           "AND DB = DATABASE()")
    import sqlalchemy as sa

    deadline = time.monotonic() + timeout
    with session(url) as conn:
        while time.monotonic() < deadline:
            row = conn.execute(sa.text(sql), {"q": f"%{needle}%"}).first()
            conn.rollback()
            if row:
                return int(row[0])
            time.sleep(0.05)
    raise AssertionError(f"no session ran {needle!r} within {timeout} s")


def kill(url: str, kind: str, session_id: int) -> None:
    with session(url) as conn:
        if kind == "postgresql":
            assert conn.exec_driver_sql(f"SELECT pg_terminate_backend({session_id})").scalar() is True
        else:
            conn.exec_driver_sql(f"KILL CONNECTION {session_id}")


def slow_app(workdir: Path, **target: Any) -> Path:
    app_dir = copy_app(SLOW, workdir)
    write_config(app_dir, "app.py", **target)
    return app_dir


def applied(report: dict) -> list[str]:
    return [a["revision"] for a in apply_facts(report)["applied"] if a["status"] == "applied"]


# --------------------------------------------------------------------------- fault scenarios


def scenario_kill_mid_revision(kind: str, workdir: Path) -> None:
    """Terminate the migrating connection while b7b5059fb788 runs: the database stays at the
    previous revision boundary (86a2e69763da), with nothing of b7b5059fb788; a rerun completes.

    On PostgreSQL the kill lands after the revision's ALTER TABLE (rolled back with its
    transaction); on MariaDB before it (MariaDB cannot roll DDL back: see scenario_half_applied).
    """
    app_dir = slow_app(workdir)
    pause = "after:60" if kind == "postgresql" else "before:60"
    sleep = "pg_sleep" if kind == "postgresql" else "SLEEP("
    with target_database(kind) as url:
        proc = start_apply(app_dir, url, env={"SLOW_MIGRATION_PAUSE": pause})
        kill(url, kind, wait_for_query(url, kind, sleep))
        result, report = finish(proc)
        assert result.code == 1, result.text
        assert rule_ids(report) == ["CM807"], rule_ids(report)
        failed = finding(report, "CM807")
        assert failed["revision"] == "b7b5059fb788"
        facts = apply_facts(report)
        assert applied(report) == SLOW_REVS[:2]
        assert facts["to_heads"] == {"": ["86a2e69763da"]}
        assert facts["applied"][-1]["status"] == "failed" and facts["applied"][-1]["error"]
        truth = state(url, "post")
        assert truth["heads"] == ["86a2e69763da"] and "summary" not in truth["columns"], truth
        result, report = apply(app_dir, url)
        assert result.code == 0, result.text
        assert applied(report) == SLOW_REVS[2:]
        (note,) = [n for n in report["notes"] if "Nothing of it is in the database" in n]  # from the apply log
        assert "started revision b7b5059fb788" in note and "and it failed at" in note
        assert state(url, "post")["heads"] == [SLOW_REVS[-1]]


def scenario_half_applied(workdir: Path) -> None:
    """MariaDB: killed after b7b5059fb788's ALTER TABLE. The report names the statement that stays
    (CM808); the version table still says 86a2e69763da. A rerun names the half-applied revision
    from the apply log (CM810, before the drift gate runs), and ``--resume-interrupted`` refuses to
    finish it: it also runs an ``op.execute`` UPDATE, whose effect the schema cannot show."""
    app_dir = slow_app(workdir)
    with target_database("mysql") as url:
        proc = start_apply(app_dir, url, env={"SLOW_MIGRATION_PAUSE": "after:60"})
        kill(url, "mysql", wait_for_query(url, "mysql", "SLEEP("))
        result, report = finish(proc)
        assert result.code == 1 and rule_ids(report) == ["CM807", "CM808"], result.text
        kept = finding(report, "CM808")["details"]["committed"]
        assert any(s.startswith("ALTER TABLE post ADD COLUMN summary") for s in kept), kept
        assert not any("ci_migrate_apply_log" in s for s in kept), kept  # the log is not the revision's
        truth = state(url, "post")
        assert truth["heads"] == ["86a2e69763da"] and "summary" in truth["columns"]
        result, report = apply(app_dir, url, "--drift-gate", "--sandbox", MYSQL_SERVER)
        assert result.code == 1 and rule_ids(report) == ["CM810"], result.text
        named = finding(report, "CM810")
        assert named["revision"] == "b7b5059fb788" and named["details"]["outcome"] == "failed"
        assert [(o["state"], o["kind"]) for o in named["details"]["operations"]] == [
            ("ran", "AddColumnOp"), ("unknown", "ExecuteSQLOp")]
        assert "flask db stamp b7b5059fb788" in named["fix"] and not named["details"]["resumable"]
        result, report = apply(app_dir, url, "--resume-interrupted")
        assert result.code == 1 and rule_ids(report) == ["CM810"], result.text
        assert finding(report, "CM810")["message"].startswith(
            "--resume-interrupted cannot finish it: its operations include `executes SQL: UPDATE post SET summary = "
            "substr(body, 1, 280)` (line 44), whose effect the schema cannot show")
        assert state(url, "post")["heads"] == ["86a2e69763da"]


def scenario_killed_inside_a_revision(kind: str, workdir: Path, step: int = 3) -> str:
    """``kill -9`` of ``apply`` after ``step`` of the 7 operations of revision 5878fb2751bc
    (tests/apps/interrupted_apply). MariaDB keeps every DDL statement that ran: the rerun names the
    revision, which operations ran and which did not (CM810), and changes nothing; then
    ``--resume-interrupted`` (drift gate on) finishes it and the next revision. Where nothing of it
    is in the database (step 0, or PostgreSQL, which rolls the revision's transaction back) the
    rerun says so in a note and applies it. Either way the schema ends as ``flask db upgrade`` makes
    it on a fresh database. Returns what the kill left, for the stress run's counts."""
    app_dir = interrupted_app(workdir)
    first, revision, last = INTERRUPTED_REVS
    with target_database(kind) as url, target_database(kind) as fresh:
        kill9_inside_revision(app_dir, url, step, workdir)
        assert state(url)["heads"] == [first]
        assert apply_log(url) == [(first, "ok"), (revision, None)]  # started, never finished
        left = step if kind == "mysql" else 0
        kept = schema(url)
        assert ("profile" in kept) == bool(left), kept
        result, report = apply(app_dir, url)
        if left:
            assert result.code == 1 and rule_ids(report) == ["CM810"], result.text
            named = finding(report, "CM810")
            assert named["revision"] == revision and named["details"]["outcome"] is None
            states = [o["state"] for o in named["details"]["operations"]]
            assert states == ["ran"] * left + ["not_run"] * (INTERRUPTED_OPS - left), states
            assert f"started revision {revision} (add profiles) at " in named["message"]
            assert "ended before it finished" in named["message"] and named["details"]["resumable"]
            assert "--resume-interrupted" in named["fix"] and named["details"]["left"][0].startswith("table `profile`")
            assert state(url)["heads"] == [first] and schema(url) == kept  # nothing was touched
            result, report = apply(app_dir, url, "--resume-interrupted", "--drift-gate", "--sandbox", server_of(kind))
            assert result.code == 0, result.text
            (item,) = apply_facts(report)["interrupted"]
            assert item["resumed"] and len(item["skipped"]) == left and len(item["created"]) == INTERRUPTED_OPS - left
            (aside,) = [n for n in report["notes"] if n.startswith("Drift gate: set aside as what the revision "
                                                                    "being finished left:")]
            assert "drops table `profile`" in aside
            assert "Drift gate: the live schema matches the migrations at bcd636a358f2." in report["notes"]
        else:
            assert result.code == 0 and "CM810" not in rule_ids(report), result.text
            (note,) = [n for n in report["notes"] if "Nothing of it is in the database" in n]
            assert f"started revision {revision} (add profiles)" in note
            assert ("its transaction was rolled back" in note) == (kind == "postgresql"), note
        assert applied(report) == [revision, last]
        assert state(url)["heads"] == [last]
        flask_db(app_dir, "app.py", fresh, "upgrade")
        assert schema(url) == schema(fresh)
    return f"left {left} of {INTERRUPTED_OPS} operations" if left else "left nothing"


def scenario_concurrent(kind: str, workdir: Path, runners: int = 4) -> None:
    """Four ``apply`` processes at once: every revision is applied exactly once; the others wait
    for the lock and then find nothing to do."""
    app_dir = slow_app(workdir)
    with target_database(kind) as url:
        procs = [start_apply(app_dir, url, env={"SLOW_MIGRATION_PAUSE": "after:1"}) for _ in range(runners)]
        outcomes = [finish(p) for p in procs]
        for result, _ in outcomes:
            assert result.code == 0, result.text
        runs = [r for _, report in outcomes for r in applied(report)]
        assert sorted(runs) == sorted(SLOW_REVS), runs  # each exactly once
        idle = [report for _, report in outcomes if not applied(report)]
        assert len(idle) == runners - 1
        for report in idle:
            summary = next(c for c in report["checks"] if c["name"] == "apply")["summary"]
            assert "nothing to apply" in summary or "already at head" in summary, summary
        assert state(url)["heads"] == [SLOW_REVS[-1]]


def scenario_lock_timeout(kind: str, workdir: Path) -> None:
    """Another session holds a lock on ``post``: b7b5059fb788's ALTER TABLE times out, is retried
    twice, then fails clearly; nothing of it is kept. Once the lock is gone a rerun completes."""
    app_dir = slow_app(workdir, lock_timeout=0.5, retries=2, retry_backoff=0.1)
    with target_database(kind) as url:
        flask_db(app_dir, "app.py", url, "upgrade", SLOW_REVS[1])
        with session(url) as other:
            if kind == "postgresql":
                other.exec_driver_sql("LOCK TABLE post IN ACCESS SHARE MODE")
            else:
                other.exec_driver_sql("SELECT * FROM post")  # holds a metadata lock until the transaction ends
            result, report = apply(app_dir, url)
        assert result.code == 1, result.text
        assert rule_ids(report) == ["CM807"]
        failed = finding(report, "CM807")
        assert failed["revision"] == "b7b5059fb788" and failed["details"]["lock"] and failed["details"]["retries"] == 2
        assert apply_facts(report)["retries"] == 2 and result.err.count("retry ") == 2, result.err
        truth = state(url, "post")
        assert truth["heads"] == [SLOW_REVS[1]] and "summary" not in truth["columns"], truth
        result, report = apply(app_dir, url)
        assert result.code == 0 and applied(report) == SLOW_REVS[2:], result.text


def scenario_multidb(kind: str, workdir: Path) -> None:
    """multidb: each bind's database has its own lock — with the audit one held elsewhere nothing is
    applied anywhere (CM804); once free, every bind is upgraded."""
    from ci_migrate.apply.locking import lock_key, lock_text

    app_dir = copy_app("multidb", workdir)
    write_config(app_dir, "app.py", lock_wait=1, binds={"audit": "AUDIT_URL"})
    with target_database(kind) as url, target_database(kind) as audit_url:
        env = {"AUDIT_URL": audit_url}
        with session(audit_url) as holder:
            if kind == "postgresql":
                holder.exec_driver_sql(f"SELECT pg_advisory_lock({lock_key(lock_text('alembic_version', None))})")
            else:
                name = f"{lock_text('alembic_version', None)}@{audit_url.rsplit('/', 1)[1]}"
                holder.exec_driver_sql(f"SELECT GET_LOCK('{name}', 0)")
            result, report = apply(app_dir, url, env=env)
        assert result.code == 1 and rule_ids(report) == ["CM804"], result.text
        assert audit_url.rsplit("/", 1)[1] in finding(report, "CM804")["details"]["lock"]
        assert state(url)["heads"] == [] and state(audit_url)["heads"] == []
        result, report = apply(app_dir, url, env=env)
        assert result.code == 0, result.text
        facts = apply_facts(report)
        assert facts["lock"].count(";") == 1  # one lock per database
        assert facts["to_heads"] == {"": ["c8bfe16d6ca7"], "audit": ["c8bfe16d6ca7"]}
        assert {a["bind"] for a in facts["applied"]} == {None, "audit"}
        assert state(url)["heads"] == state(audit_url)["heads"] == ["c8bfe16d6ca7"]
        assert "login_event" in state(audit_url)["tables"] and "login_event" not in state(url)["tables"]


def scenario_unknown_revision(kind: str, workdir: Path) -> None:
    """The version table names a revision no file has (a hotfix stamped by hand): refused, untouched."""
    app_dir = slow_app(workdir)
    with target_database(kind) as url:
        with session(url) as conn:  # what `flask db stamp f00dfeed1234` of a hand-made revision leaves
            conn.exec_driver_sql("CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)")
            conn.exec_driver_sql("INSERT INTO alembic_version VALUES ('f00dfeed1234')")
            conn.commit()
        result, report = apply(app_dir, url)
        assert result.code == 1 and rule_ids(report) == ["CM801"], result.text
        refused = finding(report, "CM801")
        assert refused["title"] == "production is at revision f00dfeed1234, which is not in migrations/versions"
        assert "the database is ahead of this code" in refused["message"] and "hotfix" in refused["message"]
        assert "git log --all --oneline -- '*f00dfeed1234*'" in refused["fix"]
        assert state(url) == {"heads": ["f00dfeed1234"], "tables": ["alembic_version"], "columns": []}


def scenario_ahead_of_the_code(kind: str, workdir: Path) -> None:
    """Deploying an older commit: the database has a revision this checkout does not. Refused."""
    app_dir = slow_app(workdir)
    with target_database(kind) as url:
        flask_db(app_dir, "app.py", url, "upgrade")
        (app_dir / "migrations/versions/a0ec6250bfad_index_post_author_id_concurrently.py").unlink()
        result, report = apply(app_dir, url)
        assert result.code == 1 and rule_ids(report) == ["CM801"], result.text
        assert finding(report, "CM801")["details"] == {"unknown": ["a0ec6250bfad"], "heads": ["b7b5059fb788"]}
        assert state(url)["heads"] == ["a0ec6250bfad"]


def scenario_multiple_heads(kind: str, workdir: Path) -> None:
    """Two unmerged heads: refused (CM802, nothing written); with --allow-multiple-heads both are applied."""
    app_dir = copy_app("two_heads", workdir)
    write_config(app_dir, "app.py")
    with target_database(kind) as url:
        result, report = apply(app_dir, url)
        assert result.code == 1 and rule_ids(report) == ["CM802"], result.text
        assert finding(report, "CM802")["fix"].startswith(
            'Merge them: `flask db merge -m "merge heads" 1b5c2ebd16a4 34acf19d9d5c`')
        assert state(url)["tables"] == []
        result, report = apply(app_dir, url, "--allow-multiple-heads")
        assert result.code == 0, result.text
        assert state(url)["heads"] == ["1b5c2ebd16a4", "34acf19d9d5c"] and len(applied(report)) == 6


def scenario_unreachable(workdir: Path) -> None:
    """Nothing listens on the target's port: exit 3, host and database named, password never shown."""
    app_dir = slow_app(workdir)
    result = run_cli("apply", "--target", "production", cwd=app_dir,
                     env={"PROD_URL": "postgresql://deployer:s3cr3t-pw@127.0.0.1:1/shop"})
    assert result.code == 3, result.text
    assert result.err.startswith("error: target 'production': Cannot connect to the postgresql server at 127.0.0.1:1 "
                                 "(database shop, user deployer)"), result.err
    assert "s3cr3t-pw" not in result.text


def scenario_wrong_password(workdir: Path) -> None:
    """A wrong password on MariaDB: exit 3, the server's 'Access denied', the password masked."""
    app_dir = slow_app(workdir)
    with target_database("mysql") as url, session(url) as admin:
        admin.exec_driver_sql("CREATE USER IF NOT EXISTS 'ci_apply_pw'@'%%' IDENTIFIED BY 'right-pw'")
        try:
            wrong = url.replace("root@", "ci_apply_pw:wr0ng-pw@")
            result = run_cli("apply", "--target", "production", cwd=app_dir, env={"PROD_URL": wrong})
        finally:
            admin.exec_driver_sql("DROP USER IF EXISTS 'ci_apply_pw'@'%%'")
    assert result.code == 3, result.text
    database = url.rsplit("/", 1)[1]
    assert (f"Cannot connect to the mysql server at 127.0.0.1:3306 (database {database}, user ci_apply_pw)"
            in result.err), result.err
    assert "Access denied" in result.err and "wr0ng-pw" not in result.text
    assert "mysql+pymysql://ci_apply_pw:***@" in result.err
