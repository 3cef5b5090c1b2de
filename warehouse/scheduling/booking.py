"""Booking appointments. The exclusion constraint ``no_double_booking`` is the final guard against double
booking; this module turns its violation into a :class:`BookingConflict` that names the appointment in the way.
Only appointments that hold their slot (``SLOT_HOLDING_STATUSES``) are in the way, here as in the constraint."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

import polars as pl
from psycopg import errors as pg_errors
from sqlalchemy import func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from warehouse.kernel import formatting
from warehouse.schema.clients import ClientPatient, Patient
from warehouse.schema.operations import Event
from warehouse.schema.scheduling import SLOT_HOLDING_STATUSES, Appointment, Resource, StaffShift
from warehouse.security.permissions import CONSULT_WRITE, SCHEDULE_WRITE, Actor, require
from warehouse.tenants.shared_resources import EffectiveAppointmentType as AppointmentTypeView
from warehouse.tenants.shared_resources import effective_appointment_types

# Messages show local time; every demo and Animana practice is Dutch (tenant.timezone holds it per practice).
PRACTICE_TZ = ZoneInfo("Europe/Amsterdam")


class BookingConflict(Exception):
    """The resource is already booked for an overlapping time; names the appointment in the way."""

    def __init__(
        self, resource_id: int, existing_appointment_id: int, existing_starts_at: dt.datetime,
        existing_ends_at: dt.datetime, resource_name: str | None = None,
    ) -> None:  # fmt: skip
        self.resource_id = resource_id
        self.resource_name = resource_name
        self.existing_appointment_id = existing_appointment_id
        self.existing_starts_at = existing_starts_at
        self.existing_ends_at = existing_ends_at
        # Staff read this: the vet or room by name, the time in the practice's local time, Dutch format.
        who = resource_name or f"resource {resource_id}"
        start = formatting.date_time(existing_starts_at, PRACTICE_TZ)
        end = formatting.time(existing_ends_at, PRACTICE_TZ)
        super().__init__(
            f"{who} is already booked from {start} to {end} (appointment {existing_appointment_id})"
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
                Appointment.status.in_(SLOT_HOLDING_STATUSES),
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
        name = session.scalar(
            select(Resource.name).where(
                Resource.practice_id == request.practice_id, Resource.id == request.resource_id
            )
        )
        raise BookingConflict(request.resource_id, first.id, first.starts_at, first.ends_at, name) from None
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


# --- the scheduling workspace's services ---------------------------------------------------------------------
# Everything below runs inside the caller's tenant session: RLS decides which practice's rows exist at all.

SLOT_GRID = dt.timedelta(minutes=5)


class SchedulingError(ValueError):
    """A request the scheduling rules refuse; ``field`` names the form field the message belongs to."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(message)
        self.field = field


@dataclass(frozen=True)
class ResourceView:
    id: int
    kind: str
    name: str


@dataclass(frozen=True)
class Slot:
    resource_id: int
    resource_name: str
    starts_at: dt.datetime
    ends_at: dt.datetime


@dataclass(frozen=True)
class SlotQuery:
    practice_id: int
    appointment_type_id: int
    not_before: dt.datetime
    days: int = 7
    resource_id: int | None = None
    species: str | None = None
    duration_minutes: int | None = None
    limit: int = 10


def appointment_types(session: Session, practice_id: int) -> list[AppointmentTypeView]:
    """The franchise's appointment types as this practice uses them (its duration/colour overrides applied,
    switched-off types left out)."""
    return effective_appointment_types(session, practice_id)


def appointment_type(session: Session, practice_id: int, type_id: int) -> AppointmentTypeView:
    for view in appointment_types(session, practice_id):
        if view.id == type_id:
            return view
    raise SchedulingError("type", "This appointment type is not offered at this practice.")


def resources(session: Session, practice_id: int, kind: str | None = None) -> list[ResourceView]:
    query = select(Resource.id, Resource.kind, Resource.name).where(
        Resource.practice_id == practice_id, Resource.active
    )
    if kind:
        query = query.where(Resource.kind == kind)
    return [
        ResourceView(*row) for row in session.execute(query.order_by(Resource.kind.desc(), Resource.name))
    ]


