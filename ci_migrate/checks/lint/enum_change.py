"""CM510: a revision changes the values of an ENUM type."""

from __future__ import annotations

import re
from typing import Iterator

from ci_migrate.checks.lint.base import Hit, RevisionView, Rule, column_name, sql_of
from ci_migrate.facts import RecordedOp, TypeInfo

RULE = Rule(
    id="CM510", name="enum-change", severity="warning", summary="changes the values of an ENUM type",
    fix=("PostgreSQL: add values with op.execute(\"ALTER TYPE status ADD VALUE 'archived'\") inside "
         "`with op.get_context().autocommit_block():` (PostgreSQL < 12 refuses it in a transaction; on 12+ the new "
         "value cannot be used before commit). Removing or renaming a value needs a new type: CREATE TYPE the new "
         "one, ALTER COLUMN ... TYPE new USING col::text::new, DROP TYPE the old one, after no row uses the value. "
         "MySQL/MariaDB: only append new values at the end of the list."),
)
_ALTER_TYPE = re.compile(r"^\s*ALTER\s+TYPE\s+(?P<name>\S+)\s+(?P<verb>ADD|RENAME)\s+VALUE", re.I)


def _values(type_: TypeInfo | None) -> list[str] | None:
    return list(type_.enum_values) if type_ is not None and type_.is_a("Enum") and type_.enum_values is not None else None


def check(view: RevisionView) -> Iterator[Hit]:
    for op in view.of("ExecuteSQLOp"):
        match = _ALTER_TYPE.match(sql_of(op))
        if not match or not view.postgresql or _in_autocommit_block(view, op):
            continue
        name, verb = match["name"].strip('"'), match["verb"].upper()
        yield Hit(op.line, f"ALTER TYPE {name} {verb} VALUE inside the migration's transaction",
                  "alembic runs the upgrade in a transaction: PostgreSQL before 12 refuses ALTER TYPE ... ADD VALUE "
                  "there, and on 12+ the new value cannot be used until that transaction commits (a later "
                  "statement of the same upgrade that uses it fails with \"unsafe use of new value\").",
                  bind=op.bind)
    for op in view.of("AlterColumnOp"):
        old, new = _values(op.existing_type), _values(op.modify_type)
        if new is None or old == new or not view.existing(op.table):
            continue
        where = column_name(op)
        added = [v for v in new if v not in (old or [])]
        removed = [v for v in (old or []) if v not in new]
        if view.postgresql:
            type_name = (op.modify_type.name if op.modify_type else None) or "the enum type"
            yield Hit(op.line, f"changes the ENUM values of `{where}` with alter_column",
                      f"alter_column does not change a PostgreSQL ENUM type's values: it emits ALTER COLUMN ... TYPE "
                      f"{type_name}, the same type, so {', '.join(map(repr, added)) or 'nothing'} is never added "
                      f"and writing it fails with \"invalid input value for enum\".", bind=op.bind,
                      details={"added": added, "removed": removed})
        elif view.mysql and (removed or old is None or new[: len(old)] != old):
            yield Hit(op.line, f"removes or reorders ENUM values of `{where}`",
                      f"MySQL/MariaDB copy `{op.table}` to change an ENUM other than by appending values at the end, "
                      f"and rows holding a removed value ({', '.join(map(repr, removed)) or '-'}) make it fail in "
                      "strict mode.", bind=op.bind, details={"added": added, "removed": removed})


def _in_autocommit_block(view: RevisionView, op: RecordedOp) -> bool:
    """True when the statement ran in AUTOCOMMIT (recorded on the sandbox), or, offline, was written
    between alembic's COMMIT and BEGIN of ``autocommit_block()``."""
    texts = [s for s in view.statements]
    for index, statement in enumerate(texts):
        if statement.op is op and statement.autocommit:
            return True
        if statement.op is op:
            before = next((s.text.upper() for s in reversed(texts[:index]) if s.text), "")
            return before.startswith("COMMIT")
    return False
