"""The graph check: judge the history the probe read, without a database.

Alembic's ``ScriptDirectory`` stops at the first broken file and only warns about duplicate ids
(reference/alembic-internals.md §3). So the probe loads each file itself, with alembic's filename
rule and loader (:func:`ci_migrate.probe.revisions.scan`), and :func:`analyze` builds the graph the way alembic's
``RevisionMap`` does (``down_revision`` edges decide heads, bases, branch and merge points; a
``depends_on`` entry names a revision id or a branch label and only orders) and reports every
problem at once as CM101–CM107 (``docs/rules/``).
"""

from __future__ import annotations

import ast
import os
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Collection, Iterator, Sequence

from ci_migrate.checks.revision_graph import RevisionGraph
from ci_migrate.checks.suppress import silence
from ci_migrate.report import CheckResult, Finding, GraphFacts, HeadBranch, RevisionInfo

DEFAULT_MESSAGE = "empty message"  # alembic's generate_revision() default; `flask db migrate` w/o -m
SEVERITY = {"CM101": "error", "CM102": "error", "CM103": "error", "CM104": "error",
            "CM105": "error", "CM106": "warning", "CM107": "error"}
# Rules on how one revision is written, not on whether the history works: they judge the revisions a
# pull request adds; on a full run the old ones are one info line per rule (rule id → what they share).
STYLE_RULES = {"CM106": f"Flask-Migrate's default message \"{DEFAULT_MESSAGE}\""}
# A literal `revision = '…'` / `down_revision = (…)` line, for files that failed to import.
_LITERAL = re.compile(r"^(revision|down_revision)\s*(?::[^=\n]*)?=\s*(.+?)\s*(?:#.*)?$", re.M)


@dataclass
class ScannedRevision:
    """One ``.py`` file of a versions directory, as the probe loaded it (or not)."""

    path: Path  # absolute path of the file
    revision: str | None  # None when the file failed to load or has no `revision`
    down_revisions: tuple[str, ...]
    branch_labels: tuple[str, ...]
    depends_on: tuple[str, ...]
    message: str | None  # first paragraph of the docstring, as alembic's Script.doc
    error: str | None  # "ExceptionType: message" when the file failed to import
    error_line: int | None  # 1-based line in THIS file where the import failed


def from_probe(entries: Sequence[dict]) -> list[ScannedRevision]:
    """The probe's scan (``revisions`` of the ``scan`` answer) as :class:`ScannedRevision` objects."""
    return sorted((ScannedRevision(
        path=Path(e["path"]), revision=e.get("revision"), down_revisions=tuple(e.get("down_revisions") or ()),
        branch_labels=tuple(e.get("branch_labels") or ()), depends_on=tuple(e.get("depends_on") or ()),
        message=e.get("message"), error=e.get("error"), error_line=e.get("error_line")) for e in entries),
        key=lambda r: r.path)


def _to_tuple(value: object) -> tuple:
    """alembic's ``to_tuple``: None → (), a string → (it,), a sequence → tuple."""
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple)):
        return tuple(value)
    return (value,)


def _recover(rev: ScannedRevision) -> ScannedRevision:
    """Best effort for a file that failed to import: its literal ``revision``/``down_revision``,
    so one broken file does not also show up as a missing parent and an extra head."""
    if (text := _read(rev.path)) is None:
        return rev
    values: dict[str, object] = {}
    for name, literal in _LITERAL.findall(text):
        try:
            values.setdefault(name, ast.literal_eval(literal))
        except (ValueError, SyntaxError):
            continue
    rid = values.get("revision")
    if not isinstance(rid, str):
        return rev
    down = tuple(str(d) for d in _to_tuple(values.get("down_revision")))
    return replace(rev, revision=rid, down_revisions=down)


# --------------------------------------------------------------------------- judging


