"""Inline suppression (``# ci-migrate: ignore[CM502] reason``): where a comment counts, the info
finding it leaves, CM515 for a suppression without a reason or for an unknown rule id, and the same
rules for the lint check on a real pull request."""

from __future__ import annotations

from pathlib import Path

import pytest
from support import run_cli
from test_lint import MORE_BASE, PG_APP_URL
from test_plan import check_of, pr_repo, report_of

from ci_migrate.checks import suppress
from ci_migrate.report import Finding

SOURCE = '''"""drop legacy bits

ci-migrate: ignore[CM511] the downgrade is the runbook's job
"""
# ci-migrate: ignore[CM501] the archive job was removed in 4.2
from alembic import op

NOTE = "# ci-migrate: ignore[CM504] inside a string, not a comment"


def upgrade():
    # ci-migrate: ignore[CM502, cm503] read by nothing since 4.0
    # (checked in the query log)
    op.drop_column('user', 'legacy')
    op.create_index('ix', 'user', ['a'])  # ci-migrate: ignore[CM507] table has 12 rows
    op.add_column('user',  # ci-migrate: ignore[CM504]
                  sa.Column('flag', sa.Boolean(), nullable=False))
    with op.batch_alter_table('user') as batch_op:  # ci-migrate: ignore[CM999] typo
        batch_op.drop_column('other')
'''


def test_where_a_comment_counts():
    found = suppress.parse(SOURCE)
    assert {k: (s.reason, s.line) for k, s in found.whole.items()} == {
        "CM511": ("the downgrade is the runbook's job", 3),  # a docstring line, no '#' needed
        "CM501": ("the archive job was removed in 4.2", 5),  # a comment before the first def
    }
    lines = {line: sorted(rules) for line, rules in found.by_line.items()}
    assert lines == {
        14: ["CM502", "CM503"],  # the statement after the comment lines
        15: ["CM507"],
        16: ["CM504"], 17: ["CM504"],  # every line of a statement that spans two
        18: ["CM999"], 19: ["CM999"],  # a `with` block with its body
    }
    assert found.by_line[14]["CM503"].reason == "read by nothing since 4.0"
    assert found.find("CM504", 17).reason == "" and found.find("CM504", 8) is None  # the string is not a comment
    assert found.find("CM501", None) and found.find("CM507", 14) is None
    assert [s.rule_id for s in found.every] == ["CM511", "CM501", "CM502", "CM503", "CM507", "CM504", "CM999"]


def test_a_file_that_does_not_parse_still_has_its_comments():
    found = suppress.parse("# ci-migrate: ignore[CM501] gone\ndef upgrade(:\n    op.x()  # ci-migrate: ignore[CM507] ok\n")
    assert set(found.whole) == {"CM501"} and found.find("CM507", 3).reason == "ok"


def test_silenced_findings_stay_as_info_with_the_reason(tmp_path: Path):
    path = tmp_path / "rev.py"
    path.write_text(SOURCE)
    drop = Finding(check="lint", rule_id="CM502", severity="warning", title="abc: drops column `user.legacy`",
                   line=14, revision="abc", fix="Deploy code that stops reading it first.")
    index = Finding(check="lint", rule_id="CM507", severity="warning", title="abc: index", line=16, revision="abc")
    out, count = suppress.silence([drop, index], lambda f: path)
    assert count == 1 and out[1] == index
    assert out[0].severity == "info" and out[0].fix is None
    assert out[0].title == "abc: drops column `user.legacy` — silenced inline: read by nothing since 4.0"
    assert out[0].details["silenced"] == {"reason": "read by nothing since 4.0", "line": 12, "severity": "warning"}
    assert suppress.is_silenced(out[0]) and not suppress.is_silenced(index)


def test_a_suppression_without_reason_or_for_an_unknown_rule_is_cm515(tmp_path: Path):
    path = tmp_path / "rev.py"
    path.write_text(SOURCE)
    found = suppress.check_comments(path, "migrations/versions/rev.py", "abc")
    assert [(f.rule_id, f.severity, f.line, f.details["rule"]) for f in found] == [
        ("CM515", "warning", 16, "CM504"), ("CM515", "warning", 18, "CM999")]
    assert found[0].title == "abc: ignore[CM504] gives no reason"
    assert found[1].title == "abc: ignore[CM999] names no ci-migrate rule"
    assert found[1].message.startswith("The suppression comment at migrations/versions/rev.py:18 names 'CM999', "
                                       "which is not a ci-migrate rule, so it silences nothing. A reason")
    assert suppress._near("CM590") == " — did you mean CM509?" and suppress._near("CM5O1") == " — did you mean CM501?"
    assert found[1].file == "migrations/versions/rev.py"


def _edit(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, path
    path.write_text(text.replace(old, new, 1))


@pytest.mark.postgres
def test_lint_keeps_silenced_findings_and_flags_bad_comments(tmp_path: Path):
    """The risky_more pull request, with suppressions added: a docstring line for CM501, a comment
    without reason for CM505, and a typo'd rule id next to CM509. ``rules: {CM501: error}`` does not
    raise the silenced finding again."""
    repo = pr_repo(tmp_path, "risky_more", MORE_BASE)
    versions = repo / "migrations" / "versions"
    _edit(next(versions.glob("2fa5c85aea0a_*.py")), "Create Date:",
          "ci-migrate: ignore[CM501] audit_entry was archived in 4.1\nCreate Date:")
    _edit(next(versions.glob("4b9c33bb3804_*.py")), "def upgrade():\n", "def upgrade():\n    # ci-migrate: ignore[CM505]\n")
    _edit(next(versions.glob("166c3aafa700_*.py")), "def upgrade():\n",
          "def upgrade():\n    # ci-migrate: ignore[CM590] the email is unique already\n")
    (repo / ".ci-migrate.yml").write_text("app: app.py\nrules:\n  CM501: error\n")
    result = run_cli("check", "--base", "main", "--only", "graph,plan,lint", "--format", "json", cwd=repo,
                     env=PG_APP_URL)
    lint = check_of(report_of(result), "lint")
    by_rule = {}
    for f in lint["findings"]:
        by_rule.setdefault(f["rule_id"], []).append(f)
    (dropped,) = by_rule["CM501"]
    assert dropped["severity"] == "info" and dropped["title"].endswith("silenced inline: audit_entry was archived in 4.1")
    (required,) = by_rule["CM505"]
    assert required["severity"] == "info" and required["title"].endswith("silenced inline: no reason given")
    assert by_rule["CM509"][0]["severity"] == "warning"  # CM590 silences nothing
    assert sorted((f["revision"], f["details"]["rule"]) for f in by_rule["CM515"]) == [
        ("166c3aafa700", "CM590"), ("4b9c33bb3804", "CM505")]
    assert lint["facts"]["suppressed"] == 3  # the two above and the table rename silenced in the app itself
    assert "; 3 silenced inline" in lint["summary"]
