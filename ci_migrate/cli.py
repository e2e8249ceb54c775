"""Command line: ``ci-migrate check | plan | apply | post | init | explain`` (``python -m ci_migrate``).

Exit codes: 0 passed, 1 findings at or above ``fail-on``, 2 usage or configuration error,
3 environment error (app import, database unreachable, unsupported library versions).
Heavy modules are imported inside the commands so that ``ci-migrate --version`` stays fast.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

from ci_migrate import __version__

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


_MASKER = "ci_migrate.masker"  # click context meta key: the run's Masker, once settings are loaded


def _masker() -> Any:
    """The run's :class:`~ci_migrate.masking.Masker` (set by :func:`_mask_secrets`), else one that
    knows the CI tokens alone (before the settings are loaded)."""
    from ci_migrate.masking import Masker

    ctx = click.get_current_context(silent=True)
    masker = ctx.meta.get(_MASKER) if ctx is not None else None
    return masker if masker is not None else Masker.of(None, os.environ)


def _err(message: str) -> None:
    """Print a line on stderr with every secret of the run masked."""
    click.echo(_masker().text(message), err=True)


def _fail(message: str, code: int) -> None:
    _err(f"error: {message}")
    sys.exit(code)


def _guarded(fn: Callable[[], int], *, probe_for: tuple[str | None, str | None] | None = None) -> None:
    """Run a command body; turn our errors into their message (secrets masked) and exit code.

    ``probe_for``: ``(--config, --python)`` of a command that runs the app: its probe starts before
    the body loads the settings (:mod:`ci_migrate.early_probe`)."""
    from ci_migrate.errors import CiMigrateError

    try:
        with contextlib.ExitStack() as stack:
            if probe_for is not None:
                from ci_migrate.early_probe import started_early

                stack.enter_context(started_early(*probe_for, os.environ))
            code = fn()
    except CiMigrateError as exc:
        _fail(_message(exc), exc.exit_code)
    else:
        sys.exit(code)


def _message(exc: Exception) -> str:
    """The error's message; for a probe that stopped outside a check, what the app printed last too."""
    from ci_migrate.probe_process import ProbeProblem, with_printed

    return with_printed(str(exc), exc.output if isinstance(exc, ProbeProblem) else "")


def _settings(config: str | None, **overrides: Any) -> Any:
    from ci_migrate import config as config_module

    return config_module.load(config, overrides={k: v for k, v in overrides.items() if v is not None})


def _mask_secrets(settings: Any) -> None:
    """Learn the run's secrets (:func:`ci_migrate.masking.run_secrets`) for every later output, and in
    GitHub Actions register them with ``::add-mask::`` before anything is printed
    (workflow-commands.md "Masking a value in a log").

    Variables are read, never required: the sandbox password is resolved only where a sandbox is used.
    """
    from ci_migrate.masking import Masker

    masker = Masker.of(settings, os.environ)
    click.get_current_context().meta[_MASKER] = masker
    if os.environ.get("GITHUB_ACTIONS") == "true":
        from ci_migrate.publish.workflow import register_masks

        register_masks(masker.secrets)


def _stack(*options: Callable[..., Any]) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    def apply_all(fn: Callable[..., Any]) -> Callable[..., Any]:
        for option in reversed(options):
            fn = option(fn)
        return fn

    return apply_all


# The flags of every command that loads the project and prints a report.
_project_options = _stack(
    click.option("--config", "-c", "config", metavar="PATH", help="Config file (default: ./.ci-migrate.yml)."),
    click.option("--app", metavar="IMPORT", help="Flask app import string, as FLASK_APP: 'pkg:create_app()', 'app.py'."),
    click.option("--migrations", metavar="DIR", help="Migrations directory (default: the Migrate extension's)."),
    click.option("--python", "python", metavar="PATH", help="The app's Python interpreter (default: $VIRTUAL_ENV, "
                 ".venv/ or venv/ in the project, else the one ci-migrate runs in)."),
    click.option("--timeout", type=click.FloatRange(min=0), metavar="SECONDS",
                 help="Stop the app's migrations after this long (default 1200 for check and plan; 0: no limit)."),
    click.option("--fail-on", type=click.Choice(["error", "warning"]), help="Lowest severity that fails the run."),
    click.option("--format", "format_", type=click.Choice(["console", "json"]), help="Output on stdout."),
    click.option("--output", "-o", metavar="PATH", help="Also write the JSON report to PATH."),
)
_target_option = click.option("--target", "-t", metavar="NAME",
                              help="Target from `targets:` in .ci-migrate.yml (default: the `target` setting).")


