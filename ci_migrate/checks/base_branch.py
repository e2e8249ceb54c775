"""The base branch's migration history, read from git without a checkout, compared with this branch.

Revision files of the base are listed with ``git ls-tree`` (with their blob ids); only those whose
blob differs from the working tree's file at the same path are read (``git cat-file --batch``) and
parsed statically with :mod:`ast` (base code is never imported). A file with the same blob is the
working tree's file, which the probe's scan already read: a pull request's cost grows with what it
changes, not with the length of the history. Comparing them with the revisions of the
working tree (the graph scan) tells which revisions this branch adds or modifies, whether it
deletes merged ones (CM401), and whether merging it would leave two heads because the base moved
on since the branch was made (CM402, alembic's "Multiple head revisions are present").
"""

from __future__ import annotations

import ast
import contextlib
import difflib
import hashlib
import re
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from ci_migrate.errors import EnvironmentProblem, UsageError
from ci_migrate.report import Finding

BASE_ENV = ("GITHUB_BASE_REF", "CI_MERGE_REQUEST_TARGET_BRANCH_NAME")
_REVISION_FILE = re.compile(r"(?!\.#|__init__)(.*\.py)$")  # alembic's _only_source_rev_file


def default_base(env: Any) -> str | None:
    """``origin/<name>`` from ``GITHUB_BASE_REF`` (pull requests) or ``CI_MERGE_REQUEST_TARGET_BRANCH_NAME``
    (GitLab merge requests); None outside a pull/merge request."""
    for name in BASE_ENV:
        value = (env.get(name) or "").strip()
        if value:
            return f"origin/{value}"
    return None


def git(repo: Path, *args: str, input: bytes | None = None, check: bool = True) -> bytes:
    """Run ``git args`` in ``repo`` and return stdout. EnvironmentProblem when git is missing;
    ``subprocess.CalledProcessError`` on failure when ``check``."""
    try:
        proc = subprocess.run(["git", *args], cwd=repo, input=input, capture_output=True, check=False)
    except FileNotFoundError:
        raise EnvironmentProblem("--base needs git, which is not installed in this environment.") from None
    if check and proc.returncode != 0:
        raise subprocess.CalledProcessError(proc.returncode, ["git", *args], proc.stdout, proc.stderr)
    return proc.stdout


@dataclass
class BaseRevision:
    """A revision file as committed on a git ref: ids, message and a fingerprint of its code.

    ``text`` and ``fingerprint`` are None for a file whose blob is the working tree's (not read:
    it is the same file); ``blob`` is its git blob id when known.
    """

    revision: str
    down_revisions: tuple[str, ...]
    path: str  # relative to the repository root
    text: str | None
    fingerprint: str | None
    message: str | None = None
    blob: str | None = None


def fingerprint(text: str) -> str:
    """A hash of the code of a revision file, blind to comments, docstrings and formatting (so
    fixing a message is not "modifying" a revision); the raw text's hash when it does not parse."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return hashlib.sha256(text.encode()).hexdigest()
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, (ast.Module, ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) and body:
            first = body[0]
            value = first.value if isinstance(first, ast.Expr) else None
            if isinstance(value, ast.Constant) and isinstance(value.value, str):
                node.body = body[1:] or [ast.Pass()]
    return hashlib.sha256(ast.dump(tree).encode()).hexdigest()


def parse_revision(text: str, path: str) -> BaseRevision | None:
    """``revision``/``down_revision`` and the message of a revision file, by reading its literals
    (plain or annotated assignments); None when it has no literal ``revision``."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return None
    values: dict[str, Any] = {}
    for node in tree.body:
        target, value = None, None
        if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
            target, value = node.targets[0].id, node.value
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name) and node.value is not None:
            target, value = node.target.id, node.value
        if target in ("revision", "down_revision") and target not in values and value is not None:
            try:
                values[target] = ast.literal_eval(value)
            except (ValueError, TypeError, SyntaxError, RecursionError):
                continue
    revision = values.get("revision")
    if not isinstance(revision, str):
        return None
    down = values.get("down_revision")
    downs = tuple(str(d) for d in (down if isinstance(down, (tuple, list)) else (down,)) if d)
    doc = ast.get_docstring(tree) or ""
    message = re.split("\n\n", doc.strip())[0] or None
    return BaseRevision(revision, downs, path, text, fingerprint(text), message)


