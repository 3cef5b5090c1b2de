"""Undoing a merge (``warehouse.clients.merge``) on the practice's day of it, and the day's merges with whether and
why not each can still be undone.

An undo puts every moved row back (its key now, the values ``record_merge`` kept), re-inserts the rows the merge
removed and restores the duplicate. It is refused, with the reason, when the practice's local day of the merge has
ended, when the merge was undone already, when the duplicate or the survivor changed in a way a later action owns
(the duplicate restored by hand, the survivor merged away itself), or when a moved row changed since the merge —
its fingerprint differs, say an appointment of the duplicate that was rescheduled afterwards — because putting it
back would silently undo that later change too. The restoring statements match each row on its fingerprint as
well, so a change committed between the check and the undo still stops it (nothing is half-undone).
"""

from __future__ import annotations

import datetime as dt
import json
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

from sqlalchemy import text
from sqlalchemy.orm import Session

from warehouse.clients.merge import (
    MAX_REASONS,
    MergeError,
    MergeOutcome,
    count_by_table,
    fingerprint_of,
    quoted,
    record_label,
)
from warehouse.clients.merge_references import BOOKKEEPING, Kind
from warehouse.kernel import audit
from warehouse.kernel.formatting import date as dutch_date
from warehouse.kernel.practice_time import practice_today
from warehouse.security.permissions import CLIENTS_MERGE, Actor, require


@dataclass(frozen=True)
class MergeOfDay:
    """A merge for the page's list: who went into whom, what moved, and whether it may still be undone."""

    id: int
    kind: Kind
    survivor_id: int
    duplicate_id: int
    survivor: str
    duplicate: str
    merged_at: dt.datetime
    moved: dict[str, int]
    undone_at: dt.datetime | None
    undo_refused: str | None  # why it cannot be undone now; None: it can


_COLUMNS = (
    "id, practice_id, kind, survivor_id, duplicate_id, merged_at, merged_on, moved, removed, duplicate_before, "
    "undone_at"
)
_ONE_MERGE = text(f"SELECT {_COLUMNS} FROM record_merge WHERE practice_id = :p AND id = :id FOR UPDATE")
_MERGES_OF_DAY = text(
    f"SELECT {_COLUMNS} FROM record_merge WHERE practice_id = :p AND merged_on = :day ORDER BY merged_at DESC"
)


def _describe(entry: dict[str, Any]) -> str:
    key = entry["key"]
    if list(key) == ["id"]:
        return f"{entry['table'].replace('_', ' ')} {key['id']}"
    return f"{entry['table'].replace('_', ' ')} ({', '.join(f'{c} {v}' for c, v in key.items())})"