def _ceil_to_grid(moment: dt.datetime) -> dt.datetime:
    epoch = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    steps = -(-(moment - epoch) // SLOT_GRID)
    return epoch + steps * SLOT_GRID


def _check_species(kind: AppointmentTypeView, species: str | None) -> None:
    if kind.species and species and species not in kind.species:
        allowed = ", ".join(kind.species)
        raise SchedulingError(
            "type", f"{kind.name} can only be booked for: {allowed} (this patient: {species})."
        )


def find_free_slots(session: Session, query: SlotQuery) -> list[Slot]:
    """The earliest free slots on or after ``not_before``: inside the resource's shifts, clear of every
    booking that holds its slot, on a 5-minute grid, with the practice's duration for the type."""
    kind = appointment_type(session, query.practice_id, query.appointment_type_id)
    _check_species(kind, query.species)
    length = dt.timedelta(minutes=query.duration_minutes or kind.duration_minutes)
    window_end = query.not_before + dt.timedelta(days=query.days)
    candidates = {
        r.id: r.name
        for r in resources(session, query.practice_id, kind="staff")
        if query.resource_id is None or r.id == query.resource_id
    }
    if not candidates:
        return []
    shifts = session.execute(
        select(StaffShift.resource_id, StaffShift.starts_at, StaffShift.ends_at)
        .where(StaffShift.practice_id == query.practice_id, StaffShift.resource_id.in_(candidates),
               StaffShift.ends_at > query.not_before, StaffShift.starts_at < window_end)
        .order_by(StaffShift.starts_at)
    ).all()  # fmt: skip
    busy: dict[int, list[tuple[dt.datetime, dt.datetime]]] = {rid: [] for rid in candidates}
    for rid, start, end in session.execute(
        select(Appointment.resource_id, Appointment.starts_at, Appointment.ends_at)
        .where(Appointment.practice_id == query.practice_id, Appointment.resource_id.in_(candidates),
               Appointment.status.in_(SLOT_HOLDING_STATUSES), Appointment.ends_at > query.not_before,
               Appointment.starts_at < window_end)
        .order_by(Appointment.starts_at)
    ):  # fmt: skip
        busy[rid].append((start, end))
    slots: list[Slot] = []
    for rid, shift_start, shift_end in shifts:
        cursor = _ceil_to_grid(max(shift_start, query.not_before))
        for b_start, b_end in [*busy[rid], (shift_end, shift_end)]:
            if b_end <= cursor:
                continue
            gap_end = min(b_start, shift_end)
            while cursor + length <= gap_end:
                slots.append(Slot(rid, candidates[rid], cursor, cursor + length))
                cursor += length
            cursor = max(cursor, _ceil_to_grid(b_end))
            if cursor >= shift_end:
                break
    slots.sort(key=lambda s: (s.starts_at, s.resource_name))
    return slots[: query.limit]


def _event(
    session: Session, appointment: Appointment, activity: str, actor: Actor, **attributes: object
) -> None:
    session.add(Event(practice_id=appointment.practice_id, activity=activity, actor_user_id=actor.user_id,
                      actor_role=min(actor.roles_at(appointment.practice_id), default=None), patient_id=appointment.patient_id,
                      appointment_id=appointment.id, client_id=appointment.client_id,
                      attributes={k: v for k, v in attributes.items() if v is not None}))  # fmt: skip


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


def book(
    session: Session, actor: Actor, *, practice_id: int, appointment_type_id: int, resource_id: int,
    starts_at: dt.datetime, patient_id: int, reason: str | None = None, duration_minutes: int | None = None,
) -> Appointment:  # fmt: skip
    """Book a patient: the type's practice duration, species rule and the resource's shift are checked here;
    double booking is left to the exclusion constraint (raises :class:`BookingConflict`)."""
    require(actor, SCHEDULE_WRITE, practice_id)
    kind = appointment_type(session, practice_id, appointment_type_id)
    client_id, species = _primary_client(session, practice_id, patient_id)
    _check_species(kind, species)
    if kind.requires_vet and resource_id not in {r.id for r in resources(session, practice_id, "staff")}:
        raise SchedulingError("resource", f"{kind.name} needs a vet or nurse, not a room.")
    ends_at = starts_at + dt.timedelta(minutes=duration_minutes or kind.duration_minutes)
    _check_in_shift(session, practice_id, resource_id, starts_at, ends_at)
    return book_appointment(session, BookingRequest(
        practice_id=practice_id, resource_id=resource_id, starts_at=starts_at, ends_at=ends_at,
        patient_id=patient_id, client_id=client_id, franchise_id=kind.franchise_id,
        appointment_type_id=kind.id, reason=(reason or "").strip() or None, booked_by=actor.user_id,
    ))  # fmt: skip


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
        local = starts_at.astimezone(PRACTICE_TZ)
        raise SchedulingError("starts_at", f"The vet is not on shift at {local:%a %d %b %H:%M}.")


def _appointment(session: Session, practice_id: int, appointment_id: int) -> Appointment:
    appointment = session.scalar(
        select(Appointment)
        .where(Appointment.practice_id == practice_id, Appointment.id == appointment_id)
        .with_for_update()
    )
    if appointment is None:
        raise SchedulingError("appointment", f"Appointment {appointment_id} does not exist here.")
    return appointment


def _require_status(appointment: Appointment, *allowed: str, doing: str) -> None:
    if appointment.status not in allowed:
        raise SchedulingError(
            "appointment", f"Cannot {doing}: the appointment is {appointment.status.replace('_', ' ')}."
        )


def reschedule(
    session: Session, actor: Actor, *, practice_id: int, appointment_id: int, starts_at: dt.datetime,
    resource_id: int | None = None,
) -> Appointment:  # fmt: skip
    require(actor, SCHEDULE_WRITE, practice_id)
    appointment = _appointment(session, practice_id, appointment_id)
    _require_status(appointment, "booked", doing="reschedule")
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
        blocking = [a for a in overlapping_appointments(session, practice_id, new_resource, starts_at,
                                                        starts_at + length) if a.id != appointment_id]  # fmt: skip
        if not blocking:
            raise
        name = session.scalar(
            select(Resource.name).where(Resource.practice_id == practice_id, Resource.id == new_resource)
        )
        raise BookingConflict(
            new_resource, blocking[0].id, blocking[0].starts_at, blocking[0].ends_at, name
        ) from None
    _event(session, appointment, "appointment_rescheduled", actor, from_start=old_start.isoformat(),
           from_resource=old_resource if old_resource != new_resource else None)  # fmt: skip
    session.flush()
    return appointment


def _transition(
    session: Session, actor: Actor, practice_id: int, appointment_id: int, *, permission: str,
    allowed: tuple[str, ...], to: str, activity: str, doing: str, stamp: str | None, **attributes: object,
) -> Appointment:  # fmt: skip
    require(actor, permission, practice_id)
    appointment = _appointment(session, practice_id, appointment_id)
    _require_status(appointment, *allowed, doing=doing)
    appointment.status = to
    if stamp:
        setattr(appointment, stamp, func.now())
    session.flush()
    _event(session, appointment, activity, actor, **attributes)
    session.flush()
    session.refresh(appointment)
    return appointment


def cancel(
    session: Session, actor: Actor, *, practice_id: int, appointment_id: int, reason: str
) -> Appointment:
    if not reason.strip():
        raise SchedulingError("cancel_reason", "Say why the appointment is cancelled.")
    appointment = _transition(session, actor, practice_id, appointment_id, permission=SCHEDULE_WRITE,
                              allowed=("booked", "checked_in"), to="cancelled", activity="appointment_cancelled",
                              doing="cancel", stamp="cancelled_at", reason=reason.strip())  # fmt: skip
    appointment.cancel_reason = reason.strip()
    session.flush()
    return appointment


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


_SCHEDULE = text(
    """
    SELECT a.id, a.resource_id, r.name AS resource, r.kind AS resource_kind, a.starts_at, a.ends_at, a.status,
           a.patient_id, p.name AS patient, p.species, a.client_id, c.last_name AS client,
           coalesce(t.name, 'Afspraak') AS type, coalesce(o.colour, t.colour, '#888888') AS colour, a.reason,
           a.checked_in_at, a.consult_started_at, a.completed_at
    FROM appointment a
    JOIN resource r ON r.practice_id = a.practice_id AND r.id = a.resource_id
    LEFT JOIN patient p ON p.practice_id = a.practice_id AND p.id = a.patient_id
    LEFT JOIN client c ON c.practice_id = a.practice_id AND c.id = a.client_id
    LEFT JOIN appointment_type t ON t.franchise_id = a.franchise_id AND t.id = a.appointment_type_id
    LEFT JOIN appointment_type_override o
      ON o.practice_id = a.practice_id AND o.appointment_type_id = a.appointment_type_id
    WHERE a.practice_id = :practice_id AND a.starts_at >= :start AND a.starts_at < :end
      AND (CAST(:resource_id AS bigint) IS NULL OR a.resource_id = :resource_id)
      AND (:with_cancelled OR a.status <> 'cancelled')
    ORDER BY a.starts_at, r.name
    """
)
SCHEDULE_SCHEMA = {
    "id": pl.Int64, "resource_id": pl.Int64, "resource": pl.String, "resource_kind": pl.String,
    "starts_at": pl.Datetime("us", "UTC"), "ends_at": pl.Datetime("us", "UTC"), "status": pl.String,
    "patient_id": pl.Int64, "patient": pl.String, "species": pl.String, "client_id": pl.Int64, "client": pl.String,
    "type": pl.String, "colour": pl.String, "reason": pl.String, "checked_in_at": pl.Datetime("us", "UTC"),
    "consult_started_at": pl.Datetime("us", "UTC"), "completed_at": pl.Datetime("us", "UTC"),
}  # fmt: skip


def local_day_bounds(day: dt.date, days: int = 1) -> tuple[dt.datetime, dt.datetime]:
    start = dt.datetime.combine(day, dt.time(0), PRACTICE_TZ)
    return start, dt.datetime.combine(day + dt.timedelta(days=days), dt.time(0), PRACTICE_TZ)


def schedule(
    session: Session, practice_id: int, day: dt.date, *, days: int = 1, resource_id: int | None = None,
    with_cancelled: bool = False,
) -> pl.DataFrame:  # fmt: skip
    """Appointments of ``days`` local days from ``day``: one row each, with resource, patient, type colour."""
    start, end = local_day_bounds(day, days)
    rows = session.execute(_SCHEDULE, {"practice_id": practice_id, "start": start, "end": end,
                                       "resource_id": resource_id, "with_cancelled": with_cancelled})  # fmt: skip
    return pl.DataFrame([dict(r._mapping) for r in rows], schema=SCHEDULE_SCHEMA)


@dataclass(frozen=True)
class WaitingEntry:
    appointment_id: int
    starts_at: dt.datetime
    patient: str | None
    client: str | None
    resource: str
    type: str
    status: str
    arrived_at: dt.datetime | None
    waited_minutes: int | None
    # What a card opens: the patient's record (or, for who may not read records, the client's card).
    patient_id: int | None = None
    client_id: int | None = None


@dataclass(frozen=True)
class WaitingRoom:
    expected: tuple[WaitingEntry, ...]
    waiting: tuple[WaitingEntry, ...]
    in_consult: tuple[WaitingEntry, ...]
    done: tuple[WaitingEntry, ...]


def waiting_room(session: Session, practice_id: int, now: dt.datetime) -> WaitingRoom:
    """Today's board: who is expected, who is waiting (and how long), who is in with the vet, who is done."""
    frame = schedule(session, practice_id, now.astimezone(PRACTICE_TZ).date())
    groups: dict[str, list[WaitingEntry]] = {"booked": [], "checked_in": [], "in_consult": [], "done": []}
    for row in frame.iter_rows(named=True):
        if row["status"] not in groups:
            continue
        arrived = row["checked_in_at"]
        until = now if row["status"] == "checked_in" else row["consult_started_at"]
        waited = int((until - arrived).total_seconds() // 60) if arrived and until else None
        groups[row["status"]].append(WaitingEntry(row["id"], row["starts_at"], row["patient"], row["client"],
                                                  row["resource"], row["type"], row["status"], arrived, waited,
                                                  row["patient_id"], row["client_id"]))  # fmt: skip
    groups["checked_in"].sort(key=lambda e: e.arrived_at or e.starts_at)
    return WaitingRoom(*(tuple(groups[k]) for k in ("booked", "checked_in", "in_consult", "done")))


@dataclass(frozen=True)
class PatientChoice:
    id: int
    name: str
    species: str
    owner: str | None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.species}{', ' + self.owner if self.owner else ''})"


