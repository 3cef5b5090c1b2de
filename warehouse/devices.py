"""Device results into the record: raw first, then observations, imaging or an inbox entry (architecture §6).

The inputs are plain frozen dataclasses defined here (``DeviceOutcome`` and friends), so this module knows
nothing about HL7, ASTM or DICOM; ``connectors.devices.ingest`` maps parser output onto them. Re-processing a
stored raw copy needs a parser, which is passed in as a ``RawParser`` callable for the same reason.

Guarantees, and how they are kept:

- **Raw first, never lost.** ``store_raw`` inserts the bytes before anything is interpreted, and everything
  ``record_outcome`` writes happens inside a SAVEPOINT: a row the database rejects (a constraint, a value out
  of range) rolls back to the savepoint and the message goes to the inbox as ``load_failed`` with the
  database's reason, in the same transaction as the raw copy. One commit covers both, so an MLLP ``AA`` sent
  after the commit means "stored and decided".
- **Duplicates are decided by the database, by content.** ``dedup_key`` (format + the fingerprint of the
  content without the transmission envelope, ``DeviceOutcome.fingerprint``) is claimed by the raw INSERT itself
  with ``ON CONFLICT DO NOTHING`` on the partial unique index. A concurrent transaction holding the same key
  makes PostgreSQL wait for it; the loser stores its copy as ``duplicate`` pointing at the winner and loads
  nothing. A control id is not a key: analysers reuse them, so the same sender + control id with other
  content is a new message, loaded, with ``same_control_id_as`` pointing at the first other one (a note a
  person sees). The batch path (``_ingest_common``) and ``record_outcome`` use the same key and the same note.
- **Corrections keep history.** A corrected (HL7 ``C``) or cancelled result inserts a new row and points
  every current earlier row of the same patient, lab order and code at it through ``superseded_by``; a final
  result does the same to earlier preliminary ones. Nothing is updated in place except that pointer.
- **Matching is exact.** Lab order by accession/order number first, then microchip, then patient id plus the
  owner's last name. Anything else goes to the inbox with a reason naming what was looked for.

Audited tables (lab_order, lab_observation, document…) lock the practice's audit chain head until commit, so
every audited write is done last and the transaction ends right after it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import re
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from decimal import Decimal

from sqlalchemy import Engine, Row, bindparam, insert, or_, select, text, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from warehouse.kernel.crypto import decrypt_document, encrypt_document
from warehouse.kernel.tenancy import AccessContext, apply_context
from warehouse.records.service import cipher
from warehouse.schema.clients import Client, ClientPatient, Patient
from warehouse.schema.clinical import Document, LabObservation, LabOrder
from warehouse.schema.ingestion import DeviceMessage, DocumentContent, ImagingStudy
from warehouse.security.permissions import DEVICE_INBOX, Actor, require

__all__ = [
    "DeviceOutcome",
    "ImagingInput",
    "InboxError",
    "InboxItem",
    "LabOrderInput",
    "LabResultInput",
    "ObservationInput",
    "PatientChoice",
    "PatientKeys",
    "PatientMatch",
    "RawParser",
    "RawItem",
    "RecordResult",
    "ReprocessSummary",
    "content_dedup_key",
    "dedup_key_for",
    "device_session",
    "document_bytes",
    "find_patients",
    "inbox",
    "ingest_many",
    "ingest_raw",
    "match_patient",
    "record_outcome",
    "reprocess_inbox",
    "resolve_inbox",
    "store_raw",
]

# Column limits the mapper must respect (read from the schema, so they cannot drift).
CODE_MAX = LabObservation.__table__.c.code.type.length
CODE_SYSTEM_MAX = LabObservation.__table__.c.code_system.type.length
TEXT_MAX = LabObservation.__table__.c.text.type.length
UNIT_MAX = LabObservation.__table__.c.unit.type.length
FLAG_MAX = LabObservation.__table__.c.abnormal_flag.type.length
ACCESSION_MAX = LabOrder.__table__.c.accession_number.type.length
NUMERIC_LIMIT = Decimal(10) ** 12  # Numeric(18, 6): twelve digits before the point
OBSERVATION_STATUSES = ("preliminary", "final", "corrected", "cancelled")

INBOX_NO_MATCH = "no_patient_match"
INBOX_AMBIGUOUS = "ambiguous_patient"
INBOX_CONFLICT = "patient_conflict"
INBOX_LOAD_FAILED = "load_failed"
INBOX_NO_KEY = "encryption_unavailable"


# --- inputs ------------------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class ObservationInput:
    """One result, already shaped for ``lab_observation`` (lengths within the column limits)."""

    code: str
    status: str
    code_system: str | None = None
    text: str | None = None
    value_numeric: Decimal | None = None
    value_text: str | None = None
    unit: str | None = None
    ref_low: Decimal | None = None
    ref_high: Decimal | None = None
    ref_text: str | None = None
    abnormal_flag: str | None = None
    observed_at: dt.datetime | None = None


@dataclass(frozen=True, slots=True)
class LabOrderInput:
    accession: str | None
    placer_number: str | None = None
    test_code: str | None = None
    test_name: str | None = None
    observed_at: dt.datetime | None = None
    observations: tuple[ObservationInput, ...] = ()

    @property
    def numbers(self) -> tuple[str, ...]:
        return tuple(n for n in (self.accession, self.placer_number) if n)


@dataclass(frozen=True, slots=True)
class PatientKeys:
    """What a device tells about the animal: exact keys only (no name guessing)."""

    microchip: str | None = None
    identifiers: tuple[str, ...] = ()
    owner_name: str | None = None
    name: str | None = None


@dataclass(frozen=True, slots=True)
class LabResultInput:
    patient: PatientKeys
    orders: tuple[LabOrderInput, ...]
    sent_at: dt.datetime | None = None
    lab: str | None = None


@dataclass(frozen=True, slots=True)
class ImagingInput:
    patient: PatientKeys
    accession: str | None
    content: bytes
    content_type: str = "application/dicom"
    study_uid: str | None = None
    series_uid: str | None = None
    instance_uid: str | None = None
    modality: str | None = None
    body_part: str | None = None
    study_date: dt.date | None = None
    description: str | None = None
    animal_id_text: str | None = None
    animal_name: str | None = None
    species: str | None = None
    breed: str | None = None
    preview_png: bytes | None = None


@dataclass(frozen=True, slots=True)
class DeviceOutcome:
    """What one received blob means for the record: lab results, an imaging study, or an inbox reason."""

    detected_format: str
    sender: str | None = None
    control_id: str | None = None
    results: tuple[LabResultInput, ...] = ()
    imaging: ImagingInput | None = None
    inbox_reason: str | None = None
    inbox_detail: str | None = None
    # SHA-256 of the content without what a resend may change (connectors.devices.fingerprint): the same
    # fingerprint from the same format is the same message. None: nothing to compare, never a duplicate.
    fingerprint: str | None = None


RawParser = Callable[[bytes, str, str | None], DeviceOutcome]


@dataclass(frozen=True, slots=True)
class RecordResult:
    message_id: int
    status: str
    observation_count: int = 0
    patient_id: int | None = None
    inbox_reason: str | None = None
    inbox_detail: str | None = None
    duplicate_of: int | None = None
    same_control_id_as: int | None = None  # loaded although this sender's control id was seen (other content)


@dataclass(frozen=True, slots=True)
class PatientMatch:
    patient_id: int | None
    how: str | None = None  # accession | microchip | patient_id_owner | chosen
    reason: str | None = None
    detail: str | None = None


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
class PatientChoice:
    practice_id: int
    patient_id: int
    name: str
    species: str
    microchip: str | None
    owners: str


@dataclass(frozen=True, slots=True)
class ReprocessSummary:
    retried: int = 0
    ingested: int = 0
    still_inbox: int = 0


class InboxError(ValueError):
    """An inbox action that cannot be done (unknown message, not in the inbox, unreadable raw copy)."""


# --- storing -----------------------------------------------------------------------------------------------


@contextmanager
def device_session(engine: Engine, practice_id: int) -> Iterator[Session]:
    """One transaction of a practice's device feed under row-level security (commits on success).

    ``tenant_session`` also attaches ``practice_id IN (…)`` loader criteria for every practice entity so ORM
    statements prune partitions at plan time; building them costs several milliseconds per session - more
    than the database work of a whole group-commit batch of the MLLP listener. Every statement of the ingest
    path in this module names its ``practice_id``, so partitions are pruned without them; the policies still
    decide what is visible.
    """
    with Session(engine, expire_on_commit=False) as session, session.begin():
        _replan_when_due(session)
        apply_context(session, AccessContext.for_practices([practice_id]))
        yield session


# A device connection's cached plans are dropped this often (seconds). Every stored result runs foreign-key
# checks (lab_observation -> lab_order, patient) whose plans PostgreSQL keeps for the connection's life. A plan
# made while lab_order was small or never analysed (a new installation or practice, a feed that just started)
# reads all of the practice's orders for every result row (108 µs a row at 2,000 orders against 3 µs) and is
# only replaced when autovacuum's next ANALYZE invalidates it: up to a minute, and then only after 10 % growth.
# The MLLP bench without that ANALYZE measured 279 msg/s against 603. Re-planning once a second costs a few ms.
REPLAN_SECONDS = 1.0


def _replan_when_due(session: Session) -> None:
    info = session.connection().info  # per database connection, kept across pool check-outs
    now = time.monotonic()
    planned_since = info.setdefault("device_plans_since", now)
    if now - planned_since >= REPLAN_SECONDS:
        session.execute(text("DISCARD PLANS"))
        info["device_plans_since"] = now


def dedup_key_for(outcome: DeviceOutcome) -> str | None:
    """Format + content fingerprint; None without a fingerprint (then the message is never a duplicate).

    The sender is part of the fingerprinted content (MSH-3/4, H-5), so it needs no place of its own here."""
    if not outcome.fingerprint:
        return None
    return f"{_safe(outcome.detected_format)[:16]}|sha256:{outcome.fingerprint}"


def _sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _clip(value: str | None, length: int) -> str | None:
    return _safe(value)[:length] if value else None


def _safe(value: str) -> str:
    """PostgreSQL text cannot hold NUL; a device can send one. Shown as U+FFFD, the rest is kept."""
    return value.replace("\x00", "\ufffd")


def store_raw(
    session: Session,
    practice_id: int,
    raw: bytes,
    source: str,
    filename: str | None = None,
    *,
    dedup_key: str | None = None,
) -> int:
    """Store the bytes as received (status ``received``) and return the message id.

    With ``dedup_key`` the insert also claims the key; if another message holds it (committed, or in a
    concurrent transaction that then commits) this copy is stored as ``duplicate`` pointing at the original.
    """
    values = {
        "practice_id": practice_id,
        "source": _safe(source)[:200],
        "filename": _clip(filename, 255),
        "raw": raw,
        "sha256": _sha(raw),
        "size_bytes": len(raw),
        "status": "received",
    }
    if dedup_key is not None:
        claimed = session.execute(
            pg_insert(DeviceMessage)
            .values(**values, dedup_key=dedup_key)
            .on_conflict_do_nothing(
                index_elements=["practice_id", "dedup_key"], index_where=text("dedup_key IS NOT NULL")
            )
            .returning(DeviceMessage.id)
        ).scalar_one_or_none()
        if claimed is not None:
            return claimed
        original = session.scalar(
            select(DeviceMessage.id).where(
                DeviceMessage.practice_id == practice_id, DeviceMessage.dedup_key == dedup_key
            )
        )
        values |= {"status": "duplicate", "duplicate_of": original, "processed_at": _now()}
    return session.execute(insert(DeviceMessage).values(**values).returning(DeviceMessage.id)).scalar_one()


def content_dedup_key(raw: bytes) -> str:
    """The dedup key of a file that carries no control id: its content. The same bytes dropped again (an
    import that stopped between its commit and moving the file, or a re-sent file) are then a duplicate."""
    return f"content|sha256:{_sha(raw)}"


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


@dataclass(frozen=True, slots=True)
class RawItem:
    """One received blob and what it means, for :func:`ingest_many`."""

    raw: bytes
    source: str
    outcome: DeviceOutcome
    filename: str | None = None


def ingest_many(
    session: Session, practice_id: int, items: Sequence[RawItem], *, master_key: bytes | None = None
) -> list[RecordResult | Exception]:
    """``ingest_raw`` for many messages in the caller's transaction, one result (or the exception) per item.

    The common case - a lab result for a known patient (by microchip) on a new accession number - is written
    for the whole batch at once (:func:`_ingest_common`: one lookup, then one INSERT each into device_message,
    lab_order and lab_observation, whatever the batch size) inside one SAVEPOINT. Everything else, and the
    whole batch if that SAVEPOINT fails, goes through ``ingest_raw`` one message at a time, each in its own
    SAVEPOINT so one bad message cannot take the others down. Either way a message's raw copy and its outcome
    are written in the same transaction; the caller's commit makes them visible together.
    """
    results: list[RecordResult | Exception | None] = [None] * len(items)
    common: dict[int, RecordResult] = {}
    if any(_common_candidate(item.outcome) for item in items):
        savepoint = session.begin_nested()
        try:
            common = _ingest_common(session, practice_id, items)
        except (DBAPIError, _Declined):  # e.g. a concurrent writer created the same accession: one by one
            savepoint.rollback()
            common = {}
        else:
            savepoint.commit()
    for index, record in common.items():
        results[index] = record
    for index, item in enumerate(items):
        if results[index] is not None:
            continue
        savepoint = session.begin_nested()
        try:
            results[index] = ingest_raw(session, practice_id, item.raw, item.source, item.filename,
                                        item.outcome, master_key=master_key)  # fmt: skip
        except Exception as exc:  # this message only; the caller reports it (an MLLP sender gets AE)
            savepoint.rollback()
            results[index] = exc
        else:
            savepoint.commit()
    return [r for r in results if r is not None]


_COMMON_LOOKUP = text(
    """
    SELECT 'order' AS kind, accession_number AS key, patient_id AS patient_id
      FROM lab_order WHERE practice_id = :practice_id AND accession_number = ANY(CAST(:numbers AS text[]))
    UNION ALL
    SELECT 'chip', microchip, id
      FROM patient WHERE practice_id = :practice_id AND microchip = ANY(CAST(:chips AS text[])) AND deleted_at IS NULL
    """
)
_COMMON_MESSAGES = text(
    """
    INSERT INTO device_message (practice_id, source, filename, detected_format, sender, control_id, dedup_key,
                                raw, sha256, size_bytes, status, patient_id, observation_count, processed_at)
    SELECT :practice_id, m.source, m.filename, m.fmt, m.sender, m.control_id, m.dedup_key, m.raw, m.sha256,
           m.size_bytes, 'ingested', m.patient_id, m.observation_count, clock_timestamp()
    FROM unnest(CAST(:source AS text[]), CAST(:filename AS text[]), CAST(:fmt AS text[]),
                CAST(:sender AS text[]), CAST(:control_id AS text[]), CAST(:dedup_key AS text[]),
                CAST(:raw AS bytea[]), CAST(:sha256 AS text[]), CAST(:size_bytes AS bigint[]),
                CAST(:patient_id AS bigint[]), CAST(:observation_count AS int[]))
         AS m(source, filename, fmt, sender, control_id, dedup_key, raw, sha256, size_bytes, patient_id,
              observation_count)
    ON CONFLICT (practice_id, dedup_key) WHERE dedup_key IS NOT NULL DO NOTHING
    RETURNING id, dedup_key
    """
)
_COMMON_ORDERS = text(
    """
    INSERT INTO lab_order (practice_id, patient_id, accession_number, test_code, test_name, lab, status)
    SELECT :practice_id, o.patient_id, o.accession, o.test_code, o.test_name, o.lab, o.status
    FROM unnest(CAST(:patient_id AS bigint[]), CAST(:accession AS text[]), CAST(:test_code AS text[]),
                CAST(:test_name AS text[]), CAST(:lab AS text[]), CAST(:status AS text[]))
         AS o(patient_id, accession, test_code, test_name, lab, status)
    ON CONFLICT (practice_id, accession_number) DO NOTHING
    RETURNING id, accession_number
    """
)
# The batch's observations travel as one JSON document (one json.dumps, in C) and are unpacked by
# json_to_recordset. As fifteen array parameters they cost more client CPU than the rest of the batch: psycopg
# dumps arrays element by element in Python (~0.5 ms per 20-result panel). COPY would be cheaper still but
# PostgreSQL refuses COPY FROM into a table with row-level security.
_COMMON_OBSERVATIONS = text(
    """
    INSERT INTO lab_observation (practice_id, patient_id, lab_order_id, device_message_id, code, code_system,
                                 text, value_numeric, value_text, unit, ref_low, ref_high, ref_text,
                                 abnormal_flag, status, observed_at)
    SELECT :practice_id, r.p, r.o, r.m, r.c, r.cs, r.t, r.vn, r.vt, r.u, r.lo, r.hi, r.rt, r.f, r.s, r.at
    FROM json_to_recordset(CAST(:rows AS json))
         AS r(p bigint, o bigint, m bigint, c text, cs text, t text, vn numeric, vt text, u text, lo numeric,
              hi numeric, rt text, f text, s text, at timestamptz)
    """
)


def _json_scalar(value: object) -> str:
    # Decimal and datetime as the text PostgreSQL's numeric and timestamptz inputs read back exactly.
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)


class _Declined(Exception):
    """The common path cannot decide this batch the way the one-by-one path would (a race): redo it."""


def _common_candidate(outcome: DeviceOutcome) -> bool:
    return (
        outcome.inbox_reason is None
        and outcome.imaging is None
        and bool(outcome.results)
        and dedup_key_for(outcome) is not None
        and all(
            r.patient.microchip and all(o.accession for o in r.orders if o.observations)
            for r in outcome.results
        )
        and any(o.observations for r in outcome.results for o in r.orders)
        # naive times are left to the row-by-row INSERT, which lets PostgreSQL apply the session time zone
        and all(
            _aware(obs.observed_at or o.observed_at or r.sent_at)
            for r in outcome.results
            for o in r.orders
            for obs in o.observations
        )
    )


def _aware(value: dt.datetime | None) -> bool:
    return value is None or value.tzinfo is not None


def _ingest_common(session: Session, practice_id: int, items: Sequence[RawItem]) -> dict[int, RecordResult]:
    """Write the batch's common-case messages in a handful of statements; return {item index: result}.

    A message qualifies when automatic matching would find its patient by microchip alone and every order
    number it names is new - no order, earlier result or other message of the batch to reconcile with - so
    ``record_outcome`` would create its orders and insert its observations, nothing more. Every other case is
    left to the caller (``ingest_raw``), which decides it in full.
    """
    candidates = [i for i, item in enumerate(items) if _common_candidate(item.outcome)]
    if not candidates:
        return {}
    numbers = sorted(
        {n for i in candidates for r in items[i].outcome.results for o in r.orders for n in o.numbers}
    )
    chips = sorted(
        {r.patient.microchip for i in candidates for r in items[i].outcome.results if r.patient.microchip}
    )
    known_orders: set[str] = set()
    chip_patients: dict[str, list[int]] = {}
    for row in session.execute(
        _COMMON_LOOKUP, {"practice_id": practice_id, "numbers": numbers, "chips": chips}
    ):
        if row.kind == "order":
            known_orders.add(row.key)
        else:
            chip_patients.setdefault(row.key, []).append(row.patient_id)

    chosen: list[tuple[int, list[int], int]] = []  # (item index, patient per result, observation count)
    claimed_numbers: set[str] = set()
    claimed_keys: set[str | None] = set()
    candidate_set = set(candidates)
    for i, item in enumerate(items):
        # Batch order is arrival order: a message naming an order an earlier one of the batch may create (by
        # accession, as _lab_order does) or sharing its dedup key is left to the one-by-one path, which runs
        # after this and sees the earlier one.
        outcome = item.outcome
        key = dedup_key_for(outcome)
        mine = {n for r in outcome.results for o in r.orders for n in o.numbers}
        patients = [chip_patients.get(r.patient.microchip or "", []) for r in outcome.results]
        taken = (key is not None and key in claimed_keys) or bool(mine & (known_orders | claimed_numbers))
        claimed_keys.add(key)
        claimed_numbers |= {o.accession for r in outcome.results for o in r.orders if o.accession}
        if i not in candidate_set or taken or any(len(p) != 1 for p in patients):
            continue
        count = sum(len(o.observations) for r in outcome.results for o in r.orders)
        chosen.append((i, [p[0] for p in patients], count))
    if not chosen:
        return {}

    def header(i: int) -> DeviceOutcome:
        return items[i].outcome

    stored = session.execute(
        _COMMON_MESSAGES,
        {
            "practice_id": practice_id,
            "source": [_safe(items[i].source)[:200] for i, *_ in chosen],
            "filename": [_clip(items[i].filename, 255) for i, *_ in chosen],
            "fmt": [_clip(header(i).detected_format, 16) for i, *_ in chosen],
            "sender": [_clip(header(i).sender, 200) for i, *_ in chosen],
            "control_id": [_clip(header(i).control_id, 200) for i, *_ in chosen],
            "dedup_key": [dedup_key_for(header(i)) for i, *_ in chosen],
            "raw": [items[i].raw for i, *_ in chosen],
            "sha256": [_sha(items[i].raw) for i, *_ in chosen],
            "size_bytes": [len(items[i].raw) for i, *_ in chosen],
            "patient_id": [p[0] for _, p, _ in chosen],
            "observation_count": [c for *_, c in chosen],
        },
    ).all()
    message_ids = {row.dedup_key: row.id for row in stored}
    # A message whose key another message already holds is left to ingest_raw (stored as a duplicate).
    chosen = [c for c in chosen if dedup_key_for(header(c[0])) in message_ids]
    if not chosen:
        return {}
    notes = _note_shared_control_ids(session, practice_id, list(message_ids.values()))

    orders = [
        (patient_id, result, order)
        for i, patients, _ in chosen
        for patient_id, result in zip(patients, header(i).results, strict=True)
        for order in result.orders
        if order.observations
    ]
    created = session.execute(
        _COMMON_ORDERS,
        {
            "practice_id": practice_id,
            "patient_id": [p for p, _, _ in orders],
            "accession": [(o.accession or "")[:ACCESSION_MAX] for _, _, o in orders],
            "test_code": [_clip(o.test_code, 64) for _, _, o in orders],
            "test_name": [_clip(o.test_name, 200) for _, _, o in orders],
            "lab": [_clip(r.lab, 120) for _, r, _ in orders],
            "status": [_order_status(o) for _, _, o in orders],
        },
    ).all()
    order_ids = {row.accession_number: row.id for row in created}
    if len(order_ids) != len(orders):
        raise _Declined("a concurrent transaction created one of these lab orders")

    rows: list[dict[str, object]] = []
    now = _now()
    for i, patients, _ in chosen:
        message_id = message_ids[dedup_key_for(header(i))]  # type: ignore[index]
        for patient_id, result in zip(patients, header(i).results, strict=True):
            for order in result.orders:
                fallback_time = order.observed_at or result.sent_at or now
                lab_order_id = order_ids.get((order.accession or "")[:ACCESSION_MAX])
                rows.extend(
                    {"p": patient_id, "o": lab_order_id, "m": message_id, "c": obs.code, "cs": obs.code_system,
                     "t": obs.text, "vn": obs.value_numeric, "vt": obs.value_text, "u": obs.unit,
                     "lo": obs.ref_low, "hi": obs.ref_high, "rt": obs.ref_text, "f": obs.abnormal_flag,
                     "s": obs.status, "at": obs.observed_at or fallback_time}
                    for obs in order.observations
                )  # fmt: skip
    session.execute(
        _COMMON_OBSERVATIONS,
        {"practice_id": practice_id, "rows": json.dumps(rows, default=_json_scalar, separators=(",", ":"))},
    )
    results: dict[int, RecordResult] = {}
    for i, patients, count in chosen:
        message_id = message_ids[dedup_key_for(header(i))]  # type: ignore[index]
        results[i] = RecordResult(message_id, "ingested", count, patients[0],
                                  same_control_id_as=notes.get(message_id))  # fmt: skip
    return results


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
    note = _note_shared_control_ids(session, practice_id, [message_id]).get(message_id)
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
        select(DeviceMessage.status, DeviceMessage.duplicate_of, DeviceMessage.dedup_key).where(
            DeviceMessage.practice_id == practice_id, DeviceMessage.id == message_id
        )
    ).one()
    header = {
        "detected_format": _clip(outcome.detected_format, 16),
        "sender": _clip(outcome.sender, 200),
        "control_id": _clip(outcome.control_id, 200),
    }
    if msg.status == "duplicate":
        _set(session, practice_id, message_id, **header)
        return RecordResult(message_id, "duplicate", duplicate_of=msg.duplicate_of)
    if msg.dedup_key is None and (key := dedup_key_for(outcome)) is not None:
        original = _claim(session, practice_id, message_id, key)
        if original is not None:
            _set(session, practice_id, message_id, **header, status="duplicate", duplicate_of=original,
                 processed_at=_now())  # fmt: skip
            return RecordResult(message_id, "duplicate", duplicate_of=original)

    if outcome.inbox_reason is not None:
        return _to_inbox(session, practice_id, message_id, header, outcome.inbox_reason, outcome.inbox_detail)

    savepoint = session.begin_nested()
    try:
        if outcome.imaging is not None:
            result = _load_imaging(session, practice_id, message_id, outcome.imaging, master_key,
                                   chosen_patient_id)  # fmt: skip
        else:
            result = _load_results(session, practice_id, message_id, outcome.results, chosen_patient_id)
    except DBAPIError as exc:
        savepoint.rollback()
        detail = str(exc.orig).strip().splitlines()[0] if exc.orig is not None else str(exc)
        return _to_inbox(session, practice_id, message_id, header, INBOX_LOAD_FAILED, detail[:2000])
    if isinstance(result, PatientMatch):  # nothing written: no patient
        savepoint.rollback()
        return _to_inbox(session, practice_id, message_id, header, result.reason or INBOX_NO_MATCH,
                         result.detail)  # fmt: skip
    savepoint.commit()
    patient_id, count = result
    status = "resolved" if chosen_patient_id is not None else "ingested"
    _set(session, practice_id, message_id, **header, status=status, patient_id=patient_id,
         observation_count=count, inbox_reason=None, inbox_detail=None, processed_at=_now(),
         resolved_by=user_id if chosen_patient_id is not None else None)  # fmt: skip
    return RecordResult(message_id, status, count, patient_id)


def _now() -> dt.datetime:
    return dt.datetime.now(dt.UTC)


def _set(session: Session, practice_id: int, message_id: int, **values: object) -> None:
    session.execute(
        update(DeviceMessage)
        .where(DeviceMessage.practice_id == practice_id, DeviceMessage.id == message_id)
        .values(**values)
    )


# The first other message of the same format and sender with the same control id (duplicates aside: they
# point at their original already), set on the messages of ``ids`` that have one. One statement for a batch;
# it sees the batch's own rows, so an analyser that sends one control id for everything is noted within a batch.
_NOTE_SHARED_CONTROL_IDS = text(
    """
    UPDATE device_message d SET same_control_id_as = f.first
    FROM (
        SELECT m.id,
               (SELECT min(o.id) FROM device_message o
                 WHERE o.practice_id = :practice_id AND o.sender = m.sender AND o.control_id = m.control_id
                   AND o.detected_format = m.detected_format AND o.id < m.id AND o.status <> 'duplicate'
               ) AS first
          FROM device_message m
         WHERE m.practice_id = :practice_id AND m.id = ANY(CAST(:ids AS bigint[])) AND m.control_id IS NOT NULL
    ) f
    WHERE d.practice_id = :practice_id AND d.id = f.id AND f.first IS NOT NULL
    RETURNING d.id, d.same_control_id_as
    """
)


def _note_shared_control_ids(session: Session, practice_id: int, ids: list[int]) -> dict[int, int]:
    """{message id: the earlier message with its sender's control id} for those of ``ids`` that share one."""
    rows = session.execute(_NOTE_SHARED_CONTROL_IDS, {"practice_id": practice_id, "ids": ids})
    return {row.id: row.same_control_id_as for row in rows}


def _claim(session: Session, practice_id: int, message_id: int, key: str) -> int | None:
    """Claim ``key`` for a stored message; the id of the message that already holds it, else None."""
    savepoint = session.begin_nested()
    try:
        _set(session, practice_id, message_id, dedup_key=key)
        savepoint.commit()
        return None
    except IntegrityError:
        savepoint.rollback()
    return session.scalar(
        select(DeviceMessage.id).where(
            DeviceMessage.practice_id == practice_id, DeviceMessage.dedup_key == key
        )
    )


def _to_inbox(
    session: Session, practice_id: int, message_id: int, header: dict, reason: str, detail: str | None
) -> RecordResult:
    detail = _safe(detail) if detail else detail
    _set(session, practice_id, message_id, **header, status="inbox", inbox_reason=_safe(reason)[:64],
         inbox_detail=detail, processed_at=_now())  # fmt: skip
    return RecordResult(message_id, "inbox", inbox_reason=reason, inbox_detail=detail)


# --- patient matching --------------------------------------------------------------------------------------


def _norm(value: str) -> str:
    return " ".join(value.split()).casefold()


def owner_matches(owner_name: str, last_name: str) -> bool:
    """Exact: the owner's name is the last name, or ends with it as whole words ("Anna de Vries" / "de Vries")."""
    owner, last = _norm(owner_name), _norm(last_name)
    return bool(last) and (owner == last or owner.endswith(" " + last))


def match_patient(
    session: Session, practice_id: int, keys: PatientKeys, order_numbers: Sequence[str] = ()
) -> PatientMatch:
    """Lab order number, then microchip, then patient id + owner last name; exact matches only."""
    notes: list[str] = []
    numbers = list(dict.fromkeys(n for n in order_numbers if n))
    if numbers:
        rows = session.execute(
            select(LabOrder.accession_number, LabOrder.patient_id).where(
                LabOrder.practice_id == practice_id, LabOrder.accession_number.in_(numbers)
            )
        ).all()
        patients = {r.patient_id for r in rows}
        if len(patients) > 1:
            listed = ", ".join(f"{r.accession_number} → patient {r.patient_id}" for r in rows)
            return PatientMatch(None, reason=INBOX_CONFLICT,
                                detail=f"the message's orders belong to different patients ({listed})")  # fmt: skip
        if patients:
            (patient_id,) = patients
            if keys.microchip:
                chip = session.scalar(
                    select(Patient.microchip).where(
                        Patient.practice_id == practice_id, Patient.id == patient_id
                    )
                )
                if chip and chip != keys.microchip:
                    return PatientMatch(None, reason=INBOX_CONFLICT, detail=(
                        f"order {rows[0].accession_number} is for patient {patient_id} (chip {chip}) but the "
                        f"message names chip {keys.microchip}"))  # fmt: skip
            return PatientMatch(patient_id, how="accession")
        notes.append(f"no lab order {' or '.join(numbers)}")
    if keys.microchip:
        ids = session.scalars(
            select(Patient.id).where(
                Patient.practice_id == practice_id,
                Patient.microchip == keys.microchip,
                Patient.deleted_at.is_(None),
            )
        ).all()
        if len(ids) == 1:
            return PatientMatch(ids[0], how="microchip")
        if len(ids) > 1:
            return PatientMatch(None, reason=INBOX_AMBIGUOUS,
                                detail=f"{len(ids)} patients match chip {keys.microchip}")  # fmt: skip
        notes.append(f"no patient with chip {keys.microchip}")
    identifiers = [i for i in dict.fromkeys(keys.identifiers) if i and i != keys.microchip]
    if identifiers:
        found = _by_identifier_and_owner(session, practice_id, identifiers, keys.owner_name, notes)
        if isinstance(found, PatientMatch):
            return found
    detail = "; ".join(notes) if notes else "the message names no lab order, microchip or patient id"
    return PatientMatch(None, reason=INBOX_NO_MATCH, detail=detail)


def _by_identifier_and_owner(
    session: Session, practice_id: int, identifiers: list[str], owner: str | None, notes: list[str]
) -> PatientMatch | None:
    numeric = [int(i) for i in identifiers if i.isdigit() and len(i) < 19]
    condition = Patient.animana_id.in_(identifiers)
    if numeric:
        condition = condition | Patient.id.in_(numeric)
    rows = session.execute(
        select(Patient.id, Client.last_name)
        .outerjoin(
            ClientPatient,
            (ClientPatient.practice_id == Patient.practice_id) & (ClientPatient.patient_id == Patient.id),
        )  # fmt: skip
        .outerjoin(
            Client, (Client.practice_id == ClientPatient.practice_id) & (Client.id == ClientPatient.client_id)
        )
        .where(Patient.practice_id == practice_id, Patient.deleted_at.is_(None), condition)
    ).all()
    ids_text = " or ".join(f"'{i}'" for i in identifiers)
    if owner is None:
        notes.append(
            f"patient id {ids_text} matches {len({r.id for r in rows})} patient(s) but the message has no owner "
            f"name to confirm it"
            if rows
            else f"no patient with id {ids_text}"
        )
        return None
    matched = sorted({r.id for r in rows if r.last_name and owner_matches(owner, r.last_name)})
    if len(matched) == 1:
        return PatientMatch(matched[0], how="patient_id_owner")
    if len(matched) > 1:
        return PatientMatch(None, reason=INBOX_AMBIGUOUS,
                            detail=f"{len(matched)} patients match id {ids_text} and owner '{owner}'")  # fmt: skip
    notes.append(f"no patient with id {ids_text} and owner '{owner}'")
    return None


# --- loading -----------------------------------------------------------------------------------------------


def _load_results(
    session: Session,
    practice_id: int,
    message_id: int,
    results: Sequence[LabResultInput],
    chosen_patient_id: int | None,
) -> tuple[int, int] | PatientMatch:
    if not results:
        return PatientMatch(None, reason="no_observations", detail="the message holds no results")
    matches: list[PatientMatch] = []
    for result in results:
        numbers = [n for order in result.orders for n in order.numbers]
        match = (
            PatientMatch(chosen_patient_id, how="chosen")
            if chosen_patient_id is not None
            else match_patient(session, practice_id, result.patient, numbers)
        )
        if match.patient_id is None:
            return match
        matches.append(match)
    if chosen_patient_id is not None:
        _require_patient(session, practice_id, chosen_patient_id)
    count = 0
    for result, match in zip(results, matches, strict=True):
        assert match.patient_id is not None
        for order in result.orders:
            count += _load_order(session, practice_id, message_id, match.patient_id, result, order)
    patient_ids = {m.patient_id for m in matches}
    return (patient_ids.pop() if len(patient_ids) == 1 else matches[0].patient_id or 0), count


def _require_patient(session: Session, practice_id: int, patient_id: int) -> None:
    found = session.scalar(
        select(Patient.id).where(Patient.practice_id == practice_id, Patient.id == patient_id)
    )
    if found is None:
        raise InboxError(f"patient {patient_id} is not a patient of practice {practice_id}")


def _order_status(order: LabOrderInput) -> str:
    statuses = {o.status for o in order.observations}
    if statuses and statuses <= {"cancelled"}:
        return "cancelled"
    return "partial" if "preliminary" in statuses else "resulted"


def _lab_order(
    session: Session, practice_id: int, patient_id: int, result: LabResultInput, order: LabOrderInput
) -> tuple[int | None, bool]:
    """The order's id (found by accession, else placer number, else created), and whether it is new."""
    numbers = list(order.numbers)
    found = (
        session.execute(
            select(LabOrder.id, LabOrder.patient_id, LabOrder.status, LabOrder.accession_number).where(
                LabOrder.practice_id == practice_id, LabOrder.accession_number.in_(numbers)
            )
        ).all()
        if numbers
        else []
    )
    if found:
        row = min(found, key=lambda r: numbers.index(r.accession_number))  # accession before placer number
        if row.patient_id != patient_id:
            return None, False  # a person chose another patient: keep the results off that order
        if row.status in ("ordered", "partial"):
            session.execute(
                update(LabOrder)
                .where(LabOrder.practice_id == practice_id, LabOrder.id == row.id)
                .values(status=_order_status(order))
            )
        return row.id, False
    if not order.accession:
        return None, False
    created = session.execute(
        pg_insert(LabOrder)
        .values(
            practice_id=practice_id,
            patient_id=patient_id,
            accession_number=order.accession[:ACCESSION_MAX],
            test_code=_clip(order.test_code, 64),
            test_name=_clip(order.test_name, 200),
            lab=_clip(result.lab, 120),
            status=_order_status(order),
        )  # fmt: skip
        .on_conflict_do_nothing(index_elements=["practice_id", "accession_number"])
        .returning(LabOrder.id)
    ).scalar_one_or_none()
    if created is not None:
        return created, True
    return _lab_order(session, practice_id, patient_id, result, order)  # lost a race: now it exists


def _load_order(
    session: Session,
    practice_id: int,
    message_id: int,
    patient_id: int,
    result: LabResultInput,
    order: LabOrderInput,
) -> int:
    if not order.observations:
        return 0
    lab_order_id, is_new = _lab_order(session, practice_id, patient_id, result, order)
    fallback_time = order.observed_at or result.sent_at or _now()
    rows = [
        {
            "practice_id": practice_id,
            "patient_id": patient_id,
            "lab_order_id": lab_order_id,
            "device_message_id": message_id,
            "code": obs.code,
            "code_system": obs.code_system,
            "text": obs.text,
            "value_numeric": obs.value_numeric,
            "value_text": obs.value_text,
            "unit": obs.unit,
            "ref_low": obs.ref_low,
            "ref_high": obs.ref_high,
            "ref_text": obs.ref_text,
            "abnormal_flag": obs.abnormal_flag,
            "status": obs.status,
            "observed_at": obs.observed_at or fallback_time,
        }
        for obs in order.observations
    ]
    earlier = (
        [] if is_new else _current_rows(session, practice_id, patient_id, lab_order_id, message_id, rows)
    )
    # One INSERT statement per panel: one audit entry and one round trip, whatever the panel size.
    table = LabObservation.__table__
    # executemany + RETURNING is sent as one batched INSERT … VALUES ("insertmanyvalues"), compiled once.
    inserted = session.execute(insert(table).returning(table.c.id, table.c.code), rows).all()
    ids = [r.id for r in inserted]
    if earlier:
        new_by_code: dict[str, int] = {}
        for r in sorted(inserted, key=lambda r: r.id):
            new_by_code.setdefault(r.code, r.id)
        status_by_code: dict[str, str] = {}
        for row in rows:
            status_by_code.setdefault(row["code"], row["status"])
        pointers = []
        for old in earlier:
            new_id = new_by_code.get(old.code)
            if new_id is None:
                continue
            new_status = status_by_code[old.code]
            if new_status in ("corrected", "cancelled") or (
                new_status == "final" and old.status == "preliminary"
            ):
                pointers.append({"p": practice_id, "old": old.id, "new": new_id})
        if pointers:
            session.execute(
                update(table)
                .where(table.c.practice_id == bindparam("p"), table.c.id == bindparam("old"))
                .values(superseded_by=bindparam("new")),
                pointers,
            )
    return len(ids)


def _current_rows(
    session: Session,
    practice_id: int,
    patient_id: int,
    lab_order_id: int | None,
    message_id: int,
    rows: Iterable[dict],
) -> Sequence[Row]:
    codes = sorted({r["code"] for r in rows if r["status"] in ("final", "corrected", "cancelled")})
    if not codes:
        return []
    return session.execute(
        select(LabObservation.id, LabObservation.code, LabObservation.status).where(
            LabObservation.practice_id == practice_id,
            LabObservation.patient_id == patient_id,
            LabObservation.lab_order_id.is_not_distinct_from(lab_order_id),
            LabObservation.superseded_by.is_(None),
            LabObservation.code.in_(codes),
            LabObservation.device_message_id.is_distinct_from(message_id),
        )
    ).all()


# --- imaging -----------------------------------------------------------------------------------------------


def document_bytes(session: Session, practice_id: int, document_id: int, master_key: bytes) -> bytes:
    """The decrypted bytes of a document stored by the device loader."""
    blob, key_version = session.execute(
        select(DocumentContent.ciphertext, DocumentContent.key_version).where(
            DocumentContent.practice_id == practice_id, DocumentContent.document_id == document_id
        )
    ).one()
    return decrypt_document(cipher(session, practice_id, master_key, key_version).data_key, practice_id,
                            document_id, blob)  # fmt: skip


def _load_imaging(
    session: Session,
    practice_id: int,
    message_id: int,
    study: ImagingInput,
    master_key: bytes | None,
    chosen_patient_id: int | None,
) -> tuple[int, int] | PatientMatch:
    if chosen_patient_id is not None:
        _require_patient(session, practice_id, chosen_patient_id)
        match = PatientMatch(chosen_patient_id, how="chosen")
    else:
        match = match_patient(
            session, practice_id, study.patient, [study.accession] if study.accession else []
        )
    if match.patient_id is None:
        return match
    if master_key is None:
        return PatientMatch(None, reason=INBOX_NO_KEY,
                            detail="no master key configured: the DICOM file cannot be stored encrypted")  # fmt: skip
    keys = cipher(session, practice_id, master_key)
    title = (
        " ".join(p for p in (study.modality, study.description or study.body_part) if p) or "Imaging study"
    )
    document = Document(
        practice_id=practice_id,
        patient_id=match.patient_id,
        title=title[:200],
        filename=f"{study.instance_uid or message_id}.dcm"[:255],
        content_type=study.content_type,
        size_bytes=len(study.content),
        sha256=_sha(study.content),
        storage_key=f"device_message/{message_id}",
        source="device",
    )
    session.add(document)
    session.flush()
    session.add(
        DocumentContent(
            practice_id=practice_id,
            document_id=document.id,
            ciphertext=encrypt_document(keys.data_key, practice_id, document.id, study.content),
            key_version=keys.key_version,
        )
    )
    session.add(
        ImagingStudy(
            practice_id=practice_id,
            patient_id=match.patient_id,
            device_message_id=message_id,
            document_id=document.id,
            study_uid=_clip(study.study_uid, 64),
            series_uid=_clip(study.series_uid, 64),
            modality=_clip(study.modality, 16),
            body_part=_clip(study.body_part, 64),
            study_date=study.study_date,
            description=_clip(study.description, 200),
            animal_id_text=_clip(study.animal_id_text, 64),
            animal_name=_clip(study.animal_name, 100),
            species=_clip(study.species, 64),
            breed=_clip(study.breed, 64),
            preview_png=study.preview_png,
        )
    )
    session.flush()
    return match.patient_id, 0


# --- the inbox ---------------------------------------------------------------------------------------------


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
    parser: RawParser,
    master_key: bytes | None = None,
) -> RecordResult:
    """A person picked the patient: re-process the stored raw copy for that patient (status ``resolved``).
    ``actor`` None is the operator at the command line (``vetconnect devices resolve``), who has no account."""
    msg = _locked_inbox_message(session, message_id)
    if actor is not None:
        require(actor, DEVICE_INBOX, msg.practice_id)
    user_id = None if actor is None else actor.user_id
    outcome = parser(bytes(msg.raw), msg.source, msg.filename)
    if outcome.inbox_reason is not None:
        raise InboxError(
            f"device message {message_id} cannot be loaded for any patient: {outcome.inbox_reason}: "
            f"{outcome.inbox_detail}"
        )
    _require_patient(session, msg.practice_id, patient_id)
    _set(session, msg.practice_id, message_id, attempts=msg.attempts + 1)
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
        _set(session, msg.practice_id, msg.id, attempts=msg.attempts + 1)
        result = record_outcome(session, msg.practice_id, msg.id, outcome, master_key=master_key)
        ingested += result.status == "ingested"
    return ReprocessSummary(retried, ingested, retried - ingested)


