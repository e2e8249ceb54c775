"""CM511: a revision changes the schema but its downgrade does nothing (only ``pass``)."""

from __future__ import annotations

import ast
from typing import Iterator

from ci_migrate.checks.lint.base import Hit, RevisionView, Rule

RULE = Rule(
    id="CM511", name="empty-downgrade", severity="warning", summary="the downgrade is empty (pass)",
    fix=("Write the reverse operations (autogenerate writes them; they may have been deleted), or, if the change "
         "cannot be undone, say so: `raise NotImplementedError(\"irreversible: <why>\")`, so a downgrade stops "
         "instead of silently doing nothing."),
)


def _empty(function: ast.FunctionDef) -> bool:
    body = [n for n in function.body
            if not (isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) and isinstance(n.value.value, str))]
    return all(isinstance(n, ast.Pass) for n in body)


def check(view: RevisionView) -> Iterator[Hit]:
    if not view.ops:
        return  # nothing to undo (e.g. a merge revision)
    schema_binds = {o.bind or "" for o in view.ops}
    for function in view.functions("downgrade"):
        if not _empty(function):
            continue
        bind = function.name[len("downgrade_"):] if function.name.startswith("downgrade_") else None
        if bind is not None and bind not in schema_binds:
            continue  # multidb: this bind's upgrade does nothing either
        yield Hit(function.lineno, f"{function.name}() is empty, but the upgrade changes the schema",
                  "`flask db downgrade` past this revision reports success and moves the version table back, but "
                  "the schema stays as upgraded: the next upgrade then fails (\"already exists\"), and the database "
                  "no longer matches its revision.", bind=bind or None)
