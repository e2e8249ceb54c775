"""Console output with rich: a line per check, the drift per table, the findings, the verdict."""

from __future__ import annotations

from typing import Any

from ci_migrate.report import Report

_STATUS = {
    "passed": ("✔", "green"),
    "warning": ("!", "yellow"),
    "failed": ("✘", "red"),
    "skipped": ("–", "dim"),
    "error": ("✘", "red"),
}
_SEVERITY = {"error": "bold red", "warning": "yellow", "info": "cyan"}


def make_console(stderr: bool = False, **kwargs: Any) -> Any:
    """A rich Console that never wraps mid-path in CI logs (width 120 when not a terminal)."""
    from rich.console import Console

    console = Console(stderr=stderr, highlight=False, soft_wrap=False, **kwargs)
    if not console.is_terminal:
        console.width = max(console.width, 120)
    return console


def render(report: Report, console: Any) -> None:
    """Print the report for a person reading a CI log or a terminal."""
    from rich.markup import escape
    from rich.table import Table

    where = [f"app [bold]{escape(report.app or '(flask discovery)')}[/]", f"migrations [bold]{escape(report.migrations or '?')}[/]"]
    if report.sandbox:
        sandbox = "sqlite (temporary file)" if report.sandbox.dialect == "sqlite" else report.sandbox.url
        where.append(f"sandbox [bold]{escape(sandbox)}[/]" + (" [yellow](kept)[/]" if report.sandbox.kept else ""))
    console.print(f"[bold]ci-migrate {report.version}[/] · " + " · ".join(where))
    console.print()
    table = Table(show_header=False, box=None, padding=(0, 1), pad_edge=False)
    for check in report.checks:
        icon, colour = _STATUS[check.status]
        table.add_row(f"[{colour}]{icon}[/]", f"[bold]{check.name}[/]", f"[{colour}]{check.status}[/]",
                      escape(check.summary))
    console.print(table)
    _render_drift(report, console)
    _render_findings(report, console)
    for note in report.notes:
        console.print(f"[cyan]note:[/] {escape(note)}")
    if report.sandbox and report.sandbox.kept:
        console.print(f"[yellow]The sandbox was kept:[/] {escape(report.sandbox.url)}")
    console.print()
    _render_verdict(report, console)


def _render_drift(report: Report, console: Any) -> None:
    from rich.markup import escape
    from rich.padding import Padding
    from rich.syntax import Syntax
    from rich.text import Text

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
            console.print(Padding(Text(code), (0, 0, 0, 4), expand=False))


def _indent(code: str) -> str:
    lines = [line for line in code.strip("\n").splitlines()]
    return "\n".join(line if line.startswith("    ") else "    " + line for line in lines)


def _render_findings(report: Report, console: Any) -> None:
    from rich.markup import escape
    from rich.padding import Padding
    from rich.text import Text

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
        body.append(f"docs/rules/{f.rule_id}.md", style="dim")
        console.print(Padding(body, (0, 0, 0, 10), expand=False))


def _render_verdict(report: Report, console: Any) -> None:
    counts: dict[str, int] = {}
    for f in report.findings:
        counts[f.severity] = counts.get(f.severity, 0) + 1
    tally = ", ".join(f"{n} {sev}{'s' if n != 1 else ''}" for sev, n in counts.items()) or "no findings"
    seconds = f"{report.duration_s:.1f} s"
    if report.verdict == "passed":
        console.print(f"[bold green]✔ passed[/] — {tally} ({seconds})")
    else:
        console.print(f"[bold red]✘ failed[/] — {tally}; failing at or above '{report.fail_on}' ({seconds})")
