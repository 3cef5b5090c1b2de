"""The conflict queue: fields VetConnect and Animana both changed that no rule could decide.

A practice manager sees, per field, the local value beside Animana's and picks one per field (or one side for
all). The choice is applied here; in hybrid and animana mode the result is written back to Animana with one
outbox entry (conditional on the Animana version the conflict saw); the row's held entries are superseded by it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

import polars as pl
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from warehouse.integration.capture import written_as
from warehouse.integration.errors import IntegrationError
from warehouse.integration.modes import mode_of
from warehouse.integration.settle import DELETED, ENCRYPTED, FieldValues, as_json
from warehouse.integration.tables import MIRRORED, MODULE_LABELS
from warehouse.security.permissions import INTEGRATION_MANAGE, Actor, require

Choice = Literal["local", "animana"]
# Column names as a person reads them (the rest are shown as they are).
COLUMN_LABELS = {
    "last_name": "surname", "first_name": "first name", "initials": "initials", "title": "title",
    "postcode": "postcode", "city": "city", "email_enc": "e-mail", "phone_enc": "phone",
    "address_enc": "address", "iban_enc": "IBAN", "active": "active", "name": "name", "species": "species",
    "breed": "breed", "sex": "sex", "date_of_birth": "date of birth", "microchip": "microchip",
    "status": "status", "starts_at": "starts", "ends_at": "ends", "resource_id": "vet/room",
    "reason": "reason", "subjective": "history (S)", "objective": "examination (O)", "assessment": "assessment (A)",
    "plan": "plan (P)", "cancelled_at": "cancelled at", "cancel_reason": "cancellation reason",
    "deleted_in_animana": "record (deleted in Animana)",
}  # fmt: skip


@dataclass(frozen=True)
class ConflictField:
    column: str
    label: str
    local: Any  # as a person reads it (decrypted; a timestamp as an instant)
    animana: Any
    base: Any


@dataclass(frozen=True)
class Conflict:
    id: int
    practice_id: int
    module: str
    table: str
    row_id: int
    animana_id: str | None
    detected_at: dt.datetime
    fields: list[ConflictField]
    what: str  # "client 123 (Animana 456)"


def open_conflicts(
    session: Session, practice_ids: list[int], *, master_key: bytes | None = None
) -> list[Conflict]:
    """Open conflicts of these practices, oldest first, with their values readable."""
    rows = session.execute(
        text(
            "SELECT id, practice_id, module, table_name, row_id, animana_id, detected_at, fields "
            "FROM writeback_conflict WHERE state = 'open' AND practice_id = ANY(:ps) ORDER BY detected_at, id"
        ),
        {"ps": practice_ids},
    ).all()
    readers: dict[int, FieldValues] = {}
    found = []
    for r in rows:
        values = readers.setdefault(r.practice_id, FieldValues(session, r.practice_id, master_key))
        fields = [
            ConflictField(
                column,
                COLUMN_LABELS.get(column, column),
                _readable(values, column, f.get("local")),
                _readable(values, column, f.get("animana")),
                _readable(values, column, f.get("base")),
            )
            for column, f in sorted(r.fields.items())
        ]
        label = MIRRORED[r.table_name].label
        what = f"{label} {r.row_id}" + (f" (Animana {r.animana_id})" if r.animana_id else "")
        found.append(
            Conflict(
                r.id,
                r.practice_id,
                r.module,
                r.table_name,
                r.row_id,
                r.animana_id,
                r.detected_at,
                fields,
                what,
            )
        )
    return found


def _readable(values: FieldValues, column: str, value: Any) -> Any:
    try:
        return values.clear(column, value)
    except ValueError:  # no master key at hand: say so rather than show ciphertext
        return "(encrypted)" if column in ENCRYPTED and value is not None else value


def conflicts_frame(conflicts: list[Conflict]) -> pl.DataFrame:
    """One row per conflicting field, for a table or ``--json``."""
    return pl.DataFrame(
        [
            {
                "conflict": c.id,
                "practice_id": c.practice_id,
                "module": MODULE_LABELS[c.module],
                "record": c.what,
                "field": f.label,
                "local": _text(f.local),
                "animana": _text(f.animana),
                "detected_at": c.detected_at,
            }
            for c in conflicts
            for f in c.fields
        ],
        schema={
            "conflict": pl.Int64, "practice_id": pl.Int64, "module": pl.Utf8, "record": pl.Utf8,
            "field": pl.Utf8, "local": pl.Utf8, "animana": pl.Utf8,
            "detected_at": pl.Datetime(time_zone="UTC"),
        },
    )  # fmt: skip


def _text(value: Any) -> str:
    if value is None:
        return "—"
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).isoformat()
    return str(value)


def resolve(
    session: Session, actor: Actor, conflict_id: int, choice: Mapping[str, Choice]
) -> dict[str, Choice]:
    """Apply a person's choice per field (every field of the conflict needs one) and, unless the module is
    native, write the result back to Animana through the outbox. Returns the choice as applied."""
    conflict = session.execute(
        text(
            "SELECT id, practice_id, module, table_name, row_id, fields, animana_version, state "
            "FROM writeback_conflict WHERE id = :id FOR UPDATE"
        ),
        {"id": conflict_id},
    ).one_or_none()
    if conflict is None:
        raise IntegrationError(
            "conflict", f"Conflict {conflict_id} does not exist (or not at your practices)."
        )
    require(actor, INTEGRATION_MANAGE, conflict.practice_id)
    if conflict.state != "open":
        raise IntegrationError("conflict", f"Conflict {conflict_id} is already resolved.")
    missing = sorted(set(conflict.fields) - set(choice))
    if missing:
        labels = ", ".join(COLUMN_LABELS.get(c, c) for c in missing)
        raise IntegrationError("choice", f"Choose a side for every field; still open: {labels}.")
    wrong = {c: v for c, v in choice.items() if v not in ("local", "animana") or c not in conflict.fields}
    if wrong:
        raise IntegrationError("choice", f"Not a valid choice for {', '.join(sorted(wrong))}.")
    practice_id, table, row_id = conflict.practice_id, conflict.table_name, conflict.row_id
    key = {"p": practice_id, "t": table, "id": row_id}

    with written_as(session, "writeback"):
        pending = _apply_choice(session, conflict, choice, actor)
    session.execute(
        text(
            "INSERT INTO audit_log (practice_id, action, entity, entity_ids, detail, prev_hash, hash) "
            "VALUES (:p, 'update', 'writeback_conflict', ARRAY[CAST(:cid AS bigint)], "
            "jsonb_build_object('table', CAST(:t AS text), 'row_id', CAST(:id AS bigint), 'choice', CAST(:choice AS jsonb), "
            "'written_back', CAST(:pending AS boolean)), '', '')"
        ),
        {**key, "cid": conflict_id, "choice": as_json(dict(choice)), "pending": pending},
    )
    return dict(choice)


def _apply_choice(session: Session, conflict: Any, choice: Mapping[str, Choice], actor: Actor) -> bool:
    """The chosen values on the row, the held entries superseded, one entry with the result; True when the
    result goes to Animana."""
    conflict_id, practice_id, table, row_id = (
        conflict.id,
        conflict.practice_id,
        conflict.table_name,
        conflict.row_id,
    )
    key = {"p": practice_id, "t": table, "id": row_id}
    if choice.get(DELETED) == "animana":  # deleted in Animana, and now here too
        _supersede(session, key, conflict_id)
        try:
            with session.begin_nested():
                session.execute(text(f"DELETE FROM {table} WHERE practice_id = :p AND id = :id"), key)
        except IntegrityError:
            raise IntegrationError(
                "choice",
                f"This {MIRRORED[table].label} cannot be deleted here: other records still point at it.",
            ) from None
        _close(session, conflict, choice, actor)
        return False
    take = {
        c: conflict.fields[c]["animana"] for c, side in choice.items() if side == "animana" and c != DELETED
    }
    if take:
        assignments = ", ".join(f"{c} = r.{c}" for c in take)
        session.execute(
            text(
                f"UPDATE {table} t SET {assignments} FROM jsonb_populate_record(NULL::{table}, "
                "CAST(:values AS jsonb)) r WHERE t.practice_id = :p AND t.id = :id"
            ),
            {**key, "values": as_json(take)},
        )
    entries = _supersede(session, key, conflict_id)
    current = session.execute(
        text(f"SELECT to_jsonb(t) FROM {table} t WHERE practice_id = :p AND id = :id"), key
    ).scalar_one()
    operation = "update"
    send: dict[str, Any] = {}
    if choice.get(DELETED) == "local":  # kept here: Animana gets it again, as a new record
        operation = "insert"
        send = {
            c: v
            for c, v in current.items()
            if c not in ("animana_id", "animana_version", "writeback_pending")
        }
        session.execute(
            text(
                f"UPDATE {table} SET animana_id = NULL, animana_version = NULL WHERE practice_id = :p AND id = :id"
            ),
            key,
        )
    for entry in sorted(entries, key=lambda e: e.id):
        send.update({c: current.get(c) for c in entry.changes if c not in take})
    send.update({c: current.get(c) for c, side in choice.items() if side == "local" and c != DELETED})
    pending = bool(send) and mode_of(session, practice_id, conflict.module) != "native"
    if pending:
        session.execute(
            text(
                "INSERT INTO writeback_outbox (practice_id, module, table_name, row_id, operation, changes, "
                "created_by) VALUES (:p, :module, :t, :id, :operation, CAST(:changes AS jsonb), :user)"
            ),
            {**key, "module": conflict.module, "operation": operation, "changes": as_json(send),
             "user": actor.user_id},
        )  # fmt: skip
    _close(session, conflict, choice, actor)
    session.execute(
        text(
            f"UPDATE {table} SET writeback_pending = :pending, "
            "animana_version = coalesce(:v, animana_version) WHERE practice_id = :p AND id = :id"
        ),
        {**key, "pending": pending, "v": conflict.animana_version},
    )
    return pending


def _supersede(session: Session, key: Mapping[str, Any], conflict_id: int) -> list[Any]:
    """The row's open entries give way to the resolution; returns them (id, changes)."""
    return list(
        session.execute(
            text(
                "UPDATE writeback_outbox SET state = 'superseded', last_error = :why WHERE practice_id = :p "
                "AND table_name = :t AND row_id = :id AND state IN ('pending', 'held', 'dead') "
                "RETURNING id, changes"
            ),
            {**key, "why": f"replaced by the resolution of conflict {conflict_id}"},
        ).all()
    )


def _close(session: Session, conflict: Any, choice: Mapping[str, Choice], actor: Actor) -> None:
    fields = {c: {**f, "decided": choice[c]} for c, f in conflict.fields.items()}
    session.execute(
        text(
            "UPDATE writeback_conflict SET state = 'resolved', resolved_at = now(), resolved_by = :user, "
            "fields = CAST(:fields AS jsonb) WHERE practice_id = :p AND id = :cid"
        ),
        {"p": conflict.practice_id, "cid": conflict.id, "user": actor.user_id, "fields": as_json(fields)},
    )
