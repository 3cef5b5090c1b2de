"""Animana ``agenda``: appointments, booked on a staff member or a room, mirrored as ``appointment`` rows.

Animana's free-text appointment types map to the franchise's appointment-type codes (unknown types load without a
type). A cancelled appointment's cancellation time is its last change. Deleted upstream: flagged cancelled
(`tombstones.APPOINTMENT`), never removed, so visits that point at it stay valid.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import AwareDatetime, model_validator

from connectors.animana.models import AnimanaRecord, Id, NonEmpty, Text, Timestamp, WireRecord, WritePayload
from connectors.animana.resources.spec import ResourceSpec
from connectors.animana.resources.values import resource_key
from warehouse.ingest.animana.checks import FROM_ANIMANA, NOT_DELETED_UPSTREAM, MirrorCount
from warehouse.ingest.animana.handlers.clinical import load_appointments
from warehouse.ingest.animana.load import HandlerLoad
from warehouse.ingest.animana.rows import AppointmentRow
from warehouse.ingest.animana.tombstones import APPOINTMENT

AppointmentStatus = Literal["booked", "checked_in", "done", "cancelled", "no_show"]
# Animana agenda types → the franchise appointment-type codes.
APPOINTMENT_TYPE_CODES = {
    "consult": "consult",
    "vaccinatie": "vacc",
    "controle": "followup",
    "check": "checkup",
    "senior check": "checkup",
    "operatie": "surgery",
    "gebitsbehandeling": "dental",
    "castratie": "castration",
    "euthanasie": "euthanasia",
}


class Appointment(AnimanaRecord):
    """An agenda entry, booked on a staff member or a room (`resource_type` + `resource_id`)."""

    type: NonEmpty
    start: Timestamp
    end: Timestamp
    resource_type: Literal["staff", "room"]
    resource_id: Id
    animal_id: Id
    relation_id: Id
    status: AppointmentStatus
    reason: Text | None = None
    booked_at: Timestamp

    @staticmethod
    def check(fields: Mapping[str, Any]) -> None:
        if fields["end"] <= fields["start"]:
            raise ValueError("end must be after start")


class AppointmentCreate(WritePayload):
    type: NonEmpty
    start: AwareDatetime
    end: AwareDatetime
    resource_type: Literal["staff", "room"]
    resource_id: Id
    animal_id: Id
    relation_id: Id
    status: AppointmentStatus = "booked"
    reason: str | None = None

    @model_validator(mode="after")
    def _order(self) -> AppointmentCreate:
        if self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class AppointmentUpdate(WritePayload):
    """Only the fields you set are sent (PATCH semantics)."""

    type: str | None = None
    start: AwareDatetime | None = None
    end: AwareDatetime | None = None
    resource_type: Literal["staff", "room"] | None = None
    resource_id: Id | None = None
    animal_id: Id | None = None
    relation_id: Id | None = None
    status: AppointmentStatus | None = None
    reason: str | None = None


def map_appointment(a: WireRecord) -> AppointmentRow:
    status = a["status"]
    return AppointmentRow(
        str(a["id"]), resource_key(a["resource_type"], a["resource_id"]), str(a["animal_id"]),
        str(a["relation_id"]), APPOINTMENT_TYPE_CODES.get(a["type"].strip().lower()), a["start"], a["end"],
        status, a["reason"], a["booked_at"], a["updated_at"] if status == "cancelled" else None, a["updated_at"],
    )  # fmt: skip


SPEC = ResourceSpec(
    name="agenda",
    model=Appointment,
    parents=("staff", "resources", "relations", "animals"),
    read_row=map_appointment,
    load=HandlerLoad(
        handler=load_appointments,
        tombstone=APPOINTMENT,
        mirror=MirrorCount("appointment", (FROM_ANIMANA, NOT_DELETED_UPSTREAM)),
    ),
)
