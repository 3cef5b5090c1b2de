"""Invoices: drafted from a visit with everything billable it recorded (the consult, vaccinations, medicines,
lab tests) at the practice's prices, Dutch VAT per line, discounts, issued with the next number of the
practice's series (warehouse.billing.numbering), paid (cash, pin, transfer), and credited by a negative invoice.

Nothing billable is lost on the way: an item of the visit without a price stays on the draft as a line that
needs a price (issuing waits for it), and a line taken off a draft keeps its reason (``invoice_line_removal``).
An invoice is issued only when the practice has what a Dutch invoice must carry (address, VAT and KvK numbers,
IBAN). Drafts carry a placeholder number (``CONCEPT-…``) that is never part of the series.
"""

from __future__ import annotations

import datetime as dt
import re
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from decimal import Decimal

import polars as pl
from sqlalchemy import delete, func, select, text
from sqlalchemy.orm import Session

from warehouse.billing import numbering
from warehouse.billing.balances import client_balance
from warehouse.billing.vat import (
    InvoiceTotals,
    LineAmounts,
    invoice_totals,
    line_amounts,
    round_cents,
    vat_rate_for,
)
from warehouse.clients.card import client_name
from warehouse.kernel.errors import DomainError
from warehouse.records.errors import RecordsError
from warehouse.records.prescriptions import parse_quantity
from warehouse.schema.billing import (
    PAYMENT_METHODS,
    Invoice,
    InvoiceLine,
    InvoiceLineRemoval,
    Payment,
    Product,
)
from warehouse.schema.clients import Client, ClientPatient, Patient
from warehouse.schema.clinical import LabOrder, Prescription, Vaccination, Visit
from warehouse.schema.tenancy import AppUser, Tenant
from warehouse.security.permissions import BILLING_WRITE, Actor, require
from warehouse.tenants.shared_resources import EffectivePrice, effective_prices

DRAFT_PREFIX = numbering.DRAFT_PREFIX
CONSULT_CODE = "C-CONS"
PAYMENT_TERM_DAYS = 14
MAX_REASON = 200


class BillingError(DomainError):
    """Input or a state the billing rules refuse; ``field`` names the form field."""


def price_list(session: Session, practice_id: int) -> list[EffectivePrice]:
    return effective_prices(session, practice_id)


def _invoice(session: Session, practice_id: int, invoice_id: int, *, lock: bool = True) -> Invoice:
    query = select(Invoice).where(Invoice.practice_id == practice_id, Invoice.id == invoice_id)
    invoice = session.scalar(query.with_for_update() if lock else query)
    if invoice is None:
        raise BillingError("invoice", f"Invoice {invoice_id} does not exist here.")
    return invoice


def _require_draft(invoice: Invoice) -> None:
    if invoice.status != "draft":
        raise BillingError(
            "invoice", f"Invoice {invoice.number} is {invoice.status}; only a draft can change."
        )


def _lines(session: Session, practice_id: int, invoice_id: int) -> list[InvoiceLine]:
    return list(session.scalars(select(InvoiceLine).where(
        InvoiceLine.practice_id == practice_id, InvoiceLine.invoice_id == invoice_id).order_by(InvoiceLine.id)))  # fmt: skip


def _recompute(session: Session, invoice: Invoice) -> InvoiceTotals:
    session.flush()
    lines = _lines(session, invoice.practice_id, invoice.id)
    totals = invoice_totals((line_amounts_of(line), line.vat_rate_bp) for line in lines)
    invoice.total_excl_cents, invoice.vat_cents = totals.excl_cents, totals.vat_cents
    invoice.total_incl_cents = totals.incl_cents
    session.flush()
    return totals


def line_amounts_of(line: InvoiceLine) -> LineAmounts:
    return LineAmounts(line.line_excl_cents, line.line_vat_cents, line.line_incl_cents)