def _target(settings: Any) -> str:
    """The target to use (``--target`` / ``CI_MIGRATE_TARGET`` / ``target:``), checked before the app loads.

    Raises ConfigError for an unknown target, an unset URL variable or a URL that cannot be read,
    UsageError when none is named.
    """
    from ci_migrate.errors import UsageError
    from ci_migrate.urls import check_target_urls

    if not settings.target:
        names = ", ".join(settings.targets) or "none configured"
        raise UsageError(f"name a target with --target NAME or `target:` in .ci-migrate.yml (targets: {names})")
    settings.target_url(settings.target)
    check_target_urls(settings, os.environ, [settings.target])  # its binds' URLs too
    return settings.target


# The flags of every command that publishes a report.
_publish_options = _stack(
    click.option("--comment", type=click.Choice(["always", "on-change", "never"]),
                 help="Sticky PR/MR comment: always (default), on-change, never."),
    click.option("--junit", metavar="PATH", help="Also write JUnit XML (one testcase per check × revision)."),
    click.option("--sarif", metavar="PATH", help="Also write SARIF 2.1.0 for GitHub code scanning."),
    click.option("--codequality", metavar="PATH", help="Also write a GitLab Code Quality report."),
)


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="ci-migrate")
def main() -> None:
    """Check Flask-Migrate (Alembic) migrations in CI.

    Settings come from .ci-migrate.yml (see `ci-migrate init`), CI_MIGRATE_* environment variables
    and the flags below; flags win over the environment, which wins over the file.
    """


@main.command(context_settings=CONTEXT)
@_project_options
@click.option("--sandbox", metavar="URL", help="'sqlite' (default) or a server URL where throwaway databases are made.")
@click.option("--keep-sandbox", is_flag=True, default=None, help="Keep the throwaway database(s) and print the URL.")
@click.option("--cache-dir", metavar="DIR", help="Where cached base snapshots are kept (default: "
              "$XDG_CACHE_HOME/ci-migrate or ~/.cache/ci-migrate; 'off': no cache).")
@click.option("--only", metavar="CHECKS", help="Comma-separated checks to run (graph,replay,drift).")
@click.option("--base", metavar="REF", help="Git ref of the base branch (default: origin/$GITHUB_BASE_REF or "
              "origin/$CI_MERGE_REQUEST_TARGET_BRANCH_NAME): plan and lint the revisions this branch adds.")
@_publish_options
def check(config: str | None, app: str | None, migrations: str | None, sandbox: str | None, fail_on: str | None,
          keep_sandbox: bool | None, format_: str | None, output: str | None, only: str | None,
          cache_dir: str | None = None, base: str | None = None, comment: str | None = None, junit: str | None = None,
          sarif: str | None = None, codequality: str | None = None, python: str | None = None,
          timeout: float | None = None) -> None:
    """Check the migrations: heads and broken history, replay on a sandbox, drift from the models."""

    def body() -> int:
        from ci_migrate import pipeline
        from ci_migrate.errors import UsageError
        from ci_migrate.publish import console as console_out
        from ci_migrate.urls import check_target_urls

        settings = _settings(config, app=app, migrations=migrations, sandbox=sandbox, fail_on=fail_on,
                             keep_sandbox=keep_sandbox, cache_dir=cache_dir, format=format_, output=output,
                             base=base, comment=comment,
                             junit=junit, sarif=sarif, codequality=codequality, python=python, timeout=timeout)
        _mask_secrets(settings)
        check_target_urls(settings, os.environ)  # the targets' dialects are compared with the sandbox's
        selected = None
        if only:
            selected = {c.strip() for c in only.split(",") if c.strip()}
            unknown = selected - set(pipeline.CHECK_NAMES)
            if unknown:
                raise UsageError(f"--only: unknown check(s) {', '.join(sorted(unknown))}; "
                                 f"choose from {', '.join(pipeline.CHECK_NAMES)}")
        as_json = settings.format == "json"
        err = console_out.make_console(stderr=True)
        with console_out.ReplayProgress(err, enabled=not as_json) as progress:
            report = pipeline.run_check(settings, only=selected, progress=progress, options={"base": settings.base})
        return _publish(report, settings)

    _guarded(body, probe_for=(config, python))


