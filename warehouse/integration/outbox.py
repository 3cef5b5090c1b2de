"""The write-back outbox (migration 0380) as the dispatcher and the write-through gateway see it: claiming due
entries with the rows they describe, and recording what Animana answered.

An entry is claimed only when it is the oldest open (pending, held or dead) entry of its row, so a later change of
a row never overtakes an earlier one — not even a dead letter, which holds its row's later changes until a person
retries it. Claims are ``FOR UPDATE SKIP LOCKED``: two dispatchers never send one entry at once, and an entry
claimed by a transaction that dies (a killed dispatcher) is simply pending again, to be sent with the same
idempotency key.

The row an entry carries is the row *as that entry left it*: the current row with the changes of every later entry
of the row undone (their ``base``; a superseded entry's change is part of the entry that took it over). A retry after a lost answer therefore sends the same body as the first attempt
even when the row changed since, which the idempotency key requires (Animana refuses a key reused for another
body), and the later change follows as its own write.
"""

from __future__ import annotations

import datetime as dt
import decimal
import json
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, Table, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from warehouse.integration.capture import bookkeeping, writing_as
from warehouse.integration.settle import hold_for_settlement
from warehouse.integration.tables import MIRRORED
from warehouse.kernel.ciphers import practice_cipher
from warehouse.kernel.crypto import FieldCipher
from warehouse.schema import Base

# A client's PII is stored encrypted; the write-back mappings see it decrypted under these names.
ENCRYPTED_PII = {"email_enc": "email", "phone_enc": "phone", "address_enc": "address", "iban_enc": "iban"}
_BLIND_INDEXES = ("email_bidx", "phone_bidx")


class ParentNotInAnimana(Exception):  # noqa: N818 — a state to wait out, not a failure
    """A row the write points at (an appointment's patient…) has not reached Animana yet: the write waits."""

    def __init__(self, table: str, local_id: int) -> None:
        super().__init__(f"waiting for {MIRRORED[table].label if table in MIRRORED else table} {local_id}")
        self.table = table
        self.local_id = local_id


@dataclass(frozen=True)
class OutboxEntry:
    id: int
    practice_id: int
    module: str
    table_name: str
    row_id: int
    operation: str  # insert | update | delete
    changes: dict[str, Any]
    base: dict[str, Any]
    idempotency_key: str
    attempts: int
    animana_id: str | None  # the row's Animana id (None until an insert's answer is stored)
    animana_version: str | None  # the If-Match of an update or delete
    row: dict[
        str, Any
    ]  # the row as this entry left it, typed, PII decrypted, a patient's client_ids; {} for a delete
    followed: bool = False  # a later open entry of the row waits behind this one (due once this one is done)


# Pending, due, the oldest open entry of its row, and not of a module gone native (captured before the switch).
# The oldest open entry of every row comes from one ordered pass over the open entries (a correlated NOT EXISTS per
# candidate was quadratic whenever the planner misjudged a freshly filled outbox).
_DUE = """
WITH firsts AS (
  SELECT DISTINCT ON (f.table_name, f.row_id) f.id, f.state, f.next_attempt_at, f.module
    FROM writeback_outbox f
   WHERE f.practice_id = :practice AND f.state IN ('pending', 'held', 'dead') {rows_of_ids}
   ORDER BY f.table_name, f.row_id, f.id)
SELECT o.id, o.module, o.table_name, o.row_id, o.operation, o.changes, o.base, o.idempotency_key::text AS key,
       o.attempts, o.created_at
  FROM writeback_outbox o
 WHERE o.practice_id = :practice AND o.state = 'pending' AND o.next_attempt_at <= now() {only}
   AND o.id = ANY(ARRAY(
         SELECT firsts.id FROM firsts
          WHERE firsts.state = 'pending' AND firsts.next_attempt_at <= now()
            AND firsts.module NOT IN (SELECT m.module FROM practice_module_mode m
                                       WHERE m.practice_id = :practice AND m.mode = 'native')))
 ORDER BY o.id
 LIMIT :limit
   FOR UPDATE OF o SKIP LOCKED
"""
_ROWS_OF_IDS = """AND (f.table_name, f.row_id) IN (SELECT i.table_name, i.row_id FROM writeback_outbox i
                                          WHERE i.practice_id = :practice AND i.id = ANY(:ids))"""
