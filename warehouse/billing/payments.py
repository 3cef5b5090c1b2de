"""Payments against an issued invoice (cash, pin, transfer); a fully paid invoice becomes paid."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from warehouse.billing.invoices import BillingError, invoice_for_update
from warehouse.schema.billing import PAYMENT_METHODS, Payment
from warehouse.security.permissions import BILLING_WRITE, Actor, require


def paid_cents(session: Session, practice_id: int, invoice_id: int) -> int:
    return int(session.scalar(select(func.coalesce(func.sum(Payment.amount_cents), 0)).where(
        Payment.practice_id == practice_id, Payment.invoice_id == invoice_id)) or 0)  # fmt: skip


def record_payment(
    session: Session, actor: Actor, *, practice_id: int, invoice_id: int, method: str, amount_cents: int
) -> Payment:
    """A payment against an issued invoice (at most what is still open); a fully paid invoice becomes paid."""
    require(actor, BILLING_WRITE, practice_id)
    if method not in PAYMENT_METHODS:
        raise BillingError("method", "Choose cash, pin or transfer.")
    invoice = invoice_for_update(session, practice_id, invoice_id)
    if invoice.status != "issued" or invoice.total_incl_cents <= 0:
        raise BillingError(
            "invoice", f"Invoice {invoice.number} is {invoice.status}; nothing can be paid on it."
        )
    open_cents = invoice.total_incl_cents - paid_cents(session, practice_id, invoice_id)
    if amount_cents <= 0:
        raise BillingError("amount", "The amount must be more than € 0.")
    if amount_cents > open_cents:
        raise BillingError(
            "amount", f"Only € {open_cents / 100:.2f} is open on {invoice.number}.".replace(".", ",")
        )
    payment = Payment(practice_id=practice_id, invoice_id=invoice_id, client_id=invoice.client_id, method=method,
                      amount_cents=amount_cents, received_by=actor.user_id)  # fmt: skip
    session.add(payment)
    if amount_cents == open_cents:
        invoice.status = "paid"
    session.flush()
    return payment