def create_draft(
    session: Session, actor: Actor, *, practice_id: int, client_id: int, visit_id: int | None = None
) -> Invoice:
    require(actor, BILLING_WRITE, practice_id)
    exists = session.scalar(select(Client.id).where(Client.practice_id == practice_id, Client.id == client_id,
                                                    Client.deleted_at.is_(None)))  # fmt: skip
    if exists is None:
        raise BillingError("client", "Choose a client of this practice.")
    invoice = Invoice(practice_id=practice_id, number=f"{DRAFT_PREFIX}{uuid.uuid4().hex[:12]}", client_id=client_id,
                      visit_id=visit_id, issued_on=dt.date.today(), status="draft", created_by=actor.user_id)  # fmt: skip
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
            _add_line(
                session, invoice, item.price, item.quantity, 0, item.description, item.source, item.source_id
            )
        else:
            session.add(InvoiceLine(practice_id=practice_id, invoice_id=invoice.id, description=item.description[:200],
                                    quantity=item.quantity, unit_price_cents=0, vat_rate_bp=vat_rate_for(item.kind),
                                    line_excl_cents=0, line_vat_cents=0, line_incl_cents=0, source=item.source,
                                    source_id=item.source_id, needs_price=True))  # fmt: skip
    _recompute(session, invoice)
    return invoice


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


def _add_line(session: Session, invoice: Invoice, price: EffectivePrice, quantity: Decimal, discount: int,
              description: str | None, source: str | None = None, source_id: int | None = None) -> InvoiceLine:  # fmt: skip
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
    invoice = _invoice(session, practice_id, invoice_id)
    _require_draft(invoice)
    price = next((p for p in price_list(session, practice_id) if p.product_id == product_id), None)
    if price is None:
        raise BillingError("product", "Choose an item of the practice's price list.")
    amount, discount = validate_line(quantity, price.price_cents, discount_percent, discount_cents_)
    line = _add_line(session, invoice, price, amount, discount, (description or "").strip() or None)
    _recompute(session, invoice)
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
    invoice = _invoice(session, practice_id, invoice_id)
    _require_draft(invoice)
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
    _recompute(session, invoice)
    return removal


def price_line(
    session: Session, actor: Actor, *, practice_id: int, invoice_id: int, line_id: int | None, price: str
) -> InvoiceLine:
    """Give a line that needs a price its unit price (euros excl. VAT, as typed)."""
    require(actor, BILLING_WRITE, practice_id)
    invoice = _invoice(session, practice_id, invoice_id)
    _require_draft(invoice)
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
    _recompute(session, invoice)
    return line


# What a Dutch invoice must say about the practice (Wet OB art. 35a, Handelsregisterwet art. 20).
PRACTICE_DETAILS = {"address": "address", "postcode": "postcode", "city": "city", "vat_number": "VAT number",
                    "kvk_number": "KvK number", "iban": "IBAN"}  # fmt: skip
_VAT_NUMBER = re.compile(r"^NL\d{9}B\d{2}$")
_KVK = re.compile(r"^\d{8}$")


def iban_valid(iban: str) -> bool:
    """ISO 13616: two letters, two check digits, the account; the number mod 97 is 1."""
    compact = iban.replace(" ", "").upper()
    if not re.fullmatch(r"[A-Z]{2}\d{2}[A-Z0-9]{11,30}", compact):
        return False
    digits = "".join(str(int(ch, 36)) for ch in compact[4:] + compact[:4])
    return int(digits) % 97 == 1


def practice_details_problems(practice: Tenant) -> list[str]:
    """What the practice lacks (or has malformed) of what its invoices must carry; empty when complete."""
    missing = [
        label for column, label in PRACTICE_DETAILS.items() if not (getattr(practice, column) or "").strip()
    ]
    problems = [f"{', '.join(missing)} missing"] if missing else []
    if practice.vat_number and not _VAT_NUMBER.match(practice.vat_number.replace(" ", "").upper()):
        problems.append(f"VAT number {practice.vat_number} is not NL + 9 digits + B + 2 digits")
    if practice.kvk_number and not _KVK.match(practice.kvk_number.strip()):
        problems.append(f"KvK number {practice.kvk_number} is not 8 digits")
    if practice.iban and not iban_valid(practice.iban):
        problems.append(f"IBAN {practice.iban} is not a valid IBAN")
    return problems


_POSTCODE = re.compile(r"^\d{4} ?[A-Z]{2}$")
_DETAIL_LENGTHS = {"address": 200, "city": 100}