# Every entry of the claimed rows: the later ones' bases undo their changes, a done one's answer may be newer
# than a deleted row's version.
_HISTORY = """
SELECT e.table_name, e.row_id, e.id, e.state, e.base, e.answered_version, e.sent_at
  FROM unnest(CAST(:tables AS text[]), CAST(:rows AS bigint[])) AS r(table_name, row_id)
  JOIN writeback_outbox e ON e.practice_id = :practice AND e.row_id = ANY(:rows)
                          AND e.table_name = r.table_name AND e.row_id = r.row_id
 ORDER BY e.id
"""


def due_entries(
    session: Session, practice_id: int, limit: int, *, master_key: bytes, ids: Iterable[int] | None = None
) -> list[OutboxEntry]:
    """Claim up to ``limit`` due entries of the practice, oldest first (see the module docstring); ``ids``: only
    these entries (the gateway's own). Two queries and one per table involved, whatever the number."""
    params: dict[str, Any] = {"practice": practice_id, "limit": limit}
    only = rows_of_ids = ""
    if ids is not None:
        params["ids"] = list(ids)
        only, rows_of_ids = "AND o.id = ANY(:ids)", _ROWS_OF_IDS
    claimed = session.execute(text(_DUE.format(only=only, rows_of_ids=rows_of_ids)), params).all()
    if not claimed:
        return []
    history: dict[tuple[str, int], list[Row[Any]]] = {}
    tables, row_ids = [c.table_name for c in claimed], [c.row_id for c in claimed]
    for h in session.execute(text(_HISTORY), {"practice": practice_id, "tables": tables, "rows": row_ids}):
        history.setdefault((h.table_name, h.row_id), []).append(h)
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for table_name in {c.table_name for c in claimed}:
        wanted = [c.row_id for c in claimed if c.table_name == table_name]
        found = {i: dict(r) for i, r in _rows(session, practice_id, table_name, wanted).items()}
        if table_name == "patient":
            _add_owners(session, practice_id, found)
        rows.update(((table_name, i), r) for i, r in found.items())
    ciphers: dict[int | None, FieldCipher] = {}
    entries = []
    for c in claimed:
        current = rows.get((c.table_name, c.row_id))
        # A row deleted since keeps its values in the delete's base: an insert or update before it is still sent
        # as it was (and the delete after it).
        row: dict[str, Any] = dict(current or {})
        entries_of_row = history.get((c.table_name, c.row_id), [])
        for later in reversed(entries_of_row):
            if later.id > c.id and later.state != "superseded":
                row.update(_typed(_table(c.table_name), later.base))
        if any(column in row for column in ENCRYPTED_PII):
            key_version = row.get("key_version")
            if key_version not in ciphers:
                ciphers[key_version] = practice_cipher(session, practice_id, master_key, key_version)
            row = _decrypted(row, ciphers[key_version])
        identity = row or _typed(_table(c.table_name), c.base)  # a delete: the row's values before it
        # A change of the row sent after the delete was made answered with a newer version than the deleted row
        # holds (its answer had no row left to be stored on).
        answered_since = [
            e.answered_version
            for e in entries_of_row
            if e.state == "done" and e.sent_at is not None and e.sent_at > c.created_at
        ]
        version = (
            answered_since[-1]
            if c.operation == "delete" and answered_since
            else identity.get("animana_version")
        )
        entries.append(
            OutboxEntry(
                id=c.id,
                practice_id=practice_id,
                module=c.module,
                table_name=c.table_name,
                row_id=c.row_id,
                operation=c.operation,
                changes=c.changes,
                base=c.base,
                idempotency_key=c.key,
                attempts=c.attempts,
                animana_id=identity.get("animana_id"),
                animana_version=version,
                row=row,
                followed=any(e.id > c.id and e.state in ("pending", "held", "dead") for e in entries_of_row),
            )
        )
    return entries


