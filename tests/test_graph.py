"""The graph check on real revision files written into tmp_path (no database)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from flask import Flask

from ci_migrate.checks.graph import ScannedRevision, analyze, from_probe
from ci_migrate.probe.revisions import scan_files
from ci_migrate.report import CheckResult


def scan_revision_files(dirs: list[Path], recursive: bool = False) -> list[ScannedRevision]:
    """The probe's scan of revision files (run in this process), as the graph check reads it."""
    return from_probe(scan_files(dirs, recursive))

# Realistic ids, as alembic.util.rev_id() makes them.
A, B, C, D, E, F = "1a2b3c4d5e6f", "2b3c4d5e6f70", "3c4d5e6f7081", "4d5e6f708192", "5e6f708192a3", "6f708192a3b4"


def write_rev(versions: Path, rev: str, down: str | tuple[str, ...] | None, message: str = "add user table",
              *, labels: object = None, depends: object = None, prelude: str = "",
              body: str = "pass", name: str | None = None) -> Path:
    """Write a revision file the way `flask db migrate` renders Flask-Migrate's script.py.mako."""
    revises = ", ".join(down) if isinstance(down, tuple) else (down or "")
    text = f'''"""{message}

Revision ID: {rev}
Revises: {revises}
Create Date: 2024-05-01 10:00:00.000000

"""
from alembic import op
import sqlalchemy as sa
{prelude}

# revision identifiers, used by Alembic.
revision = {rev!r}
down_revision = {down!r}
branch_labels = {labels!r}
depends_on = {depends!r}


def upgrade():
    {body}


def downgrade():
    pass
'''
    path = versions / (name or f"{rev}_{message.replace(' ', '_').replace('.', '_')}.py")
    path.write_text(text)
    return path


@pytest.fixture
def versions(tmp_path: Path) -> Path:
    path = tmp_path / "migrations" / "versions"
    path.mkdir(parents=True)
    return path


def alembic_view(versions: Path) -> tuple[list[str], list[str], list[str], list[str]]:
    """Heads, bases, branch points and merge points as alembic's own ScriptDirectory sees them."""
    from alembic.config import Config
    from alembic.script import ScriptDirectory

    config = Config()
    config.set_main_option("script_location", str(versions.parent))
    scripts = list(ScriptDirectory.from_config(config).walk_revisions())
    return (sorted(s.revision for s in scripts if s.is_head), sorted(s.revision for s in scripts if s.is_base),
            sorted(s.revision for s in scripts if s.is_branch_point),
            sorted(s.revision for s in scripts if s.is_merge_point))


def same_as_alembic(result: CheckResult, versions: Path) -> bool:
    facts = result.facts
    ours = (facts.heads, facts.bases, facts.branch_points, facts.merge_points)
    return tuple(sorted(x) for x in ours) == alembic_view(versions)


def check(versions: Path, **kw: str) -> CheckResult:
    root = versions.parent.parent
    return analyze(scan_revision_files([versions]), root, **kw)


def rules(result: CheckResult) -> list[str]:
    return [f.rule_id for f in result.findings]


def test_clean_linear_history(versions: Path) -> None:
    # File names sort against the history (C < B < A would be wrong order): facts must be base → head.
    write_rev(versions, A, None, "initial tables", name="c_initial.py")
    write_rev(versions, B, A, "add post table", name="b_post.py")
    write_rev(versions, C, B, "add post.summary", name="a_summary.py")
    result = check(versions)
    assert result.findings == [] and result.status == "passed"
    assert result.summary == f"1 head {C}, 3 revisions"
    facts = result.facts
    assert [r.revision for r in facts.revisions] == [A, B, C]
    assert facts.revisions[0].file == "migrations/versions/c_initial.py"
    assert facts.revisions[1].message == "add post table" and facts.revisions[1].down_revisions == [A]
    assert (facts.heads, facts.bases, facts.branch_points, facts.merge_points) == ([C], [A], [], [])
    assert facts.head_branches == []
    assert same_as_alembic(result, versions)


