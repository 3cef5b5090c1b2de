"""Invoices: drafted from a visit with everything billable it recorded (the consult, vaccinations, medicines,
lab tests) at the practice's prices (``drafts``), Dutch VAT per line and discounts (``invoice_lines``), issued
with the next number of the practice's series and credited by a negative invoice (``issuing``), paid (cash,
pin, transfer: ``payments``), and read back (``invoice_views``).

Nothing billable is lost on the way: an item of the visit without a price stays on the draft as a line that
needs a price (issuing waits for it), and a line taken off a draft keeps its reason (``invoice_line_removal``).
An invoice is issued only when the practice has what a Dutch invoice must carry (``practice_details``). Drafts
carry a placeholder number (``CONCEPT-…``) that is never part of the series.

This module holds what those steps share: the billing error, the price list, an invoice taken for a change, its
lines and its totals, and amounts in euros as typed.
"""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from warehouse.billing.vat import InvoiceTotals, LineAmounts, invoice_totals
from warehouse.kernel.errors import DomainError
from warehouse.schema.billing import Invoice, InvoiceLine
from warehouse.tenants.shared_resources import EffectivePrice, effective_prices


class BillingError(DomainError):
    """Input or a state the billing rules refuse; ``field`` names the form field."""


def price_list(session: Session, practice_id: int) -> list[EffectivePrice]:
    return effective_prices(session, practice_id)


def invoice_for_update(session: Session, practice_id: int, invoice_id: int) -> Invoice:
    """The invoice, its row locked until the transaction ends (the change made to it is the only one)."""
    invoice = session.scalar(
        select(Invoice).where(Invoice.practice_id == practice_id, Invoice.id == invoice_id).with_for_update()
    )
    if invoice is None:
        raise BillingError("invoice", f"Invoice {invoice_id} does not exist here.")
    return invoice


def require_draft(invoice: Invoice) -> None:
    if invoice.status != "draft":
        raise BillingError(
            "invoice", f"Invoice {invoice.number} is {invoice.status}; only a draft can change."
        )


def lines_of(session: Session, practice_id: int, invoice_id: int) -> list[InvoiceLine]:
    return list(session.scalars(select(InvoiceLine).where(
        InvoiceLine.practice_id == practice_id, InvoiceLine.invoice_id == invoice_id).order_by(InvoiceLine.id)))  # fmt: skip


def recompute_totals(session: Session, invoice: Invoice) -> InvoiceTotals:
    """The invoice's totals as the sums of its (rounded) lines, written to the invoice."""
    session.flush()
    lines = lines_of(session, invoice.practice_id, invoice.id)
    totals = invoice_totals((line_amounts_of(line), line.vat_rate_bp) for line in lines)
    invoice.total_excl_cents, invoice.vat_cents = totals.excl_cents, totals.vat_cents
    invoice.total_incl_cents = totals.incl_cents
    session.flush()
    return totals


def line_amounts_of(line: InvoiceLine) -> LineAmounts:
    return LineAmounts(line.line_excl_cents, line.line_vat_cents, line.line_incl_cents)


def parse_amount(raw: str | int) -> int:
    """Euros as typed (``12,50``, ``12.50``, ``€ 12``) to cents."""
    if isinstance(raw, int):
        return raw
    cleaned = str(raw).replace("€", "").replace(" ", "").strip()
    if "," in cleaned:
        cleaned = cleaned.replace(".", "").replace(",", ".")
    try:
        value = Decimal(cleaned)
    except ArithmeticError:
        raise BillingError("amount", "Enter an amount in euros, e.g. 56,87.") from None
    if not value.is_finite() or value != value.quantize(Decimal("0.01")):
        raise BillingError("amount", "Enter an amount in euros with at most two decimals.")
    return int(value * 100)
