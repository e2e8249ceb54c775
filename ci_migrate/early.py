"""Start the probe before the settings are validated, so that the app's stack imports meanwhile.

Validating the settings (pydantic, the config file) takes a few hundred milliseconds; importing
Flask, SQLAlchemy and alembic in the app's interpreter takes longer. :func:`start` starts the probe
(which imports those libraries while it waits for ``load``: :mod:`ci_migrate.probe.__main__`) in a
thread, as soon as the CLI knows which interpreter and directory the run will use *without* the
settings: ``--python``, ``CI_MIGRATE_PYTHON``, or the discovery of :func:`ci_migrate.interpreter.resolve`,
in the working directory. When a config file could change either (``--config``, ``CI_MIGRATE_CONFIG``,
or a ``python:`` key in ``.ci-migrate.yml``), nothing is started early. :func:`ci_migrate.runtime.open_runtime`
adopts the early probe when the settings agree, and stops it otherwise.
"""

from __future__ import annotations

import concurrent.futures
import contextlib
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ci_migrate.config_starter import CONFIG_FILENAME


@dataclass
class EarlyProbe:
    """A probe being started in the background for ``python`` in ``root``; ``adopted`` once a runtime
    took it over."""

    python: str
    root: Path
    future: concurrent.futures.Future
    pool: concurrent.futures.ThreadPoolExecutor
    adopted: bool = False

    def take(self, python: str, root: Path) -> Any:
        """The started :class:`ci_migrate.probe_process.ProbeProcess` when it runs ``python`` in ``root``
        (and started fine), else None (it is stopped)."""
        if python != self.python or root.resolve() != self.root:
            self.close()
            return None
        try:
            probe = self.future.result()
        except Exception:  # noqa: BLE001 - the runtime starts its own and reports what goes wrong
            self.close()
            return None
        self.adopted = True
        self.pool.shutdown(wait=False)
        return probe

    def close(self) -> None:
        """Stop the probe unless a runtime adopted it."""
        if self.adopted:
            return
        self.adopted = True
        with contextlib.suppress(Exception):
            self.future.result().close()
        self.pool.shutdown(wait=False)


def start(cwd: Path, env: Mapping[str, str], *, python: str | None, config: str | None) -> EarlyProbe | None:
    """Start the probe for a run in ``cwd`` when its interpreter and root are known without the
    settings (see the module docstring); None when not (or when the interpreter cannot be found:
    the run reports that later, with the settings)."""
    from ci_migrate.interpreter import resolve
    from ci_migrate.probe_process import ProbeProcess
    from ci_migrate.runtime import probe_environment

    if config or (env.get("CI_MIGRATE_CONFIG") or "").strip():
        return None
    file = cwd / CONFIG_FILENAME
    with contextlib.suppress(OSError, UnicodeDecodeError):
        if file.is_file() and re.search(r"^['\"]?python['\"]?\s*:", file.read_text(encoding="utf-8"), re.MULTILINE):
            return None
    explicit = python or (env.get("CI_MIGRATE_PYTHON") or "").strip() or None
    root = cwd.resolve()
    try:
        interpreter = resolve(explicit, "--python" if python else "CI_MIGRATE_PYTHON", root, env)
    except Exception:  # noqa: BLE001 - reported with the settings
        return None
    probe = ProbeProcess(python=interpreter.path, root=root, env=probe_environment(env))
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ci-migrate-early-probe")
    return EarlyProbe(interpreter.path, root, pool.submit(probe.start), pool)
