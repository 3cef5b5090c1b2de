"""An appointment's way through the day once booked: check-in, consult started and finished, cancelled or
a no-show. Each step checks the permission at the appointment's practice and the status it comes from, stamps
the time, and writes the event the process models learn from."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from warehouse.scheduling.errors import SchedulingError
from warehouse.schema.operations import Event
from warehouse.schema.scheduling import Appointment
from warehouse.security.permissions import CONSULT_WRITE, SCHEDULE_WRITE, Actor, require


def appointment_event(
    session: Session, appointment: Appointment, activity: str, actor: Actor, **attributes: object
) -> None:
    session.add(Event(practice_id=appointment.practice_id, activity=activity, actor_user_id=actor.user_id,
                      actor_role=min(actor.roles_at(appointment.practice_id), default=None), patient_id=appointment.patient_id,
                      appointment_id=appointment.id, client_id=appointment.client_id,
                      attributes={k: v for k, v in attributes.items() if v is not None}))  # fmt: skip


def locked_appointment(session: Session, practice_id: int, appointment_id: int) -> Appointment:
    """The appointment, locked for the change about to be made to it."""
    appointment = session.scalar(
        select(Appointment)
        .where(Appointment.practice_id == practice_id, Appointment.id == appointment_id)
        .with_for_update()
    )
    if appointment is None:
        raise SchedulingError("appointment", f"Appointment {appointment_id} does not exist here.")
    return appointment


def require_status(appointment: Appointment, *allowed: str, doing: str) -> None:
    if appointment.status not in allowed:
        raise SchedulingError(
            "appointment", f"Cannot {doing}: the appointment is {appointment.status.replace('_', ' ')}."
        )


def _transition(
    session: Session, actor: Actor, practice_id: int, appointment_id: int, *, permission: str,
    allowed: tuple[str, ...], to: str, activity: str, doing: str, stamp: str | None,
    cancel_reason: str | None = None, **attributes: object,
) -> Appointment:  # fmt: skip
    require(actor, permission, practice_id)
    appointment = locked_appointment(session, practice_id, appointment_id)
    require_status(appointment, *allowed, doing=doing)
    appointment.status = to
    if cancel_reason is not None:
        # In the same UPDATE as the status: one change, so one write-back entry for Animana (change capture).
        appointment.cancel_reason = cancel_reason
    if stamp:
        setattr(appointment, stamp, func.now())
    session.flush()
    appointment_event(session, appointment, activity, actor, **attributes)
    session.flush()
    session.refresh(appointment)
    return appointment


def cancel(
    session: Session, actor: Actor, *, practice_id: int, appointment_id: int, reason: str
) -> Appointment:
    if not reason.strip():
        raise SchedulingError("cancel_reason", "Say why the appointment is cancelled.")
    return _transition(session, actor, practice_id, appointment_id, permission=SCHEDULE_WRITE,
                       allowed=("booked", "checked_in"), to="cancelled", activity="appointment_cancelled",
                       doing="cancel", stamp="cancelled_at", cancel_reason=reason.strip(),
                       reason=reason.strip())  # fmt: skip


def mark_no_show(session: Session, actor: Actor, *, practice_id: int, appointment_id: int) -> Appointment:
    return _transition(session, actor, practice_id, appointment_id, permission=SCHEDULE_WRITE, allowed=("booked",),
                       to="no_show", activity="no_show", doing="mark a no-show", stamp=None)  # fmt: skip


def check_in(session: Session, actor: Actor, *, practice_id: int, appointment_id: int) -> Appointment:
    return _transition(session, actor, practice_id, appointment_id, permission=SCHEDULE_WRITE, allowed=("booked",),
                       to="checked_in", activity="check_in", doing="check in", stamp="checked_in_at")  # fmt: skip


def start_consult(session: Session, actor: Actor, *, practice_id: int, appointment_id: int) -> Appointment:
    return _transition(session, actor, practice_id, appointment_id, permission=CONSULT_WRITE,
                       allowed=("checked_in",), to="in_consult", activity="consult_started",
                       doing="start the consult", stamp="consult_started_at")  # fmt: skip


def finish_consult(session: Session, actor: Actor, *, practice_id: int, appointment_id: int) -> Appointment:
    return _transition(session, actor, practice_id, appointment_id, permission=CONSULT_WRITE,
                       allowed=("in_consult",), to="done", activity="consult_completed",
                       doing="finish the consult", stamp="completed_at")  # fmt: skip
