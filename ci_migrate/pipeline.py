"""The ``check`` pipeline (host side): settings → probe → facts → checks → Report.

The probe (:mod:`ci_migrate.probe`, in the app's interpreter) imports the app once and loads each
revision file once; every check asks it for facts and judges them here. Checks run in the order
of :data:`CHECKS`; those that need a database share one sandbox, made while the probe imports the
app. A check never prints: progress goes to the optional ``progress`` callback and everything else
onto the Report.

A check is a module in ``ci_migrate.checks`` with ``run(ctx: Context) -> CheckResult | None``
(``None``: nothing to report, e.g. no pending revisions).

When the app's code stops the run (``sys.exit`` in a revision, a connection that is not the
sandbox, a process that dies or passes the ``timeout``), the check that was running gets an error
finding naming the revision or env.py line (:mod:`ci_migrate.checks.stopped`) and the checks after
it are skipped: a run without a verdict is never a pass.
"""

from __future__ import annotations

import contextlib
import importlib
import os
import time
import traceback
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Mapping

from ci_migrate import __version__
from ci_migrate.facts import History, ProjectFacts, Recorded
from ci_migrate.report import CheckResult, Finding, InterpreterInfo, Report, SandboxInfo

# (name, needs a sandbox); order matters: replay brings the sandbox to heads (and records what the
# pending revisions do) for the later ones.
CHECKS: tuple[tuple[str, bool], ...] = (
    ("graph", False),
    ("replay", True),
    ("plan", False),
    ("lint", False),
    ("drift", True),
    ("locks", True),
    ("roundtrip", True),
)
CHECK_NAMES = tuple(name for name, _ in CHECKS)
# Graph problems that stop alembic from loading the history at all.
BLOCKING_GRAPH_RULES = {"CM102", "CM103", "CM104", "CM105", "CM107"}


@dataclass
class Context:
    """What checks share during one run.

    ``runtime`` holds the probe, the loaded project's facts and the sandboxes; ``scanned`` and
    ``revision_files`` (revision id → absolute Path) come from the probe's scan, ``history`` from
    alembic; ``blocked`` says why the history cannot be loaded by alembic (then alembic-based checks
    are skipped); ``directories`` are the extra script directories as scanned
    (:class:`ci_migrate.checks.script_dirs.ScannedDirectory`) and ``directories_blocked`` says why one
    of them cannot be replayed (then the replay and drift are skipped); ``pending`` is set by
    :mod:`ci_migrate.checks.pending` (the revisions a pull request adds, or that a target lacks);
    ``recorded`` holds what the pending revisions did while they ran on the sandbox; ``stopped`` says
    why the run was stopped early.
    """

    settings: Any
    runtime: Any
    report: Report
    env: Mapping[str, str]
    options: dict[str, Any] = field(default_factory=dict)
    progress: Callable[[int, int, str], None] | None = None
    scanned: list[Any] = field(default_factory=list)
    revision_files: dict[str, Path] = field(default_factory=dict)
    versions_dirs: list[Path] = field(default_factory=list)
    recursive: bool = False  # alembic.ini's recursive_version_locations
    history: History = field(default_factory=History)
    directories: list[Any] = field(default_factory=list)  # extra script directories (checks.script_dirs)
    directories_blocked: str | None = None  # why an extra directory's history cannot be replayed
    blocked: str | None = None
    production_dialect: str | None = None
    production_source: str = ""
    pending: Any = None
    recorded: dict[str, Recorded] = field(default_factory=dict)
    checks: list[str] = field(default_factory=list)  # the checks this run runs, in order
    stopped: str | None = None
    data: dict[str, Any] = field(default_factory=dict)

    @property
    def project(self) -> ProjectFacts:
        return self.runtime.project

    @property
    def probe(self) -> Any:
        return self.runtime.probe

    @property
    def sandbox(self) -> Any:
        """The run's main sandbox (made on first use, sent to the probe)."""
        return self.runtime.sandbox()

    def result(self, name: str) -> CheckResult | None:
        return self.report.check(name)


