"""render_comment / render_summary: what each section says, escaping, and the size limits."""

from __future__ import annotations

import re
from pathlib import Path

from ci_migrate.publish.common import comment_marker
from ci_migrate.publish.links import Links, default_links
from ci_migrate.publish.markdown import render_comment, render_summary
from ci_migrate.publish.mermaid import word
from ci_migrate.report import ColumnSchema, DiffItem, Finding, Report, TableDiff, TableSchema

from . import reports

GOLDEN = Path(__file__).resolve().parent.parent / "golden"
RULES = "https://example.org/ci-migrate/rules/"


def section(body: str, title: str) -> str:
    """The text of the ``### …title…`` section up to the next heading or footer."""
    start = body.index(title)
    end = min([i for i in (body.find("\n### ", start + 1), body.find("\n---\n", start),
                           body.find("\n**Checks:**", start)) if i != -1])
    return body[start:end]


def test_verdict_first_then_checks() -> None:
    body = render_comment(reports.tutorial_drift())
    lines = body.splitlines()
    assert lines[0] == comment_marker("app:migrations:sandbox")
    assert lines[1] == "## ❌ ci-migrate check: 1 error"
    assert "**Checks:** ✅ graph · ✅ replay · ❌ drift" in lines
    assert render_comment(reports.passing()).splitlines()[1] == "## ✅ ci-migrate check: passed"
    assert (render_comment(reports.plan()).splitlines()[1]
            == "## ✅ ci-migrate check: passed, 1 warning")
    assert (render_comment(reports.many_findings()).splitlines()[1]
            == "## ❌ ci-migrate check: 12 errors, 12 warnings, 6 notices")


def test_a_crashed_check_without_a_counted_finding_fails_plainly() -> None:
    from ci_migrate.publish.common import headline
    from ci_migrate.report import CheckResult

    report = reports.passing()
    report.checks.append(CheckResult(name="locks", status="error", summary="the lock trace crashed"))
    assert str(headline(report)) == "❌ failed"
    assert "- 💥 locks: the lock trace crashed" in render_comment(report)


def test_skipped_checks_say_why() -> None:
    report = reports.two_heads()
    assert "- ⏭️ replay: skipped: the history has 2 heads" in render_comment(report).splitlines()


def test_each_finding_is_one_line_linked_with_the_why_folded() -> None:
    links = Links(rules=RULES, source="https://github.com/octo/shop/blob/abc123/")
    body = render_comment(reports.plan(), links=links)
    findings = section(body, "### Findings")
    assert findings.count("\n- ") == 1
    assert ("- ⚠️ [CM402](https://example.org/ci-migrate/rules/CM402.md) "
            "[`d4e5f6a7b8c9_add_post_table.py:21`](https://github.com/octo/shop/blob/abc123/"
            "migrations/versions/d4e5f6a7b8c9_add_post_table.py#L21): "
            "Foreign key added without NOT VALID\n"
            "  <details><summary>Why</summary>\n\n"
            "  Adding a foreign key validates every row under a SHARE ROW EXCLUSIVE lock.\n\n"
            "  </details>") in findings
    # the pending revisions link to their file at the same commit
    assert ("| [`c3d4e5f6a7b8`](https://github.com/octo/shop/blob/abc123/migrations/versions/"
            "c3d4e5f6a7b8_add_user_bio.py) | add user.bio |") in body


def test_finding_without_links_names_file_and_revision() -> None:
    report = reports.many_findings(1)
    finding = report.findings[0]
    finding.title = f"{finding.revision} (step): rewrites `t`"
    finding.file = "migrations/versions/other_name.py"
    finding.fix = "Split it:\n    op.add_column(...)\nthen backfill."
    body = render_comment(report, links=Links())
    assert ("- ❌ CM400 `r00` `other_name.py:1`: rewrites `t`\n"
            "  <details><summary>Why, and how to fix</summary>\n\n"
            "  Statement 0 rewrites the table.\n\n"
            "  **Fix:** Split it:\n\n  ```\n  op.add_column(...)\n  ```\n\n  then backfill.\n\n"
            "  </details>") in body


def test_a_command_fix_is_a_shell_block_and_a_repeated_fix_is_not_repeated() -> None:
    report = reports.many_findings(6)
    for f in report.findings:
        f.fix = "flask db stamp head"
    body = render_comment(report)
    assert body.count("flask db stamp head") == 1
    assert "  **Fix:**\n\n  ```sh\n  flask db stamp head\n  ```" in body
    assert body.count("**Fix:** the same as above.") == 5


def test_heads_and_drift_findings_are_not_repeated_in_the_findings() -> None:
    for report in (reports.two_heads(), reports.tutorial_drift()):
        body = render_comment(report)
        assert "### Findings" not in body
        assert "CM101" not in body and "CM301" not in body
    two_heads = Report.from_json((GOLDEN / "app_two_heads.json").read_text())
    body = render_comment(two_heads)
    assert body.count("flask db merge -m") == 1 and "### 🔀 2 heads: merge them" in body


