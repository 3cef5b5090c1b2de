"""Marking a patient deceased: its future appointments and pending reminders are cancelled with it.

Two steps, so the user knows what will happen: :func:`preview_deceased` says what would be cancelled ("This cancels
2 appointments and 3 reminders. Continue?"), and :func:`mark_deceased`, given that preview as the user's consent,
does it in the caller's one transaction. If the patient's appointments or reminders changed in between, nothing
is done and the new preview is the question to ask again. The appointments are cancelled as the scheduling service
cancels them (their event, their write-back); the table triggers audit every row, and one audit entry ties them
to the decision.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from warehouse.kernel import audit
from warehouse.kernel.formatting import date as dutch_date
from warehouse.records.errors import RecordsError
from warehouse.records.patients import require_patient
from warehouse.scheduling import transitions
from warehouse.schema.clinical import Reminder
from warehouse.schema.scheduling import Appointment
from warehouse.security.permissions import CLIENTS_WRITE, Actor, require

CANCEL_REASON = "Patient deceased"
# Statuses an appointment can still be cancelled from (the scheduling service's own rule).
CANCELLABLE = ("booked", "checked_in")


@dataclass(frozen=True)
class DeceasedPreview:
    patient_id: int
    name: str
    appointment_ids: tuple[int, ...]  # future appointments that would be cancelled
    reminder_ids: tuple[int, ...]  # pending reminders that would be cancelled

    @property
    def question(self) -> str:
        appointments, reminders = len(self.appointment_ids), len(self.reminder_ids)
        if not appointments and not reminders:
            return f"{self.name} has no future appointments or pending reminders. Mark {self.name} deceased?"
        parts = [f"{n} {word}{'' if n == 1 else 's'}"
                 for n, word in ((appointments, "appointment"), (reminders, "reminder")) if n]  # fmt: skip
        return f"This cancels {' and '.join(parts)}. Continue?"


def _preview(
    session: Session, practice_id: int, patient_id: int, now: dt.datetime, *, lock: bool
) -> DeceasedPreview:
    patient = require_patient(session, practice_id, patient_id)
    if patient.deceased:
        on = f" on {dutch_date(patient.deceased_on)}" if patient.deceased_on else ""
        raise RecordsError("deceased_on", f"{patient.name} is already recorded as deceased{on}.")
    appointments = (
        select(Appointment.id)
        .where(Appointment.practice_id == practice_id, Appointment.patient_id == patient_id,
               Appointment.starts_at > now, Appointment.status.in_(CANCELLABLE))
        .order_by(Appointment.id)
    )  # fmt: skip
    reminders = (
        select(Reminder.id)
        .where(Reminder.practice_id == practice_id, Reminder.patient_id == patient_id, Reminder.status == "pending")
        .order_by(Reminder.id)
    )  # fmt: skip
    if lock:  # nobody books or sends for the patient between this look and the cancellation
        appointments, reminders = appointments.with_for_update(), reminders.with_for_update()
    return DeceasedPreview(
        patient_id, patient.name, tuple(session.scalars(appointments)), tuple(session.scalars(reminders))
    )


def preview_deceased(
    session: Session, *, practice_id: int, patient_id: int, now: dt.datetime
) -> DeceasedPreview:
    """What marking the patient deceased now would cancel; refused when it is deceased already."""
    return _preview(session, practice_id, patient_id, now, lock=False)


def mark_deceased(
    session: Session, actor: Actor, *, practice_id: int, patient_id: int, deceased_on: dt.date | None,
    confirmed: DeceasedPreview, today: dt.date, now: dt.datetime,
) -> DeceasedPreview:  # fmt: skip
    """Mark the patient deceased on ``deceased_on`` and cancel what ``confirmed`` (the preview the user agreed to)
    listed; refused, with nothing written, when the date is wrong or the preview is no longer what would happen
    (the error's message is then the new question)."""
    require(actor, CLIENTS_WRITE, practice_id)
    patient = require_patient(session, practice_id, patient_id)
    if deceased_on is None:
        raise RecordsError("deceased_on", "Give the date the patient died.")
    if deceased_on > today:
        raise RecordsError("deceased_on", "The date of death cannot be in the future.")
    if patient.date_of_birth is not None and deceased_on < patient.date_of_birth:
        born = f"{'estimated ' if patient.date_of_birth_estimated else ''}date of birth"
        raise RecordsError("deceased_on", f"That is before the {born}, {dutch_date(patient.date_of_birth)}.")
    session.refresh(patient, with_for_update=True)
    current = _preview(session, practice_id, patient_id, now, lock=True)
    if (current.appointment_ids, current.reminder_ids) != (confirmed.appointment_ids, confirmed.reminder_ids):
        raise RecordsError("confirm", f"Things changed since you were asked. {current.question}")
    patient.deceased, patient.deceased_on = True, deceased_on
    session.flush()
    for appointment_id in current.appointment_ids:
        transitions.cancel(session, actor, practice_id=practice_id, appointment_id=appointment_id,
                           reason=CANCEL_REASON)  # fmt: skip
    if current.reminder_ids:
        session.execute(
            update(Reminder)
            .where(Reminder.practice_id == practice_id, Reminder.id.in_(current.reminder_ids))
            .values(status="cancelled")
        )
    audit.record(
        session, practice_id=practice_id, action="mark_deceased", entity="patient", entity_ids=[patient_id],
        detail={"deceased_on": deceased_on.isoformat(), "appointments_cancelled": list(current.appointment_ids),
                "reminders_cancelled": list(current.reminder_ids)},
    )  # fmt: skip
    return current