def production_dialect(settings: Any, project: ProjectFacts, env: Mapping[str, str]) -> tuple[str | None, str]:
    """The dialect production uses: from the configured targets' URLs, else the app's own URL.

    Returns ``(dialect or None, where it came from)``; None when no target URL is set and the app
    has no database URL of its own.
    """
    from ci_migrate.sandbox import normalize_url

    for name, target in settings.targets.items():
        url = env.get(target.url_env)
        if url:
            try:
                return normalize_url(url).get_backend_name(), f"target {name!r}"
            except Exception:  # noqa: BLE001 - a bad target URL is reported where the target is used
                continue
    if settings.targets:  # targets are configured, but their URLs are not set here: unknown, not the app's
        return None, "unknown (the targets' URL variables are not set)"
    return project.configured_dialect, "the app's SQLALCHEMY_DATABASE_URI"


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
    """Ask the probe to load every revision file and judge the graph; fills the context's file map
    and history."""
    from ci_migrate.checks import graph, script_dirs

    started = time.perf_counter()
    scan = ctx.probe.call("scan")
    ctx.scanned = graph.from_probe(scan["revisions"])
    ctx.versions_dirs = [Path(d) for d in scan.get("versions_dirs") or ()]
    ctx.recursive = bool(scan.get("recursive"))
    ctx.history = History.from_data(scan.get("history") or {})
    ctx.directories = [script_dirs.ScannedDirectory.from_probe(d, ctx.project.root)
                       for d in scan.get("directories") or ()]
    result = judge_graph(ctx)
    result.duration_s = ctx.data["graph_s"] = round(time.perf_counter() - started, 3)
    ctx.revision_files = {s.revision: s.path for s in ctx.scanned if s.revision}
    bad = sorted({f.rule_id for f in result.findings
                  if f.rule_id in BLOCKING_GRAPH_RULES and "directory" not in f.details})
    if bad:
        ctx.blocked = f"skipped: the revision graph is broken ({', '.join(bad)})"
    elif ctx.history.error:
        ctx.blocked = f"skipped: alembic cannot read the history ({ctx.history.error})"
    ctx.directories_blocked = script_dirs.blocked(result, ctx.directories, BLOCKING_GRAPH_RULES)
    return result


def judge_graph(ctx: Context, pending: set[str] | None = None) -> CheckResult:
    """The graph check on the scanned app history and each extra script directory's
    (``pending``: the revisions a pull request adds; style rules then judge only those)."""
    from ci_migrate.checks import graph, script_dirs

    cli = ctx.project.cli
    result = graph.analyze(ctx.scanned, ctx.project.root, merge_command=f"{cli} merge", pending=pending)
    return script_dirs.with_directories(result, ctx.directories, ctx.project.root, cli, pending)


def _internal_error(name: str, exc: BaseException) -> CheckResult:
    tail = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)[-3:])
    finding = Finding(check=name, rule_id="CM900", severity="error",
                      title=f"the {name} check crashed: {type(exc).__name__}: {exc}",
                      message=tail, fix="This is a bug in ci-migrate or an unusual setup; please report it with this message.")
    return CheckResult(name=name, status="error", summary=f"crashed: {type(exc).__name__}", findings=[finding])


def _run_one(ctx: Context, name: str) -> None:
    from ci_migrate.checks import stopped
    from ci_migrate.errors import CiMigrateError
    from ci_migrate.probe_process import ProbeCrashed, ProbeProblem

    result: CheckResult | None
    if ctx.stopped:
        result = skipped(name, f"skipped: {ctx.stopped}")
    elif ctx.blocked and name in ("locks", "roundtrip", "plan") and ctx.pending is None:
        result = None  # they would have had nothing to look at anyway
    elif ctx.blocked and name not in ("lint", "plan"):
        result = skipped(name, ctx.blocked)
    elif ctx.directories_blocked and name in ("replay", "drift"):
        result = skipped(name, ctx.directories_blocked)
    else:
        module = importlib.import_module(f"ci_migrate.checks.{name}")
        try:
            result = module.run(ctx)
        except ProbeCrashed as exc:
            result = stopped.crashed(name, exc)
        except ProbeProblem as exc:
            result = stopped.result(name, exc, ctx.project)
            ctx.stopped = stopped.reason(exc)
        except CiMigrateError:
            raise
        except Exception as exc:  # noqa: BLE001 - one broken check must not hide the others
            result = _internal_error(name, exc)
    if result is not None:
        ctx.report.checks.append(apply_overrides(result, ctx.settings))


