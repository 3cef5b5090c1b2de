"""Animana ``invoices``: mirrored as ``invoice`` rows (status ``issued``) with their lines (``invoice_line``,
keyed ``<invoice id>:<line index>``); money stays integer cents, VAT percent becomes basis points.

Written back from the ``invoice`` row. Its lines are not columns of it: ``lines`` is written only when the row
carries them (``lines``: its ``invoice_line`` rows in order), which a create needs. Not round-trippable:
``appointment_id`` (not stored), a line's Animana ``product_id`` (lines resolve the product by code), the code
of a product the franchise's list lacks, a blank line description (read as the product code). The invoice's
status is VetConnect's own (Animana's invoices have none)."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import Annotated, Any

from pydantic import Field, Strict, model_validator

from connectors.animana.models import (
    AnimanaRecord,
    ApiModel,
    Cents,
    Day,
    Id,
    NonEmpty,
    Text,
    VatRate,
    WireRecord,
)
from connectors.animana.resources.spec import ResourceSpec, WriteRefs
from connectors.animana.resources.values import vat_bp, wire_day, wire_id
from warehouse.ingest.animana.checks import MirrorCount
from warehouse.ingest.animana.handlers.billing import load_invoices
from warehouse.ingest.animana.load import HandlerLoad
from warehouse.ingest.animana.rows import Batch, InvoiceLineRow, InvoiceRow
from warehouse.ingest.animana.tombstones import INVOICE


class InvoiceLine(ApiModel):
    product_id: Id | None = None
    product_code: NonEmpty
    description: Text
    quantity: Annotated[int, Strict()]
    unit_price_cents: Cents
    vat_rate: VatRate
    line_total_cents: Cents
    vat_cents: Cents

    @model_validator(mode="after")
    def _arithmetic(self) -> InvoiceLine:
        if self.line_total_cents != self.quantity * self.unit_price_cents:
            raise ValueError("line_total_cents != quantity * unit_price_cents")
        return self


class Invoice(AnimanaRecord):
    relation_id: Id
    appointment_id: Id | None = None
    date: Day
    number: NonEmpty
    lines: Annotated[list[InvoiceLine], Field(min_length=1)]
    total_excl_vat_cents: Cents
    vat_cents: Cents
    total_cents: Cents

    @staticmethod
    def check(fields: Mapping[str, Any]) -> None:
        # One plain loop for both sums: two generator expressions cost more than the rest of this check.
        excl_vat = vat = 0
        for line in fields["lines"]:  # InvoiceLine models, in a model and in a wire record alike
            excl_vat += line.line_total_cents
            vat += line.vat_cents
        if fields["total_excl_vat_cents"] != excl_vat:
            raise ValueError("total_excl_vat_cents is not the sum of the lines")
        if fields["vat_cents"] != vat:
            raise ValueError("vat_cents is not the sum of the lines")
        if fields["total_cents"] != fields["total_excl_vat_cents"] + fields["vat_cents"]:
            raise ValueError("total_cents != total_excl_vat_cents + vat_cents")


def map_invoice(i: WireRecord) -> tuple[InvoiceRow, list[InvoiceLineRow]]:
    invoice_id = str(i["id"])
    row = InvoiceRow(
        invoice_id, str(i["relation_id"]), i["number"], i["date"], "issued", i["total_excl_vat_cents"],
        i["vat_cents"], i["total_cents"], i["updated_at"],
    )  # fmt: skip
    lines = [
        InvoiceLineRow(
            f"{invoice_id}:{n}",
            invoice_id,
            line.product_code,
            (line.description or line.product_code)[:200],
            Decimal(line.quantity),
            line.unit_price_cents,
            vat_bp(line.vat_rate),
            line.line_total_cents,
            line.vat_cents,
            line.line_total_cents + line.vat_cents,
        )  # fmt: skip
        for n, line in enumerate(i["lines"])
    ]
    return row, lines


def write_invoice(row: Mapping[str, Any], refs: WriteRefs) -> dict[str, Any]:
    # No totals: Animana works them out from the lines (and refuses them as fields of a write); a line's own
    # total and VAT are sent, and Animana refuses a line whose figures do not add up.
    body: dict[str, Any] = {
        "relation_id": wire_id(refs.animana_id("client", row["client_id"])), "date": wire_day(row["issued_on"]),
        "number": row["number"],
    }  # fmt: skip
    if "lines" in row:
        body["lines"] = [_write_line(line, refs) for line in row["lines"]]
    return body


def _write_line(line: Mapping[str, Any], refs: WriteRefs) -> dict[str, Any]:
    product, quantity = line["product_id"], line["quantity"]
    return {
        "product_code": None if product is None else refs.value("product", product, "code"),
        "description": line["description"], "quantity": quantity_on_the_wire(quantity),
        "unit_price_cents": line["unit_price_cents"], "vat_rate": line["vat_rate_bp"] // 100,
        "line_total_cents": line["line_excl_cents"], "vat_cents": line["line_vat_cents"],
    }  # fmt: skip


def quantity_on_the_wire(quantity: Decimal) -> int | float:
    """Animana counts whole units on an invoice line; a fraction is sent as it is, for Animana to refuse visibly
    rather than be cut silently."""
    return int(quantity) if quantity == quantity.to_integral_value() else float(quantity)


def add_invoice(i: WireRecord, batch: Batch) -> None:
    invoice, lines = map_invoice(i)
    batch.rows.append(invoice)
    batch.children.setdefault("lines", []).extend(lines)


SPEC = ResourceSpec(
    name="invoices",
    module="invoices",
    model=Invoice,
    parents=("relations", "products"),
    read_record=add_invoice,
    table="invoice",
    write_back=write_invoice,
    load=HandlerLoad(
        handler=load_invoices,
        tombstone=INVOICE,
        mirror=MirrorCount("invoice"),
        children={"lines": "invoice_animana_id"},
    ),
)
