"""The base branch's models, for pull requests on apps whose history starts with ``create_all()``.

Many established apps built their schema with ``db.create_all()`` and ``flask db stamp head``, so their
history cannot replay from an empty database. With ``baseline: {create-all: true}`` and no revision,
a pull-request run builds each sandbox from the *base branch's* models instead: a second probe, in
the same interpreter, loads the app from a git worktree of the base commit (``git worktree add
--detach``), runs ``create_all()`` on the sandbox and stamps it at the base's heads. The pull
request's pending revisions then run for real on it — replay, lint, locks and round trip see them —
and drift compares the pull request's models with the result.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path
from typing import Any, Iterator

from ci_migrate.checks.base_branch import git
from ci_migrate.probe_process import ProbeProcess
from ci_migrate.runtime import load_request


class BaseModels:
    """A probe on the base commit's checkout that builds sandboxes from its models."""

    def __init__(self, probe: ProbeProcess, heads: list[str]) -> None:
        self.probe, self.heads = probe, heads

    def build(self, sandbox: Any) -> None:
        """``create_all()`` of the base's models on ``sandbox``, stamped at the base's heads."""
        self.probe.call("sandbox", **sandbox.message())
        self.probe.call("build_baseline", create_all=True, stamp=list(self.heads))


@contextlib.contextmanager
def base_models(settings: Any, runtime: Any, repo: Path, commit: str, heads: list[str]) -> Iterator[BaseModels]:
    """Check out ``commit`` of ``repo`` into a temporary worktree and load the app there.

    The app is loaded as in this run (same interpreter, import string and migrations directory,
    relative to the project root). Raises what loading the app raises (``AppLoadError``, exit 3).
    """
    root = Path(settings.root).resolve()
    tmp = Path(tempfile.mkdtemp(prefix="ci_migrate_base_"))
    checkout = tmp / "checkout"
    git(repo, "worktree", "add", "--detach", "--quiet", str(checkout), commit)
    probe = None
    try:
        sub = root.relative_to(repo.resolve())
        where = checkout / sub
        probe = ProbeProcess(python=runtime.interpreter.path, root=where, env=dict(runtime.probe.env),
                             deadline=runtime.probe.deadline)
        probe.start()
        probe.call("load", **load_request(settings, where,
                                          sandbox_dialect=runtime.sandboxes.dialect if runtime.sandboxes else None))
        yield BaseModels(probe, heads)
    finally:
        if probe is not None:
            probe.close()
        git(repo, "worktree", "remove", "--force", str(checkout), check=False)
        shutil.rmtree(tmp, ignore_errors=True)
