"""Baseline schema files as the dump tools write them (ci_migrate/baseline.py): real dumps made here by
the machine's pg_dump and mariadb-dump of databases this test creates, loaded into fresh databases
and dumped again; plain SQL for SQLite; the errors a user sees; extensions in the sandbox."""

from __future__ import annotations

import re
import secrets
import sqlite3
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa
from support import MYSQL_SERVER, PG_SERVER

from ci_migrate.baseline import ExtensionError, SchemaLoadError, create_extensions, load_schema, statements
from ci_migrate.sandbox import normalize_url

PG_OBJECTS = r"""
CREATE TYPE mood AS ENUM ('ok', 'semi;colon', 'it''s');
CREATE TABLE account (
    id serial PRIMARY KEY,
    name text NOT NULL DEFAULT 'a;b',
    path text DEFAULT 'C:\',
    note text,
    m mood,
    flags integer CHECK ((flags # 1) >= 0)
);
COMMENT ON TABLE account IS 'accounts; with ''quotes'', 100% and $$dollars$$';
CREATE FUNCTION touch() RETURNS trigger LANGUAGE plpgsql AS $body$
BEGIN
  NEW.note := 'touched; ' || coalesce(NEW.note, '');
  RETURN NEW;
END;
$body$;
CREATE TRIGGER t_touch BEFORE INSERT ON account FOR EACH ROW EXECUTE FUNCTION touch();
CREATE FUNCTION add1(i integer) RETURNS integer LANGUAGE sql BEGIN ATOMIC SELECT i + 1; END;
CREATE VIEW v AS SELECT id, name FROM account WHERE name <> ';';
"""

MYSQL_OBJECTS = """
CREATE TABLE account (id int PRIMARY KEY AUTO_INCREMENT, name varchar(100) NOT NULL DEFAULT 'a;b',
    note text, status enum('ok','semi;colon','it''s') DEFAULT 'ok', path varchar(20) DEFAULT 'C:\\\\',
    price decimal(10,2) COMMENT 'in €; 100% net');
CREATE INDEX ix_account_name ON account (name);
CREATE TABLE invoice (id int PRIMARY KEY, account_id int,
    CONSTRAINT fk_inv FOREIGN KEY (account_id) REFERENCES account(id));
CREATE TRIGGER t_touch BEFORE INSERT ON account FOR EACH ROW
    BEGIN SET NEW.note = concat('touched; ', coalesce(NEW.note, '')); END;
CREATE PROCEDURE p1() BEGIN SELECT 1; SELECT 'x;y'; END;
CREATE VIEW v AS SELECT id, name FROM account WHERE name <> ';';
"""


def _admin(server: str) -> sa.engine.Engine:
    url = normalize_url(server + ("postgres" if server.startswith("postgresql") else ""))
    return sa.create_engine(url, isolation_level="AUTOCOMMIT", poolclass=sa.pool.NullPool)


@pytest.fixture
def new_database(request) -> Iterator:
    """``make(server) -> (url, name)``: empty databases with names of this test's own, dropped at the end."""
    made: list[tuple[str, str]] = []

    def make(server: str) -> tuple[str, str]:
        name = f"cm_baseline_{secrets.token_hex(4)}"
        with _admin(server).connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        made.append((server, name))
        return server + name, name

    yield make
    for server, name in made:
        with _admin(server).connect() as conn:
            force = " WITH (FORCE)" if server.startswith("postgresql") else ""
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}{force}")


def pg_dump(name: str) -> str:
    return subprocess.run(["pg_dump", "-h", "127.0.0.1", "-U", "postgres", "--schema-only", name],
                          check=True, capture_output=True, text=True).stdout


def mariadb_dump(name: str) -> str:
    return subprocess.run(["mariadb-dump", "-h", "127.0.0.1", "-u", "root", "--no-data", "--routines", name],
                          check=True, capture_output=True, text=True).stdout


def run_sql(url: str, script: str, dialect: str) -> None:
    """Create the test's objects with the server's own client, as an app's database would have them."""
    name = url.rsplit("/", 1)[1]
    if dialect == "postgresql":
        cmd = ["psql", "-h", "127.0.0.1", "-U", "postgres", "-v", "ON_ERROR_STOP=1", "-q", "-d", name]
    else:
        cmd = ["mariadb", "-h", "127.0.0.1", "-u", "root", name]
        script = "DELIMITER //\n" + script.replace(";\n", "//\n") + "DELIMITER ;\n"
    subprocess.run(cmd, input=script, check=True, capture_output=True, text=True)


