"""Vaccinations: the franchise's vaccine protocols (with the practice's own booster intervals), and a
vaccination recorded with its booster reminder, closing the reminders of earlier doses of the same vaccine.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, or_, select, text, update
from sqlalchemy.orm import Session

from warehouse.records.consults import visit_of_the_day
from warehouse.records.errors import RecordsError
from warehouse.records.patients import optional_text, require_patient
from warehouse.schema.clients import ClientPatient
from warehouse.schema.clinical import Reminder, ReminderTemplate, Vaccination
from warehouse.security.permissions import RECORDS_WRITE, Actor, require

VACCINATION_TEMPLATE_CODE = "vacc"


@dataclass(frozen=True)
class ProtocolView:
    franchise_id: int
    id: int
    code: str
    name: str
    species: str
    booster_interval_days: int
    overridden: bool


def vaccine_protocols(session: Session, practice_id: int, species: str | None = None) -> list[ProtocolView]:
    """The franchise's active vaccine protocols with the practice's booster interval where it set one."""
    rows = session.execute(
        text(
            """SELECT v.franchise_id, v.id, v.code, v.name, v.species,
                      coalesce(o.booster_interval_days, v.booster_interval_days) AS interval,
                      o.booster_interval_days IS NOT NULL AS overridden
               FROM vaccine_protocol v JOIN tenant t ON t.id = :p AND t.franchise_id = v.franchise_id
               LEFT JOIN vaccine_protocol_override o
                 ON o.practice_id = :p AND o.protocol_id = v.id AND o.franchise_id = v.franchise_id
               WHERE v.active AND coalesce(o.active, true)
                 AND (CAST(:species AS text) IS NULL OR v.species = :species)
               ORDER BY v.name"""
        ),
        {"p": practice_id, "species": species},
    )
    return [ProtocolView(*r) for r in rows]


def _primary_client_id(session: Session, practice_id: int, patient_id: int) -> int | None:
    return session.scalar(
        select(ClientPatient.client_id)
        .where(ClientPatient.practice_id == practice_id, ClientPatient.patient_id == patient_id)
        .order_by(ClientPatient.is_primary.desc())
        .limit(1)
    )


def record_vaccination(
    session: Session, actor: Actor, *, practice_id: int, patient_id: int, protocol_id: int | None,
    given_on: dt.date, today: dt.date, batch_number: str | None = None, visit_id: int | None = None,
) -> tuple[Vaccination, Reminder]:  # fmt: skip
    """A vaccination and its booster reminder: due after the protocol's interval (the practice's own interval
    when it overrides the franchise's). The open reminders of earlier doses of the same vaccine are closed
    (``done``, with the dose that closed them and when)."""
    require(actor, RECORDS_WRITE, practice_id)
    patient = require_patient(session, practice_id, patient_id)
    if protocol_id is None:
        raise RecordsError("protocol", "Choose the vaccine.")
    protocol = next((p for p in vaccine_protocols(session, practice_id) if p.id == protocol_id), None)
    if protocol is None:
        raise RecordsError("protocol", "This vaccine is not in the practice's protocols.")
    if protocol.species != patient.species:
        raise RecordsError(
            "protocol", f"{protocol.name} is for {protocol.species}s, not for a {patient.species}."
        )
    if given_on > today:
        raise RecordsError("given_on", "A vaccination cannot be given in the future.")
    if given_on < today - dt.timedelta(days=366):
        raise RecordsError("given_on", "Record vaccinations of the past year only here.")
    batch = optional_text(batch_number)
    if batch and len(batch) > 64:
        raise RecordsError("batch_number", "A batch number is at most 64 characters.")
    due_on = given_on + dt.timedelta(days=protocol.booster_interval_days)
    if visit_id is None:
        visit_id = visit_of_the_day(session, practice_id, patient_id, given_on)
    vaccination = Vaccination(practice_id=practice_id, patient_id=patient_id, visit_id=visit_id,
                              franchise_id=protocol.franchise_id, protocol_id=protocol.id, vaccine_name=protocol.name,
                              batch_number=batch, given_on=given_on, due_on=due_on, given_by=actor.user_id)  # fmt: skip
    session.add(vaccination)
    session.flush()
    # The earlier doses of this vaccine: recorded under the protocol, or under its name (Animana's vaccinations
    # carry a name only). Their open reminders (pending, or sent and not yet followed) are closed by this dose;
    # a dose recorded after the fact (older than one already on record) closes nothing newer than itself.
    same_vaccine = or_(Vaccination.protocol_id == protocol.id,
                       func.lower(Vaccination.vaccine_name) == protocol.name.lower())  # fmt: skip
    earlier = select(Vaccination.id).where(
        Vaccination.practice_id == practice_id, Vaccination.patient_id == patient_id, same_vaccine,
        Vaccination.id != vaccination.id, Vaccination.given_on <= given_on,
    )  # fmt: skip
    closed_at = dt.datetime.now(dt.UTC)
    session.execute(
        update(Reminder)
        .where(Reminder.practice_id == practice_id, Reminder.patient_id == patient_id,
               Reminder.kind == "vaccination", Reminder.status.in_(("pending", "sent")),
               Reminder.vaccination_id.in_(earlier))
        .values(status="done", closed_by_vaccination_id=vaccination.id, closed_at=closed_at)
    )  # fmt: skip
    later_dose = session.scalar(
        select(Vaccination.id)
        .where(Vaccination.practice_id == practice_id, Vaccination.patient_id == patient_id, same_vaccine,
               Vaccination.id != vaccination.id, Vaccination.given_on > given_on)
        .order_by(Vaccination.given_on, Vaccination.id)
        .limit(1)
    )  # fmt: skip
    # The same template the reminder generator picks (warehouse/records/reminders.py): a franchise may keep one
    # vaccination template ("vacc") or one per channel ("vacc-email", "vacc-sms"); the longest lead time wins.
    template_id = session.scalar(
        select(ReminderTemplate.id)
        .where(
            ReminderTemplate.franchise_id == protocol.franchise_id,
            or_(ReminderTemplate.code == VACCINATION_TEMPLATE_CODE,
                ReminderTemplate.code.like(VACCINATION_TEMPLATE_CODE + "-%")),
        )
        .order_by(ReminderTemplate.days_before_due.desc(), ReminderTemplate.id)
        .limit(1)
    )  # fmt: skip
    reminder = Reminder(practice_id=practice_id, patient_id=patient_id,
                        client_id=_primary_client_id(session, practice_id, patient_id), kind="vaccination",
                        due_on=due_on, franchise_id=protocol.franchise_id if template_id else None,
                        template_id=template_id, vaccination_id=vaccination.id)  # fmt: skip
    if later_dose is not None:  # this dose's booster was given already: nothing to remind of
        reminder.status, reminder.closed_by_vaccination_id, reminder.closed_at = "done", later_dose, closed_at
    session.add(reminder)
    session.flush()
    return vaccination, reminder
