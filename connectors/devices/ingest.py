"""From ``process_bytes`` outcomes to the warehouse: the mapper, the one-call ingest, and the MLLP store.

The mapper (:func:`to_device_outcome`) turns parser types into the warehouse's plain input types, fitting
them to the columns: a result without a code keeps its text as the code, several abnormal flags are joined with
``~``, a number too large for ``Numeric(18, 6)`` stays as text, a reference range whose bounds are reversed
keeps only its text. It never raises for parsed input (a hypothesis property test holds it to that).

Every write goes through ``warehouse.ingest.devices``; this module writes no SQL.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import logging
import os
import time
import uuid
from dataclasses import dataclass, field
from decimal import Decimal
from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from connectors.devices.dicom import DicomStudy
from connectors.devices.fingerprint import content_fingerprint
from connectors.devices.model import STATUS_CATEGORIES, LabMessage, Observation, Order, Patient
from connectors.devices.outcome import ParseOutcome, process_bytes
from warehouse.ingest.devices.batch import ingest_many
from warehouse.ingest.devices.inputs import (
    ACCESSION_MAX,
    CODE_MAX,
    CODE_SYSTEM_MAX,
    FLAG_MAX,
    NUMERIC_LIMIT,
    TEXT_MAX,
    UNIT_MAX,
    DeviceOutcome,
    ImagingInput,
    LabOrderInput,
    LabResultInput,
    ObservationInput,
    PatientKeys,
    RawItem,
    RecordResult,
)
from warehouse.ingest.devices.raw import device_session
from warehouse.ingest.devices.recording import ingest_raw
from warehouse.kernel.tenancy import AccessContext, tenant_session

__all__ = [
    "DeviceStore",
    "ingest_bytes",
    "parse_raw",
    "to_device_outcome",
]

log = logging.getLogger(__name__)
_SPOOL_SUFFIX = ".spool"


# --- mapping -----------------------------------------------------------------------------------------------


def _text(value: str | None) -> str | None:
    # PostgreSQL text cannot hold NUL, which a device can send; U+FFFD keeps the position visible.
    return value.replace("\x00", "\ufffd") if value else value


def _fit(value: str | None, length: int) -> str | None:
    if value is None:
        return None
    value = (_text(value) or "").strip()
    return value[:length] if value else None


def _numeric(value: Decimal | None) -> Decimal | None:
    if value is None or not value.is_finite() or abs(value) >= NUMERIC_LIMIT:
        return None
    return value


def _status(obs: Observation, order: Order) -> str:
    # No status on the result: the order's (OBR-25), else final - in-house analysers (ASTM) often send none,
    # and what they send is their final reading.
    return obs.status_category or STATUS_CATEGORIES.get(order.result_status or "") or "final"


def _flags(flags: tuple[str, ...]) -> str | None:
    joined = "~".join(f for f in (f.strip() for f in flags) if f)
    if not joined:
        return None
    if len(joined) > FLAG_MAX:
        joined = joined[:FLAG_MAX].rsplit("~", 1)[0] if "~" in joined[:FLAG_MAX] else joined[:FLAG_MAX]
    return joined


def map_observation(obs: Observation, order: Order) -> ObservationInput:
    code_text = obs.code.text
    code = _fit(obs.code.code, CODE_MAX) or _fit(code_text, CODE_MAX) or f"OBX-{obs.set_id or '?'}"
    rng = obs.reference_range
    low = _numeric(rng.low) if rng else None
    high = _numeric(rng.high) if rng else None
    if low is not None and high is not None and low > high:
        low = high = None  # reversed bounds: keep the text only, a person reads it
    value_text = obs.value_text
    if (
        obs.comparator
        and obs.numeric is not None
        and value_text
        and not value_text.startswith(obs.comparator)
    ):
        value_text = f"{obs.comparator}{value_text}"
    return ObservationInput(
        code=code[:CODE_MAX],
        code_system=_fit(obs.code.system, CODE_SYSTEM_MAX),
        text=_fit(code_text, TEXT_MAX),
        # "<2.0" is not the number 2.0: a comparator or a ratio keeps the value as text only.
        value_numeric=_numeric(obs.numeric) if not obs.comparator and obs.numeric_2 is None else None,
        value_text=_text(value_text),
        unit=_fit(obs.unit, UNIT_MAX),
        ref_low=low,
        ref_high=high,
        ref_text=_text(rng.text) if rng and rng.text else None,
        abnormal_flag=_flags(obs.abnormal_flags),
        status=_status(obs, order),
        observed_at=obs.observed_at,
    )


def map_order(order: Order) -> LabOrderInput:
    return LabOrderInput(
        accession=_fit(order.filler_order_number, ACCESSION_MAX),
        placer_number=_fit(order.placer_order_number, ACCESSION_MAX),
        test_code=_fit(order.service.code, 64) if order.service else None,
        test_name=_fit(order.service.text, 200) if order.service else None,
        observed_at=order.observed_at,
        observations=tuple(map_observation(obs, order) for obs in order.observations),
    )


def map_patient(patient: Patient) -> PatientKeys:
    return PatientKeys(
        microchip=patient.microchip,
        identifiers=tuple(dict.fromkeys(i.value for i in patient.identifiers if i.value)),
        owner_name=patient.owner_name,
        name=patient.name,
    )


def map_message(msg: LabMessage) -> LabResultInput:
    return LabResultInput(
        patient=map_patient(msg.patient),
        orders=tuple(map_order(order) for order in msg.orders),
        sent_at=msg.sent_at,
        lab=msg.sending_facility or msg.sending_application,
    )


def _person(pn: str | None) -> str | None:
    """DICOM ``Family^Given`` as "Given Family", the form owner matching expects."""
    if not pn:
        return None
    family, _, given = pn.partition("^")
    return " ".join(p for p in (given.replace("^", " ").strip(), family.strip()) if p) or None


def map_imaging(study: DicomStudy, raw: bytes) -> ImagingInput:
    identifiers = (study.patient_id,) if study.patient_id else ()
    chip = (
        study.patient_id
        if study.patient_id and study.patient_id.isdigit() and len(study.patient_id) == 15
        else None
    )
    return ImagingInput(
        patient=PatientKeys(
            microchip=chip,
            identifiers=identifiers,
            owner_name=_person(study.responsible_person),
            name=study.patient_name,
        ),  # fmt: skip
        accession=study.accession_number,
        content=raw,
        study_uid=study.study_instance_uid,
        series_uid=study.series_instance_uid,
        instance_uid=study.sop_instance_uid,
        modality=study.modality,
        body_part=study.body_part,
        study_date=study.study_date,
        description=study.study_description or study.series_description,
        animal_id_text=study.patient_id,
        animal_name=study.patient_name,
        species=study.species,
        breed=study.breed,
        preview_png=study.preview_png,
    )


def _sender(msg: LabMessage) -> str | None:
    parts = [p for p in (msg.sending_application, msg.sending_facility) if p]
    return "^".join(parts) or None


def to_device_outcome(outcome: ParseOutcome, raw: bytes = b"") -> DeviceOutcome:
    """Map a parse outcome onto the warehouse's input types (``raw`` is kept as the DICOM document)."""
    fmt = outcome.detected_format
    first = outcome.messages[0] if outcome.messages else None
    sender = _sender(first) if first else None
    if len(outcome.messages) > 1:
        ids = [m.message_control_id or "" for m in outcome.messages]
        control_id: str | None = ",".join(ids) if all(ids) else None
    else:
        control_id = first.message_control_id if first else None
    # Duplicates are told by content, not by control id (see connectors.devices.fingerprint); without the
    # bytes (a caller that passes none) nothing can be compared and nothing is judged a duplicate.
    fingerprint = content_fingerprint(raw, fmt) if raw else None
    if outcome.inbox is not None:
        return DeviceOutcome(fmt, sender, control_id, inbox_reason=outcome.inbox.code.value,
                                inbox_detail=outcome.inbox.detail, fingerprint=fingerprint)  # fmt: skip
    if outcome.imaging is not None:
        study = outcome.imaging
        return DeviceOutcome(fmt, "dicom", study.sop_instance_uid, imaging=map_imaging(study, raw),
                                fingerprint=fingerprint)  # fmt: skip
    return DeviceOutcome(fmt, sender, control_id, results=tuple(map_message(m) for m in outcome.messages),
                            fingerprint=fingerprint)  # fmt: skip


