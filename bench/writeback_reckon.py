"""The reckoning of bench/writeback.py once the faults stop and the outbox drained: nothing lost, nothing duplicated,
and every overlapping edit a conflict.

Lost: each local write's last value per (row, field) must be in Animana (read over HTTP), or that field is in a
conflict of the row (open, or decided with both values recorded), or the row's entry carrying it is a dead letter
with a reason, or an Animana user changed that field after Animana had acknowledged the value (then Animana's later
value rightly wins: the row was no longer pending). Anything else is lost.

Overlapping edits and detected conflicts are counted the same way, as (row, field): an overlapping edit is a field
both sides changed, to different values, since they last agreed on it — in either order: an Animana user changed it
while a local value for it was written here and not yet in Animana (ours first), or staff wrote it here after an
Animana user's edit that no sync had brought in yet (Animana first: the local write replaced another value than
Animana's, its entry's ``base``); a detected conflict is a field in `writeback_conflict.fields` (open or
auto-resolved). Both are reconstructed from the outbox and the edits seen, never from the conflicts.
"""

from __future__ import annotations

import datetime as dt
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import Engine, text

from bench.writeback_mix import COMPARED, RESOURCE_OF, AnimanaReader, Written
from warehouse.kernel.tenancy import AccessContext, tenant_session

FieldKey = tuple[int, str, int, str]  # (practice, table, row, column)
WIRE_TO_COLUMN = {
    table: {wire: column for column, wire in columns.items()} for table, columns in COMPARED.items()
}
TABLE_OF = {resource: table for table, resource in RESOURCE_OF.items()}
# An Animana edit that cancels an appointment changes its cancellation time too (the loader reads it from the
# record's updated_at), so that column is an Animana change as well.
IMPLIED = {("appointment", "status", "cancelled"): {"cancelled_at"}}


def same(local: Any, wire: Any) -> bool:
    """A warehouse value and the wire value Animana holds for it, compared as values (instants, days)."""
    if isinstance(local, str) and isinstance(wire, str) and local[:4].isdigit() and "T" in local:
        return dt.datetime.fromisoformat(local) == dt.datetime.fromisoformat(wire)  # instants from jsonb
    if isinstance(local, dt.datetime):
        return wire is not None and dt.datetime.fromisoformat(wire) == local
    if isinstance(local, dt.date):
        return wire == local.isoformat()
    return local == wire or (local is None and wire == "")


@dataclass
class Reckoning:
    fields: int = 0  # (row, field) last local values checked
    in_animana: int = 0
    in_conflict_open: int = 0  # an open conflict names the field: a person decides
    in_conflict_decided: int = 0  # decided (a rule or a person) with both values recorded
    dead_letters: int = 0  # with their reason
    dead_without_reason: int = 0
    overwritten_in_animana: int = 0  # an Animana user changed the field after Animana acknowledged our value
    still_pending: int = 0  # not settled when the bench stopped waiting
    lost: list[str] = field(default_factory=list)  # in none of the above
    animana_creates: int = 0
    local_inserts: int = 0
    duplicates: int = 0  # Animana records created in the run that no inserted row maps to
    shared_ids: int = 0  # two inserted rows mapped to one Animana record
    conflicts: Counter[str] = field(default_factory=Counter)  # conflict records by state
    rules: Counter[str] = field(default_factory=Counter)  # fields decided by a rule, by rule
    overlapping: set[FieldKey] = field(default_factory=set)
    detected: set[FieldKey] = field(default_factory=set)
    edits: Counter[str] = field(default_factory=Counter)  # Animana-side edits in the run, by origin
    agreed: set[FieldKey] = field(default_factory=set)
    own_copies: int = (
        0  # a create whose answer was lost, imported by a sync meanwhile and merged back (a trace)
    )
    # overlapping, not detected: Animana's user typed the value of a write of ours in flight whose outcome nobody
    # knew (handed over, then its answer lost or its dispatcher killed) — what the settlement takes for that write
    # come back, as nothing in Animana's answers tells the two apart
    coincident: set[FieldKey] = field(default_factory=set)
    # detected, no Animana user's edit: Animana's value is one of our own writes (applied, its answer not recorded)
    echoes: set[FieldKey] = field(default_factory=set)
    dead_reasons: Counter[str] = field(
        default_factory=Counter
    )  # overlapping, but both sides came to the same value
    dead_stories: dict[tuple[int, str, int, str], list[str]] = field(default_factory=dict)  # the first few
    held_behind_conflict: int = 0  # the row's entries wait on an open conflict of another of its fields
    # detected but not overlapping: the local change came after Animana's edit, before the sync brought it in
    late_local: set[FieldKey] = field(default_factory=set)
    story: dict[FieldKey, list[str]] = field(
        default_factory=dict
    )  # entries and edits of each (row, field) edited
    # overlapping, but Animana's last edit put the field back at the value both sides had agreed on, or at ours,
    # before a sync saw it: no difference is left to detect (counted apart, not as overlapping, when not detected)
    converged: set[FieldKey] = field(default_factory=set)


