"""Which revisions are pending: the ones a pull request adds, or the ones a target lacks.

Decided before the replay, so that the replay records what exactly those revisions do while they
run on the sandbox. Against the base branch (``--base origin/main``; in a pull/merge request the
default comes from ``GITHUB_BASE_REF`` / ``CI_MERGE_REQUEST_TARGET_BRANCH_NAME``): the revisions this
branch adds or modifies (:mod:`.base_branch`). Against a target database (``ci-migrate plan
--target NAME``): the revisions ``flask db upgrade`` would run there, from the target's version
table (read by the probe in a read-only session) and alembic's
``ScriptDirectory.iterate_revisions(current, "base")``.

Findings (reported by the plan check): CM401, CM402 (:mod:`.base_branch`), CM403 (target at a revision
unknown here), CM406 (the pull request's base is not in this clone: an error, since the risky
revisions of the request would go unreviewed).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from ci_migrate.checks import base_branch
from ci_migrate.errors import UsageError
from ci_migrate.report import Finding


@dataclass
class Pending:
    """The pending revisions (upgrade order) and what they were measured against.

    ``against`` is ``base:<ref>`` or ``target:<name>``; ``current`` the base's heads or the target's
    revisions; ``findings`` the comparison's own (CM401–CM406); ``unavailable`` is set when the
    pending revisions could not be known (then ``revisions`` is empty).
    """

    against: str
    revisions: list[str] = field(default_factory=list)
    current: list[str] = field(default_factory=list)
    comparison: base_branch.Comparison | None = None
    findings: list[Finding] = field(default_factory=list)
    base_ref: str | None = None
    repo: Path | None = None  # the git repository and the base's commit (against a base branch)
    base_commit: str | None = None
    target: str | None = None
    target_url: str | None = None  # the target's URL (with password: for the probe only)
    unavailable: str | None = None

    def status(self, revision: str) -> str:
        return self.comparison.status(revision) if self.comparison else "pending"


def base_ref_for(options: Mapping[str, Any], env: Mapping[str, str]) -> str | None:
    """The base branch a run compares with: ``--base``, else (without ``--target``) the pull or merge
    request's target branch from the CI environment (:func:`base_branch.default_base`); None: none."""
    return options.get("base") or (None if options.get("target") else base_branch.default_base(env))


def prepare(ctx: Any) -> None:
    """Set ``ctx.pending`` (None when there is neither a base nor a target)."""
    target = ctx.options.get("target")
    explicit = ctx.options.get("base")
    base_ref = base_ref_for(ctx.options, ctx.env)
    if not base_ref and not target:
        return
    if ctx.blocked:
        ctx.pending = Pending(against=f"target:{target}" if target else f"base:{base_ref}", base_ref=base_ref,
                              target=target, unavailable=ctx.blocked)
        return
    if target:
        ctx.pending = _against_target(ctx, target, base_ref)
    else:
        ctx.pending = _against_base(ctx, base_ref, implied=not explicit)


def _against_base(ctx: Any, ref: str, *, implied: bool) -> Pending:
    project = ctx.project
    pending = Pending(against=f"base:{ref}", base_ref=ref)
    looked_up = ctx.data.get("base_lookup")  # started while the app loaded (pipeline.run_check)
    try:
        if looked_up is not None and looked_up[0] == ref and Path(looked_up[1]).resolve() == project.root.resolve():
            repo, commit, merge_base = looked_up[2].result()
        else:
            repo, commit, merge_base = base_branch.open_base(project.root, ref)
    except UsageError as exc:
        if not implied:
            raise
        pending.unavailable = f"the base branch {ref} is not in this clone"
        pending.findings.append(base_unavailable(ref, str(exc)))
        return pending
    comparison = compare(ctx, ref, repo, commit, merge_base)
    pending.comparison, pending.repo, pending.base_commit = comparison, repo, commit
    pending.current = comparison.base_heads
    pending.revisions = [r for r in ctx.history.order if comparison.status(r) != "pending"]
    branch = {s.revision: base_branch.BranchRevision(s.revision, tuple(s.down_revisions), s.path)
              for s in ctx.scanned if s.revision}
    pending.findings += base_branch.findings(comparison, branch, lambda p: project.relative(repo / p), project.cli)
    return pending


