"""Animana ``consults``: visits with their SOAP notes, mirrored as ``visit`` rows with their diagnoses and the
weight measured (child rows keyed by the consult: ``<consult id>:<index>``, ``consult:<consult id>``).

Written back from the ``visit`` row: the notes, reason, time, animal and appointment; the vet is the staff member
the appointment is booked on (the row names a user, not Animana's staff). Not round-trippable: diagnoses and
weight (child rows, not the visit's columns: left as Animana has them), ``temperature_c`` and ``relation_id``
(not stored), ``vet_id`` of a consult without an appointment or booked on a room, empty notes (read as None,
written as ""). Clinical notes are never merged automatically (`never_merge`)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field, Strict

from connectors.animana.models import AnimanaRecord, ApiModel, Id, NonEmpty, Text, Timestamp, WireRecord
from connectors.animana.resources.spec import ResourceSpec, WriteRefs
from connectors.animana.resources.values import id_text, split_resource_key, wire_id, wire_local_time
from warehouse.ingest.animana.checks import MirrorCount
from warehouse.ingest.animana.handlers.clinical import load_visits
from warehouse.ingest.animana.load import HandlerLoad
from warehouse.ingest.animana.rows import Batch, DiagnosisRow, VisitRow, WeightRow
from warehouse.ingest.animana.tombstones import CONSULT
from warehouse.integration.rules import never_merge

SOAP = ("subjective", "objective", "assessment", "plan")


class Soap(ApiModel):
    subjective: Text
    objective: Text
    assessment: Text
    plan: Text


class Diagnosis(ApiModel):
    description: NonEmpty
    venom_code: Annotated[str, Strict(), Field(pattern=r"^[0-9]+$")] | None = None


class Consult(AnimanaRecord):
    appointment_id: Id | None = None
    animal_id: Id
    relation_id: Id | None = None
    vet_id: Id
    date: Timestamp
    reason: Text | None = None
    soap: Soap
    diagnoses: list[Diagnosis]
    weight_kg: Annotated[float, Strict(), Field(gt=0, le=2000, allow_inf_nan=False)] | None = None
    temperature_c: Annotated[float, Strict(), Field(ge=30, le=45, allow_inf_nan=False)] | None = None


def map_consult(c: WireRecord) -> tuple[VisitRow, list[DiagnosisRow], list[WeightRow]]:
    consult_id, animal_id, date, soap = str(c["id"]), str(c["animal_id"]), c["date"], c["soap"]
    visit = VisitRow(
        consult_id, animal_id, id_text(c["appointment_id"]), date, c["reason"], soap.subjective or None,
        soap.objective or None, soap.assessment or None, soap.plan or None, c["updated_at"],
    )  # fmt: skip
    diagnoses = [
        DiagnosisRow(f"{consult_id}:{i}", consult_id, d.venom_code, d.description[:200], date)
        for i, d in enumerate(c["diagnoses"])
    ]
    weights = []
    if c["weight_kg"] is not None:
        grams = int((Decimal(repr(c["weight_kg"])) * 1000).to_integral_value())
        if 0 < grams < 2_000_000:
            weights.append(WeightRow(f"consult:{consult_id}", consult_id, animal_id, date, grams))
    return visit, diagnoses, weights


def write_consult(row: Mapping[str, Any], refs: WriteRefs) -> dict[str, Any]:
    body: dict[str, Any] = {
        "appointment_id": wire_id(refs.animana_id("appointment", row["appointment_id"])),
        "animal_id": wire_id(refs.animana_id("patient", row["patient_id"])),
        "date": wire_local_time(row["started_at"]),
        "reason": row["reason"],
        "soap": {part: row[part] or "" for part in SOAP},
    }
    if row["appointment_id"] is not None:
        booked_on = refs.animana_id(
            "resource", refs.value("appointment", row["appointment_id"], "resource_id")
        )
        if booked_on is not None and split_resource_key(booked_on)[0] == "staff":
            body["vet_id"] = split_resource_key(booked_on)[1]
    return body


def add_consult(c: WireRecord, batch: Batch) -> None:
    visit, diagnoses, weights = map_consult(c)
    batch.rows.append(visit)
    batch.children.setdefault("diagnoses", []).extend(diagnoses)
    batch.children.setdefault("weights", []).extend(weights)


SPEC = ResourceSpec(
    name="consults",
    module="records",
    model=Consult,
    parents=("agenda", "animals", "staff"),
    read_record=add_consult,
    table="visit",
    write_back=write_consult,
    conflict_rules={field: never_merge for field in (*SOAP, "reason")},
    load=HandlerLoad(
        handler=load_visits,
        tombstone=CONSULT,
        mirror=MirrorCount("visit"),
        children={"diagnoses": "visit_animana_id", "weights": "visit_animana_id"},
    ),
)
