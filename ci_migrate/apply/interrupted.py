"""Revisions an earlier ``apply`` started on the target and did not finish, and what they left there.

Read under the migration lock, so no other apply is running: a revision whose latest row in the
target's apply log (:mod:`ci_migrate.probe.apply_log`) has no end was interrupted — the run ended
inside it (``kill -9``, a lost runner). A revision that failed, or that finished but whose version
was never recorded, is looked at the same way. Its operations come from alembic's offline rendering
in the target's dialect (the probe's ``offline`` request, as the plan records them), each with the
objects it creates or drops (:mod:`ci_migrate.probe.objects`); the probe then says which of those
objects the target has (``target_objects``). From that and the order of the operations:

* nothing of it is in the target (PostgreSQL rolled it back; MySQL was stopped before its first
  DDL): a note, and the upgrade runs it again;
* something of it is there (MySQL/MariaDB commit DDL at once; a PostgreSQL ``autocommit_block``), or
  what ran cannot be told: CM810, and nothing is applied — unless ``--resume-interrupted`` is given
  and every operation can be checked (:data:`ci_migrate.probe.objects.RESUMABLE`); then the upgrade
  finishes it, skipping what exists (:mod:`ci_migrate.probe.resume`).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ci_migrate.apply import findings as rules
from ci_migrate.probe.objects import RESUMABLE
from ci_migrate.report import Finding, InterruptedOperation, InterruptedRevision

_DDL = re.compile(r"^\s*(CREATE|ALTER|DROP|RENAME|TRUNCATE)\b", re.I)


@dataclass
class Found:
    """One interrupted revision: the report's view (``item``), the objects of it the target has
    (probe object dicts plus ``found``, the name the database gives it), and per operation whether
    its statements are DDL a non-transactional database keeps even when it fails."""

    item: InterruptedRevision
    present: list[dict[str, Any]] = field(default_factory=list)
    ddl: list[bool] = field(default_factory=list)

    @property
    def left(self) -> bool:
        return any(o.state in ("ran", "partly") for o in self.item.operations)

    def to_remove(self) -> list[str]:
        """What undoing it by hand removes: its objects that exist, less those of a table it created."""
        tables = {o["table"].lower() for o in self.present if o["type"] == "table"}
        return [o["text"] for o in self.present if o["type"] == "table" or o["table"].lower() not in tables]


def inspect(ctx: Any, dialect: str, pending: Mapping[str | None, Sequence[str]]) -> list[Found]:
    """The interrupted revisions among ``pending`` (bind → revisions not applied there), with what of
    each one the target has. Empty when the target keeps no apply log (SQLite) or it has no rows; a
    log that cannot be read adds a note to the report."""
    wanted = sorted({r for revisions in pending.values() for r in revisions})
    if not wanted:
        return []
    log = ctx.probe.call("apply_log", revisions=wanted)
    if log.get("error"):
        ctx.report.notes.append(f"The apply log could not be read ({log['error']}): a revision an earlier run left "
                                "unfinished would not be recognised.")
    rows = [row for key, found in (log.get("rows") or {}).items() for row in found
            if row["revision"] in pending.get(key or None, ())]
    if not rows:
        return []
    order = ctx.history.order
    revisions = sorted({row["revision"] for row in rows}, key=order.index)
    parents = {rid: list(rev.down_revisions) for rid, rev in ctx.history.by_id.items()}
    rendered = ctx.probe.call("offline", pending=revisions, parents=parents, dialect_url=f"{dialect}://")
    entries = []
    for row in rows:
        bind = row.get("bind") or None
        data = (rendered.get("revisions") or {}).get(row["revision"]) or {}
        error = rendered.get("error") or data.get("error")
        ops = [] if error else [o for o in data.get("ops") or ()
                                if not ctx.project.multidb or (o.get("bind") or None) == bind]
        entries.append((row, bind, ops, error))
    asked: dict[str, list[Any]] = {}
    for _row, bind, ops, _error in entries:
        asked.setdefault(bind or "", []).extend(obj for o in ops for obj in o.get("objects") or ())
    answers = ctx.probe.call("target_objects", objects=asked)["states"] if any(asked.values()) else {}
    cursor = {key: iter(found) for key, found in answers.items()}
    out = []
    for row, bind, ops, error in entries:
        found = _revision(ctx, row, bind, ops, error, cursor.get(bind or "", iter(())))
        if found.item.outcome != "ok" or found.left:
            out.append(found)
    return out


def _revision(ctx: Any, row: Mapping[str, Any], bind: str | None, ops: list[Mapping[str, Any]], error: str | None,
              answers: Any) -> Found:
    rev = ctx.history.by_id.get(row["revision"])
    file = ctx.revision_files.get(row["revision"])
    found = Found(InterruptedRevision(
        revision=row["revision"], message=rev.message if rev else None, bind=bind,
        file=ctx.project.relative(file) if file else None, started_at=row.get("started_at"),
        finished_at=row.get("finished_at"), outcome=row.get("outcome"), runner=row.get("runner"), error=error))
    for op in ops:
        objects = op.get("objects")
        present, missing, unknown = [], [], objects is None
        for obj in objects or ():
            answer = next(answers, {"present": None})
            there = answer.get("present")
            if there is None:
                unknown = True
                continue
            wanted = obj.get("expect") != "absent"
            shown = obj["text"] + (f" (named `{answer['found']}`)" if answer.get("found") and not obj.get("name")
                                   and obj["type"] not in ("table", "column") else "")
            (present if there == wanted else missing).append(shown)
            if there and wanted:
                found.present.append({**obj, "found": answer.get("found") or obj.get("name")})
        state = "unknown" if unknown else "ran" if not missing else "not_run" if not present else "partly"
        found.item.operations.append(InterruptedOperation(
            text=op.get("text") or op["kind"], kind=op["kind"], line=op.get("line"), state=state, present=present,
            missing=missing))
        found.ddl.append(_ddl(op))
    _infer(found.item.operations)
    return found


def _ddl(op: Mapping[str, Any]) -> bool:
    """Whether an operation sends DDL (which MySQL/MariaDB commit at once) rather than DML (which
    InnoDB rolls back): ``bulk_insert`` and a DML ``op.execute`` do not."""
    if op["kind"] == "BulkInsertOp":
        return False
    if op["kind"] == "ExecuteSQLOp":
        return not op.get("sql_is_dml") and bool(_DDL.match(op.get("sql") or ""))
    return True


def _infer(operations: list[InterruptedOperation]) -> None:
    """Operations run in order: one before an operation that ran, ran too; one after an operation
    that did not run, did not run either."""
    states = [o.state for o in operations]
    last_ran = max((i for i, s in enumerate(states) if s in ("ran", "partly")), default=-1)
    first_not = min((i for i, s in enumerate(states) if s == "not_run" and i > last_ran), default=len(states))
    for i, op in enumerate(operations):
        if op.state == "unknown" and i < last_ran:
            op.state, op.inferred = "ran", True
        elif op.state == "unknown" and i > first_not:
            op.state, op.inferred = "not_run", True


@dataclass
class Verdict:
    """What the run does about the interrupted revisions: findings (CM810), notes, and the
    revisions the upgrade finishes (``[{revision, bind}]`` for the probe's ``upgrade`` request)."""

    findings: list[Finding] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    resume: list[dict[str, Any]] = field(default_factory=list)


def resumable_reason(item: InterruptedRevision) -> str | None:
    """Why ``--resume-interrupted`` cannot finish ``item`` (None when it can)."""
    if item.error:
        return f"its operations could not be listed (alembic's offline rendering failed: {item.error})"
    other = [o for o in item.operations if o.kind not in RESUMABLE]
    if not other:
        return None
    shown = "; ".join(f"`{o.text}`" + (f" (line {o.line})" if o.line else "") for o in other[:3])
    more = f" and {len(other) - 3} more" if len(other) > 3 else ""
    return (f"its operations include {shown}{more}, whose effect the schema cannot show (it finishes only create "
            "table, add column, create index, unique constraint and foreign key)")


def judge(found: Sequence[Found], *, target: Any, name: str, transactional: bool, resume: bool,
          current: Mapping[str | None, Sequence[str]], command_name: str) -> Verdict:
    """Findings and notes for ``found``; ``target`` is the run's :class:`~ci_migrate.apply.targets.TargetUrls`."""
    verdict = Verdict()
    for entry in found:
        item = entry.item
        unsure = any(o.state == "unknown" and ddl for o, ddl in zip(item.operations, entry.ddl)) and not transactional
        if not entry.left and not unsure and not (item.error and not transactional):
            verdict.notes.append(rules.interrupted_note(item, name, transactional))
            continue
        why_not = resumable_reason(item)
        if resume and why_not is None:
            verdict.resume.append({"revision": item.revision, "bind": item.bind})
            continue
        before = ", ".join(current.get(item.bind, ())) or "base (no revision)"
        verdict.findings.append(rules.interrupted(name, target.where(item.bind), item, before, why_not, resume,
                                                  command_name, entry.to_remove()))
    return verdict


def leftover_tables(found: Sequence[Found], bind: str | None) -> set[str]:
    """Tables interrupted revisions of ``bind`` created: theirs, not tables without a revision (CM803)."""
    return {o["table"] for entry in found if entry.item.bind == bind for o in entry.present if o["type"] == "table"}


def set_aside(gate: Any, found: Sequence[Found], resumed: Sequence[Mapping[str, Any]]) -> list[str]:
    """Take out of the drift gate's differences (:class:`~ci_migrate.apply.gate.GateResult`) what the
    revisions being finished left: their objects that exist. Returns the texts taken out."""
    keys = {(r["revision"], r.get("bind")) for r in resumed}
    left: dict[str | None, set[tuple[str, str | None]]] = {}
    for entry in found:
        if (entry.item.revision, entry.item.bind) in keys:
            for obj in entry.present:
                name = None if obj["type"] == "table" else (obj.get("found") or "").lower()
                left.setdefault(entry.item.bind, set()).add((obj["table"].lower(), name))
    aside = []
    for bind, tables in gate.differences.items():
        mine = left.get(bind, set())
        for table in tables:
            plain = (table.table or "").rsplit(".", 1)[-1].lower()
            keep = []
            for diff in table.items:
                theirs = diff.kind.startswith("remove_") and (
                    (plain, None) in mine or (plain, (diff.name or "").lower()) in mine)
                if theirs:
                    aside.append(diff.text)
                else:
                    keep.append(diff)
            table.items = keep
        gate.differences[bind] = [t for t in tables if t.items]
    return aside


def resumed(found: Sequence[Found], done: Sequence[Mapping[str, Any]], applied: Mapping[str | None, set[str]],
            name: str) -> list[str]:
    """Record on the facts what the upgrade did to the revisions it was to finish (the probe's
    ``resumed``: ``[{revision, bind, skipped, ran}]``; ``applied``: bind → revisions the version table
    has afterwards); returns a note for each."""
    notes = []
    for entry in done:
        key = (entry["revision"], entry.get("bind") or None)
        item = next((f.item for f in found if (f.item.revision, f.item.bind) == key), None)
        if item is None:
            continue
        item.skipped, item.created = list(entry.get("skipped") or ()), list(entry.get("ran") or ())
        item.resumed = item.revision in applied.get(item.bind, set())
        skipped = f"{len(item.skipped)} of its objects were there and skipped" + (
            f" ({'; '.join(item.skipped)})" if item.skipped else "")
        created = f"{len(item.created)} created" + (f" ({'; '.join(item.created)})" if item.created else "")
        if item.resumed:
            notes.append(f"--resume-interrupted: revision {item.revision}, which an earlier run left half-applied on "
                         f"{name}, was finished and recorded: {skipped}, {created}.")
        else:
            notes.append(f"--resume-interrupted: revision {item.revision} on {name} was not finished (see the "
                         f"failure): {skipped}, {created} before it stopped.")
    return notes