def _by_table(entries: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    grouped: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for entry in entries:
        grouped[entry["table"]].append(entry)
    return grouped


def _key_match(session: Session, key: list[str], alias: str, record: str) -> str:
    return " AND ".join(f"{alias}.{quoted(session, c)} = ({record}).{quoted(session, c)}" for c in key)


def _among_keys(session: Session, key: list[str], alias: str, record: str, source: str) -> str:
    """``alias``'s key columns each among the values of ``record`` over ``source``: an index condition on the
    primary key. Without it the planner joined the entries to every row of the practice's table, computing each
    row's fingerprint (10-60 ms for a merge's few rows at 1,500 appointments a practice, bench/workspaces.py)."""
    return " AND ".join(
        f"{alias}.{quoted(session, c)} = ANY (ARRAY(SELECT ({record}).{quoted(session, c)} FROM {source}))"
        for c in key
    )


_ENTRIES = "jsonb_array_elements(CAST(:entries AS jsonb)) AS x"  # ``record_merge.moved`` of one table


def _changed_rows(session: Session, practice_id: int, moved: list[dict[str, Any]]) -> list[str]:
    """The moved rows that are gone or differ from how the merge left them, described."""
    problems = []
    for table, entries in _by_table(moved).items():
        t, key = quoted(session, table), list(entries[0]["key"])
        among = _among_keys(session, key, "t", f"jsonb_populate_record(NULL::{t}, x -> 'key')", _ENTRIES)
        rows = session.execute(
            text(
                f"SELECT e.ord, t.practice_id IS NOT NULL AS present, {fingerprint_of('t')} AS now "  # noqa: S608
                f"FROM jsonb_array_elements(CAST(:entries AS jsonb)) WITH ORDINALITY AS e(entry, ord) "
                f"CROSS JOIN LATERAL jsonb_populate_record(NULL::{t}, e.entry -> 'key') AS k "
                f"LEFT JOIN {t} t ON t.practice_id = :p AND {_key_match(session, key, 't', 'k')} "
                f"AND {among} ORDER BY e.ord"
            ),
            {"p": practice_id, "entries": json.dumps(entries), "bookkeeping": list(BOOKKEEPING)},
        ).all()
        for ord_, present, now in rows:
            entry = entries[ord_ - 1]
            if not present:
                problems.append(f"{_describe(entry)} was deleted since the merge")
            elif now != entry["fingerprint"]:
                problems.append(f"{_describe(entry)} changed since the merge")
    return problems


def _records_since(session: Session, merge: Any) -> list[str]:
    rows = {
        row["id"]: row
        for row in session.execute(
            text(f"SELECT to_jsonb(r) FROM {quoted(session, merge.kind)} r "  # noqa: S608
                 "WHERE r.practice_id = :p AND r.id = ANY(:ids)"),
            {"p": merge.practice_id, "ids": [merge.survivor_id, merge.duplicate_id]},
        ).scalars()
    }  # fmt: skip
    survivor, duplicate = rows.get(merge.survivor_id), rows.get(merge.duplicate_id)
    problems = []
    if (
        duplicate is None
        or duplicate["merged_into_id"] != merge.survivor_id
        or duplicate["deleted_at"] is None
    ):
        problems.append(f"the merged-away {merge.kind} was restored or changed since")
    if survivor is None or survivor["deleted_at"] is not None:
        into = survivor and survivor["merged_into_id"]
        later = f" into {merge.kind} {into}" if into else ""
        problems.append(
            f"the surviving {merge.kind} was itself merged{later} or deleted since: undo that first"
        )
    return problems


def undo_refusal(session: Session, merge: Any, now: dt.datetime | None = None) -> str | None:
    """Why ``merge`` (a ``record_merge`` row) cannot be undone now, or None."""
    if merge.undone_at is not None:
        return "This merge was undone already."
    today = practice_today(session, merge.practice_id, now)
    if today != merge.merged_on:
        return (f"The practice's day of this merge ({dutch_date(merge.merged_on)}) has closed: a merge can be "
                "undone only on the day it was made.")  # fmt: skip
    problems = _records_since(session, merge) + _changed_rows(session, merge.practice_id, merge.moved)
    if not problems:
        return None
    shown = "; ".join(problems[:MAX_REASONS])
    more = f" (and {len(problems) - MAX_REASONS} more)" if len(problems) > MAX_REASONS else ""
    return f"Undoing would overwrite later work: {shown}{more}."


def _restore_moved(session: Session, practice_id: int, moved: list[dict[str, Any]]) -> None:
    for table, entries in _by_table(moved).items():
        t, key = quoted(session, table), list(entries[0]["key"])
        groups: dict[tuple[str, ...], list[dict[str, Any]]] = defaultdict(list)
        for entry in entries:
            groups[tuple(sorted(entry["old"]))].append(entry)
        for columns, group in groups.items():
            sets = ", ".join(f"{quoted(session, c)} = (o).{quoted(session, c)}" for c in columns)
            restored = session.execute(
                text(
                    f"WITH e AS (SELECT jsonb_populate_record(NULL::{t}, x -> 'key') AS k, "  # noqa: S608
                    f"jsonb_populate_record(NULL::{t}, x -> 'old') AS o, x ->> 'fingerprint' AS fingerprint "
                    "FROM jsonb_array_elements(CAST(:entries AS jsonb)) AS x) "
                    f"UPDATE {t} t SET {sets} FROM e WHERE t.practice_id = :p AND {_key_match(session, key, 't', 'k')} "
                    f"AND {_among_keys(session, key, 't', 'k', 'e')} AND {fingerprint_of('t')} = e.fingerprint"
                ),
                {"p": practice_id, "entries": json.dumps(group), "bookkeeping": list(BOOKKEEPING)},
            ).rowcount
            if restored != len(group):  # changed between the check and now: the transaction rolls back
                raise MergeError("merge", f"A {table.replace('_', ' ')} row changed meanwhile; try again.")


def _put_back_removed(session: Session, removed: list[dict[str, Any]]) -> None:
    for table, entries in _by_table(removed).items():
        t = quoted(session, table)
        columns = [
            c for c in session.scalars(
                text("SELECT attname FROM pg_attribute WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 "
                     "AND NOT attisdropped AND attgenerated = '' ORDER BY attnum"), {"t": table})
        ]  # fmt: skip
        names = ", ".join(quoted(session, c) for c in columns)
        session.execute(
            text(f"INSERT INTO {t} ({names}) SELECT {names} FROM "  # noqa: S608
                 f"jsonb_populate_recordset(NULL::{t}, CAST(:rows AS jsonb))"),
            {"rows": json.dumps([e["row"] for e in entries])},
        )  # fmt: skip


def undo_merge(
    session: Session, actor: Actor, *, practice_id: int, merge_id: int, now: dt.datetime | None = None
) -> MergeOutcome:
    """Put back everything merge ``merge_id`` moved, removed and changed; refused with the reason when it may
    not (:func:`undo_refusal`)."""
    require(actor, CLIENTS_MERGE, practice_id)
    merge = session.execute(_ONE_MERGE, {"p": practice_id, "id": merge_id}).one_or_none()
    if merge is None:
        raise MergeError("merge", f"Merge {merge_id} does not exist at this practice.")
    refusal = undo_refusal(session, merge, now)
    if refusal:
        raise MergeError("merge", refusal)
    _restore_moved(session, practice_id, merge.moved)
    _put_back_removed(session, merge.removed)
    before = merge.duplicate_before
    columns = sorted(before)
    session.execute(
        text(f"UPDATE {quoted(session, merge.kind)} t SET "  # noqa: S608
             + ", ".join(f"{quoted(session, c)} = (o).{quoted(session, c)}" for c in columns)
             + f" FROM (SELECT jsonb_populate_record(NULL::{quoted(session, merge.kind)}, CAST(:before AS jsonb)) AS o) b"
             " WHERE t.practice_id = :p AND t.id = :id"),
        {"p": practice_id, "id": merge.duplicate_id, "before": json.dumps(before)},
    )  # fmt: skip
    session.execute(
        text(
            "UPDATE record_merge SET undone_at = now(), undone_by = :by WHERE practice_id = :p AND id = :id"
        ),
        {"p": practice_id, "id": merge_id, "by": actor.user_id},
    )
    outcome = MergeOutcome(merge_id, merge.kind, merge.survivor_id, merge.duplicate_id, count_by_table(merge.moved),
                           count_by_table(merge.removed))  # fmt: skip
    audit.record(
        session, practice_id=practice_id, action="unmerge", entity=merge.kind,
        entity_ids=[merge.survivor_id, merge.duplicate_id],
        detail={"merge_id": merge_id, "moved_back": outcome.moved, "put_back": outcome.removed},
    )  # fmt: skip
    return outcome


def merges_of_day(session: Session, practice_id: int, *, now: dt.datetime | None = None) -> list[MergeOfDay]:
    """The practice's merges of its current local day, newest first, each with why it cannot be undone (if so)."""
    day = practice_today(session, practice_id, now)
    merges = session.execute(_MERGES_OF_DAY, {"p": practice_id, "day": day}).all()
    found = []
    for merge in merges:
        labels = {
            row["id"]: record_label(merge.kind, row)
            for row in session.execute(
                text(f"SELECT to_jsonb(r) FROM {quoted(session, merge.kind)} r "  # noqa: S608
                     "WHERE r.practice_id = :p AND r.id = ANY(:ids)"),
                {"p": practice_id, "ids": [merge.survivor_id, merge.duplicate_id]},
            ).scalars()
        }  # fmt: skip
        found.append(MergeOfDay(
            merge.id, merge.kind, merge.survivor_id, merge.duplicate_id, labels.get(merge.survivor_id, "?"),
            labels.get(merge.duplicate_id, "?"), merge.merged_at, count_by_table(merge.moved), merge.undone_at,
            undo_refusal(session, merge, now),
        ))  # fmt: skip
    return found
