"""``ci-migrate apply``: upgrade a target database under a lock, one revision per transaction.

Entry point: :func:`run_apply` (see :mod:`ci_migrate.apply.run`). The parts: ``target`` (engines
with session timeouts), ``locking`` (advisory lock / GET_LOCK / flock), ``upgrade`` (alembic
upgrade with retries), ``gate`` (drift gate, backup command), ``findings`` (rules CM801–CM809).
User documentation: docs/apply.md.
"""

from __future__ import annotations

from ci_migrate.apply.run import run_apply

__all__ = ["run_apply"]
