"""The ``check`` pipeline: settings → project → checks → Report.

Imports the app once and loads each revision file once (the graph check); alembic then works from
one ScriptDirectory seeded with those modules (``alembic_env.script_directory``), shared by every check. Checks run in the order of :data:`CHECKS`; those that
need a database share one sandbox, opened only when one of them is enabled. A check never prints:
progress goes to the optional ``progress`` callback and everything else onto the Report.

A check is a module in ``ci_migrate.checks`` with ``run(ctx: Context) -> CheckResult | None``
(``None``: nothing to report, e.g. no pending revisions).
"""

from __future__ import annotations

import importlib
import os
import time
import traceback
from dataclasses import dataclass, field
from typing import Any, Callable, Mapping

from ci_migrate import __version__
from ci_migrate.report import CheckResult, Finding, Report, SandboxInfo

# (name, needs a sandbox); order matters: replay brings the sandbox to heads for the later ones.
CHECKS: tuple[tuple[str, bool], ...] = (
    ("graph", False),
    ("plan", False),
    ("lint", False),
    ("replay", True),
    ("drift", True),
    ("locks", True),
    ("roundtrip", True),
)
CHECK_NAMES = tuple(name for name, _ in CHECKS)
# Checks that run unless the config turns them on explicitly (they need a base or PostgreSQL).
OPT_IN: set[str] = set()
# Graph problems that stop alembic from loading the history at all.
BLOCKING_GRAPH_RULES = {"CM102", "CM103", "CM104", "CM105", "CM107"}


@dataclass
class Context:
    """What checks share during one run.

    ``revision_files`` maps revision id → absolute Path (from the graph scan); ``blocked`` says why
    the history cannot be loaded by alembic (then alembic-based checks are skipped);
    ``production_dialect`` is the targets' dialect (or the app's own server dialect);
    ``data`` is where a check leaves what a later one uses (e.g. the plan for lint).
    """

    settings: Any
    project: Any
    report: Report
    env: Mapping[str, str]
    options: dict[str, Any] = field(default_factory=dict)
    progress: Callable[[int, int, str], None] | None = None
    revision_files: dict[str, Any] = field(default_factory=dict)
    scanned: list[Any] = field(default_factory=list)
    blocked: str | None = None
    sandbox: Any = None
    production_dialect: str | None = None
    production_source: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def result(self, name: str) -> CheckResult | None:
        return self.report.check(name)


def production_dialect(settings: Any, project: Any, env: Mapping[str, str]) -> tuple[str | None, str]:
    """The dialect production uses: from the configured targets' URLs, else the app's own URL.

    Returns ``(dialect or None, where it came from)``.
    """
    from ci_migrate.sandbox import normalize_url

    for name, target in settings.targets.items():
        url = env.get(target.url_env)
        if url:
            return normalize_url(url).get_backend_name(), f"target {name!r}"
    return project.configured_dialect(), "the app's SQLALCHEMY_DATABASE_URI"


def apply_overrides(result: CheckResult, settings: Any) -> CheckResult:
    """Apply per-check and per-rule severities from the config; drop findings set to ``off``.

    A finding silenced inline (``# ci-migrate: ignore[…]``) stays at info whatever severity is set.
    """
    from ci_migrate.checks.suppress import is_silenced

    kept = []
    for finding in result.findings:
        severity = settings.severity_for(result.name, finding.rule_id, finding.severity)
        if severity is not None and is_silenced(finding):
            severity = "info"
        if severity is not None:
            kept.append(finding.model_copy(update={"severity": severity}))
    result.findings = kept
    if result.status not in ("skipped", "error"):
        result.status = CheckResult.status_for(kept)
    return result


def skipped(name: str, why: str) -> CheckResult:
    return CheckResult(name=name, status="skipped", summary=why)


def scan_graph(ctx: Context) -> CheckResult:
    """Scan and judge the revision files; fills ``ctx.scanned`` / ``ctx.revision_files``."""
    from ci_migrate.alembic_env import capture_revision_modules
    from ci_migrate.checks import graph

    started = time.perf_counter()
    with ctx.project.app_context(), capture_revision_modules(ctx.project):  # alembic reuses these modules
        ctx.scanned = graph.scan_revision_files(ctx.project.versions_dirs)
    result = graph.analyze(ctx.scanned, ctx.project.root, merge_command=f"flask {ctx.project.command_name} merge")
    result.duration_s = round(time.perf_counter() - started, 3)
    ctx.revision_files = {s.revision: s.path for s in ctx.scanned if s.revision}
    bad = sorted({f.rule_id for f in result.findings if f.rule_id in BLOCKING_GRAPH_RULES})
    if bad:
        ctx.blocked = f"skipped: the revision graph is broken ({', '.join(bad)})"
    return result