_CHIP = re.compile(r"\d{15}")


def find_patients(session: Session, query: str, *, limit: int = 20) -> list[PatientChoice]:
    """Exact search for the inbox: a 15-digit chip, a patient id, or a patient name / owner last name
    (case-insensitive equality, no fuzzy matching)."""
    q = query.strip()
    if not q:
        return []
    if _CHIP.fullmatch(q):
        condition = Patient.microchip == q
    elif q.isdigit() and len(q) < 19:
        condition = Patient.id == int(q)
    else:
        owner_ids = (
            select(ClientPatient.patient_id)
            .join(
                Client,
                (Client.practice_id == ClientPatient.practice_id) & (Client.id == ClientPatient.client_id),
            )
            .where(Client.practice_id == Patient.practice_id, text("lower(client.last_name) = lower(:q)"))
        )
        condition = or_(text("lower(patient.name) = lower(:q)"), Patient.id.in_(owner_ids))
    patients = session.execute(
        select(Patient.practice_id, Patient.id, Patient.name, Patient.species, Patient.microchip)
        .where(condition, Patient.deleted_at.is_(None))
        .order_by(Patient.practice_id, Patient.name, Patient.id)
        .limit(limit),
        {"q": q},
    ).all()
    choices = []
    for p in patients:
        owners = session.scalars(
            select(Client.last_name)
            .join(
                ClientPatient,
                (Client.practice_id == ClientPatient.practice_id) & (Client.id == ClientPatient.client_id),
            )  # fmt: skip
            .where(ClientPatient.practice_id == p.practice_id, ClientPatient.patient_id == p.id)
            .order_by(Client.last_name)
        ).all()
        choices.append(PatientChoice(p.practice_id, p.id, p.name, p.species, p.microchip, ", ".join(owners)))
    return choices