def analyze(revisions: Sequence[ScannedRevision], root: Path, merge_command: str = "flask db merge",
            pending: Collection[str] | None = None) -> CheckResult:
    """Judge the revision graph of ``revisions`` (the probe's scan, :func:`from_probe`).

    Returns ``CheckResult(name='graph', facts=GraphFacts(...), findings=[...])``: findings CM101–CM107
    ordered by rule id, then file; ``GraphFacts.revisions`` base → head when the graph is a DAG (file
    order otherwise), and ``heads``/``bases``/``branch_points``/``merge_points`` in that same order,
    with alembic's meanings (``Script.is_head``, ``is_base``, ``is_branch_point``, ``is_merge_point``).
    Heads of a graph with missing parents come from the files that did load. ``root`` is the
    repository root every ``file`` is made relative to (POSIX); ``merge_command`` is how the app's
    CLI spells ``flask db merge`` (e.g. ``flask database merge``). Never raises for a bad history.

    ``pending`` is the set of revision ids the pull request adds (or a target lacks): style rules
    (:data:`STYLE_RULES`, e.g. CM106) then judge only those. ``None`` means a full run with no base:
    each style rule becomes one info finding that counts the revisions it concerns.
    """
    revisions = [_recover(r) if r.error else r for r in revisions]
    graph = RevisionGraph(revisions)
    ranked = graph.topological() or list(graph.files)
    heads = [r for r in ranked if not graph.children[r]]
    branches = graph.head_branches(heads) if len(heads) > 1 else []
    judge = _Judge(Path(root).absolute(), graph, merge_command)
    findings = sorted(
        [*judge.heads(branches), *judge.missing(heads), *judge.duplicates(), *judge.cycles(),
         *judge.import_failures(revisions), *judge.non_revisions(revisions),
         *judge.style(list(judge.default_messages(ranked)), pending)],
        key=lambda f: f.rule_id)
    findings, _ = silence(findings, lambda f: judge.root / f.file if f.file else None)  # ignore[CM106] comments
    facts = GraphFacts(
        revisions=[RevisionInfo(revision=rid, down_revisions=list(f.down_revisions), message=f.message,
                                file=judge.rel(f.path), branch_labels=list(f.branch_labels),
                                depends_on=list(f.depends_on))
                   for rid in ranked for f in graph.files[rid]],
        heads=heads,
        bases=[r for r in ranked if not any(f.down_revisions for f in graph.files[r])],
        branch_points=[r for r in ranked if len(graph.children[r]) > 1],
        merge_points=[r for r in ranked if len({d for f in graph.files[r] for d in f.down_revisions}) > 1],
        head_branches=branches,
    )
    problems = [f for f in findings if f.severity != "info"]
    if any(f.rule_id != "CM101" for f in problems):
        summary = f"{_count(len(problems), 'problem')} in {_count(len(revisions), 'revision file')}"
    elif len(heads) > 1:
        summary = f"{len(heads)} heads: " + ", ".join(f"{h} ({judge.message(h)})" for h in heads)
    else:  # "1 head ce7400aef8c6, 3 revisions"
        named = "".join(f" {h}" for h in heads)
        summary = f"{_count(len(heads), 'head')}{named}, {_count(len(facts.revisions), 'revision')}"
    return CheckResult(name="graph", status=CheckResult.status_for(findings), summary=summary,
                       findings=findings, facts=facts)


