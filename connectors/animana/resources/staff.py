"""Animana ``staff``: the people an appointment is booked on, mirrored as ``resource`` rows keyed ``staff:<id>``."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, Strict

from connectors.animana.models import EMAIL, AnimanaRecord, Flag, NonEmpty, Text, Timestamp, WireRecord
from connectors.animana.resources.spec import ResourceSpec
from connectors.animana.resources.values import resource_key
from warehouse.ingest.animana.checks import MirrorCount, key_prefix
from warehouse.ingest.animana.handlers.directory import load_resources
from warehouse.ingest.animana.load import HandlerLoad
from warehouse.ingest.animana.rows import ResourceRow
from warehouse.ingest.animana.tombstones import BOOKABLE


class Staff(AnimanaRecord):
    role: Literal["vet", "nurse", "receptionist"]
    first_name: NonEmpty
    last_name: NonEmpty
    initials: Text | None = None
    email: Annotated[str, Strict(), Field(pattern=EMAIL)] | None = None
    active: Flag
    created_at: Timestamp | None = None


def map_staff(s: WireRecord) -> ResourceRow:
    name = f"{s['first_name']} {s['last_name']}"[:120]
    return ResourceRow(resource_key("staff", s["id"]), "staff", name, s["active"])


SPEC = ResourceSpec(
    name="staff",
    model=Staff,
    read_row=map_staff,
    load=HandlerLoad(
        handler=load_resources, tombstone=BOOKABLE, mirror=MirrorCount("resource", (key_prefix("staff:"),))
    ),
)
