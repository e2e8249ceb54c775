"""The target of ``apply``: its URLs per migrated bind, read from the environment variables the
config names, and the migration locks the host holds on them.

Nothing here connects; the probe makes its own engines for the upgrade (with session timeouts,
:mod:`ci_migrate.probe.target`), the host takes the locks with its own driver.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from ci_migrate.apply.locking import LockSet, make_lock
from ci_migrate.masking import mask_url


@dataclass
class TargetUrls:
    """A target's URLs: ``urls`` per migrated bind (``None`` = default)."""

    name: str
    urls: dict[str | None, Any]

    @property
    def dialect(self) -> str:
        return self.urls[None].get_backend_name()

    @property
    def display_url(self) -> str:
        return mask_url(self.urls[None])

    def where(self, key: str | None) -> str:
        """``host:port/database`` of a bind (no user, no password)."""
        url = self.urls[key]
        if url.get_backend_name() == "sqlite":
            return url.database or ":memory:"
        return f"{url.host or 'localhost'}{':' + str(url.port) if url.port else ''}/{url.database or ''}"

    def request(self) -> dict[str, str]:
        """The URLs as the probe takes them (``""`` = default bind), passwords included."""
        from ci_migrate.sandbox import url_text

        return {key or "": url_text(url) for key, url in self.urls.items()}

    def locks(self, version_table: str | None, version_table_schema: str | None) -> LockSet:
        """The migration locks of every migrated bind, one per database, default bind first."""
        locks, seen = [], set()
        for key in self.urls:
            lock = make_lock(self.urls[key], version_table or "alembic_version", version_table_schema)
            if lock is not None and lock.label not in seen:
                seen.add(lock.label)
                locks.append(lock)
        return LockSet(locks)


def target_urls(settings: Any, name: str, project: Any, env: Mapping[str, str]) -> TargetUrls:
    """Target ``name``'s URLs: its ``url-env`` for the default bind, ``binds.<key>`` for the others of a
    multidb app. Raises ``ConfigError`` (exit 2) for an unknown target or an unset variable (including a
    multidb bind without ``binds`` entry)."""
    from ci_migrate.config_errors import ConfigError
    from ci_migrate.sandbox import normalize_url

    urls = {None: normalize_url(settings.target_url(name, env))}
    target = settings.targets[name]
    if project.multidb:
        for key in project.bind_keys:
            if key is None:
                continue
            var = target.binds.get(key)
            if var is None:
                raise ConfigError(f"target '{name}': the app's migrations are multidb and bind '{key}' has no URL — "
                                  f"add it to the config:\n    targets:\n      {name}:\n        binds:\n"
                                  f"          {key}: {key.upper()}_DATABASE_URL")
            value = env.get(var, "")
            if not value.strip():
                state = "empty" if var in env else "not set"
                raise ConfigError(f"target '{name}': environment variable {var} is {state} "
                                  f"(targets.{name}.binds.{key} names it; it should hold bind '{key}''s database URL)")
            urls[key] = normalize_url(value)
    return TargetUrls(name=name, urls=urls)
