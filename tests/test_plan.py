"""The plan check, as a user runs it: `ci-migrate check --base REF` in real git repositories built
here from tests/apps/ apps, and `ci-migrate plan --target NAME` against real PostgreSQL and
MariaDB databases brought to a middle revision with `flask db upgrade <rev>`."""

from __future__ import annotations

import json
import re
import secrets
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import clean_env, copy_app

RISKY_BASE = ["6f27727a8d85", "2579b38b2ff9"]  # create user and post tables, add post.summary
RISKY_PR = ["c18d439fc80f", "3aff0bf00a12", "537e5de07cd4"]  # add user.age, index post.title, drop post.summary


def git(cwd: Path, *args: str, author: str = "Base Dev") -> str:
    proc = subprocess.run(["git", "-c", f"user.name={author}", "-c", "user.email=dev@example.com", *args], cwd=cwd,
                          capture_output=True, text=True, check=True)
    return proc.stdout


def revision_file(app: Path, revision: str) -> Path:
    (path,) = (app / "migrations" / "versions").glob(f"{revision}_*.py")
    return path


def pr_repo(tmp_path: Path, app: str, base: list[str]) -> Path:
    """tests/apps/<app> as a git repository: branch main holds the revisions in ``base``, branch
    feature (checked out) adds the others, committed by "PR Author"."""
    repo = copy_app(app, tmp_path)
    held = tmp_path / "held"
    held.mkdir()
    for path in (repo / "migrations" / "versions").glob("*.py"):
        if path.name.split("_", 1)[0] not in base:
            shutil.move(path, held / path.name)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base history")
    git(repo, "checkout", "-q", "-b", "feature")
    for path in held.iterdir():
        shutil.move(path, repo / "migrations" / "versions" / path.name)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "the pull request", author="PR Author")
    return repo


def report_of(result) -> dict:
    assert result.out.strip().startswith("{"), result.text
    return json.loads(result.out)


def check_of(report: dict, name: str) -> dict:
    return next(c for c in report["checks"] if c["name"] == name)


def findings(report: dict, *checks: str) -> list[tuple[str, str | None]]:
    return sorted((f["rule_id"], f["revision"]) for c in report["checks"] if not checks or c["name"] in checks
                  for f in c["findings"])


# --------------------------------------------------------------------------- against the base branch


def test_pull_request_plan_lists_new_revisions_sql_and_risks(cli, tmp_path, pg_server):
    """The issue's "done when": a PR adding a NOT NULL column without default, a non-concurrent index
    and a column drop, checked with `check --base main` on a PostgreSQL sandbox."""
    repo = pr_repo(tmp_path, "risky", RISKY_BASE)
    result = cli("check", "--app", "app.py", "--base", "main", "--sandbox", pg_server, "--output", "report.json",
                 cwd=repo)
    assert result.code == 1, result.text
    report = json.loads((repo / "report.json").read_text())
    plan = check_of(report, "plan")["facts"]
    assert plan["against"] == "base:main" and plan["dialect"] == "postgresql"
    assert plan["current"] == ["2579b38b2ff9"]  # the base branch's head
    assert [p["revision"] for p in plan["pending"]] == RISKY_PR
    assert {p["status"] for p in plan["pending"]} == {"new"} and {p["author"] for p in plan["pending"]} == {"PR Author"}
    age, index, drop = plan["pending"]
    assert age["operations"] == ["adds column `user.age` INTEGER, NOT NULL"]
    assert age["sql"].splitlines()[0] == 'ALTER TABLE "user" ADD COLUMN age INTEGER NOT NULL;'
    assert index["sql"].startswith("CREATE INDEX ix_post_title ON post (title);")
    assert drop["sql"].startswith("ALTER TABLE post DROP COLUMN summary;")
    assert "UPDATE alembic_version SET version_num='537e5de07cd4'" in drop["sql"]
    lint = check_of(report, "lint")
    assert lint["facts"]["revisions"] == RISKY_PR and lint["facts"]["squawk"]
    by_rule = {f["rule_id"]: f for f in lint["findings"]}
    assert sorted(by_rule) == ["CM502", "CM504", "CM507"]  # squawk's copies of these are not repeated
    assert by_rule["CM504"]["severity"] == "error" and by_rule["CM504"]["revision"] == "c18d439fc80f"
    assert by_rule["CM504"]["file"] == "migrations/versions/c18d439fc80f_add_user_age.py"
    assert by_rule["CM504"]["line"] == 22  # the batch_op.add_column(...) call
    assert "nullable=True" in by_rule["CM504"]["fix"] and "backfill" in by_rule["CM504"]["fix"]
    assert "postgresql_concurrently=True" in by_rule["CM507"]["fix"] and by_rule["CM507"]["line"] == 22
    assert by_rule["CM502"]["title"] == "537e5de07cd4: drops column `post.summary`"
    # the report's pending list is what the locks/roundtrip checks worked on
    assert report["verdict"] == "failed"
    out = result.out  # the console, as the PR author reads it in the CI log
    assert "Pending revisions vs main (upgrade order; postgresql SQL)" in out
    assert 'ALTER TABLE "user" ADD COLUMN age INTEGER NOT NULL;' in out
    assert "c18d439fc80f add user.age (new, PR Author)" in out
    assert "CM504 c18d439fc80f: adds NOT NULL column `user.age` without a server default" in out
    assert "migrations/versions/c18d439fc80f_add_user_age.py:22" in out


