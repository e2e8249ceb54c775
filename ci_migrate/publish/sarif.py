"""SARIF 2.1.0 log of a :class:`Report`, for GitHub code scanning (``upload-sarif``).

Follows GitHub Docs "SARIF support for code scanning": ``runs[].tool.driver.rules[]`` with
``shortDescription``/``fullDescription``/``help``, ``results[]`` with ``ruleId``, ``level``,
``message.text``, a repo-relative ``artifactLocation.uri`` and ``region.startLine``, our own
``partialFingerprints`` (the raw upload API does not compute them) and
``automationDetails.id`` as the category (one per report key). Plain dicts: the schema is small,
and the test suite validates the output against the OASIS SARIF 2.1.0 JSON schema.
"""

from __future__ import annotations

import json
from pathlib import Path, PurePosixPath
from typing import Any

from ci_migrate.publish.common import fingerprint, locate
from ci_migrate.publish.links import Links, default_links, home_url
from ci_migrate.report import Finding, Report

SCHEMA_URI = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
LEVEL = {"error": "error", "warning": "warning", "info": "note"}
FINGERPRINT_KEY = "ciMigrate/v1"


def relative_uri(file: str, root: Path) -> str:
    """``file`` as a POSIX path relative to ``root`` (absolute paths under it are relativized)."""
    path = Path(file)
    if path.is_absolute():
        try:
            path = path.resolve().relative_to(Path(root).resolve())
        except ValueError:
            return path.as_posix()
    return PurePosixPath(path.as_posix()).as_posix().removeprefix("./")


def _rule(finding: Finding, links: Links) -> dict[str, Any]:
    url = links.rule(finding.rule_id)
    help_text = "\n\n".join(p for p in (finding.fix and f"Fix: {finding.fix}",
                                        url and f"Documentation: {url}") if p)
    rule: dict[str, Any] = {
        "id": finding.rule_id,
        "name": finding.rule_id,
        "shortDescription": {"text": finding.title},
        "fullDescription": {"text": finding.title},  # the finding's message is per result
        "help": {"text": help_text or finding.title,
                 "markdown": (help_text.replace(url, f"[{url}]({url})") if url else help_text)
                 or finding.title},
        "defaultConfiguration": {"level": LEVEL[finding.severity]},
        "properties": {"tags": ["migrations", finding.check]},
    }
    if url:
        rule["helpUri"] = url
    return rule


def _result(report: Report, finding: Finding, index: int, root: Path) -> dict[str, Any]:
    file, line = locate(report, finding)
    text = finding.title + (f": {finding.message}" if finding.message else "")
    if finding.fix:
        text += f" Fix: {finding.fix}"
    result: dict[str, Any] = {
        "ruleId": finding.rule_id,
        "ruleIndex": index,
        "level": LEVEL[finding.severity],
        "message": {"text": text},
        "partialFingerprints": {FINGERPRINT_KEY: fingerprint(report, finding)},
    }
    if file:
        location: dict[str, Any] = {"artifactLocation": {"uri": relative_uri(file, root),
                                                         "uriBaseId": "%SRCROOT%"}}
        location["region"] = {"startLine": line or 1}
        result["locations"] = [{"physicalLocation": location}]
    props = {k: v for k, v in (("revision", finding.revision), ("bind", finding.bind)) if v}
    if props:
        result["properties"] = props
    return result


def sarif_log(report: Report, root: Path, links: Links | None = None) -> dict[str, Any]:
    """The SARIF log as a dict: one run, rules in first-seen order, one result per finding.

    ``links.rules`` gives each rule its ``helpUri`` (default: the package's rule pages).
    """
    links = links or default_links()
    rules: dict[str, dict[str, Any]] = {}
    for f in report.findings:
        rules.setdefault(f.rule_id, _rule(f, links))
    index = {rule_id: i for i, rule_id in enumerate(rules)}
    driver: dict[str, Any] = {"name": "ci-migrate", "version": report.version,
                              "rules": list(rules.values())}
    if home_url():
        driver["informationUri"] = home_url()
    run = {
        "tool": {"driver": driver},
        "automationDetails": {"id": f"ci-migrate/{report.key or 'default'}/"},
        "results": [_result(report, f, index[f.rule_id], root) for f in report.findings],
    }
    return {"$schema": SCHEMA_URI, "version": "2.1.0", "runs": [run]}


def write_sarif(report: Report, path: Path, root: Path, links: Links | None = None) -> None:
    """Write the SARIF 2.1.0 log to ``path``; locations relative to repository ``root``.

    Raises ``OSError`` when ``path`` cannot be written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(sarif_log(report, root, links), indent=2) + "\n", encoding="utf-8")
