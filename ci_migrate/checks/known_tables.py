"""Tables that libraries create outside migrations, and the drift judgement that expects them.

The catalog is data: ``known_tables.yaml`` beside this module lists each table with the library
that creates it, why no migration does, and where that is in the library's source (Flask-Session's
``sessions``, APScheduler's ``apscheduler_jobs``, Celery's ``celery_taskmeta``, PostGIS's
``spatial_ref_sys``…). Drift on such a table is what ``flask db check`` on the live database never
reports, so :func:`judge` turns it into an info finding (CM303) with that reason instead of CM301.
The config's ``ignore: known-tables`` switches the catalog off, or entries one by one, or adds
tables of the app's own (:data:`KnownTablesSetting`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from importlib import resources
from typing import Mapping, Union

from ci_migrate.report import DriftFacts, Finding, TableDiff

# ``ignore: known-tables`` in .ci-migrate.yml: True (the catalog), False (nothing is known), or a
# mapping of table names (``table`` or ``schema.table``) to False (not this catalog entry) or to a
# reason (a table of the app's own that something else creates).
KnownTablesSetting = Union[bool, Mapping[str, Union[bool, str]]]
CONFIG_SOURCE = ".ci-migrate.yml (ignore: known-tables)"


@dataclass(frozen=True)
class Entry:
    """One known table: ``table`` in ``schema`` (None: any schema), the ``library`` that creates it,
    the ``reason`` no migration does, and the ``source`` in the library's code."""

    table: str
    library: str
    reason: str
    source: str
    schema: str | None = None

    @property
    def name(self) -> str:
        """``schema.table``, or the bare table name for an entry of any schema."""
        return f"{self.schema}.{self.table}" if self.schema else self.table

    def matches(self, name: str, schema: str | None) -> bool:
        """True for table ``name`` in ``schema`` (None: the default schema); case-insensitive."""
        return name.lower() == self.table.lower() and (
            self.schema is None or (schema or "").lower() == self.schema.lower())


@functools.lru_cache(maxsize=1)
def catalog() -> tuple[Entry, ...]:
    """The entries of ``known_tables.yaml``, in file order."""
    import yaml

    text = resources.files(__package__).joinpath("known_tables.yaml").read_text(encoding="utf-8")
    return tuple(Entry(**item) for item in yaml.safe_load(text))


def entry_named(name: str) -> Entry | None:
    """The catalog entry whose :attr:`Entry.name` is ``name`` (case-insensitive), if any."""
    return next((e for e in catalog() if e.name.lower() == name.lower()), None)


def known_table(name: str, schema: str | None = None, *, setting: KnownTablesSetting = True) -> Entry | None:
    """The entry for table ``name`` in ``schema`` (None: the default schema), or None.

    ``setting`` is the config's ``ignore: known-tables`` (:data:`KnownTablesSetting`): a mapping key
    (``table`` for any schema, ``schema.table`` for one) set to False hides the catalog entry, set
    to a reason makes the table known with that reason.
    """
    if setting is False:
        return None
    if isinstance(setting, Mapping):
        for key, value in setting.items():
            key_schema, _, key_table = key.rpartition(".")
            if not Entry(key_table, "", "", "", key_schema or None).matches(name, schema):
                continue
            if value is False:
                return None
            if isinstance(value, str):
                return Entry(table=name, schema=schema, library="this app", reason=value, source=CONFIG_SOURCE)
    return next((e for e in catalog() if e.matches(name, schema)), None)


def judge(facts: DriftFacts, setting: KnownTablesSetting = True) -> tuple[DriftFacts, list[Finding]]:
    """Move drift on known tables out of the way: for the drift check, before it judges the rest.

    Returns a copy of ``facts`` in which each bind's table diffs on a known table (``TableDiff.table``
    is ``table`` or ``schema.table``) are moved from ``tables`` to ``known_tables``, and one CM303
    finding (severity info, check ``drift``) per such table, carrying the catalog's reason. What is
    left in ``tables`` is the drift that CM301 reports. ``facts`` is not changed.
    """
    out = facts.model_copy(deep=True)
    findings = []
    for bind in out.binds:
        kept = []
        for diff in bind.tables:
            schema, _, name = diff.table.rpartition(".")
            entry = known_table(name, schema or None, setting=setting)
            if entry is None:
                kept.append(diff)
                continue
            bind.known_tables.append(diff)
            findings.append(_finding(diff, entry, bind.bind))
        bind.tables = kept
    return out, findings


def _finding(diff: TableDiff, entry: Entry, bind: str | None) -> Finding:
    texts = [item.text for item in diff.items] or [f"{diff.change} table `{diff.table}`"]
    more = f" and {len(texts) - 1} more" if len(texts) > 1 else ""
    key = diff.table if entry.source == CONFIG_SOURCE else entry.name
    return Finding(
        check="drift", rule_id="CM303", severity="info", bind=bind,
        title=f"{texts[0]}{more} — expected: {entry.library} creates `{diff.table}` outside migrations",
        message=(f"{entry.reason}\nDrift on it:\n" + "\n".join(f"- {t}" for t in texts)
                 + f"\nSource: {entry.source}"),
        fix=(f"Nothing to do. If this app's migrations should create `{diff.table}`, set "
             f"`ignore: {{known-tables: {{{key}: off}}}}` in .ci-migrate.yml to judge it like any other table."),
        details={"table": diff.table, "library": entry.library, "source": entry.source, "items": texts},
    )