class GitTree:
    """Revision files of one commit of the repository holding the project. ``parsed`` counts the
    files read and parsed so far (the others had the working tree's blob)."""

    def __init__(self, repo: Path, commit: str):
        self.repo, self.commit = repo, commit
        self.parsed = 0

    def listing(self, directories: Sequence[str], recursive: bool = False) -> dict[str, str]:
        """``{repository-relative path: blob id}`` of the ``.py`` files in ``directories``
        (repository-relative, POSIX), as alembic would find them: directly in them, or in their
        subdirectories too with ``recursive`` (alembic.ini's ``recursive_version_locations``;
        ``__pycache__`` left out). From ``git ls-tree``."""
        found: dict[str, str] = {}
        flags = ["-r"] if recursive else []
        for directory in directories:
            out = git(self.repo, "ls-tree", "-z", *flags, self.commit, "--", directory.rstrip("/") + "/")
            for entry in out.decode("utf-8", "replace").split("\0"):
                meta, _, path = entry.partition("\t")
                fields = meta.split()
                if (path and len(fields) == 3 and fields[1] == "blob" and _REVISION_FILE.match(path.rsplit("/", 1)[-1])
                        and "__pycache__" not in path.split("/")):
                    found[path] = fields[2]
        return found

    def revisions(self, directories: Sequence[str], recursive: bool = False,
                  worktree: dict[str, BranchRevision] | None = None) -> dict[str, BaseRevision]:
        """``{revision id: BaseRevision}`` for the revision files of :meth:`listing`.

        ``worktree`` maps repository-relative paths to the working tree's revisions (with their
        ``blob``): a base file with the same blob is taken from there, unread; the others are read in
        one ``git cat-file --batch`` and parsed."""
        listing = self.listing(directories, recursive)
        worktree = worktree or {}
        found: dict[str, BaseRevision] = {}
        unread = []
        for path, blob in listing.items():
            mine = worktree.get(path)
            if mine is not None and mine.blob == blob:
                found.setdefault(mine.revision, BaseRevision(mine.revision, mine.down_revisions, path, None, None,
                                                             mine.message, blob))
            else:
                unread.append(path)
        self.parsed += len(unread)
        for path, text in zip(unread, self._read(unread)):
            parsed = parse_revision(text, path) if text is not None else None
            if parsed is not None:
                parsed.blob = listing[path]
                found.setdefault(parsed.revision, parsed)
        return found

    def _read(self, paths: list[str]) -> list[str | None]:
        """File texts through one ``git cat-file --batch``."""
        if not paths:
            return []
        data = git(self.repo, "cat-file", "--batch", input="".join(f"{self.commit}:{p}\n" for p in paths).encode())
        texts: list[str | None] = []
        pos = 0
        for _ in paths:
            end = data.index(b"\n", pos)
            header = data[pos:end].split()
            pos = end + 1
            if len(header) < 3 or header[1] == b"missing":
                texts.append(None)
                continue
            size = int(header[2])
            texts.append(data[pos:pos + size].decode("utf-8", "replace"))
            pos += size + 1
        return texts


def open_base(root: Path, ref: str) -> tuple[Path, str, str | None]:
    """Find the git repository of ``root`` and resolve ``ref``.

    Returns ``(repository root, base commit, merge-base of HEAD and the base or None)``.
    Raises UsageError (exit 2) when ``root`` is not in a git work tree or ``ref`` does not exist in
    this clone (with how to fetch it).
    """
    try:
        top = Path(git(root, "rev-parse", "--show-toplevel").decode().strip())
    except subprocess.CalledProcessError:
        raise UsageError(f"--base {ref}: {root} is not inside a git work tree, so there is no base branch "
                         "to compare with. Run ci-migrate in a git checkout, or leave out --base.") from None
    try:
        commit = git(top, "rev-parse", "--verify", "--quiet", f"{ref}^{{commit}}").decode().strip()
    except subprocess.CalledProcessError:
        branch = ref.split("/", 1)[1] if ref.startswith("origin/") else ref
        raise UsageError(
            f"--base {ref}: no such branch or commit in this clone ({top}).\n"
            f"  Fetch it first, e.g.: git fetch origin {branch}:refs/remotes/origin/{branch}\n"
            "  In GitHub Actions use actions/checkout with `fetch-depth: 0` (a shallow clone has no base "
            "branch); in GitLab CI set GIT_DEPTH: 0."
        ) from None
    merge_base = git(top, "merge-base", "HEAD", commit, check=False).decode().strip() or None
    return top, commit, merge_base


