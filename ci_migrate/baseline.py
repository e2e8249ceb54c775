"""Baseline schema files as dump tools write them, loaded into the sandbox; extensions the models need.

:func:`statements` turns the text of a ``baseline.schema`` file into the statements a database
driver can run, one at a time, each with its number and line:

- ``pg_dump --schema-only`` output (PostgreSQL): split with sqlparse's statement splitter (dollar
  quoting, ``BEGIN ATOMIC … END`` bodies, semicolons in strings and comments), its lexer tuned to
  PostgreSQL's standard strings (a backslash is a plain character outside ``E'…'``). psql
  meta-command lines — ``\\restrict``/``\\unrestrict`` (pg_dump 15.14+, 16.10+, 17.6+), ``\\connect``
  and any other line starting with a backslash — are dropped: they are psql's, not the server's.
  ``SET …`` and ``SELECT pg_catalog.set_config(…)`` are kept (``check_function_bodies = false`` lets
  a function refer to tables created after it; the empty ``search_path`` matches the dump's
  schema-qualified names); :func:`load_schema` skips a ``SET`` of a parameter the server does not
  know (``transaction_timeout`` from pg_dump 17 on a PostgreSQL 15 sandbox). Ownership and
  privileges (``ALTER … OWNER TO``, ``GRANT``, ``REVOKE``, ``ALTER DEFAULT PRIVILEGES``,
  ``SECURITY LABEL``) are dropped, as ``pg_dump --no-owner --no-privileges`` would: they name roles
  of the dumped server, which a throwaway database neither has nor needs. ``COPY … FROM stdin``
  (rows for psql to stream) is refused with a clear error.
- ``mysqldump --no-data`` / ``mariadb-dump --no-data`` output (MySQL, MariaDB): split the way the
  ``mysql`` client does — on the current delimiter outside quotes and comments, ``DELIMITER ;;``
  changing it. ``/*!40101 … */`` conditional comments are kept (the server runs them); MariaDB's
  ``/*M!999999\\- enable the sandbox mode */`` client command and ``LOCK TABLES``/``UNLOCK TABLES``
  are dropped.
- plain SQL (SQLite, and hand-written files for any dialect): split like PostgreSQL's, with
  ``CREATE TRIGGER … BEGIN … END`` kept whole; sqlite3 shell dot-commands (``.schema`` output) and
  ``CREATE TABLE sqlite_sequence`` (SQLite makes it itself) are dropped.

Everywhere: statements that create, alter, drop or switch databases (``pg_dump -C``,
``mysqldump --databases``) and transaction control (``BEGIN``, ``COMMIT``…) are dropped — the schema
always goes into the sandbox database, in one transaction where the database allows it.
"""

from __future__ import annotations

import functools
import re
from dataclasses import dataclass, field
from typing import Iterator, Sequence

from ci_migrate.errors import DatabaseError, UsageError

DIALECTS = ("postgresql", "mysql", "mariadb", "sqlite")


@dataclass(frozen=True)
class Statement:
    """One statement of a schema file: ``number`` (1-based, among those that run), the 1-based
    ``line`` of the file it starts on, and its ``sql`` (leading comments and delimiter removed)."""

    number: int
    line: int
    sql: str


@dataclass
class Loaded:
    """What :func:`load_schema` did: ``statements`` run, ``skipped`` notes for a person."""

    statements: int = 0
    skipped: list[str] = field(default_factory=list)


class SchemaLoadError(UsageError):
    """A schema file that cannot be loaded (exit 2): ``statement`` is the one that failed (None when
    the file itself is the problem), ``error`` the database's message."""

    def __init__(self, message: str, statement: Statement | None = None, error: str | None = None):
        super().__init__(message)
        self.statement, self.error = statement, error


class ExtensionError(DatabaseError):
    """An extension the config names cannot be created in the sandbox (exit 3)."""


# --------------------------------------------------------------------------- splitting

_DROP_ANY = re.compile(  # databases other than the sandbox, and transaction control
    r"(?:CREATE|ALTER|DROP)\s+DATABASE\b|USE\s|START\s+TRANSACTION\b"
    r"|(?:BEGIN|COMMIT|END|ROLLBACK)(?:\s+(?:WORK|TRANSACTION|DEFERRED|IMMEDIATE|EXCLUSIVE))?$", re.I)
