"""Inline suppression: ``# ci-migrate: ignore[CM502] backfilled in #412`` in a revision file.

The comment form of Squawk's ``-- squawk-ignore`` and the ``# noqa``-style comments of the Alembic
linters. Where it counts:

- at the end of a line of code: that statement (every line of it, when it spans several; a
  ``with op.batch_alter_table(…)`` block with its body);
- on a line of its own inside a function: the next statement, the same way;
- on a line of its own before the first ``def``, or on a line of the module docstring (the ``#``
  is optional there): the whole revision.

Several ids may be listed (``ignore[CM502, CM503]``); the rest of the line is the reason. A silenced
finding stays in the report at severity info, its title ending in "silenced inline: <reason>"; a
suppression without a reason or naming an unknown rule id is itself a finding (CM515).
"""

from __future__ import annotations

import ast
import io
import re
import tokenize
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

from ci_migrate.report import Finding
from ci_migrate.rule_ids import RULE_IDS

_COMMENT = re.compile(r"#\s*ci-migrate:\s*ignore\[(?P<ids>[^\]]*)\]\s*(?P<reason>.*)$")
_DOCSTRING_LINE = re.compile(r"^\s*(?:#\s*)?ci-migrate:\s*ignore\[(?P<ids>[^\]]*)\]\s*(?P<reason>.*)$")


@dataclass(frozen=True)
class Suppression:
    """One rule id named by one comment: ``line`` (1-based) is where the comment is; ``reason`` is
    the text after the brackets (``""`` when none was given)."""

    rule_id: str
    reason: str
    line: int


@dataclass
class Suppressions:
    """The suppressions of one revision file: for the whole file, and per covered line."""

    whole: dict[str, Suppression] = field(default_factory=dict)
    by_line: dict[int, dict[str, Suppression]] = field(default_factory=dict)
    every: list[Suppression] = field(default_factory=list)  # file order, for checking them

    def find(self, rule_id: str, line: int | None) -> Suppression | None:
        """The suppression covering ``rule_id`` at ``line`` (None: the revision as a whole), if any."""
        if rule_id in self.whole:
            return self.whole[rule_id]
        return self.by_line.get(line, {}).get(rule_id) if line is not None else None


def parse(source: str) -> Suppressions:
    """The ``ci-migrate: ignore[…]`` comments of a revision file's ``source`` (see the module doc).

    Comments are found with :mod:`tokenize` and statements with :mod:`ast`, so text inside strings
    never counts; a file that does not parse falls back to reading the comment text line by line.
    """
    lines = source.splitlines()
    try:
        tree: ast.Module | None = ast.parse(source)
    except (SyntaxError, ValueError):
        tree = None
    found = Suppressions()
    docstring = _docstring_lines(tree)
    first_def = next((n.lineno for n in (tree.body if tree else []) if isinstance(n, _DEFS)), None)
    if first_def is None:
        first_def = next((i + 1 for i, t in enumerate(lines) if t.startswith(("def ", "async def "))), len(lines) + 1)
    spans = _statement_spans(tree) if tree else []
    for number, text, own_line in _comments(source, lines):
        if not (match := _COMMENT.search(text)):
            continue
        items = _items(match, number)
        if own_line and number < first_def:
            found.whole.update((s.rule_id, s) for s in items)
        else:
            code = (j + 1 for j in range(number, len(lines))
                    if lines[j].strip() and not lines[j].lstrip().startswith("#"))
            start = next(code, number) if own_line else number
            for covered in _span(spans, start):
                found.by_line.setdefault(covered, {}).update((s.rule_id, s) for s in items)
        found.every += items
    for number in docstring:
        if match := _DOCSTRING_LINE.match(lines[number - 1]):
            items = _items(match, number)
            found.whole.update((s.rule_id, s) for s in items)
            found.every += items
    found.every.sort(key=lambda s: s.line)
    return found


_DEFS = (ast.FunctionDef, ast.AsyncFunctionDef)


def _items(match: re.Match[str], line: int) -> list[Suppression]:
    reason = match["reason"].strip()
    return [Suppression(i.strip().upper(), reason, line) for i in match["ids"].split(",") if i.strip()]


def _comments(source: str, lines: list[str]) -> Iterable[tuple[int, str, bool]]:
    """``(line, comment text, alone on its line)`` for every ``#`` comment."""
    try:
        for tok in tokenize.generate_tokens(io.StringIO(source).readline):
            if tok.type == tokenize.COMMENT:
                row, col = tok.start
                yield row, tok.string, not lines[row - 1][:col].strip()
    except (tokenize.TokenError, SyntaxError):
        for number, text in enumerate(lines, 1):
            if (at := text.find("#")) >= 0:
                yield number, text[at:], not text[:at].strip()