def practice_detail_errors(values: Mapping[str, str]) -> dict[str, str]:
    """What is wrong with practice details as typed, per field (the columns of ``PRACTICE_DETAILS``): the same
    rules as :func:`practice_details_problems`, so details that save are details that issue; empty when fine."""
    errors: dict[str, str] = {}
    for column, label in PRACTICE_DETAILS.items():
        value = (values.get(column) or "").strip()
        if not value:
            errors[column] = f"Enter the {label}; every invoice must carry it."
        elif len(value) > _DETAIL_LENGTHS.get(column, 200):
            errors[column] = f"The {label} is at most {_DETAIL_LENGTHS[column]} characters."
    postcode = (values.get("postcode") or "").strip().upper()
    if "postcode" not in errors and not _POSTCODE.match(postcode):
        errors["postcode"] = "A Dutch postcode is 4 digits and 2 letters, e.g. 1016 GV."
    vat = (values.get("vat_number") or "").replace(" ", "").upper()
    if "vat_number" not in errors and not _VAT_NUMBER.match(vat):
        errors["vat_number"] = "A Dutch VAT number is NL, 9 digits, B and 2 digits, e.g. NL859876543B01."
    if "kvk_number" not in errors and not _KVK.match((values.get("kvk_number") or "").strip()):
        errors["kvk_number"] = "A KvK number is 8 digits."
    if "iban" not in errors and not iban_valid(values.get("iban") or ""):
        errors["iban"] = "This is not a valid IBAN (check the digits; e.g. NL91 ABNA 0417 1643 00)."
    return errors


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
    invoice = _invoice(session, practice_id, invoice_id)
    _require_draft(invoice)
    lines = _lines(session, practice_id, invoice_id)
    if not lines:
        raise BillingError("lines", "Add at least one line before issuing.")
    if unpriced := [line.description for line in lines if line.needs_price]:
        raise BillingError("lines", f"{', '.join(unpriced)}: give a price or remove the line (with the reason) "
                                    "before issuing.")  # fmt: skip
    practice = session.scalar(select(Tenant).where(Tenant.id == practice_id))
    if practice is not None and (problems := practice_details_problems(practice)):
        raise BillingError("practice", f"An invoice must carry the practice's details: {'; '.join(problems)}. "
                                       "Ask the practice manager to complete them.")  # fmt: skip
    _recompute(session, invoice)
    _take_number(session, invoice, issued_on)
    return invoice


def paid_cents(session: Session, practice_id: int, invoice_id: int) -> int:
    return int(session.scalar(select(func.coalesce(func.sum(Payment.amount_cents), 0)).where(
        Payment.practice_id == practice_id, Payment.invoice_id == invoice_id)) or 0)  # fmt: skip


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


def record_payment(
    session: Session, actor: Actor, *, practice_id: int, invoice_id: int, method: str, amount_cents: int
) -> Payment:
    """A payment against an issued invoice (at most what is still open); a fully paid invoice becomes paid."""
    require(actor, BILLING_WRITE, practice_id)
    if method not in PAYMENT_METHODS:
        raise BillingError("method", "Choose cash, pin or transfer.")
    invoice = _invoice(session, practice_id, invoice_id)
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


def credit(
    session: Session, actor: Actor, *, practice_id: int, invoice_id: int, issued_on: dt.date
) -> Invoice:
    """A credit note: a negative copy of every line, numbered in the same series and pointing at the original,
    which becomes ``credited``. The client's balance drops by the original total (below zero when it was paid:
    a refund is owed)."""
    require(actor, BILLING_WRITE, practice_id)
    original = _invoice(session, practice_id, invoice_id)
    if original.status not in ("issued", "paid") or original.credit_of_id is not None:
        raise BillingError(
            "invoice", f"Invoice {original.number} is {original.status}; it cannot be credited."
        )
    note = Invoice(practice_id=practice_id, number=f"{DRAFT_PREFIX}{uuid.uuid4().hex[:12]}",
                   client_id=original.client_id, visit_id=original.visit_id, credit_of_id=original.id,
                   issued_on=issued_on, status="draft", created_by=actor.user_id)  # fmt: skip
    session.add(note)
    session.flush()
    for line in _lines(session, practice_id, original.id):
        session.add(InvoiceLine(practice_id=practice_id, invoice_id=note.id, franchise_id=line.franchise_id,
                                product_id=line.product_id, description=line.description[:200],
                                quantity=-line.quantity, unit_price_cents=line.unit_price_cents,
                                discount_cents=-line.discount_cents, vat_rate_bp=line.vat_rate_bp,
                                line_excl_cents=-line.line_excl_cents, line_vat_cents=-line.line_vat_cents,
                                line_incl_cents=-line.line_incl_cents))  # fmt: skip
    _recompute(session, note)
    _take_number(session, note, issued_on)
    original.status = "credited"
    session.flush()
    return note


