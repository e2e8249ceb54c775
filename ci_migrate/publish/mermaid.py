"""Data for the Mermaid ``erDiagram`` of the tables a change touches.

:func:`er_diagram` picks the tables (changed ones plus the tables their foreign keys reference)
from ``Report.tables`` (model drift); :func:`change_diagram` draws the schema change of the
pending revisions (:class:`~ci_migrate.schema_change.SchemaChangeFacts`) with the touched
tables' direct neighbours. Both return plain data; ``templates/_erdiagram.md.j2`` writes the
Mermaid source. Names are made safe for the Mermaid ER grammar
(mermaid-js ``packages/mermaid/src/diagrams/er/parser/erDiagram.jison``): entity names are
double-quoted (so table names such as ``tokens`` or ``class`` are not read as keywords), and
attribute types/names keep only ``[A-Za-z0-9_()[]-]``, the characters every Mermaid version
GitHub and GitLab have shipped accepts.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

from ci_migrate.report import ColumnSchema, TableSchema
from ci_migrate.schema_change import SchemaChangeFacts, TableChange

_UNSAFE_WORD = re.compile(r"[^A-Za-z0-9_()\[\]-]+")
_KEY_WORDS = {"pk", "fk", "uk"}


@dataclass
class Attribute:
    """One column line: ``type name [PK, FK] ["comment"]``."""

    type: str
    name: str
    keys: str = ""
    comment: str = ""


@dataclass
class Entity:
    """One table block; ``context`` tables (only referenced) list their key columns only."""

    name: str
    attributes: list[Attribute] = field(default_factory=list)
    context: bool = False
    omitted: int = 0  # columns left out of a context table


@dataclass
class Relation:
    """``"parent" <left>--<right> "child" : "label"`` — crow's foot from parent to child."""

    parent: str
    child: str
    left: str  # '||' (FK NOT NULL) or '|o' (nullable FK)
    line: str  # '--' identifying (FK in child's PK), '..' otherwise
    label: str


@dataclass
class Diagram:
    entities: list[Entity]
    relations: list[Relation]
    more_tables: int = 0  # touched tables left out of the drawing to fit a size limit


def word(text: str) -> str:
    """A Mermaid attribute type or name: unsafe runs become ``_``; never empty, never a key word."""
    out = _UNSAFE_WORD.sub("_", text.strip()).strip("_") or "_"
    if not (out[0].isalpha() or out[0] == "_"):
        out = "_" + out
    if out.lower() in _KEY_WORDS:
        out += "_"
    return out


def entity_name(name: str) -> str:
    """A Mermaid entity name, to be written double-quoted: no ``"`` or ``%``, no line breaks."""
    return re.sub(r'["%\r\n\v\b\\]+', "_", name) or "_"


def _fk_table(fk: str) -> str:
    """``'schema.table.column'`` or ``'table.column'`` → the table part."""
    return fk.rsplit(".", 1)[0]


def _keys(col: ColumnSchema) -> str:
    return ", ".join(k for k, on in (("PK", col.primary_key), ("FK", col.foreign_key)) if on)


def er_diagram(
    tables: list[TableSchema],
    changed: dict[str, dict[str, str]],
    *,
    bind_of: dict[str, str | None] | None = None,
) -> Diagram | None:
    """The diagram of the ``changed`` tables and the tables they reference.

    ``changed`` maps table name → {column name → note} (note such as ``"new"``; an empty dict
    when the table changed as a whole). ``bind_of`` optionally maps a changed table to its bind so
    that a same-named table of another bind is not picked. Returns ``None`` when none of the
    changed tables is in ``tables`` (for instance a table that was removed from the models).
    """
    by_name: dict[str, TableSchema] = {}
    for t in tables:
        wanted_bind = (bind_of or {}).get(t.name, t.bind)
        if t.bind == wanted_bind or t.name not in by_name:
            by_name[t.name] = t
    main = [by_name[n] for n in changed if n in by_name]
    if not main:
        return None
    names = {t.name for t in main}
    referenced: dict[str, set[str]] = {}
    for t in main:
        for col in t.columns:
            if col.foreign_key:
                ref_table = _fk_table(col.foreign_key)
                if ref_table not in names and ref_table in by_name:
                    referenced.setdefault(ref_table, set()).add(col.foreign_key.rsplit(".", 1)[-1])
    entities = [_entity(t, changed.get(t.name, {})) for t in main]
    entities += [_context_entity(by_name[n], cols) for n, cols in referenced.items()]
    shown = names | set(referenced)
    return Diagram(entities, list(_relations(main, shown)))


