"""What can be booked: the practice's appointment types and resources, and the free slots of its staff.

Everything here runs inside the caller's tenant session: RLS decides which practice's rows exist at all."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from warehouse.scheduling.errors import SchedulingError
from warehouse.schema.scheduling import SLOT_HOLDING_STATUSES, Appointment, Resource, StaffShift
from warehouse.tenants.shared_resources import EffectiveAppointmentType as AppointmentTypeView
from warehouse.tenants.shared_resources import effective_appointment_types

SLOT_GRID = dt.timedelta(minutes=5)


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


def check_species(kind: AppointmentTypeView, species: str | None) -> None:
    """Refuse a type that is limited to other species than the patient's."""
    if kind.species and species and species not in kind.species:
        allowed = ", ".join(kind.species)
        raise SchedulingError(
            "type", f"{kind.name} can only be booked for: {allowed} (this patient: {species})."
        )


def _ceil_to_grid(moment: dt.datetime) -> dt.datetime:
    epoch = dt.datetime(2000, 1, 1, tzinfo=dt.UTC)
    steps = -(-(moment - epoch) // SLOT_GRID)
    return epoch + steps * SLOT_GRID


def find_free_slots(session: Session, query: SlotQuery) -> list[Slot]:
    """The earliest free slots on or after ``not_before``: inside the resource's shifts, clear of every
    booking that holds its slot, on a 5-minute grid, with the practice's duration for the type."""
    kind = appointment_type(session, query.practice_id, query.appointment_type_id)
    check_species(kind, query.species)
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
