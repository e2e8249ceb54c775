"""Keep the working directory off ``sys.path`` for commands that must not run its code.

``python -m ci_migrate`` puts the working directory first on ``sys.path`` (Python docs, "The
initialization of the sys.path module search path"). ``post`` runs with a write token on files a
pull request may have written (a ``workflow_run`` job), so a ``jinja2.py`` or ``click.py`` there
must never be imported in place of the real library. Stdlib only: it runs before the CLI imports.
"""

from __future__ import annotations

import os
import sys


def drop_working_directory(path: list[str] | None = None, cwd: str | None = None) -> list[str]:
    """Remove every entry of ``path`` (default ``sys.path``, changed in place) that names ``cwd``
    (default the working directory): ``''``, ``'.'`` or its absolute path. Returns those removed."""
    path = sys.path if path is None else path
    here = os.path.realpath(cwd or os.getcwd())
    removed = [p for p in path if os.path.realpath(p or ".") == here]
    path[:] = [p for p in path if p not in removed]
    return removed