def _add_owners(session: Session, practice_id: int, patients: dict[int, dict[str, Any]]) -> None:
    """A patient's owners (``client_ids``, the primary first): Animana keeps them on the animal."""
    for patient in patients.values():
        patient["client_ids"] = []
    owners = session.execute(
        text(
            "SELECT patient_id, client_id FROM client_patient WHERE practice_id = :practice "
            "AND patient_id = ANY(:ids) ORDER BY patient_id, is_primary DESC, since, client_id"
        ),
        {"practice": practice_id, "ids": list(patients)},
    )
    for patient_id, client_id in owners:
        patients[patient_id]["client_ids"].append(client_id)


def _table(name: str) -> Table:
    return Base.metadata.tables[name]


def _rows(
    session: Session, practice_id: int, table_name: str, ids: list[int]
) -> dict[int, Mapping[str, Any]]:
    if not ids:
        return {}
    table = _table(table_name)
    query = select(table).where(table.c.id.in_(ids))
    if "practice_id" in table.c:
        query = query.where(table.c.practice_id == practice_id)
    return {r["id"]: r for r in session.execute(query).mappings()}


def _typed(table: Table, values: Mapping[str, Any]) -> dict[str, Any]:
    """JSON values (``to_jsonb`` of a row, as the capture trigger stores them) as the Python values a row has."""
    out = {}
    for name, value in values.items():
        column = table.c.get(name)
        out[name] = value if column is None or value is None else _from_json(column.type, value)
    return out


def _from_json(column_type: Any, value: Any) -> Any:
    try:
        kind = column_type.python_type
    except NotImplementedError:  # a type without one (an enum choice): JSON has it as it is
        return value
    if kind is dt.datetime:
        return dt.datetime.fromisoformat(value)
    if kind is dt.date:
        return dt.date.fromisoformat(value)
    if kind is dt.time:
        return dt.time.fromisoformat(value)
    if kind is decimal.Decimal:
        return decimal.Decimal(str(value))
    if kind is bytes:
        return bytes.fromhex(value.removeprefix("\\x"))
    if kind is uuid.UUID:
        return uuid.UUID(value)
    return value


def _decrypted(row: dict[str, Any], cipher: FieldCipher) -> dict[str, Any]:
    for column, name in ENCRYPTED_PII.items():
        if column in row:
            row[name] = cipher.decrypt(name, row.pop(column))
    for column in _BLIND_INDEXES:
        row.pop(column, None)
    return row


def referenced_rows(
    session: Session, practice_id: int, table_name: str, ids: Iterable[int]
) -> dict[int, Mapping[str, Any]]:
    """Rows of ``table_name`` an entry's row points at (their ``animana_id`` and columns), by local id."""
    return _rows(session, practice_id, table_name, sorted(set(ids)))


def parents_of(table_name: str) -> list[tuple[str, str]]:
    """(column, table) of each practice-scoped foreign key of a mirrored table: what its writes may point at."""
    found = []
    for constraint in _table(table_name).foreign_key_constraints:
        local = [c.name for c in constraint.columns]
        if len(local) == 2 and local[0] == "practice_id":
            found.append((local[1], constraint.referred_table.name))
    return found


# Whether a row still has something Animana has not acknowledged: an open entry, or an open conflict.
_STILL_OPEN = """
EXISTS (SELECT 1 FROM writeback_outbox o WHERE o.practice_id = t.practice_id AND o.table_name = :table
         AND o.row_id = t.id AND o.state IN ('pending', 'held', 'dead'))
OR EXISTS (SELECT 1 FROM writeback_conflict c WHERE c.practice_id = t.practice_id AND c.table_name = :table
            AND c.row_id = t.id AND c.state = 'open')
"""


