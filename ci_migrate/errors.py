"""Errors shown to a person, each with the exit code the CLI ends with.

Exit codes (DESIGN.md): 2 usage/config error, 3 environment error (app import, database
unreachable, unsupported library versions). Findings (exit 1) are not errors: they are on the Report.
"""

from __future__ import annotations

from collections.abc import Iterable


class CiMigrateError(Exception):
    """Base class: ``str(error)`` is the complete message a user reads."""

    exit_code = 3


class UsageError(CiMigrateError):
    """Bad flags, arguments or configuration (exit 2)."""

    exit_code = 2


class ConfigError(UsageError):
    """User-facing configuration error (a :class:`UsageError`).

    ``str(e)`` is the full message: one or more problems, one per line, each
    possibly followed by indented hint lines.  ``e.problems`` holds the problems
    separately.  A CLI should print the message and exit with :attr:`exit_code` (2).
    """

    exit_code = 2

    def __init__(self, problems: str | Iterable[str]):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.problems))


class EnvironmentProblem(CiMigrateError):
    """The app, a database or the installed libraries are not usable (exit 3)."""

    exit_code = 3


class AppLoadError(EnvironmentProblem):
    """The Flask app could not be imported or has no Flask-Migrate extension (exit 3)."""


class DatabaseError(EnvironmentProblem):
    """A sandbox or target database server could not be reached or used (exit 3)."""
