"""schema_snapshot.snapshot + schema_change.schema_change on real databases: a PostgreSQL database
and a SQLite file are reflected before and after real DDL, and the change between them is read back."""

from __future__ import annotations

import contextlib
import json
import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from ci_migrate.sandbox import normalize_url
from ci_migrate.schema_change import SchemaChangeFacts, combine, schema_change
from ci_migrate.probe.snapshot import snapshot

BEFORE = [
    'CREATE TABLE "user" (id INTEGER PRIMARY KEY, username VARCHAR(64) NOT NULL, email VARCHAR(120) NOT NULL)',
    "CREATE TABLE post (id INTEGER PRIMARY KEY, title VARCHAR(140) NOT NULL, summary VARCHAR(280),"
    ' user_id INTEGER NOT NULL REFERENCES "user" (id))',
    "CREATE TABLE legacy (id INTEGER PRIMARY KEY, note TEXT)",
    "CREATE TABLE alembic_version (version_num VARCHAR(32) NOT NULL PRIMARY KEY)",
]
# What a pull request's revisions do: a new table with FKs, an index and a check; a column
# added, one dropped, one widened and made nullable; a table dropped; a unique constraint.
CHANGES = [
    "CREATE TABLE comment (id INTEGER PRIMARY KEY, post_id INTEGER NOT NULL REFERENCES post (id)"
    " ON DELETE CASCADE, body TEXT NOT NULL, CONSTRAINT ck_comment_body CHECK (length(body) > 0))",
    "CREATE INDEX ix_comment_post_id ON comment (post_id)",
    "ALTER TABLE post DROP COLUMN summary",
    "ALTER TABLE \"user\" ADD COLUMN bio VARCHAR(250) DEFAULT 'none' NOT NULL",
    "DROP TABLE legacy",
]
PG_ONLY = [
    'ALTER TABLE "user" ALTER COLUMN email TYPE VARCHAR(200)',
    'ALTER TABLE "user" ALTER COLUMN email DROP NOT NULL',
    'ALTER TABLE "user" ADD CONSTRAINT uq_user_username UNIQUE (username)',
]


@contextlib.contextmanager
def fresh_database(server: str, prefix: str) -> Iterator[sa.engine.Engine]:
    """A new database on ``server`` (a PostgreSQL or MariaDB URL without a database), dropped after."""
    name = f"{prefix}_{secrets.token_hex(4)}"
    admin_url = normalize_url(server + ("postgres" if server.startswith("postgresql") else ""))
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    engine = sa.create_engine(admin_url.set(database=name))
    try:
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE {name}")
        admin.dispose()


@pytest.fixture
def pg_engine(pg_server: str) -> Iterator[sa.engine.Engine]:
    with fresh_database(pg_server, "test_schema_change") as engine:
        yield engine


def run(engine: sa.engine.Engine, statements: list[str]) -> None:
    with engine.begin() as conn:
        for sql in statements:
            conn.exec_driver_sql(sql)


def by_name(items: list, name: str):
    return next(i for i in items if i.name == name)


def test_postgresql_change_before_and_after(pg_engine: sa.engine.Engine) -> None:
    run(pg_engine, BEFORE)
    before = snapshot(pg_engine)
    run(pg_engine, CHANGES + PG_ONLY)
    after = snapshot(pg_engine)
    assert "alembic_version" not in before
    assert json.loads(json.dumps(after)) == after  # plain data: what a probe can send as JSON

    facts = schema_change(before, after, revisions=["57e3c567681b"])
    assert [(t.name, t.change) for t in facts.tables] == [
        ("comment", "added"), ("legacy", "dropped"), ("post", "changed"), ("user", "changed")]
    comment = by_name(facts.tables, "comment")
    assert [(c.name, c.after.type, c.after.nullable, c.after.primary_key) for c in comment.columns] == [
        ("id", "INTEGER", False, True), ("post_id", "INTEGER", False, False), ("body", "TEXT", False, False)]
    assert [(i.name, i.columns, i.change) for i in comment.indexes] == [("ix_comment_post_id", ["post_id"], "added")]
    (fk,) = comment.foreign_keys
    assert (fk.columns, fk.referred_table, fk.referred_columns, fk.ondelete) == (["post_id"], "post", ["id"], "CASCADE")
    (check,) = comment.constraints
    assert (check.kind, check.name, check.change) == ("check", "ck_comment_body", "added")
    assert "length(body) > 0" in check.sqltext

    post = by_name(facts.tables, "post")
    (summary,) = post.columns
    assert (summary.name, summary.change, summary.after) == ("summary", "dropped", None)
    assert (summary.before.type, summary.before.nullable) == ("VARCHAR(280)", True)

    user = by_name(facts.tables, "user")
    bio, email = by_name(user.columns, "bio"), by_name(user.columns, "email")
    assert (bio.change, bio.before, bio.after.type, bio.after.nullable) == ("added", None, "VARCHAR(250)", False)
    assert bio.after.default is not None and "none" in bio.after.default
    assert email.change == "changed"
    assert (email.before.type, email.before.nullable, email.after.type, email.after.nullable) == (
        "VARCHAR(120)", False, "VARCHAR(200)", True)
    (unique,) = user.constraints
    assert (unique.kind, unique.name, unique.columns, unique.change) == ("unique", "uq_user_username", ["username"], "added")
    assert user.indexes == []  # the unique constraint's own index is not listed twice

    legacy = by_name(facts.tables, "legacy")
    assert [(c.name, c.change) for c in legacy.columns] == [("id", "dropped"), ("note", "dropped")]

    # shapes for the diagram: touched tables after the change (legacy as it was) + neighbours
    assert sorted(s.name for s in facts.schemas) == ["comment", "legacy", "post", "user"]
    comment_shape = by_name(facts.schemas, "comment")
    assert by_name(comment_shape.columns, "post_id").foreign_key == "post.id"
    assert facts.revisions == ["57e3c567681b"]
    again = SchemaChangeFacts.model_validate_json(facts.model_dump_json())
    assert again == facts