def _entity(table: TableSchema, notes: dict[str, str]) -> Entity:
    return Entity(entity_name(table.name), _attributes(table, notes))


def _context_entity(table: TableSchema, referenced_cols: set[str]) -> Entity:
    cols = [c for c in table.columns if c.primary_key or c.name in referenced_cols]
    attrs = [Attribute(word(c.type), word(c.name), _keys(c)) for c in cols]
    return Entity(entity_name(table.name), attrs, context=True,
                  omitted=len(table.columns) - len(cols))


def _relations(main: Iterable[TableSchema], shown: set[str],
               labels: dict[str, str] | None = None) -> Iterable[Relation]:
    label = (labels or {}).get
    for t in main:
        for col in t.columns:
            parent = _fk_table(col.foreign_key) if col.foreign_key else None
            if parent in shown:
                yield Relation(
                    parent=entity_name(label(parent, parent)),
                    child=entity_name(label(t.name, t.name)),
                    left="|o" if col.nullable else "||",
                    line="--" if col.primary_key else "..",
                    label=entity_name(col.name),
                )


#: How a touched table is labelled in the change diagram.
TABLE_MARK = {"added": "new", "dropped": "dropped", "changed": "changed"}


def change_diagram(facts: SchemaChangeFacts, *, neighbours: bool = True, only_changed: bool = False,
                   max_tables: int | None = None) -> Diagram | None:
    """The touched tables (labelled ``name (new|changed|dropped)``, their added, dropped and
    changed columns noted) and, with ``neighbours``, the tables they reference or that reference
    them, with their key columns only. ``only_changed`` keeps, of a changed table, only the
    changed and key columns; ``max_tables`` draws the first touched tables only (the rest is
    counted in ``Diagram.more_tables``). ``None`` when nothing is touched."""
    shapes = {(s.bind, s.name): s for s in facts.schemas}
    touched = facts.tables[:max_tables] if max_tables is not None else facts.tables
    if not touched:
        return None
    labels = {t.name: f"{t.name} ({TABLE_MARK[t.change]})" for t in touched}
    main = [_touched_shape(t, shapes.get((t.bind, t.name)), only_changed) for t in touched]
    names = {t.name for t in touched}
    every_touched = {t.name for t in facts.tables}  # also those left out by max_tables
    context: dict[str, set[str]] = {}
    if neighbours:
        for shape in facts.schemas:
            if shape.name in every_touched:
                continue
            refs = {c.name for c in shape.columns if c.foreign_key and _fk_table(c.foreign_key) in names}
            referenced = {c.foreign_key.rsplit(".", 1)[-1] for t in main for c in t.columns
                          if c.foreign_key and _fk_table(c.foreign_key) == shape.name}
            if refs or referenced:
                context[shape.name] = refs | referenced
    by_name = {s.name: s for s in facts.schemas}
    notes = {t.name: {c.name: c.change for c in t.columns} if t.change == "changed" else {}
             for t in touched}  # a new or dropped table: every column is
    entities = [Entity(entity_name(labels[t.name]), _attributes(t, notes[t.name])) for t in main]
    entities += [_context_entity(by_name[n], cols) for n, cols in context.items()]
    shown = names | set(context)
    relations = list(_relations([*main, *(by_name[n] for n in context)], shown, labels))
    return Diagram(entities, relations, more_tables=len(facts.tables) - len(touched))


def _touched_shape(change: TableChange, shape: TableSchema | None, only_changed: bool) -> TableSchema:
    """The table's columns after the change plus its dropped columns (as they were)."""
    columns = list(shape.columns) if shape else []
    known = {c.name for c in columns}
    columns += [ColumnSchema(name=c.name, type=c.before.type, nullable=c.before.nullable,
                             primary_key=c.before.primary_key)
                for c in change.columns if c.before and c.name not in known]
    if only_changed and change.change == "changed":
        noted = {c.name for c in change.columns}
        columns = [c for c in columns if c.name in noted or c.primary_key]
    return TableSchema(name=change.name, bind=change.bind, columns=columns)


def _attributes(table: TableSchema, notes: dict[str, str]) -> list[Attribute]:
    return [Attribute(word(c.type), word(c.name), _keys(c), notes.get(c.name, ""))
            for c in table.columns]