def enabled_checks(settings: Any, only: set[str] | None) -> list[str]:
    """Checks to run, in pipeline order; the graph scan always runs (others need its file map)."""
    names = [n for n in CHECK_NAMES if settings.check_enabled(n)]
    if only is not None:
        names = [n for n in names if n in only]
    return names


def refused_urls(settings: Any, env: Mapping[str, str]) -> list[Any]:
    """The configured targets' URLs: a sandbox server URL naming one of them is refused."""
    from ci_migrate.sandbox import normalize_url

    refuse = []
    for target in settings.targets.values():
        url = env.get(target.url_env)
        if url:
            try:
                refuse.append(normalize_url(url))
            except Exception:  # noqa: BLE001 - reported where the target is used
                continue
    return refuse


def _create_all_baseline(ctx: Context, stack: contextlib.ExitStack) -> None:
    """``baseline: {create-all: true}`` without a revision: on a pull request, every sandbox is built
    from the base branch's models (:mod:`ci_migrate.base_models`) and the pull request's revisions run
    on it; on a full run the sandbox is the models' ``create_all()`` stamped at head — say what that
    leaves unchecked."""
    from ci_migrate.base_models import base_models

    baseline = ctx.settings.baseline
    if baseline is None or not baseline.create_all or baseline.revision:
        return
    pending = ctx.pending
    if pending is not None and pending.base_commit and not pending.unavailable:
        ctx.runtime.base_models = stack.enter_context(
            base_models(ctx.settings, ctx.runtime, pending.repo, pending.base_commit, pending.current))
        ctx.report.notes.append(
            f"Baseline create-all: each sandbox was built with create_all() from the models of {pending.base_ref} "
            f"and stamped at its head{'s' if len(pending.current) != 1 else ''} {', '.join(pending.current)}; the "
            "revisions this pull request adds ran on it.")
        return
    heads = ", ".join(ctx.history.heads)
    ctx.report.notes.append(
        f"Baseline create-all without a revision: the sandbox is the models' create_all() stamped at head {heads}. "
        "No revision was replayed, linted against a real schema, lock-traced or round-tripped, and drift compares "
        "the models with themselves. On a pull request (a base branch known), the sandbox is built from the base "
        "branch's models and the pull request's revisions run on it.")


def new_report(runtime: Any, settings: Any, command: str) -> Report:
    """A Report with the run's app, migrations directory and interpreter filled in."""
    project = runtime.project
    stack = runtime.probe.stack
    return Report(
        version=__version__, command=command, app=project.app, migrations=project.migrations,
        fail_on=settings.fail_on, key=f"{project.app or project.app_name}:{project.migrations}",
        notes=list(project.notes),
        interpreter=InterpreterInfo(path=runtime.interpreter.path, source=runtime.interpreter.source,
                                    python=stack.get("python_version"), packages=stack.get("packages") or {}))


def replay_progress(ctx_holder: dict[str, Any], progress: Callable[[int, int, str], None] | None
                    ) -> Callable[[dict[str, Any]], None] | None:
    """An event listener that turns the replay's ``ran`` events into ``progress(done, total, revision)``."""
    if progress is None:
        return None
    counter = {"done": 0}

    def on_event(event: dict[str, Any]) -> None:
        if event.get("type") == "ran" and event.get("phase") == "replay" and event.get("direction") == "upgrade":
            counter["done"] += 1
            ctx = ctx_holder.get("ctx")
            total = len(ctx.revision_files) * max(1, len(ctx.project.migrated_binds)) if ctx else 0
            total += sum(len(d.scanned) for d in ctx.directories) if ctx else 0
            progress(counter["done"], max(total, counter["done"]), str(event.get("revision")))

    return on_event


