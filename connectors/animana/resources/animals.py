"""Animana ``animals``: patients, mirrored as ``patient`` rows with their owners (``client_patient``).

gender → sex: ``neutered_male`` → ``male_neutered`` etc.; species outside the warehouse list → ``other``.
Microchip: the API model already insists on 15 digits; `normalise_microchip` also refuses reserved prefixes (000,
999). Such a chip is stored as NULL and the record is noted (a *resolved* quarantine entry with the raw payload):
the patient, its owners and its history still load, and a person can see what was dropped. So is a chip another
patient of the practice keeps (the warehouse holds a chip once per practice; see `warehouse.ingest.animana.chips`).

Written back from the ``patient`` row. Its owners are not a column of it: ``relation_ids`` is written only when
the row carries ``client_ids`` (the owners' local ids, primary first), which a create needs. Not round-trippable:
a species outside the warehouse list (read as ``other``), a microchip refused on reading or kept on another
patient (stored as NULL), blank breed and colour (None), ``created_at`` (Animana's own stamp).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Literal

from pydantic import Field, Strict

from connectors.animana.models import (
    AnimanaRecord,
    Day,
    Flag,
    Id,
    NonEmpty,
    Species,
    Text,
    Timestamp,
    WireRecord,
)
from connectors.animana.resources.spec import ResourceSpec, WriteRefs
from connectors.animana.resources.values import blank_to_none, raw_json, warehouse_species, wire_day, wire_id
from warehouse.ingest.animana.checks import FROM_ANIMANA, NOT_DELETED, MirrorCount
from warehouse.ingest.animana.handlers.directory import load_patients
from warehouse.ingest.animana.load import HandlerLoad
from warehouse.ingest.animana.rows import Batch, OwnerRow, PatientRow, Rejection
from warehouse.ingest.animana.tombstones import mark_deleted
from warehouse.kernel.validation import InvalidMicrochip, normalise_microchip

SEX_BY_GENDER = {
    "male": "male",
    "female": "female",
    "neutered_male": "male_neutered",
    "neutered_female": "female_neutered",
    "unknown": "unknown",
}
GENDER_BY_SEX = {sex: gender for gender, sex in SEX_BY_GENDER.items()}


class Animal(AnimanaRecord):
    """A patient. Usually one owner; occasionally two (`relation_ids`)."""

    relation_ids: Annotated[list[Id], Field(min_length=1, max_length=4)]
    name: NonEmpty
    species: Species
    breed: Text | None = None
    gender: Literal["male", "female", "neutered_male", "neutered_female", "unknown"]
    colour: Text | None = None
    chip_number: Annotated[str, Strict(), Field(pattern=r"^[0-9]{15}$")] | None = None
    date_of_birth: Day | None = None
    deceased: Flag
    deceased_on: Day | None = None
    created_at: Timestamp | None = None

    @staticmethod
    def check(fields: Mapping[str, Any]) -> None:
        born, died = fields["date_of_birth"], fields["deceased_on"]
        if died is not None and not fields["deceased"]:
            raise ValueError("deceased_on is set but deceased is false")
        if born and died and died < born:
            raise ValueError("deceased_on is before date_of_birth")


def map_animal(a: WireRecord) -> tuple[PatientRow, list[OwnerRow], str | None]:
    """The patient row, its owner links (first relation is primary) and a note when something was dropped."""
    note = None
    chip = None
    if a["chip_number"] is not None:
        try:
            chip = normalise_microchip(a["chip_number"])
        except InvalidMicrochip as exc:
            note = f"microchip not stored: {exc}"
    animal_id = str(a["id"])
    species = warehouse_species(a["species"])
    row = PatientRow(
        animal_id, a["name"], species, blank_to_none(a["breed"]), SEX_BY_GENDER[a["gender"]], a["date_of_birth"],
        blank_to_none(a["colour"]), chip, a["deceased"], a["deceased_on"], a["updated_at"],
    )  # fmt: skip
    owners = []
    seen: set[int] = set()
    for index, relation_id in enumerate(a["relation_ids"]):
        if relation_id in seen:
            continue
        seen.add(relation_id)
        owners.append(OwnerRow(animal_id, str(relation_id), index == 0))
    return row, owners, note


def write_animal(row: Mapping[str, Any], refs: WriteRefs) -> dict[str, Any]:
    born, died = row["date_of_birth"], row["deceased_on"]
    body = {
        "name": row["name"], "species": row["species"], "breed": row["breed"], "gender": GENDER_BY_SEX[row["sex"]],
        "colour": row["colour"], "chip_number": row["microchip"], "date_of_birth": born and wire_day(born),
        "deceased": row["deceased"], "deceased_on": died and wire_day(died),
    }  # fmt: skip
    if "client_ids" in row:
        body["relation_ids"] = [wire_id(refs.animana_id("client", c)) for c in row["client_ids"]]
    return body


def add_animal(a: WireRecord, batch: Batch) -> None:
    patient, owners, note = map_animal(a)
    batch.rows.append(patient)
    batch.children.setdefault("owners", []).extend(owners)
    if note:
        batch.rejected.append(Rejection(str(a["id"]), raw_json(a), note, note=True))


SPEC = ResourceSpec(
    name="animals",
    module="clients",
    model=Animal,
    parents=("relations",),
    read_record=add_animal,
    table="patient",
    write_back=write_animal,
    load=HandlerLoad(
        handler=load_patients,
        tombstone=mark_deleted("patient"),
        mirror=MirrorCount("patient", (FROM_ANIMANA, NOT_DELETED)),
        children={"owners": "patient_animana_id"},
    ),
)