def test_two_heads_fork_point_and_merge_command(versions: Path) -> None:
    write_rev(versions, A, None, "initial tables")
    write_rev(versions, B, A, "add post table")
    write_rev(versions, C, B, "add post.summary")
    write_rev(versions, D, C, "add post.slug")
    write_rev(versions, E, B, "add tag table")
    result = check(versions)
    assert rules(result) == ["CM101"] and result.status == "failed"
    finding = result.findings[0]
    assert finding.severity == "error"
    assert finding.fix == f'flask db merge -m "merge {D} and {E}" {D} {E}'
    assert result.summary == f"2 heads: {D} (add post.slug), {E} (add tag table)"
    facts = result.facts
    assert facts.heads == [D, E] and facts.branch_points == [B]
    assert [(b.head, b.revisions, b.fork_point) for b in facts.head_branches] == [
        (D, [D, C], B), (E, [E], B)]
    assert finding.details["heads"] == [D, E]
    assert same_as_alembic(result, versions)
    assert finding.details["head_branches"][0] == {"head": D, "revisions": [D, C], "fork_point": B}
    # The message walks each branch back to the fork point, with id, file and message.
    assert f"Branch to {D}, forks from {B} (add post table):" in finding.message
    assert f"{C}  migrations/versions/{C}_add_post_summary.py  add post.summary" in finding.message
    custom = check(versions, merge_command="flask database merge")
    assert custom.findings[0].fix == f'flask database merge -m "merge {D} and {E}" {D} {E}'
    assert "`flask database upgrade`" in custom.findings[0].message


def test_three_heads_merge_all(versions: Path) -> None:
    write_rev(versions, A, None, "initial tables")
    write_rev(versions, B, A, "add post table")
    write_rev(versions, C, A, "add tag table")
    write_rev(versions, D, B, "add comment table")
    write_rev(versions, E, B, "add like table")
    result = check(versions)
    assert rules(result) == ["CM101"]
    assert result.facts.heads == [C, D, E]
    assert result.findings[0].fix == f'flask db merge -m "merge {C}, {D} and {E}" {C} {D} {E}'
    assert {b.head: b.fork_point for b in result.facts.head_branches} == {C: A, D: B, E: B}
    assert sorted(result.facts.branch_points) == sorted([A, B])
    assert same_as_alembic(result, versions)


def test_heads_without_common_ancestor(versions: Path) -> None:
    write_rev(versions, A, None, "initial tables")
    write_rev(versions, B, None, "audit tables")
    result = check(versions)
    assert [(b.head, b.revisions, b.fork_point) for b in result.facts.head_branches] == [
        (A, [A], None), (B, [B], None)]
    assert "no common ancestor" in result.findings[0].message


def test_missing_parent(versions: Path) -> None:
    write_rev(versions, A, None, "initial tables")
    write_rev(versions, B, A, "add post table")
    child = write_rev(versions, D, C, "add post.slug")  # C's file was deleted
    result = check(versions)
    assert rules(result) == ["CM102"]  # no merge advice for a line cut off from the history
    missing = result.findings[0]
    assert (missing.file, missing.revision, missing.line) == (f"migrations/versions/{child.name}", D, 14)
    assert missing.details == {"attribute": "down_revision", "target": C}
    assert "deleted or renamed" in missing.message and "not merged" in missing.message
    assert f"re-point down_revision in migrations/versions/{child.name}" in missing.fix
    assert f"e.g. the current head {B})" in missing.fix
    # heads still come from the files that loaded
    assert result.facts.heads == [B, D] and result.facts.bases == [A]
    assert result.summary == "1 problem in 3 revision files"


def test_missing_depends_on_target(versions: Path) -> None:
    write_rev(versions, A, None, "initial tables")
    write_rev(versions, B, A, "add post table", depends=("0badc0ffee00",))
    result = check(versions)
    assert rules(result) == ["CM102"]
    assert result.findings[0].details == {"attribute": "depends_on", "target": "0badc0ffee00"}
    assert result.findings[0].line == 16
    assert result.facts.heads == [B]


def test_duplicate_revision_id_names_both_files(versions: Path) -> None:
    write_rev(versions, A, None, "initial tables")
    first = write_rev(versions, B, A, "add post table")
    second = write_rev(versions, B, B, "add tag table", name=f"{B}_add_tag_table.py")  # copied file
    write_rev(versions, C, B, "add comment table")
    result = check(versions)
    assert rules(result) == ["CM103"]
    dup = result.findings[0]
    names = [f"migrations/versions/{p.name}" for p in (first, second)]
    assert dup.details["files"] == names and all(n in dup.message for n in names)
    assert "rev_id()" in dup.fix and C in dup.fix
    assert [r.revision for r in result.facts.revisions] == [A, B, B, C]


def test_full_cycle(versions: Path) -> None:
    write_rev(versions, A, C, "initial tables")
    write_rev(versions, B, A, "add post table")
    write_rev(versions, C, B, "add tag table")
    result = check(versions)
    assert rules(result) == ["CM104"]
    cycle = result.findings[0]
    assert cycle.details["cycle"] == [A, C, B, A]
    assert cycle.title == f"Cycle in the revision history: {A} → {C} → {B} → {A}"
    assert result.facts.heads == [] and result.facts.bases == []
    assert [r.revision for r in result.facts.revisions] == [A, B, C]  # file order


