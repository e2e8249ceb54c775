"""Alembic objects as plain data: autogenerate diffs in words, operations and types as dicts.

Input of :func:`group` is ``UpgradeOps.as_diffs()``: tuples such as ``('add_column', schema, table,
Column)``, and ``modify_*`` entries that arrive as nested lists
(``[('modify_type', schema, table, column, existing_kw, old, new)]``). :func:`operation` turns a
``MigrateOperation`` (``op.add_column(...)`` → ``AddColumnOp``) into the dict the host's lint rules
read: no SQLAlchemy object crosses to the host.
"""

from __future__ import annotations

from typing import Any, Dict, Iterable, List, Optional


def dialect_named(name: str) -> Any:
    """A SQLAlchemy dialect object for ``name`` (``postgresql`` → PGDialect), for compiling types."""
    from sqlalchemy.engine import make_url

    return make_url(f"{name}://").get_dialect()()


def type_sql(type_: Any, dialect: Any) -> str:
    """A type as the dialect writes it (``VARCHAR(250)``); falls back to its repr."""
    if type_ is None:
        return "?"
    try:
        return str(type_.compile(dialect=dialect))
    except Exception:  # noqa: BLE001 - some types cannot compile on every dialect
        return repr(type_)


def type_info(type_: Any, dialect: Any) -> Optional[Dict[str, Any]]:
    """A column type as data: ``{sql, repr, classes (MRO names), length, precision, scale, enum_values,
    name}``; None for no type."""
    if type_ is None:
        return None
    values = getattr(type_, "enums", None)
    return {"sql": type_sql(type_, dialect), "repr": repr(type_),
            "classes": [c.__name__ for c in type(type_).__mro__],
            "length": getattr(type_, "length", None), "precision": getattr(type_, "precision", None),
            "scale": getattr(type_, "scale", None),
            "enum_values": list(values) if values is not None else None, "name": getattr(type_, "name", None)}


def _default_text(default: Any) -> Optional[str]:
    if default is None:
        return None
    arg = getattr(default, "arg", default)
    return str(getattr(arg, "text", arg))


def column_info(column: Any, dialect: Any) -> Dict[str, Any]:
    return {"name": column.name, "type": type_info(column.type, dialect), "nullable": bool(column.nullable),
            "server_default": _default_text(column.server_default), "primary_key": bool(column.primary_key),
            "computed": getattr(column, "computed", None) is not None,
            "identity": getattr(column, "identity", None) is not None}


def _qualified(schema: Optional[str], table: str) -> str:
    return f"{schema}.{table}" if schema else table


def _column_words(column: Any, dialect: Any) -> str:
    words = [type_sql(column.type, dialect), "nullable" if column.nullable else "NOT NULL"]
    if column.server_default is not None:
        words.append(f"server default {_default_text(column.server_default)}")
    return ", ".join(words)


def _cols(obj: Any) -> str:
    return ", ".join(c.name for c in obj.columns) if hasattr(obj, "columns") else ""


def _fk_options(constraint: Any) -> str:
    """`` ON DELETE CASCADE`` … : what tells a foreign key from one on the same columns (autogenerate compares them)."""
    options = [f"ON DELETE {constraint.ondelete.upper()}" if constraint.ondelete else "",
               f"ON UPDATE {constraint.onupdate.upper()}" if constraint.onupdate else "",
               "DEFERRABLE" if constraint.deferrable else "",
               f"INITIALLY {constraint.initially.upper()}" if constraint.initially else ""]
    return "".join(f" {o}" for o in options if o)


def _item(kind: str, text: str, table: Optional[str] = None, name: Optional[str] = None, old: Optional[str] = None,
          new: Optional[str] = None, approximate: bool = False) -> Dict[str, Any]:
    return {"kind": kind, "table": table, "name": name, "old": old, "new": new, "text": text,
            "approximate": approximate}


