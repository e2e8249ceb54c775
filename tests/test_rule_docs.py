"""Every rule id the code can emit has its page in docs/rules/."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def emitted_rule_ids() -> set[str]:
    ids: set[str] = set()
    for path in (ROOT / "ci_migrate").rglob("*.py"):
        ids |= set(re.findall(r"[\"'](CM\d{3})[\"']", path.read_text(encoding="utf-8")))
    return ids


def test_every_rule_has_a_doc_page():
    ids = emitted_rule_ids()
    assert {"CM101", "CM201", "CM301"} <= ids
    missing = sorted(i for i in ids if not (ROOT / "docs" / "rules" / f"{i}.md").is_file())
    assert not missing, f"rule ids without docs/rules/<id>.md: {missing}"


def test_every_doc_page_starts_with_its_id():
    for page in (ROOT / "docs" / "rules").glob("CM*.md"):
        assert page.read_text(encoding="utf-8").startswith(f"# {page.stem} — "), page.name


def test_the_rule_id_registry_lists_every_documented_rule():
    """``ci_migrate.rule_ids.RULE_IDS`` (what an inline ``ignore[…]`` may name) is the set of rule pages."""
    from ci_migrate.rule_ids import RULE_IDS

    pages = {page.stem for page in (ROOT / "docs" / "rules").glob("CM*.md")}
    assert RULE_IDS == pages
