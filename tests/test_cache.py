"""Cached base snapshots (ci_migrate.cache) through the real CLI on real databases.

Every fixture app of tests/apps/ whose history replays is made a pull request (its head revisions
new on a branch) and checked twice with one cache directory: cold (full replay, the snapshot is
built) and warm (restored, only the pending revisions replayed). Both runs keep their sandbox; its
whole schema and version tables are reflected and must be equal, as must every finding.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
import sqlalchemy as sa
from support import SANDBOX_PREFIX, copy_app, sandbox_databases

from ci_migrate.probe.snapshot import snapshot
from ci_migrate.sandbox import normalize_url

SQLITE_APPS = ["clean", "tutorial_drift", "multidb", "branch_merge", "empty_message", "leaky_downgrade", "slow_apply",
               "risky", "clean_pr", "offline_unrenderable", "schema_pr", "plugins", "baseline_needed",
               "examples/blog"]
SERVER_APPS = {"postgresql": ["clean", "multidb", "locking", "risky_more", "interrupted_apply", "schema_pr",
                              "baseline_needed"],
               "mysql": ["clean", "multidb", "schema_pr"]}
#: Apps that replay only with a config of their own (written before the base commit).
CONFIGS = {"baseline_needed": "app: app.py\nbaseline:\n  revision: base\n  schema: schema.sql\n"}
ENV = {"DATABASE_URL": "sqlite://", "AUDIT_DATABASE_URL": "sqlite://"}


def git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.email=ci@example.com", "-c", "user.name=CI", *args], cwd=cwd,
                          check=True, capture_output=True, text=True).stdout


def heads_of(versions: Path) -> list[Path]:
    """The revision files no other revision names as its parent."""
    import re

    files = sorted(versions.glob("*.py"))
    texts = {p: p.read_text() for p in files}
    ids = {p: re.search(r"^revision\s*(?::\s*str)?\s*=\s*['\"](\w+)['\"]", t, re.MULTILINE)[1] for p, t in texts.items()}
    parents = "".join(re.search(r"^down_revision[^=]*=(.*)$", t, re.MULTILINE)[1] for t in texts.values())
    return [p for p in files if f"'{ids[p]}'" not in parents and f'"{ids[p]}"' not in parents]


def pull_request(app: str, tmp_path: Path) -> Path:
    """The app as a git repository: main without its head revision(s), the checked-out branch with them."""
    repo = copy_app(app, tmp_path)
    if app in CONFIGS:
        (repo / ".ci-migrate.yml").write_text(CONFIGS[app])
    aside = tmp_path / "aside"
    aside.mkdir()
    moved = heads_of(repo / "migrations" / "versions")
    for path in moved:
        path.rename(aside / path.name)
    git(repo, "init", "-q", "-b", "main")
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "base")
    git(repo, "checkout", "-q", "-b", "feature")
    for path in moved:
        (aside / path.name).rename(path)
    git(repo, "add", "-A")
    git(repo, "commit", "-q", "-m", "pull request")
    return repo


def sqlite_sandboxes() -> set[Path]:
    return {p for p in Path(tempfile.gettempdir()).glob(f"{SANDBOX_PREFIX}_2*") if p.is_dir()}


def reflect(url: str, server: str) -> dict:
    """Every database of the kept sandbox at ``url`` (all binds): the schema and the version tables' rows."""
    main = normalize_url(url)
    if main.get_backend_name() == "sqlite":
        urls = [normalize_url(f"sqlite:///{p}") for p in sorted(Path(main.database).parent.glob("*.db"))]
    else:
        urls = [main.set(database=n) for n in sorted(sandbox_databases(server)) if n.startswith(main.database)]
    out = {}
    for bind_url in urls:
        engine = sa.create_engine(bind_url)
        try:
            with engine.connect() as conn:
                schema = snapshot(conn, exclude=())
                versions = {t: sorted(tuple(r) for r in conn.exec_driver_sql(f"SELECT * FROM {t}"))
                            for t in schema if t.startswith("alembic_version")}
        finally:
            engine.dispose()
        out[Path(bind_url.database).name.replace(main.database, "")] = (schema, versions)
    return out


