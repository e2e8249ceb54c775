"""GitHub Actions workflow commands and files: masks, annotations, outputs, job summary.

Mirrors the runner's contract as documented in GitHub Docs "Workflow commands for GitHub
Actions" and implemented by actions/toolkit ``packages/core`` (``command.ts`` escaping,
``file-command.ts`` ``name<<ghadelimiter_<uuid>`` outputs). Nothing here makes a network call.
"""

from __future__ import annotations

import sys
import uuid
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import TextIO

from ci_migrate.masking import MIN_SECRET_LENGTH
from ci_migrate.publish.common import locate
from ci_migrate.report import Finding, Report

#: GitHub shows at most 10 error and 10 warning annotations per step (and 50 per job).
ANNOTATIONS_PER_KIND = 10
_COMMAND = {"error": "error", "warning": "warning", "info": "notice"}
_KIND_NAME = {"error": "errors", "warning": "warnings", "info": "notices"}


def escape_data(value: str) -> str:
    """Escape a command's message: ``%``, ``\\r``, ``\\n`` (toolkit ``escapeData``)."""
    return value.replace("%", "%25").replace("\r", "%0D").replace("\n", "%0A")


def escape_property(value: str) -> str:
    """Escape a command property: as :func:`escape_data` plus ``:`` and ``,``."""
    return escape_data(value).replace(":", "%3A").replace(",", "%2C")


def command(name: str, message: str = "", **props: str | int | None) -> str:
    """One ``::name k=v,…::message`` line (without the newline); ``None`` properties are dropped."""
    given = ",".join(f"{k}={escape_property(str(v))}" for k, v in props.items() if v is not None)
    return f"::{name}{' ' + given if given else ''}::{escape_data(message)}"


def register_masks(secrets: Iterable[str], out: TextIO = sys.stdout) -> None:
    """Write ``::add-mask::<value>`` for each secret, before anything else is printed.

    The runner then replaces the value with ``***`` in the log. Multi-line secrets are masked
    line by line, since the runner matches within lines; a value (or line) shorter than
    :data:`~ci_migrate.masking.MIN_SECRET_LENGTH` is left out, as masking it would blank every
    occurrence of those letters. Pass raw and percent-decoded forms (:func:`~ci_migrate.masking.secret_forms`).
    """
    seen: set[str] = set()
    for secret in secrets:
        for part in (secret or "").splitlines():
            if len(part.strip()) >= MIN_SECRET_LENGTH and part not in seen:
                seen.add(part)
                out.write(command("add-mask", part) + "\n")
    out.flush()


def annotation(report: Report, finding: Finding) -> str:
    """The ``::error``/``::warning``/``::notice`` line of one finding, located repo-relative."""
    file, line = locate(report, finding)
    message = "\n".join(p for p in (finding.message, f"Fix: {finding.fix}" if finding.fix else "")
                        if p)
    return command(_COMMAND[finding.severity], message or finding.title, file=file, line=line,
                   title=f"{finding.rule_id} {finding.title}")


def annotation_lines(report: Report) -> list[str]:
    """Annotation lines, most severe first, at most :data:`ANNOTATIONS_PER_KIND` of each kind.

    When a kind has more findings than the cap, the last slot says how many more are in the
    job summary (reviewdog does the same when it degrades to annotations).
    """
    lines: list[str] = []
    for severity in ("error", "warning", "info"):
        found = [f for f in report.findings if f.severity == severity]
        if len(found) > ANNOTATIONS_PER_KIND:
            shown = found[: ANNOTATIONS_PER_KIND - 1]
            more = len(found) - len(shown)
            rest = command(_COMMAND[severity], f"{more} more {_KIND_NAME[severity]} in the job "
                           "summary.", title="ci-migrate")
        else:
            shown, rest = found, None
        lines += [annotation(report, f) for f in shown]
        lines += [rest] if rest else []
    return lines


def write_outputs(path: str | Path, outputs: Mapping[str, str]) -> None:
    """Append step outputs to the ``GITHUB_OUTPUT`` file with the multi-line delimiter syntax.

    Each value is written as ``name<<ghadelimiter_<uuid>`` / value / delimiter, a fresh random
    delimiter per value (toolkit ``prepareKeyValueMessage``), so no value can end it early.
    """
    with open(path, "a", encoding="utf-8") as fh:
        for name, value in outputs.items():
            delimiter = f"ghadelimiter_{uuid.uuid4()}"
            fh.write(f"{name}<<{delimiter}\n{value}\n{delimiter}\n")


def append_summary(path: str | Path, body: str) -> None:
    """Append Markdown to the step's ``GITHUB_STEP_SUMMARY`` (the runner uploads it at step end)."""
    with open(path, "a", encoding="utf-8") as fh:
        fh.write(body if body.endswith("\n") else body + "\n")


def summary_budget(path: str | Path, limit: int = 1_048_576) -> int:
    """Bytes still free in the step summary file (1 MiB per step, less what is already there)."""
    try:
        used = Path(path).stat().st_size
    except OSError:
        used = 0
    return max(limit - used - 1, 0)


def outputs_of(report: Report, report_path: str | None) -> dict[str, str]:
    """The step outputs (documented in ``docs/publishing.md``).

    ``verdict`` ``passed``/``failed``; ``heads`` space-separated; ``pending-count`` an integer;
    ``drift`` ``true``/``false``; ``findings`` the number of findings; ``report-path``; for
    ``apply`` also ``applied-count``, ``from`` and ``to`` (space-separated revisions). A value
    is empty when the check that knows it did not run.
    """
    graph, plan, drift, applied = report.graph, report.plan, report.drift, report.apply
    outputs = {
        "verdict": report.verdict,
        "heads": " ".join(graph.heads) if graph else "",
        "pending-count": str(len(plan.pending)) if plan else "",
        "drift": ("true" if drift.has_drift else "false") if drift else "",
        "findings": str(len(report.findings)),
        "report-path": report_path or "",
    }
    if applied is not None:  # ci-migrate apply: what ran, and the revisions before and after
        heads = lambda by_bind: " ".join(sorted({h for hs in by_bind.values() for h in hs}))  # noqa: E731
        outputs["applied-count"] = str(len({r.revision for r in applied.applied if r.status == "applied"}))
        outputs["from"] = heads(applied.from_heads)
        outputs["to"] = heads(applied.to_heads)
    return outputs