def pg_dump_version() -> tuple[int, int]:
    out = subprocess.run(["pg_dump", "--version"], check=True, capture_output=True, text=True).stdout
    return tuple(int(p) for p in re.search(r"(\d+)\.(\d+)", out).groups())  # type: ignore[return-value]


@pytest.mark.postgres
def test_pg_dump_schema_loads_and_dumps_the_same(pg_server, new_database):
    source, source_name = new_database(PG_SERVER)
    run_sql(source, "CREATE EXTENSION pg_trgm;\n" + PG_OBJECTS
            + "CREATE INDEX ix_account_name_trgm ON account USING gin (name gin_trgm_ops);\n", "postgresql")
    dump = pg_dump(source_name)
    major, minor = pg_dump_version()
    if (major, minor) >= ((15, 14) if major == 15 else (16, 10) if major == 16 else (17, 6) if major == 17 else (0, 0)):
        assert re.search(r"^\\restrict \S+$", dump, re.M)  # what made plain psycopg execution fail
    parts = statements(dump, "postgresql")
    assert not [s.sql for s in parts if "-- Name:" in s.sql]  # one object per statement: pg_dump heads each one
    assert not [s.sql for s in parts if "OWNER TO" in s.sql or s.sql.startswith("\\")]
    target, target_name = new_database(PG_SERVER)
    loaded = load_schema(target, dump, source="db/schema.sql")
    assert loaded.statements == len(statements(dump, "postgresql")) and loaded.skipped == []
    again = pg_dump(target_name)
    assert _without_restrict_keys(again) == _without_restrict_keys(dump)
    with sa.create_engine(normalize_url(target), poolclass=sa.pool.NullPool).begin() as conn:
        conn.exec_driver_sql("INSERT INTO public.account (name, note) VALUES ('x', 'hi')")
        assert conn.exec_driver_sql("SELECT note, path, public.add1(1) FROM public.account").one() == (
            "touched; hi", "C:\\", 2)


def _without_restrict_keys(dump: str) -> str:
    return re.sub(r"^\\(un)?restrict \S+$", r"\\\1restrict KEY", dump, flags=re.M)


@pytest.mark.mysql
def test_mariadb_dump_loads_and_dumps_the_same(mysql_server, new_database):
    source, source_name = new_database(MYSQL_SERVER)
    run_sql(source, MYSQL_OBJECTS, "mysql")
    dump = mariadb_dump(source_name)
    assert "DELIMITER ;;" in dump and "/*!40101 SET" in dump
    assert not [s.sql for s in statements(dump, "mysql") if "-- Table structure" in s.sql or "DELIMITER" in s.sql]
    target, target_name = new_database(MYSQL_SERVER)
    loaded = load_schema(target, dump)
    assert loaded.statements == len(statements(dump, "mysql"))
    same = lambda text: re.sub(r"(Database: |for database ')\w+|Dump completed on .*", "", text)  # noqa: E731
    assert same(mariadb_dump(target_name)) == same(dump)
    with sa.create_engine(normalize_url(target), poolclass=sa.pool.NullPool).begin() as conn:
        conn.exec_driver_sql("INSERT INTO account (name, note) VALUES ('x', 'hi')")
        assert conn.exec_driver_sql("SELECT note, path FROM account").one() == ("touched; hi", "C:\\")


def test_sqlite_schema_and_dump(tmp_path: Path):
    source = tmp_path / "app.db"
    with sqlite3.connect(source) as db:
        db.executescript("""
            CREATE TABLE account (id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT DEFAULT 'a;b', note TEXT);
            CREATE TRIGGER t_touch AFTER INSERT ON account BEGIN
              UPDATE account SET note = 'touched; ' || coalesce(note, '') WHERE id = NEW.id;
            END;
            INSERT INTO account (name) VALUES ('x');""")
        iterdump = "\n".join(db.iterdump())  # BEGIN TRANSACTION; … COMMIT;
    shell = subprocess.run(["sqlite3", str(source), ".schema"], check=True, capture_output=True, text=True).stdout
    assert "CREATE TABLE sqlite_sequence" in shell
    for text in (".headers on\n" + shell, iterdump):
        target = tmp_path / f"copy{secrets.token_hex(2)}.db"
        load_schema(f"sqlite:///{target}", text)
        with sqlite3.connect(target) as db:
            db.execute("INSERT INTO account (name) VALUES ('y')")
            assert db.execute("SELECT note FROM account WHERE name = 'y'").fetchone() == ("touched; ",)


