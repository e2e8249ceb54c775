"""What the probe reports, as typed data on the host side.

The probe speaks JSON (plain dicts); everything the host's checks read is turned into these
dataclasses at the boundary (``from_data``), so a check never indexes a dict by string. Facts that
go into the Report as they are (diff items, table schemas) are validated straight into the Report's
pydantic models instead.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping


def _bind(value: Any) -> str | None:
    return value or None


@dataclass(frozen=True)
class ProjectFacts:
    """The loaded app's Flask-Migrate setup (``bind_keys``: ``None`` = default bind)."""

    app: str | None
    app_name: str
    root: Path
    migrations_dir: Path
    migrations: str
    env_py: str | None
    bind_keys: tuple[str | None, ...]
    multidb: bool
    command_name: str
    configured_dialect: str | None
    flask_sqlalchemy: str | None
    version_table: str | None
    version_table_schema: str | None
    render_as_batch: bool
    notes: tuple[str, ...]

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> "ProjectFacts":
        return cls(app=data.get("app"), app_name=data["app_name"], root=Path(data["root"]),
                   migrations_dir=Path(data["migrations_dir"]), migrations=data["migrations"],
                   env_py=data.get("env_py"), bind_keys=tuple(_bind(k) for k in data["bind_keys"]),
                   multidb=bool(data["multidb"]), command_name=data.get("command_name") or "db",
                   configured_dialect=data.get("configured_dialect"), flask_sqlalchemy=data.get("flask_sqlalchemy"),
                   version_table=data.get("version_table"), version_table_schema=data.get("version_table_schema"),
                   render_as_batch=bool(data.get("render_as_batch")), notes=tuple(data.get("notes") or ()))

    @property
    def cli(self) -> str:
        """How the app spells ``flask db``."""
        return f"flask {self.command_name}"

    @property
    def migrated_binds(self) -> tuple[str | None, ...]:
        """Binds the migrations touch: every bind for multidb env.py, else the default one."""
        return self.bind_keys if self.multidb else (None,)

    def relative(self, path: str | Path) -> str:
        """``path`` relative to the repository root, POSIX separators (absolute if outside)."""
        p = Path(path).resolve()
        try:
            return p.relative_to(self.root.resolve()).as_posix()
        except ValueError:
            return p.as_posix()


@dataclass(frozen=True)
class HistoryRevision:
    """One revision as alembic's ``ScriptDirectory`` reads it."""

    revision: str
    down_revisions: tuple[str, ...]
    depends_on: tuple[str, ...]
    branch_labels: tuple[str, ...]
    message: str | None
    path: Path | None
    children: tuple[str, ...]

    @property
    def is_merge_point(self) -> bool:
        return len(self.down_revisions) > 1


@dataclass(frozen=True)
class History:
    """The history base → heads (``walk_revisions`` reversed), or why alembic could not load it."""

    revisions: tuple[HistoryRevision, ...] = ()
    heads: tuple[str, ...] = ()
    error: str | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> "History":
        if data.get("error"):
            return cls(error=data["error"])
        return cls(
            revisions=tuple(HistoryRevision(
                revision=r["revision"], down_revisions=tuple(r.get("down_revisions") or ()),
                depends_on=tuple(r.get("depends_on") or ()), branch_labels=tuple(r.get("branch_labels") or ()),
                message=r.get("message"), path=Path(r["path"]) if r.get("path") else None,
                children=tuple(r.get("children") or ())) for r in data.get("revisions") or ()),
            heads=tuple(data.get("heads") or ()))

    @property
    def order(self) -> list[str]:
        return [r.revision for r in self.revisions]

    @property
    def by_id(self) -> dict[str, HistoryRevision]:
        return {r.revision: r for r in self.revisions}

    def parents(self) -> dict[str, tuple[str, ...]]:
        return {r.revision: r.down_revisions for r in self.revisions}

    def ancestors(self, revisions: Any) -> set[str]:
        """``revisions`` and everything below them along down_revision and depends_on."""
        by_id = self.by_id
        seen: set[str] = set()
        todo = list(revisions)
        while todo:
            rev = todo.pop()
            if rev in seen or rev not in by_id:
                continue
            seen.add(rev)
            todo += list(by_id[rev].down_revisions) + list(by_id[rev].depends_on)
        return seen

    def descendants(self, revision: str) -> set[str]:
        by_id = self.by_id
        found: set[str] = set()
        todo = list(by_id[revision].children) if revision in by_id else []
        while todo:
            rev = todo.pop()
            if rev not in found:
                found.add(rev)
                todo.extend(by_id[rev].children if rev in by_id else ())
        return found


