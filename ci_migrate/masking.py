"""Masking of secrets in anything printed: database URLs are always shown without password."""

from __future__ import annotations

import re

_URL_PASSWORD = re.compile(r"(?P<head>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s]*)(?P<at>@)")


def mask_url(url: object) -> str:
    """Render a URL (``str`` or ``sqlalchemy.engine.URL``) with its password replaced by ``***``.

    ``postgresql://app:s3cret@db/prod`` → ``postgresql://app:***@db/prod``. Text without a URL
    password is returned unchanged.
    """
    if hasattr(url, "render_as_string"):
        return url.render_as_string(hide_password=True)  # type: ignore[union-attr]
    return mask_text(str(url))


def mask_text(text: str, secrets: tuple[str, ...] | list[str] = ()) -> str:
    """Replace every URL password in ``text``, and every literal in ``secrets``, with ``***``."""
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}***{m['at']}" if m["pw"] else m[0], text)
    for secret in secrets:
        if secret:
            text = text.replace(secret, "***")
    return text


def url_password(url: str) -> str | None:
    """The password in a URL string, if any (used to register secrets for masking)."""
    m = _URL_PASSWORD.search(url)
    return m["pw"] if m and m["pw"] else None