def test_an_env_py_without_an_offline_branch_still_gets_the_whole_pull_request_checked(cli, tmp_path, pg_server):
    """env.py connects even in offline mode (no context.is_offline_mode() branch): the offline SQL cannot be
    rendered, so the plan shows what ran on the sandbox, and lint, drift, locks and round trip still run."""
    repo = pr_repo(tmp_path, "risky", RISKY_BASE)
    env = repo / "migrations" / "env.py"
    text = env.read_text()
    offline_branch = "if context.is_offline_mode():\n    run_migrations_offline()\nelse:\n    run_migrations_online()\n"
    assert offline_branch in text
    env.write_text(text.replace(offline_branch, "run_migrations_online()\n"))
    result = cli("check", "--app", "app.py", "--base", "main", "--sandbox", pg_server, "--format", "json", cwd=repo,
                 env={"DATABASE_URL": pg_server + "ci_field_production_never"})
    report = report_of(result)
    assert result.code == 1, result.text
    statuses = {c["name"]: c["status"] for c in report["checks"]}
    assert statuses == {"graph": "passed", "replay": "passed", "plan": "passed", "lint": "failed",
                        "drift": "passed", "locks": "warning", "roundtrip": "passed"}, statuses
    assert "CM205" not in {f["rule_id"] for c in report["checks"] for f in c["findings"]}
    age = check_of(report, "plan")["facts"]["pending"][0]
    assert age["sql"].startswith("-- as run on the sandbox (offline SQL cannot be rendered)\n-- migrations/env.py:")
    assert "opens a database connection in alembic's offline mode" in age["sql_error"]
    assert age["sql_error"].startswith("migrations/env.py:")
    assert {f["rule_id"] for f in check_of(report, "lint")["findings"]} >= {"CM502", "CM504", "CM507"}


def test_clean_pull_request_gets_no_findings(cli, tmp_path, pg_server):
    repo = pr_repo(tmp_path, "clean_pr", RISKY_BASE)
    result = cli("check", "--app", "app.py", "--base", "main", "--sandbox", pg_server, "--format", "json", cwd=repo)
    report = report_of(result)
    assert result.code == 0, result.text
    plan = check_of(report, "plan")
    assert [p["revision"] for p in plan["facts"]["pending"]] == ["d5decd537dcc", "1c6c65a6982f", "2a9afb34ba18"]
    assert findings(report, "graph", "plan", "lint", "replay", "drift") == []
    assert check_of(report, "lint")["summary"].startswith("no risky operations in 3 pending revisions (postgresql)")
    comment = plan["facts"]["pending"][1]
    assert comment["operations"][1] == "adds index `ix_comment_post_id` on `comment` (post_id)"  # new table: fine


