"""Animana ``prescriptions``: mirrored as ``prescription`` rows, the product resolved by the franchise's code
(a bespoke handler: see `warehouse.ingest.animana.handlers.clinical`)."""

from __future__ import annotations

from decimal import Decimal
from typing import Annotated

from pydantic import Field, Strict

from connectors.animana.models import AnimanaRecord, Day, DispensingCategory, Id, NonEmpty, Text, WireRecord
from connectors.animana.resources.spec import ResourceSpec
from connectors.animana.resources.values import at_midnight, id_text
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


SPEC = ResourceSpec(
    name="prescriptions",
    model=Prescription,
    parents=("animals", "consults", "products"),
    read_row=map_prescription,
    load=HandlerLoad(
        handler=load_prescriptions, tombstone=delete_rows("prescription"), mirror=MirrorCount("prescription")
    ),
)