def _internal_error(name: str, exc: BaseException) -> CheckResult:
    tail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:])
    finding = Finding(check=name, rule_id="CM900", severity="error",
                      title=f"the {name} check crashed: {type(exc).__name__}: {exc}",
                      message=tail, fix="This is a bug in ci-migrate or an unusual setup; please report it with this message.")
    return CheckResult(name=name, status="error", summary=f"crashed: {type(exc).__name__}", findings=[finding])


def _run_one(ctx: Context, name: str) -> None:
    from ci_migrate.errors import CiMigrateError

    if name == "graph":
        result: CheckResult | None = scan_graph(ctx)
    elif ctx.blocked and name in ("locks", "roundtrip", "plan") and not _has_pending_source(ctx):
        result = None  # they would have had nothing to look at anyway
    elif ctx.blocked and name != "lint":
        result = skipped(name, ctx.blocked)
    else:
        from ci_migrate.alembic_env import shared_script_directory

        module = importlib.import_module(f"ci_migrate.checks.{name}")
        try:
            with shared_script_directory(ctx.project):  # revision files are loaded once per run, not per check
                result = module.run(ctx)
        except CiMigrateError:
            raise
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
            result = _internal_error(name, exc)
    if result is not None:
        ctx.report.checks.append(apply_overrides(result, ctx.settings))


def _has_pending_source(ctx: Context) -> bool:
    """A base branch or a target was named (explicitly or by the CI), so revisions could be pending."""
    from ci_migrate.checks.base_branch import default_base

    return bool(ctx.options.get("base") or ctx.options.get("target") or default_base(ctx.env))


def enabled_checks(settings: Any, only: set[str] | None) -> list[str]:
    """Checks to run, in pipeline order; the graph scan always runs (others need its file map)."""
    import importlib.util

    names = [n for n in CHECK_NAMES if settings.check_enabled(n) and (n not in OPT_IN or n in settings.checks)
             and importlib.util.find_spec(f"ci_migrate.checks.{n}") is not None]
    if only is not None:
        names = [n for n in names if n in only]
    return names


def run_check(
    settings: Any,
    *,
    only: set[str] | None = None,
    options: dict[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> Report:
    """Run the enabled checks and return the Report.

    ``options`` carries command options checks read (e.g. ``base`` for the plan check).
    Raises ``AppLoadError``/``DatabaseError`` (exit 3) and ``UsageError`` (exit 2); findings are
    never raised.
    """
    from ci_migrate.project import load_project

    started = time.perf_counter()
    env = os.environ if env is None else env
    project = load_project(settings.root, settings.app, settings.migrations)
    migrations = project.relative(project.migrations_dir)
    report = Report(
        version=__version__, command="check", app=project.import_string, migrations=migrations,
        fail_on=settings.fail_on, key=f"{project.import_string or project.app.name}:{migrations}",
        notes=list(project.notes),
    )
    ctx = Context(settings=settings, project=project, report=report, env=env, options=dict(options or {}),
                  progress=progress)
    ctx.production_dialect, ctx.production_source = production_dialect(settings, project, env)
    names = enabled_checks(settings, only)
    if "graph" not in names:  # the file map is still needed; the result is not reported
        scan_graph(ctx)
    needs_db = [n for n, db in CHECKS if db and n in names]
    for name in [n for n in names if n not in needs_db]:
        _run_one(ctx, name)
    if needs_db and not ctx.blocked:
        with open_sandbox_for(ctx) as sandbox:
            ctx.sandbox = sandbox
            report.sandbox = SandboxInfo(dialect=sandbox.dialect, url=sandbox.display_url, kept=settings.keep_sandbox)
            if "replay" not in names:
                names.insert(names.index(needs_db[0]), "replay")  # later checks need the sandbox at heads
                needs_db.insert(0, "replay")
                ctx.data["replay_hidden"] = True
            for name in needs_db:
                _run_one(ctx, name)
            if ctx.data.get("replay_hidden"):
                report.checks = [c for c in report.checks if c.name != "replay"]
    else:
        for name in needs_db:
            _run_one(ctx, name)
    report.duration_s = round(time.perf_counter() - started, 3)
    return report


def open_sandbox_for(ctx: Context) -> Any:
    """Open the sandbox for the project's binds, refusing URLs that point at a configured target."""
    from ci_migrate.sandbox import normalize_url, open_sandbox

    refuse = []
    for name, target in ctx.settings.targets.items():
        url = ctx.env.get(target.url_env)
        if url:
            refuse.append(normalize_url(url))
    return open_sandbox(ctx.settings.sandbox_url(ctx.env), ctx.project.bind_keys, keep=ctx.settings.keep_sandbox,
                        refuse=refuse)