def test_base_that_moved_on_predicts_two_heads_before_the_merge(cli, tmp_path):
    """main gets "add tag table" after the branch forked; the branch's "add post.summary" revises
    the old head, so merging leaves two heads."""
    repo = copy_app("two_heads", tmp_path)
    versions = repo / "migrations" / "versions"
    theirs, mine = revision_file(repo, "34acf19d9d5c"), revision_file(repo, "1b5c2ebd16a4")
    held = {p.name: p.read_text() for p in (theirs, mine)}
    theirs.unlink()
    mine.unlink()
    app = (repo / "app.py").read_text()
    tag_model = app[app.index("\n\nclass Tag"):]
    (repo / "app.py").write_text(app.replace(tag_model, "\n"))
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "checkout", "-q", "-b", "feature")
    (versions / mine.name).write_text(held[mine.name])
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "add post.summary", author="PR Author")
    git(repo, "checkout", "-q", "main")
    (versions / theirs.name).write_text(held[theirs.name])
    (repo / "app.py").write_text(app)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "add tag table")
    git(repo, "checkout", "-q", "feature")

    result = cli("check", "--app", "app.py", "--base", "main", "--format", "json", cwd=repo)
    report = report_of(result)
    assert result.code == 1, result.text
    assert findings(report) == [("CM402", "1b5c2ebd16a4")]  # the branch alone is fine: one head, no drift
    finding = check_of(report, "plan")["findings"][0]
    assert finding["title"] == "merging into main will leave two heads: 34acf19d9d5c, 1b5c2ebd16a4"
    assert finding["file"] == "migrations/versions/1b5c2ebd16a4_add_post_summary.py"
    assert finding["line"] == 14  # down_revision = '1521a969f997'
    assert "set down_revision = '34acf19d9d5c'" in finding["fix"]
    assert 'flask db merge -m "merge heads" 34acf19d9d5c 1b5c2ebd16a4' in finding["fix"]
    assert check_of(report, "graph")["status"] == "passed"


def test_modifying_a_merged_revision_is_a_finding(cli, tmp_path):
    repo = pr_repo(tmp_path, "clean_pr", RISKY_BASE)
    merged = revision_file(repo, "2579b38b2ff9")
    merged.write_text(merged.read_text().replace("sa.String(length=280)", "sa.String(length=300)"))
    first = revision_file(repo, "6f27727a8d85")  # only its message changes: not a modification
    first.write_text(first.read_text().replace('"""create user and post tables', '"""create the user and post tables'))
    result = cli("check", "--app", "app.py", "--base", "main", "--only", "graph,plan,lint", "--format", "json",
                 cwd=repo, env={"DATABASE_URL": "postgresql://app@db.internal/blog"})
    report = report_of(result)
    assert result.code == 1, result.text
    assert findings(report) == [("CM401", "2579b38b2ff9")]
    finding = check_of(report, "plan")["findings"][0]
    assert finding["file"] == "migrations/versions/2579b38b2ff9_add_post_summary.py" and finding["line"] == 22
    assert "git checkout main -- migrations/versions/2579b38b2ff9_add_post_summary.py" in finding["fix"]
    pending = check_of(report, "plan")["facts"]["pending"]
    assert [(p["revision"], p["status"]) for p in pending] == [
        ("2579b38b2ff9", "modified"), ("d5decd537dcc", "new"), ("1c6c65a6982f", "new"), ("2a9afb34ba18", "new")]


def test_base_reader_parses_only_files_whose_blob_differs(tmp_path):
    """Of the base's revision files, only those whose git blob differs from the working tree's file
    are read and parsed; the unchanged ones are taken from the scan, and the comparison is the same."""
    from ci_migrate.checks import base_branch

    repo = pr_repo(tmp_path, "clean_pr", RISKY_BASE)
    merged = revision_file(repo, "2579b38b2ff9")  # a code change: modified
    merged.write_text(merged.read_text().replace("sa.String(length=280)", "sa.String(length=300)"))
    first = revision_file(repo, "6f27727a8d85")  # a message change: read, but not modified
    first.write_text(first.read_text().replace('"""create user and post tables', '"""create the user and post tables'))
    files = sorted((repo / "migrations" / "versions").glob("*.py"))
    blobs = base_branch.worktree_blobs(repo, files)
    assert blobs[files[0]] == git(repo, "hash-object", str(files[0])).strip()
    branch = [base_branch.BranchRevision(p.name.split("_", 1)[0], (), p, None, blobs[p]) for p in files]
    worktree = {f"migrations/versions/{b.path.name}": b for b in branch}
    tree = base_branch.GitTree(repo, git(repo, "rev-parse", "main").strip())
    base = tree.revisions(["migrations/versions"], False, worktree)
    assert sorted(base) == sorted(RISKY_BASE) and tree.parsed == 2
    comparison = base_branch.compare("main", branch, base, None)
    assert list(comparison.modified) == ["2579b38b2ff9"]

    first.write_text(git(repo, "show", f"main:migrations/versions/{first.name}"))
    merged.write_text(git(repo, "show", f"main:migrations/versions/{merged.name}"))
    blobs = base_branch.worktree_blobs(repo, files)
    for b in branch:
        b.blob = blobs[b.path]
    again = base_branch.GitTree(repo, git(repo, "rev-parse", "main").strip())
    base = again.revisions(["migrations/versions"], False, worktree)
    assert again.parsed == 0 and base["2579b38b2ff9"].text is None
    assert not base_branch.compare("main", branch, base, None).modified


