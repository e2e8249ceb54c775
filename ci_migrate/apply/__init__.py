"""``ci-migrate apply``: upgrade a target database under a lock, one revision per transaction.

Entry point: :func:`run_apply` (see :mod:`ci_migrate.apply.run`). The parts: ``targets`` (the
target's URLs per bind), ``locking`` (advisory lock / GET_LOCK / flock), ``gate`` (drift gate,
backup command), ``interrupted`` (revisions an earlier run left unfinished), ``dry_run``, ``rows``
(row counts), ``findings`` (rules CM801–CM810). The upgrade itself runs in the probe
(:mod:`ci_migrate.probe.target`).
User documentation: docs/apply.md.
"""

from __future__ import annotations

from ci_migrate.apply.run import run_apply

__all__ = ["run_apply"]
