"""Console output with rich: a line per check, the schema change, the drift per table, the findings,
the verdict.

In a terminal rich wraps to the window. Anywhere else (a CI log, a pipe, a file) nothing is
padded or wrapped: every line is as long as its text, so paths, URLs and the suggested revision
body can be copied as they are. A reader that goes away (``| head -1``) ends the output, never
the run: it still publishes and exits with its verdict.
"""

from __future__ import annotations

import os
import sys
from typing import Any, Callable

from rich.console import Console
from rich.padding import Padding
from rich.text import Text

from ci_migrate.publish.change_text import counts, table_lines
from ci_migrate.publish.common import headline
from ci_migrate.publish.links import Links, default_links
from ci_migrate.report import Report

_STATUS = {
    "passed": ("✔", "green"),
    "warning": ("!", "yellow"),
    "failed": ("✘", "red"),
    "skipped": ("–", "dim"),
    "error": ("✘", "red"),
}
_SEVERITY = {"error": "bold red", "warning": "yellow", "info": "cyan"}


class _Console(Console):
    """A rich Console that survives the reader of its output going away."""

    def on_broken_pipe(self) -> None:
        """Called by rich on ``BrokenPipeError``; rich's own version exits with code 1."""
        self.quiet = True
        output_closed(self.file)


def output_closed(stream: Any = None) -> None:
    """Point ``stream`` (default ``sys.stdout``) at /dev/null after its reader went away, so that
    later writes and the flush at exit succeed silently (Python docs, "Note on SIGPIPE")."""
    stream = sys.stdout if stream is None else stream
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, fd)
    os.close(devnull)


def make_console(stderr: bool = False, **kwargs: Any) -> Any:
    """A rich Console on stdout (or stderr): wrapping to the window in a terminal; elsewhere
    ``soft_wrap`` (no wrapping, no padding) at any width."""
    console = _Console(stderr=stderr, highlight=False, soft_wrap=False, **kwargs)
    if not console.is_terminal:
        console.soft_wrap = True
    return console


def _block(console: Any, body: Text, indent: int) -> None:
    """Print ``body`` indented by ``indent`` spaces: a hanging indent in a terminal, plain
    indented lines without trailing spaces elsewhere."""
    if console.is_terminal:
        console.print(Padding(body, (0, 0, 0, indent), expand=False))
        return
    lines = body.split("\n", allow_blank=True)
    for line in lines:
        line.rstrip()
    console.print(Text("\n").join(Text(" " * indent) + line if line.plain else line for line in lines))


def render(report: Report, console: Any, links: Links | None = None) -> None:
    """Print the report for a person reading a CI log or a terminal.

    ``links``: where each finding's rule page is (default: the package's rule pages).
    """
    from rich.markup import escape

    where = [f"app [bold]{escape(report.app or '(flask discovery)')}[/]", f"migrations [bold]{escape(report.migrations or '?')}[/]"]
    if report.sandbox:
        sandbox = "sqlite (temporary file)" if report.sandbox.dialect == "sqlite" else report.sandbox.url
        where.append(f"sandbox [bold]{escape(sandbox)}[/]" + (" [yellow](kept)[/]" if report.sandbox.kept else ""))
    console.print(f"[bold]ci-migrate {report.version}[/] · " + " · ".join(where))
    if report.interpreter is not None:
        console.print(f"python [bold]{escape(report.interpreter.path)}[/] ({escape(report.interpreter.source)}) · "
                      f"{escape(report.interpreter.stack)}")
    console.print()
    name_width = max((len(c.name) for c in report.checks), default=0)
    status_width = max((len(c.status) for c in report.checks), default=0)
    for check in report.checks:  # aligned columns, no padding after the summary (clean CI logs)
        icon, colour = _STATUS[check.status]
        console.print(f"[{colour}]{icon}[/]  [bold]{check.name:<{name_width}}[/]  "
                      f"[{colour}]{check.status:<{status_width}}[/]  {escape(check.summary)}")
    _render_apply(report, console)
    _render_change(report, console)
    _render_plan(report, console)
    _render_drift(report, console)
    _render_walks(report, console)
    _render_findings(report, console, links or default_links())
    for note in report.notes:
        console.print(f"[cyan]note:[/] {escape(note)}")
    if report.sandbox and report.sandbox.kept:
        console.print(f"[yellow]The sandbox was kept:[/] {escape(report.sandbox.url)}")
    console.print()
    _render_verdict(report, console)


