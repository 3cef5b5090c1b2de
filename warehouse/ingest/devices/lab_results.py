"""Lab results into the record: orders found or created, observations inserted, earlier ones superseded.

Corrections keep history. A corrected (HL7 ``C``) or cancelled result inserts a new row and points every
current earlier row of the same patient, lab order and code at it through ``superseded_by``; a final result
does the same to earlier preliminary ones. Nothing is updated in place except that pointer.

:func:`order_columns` and :func:`observation_rows` are the one shape of a ``lab_order`` and a
``lab_observation`` row; the batch path inserts exactly these rows too.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Sequence

from sqlalchemy import Row, bindparam, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.orm import Session

from warehouse.ingest.devices.inputs import ACCESSION_MAX, LabOrderInput, LabResultInput
from warehouse.ingest.devices.matching import PatientMatch, match_patient, require_patient
from warehouse.ingest.devices.raw import clip, utc_now
from warehouse.schema.clinical import LabObservation, LabOrder


def order_status(order: LabOrderInput) -> str:
    statuses = {o.status for o in order.observations}
    if statuses and statuses <= {"cancelled"}:
        return "cancelled"
    return "partial" if "preliminary" in statuses else "resulted"


def stored_accession(order: LabOrderInput) -> str:
    """The accession number as a new ``lab_order`` row holds it."""
    return (order.accession or "")[:ACCESSION_MAX]


def order_columns(result: LabResultInput, order: LabOrderInput) -> dict[str, object]:
    """A new ``lab_order`` row's columns besides practice and patient (the order has an accession number)."""
    return {
        "accession_number": stored_accession(order),
        "test_code": clip(order.test_code, 64),
        "test_name": clip(order.test_name, 200),
        "lab": clip(result.lab, 120),
        "status": order_status(order),
    }


def observation_rows(
    practice_id: int,
    patient_id: int,
    lab_order_id: int | None,
    message_id: int,
    result: LabResultInput,
    order: LabOrderInput,
    now: dt.datetime,
) -> list[dict[str, object]]:
    """The ``lab_observation`` rows of one order; a result without a time of its own takes the order's, else
    the message's, else ``now``."""
    fallback_time = order.observed_at or result.sent_at or now
    return [
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


def load_results(
    session: Session,
    practice_id: int,
    message_id: int,
    results: Sequence[LabResultInput],
    chosen_patient_id: int | None,
) -> tuple[int, int] | PatientMatch:
    """Insert the message's results: (patient id, observation count), or the failed match (nothing written)."""
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
        require_patient(session, practice_id, chosen_patient_id)
    count = 0
    for result, match in zip(results, matches, strict=True):
        assert match.patient_id is not None
        for order in result.orders:
            count += _load_order(session, practice_id, message_id, match.patient_id, result, order)
    patient_ids = {m.patient_id for m in matches}
    return (patient_ids.pop() if len(patient_ids) == 1 else matches[0].patient_id or 0), count


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
                .values(status=order_status(order))
            )
        return row.id, False
    if not order.accession:
        return None, False
    created = session.execute(
        pg_insert(LabOrder)
        .values(practice_id=practice_id, patient_id=patient_id, **order_columns(result, order))
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
    rows = observation_rows(practice_id, patient_id, lab_order_id, message_id, result, order, utc_now())
    earlier = (
        [] if is_new else _current_rows(session, practice_id, patient_id, lab_order_id, message_id, rows)
    )
    # One INSERT statement per panel: one audit entry and one round trip, whatever the panel size.
    table = LabObservation.__table__
    # executemany + RETURNING is sent as one batched INSERT … VALUES ("insertmanyvalues"), compiled once.
    inserted = session.execute(insert(table).returning(table.c.id, table.c.code), rows).all()
    if earlier:
        _supersede(session, practice_id, earlier, inserted, rows)
    return len(inserted)


def _supersede(
    session: Session, practice_id: int, earlier: Sequence[Row], inserted: Sequence[Row], rows: list[dict]
) -> None:
    """Point each earlier current row at the new row of its code, when the new status replaces the old."""
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
        table = LabObservation.__table__
        session.execute(
            update(table)
            .where(table.c.practice_id == bindparam("p"), table.c.id == bindparam("old"))
            .values(superseded_by=bindparam("new")),
            pointers,
        )


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