def test_heads_of_an_extra_script_directory_are_listed_with_their_own_merge() -> None:
    report = reports.two_heads()
    plugin = Finding(check="graph", rule_id="CM101", severity="error",
                     title="plugins/audit/migrations: 2 heads: c1, c2", message="The history has 2 heads: c1, c2.",
                     fix='flask db merge -d plugins/audit/migrations -m "merge c1 and c2" c1 c2',
                     details={"directory": "plugins/audit/migrations"})
    report.checks[0].findings.insert(0, plugin)
    body = render_comment(report)
    heads = section(body, "### 🔀 2 heads")
    assert '```sh\nflask db merge -m "merge a1 and b2" a1 b2\n```' in heads and "plugins/audit" not in heads
    findings = section(body, "### Findings")
    assert "plugins/audit/migrations: 2 heads: c1, c2" in findings and "Multiple heads" not in findings


def test_rule_links_come_from_the_package_metadata() -> None:
    url = default_links().rule("CM504")
    from importlib.metadata import metadata

    rules = next(e.split(",", 1)[1].strip() for e in metadata("ci-migrate").get_all("Project-URL")
                 if e.lower().startswith("rules,"))
    assert url == rules.rstrip("/") + "/CM504.md"
    assert f"[CM402]({rules.rstrip('/')}/CM402.md)" in render_comment(reports.plan())


def test_drift_changes_in_words_and_diagram() -> None:
    body = render_comment(reports.tutorial_drift())
    drift = section(body, "### 🧭 Drift")
    assert "- **`user`** — changed\n  - adds column `user.bio` VARCHAR(250), nullable" in drift
    assert ('```mermaid\nerDiagram\n  "user" {\n    INTEGER id PK\n'
            '    VARCHAR(128) name\n    VARCHAR(250) bio "new"\n  }\n```') in drift


def test_drift_details_hold_the_revision_body() -> None:
    drift = section(render_comment(reports.tutorial_drift()), "### 🧭 Drift")
    assert "`flask db migrate -m \"add user.bio\"`" in drift
    assert "<details><summary>Revision body suggested by autogenerate</summary>\n\n```python\n" in drift
    assert ("def upgrade():\n    # ### commands auto generated by Alembic - please adjust! ###\n"
            "    with op.batch_alter_table('user', schema=None) as batch_op:\n"
            "        batch_op.add_column(sa.Column('bio', sa.String(length=250), nullable=True))\n"
            "\n    # ### end Alembic commands ###\n") in drift
    assert "def downgrade():\n" in drift and "batch_op.drop_column('bio')" in drift
    assert drift.rstrip().endswith("```\n\n</details>")


def test_multiple_heads_show_branches_and_merge_command() -> None:
    heads = section(render_comment(reports.two_heads()), "### 🔀 2 heads")
    assert '```sh\nflask db merge -m "merge a1 and b2" a1 b2\n```' in heads
    assert "| `a1` | index post.created | `a1` ← `a0` | `base0` |" in heads
    assert "| `b2` | add user.bio | `b2` | `base0` |" in heads


def test_pending_revisions_and_offline_sql() -> None:
    body = render_comment(reports.plan())
    pending = section(body, "### 📦 Pending migrations (3)")
    assert "New in this change compared with `origin/main`" in pending
    assert "| `c3d4e5f6a7b8` | add user.bio | Ada Lovelace &lt;ada@example.com&gt; |" in pending
    sql = section(body, "### 📜 Offline SQL (postgresql)")
    assert ("<details><summary><code>c3d4e5f6a7b8</code> add user.bio — 3 lines</summary>\n\n"
            f"```sql\n{reports.PLAN_SQL['c3d4e5f6a7b8']}\n```\n\n</details>") in sql
    assert "SQL could not be rendered offline: op.execute() with a Python callable" in sql


def test_footer_has_the_version() -> None:
    body = render_comment(reports.passing())
    assert body.rstrip().endswith(
        "<sub>ci-migrate 0.1.0 · report schema 1 · key `app:migrations:sandbox`</sub>")


def test_summary_is_the_same_body_without_marker() -> None:
    report = reports.tutorial_drift()
    comment, summary = render_comment(report), render_summary(report)
    assert "<!--" not in summary
    assert comment.split("\n", 1)[1] == summary


def test_finding_text_is_escaped() -> None:
    report = reports.plan()
    f = report.findings[0]
    f.title, f.message, f.fix = "a <b>", "<script>x</script>\nsecond line", "run `x | y`"
    body = render_comment(report, links=Links())
    assert ": a &lt;b&gt;\n" in body
    assert "  &lt;script&gt;x&lt;/script&gt;<br>\n  second line\n" in body
    assert "  **Fix:** run `x | y`\n" in body