def run_check(
    settings: Any,
    *,
    only: set[str] | None = None,
    options: dict[str, Any] | None = None,
    env: Mapping[str, str] | None = None,
    progress: Callable[[int, int, str], None] | None = None,
) -> Report:
    """Run the enabled checks and return the Report.

    ``options`` carries command options checks read (``base`` for the plan check, ``target`` for
    ``plan --target``). The base branch is looked up in git while the app loads. Raises ``AppLoadError``/``DatabaseError``/``EnvironmentProblem`` (exit 3) and
    ``UsageError`` (exit 2); findings are never raised.
    """
    from ci_migrate.runtime import open_runtime, timeout_for

    started = time.perf_counter()
    env = os.environ if env is None else env
    options = dict(options or {})
    names = enabled_checks(settings, only)
    needs_db = [n for n, db in CHECKS if db and n in names]
    holder: dict[str, Any] = {}
    base_lookup = _look_up_base(settings, options, env)
    with open_runtime(settings, env, sandbox=bool(needs_db), refuse=refused_urls(settings, env),
                      on_event=replay_progress(holder, progress), timeout_s=timeout_for(settings)) as runtime:
        report = new_report(runtime, settings, "check")
        ctx = Context(settings=settings, runtime=runtime, report=report, env=env, options=options, progress=progress)
        if base_lookup is not None:
            ctx.data["base_lookup"] = base_lookup
        holder["ctx"] = ctx
        ctx.production_dialect, ctx.production_source = production_dialect(settings, runtime.project, env)
        with contextlib.ExitStack() as stack:
            stack.callback(_close_base_snapshot, ctx)
            _run_checks(ctx, names, needs_db, stack)
        if runtime.sandboxes is not None and runtime._main is not None:
            main = runtime._main
            report.sandbox = SandboxInfo(dialect=main.dialect, url=main.display_url, kept=settings.keep_sandbox)
        report.notes += runtime.notices
    report.duration_s = round(time.perf_counter() - started, 3)
    return report


def _look_up_base(settings: Any, options: Mapping[str, Any], env: Mapping[str, str]) -> Any:
    """``(ref, root, Future of base_branch.open_base(root, ref))``, started in a thread so that git runs
    while the probe imports the app; None without a base branch."""
    import concurrent.futures

    from ci_migrate.checks import base_branch, pending

    ref = pending.base_ref_for(options, env)
    if not ref:
        return None
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=1, thread_name_prefix="ci-migrate-git")
    future = pool.submit(base_branch.open_base, settings.root, ref)
    pool.shutdown(wait=False)
    return ref, settings.root, future


def _close_base_snapshot(ctx: Context) -> None:
    """Save the base snapshot the replay built (:mod:`ci_migrate.cache.base`); its notes join the report's."""
    snapshot = ctx.data.get("base_snapshot")
    if snapshot is not None:
        snapshot.close()
        ctx.report.notes += snapshot.notes


def _run_checks(ctx: Context, names: list[str], needs_db: list[str], stack: contextlib.ExitStack) -> None:
    from ci_migrate.checks import pending

    graph = scan_graph(ctx)
    if any(n in names for n in ("plan", "lint", "locks", "roundtrip", "replay")):
        pending.prepare(ctx)
    if ctx.pending is not None and not ctx.pending.unavailable:  # style rules judge the PR's revisions only
        graph = judge_graph(ctx, set(ctx.pending.revisions))
        graph.duration_s = ctx.data.get("graph_s", 0.0)
    if "graph" in names:
        ctx.report.checks.append(apply_overrides(graph, ctx.settings))
    if needs_db and not ctx.blocked:
        _create_all_baseline(ctx, stack)
    if needs_db and "replay" not in names and not ctx.blocked:
        names = [n for n in names if n != "replay"]
        names.insert(names.index(needs_db[0]), "replay")  # later checks need the sandbox at heads
        ctx.data["replay_hidden"] = True
    ctx.checks = names
    for name in names:
        if name != "graph":
            _run_one(ctx, name)
    if ctx.data.get("replay_hidden"):
        ctx.report.checks = [c for c in ctx.report.checks if c.name != "replay"]
