"""Animana ``reminders``: the reminders a practice set in Animana itself, mirrored as ``reminder`` rows beside
VetConnect's own (``animana_id`` tells them apart). Animana's check-up is a ``recall``, its open one ``pending``;
a vaccination reminder points at its vaccination, so VetConnect does not generate a second one for it."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, Literal, NamedTuple

from connectors.animana.models import AnimanaRecord, Day, Id, Text, Timestamp, WireRecord
from connectors.animana.resources.spec import ResourceSpec
from connectors.animana.resources.values import id_text
from warehouse.ingest.animana.plan import Reference, TableLoad
from warehouse.ingest.animana.staging import Staging

KIND_BY_ANIMANA = {"vaccination": "vaccination", "check-up": "recall", "other": "other"}
STATUS_BY_ANIMANA = {"open": "pending", "sent": "sent", "cancelled": "cancelled"}


class AnimanaReminder(AnimanaRecord):
    """A reminder for an animal; ``relation_id`` empty: Animana writes to the animal's first owner."""

    created_at: Timestamp
    animal_id: Id
    relation_id: Id | None = None
    kind: Literal["vaccination", "check-up", "other"]
    vaccination_id: Id | None = None
    description: Text
    due_on: Day
    channel: Literal["email", "sms", "letter"]
    status: Literal["open", "sent", "cancelled"]
    sent_at: Timestamp | None = None

    @staticmethod
    def check(fields: Mapping[str, Any]) -> None:
        if (fields["kind"] == "vaccination") != (fields["vaccination_id"] is not None):
            raise ValueError("vaccination_id is set exactly for a vaccination reminder")
        if (fields["status"] == "sent") != (fields["sent_at"] is not None):
            raise ValueError("sent_at is set exactly for a sent reminder")


class ReminderRow(NamedTuple):
    """A row as staged (`LOAD.staging`: same fields, same order)."""

    animana_id: str
    patient_animana_id: str
    client_animana_id: str | None
    vaccination_animana_id: str | None
    kind: str
    description: str | None
    due_on: dt.date
    channel: str
    status: str
    sent_at: dt.datetime | None
    created_at: dt.datetime


def map_reminder(r: WireRecord) -> ReminderRow:
    return ReminderRow(
        str(r["id"]), str(r["animal_id"]), id_text(r["relation_id"]), id_text(r["vaccination_id"]),
        KIND_BY_ANIMANA[r["kind"]], r["description"] or None, r["due_on"], r["channel"],
        STATUS_BY_ANIMANA[r["status"]], r["sent_at"], r["created_at"],
    )  # fmt: skip


LOAD = TableLoad(
    table="reminder",
    staging=Staging(
        "stg_reminder",
        (
            "animana_id text",
            "patient_animana_id text",
            "client_animana_id text",
            "vaccination_animana_id text",
            "kind text",
            "description text",
            "due_on date",
            "channel text",
            "status text",
            "sent_at timestamptz",
            "created_at timestamptz",
        ),
    ),  # fmt: skip
    columns=(
        Reference("patient_id", "patient", "patient_animana_id", required=True, unknown="unknown animal"),
        Reference("client_id", "client", "client_animana_id"),
        Reference("vaccination_id", "vaccination", "vaccination_animana_id"),
        "kind",
        "description",
        "due_on",
        "channel",
        "status",
        "sent_at",
        "created_at",
    ),
)

SPEC = ResourceSpec(
    name="reminders",
    module="records",
    model=AnimanaReminder,
    parents=("animals", "relations", "vaccinations"),
    read_row=map_reminder,
    load=LOAD,
)
