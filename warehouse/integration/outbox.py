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
import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Table, select, text
from sqlalchemy.orm import Session

from warehouse.integration.capture import writing_as
from warehouse.integration.tables import MIRRORED
from warehouse.kernel.ciphers import practice_cipher
from warehouse.kernel.crypto import FieldCipher
from warehouse.schema import Base

OPEN_STATES = ("pending", "held", "dead")
# A client's PII is stored encrypted; the write-back mappings see it decrypted under these names.
ENCRYPTED_PII = {"email_enc": "email", "phone_enc": "phone", "address_enc": "address", "iban_enc": "iban"}
_BLIND_INDEXES = ("email_bidx", "phone_bidx")


class ParentNotInAnimana(Exception):  # noqa: N818 — a state to wait out, not a failure
    """A row the write points at (an appointment's patient…) has not reached Animana yet: the write waits."""

    def __init__(self, table: str, local_id: int) -> None:
        super().__init__(f"wacht op {MIRRORED[table].label if table in MIRRORED else table} {local_id}")
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
    row: dict[str, Any]  # the row as this entry left it, typed, PII decrypted; {} for a delete


# Pending, due, the oldest open entry of its row, and not of a module gone native (captured before the switch).
_DUE = """
SELECT o.id, o.module, o.table_name, o.row_id, o.operation, o.changes, o.base, o.idempotency_key::text AS key,
       o.attempts,
       (SELECT coalesce(jsonb_agg(later.base ORDER BY later.id DESC), '[]'::jsonb) FROM writeback_outbox later
         WHERE later.practice_id = o.practice_id AND later.table_name = o.table_name AND later.row_id = o.row_id
           AND later.id > o.id AND later.state <> 'superseded') AS later_bases,
       (SELECT done.answered_version FROM writeback_outbox done
         WHERE done.practice_id = o.practice_id AND done.table_name = o.table_name AND done.row_id = o.row_id
           AND done.state = 'done' AND done.sent_at > o.created_at
         ORDER BY done.id DESC LIMIT 1) AS answered_since
  FROM writeback_outbox o
 WHERE o.practice_id = :practice AND o.state = 'pending' AND o.next_attempt_at <= now() {only}
   AND NOT EXISTS (SELECT 1 FROM writeback_outbox earlier
                    WHERE earlier.practice_id = o.practice_id AND earlier.table_name = o.table_name
                      AND earlier.row_id = o.row_id AND earlier.id < o.id
                      AND earlier.state IN ('pending', 'held', 'dead'))
   AND coalesce((SELECT m.mode FROM practice_module_mode m
                  WHERE m.practice_id = o.practice_id AND m.module = o.module), 'animana') <> 'native'
 ORDER BY o.id
 LIMIT :limit
   FOR UPDATE OF o SKIP LOCKED
"""


def due_entries(
    session: Session, practice_id: int, limit: int, *, master_key: bytes, ids: Iterable[int] | None = None
) -> list[OutboxEntry]:
    """Claim up to ``limit`` due entries of the practice, oldest first (see the module docstring); ``ids``: only
    these entries (the gateway's own). The rows come in one query per table involved."""
    only = "AND o.id = ANY(:ids)" if ids is not None else ""
    params: dict[str, Any] = {"practice": practice_id, "limit": limit}
    if ids is not None:
        params["ids"] = list(ids)
    claimed = session.execute(text(_DUE.format(only=only)), params).all()
    rows: dict[tuple[str, int], dict[str, Any]] = {}
    for table_name in {c.table_name for c in claimed}:
        wanted = [c.row_id for c in claimed if c.table_name == table_name]
        rows.update(((table_name, i), r) for i, r in _rows(session, practice_id, table_name, wanted).items())
    ciphers: dict[int | None, FieldCipher] = {}
    entries = []
    for c in claimed:
        current = rows.get((c.table_name, c.row_id))
        # A row deleted since keeps its values in the delete's base: an insert or update before it is still sent
        # as it was (and the delete after it).
        row: dict[str, Any] = dict(current or {})
        for base in c.later_bases:
            row.update(_typed(_table(c.table_name), base))
        if any(column in row for column in ENCRYPTED_PII):
            key_version = row.get("key_version")
            if key_version not in ciphers:
                ciphers[key_version] = practice_cipher(session, practice_id, master_key, key_version)
            row = _decrypted(row, ciphers[key_version])
        identity = row or _typed(_table(c.table_name), c.base)  # a delete: the row's values before it
        # A change of the row sent after the delete was made answered with a newer version than the deleted row
        # holds (its answer had no row left to be stored on).
        version = (
            c.answered_since
            if c.operation == "delete" and c.answered_since
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
            )
        )
    return entries


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


