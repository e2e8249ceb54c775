"""Alembic autogenerate diffs in words, grouped per table.

Input is ``UpgradeOps.as_diffs()``: tuples such as ``('add_column', schema, table, Column)``, and
``modify_*`` entries that arrive as nested lists
(``[('modify_type', schema, table, column, existing_kw, old, new)]``).
"""

from __future__ import annotations

from typing import Any, Iterable

from ci_migrate.report import ColumnSchema, DiffItem, TableDiff, TableSchema


def type_sql(type_: Any, dialect: Any) -> str:
    """A type as the dialect writes it (``VARCHAR(250)``); falls back to its repr."""
    if type_ is None:
        return "?"
    try:
        return str(type_.compile(dialect=dialect))
    except Exception:  # noqa: BLE001 - some types cannot compile on every dialect
        return repr(type_)


def _qualified(schema: str | None, table: str) -> str:
    return f"{schema}.{table}" if schema else table


def _column_words(column: Any, dialect: Any) -> str:
    words = [type_sql(column.type, dialect), "nullable" if column.nullable else "NOT NULL"]
    if column.server_default is not None:
        arg = getattr(column.server_default, "arg", column.server_default)
        words.append(f"server default {getattr(arg, 'text', arg)}")
    return ", ".join(words)


def _cols(obj: Any) -> str:
    return ", ".join(c.name for c in obj.columns) if hasattr(obj, "columns") else ""


def describe(diff: tuple, dialect: Any, approximate: bool = False) -> DiffItem:
    """One diff tuple → a :class:`DiffItem` with the sentence a person reads."""
    kind = diff[0]
    if kind in ("add_table", "remove_table"):
        table = diff[1]
        name = _qualified(table.schema, table.name)
        if kind == "add_table":
            cols = ", ".join(f"{c.name} {type_sql(c.type, dialect)}" for c in table.columns)
            return DiffItem(kind=kind, table=name, text=f"adds table `{name}` ({cols})")
        return DiffItem(kind=kind, table=name, text=f"drops table `{name}`")
    if kind in ("add_column", "remove_column"):
        _, schema, tname, column = diff
        name = _qualified(schema, tname)
        verb = "adds" if kind == "add_column" else "drops"
        words = _column_words(column, dialect)
        return DiffItem(kind=kind, table=name, name=column.name, new=type_sql(column.type, dialect),
                        text=f"{verb} column `{name}.{column.name}` {words}")
    if kind.startswith("modify_"):
        _, schema, tname, cname, _kw, old, new = diff
        name = _qualified(schema, tname)
        ref = f"`{name}.{cname}`"
        if kind == "modify_type":
            o, n = type_sql(old, dialect), type_sql(new, dialect)
            return DiffItem(kind=kind, table=name, name=cname, old=o, new=n, approximate=approximate,
                            text=f"changes the type of {ref}: {o} → {n}")
        if kind == "modify_nullable":
            text = f"makes {ref} NOT NULL" if new is False else f"makes {ref} nullable"
            return DiffItem(kind=kind, table=name, name=cname, old=str(old), new=str(new), text=text)
        o = getattr(getattr(old, "arg", old), "text", getattr(old, "arg", old))
        n = getattr(getattr(new, "arg", new), "text", getattr(new, "arg", new))
        what = "server default" if kind == "modify_default" else "comment"
        return DiffItem(kind=kind, table=name, name=cname, old=None if o is None else str(o),
                        new=None if n is None else str(n), text=f"changes the {what} of {ref}: {o!r} → {n!r}")
    if kind in ("add_index", "remove_index"):
        index = diff[1]
        name = _qualified(index.table.schema, index.table.name)
        verb = "adds" if kind == "add_index" else "drops"
        unique = ", unique" if index.unique else ""
        return DiffItem(kind=kind, table=name, name=index.name,
                        text=f"{verb} index `{index.name}` on `{name}` ({_cols(index)}){unique}")
    if kind in ("add_constraint", "remove_constraint", "add_fk", "remove_fk"):
        constraint = diff[1]
        table = constraint.table
        name = _qualified(table.schema, table.name)
        verb = "adds" if kind.startswith("add") else "drops"
        label = f" `{constraint.name}`" if constraint.name else ""
        if kind.endswith("fk"):
            target = constraint.elements[0].target_fullname.rsplit(".", 1)[0] if constraint.elements else "?"
            refcols = ", ".join(e.target_fullname.rsplit(".", 1)[1] for e in constraint.elements)
            text = f"{verb} foreign key{label} `{name}` ({_cols(constraint)}) → `{target}` ({refcols})"
        else:
            kind_word = type(constraint).__name__.replace("Constraint", "").lower() or "constraint"
            text = f"{verb} {kind_word} constraint{label} on `{name}` ({_cols(constraint)})"
        return DiffItem(kind=kind, table=name, name=constraint.name, text=text)
    if kind in ("add_table_comment", "remove_table_comment"):
        table = diff[1]
        name = _qualified(table.schema, table.name)
        return DiffItem(kind=kind, table=name, text=f"changes the comment of table `{name}`")
    return DiffItem(kind=str(kind), text=" ".join(map(str, diff)))