def test_deleting_a_merged_revision_is_a_finding(cli, tmp_path):
    """The branch deletes main's head revision and re-points its own revision past it."""
    repo = pr_repo(tmp_path, "clean_pr", RISKY_BASE)
    revision_file(repo, "2579b38b2ff9").unlink()
    bio = revision_file(repo, "d5decd537dcc")
    bio.write_text(bio.read_text().replace("'2579b38b2ff9'", "'6f27727a8d85'"))
    result = cli("check", "--app", "app.py", "--base", "main", "--only", "graph,plan,lint", "--format", "json",
                 cwd=repo, env={"DATABASE_URL": "postgresql://app@db.internal/blog"})
    report = report_of(result)
    assert result.code == 1, result.text
    assert findings(report, "plan") == [("CM401", "2579b38b2ff9")]
    finding = check_of(report, "plan")["findings"][0]
    assert finding["title"] == "revision 2579b38b2ff9 is on main but this branch deletes its file"
    assert finding["fix"] == "Restore it: `git checkout main -- migrations/versions/2579b38b2ff9_add_post_summary.py`."


def test_revision_that_queries_the_database_is_not_analysed_without_a_sandbox(cli, tmp_path):
    """Offline SQL cannot render a revision that reads rows; without a replay nothing saw it run:
    lint says "not analysed" (warning), never "no risky operations"."""
    repo = pr_repo(tmp_path, "offline_unrenderable", RISKY_BASE)
    result = cli("check", "--app", "app.py", "--base", "main", "--only", "graph,plan,lint", "--format", "json",
                 cwd=repo, env={"DATABASE_URL": "postgresql://app@db.internal/blog"})
    report = report_of(result)
    assert result.code == 0, result.text
    assert findings(report) == [("CM404", "931ab01e298b"), ("CM516", "931ab01e298b")]
    lint = check_of(report, "lint")
    assert lint["status"] == "warning" and lint["summary"].startswith("not analysed: 1 of 2 pending revisions")
    assert "no risky operations" not in lint["summary"]
    finding = check_of(report, "plan")["findings"][0]
    assert finding["severity"] == "info" and finding["line"] == 28  # users = conn.execute(...).fetchall()
    slug, published = check_of(report, "plan")["facts"]["pending"]
    assert slug["sql"] is None and "fetchall" in slug["sql_error"]
    assert slug["operations"] == ["adds column `user.slug` VARCHAR(80), nullable"]  # recorded before it failed
    assert published["sql"].startswith("ALTER TABLE post ADD COLUMN published_at TIMESTAMP WITHOUT TIME ZONE;")


def test_sqlite_batch_revisions_render_where_they_can(cli, tmp_path):
    """Production on SQLite (the app's URL, sqlite sandbox): dropping a column needs reflection in
    batch mode, so that one revision has no offline SQL; the others do."""
    repo = pr_repo(tmp_path, "risky", RISKY_BASE)
    result = cli("check", "--app", "app.py", "--base", "main", "--only", "graph,plan,lint", "--format", "json",
                 cwd=repo)
    report = report_of(result)
    plan = check_of(report, "plan")["facts"]
    assert plan["dialect"] == "sqlite"
    assert [p["sql"] is not None for p in plan["pending"]] == [True, True, False]
    assert plan["pending"][2]["sql_error"]  # alembic >= 1.8: "... requires a live database connection ..."
    assert ("CM404", "537e5de07cd4") in findings(report)
    assert ("CM502", "537e5de07cd4") in findings(report)  # its operations were still linted
    assert ("CM507", "3aff0bf00a12") not in findings(report)  # PostgreSQL only


