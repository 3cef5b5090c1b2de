"""What a stored device message means for the record, decided one message at a time.

Raw first, never lost: the bytes are stored (``raw.store_raw``) before anything is interpreted, and everything
:func:`record_outcome` writes happens inside a SAVEPOINT: a row the database rejects (a constraint, a value out
of range) rolls back to the savepoint and the message goes to the inbox as ``load_failed`` with the database's
reason, in the same transaction as the raw copy. One commit covers both, so an MLLP ``AA`` sent after the
commit means "stored and decided".

Audited tables (lab_order, lab_observation, document…) lock the practice's audit chain head until commit, so
every audited write is done last and the transaction ends right after it.
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from warehouse.ingest.devices.imaging import load_imaging
from warehouse.ingest.devices.inputs import INBOX_LOAD_FAILED, INBOX_NO_MATCH, DeviceOutcome, RecordResult
from warehouse.ingest.devices.lab_results import load_results
from warehouse.ingest.devices.matching import PatientMatch
from warehouse.ingest.devices.raw import (
    claim_dedup_key,
    content_dedup_key,
    dedup_key_for,
    header_columns,
    note_shared_control_ids,
    safe_text,
    set_message,
    store_raw,
    utc_now,
)
from warehouse.ingest.devices.stored_outcome import encode_outcome
from warehouse.schema.ingestion import DeviceMessage


def ingest_raw(
    session: Session,
    practice_id: int,
    raw: bytes,
    source: str,
    filename: str | None,
    outcome: DeviceOutcome,
    *,
    master_key: bytes | None = None,
    dedup_by_content: bool = False,
) -> RecordResult:
    """``store_raw`` (claiming the dedup key) + ``record_outcome`` in the caller's transaction.

    ``dedup_by_content`` (file imports): a message without sender + control id is keyed by its bytes."""
    key = dedup_key_for(outcome)
    if key is None and dedup_by_content:
        key = content_dedup_key(raw)
    message_id = store_raw(session, practice_id, raw, source, filename, dedup_key=key)
    return record_outcome(session, practice_id, message_id, outcome, master_key=master_key)


def record_outcome(
    session: Session,
    practice_id: int,
    message_id: int,
    outcome: DeviceOutcome,
    *,
    master_key: bytes | None = None,
    chosen_patient_id: int | None = None,
    user_id: int | None = None,
) -> RecordResult:
    """Write what a stored message means: observations, an imaging study, or its inbox reason.

    ``chosen_patient_id`` (a person's decision in the inbox) replaces automatic matching. A message that is not
    a duplicate notes an earlier one of its sender with the same control id (``same_control_id_as``).
    """
    result = _record(session, practice_id, message_id, outcome, master_key, chosen_patient_id, user_id)
    if result.status == "duplicate":
        return result
    note = note_shared_control_ids(session, practice_id, [message_id]).get(message_id)
    return replace(result, same_control_id_as=note) if note is not None else result


def _record(
    session: Session,
    practice_id: int,
    message_id: int,
    outcome: DeviceOutcome,
    master_key: bytes | None,
    chosen_patient_id: int | None,
    user_id: int | None,
) -> RecordResult:
    msg = session.execute(
        select(
            DeviceMessage.status, DeviceMessage.duplicate_of, DeviceMessage.dedup_key, DeviceMessage.sha256
        ).where(DeviceMessage.practice_id == practice_id, DeviceMessage.id == message_id)
    ).one()
    header = header_columns(outcome)
    if msg.status == "duplicate":
        set_message(session, practice_id, message_id, **header)
        return RecordResult(message_id, "duplicate", duplicate_of=msg.duplicate_of)
    if msg.dedup_key is None and (key := dedup_key_for(outcome)) is not None:
        original = claim_dedup_key(session, practice_id, message_id, key)
        if original is not None:
            set_message(session, practice_id, message_id, **header, status="duplicate", duplicate_of=original,
                        processed_at=utc_now())  # fmt: skip
            return RecordResult(message_id, "duplicate", duplicate_of=original)

    def to_inbox(reason: str, detail: str | None) -> RecordResult:
        # Kept with the row: what a person resolves the message from (the inbox page has no parser).
        stored = encode_outcome(outcome, msg.sha256)
        return _to_inbox(
            session, practice_id, message_id, header | {"parsed_outcome": stored}, reason, detail
        )

    if outcome.inbox_reason is not None:
        return to_inbox(outcome.inbox_reason, outcome.inbox_detail)

    savepoint = session.begin_nested()
    try:
        if outcome.imaging is not None:
            result = load_imaging(session, practice_id, message_id, outcome.imaging, master_key,
                                  chosen_patient_id)  # fmt: skip
        else:
            result = load_results(session, practice_id, message_id, outcome.results, chosen_patient_id)
    except DBAPIError as exc:
        savepoint.rollback()
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        return to_inbox(INBOX_LOAD_FAILED, detail[:2000])
    if isinstance(result, PatientMatch):  # nothing written: no patient
        savepoint.rollback()
        return to_inbox(result.reason or INBOX_NO_MATCH, result.detail)
    savepoint.commit()
    patient_id, count = result
    status = "resolved" if chosen_patient_id is not None else "ingested"
    set_message(session, practice_id, message_id, **header, status=status, patient_id=patient_id,
                observation_count=count, inbox_reason=None, inbox_detail=None, parsed_outcome=None,
                processed_at=utc_now(), resolved_by=user_id if chosen_patient_id is not None else None)  # fmt: skip
    return RecordResult(message_id, status, count, patient_id)


def _to_inbox(
    session: Session, practice_id: int, message_id: int, header: dict, reason: str, detail: str | None
) -> RecordResult:
    detail = safe_text(detail) if detail else detail
    set_message(session, practice_id, message_id, **header, status="inbox", inbox_reason=safe_text(reason)[:64],
                inbox_detail=detail, processed_at=utc_now())  # fmt: skip
    return RecordResult(message_id, "inbox", inbox_reason=reason, inbox_detail=detail)