def _render_apply(report: Report, console: Any) -> None:
    """``apply``: the target, the lock, each revision run (or, in a dry run, planned with its SQL)."""
    from rich.markup import escape

    facts = report.apply
    if facts is None:
        return

    def heads(by_bind: dict[str, list[str]]) -> str:
        if len(by_bind) <= 1:
            return ", ".join(next(iter(by_bind.values()), [])) or "base"
        return "; ".join(f"{bind or 'default'}: {', '.join(revs) or 'base'}" for bind, revs in by_bind.items())

    console.print()
    line = f"[bold]Target {escape(facts.target)}[/] · {escape(facts.url)}"
    if facts.lock:
        line += f" · lock {escape(facts.lock)}" + (f" (waited {facts.lock_wait_s:.1f} s)" if facts.lock_wait_s else "")
    console.print(line)
    after = f" → {escape(heads(facts.to_heads))}" if facts.to_heads else ""
    console.print(f"  revision {escape(heads(facts.from_heads))}{after}")
    if facts.dry_run:
        for planned in facts.pending:
            console.print(f"  [cyan]•[/] [bold]{planned.revision}[/] {escape(planned.message or '')}")
            body = planned.sql if planned.sql is not None else f"-- no offline SQL: {planned.sql_error}"
            _block(console, Text(body.strip()), 6)
        return
    marks = {"applied": ("✔", "green"), "failed": ("✘", "red"), "rolled_back": ("↺", "yellow")}
    for run in facts.applied:
        icon, colour = marks[run.status]
        bind = f" [dim]\\[bind {escape(run.bind)}][/]" if run.bind else ""
        what = "" if run.status == "applied" else f" [{colour}]{run.status.replace('_', ' ')}[/]"
        count = f"{run.statements or 0} statement{'' if run.statements == 1 else 's'}"
        console.print(f"  [{colour}]{icon}[/] [bold]{run.revision}[/]{bind} {escape(run.message or '')}{what} "
                      f"[dim]({run.duration_ms:.0f} ms, {count})[/]")
    if facts.retries:
        console.print(f"  [yellow]{facts.retries} lock timeout(s) retried[/]")


def _render_change(report: Report, console: Any) -> None:
    """The schema change of the pending revisions, a line per table and per change."""
    from rich.markup import escape

    facts = report.schema_change
    if not facts or not facts.tables:
        return
    console.print()
    console.print(f"[bold]Schema change[/] ({escape(counts(facts))})")
    for line in table_lines(facts):
        bind = f" (bind {escape(line.bind)})" if line.bind else ""
        head = f": {escape(line.head)}" if line.head else ""
        console.print(f"  {line.icon} [bold]{escape(line.name)}[/]{bind}{head}")
        for item in line.items:
            console.print(f"      - {escape(item)}")


def _render_plan(report: Report, console: Any) -> None:
    """The pending revisions (vs the base branch or a target): status, operations, offline SQL."""
    from rich.markup import escape

    plan = report.plan
    if not plan or not plan.pending:
        return
    kind, _, name = plan.against.partition(":")
    console.print()
    where = f"vs {name}"
    if kind == "target":
        where = f"on target {name}, now at {', '.join(plan.current) or 'no revision'}"
    console.print(f"[bold]Pending revisions {escape(where)}[/] (upgrade order; {escape(plan.dialect or '?')} SQL)")
    for planned in plan.pending:
        who = f", {planned.author}" if planned.author else ""
        console.print(f"  [cyan]•[/] [bold]{planned.revision}[/] {escape(planned.message or '')} "
                      f"[dim]({planned.status}{escape(who)}) {escape(planned.file or '')}[/]")
        for operation in planned.operations:
            console.print(f"      - {escape(operation)}")
        body = planned.sql if planned.sql is not None else f"-- no offline SQL: {planned.sql_error}"
        _block(console, Text(body.strip(), style="dim"), 6)


