"""The schema change of a pull request, first in the comment (drawn and listed) and on the console.

Real data: ``tests/golden/app_schema_pr.json`` is the report of ``ci-migrate check --base main`` on
tests/apps/schema_pr (one revision that adds table ``comment``, adds ``user.bio`` and drops
``post.summary``; see scripts/golden.py). Large changes are built with ``schema_change`` from
snapshots shaped like the reflected ones.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

from ci_migrate.publish.console import make_console, render
from ci_migrate.publish.markdown import render_comment, render_summary
from ci_migrate.report import Report
from ci_migrate.schema_change import schema_change

from . import reports

GOLDEN = Path(__file__).resolve().parent.parent / "golden"


def schema_pr() -> Report:
    return Report.from_json((GOLDEN / "app_schema_pr.json").read_text(encoding="utf-8"))


def test_the_comment_opens_with_the_change_drawn_and_listed() -> None:
    body = render_comment(schema_pr())
    headings = re.findall(r"^### .*$", body, flags=re.M)
    assert headings[0] == "### 🗂️ Schema change"
    change = body[body.index(headings[0]):body.index(headings[1])]
    assert change.startswith("### 🗂️ Schema change\n\n1 table added, 2 changed by `57e3c567681b` "
                             "add comment table and user.bio, drop post.summary (PR Author):\n")
    assert '  "comment (new)" {\n    INTEGER id PK\n    INTEGER post_id FK\n' in change
    assert '    VARCHAR(280) summary "dropped"\n' in change
    assert '    VARCHAR(250) bio "added"\n' in change
    assert '  "post (changed)" ||..o{ "comment (new)" : "post_id"\n' in change
    assert '  "user (changed)" |o..o{ "comment (new)" : "user_id"\n' in change
    assert ("- ➕ **`comment`** — new table: `id` INTEGER PK, `post_id` INTEGER NOT NULL → `post.id`, "
            "`user_id` INTEGER → `user.id`, `body` TEXT NOT NULL, `created_at` TIMESTAMP WITHOUT TIME ZONE "
            "NOT NULL\n  - adds index `ix_comment_post_id` (`post_id`)\n") in change
    assert "- ✏️ **`post`**\n  - drops column `summary` VARCHAR(280)\n" in change
    assert "- ✏️ **`user`**\n  - adds column `bio` VARCHAR(250)\n" in change
    # the pull request's revision is named there, so no separate pending-revisions table
    assert "### 📦 Pending migrations" not in body
    assert render_summary(schema_pr()) == body.split("\n", 1)[1]


def test_every_finding_once_and_shorter_than_one_table_row_each() -> None:
    report = schema_pr()
    body = render_comment(report)
    lines = [line for line in body.splitlines() if line.startswith("- ⚠️ [CM")]
    assert len(lines) == len(report.findings) == 3
    for f, line in zip(report.findings, lines):
        assert line.startswith(f"- ⚠️ [{f.rule_id}](") and f":{f.line}`" in line
    assert body.count("Dropping `post.summary` deletes its data for good") == 1
    # a table row per finding, with the why and the fix in the cell, took 4,784 characters for
    # this run without any diagram; the change drawn and listed must fit in less
    assert len(body) < 4_784


def test_no_change_no_section() -> None:
    report = schema_pr()
    report.schema_change = None
    body = render_comment(report)
    assert "Schema change" not in body and "```mermaid" not in body
    assert "### 📦 Pending migrations (1)" in body


def test_neighbour_tables_show_their_keys_only() -> None:
    before = {"user": {"columns": [{"name": "id", "type": "INTEGER", "nullable": False},
                                   {"name": "name", "type": "TEXT"}], "primary_key": ["id"]},
              "post": {"columns": [{"name": "id", "type": "INTEGER", "nullable": False},
                                   {"name": "user_id", "type": "INTEGER"}, {"name": "body", "type": "TEXT"}],
                       "primary_key": ["id"],
                       "foreign_keys": [{"constrained_columns": ["user_id"], "referred_table": "user",
                                         "referred_columns": ["id"]}]}}
    after = {**before, "user": {**before["user"], "columns": [*before["user"]["columns"],
                                                              {"name": "bio", "type": "TEXT"}]}}
    report = reports.passing()
    report.schema_change = schema_change(before, after)
    body = render_comment(report)
    assert '  "post" {\n    INTEGER id PK\n    INTEGER user_id FK\n  }\n' in body
    assert '  "user (changed)" |o..o{ "post" : "user_id"\n' in body
    assert "Also shown, with their key columns only: `post`" in body


def wide_change(tables: int, columns: int) -> Report:
    """``tables`` new tables of ``columns`` columns each, every one referencing ``account``."""
    account = {"columns": [{"name": "id", "type": "INTEGER", "nullable": False}], "primary_key": ["id"]}
    after = {"account": account}
    for t in range(tables):
        after[f"ledger_{t:03d}"] = {
            "columns": [{"name": "id", "type": "INTEGER", "nullable": False},
                        {"name": "account_id", "type": "INTEGER", "nullable": False},
                        *({"name": f"amount_{c:02d}", "type": "NUMERIC(12, 2)", "default": "0"}
                          for c in range(columns))],
            "primary_key": ["id"],
            "indexes": [{"name": f"ix_ledger_{t:03d}_account_id", "column_names": ["account_id"]}],
            "foreign_keys": [{"name": f"fk_ledger_{t:03d}_account", "constrained_columns": ["account_id"],
                              "referred_table": "account", "referred_columns": ["id"]}]}
    report = reports.plan()
    report.schema_change = schema_change({"account": account}, after, revisions=["c3d4e5f6a7b8"])
    return report


def test_a_large_change_folds() -> None:
    body = render_comment(wide_change(8, 3))
    change = body[body.index("### 🗂️ Schema change"):body.index("### Findings")]
    assert change.startswith("### 🗂️ Schema change\n\n8 tables added by `c3d4e5f6a7b8` add user.bio "
                             "(Ada Lovelace &lt;ada@example.com&gt;):\n\n<details><summary>Diagram</summary>\n\n```mermaid\n")
    assert "</details>\n\n<details><summary>Table by table</summary>\n\n- ➕ **`ledger_000`**" in change
    assert change.rstrip().endswith("</details>")
    small = render_comment(wide_change(2, 3))
    assert "<details><summary>Diagram</summary>" not in small and "```mermaid" in small


def test_a_huge_change_fits_the_comment_with_its_diagram() -> None:
    report = wide_change(150, 40)
    body = render_comment(report)
    assert len(body) <= 65_000
    assert body.splitlines()[1] == "## ✅ ci-migrate check: passed, 1 warning"
    assert "```mermaid\nerDiagram\n" in body and '  "ledger_000 (new)" {' in body
    note = re.search(r"> ✂️ Shortened to stay under 65,000 characters: left out (.*)\. ", body)
    assert note and "the neighbour tables of the schema diagram" in note.group(1)
    assert "unchanged columns" not in note.group(1)  # new tables: every column is new
    assert re.search(r"\d+ changed tables", note.group(1))
    assert re.search(r"The diagram shows \d+ of the changed tables; \d+ more are listed in `report.json`", body)
    assert "- ⚠️ [CM402](" in body  # the findings stay
    summary = render_summary(report)
    assert '"ledger_149 (new)"' in summary and "Shortened" not in summary


def test_console_shows_the_short_list() -> None:
    out = io.StringIO()
    render(schema_pr(), make_console(file=out, width=200))
    text = out.getvalue()
    assert ("Schema change (1 table added, 2 changed)\n"
            "  ➕ comment: new table: `id` INTEGER PK, `post_id` INTEGER NOT NULL → `post.id`, `user_id` INTEGER "
            "→ `user.id`, `body` TEXT NOT NULL, `created_at` TIMESTAMP WITHOUT TIME ZONE NOT NULL\n"
            "      - adds index `ix_comment_post_id` (`post_id`)\n"
            "  ✏️ post\n"
            "      - drops column `summary` VARCHAR(280)\n"
            "  ✏️ user\n"
            "      - adds column `bio` VARCHAR(250)\n") in text
    assert text.rstrip().endswith("✅ passed, 3 warnings (0.0 s)")


def test_a_change_of_several_revisions_lists_them_in_upgrade_order() -> None:
    report = wide_change(1, 1)
    assert report.schema_change is not None and report.plan is not None
    report.schema_change.revisions = [p.revision for p in report.plan.pending]
    body = render_comment(report)
    assert ("1 table added by 3 revisions, in upgrade order:\n\n"
            "- `c3d4e5f6a7b8` add user.bio (Ada Lovelace &lt;ada@example.com&gt;)\n"
            "- `d4e5f6a7b8c9` add post table (Grace Hopper &lt;grace@example.com&gt;)\n"
            "- `e5f6a7b8c9d0` backfill post.slug\n\n```mermaid\n") in body
    assert "### 📦 Pending migrations" not in body