@dataclass(frozen=True)
class HandOver:
    """What a hand-over mark says of an entry's earlier hand-overs (see `note_handed`)."""

    first: bool  # none before this one
    same_request: bool  # every one was this same request (the same idempotency key)


def note_handed(session: Session, practice_id: int, requests: Mapping[int, str]) -> dict[int, HandOver]:
    """These entries go to Animana now, each as the request with that idempotency key: to be committed before their
    writes go out (`WritebackHanded`). The mark keeps the key while every hand-over is that same request, and
    forgets it once one was another (an update on an older version)."""
    return {
        entry_id: HandOver(first=first, same_request=key is not None)
        for entry_id, key, first in session.execute(
            text(
                "INSERT INTO writeback_handed AS h (practice_id, entry_id, request_key) "
                "SELECT :p, r.id, r.key FROM unnest(CAST(:ids AS bigint[]), CAST(:keys AS text[])) AS r(id, key) "
                "ON CONFLICT (practice_id, entry_id) DO UPDATE SET request_key = "
                "CASE WHEN h.request_key = EXCLUDED.request_key THEN h.request_key END "
                "RETURNING entry_id, request_key, xmax = 0 AS first"  # xmax 0: inserted, not updated
            ),
            {"p": practice_id, "ids": list(requests), "keys": list(requests.values())},
        )
    }


def forget_handed(session: Session, practice_id: int, entry_ids: list[int]) -> None:
    """These entries' hand-over marks go: Animana acknowledged them (`mark_all_sent`), or its answers prove that
    none of their hand-overs was taken (the dispatcher's `_record`) — a value of theirs found there is then someone
    else's."""
    session.execute(
        text("DELETE FROM writeback_handed WHERE practice_id = :p AND entry_id = ANY(:ids)"),
        {"p": practice_id, "ids": entry_ids},
    )


Answer = tuple[OutboxEntry, str | None, str | None]
"""An entry Animana acknowledged, with the Animana id and version it answered with."""


def mark_sent(session: Session, entry: OutboxEntry, animana_id: str | None, version: str | None) -> None:
    """Animana has the entry (see `mark_all_sent`)."""
    mark_all_sent(session, [(entry, animana_id, version)])


def mark_all_sent(session: Session, answers: list[Answer]) -> None:
    """Animana has these entries (at most one per row: a claim holds one entry of a row): they are done, and their
    rows get the Animana id and version it answered with, as writer ``writeback`` (so nothing is captured; the
    rest of the transaction stays that writer's); a row stays pending only while another entry or a conflict of it
    is open. Set-based — one statement for the entries and one per table — because the dispatcher's throughput
    is HTTP writes plus this, and a statement per entry cost as much as the write itself."""
    if not answers:
        return
    writing_as(session, "writeback")
    answers = _absorb_imported_copies(session, answers)
    if not answers:
        return
    practice_id = answers[0][0].practice_id
    session.execute(
        text(
            "UPDATE writeback_outbox o SET state = 'done', sent_at = clock_timestamp(), answered_version = a.version, "
            "attempts = attempts + 1, last_error = NULL "
            "FROM unnest(CAST(:ids AS bigint[]), CAST(:versions AS text[])) AS a(id, version) "
            "WHERE o.practice_id = :practice AND o.id = ANY(:ids) AND o.id = a.id"
        ),
        {
            "practice": practice_id,
            "ids": [e.id for e, _, _ in answers],
            "versions": [v for _, _, v in answers],
        },
    )
    forget_handed(session, practice_id, [e.id for e, _, _ in answers])
    with bookkeeping(session):
        _stamp_rows(session, practice_id, answers)
    # A held Animana change at the very version an answer gives is that answer's record: nothing in it is news. (A
    # row the settlement deferred until its entry's re-send told whether Animana's value was ours: the replay says
    # it was.) Left held, an older value would be settled over what went out since.
    session.execute(
        text(
            "DELETE FROM writeback_incoming w USING unnest(CAST(:tables AS text[]), CAST(:rows AS bigint[]), "
            "CAST(:versions AS text[])) AS a(table_name, row_id, version) WHERE w.practice_id = :practice "
            "AND w.table_name = a.table_name AND w.row_id = a.row_id AND w.animana_version = a.version"
        ),
        {
            "practice": practice_id,
            "tables": [e.table_name for e, _, _ in answers],
            "rows": [e.row_id for e, _, _ in answers],
            "versions": [v for _, _, v in answers],
        },
    )


