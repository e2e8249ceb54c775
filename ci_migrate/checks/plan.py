"""The plan check: which revisions are pending, and the offline SQL each one runs.

Pending is measured against the base branch (``--base origin/main``; in a pull/merge request the
default comes from ``GITHUB_BASE_REF`` / ``CI_MERGE_REQUEST_TARGET_BRANCH_NAME``): the revisions
this branch adds or modifies; or against a target database (``ci-migrate plan --target NAME``):
the revisions ``flask db upgrade`` would run there, read with ``MigrationContext.get_current_heads()``
in a read-only transaction. The SQL comes from alembic's offline mode (see :mod:`.offline`), in the
target's dialect, else production's, else the sandbox's.

Leaves for later checks: ``ctx.data["pending"]`` (revision ids, upgrade order) and
``ctx.data["plan"]`` (a :class:`Plan`, with each revision's recorded alembic operations).
Findings: CM401, CM402 (see :mod:`.base_branch`), CM403 (target at a revision unknown here), CM404
(a revision cannot render offline), CM405 (offline SQL ignores the app's version table option).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ci_migrate.checks import base_branch, offline
from ci_migrate.checks.offline import RenderedRevision
from ci_migrate.errors import DatabaseError, UsageError
from ci_migrate.report import CheckResult, Finding, PlanFacts, PlannedRevision


@dataclass
class PlanItem:
    """One pending revision with what offline rendering recorded (operations, statements)."""

    revision: str
    message: str | None
    file: Path | None  # absolute
    rel_file: str | None
    status: str  # new | modified | pending
    rendered: RenderedRevision
    created_tables: set[str] = field(default_factory=set)  # tables this revision creates (lower-case)


@dataclass
class Plan:
    """What lint reads: the pending revisions in upgrade order and the dialect of their SQL."""

    against: str
    dialect: str
    revisions: list[PlanItem] = field(default_factory=list)


def run(ctx: Any) -> CheckResult | None:
    """Plan against ``ctx.options['target']`` and/or the base branch; None when neither is given.

    Without a target the base defaults to the pull/merge request's (:func:`base_branch.default_base`);
    with one, only an explicit base is compared.
    """
    target = ctx.options.get("target")
    explicit = ctx.options.get("base")
    base_ref = explicit or (None if target else base_branch.default_base(ctx.env))
    if not base_ref and not target:
        return None
    if base_ref and not explicit and not target:  # the PR's base, implied by the CI: a shallow clone is a warning
        try:
            base_branch.open_base(ctx.project.root, base_ref)
        except UsageError as exc:
            return _base_unavailable(base_ref, str(exc))
    started = time.perf_counter()
    project = ctx.project
    order, parents, messages = history(project)
    findings: list[Finding] = []
    comparison = None
    if base_ref:
        comparison, base_findings = _against_base(ctx, base_ref)
        findings += base_findings
    current: list[str] = []
    if target:
        url = ctx.settings.target_url(target, ctx.env)
        current = read_current(project, url)
        unknown = [c for c in current if c not in parents]
        if unknown:
            findings.append(_unknown_revision(ctx, target, url, unknown))
            pending = []
        else:
            pending = pending_after(project, order, current)
        against, sql_url = f"target:{target}", url
    else:
        pending = [r for r in order if comparison and comparison.status(r) != "pending"]
        against, sql_url = f"base:{base_ref}", _dialect_url(ctx)
        current = comparison.base_heads if comparison else []
    engines = offline.offline_engines(sql_url, project.bind_keys)
    dialect = next(iter(engines.values())).dialect.name
    try:
        rendered = offline.render(project, engines, pending, parents, ctx.revision_files) if pending else {}
    finally:
        for engine in engines.values():
            engine.dispose()
    plan = Plan(against=against, dialect=dialect)
    facts = PlanFacts(against=against, dialect=dialect, current=list(current))
    words_dialect = offline.dialect_named(dialect)
    for rid in pending:
        file = ctx.revision_files.get(rid)
        item = PlanItem(rid, messages.get(rid), file, project.relative(file) if file else None,
                        comparison.status(rid) if comparison else "pending", rendered[rid])
        item.created_tables = {o.table for o in item.rendered.ops if o.kind == "CreateTableOp" and o.table}
        plan.revisions.append(item)
        facts.pending.append(PlannedRevision(
            revision=rid, message=item.message, file=item.rel_file, status=item.status,  # type: ignore[arg-type]
            author=base_branch.author(project.root, file) if file and base_ref else None,
            operations=[describe_op(o.op, words_dialect) for o in item.rendered.ops],
            sql=item.rendered.sql, sql_error=item.rendered.error))
        if item.rendered.error:
            findings.append(_unrenderable(item, dialect))
    if pending and _version_table_options(project):
        findings.append(_version_table_note(project, _version_table_options(project)))
    ctx.data["pending"] = list(pending)
    ctx.data["plan"] = plan
    return CheckResult(name="plan", status=CheckResult.status_for(findings), summary=_summary(facts, target, base_ref),
                       duration_s=round(time.perf_counter() - started, 3), findings=findings, facts=facts)


def history(project: Any) -> tuple[list[str], dict[str, tuple[str, ...]], dict[str, str | None]]:
    """``(revision ids base → heads, {id: down_revisions}, {id: message})`` from alembic's
    ``ScriptDirectory.walk_revisions()`` (topological, loaded inside the app context)."""
    from alembic.script import ScriptDirectory
    from alembic.util import to_tuple

    with project.app_context():
        config = project.migrate.get_config(directory=str(project.migrations_dir))
        scripts = list(ScriptDirectory.from_config(config).walk_revisions())
    scripts.reverse()
    parents = {s.revision: tuple(to_tuple(s.down_revision, default=())) for s in scripts}
    return [s.revision for s in scripts], parents, {s.revision: s.doc or None for s in scripts}


def pending_after(project: Any, order: list[str], current: list[str]) -> list[str]:
    """Revisions ``upgrade heads`` would run on a database at ``current`` (upgrade order): all but
    ``current`` and their ancestors (``ScriptDirectory.iterate_revisions(current, "base")``)."""
    from alembic.script import ScriptDirectory

    if not current:
        return list(order)
    with project.app_context():
        config = project.migrate.get_config(directory=str(project.migrations_dir))
        done = {s.revision for s in ScriptDirectory.from_config(config).iterate_revisions(tuple(current), "base")}
    return [r for r in order if r not in done]


def read_current(project: Any, url: str) -> list[str]:
    """The target's current revision(s): ``MigrationContext.get_current_heads()`` with the project's
    version table options, on a read-only session (:func:`read_only_engine`). Multidb apps: the
    default bind's version table.

    Raises DatabaseError (exit 3) naming host and database, never the password.
    """
    import sqlalchemy as sa
    from alembic.migration import MigrationContext

    from ci_migrate.alembic_env import version_table_opts
    from ci_migrate.masking import mask_url
    from ci_migrate.sandbox import describe_connect_error

    engine = read_only_engine(url)
    try:
        try:
            conn = engine.connect()
        except sa.exc.DBAPIError as exc:
            raise DatabaseError(describe_connect_error(engine.url, exc)) from None
        with conn:
            try:
                return sorted(MigrationContext.configure(conn, opts=version_table_opts(project)).get_current_heads())
            except sa.exc.DBAPIError as exc:
                raise DatabaseError(
                    f"Connected to {mask_url(engine.url)} but could not read its version table: "
                    f"{str(exc.orig).strip().splitlines()[0]}\n  The user needs SELECT on the version table "
                    "(alembic_version unless Migrate(version_table=...) says otherwise).") from None
    finally:
        engine.dispose()


_READ_ONLY = {
    "postgresql": "SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY",
    "mysql": "SET SESSION TRANSACTION READ ONLY",
    "mariadb": "SET SESSION TRANSACTION READ ONLY",
    "sqlite": "PRAGMA query_only = ON",
}


def read_only_engine(url: str) -> Any:
    """An engine (NullPool) whose every session refuses writes: each new connection first runs
    PostgreSQL ``SET SESSION CHARACTERISTICS AS TRANSACTION READ ONLY``, MySQL/MariaDB
    ``SET SESSION TRANSACTION READ ONLY`` or SQLite ``PRAGMA query_only = ON``."""
    import sqlalchemy as sa
    from sqlalchemy.pool import NullPool

    from ci_migrate.sandbox import normalize_url

    engine = sa.create_engine(normalize_url(url), poolclass=NullPool)
    statement = _READ_ONLY.get(engine.dialect.name)

    @sa.event.listens_for(engine, "connect")
    def _read_only(dbapi_connection: Any, _record: Any) -> None:
        if statement:
            cursor = dbapi_connection.cursor()
            cursor.execute(statement)
            cursor.close()
            dbapi_connection.commit()

    return engine


def _against_base(ctx: Any, ref: str) -> tuple[base_branch.Comparison, list[Finding]]:
    project = ctx.project
    repo, commit, merge_base = base_branch.open_base(project.root, ref)
    dirs = [Path(d).resolve().relative_to(repo.resolve()).as_posix() for d in project.versions_dirs
            if Path(d).resolve().is_relative_to(repo.resolve())]
    base = base_branch.GitTree(repo, commit).revisions(dirs)
    at_fork = base_branch.GitTree(repo, merge_base).revisions(dirs) if merge_base else None
    branch = {s.revision: base_branch.BranchRevision(s.revision, tuple(s.down_revisions), s.path)
              for s in ctx.scanned if s.revision}
    comparison = base_branch.compare(ref, branch.values(), base, at_fork)
    cli = f"flask {project.command_name}"
    return comparison, base_branch.findings(comparison, branch, lambda p: project.relative(repo / p), cli)


def _base_unavailable(ref: str, why: str) -> CheckResult:
    """The pull/merge request's base branch is not in this clone (usually a shallow checkout)."""
    finding = Finding(
        check="plan", rule_id="CM406", severity="warning",
        title=f"the base branch {ref} is not in this clone: pending revisions unknown",
        message=why.split("\n", 1)[0].removeprefix(f"--base {ref}: ") + "\nWithout it, ci-migrate cannot tell "
        "which revisions this pull request adds, so plan, lint, locks and round-trip have nothing to check.",
        fix="Fetch the base branch: actions/checkout with `fetch-depth: 0` (GitHub), `GIT_DEPTH: 0` (GitLab), "
        f"or `git fetch origin {ref.removeprefix('origin/')}`.",
    )
    return CheckResult(name="plan", status="warning", summary=f"base {ref} not in this clone", findings=[finding])


