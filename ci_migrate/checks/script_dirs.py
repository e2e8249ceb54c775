"""Extra Alembic script directories (``migrations:`` entries with a ``version-table``): the host side.

Apps with plugins keep a history per plugin, each in a version table of its own, upgraded after the
app's history (CKAN's ``<plugin>_alembic_version``, Indico's ``alembic_version_plugin_<name>``). The
probe scans each directory like the app's own (:func:`ci_migrate.probe.revisions.scan`) and the
replay upgrades each one after the app's history. Here each directory's history is judged on its
own — its heads, broken chains, import errors (:func:`with_directories`, CM101–CM107 with the
directory in the title) — and the sandbox's version tables are compared with each directory's
heads after the replay (:func:`verify_directory_heads`, CM203).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Collection, Mapping, Sequence

from ci_migrate.facts import History
from ci_migrate.report import CheckResult, DirectoryGraph, DirectoryHeads, Finding


@dataclass(frozen=True)
class ScannedDirectory:
    """One extra script directory as the probe scanned it.

    ``path`` is relative to the repository root; ``env_py`` its own env.py (None: the app's env.py
    runs its revisions); ``scanned`` every revision file (:func:`ci_migrate.checks.graph.from_probe`);
    ``history`` alembic's reading of it.
    """

    path: str
    version_table: str
    env_py: str | None
    scanned: tuple[Any, ...]
    history: History
    versions_dirs: tuple[Path, ...] = ()

    @classmethod
    def from_probe(cls, entry: Mapping[str, Any], root: Path) -> "ScannedDirectory":
        from ci_migrate.checks import graph

        path = Path(entry["path"])
        try:
            shown = path.resolve().relative_to(root.resolve()).as_posix()
        except ValueError:
            shown = path.as_posix()
        return cls(path=shown, version_table=entry["version_table"], env_py=entry.get("env_py"),
                   scanned=tuple(graph.from_probe(entry.get("revisions") or ())),
                   history=History.from_data(entry.get("history") or {}),
                   versions_dirs=tuple(Path(d) for d in entry.get("versions_dirs") or ()))

    def merge_command(self, cli: str) -> str:
        """How to merge this directory's heads: ``flask db merge -d <path>`` (``cli`` is how the app
        spells ``flask db``) with its own env.py, as ``flask db init -d`` made it; with the app's
        env.py, alembic's own command."""
        return f"{cli} merge -d {self.path}" if self.env_py else "alembic merge"


def with_directories(result: CheckResult, directories: Sequence[ScannedDirectory], root: Path, cli: str,
                     pending: Collection[str] | None = None) -> CheckResult:
    """The graph check's result with each extra directory's history judged on its own
    (:func:`ci_migrate.checks.graph.analyze`): findings titled with the directory (and
    ``details.directory``), ``facts.directories`` with each one's heads, and the summary naming them."""
    from ci_migrate.checks import graph

    if not directories:
        return result
    findings, summaries, facts = list(result.findings), [result.summary], []
    for directory in directories:
        own = graph.analyze(directory.scanned, root, merge_command=directory.merge_command(cli), pending=pending)
        for finding in own.findings:
            findings.append(finding.model_copy(update={
                "title": f"{directory.path}: {finding.title}",
                "details": {**finding.details, "directory": directory.path}}))
        summaries.append(f"{directory.path}: {own.summary}")
        assert own.facts is not None and own.facts.kind == "graph"
        facts.append(DirectoryGraph(path=directory.path, version_table=directory.version_table,
                                    env_py=directory.env_py, revisions=own.facts.revisions, heads=own.facts.heads,
                                    bases=own.facts.bases))
    assert result.facts is not None and result.facts.kind == "graph"
    result.facts.directories = facts
    return result.model_copy(update={"findings": findings, "summary": "; ".join(summaries),
                                     "status": CheckResult.status_for(findings)})


def blocked(result: CheckResult, directories: Sequence[ScannedDirectory], blocking: Collection[str]) -> str | None:
    """Why the replay cannot run because of an extra directory: a broken graph (one of the
    ``blocking`` rules in a finding about it) or a history alembic cannot read; None if nothing."""
    for directory in directories:
        bad = sorted({f.rule_id for f in result.findings
                      if f.rule_id in blocking and f.details.get("directory") == directory.path})
        if bad:
            return f"skipped: the revision graph of {directory.path} is broken ({', '.join(bad)})"
        if directory.history.error:
            return f"skipped: alembic cannot read the history of {directory.path} ({directory.history.error})"
    return None


def directory_heads(directories: Sequence[ScannedDirectory], after: Mapping[str, Sequence[str]]) -> list[DirectoryHeads]:
    """Each extra directory's version table on the sandbox after the replay (``after``: the probe's
    ``directories_after``, path → revisions)."""
    return [DirectoryHeads(path=d.path, version_table=d.version_table, heads=list(after.get(d.path) or ()))
            for d in directories]


def verify_directory_heads(directories: Sequence[ScannedDirectory],
                           after: Mapping[str, Sequence[str]]) -> list[Finding]:
    """CM203 for each extra directory whose version table is not at that directory's heads."""
    findings = []
    for directory in directories:
        found, expected = sorted(after.get(directory.path) or ()), sorted(directory.history.heads)
        if found == expected:
            continue
        env = directory.env_py or "the app's env.py"
        findings.append(Finding(
            check="replay", rule_id="CM203", severity="error", file=directory.env_py,
            title=f"{directory.path} is not at head after the upgrade",
            message=f"After upgrading {directory.path} to its heads, its version table {directory.version_table} "
                    f"holds {', '.join(found) or 'no revision'}; expected {', '.join(expected) or 'no revision'}. "
                    f"{env} ran without error but did not record this directory's history in "
                    f"{directory.version_table}.",
            fix=f"Make {env} pass version_table='{directory.version_table}' to context.configure() and run "
                "the directory's revisions.",
            details={"directory": directory.path, "version_table": directory.version_table,
                     "heads": found, "expected": expected}))
    return findings
