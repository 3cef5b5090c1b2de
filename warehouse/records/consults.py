"""Consult notes: the SOAP note of an appointment's consult with its diagnoses (coded with VeNom where the
practice's list knows the term), and the visit of the day that what is given or prescribed belongs to.

Writes check the actor's permissions again (the page hides what a role may not do, the service refuses it);
the tables' triggers audit them.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from warehouse.kernel.practice_time import local_day_bounds, practice_zone
from warehouse.records.errors import RecordsError
from warehouse.records.patients import optional_text
from warehouse.scheduling import transitions
from warehouse.schema.clinical import Diagnosis, Visit
from warehouse.schema.scheduling import Appointment
from warehouse.security.permissions import CONSULT_WRITE, RECORDS_WRITE, Actor, require


@dataclass(frozen=True)
class ConsultNote:
    subjective: str = ""
    objective: str = ""
    assessment: str = ""
    plan: str = ""
    diagnoses: tuple[str, ...] = ()


def write_consult(
    session: Session, actor: Actor, *, practice_id: int, appointment_id: int, note: ConsultNote,
    sign: bool = False, finish: bool = False,
) -> Visit:  # fmt: skip
    """The SOAP note of an appointment's consult. The appointment moves on as the scheduling service moves it
    (checked in → in consult, and done when ``finish``); the visit of the appointment is reused while unsigned."""
    require(actor, CONSULT_WRITE, practice_id)
    require(actor, RECORDS_WRITE, practice_id)
    fields = {"subjective": note.subjective, "objective": note.objective, "assessment": note.assessment,
              "plan": note.plan}  # fmt: skip
    if not any((v or "").strip() for v in fields.values()):
        raise RecordsError("subjective", "Write at least one part of the SOAP note.")
    for name, value in fields.items():
        if len(value or "") > 20_000:
            raise RecordsError(name, "Keep this part under 20,000 characters.")
    appointment = session.scalar(
        select(Appointment).where(Appointment.practice_id == practice_id, Appointment.id == appointment_id)
    )
    if appointment is None or appointment.patient_id is None:
        raise RecordsError("appointment", "Choose an appointment of this practice with a patient.")
    if appointment.status in ("cancelled", "no_show"):
        raise RecordsError("appointment", f"The appointment is {appointment.status.replace('_', ' ')}.")
    if appointment.status == "booked":
        appointment = transitions.check_in(
            session, actor, practice_id=practice_id, appointment_id=appointment_id
        )
    if appointment.status == "checked_in":
        appointment = transitions.start_consult(
            session, actor, practice_id=practice_id, appointment_id=appointment_id
        )
    visit = session.scalar(
        select(Visit)
        .where(Visit.practice_id == practice_id, Visit.appointment_id == appointment_id)
        .order_by(Visit.id.desc())
        .limit(1)
        .with_for_update()
    )
    if visit is not None and visit.signed_at is not None:
        raise RecordsError("appointment", "The note of this consult is signed; it can no longer be changed.")
    if visit is None:
        visit = Visit(practice_id=practice_id, patient_id=appointment.patient_id, appointment_id=appointment_id,
                      vet_user_id=actor.user_id, reason=appointment.reason,
                      started_at=appointment.consult_started_at or dt.datetime.now(dt.UTC))  # fmt: skip
        session.add(visit)
    for name, value in fields.items():
        setattr(visit, name, optional_text(value))
    if sign:
        visit.signed_at = dt.datetime.now(dt.UTC)
        visit.signed_by = actor.user_id
    session.flush()
    terms = [t.strip() for t in note.diagnoses if t and t.strip()]
    for term in terms:
        if len(term) > 200:
            raise RecordsError("diagnoses", "A diagnosis is at most 200 characters.")
    existing = set(session.scalars(select(Diagnosis.term).where(
        Diagnosis.practice_id == practice_id, Diagnosis.visit_id == visit.id)))  # fmt: skip
    codes = coded_diagnoses(session, practice_id, terms) if terms else {}
    session.add_all(
        Diagnosis(practice_id=practice_id, visit_id=visit.id, patient_id=visit.patient_id, term=term,
                  venom_code=codes.get(term.casefold()))
        for term in dict.fromkeys(terms) if term not in existing
    )  # fmt: skip
    if finish and appointment.status == "in_consult":
        transitions.finish_consult(session, actor, practice_id=practice_id, appointment_id=appointment_id)
    session.flush()
    return visit


def coded_diagnoses(session: Session, practice_id: int, terms: list[str] | None = None) -> dict[str, str]:
    """The practice's coded diagnosis list: each term it has used with a VeNom code (from Animana's history or
    its own earlier entries), case-folded term -> code; with ``terms``, only those. A term typed here that is on
    the list is stored with its code, so the dashboards' diagnosis counts and the models see one concept."""
    query = (
        select(func.lower(Diagnosis.term), func.min(Diagnosis.venom_code))
        .where(
            Diagnosis.practice_id == practice_id,
            Diagnosis.venom_code.is_not(None),
            Diagnosis.venom_code != "",
        )
        .group_by(func.lower(Diagnosis.term))
    )
    if terms is not None:
        query = query.where(func.lower(Diagnosis.term).in_([t.casefold() for t in terms]))
    return dict(session.execute(query).tuples().all())


def diagnosis_choices(session: Session, practice_id: int) -> list[tuple[str, str]]:
    """The coded list as (term as first written, code), in alphabetical order, for the consult form."""
    rows = session.execute(
        select(func.min(Diagnosis.term), func.min(Diagnosis.venom_code))
        .where(
            Diagnosis.practice_id == practice_id,
            Diagnosis.venom_code.is_not(None),
            Diagnosis.venom_code != "",
        )
        .group_by(func.lower(Diagnosis.term))
        .order_by(func.lower(Diagnosis.term))
    ).tuples()
    return [(term, code) for term, code in rows]


def visit_of_the_day(session: Session, practice_id: int, patient_id: int, day: dt.date) -> int | None:
    """The patient's latest visit started on ``day`` (practice time): what is given or prescribed during a
    consult belongs to that visit, and so to the invoice made from it."""
    start, end = local_day_bounds(day, practice_zone(session, practice_id))
    return session.scalar(
        select(Visit.id)
        .where(Visit.practice_id == practice_id, Visit.patient_id == patient_id,
               Visit.started_at >= start, Visit.started_at < end)
        .order_by(Visit.started_at.desc(), Visit.id.desc())
        .limit(1)
    )  # fmt: skip
