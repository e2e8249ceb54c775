"""Before the first revision: the drift gate and the backup command.

The drift gate answers "is the live schema what the migrations say it is at its current
revision?": a sandbox (throwaway database of the target's kind) is upgraded to the target's
current revision by the probe (the replay), reflected, and compared with the live database by
alembic's ``compare_metadata`` (the autogenerate comparison, run with the project's
``compare_type``/``include_object`` and the config's ``ignore`` rules; :func:`ci_migrate.probe.target.compare_live`).
A difference means someone changed the database by hand (a hotfix) or a revision was left
half-applied; upgrading on top of it fails or, worse, succeeds on a schema nobody reviewed.
"""

from __future__ import annotations

import os
import subprocess
import time
from dataclasses import dataclass, field
from typing import Any, Mapping

from ci_migrate.errors import UsageError
from ci_migrate.probe.guard import dialect_family
from ci_migrate.report import TableDiff


@dataclass
class GateResult:
    """Differences per migrated bind (``None`` = default) as tables of diff items; ``error`` when
    the expected schema could not be built (the gate then fails closed)."""

    revision: tuple[str, ...] = ()
    sandbox: str = ""
    differences: dict[str | None, list[TableDiff]] = field(default_factory=dict)
    error: str | None = None

    @property
    def clean(self) -> bool:
        return self.error is None and not any(self.differences.values())


def check_sandbox_kind(sandbox_dialect: str, target: Any) -> None:
    """Raise :class:`UsageError` (exit 2) when the sandbox is not of the target's kind (a SQLite sandbox
    cannot say what a PostgreSQL schema should be)."""
    if dialect_family(sandbox_dialect) == dialect_family(target.dialect):
        return
    example = "postgresql://postgres@localhost/" if target.dialect == "postgresql" else "mysql+pymysql://root@localhost/"
    raise UsageError(f"The drift gate of target '{target.name}' ({target.dialect}) needs a sandbox server of the "
                     f"same kind to build the expected schema, but the sandbox is {sandbox_dialect}. Set `sandbox:` "
                     f"(or --sandbox) to a {target.dialect} server where throwaway databases can be created, e.g. "
                     f"{example}")


def drift_gate(ctx: Any, target: Any, current: Mapping[str | None, tuple[str, ...]]) -> GateResult:
    """Compare each migrated bind of ``target`` with a sandbox upgraded to its ``current`` revision.

    ``ctx`` is the apply run's pipeline context (probe, sandbox, settings).
    """
    from ci_migrate.checks import replay
    from ci_migrate.checks.drift import ignore_request

    revisions = {current[key] for key in target.urls}
    if len(revisions) > 1:
        where = ", ".join(f"{key or 'default'}: {_revs(revs)}" for key, revs in current.items())
        return GateResult(error=f"the binds are at different revisions ({where}); env.py upgrades them "
                                "together, so no single expected schema exists")
    revision = next(iter(revisions))
    sandbox = ctx.sandbox
    result = GateResult(revision=revision, sandbox=sandbox.display_url)
    if revision:
        data = replay.replay(ctx, destination=list(revision))
        built = replay.judge(ctx, data, sandbox.dialect, destination=list(revision))
        problems = [f for f in built.findings if f.severity == "error"]
        if problems:
            result.error = f"the sandbox could not be upgraded to {_revs(revision)}: {problems[0].title}"
            return result
    data = ctx.probe.call("compare_live", ignore=ignore_request(ctx.settings))
    for key, tables in (data.get("differences") or {}).items():
        result.differences[key or None] = [TableDiff.model_validate(t) for t in tables]
    return result


def _revs(revisions: tuple[str, ...]) -> str:
    return ", ".join(revisions) or "base (no revision)"


@dataclass
class BackupResult:
    command: str
    exit_code: int
    seconds: float
    output: str  # last lines of stdout+stderr, secrets masked

    @property
    def ok(self) -> bool:
        return self.exit_code == 0


def run_backup(command: str, *, cwd: Any, env: Mapping[str, str], extra_env: Mapping[str, str],
               secrets: list[str], timeout: float | None = None) -> BackupResult:
    """Run the target's ``backup-command`` with ``sh -c`` in ``cwd`` (the repository root).

    The command sees the environment plus ``extra_env`` (``CI_MIGRATE_APPLY_TARGET``/``_FROM``/
    ``_TO``). Output is kept (last 40 lines) with every string in ``secrets`` masked.
    """
    from ci_migrate.masking import mask_text

    started = time.monotonic()
    try:
        proc = subprocess.run(command, shell=True, cwd=str(cwd), env={**os.environ, **env, **extra_env},
                              capture_output=True, text=True, timeout=timeout)
        code, output = proc.returncode, (proc.stdout or "") + (proc.stderr or "")
    except subprocess.TimeoutExpired as exc:
        code, output = 124, f"timed out after {timeout:g} s\n{exc.output or ''}"
    except OSError as exc:
        code, output = 127, str(exc)
    tail = "\n".join(mask_text(output, secrets).rstrip().splitlines()[-40:])
    return BackupResult(command=mask_text(command, secrets), exit_code=code,
                        seconds=round(time.monotonic() - started, 3), output=tail)