def test_multidb_sql_per_bind_and_no_files_left(cli, tmp_path):
    """Multidb env.py writes `<bind>.sql` files into the working directory in offline mode; the
    plan reads every bind's SQL and leaves no file behind."""
    repo = pr_repo(tmp_path, "multidb", ["a38dd2af5e4d", "d24caa29bc17"])
    result = cli("check", "--app", "app.py", "--base", "main", "--only", "graph,plan,lint", "--format", "json",
                 cwd=repo, env={"DATABASE_URL": "postgresql://app@db.internal/main"})
    report = report_of(result)
    login, last_login = check_of(report, "plan")["facts"]["pending"]
    assert login["revision"] == "678a04f7b50d" and last_login["revision"] == "c8bfe16d6ca7"
    assert last_login["sql"].splitlines() == [
        "-- bind: (default)",
        'ALTER TABLE "user" ADD COLUMN last_login_at TIMESTAMP WITHOUT TIME ZONE;',
        "UPDATE alembic_version SET version_num='c8bfe16d6ca7' WHERE alembic_version.version_num = '678a04f7b50d';",
        "-- bind: audit",
        "CREATE INDEX ix_audit_log_created_at ON audit_log (created_at);",
        "UPDATE alembic_version SET version_num='c8bfe16d6ca7' WHERE alembic_version.version_num = '678a04f7b50d';",
    ]
    (index,) = check_of(report, "lint")["findings"]
    assert (index["rule_id"], index["bind"]) == ("CM507", "audit")
    assert "op.create_index('ix_audit_log_created_at', 'audit_log', ['created_at'], postgresql_concurrently=True)" \
        in index["fix"]
    assert not list(repo.glob("*.sql")) and not list(Path.cwd().glob("*.sql"))


def test_custom_version_table_is_noted_for_offline_sql(cli, tmp_path):
    """Migrate(version_table=...) does not reach offline mode (P7): the SQL writes alembic_version."""
    repo = pr_repo(tmp_path, "risky", RISKY_BASE)
    app = repo / "app.py"
    app.write_text(app.read_text().replace("Migrate(app, db)", "Migrate(app, db, version_table='shop_version')"))
    result = cli("check", "--app", "app.py", "--base", "main", "--only", "graph,plan", "--format", "json", cwd=repo,
                 env={"DATABASE_URL": "postgresql://app@db.internal/shop"})
    report = report_of(result)
    (note,) = check_of(report, "plan")["findings"]
    assert note["rule_id"] == "CM405" and note["severity"] == "info" and note["file"] == "migrations/env.py"
    assert note["title"] == "the offline SQL updates alembic_version, but the app uses version_table='shop_version'"
    assert "UPDATE alembic_version" in check_of(report, "plan")["facts"]["pending"][0]["sql"]


def test_missing_base_ref_says_how_to_fetch_it(cli, tmp_path):
    repo = pr_repo(tmp_path, "risky", RISKY_BASE)
    result = cli("check", "--app", "app.py", "--base", "origin/main", cwd=repo)
    assert result.code == 2, result.text
    assert "--base origin/main: no such branch or commit in this clone" in result.err
    assert "git fetch origin main:refs/remotes/origin/main" in result.err and "fetch-depth: 0" in result.err
    assert "Traceback" not in result.text


def test_base_outside_a_git_checkout_is_a_usage_error(cli, tmp_path):
    app = copy_app("risky", tmp_path)
    result = cli("check", "--app", "app.py", "--base", "main", "--only", "graph,plan", cwd=app)
    assert result.code == 2
    assert "is not inside a git work tree" in result.err


def test_pull_request_base_comes_from_the_ci_environment(cli, tmp_path):
    """In a GitHub pull request GITHUB_BASE_REF=main means origin/main, as a CI clone has it."""
    origin = pr_repo(tmp_path, "risky", RISKY_BASE)
    clone = tmp_path / "clone"
    git(tmp_path, "clone", "-q", "-b", "feature", str(origin), str(clone))
    result = cli("check", "--app", "app.py", "--only", "graph,plan,lint", "--format", "json", cwd=clone,
                 env={"GITHUB_BASE_REF": "main"})
    report = report_of(result)
    plan = check_of(report, "plan")["facts"]
    assert plan["against"] == "base:origin/main"
    assert [p["revision"] for p in plan["pending"]] == RISKY_PR