def test_sqlite_change_and_neighbours(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'sandbox.db'}")
    run(engine, BEFORE + ["CREATE TABLE tag (id INTEGER PRIMARY KEY, post_id INTEGER REFERENCES post (id))"])
    before = snapshot(engine)
    run(engine, CHANGES)
    after = snapshot(engine)
    engine.dispose()

    facts = schema_change(before, after, bind="audit")
    assert [(t.name, t.change, t.bind) for t in facts.tables] == [
        ("comment", "added", "audit"), ("legacy", "dropped", "audit"), ("post", "changed", "audit"),
        ("user", "changed", "audit")]
    assert [(c.name, c.change) for c in by_name(facts.tables, "post").columns] == [("summary", "dropped")]
    assert [(c.name, c.change) for c in by_name(facts.tables, "user").columns] == [("bio", "added")]
    assert by_name(facts.tables, "comment").foreign_keys[0].referred_table == "post"
    # tag references the changed post table: a direct neighbour, shown for context
    assert sorted(s.name for s in facts.schemas) == ["comment", "legacy", "post", "tag", "user"]


def test_no_change_and_combined_binds(tmp_path: Path) -> None:
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'same.db'}")
    run(engine, BEFORE)
    same = snapshot(engine)
    engine.dispose()
    assert schema_change(same, same) == SchemaChangeFacts()
    one = schema_change({}, {"a": {"columns": [{"name": "id", "type": "INTEGER"}]}}, revisions=["r1"])
    two = schema_change({"b": {"columns": [{"name": "id", "type": "INTEGER"}]}}, {}, bind="audit",
                        revisions=["r1", "r2"])
    both = combine([one, two])
    assert [(t.name, t.bind, t.change) for t in both.tables] == [("a", None, "added"), ("b", "audit", "dropped")]
    assert both.revisions == ["r1", "r2"]


@pytest.fixture
def kind(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[sa.engine.Engine]:
    """A fresh database of the parametrized kind (``sqlite``, ``postgresql``, ``mysql``)."""
    kind = request.param
    if kind == "sqlite":
        engine = sa.create_engine(f"sqlite:///{tmp_path / 'kind.db'}")
        yield engine
        engine.dispose()
        return
    server = request.getfixturevalue("pg_server" if kind == "postgresql" else "mysql_server")
    with fresh_database(server, "ci_migrate_test_snapshot") as engine:
        yield engine


@pytest.mark.parametrize("kind", ["sqlite", "postgresql", "mysql"], indirect=True)
def test_batch_reflection_equals_table_by_table(kind: sa.engine.Engine) -> None:
    """SQLAlchemy 2's get_multi_* path and the per-table path (SQLAlchemy 1.4) give the same snapshot,
    and ``only`` keeps just the tables named."""
    statements = [s.replace('"user"', "`user`") for s in BEFORE + CHANGES] \
        if kind.dialect.name in ("mysql", "mariadb") else BEFORE + CHANGES
    run(kind, statements)
    batched = snapshot(kind)
    assert sorted(batched) == ["comment", "post", "user"]
    assert batched == snapshot(kind, batched=False)
    assert batched["comment"]["foreign_keys"][0]["referred_table"] == "post"
    assert any(i["name"] == "ix_comment_post_id" for i in batched["comment"]["indexes"])
    only = snapshot(kind, only=["post", "missing"])
    assert only == {"post": batched["post"]}