@dataclass(frozen=True)
class Entry:
    id: int
    table: str
    row_id: int
    state: str
    changes: dict[str, Any]
    base: dict[str, Any]  # the values the entry's changes replaced
    created_at: dt.datetime
    answered_version: str | None
    last_error: str | None


def reckon(
    app_engine: Engine,
    reader: AnimanaReader,
    animana_ids: dict[int, int],
    written: Written,
    max_before: dict[int, dict[str, int]],
    seen_edits: dict[int, list[tuple[dt.datetime, dict[str, Any]]]],
) -> Reckoning:
    """`animana_ids`: warehouse practice → Animana practice; `seen_edits`: the `EditWatcher`'s edits per warehouse
    practice, with the wall-clock time each was first seen."""
    result = Reckoning()
    for pid, aid in animana_ids.items():
        with tenant_session(app_engine, AccessContext.for_practices([pid])) as s:
            entries = [
                Entry(*r)
                for r in s.execute(
                    text(
                        "SELECT id, table_name, row_id, state, changes, base, created_at, answered_version, last_error "
                        "FROM writeback_outbox ORDER BY id"
                    )
                )
            ]
            conflicts = s.execute(
                text("SELECT table_name, row_id, state, fields, detected_at FROM writeback_conflict")
            ).all()
            dead_reasons = s.execute(
                text("SELECT last_error FROM writeback_outbox WHERE state = 'dead'")
            ).scalars()
            result.dead_reasons.update(_reason_kind(r) for r in dead_reasons)
            for dead in [e for e in entries if e.state == "dead"][:5]:  # each with its row's entries, to read
                result.dead_stories[(pid, dead.table, dead.row_id, dead.last_error or "")] = [
                    f"entry {e.id} {e.state}, created {e.created_at:%H:%M:%S.%f}: {e.changes}, answered at "
                    f"{e.answered_version}, last error {e.last_error!r}"
                    for e in entries if (e.table, e.row_id) == (dead.table, dead.row_id)
                ]  # fmt: skip
            local_of = {
                (table, str(r[0])): r[1]
                for table in COMPARED
                for r in s.execute(text(f"SELECT animana_id, id FROM {table} WHERE animana_id IS NOT NULL"))
            }
            animana_id_of = {(table, row): a for (table, a), row in local_of.items()}
        decided, open_fields = set(), set()
        for table, row_id, state, fields, _ in conflicts:
            result.conflicts[state] += 1
            for column, both in fields.items():
                if (
                    both.get("rule") == "own_create_imported_by_sync"
                ):  # our own create twice: no edit's conflict
                    result.own_copies += 1
                    result.rules[both["rule"]] += 1
                    continue
                result.detected.add((pid, table, row_id, column))
                if state == "open":
                    open_fields.add((table, row_id, column))
                elif "local" in both and "animana" in both:
                    decided.add((table, row_id, column))
                if both.get("rule"):
                    result.rules[both["rule"]] += 1
        edits = [(seen, edit, TABLE_OF[edit["resource"]]) for seen, edit in seen_edits.get(pid, [])
                 if edit["resource"] in TABLE_OF]  # fmt: skip
        _overlaps(result, pid, entries, edits, local_of)
        by_row: dict[tuple[str, int], list[Entry]] = {}
        for entry in entries:
            by_row.setdefault((entry.table, entry.row_id), []).append(entry)
        for p, table, row_id, column in result.detected - result.story.keys():
            if p == pid:  # a conflict no Animana user's edit explains: what was sent of the field
                if _echo(conflicts, by_row.get((table, row_id), []), table, row_id, column):
                    result.echoes.add((p, table, row_id, column))
                result.story[(p, table, row_id, column)] = [
                    f"entry {e.id} {e.state}, created {e.created_at:%H:%M:%S.%f}: {e.changes[column]!r}, answered "
                    f"at {e.answered_version}, last error {e.last_error!r}"
                    for e in by_row.get((table, row_id), [])
                    if column in e.changes
                ] + [f"conflict: {f}" for t, r, _, f in conflicts_of(conflicts, table, row_id, column)]
        records: dict[tuple[str, int], dict[str, Any] | None] = {}
        for (p, table, row_id, column), value in sorted(written.last.items(), key=lambda kv: kv[0][:3]):
            if p != pid:
                continue
            result.fields += 1
            key = (table, row_id)
            if key not in records:
                animana_id = animana_id_of.get(key)
                records[key] = reader.get(aid, RESOURCE_OF[table], animana_id) if animana_id else None
            record, carrying = records[key], [e for e in by_row.get(key, []) if column in e.changes]
            if record is not None and same(value, record.get(COMPARED[table][column])):
                result.in_animana += 1
            elif (table, row_id, column) in open_fields:
                result.in_conflict_open += 1
            elif (table, row_id, column) in decided:
                result.in_conflict_decided += 1
            elif any(e.state == "dead" and e.last_error for e in carrying):
                result.dead_letters += 1
            elif any(e.state == "dead" for e in carrying):
                result.dead_without_reason += 1
            elif any(e.state == "held" for e in by_row.get(key, [])):
                result.held_behind_conflict += 1
            elif any(e.state == "pending" for e in by_row.get(key, [])):
                result.still_pending += 1
            elif _overwritten(carrying, edits, animana_id_of.get(key), table, column):
                result.overwritten_in_animana += 1
            else:
                here = record.get(COMPARED[table][column]) if record else "no record"
                result.lost.append(
                    f"practice {pid} {table} {row_id} {column}: {value!r} here, {here!r} in Animana"
                )
        _count_creates(app_engine, reader, pid, aid, written, max_before[pid], result)
    return result