@dataclass(frozen=True)
class Failure:
    """A revision (or env.py) that failed: where, the failing statement and the database's error."""

    where: str  # revision | env.py | baseline | alembic
    revision: str | None
    message: str | None
    bind: str | None
    file: str | None
    line: int | None
    statement: str | None
    error: str
    exception: str
    code: str | None = None
    committed: tuple[str, ...] = ()
    outside_transaction: bool = False
    lock: str | None = None
    duration_ms: float = 0.0
    statements: int = 0
    directory: str | None = None  # the extra script directory being upgraded, if not the app's history

    @classmethod
    def from_data(cls, data: Mapping[str, Any] | None) -> "Failure | None":
        if not data:
            return None
        return cls(where=data.get("where") or "revision", revision=data.get("revision"), message=data.get("message"),
                   bind=_bind(data.get("bind")), file=data.get("file"), line=data.get("line"),
                   statement=data.get("statement"), error=data.get("error") or "", exception=data.get("exception") or "",
                   code=data.get("code"), committed=tuple(data.get("committed") or ()),
                   outside_transaction=bool(data.get("outside_transaction")), lock=data.get("lock"),
                   duration_ms=float(data.get("duration_ms") or 0), statements=int(data.get("statements") or 0),
                   directory=data.get("directory"))

    @property
    def first_line(self) -> str:
        return (self.error.strip().splitlines() or [self.exception or "error"])[0]


@dataclass(frozen=True)
class RevisionCall:
    """One call of a revision's ``upgrade()``/``downgrade()`` (``duration_ms`` in milliseconds)."""

    revision: str
    direction: str
    bind: str | None
    file: str | None
    message: str | None
    duration_ms: float
    statements: int
    status: str  # ok | failed | running
    failure: Failure | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> "RevisionCall":
        failure = None
        if data.get("failure"):
            failure = Failure.from_data({"where": "revision", "revision": data["revision"], "bind": data.get("bind"),
                                         "message": data.get("message"), **data["failure"]})
        return cls(revision=data["revision"], direction=data.get("direction") or "upgrade", bind=_bind(data.get("bind")),
                   file=data.get("file"), message=data.get("message"), duration_ms=float(data.get("duration_ms") or 0),
                   statements=int(data.get("statements") or 0), status=data.get("status") or "ok", failure=failure)


@dataclass
class TypeInfo:
    """A column type as the probe compiled it: ``sql`` in the plan's dialect, ``classes`` its MRO names."""

    sql: str
    repr: str
    classes: tuple[str, ...]
    length: int | None = None
    precision: int | None = None
    scale: int | None = None
    enum_values: tuple[str, ...] | None = None
    name: str | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any] | None) -> "TypeInfo | None":
        if not data:
            return None
        values = data.get("enum_values")
        return cls(sql=data.get("sql") or "?", repr=data.get("repr") or "", classes=tuple(data.get("classes") or ()),
                   length=data.get("length"), precision=data.get("precision"), scale=data.get("scale"),
                   enum_values=tuple(values) if values is not None else None, name=data.get("name"))

    def is_a(self, *names: str) -> bool:
        """Whether the SQLAlchemy type is (a subclass of) one of these class names."""
        return any(n in self.classes for n in names)


@dataclass
class ColumnInfo:
    name: str
    type: TypeInfo | None
    nullable: bool
    server_default: str | None
    primary_key: bool
    computed: bool
    identity: bool

    @classmethod
    def from_data(cls, data: Mapping[str, Any] | None) -> "ColumnInfo | None":
        if not data:
            return None
        return cls(name=data["name"], type=TypeInfo.from_data(data.get("type")), nullable=bool(data.get("nullable")),
                   server_default=data.get("server_default"), primary_key=bool(data.get("primary_key")),
                   computed=bool(data.get("computed")), identity=bool(data.get("identity")))


