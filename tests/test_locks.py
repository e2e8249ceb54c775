"""The lock trace (``locks`` check) through the real CLI, on PostgreSQL 15 with tests/apps/locking.

tests/apps/locking/.ci-migrate.yml sets ``checks: {locks: {scope: all}}``: every revision is traced.
"""

from __future__ import annotations

import json
import subprocess

import pytest

LOCKING = ["829d300c4b09", "80aaa5ef2cee", "f3e5f67e1142", "29d6e2ad8728", "c9d6e2d3182d", "8f736323bfd2",
           "76c5e8e72da3"]
VERSIONS = "migrations/versions/"


def check(report, name):
    return next(c for c in report["checks"] if c["name"] == name)


def run_json(cli, app_dir, *args, env=None):
    result = cli("check", "--format", "json", *args, cwd=app_dir, env=env)
    assert result.out.strip().startswith("{"), result.text
    return result, json.loads(result.out)


def findings(result, rule_id=None):
    return [f for f in result["findings"] if rule_id in (None, f["rule_id"])]


def modes(locks):
    return {(lock["relation"], lock["mode"]) for lock in locks}


def console_lines(json_text):
    """The console report a person reads, rendered from the JSON report."""
    import io

    from rich.console import Console

    from ci_migrate.publish.console import render
    from ci_migrate.report import Report

    console = Console(file=io.StringIO(), width=200, no_color=True, highlight=False)
    render(Report.from_json(json_text), console)
    return console.file.getvalue().splitlines()


@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
@pytest.mark.parametrize("app_dir", ["locking"], indirect=True)
def test_every_revision_is_traced_on_postgresql(cli, app_dir, server):
    result, report = run_json(cli, app_dir, "--sandbox", server)
    assert result.code == 1, result.text  # the rewrites are errors
    locks = check(report, "locks")
    assert locks["status"] == "failed"
    assert locks["summary"] == "7 revisions traced: 3 take ACCESS EXCLUSIVE on existing tables, 2 table rewrites"
    revisions = {r["revision"]: r for r in locks["facts"]["revisions"]}
    assert list(revisions) == LOCKING  # base → head

    # the first revision creates both tables: nothing existed before it
    first = revisions["829d300c4b09"]
    assert (first["statements"], first["locks"], first["access_exclusive"], first["rewrites"]) == (2, [], [], [])

    # ALTER COLUMN TYPE integer → bigint: ACCESS EXCLUSIVE and a rewrite
    widen = revisions["80aaa5ef2cee"]
    assert widen["file"] == VERSIONS + "80aaa5ef2cee_widen_account_balance_to_bigint.py"
    (step,) = widen["steps"]
    assert step["statement"] == "ALTER TABLE account ALTER COLUMN balance TYPE BIGINT"
    assert ("account", "AccessExclusiveLock") in modes(step["locks"]) and step["rewrites"] == ["account"]
    assert (widen["access_exclusive"], widen["rewrites"]) == (["account"], ["account"])

    # ADD COLUMN with a volatile default (clock_timestamp()): rewrite
    volatile = revisions["f3e5f67e1142"]
    assert "DEFAULT clock_timestamp()" in volatile["steps"][0]["statement"]
    assert (volatile["access_exclusive"], volatile["rewrites"]) == (["account"], ["account"])

    # ADD COLUMN nullable without default: ACCESS EXCLUSIVE, no rewrite
    nickname = revisions["29d6e2ad8728"]
    assert nickname["steps"][0]["statement"] == "ALTER TABLE account ADD COLUMN nickname VARCHAR(64)"
    assert (nickname["access_exclusive"], nickname["rewrites"]) == (["account"], [])

    # CREATE INDEX: SHARE on the table until COMMIT (writes wait, reads go on)
    index = revisions["c9d6e2d3182d"]
    assert index["steps"][0]["statement"] == "CREATE INDEX ix_event_kind ON event (kind)"
    assert index["locks"] == [{"relation": "event", "mode": "ShareLock"}]
    assert index["access_exclusive"] == [] and index["rewrites"] == []

    # CREATE INDEX CONCURRENTLY inside autocommit_block(): no lock is held after the statement
    concurrent = revisions["8f736323bfd2"]
    (step,) = concurrent["steps"]
    assert step["statement"] == "CREATE INDEX CONCURRENTLY ix_account_email ON account (email)"
    assert step["locks"] == [] and concurrent["locks"] == []

    # a table created in the same revision is not reported; the FK's lock on the existing table is
    created = revisions["76c5e8e72da3"]
    tables = {lock["relation"] for s in created["steps"] for lock in s["locks"]}
    assert tables == {"account"}
    assert created["locks"] == [{"relation": "account", "mode": "ShareRowExclusiveLock"}]
    assert created["access_exclusive"] == []

    rewrites = findings(locks, "CM602")
    assert [(f["revision"], f["severity"], f["file"], f["line"]) for f in rewrites] == [
        ("80aaa5ef2cee", "error", VERSIONS + "80aaa5ef2cee_widen_account_balance_to_bigint.py", 21),
        ("f3e5f67e1142", "error", VERSIONS + "f3e5f67e1142_add_account_opened_at_stamped_with_.py", 21),
    ]
    assert rewrites[0]["title"] == ("80aaa5ef2cee (widen account.balance to bigint) rewrites table `account`: "
                                    "ALTER TABLE account ALTER COLUMN balance TYPE BIGINT")
    assert "add a new column of the new type" in rewrites[0]["fix"]
    assert "without the volatile default" in rewrites[1]["fix"]
    (exclusive,) = findings(locks, "CM601")  # the rewriting statements are told by CM602 alone
    assert (exclusive["revision"], exclusive["severity"], exclusive["line"]) == ("29d6e2ad8728", "warning", 21)
    assert exclusive["title"] == ("29d6e2ad8728 (add account.nickname) locks `account` ACCESS EXCLUSIVE: "
                                  "ALTER TABLE account ADD COLUMN nickname VARCHAR(64)")
    assert "until the revision's COMMIT" in exclusive["message"]
    assert exclusive["details"]["held_ms"] > 0
    assert "lock_timeout" in exclusive["fix"]

    lines = console_lines(result.out)
    start = lines.index("Locks on existing tables (PostgreSQL sandbox; the strongest each revision takes per table)")
    assert lines[start + 1:start + 7] == [
        "  80aaa5ef2cee  widen account.balance to bigint                       ACCESS EXCLUSIVE account · rewrites account",
        "  f3e5f67e1142  add account.opened_at stamped with clock_timestamp()  ACCESS EXCLUSIVE account · rewrites account",
        "  29d6e2ad8728  add account.nickname                                  ACCESS EXCLUSIVE account",
        "  c9d6e2d3182d  index event.kind                                      SHARE event",
        "  76c5e8e72da3  create statement table                                SHARE ROW EXCLUSIVE account",
        "",
    ]