def flatten(diffs: Iterable[Any]) -> list[tuple]:
    """``as_diffs()`` output with the nested ``modify_*`` lists flattened."""
    out: list[tuple] = []
    for diff in diffs:
        if isinstance(diff, list):
            out.extend(diff)
        else:
            out.append(diff)
    return out


def group(diffs: Iterable[Any], dialect: Any, approximate: bool = False) -> list[TableDiff]:
    """Group described diffs per table, tables in first-seen order."""
    tables: dict[str, TableDiff] = {}
    for diff in flatten(diffs):
        item = describe(diff, dialect, approximate)
        key = item.table or "(schema)"
        change = {"add_table": "added", "remove_table": "removed"}.get(item.kind, "changed")
        entry = tables.setdefault(key, TableDiff(table=key, change=change))
        if change != "changed":
            entry.change = change
        entry.items.append(item)
    return list(tables.values())


def suggest_message(items: list[DiffItem]) -> str:
    """A revision message like a person would write: ``add user.bio``."""
    first = items[0]
    verb = {"add_column": "add", "remove_column": "drop", "add_table": "add table", "remove_table": "drop table",
            "add_index": "add index", "remove_index": "drop index"}.get(first.kind, "update")
    what = f"{first.table}.{first.name}" if first.name and first.kind.endswith("column") else (first.name or first.table)
    return f"{verb} {what}" + (" and more" if len(items) > 1 else "")


def table_schemas(metadatas: dict[Any, Any], names: set[str]) -> list[TableSchema]:
    """The model tables named in ``names`` and the tables their foreign keys reference."""
    found: dict[str, TableSchema] = {}
    pending = list(names)
    by_name = {(t.fullname): (bind, t) for bind, md in metadatas.items() for t in md.tables.values()}
    while pending:
        name = pending.pop()
        if name in found or name not in by_name:
            continue
        bind, table = by_name[name]
        columns = []
        for column in table.columns:
            fk = next(iter(column.foreign_keys), None)
            columns.append(ColumnSchema(name=column.name, type=_generic(column.type),
                                        nullable=bool(column.nullable), primary_key=column.primary_key,
                                        foreign_key=fk.target_fullname if fk else None))
            if fk is not None:
                pending.append(fk.target_fullname.rsplit(".", 1)[0])
        found[name] = TableSchema(name=name, bind=bind, columns=columns)
    return sorted(found.values(), key=lambda t: t.name)


def _generic(type_: Any) -> str:
    try:
        return str(type_.compile())
    except Exception:  # noqa: BLE001
        return type(type_).__name__.upper()