class _Judge:
    """Turns the graph into findings; one method per rule."""

    def __init__(self, root: Path, graph: RevisionGraph, merge_command: str) -> None:
        self.root, self.graph, self.merge = root, graph, merge_command
        self.cli = merge_command.removesuffix(" merge") if merge_command.endswith(" merge") else "flask db"

    def rel(self, path: Path) -> str:
        try:
            return path.relative_to(self.root).as_posix()
        except ValueError:
            return Path(os.path.relpath(path, self.root)).as_posix()

    def message(self, rid: str) -> str:
        return self.graph.files[rid][0].message or "no message"

    def describe(self, rid: str) -> str:
        return f"  {rid}  {self.rel(self.graph.files[rid][0].path)}  {self.message(rid)}"

    def finding(self, rule: str, title: str, message: str, fix: str, rev: ScannedRevision | None = None,
                line: int | None = None, **details: object) -> Finding:
        return Finding(check="graph", rule_id=rule, severity=SEVERITY[rule], title=title, message=message,
                       fix=fix, file=self.rel(rev.path) if rev else None, line=line,
                       revision=rev.revision if rev else None, details=details)

    def heads(self, all_branches: list[HeadBranch]) -> list[Finding]:
        # Left out: heads whose own branch carries a branch label (intended, alembic's "multiple
        # bases") or starts at a missing down_revision (CM102 explains that line).
        cut = {rev.revision for rev, attr, _ in self.graph.missing if attr == "down_revision"}
        branches = [b for b in all_branches if not any(
            r in cut or any(f.branch_labels for f in self.graph.files[r]) for r in b.revisions)]
        heads = [b.head for b in branches]
        if len(heads) < 2:
            return []
        parts = [f"The history has {len(heads)} heads: {', '.join(heads)}. Revisions were added on "
                 f"separate branches that were never merged; `{self.cli} upgrade` "
                 "(target 'head') stops with \"Multiple head revisions are present\" and "
                 f"`{self.cli} migrate` refuses to add a revision, so the deploy fails."]
        for b in branches:
            fork = f"forks from {b.fork_point} ({self.message(b.fork_point)})" if b.fork_point else "no common ancestor"
            parts.append(f"\nBranch to {b.head}, {fork}:\n" + "\n".join(self.describe(r) for r in b.revisions))
        fix = f'{self.merge} -m "merge {_and(heads)}" {" ".join(heads)}'
        return [self.finding("CM101", f"{len(heads)} heads: {', '.join(heads)}", "\n".join(parts), fix,
                             heads=heads, head_branches=[b.model_dump() for b in branches])]

    def missing(self, heads: list[str]) -> Iterator[Finding]:
        lines = {h: set(self.graph.ancestors(h)) for h in heads} if self.graph.missing else {}
        for rev, attr, target in self.graph.missing:
            file, folder = self.rel(rev.path), self.rel(rev.path.parent)
            if attr == "down_revision":
                others = [h for h in heads if rev.revision not in lines[h]]
                hint = f" (e.g. the current head {_and(others, 'or')})" if others else ""
                text = (f"{file} (revision {rev.revision}) revises '{target}', but no file in {folder} "
                        "defines that revision. Probably its file was deleted or renamed, or it was "
                        "written on a branch that is not merged here. alembic fails with "
                        f"KeyError('{target}') on every command, so the deploy cannot upgrade.")
                fix = (f"Restore the file that defines '{target}' (`git log --all --oneline -S "
                       f"\"{target}\" -- {folder}` finds the commit that removed it), or re-point "
                       f"down_revision in {file} to an existing revision{hint}.")
            else:
                text = (f"{file} (revision {rev.revision}) names '{target}' in depends_on, but no file "
                        f"in {folder} has that revision id or branch label. alembic fails with "
                        f"KeyError('{target}') while it reads the history, so no command can run.")
                fix = f"Restore revision '{target}', or correct or remove it in depends_on of {file}."
            yield self.finding("CM102", f"{rev.revision}: {attr} '{target}' does not exist", text, fix,
                                    rev, _line_of(rev.path, rf"^{attr}\b"), attribute=attr, target=target)

    def duplicates(self) -> Iterator[Finding]:
        for rid, files in self.graph.files.items():
            if len(files) < 2:
                continue
            names = [self.rel(f.path) for f in files]
            children = self.graph.children[rid]
            after = f" (now {_and(children)})" if children else ""
            text = (f"{len(files)} files declare revision = '{rid}': {_and(names)}. alembic only warns "
                    f"\"Revision {rid} is present more than once\" and keeps the last file it loads, so the "
                    "other migration is silently skipped. This usually comes from copying a revision "
                    "file to start a new one.")
            fix = ("Give one of them a new id: run `python -c \"from alembic.util import rev_id; "
                   "print(rev_id())\"`, put it in its `revision = '…'` and 'Revision ID:' lines, then "
                   f"change down_revision '{rid}' to the new id in the revisions that build on that file{after}.")
            yield self.finding("CM103", f"Revision id {rid} is defined by {len(files)} files", text, fix,
                                    files[0], _line_of(files[0].path, r"^revision\b"), files=names)

    def cycles(self) -> Iterator[Finding]:
        for cycle in self.graph.cycles():
            first = self.graph.files[cycle[0]][0]
            text = ("These revisions revise each other in a loop (each one names the next as its "
                    "down_revision or depends_on):\n" + "\n".join(self.describe(r) for r in cycle[:-1])
                    + "\nalembic raises CycleDetected while it reads the history, so no command can run.")
            fix = (f"Break the loop: point down_revision of one of them (e.g. {cycle[0]} in "
                   f"{self.rel(first.path)}) to the revision it was really written after.")
            yield self.finding("CM104", f"Cycle in the revision history: {' → '.join(cycle)}", text, fix,
                                    first, _line_of(first.path, r"^down_revision\b"), cycle=cycle)

    def import_failures(self, revisions: list[ScannedRevision]) -> Iterator[Finding]:
        for rev in (r for r in revisions if r.error):
            where = self.rel(rev.path) + (f":{rev.error_line}" if rev.error_line else "")
            text = (f"Importing {where} raised {rev.error}. alembic imports every revision file before "
                    f"any command and stops at the first exception, so `{self.cli} upgrade` and the deploy "
                    "fail. Revision files run at import; an ImportError usually means a module they use "
                    "was renamed or is not installed where migrations run.")
            fix = f"Fix the error at {where}, then check that `{self.cli} history` loads."
            yield self.finding("CM105", f"{rev.path.name} fails to import: {rev.error}", text, fix,
                                    rev, rev.error_line, error=rev.error)

    def default_messages(self, ranked: list[str]) -> Iterator[Finding]:
        for rev in (f for rid in ranked for f in self.graph.files[rid] if f.message == DEFAULT_MESSAGE):
            file = self.rel(rev.path)
            text = (f"`{self.cli} migrate` was run without -m, so the docstring says \"{DEFAULT_MESSAGE}\": "
                    f"`{self.cli} history`, deploy logs and this report cannot tell what {rev.revision} does.")
            fix = (f"Replace \"{DEFAULT_MESSAGE}\" in the first docstring line of {file} with what the "
                   f"revision does (e.g. \"add user.bio\"); next time run `{self.cli} migrate -m \"…\"`.")
            yield self.finding("CM106", f"{rev.revision} has the default message \"{DEFAULT_MESSAGE}\"",
                                    text, fix, rev, _line_of(rev.path, re.escape(DEFAULT_MESSAGE)))

    def style(self, found: list[Finding], pending: Collection[str] | None) -> list[Finding]:
        """Style findings of the ``pending`` revisions; on a full run (None) one info finding per rule."""
        if pending is not None:
            return [f for f in found if f.revision in pending]
        summaries = []
        for rule, trait in STYLE_RULES.items():
            if not (hits := [f for f in found if f.rule_id == rule]):
                continue
            n = len(hits)
            listed = "\n".join(self.describe(f.revision) for f in hits[:10] if f.revision)
            more = f"\n  … and {n - 10} more" if n > 10 else ""
            text = (f"{_count(n, 'revision')} of the history {'has' if n == 1 else 'have'} {trait}:\n{listed}{more}\n"
                    "These are history: a pull request run (`--base`, automatic in "
                    "GitHub and GitLab pull requests) judges only the revisions it adds.")
            summaries.append(Finding(
                check="graph", rule_id=rule, severity="info", message=text,
                details={"revisions": [f.revision for f in hits]},
                title=f"{_count(n, 'revision')} {'keeps' if n == 1 else 'keep'} {trait}",
                fix=f"Nothing to do for old revisions; `rules: {{{rule}: off}}` hides this line."))
        return summaries

    def non_revisions(self, revisions: list[ScannedRevision]) -> Iterator[Finding]:
        for rev in (r for r in revisions if r.revision is None and not r.error):
            text = (f"{rev.path.name} has no `revision` attribute. alembic loads every .py file in the versions "
                    f"directory as a revision and stops with \"Could not determine revision id from "
                    f"filename {rev.path.name}\", so every `{self.cli}` command fails.")
            fix = (f"Move {rev.path.name} out of {self.rel(rev.path.parent)} (e.g. into the app package), "
                   "or, if it is a revision, restore its `revision = '…'` line.")
            yield self.finding("CM107", f"{rev.path.name} is not a revision script", text, fix, rev)


def _read(path: Path) -> str | None:
    try:
        return path.read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None


def _line_of(path: Path, pattern: str) -> int | None:
    text = _read(path)
    match = re.search(pattern, text, re.M) if text is not None else None
    return text.count("\n", 0, match.start()) + 1 if match else None


def _count(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def _and(items: Sequence[str], word: str = "and") -> str:
    return ", ".join(items[:-1]) + f" {word} {items[-1]}" if len(items) > 1 else "".join(items)
