"""The lines of a draft invoice: added from the practice's price list with an optional discount, given a price
where the visit's item had none, or taken off with the reason kept."""

from __future__ import annotations

from decimal import Decimal

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from warehouse.billing.invoices import (
    BillingError,
    invoice_for_update,
    parse_amount,
    price_list,
    recompute_totals,
    require_draft,
)
from warehouse.billing.vat import line_amounts, round_cents
from warehouse.records.errors import RecordsError
from warehouse.records.prescriptions import parse_quantity
from warehouse.schema.billing import Invoice, InvoiceLine, InvoiceLineRemoval
from warehouse.security.permissions import BILLING_WRITE, Actor, require
from warehouse.tenants.shared_resources import EffectivePrice

MAX_REASON = 200


def discount_cents(quantity: Decimal, unit_price_cents: int, *, percent: str | Decimal | None = None,
                   cents: int | None = None) -> int:  # fmt: skip
    """A line discount in cents, from a percentage of the line's gross amount or a fixed amount."""
    gross = round_cents(quantity * unit_price_cents)
    if percent not in (None, ""):
        try:
            pct = Decimal(str(percent).replace(",", ".").strip())
        except ArithmeticError:
            raise BillingError("discount", "Enter the discount as a percentage, e.g. 10.") from None
        if not pct.is_finite() or pct < 0 or pct > 100:
            raise BillingError("discount", "A discount is between 0 and 100 %.")
        return round_cents(gross * pct / 100)
    value = cents or 0
    if value < 0 or value > gross:
        raise BillingError("discount", "A discount cannot be negative or more than the line's amount.")
    return value


def add_priced_line(session: Session, invoice: Invoice, price: EffectivePrice, quantity: Decimal, discount: int,
                    description: str | None, source: str | None = None,
                    source_id: int | None = None) -> InvoiceLine:  # fmt: skip
    """A line at the price list's price and VAT rate, added to the invoice as it is (no checks, no totals)."""
    amounts = line_amounts(quantity, price.price_cents, price.vat_rate_bp, discount)
    line = InvoiceLine(practice_id=invoice.practice_id, invoice_id=invoice.id, franchise_id=price.franchise_id,
                       product_id=price.product_id, description=(description or price.name)[:200], quantity=quantity,
                       unit_price_cents=price.price_cents, discount_cents=discount, vat_rate_bp=price.vat_rate_bp,
                       line_excl_cents=amounts.excl_cents, line_vat_cents=amounts.vat_cents,
                       line_incl_cents=amounts.incl_cents, source=source, source_id=source_id)  # fmt: skip
    session.add(line)
    return line


def add_line(
    session: Session, actor: Actor, *, practice_id: int, invoice_id: int, product_id: int | None,
    quantity: str | Decimal, discount_percent: str | Decimal | None = None, discount_cents_: int | None = None,
    description: str | None = None,
) -> InvoiceLine:  # fmt: skip
    """A line from the practice's price list (its price and VAT rate), with an optional discount."""
    require(actor, BILLING_WRITE, practice_id)
    invoice = invoice_for_update(session, practice_id, invoice_id)
    require_draft(invoice)
    price = next((p for p in price_list(session, practice_id) if p.product_id == product_id), None)
    if price is None:
        raise BillingError("product", "Choose an item of the practice's price list.")
    amount, discount = validate_line(quantity, price.price_cents, discount_percent, discount_cents_)
    line = add_priced_line(session, invoice, price, amount, discount, (description or "").strip() or None)
    recompute_totals(session, invoice)
    return line


def validate_line(quantity: str | Decimal, unit_price_cents: int, discount_percent: str | Decimal | None = None,
                  discount_cents_: int | None = None) -> tuple[Decimal, int]:  # fmt: skip
    """A line's quantity (more than 0, at most three decimals) and discount in cents, or a BillingError at the
    field that is wrong."""
    try:
        amount = parse_quantity(quantity)
    except RecordsError as exc:  # the records rule for a quantity, reported as billing's
        raise BillingError(exc.field, str(exc)) from None
    return amount, discount_cents(amount, unit_price_cents, percent=discount_percent, cents=discount_cents_)


def _line(session: Session, practice_id: int, invoice_id: int, line_id: int | None) -> InvoiceLine:
    line = session.scalar(select(InvoiceLine).where(InvoiceLine.practice_id == practice_id,
                                                    InvoiceLine.invoice_id == invoice_id, InvoiceLine.id == line_id))  # fmt: skip
    if line is None:
        raise BillingError("line", "Choose a line of this invoice.")
    return line


def remove_line(
    session: Session,
    actor: Actor,
    *,
    practice_id: int,
    invoice_id: int,
    line_id: int | None,
    reason: str | None,
) -> InvoiceLineRemoval:
    """Take a line off a draft; the reason is required and kept with what the line was."""
    require(actor, BILLING_WRITE, practice_id)
    invoice = invoice_for_update(session, practice_id, invoice_id)
    require_draft(invoice)
    why = " ".join((reason or "").split())
    if not why:
        raise BillingError("reason", "Say why the line is not billed (kept with the invoice).")
    if len(why) > MAX_REASON:
        raise BillingError("reason", f"A reason is at most {MAX_REASON} characters.")
    line = _line(session, practice_id, invoice_id, line_id)
    removal = InvoiceLineRemoval(practice_id=practice_id, invoice_id=invoice_id, product_id=line.product_id,
                                 description=line.description, quantity=line.quantity,
                                 unit_price_cents=line.unit_price_cents, source=line.source, source_id=line.source_id,
                                 reason=why, removed_by=actor.user_id)  # fmt: skip
    session.add(removal)
    session.execute(delete(InvoiceLine).where(InvoiceLine.practice_id == practice_id,
                                              InvoiceLine.invoice_id == invoice_id, InvoiceLine.id == line.id))  # fmt: skip
    recompute_totals(session, invoice)
    return removal


def price_line(
    session: Session, actor: Actor, *, practice_id: int, invoice_id: int, line_id: int | None, price: str
) -> InvoiceLine:
    """Give a line that needs a price its unit price (euros excl. VAT, as typed)."""
    require(actor, BILLING_WRITE, practice_id)
    invoice = invoice_for_update(session, practice_id, invoice_id)
    require_draft(invoice)
    line = _line(session, practice_id, invoice_id, line_id)
    try:
        cents = parse_amount(price)
    except BillingError as exc:
        raise BillingError("price", str(exc)) from None
    if cents < 0:
        raise BillingError("price", "A price cannot be negative.")
    amounts = line_amounts(line.quantity, cents, line.vat_rate_bp, 0)
    line.unit_price_cents, line.discount_cents, line.needs_price = cents, 0, False
    line.line_excl_cents, line.line_vat_cents, line.line_incl_cents = (
        amounts.excl_cents, amounts.vat_cents, amounts.incl_cents)  # fmt: skip
    recompute_totals(session, invoice)
    return line