@dataclass
class BranchRevision:
    """A revision of the working tree (from the graph scan); ``blob`` is the git blob id its file
    would have (:func:`worktree_blobs`), None when unknown."""

    revision: str
    down_revisions: tuple[str, ...]
    path: Path  # absolute
    message: str | None = None
    blob: str | None = None


def worktree_blobs(repo: Path, paths: Iterable[Path]) -> dict[Path, str]:
    """``{path: blob id}`` for working-tree files inside ``repo`` (``git hash-object --stdin-paths``:
    the id git would store, with the repository's filters); files outside it are left out."""
    top = repo.resolve()
    inside = []
    for path in paths:
        with contextlib.suppress(ValueError):
            if "\n" not in str(path):
                inside.append((path, Path(path).resolve().relative_to(top).as_posix()))
    if not inside:
        return {}
    out = git(repo, "hash-object", "--stdin-paths", input="".join(f"{rel}\n" for _, rel in inside).encode())
    return {path: blob for (path, _), blob in zip(inside, out.decode().split())}


@dataclass
class Comparison:
    """This branch's revisions against the base: ids in upgrade order where it matters."""

    ref: str
    base_heads: list[str] = field(default_factory=list)
    new: list[str] = field(default_factory=list)
    modified: dict[str, BaseRevision] = field(default_factory=dict)  # id -> the merged version
    deleted: list[BaseRevision] = field(default_factory=list)
    heads_after_merge: list[str] = field(default_factory=list)

    def status(self, revision: str) -> str:
        return "new" if revision in self.new else "modified" if revision in self.modified else "pending"


def compare(ref: str, branch: Iterable[BranchRevision], base: dict[str, BaseRevision],
            merge_base: dict[str, BaseRevision] | None) -> Comparison:
    """Which revisions the branch adds, modifies (code differs from the version at the merge-base,
    else the base) and deletes (present at the merge-base and the base, gone here); the heads the
    history would have once the branch is merged into the base (alembic's heads: no children)."""
    mine = {b.revision: b for b in branch}
    result = Comparison(ref, base_heads=_heads({r: b.down_revisions for r, b in base.items()}))
    for rid, rev in mine.items():
        if rid not in base:
            result.new.append(rid)
            continue
        merged = (merge_base or {}).get(rid) or base[rid]
        if merged.fingerprint is None or (rev.blob is not None and rev.blob == merged.blob):
            continue  # the same blob as the working tree's file
        if fingerprint(_read(rev.path)) != merged.fingerprint:
            result.modified[rid] = merged
    if merge_base is not None:
        result.deleted = [b for rid, b in base.items() if rid in merge_base and rid not in mine]
    gone = {b.revision for b in result.deleted}  # the merge deletes them from the base too
    union = {r: b.down_revisions for r, b in base.items() if r not in gone}
    union.update({r: b.down_revisions for r, b in mine.items()})
    result.heads_after_merge = _heads(union)
    return result


def _heads(parents: dict[str, tuple[str, ...]]) -> list[str]:
    children = {p for downs in parents.values() for p in downs}
    return sorted(r for r in parents if r not in children)


def _read(path: Path) -> str:
    return path.read_text(encoding="utf-8", errors="replace")


def changed_line(old: str, new: str) -> int | None:
    """1-based line of the first change from ``old`` to ``new`` (in ``new``)."""
    matcher = difflib.SequenceMatcher(None, old.splitlines(), new.splitlines(), autojunk=False)
    for tag, _i1, _i2, j1, _j2 in matcher.get_opcodes():
        if tag != "equal":
            return j1 + 1
    return None