def _dialect_url(ctx: Any) -> str:
    """No target: SQL in production's dialect (the targets' URLs, else the app's own URL), else the
    sandbox's. An app URL that is SQLite (the usual local default) loses to a server sandbox."""
    from sqlalchemy.engine import make_url

    sandbox = ctx.settings.sandbox
    sandbox_dialect = "sqlite" if sandbox == "sqlite" else make_url(sandbox).get_backend_name()
    dialect = ctx.production_dialect
    from_app = not ctx.production_source.startswith("target")
    if not dialect or (from_app and dialect == "sqlite" and sandbox_dialect != "sqlite"):
        dialect = sandbox_dialect
    return f"{dialect}://"


def _unknown_revision(ctx: Any, target: str, url: str, unknown: list[str]) -> Finding:
    from ci_migrate.masking import mask_url
    from ci_migrate.sandbox import normalize_url

    where = mask_url(normalize_url(url))
    cli = f"flask {ctx.project.command_name}"
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


def _unrenderable(item: PlanItem, dialect: str) -> Finding:
    return Finding(
        check="plan", rule_id="CM404", severity="info", revision=item.revision, file=item.rel_file,
        line=item.rendered.error_line or (item.rendered.ops[-1].line if item.rendered.ops else None),
        title=f"revision {item.revision} cannot be rendered as offline SQL",
        message=(f"alembic's offline mode ({dialect}) stopped in {item.revision}: {item.rendered.error}\n"
                 "The revision reads from the database (op.get_bind(), reflection, or SQLite batch mode), "
                 "which offline mode cannot do: `flask db upgrade --sql` fails the same way. Its operations "
                 "up to that point were still checked."),
        fix=("Nothing to do if you deploy with `flask db upgrade`. If you deploy offline SQL, guard the "
             "database reads with `if not context.is_offline_mode():` (`from alembic import context`)."),
    )