def drop_kept(server: str, before_db: set[str], before_dirs: set[Path]) -> None:
    for path in sqlite_sandboxes() - before_dirs:
        shutil.rmtree(path, ignore_errors=True)
    if server == "sqlite":
        return
    left = set(sandbox_databases(server)) - before_db
    url = normalize_url(server + ("postgres" if server.startswith("postgresql") else ""))
    engine = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for name in left:
            conn.exec_driver_sql(f'DROP DATABASE "{name}"' if server.startswith("postgresql")
                                 else f"DROP DATABASE `{name}`")
    engine.dispose()


def run(cli, repo: Path, server: str, cache: Path) -> tuple[dict, dict]:
    """One PR run keeping its sandboxes; returns the report and the main sandbox, reflected."""
    before_db = set(sandbox_databases(server)) if server != "sqlite" else set()
    before_dirs = sqlite_sandboxes()
    result = cli("check", "--sandbox", server, "--base", "main", "--format", "json", "--keep-sandbox",
                 "--cache-dir", str(cache), cwd=repo, env=ENV)
    try:
        assert result.out.strip().startswith("{"), result.text
        report = json.loads(result.out)
        return report, reflect(report["sandbox"]["url"], server)
    finally:
        drop_kept(server, before_db, before_dirs)


def findings(report: dict) -> list[tuple]:
    return sorted((c["name"], c["status"], f["rule_id"], f["severity"], f["revision"] or "", f["file"] or "",
                   f["line"] or 0, f["title"]) for c in report["checks"] for f in c["findings"])


def cold_and_warm(cli, app: str, server: str, tmp_path: Path) -> None:
    repo = pull_request(app, tmp_path)
    cache = tmp_path / "cache"
    cold, cold_schema = run(cli, repo, server, cache)
    warm, warm_schema = run(cli, repo, server, cache)
    cold_replay = next(c for c in cold["checks"] if c["name"] == "replay")
    warm_replay = next(c for c in warm["checks"] if c["name"] == "replay")
    assert cold_replay["status"] in ("passed", "warning", "info"), cold_replay["summary"]
    assert cold_replay["facts"]["cache"]["state"] == "built", cold_replay["facts"]["cache"]
    assert warm_replay["facts"]["cache"]["state"] == "restored", (warm_replay["facts"]["cache"], warm["notes"])
    assert len(warm_replay["facts"]["revisions"]) < len(cold_replay["facts"]["revisions"])
    assert warm_replay["facts"]["heads_after"] == cold_replay["facts"]["heads_after"]
    assert warm_schema == cold_schema and cold_schema
    assert findings(warm) == findings(cold)
    assert warm.get("schema_change") == cold.get("schema_change")
    assert [(c["name"], c["status"]) for c in warm["checks"]] == [(c["name"], c["status"]) for c in cold["checks"]]


@pytest.mark.parametrize("server", ["sqlite"], indirect=True)
@pytest.mark.parametrize("app", SQLITE_APPS)
def test_cold_and_warm_runs_agree_on_sqlite(cli, app, server, tmp_path):
    cold_and_warm(cli, app, server, tmp_path)


@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
@pytest.mark.parametrize("app", SERVER_APPS["postgresql"])
def test_cold_and_warm_runs_agree_on_postgresql(cli, app, server, tmp_path):
    cold_and_warm(cli, app, server, tmp_path)


@pytest.mark.parametrize("server", ["mysql"], indirect=True)
@pytest.mark.parametrize("app", SERVER_APPS["mysql"])
def test_cold_and_warm_runs_agree_on_mariadb(cli, app, server, tmp_path):
    cold_and_warm(cli, app, server, tmp_path)


def console_run(cli, repo: Path, cache: Path | str, *extra: str, env: dict | None = None):
    return cli("check", "--base", "main", *extra, *(["--cache-dir", str(cache)] if cache else []), cwd=repo,
               env={**ENV, **(env or {})})


def snapshot_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if "base snapshot" in line]


