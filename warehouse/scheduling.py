"""Booking appointments. The exclusion constraint ``no_double_booking`` is the final guard against double
booking; this module turns its violation into a :class:`BookingConflict` that names the appointment in the way."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from psycopg import errors as pg_errors
from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from warehouse.schema.operations import Event
from warehouse.schema.scheduling import Appointment

# Messages show local time; every demo and Animana practice is Dutch (tenant.timezone holds it per practice).
PRACTICE_TZ = ZoneInfo("Europe/Amsterdam")


class BookingConflict(Exception):
    """The resource is already booked for an overlapping time; names the appointment in the way."""

    def __init__(
        self, resource_id: int, existing_appointment_id: int, existing_starts_at: dt.datetime,
        existing_ends_at: dt.datetime,
    ) -> None:  # fmt: skip
        self.resource_id = resource_id
        self.existing_appointment_id = existing_appointment_id
        self.existing_starts_at = existing_starts_at
        self.existing_ends_at = existing_ends_at
        start = existing_starts_at.astimezone(PRACTICE_TZ).strftime("%Y-%m-%d %H:%M")
        end = existing_ends_at.astimezone(PRACTICE_TZ).strftime("%H:%M")
        super().__init__(
            f"resource {resource_id} is already booked from {start} to {end} (appointment {existing_appointment_id})"
        )


@dataclass(frozen=True)
class BookingRequest:
    practice_id: int
    resource_id: int
    starts_at: dt.datetime
    ends_at: dt.datetime
    patient_id: int | None = None
    client_id: int | None = None
    franchise_id: int | None = None
    appointment_type_id: int | None = None
    reason: str | None = None
    booked_by: int | None = None

    def __post_init__(self) -> None:
        if self.starts_at.tzinfo is None or self.ends_at.tzinfo is None:
            raise ValueError("appointment times must be timezone-aware")
        if self.ends_at <= self.starts_at:
            raise ValueError("an appointment must end after it starts")


def overlapping_appointments(
    session: Session, practice_id: int, resource_id: int, starts_at: dt.datetime, ends_at: dt.datetime
) -> list[Appointment]:
    return list(
        session.scalars(
            select(Appointment)
            .where(
                Appointment.practice_id == practice_id,
                Appointment.resource_id == resource_id,
                Appointment.status != "cancelled",
                Appointment.starts_at < ends_at,
                Appointment.ends_at > starts_at,
            )
            .order_by(Appointment.starts_at)
        )
    )


def book_appointment(session: Session, request: BookingRequest) -> Appointment:
    """Insert a booked appointment; raises :class:`BookingConflict` when the resource is taken.

    The insert runs in a savepoint so that the surrounding transaction stays usable after a conflict (the
    caller can offer other slots in the same request)."""
    appointment = Appointment(
        practice_id=request.practice_id,
        resource_id=request.resource_id,
        starts_at=request.starts_at,
        ends_at=request.ends_at,
        patient_id=request.patient_id,
        client_id=request.client_id,
        franchise_id=request.franchise_id,
        appointment_type_id=request.appointment_type_id,
        reason=request.reason,
        booked_by=request.booked_by,
        status="booked",
    )
    try:
        with session.begin_nested():
            session.add(appointment)
            session.flush()
    except IntegrityError as exc:
        if not isinstance(exc.orig, pg_errors.ExclusionViolation):
            raise
        blocking = overlapping_appointments(
            session, request.practice_id, request.resource_id, request.starts_at, request.ends_at
        )
        if not blocking:  # the blocker was itself rolled back meanwhile; let the caller retry
            raise
        first = blocking[0]
        raise BookingConflict(request.resource_id, first.id, first.starts_at, first.ends_at) from None
    session.add(
        Event(
            practice_id=request.practice_id,
            activity="booking_made",
            actor_user_id=request.booked_by,
            patient_id=request.patient_id,
            appointment_id=appointment.id,
            client_id=request.client_id,
        )
    )
    session.flush()
    return appointment
