"""CM512: a revision creates or drops a constraint without a name (autogenerate's ``None``)."""

from __future__ import annotations

import ast
from typing import Iterator

from ci_migrate.checks.lint.base import Hit, RevisionView, Rule

RULE = Rule(
    id="CM512", name="unnamed-constraint", severity="warning",
    summary="creates or drops a constraint without a name",
    fix=("Name every constraint: replace None with the name (op.f('fk_post_user_id_user')), and give the models a "
         "naming convention so autogenerate names them from now on:\n"
         "    db = SQLAlchemy(metadata=MetaData(naming_convention={\n"
         "        'ix': 'ix_%(column_0_label)s', 'uq': 'uq_%(table_name)s_%(column_0_name)s',\n"
         "        'ck': 'ck_%(table_name)s_%(constraint_name)s',\n"
         "        'fk': 'fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s', 'pk': 'pk_%(table_name)s'}))\n"
         "For a constraint the database already named, use the name it has (\\d table in psql)."),
)
_CREATE = {"create_foreign_key", "create_unique_constraint", "create_check_constraint", "create_primary_key"}


def _unnamed_calls(function: ast.FunctionDef) -> Iterator[tuple[int, str]]:
    for node in ast.walk(function):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)):
            continue
        name = node.func.attr
        if name != "drop_constraint" and name not in _CREATE:
            continue
        first = node.args[0] if node.args else next(
            (k.value for k in node.keywords if k.arg in ("constraint_name", "name")), None)
        if isinstance(first, ast.Constant) and first.value is None:
            yield node.lineno, name


def check(view: RevisionView) -> Iterator[Hit]:
    calls = []  # (line, call, where)
    for op in view.ops:
        if op.has_constraint_name and op.constraint_name is None and op.kind in ("CreateForeignKeyOp", "CreateUniqueConstraintOp", "CreateCheckConstraintOp",
                                        "CreatePrimaryKeyOp", "DropConstraintOp"):
            call = "drop_constraint" if op.kind == "DropConstraintOp" else op.kind
            calls.append((op.line, call, "upgrade"))
    for function in view.functions("downgrade"):
        calls += [(line, call, "downgrade") for line, call in _unnamed_calls(function)]
    if not calls:
        return
    drops = [c for c in calls if c[1] == "drop_constraint"]
    lines = ", ".join(f"line {line} ({where})" for line, _, where in calls if line)
    first = (drops or calls)[0]
    if drops:
        why = ("drop_constraint(None, ...) always fails: alembic raises \"Constraint must have a name\" (or "
               "SQLAlchemy \"Can't emit DROP CONSTRAINT ... it has no name\"), so this "
               f"{'downgrade' if first[2] == 'downgrade' else 'upgrade'} cannot run. ")
    else:
        why = ""
    yield Hit(first[0], f"{len(calls)} constraint operation(s) without a name ({lines or 'see the file'})",
              why + "A constraint created without a name gets one the database makes up (PostgreSQL "
              "`post_user_id_fkey`, MySQL `post_ibfk_1`, SQLite none), so no later revision can drop or alter it "
              "portably; `flask db downgrade` to base fails on exactly this in many Flask apps.",
              severity="error" if drops else None, details={"lines": [c[0] for c in calls]})