def _version_table_options(project: Any) -> dict[str, Any]:
    from ci_migrate.alembic_env import version_table_opts

    return version_table_opts(project)


def _version_table_note(project: Any, options: dict[str, Any]) -> Finding:
    shown = ", ".join(f"{k}={v!r}" for k, v in options.items())
    return Finding(
        check="plan", rule_id="CM405", severity="info", file=project.relative(project.migrations_dir / "env.py"),
        title="the offline SQL updates alembic_version, but the app uses " + shown,
        message=(f"Migrate(..., {shown}) is passed to context.configure() only in online mode: Flask-Migrate's "
                 "env.py leaves it out offline, so this SQL (like `flask db upgrade --sql`) writes to "
                 "alembic_version. Online upgrades are not affected."),
        fix=("If you deploy offline SQL, pass the same option in run_migrations_offline() of env.py: "
             "context.configure(url=url, ..., **current_app.extensions['migrate'].configure_args)."),
    )


def _summary(facts: PlanFacts, target: str | None, base_ref: str | None) -> str:
    pending = facts.pending
    where = f"target {target}" if target else f"{base_ref}"
    if not pending:
        if target:
            return f"{where} is at head ({', '.join(facts.current) or 'empty'}): nothing pending"
        return f"this branch adds or changes no revision compared with {base_ref}"
    listed = ", ".join(f"{p.revision} ({p.message or 'no message'})" for p in pending[:3])
    more = f" and {len(pending) - 3} more" if len(pending) > 3 else ""
    verb = "pending on" if target else "new vs"
    noun = "revision" if len(pending) == 1 else "revisions"
    return f"{len(pending)} {noun} {verb} {where} ({facts.dialect} SQL): {listed}{more}"