def describe(diff: tuple, dialect: Any, approximate: bool = False) -> Dict[str, Any]:
    """One diff tuple → a dict ``{kind, table, name, old, new, text, approximate}``; ``text`` is the
    sentence a person reads, e.g. "adds column `user.bio` VARCHAR(250), nullable"."""
    kind = diff[0]
    if kind in ("add_table", "remove_table"):
        table = diff[1]
        name = _qualified(table.schema, table.name)
        if kind == "add_table":
            cols = ", ".join(f"{c.name} {type_sql(c.type, dialect)}" for c in table.columns)
            return _item(kind, f"adds table `{name}` ({cols})", name)
        return _item(kind, f"drops table `{name}`", name)
    if kind in ("add_column", "remove_column"):
        _, schema, tname, column = diff
        name = _qualified(schema, tname)
        verb = "adds" if kind == "add_column" else "drops"
        return _item(kind, f"{verb} column `{name}.{column.name}` {_column_words(column, dialect)}", name,
                     column.name, new=type_sql(column.type, dialect))
    if kind.startswith("modify_"):
        _, schema, tname, cname, _kw, old, new = diff
        name = _qualified(schema, tname)
        ref = f"`{name}.{cname}`"
        if kind == "modify_type":
            o, n = type_sql(old, dialect), type_sql(new, dialect)
            return _item(kind, f"changes the type of {ref}: {o} → {n}", name, cname, o, n, approximate)
        if kind == "modify_nullable":
            text = f"makes {ref} NOT NULL" if new is False else f"makes {ref} nullable"
            return _item(kind, text, name, cname, str(old), str(new))
        o, n = _default_text(old), _default_text(new)
        what = "server default" if kind == "modify_default" else "comment"
        return _item(kind, f"changes the {what} of {ref}: {o!r} → {n!r}", name, cname, o, n)
    if kind in ("add_index", "remove_index"):
        index = diff[1]
        name = _qualified(index.table.schema, index.table.name)
        verb = "adds" if kind == "add_index" else "drops"
        unique = ", unique" if index.unique else ""
        return _item(kind, f"{verb} index `{index.name}` on `{name}` ({_cols(index)}){unique}", name, index.name)
    if kind in ("add_constraint", "remove_constraint", "add_fk", "remove_fk"):
        constraint = diff[1]
        table = constraint.table
        name = _qualified(table.schema, table.name)
        verb = "adds" if kind.startswith("add") else "drops"
        label = f" `{constraint.name}`" if constraint.name else ""
        if kind.endswith("fk"):
            target = constraint.elements[0].target_fullname.rsplit(".", 1)[0] if constraint.elements else "?"
            refcols = ", ".join(e.target_fullname.rsplit(".", 1)[1] for e in constraint.elements)
            text = f"{verb} foreign key{label} `{name}` ({_cols(constraint)}) → `{target}` ({refcols})" + _fk_options(
                constraint)
        else:
            kind_word = type(constraint).__name__.replace("Constraint", "").lower() or "constraint"
            text = f"{verb} {kind_word} constraint{label} on `{name}` ({_cols(constraint)})"
        return _item(kind, text, name, constraint.name)
    if kind in ("add_table_comment", "remove_table_comment"):
        table = diff[1]
        name = _qualified(table.schema, table.name)
        return _item(kind, f"changes the comment of table `{name}`", name)
    return _item(str(kind), " ".join(map(str, diff)))


def flatten(diffs: Iterable[Any]) -> List[tuple]:
    """``as_diffs()`` output with the nested ``modify_*`` lists flattened."""
    out: List[tuple] = []
    for diff in diffs:
        if isinstance(diff, list):
            out.extend(diff)
        else:
            out.append(diff)
    return out


def group(diffs: Iterable[Any], dialect: Any, approximate: bool = False) -> List[Dict[str, Any]]:
    """Described diffs grouped per table, tables in first-seen order:
    ``[{table, change: added|removed|changed, items: [...]}]``."""
    tables: Dict[str, Dict[str, Any]] = {}
    for diff in flatten(diffs):
        item = describe(diff, dialect, approximate)
        key = item["table"] or "(schema)"
        change = {"add_table": "added", "remove_table": "removed"}.get(item["kind"], "changed")
        entry = tables.setdefault(key, {"table": key, "change": change, "items": []})
        if change != "changed":
            entry["change"] = change
        entry["items"].append(item)
    return list(tables.values())


