"""Animana ``vaccinations``: mirrored as ``vaccination`` rows by a declarative plan (`TableLoad`).

Written back from the row. Not round-trippable: ``vaccine_code`` and ``vet_id`` (not stored: the row names the
vaccine and the user who gave it), a vaccine name over 120 characters (cut), a blank batch number (None)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from typing import Any, NamedTuple

from connectors.animana.models import AnimanaRecord, Day, Id, NonEmpty, Text, WireRecord
from connectors.animana.resources.spec import ResourceSpec, WriteRefs
from connectors.animana.resources.values import blank_to_none, id_text, wire_day, wire_id
from warehouse.ingest.animana.plan import Reference, TableLoad, Version
from warehouse.ingest.animana.staging import Staging


class Vaccination(AnimanaRecord):
    animal_id: Id
    consult_id: Id | None = None
    vet_id: Id | None = None
    vaccine_code: NonEmpty
    vaccine: NonEmpty
    batch_number: Text | None = None
    given_on: Day
    due_on: Day | None = None

    @staticmethod
    def check(fields: Mapping[str, Any]) -> None:
        if fields["due_on"] is not None and fields["due_on"] <= fields["given_on"]:
            raise ValueError("due_on must be after given_on")


class VaccinationRow(NamedTuple):
    """A row as staged (`LOAD.staging`: same fields, same order)."""

    animana_id: str
    patient_animana_id: str
    visit_animana_id: str | None
    vaccine_name: str
    batch_number: str | None
    given_on: dt.date
    due_on: dt.date | None
    updated_at: dt.datetime  # the record's version (`Version`)


def map_vaccination(v: WireRecord) -> VaccinationRow:
    return VaccinationRow(
        str(v["id"]), str(v["animal_id"]), id_text(v["consult_id"]), v["vaccine"][:120],
        blank_to_none(v["batch_number"]), v["given_on"], v["due_on"], v["updated_at"],
    )  # fmt: skip


def write_vaccination(row: Mapping[str, Any], refs: WriteRefs) -> dict[str, Any]:
    due = row["due_on"]
    return {
        "animal_id": wire_id(refs.animana_id("patient", row["patient_id"])),
        "consult_id": wire_id(refs.animana_id("visit", row["visit_id"])),
        "vaccine": row["vaccine_name"], "batch_number": row["batch_number"], "given_on": wire_day(row["given_on"]),
        "due_on": due and wire_day(due),
    }  # fmt: skip


LOAD = TableLoad(
    table="vaccination",
    staging=Staging(
        "stg_vaccination",
        (
            "animana_id text",
            "patient_animana_id text",
            "visit_animana_id text",
            "vaccine_name text",
            "batch_number text",
            "given_on date",
            "due_on date",
            "updated_at timestamptz",
        ),
    ),  # fmt: skip
    columns=(
        Reference("patient_id", "patient", "patient_animana_id", required=True, unknown="unknown animal"),
        Reference("visit_id", "visit", "visit_animana_id"),
        "vaccine_name",
        "batch_number",
        "given_on",
        "due_on",
        Version(),
    ),
)

SPEC = ResourceSpec(
    name="vaccinations",
    module="records",
    model=Vaccination,
    parents=("animals", "consults"),
    read_row=map_vaccination,
    table="vaccination",
    write_back=write_vaccination,
    load=LOAD,
)