def _reason_kind(reason: str | None) -> str:
    """A dead letter's reason without its particulars (ids, paths, counts)."""
    text_ = (reason or "no reason").removeprefix("na ")
    return text_.split(" -> ")[-1].split(":")[0][:60] if " -> " in text_ else text_[:60]


def _echo(conflicts: Any, entries: list[Entry], table: str, row_id: int, column: str) -> bool:
    """Animana's side of the conflict is our own write come back: a value one of the row's entries sent, or (a
    cancellation time) Animana's clock after our own cancellation was applied."""
    animana = [f["animana"] for *_, f in conflicts_of(conflicts, table, row_id, column)]
    if column == "cancelled_at":
        return any(e.changes.get("status") == "cancelled" for e in entries)
    return any(column in e.changes and same(e.changes[column], a) for e in entries for a in animana)


def conflicts_of(conflicts: Any, table: str, row_id: int, column: str) -> list[tuple[str, int, str, Any]]:
    return [(t, r, state, fields[column]) for t, r, state, fields, _ in conflicts
            if t == table and r == row_id and column in fields]  # fmt: skip


def _overwritten(carrying: list[Entry], edits: list[tuple[dt.datetime, dict[str, Any], str]], animana_id: str | None, table: str, column: str) -> bool:  # fmt: skip
    """An Animana user changed the field after Animana acknowledged our last value of it (a later version)."""
    acknowledged = [e.answered_version for e in carrying if e.state == "done" and e.answered_version]
    if not acknowledged or animana_id is None:
        return False
    wire = COMPARED[table][column]
    return any(
        str(edit["id"]) == animana_id
        and t == table
        and wire in edit["fields"]
        and edit["at"] > max(acknowledged)
        for _, edit, t in edits
    )


