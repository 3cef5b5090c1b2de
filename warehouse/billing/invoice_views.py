"""Invoices read back: one invoice with its lines, VAT per rate, payments and removed lines (what the billing
page and the PDF show), the practice's invoice list, and the visits not invoiced yet."""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

import polars as pl
from sqlalchemy import select, text
from sqlalchemy.orm import Session

from warehouse.billing.invoices import lines_of
from warehouse.clients.card import client_name
from warehouse.schema.billing import Invoice, InvoiceLineRemoval, Payment
from warehouse.schema.clients import Client, Patient
from warehouse.schema.clinical import Visit
from warehouse.schema.tenancy import AppUser


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
    lines = lines_of(session, practice_id, invoice_id)
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
