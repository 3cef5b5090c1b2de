"""Animana ``shifts``: the werkrooster, one dated shift per staff member and day, mirrored as ``staff_shift`` rows
on the staff member's resource (``staff:<id>``). Once a practice's shifts come from Animana, they are its staff's
schedule: rosters plan none for those staff, and what a roster planned before the first sync gives way
(`warehouse.scheduling.rosters.give_way_on`), since the database refuses overlapping shifts."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, NamedTuple

from connectors.animana.models import AnimanaRecord, Day, Id, Timestamp, WireRecord
from connectors.animana.resources.spec import ResourceSpec
from connectors.animana.resources.values import resource_key
from warehouse.ingest.animana.plan import Reference, TableLoad
from warehouse.ingest.animana.staging import Staging
from warehouse.scheduling.rosters import give_way_on


class Shift(AnimanaRecord):
    """A shift a staff member works on one (local) day."""

    staff_id: Id
    date: Day
    start: Timestamp
    end: Timestamp

    @staticmethod
    def check(fields: Mapping[str, Any]) -> None:
        if fields["end"] <= fields["start"]:
            raise ValueError("end must be after start")


class ShiftRow(NamedTuple):
    """A row as staged (`LOAD.staging`: same fields, same order)."""

    animana_id: str
    resource_animana_id: str
    starts_at: dt.datetime
    ends_at: dt.datetime


def map_shift(s: WireRecord) -> ShiftRow:
    return ShiftRow(str(s["id"]), resource_key("staff", s["staff_id"]), s["start"], s["end"])


LOAD = TableLoad(
    table="staff_shift",
    staging=Staging(
        "stg_staff_shift",
        ("animana_id text", "resource_animana_id text", "starts_at timestamptz", "ends_at timestamptz"),
    ),
    columns=(
        Reference("resource_id", "resource", "resource_animana_id", required=True, unknown="unknown staff"),
        "starts_at",
        "ends_at",
    ),
    prepare=give_way_on,
)

SPEC = ResourceSpec(
    name="shifts", module="agenda", model=Shift, parents=("staff",), read_row=map_shift, load=LOAD
)