def table_schemas(metadatas: Dict[Any, Any], names: Iterable[str]) -> List[Dict[str, Any]]:
    """The model tables named in ``names`` and the tables their foreign keys reference, as
    ``[{name, bind, columns: [{name, type, nullable, primary_key, foreign_key}]}]`` (for diagrams)."""
    found: Dict[str, Dict[str, Any]] = {}
    pending = list(names)
    by_name = {t.fullname: (bind, t) for bind, md in metadatas.items() if md is not None for t in md.tables.values()}
    while pending:
        name = pending.pop()
        if name in found or name not in by_name:
            continue
        bind, table = by_name[name]
        columns = []
        for column in table.columns:
            fk = next(iter(column.foreign_keys), None)
            columns.append({"name": column.name, "type": _generic(column.type), "nullable": bool(column.nullable),
                            "primary_key": bool(column.primary_key),
                            "foreign_key": fk.target_fullname if fk else None})
            if fk is not None:
                pending.append(fk.target_fullname.rsplit(".", 1)[0])
        found[name] = {"name": name, "bind": bind, "columns": columns}
    return sorted(found.values(), key=lambda t: t["name"])


def _generic(type_: Any) -> str:
    try:
        return str(type_.compile())
    except Exception:  # noqa: BLE001
        return type(type_).__name__.upper()


# ----------------------------------------------------------------------------- operations


def op_table(op: Any) -> Optional[str]:
    """The table an operation acts on, lower-cased (None for ``op.execute``)."""
    name = getattr(op, "table_name", None)
    if name is None and getattr(op, "table", None) is not None:  # BulkInsertOp
        name = getattr(op.table, "name", None)
    if name is None and getattr(op, "source_table", None) is not None:  # CreateForeignKeyOp
        name = op.source_table
    return str(name).lower() if name is not None else None


def object_name(op: Any) -> Optional[str]:
    """The column, index or constraint an operation names (None when it names none)."""
    for attr in ("column_name", "index_name", "constraint_name"):
        if getattr(op, attr, None):
            return str(getattr(op, attr))
    column = getattr(op, "column", None)
    return getattr(column, "name", None)


def _sql_text(op: Any, dialect: Any) -> str:
    text = getattr(op, "sqltext", "")
    if isinstance(text, str):
        return text
    try:
        return str(text.compile(dialect=dialect))
    except Exception:  # noqa: BLE001
        return str(getattr(text, "text", text))


def operation(op: Any, dialect: Any, *, line: Optional[int], batch: bool, bind: Optional[str]) -> Dict[str, Any]:
    """An alembic ``MigrateOperation`` as data for the lint rules.

    Keys: ``kind`` (class name, e.g. ``AddColumnOp``), ``table``, ``bind``, ``line`` (of the call in
    the revision file), ``batch`` (inside ``batch_alter_table``), ``text`` (in words), ``object``
    (column/index/constraint name), and per kind: ``column`` (:func:`column_info`), ``column_name``,
    ``modify_name``, ``modify_nullable``, ``existing_type``/``modify_type`` (:func:`type_info`),
    ``new_table_name``, ``index_name``, ``columns`` (a foreign key's own), ``unique``, ``concurrently``,
    ``not_valid``, ``constraint_name``, ``constraint_type``, ``referent_table``, ``referent_columns``, ``condition``, ``sql`` and
    ``sql_is_dml``/``data_table`` (``op.execute``), ``rows`` (``bulk_insert``).
    """
    from alembic.operations import ops as o

    kw = getattr(op, "kw", None) or {}
    data: Dict[str, Any] = {"kind": type(op).__name__, "table": op_table(op), "bind": bind, "line": line,
                            "batch": batch, "object": object_name(op), "text": describe_op(op, dialect)}
    if getattr(op, "column", None) is not None and hasattr(op.column, "type"):
        data["column"] = column_info(op.column, dialect)
    for attr in ("column_name", "modify_name", "modify_nullable", "new_table_name", "index_name", "unique",
                 "constraint_type", "referent_table"):
        if hasattr(op, attr):
            value = getattr(op, attr)
            data[attr] = value if isinstance(value, (str, bool, int, type(None))) else str(value)
    if hasattr(op, "constraint_name"):
        data["constraint_name"] = op.constraint_name
    if isinstance(op, o.AlterColumnOp):
        data["existing_type"] = type_info(op.existing_type, dialect)
        data["modify_type"] = type_info(op.modify_type, dialect)
        data["existing_nullable"] = op.existing_nullable
    if hasattr(op, "columns") and not isinstance(op, o.CreateTableOp):
        data["columns"] = [getattr(c, "name", None) or str(c) for c in (op.columns or [])]
    if isinstance(op, o.CreateTableOp):
        data["columns"] = [c.name for c in op.columns if hasattr(c, "name") and hasattr(c, "type")]
    if isinstance(op, o.CreateForeignKeyOp):
        data["columns"] = [str(c) for c in op.local_cols or ()]
        data["referent_columns"] = [str(c) for c in op.remote_cols or ()]
    if isinstance(op, o.CreateCheckConstraintOp):
        data["condition"] = str(op.condition)
    data["concurrently"] = bool(kw.get("postgresql_concurrently"))
    data["not_valid"] = bool(kw.get("postgresql_not_valid"))
    if isinstance(op, o.ExecuteSQLOp):
        data["sql"] = _sql_text(op, dialect)
        data["sql_is_dml"], data["data_table"] = _dml(op)
    if isinstance(op, o.BulkInsertOp):
        data["rows"] = len(op.rows)
    return data


