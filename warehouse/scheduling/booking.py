"""Booking and rescheduling. The exclusion constraint ``no_double_booking`` is the final guard against double
booking; this module turns its violation into a :class:`BookingConflict` that names the appointment in the way.
Only appointments that hold their slot (``SLOT_HOLDING_STATUSES``) are in the way, here as in the constraint.

Everything here runs inside the caller's tenant session: RLS decides which practice's rows exist at all."""

from __future__ import annotations

import datetime as dt

from psycopg import errors as pg_errors
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from warehouse.kernel.practice_time import practice_zone
from warehouse.scheduling.errors import BookingConflict, SchedulingError
from warehouse.scheduling.slots import appointment_type, check_species, resources
from warehouse.scheduling.transitions import appointment_event, locked_appointment, require_status
from warehouse.schema.clients import ClientPatient, Patient
from warehouse.schema.operations import Event
from warehouse.schema.scheduling import SLOT_HOLDING_STATUSES, Appointment, Resource, StaffShift
from warehouse.security.permissions import SCHEDULE_WRITE, Actor, require


def overlapping_appointments(
    session: Session, practice_id: int, resource_id: int, starts_at: dt.datetime, ends_at: dt.datetime
) -> list[Appointment]:
    return list(
        session.scalars(
            select(Appointment)
            .where(
                Appointment.practice_id == practice_id,
                Appointment.resource_id == resource_id,
                Appointment.status.in_(SLOT_HOLDING_STATUSES),
                Appointment.starts_at < ends_at,
                Appointment.ends_at > starts_at,
            )
            .order_by(Appointment.starts_at)
        )
    )


def _conflict(
    session: Session, practice_id: int, resource_id: int, starts_at: dt.datetime, ends_at: dt.datetime,
    moving: int | None = None,
) -> BookingConflict | None:  # fmt: skip
    """The conflict to report after the constraint refused a slot (``moving``: the appointment being moved,
    which is not in its own way), or None when the blocker was itself rolled back meanwhile."""
    blocking = [
        a
        for a in overlapping_appointments(session, practice_id, resource_id, starts_at, ends_at)
        if a.id != moving
    ]
    if not blocking:
        return None
    name = session.scalar(
        select(Resource.name).where(Resource.practice_id == practice_id, Resource.id == resource_id)
    )
    first = blocking[0]
    return BookingConflict(
        resource_id, first.id, first.starts_at, first.ends_at, name, zone=practice_zone(session, practice_id)
    )


def _primary_client(session: Session, practice_id: int, patient_id: int) -> tuple[int | None, str]:
    row = session.execute(
        select(ClientPatient.client_id, Patient.species)
        .select_from(Patient)
        .outerjoin(ClientPatient, (ClientPatient.practice_id == Patient.practice_id)
                   & (ClientPatient.patient_id == Patient.id) & ClientPatient.is_primary)
        .where(Patient.practice_id == practice_id, Patient.id == patient_id, Patient.deleted_at.is_(None))
    ).first()  # fmt: skip
    if row is None:
        raise SchedulingError("patient", "Choose a patient of this practice.")
    return row[0], row[1]


def _check_in_shift(
    session: Session, practice_id: int, resource_id: int, starts_at: dt.datetime, ends_at: dt.datetime
) -> None:
    covered = session.scalar(
        select(StaffShift.id).where(
            StaffShift.practice_id == practice_id, StaffShift.resource_id == resource_id,
            StaffShift.starts_at <= starts_at, StaffShift.ends_at >= ends_at,
        ).limit(1)
    )  # fmt: skip
    if (
        covered is None
        and session.scalar(
            select(Resource.kind).where(Resource.practice_id == practice_id, Resource.id == resource_id)
        )
        == "staff"
    ):
        local = starts_at.astimezone(practice_zone(session, practice_id))
        raise SchedulingError("starts_at", f"The vet is not on shift at {local:%a %d %b %H:%M}.")


def book(
    session: Session, actor: Actor, *, practice_id: int, appointment_type_id: int, resource_id: int,
    starts_at: dt.datetime, patient_id: int, reason: str | None = None, duration_minutes: int | None = None,
) -> Appointment:  # fmt: skip
    """Book a patient: the type's practice duration, species rule and the resource's shift are checked here;
    double booking is left to the exclusion constraint (raises :class:`BookingConflict`).

    The insert runs in a savepoint so that the surrounding transaction stays usable after a conflict (the
    caller can offer other slots in the same request)."""
    require(actor, SCHEDULE_WRITE, practice_id)
    kind = appointment_type(session, practice_id, appointment_type_id)
    client_id, species = _primary_client(session, practice_id, patient_id)
    check_species(kind, species)
    if kind.requires_vet and resource_id not in {r.id for r in resources(session, practice_id, "staff")}:
        raise SchedulingError("resource", f"{kind.name} needs a vet or nurse, not a room.")
    ends_at = starts_at + dt.timedelta(minutes=duration_minutes or kind.duration_minutes)
    if starts_at.tzinfo is None:
        raise ValueError("appointment times must be timezone-aware")
    if ends_at <= starts_at:
        raise ValueError("an appointment must end after it starts")
    _check_in_shift(session, practice_id, resource_id, starts_at, ends_at)
    appointment = Appointment(
        practice_id=practice_id, resource_id=resource_id, starts_at=starts_at, ends_at=ends_at,
        patient_id=patient_id, client_id=client_id, franchise_id=kind.franchise_id, appointment_type_id=kind.id,
        reason=(reason or "").strip() or None, booked_by=actor.user_id, status="booked",
    )  # fmt: skip
    try:
        with session.begin_nested():
            session.add(appointment)
            session.flush()
    except IntegrityError as exc:
        if not isinstance(exc.orig, pg_errors.ExclusionViolation):
            raise
        conflict = _conflict(session, practice_id, resource_id, starts_at, ends_at)
        if conflict is None:  # the blocker was itself rolled back meanwhile; let the caller retry
            raise
        raise conflict from None
    session.add(Event(practice_id=practice_id, activity="booking_made", actor_user_id=actor.user_id,
                      patient_id=patient_id, appointment_id=appointment.id, client_id=client_id))  # fmt: skip
    session.flush()
    return appointment


def reschedule(
    session: Session, actor: Actor, *, practice_id: int, appointment_id: int, starts_at: dt.datetime,
    resource_id: int | None = None,
) -> Appointment:  # fmt: skip
    require(actor, SCHEDULE_WRITE, practice_id)
    appointment = locked_appointment(session, practice_id, appointment_id)
    require_status(appointment, "booked", doing="reschedule")
    old_start, old_resource = appointment.starts_at, appointment.resource_id
    length = appointment.ends_at - appointment.starts_at
    new_resource = resource_id or appointment.resource_id
    _check_in_shift(session, practice_id, new_resource, starts_at, starts_at + length)
    try:
        with session.begin_nested():
            appointment.starts_at, appointment.ends_at = starts_at, starts_at + length
            appointment.resource_id = new_resource
            session.flush()
    except IntegrityError as exc:
        if not isinstance(exc.orig, pg_errors.ExclusionViolation):
            raise
        session.expire(appointment)
        conflict = _conflict(
            session, practice_id, new_resource, starts_at, starts_at + length, appointment_id
        )
        if conflict is None:
            raise
        raise conflict from None
    appointment_event(session, appointment, "appointment_rescheduled", actor, from_start=old_start.isoformat(),
                      from_resource=old_resource if old_resource != new_resource else None)  # fmt: skip
    session.flush()
    return appointment