@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
@pytest.mark.parametrize("app_dir", ["locking"], indirect=True)
def test_an_env_py_that_runs_the_migrations_in_autocommit_is_traced_statement_by_statement(cli, app_dir, server):
    """env.py puts its connection in AUTOCOMMIT (each statement commits at once, so its locks are gone when it
    returns): each statement is traced in a transaction of its own; CONCURRENTLY is left as it is."""
    env = app_dir / "migrations" / "env.py"
    anchor = "    with connectable.connect() as connection:\n"
    env.write_text(env.read_text().replace(
        anchor, anchor + "        connection = connection.execution_options(isolation_level='AUTOCOMMIT')\n", 1))
    result, report = run_json(cli, app_dir, "--sandbox", server)
    assert result.code == 1, result.text
    locks = check(report, "locks")
    assert locks["summary"] == "7 revisions traced: 3 take ACCESS EXCLUSIVE on existing tables, 2 table rewrites"
    revisions = {r["revision"]: r for r in locks["facts"]["revisions"]}
    assert revisions["29d6e2ad8728"]["access_exclusive"] == ["account"]
    assert revisions["c9d6e2d3182d"]["locks"] == [{"relation": "event", "mode": "ShareLock"}]
    assert revisions["8f736323bfd2"]["locks"] == []
    (exclusive,) = findings(locks, "CM601")
    assert exclusive["revision"] == "29d6e2ad8728"
    assert "held while this statement runs (env.py runs it in AUTOCOMMIT)" in exclusive["message"]
    assert "SET lock_timeout" in exclusive["fix"]
    rewrites = findings(locks, "CM602")
    assert [f["revision"] for f in rewrites] == ["80aaa5ef2cee", "f3e5f67e1142"]
    assert "rebuilds every index (env.py runs it in AUTOCOMMIT), so reads" in rewrites[0]["message"]


