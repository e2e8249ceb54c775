"""GitLab Code Quality report (``artifacts: reports: codequality``) of a :class:`Report`.

A JSON array of ``{description, check_name, fingerprint, severity, location: {path, lines:
{begin}}}`` (GitLab Docs "Code Quality": "Implement a custom tool"). Fingerprints are unique
per entry, since GitLab shows only the first of entries that share one.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ci_migrate.publish.common import locate, unique_fingerprints
from ci_migrate.report import Report

#: ci-migrate severity → Code Quality severity (info | minor | major | critical | blocker).
SEVERITY = {"info": "info", "warning": "major", "error": "critical"}


def codequality_entries(report: Report) -> list[dict[str, Any]]:
    """One entry per finding, in report order (most severe first).

    ``location.path`` is repo-relative; a finding without a file points at the migrations
    directory (GitLab requires a path), line 1 when the line is unknown.
    """
    findings = report.findings
    entries = []
    for finding, fp in zip(findings, unique_fingerprints(report, findings), strict=True):
        file, line = locate(report, finding)
        text = f"{finding.rule_id} {finding.title}"
        if finding.message:
            text += f": {finding.message}"
        entries.append({
            "description": text,
            "check_name": finding.rule_id,
            "fingerprint": fp,
            "severity": SEVERITY[finding.severity],
            "location": {"path": file or report.migrations or ".", "lines": {"begin": line or 1}},
        })
    return entries


def write_codequality(report: Report, path: Path) -> None:
    """Write the Code Quality JSON to ``path`` (parents created). Raises ``OSError``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(codequality_entries(report), indent=2) + "\n", encoding="utf-8")