@dataclass
class RecordedOp:
    """An alembic operation a revision performed (``op.add_column(...)`` → kind ``AddColumnOp``).

    ``line`` is the 1-based line of the call in the revision file; ``batch`` is true inside
    ``batch_alter_table``; ``text`` says it in words. The other fields are set for the kinds that
    have them (see :func:`ci_migrate.probe.describe.operation`).
    """

    kind: str
    table: str | None
    bind: str | None
    line: int | None
    batch: bool
    text: str
    object: str | None = None
    column: ColumnInfo | None = None
    column_name: str | None = None
    modify_name: str | None = None
    modify_nullable: bool | None = None
    existing_type: TypeInfo | None = None
    modify_type: TypeInfo | None = None
    new_table_name: str | None = None
    index_name: str | None = None
    columns: tuple[str, ...] = ()
    unique: bool | None = None
    concurrently: bool = False
    not_valid: bool = False
    constraint_name: str | None = None
    has_constraint_name: bool = False
    constraint_type: str | None = None
    referent_table: str | None = None
    referent_columns: tuple[str, ...] = ()
    condition: str | None = None
    sql: str | None = None
    sql_is_dml: bool | None = None
    data_table: str | None = None
    rows: int | None = None

    @classmethod
    def from_data(cls, data: Mapping[str, Any]) -> "RecordedOp":
        return cls(kind=data["kind"], table=data.get("table"), bind=_bind(data.get("bind")), line=data.get("line"),
                   batch=bool(data.get("batch")), text=data.get("text") or data["kind"], object=data.get("object"),
                   column=ColumnInfo.from_data(data.get("column")), column_name=data.get("column_name"),
                   modify_name=data.get("modify_name"), modify_nullable=data.get("modify_nullable"),
                   existing_type=TypeInfo.from_data(data.get("existing_type")),
                   modify_type=TypeInfo.from_data(data.get("modify_type")), new_table_name=data.get("new_table_name"),
                   index_name=data.get("index_name"), columns=tuple(data.get("columns") or ()),
                   unique=data.get("unique"), concurrently=bool(data.get("concurrently")),
                   not_valid=bool(data.get("not_valid")), constraint_name=data.get("constraint_name"),
                   has_constraint_name="constraint_name" in data, constraint_type=data.get("constraint_type"),
                   referent_table=data.get("referent_table"),
                   referent_columns=tuple(data.get("referent_columns") or ()), condition=data.get("condition"), sql=data.get("sql"),
                   sql_is_dml=data.get("sql_is_dml"), data_table=data.get("data_table"), rows=data.get("rows"))


@dataclass
class Statement:
    """One SQL statement of a revision; ``op`` is the operation that sent it, if known."""

    text: str
    bind: str | None = None
    op: RecordedOp | None = None
    autocommit: bool = False  # ran in AUTOCOMMIT (``autocommit_block()``), recorded on the sandbox
    line: int | None = None  # the revision file's line that sent it (recorded on the sandbox)


@dataclass
class Recorded:
    """A revision's operations and statements (offline SQL, or recorded while it ran on the sandbox)."""

    revision: str
    ops: list[RecordedOp] = field(default_factory=list)
    statements: list[Statement] = field(default_factory=list)
    error: str | None = None
    error_line: int | None = None
    online: bool = False

    @classmethod
    def from_data(cls, data: Mapping[str, Any], *, online: bool) -> "Recorded":
        ops = [RecordedOp.from_data(o) for o in data.get("ops") or ()]
        statements = [Statement(text=s["text"], bind=_bind(s.get("bind")),
                                op=ops[s["op"]] if isinstance(s.get("op"), int) and s["op"] < len(ops) else None,
                                autocommit=bool(s.get("autocommit")), line=s.get("line"))
                      for s in data.get("statements") or ()]
        return cls(revision=data["revision"], ops=ops, statements=statements, error=data.get("error"),
                   error_line=data.get("error_line"), online=online)
