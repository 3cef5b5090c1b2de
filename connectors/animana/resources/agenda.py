"""Animana ``agenda``: appointments, booked on a staff member or a room, mirrored as ``appointment`` rows.

Animana's free-text appointment types map to the franchise's appointment-type codes (unknown types load without a
type). A cancelled appointment's cancellation time is its last change. Deleted upstream: flagged cancelled
(`tombstones.APPOINTMENT`), never removed, so visits that point at it stay valid.

Written back from the ``appointment`` row: the type by its code (`ANIMANA_TYPE_BY_CODE`), the resource split back
into ``resource_type``/``resource_id``. Not round-trippable: types several Animana names share (``senior check``
is written back as ``check``), the spelling of a type (read case- and space-insensitively), types without a code
here (loaded without a type; written without one), ``booked_at`` (Animana's own stamp). VetConnect's
``in_consult`` is written as ``checked_in``: Animana has no such state. Conflicts: a status both sides changed
goes by the progress (`local_progress_wins`); times and resource moved on both sides, by a cancellation
(`cancellation_wins`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from pydantic import AwareDatetime, model_validator

from connectors.animana.models import AnimanaRecord, Id, NonEmpty, Text, Timestamp, WireRecord, WritePayload
from connectors.animana.resources.spec import ResourceSpec, WriteRefs
from connectors.animana.resources.values import resource_key, split_resource_key, wire_id, wire_local_time
from warehouse.ingest.animana.checks import FROM_ANIMANA, NOT_DELETED_UPSTREAM, MirrorCount
from warehouse.ingest.animana.handlers.clinical import load_appointments
from warehouse.ingest.animana.load import HandlerLoad
from warehouse.ingest.animana.rows import AppointmentRow
from warehouse.ingest.animana.tombstones import APPOINTMENT
from warehouse.integration.rules import cancellation_wins, local_progress_wins

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
# ... and back: the first Animana name of a code (``check`` rather than ``senior check``).
ANIMANA_TYPE_BY_CODE = {code: name for name, code in reversed(APPOINTMENT_TYPE_CODES.items())}
# VetConnect's statuses Animana does not have, as the nearest one it has.
ANIMANA_STATUS = {"in_consult": "checked_in"}


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


def write_appointment(row: Mapping[str, Any], refs: WriteRefs) -> dict[str, Any]:
    resource = refs.animana_id("resource", row["resource_id"])
    if resource is None:
        raise ValueError(f"appointment {row['id']} has no resource")
    resource_type, resource_id = split_resource_key(resource)
    body: dict[str, Any] = {
        "start": wire_local_time(row["starts_at"]), "end": wire_local_time(row["ends_at"]),
        "resource_type": resource_type, "resource_id": resource_id,
        "animal_id": wire_id(refs.animana_id("patient", row["patient_id"])),
        "relation_id": wire_id(refs.animana_id("client", row["client_id"])),
        "status": ANIMANA_STATUS.get(row["status"], row["status"]), "reason": row["reason"],
    }  # fmt: skip
    if row["appointment_type_id"] is not None:
        code = refs.value("appointment_type", row["appointment_type_id"], "code")
        body["type"] = ANIMANA_TYPE_BY_CODE.get(code, code)  # a type of our own: its code, as free text
    return body


SPEC = ResourceSpec(
    name="agenda",
    module="agenda",
    model=Appointment,
    parents=("staff", "resources", "relations", "animals"),
    read_row=map_appointment,
    table="appointment",
    write_back=write_appointment,
    conflict_rules={
        "status": local_progress_wins,
        "starts_at": cancellation_wins,
        "ends_at": cancellation_wins,
        "resource_id": cancellation_wins,
    },
    load=HandlerLoad(
        handler=load_appointments,
        tombstone=APPOINTMENT,
        mirror=MirrorCount("appointment", (FROM_ANIMANA, NOT_DELETED_UPSTREAM)),
    ),
)
