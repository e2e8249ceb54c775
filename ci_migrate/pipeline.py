"""The ``check`` pipeline: settings → project → graph → sandbox → replay → drift → Report.

Imports the app once and loads each revision file once (the graph check); alembic then works from
its own ScriptDirectory on the same process. A check never prints: progress goes to the optional
``progress`` callback and everything else onto the Report.
"""

from __future__ import annotations

import time
from typing import Any, Callable

from ci_migrate import __version__
from ci_migrate.report import CheckResult, Finding, Report, SandboxInfo

CHECKS = ("graph", "replay", "drift")
# Graph problems that stop alembic from loading the history at all.
BLOCKING_GRAPH_RULES = {"CM102", "CM103", "CM104", "CM105"}


def production_dialect(settings: Any, project: Any, env: dict[str, str] | None = None) -> tuple[str | None, str]:
    """The dialect production uses: from the configured targets' URLs, else the app's own URL.

    Returns ``(dialect or None, where it came from)``.
    """
    from ci_migrate.sandbox import normalize_url

    for name, target in settings.targets.items():
        url = (env or {}).get(target.url_env) if env is not None else None
        if url is None:
            import os

            url = os.environ.get(target.url_env)
        if url:
            return normalize_url(url).get_backend_name(), f"target {name!r}"
    return project.configured_dialect(), "the app's SQLALCHEMY_DATABASE_URI"


def apply_overrides(result: CheckResult, settings: Any) -> CheckResult:
    """Apply per-check and per-rule severities from the config; drop findings set to ``off``."""
    kept = []
    for finding in result.findings:
        severity = settings.severity_for(result.name, finding.rule_id, finding.severity)
        if severity is not None:
            kept.append(finding.model_copy(update={"severity": severity}))
    result.findings = kept
    if result.status not in ("skipped", "error"):
        result.status = CheckResult.status_for(kept)
    return result


def _skipped(name: str, why: str) -> CheckResult:
    return CheckResult(name=name, status="skipped", summary=why)


def run_graph(project: Any) -> tuple[CheckResult, dict[str, Any]]:
    """Scan and judge the revision files; returns the result and a revision id → file map."""
    from ci_migrate.checks import graph

    started = time.perf_counter()
    with project.app_context():
        scanned = graph.scan_revision_files(project.versions_dirs)
    result = graph.analyze(scanned, project.root, merge_command=f"flask {project.command_name} merge")
    result.duration_s = round(time.perf_counter() - started, 3)
    files = {s.revision: s.path for s in scanned if s.revision}
    return result, files


def run_check(
    settings: Any,
    *,
    only: set[str] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
    on_project: Callable[[Any], None] | None = None,
) -> Report:
    """Run the enabled checks and return the Report.

    Raises ``AppLoadError``/``DatabaseError`` (exit 3) and ``UsageError`` (exit 2); findings are
    never raised.
    """
    from ci_migrate.project import load_project

    started = time.perf_counter()
    project = load_project(settings.root, settings.app, settings.migrations)
    if on_project:
        on_project(project)
    enabled = [c for c in CHECKS if settings.check_enabled(c) and (only is None or c in only)]
    migrations = project.relative(project.migrations_dir)
    report = Report(
        version=__version__, command="check", app=project.import_string, migrations=migrations,
        fail_on=settings.fail_on, key=f"{project.import_string or project.app.name}:{migrations}",
        notes=list(project.notes),
    )
    files: dict[str, Any] = {}
    blocked = None
    if "graph" in enabled:
        graph_result, files = run_graph(project)
        report.checks.append(apply_overrides(graph_result, settings))
        bad = sorted({f.rule_id for f in graph_result.findings if f.rule_id in BLOCKING_GRAPH_RULES})
        if bad:
            blocked = f"skipped: the revision graph is broken ({', '.join(bad)})"
    elif {"replay", "drift"} & set(enabled):
        _, files = run_graph(project)
    if {"replay", "drift"} & set(enabled):
        _run_database_checks(project, settings, report, enabled, files, blocked, progress)
    report.duration_s = round(time.perf_counter() - started, 3)
    return report


def _run_database_checks(project: Any, settings: Any, report: Report, enabled: list[str],
                         files: dict[str, Any], blocked: str | None, progress: Any) -> None:
    from ci_migrate.checks import drift, replay
    from ci_migrate.sandbox import normalize_url, open_sandbox

    if blocked:
        for name in ("replay", "drift"):
            if name in enabled:
                report.checks.append(_skipped(name, blocked))
        return
    refuse = []
    for name in settings.targets:
        try:
            refuse.append(normalize_url(settings.target_url(name)))
        except Exception:  # noqa: BLE001 - an unset target env var does not matter for check
            pass
    prod, source = production_dialect(settings, project)
    bind_keys = project.bind_keys
    with open_sandbox(settings.sandbox_url(), bind_keys, keep=settings.keep_sandbox, refuse=refuse) as sandbox:
        report.sandbox = SandboxInfo(dialect=sandbox.dialect, url=sandbox.display_url, kept=settings.keep_sandbox)
        replay_result = replay.run(project, sandbox, settings, revision_files=files, progress=progress)
        if prod and prod != sandbox.dialect and (settings.targets or prod != "sqlite"):
            replay_result.findings.append(_dialect_mismatch(sandbox.dialect, prod, source, bool(settings.targets)))
        report.checks.append(apply_overrides(replay_result, settings))
        if "drift" in enabled:
            if any(f.severity == "error" and f.rule_id.startswith("CM20") for f in replay_result.findings):
                report.checks.append(_skipped("drift", "skipped: the replay did not reach head"))
            else:
                drift_result = drift.run(project, sandbox, settings, production_dialect=prod)
                report.checks.append(apply_overrides(drift_result, settings))
                report.tables = drift.tables_for_diagram(project, drift_result.facts)
    if "replay" not in enabled:
        report.checks = [c for c in report.checks if c.name != "replay"]


def _dialect_mismatch(sandbox: str, production: str, source: str, has_targets: bool) -> Finding:
    return Finding(
        check="replay", rule_id="CM204", severity="warning" if has_targets else "info",
        title=f"the sandbox is {sandbox} but production is {production} ({source})",
        message=f"Migrations were replayed on {sandbox}; {production} can fail where {sandbox} passes "
        "(types, constraints, transactional DDL), and drift results are approximate.",
        fix=f"Point `sandbox:` at a {production} server, e.g. sandbox: "
        + ("postgresql://postgres@localhost/" if production == "postgresql" else f"{production}://root@localhost/"),
    )