def test_diagram_includes_referenced_tables_and_relations() -> None:
    report = reports.tutorial_drift()
    report.tables.append(TableSchema(name="post", columns=[
        ColumnSchema(name="id", type="INTEGER", nullable=False, primary_key=True),
        ColumnSchema(name="author_id", type="INTEGER", nullable=False, foreign_key="user.id"),
        ColumnSchema(name="editor_id", type="INTEGER", foreign_key="user.id"),
        ColumnSchema(name="price", type="NUMERIC(10, 2)"),
    ]))
    drift = report.drift
    assert drift is not None
    drift.binds[0].tables = [TableDiff(table="post", change="added", items=[
        DiffItem(kind="add_table", table="post", text="adds table `post`")])]
    body = render_comment(report)
    assert '  "post" ||..o{ "post"' not in body
    assert '    INTEGER author_id FK\n' in body
    assert '    NUMERIC(10_2) price\n' in body
    assert '  "user" ||..o{ "post" : "author_id"\n' in body
    assert '  "user" |o..o{ "post" : "editor_id"\n' in body
    # user is only referenced: key columns only, and said so
    assert '  "user" {\n    INTEGER id PK\n  }\n' in body
    assert "Also shown, with their key columns only: `user`" in body


def test_mermaid_words_are_safe() -> None:
    assert word("NUMERIC(10, 2)") == "NUMERIC(10_2)"
    assert word("TIMESTAMP WITH TIME ZONE") == "TIMESTAMP_WITH_TIME_ZONE"
    assert word("2fa") == "_2fa" and word("pk") == "pk_" and word("") == "_"


def test_huge_report_is_cut_under_the_limit_and_says_so() -> None:
    report = reports.huge()
    body = render_comment(report)
    assert 60_000 < len(body) <= 65_000
    assert body.splitlines()[1] == "## ❌ ci-migrate check: 80 errors, 80 warnings, 40 notices"
    assert "**Checks:**" in body and "### Findings" in body
    assert "```sql" not in body and "```mermaid" not in body and "```python" not in body
    note = re.search(r"> ✂️ Shortened to stay under 65,000 characters: left out (.*)\. ", body)
    assert note and note.group(1).startswith(
        "offline SQL, the drift diagram, the suggested revision body")
    assert body.rstrip().endswith("</sub>")


def test_huge_report_fits_the_summary_without_cuts() -> None:
    body = render_summary(reports.huge())
    assert "```sql" in body and "```mermaid" in body and "Shortened" not in body
    assert len(body.encode()) <= 1_048_576


def test_tiny_limits_still_hold() -> None:
    report = reports.huge()
    for limit in (16_000, 3_000, 500):
        body = render_comment(report, limit=limit)
        assert len(body) <= limit
        assert body.startswith(comment_marker(report.key))


def test_summary_limit_counts_bytes() -> None:
    report = reports.many_findings(30)
    for f in report.findings:
        f.message = "é" * 300  # two bytes each
    body = render_summary(report, limit=12_000)
    assert len(body.encode("utf-8")) <= 12_000 < len(render_summary(report).encode("utf-8"))


def test_findings_without_location_name_the_revision() -> None:
    report = reports.passing()
    report.checks[0].findings.append(Finding(check="graph", rule_id="CM102", severity="warning",
                                             title="Empty revision", revision=reports.INITIAL))
    row = next(line for line in render_comment(report, links=Links()).splitlines() if "CM102" in line)
    assert f"`{reports.INITIAL_FILE.rsplit('/', 1)[1]}`" in row


def test_drift_of_several_binds_names_each_body() -> None:
    from ci_migrate.report import BindDrift

    report = reports.tutorial_drift()
    assert report.drift is not None
    report.drift.binds.append(BindDrift(
        bind="audit", upgrade_code="op.drop_table('log')", ignored=2,
        imports=["from alembic import op", "import sqlalchemy_utils"],
        tables=[TableDiff(table="log", change="removed", items=[
            DiffItem(kind="remove_table", table="log", text="removes table `log`")])]))
    body = render_comment(report)
    drift = section(body, "### 🧭 Drift")
    assert "- **`log`** — table removed (bind `audit`)\n  - removes table `log`" in drift
    assert "No migration makes the 2 changes to `user` and `log` below" in drift
    assert "(2 differences ignored by configuration.)" in drift
    assert "autogenerate for bind <code>default</code>" in drift
    assert "def upgrade_():" in drift
    assert ("import sqlalchemy as sa\nimport sqlalchemy_utils\n\n\ndef upgrade_audit():\n"
            "    op.drop_table('log')\n\n\ndef downgrade_audit():\n    pass\n```") in drift
    assert drift.count("from alembic import op") == 2


def test_notes_are_separate_quotes() -> None:
    report = reports.passing()
    report.notes += ["Sandbox is <sqlite>", "second"]
    assert "> ℹ️ Sandbox is &lt;sqlite&gt;\n\n> ℹ️ second\n\n---" in render_comment(report)
