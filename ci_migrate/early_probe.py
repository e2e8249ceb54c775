"""The probe, started before the settings are loaded: the app's interpreter starts and imports its
libraries while the host imports its own and validates the settings.

:func:`started_early` works out the interpreter and the project root that the settings will most
likely give, with the same rules (:func:`ci_migrate.interpreter.resolve`: ``--python``, then
``CI_MIGRATE_PYTHON``, then ``$VIRTUAL_ENV``, ``.venv/`` or ``venv/`` in the project, then
ci-migrate's own interpreter; the root is the config file's directory, else the working directory),
and spawns the probe there. When the config file sets ``python:`` itself, nothing is guessed and no
probe starts early. :func:`adopt` hands the probe to the run when the loaded settings agree (same
interpreter, root and environment); otherwise it is killed and the run starts its own, so a wrong
guess costs time, never correctness. Whatever the command does, the block's end kills a probe that
was never adopted.
"""

from __future__ import annotations

import contextlib
import re
from pathlib import Path
from typing import Iterator, Mapping

from ci_migrate.config_starter import find_config
from ci_migrate.interpreter import resolve
from ci_migrate.probe_process import ProbeProcess, probe_environment

_PYTHON_ENV = "CI_MIGRATE_PYTHON"
_PYTHON_KEY = re.compile(rb"^python\s*:", re.M)
_CONFIG_SCAN_BYTES = 1 << 20  # a larger config is left to the settings loader (which refuses it)

_early: ProbeProcess | None = None


@contextlib.contextmanager
def started_early(config_flag: str | None, python_flag: str | None, env: Mapping[str, str],
                  cwd: Path | None = None) -> Iterator[None]:
    """Spawn the probe for the block (see the module docstring); kill it at the end unless
    :func:`adopt` took it. Never raises for a guess that fails: the run then starts its own probe,
    and its errors are reported there."""
    global _early
    _early = _spawn(config_flag, python_flag, env, Path.cwd() if cwd is None else cwd)
    try:
        yield
    finally:
        probe, _early = _early, None
        if probe is not None:
            probe.discard()


def adopt(python: str, root: Path, env: Mapping[str, str]) -> ProbeProcess | None:
    """The early probe if it runs ``python`` in ``root`` with the environment the run gives it
    (:func:`probe_environment` of ``env``), else None (and a probe that does not match is killed)."""
    global _early
    probe, _early = _early, None
    if probe is None:
        return None
    if probe.python == python and probe.root == root and dict(probe.env) == probe_environment(env):
        return probe
    probe.discard()
    return None


def _spawn(config_flag: str | None, python_flag: str | None, env: Mapping[str, str], cwd: Path) -> ProbeProcess | None:
    try:
        config = find_config(config_flag, env, cwd)
        root = config.parent.resolve() if config is not None else cwd.resolve()
        explicit, source = python_flag, "--python"
        if not explicit and env.get(_PYTHON_ENV, "").strip():
            explicit, source = env[_PYTHON_ENV].strip(), _PYTHON_ENV
        if not explicit and config is not None and _sets_python(config):
            return None
        interpreter = resolve(explicit, source, root, env)
        return ProbeProcess(python=interpreter.path, root=root, env=probe_environment(env)).spawn()
    except Exception:  # noqa: BLE001 - a guess; the run proper reports every problem (a missing config file too)
        return None


def _sets_python(config: Path) -> bool:
    """Whether the config file may set ``python:`` (a top-level key at the start of a line)."""
    if config.stat().st_size > _CONFIG_SCAN_BYTES:
        return True
    with open(config, "rb") as handle:
        return bool(_PYTHON_KEY.search(handle.read()))

