"""The rule pages (``docs/rules/<id>.md``) as installed with the package, for ``ci-migrate explain``.

setup.py ships docs/rules/ as the ``ci_migrate.rules`` package; :mod:`importlib.resources` reads
it from a wheel, an sdist install or an editable install alike.
"""

from __future__ import annotations

import re
from importlib import resources

from ci_migrate.config_errors import did_you_mean
from ci_migrate.errors import EnvironmentProblem, UsageError

_RULE_ID = re.compile(r"CM\d{3}")
_LOOKALIKE = str.maketrans("OIL", "011")


def rule_ids() -> list[str]:
    """The ids that have a page, sorted (``[]`` when the pages are not installed)."""
    try:
        folder = resources.files("ci_migrate.rules")
    except ModuleNotFoundError:
        return []
    return sorted(p.name[:-3] for p in folder.iterdir() if _RULE_ID.fullmatch(p.name[:-3]) and p.name.endswith(".md"))


def page(rule_id: str) -> str:
    """The Markdown page of ``rule_id`` (case-insensitive: ``cm504`` is ``CM504``).

    Raises :class:`UsageError` (exit 2) for an id without a page, with the closest ids, and
    :class:`EnvironmentProblem` (exit 3) when this installation has no rule pages at all.
    """
    known = rule_ids()
    if not known:
        raise EnvironmentProblem("the rule pages are not installed with this copy of ci-migrate "
                             "(reinstall it from a wheel or the source tree)")
    wanted = rule_id.strip().upper()
    if wanted not in known:
        typed = wanted[:2] + wanted[2:].translate(_LOOKALIKE)  # CM5O4 → CM504
        hint = (f" — did you mean '{typed}'?" if typed in known else did_you_mean(wanted, known)
                or f" (rule ids look like {known[0]})")
        raise UsageError(f"no rule {rule_id!r}{hint}\n    rules: {', '.join(known)}")
    return (resources.files("ci_migrate.rules") / f"{wanted}.md").read_text(encoding="utf-8")
