"""Markdown pieces for the comment and summary: escaping per context, code spans, fences, prose.

GitHub and GitLab render CommonMark + GFM; a report's text (finding messages, identifiers,
SQL) must never open an HTML tag, end a table cell or close a code span early.
"""

from __future__ import annotations

import html
import re
import textwrap

#: A one-line fix that is a command to run (shown as a shell block, not as prose).
_COMMAND = re.compile(r"^(flask|alembic|python|python3|git|pip|ci-migrate)\s")


def text(value: object) -> str:
    """Plain text in Markdown: HTML-escaped so a message cannot open a tag."""
    return html.escape(str(value), quote=False)


def cell(value: object) -> str:
    """Text inside a GFM table cell: escaped, ``|`` escaped, line breaks as ``<br>``."""
    escaped = text(value).strip().replace("|", "\\|")
    return re.sub(r"\r?\n", "<br>", escaped)


def code(value: object, in_cell: bool = False) -> str:
    """Inline code span; longer backtick fences when the value has backticks (CommonMark 6.1).

    In a table cell (``in_cell=True``) ``|`` is written ``\\|``, which GFM unescapes inside code.
    """
    words = " ".join(str(value).split())
    run = max((len(m) for m in re.findall(r"`+", words)), default=0)
    ticks = "`" * (run + 1)
    pad = " " if words.startswith("`") or words.endswith("`") else ""
    out = f"{ticks}{pad}{words}{pad}{ticks}"
    return out.replace("|", "\\|") if in_cell else out


def html_code(value: object) -> str:
    """``<code>`` element, for places (``<summary>``) where Markdown is not parsed."""
    return f"<code>{html.escape(str(value))}</code>"


def fence(value: object, lang: str = "") -> str:
    """Fenced code block whose fence is longer than any backtick run in the value."""
    body = str(value).strip("\n")
    run = max((len(m) for m in re.findall(r"`{3,}", body)), default=2)
    ticks = "`" * (run + 1)
    return f"{ticks}{lang}\n{body}\n{ticks}"


def and_list(items: list[str], more: int = 0, noun: str = "more") -> str:
    """``a``, ``a and b``, ``a, b and c``; ``a, b and 3 more`` when ``more`` were left out."""
    parts = list(items) + ([f"{more} {noun}"] if more else [])
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]


def prose(value: object, indent: int = 0, lead: str = "") -> str:
    """A finding's message or fix as Markdown blocks, indented by ``indent`` spaces.

    Indented lines (code, statements, revision lists) become fenced blocks, dedented; runs of
    other lines become paragraphs whose line breaks are kept (``<br>``). A one-line command
    (``flask db merge …``) becomes a ``sh`` block. Text is HTML-escaped; backticks the checks
    wrote stay code spans. ``lead`` (Markdown, e.g. ``**Fix:**``) starts the first paragraph,
    or stands alone before a leading code block.
    """
    raw = str(value).strip("\n")
    if "\n" not in raw and _COMMAND.match(raw.strip()):
        blocks = [fence(raw.strip(), "sh")]
    else:
        blocks, para, block = [], [], []
        for line in raw.splitlines() + [""]:
            if line.startswith((" ", "\t")) and line.strip():
                if para:
                    blocks.append("<br>\n".join(para))
                    para = []
                block.append(line)
                continue
            if block:
                blocks.append(fence(textwrap.dedent("\n".join(block))))
                block = []
            if line.strip():
                para.append(text(line.strip()))
            elif para:
                blocks.append("<br>\n".join(para))
                para = []
    if lead:
        if blocks and not blocks[0].startswith("`"):
            blocks[0] = f"{lead} {blocks[0]}"
        else:
            blocks.insert(0, lead)
    pad = " " * indent
    return "\n\n".join("\n".join(pad + ln if ln else ln for ln in b.splitlines()) for b in blocks)
