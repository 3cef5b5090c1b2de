"""Draft invoices: an empty draft for a client, or a draft from a visit with a line for everything billable
the visit recorded, at the practice's prices."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from warehouse.billing.invoice_lines import add_priced_line
from warehouse.billing.invoices import BillingError, price_list, recompute_totals
from warehouse.billing.numbering import DRAFT_PREFIX
from warehouse.billing.vat import vat_rate_for
from warehouse.kernel.practice_time import practice_today
from warehouse.schema.billing import Invoice, InvoiceLine, Product
from warehouse.schema.clients import Client, ClientPatient
from warehouse.schema.clinical import LabOrder, Prescription, Vaccination, Visit
from warehouse.security.permissions import BILLING_WRITE, Actor, require
from warehouse.tenants.shared_resources import EffectivePrice

CONSULT_CODE = "C-CONS"


def create_draft(
    session: Session, actor: Actor, *, practice_id: int, client_id: int, visit_id: int | None = None
) -> Invoice:
    require(actor, BILLING_WRITE, practice_id)
    exists = session.scalar(select(Client.id).where(Client.practice_id == practice_id, Client.id == client_id,
                                                    Client.deleted_at.is_(None)))  # fmt: skip
    if exists is None:
        raise BillingError("client", "Choose a client of this practice.")
    invoice = Invoice(practice_id=practice_id, number=f"{DRAFT_PREFIX}{uuid.uuid4().hex[:12]}", client_id=client_id,
                      visit_id=visit_id, issued_on=practice_today(session, practice_id), status="draft",
                      created_by=actor.user_id)  # fmt: skip
    session.add(invoice)
    session.flush()
    return invoice


@dataclass(frozen=True)
class VisitItem:
    """Something billable the visit recorded, with its price from the practice's list (None: it has none)."""

    source: str
    source_id: int
    description: str
    quantity: Decimal
    price: EffectivePrice | None
    kind: str  # the product kind an unpriced item is taxed as


def _by_name(prices: list[EffectivePrice]) -> dict[str, EffectivePrice]:
    return {p.name.strip().casefold(): p for p in prices}


def billable_items(session: Session, practice_id: int, visit: Visit) -> list[VisitItem]:
    """Every billable record of the visit: the consult, each vaccination (priced by the item of its protocol,
    else by the item named like the vaccine, as synced vaccinations are), each prescription (its product,
    else the item of that name) and each lab order (the lab item of its test code or name)."""
    prices = price_list(session, practice_id)
    by_id, by_name = {p.product_id: p for p in prices}, _by_name(prices)
    by_code = {p.code.casefold(): p for p in prices}
    consult = by_code.get(CONSULT_CODE.casefold())
    items = [
        VisitItem("consult", visit.id, consult.name if consult else "Consult", Decimal(1), consult, "service")
    ]
    protocol_items: dict[int | None, int] = {
        protocol_id: product_id for protocol_id, product_id in session.execute(
            select(Product.vaccine_protocol_id, Product.id).where(
                Product.vaccine_protocol_id.is_not(None), Product.franchise_id.in_({p.franchise_id for p in prices})))
    }  # fmt: skip
    for vaccination in session.scalars(select(Vaccination).where(
            Vaccination.practice_id == practice_id, Vaccination.visit_id == visit.id).order_by(Vaccination.id)):  # fmt: skip
        price = by_id.get(protocol_items.get(vaccination.protocol_id, -1)) or by_name.get(
            vaccination.vaccine_name.strip().casefold()
        )
        items.append(VisitItem("vaccination", vaccination.id, price.name if price else
                               f"Vaccinatie {vaccination.vaccine_name}", Decimal(1), price, "service"))  # fmt: skip
    for rx in session.scalars(select(Prescription).where(
            Prescription.practice_id == practice_id, Prescription.visit_id == visit.id).order_by(Prescription.id)):  # fmt: skip
        price = by_id.get(rx.product_id) if rx.product_id else by_name.get(rx.product_name.strip().casefold())
        items.append(VisitItem("prescription", rx.id, price.name if price else rx.product_name,
                               Decimal(rx.quantity), price, "medicine"))  # fmt: skip
    for order in session.scalars(select(LabOrder).where(
            LabOrder.practice_id == practice_id, LabOrder.visit_id == visit.id).order_by(LabOrder.id)):  # fmt: skip
        price = by_code.get((order.test_code or "").casefold()) or by_name.get(
            (order.test_name or "").casefold()
        )
        name = order.test_name or order.test_code or order.accession_number
        items.append(VisitItem("lab_order", order.id, price.name if price else f"Labonderzoek {name}",
                               Decimal(1), price, "lab"))  # fmt: skip
    return items


def draft_from_visit(session: Session, actor: Actor, *, practice_id: int, visit_id: int) -> Invoice:
    """A draft for the visit's primary owner with a line for every billable item of the visit (see
    ``billable_items``), at the practice's price where it overrides the franchise's. An item without a price
    becomes a line that needs one, so it is seen, never dropped."""
    require(actor, BILLING_WRITE, practice_id)
    visit = session.scalar(select(Visit).where(Visit.practice_id == practice_id, Visit.id == visit_id))
    if visit is None:
        raise BillingError("visit", "Choose a visit of this practice.")
    already = session.scalar(select(Invoice.number).where(
        Invoice.practice_id == practice_id, Invoice.visit_id == visit_id, Invoice.credit_of_id.is_(None),
        Invoice.status.in_(("draft", "issued", "paid"))).limit(1))  # fmt: skip
    if already is not None:
        raise BillingError("visit", f"This visit is already on invoice {already}.")
    client_id = session.scalar(
        select(ClientPatient.client_id)
        .where(ClientPatient.practice_id == practice_id, ClientPatient.patient_id == visit.patient_id)
        .order_by(ClientPatient.is_primary.desc()).limit(1)
    )  # fmt: skip
    if client_id is None:
        raise BillingError("visit", "The patient has no owner to invoice.")
    invoice = create_draft(session, actor, practice_id=practice_id, client_id=client_id, visit_id=visit_id)
    for item in billable_items(session, practice_id, visit):
        if item.price is not None:
            add_priced_line(
                session, invoice, item.price, item.quantity, 0, item.description, item.source, item.source_id
            )
        else:
            session.add(InvoiceLine(practice_id=practice_id, invoice_id=invoice.id, description=item.description[:200],
                                    quantity=item.quantity, unit_price_cents=0, vat_rate_bp=vat_rate_for(item.kind),
                                    line_excl_cents=0, line_vat_cents=0, line_incl_cents=0, source=item.source,
                                    source_id=item.source_id, needs_price=True))  # fmt: skip
    recompute_totals(session, invoice)
    return invoice