def test_what_is_dropped_and_how_statements_split():
    pg = statements("\\connect app\nSET transaction_timeout = 0;\nALTER TABLE public.a OWNER TO \"deploy-bot\";\n"
                    "GRANT SELECT ON public.a TO reporting;\nREVOKE ALL ON SCHEMA public FROM PUBLIC;\n"
                    "CREATE DATABASE app;\nBEGIN;\n"
                    "CREATE TABLE t (p text DEFAULT E'it\\'s; x', q text DEFAULT 'C:\\');\n"
                    "COMMENT ON TABLE t IS E'it\\'s; x';\nCOMMIT;\n", "postgresql")
    assert [(s.number, s.line, s.sql) for s in pg] == [
        (1, 2, "SET transaction_timeout = 0"),
        (2, 8, "CREATE TABLE t (p text DEFAULT E'it\\'s; x', q text DEFAULT 'C:\\')"),
        (3, 9, "COMMENT ON TABLE t IS E'it\\'s; x'")]
    my = statements("/*M!999999\\- enable the sandbox mode */ \n-- comment; here\nUSE app;\nLOCK TABLES `t` WRITE;\n"
                    "# another; comment\nDELIMITER $$\nCREATE PROCEDURE p() BEGIN SELECT 'a$$b'; SELECT 1; END$$\n"
                    "DELIMITER ;\nUNLOCK TABLES;\nSELECT \"it\\\"s;\";", "mysql")
    assert [(s.line, s.sql) for s in my] == [
        (7, "CREATE PROCEDURE p() BEGIN SELECT 'a$$b'; SELECT 1; END"), (10, 'SELECT "it\\"s;"')]
    with pytest.raises(ValueError, match="unknown dialect 'oracle'"):
        statements("SELECT 1", "oracle")


def test_a_failing_statement_names_its_number_line_and_the_database_error(tmp_path: Path):
    text = "CREATE TABLE a (id integer);\n\n-- the next one is wrong\nCREATE TABLE b (id integer REFERENCES);\n"
    with pytest.raises(SchemaLoadError) as info:
        load_schema(f"sqlite:///{tmp_path / 'x.db'}", text, source="db/schema.sql")
    assert str(info.value) == ('db/schema.sql: statement 2 (line 4) failed: near ")": syntax error\n'
                               "    CREATE TABLE b (id integer REFERENCES)")
    assert info.value.exit_code == 2 and info.value.statement.number == 2


@pytest.mark.postgres
def test_postgresql_rolls_back_and_skips_settings_it_does_not_know(pg_server, new_database):
    url, _ = new_database(PG_SERVER)
    with pytest.raises(SchemaLoadError) as info:
        load_schema(url, "CREATE TABLE a (id integer);\nCREATE TABLE a (id integer);\n")
    assert str(info.value).startswith('baseline schema: statement 2 (line 2) failed: relation "a" already exists')
    # pg_dump 17's session setting on this server, a role the sandbox server does not have, a literal %
    loaded = load_schema(url, "SET transaction_timeout = 0;\nSET lock_timeout = 0;\nCREATE TABLE a (id integer);\n"
                              "ALTER TABLE a OWNER TO role_nobody_has;\nCOMMENT ON TABLE a IS '100% %s';\n")
    assert loaded.statements == 3  # nothing of the failed load was left behind
    assert loaded.skipped == ["line 1: SET transaction_timeout (a parameter this server does not have; written "
                              "by a newer pg_dump)"]


def test_files_that_are_not_sql_are_refused():
    with pytest.raises(SchemaLoadError, match=r"pg_dump archive .* `pg_dump --schema-only --format=plain`"):
        load_schema("sqlite://", "PGDMP\x01\x0e\x00binary")
    with pytest.raises(SchemaLoadError, match=r"^line 2: COPY … FROM stdin is a data section that only psql"):
        statements("-- rows\nCOPY public.a (id) FROM stdin;\n1\n\\.\n", "postgresql")


@pytest.mark.postgres
def test_extensions_are_created_before_anything_else(pg_server, new_database):
    url, _ = new_database(PG_SERVER)
    assert create_extensions(url, ["pg_trgm", "citext"]) == ["pg_trgm", "citext"]
    assert create_extensions(url, ["pg_trgm"]) == ["pg_trgm"]  # already there: IF NOT EXISTS
    load_schema(url, "CREATE TABLE a (name citext);\nCREATE INDEX ix ON a USING gin (name gin_trgm_ops);\n")
    with pytest.raises(ExtensionError) as info:
        create_extensions(url, ["pg_trgm", "pg_trgn"])
    assert info.value.exit_code == 3
    assert str(info.value).startswith("extensions: the sandbox server does not offer 'pg_trgn'\n"
                                      "    pg_trgn: not available — did you mean 'pg_trgm'?")
    assert create_extensions("sqlite://", ["pg_trgm"]) == []