def test_shallow_pull_request_clone_fails_loudly(cli, tmp_path):
    """GITHUB_BASE_REF names a base that a shallow checkout does not have: the pull request's revisions
    (one drops a column) were not reviewed, so the run fails (CM406, an error) and says how to fetch it."""
    origin = pr_repo(tmp_path, "risky", RISKY_BASE)
    clone = tmp_path / "shallow"
    git(tmp_path, "clone", "-q", "--depth", "1", "-b", "feature", f"file://{origin}", str(clone))
    result = cli("check", "--app", "app.py", "--only", "graph,plan,lint", "--format", "json", cwd=clone,
                 env={"GITHUB_BASE_REF": "main"})
    report = report_of(result)
    assert result.code == 1, result.text
    (finding,) = check_of(report, "plan")["findings"]
    assert finding["rule_id"] == "CM406" and finding["severity"] == "error"
    assert "origin/main is not in this clone" in finding["title"] and "fetch-depth: 0" in finding["fix"]
    assert "git fetch origin main:refs/remotes/origin/main" in finding["fix"] and 'GIT_DEPTH: "0"' in finding["fix"]
    assert finding["message"].startswith(f"no such branch or commit in this clone ({clone}).\nWithout it,")
    assert report["verdict"] == "failed"


def test_without_base_or_target_plan_is_silent_and_lint_says_why(cli, tmp_path):
    app = copy_app("risky", tmp_path)
    result = cli("check", "--app", "app.py", "--only", "graph,plan,lint", "--format", "json", cwd=app)
    report = report_of(result)
    assert result.code == 0, result.text
    assert [c["name"] for c in report["checks"]] == ["graph", "lint"]
    lint = check_of(report, "lint")
    assert lint["status"] == "skipped" and "--base origin/main" in lint["summary"]


# --------------------------------------------------------------------------- against a target database


def flask_upgrade(app: Path, url: str, revision: str) -> None:
    """Bring a database to ``revision`` the way a deploy does (test setup only)."""
    subprocess.run([sys.executable, "-m", "flask", "db", "upgrade", revision], cwd=app, check=True,
                   capture_output=True, env=clean_env({"DATABASE_URL": url, "FLASK_APP": "app.py"}))


@pytest.fixture
def staging_db(request):
    """A throwaway database on the PostgreSQL or MariaDB server standing in for staging."""
    import sqlalchemy as sa

    from ci_migrate.sandbox import normalize_url

    server = request.getfixturevalue("pg_server" if request.param == "postgresql" else "mysql_server")
    name = f"staging_{secrets.token_hex(4)}"
    admin = sa.create_engine(normalize_url(server + ("postgres" if request.param == "postgresql" else "")),
                             isolation_level="AUTOCOMMIT")
    quote = '"' if request.param == "postgresql" else "`"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {quote}{name}{quote}")
    try:
        yield server + name
    finally:
        with admin.connect() as conn:
            force = " WITH (FORCE)" if request.param == "postgresql" else ""
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {quote}{name}{quote}{force}")
        admin.dispose()


def plan_target(cli, app: Path, url: str, *extra: str):
    (app / ".ci-migrate.yml").write_text("app: app.py\ntargets:\n  staging:\n    url-env: STAGING_DATABASE_URL\n")
    return cli("plan", "--target", "staging", "--format", "json", *extra, cwd=app, env={"STAGING_DATABASE_URL": url})


def version_rows(url: str) -> list[tuple]:
    import sqlalchemy as sa

    from ci_migrate.sandbox import normalize_url

    engine = sa.create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            tables = sorted(sa.inspect(conn).get_table_names())
            return [("tables", *tables), *conn.exec_driver_sql("SELECT version_num FROM alembic_version")]
    finally:
        engine.dispose()


