"""Secrets out of everything ci-migrate shows: one URL-password parser, one set of secret values.

Every output goes through a :class:`Masker` at the boundary: the :class:`~ci_migrate.report.Report`
is masked once before any publisher sees it (:meth:`Masker.report`), and console/stderr lines with
:meth:`Masker.text`. A Masker hides

- the password of every ``scheme://user:password@host`` URL in the text, whatever its length, and
- every secret value the run knows (:func:`run_secrets`: CI tokens, the passwords of the target,
  bind and sandbox URLs, the value behind ``sandbox-password-env``), raw and percent-decoded,
  wherever it appears — also in text that came from subprocesses or database errors.

Values shorter than :data:`MIN_SECRET_LENGTH` are not replaced as plain text (``p`` would blank
every ``p``) nor registered with ``::add-mask::``; in a URL they are still masked. Stdlib only:
``entrypoint.py`` uses this module before the tool's dependencies are on the path.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from typing import TYPE_CHECKING, Any, TypeVar
from urllib.parse import unquote

if TYPE_CHECKING:
    from ci_migrate.config import Settings

MASK = "***"
#: Shortest value replaced as plain text or registered with ``::add-mask::``.
MIN_SECRET_LENGTH = 4
#: Variables holding CI tokens: GitHub (the action's ``github-token`` input arrives as
#: ``INPUT_GITHUB-TOKEN``), GitLab (``GITLAB_TOKEN`` for notes, the job's ``CI_JOB_TOKEN``).
TOKEN_VARIABLES = ("GITHUB_TOKEN", "INPUT_GITHUB-TOKEN", "INPUT_GITHUB_TOKEN", "GITLAB_TOKEN", "CI_JOB_TOKEN")

# scheme://user:password@ — the user as SQLAlchemy reads it (no ':' or '/'; an '@' is allowed,
# as in Azure's user@server); the password runs to the last '@' before whitespace or the next
# '://', so a raw '@', ':' or '/' in it is hidden entirely, and two URLs on one line stay two.
# (An '@' in a query string after the host makes the mask too long, never too short.)
_URL_PASSWORD = re.compile(
    r"(?P<head>(?<![A-Za-z0-9+.\-])[A-Za-z][A-Za-z0-9+.\-]*://[^:/\s]*:)"
    r"(?P<pw>(?:(?!://)\S)*)"
    r"(?P<at>@)"
)
# Keys of the report whose values come from ci-migrate's fixed vocabularies (pydantic Literals).
_VOCABULARY_KEYS = frozenset({"schema_version", "kind", "status", "severity", "change", "command", "fail_on",
                              "scope", "verdict"})

M = TypeVar("M")


def passwords_in(text: str) -> list[str]:
    """The password of every URL in ``text``, as written (percent-encoded where it was)."""
    return [m["pw"] for m in _URL_PASSWORD.finditer(text) if m["pw"]]


def url_password(url: str) -> str | None:
    """The password of the first URL in ``url``, as written, or None.

    ``postgresql://app:p@ss:w/rd@db/prod`` → ``p@ss:w/rd`` (everything up to the last ``@``).
    """
    found = passwords_in(url)
    return found[0] if found else None


def mask_urls(text: str) -> str:
    """``text`` with the password of every URL in it replaced by ``***``."""
    return _URL_PASSWORD.sub(lambda m: f"{m['head']}{MASK}{m['at']}" if m["pw"] else m[0], text)


def mask_url(url: object) -> str:
    """Render a URL (``str`` or ``sqlalchemy.engine.URL``) with its password replaced by ``***``.

    ``postgresql://app:s3cret@db/prod`` → ``postgresql://app:***@db/prod``.
    """
    if hasattr(url, "render_as_string"):
        return url.render_as_string(hide_password=True)  # type: ignore[union-attr]
    return mask_urls(str(url))


def secret_forms(values: Iterable[str | None]) -> list[str]:
    """Each value raw and percent-decoded, without duplicates, empties or values shorter than
    :data:`MIN_SECRET_LENGTH`, longest first (so no part of a longer secret is left showing)."""
    forms: list[str] = []
    for value in values:
        for form in (value or "", unquote(value or "")):
            if len(form.strip()) >= MIN_SECRET_LENGTH and form not in forms:
                forms.append(form)
    return sorted(forms, key=len, reverse=True)


def mask_text(text: str, secrets: Iterable[str] = ()) -> str:
    """``text`` with every URL password and every value in ``secrets`` (see :func:`secret_forms`)
    replaced by ``***``."""
    text = mask_urls(text)
    for secret in secret_forms(secrets):
        text = text.replace(secret, MASK)
    return text


def run_secrets(settings: Settings, env: Mapping[str, str]) -> list[str]:
    """The secret values a run knows, read from ``env`` without failing on missing variables.

    The CI tokens (:data:`TOKEN_VARIABLES`), the password of every URL in the targets' ``url-env``
    and ``binds`` variables and in the ``sandbox`` setting, and the value of the variable named by
    ``sandbox-password-env``.
    """
    found = [env.get(name, "") for name in TOKEN_VARIABLES]
    urls = [settings.sandbox]
    for target in settings.targets.values():
        urls += [env.get(target.url_env, ""), *(env.get(var, "") for var in target.binds.values())]
    for url in urls:
        found += passwords_in(url)
    if settings.sandbox_password_env:
        found.append(env.get(settings.sandbox_password_env, ""))
    return found


class Masker:
    """Masks URL passwords and a fixed set of secret values in text and reports."""

    def __init__(self, secrets: Iterable[str | None] = ()):
        self.secrets = secret_forms(secrets)

    @classmethod
    def of(cls, settings: Settings | None, env: Mapping[str, str]) -> Masker:
        """A Masker for a run: :func:`run_secrets` of ``settings``, or the tokens alone without settings."""
        if settings is None:
            return cls(env.get(name, "") for name in TOKEN_VARIABLES)
        return cls(run_secrets(settings, env))

    def text(self, text: str) -> str:
        """``text`` with every URL password and known secret replaced by ``***``."""
        return mask_text(text, self.secrets)

    def data(self, value: Any, key: str | None = None) -> Any:
        """JSON-like ``value`` with every string (keys too) masked, except the values of
        ci-migrate's vocabulary keys (``status``, ``severity`` …), which carry no user text."""
        if isinstance(value, str):
            return value if key in _VOCABULARY_KEYS else self.text(value)
        if isinstance(value, dict):
            return {self.text(k) if isinstance(k, str) else k: self.data(v, k) for k, v in value.items()}
        if isinstance(value, list):
            return [self.data(v) for v in value]
        return value

    def report(self, report: M) -> M:
        """A copy of a pydantic model (the Report) with :meth:`data` applied to all its strings."""
        return type(report).model_validate(self.data(report.model_dump(mode="json")))  # type: ignore[attr-defined]