def describe_op(op: Any, dialect: Any) -> str:
    """An alembic operation in words: ``adds column `user.age` INTEGER, NOT NULL``.

    Uses the autogenerate wording (:func:`ci_migrate.checks.describe.describe`) for operations that
    have a diff tuple (``MigrateOperation.to_diff_tuple()``), and its own for the others.
    """
    from alembic.operations import ops as o

    from ci_migrate.checks import describe

    table = getattr(op, "table_name", None)
    if isinstance(op, o.ExecuteSQLOp):
        text = op.sqltext if isinstance(op.sqltext, str) else str(op.sqltext)
        first = " ".join(text.split())
        return f"executes SQL: {first[:100]}{'…' if len(first) > 100 else ''}"
    if isinstance(op, o.BulkInsertOp):
        return f"inserts {len(op.rows)} row(s) into `{op.table.name}`"
    if isinstance(op, o.RenameTableOp):
        return f"renames table `{op.table_name}` to `{op.new_table_name}`"
    if isinstance(op, o.DropColumnOp):
        return f"drops column `{table}.{op.column_name}`"
    if isinstance(op, o.DropTableOp):
        return f"drops table `{table}`"
    if isinstance(op, o.DropIndexOp):
        return f"drops index `{op.index_name}`" + (f" on `{table}`" if table else "")
    if isinstance(op, o.DropConstraintOp):
        return f"drops {op.constraint_type or ''} constraint `{op.constraint_name}` on `{table}`".replace("  ", " ")
    if isinstance(op, o.CreateCheckConstraintOp):
        return f"adds check constraint `{op.constraint_name}` on `{table}` ({op.condition})"
    words = []
    if isinstance(op, o.AlterColumnOp) and op.modify_name:
        words.append(f"renames column `{table}.{op.column_name}` to `{op.modify_name}`")
    try:
        diff = op.to_diff_tuple()
    except (NotImplementedError, AttributeError, TypeError, ValueError):
        diff = None
    for item in describe.flatten([diff] if diff else []):
        try:
            words.append(describe.describe(item, dialect).text)
        except Exception:
            words.append(" ".join(map(str, item[:1])))
    if isinstance(op, o.CreateIndexOp) and op.kw.get("postgresql_concurrently") and words:
        words[-1] += " (concurrently)"
    return "; ".join(words) or f"{type(op).__name__}" + (f" on `{table}`" if table else "")