def _publish(report: Any, settings: Any, *, pr_number: int | None = None, save: bool = True) -> int:
    """Mask the report's secrets, then write the JSON report to ``--output``, print it (console or
    json), write the JUnit/SARIF/Code Quality files asked for and publish on the detected CI (summary,
    annotations, outputs, sticky comment); return the exit code. Publishing problems are notices on
    stderr, never failures."""
    from ci_migrate.publish import ci
    from ci_migrate.publish import console as console_out
    from ci_migrate.publish.links import links_for

    report = _masker().report(report)  # the one place a report is masked: every output below reads this copy
    links = links_for(os.environ, settings.rules_url)
    path = lambda value: str(settings.resolve_path(value)) if value else None  # noqa: E731
    if settings.output and save:
        out = settings.resolve_path(settings.output)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(report.to_json(), encoding="utf-8")
    try:
        if settings.format == "json":
            click.echo(report.to_json())
        else:
            console_out.render(report, console_out.make_console(), links=links)
    except BrokenPipeError:  # `ci-migrate check | head -1`: the verdict still decides the exit code
        console_out.output_closed()
    extra: dict[str, Any] = {"pr_number": pr_number} if pr_number is not None else {}
    notices = ci.publish(report, env=os.environ, comment=settings.comment, report_path=path(settings.output),
                         junit=path(settings.junit), sarif=path(settings.sarif),
                         codequality=path(settings.codequality), root=settings.root, links=links, **extra)
    for notice in notices:
        _err(f"notice: {notice}")
    return report.exit_code


@main.command(context_settings=CONTEXT)
@_target_option
@click.option("--base", metavar="REF", help="Also compare with this git ref (marks revisions new/modified).")
@_project_options
def plan(target: str | None, base: str | None, config: str | None, app: str | None, migrations: str | None,
         fail_on: str | None, format_: str | None, output: str | None, python: str | None = None,
         timeout: float | None = None) -> None:
    """Show what `flask db upgrade` would run on a target: pending revisions, their SQL, their risks.

    Reads the target's version table in a read-only transaction; never writes, makes no sandbox.
    """

    def body() -> int:
        from ci_migrate import pipeline

        settings = _settings(config, app=app, migrations=migrations, fail_on=fail_on, format=format_, output=output,
                             base=base, target=target, python=python, timeout=timeout)
        _mask_secrets(settings)
        name = _target(settings)
        report = pipeline.run_check(settings, only={"graph", "plan", "lint"},
                                    options={"base": settings.base, "target": name})
        report.command, report.target = "plan", name
        report.key = f"{report.key}:{name}"
        return _publish(report, settings)

    _guarded(body, probe_for=(config, python))


@main.command(context_settings=CONTEXT)
@_target_option
@click.option("--dry-run", is_flag=True, help="Print the plan and each revision's SQL; write nothing, take no lock.")
@click.option("--allow-drift", is_flag=True, help="Apply even if the drift gate finds hand-made changes (CM805).")
@click.option("--allow-multiple-heads", is_flag=True,
              help="Upgrade to every head, as `flask db upgrade heads`, instead of refusing (CM802).")
@click.option("--drift-gate/--no-drift-gate", default=None,
              help="Compare the live schema with the migrations before upgrading (default: targets.<name>.drift-gate).")
@click.option("--sandbox", metavar="URL", help="Server for the drift gate's throwaway database (the target's kind).")
@click.option("--resume-interrupted", is_flag=True,
              help="Finish a revision an earlier run left half-applied (CM810): skip its objects that exist, create "
                   "the others, record it.")
@_project_options
@_publish_options
def apply(target: str | None, dry_run: bool, allow_drift: bool, allow_multiple_heads: bool, drift_gate: bool | None,
          sandbox: str | None, resume_interrupted: bool, config: str | None, app: str | None,
          migrations: str | None, fail_on: str | None,
          format_: str | None, output: str | None, comment: str | None, junit: str | None, sarif: str | None,
          codequality: str | None, python: str | None = None, timeout: float | None = None) -> None:
    """Upgrade a target database to head: under a lock, one revision per transaction, with a report.

    Refuses a database at a revision this code does not know, and several heads. See docs/apply.md.
    """

    def body() -> int:
        from ci_migrate.apply import run_apply

        settings = _settings(config, app=app, migrations=migrations, sandbox=sandbox, fail_on=fail_on, format=format_,
                             output=output, comment=comment, junit=junit, sarif=sarif, codequality=codequality,
                             target=target, python=python, timeout=timeout)
        _mask_secrets(settings)
        name = _target(settings)
        report = run_apply(settings, name, dry_run=dry_run, allow_drift=allow_drift,
                           allow_multiple_heads=allow_multiple_heads, drift_gate=drift_gate,
                           resume_interrupted=resume_interrupted, say=lambda line: _err(f"ci-migrate: {line}"))
        return _publish(report, settings)

    _guarded(body, probe_for=(config, python))


@main.command(context_settings=CONTEXT)
@click.option("--report", "report_file", required=True, metavar="PATH", type=click.Path(dir_okay=False),
              help="A JSON report written by `check --output`.")
@click.option("--pr-number", type=int, help="Pull request to comment on (default: from the event payload, "
              "or a `pr-number` file beside the report).")