def _stamp_rows(session: Session, practice_id: int, answers: list[Answer]) -> None:
    """The acknowledged rows' Animana id, version and pending flag: one UPDATE per table."""
    for table_name in sorted({e.table_name for e, _, _ in answers if e.operation != "delete"}):
        rows = [
            (e.row_id, aid, v)
            for e, aid, v in answers
            if e.table_name == table_name and e.operation != "delete"
        ]
        table = session.get_bind().dialect.identifier_preparer.quote(_table(table_name).name)
        session.execute(
            text(
                f"UPDATE {table} t SET animana_id = coalesce(a.animana_id, t.animana_id), animana_version = a.version, "
                f"writeback_pending = ({_STILL_OPEN}) "
                "FROM unnest(CAST(:rows AS bigint[]), CAST(:ids AS text[]), CAST(:versions AS text[])) "
                "AS a(row_id, animana_id, version) "
                "WHERE t.practice_id = :practice AND t.id = ANY(:rows) AND t.id = a.row_id"
            ),
            {
                "practice": practice_id,
                "table": table_name,
                "rows": [r for r, _, _ in rows],
                "ids": [i for _, i, _ in rows],
                "versions": [v for _, _, v in rows],
            },
        )


def _absorb_imported_copies(session: Session, answers: list[Answer]) -> list[Answer]:
    """A create whose answer was lost (or whose dispatcher was killed before recording it) may already have come
    back with a sync as a row of its own: the same Animana record twice here. The copy the sync made is removed
    and our row takes the Animana id, leaving an auto-resolved conflict as the trace; a copy that other rows
    already point at is left for a person (the entry becomes a dead letter saying so). Returns the answers that
    can be recorded.

    A replayed answer is the record as it was created, but the copy is the record as the sync read it: when an
    Animana user changed it in between, the copy's values and version are held for our row (as the loader holds
    a pending row's update) and the sync's settlement takes them in. Dropped, Animana's edit would be lost here
    and every later write of the row refused as stale, since no sync brings that version again."""
    creates = [(e, aid, v) for e, aid, v in answers if e.operation == "insert" and aid is not None]
    blocked: set[int] = set()
    for table_name in sorted({e.table_name for e, _, _ in creates}):
        ours = {aid: (e, v) for e, aid, v in creates if e.table_name == table_name}
        table = session.get_bind().dialect.identifier_preparer.quote(_table(table_name).name)
        copies = session.execute(
            text(
                f"SELECT id, animana_id, animana_version, to_jsonb(t) - ARRAY['updated_at', 'animana_version', "
                f"'writeback_pending'] AS incoming FROM {table} t WHERE practice_id = :p AND animana_id = ANY(:ids)"
            ),
            {"p": next(iter(ours.values()))[0].practice_id, "ids": list(ours)},
        ).all()
        for copy_id, aid, copy_version, incoming in copies:
            entry, answered_version = ours[aid]
            if copy_id == entry.row_id:
                continue
            try:
                with session.begin_nested():
                    session.execute(
                        text(f"DELETE FROM {table} WHERE practice_id = :p AND id = :id"),
                        {"p": entry.practice_id, "id": copy_id},
                    )
            except IntegrityError:
                mark_dead(
                    session,
                    entry,
                    f"Animana already has this record ({aid}): a sync imported it as {table_name} {copy_id} before "
                    "our create was acknowledged, and other records point at that copy; merge the two by hand",
                )
                blocked.add(entry.id)
                continue
            session.execute(
                text(
                    "INSERT INTO writeback_conflict (practice_id, module, table_name, row_id, animana_id, state, "
                    "fields, resolved_at) VALUES (:p, :m, :t, :id, :aid, 'auto_resolved', CAST(:f AS jsonb), now())"
                ),
                {
                    "p": entry.practice_id, "m": entry.module, "t": table_name, "id": entry.row_id, "aid": aid,
                    "f": json.dumps({"imported_copy": {
                        "local": entry.row_id, "animana": copy_id, "base": None,
                        "rule": "own_create_imported_by_sync", "decided": "local",
                    }}),
                },
            )  # fmt: skip
            if copy_version != answered_version:  # (our row had no Animana id: no hold can wait for it yet)
                hold_for_settlement(
                    session, entry.practice_id, table_name, [(entry.row_id, incoming, copy_version)]
                )
    return [a for a in answers if a[0].id not in blocked]


