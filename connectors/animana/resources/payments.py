"""Animana ``payments``: mirrored as ``payment`` rows. A payment of zero is not a payment (the warehouse forbids
it): rejected with that reason."""

from __future__ import annotations

from typing import Literal

from connectors.animana.models import AnimanaRecord, Cents, Day, Id, WireRecord
from connectors.animana.resources.spec import ResourceSpec
from connectors.animana.resources.values import MappingError, at_midnight, id_text
from warehouse.ingest.animana.checks import MirrorCount
from warehouse.ingest.animana.handlers.billing import load_payments
from warehouse.ingest.animana.load import HandlerLoad
from warehouse.ingest.animana.rows import PaymentRow
from warehouse.ingest.animana.tombstones import delete_rows


class Payment(AnimanaRecord):
    invoice_id: Id
    relation_id: Id | None = None
    method: Literal["cash", "pin", "transfer"]
    amount_cents: Cents
    date: Day


def map_payment(p: WireRecord) -> PaymentRow:
    if p["amount_cents"] == 0:
        raise MappingError("amount_cents: a payment of zero is not a payment")
    return PaymentRow(
        str(p["id"]), str(p["invoice_id"]), id_text(p["relation_id"]), p["method"], p["amount_cents"],
        at_midnight(p["date"]), p["updated_at"],
    )  # fmt: skip


SPEC = ResourceSpec(
    name="payments",
    model=Payment,
    parents=("invoices",),
    read_row=map_payment,
    load=HandlerLoad(handler=load_payments, tombstone=delete_rows("payment"), mirror=MirrorCount("payment")),
)