def test_isolated_cycle(versions: Path) -> None:
    write_rev(versions, A, None, "initial tables")
    write_rev(versions, B, A, "add post table")
    write_rev(versions, E, F, "add x table")
    write_rev(versions, F, E, "add y table")
    result = check(versions)
    assert rules(result) == ["CM104"]
    assert result.findings[0].details["cycle"] == [E, F, E]
    assert result.facts.heads == [B]


def test_self_cycle(versions: Path) -> None:
    write_rev(versions, A, A, "initial tables")
    assert check(versions).findings[0].details["cycle"] == [A, A]


def test_syntax_error_line(versions: Path) -> None:
    write_rev(versions, A, None, "initial tables")
    broken = write_rev(versions, B, A, "add post table", body="op.add_column('post', sa.Column('x', sa.Text()")
    write_rev(versions, C, B, "add tag table")
    result = check(versions)
    assert rules(result) == ["CM105"]  # its child does not also report a missing parent
    failure = result.findings[0]
    assert failure.file == f"migrations/versions/{broken.name}"
    assert failure.line == 20 and failure.details["error"].startswith("SyntaxError:")
    assert failure.revision == B  # recovered from the literal `revision = …` line
    assert result.facts.heads == [C]


def test_import_error_line(versions: Path) -> None:
    write_rev(versions, A, None, "initial tables")
    write_rev(versions, B, A, "add post table", prelude="from legacyblog.types import Slug")
    scanned = scan_revision_files([versions])
    assert scanned[1].error == "ModuleNotFoundError: No module named 'legacyblog'"
    assert scanned[1].error_line == 10 and scanned[1].revision is None
    result = analyze(scanned, versions.parent.parent)
    assert rules(result) == ["CM105"] and result.findings[0].line == 10
    assert "ModuleNotFoundError: No module named 'legacyblog'" in result.findings[0].message


def test_error_raised_in_a_function_called_at_import(versions: Path) -> None:
    prelude = "def boom():\n    raise ValueError('bad\\nvalue')\n\nboom()"
    write_rev(versions, A, None, "initial tables", prelude=prelude)
    scanned = scan_revision_files([versions])[0]
    assert (scanned.error, scanned.error_line) == ("ValueError: bad", 11)


def test_empty_message_of_a_pending_revision_is_a_warning(versions: Path) -> None:
    write_rev(versions, A, None, "empty message")  # history: not this pull request's doing
    path = write_rev(versions, B, A, "empty message")
    result = check(versions, pending={B})
    assert rules(result) == ["CM106"] and result.status == "warning"
    finding = result.findings[0]
    assert (finding.severity, finding.file, finding.line, finding.revision) == (
        "warning", f"migrations/versions/{path.name}", 1, B)
    assert result.summary == "1 problem in 2 revision files"
    assert check(versions, pending={A}).findings[0].revision == A
    assert check(versions, pending=set()).findings == []
    silence = "ci-migrate: ignore[CM106] see CHANGELOG 4.2\nRevision ID:"
    path.write_text(path.read_text().replace("Revision ID:", silence))
    (silenced,) = check(versions, pending={B}).findings
    assert silenced.severity == "info" and silenced.title.endswith("silenced inline: see CHANGELOG 4.2")


def test_empty_messages_of_the_history_are_one_info_line(versions: Path) -> None:
    """A full run (no base) on a long history: the old default messages are counted, not listed as
    41 warnings that drown what matters."""
    ids = [f"{i:012x}" for i in range(1, 51)]
    for i, rid in enumerate(ids):
        write_rev(versions, rid, ids[i - 1] if i else None, "empty message" if i % 5 else f"step {i}")
    result = check(versions)
    assert rules(result) == ["CM106"] and result.status == "passed"
    (finding,) = result.findings
    assert finding.severity == "info" and finding.file is None and finding.revision is None
    assert finding.title == "40 revisions keep Flask-Migrate's default message \"empty message\""
    assert finding.details["revisions"] == [r for i, r in enumerate(ids) if i % 5]
    assert f"  {ids[1]}  migrations/versions/{ids[1]}_empty_message.py  empty message" in finding.message
    assert finding.message.count("_empty_message.py") == 10 and "… and 30 more" in finding.message
    assert result.summary == f"1 head {ids[-1]}, 50 revisions"  # an info line is not a problem
    write_rev(versions, ids[1], ids[0], "add post table", name=f"{ids[1]}_empty_message.py")
    assert check(versions).findings[0].title.startswith("39 revisions keep")