_DROP_POSTGRESQL = re.compile(  # ownership and privileges
    r"ALTER\s.*\sOWNER\s+TO\s+(?:\"[^\"]*\"|\S+)$|GRANT\s|REVOKE\s|ALTER\s+DEFAULT\s+PRIVILEGES\b"
    r"|SECURITY\s+LABEL\b", re.I | re.S)
_DROP_MYSQL = re.compile(r"(?:UN)?LOCK\s+TABLES?\b", re.I)
_DROP_SQLITE = re.compile(r'CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?["`\[]?sqlite_sequence\b', re.I)
_COPY_STDIN = re.compile(r"COPY\s.*\bFROM\s+STDIN\b", re.I | re.S)
_MARIADB_SANDBOX = re.compile(r"^/\*M!999999\\- enable the sandbox mode \*/\s*$")
_DELIMITER = re.compile(r"[ \t]*DELIMITER[ \t]+(\S+)\s*", re.I)
_CONDITIONAL = re.compile(r"/\*M?!")


def statements(text: str, dialect: str) -> list[Statement]:
    """The statements of schema file ``text`` for ``dialect`` (``postgresql``, ``mysql``/``mariadb``,
    ``sqlite``), in file order, with the rules of the module docstring applied.

    Raises :class:`SchemaLoadError` for a pg_dump archive (custom format) or a ``COPY … FROM stdin``
    data section, ValueError for an unknown dialect.
    """
    if dialect not in DIALECTS:
        raise ValueError(f"unknown dialect {dialect!r}; expected one of {', '.join(DIALECTS)}")
    if text.startswith("PGDMP"):
        raise SchemaLoadError("this is a pg_dump archive (custom or directory format), not SQL: write the "
                              "baseline with `pg_dump --schema-only --format=plain`")
    mysql = dialect in ("mysql", "mariadb")
    lines = text.splitlines(keepends=True)
    if dialect == "postgresql":  # psql meta-commands: blank them, keeping line numbers
        lines = ["\n" if line.startswith("\\") else line for line in lines]
    elif mysql:
        lines = ["\n" if _MARIADB_SANDBOX.match(line) else line for line in lines]
    elif dialect == "sqlite":  # sqlite3 shell dot-commands
        lines = ["\n" if line.startswith(".") else line for line in lines]
    text = "".join(lines)
    pieces = _split_mysql(text) if mysql else _split_sqlparse(text, dialect)
    drop = {"postgresql": _DROP_POSTGRESQL, "sqlite": _DROP_SQLITE}.get(dialect, _DROP_MYSQL)
    out: list[Statement] = []
    line, counted = 1, 0
    for offset, sql in pieces:
        line, counted = line + text.count("\n", counted, offset), offset
        if dialect == "postgresql" and _COPY_STDIN.match(sql):
            raise SchemaLoadError(f"line {line}: COPY … FROM stdin is a data section that only psql can stream; "
                                  "write the baseline with `pg_dump --schema-only` (or `--inserts` for rows)")
        if not _DROP_ANY.match(sql) and not drop.match(sql):
            out.append(Statement(number=len(out) + 1, line=line, sql=sql))
    return out


@functools.lru_cache(maxsize=None)
def _lexer(dialect: str) -> object:
    """A sqlparse lexer of its own (the default one is shared): PostgreSQL/SQLite strings, in which a
    backslash is an ordinary character (``E'…'`` strings excepted), and no ``#`` comments."""
    from sqlparse import keywords, tokens
    from sqlparse.lexer import Lexer

    lexer = Lexer()
    lexer.default_initialization()
    rules = [(r"(?<![\w$])E'(''|\\.|[^'\\])*'", tokens.String.Single)]
    for regex, kind in keywords.SQL_REGEX:
        if regex == r"'(''|\\'|[^'])*'":
            regex = r"'(''|[^'])*'"
        elif regex == r'"(""|\\"|[^"])*"':
            regex = r'"(""|[^"])*"'
        elif regex.startswith("(--|# )"):
            regex = "--" + regex[len("(--|# )"):]
        rules.append((regex, kind))
    lexer.set_SQL_REGEX(rules)
    return lexer