def _docstring_lines(tree: ast.Module | None) -> range:
    first = tree.body[0] if tree and tree.body else None
    if isinstance(first, ast.Expr) and isinstance(first.value, ast.Constant) and isinstance(first.value.value, str):
        return range(first.lineno, (first.end_lineno or first.lineno) + 1)
    return range(0)


def _statement_spans(tree: ast.Module) -> list[tuple[int, int]]:
    """``(first, last)`` line of each statement; a compound one (``with op.batch_alter_table(…)``,
    ``def``) spans its body too."""
    return [(n.lineno, n.end_lineno or n.lineno) for n in ast.walk(tree) if isinstance(n, ast.stmt)]


def _span(spans: list[tuple[int, int]], line: int) -> range:
    """The lines of the innermost statement holding ``line`` (just ``line`` outside any)."""
    holding = [s for s in spans if s[0] <= line <= s[1]]
    first, last = min(holding, key=lambda s: s[1] - s[0]) if holding else (line, line)
    return range(first, last + 1)


def read(path: Path | None) -> Suppressions:
    """:func:`parse` of the file at ``path``; nothing for None or an unreadable file."""
    if path is None:
        return Suppressions()
    try:
        return parse(Path(path).read_text(encoding="utf-8", errors="replace"))
    except OSError:
        return Suppressions()


def silence(findings: Iterable[Finding], path_of: Callable[[Finding], Path | None]) -> tuple[list[Finding], int]:
    """Apply the inline suppressions of each finding's revision file (``path_of(finding)``, absolute).

    A covered finding is kept at severity ``info``: its title gains "— silenced inline: <reason>"
    and ``details["silenced"]`` holds ``{"reason", "line", "severity"}`` (the comment's line and the
    severity it had). Returns ``(findings in the same order, how many were silenced)``.
    """
    cache: dict[Path | None, Suppressions] = {}
    out, silenced = [], 0
    for finding in findings:
        path = path_of(finding)
        if path not in cache:
            cache[path] = read(path)
        hit = cache[path].find(finding.rule_id, finding.line)
        if hit is None or finding.details.get("silenced"):
            out.append(finding)
            continue
        silenced += 1
        reason = hit.reason or "no reason given"
        out.append(finding.model_copy(update={
            "severity": "info", "fix": None, "title": f"{finding.title} — silenced inline: {reason}",
            "details": {**finding.details, "silenced": {"reason": hit.reason, "line": hit.line,
                                                       "severity": finding.severity}}}))
    return out, silenced


def _near(rule_id: str) -> str:
    """`` — did you mean CM509?`` for a transposed or O-for-0 rule id, else ``''``."""
    typed = rule_id.replace("O", "0")
    near = [typed] if typed in RULE_IDS else sorted(r for r in RULE_IDS if sorted(r) == sorted(typed))
    return f" — did you mean {' or '.join(near)}?" if near else ""


def is_silenced(finding: Finding) -> bool:
    """True for a finding :func:`silence` kept at info; configured severities do not raise it again."""
    return bool(finding.details.get("silenced"))


def check_comments(path: Path | None, file: str | None, revision: str | None, check: str = "lint") -> list[Finding]:
    """CM515 for each suppression in the revision file at ``path`` that gives no reason or names a rule
    id ci-migrate does not have (:data:`~ci_migrate.rule_ids.RULE_IDS`); ``file`` is ``path`` relative
    to the repository root, as findings show it."""
    findings = []
    for s in read(path).every:
        problems = {}  # short form (title) → sentence (message)
        if s.rule_id not in RULE_IDS:
            problems["names no ci-migrate rule"] = (
                f"names {s.rule_id!r}, which is not a ci-migrate rule, so it silences nothing"
                f"{_near(s.rule_id)}")
        if not s.reason:
            problems["gives no reason"] = "gives no reason"
        if not problems:
            continue
        where = f"{file}:{s.line}" if file else f"line {s.line}"
        findings.append(Finding(
            check=check, rule_id="CM515", severity="warning", file=file, line=s.line, revision=revision,
            title=f"{revision + ': ' if revision else ''}ignore[{s.rule_id}] {' and '.join(problems)}",
            message=(f"The suppression comment at {where} {'; it '.join(problems.values())}. A reason tells "
                     "the next reader why the risk is acceptable here; a wrong rule id leaves the finding it "
                     "meant to silence in place."),
            fix="Write it as `# ci-migrate: ignore[CM502] <why this is safe here>`, with a rule id from "
                "docs/rules/.", details={"rule": s.rule_id, "reason": s.reason}))
    return findings
