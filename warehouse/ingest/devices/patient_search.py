"""Exact patient search for the device inbox: the person who matches a message finds its patient here."""

from __future__ import annotations

import re
from dataclasses import dataclass

from sqlalchemy import or_, select, text
from sqlalchemy.orm import Session

from warehouse.schema.clients import Client, ClientPatient, Patient


@dataclass(frozen=True, slots=True)
class PatientChoice:
    practice_id: int
    patient_id: int
    name: str
    species: str
    microchip: str | None
    owners: str


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
