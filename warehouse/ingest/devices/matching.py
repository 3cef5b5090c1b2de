"""Which patient a device message is about: exact matches only.

Lab order by accession/order number first, then microchip, then patient id plus the owner's last name.
Anything else is no match, with a reason naming what was looked for (the message then waits in the inbox for a
person). The batch path asks the same two lookups (:func:`orders_by_number`, :func:`patients_by_chip`), so it
matches a patient exactly when this module would.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from warehouse.ingest.devices.inputs import (
    INBOX_AMBIGUOUS,
    INBOX_CONFLICT,
    INBOX_NO_MATCH,
    InboxError,
    PatientKeys,
)
from warehouse.schema.clients import Client, ClientPatient, Patient
from warehouse.schema.clinical import LabOrder


@dataclass(frozen=True, slots=True)
class PatientMatch:
    patient_id: int | None
    how: str | None = None  # accession | microchip | patient_id_owner | chosen
    reason: str | None = None
    detail: str | None = None


def orders_by_number(session: Session, practice_id: int, numbers: Sequence[str]) -> Sequence[Row]:
    """The practice's lab orders with one of these accession numbers: (accession_number, patient_id) rows."""
    return session.execute(
        select(LabOrder.accession_number, LabOrder.patient_id).where(
            LabOrder.practice_id == practice_id, LabOrder.accession_number.in_(list(numbers))
        )
    ).all()


def patients_by_chip(session: Session, practice_id: int, chips: Sequence[str]) -> dict[str, int]:
    """{microchip: the live patient of the practice that carries it} for the chips that are known. One at most:
    a chip is unique among a practice's live patients (``uq_patient_microchip``)."""
    rows = session.execute(
        select(Patient.microchip, Patient.id).where(
            Patient.practice_id == practice_id,
            Patient.microchip.in_(list(chips)),
            Patient.deleted_at.is_(None),
        )
    )
    return {row.microchip: row.id for row in rows}


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
        rows = orders_by_number(session, practice_id, numbers)
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
        chipped = patients_by_chip(session, practice_id, [keys.microchip]).get(keys.microchip)
        if chipped is not None:
            return PatientMatch(chipped, how="microchip")
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


def require_patient(session: Session, practice_id: int, patient_id: int) -> None:
    """A person's choice of patient must be a patient of the message's practice."""
    found = session.scalar(
        select(Patient.id).where(Patient.practice_id == practice_id, Patient.id == patient_id)
    )
    if found is None:
        raise InboxError(f"patient {patient_id} is not a patient of practice {practice_id}")
