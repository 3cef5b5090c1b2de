"""Animana ``resources``: bookable rooms and equipment, mirrored as ``resource`` rows keyed ``resource:<id>``
(beside the staff, who share the table)."""

from __future__ import annotations

from typing import Literal

from connectors.animana.models import AnimanaRecord, Flag, NonEmpty, Text, WireRecord
from connectors.animana.resources.spec import ResourceSpec
from connectors.animana.resources.values import resource_key
from warehouse.ingest.animana.checks import MirrorCount, key_prefix
from warehouse.ingest.animana.handlers.directory import load_resources
from warehouse.ingest.animana.load import HandlerLoad
from warehouse.ingest.animana.rows import ResourceRow
from warehouse.ingest.animana.tombstones import BOOKABLE


class Resource(AnimanaRecord):
    """A bookable room or piece of equipment."""

    name: NonEmpty
    kind: Literal["room", "equipment"]
    purpose: Text
    active: Flag


def map_resource(r: WireRecord) -> ResourceRow:
    return ResourceRow(resource_key(r["kind"], r["id"]), r["kind"], r["name"][:120], r["active"])


SPEC = ResourceSpec(
    name="resources",
    model=Resource,
    read_row=map_resource,
    load=HandlerLoad(
        handler=load_resources, tombstone=BOOKABLE, mirror=MirrorCount("resource", (key_prefix("resource:"),))
    ),
)
