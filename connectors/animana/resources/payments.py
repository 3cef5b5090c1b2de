"""Animana ``payments``: mirrored as ``payment`` rows. A payment of zero is not a payment (the warehouse forbids
it): rejected with that reason.

Written back from the row. Not round-trippable: a payment Animana gave no relation (loaded with its invoice's
client, written back with that client). VetConnect's method ``other`` has no Animana equivalent (refused there)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from connectors.animana.models import AnimanaRecord, Cents, Day, Id, WireRecord
from connectors.animana.resources.spec import ResourceSpec, WriteRefs
from connectors.animana.resources.values import MappingError, at_midnight, id_text, wire_day, wire_id
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


def write_payment(row: Mapping[str, Any], refs: WriteRefs) -> dict[str, Any]:
    return {
        "invoice_id": wire_id(refs.animana_id("invoice", row["invoice_id"])),
        "relation_id": wire_id(refs.animana_id("client", row["client_id"])),
        "method": row["method"], "amount_cents": row["amount_cents"], "date": wire_day(row["paid_at"]),
    }  # fmt: skip


SPEC = ResourceSpec(
    name="payments",
    module="invoices",
    model=Payment,
    parents=("invoices",),
    read_row=map_payment,
    table="payment",
    write_back=write_payment,
    load=HandlerLoad(handler=load_payments, tombstone=delete_rows("payment"), mirror=MirrorCount("payment")),
)
