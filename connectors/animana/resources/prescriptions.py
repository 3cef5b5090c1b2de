"""Animana ``prescriptions``: mirrored as ``prescription`` rows, the product resolved by the franchise's code
(a bespoke handler: see `warehouse.ingest.animana.handlers.clinical`).

Written back from the row, the product by its code. Not round-trippable: the code of a product the franchise's
list lacks (loaded without a product, written without a code), ``vet_id`` (the row names a user), a quantity
beyond three decimals (rounded), a product name over 200 characters (cut)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field, Strict

from connectors.animana.models import AnimanaRecord, Day, DispensingCategory, Id, NonEmpty, Text, WireRecord
from connectors.animana.resources.spec import ResourceSpec, WriteRefs
from connectors.animana.resources.values import at_midnight, id_text, wire_day, wire_id
from warehouse.ingest.animana.checks import MirrorCount
from warehouse.ingest.animana.handlers.clinical import load_prescriptions
from warehouse.ingest.animana.load import HandlerLoad
from warehouse.ingest.animana.rows import PrescriptionRow
from warehouse.ingest.animana.tombstones import delete_rows


class Prescription(AnimanaRecord):
    animal_id: Id
    consult_id: Id | None = None
    vet_id: Id
    date: Day
    product_code: NonEmpty
    product_name: NonEmpty
    quantity: Annotated[float, Strict(), Field(gt=0, allow_inf_nan=False)]
    dispensing_category: DispensingCategory
    instructions: Text | None = None


def map_prescription(p: WireRecord) -> PrescriptionRow:
    return PrescriptionRow(
        str(p["id"]), str(p["animal_id"]), id_text(p["consult_id"]), p["product_code"], p["product_name"][:200],
        Decimal(repr(p["quantity"])).quantize(Decimal("0.001")), p["instructions"], p["dispensing_category"],
        at_midnight(p["date"]), p["updated_at"],
    )  # fmt: skip


def write_prescription(row: Mapping[str, Any], refs: WriteRefs) -> dict[str, Any]:
    body = {
        "animal_id": wire_id(refs.animana_id("patient", row["patient_id"])),
        "consult_id": wire_id(refs.animana_id("visit", row["visit_id"])),
        "date": wire_day(row["prescribed_at"]), "product_name": row["product_name"],
        "quantity": float(row["quantity"]), "dispensing_category": row["dispensing_category"],
        "instructions": row["dosage_instructions"],
    }  # fmt: skip
    if row["product_id"] is not None:
        body["product_code"] = refs.value("product", row["product_id"], "code")
    return body


SPEC = ResourceSpec(
    name="prescriptions",
    module="records",
    model=Prescription,
    parents=("animals", "consults", "products"),
    read_row=map_prescription,
    table="prescription",
    write_back=write_prescription,
    load=HandlerLoad(
        handler=load_prescriptions, tombstone=delete_rows("prescription"), mirror=MirrorCount("prescription")
    ),
)