def mark_retry(
    session: Session, entry: OutboxEntry, error: str, delay_s: float, *, counts: bool = True
) -> None:
    """Not now: due again ``delay_s`` seconds from this moment (not from the transaction's start). ``counts``:
    an attempt that failed (towards the dead-letter limit and the backoff); Animana's "too many requests" or a
    parent still on its way is waiting, not failing — counted, a busy hour of 429s made dead letters of writes
    that never failed and pushed their backoff to minutes."""
    session.execute(
        text(
            "UPDATE writeback_outbox SET attempts = attempts + CASE WHEN :counts THEN 1 ELSE 0 END, "
            "last_error = :error, next_attempt_at = clock_timestamp() + make_interval(secs => :delay) "
            "WHERE practice_id = :practice AND id = :entry"
        ),
        {
            "practice": entry.practice_id,
            "entry": entry.id,
            "error": error,
            "delay": delay_s,
            "counts": counts,
        },
    )


def mark_dead(session: Session, entry: OutboxEntry, reason: str) -> None:
    """A dead letter: refused by Animana or failed too often; ``reason`` is what a person reads to fix it."""
    session.execute(
        text(
            "UPDATE writeback_outbox SET state = 'dead', attempts = attempts + 1, last_error = :reason "
            "WHERE practice_id = :practice AND id = :entry"
        ),
        {"practice": entry.practice_id, "entry": entry.id, "reason": reason},
    )


def retry_dead(session: Session, practice_id: int, ids: Iterable[int] | None = None) -> int:
    """Dead letters (all of the practice's, or ``ids``) pending again, due now, attempts from 0; how many.

    A dead letter is usually retried after a person fixed the row — a later change of it, waiting behind the dead
    entry. Those later updates are folded into the retried entry (superseded, naming it), so it is sent as the row
    is now instead of as Animana refused it; Animana kept nothing of a refused write, so its key takes the new body.
    """
    only = "AND id = ANY(:ids)" if ids is not None else ""
    result = session.execute(
        text(
            "WITH retried AS (UPDATE writeback_outbox SET state = 'pending', attempts = 0, next_attempt_at = now() "
            f"WHERE practice_id = :practice AND state = 'dead' {only} RETURNING id, table_name, row_id), "
            "folded AS (UPDATE writeback_outbox later SET state = 'superseded', "
            "last_error = 'folded into entry ' || retried.id || ' (retried)' FROM retried "
            "WHERE later.practice_id = :practice AND later.table_name = retried.table_name "
            "AND later.row_id = retried.row_id AND later.id > retried.id AND later.operation = 'update' "
            "AND later.state IN ('pending', 'dead')) "
            "SELECT count(*) FROM retried"
        ),
        {"practice": practice_id, "ids": list(ids or ())},
    )
    return int(result.scalar_one())