def test_a_changed_env_py_or_base_revision_is_another_key(cli, tmp_path):
    """The key covers env.py and every revision the snapshot holds: after either changes, the run
    finds no snapshot for its key, says so in one line and replays in full."""
    repo = pull_request("clean", tmp_path)
    cache = tmp_path / "cache"
    cold = console_run(cli, repo, cache)
    assert cold.code == 0, cold.text
    assert len(snapshot_lines(cold.out)) == 1 and "no cached snapshot of the base" in cold.out
    warm = console_run(cli, repo, cache)
    assert warm.code == 0 and snapshot_lines(warm.out) == [], warm.text
    assert "+ the base's 11 from the cached snapshot, copy" in warm.out, warm.text

    env_py = repo / "migrations" / "env.py"
    env_py.write_text(env_py.read_text() + "\n# a comment changes the key\n")
    changed = console_run(cli, repo, cache)
    (line,) = snapshot_lines(changed.out)
    assert "full replay — no cached snapshot of the base" in line, changed.text
    restored = console_run(cli, repo, cache)
    assert snapshot_lines(restored.out) == [], restored.text

    # the base moves on: main gets a revision file the snapshot would hold (a changed first revision)
    first = min((repo / "migrations" / "versions").glob("*.py"))
    git(repo, "checkout", "-q", "main")
    first.write_text(first.read_text() + "\n# edited on main\n")
    git(repo, "commit", "-q", "-am", "edit on main")
    git(repo, "checkout", "-q", "feature")
    git(repo, "merge", "-q", "--no-edit", "main")
    moved = console_run(cli, repo, cache)
    (line,) = snapshot_lines(moved.out)
    assert "no cached snapshot of the base" in line, moved.text


def test_key_inputs_change_with_each_input(tmp_path):
    from dataclasses import replace

    from ci_migrate.cache.key import KeyInputs, revision_digests

    a, b = tmp_path / "a.py", tmp_path / "b.py"
    a.write_text("revision = 'a'\n")
    b.write_text("revision = 'b'\n")
    inputs = KeyInputs(dialect="postgresql", server_major="15", tool_version="0.1.0",
                       stack={"python": "3.11", "packages": {"alembic": "1.20.1"}}, heads=("b",),
                       revisions=revision_digests({"a": a, "b": b}, ["a", "b"]), files=(("env.py", "1"),),
                       binds=("",), version_table=".alembic_version", settings={"extensions": []})
    key = inputs.key()
    assert key == replace(inputs).key() and len(key.digest) == 64
    b.write_text("revision = 'b'\n# changed\n")
    changed = [replace(inputs, revisions=revision_digests({"a": a, "b": b}, ["a", "b"])),
               replace(inputs, files=(("env.py", "2"),)), replace(inputs, server_major="16"),
               replace(inputs, stack={"python": "3.11", "packages": {"alembic": "1.20.2"}}),
               replace(inputs, tool_version="0.2.0"), replace(inputs, settings={"extensions": ["citext"]}),
               replace(inputs, heads=("a",)), replace(inputs, dialect="sqlite")]
    assert len({k.key().digest for k in changed} | {key.digest}) == len(changed) + 1