def _split_sqlparse(text: str, dialect: str) -> Iterator[tuple[int, str]]:
    """``(offset of the first code token, statement)`` from sqlparse's StatementSplitter."""
    from sqlparse import tokens
    from sqlparse.engine import StatementSplitter

    offset = 0
    for statement in StatementSplitter().process(_lexer(dialect).get_tokens(text)):  # type: ignore[attr-defined]
        values = [(t.ttype, t.value) for t in statement.tokens]
        code = [i for i, (kind, _) in enumerate(values) if kind not in tokens.Whitespace
                and kind not in tokens.Newline and kind not in tokens.Comment]
        if code:
            start = offset + sum(len(v) for _, v in values[:code[0]])
            sql = "".join(v for _, v in values[code[0]:code[-1] + 1]).rstrip()
            sql = sql[:-1].rstrip() if sql.endswith(";") else sql
            if sql:
                yield start, sql
        offset += sum(len(v) for _, v in values)


def _split_mysql(text: str) -> Iterator[tuple[int, str]]:
    """The mysql client's rule: split on the delimiter outside quotes and comments; a ``DELIMITER x``
    line between statements changes it. A conditional comment (``/*!…*/``) is code, and opaque."""
    delimiter, i, n, code = ";", 0, len(text), None  # code: offset of the statement's first code character
    while i < n:
        if code is None and text[i] in "dD \t" and (m := _DELIMITER.fullmatch(text, i, _eol(text, i))):
            delimiter, i = m[1], _eol(text, i)
        elif text.startswith(delimiter, i):
            if code is not None:
                yield code, text[code:i].rstrip()
            code, i = None, i + len(delimiter)
        elif text[i].isspace():
            i += 1
        elif text[i] == "#" or text.startswith("--", i) and (i + 2 == n or text[i + 2].isspace()):
            i = _eol(text, i)
        elif text.startswith("/*", i):
            code = i if code is None and _CONDITIONAL.match(text, i) else code
            end = text.find("*/", i + 2)
            i = n if end < 0 else end + 2
        else:
            code = i if code is None else code
            i = _quoted_end(text, i) if text[i] in "'\"`" else i + 1
    if code is not None:
        yield code, text[code:].rstrip()


def _eol(text: str, i: int) -> int:
    end = text.find("\n", i)
    return len(text) if end < 0 else end


def _quoted_end(text: str, i: int) -> int:
    """The offset after the string or quoted name opening at ``i`` (backslash escapes, doubled quotes)."""
    quote, j, n = text[i], i + 1, len(text)
    while j < n:
        if text[j] == "\\" and quote != "`":
            j += 2
        elif text[j] == quote and j + 1 < n and text[j + 1] == quote:
            j += 2
        elif text[j] == quote:
            return j + 1
        else:
            j += 1
    return n


# --------------------------------------------------------------------------- loading


def load_schema(connection_url: str, text: str, *, source: str = "baseline schema") -> Loaded:
    """Run schema file ``text`` on the database at ``connection_url`` (the sandbox), statement by
    statement (:func:`statements`), through a SQLAlchemy connection of its own: in one transaction on
    PostgreSQL and SQLite (MySQL commits each DDL statement itself), with no driver parameter
    interpolation (``%`` is literal). ``source`` names the file in messages.

    Raises :class:`SchemaLoadError` (exit 2) naming the statement number, its line and the database's
    message when a statement fails; :class:`~ci_migrate.errors.DatabaseError` (exit 3) when the
    database cannot be reached.
    """
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    from ci_migrate.masking import mask_url
    from ci_migrate.sandbox import normalize_url

    url = normalize_url(connection_url)
    dialect = url.get_backend_name()
    try:
        todo = statements(text, dialect)
    except SchemaLoadError as exc:
        raise SchemaLoadError(f"{source}: {exc}") from None
    engine = sa.create_engine(url, poolclass=NullPool)
    loaded = Loaded()
    try:
        try:
            conn = engine.connect().execution_options(no_parameters=True)
        except sa.exc.DBAPIError as exc:
            raise DatabaseError(f"cannot connect to {mask_url(str(url))} to load {source}: "
                                f"{str(exc.orig).strip()}") from None
        with conn, conn.begin():
            known = _settings(conn) if dialect == "postgresql" else None
            for statement in todo:
                if known is not None and (name := _set_parameter(statement.sql)) and name not in known:
                    loaded.skipped.append(f"line {statement.line}: SET {name} (a parameter this server does "
                                          "not have; written by a newer pg_dump)")
                    continue
                try:
                    conn.exec_driver_sql(statement.sql)
                except sa.exc.DBAPIError as exc:
                    raise _failure(source, statement, exc) from None
                loaded.statements += 1
    finally:
        engine.dispose()
    return loaded


