"""JUnit XML of a :class:`Report`: one ``<testsuite>`` per check, one ``<testcase>`` per revision.

Read by GitLab (``artifacts:reports:junit``), Jenkins (``junit``), CircleCI
(``store_test_results``) and Bitbucket Pipelines (auto-detected under ``test-results/``;
at most 2,000 characters per field, Atlassian "Test reporting in Pipelines"). The element
and attribute names follow the de-facto Ant/Maven Surefire schema those tools parse.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from dataclasses import dataclass, field
from pathlib import Path

from ci_migrate.report import SEVERITY_RANK, CheckResult, Finding, Report

FIELD_LIMIT = 2_000


@dataclass
class _Case:
    name: str
    file: str | None = None
    time: float = 0.0
    failed_run: bool = False  # the replay of this revision failed
    findings: list[Finding] = field(default_factory=list)


def _clip(text: str) -> str:
    return text if len(text) <= FIELD_LIMIT else text[: FIELD_LIMIT - 1] + "…"


def _cases(report: Report, check: CheckResult) -> list[_Case]:
    """The check's revisions (from its facts, then from its findings) as test cases."""
    facts = check.facts
    cases: dict[str, _Case] = {}
    if facts is not None and facts.kind == "graph":
        cases = {r.revision: _Case(r.revision, r.file) for r in facts.revisions}
    elif facts is not None and facts.kind == "replay":
        cases = {r.revision: _Case(r.revision, time=r.duration_ms / 1000,
                                   failed_run=r.status == "failed") for r in facts.revisions}
    elif facts is not None and facts.kind == "plan":
        cases = {p.revision: _Case(p.revision, p.file) for p in facts.pending}
    whole = _Case(check.name)
    for f in check.findings:
        if f.revision:
            cases.setdefault(f.revision, _Case(f.revision, f.file)).findings.append(f)
        else:
            whole.findings.append(f)
    if whole.findings or not cases:
        cases = {check.name: whole, **cases}
    return list(cases.values())


def _testcase(suite: ET.Element, report: Report, check: CheckResult, case: _Case) -> str:
    """Add one ``<testcase>``; returns its outcome: passed | failure | error | skipped."""
    el = ET.SubElement(suite, "testcase", classname=f"ci-migrate.{check.name}", name=case.name,
                       time=f"{case.time:.3f}")
    if case.file:
        el.set("file", case.file)
    floor = SEVERITY_RANK[report.fail_on]
    failing = [f for f in case.findings if SEVERITY_RANK[f.severity] >= floor]
    below = [f for f in case.findings if SEVERITY_RANK[f.severity] < floor]
    outcome = "passed"
    if check.status == "skipped":
        ET.SubElement(el, "skipped", message=_clip(check.summary))
        outcome = "skipped"
    elif check.status == "error" and case.name == check.name:
        ET.SubElement(el, "error", message=_clip(check.summary), type="error").text = check.summary
        outcome = "error"
    elif failing or case.failed_run:
        first = failing[0] if failing else None
        message = f"{first.rule_id} {first.title}" if first else f"{case.name} failed to apply"
        failure = ET.SubElement(el, "failure", message=_clip(message),
                                type=first.rule_id if first else "replay")
        failure.text = "\n\n".join(_describe(f) for f in failing) or message
        outcome = "failure"
    if below:
        ET.SubElement(el, "system-out").text = "\n\n".join(_describe(f) for f in below)
    return outcome


def _describe(f: Finding) -> str:
    where = f"{f.file}:{f.line}" if f.file and f.line else f.file or ""
    lines = [f"[{f.severity}] {f.rule_id} {f.title}" + (f" ({where})" if where else ""),
             f.message, f"Fix: {f.fix}" if f.fix else ""]
    return "\n".join(line for line in lines if line)


def junit_tree(report: Report) -> ET.ElementTree:
    """The ``<testsuites>`` tree; counts (tests/failures/errors/skipped) on every level."""
    root = ET.Element("testsuites", name="ci-migrate", time=f"{report.duration_s:.3f}")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for check in report.checks:
        suite = ET.SubElement(root, "testsuite", name=f"ci-migrate.{check.name}",
                              time=f"{check.duration_s:.3f}",
                              timestamp=report.started_at.isoformat(timespec="seconds"))
        counts = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
        for case in _cases(report, check):
            outcome = _testcase(suite, report, check, case)
            counts["tests"] += 1
            key = {"failure": "failures", "error": "errors", "skipped": "skipped"}.get(outcome)
            if key:
                counts[key] += 1
        for k, v in counts.items():
            suite.set(k, str(v))
            totals[k] += v
    for k, v in totals.items():
        root.set(k, str(v))
    return ET.ElementTree(root)


def write_junit(report: Report, path: Path) -> None:
    """Write the JUnit XML of ``report`` to ``path`` (UTF-8, parents created).

    Raises ``OSError`` when ``path`` cannot be written.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tree = junit_tree(report)
    ET.indent(tree)
    tree.write(path, encoding="utf-8", xml_declaration=True)