@pytest.mark.parametrize("staging_db", ["postgresql"], indirect=True)
def test_plan_against_a_postgres_target_at_a_middle_revision(cli, tmp_path, staging_db):
    app = pr_repo(tmp_path, "risky", RISKY_BASE)
    flask_upgrade(app, staging_db, "2579b38b2ff9")
    before = version_rows(staging_db)
    result = plan_target(cli, app, staging_db)
    report = report_of(result)
    assert result.code == 1, result.text
    assert report["command"] == "plan" and report["target"] == "staging" and report["sandbox"] is None
    assert [c["name"] for c in report["checks"]] == ["graph", "plan", "lint"]
    plan = check_of(report, "plan")["facts"]
    assert plan["against"] == "target:staging" and plan["dialect"] == "postgresql"
    assert plan["current"] == ["2579b38b2ff9"]
    assert [(p["revision"], p["status"]) for p in plan["pending"]] == [(r, "pending") for r in RISKY_PR]
    assert findings(report, "lint") == [("CM502", "537e5de07cd4"), ("CM504", "c18d439fc80f"),
                                        ("CM507", "3aff0bf00a12")]
    assert version_rows(staging_db) == before  # read-only: nothing written

    with_base = report_of(plan_target(cli, app, staging_db, "--base", "main"))
    assert [(p["status"], p["author"]) for p in check_of(with_base, "plan")["facts"]["pending"]] == [
        ("new", "PR Author")] * 3

    flask_upgrade(app, staging_db, "heads")
    result = plan_target(cli, app, staging_db)
    report = report_of(result)
    assert result.code == 0, result.text
    assert check_of(report, "plan")["summary"] == "target staging is at head (537e5de07cd4): nothing pending"
    assert check_of(report, "lint")["summary"] == "no pending revisions to lint"

    # a revision this checkout does not have (deployed from a branch that was never merged)
    set_version(staging_db, "f00dfacecafe")
    result = plan_target(cli, app, staging_db)
    report = report_of(result)
    assert result.code == 1, result.text
    assert findings(report) == [("CM403", None)]
    finding = check_of(report, "plan")["findings"][0]
    assert finding["title"] == "target staging is at revision f00dfacecafe, which this repository does not have"
    assert 'git log --all --oneline -S "f00dfacecafe"' in finding["fix"]
    assert check_of(report, "plan")["facts"]["pending"] == []


def set_version(url: str, revision: str) -> None:
    import sqlalchemy as sa

    from ci_migrate.sandbox import normalize_url

    engine = sa.create_engine(normalize_url(url))
    with engine.begin() as conn:
        conn.exec_driver_sql(f"UPDATE alembic_version SET version_num = '{revision}'")
    engine.dispose()


def test_unreachable_target_names_host_and_database_not_password(cli, tmp_path):
    app = copy_app("risky", tmp_path)
    result = plan_target(cli, app, "postgresql://deploy:s3cr3t-pw@127.0.0.1:1/shop_staging")
    assert result.code == 3, result.text
    assert "127.0.0.1:1" in result.err and "shop_staging" in result.err and "user deploy" in result.err
    assert "s3cr3t-pw" not in result.text and "Traceback" not in result.text


def test_unknown_target_is_a_config_error(cli, tmp_path):
    app = copy_app("risky", tmp_path)
    (app / ".ci-migrate.yml").write_text("app: app.py\ntargets:\n  staging:\n    url-env: STAGING_DATABASE_URL\n")
    result = cli("plan", "--target", "stagign", cwd=app, env={"STAGING_DATABASE_URL": "postgresql://x@h/db"})
    assert result.code == 2
    assert "unknown target 'stagign'" in result.err and "staging" in result.err


@pytest.mark.parametrize("staging_db", ["postgresql", "mysql"], indirect=True)
def test_target_connection_refuses_writes(staging_db):
    """``plan --target`` reads the target through the probe's read-only sessions."""
    import sqlalchemy as sa

    from ci_migrate.probe.glue import normalize_url
    from ci_migrate.probe.target import _read_only

    url = normalize_url(staging_db)
    engine = sa.create_engine(url)
    sa.event.listen(engine, "connect", _read_only(url.get_backend_name()), insert=True)
    try:
        with engine.connect() as conn:
            with pytest.raises(sa.exc.DBAPIError, match=re.compile("read.only", re.I)):
                conn.exec_driver_sql("CREATE TABLE should_not_exist (id INTEGER)")
    finally:
        engine.dispose()
    assert "should_not_exist" not in version_rows_tables(staging_db)


def version_rows_tables(url: str) -> list[str]:
    import sqlalchemy as sa

    from ci_migrate.sandbox import normalize_url

    engine = sa.create_engine(normalize_url(url))
    try:
        with engine.connect() as conn:
            return sa.inspect(conn).get_table_names()
    finally:
        engine.dispose()