def findings(comparison: Comparison, branch: dict[str, BranchRevision], rel: Any, cli: str) -> list[Finding]:
    """CM401 (merged revision modified or deleted) and CM402 (merging leaves two heads).

    ``rel`` turns an absolute path into the report's repository-relative form; ``cli`` is how the
    app spells ``flask db``.
    """
    out: list[Finding] = []
    ref = comparison.ref
    for rid, merged in comparison.modified.items():
        path = branch[rid].path
        out.append(Finding(
            check="plan", rule_id="CM401", severity="error", revision=rid, file=rel(path),
            line=changed_line(merged.text, _read(path)),
            title=f"revision {rid} is already on {ref} and this branch changes its code",
            message=(f"{rel(path)} (revision {rid}, \"{merged.message or 'no message'}\") is merged into {ref}. "
                     f"Databases that already ran {rid} never run it again, so the change reaches only fresh "
                     "databases: environments end up with different schemas."),
            fix=(f"Restore the merged version (`git checkout {ref} -- {merged.path}`) and put the change in a new "
                 f"revision (`{cli} migrate -m \"…\"`, or `{cli} revision` for hand-written operations)."),
        ))
    for merged in comparison.deleted:
        out.append(Finding(
            check="plan", rule_id="CM401", severity="error", revision=merged.revision, file=merged.path,
            title=f"revision {merged.revision} is on {ref} but this branch deletes its file",
            message=(f"{merged.path} (\"{merged.message or 'no message'}\") is merged into {ref}. Databases at "
                     f"{merged.revision} or later fail every `{cli}` command with \"Can't locate revision "
                     f"identified by '{merged.revision}'\" once this branch is deployed."),
            fix=f"Restore it: `git checkout {ref} -- {merged.path}`.",
        ))
    new = [r for r in comparison.heads_after_merge if r in comparison.new]
    theirs = [r for r in comparison.heads_after_merge if r not in branch]
    if new and theirs:
        out.append(_two_heads(comparison, branch, new, theirs, rel, cli))
    return out


def _two_heads(comparison: Comparison, branch: dict[str, BranchRevision], new: list[str], theirs: list[str],
               rel: Any, cli: str) -> Finding:
    ref = comparison.ref
    roots = [r for r in comparison.new if not any(d in comparison.new for d in branch[r].down_revisions)]
    first = roots[0] if roots else new[0]
    downs = ", ".join(branch[first].down_revisions) or "(none)"
    heads = list(dict.fromkeys(theirs + new))
    target = repr(theirs[0]) if len(theirs) == 1 else repr(tuple(theirs))
    return Finding(
        check="plan", rule_id="CM402", severity="error", revision=first, file=rel(branch[first].path),
        line=_line_of(branch[first].path, r"^down_revision\b"),
        title=f"merging into {ref} will leave two heads: {', '.join(heads)}",
        message=(f"{ref} moved on since this branch was made: its head is now {', '.join(theirs)}, but this "
                 f"branch's first new revision {first} revises {downs}. After the merge the history has "
                 f"{len(heads)} heads ({', '.join(heads)}); `{cli} upgrade` stops with \"Multiple head "
                 f"revisions are present\" and the deploy fails."),
        fix=(f"If {first} has not run on any shared database yet, re-point it: in {rel(branch[first].path)} set "
             f"down_revision = {target} and the \"Revises:\" line. Otherwise merge {ref} into this branch and "
             f"add a merge revision: `{cli} merge -m \"merge heads\" {' '.join(heads)}`."),
        details={"heads_after_merge": heads, "base_heads": comparison.base_heads},
    )


def _line_of(path: Path, pattern: str) -> int | None:
    text = _read(path)
    match = re.search(pattern, text, re.M)
    return text.count("\n", 0, match.start()) + 1 if match else None


def author(repo: Path, path: Path) -> str | None:
    """Who last committed ``path`` (``git log -1 --format=%an``); None when it is not committed."""
    try:
        out = git(repo, "log", "-1", "--format=%an", "--", str(path), check=False)
    except EnvironmentProblem:
        return None
    return out.decode("utf-8", "replace").strip() or None
