"""Database URLs a user gives (environment variables, flags, the config file): checked before use.

SQLAlchemy's ``make_url`` reads ``postgresql://app:p@ss@db/prod`` as the host ``ss@db`` (the
password half-shown in the connection error that follows) and stops on a port such as ``abc``
with a bare ``ValueError``. :func:`url_problem` finds these first and says which part is wrong;
:func:`parse_url` raises it as a :class:`~ci_migrate.config_errors.ConfigError` (exit 2) naming
where the URL came from. A URL is always shown with its password masked.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from ci_migrate.config_errors import ConfigError, did_you_mean
from ci_migrate.masking import mask_urls, url_password

if TYPE_CHECKING:
    from ci_migrate.config import Settings

#: Servers a sandbox can be made on (``CREATE DATABASE``), by SQLAlchemy backend name.
SANDBOX_BACKENDS = ("postgresql", "mysql", "mariadb")
_EXAMPLE = "dialect://user:password@host:port/database, such as postgresql://app:secret@db.internal:5432/shop"
# scheme :// [userinfo @] host [:port] [/database] [?query] — userinfo up to the last '@' (as masking.py reads it)
_AUTHORITY = re.compile(r"(?P<scheme>[A-Za-z][A-Za-z0-9+.\-]*)://(?:(?P<userinfo>\S*)@)?(?P<hostport>[^/?]*)")
_HOST_PORT = re.compile(r"(?:\[[^\]]*\]|[^:\[\]]*)(?::(?P<port>.*))?")


def url_problem(value: str) -> str | None:
    """What is wrong with the database URL ``value``, in words (password masked), or None.

    Checked: the ``dialect://`` prefix; a raw ``@`` in the password (percent-encode it as ``%40``;
    a raw ``/`` or ``:`` is read correctly by SQLAlchemy and allowed); a port that is not a number
    from 1 to 65535; anything else ``sqlalchemy.engine.make_url`` refuses. ``sqlite:///path`` URLs
    have no host and pass.
    """
    shown = mask_urls(value)
    found = _AUTHORITY.match(value.strip())
    if found is None:
        return f"{shown!r} is not a database URL ({_EXAMPLE})"
    password = url_password(value.strip())
    if password is not None and "@" in password:
        return (f"the password in {shown} contains a raw '@', which ends the password early — "
                "percent-encode it as %40 (in Python: urllib.parse.quote(password, safe=''))")
    port = _HOST_PORT.fullmatch(found["hostport"])
    if port is None:
        return f"the host in {shown} cannot be read (an IPv6 address goes in brackets: [::1]:5432)"
    if port["port"] is not None and port["port"] != "" and not (
            port["port"].isdigit() and 1 <= int(port["port"]) <= 65535):
        return f"the port in {shown} is {port['port']!r}, not a number from 1 to 65535"
    from sqlalchemy.engine import make_url

    try:
        make_url(value.strip())
    except Exception:  # noqa: BLE001 - ArgumentError or ValueError; their text repeats the password
        return f"{shown} cannot be read as a database URL ({_EXAMPLE})"
    return None


def sandbox_problem(value: str, in_file: bool) -> str | None:
    """What is wrong with a ``sandbox`` setting, in words (password masked), or None.

    The sandbox is ``sqlite`` or the URL of a PostgreSQL or MySQL/MariaDB server
    (:data:`SANDBOX_BACKENDS`); Heroku's ``postgres://`` is answered with the ``postgresql://``
    spelling. ``in_file``: the value comes from the config file, where a password would be committed.
    """
    if value == "sqlite":
        return None
    allowed = ("must be 'sqlite' or a PostgreSQL/MySQL server URL such as postgresql://user@host:5432/ or "
               "mysql+pymysql://root@host/")
    scheme, sep, rest = value.strip().partition("://")
    if sep and scheme.lower().split("+")[0] == "postgres":
        fixed = mask_urls("postgresql" + scheme[len("postgres"):] + "://" + rest)
        return f"{allowed} (got {mask_urls(value)!r}) — did you mean {fixed!r}?"
    problem = url_problem(value) if sep else None
    if problem is not None:
        return problem
    backend = scheme.lower().split("+")[0]
    if not sep or backend not in SANDBOX_BACKENDS:
        return f"{allowed} (got {mask_urls(value)!r}){did_you_mean(value, ['sqlite'])}"
    if in_file and url_password(value.strip()) is not None:
        return ("the URL contains a password, which would be committed with this file — put the password in an "
                "environment variable named by 'sandbox-password-env', or pass the URL via CI_MIGRATE_SANDBOX")
    return None


def parse_url(value: str, where: str) -> Any:
    """``sqlalchemy.engine.URL`` of ``value``; ConfigError ``"<where>: <problem>"`` when
    :func:`url_problem` finds one. ``where`` names the source: ``PROD_URL (targets.production.url-env)``."""
    problem = url_problem(value)
    if problem is not None:
        raise ConfigError(f"{where}: {problem}")
    from sqlalchemy.engine import make_url

    return make_url(value.strip())


def target_url_sources(settings: Settings, name: str) -> dict[str, str]:
    """The variables holding target ``name``'s URLs → where each is configured
    (``{'PROD_URL': 'targets.production.url-env', 'AUDIT_URL': 'targets.production.binds.audit'}``)."""
    target = settings.targets[name]
    sources = {target.url_env: f"targets.{name}.url-env"}
    sources.update({var: f"targets.{name}.binds.{key}" for key, var in target.binds.items()})
    return sources


def check_target_urls(settings: Settings, env: Mapping[str, str], names: list[str] | None = None) -> None:
    """Parse the URL in every set variable of targets ``names`` (default: all); raise ConfigError
    for the first one that is wrong. Unset variables are left to the command that needs them."""
    for name in settings.targets if names is None else names:
        for var, setting in target_url_sources(settings, name).items():
            if env.get(var, "").strip():
                parse_url(env[var], f"{var} ({setting})")