def test_non_revision_file(versions: Path) -> None:
    write_rev(versions, A, None, "initial tables")
    (versions / "helpers.py").write_text('"""Shared helpers."""\nSLUG_LENGTH = 80\n')
    (versions / "__init__.py").write_text("")  # alembic's filename rule skips these
    (versions / ".#lock.py").write_text("")
    result = check(versions)
    assert rules(result) == ["CM107"]
    assert result.findings[0].file == "migrations/versions/helpers.py"
    assert result.facts.heads == [A]


def test_branch_label_merge_and_depends_on_are_valid(versions: Path) -> None:
    write_rev(versions, A, None, "initial tables")
    write_rev(versions, B, A, "add post table", labels=("blog",))
    write_rev(versions, C, A, "add tag table")
    write_rev(versions, D, (B, C), "merge post and tag")
    write_rev(versions, E, D, "add post.tags", depends=("blog", C))  # a branch label as dependency
    result = check(versions)
    assert result.findings == [] and result.summary == f"1 head {E}, 5 revisions"
    facts = result.facts
    assert [r.revision for r in facts.revisions] == [A, B, C, D, E]
    assert facts.revisions[1].branch_labels == ["blog"] and facts.revisions[4].depends_on == ["blog", C]
    assert (facts.heads, facts.bases, facts.merge_points, facts.branch_points) == ([E], [A], [D], [A])
    assert same_as_alembic(result, versions)


def test_heads_of_labelled_branches_are_intended(versions: Path) -> None:
    # `flask db revision --branch-label audit --head base`: a second base and head on purpose.
    write_rev(versions, A, None, "initial tables")
    write_rev(versions, B, A, "add post table")
    write_rev(versions, E, None, "audit tables", labels=("audit",))
    write_rev(versions, F, E, "add audit.actor", depends=(B,))
    result = check(versions)
    assert result.findings == []
    assert result.facts.heads == [B, F] and result.facts.bases == [A, E]
    assert result.summary == f"2 heads: {B} (add post table), {F} (add audit.actor)"
    assert same_as_alembic(result, versions)
    write_rev(versions, C, A, "add tag table")  # …but two unlabelled heads still need a merge
    result = check(versions)
    assert rules(result) == ["CM101"] and result.findings[0].details["heads"] == [B, C]


def test_current_app_at_import_needs_app_context(versions: Path) -> None:
    prelude = "from flask import current_app\n\nSCHEMA = current_app.config['BLOG_SCHEMA']"
    write_rev(versions, A, None, "initial tables", prelude=prelude)
    outside = scan_revision_files([versions])[0]
    assert outside.error and outside.error.startswith("RuntimeError: Working outside of application context")
    app = Flask("blogapp")
    app.config["BLOG_SCHEMA"] = "blog"
    with app.app_context():
        scanned = scan_revision_files([versions])
    assert scanned[0].error is None and scanned[0].revision == A
    assert analyze(scanned, versions.parent.parent).findings == []


def test_scan_recursive_and_dedupes(versions: Path) -> None:
    write_rev(versions, A, None, "initial tables")
    (versions / "2024").mkdir()
    write_rev(versions / "2024", B, A, "add post table")
    assert [r.revision for r in scan_revision_files([versions])] == [A]
    both = scan_revision_files([versions, versions, versions.parent / "absent"], recursive=True)
    assert [r.revision for r in both] == [A, B]  # sorted by path: 1a2b… before 2024/…
    assert all(r.path.is_absolute() for r in both)


def test_five_hundred_revisions(versions: Path) -> None:
    ids = [f"{i:012x}" for i in range(1, 501)]
    for i, rid in enumerate(ids):
        write_rev(versions, rid, ids[i - 1] if i else None, f"step {i}", name=f"{499 - i:03d}_{rid}.py")
    scanned = scan_revision_files([versions])
    result = analyze(scanned, versions.parent.parent)
    assert result.findings == [] and result.summary == f"1 head {ids[-1]}, 500 revisions"
    assert [r.revision for r in result.facts.revisions] == ids
    # the same chain closed into one big loop, and split into two heads
    looped = [replace(s, down_revisions=(ids[-1],)) if s.revision == ids[0] else s for s in scanned]
    cycle = analyze(looped, versions.parent.parent).findings
    assert [f.rule_id for f in cycle] == ["CM104"] and len(cycle[0].details["cycle"]) == 501
    forked = [*scanned, ScannedRevision(versions / "x.py", "f" * 12, (ids[0],), (), (), "fork", None, None)]
    branches = analyze(forked, versions.parent.parent).facts.head_branches
    assert [(b.head, len(b.revisions), b.fork_point) for b in branches] == [
        (ids[-1], 499, ids[0]), ("f" * 12, 1, ids[0])]


