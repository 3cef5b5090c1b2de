"""The device inbox: messages that wait for a person, what they decide, and the trace of judged messages.

A person picks the patient of a message (:func:`resolve_inbox`: from the outcome kept with the row, so the
page that does it needs no parser), or the retry job re-processes messages from their raw copies with the
newest parser when an order or patient may exist by now (:func:`reprocess_inbox`). Duplicates and reused
control ids are listed by :func:`set_aside`, so that no message disappears without a person being able to see
why.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from warehouse.ingest.devices.inputs import InboxError, RawParser, RecordResult
from warehouse.ingest.devices.matching import require_patient
from warehouse.ingest.devices.raw import set_message
from warehouse.ingest.devices.recording import record_outcome
from warehouse.ingest.devices.stored_outcome import decode_outcome
from warehouse.schema.ingestion import DeviceMessage
from warehouse.security.permissions import DEVICE_INBOX, Actor, require


@dataclass(frozen=True, slots=True)
class InboxItem:
    message_id: int
    practice_id: int
    received_at: dt.datetime
    source: str
    filename: str | None
    detected_format: str | None
    sender: str | None
    control_id: str | None
    reason: str | None
    detail: str | None
    attempts: int
    size_bytes: int


@dataclass(frozen=True, slots=True)
class SetAsideItem:
    """A message a person may want to check: not loaded because its content was already loaded
    (``duplicate_of``), or loaded although its control id was used before (``same_control_id_as``)."""

    message_id: int
    practice_id: int
    received_at: dt.datetime
    sender: str | None
    control_id: str | None
    duplicate_of: int | None
    same_control_id_as: int | None


@dataclass(frozen=True, slots=True)
class ReprocessSummary:
    retried: int = 0
    ingested: int = 0
    still_inbox: int = 0


def inbox(session: Session, *, limit: int = 200) -> list[InboxItem]:
    """Messages waiting for a person, oldest first, in the practices the session may see."""
    rows = session.execute(
        select(DeviceMessage)
        .where(DeviceMessage.status == "inbox")
        .order_by(DeviceMessage.received_at, DeviceMessage.id)
        .limit(limit)
    ).scalars()
    return [
        InboxItem(
            m.id,
            m.practice_id,
            m.received_at,
            m.source,
            m.filename,
            m.detected_format,
            m.sender,
            m.control_id,
            m.inbox_reason,
            m.inbox_detail,
            m.attempts,
            m.size_bytes,
        )  # fmt: skip
        for m in rows
    ]


def set_aside(session: Session, *, since: dt.datetime, limit: int = 200) -> list[SetAsideItem]:
    """Duplicates and reused control ids received since ``since``, newest first: the trace of every
    message the device path judged, so that none disappears without a person being able to see why."""
    rows = session.execute(
        select(DeviceMessage)
        .where(
            DeviceMessage.received_at >= since,
            (DeviceMessage.status == "duplicate") | DeviceMessage.same_control_id_as.is_not(None),
        )
        .order_by(DeviceMessage.received_at.desc(), DeviceMessage.id.desc())
        .limit(limit)
    ).scalars()
    return [
        SetAsideItem(
            m.id,
            m.practice_id,
            m.received_at,
            m.sender or m.source,
            m.control_id,
            m.duplicate_of,
            m.same_control_id_as,
        )  # fmt: skip
        for m in rows
    ]


def _locked_inbox_message(session: Session, message_id: int) -> DeviceMessage:
    msg = session.scalar(select(DeviceMessage).where(DeviceMessage.id == message_id).with_for_update())
    if msg is None:
        raise InboxError(f"no device message {message_id} in your practices")
    if msg.status != "inbox":
        raise InboxError(f"device message {message_id} is {msg.status}, not in the inbox")
    return msg


def resolve_inbox(
    session: Session,
    message_id: int,
    patient_id: int,
    actor: Actor | None,
    *,
    master_key: bytes | None = None,
    parser: RawParser | None = None,
) -> RecordResult:
    """A person picked the patient: load the message for that patient (status ``resolved``).

    The message is loaded as it was read when it went to the inbox or was last retried (the outcome kept
    with the row); with ``parser`` (the devices CLI) the raw copy is read again instead. ``actor`` None is the
    operator at the command line (``vetconnect devices resolve``), who has no account."""
    msg = _locked_inbox_message(session, message_id)
    if actor is not None:
        require(actor, DEVICE_INBOX, msg.practice_id)
    user_id = None if actor is None else actor.user_id
    if parser is not None:
        outcome = parser(bytes(msg.raw), msg.source, msg.filename)
    elif msg.parsed_outcome is not None:
        outcome = decode_outcome(msg.parsed_outcome, bytes(msg.raw))
    else:
        raise InboxError(
            f"device message {message_id} went to the inbox before its parsed form was kept: the inbox retry "
            "reads it again (every 15 minutes, or `vetconnect devices retry`), then it can be resolved here"
        )
    if outcome.inbox_reason is not None:
        raise InboxError(
            f"device message {message_id} cannot be loaded for any patient: {outcome.inbox_reason}: "
            f"{outcome.inbox_detail}"
        )
    require_patient(session, msg.practice_id, patient_id)
    set_message(session, msg.practice_id, message_id, attempts=msg.attempts + 1)
    result = record_outcome(session, msg.practice_id, message_id, outcome, master_key=master_key,
                            chosen_patient_id=patient_id, user_id=user_id)  # fmt: skip
    if result.status != "resolved":
        raise InboxError(f"device message {message_id} could not be loaded: {result.inbox_detail}")
    return result


def reprocess_inbox(
    session: Session,
    *,
    parser: RawParser,
    master_key: bytes | None = None,
    limit: int = 100,
    reasons: Sequence[str] | None = None,
) -> ReprocessSummary:
    """Retry inbox messages from their raw copy (an order or patient may exist by now). Rows locked by a
    concurrent retry are skipped, so two retry runs never load one message twice."""
    query = (
        select(DeviceMessage)
        .where(DeviceMessage.status == "inbox")
        .order_by(DeviceMessage.received_at, DeviceMessage.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
    )
    if reasons is not None:
        query = query.where(DeviceMessage.inbox_reason.in_(list(reasons)))
    retried = ingested = 0
    for msg in session.scalars(query).all():
        retried += 1
        outcome = parser(bytes(msg.raw), msg.source, msg.filename)
        set_message(session, msg.practice_id, msg.id, attempts=msg.attempts + 1)
        result = record_outcome(session, msg.practice_id, msg.id, outcome, master_key=master_key)
        ingested += result.status == "ingested"
    return ReprocessSummary(retried, ingested, retried - ingested)