def _settings(conn: object) -> set[str]:
    rows = conn.exec_driver_sql("SELECT name FROM pg_catalog.pg_settings")  # type: ignore[attr-defined]
    return {row[0] for row in rows}


def _set_parameter(sql: str) -> str | None:
    """The parameter a plain ``SET name = …``/``SET name TO …`` sets (lower case), None for anything else
    (``SET LOCAL``, ``SET ROLE``, custom ``a.b`` parameters)."""
    m = re.match(r"SET\s+(?:SESSION\s+)?([a-z_][a-z0-9_]*)\s*(?:=|\bTO\b)", sql, re.I)
    return m[1].lower() if m else None


def _failure(source: str, statement: Statement, exc: object) -> SchemaLoadError:
    error = str(getattr(exc, "orig", None) or exc).strip()
    lines = statement.sql.splitlines()
    shown = "\n".join(f"    {t}" for t in lines[:6]) + ("\n    …" if len(lines) > 6 else "")
    return SchemaLoadError(f"{source}: statement {statement.number} (line {statement.line}) failed: "
                           f"{error.splitlines()[0] if error else type(exc).__name__}\n{shown}",
                           statement=statement, error=error)


def create_extensions(url: str, names: Sequence[str]) -> list[str]:
    """``CREATE EXTENSION IF NOT EXISTS`` each of ``names`` in the PostgreSQL database at ``url`` (the
    sandbox), in order, in one transaction — before the baseline and the replay, so that revisions
    (and ``create_all()``) can use their types, operator classes and functions (``pg_trgm``'s
    ``gin_trgm_ops``). Returns the names created or already there; ``[]`` for a database that is not
    PostgreSQL (extensions are PostgreSQL's).

    Raises :class:`ExtensionError` (exit 3) for a name the server does not offer
    (``pg_available_extensions``), naming the close ones, or when creating one fails (e.g. it
    needs a superuser).
    """
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    from ci_migrate.config_errors import did_you_mean
    from ci_migrate.sandbox import normalize_url

    parsed = normalize_url(url)
    if parsed.get_backend_name() != "postgresql" or not names:
        return []
    engine = sa.create_engine(parsed, poolclass=NullPool)
    try:
        try:
            conn = engine.connect()
        except sa.exc.DBAPIError as exc:
            from ci_migrate.masking import mask_url

            raise DatabaseError(f"cannot connect to {mask_url(str(parsed))} to create extensions: "
                                f"{str(exc.orig).strip()}") from None
        with conn, conn.begin():
            available = {r[0] for r in conn.exec_driver_sql("SELECT name FROM pg_catalog.pg_available_extensions")}
            missing = [n for n in names if n not in available]
            if missing:
                hints = "".join(f"\n    {n}: not available{did_you_mean(n, sorted(available))}" for n in missing)
                raise ExtensionError(f"extensions: the sandbox server does not offer {', '.join(map(repr, missing))}"
                                     f"{hints}\n    Install it on the server (e.g. the postgis/postgis image for "
                                     "postgis) or remove it from `extensions:`.")
            quote = conn.dialect.identifier_preparer.quote_identifier
            for name in names:
                try:
                    conn.exec_driver_sql(f"CREATE EXTENSION IF NOT EXISTS {quote(name)}")
                except sa.exc.DBAPIError as exc:
                    raise ExtensionError(f"extensions: CREATE EXTENSION {name} failed: "
                                         f"{str(exc.orig).strip().splitlines()[0]}") from None
    finally:
        engine.dispose()
    return list(names)