@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
@pytest.mark.parametrize("app_dir", ["locking"], indirect=True)
def test_rules_and_inline_comments_silence_lock_findings(cli, app_dir, server):
    nickname = app_dir / VERSIONS / "29d6e2ad8728_add_account_nickname.py"
    text = nickname.read_text()
    anchor = "    with op.batch_alter_table('account', schema=None) as batch_op:\n"
    nickname.write_text(text.replace(anchor, "    # ci-migrate: ignore[CM601] account has 40 rows\n" + anchor, 1))
    (app_dir / ".ci-migrate.yml").write_text("app: app.py\nchecks:\n  locks: {scope: all}\nrules:\n  CM602: off\n")
    result, report = run_json(cli, app_dir, "--sandbox", server)
    assert result.code == 0, result.text  # only warnings are left
    locks = check(report, "locks")
    assert locks["status"] == "warning"
    assert locks["summary"].endswith("(1 finding silenced inline)")
    # with CM602 off, the rewriting statements' ACCESS EXCLUSIVE locks are reported as CM601
    assert [(f["rule_id"], f["revision"]) for f in findings(locks) if f["severity"] != "info"] == [
        ("CM601", "80aaa5ef2cee"), ("CM601", "f3e5f67e1142")]
    (silenced,) = [f for f in findings(locks) if f["severity"] == "info"]  # kept, at info, with the reason
    assert silenced["revision"] == "29d6e2ad8728" and silenced["title"].endswith("silenced inline: account has 40 rows")


def git(cwd, *args):
    subprocess.run(["git", "-c", "user.email=ci@example.com", "-c", "user.name=CI", *args], cwd=cwd, check=True,
                   capture_output=True)


@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
@pytest.mark.parametrize("app_dir", ["locking"], indirect=True)
def test_a_pull_request_traces_and_round_trips_only_its_new_revisions(cli, app_dir, server, tmp_path):
    """Default scope (pending): the plan's revisions, new on this branch versus main."""
    new = [next((app_dir / VERSIONS).glob(f"{rev}_*.py")) for rev in LOCKING[4:]]
    aside = tmp_path / "aside"
    aside.mkdir()
    for path in new:
        path.rename(aside / path.name)
    (app_dir / ".ci-migrate.yml").write_text("app: app.py\n")
    git(app_dir, "init", "-q", "-b", "main")
    git(app_dir, "add", "-A")
    git(app_dir, "commit", "-q", "-m", "four revisions")
    for path in new:
        (aside / path.name).rename(path)
    result, report = run_json(cli, app_dir, "--sandbox", server, "--base", "main")
    assert result.code == 0, result.text
    assert [p["revision"] for p in check(report, "plan")["facts"]["pending"]] == LOCKING[4:]
    locks = check(report, "locks")
    assert (locks["status"], locks["summary"]) == (
        "passed", "3 pending revisions traced: no ACCESS EXCLUSIVE lock or rewrite of an existing table")
    traced = locks["facts"]["revisions"]
    assert [r["revision"] for r in traced] == LOCKING[4:]
    # the trace database was brought to 29d6e2ad8728 first: event and account exist before them
    assert [r["locks"] for r in traced] == [[{"relation": "event", "mode": "ShareLock"}], [],
                                            [{"relation": "account", "mode": "ShareRowExclusiveLock"}]]
    roundtrip = check(report, "roundtrip")
    assert roundtrip["summary"] == "3 pending revisions round-tripped: 3 ok"
    assert roundtrip["facts"]["scope"] == "pending"
    assert [(s["revision"], s["status"]) for s in roundtrip["facts"]["steps"]] == [(r, "ok") for r in LOCKING[4:]]


@pytest.mark.parametrize("app_dir", ["leaky_downgrade"], indirect=True)
def test_the_lock_trace_needs_a_postgresql_sandbox(cli, app_dir):
    result, report = run_json(cli, app_dir, "--sandbox", "sqlite", "--only", "locks",
                              env={"CI_MIGRATE_CHECKS": "{locks: all}"})
    assert result.code == 0, result.text
    assert [(c["name"], c["status"], c["summary"]) for c in report["checks"]] == [
        ("locks", "skipped", ("skipped: the lock trace needs a PostgreSQL sandbox (this one is sqlite); "
                              "set sandbox: postgresql://user@host/"))]


@pytest.mark.parametrize("app_dir", ["leaky_downgrade"], indirect=True)
def test_without_a_plan_nothing_is_pending(cli, app_dir):
    """Scope pending (the default) and no --base/target: neither check has anything to walk."""
    result, report = run_json(cli, app_dir, "--sandbox", "sqlite", "--only", "locks,roundtrip",
                              env={"CI_MIGRATE_CHECKS": "{locks: pending, roundtrip: pending}"})
    assert result.code == 0, result.text
    assert [c["name"] for c in report["checks"]] == []