# --- reading ----------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class InvoiceView:
    practice_id: int
    id: int
    number: str
    status: str
    client_id: int
    client: str
    visit_id: int | None
    credit_of: str | None
    credited_by: str | None
    issued_on: dt.date
    due_on: dt.date | None
    total_excl_cents: int
    vat_cents: int
    total_incl_cents: int
    vat_by_rate: dict[int, int]
    excl_by_rate: dict[int, int]
    lines: pl.DataFrame  # id, description, quantity, unit_price_cents, discount_cents, vat_rate_bp, line_*,
    #                      source, needs_price
    payments: pl.DataFrame  # id, paid_at, method, amount_cents
    paid_cents: int
    removals: pl.DataFrame  # description, quantity, unit_price_cents, reason, removed_by, removed_at
    patient: str | None  # "Bello (hond)": the visit's patient, which a Dutch invoice names

    @property
    def open_cents(self) -> int:
        return self.total_incl_cents - self.paid_cents if self.status == "issued" else 0

    @property
    def is_draft(self) -> bool:
        return self.status == "draft"


_LINE_SCHEMA = {"id": pl.Int64, "description": pl.String, "quantity": pl.Float64, "unit_price_cents": pl.Int64,
                "discount_cents": pl.Int64, "vat_rate_bp": pl.Int64, "line_excl_cents": pl.Int64,
                "line_vat_cents": pl.Int64, "line_incl_cents": pl.Int64, "source": pl.String,
                "needs_price": pl.Boolean}  # fmt: skip
_REMOVAL_SCHEMA = {"description": pl.String, "quantity": pl.Float64, "unit_price_cents": pl.Int64,
                   "reason": pl.String, "removed_by": pl.String, "removed_at": pl.Datetime("us", "UTC")}  # fmt: skip
SPECIES_NL = {"dog": "hond", "cat": "kat", "rabbit": "konijn", "guinea_pig": "cavia", "hamster": "hamster",
              "rat": "rat", "ferret": "fret", "bird": "vogel", "reptile": "reptiel", "horse": "paard",
              "goat": "geit", "sheep": "schaap", "pig": "varken", "cattle": "rund", "other": "dier"}  # fmt: skip


def invoice_view(session: Session, practice_id: int, invoice_id: int) -> InvoiceView | None:
    invoice = session.scalar(
        select(Invoice).where(Invoice.practice_id == practice_id, Invoice.id == invoice_id)
    )
    if invoice is None:
        return None
    client = session.get(Client, (practice_id, invoice.client_id))
    lines = _lines(session, practice_id, invoice_id)
    frame = pl.DataFrame(
        [(ln.id, ln.description, float(ln.quantity), ln.unit_price_cents, ln.discount_cents, ln.vat_rate_bp,
          ln.line_excl_cents, ln.line_vat_cents, ln.line_incl_cents, ln.source, ln.needs_price) for ln in lines],
        schema=_LINE_SCHEMA, orient="row",
    )  # fmt: skip
    vat_by_rate: dict[int, int] = {}
    excl_by_rate: dict[int, int] = {}
    for ln in lines:
        vat_by_rate[ln.vat_rate_bp] = vat_by_rate.get(ln.vat_rate_bp, 0) + ln.line_vat_cents
        excl_by_rate[ln.vat_rate_bp] = excl_by_rate.get(ln.vat_rate_bp, 0) + ln.line_excl_cents
    payments = session.execute(select(Payment.id, Payment.paid_at, Payment.method, Payment.amount_cents).where(
        Payment.practice_id == practice_id, Payment.invoice_id == invoice_id).order_by(Payment.paid_at)).all()  # fmt: skip
    pay_frame = pl.DataFrame([tuple(p) for p in payments], orient="row", schema={
        "id": pl.Int64, "paid_at": pl.Datetime("us", "UTC"), "method": pl.String, "amount_cents": pl.Int64})  # fmt: skip
    credit_of = (
        session.scalar(select(Invoice.number).where(Invoice.practice_id == practice_id,
                                                    Invoice.id == invoice.credit_of_id))
        if invoice.credit_of_id else None
    )  # fmt: skip
    credited_by = session.scalar(select(Invoice.number).where(
        Invoice.practice_id == practice_id, Invoice.credit_of_id == invoice.id).limit(1))  # fmt: skip
    r = InvoiceLineRemoval
    removals = session.execute(
        select(r.description, r.quantity, r.unit_price_cents, r.reason, AppUser.full_name, r.removed_at)
        .outerjoin(AppUser, AppUser.id == r.removed_by)
        .where(r.practice_id == practice_id, r.invoice_id == invoice_id).order_by(r.id)
    ).all()  # fmt: skip
    removal_frame = pl.DataFrame([(d, float(q), c, why, who, at) for d, q, c, why, who, at in removals],
                                 schema=_REMOVAL_SCHEMA, orient="row")  # fmt: skip
    patient = session.execute(
        select(Patient.name, Patient.species).join(Visit, (Visit.practice_id == Patient.practice_id)
                                                   & (Visit.patient_id == Patient.id))
        .where(Visit.practice_id == practice_id, Visit.id == invoice.visit_id)
    ).first() if invoice.visit_id else None  # fmt: skip
    return InvoiceView(
        practice_id, invoice.id, invoice.number, invoice.status, invoice.client_id,
        client_name(client) if client else "?", invoice.visit_id, credit_of, credited_by, invoice.issued_on,
        invoice.due_on, invoice.total_excl_cents, invoice.vat_cents, invoice.total_incl_cents, vat_by_rate,
        excl_by_rate, frame, pay_frame, sum(p.amount_cents for p in payments), removal_frame,
        f"{patient.name} ({SPECIES_NL.get(patient.species, patient.species)})" if patient else None,
    )  # fmt: skip