def test_result_serializes(versions: Path) -> None:
    write_rev(versions, A, None, "initial tables")
    write_rev(versions, B, A, "add post table")
    write_rev(versions, C, A, "add tag table")
    result = check(versions)
    assert CheckResult.model_validate_json(result.model_dump_json()) == result


# --------------------------------------------------------------------------- tests/apps fixtures (README)


def scan_app(app_dir: Path, monkeypatch: pytest.MonkeyPatch, context: bool = True) -> tuple[CheckResult, Flask]:
    """Import the copied fixture's app.py under its own module name and scan its versions/."""
    import contextlib
    import importlib.util

    monkeypatch.setenv("DATABASE_URL", "sqlite://")
    spec = importlib.util.spec_from_file_location(f"graph_fixture_{app_dir.name}", app_dir / "app.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    with module.app.app_context() if context else contextlib.nullcontext():
        return analyze(scan_revision_files([app_dir / "migrations" / "versions"]), app_dir), module.app


@pytest.mark.parametrize(("app_dir", "expected_rules", "heads"), [
    ("two_heads", ["CM101"], ["1b5c2ebd16a4", "34acf19d9d5c"]),
    ("missing_parent", ["CM102"], ["a29b8802658b", "cb1374e3404a"]),
    ("duplicate_id", ["CM103"], ["c907c333763e"]),
    ("syntax_error", ["CM105"], ["ee1fea91c5de"]),
    ("branch_merge", [], ["1e964f3c137f"]),
    ("empty_message", ["CM106"], ["ba8dcee3ad2e"]),
], indirect=["app_dir"])
def test_fixture_apps(app_dir: Path, expected_rules: list[str], heads: list[str],
                      monkeypatch: pytest.MonkeyPatch) -> None:
    result, app = scan_app(app_dir, monkeypatch)
    assert rules(result) == expected_rules and result.facts.heads == heads
    finding = result.findings[0] if result.findings else None
    v = "migrations/versions/"
    if app_dir.name == "two_heads":
        assert finding.fix == 'flask db merge -m "merge 1b5c2ebd16a4 and 34acf19d9d5c" 1b5c2ebd16a4 34acf19d9d5c'
        assert {b.fork_point for b in result.facts.head_branches} == {"1521a969f997"}
        assert same_as_alembic(result, app_dir / "migrations" / "versions")
    elif app_dir.name == "missing_parent":
        assert (finding.file, finding.line) == (f"{v}ca25b46c16fe_create_comment_table.py", 14)
        assert finding.details["target"] == "66cbc7634180"
    elif app_dir.name == "duplicate_id":
        assert finding.details["files"] == [f"{v}c907c333763e_add_user_last_seen.py",
                                            f"{v}c907c333763e_create_comment_table.py"]
    elif app_dir.name == "syntax_error":
        assert (finding.file, finding.line) == (f"{v}dda3e61facea_add_post_slug_and_post_created_at.py", 22)
        assert finding.details["error"] == "SyntaxError: '(' was never closed"
    elif app_dir.name == "branch_merge":
        facts = result.facts
        assert len(facts.revisions) == 8 and facts.bases == ["4a75be84d28a"]
        assert (facts.branch_points, facts.merge_points) == (["79b5d62ab0c0"], ["b87443993f56"])
        with app.app_context():  # 304ba709f5ab uses current_app at import, for alembic too
            assert same_as_alembic(result, app_dir / "migrations" / "versions")
    elif app_dir.name == "empty_message":  # a full run: one info line for the history
        assert (finding.severity, finding.details["revisions"]) == ("info", ["f8a3c1278c97"])


@pytest.mark.parametrize("app_dir", ["branch_merge"], indirect=True)
def test_fixture_current_app_revision_outside_app_context(app_dir: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    result, _ = scan_app(app_dir, monkeypatch, context=False)
    assert rules(result) == ["CM105"]
    finding = result.findings[0]
    assert (finding.file, finding.line) == ("migrations/versions/304ba709f5ab_seed_default_tags.py", 13)
    assert finding.details["error"].startswith("RuntimeError: Working outside of application context")
    assert result.facts.heads == ["1e964f3c137f"]  # its literal ids still place it in the graph