_OPEN_ELSEWHERE = """
EXISTS (SELECT 1 FROM writeback_outbox o WHERE o.practice_id = t.practice_id AND o.table_name = :table
         AND o.row_id = t.id AND o.id <> :entry AND o.state IN ('pending', 'held', 'dead'))
OR EXISTS (SELECT 1 FROM writeback_conflict c WHERE c.practice_id = t.practice_id AND c.table_name = :table
            AND c.row_id = t.id AND c.state = 'open')
"""


def mark_sent(session: Session, entry: OutboxEntry, animana_id: str | None, version: str | None) -> None:
    """Animana has the entry: it is done, and the row (as writer ``writeback``, so nothing is captured) gets the
    Animana id and version it answered with; the row stays pending only while another entry or a conflict of it
    is open. One statement (the entry's own update is not yet visible to the row's, hence ``o.id <> :entry``)."""
    writing_as(session, "writeback")
    params = {
        "practice": entry.practice_id,
        "entry": entry.id,
        "version": version,
        "animana_id": animana_id,
        "row": entry.row_id,
        "table": entry.table_name,
    }
    done = (
        "UPDATE writeback_outbox SET state = 'done', sent_at = clock_timestamp(), answered_version = :version, "
        "attempts = attempts + 1, last_error = NULL WHERE practice_id = :practice AND id = :entry"
    )
    if entry.operation == "delete":
        session.execute(text(done), params)
        return
    table = session.get_bind().dialect.identifier_preparer.quote(_table(entry.table_name).name)
    session.execute(
        text(
            f"WITH done AS ({done} RETURNING 1) "
            f"UPDATE {table} t SET animana_id = coalesce(:animana_id, t.animana_id), animana_version = :version, "
            f"writeback_pending = ({_OPEN_ELSEWHERE}) WHERE t.practice_id = :practice AND t.id = :row"
        ),
        params,
    )


def mark_retry(session: Session, entry: OutboxEntry, error: str, delay_s: float) -> None:
    """Not now: due again ``delay_s`` seconds from this moment (not from the transaction's start)."""
    session.execute(
        text(
            "UPDATE writeback_outbox SET attempts = attempts + 1, last_error = :error, "
            "next_attempt_at = clock_timestamp() + make_interval(secs => :delay) "
            "WHERE practice_id = :practice AND id = :entry"
        ),
        {"practice": entry.practice_id, "entry": entry.id, "error": error, "delay": delay_s},
    )


def note_waiting(session: Session, entries: Iterable[tuple[int, int]], reason: str) -> None:
    """Leave entries ((practice, id) pairs) pending, saying why they are not sent (a practice not linked…)."""
    session.execute(
        text(
            "UPDATE writeback_outbox SET last_error = :reason WHERE practice_id = :practice AND id = :entry"
        ),
        [{"practice": practice, "entry": entry, "reason": reason} for practice, entry in entries],
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
            "last_error = 'opgenomen in ' || retried.id || ' (opnieuw geprobeerd)' FROM retried "
            "WHERE later.practice_id = :practice AND later.table_name = retried.table_name "
            "AND later.row_id = retried.row_id AND later.id > retried.id AND later.operation = 'update' "
            "AND later.state IN ('pending', 'dead')) "
            "SELECT count(*) FROM retried"
        ),
        {"practice": practice_id, "ids": list(ids or ())},
    )
    return int(result.scalar_one())