def compare(ctx: Any, ref: str, repo: Path, commit: str, merge_base: str | None) -> base_branch.Comparison:
    """This branch's revisions (the probe's scan) against the base's, read from git."""
    dirs = [Path(d).resolve().relative_to(repo.resolve()).as_posix() for d in ctx.versions_dirs
            if Path(d).resolve().is_relative_to(repo.resolve())]
    scanned = [s for s in ctx.scanned if s.revision]
    blobs = base_branch.worktree_blobs(repo, [s.path for s in scanned])
    branch = [base_branch.BranchRevision(s.revision, tuple(s.down_revisions), s.path, s.message, blobs.get(s.path))
              for s in scanned]
    top = repo.resolve()
    worktree = {b.path.resolve().relative_to(top).as_posix(): b for b in branch if b.blob is not None}
    base = base_branch.GitTree(repo, commit).revisions(dirs, ctx.recursive, worktree)
    at_fork = base_branch.GitTree(repo, merge_base).revisions(dirs, ctx.recursive, worktree) if merge_base else None
    return base_branch.compare(ref, branch, base, at_fork)


def _against_target(ctx: Any, target: str, base_ref: str | None) -> Pending:
    """The revisions ``flask db upgrade`` would run on the target: multidb, every bind's version table
    (a revision is pending when any bind lacks it)."""
    from ci_migrate.apply.targets import target_urls
    from ci_migrate.errors import DatabaseError

    url = ctx.settings.target_url(target, ctx.env)
    pending = Pending(against=f"target:{target}", target=target, base_ref=base_ref, target_url=url)
    urls = target_urls(ctx.settings, target, ctx.project, ctx.env)
    try:
        ctx.probe.call("target", urls=urls.request(), read_only=True)
        state = ctx.probe.call("target_state")
    except DatabaseError as exc:
        raise DatabaseError(f"target {target!r}: {exc}") from None
    by_bind = {key: sorted(heads) for key, heads in state["heads"].items()}
    pending.current = sorted({rev for heads in by_bind.values() for rev in heads})
    known = set(ctx.history.order)
    unknown = [c for c in pending.current if c not in known]
    if unknown:
        pending.findings.append(unknown_revision(ctx, target, url, unknown))
        pending.unavailable = f"target {target} is at a revision this repository does not have"
        return pending
    done = [set(ctx.probe.call("ancestors", revisions=heads)["revisions"]) if heads else set()
            for heads in by_bind.values()]
    pending.revisions = [r for r in ctx.history.order if any(r not in d for d in done)]
    if base_ref:
        repo, commit, merge_base = base_branch.open_base(ctx.project.root, base_ref)
        pending.comparison = compare(ctx, base_ref, repo, commit, merge_base)
    return pending


def base_unavailable(ref: str, why: str) -> Finding:
    """CM406: the pull/merge request's base branch is not in this clone (usually a shallow checkout)."""
    branch = ref.removeprefix("origin/")
    return Finding(
        check="plan", rule_id="CM406", severity="error",
        title=f"the base branch {ref} is not in this clone: this pull request's revisions were not reviewed",
        message=why.split("\n", 1)[0].removeprefix(f"--base {ref}: ") + "\nWithout it, ci-migrate cannot tell "
        "which revisions this pull request adds, so their plan, risk rules, lock trace and round trip were not "
        "run — a revision that drops a column would pass unseen. The graph, replay and drift checks did run.",
        fix=("Fetch the base branch before ci-migrate runs:\n"
             "  GitHub Actions: actions/checkout with `fetch-depth: 0`\n"
             "  GitLab CI: `variables: { GIT_DEPTH: \"0\" }`\n"
             f"  any CI: `git fetch origin {branch}:refs/remotes/origin/{branch}`\n"
             "or pass an existing ref with --base."),
    )


def unknown_revision(ctx: Any, target: str, url: str, unknown: list[str]) -> Finding:
    """CM403: the target is at a revision this repository does not have."""
    from ci_migrate.masking import mask_url
    from ci_migrate.sandbox import normalize_url

    where = mask_url(normalize_url(url))
    cli = ctx.project.cli
    return Finding(
        check="plan", rule_id="CM403", severity="error",
        title=f"target {target} is at revision {', '.join(unknown)}, which this repository does not have",
        message=(f"The version table of {where} says {', '.join(unknown)}, but no revision file here defines it. "
                 "Probably a branch that was deployed was never merged, or its revision file was deleted or renamed. "
                 f"`{cli} upgrade` there fails with \"Can't locate revision identified by '{unknown[0]}'\", "
                 "so nothing can be planned."),
        fix=(f"Find the revision (`git log --all --oneline -S \"{unknown[0]}\"`) and merge or restore its file; "
             f"if that database's schema matches a revision you do have, `{cli} stamp <that revision>` there."),
        details={"unknown": unknown},
    )
