"""The schema change of the pending revisions in words: one entry per table, one line per change.

Shared by the console and the comment/summary templates, so both read the same. Identifiers and
SQL go through ``code`` (backticks on the console, safe code spans in Markdown) and the rest
through ``text`` (HTML-escaped in Markdown), so a table called ``<b>`` or a CHECK with ``a < b``
cannot break the body.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from ci_migrate.schema_change import (
    ColumnChange,
    ColumnState,
    ConstraintChange,
    ForeignKeyChange,
    IndexChange,
    SchemaChangeFacts,
    TableChange,
)

Format = Callable[[str], str]
ICON = {"added": "➕", "dropped": "➖", "changed": "✏️"}
_ORDER = {"added": 0, "changed": 1, "dropped": 2}


def backticks(value: str) -> str:
    return f"`{value}`"


def plain(value: str) -> str:
    return value


@dataclass
class TableLine:
    """One touched table: ``head`` says what happened to it as a whole (the columns of a new
    table, the size of a dropped one); ``items`` one line per column, index, constraint or FK."""

    name: str
    bind: str | None
    change: str
    icon: str
    head: str
    items: list[str] = field(default_factory=list)


def counts(facts: SchemaChangeFacts) -> str:
    """``1 table added, 2 changed, 1 dropped`` (``1 table changed`` when only one kind)."""
    parts = [(sum(1 for t in facts.tables if t.change == kind), kind) for kind in ("added", "changed", "dropped")]
    parts = [(n, kind) for n, kind in parts if n]
    if not parts:
        return "no table changed"
    first_n, first_kind = parts[0]
    words = [f"{first_n} table{'s' if first_n != 1 else ''} {first_kind}"]
    return ", ".join(words + [f"{n} {kind}" for n, kind in parts[1:]])


def ordered(facts: SchemaChangeFacts) -> SchemaChangeFacts:
    """The same facts with the touched tables new first, then changed, then dropped (by bind and
    name within each): the order the list and the diagram show them in."""
    return facts.model_copy(update={"tables": sorted(
        facts.tables, key=lambda t: (_ORDER[t.change], t.bind or "", t.name))})


def table_lines(facts: SchemaChangeFacts, *, code: Format = backticks, text: Format = plain) -> list[TableLine]:
    """The touched tables in :func:`ordered` order, one :class:`TableLine` each."""
    multi = len({t.bind for t in facts.tables}) > 1
    return [_line(t, code, text, multi) for t in ordered(facts).tables]


def _line(t: TableChange, code: Format, text: Format, multi: bool) -> TableLine:
    bind = t.bind if multi else None
    objects = [*(_index(i, code) for i in t.indexes), *(_constraint(c, code, text) for c in t.constraints),
               *(_foreign_key(f, code, text) for f in t.foreign_keys)]
    if t.change == "added":
        refs = {c: f"{f.referred_table}.{r}" for f in t.foreign_keys for c, r in zip(f.columns, f.referred_columns)}
        columns = [_column(c.name, c.after, code, text) + (text(" → ") + code(refs[c.name]) if c.name in refs else "")
                   for c in t.columns if c.after]
        fks_inline = [f for f in t.foreign_keys if len(f.columns) == 1 and not (f.ondelete or f.onupdate)]
        objects = [o for o in objects if o not in {_foreign_key(f, code, text) for f in fks_inline}]
        return TableLine(t.name, bind, t.change, ICON[t.change], text("new table: ") + ", ".join(columns), objects)
    if t.change == "dropped":
        names = ", ".join(code(c.name) for c in t.columns)
        n = len(t.columns)
        return TableLine(t.name, bind, t.change, ICON[t.change],
                         text(f"table dropped ({n} column{'s' if n != 1 else ''}: ") + names + text(")"))
    return TableLine(t.name, bind, t.change, ICON[t.change], "",
                     [_column_change(c, code, text) for c in t.columns] + objects)


def _column(name: str, state: ColumnState, code: Format, text: Format) -> str:
    out = code(name) + text(" " + state.type)
    if state.primary_key:
        out += text(" PK")
    elif not state.nullable:
        out += text(" NOT NULL")
    if state.default is not None and not (state.primary_key and state.default.startswith("nextval(")):
        out += text(" DEFAULT ") + code(state.default)  # a serial key's sequence is not news
    return out


def _column_change(c: ColumnChange, code: Format, text: Format) -> str:
    if c.change == "added" and c.after:
        return text("adds column ") + _column(c.name, c.after, code, text)
    if c.change == "dropped" and c.before:
        return text("drops column ") + _column(c.name, c.before, code, text)
    before, after = c.before, c.after
    assert before is not None and after is not None
    parts = []
    if before.type != after.type:
        parts.append(text(f"type {before.type} → {after.type}"))
    if before.nullable != after.nullable:
        parts.append(text("NOT NULL → NULL" if after.nullable else "NULL → NOT NULL"))
    if before.default != after.default:
        parts.append(text("default ") + (code(before.default) if before.default is not None else text("none"))
                     + text(" → ") + (code(after.default) if after.default is not None else text("none")))
    if before.primary_key != after.primary_key:
        parts.append(text("joins the primary key" if after.primary_key else "leaves the primary key"))
    return text("changes column ") + code(c.name) + text(": ") + text(", ").join(parts)


def _verb(change: str) -> str:
    return "adds" if change == "added" else "drops"


def _cols(columns: list[str], code: Format, text: Format) -> str:
    return text("(") + text(", ").join(code(c) for c in columns) + text(")")


def _index(i: IndexChange, code: Format) -> str:
    kind = "unique index" if i.unique else "index"
    name = f" {code(i.name)}" if i.name else ""
    return f"{_verb(i.change)} {kind}{name} ({', '.join(code(c) for c in i.columns)})"


def _constraint(c: ConstraintChange, code: Format, text: Format) -> str:
    name = text(" ") + code(c.name) if c.name else ""
    if c.kind == "check":
        return text(f"{_verb(c.change)} check constraint") + name + text(" ") + code(c.sqltext or "")
    return text(f"{_verb(c.change)} unique constraint") + name + text(" ") + _cols(c.columns, code, text)


def _foreign_key(f: ForeignKeyChange, code: Format, text: Format) -> str:
    target = f"{f.referred_schema}.{f.referred_table}" if f.referred_schema else f.referred_table
    out = (text(f"{_verb(f.change)} foreign key") + (text(" ") + code(f.name) if f.name else "") + text(" ")
           + _cols(f.columns, code, text) + text(" → ") + code(target) + text(" ") + _cols(f.referred_columns, code, text))
    for action, value in (("ON DELETE", f.ondelete), ("ON UPDATE", f.onupdate)):
        if value:
            out += text(f" {action} {value}")
    return out