@click.option("--config", "-c", "config", metavar="PATH", help="Config file (default: ./.ci-migrate.yml).")
@click.option("--format", "format_", type=click.Choice(["console", "json"]), help="Output on stdout.")
@_publish_options
def post(report_file: str, pr_number: int | None, config: str | None, format_: str | None, comment: str | None,
         junit: str | None, sarif: str | None, codequality: str | None) -> None:
    """Publish a saved report (comment, summary, annotations, files) without importing the app.

    The safe half of the two-workflow pattern for pull requests from forks: a `pull_request` job
    runs `check --output report.json` and uploads it; a `workflow_run` job downloads it and runs
    `post`, which never executes the pull request's code and never touches a database.
    """

    def body() -> int:
        from pydantic import ValidationError

        from ci_migrate.errors import UsageError
        from ci_migrate.report import Report

        settings = _settings(config, format=format_, comment=comment, junit=junit, sarif=sarif,
                             codequality=codequality, output=report_file)
        _mask_secrets(settings)
        path = Path(report_file)
        try:
            report = Report.from_json(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise UsageError(f"{report_file}: cannot read the report: {exc.strerror}") from None
        except (ValueError, ValidationError) as exc:
            first = str(exc).splitlines()[0]
            raise UsageError(f"{report_file}: not a ci-migrate report (schema version 1): {first}") from None
        _publish(report, settings, pr_number=pr_number, save=False)
        return 0

    _guarded(body)


@main.command(context_settings=CONTEXT)
@click.option("--sandbox", metavar="URL", help="The sandbox server (default: `sandbox:` of the config); 'sqlite' "
              "for the temp directories of SQLite sandboxes.")
@click.option("--older-than", default="2h", show_default=True, metavar="DURATION",
              help="Only sandboxes made longer ago than this (e.g. 30m, 2h, 1d).")
@click.option("--config", "-c", "config", metavar="PATH", help="Config file (default: ./.ci-migrate.yml).")
def prune(sandbox: str | None, older_than: str, config: str | None) -> None:
    """Drop sandbox databases (and SQLite sandbox directories) that killed runs left behind.

    Only names ci-migrate gives its sandboxes (ci_migrate_<UTC yyyymmddhhmm>_<random>) whose time is older
    than --older-than are dropped; nothing else on the server is touched. The probe copies such runs
    left in the temporary directory (ci_migrate_probe_*) go too.
    """

    def body() -> int:
        from ci_migrate.errors import UsageError
        from ci_migrate.probe_process import prune_copies
        from ci_migrate.sandbox import parse_duration, prefix_from, prune as drop_old

        settings = _settings(config, sandbox=sandbox)
        try:
            seconds = parse_duration(older_than)
        except ValueError as exc:
            raise UsageError(f"--older-than: {exc}") from None
        spec = settings.sandbox_url()
        dropped = drop_old(spec, seconds, prefix_from(os.environ))
        what = "SQLite sandbox directories" if spec == "sqlite" else "sandbox databases"
        click.echo(f"dropped {len(dropped)} {what} older than {older_than}" + (":" if dropped else ""))
        for name in dropped:
            click.echo(f"  {name}")
        copies = prune_copies(seconds)
        if copies:
            click.echo(f"removed {len(copies)} probe copies older than {older_than}:")
            for path in copies:
                click.echo(f"  {path}")
        return 0

    _guarded(body)


@main.command(context_settings=CONTEXT)
@click.argument("rule_id", metavar="RULE_ID")
def explain(rule_id: str) -> None:
    """Print the page of a rule (what it detects, why it matters, how to fix it), e.g. CM504."""

    def body() -> int:
        from ci_migrate.publish.console import make_console
        from ci_migrate.rule_pages import page

        text = page(rule_id)
        console = make_console()
        if console.is_terminal:
            from rich.markdown import Markdown

            console.print(Markdown(text))
        else:  # piped or in a CI log: the Markdown as written
            click.echo(text, nl=False)
        return 0

    _guarded(body)


@main.command(context_settings=CONTEXT)
@click.argument("path", default=".ci-migrate.yml", metavar="[PATH]")
@click.option("--force", is_flag=True, help="Overwrite an existing file.")
def init(path: str, force: bool) -> None:
    """Write a commented starter config (default: ./.ci-migrate.yml)."""

    def body() -> int:
        from ci_migrate.config import write_starter

        write_starter(Path(path), force=force)
        click.echo(f"wrote {path}: set `app:` to your app's import string, then run `ci-migrate check`.")
        return 0

    _guarded(body)


if __name__ == "__main__":  # pragma: no cover
    main()