_LIST_SCHEMA = {"id": pl.Int64, "number": pl.String, "status": pl.String, "issued_on": pl.Date,
                "client_id": pl.Int64, "client": pl.String, "total_incl_cents": pl.Int64, "paid_cents": pl.Int64,
                "open_cents": pl.Int64, "credit_of_id": pl.Int64}  # fmt: skip


def invoices(session: Session, practice_id: int, *, client_id: int | None = None, status: str | None = None,
             limit: int = 200) -> pl.DataFrame:  # fmt: skip
    rows = session.execute(
        text(
            """SELECT i.id, i.number, i.status, i.issued_on, i.client_id, c.last_name AS client, i.total_incl_cents,
                      coalesce(p.cents, 0) AS paid_cents,
                      CASE WHEN i.status = 'issued' THEN i.total_incl_cents - coalesce(p.cents, 0) ELSE 0 END
                        AS open_cents, i.credit_of_id
               FROM invoice i JOIN client c ON c.practice_id = i.practice_id AND c.id = i.client_id
               LEFT JOIN LATERAL (SELECT sum(amount_cents) AS cents FROM payment y
                                  WHERE y.practice_id = i.practice_id AND y.invoice_id = i.id) p ON true
               WHERE i.practice_id = :p AND (CAST(:c AS bigint) IS NULL OR i.client_id = :c)
                 AND (CAST(:s AS text) IS NULL OR i.status = :s)
               ORDER BY i.status = 'draft' DESC, i.issued_on DESC, i.id DESC LIMIT :limit"""
        ),
        {"p": practice_id, "c": client_id, "s": status, "limit": limit},
    )
    return pl.DataFrame([dict(r._mapping) for r in rows], schema=_LIST_SCHEMA)


def uninvoiced_visits(session: Session, practice_id: int, *, limit: int = 50) -> pl.DataFrame:
    """Recent visits without an invoice (what the front desk bills next)."""
    rows = session.execute(
        text(
            """SELECT v.id, v.started_at, p.name AS patient, c.last_name AS client, v.reason
               FROM visit v JOIN patient p ON p.practice_id = v.practice_id AND p.id = v.patient_id
               LEFT JOIN LATERAL (SELECT cl.last_name FROM client_patient cp JOIN client cl
                                    ON cl.practice_id = cp.practice_id AND cl.id = cp.client_id
                                  WHERE cp.practice_id = v.practice_id AND cp.patient_id = v.patient_id
                                  ORDER BY cp.is_primary DESC LIMIT 1) c ON true
               WHERE v.practice_id = :p AND NOT EXISTS (
                 SELECT 1 FROM invoice i WHERE i.practice_id = v.practice_id AND i.visit_id = v.id
                   AND i.credit_of_id IS NULL AND i.status IN ('draft', 'issued', 'paid'))
               ORDER BY v.started_at DESC LIMIT :limit"""
        ),
        {"p": practice_id, "limit": limit},
    )
    return pl.DataFrame([dict(r._mapping) for r in rows], schema={
        "id": pl.Int64, "started_at": pl.Datetime("us", "UTC"), "patient": pl.String, "client": pl.String,
        "reason": pl.String})  # fmt: skip


def client_outstanding(session: Session, practice_id: int, client_id: int) -> int:
    return client_balance(session, practice_id, client_id).outstanding_cents