@pytest.mark.parametrize("server", ["sqlite", "postgresql"], indirect=True)
def test_a_corrupt_cache_means_a_full_replay_said_in_one_line(cli, server, tmp_path):
    repo = pull_request("schema_pr", tmp_path)
    cache = tmp_path / "cache"
    cold = console_run(cli, repo, cache, "--sandbox", server, "--format", "json")
    assert cold.code == 0, cold.text
    (entry,) = [p for p in cache.glob("*/*") if p.is_dir()]
    manifest = entry / "manifest.json"
    saved = manifest.read_text()
    manifest.write_text(saved[: len(saved) // 2])  # a manifest cut in half
    broken = console_run(cli, repo, cache, "--sandbox", server)
    (line,) = snapshot_lines(broken.out)
    assert broken.code == 0, broken.text
    assert line == f"note: base snapshot: full replay — the cache entry {entry} is corrupt " + line.split("corrupt ", 1)[1]
    report = json.loads(console_run(cli, repo, cache, "--sandbox", server, "--format", "json").out)
    replay = next(c for c in report["checks"] if c["name"] == "replay")
    assert replay["facts"]["cache"]["state"] == "restored"  # the corrupt entry was replaced by the full run

    data = json.loads((entry / "manifest.json").read_text())
    name = next(iter(data["files"].values()), None)
    if name is not None:  # a file of the snapshot changed behind the manifest's back
        (entry / name).write_bytes((entry / name).read_bytes() + b"\n-- changed\n")
        data["templates"] = {}  # PostgreSQL: the dump is what is left to restore from
        manifest.write_text(json.dumps(data))
        again = json.loads(console_run(cli, repo, cache, "--sandbox", server, "--format", "json").out)
        replay = next(c for c in again["checks"] if c["name"] == "replay")
        assert replay["facts"]["cache"]["state"] == "built"
        assert "sha256 differs" in replay["facts"]["cache"]["reason"]
        assert [n for n in again["notes"] if "base snapshot" in n] == [
            (f"base snapshot: full replay — the cache file {entry / name} is corrupt (its sha256 differs from the "
             "manifest's)")]


def test_cache_dir_from_the_file_the_environment_and_the_flag(cli, tmp_path):
    repo = pull_request("clean_pr", tmp_path)
    for where, extra, env in (("file", (), {"CI_MIGRATE_CACHE_DIR": ""}), ("env", (), {"CI_MIGRATE_CACHE_DIR": str(tmp_path / "env")}),
                              ("flag", ("--cache-dir", str(tmp_path / "flag")), {})):
        (repo / ".ci-migrate.yml").write_text(f"app: app.py\ncache-dir: {tmp_path / 'file'}\n" if where == "file"
                                              else "app: app.py\n")
        result = cli("check", "--base", "main", *extra, cwd=repo, env={**ENV, **env})
        assert result.code == 0, result.text
        assert (tmp_path / where).is_dir() and list((tmp_path / where).glob("sqlite-*/*/manifest.json")), where
    off = cli("check", "--base", "main", "--cache-dir", "off", "--format", "json", cwd=repo, env=ENV)
    replay = next(c for c in json.loads(off.out)["checks"] if c["name"] == "replay")
    assert (replay["facts"]["cache"]["state"], replay["facts"]["cache"]["reason"]) == (
        "unsaved", "the cache is off (cache-dir: off)")


def test_default_cache_dir_is_the_user_cache_dir(cli, tmp_path):
    repo = pull_request("clean_pr", tmp_path)
    (repo / ".ci-migrate.yml").write_text("app: app.py\n")
    result = cli("check", "--base", "main", cwd=repo, env={**ENV, "XDG_CACHE_HOME": str(tmp_path / "xdg"),
                                                          "CI_MIGRATE_CACHE_DIR": ""})
    assert result.code == 0, result.text
    assert list((tmp_path / "xdg" / "ci-migrate").glob("sqlite-*/*/manifest.json")), result.text


def test_a_cache_dir_that_is_a_file_is_a_usage_error(cli, tmp_path):
    repo = pull_request("clean_pr", tmp_path)
    (repo / ".ci-migrate.yml").write_text("app: app.py\n")
    a_file = tmp_path / "not-a-dir"
    a_file.write_text("x")
    flag = cli("check", "--base", "main", "--cache-dir", str(a_file), cwd=repo, env=ENV)
    assert flag.code == 2 and f"--cache-dir: {a_file} is a file, not a directory" in flag.err, flag.text
    env = cli("check", "--base", "main", cwd=repo, env={**ENV, "CI_MIGRATE_CACHE_DIR": str(a_file)})
    assert env.code == 2 and f"CI_MIGRATE_CACHE_DIR: {a_file} is a file, not a directory" in env.err, env.text
    (repo / ".ci-migrate.yml").write_text("app: app.py\ncache-dir: ../not-a-dir\n")
    no_env = {**ENV, "CI_MIGRATE_CACHE_DIR": ""}
    file = cli("check", "--base", "main", cwd=repo, env=no_env)
    assert file.code == 2 and ".ci-migrate.yml:2:" in file.err and "not-a-dir is a file" in file.err, file.text
    (repo / ".ci-migrate.yml").write_text("app: app.py\ncache-dir: ''\n")
    empty = cli("check", "--base", "main", cwd=repo, env=no_env)
    assert empty.code == 2 and "must be a directory path, or off" in empty.err, empty.text


@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
def test_postgresql_restores_from_the_dump_when_the_template_is_gone(cli, server, tmp_path):
    """A new PostgreSQL server each run (a CI service container): the template database is gone, the
    dump in the cache directory restores the base, and the template is made again for the walks."""
    repo = pull_request("schema_pr", tmp_path)
    cache = tmp_path / "cache"
    cold = json.loads(console_run(cli, repo, cache, "--sandbox", server, "--format", "json").out)
    (entry,) = [p for p in cache.glob("*/*") if p.is_dir()]
    manifest = json.loads((entry / "manifest.json").read_text())
    assert manifest["files"] and manifest["templates"], manifest
    engine = sa.create_engine(normalize_url(server + "postgres"), isolation_level="AUTOCOMMIT")
    with engine.connect() as conn:
        for template in manifest["templates"].values():
            conn.exec_driver_sql(f'DROP DATABASE "{template}"')
    engine.dispose()
    warm = json.loads(console_run(cli, repo, cache, "--sandbox", server, "--format", "json").out)
    replay = next(c for c in warm["checks"] if c["name"] == "replay")
    assert (replay["facts"]["cache"]["state"], replay["facts"]["cache"]["how"]) == ("restored", "dump")
    assert findings(warm) == findings(cold) and warm["schema_change"] == cold["schema_change"]
    again = json.loads(console_run(cli, repo, cache, "--sandbox", server, "--format", "json").out)
    replay = next(c for c in again["checks"] if c["name"] == "replay")
    assert replay["facts"]["cache"]["how"] == "template"  # made again from the restored sandbox


def test_a_pull_request_that_modifies_a_merged_revision_replays_in_full(cli, tmp_path):
    """A modified merged revision (here in the middle of the history) runs before the base's heads:
    what stands there is not the base, so no snapshot is used or kept (the plan reports CM401); the
    replay still passes, its schema change taken above the last revision that is not pending."""
    repo = pull_request("clean", tmp_path)
    middle = repo / "migrations" / "versions" / "1217fcb42dcc_allow_anonymous_comments.py"
    middle.write_text(middle.read_text().replace("def upgrade():\n", "def upgrade():\n    pass\n", 1))
    result = console_run(cli, repo, tmp_path / "cache", "--format", "json")
    report = json.loads(result.out)
    replay = next(c for c in report["checks"] if c["name"] == "replay")
    assert replay["facts"]["cache"] is None
    assert replay["status"] == "passed", replay["summary"]
    assert [t["name"] for t in report["schema_change"]["tables"]] == ["user"], report["schema_change"]
    assert ("CM401" in {f["rule_id"] for c in report["checks"] for f in c["findings"]}), result.text
    assert not list((tmp_path / "cache").glob("*/*/manifest.json"))


def test_a_cache_that_cannot_be_written_never_fails_the_run(cli, tmp_path):
    import sqlite3

    repo = pull_request("schema_pr", tmp_path)
    cache = tmp_path / "cache"
    cache.mkdir()
    (cache / f"sqlite-{sqlite3.sqlite_version.split('.')[0]}").write_text("a file where the entries would go")
    result = console_run(cli, repo, cache)
    assert result.code == 0, result.text
    (line,) = [line for line in snapshot_lines(result.out) if "not kept" in line]
    assert line.startswith("note: base snapshot not kept: ") and "Error" in line, result.text
    assert "✔  replay" in result.out and "✔  roundtrip" in result.out


def test_a_pull_request_on_an_empty_base_keeps_no_snapshot(cli, tmp_path):
    """plain_base has one revision: as a pull request, its base has none, and nothing is kept."""
    repo = pull_request("plain_base", tmp_path)
    result = console_run(cli, repo, tmp_path / "cache", "--format", "json")
    report = json.loads(result.out)
    assert result.code == 0, result.text
    assert next(c for c in report["checks"] if c["name"] == "replay")["facts"]["cache"] is None
    assert [n for n in report["notes"] if "base snapshot" in n] == []


@pytest.mark.parametrize("server", ["postgresql"], indirect=True)
@pytest.mark.parametrize("config, made", [("", 3), ("checks:\n  roundtrip: false\n", 2), ("checks:\n  locks: all\n", 3)])
def test_the_walks_databases_are_copied_ahead_as_many_as_they_use(cli, server, tmp_path, config, made):
    """The lock trace and the round trip over the pending revisions each get a copy of the base
    snapshot, made while the probe replays; a walk that is off, or starts from empty (scope all),
    gets none (it makes an empty database of its own): nothing is copied that no walk uses (the run's
    kept sandboxes are counted: the main one and one per walk)."""
    repo = pull_request("locking", tmp_path)
    (repo / ".ci-migrate.yml").write_text(config)
    git(repo, "commit", "-q", "-am", "config")
    cache = tmp_path / "cache"
    for state in ("built", "restored"):
        before_db = set(sandbox_databases(server))
        result = cli("check", "--sandbox", server, "--base", "main", "--format", "json", "--keep-sandbox",
                     "--cache-dir", str(cache), cwd=repo, env=ENV)
        try:
            report = json.loads(result.out)
            replay = next(c for c in report["checks"] if c["name"] == "replay")
            assert replay["facts"]["cache"]["state"] == state, report["notes"]
            databases = set(sandbox_databases(server)) - before_db
            assert len(databases) == made, sorted(databases)
        finally:
            drop_kept(server, before_db, set())