def _dml(op: Any) -> tuple:
    """Whether an ``op.execute`` construct is DML (a Core insert/update/delete), and its table."""
    text = op.sqltext
    if isinstance(text, str):
        return None, None
    from sqlalchemy.sql.dml import UpdateBase

    target = getattr(text, "table", None)
    name = getattr(target, "name", None)
    return isinstance(text, UpdateBase), (str(name).lower() if name else None)


def describe_op(op: Any, dialect: Any) -> str:
    """An alembic operation in words: ``adds column `user.age` INTEGER, NOT NULL``.

    Uses the autogenerate wording (:func:`describe`) for operations that have a diff tuple
    (``MigrateOperation.to_diff_tuple()``), and its own for the others.
    """
    from alembic.operations import ops as o

    table = getattr(op, "table_name", None)
    if isinstance(op, o.ExecuteSQLOp):
        first = " ".join(_sql_text(op, dialect).split())
        return f"executes SQL: {first[:100]}{'…' if len(first) > 100 else ''}"
    if isinstance(op, o.BulkInsertOp):
        return f"inserts {len(op.rows)} row(s) into `{op.table.name}`"
    if isinstance(op, o.RenameTableOp):
        return f"renames table `{op.table_name}` to `{op.new_table_name}`"
    if isinstance(op, o.DropColumnOp):
        return f"drops column `{table}.{op.column_name}`"
    if isinstance(op, o.DropTableOp):
        return f"drops table `{table}`"
    if isinstance(op, o.DropIndexOp):
        return f"drops index `{op.index_name}`" + (f" on `{table}`" if table else "")
    if isinstance(op, o.DropConstraintOp):
        return f"drops {op.constraint_type or ''} constraint `{op.constraint_name}` on `{table}`".replace("  ", " ")
    if isinstance(op, o.CreateCheckConstraintOp):
        return f"adds check constraint `{op.constraint_name}` on `{table}` ({op.condition})"
    words = []
    if isinstance(op, o.AlterColumnOp) and op.modify_name:
        words.append(f"renames column `{table}.{op.column_name}` to `{op.modify_name}`")
    try:
        diff = op.to_diff_tuple()
    except (NotImplementedError, AttributeError, TypeError, ValueError):
        diff = None
    for item in flatten([diff] if diff else []):
        try:
            words.append(describe(item, dialect)["text"])
        except Exception:  # noqa: BLE001
            words.append(" ".join(map(str, item[:1])))
    if isinstance(op, o.CreateIndexOp) and (getattr(op, "kw", None) or {}).get("postgresql_concurrently") and words:
        words[-1] += " (concurrently)"
    return "; ".join(words) or f"{type(op).__name__}" + (f" on `{table}`" if table else "")