def _render_drift(report: Report, console: Any) -> None:
    from rich.markup import escape
    from rich.syntax import Syntax

    drift = report.drift
    if not drift or not drift.has_drift:
        return
    for bind in drift.binds:
        if not bind.tables:
            continue
        console.print()
        label = f" (bind {bind.bind})" if bind.bind else ""
        console.print(f"[bold]Drift{label}: the models have changes that no migration contains[/]")
        for table in bind.tables:
            console.print(f"  [bold]{escape(table.table)}[/] ({table.change})")
            for item in table.items:
                mark = "~" if item.approximate else "•"
                console.print(f"    {mark} {escape(item.text)}" + (" [dim](approximate)[/]" if item.approximate else ""))
        console.print("  [dim]Suggested revision body (what `flask db migrate` would write):[/]")
        code = f"def upgrade():\n{_indent(bind.upgrade_code)}\n\n\ndef downgrade():\n{_indent(bind.downgrade_code)}"
        if console.is_terminal:
            console.print(Syntax(code, "python", theme="ansi_dark", background_color="default", padding=(0, 4)))
        else:  # plain text in CI logs: no padding to the console width
            _block(console, Text(code), 4)


def _indent(code: str) -> str:
    lines = [line.rstrip() for line in code.strip("\n").splitlines()]
    return "\n".join(line if line.startswith("    ") or not line else "    " + line for line in lines)


def _render_walks(report: Report, console: Any) -> None:
    """Lock trace (revisions that lock tables existing before them) and round-trip steps that are not ok."""
    import re

    from rich.markup import escape

    def mode(name: str) -> str:  # AccessExclusiveLock → ACCESS EXCLUSIVE (the PostgreSQL docs' names)
        return " ".join(re.findall(r"[A-Z][a-z]+", name.removesuffix("Lock"))).upper()

    locks = report.locks
    traced = [r for r in (locks.revisions if locks else []) if r.locks or r.rewrites]
    if traced:
        console.print()
        console.print("[bold]Locks on existing tables[/] (PostgreSQL sandbox; the strongest each revision takes per table)")
        width = max(len(r.message or "") for r in traced)
        for r in traced:
            held = ", ".join(f"{mode(h.mode)} {h.relation}" for h in r.locks)
            rewrites = f" · [red]rewrites {escape(', '.join(r.rewrites))}[/]" if r.rewrites else ""
            message = (r.message or "").ljust(width)
            console.print(f"  [bold]{r.revision}[/]  {escape(message)}  {escape(held)}{rewrites}")
    steps = [s for s in (report.roundtrip.steps if report.roundtrip else []) if s.status != "ok"]
    if steps:
        console.print()
        console.print("[bold]Round trip[/] (upgrade → downgrade → upgrade; revisions that are not ok)")
        marks = {"leaky": ("✘", "red"), "failed": ("✘", "red"), "irreversible": ("!", "yellow"), "skipped": ("–", "dim")}
        for s in steps:
            icon, colour = marks[s.status]
            console.print(f"  [{colour}]{icon}[/] [bold]{s.revision}[/]  {escape(s.message or '')}: "
                          f"[{colour}]{s.status}[/] — {escape(s.detail or '')}")


def _render_findings(report: Report, console: Any, links: Links) -> None:
    from rich.markup import escape

    findings = report.findings
    if not findings:
        return
    console.print()
    console.print(f"[bold]Findings ({len(findings)})[/]")
    for f in findings:
        where = f"{f.file}:{f.line}" if f.file and f.line else (f.file or "")
        console.print(f"  [{_SEVERITY[f.severity]}]{f.severity.upper():7}[/] [bold]{f.rule_id}[/] {escape(f.title)}")
        body = Text()
        if where:
            body.append(where + "\n", style="dim")
        if f.message and f.message != f.title:
            body.append(f.message.rstrip() + "\n")
        if f.fix:
            body.append("fix: ", style="green")
            body.append(f.fix.rstrip() + "\n")
        body.append(links.rule(f.rule_id) or f"ci-migrate explain {f.rule_id}", style="dim")
        _block(console, body, 10)


def _render_verdict(report: Report, console: Any) -> None:
    seconds = f"{report.duration_s:.1f} s"
    if report.verdict == "passed":
        console.print(f"[bold green]{headline(report)}[/] ({seconds})")
    else:
        console.print(f"[bold red]{headline(report)}[/] — failing at or above '{report.fail_on}' ({seconds})")


class ReplayProgress:
    """A transient progress bar on ``console`` while a long history replays (terminals only).

    ``with ReplayProgress(console, enabled) as update`` gives ``update(done, total, revision)``, or
    None when the console is not a terminal or ``enabled`` is false (JSON on stdout)."""

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