def parse_raw(raw: bytes, source: str, filename: str | None = None) -> DeviceOutcome:
    """The ``RawParser`` the warehouse's inbox services re-process stored messages with."""
    return to_device_outcome(process_bytes(raw, source, filename), raw)


# --- ingest ------------------------------------------------------------------------------------------------


def ingest_bytes(
    session: Session,
    practice_id: int,
    raw: bytes,
    source: str,
    filename: str | None = None,
    *,
    master_key: bytes | None = None,
    outcome: ParseOutcome | None = None,
    dedup_by_content: bool = False,
) -> RecordResult:
    """Parse (unless ``outcome`` is given) and store one blob in the caller's transaction. Never raises for
    bad input; a database failure propagates (then nothing is committed and the caller must not ACK).
    ``dedup_by_content``: files - the same bytes without a control id are a duplicate, not a second result."""
    parsed = outcome if outcome is not None else process_bytes(raw, source, filename)
    return ingest_raw(session, practice_id, raw, source, filename, to_device_outcome(parsed, raw),
                         master_key=master_key, dedup_by_content=dedup_by_content)  # fmt: skip


@dataclass
class DeviceStore:
    """Where one practice's device feed lands: ``store`` for ``hl7_handler`` and the MLLP loss callbacks.

    Group commit: messages arriving on concurrent connections are queued for ``writers`` writer tasks (one by
    default). A writer takes what is queued, lingers up to ``max_wait`` seconds for more (the senders whose
    ACKs just went out are sending their next message, which is still being parsed) up to ``max_batch``, and
    stores the batch in one transaction (``warehouse.ingest.devices.batch.ingest_many``: the common case for the whole
    batch in a few statements, the rest one by one, each in a SAVEPOINT so one bad message goes to the inbox
    or gets AE without rolling back the others), then commits once. Why: a commit (a WAL flush) and the
    practice's audit-chain lock, which every audited write holds until commit, are paid once per batch instead
    of once per message. ``store`` returns only after the commit, so ``hl7_handler``'s AA still means "stored
    and decided"; if the commit fails every message of the batch gets AE (the senders resend; nothing was
    ACKed). Duplicates (sender + control id) inside a batch and across batches are decided by the database's
    unique index, as for single messages.

    Bytes that are not a message (a partial frame, garbage) have no sender waiting to resend them. If the
    database cannot take them, they are written to ``spool_dir`` (fsynced) and stored by ``replay_spool`` -
    called at the start of the listener and after each batch the database took.
    """

    engine: Engine
    practice_id: int
    master_key: bytes | None = None
    max_batch: int = 64
    max_wait: float = 0.002
    writers: int = 1
    spool_dir: Path | None = None
    batches: int = field(default=0, init=False)  # committed batches and the messages in them, for benchmarks
    batched_messages: int = field(default=0, init=False)
    _queue: asyncio.Queue | None = field(default=None, init=False, repr=False)
    _tasks: list[asyncio.Task] = field(default_factory=list, init=False, repr=False)
    _spooled: bool = field(default=False, init=False, repr=False)

    def __post_init__(self) -> None:
        self._spooled = self._has_spool()

    @property
    def queued(self) -> int:
        """Messages waiting for a writer (received and parsed, not yet in a batch)."""
        return self._queue.qsize() if self._queue is not None else 0

    def store_sync(self, raw: bytes, source: str, outcome: ParseOutcome | None = None) -> RecordResult:
        context = AccessContext.for_practices([self.practice_id])
        with tenant_session(self.engine, context) as session:
            return ingest_bytes(
                session, self.practice_id, raw, source, master_key=self.master_key, outcome=outcome
            )

    def store_batch_sync(
        self, items: list[tuple[bytes, str, ParseOutcome | None]]
    ) -> list[RecordResult | Exception]:
        """Store a batch in one transaction (``warehouse.ingest.devices.batch.ingest_many``); one result per item."""
        batch = [
            RawItem(raw, source, to_device_outcome(
                outcome if outcome is not None else process_bytes(raw, source), raw))
            for raw, source, outcome in items
        ]  # fmt: skip
        with device_session(self.engine, self.practice_id) as session:
            results = ingest_many(session, self.practice_id, batch, master_key=self.master_key)
        for (_, source, _), result in zip(items, results, strict=True):
            if isinstance(result, Exception):
                log.error("storing a device message from %s failed: %s", source, result, exc_info=result)
            elif result.status == "duplicate":
                log.info("message %d from %s: duplicate of message %s (same content, not loaded again)",
                         result.message_id, source, result.duplicate_of)  # fmt: skip
            elif result.same_control_id_as is not None:
                log.info("message %d from %s: a new message under the control id of message %d (other content)",
                         result.message_id, source, result.same_control_id_as)  # fmt: skip
        return results

    def store_inbox_sync(self, raw: bytes, source: str, reason: str, detail: str) -> RecordResult:
        context = AccessContext.for_practices([self.practice_id])
        with tenant_session(self.engine, context) as session:
            fmt = process_bytes(raw[:4096], source).detected_format if raw else "unknown"
            outcome = DeviceOutcome(fmt, inbox_reason=reason, inbox_detail=detail)
            return ingest_raw(session, self.practice_id, raw, source, None, outcome)

    async def store(self, raw: bytes, peer: str, outcome: ParseOutcome) -> RecordResult:
        if self._queue is None:
            self._queue = asyncio.Queue()
            self._tasks = [asyncio.create_task(self._writer()) for _ in range(self.writers)]
        done: asyncio.Future[RecordResult] = asyncio.get_running_loop().create_future()
        await self._queue.put((raw, f"mllp:{peer}", outcome, done))
        return await done

    async def _writer(self) -> None:
        assert self._queue is not None
        queue = self._queue
        while True:
            batch = [await queue.get()]
            if queue.qsize() + 1 < self.max_batch and self.max_wait > 0:
                await asyncio.sleep(self.max_wait)
            while len(batch) < self.max_batch and not queue.empty():
                batch.append(queue.get_nowait())
            try:
                results = await asyncio.to_thread(self.store_batch_sync, [item[:3] for item in batch])
            except Exception as exc:  # the commit (or the connection) failed: nobody gets an AA
                log.exception("storing a batch of %d device messages failed", len(batch))
                results = [exc] * len(batch)
            else:
                self.batches += 1
                self.batched_messages += len(batch)
                if self._spooled:  # the database is back: store what waited on disk
                    await asyncio.to_thread(self.replay_spool)
            for (*_, done), result in zip(batch, results, strict=True):
                if done.done():
                    continue
                if isinstance(result, BaseException):
                    done.set_exception(result)
                else:
                    done.set_result(result)

    async def on_incomplete(self, raw: bytes, peer: str) -> None:
        detail = f"connection from {peer} ended mid-message after {len(raw)} bytes (no MLLP end block)"
        await asyncio.to_thread(self._store_or_spool, raw, f"mllp:{peer}", "mllp_incomplete", detail)

    async def on_garbage(self, raw: bytes, peer: str) -> None:
        detail = f"{len(raw)} bytes from {peer} outside an MLLP frame (expected 0x0B … 0x1C 0x0D)"
        await asyncio.to_thread(self._store_or_spool, raw, f"mllp:{peer}", "mllp_garbage", detail)

    # --- the spool: what the database could not take, kept on disk until it can ------------------------

    def _store_or_spool(self, raw: bytes, source: str, reason: str, detail: str) -> None:
        try:
            self.store_inbox_sync(raw, source, reason, detail)
        except Exception:
            if self.spool_dir is None:
                raise
            path = self._spool(raw, source, reason, detail)
            log.exception("database unavailable: %d bytes from %s spooled to %s", len(raw), source, path)
            return
        self._spooled = self._spooled or self._has_spool()
        if self._spooled:
            self.replay_spool()

    def _spool(self, raw: bytes, source: str, reason: str, detail: str) -> Path:
        assert self.spool_dir is not None
        self.spool_dir.mkdir(parents=True, exist_ok=True)
        header = json.dumps({"source": source, "reason": reason, "detail": detail,
                             "spooled_at": dt.datetime.now(dt.UTC).isoformat()})  # fmt: skip
        name = f"{time.time_ns()}-{uuid.uuid4().hex[:8]}"
        tmp = self.spool_dir / f".{name}.tmp"
        with open(tmp, "wb") as fh:
            fh.write(header.encode() + b"\n" + raw)
            fh.flush()
            os.fsync(fh.fileno())
        target = self.spool_dir / f"{name}{_SPOOL_SUFFIX}"
        os.replace(tmp, target)
        self._spooled = True
        return target

    def _has_spool(self) -> bool:
        return self.spool_dir is not None and any(self.spool_dir.glob(f"*{_SPOOL_SUFFIX}"))

    def replay_spool(self) -> int:
        """Store spooled bytes in the inbox (oldest first), deleting each file after its commit; the count
        stored. Stops at the first database error (the rest waits for the next call). A file stored but not
        yet deleted when the process stops is stored again as a ``duplicate`` of itself (keyed by content)."""
        if self.spool_dir is None or not self.spool_dir.is_dir():
            self._spooled = False
            return 0
        stored = 0
        for path in sorted(self.spool_dir.glob(f"*{_SPOOL_SUFFIX}")):
            header, _, raw = path.read_bytes().partition(b"\n")
            meta = json.loads(header)
            detail = f"{meta['detail']} (spooled at {meta['spooled_at']}: the database was unreachable)"
            context = AccessContext.for_practices([self.practice_id])
            try:
                with tenant_session(self.engine, context) as session:
                    outcome = DeviceOutcome("unknown", inbox_reason=meta["reason"], inbox_detail=detail)
                    ingest_raw(session, self.practice_id, raw, meta["source"], None, outcome,
                                  dedup_by_content=True)  # fmt: skip
            except Exception:
                log.exception("replaying the spool %s failed; it stays for the next attempt", path)
                return stored
            path.unlink()
            stored += 1
        self._spooled = False
        return stored