def patient_choices(
    session: Session, practice_id: int, *, query: str | None = None, client_id: int | None = None,
    patient_id: int | None = None, limit: int = 20,
) -> list[PatientChoice]:  # fmt: skip
    """Patients to book for: by name (typo-tolerant) or chip, the animals of one client, or one patient."""
    q = (query or "").strip()
    rows = session.execute(
        text(
            """SELECT p.id, p.name, p.species, o.last_name AS owner FROM patient p
               LEFT JOIN LATERAL (SELECT c.last_name FROM client_patient cp JOIN client c
                                    ON c.practice_id = cp.practice_id AND c.id = cp.client_id
                                  WHERE cp.practice_id = p.practice_id AND cp.patient_id = p.id
                                  ORDER BY cp.is_primary DESC LIMIT 1) o ON true
               WHERE p.practice_id = :practice AND p.deleted_at IS NULL AND NOT p.deceased
                 AND (p.id = :patient
                      OR (:q <> '' AND (p.microchip = :q OR :q <% p.name))
                      OR p.id IN (SELECT patient_id FROM client_patient
                                  WHERE practice_id = :practice AND client_id = :client))
               ORDER BY p.id = :patient DESC, word_similarity(:q, p.name) DESC, p.name LIMIT :limit"""
        ),
        {
            "practice": practice_id,
            "q": q,
            "patient": patient_id or -1,
            "client": client_id or -1,
            "limit": limit,
        },
    )
    return [PatientChoice(*row) for row in rows]
