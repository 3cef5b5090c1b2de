"""Issuing: a draft gets the next number of the practice's series and becomes owed; an issued invoice is
corrected by a credit note, a negative copy numbered in the same series."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import select
from sqlalchemy.orm import Session

from warehouse.billing import numbering
from warehouse.billing.invoices import (
    BillingError,
    invoice_for_update,
    lines_of,
    recompute_totals,
    require_draft,
)
from warehouse.billing.numbering import DRAFT_PREFIX
from warehouse.billing.practice_details import practice_details_problems
from warehouse.schema.billing import Invoice, InvoiceLine
from warehouse.schema.tenancy import Tenant
from warehouse.security.permissions import BILLING_WRITE, Actor, require

PAYMENT_TERM_DAYS = 14


def _take_number(session: Session, invoice: Invoice, issued_on: dt.date) -> None:
    try:
        invoice.number = numbering.take_number(session, invoice.practice_id, issued_on)
    except numbering.SeriesError as exc:
        raise BillingError(exc.field, str(exc)) from None
    invoice.issued_on = issued_on
    invoice.due_on = issued_on + dt.timedelta(days=PAYMENT_TERM_DAYS)
    invoice.status = "issued"
    session.flush()


def issue(
    session: Session, actor: Actor, *, practice_id: int, invoice_id: int, issued_on: dt.date
) -> Invoice:
    """Give a draft its number and make it owed; an issued invoice never changes (correct it by a credit note)."""
    require(actor, BILLING_WRITE, practice_id)
    invoice = invoice_for_update(session, practice_id, invoice_id)
    require_draft(invoice)
    lines = lines_of(session, practice_id, invoice_id)
    if not lines:
        raise BillingError("lines", "Add at least one line before issuing.")
    if unpriced := [line.description for line in lines if line.needs_price]:
        raise BillingError("lines", f"{', '.join(unpriced)}: give a price or remove the line (with the reason) "
                                    "before issuing.")  # fmt: skip
    practice = session.scalar(select(Tenant).where(Tenant.id == practice_id))
    if practice is not None and (problems := practice_details_problems(practice)):
        raise BillingError("practice", f"An invoice must carry the practice's details: {'; '.join(problems)}. "
                                       "Ask the practice manager to complete them.")  # fmt: skip
    recompute_totals(session, invoice)
    _take_number(session, invoice, issued_on)
    return invoice


def credit(
    session: Session, actor: Actor, *, practice_id: int, invoice_id: int, issued_on: dt.date
) -> Invoice:
    """A credit note: a negative copy of every line, numbered in the same series and pointing at the original,
    which becomes ``credited``. The client's balance drops by the original total (below zero when it was paid:
    a refund is owed)."""
    require(actor, BILLING_WRITE, practice_id)
    original = invoice_for_update(session, practice_id, invoice_id)
    if original.status not in ("issued", "paid") or original.credit_of_id is not None:
        raise BillingError(
            "invoice", f"Invoice {original.number} is {original.status}; it cannot be credited."
        )
    note = Invoice(practice_id=practice_id, number=f"{DRAFT_PREFIX}{uuid.uuid4().hex[:12]}",
                   client_id=original.client_id, visit_id=original.visit_id, credit_of_id=original.id,
                   issued_on=issued_on, status="draft", created_by=actor.user_id)  # fmt: skip
    session.add(note)
    session.flush()
    for line in lines_of(session, practice_id, original.id):
        session.add(InvoiceLine(practice_id=practice_id, invoice_id=note.id, franchise_id=line.franchise_id,
                                product_id=line.product_id, description=line.description[:200],
                                quantity=-line.quantity, unit_price_cents=line.unit_price_cents,
                                discount_cents=-line.discount_cents, vat_rate_bp=line.vat_rate_bp,
                                line_excl_cents=-line.line_excl_cents, line_vat_cents=-line.line_vat_cents,
                                line_incl_cents=-line.line_incl_cents))  # fmt: skip
    recompute_totals(session, note)
    _take_number(session, note, issued_on)
    original.status = "credited"
    session.flush()
    return note
