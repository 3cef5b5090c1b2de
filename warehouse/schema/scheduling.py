"""Scheduling: bookable resources, appointment types (franchise-level, practice overrides), shifts, appointments.

Double booking is made impossible by the database itself: an exclusion constraint over
(practice, resource, time range) for every appointment that holds its slot (`SLOT_HOLDING_STATUSES`).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    ARRAY,
    CheckConstraint,
    ForeignKey,
    ForeignKeyConstraint,
    Identity,
    Index,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ExcludeConstraint
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.schema.base import Base, MirroredWrites, Timestamps, franchise_table, practice_table
from warehouse.schema.tenancy import choice

RESOURCE_KINDS = ("staff", "room", "equipment")
APPOINTMENT_STATUSES = ("booked", "checked_in", "in_consult", "done", "cancelled", "no_show")
# An appointment holds its resource's time while it can still happen or is happening. A finished consult, a
# no-show and a cancellation free the rest of the slot (a walk-in can take it), so the past — nearly all of an
# Animana mirror — is not checked against anything: that check was most of the cost of loading an appointment
# (migration 0304).
SLOT_HOLDING_STATUSES = ("booked", "checked_in", "in_consult")


class Resource(Base):
    __tablename__ = "resource"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["tenant.id"]),
        UniqueConstraint("practice_id", "animana_id"),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    animana_id: Mapped[str | None] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(choice(*RESOURCE_KINDS, name="resource_kind"))
    name: Mapped[str] = mapped_column(String(120))
    user_id: Mapped[int | None] = mapped_column(ForeignKey("app_user.id"))
    department_id: Mapped[int | None] = mapped_column(ForeignKey("tenant.id"))
    colour: Mapped[str | None] = mapped_column(String(7))
    active: Mapped[bool] = mapped_column(server_default="true")


class AppointmentType(Timestamps, Base):
    """Defined once per franchise; practices adjust duration/colour or switch it off via overrides."""

    __tablename__ = "appointment_type"
    __table_args__ = (
        ForeignKeyConstraint(["franchise_id"], ["tenant.id"]),
        UniqueConstraint("franchise_id", "code"),
        CheckConstraint("duration_minutes BETWEEN 5 AND 480", name="duration"),
        {"info": franchise_table()},
    )

    franchise_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(120))
    duration_minutes: Mapped[int]
    colour: Mapped[str] = mapped_column(String(7), server_default="#4C78A8")
    # NULL means every species; otherwise the species this type may be booked for.
    species: Mapped[list[str] | None] = mapped_column(ARRAY(String(32)))
    requires_vet: Mapped[bool] = mapped_column(server_default="true")
    active: Mapped[bool] = mapped_column(server_default="true")
    updated_by: Mapped[int | None]


class AppointmentTypeOverride(Timestamps, Base):
    __tablename__ = "appointment_type_override"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["tenant.id"]),
        ForeignKeyConstraint(
            ["franchise_id", "appointment_type_id"], ["appointment_type.franchise_id", "appointment_type.id"]
        ),
        CheckConstraint("duration_minutes IS NULL OR duration_minutes BETWEEN 5 AND 480", name="duration"),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    appointment_type_id: Mapped[int] = mapped_column(primary_key=True)
    franchise_id: Mapped[int]
    duration_minutes: Mapped[int | None]
    colour: Mapped[str | None] = mapped_column(String(7))
    active: Mapped[bool | None]
    updated_by: Mapped[int | None]


class StaffShift(Base):
    """A shift worked (or to be worked) by a bookable resource. ``animana_id`` set: synced from Animana's
    werkrooster, which then is the schedule of the staff synced from Animana (``warehouse.scheduling.rosters`` plans none
    for them); NULL: VetConnect's own, from a roster. Migration 0370."""

    __tablename__ = "staff_shift"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id", "resource_id"], ["resource.practice_id", "resource.id"]),
        UniqueConstraint("practice_id", "animana_id"),
        CheckConstraint("ends_at > starts_at", name="positive_length"),
        ExcludeConstraint(
            ("practice_id", "="),
            ("resource_id", "="),
            (text("tstzrange(starts_at, ends_at, '[)')"), "&&"),
            name="no_overlapping_shifts",
            using="gist",
        ),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    resource_id: Mapped[int]
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime]
    animana_id: Mapped[str | None] = mapped_column(String(64))


class Appointment(MirroredWrites, Base):
    __tablename__ = "appointment"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id", "resource_id"], ["resource.practice_id", "resource.id"]),
        ForeignKeyConstraint(["practice_id", "patient_id"], ["patient.practice_id", "patient.id"]),
        ForeignKeyConstraint(["practice_id", "client_id"], ["client.practice_id", "client.id"]),
        ForeignKeyConstraint(
            ["franchise_id", "appointment_type_id"], ["appointment_type.franchise_id", "appointment_type.id"]
        ),
        UniqueConstraint("practice_id", "animana_id"),
        CheckConstraint("ends_at > starts_at", name="positive_length"),
        ExcludeConstraint(
            ("practice_id", "="),
            ("resource_id", "="),
            (text("tstzrange(starts_at, ends_at, '[)')"), "&&"),
            name="no_double_booking",
            using="gist",
            where=text(f"status IN ({', '.join(repr(s) for s in SLOT_HOLDING_STATUSES)})"),
        ),
        Index("ix_appointment_day", "practice_id", "starts_at"),
        Index("ix_appointment_patient", "practice_id", "patient_id", "starts_at"),
        Index("ix_appointment_client", "practice_id", "client_id"),  # a merge's lookup (migration 0450)
        {"info": practice_table(partitioned=True), "postgresql_partition_by": "LIST (practice_id)"},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    animana_id: Mapped[str | None] = mapped_column(String(64))
    resource_id: Mapped[int]
    franchise_id: Mapped[int | None]
    appointment_type_id: Mapped[int | None]
    patient_id: Mapped[int | None]
    client_id: Mapped[int | None]
    starts_at: Mapped[dt.datetime]
    ends_at: Mapped[dt.datetime]
    status: Mapped[str] = mapped_column(choice(*APPOINTMENT_STATUSES, name="appointment_status"))
    reason: Mapped[str | None] = mapped_column(Text)
    booked_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    booked_by: Mapped[int | None]
    checked_in_at: Mapped[dt.datetime | None]
    consult_started_at: Mapped[dt.datetime | None]
    completed_at: Mapped[dt.datetime | None]
    cancelled_at: Mapped[dt.datetime | None]
    cancel_reason: Mapped[str | None] = mapped_column(Text)
    source: Mapped[str] = mapped_column(
        choice("animana", "native", name="record_source"), server_default="native"
    )
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now(), onupdate=func.now())