@pytest.mark.parametrize("staging_db", ["mysql"], indirect=True)
def test_plan_against_mariadb_renders_mysql_sql_and_its_rules(cli, tmp_path, staging_db):
    """MariaDB: DDL is not transactional and index builds are online, so the rules differ."""
    app = copy_app("risky", tmp_path)
    flask_upgrade(app, staging_db, "2579b38b2ff9")
    report = report_of(plan_target(cli, app, staging_db))
    plan = check_of(report, "plan")["facts"]
    assert plan["dialect"] == "mysql" and plan["current"] == ["2579b38b2ff9"]
    assert plan["pending"][0]["sql"].startswith("ALTER TABLE user ADD COLUMN age INTEGER NOT NULL;")
    lint = {f["rule_id"]: f for f in check_of(report, "lint")["findings"]}
    assert sorted(lint) == ["CM502", "CM504"]  # no CM507: InnoDB builds indexes without blocking writes
    assert lint["CM504"]["severity"] == "warning" and "silently fill" in lint["CM504"]["message"]
    assert check_of(report, "lint")["facts"]["squawk"] is None  # squawk is PostgreSQL only


def test_plan_against_a_multidb_target_reads_every_bind(cli, tmp_path, pg_server):
    """The default bind is at head but the audit bind is two revisions behind: those are pending."""
    from test_env_shapes import scratch_database

    app = copy_app("multidb", tmp_path)
    (app / ".ci-migrate.yml").write_text("app: app.py\ntargets:\n  staging:\n    url-env: STAGING_URL\n"
                                         "    binds: {audit: STAGING_AUDIT_URL}\n")
    with scratch_database(pg_server) as main, scratch_database(pg_server) as audit:
        subprocess.run([sys.executable, "-m", "flask", "db", "upgrade"], cwd=app, check=True, capture_output=True,
                       env=clean_env({"DATABASE_URL": main, "AUDIT_DATABASE_URL": audit, "FLASK_APP": "app.py"}))
        set_version(audit, "d24caa29bc17")
        result = cli("plan", "--target", "staging", "--format", "json", cwd=app,
                     env={"STAGING_URL": main, "STAGING_AUDIT_URL": audit})
    report = report_of(result)
    plan = check_of(report, "plan")["facts"]
    assert [p["revision"] for p in plan["pending"]] == ["678a04f7b50d", "c8bfe16d6ca7"], result.text
    assert plan["current"] == ["c8bfe16d6ca7", "d24caa29bc17"]


@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
def test_a_revision_that_reads_the_database_is_recorded_while_it_runs(cli, tmp_path, server):
    """Offline SQL cannot render 931ab01e298b (it reads rows with op.get_bind()), but it runs on the
    sandbox: its operations and the statements it sends through the connection are recorded there, so
    lint sees them (CM513: data and schema together, here a set-based UPDATE added to its loop, which
    runs even on the empty sandbox) and the lock trace follows it."""
    repo = pr_repo(tmp_path, "offline_unrenderable", RISKY_BASE)
    revision = next((repo / "migrations" / "versions").glob("931ab01e298b_*.py"))
    text = revision.read_text()
    revision.write_text(text.replace("""                     {'slug': username.lower().replace(' ', '-'), 'id': user_id})\n""",
                                     """                     {'slug': username.lower().replace(' ', '-'), 'id': user_id})\n"""
                                     """    conn.execute(sa.text('UPDATE "user" SET slug = lower(username) WHERE slug IS NULL'))\n""", 1))
    git(repo, "commit", "-q", "-am", "backfill the rest in one statement", author="PR Author")
    result = cli("check", "--app", "app.py", "--base", "main", "--sandbox", server, "--format", "json",
                 cwd=repo, env={"DATABASE_URL": "postgresql://app@db.internal/blog"})
    report = report_of(result)
    lint = check_of(report, "lint")
    assert ("CM513", "931ab01e298b") in [(f["rule_id"], f["revision"]) for f in lint["findings"]], result.text
    assert "CM516" not in [f["rule_id"] for f in lint["findings"]]
    cm404 = [f for f in check_of(report, "plan")["findings"] if f["rule_id"] == "CM404"]
    assert cm404 and "recorded while it ran on the sandbox" in cm404[0]["message"]
    slug = check_of(report, "plan")["facts"]["pending"][0]
    assert slug["sql"].startswith("-- as run on the sandbox") and 'UPDATE "user" SET slug = lower' in slug["sql"]
    traced = {r["revision"]: r for r in check_of(report, "locks")["facts"]["revisions"]}
    assert traced["931ab01e298b"]["statements"] >= 2
