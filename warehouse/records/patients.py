"""What every clinical write starts from: the patient it is for, and its typed text trimmed."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.orm import Session

from warehouse.records.errors import RecordsError
from warehouse.schema.clients import Patient


def require_patient(session: Session, practice_id: int, patient_id: int) -> Patient:
    """The practice's patient (not deleted), or a ``RecordsError`` at the patient field."""
    patient = session.scalar(
        select(Patient).where(
            Patient.practice_id == practice_id, Patient.id == patient_id, Patient.deleted_at.is_(None)
        )
    )
    if patient is None:
        raise RecordsError("patient", "Choose a patient of this practice.")
    return patient


def optional_text(value: str | None) -> str | None:
    """Typed text without surrounding spaces; None when nothing is left."""
    return (value or "").strip() or None
