"""Checks of setting values that need more than a type: the app import string, the migrations
directory, rule ids. Each returns the problem in words (None when the value is fine); the pydantic
validators in :mod:`ci_migrate.config` raise it, located at the key's ``file:line:column``.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from ci_migrate.config_errors import did_you_mean, show
from ci_migrate.rule_ids import RULE_IDS, id_ranges

_FORMS = "write module, module:name or module:factory(literal arguments), e.g. \"blogapp:create_app('ci')\""


def app_problem(value: str) -> str | None:
    """What is wrong with the syntax of a ``FLASK_APP``-style import string, or None.

    Mirrors what ``flask --app`` accepts (flask.cli ``ScriptInfo.load_app``, ``prepare_import``,
    ``find_app_by_string``): a module (dotted name) or a ``.py``/directory path, then optionally
    ``:`` and a name or a call of a name with literal arguments. Whether the module imports is
    found out when the app is loaded (exit 3), not here.
    """
    if not value.strip():
        return f"must not be empty — {_FORMS}"
    path, name = _split(value)
    is_path = path.endswith(".py") or "/" in path or "\\" in path
    if not is_path and not all(part.isidentifier() for part in path.split(".")):
        return f"{show(path)} is not a module name or a .py file — {_FORMS}"
    if name is None:
        return None
    try:
        expr = ast.parse(name.strip(), mode="eval").body
    except SyntaxError as exc:
        return f"cannot read {show(name)} after the ':' ({exc.msg}) — {_FORMS}"
    if isinstance(expr, ast.Name):
        return None
    if not isinstance(expr, ast.Call):
        return f"{show(name)} after the ':' is not a name or a function call — {_FORMS}"
    if not isinstance(expr.func, ast.Name):
        return f"the function in {show(name)} must be a simple name (flask calls it from the module) — {_FORMS}"
    try:
        for arg in [*expr.args, *(kw.value for kw in expr.keywords if kw.arg is not None)]:
            ast.literal_eval(arg)
    except ValueError:
        return f"the arguments in {show(name)} must be literal values such as 'ci', 1 or True — {_FORMS}"
    return None


def _split(value: str) -> tuple[str, str | None]:
    """``module:name`` → (module, name); a ``:`` followed by ``/`` or ``\\`` is a Windows drive."""
    parts = re.split(r":(?![\\/])", value, maxsplit=1)
    return (parts[0], parts[1]) if len(parts) == 2 else (parts[0], None)


def migrations_problem(value: str, root: Path) -> str | None:
    """What is wrong with the ``migrations`` directory ``value`` (relative to ``root``), or None:
    it must exist and be a directory. Suggests a near-miss among the directories next to it."""
    path = root / value
    if path.is_dir():
        return None
    if path.exists():
        return f"{show(value)} is a file, not a directory — name the directory that holds env.py and versions/"
    parent = path.parent
    siblings = [p.name for p in parent.iterdir() if p.is_dir()] if parent.is_dir() else []
    hint = did_you_mean(path.name, siblings)
    return f"directory not found: {show(value)} (paths are relative to {root}){hint}"


def rule_problem(value: str) -> str | None:
    """What is wrong with a rule id in ``rules:``, or None: it must be one of :data:`RULE_IDS`."""
    if value in RULE_IDS:
        return None
    if not re.fullmatch(r"CM\d{3}", value):
        hint = did_you_mean(value, [value.upper()]) if value.upper() in RULE_IDS else ""
        return f"rule ids look like CM101 (got {show(value)}){hint}"
    return (f"unknown rule {show(value)}{did_you_mean(value, RULE_IDS)}\n"
            f"    known rules: {id_ranges()} (docs/rules/)")