def _overlaps(result: Reckoning, pid: int, entries: list[Entry], edits: list[tuple[dt.datetime, dict[str, Any], str]], local_of: dict[tuple[str, str], int]) -> None:  # fmt: skip
    """Overlapping edits: an Animana edit of a field for which a local value written before the edit (by wall
    clock) was not in Animana at the edit's version — its entry not acknowledged, or acknowledged at a later
    version — and the Animana value differs from it; unless Animana's last edit of the field put it back at the value
    both sides had agreed on or at ours before any sync saw a difference (`converged`). Also notes detected fields
    whose local change came later."""
    last_edit: dict[FieldKey, tuple[Any, Any, Any]] = {}  # (Animana's last value, the agreed one, ours)
    seen_at: dict[
        tuple[str, str, str], list[dt.datetime]
    ] = {}  # (table, Animana id, column) → its edits' times
    for seen, edit, table in edits:
        for wire in edit["fields"]:
            seen_at.setdefault((table, str(edit["id"]), WIRE_TO_COLUMN[table].get(wire, wire)), []).append(
                seen
            )
    for seen, edit, table in edits:
        result.edits[edit["origin"]] += 1
        row_id = local_of.get((table, str(edit["id"])))
        if row_id is None:
            continue
        changed = {WIRE_TO_COLUMN[table].get(wire, wire): value for wire, value in edit["fields"].items()}
        for (t, wire, v), columns in IMPLIED.items():
            if t == table and edit["fields"].get(wire) == v:
                changed |= dict.fromkeys(columns)  # the value is Animana's clock: never ours
        for column, value in changed.items():
            carrying = [e for e in entries if e.table == table and e.row_id == row_id and column in e.changes]
            before = [e for e in carrying if e.created_at < seen]
            unsent = [e for e in before if e.state != "done" or (e.answered_version or "") > edit["at"]]
            key = (pid, table, row_id, column)
            story = result.story.setdefault(key, [
                f"entry {e.id} {e.state}, created {e.created_at:%H:%M:%S.%f}: {e.changes[column]!r}, answered at "
                f"{e.answered_version}" for e in carrying])  # fmt: skip
            story.append(
                f"Animana edit ({edit['origin']}) seen {seen:%H:%M:%S.%f}, at {edit['at']}: {value!r}"
            )
            later_same = any(same(e.changes[column], value) for e in carrying if e.created_at >= seen)
            # Animana first: the first local write of the field after this edit (and before Animana's next edit of
            # it) replaced another value than Animana's — no sync had brought the edit in — and differs from it.
            following = [t for t in seen_at.get((table, str(edit["id"]), column), []) if t > seen]
            late = [e for e in carrying if seen <= e.created_at < min(following, default=dt.datetime.max.replace(
                tzinfo=dt.UTC))][:1]  # fmt: skip
            unseen = [
                e for e in late if not same(e.base.get(column), value) and not same(e.changes[column], value)
            ]
            if unsent and later_same and key not in result.detected:
                result.agreed.add(
                    key
                )  # staff wrote Animana's value here too before the sync: agreed, rightly
            elif unsent and not same(before[-1].changes[column], value):
                result.overlapping.add(key)
                if any(same(e.changes[column], value) for e in unsent):
                    result.coincident.add(key)
                last_edit.setdefault(key, (value, unsent[0].base.get(column), carrying[-1].changes[column]))
            elif not unsent and unseen:
                result.overlapping.add(key)
                last_edit.setdefault(key, (value, unseen[0].base.get(column), carrying[-1].changes[column]))
            elif key in result.detected and any(e.created_at >= seen for e in carrying):
                result.late_local.add(key)
            if key in last_edit:  # Animana's latest value of a field that overlapped
                last_edit[key] = (value, *last_edit[key][1:])
    for key, (animana, agreed_on, ours) in last_edit.items():
        if key not in result.detected and (same(agreed_on, animana) or same(ours, animana)):
            result.overlapping.discard(key)
            result.converged.add(key)


def _count_creates(
    app_engine: Engine,
    reader: AnimanaReader,
    pid: int,
    aid: int,
    written: Written,
    before: dict[str, int],
    result: Reckoning,
) -> None:
    """Duplicates: Animana records created during the run against the rows the bench inserted."""
    for table in ("appointment", "vaccination"):
        resource = RESOURCE_OF[table]
        created = {str(r["id"]) for r in reader.all(aid, resource) if r["id"] > before[resource]}
        inserted = [r for p, t, r in written.inserted if p == pid and t == table]
        with tenant_session(app_engine, AccessContext.for_practices([pid])) as s:
            mapped = s.execute(
                text(f"SELECT animana_id FROM {table} WHERE id = ANY(:ids) AND animana_id IS NOT NULL"),
                {"ids": inserted},
            ).scalars().all()  # fmt: skip
        result.animana_creates += len(created)
        result.local_inserts += len(inserted)
        result.duplicates += len(created - set(mapped))
        result.shared_ids += len(mapped) - len(set(mapped))
