"""Command line: ``ci-migrate check | init`` (``python -m ci_migrate``).

Exit codes: 0 passed, 1 findings at or above ``fail-on``, 2 usage or configuration error,
3 environment error (app import, database unreachable, unsupported library versions).
Heavy modules are imported inside the commands so that ``ci-migrate --version`` stays fast.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any, Callable

import click

from ci_migrate import __version__

CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


def _fail(message: str, code: int) -> None:
    click.echo(f"error: {message}", err=True)
    sys.exit(code)


def _guarded(fn: Callable[[], int]) -> None:
    """Run a command body; turn our errors into their message and exit code."""
    from ci_migrate.config_errors import ConfigError
    from ci_migrate.errors import CiMigrateError
    from ci_migrate.masking import mask_text

    try:
        code = fn()
    except ConfigError as exc:
        _fail(mask_text(str(exc)), 2)
    except CiMigrateError as exc:
        _fail(mask_text(str(exc)), exc.exit_code)
    else:
        sys.exit(code)


def _settings(config: str | None, **overrides: Any) -> Any:
    from ci_migrate import config as config_module

    return config_module.load(config, overrides={k: v for k, v in overrides.items() if v is not None})


def _mask_secrets(settings: Any) -> None:
    """In GitHub Actions, register passwords with ``::add-mask::`` before anything is printed."""
    if os.environ.get("GITHUB_ACTIONS") != "true":
        return
    from ci_migrate.masking import url_password

    secrets = [url_password(settings.sandbox_url()) or ""]
    for target in settings.targets.values():
        secrets.append(url_password(os.environ.get(target.url_env, "")) or "")
    for name in ("GITHUB_TOKEN", "INPUT_GITHUB-TOKEN", "GITLAB_TOKEN"):
        secrets.append(os.environ.get(name, ""))
    for secret in filter(None, secrets):
        click.echo(f"::add-mask::{secret}")


@click.group(context_settings=CONTEXT)
@click.version_option(__version__, "-V", "--version", prog_name="ci-migrate")
def main() -> None:
    """Check Flask-Migrate (Alembic) migrations in CI.

    Settings come from .ci-migrate.yml (see `ci-migrate init`), CI_MIGRATE_* environment variables
    and the flags below; flags win over the environment, which wins over the file.
    """


@main.command(context_settings=CONTEXT)
@click.option("--config", "-c", "config", metavar="PATH", help="Config file (default: ./.ci-migrate.yml).")
@click.option("--app", metavar="IMPORT", help="Flask app import string, as FLASK_APP: 'pkg:create_app()', 'app.py'.")
@click.option("--migrations", metavar="DIR", help="Migrations directory (default: the Migrate extension's).")
@click.option("--sandbox", metavar="URL", help="'sqlite' (default) or a server URL where throwaway databases are made.")
@click.option("--fail-on", type=click.Choice(["error", "warning"]), help="Lowest severity that fails the check.")
@click.option("--keep-sandbox", is_flag=True, default=None, help="Keep the throwaway database(s) and print the URL.")
@click.option("--format", "format_", type=click.Choice(["console", "json"]), help="Output on stdout.")
@click.option("--output", "-o", metavar="PATH", help="Also write the JSON report to PATH.")
@click.option("--only", metavar="CHECKS", help="Comma-separated checks to run (graph,replay,drift).")
def check(config: str | None, app: str | None, migrations: str | None, sandbox: str | None, fail_on: str | None,
          keep_sandbox: bool | None, format_: str | None, output: str | None, only: str | None) -> None:
    """Check the migrations: heads and broken history, replay on a sandbox, drift from the models."""

    def body() -> int:
        from ci_migrate import pipeline
        from ci_migrate.errors import UsageError
        from ci_migrate.publish import console as console_out

        settings = _settings(config, app=app, migrations=migrations, sandbox=sandbox, fail_on=fail_on,
                             keep_sandbox=keep_sandbox, format=format_, output=output)
        _mask_secrets(settings)
        selected = None
        if only:
            selected = {c.strip() for c in only.split(",") if c.strip()}
            unknown = selected - set(pipeline.CHECK_NAMES)
            if unknown:
                raise UsageError(f"--only: unknown check(s) {', '.join(sorted(unknown))}; "
                                 f"choose from {', '.join(pipeline.CHECK_NAMES)}")
        as_json = settings.format == "json"
        err = console_out.make_console(stderr=True)
        with _progress(err, enabled=not as_json) as progress:
            report = pipeline.run_check(settings, only=selected, progress=progress)
        if settings.output:
            path = settings.resolve_path(settings.output)
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(report.to_json(), encoding="utf-8")
        if as_json:
            click.echo(report.to_json())
        else:
            console_out.render(report, console_out.make_console())
        return report.exit_code

    _guarded(body)


class _progress:
    """A transient progress bar on stderr while a long history replays (terminals only)."""

    def __init__(self, console: Any, enabled: bool):
        self.console, self.enabled = console, enabled and console.is_terminal
        self.bar: Any = None
        self.task: Any = None

    def __enter__(self) -> Callable[[int, int, str], None] | None:
        if not self.enabled:
            return None
        from rich.progress import Progress

        self.bar = Progress(console=self.console, transient=True)
        self.bar.start()
        return self.update

    def update(self, done: int, total: int, revision: str) -> None:
        if self.task is None:
            self.task = self.bar.add_task("replaying", total=total)
        self.bar.update(self.task, completed=done, description=f"replaying {revision}")

    def __exit__(self, *exc: Any) -> None:
        if self.bar is not None:
            self.bar.stop()


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
