"""Billing: franchise price list with practice overrides, invoices with Dutch VAT per line, payments.

Money is integer cents everywhere; VAT rates are basis points (2100 = 21 %, 900 = 9 %) so that no float ever
touches an amount. The arithmetic lives in warehouse.billing.vat.
"""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Computed,
    Date,
    ForeignKeyConstraint,
    Identity,
    Index,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.schema.base import Base, MirroredWrites, Timestamps, franchise_table, practice_table
from warehouse.schema.clinical import DISPENSING_CATEGORIES
from warehouse.schema.tenancy import choice

VAT_RATES_BP = (2100, 900, 0)
PRODUCT_KINDS = ("service", "medicine", "food", "goods", "lab")
INVOICE_STATUSES = ("draft", "issued", "paid", "credited", "void")
PAYMENT_METHODS = ("cash", "pin", "transfer", "other")
# What in a visit an invoice line bills (a line drafted from the visit); NULL for a line added by hand.
INVOICE_LINE_SOURCES = ("consult", "vaccination", "prescription", "lab_order")
# How a practice's invoice number series came to be: continued from its existing (synced) invoices, the
# default for a practice without any, or set up deliberately by the practice.
SERIES_ORIGINS = ("detected", "default", "configured")


class Product(Timestamps, Base):
    """An item of the franchise price list. Prices exclude VAT."""

    __tablename__ = "product"
    __table_args__ = (
        ForeignKeyConstraint(["franchise_id"], ["tenant.id"]),
        ForeignKeyConstraint(
            ["franchise_id", "vaccine_protocol_id"], ["vaccine_protocol.franchise_id", "vaccine_protocol.id"]
        ),
        UniqueConstraint("franchise_id", "code"),
        CheckConstraint(f"vat_rate_bp IN {VAT_RATES_BP}", name="vat_rate"),
        CheckConstraint("price_cents >= 0", name="price"),
        {"info": franchise_table()},
    )

    franchise_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    kind: Mapped[str] = mapped_column(choice(*PRODUCT_KINDS, name="product_kind"))
    price_cents: Mapped[int]
    vat_rate_bp: Mapped[int]
    dispensing_category: Mapped[str | None] = mapped_column(
        choice(*DISPENSING_CATEGORIES, name="product_dispensing_category")
    )
    active: Mapped[bool] = mapped_column(server_default="true")
    updated_by: Mapped[int | None]
    # The vaccine protocol this item prices: a vaccination recorded with that protocol is billed as this item.
    vaccine_protocol_id: Mapped[int | None]
    # The species a medicine is registered for; NULL when not recorded (then no species warning). Migration 0330.
    species: Mapped[list[str] | None] = mapped_column(ARRAY(String(32)))


class ProductPriceOverride(Timestamps, Base):
    __tablename__ = "product_price_override"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["tenant.id"]),
        ForeignKeyConstraint(["franchise_id", "product_id"], ["product.franchise_id", "product.id"]),
        CheckConstraint("price_cents IS NULL OR price_cents >= 0", name="price"),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    product_id: Mapped[int] = mapped_column(primary_key=True)
    franchise_id: Mapped[int]
    price_cents: Mapped[int | None]
    active: Mapped[bool | None]
    updated_by: Mapped[int | None]


class Invoice(MirroredWrites, Base):
    __tablename__ = "invoice"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id", "client_id"], ["client.practice_id", "client.id"]),
        ForeignKeyConstraint(["practice_id", "visit_id"], ["visit.practice_id", "visit.id"]),
        ForeignKeyConstraint(["practice_id", "credit_of_id"], ["invoice.practice_id", "invoice.id"]),
        UniqueConstraint("practice_id", "number"),
        UniqueConstraint("practice_id", "animana_id"),
        CheckConstraint("total_incl_cents = total_excl_cents + vat_cents", name="totals"),
        Index("ix_invoice_client", "practice_id", "client_id"),
        Index("ix_invoice_issued", "practice_id", "issued_on"),
        # The global search's invoice numbers: exact or prefix, lower case, per practice (migration 0307).
        Index("ix_invoice_number_search", "practice_id", "search_number", "id"),
        # The hub's "unpaid invoices" of every visible practice, read from the index alone (migration 0402).
        Index(
            "ix_invoice_unpaid",
            "practice_id",
            "issued_on",
            "id",
            postgresql_where=text("status = 'issued'"),
            postgresql_include=["number", "client_id", "total_incl_cents"],
        ),  # fmt: skip
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    animana_id: Mapped[str | None] = mapped_column(String(64))
    number: Mapped[str] = mapped_column(String(32))
    # The number as the global search matches it (lower case, byte order; migration 0307).
    search_number: Mapped[str] = mapped_column(Text(collation="C"), Computed("lower(number)", persisted=True))
    client_id: Mapped[int]
    visit_id: Mapped[int | None]
    credit_of_id: Mapped[int | None]
    issued_on: Mapped[dt.date] = mapped_column(Date)
    due_on: Mapped[dt.date | None] = mapped_column(Date)
    status: Mapped[str] = mapped_column(choice(*INVOICE_STATUSES, name="invoice_status"))
    total_excl_cents: Mapped[int] = mapped_column(server_default="0")
    vat_cents: Mapped[int] = mapped_column(server_default="0")
    total_incl_cents: Mapped[int] = mapped_column(server_default="0")
    created_by: Mapped[int | None]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class InvoiceLine(Base):
    __tablename__ = "invoice_line"
    __table_args__ = (
        ForeignKeyConstraint(
            ["practice_id", "invoice_id"], ["invoice.practice_id", "invoice.id"], ondelete="CASCADE"
        ),
        UniqueConstraint("practice_id", "animana_id"),
        CheckConstraint(f"vat_rate_bp IN {VAT_RATES_BP}", name="vat_rate"),
        CheckConstraint("line_incl_cents = line_excl_cents + line_vat_cents", name="totals"),
        Index("ix_invoice_line_invoice", "practice_id", "invoice_id"),
        {"info": practice_table(partitioned=True), "postgresql_partition_by": "LIST (practice_id)"},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    animana_id: Mapped[str | None] = mapped_column(String(64))
    invoice_id: Mapped[int]
    franchise_id: Mapped[int | None]
    product_id: Mapped[int | None]
    description: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[Decimal] = mapped_column(Numeric(10, 3))
    unit_price_cents: Mapped[int]
    discount_cents: Mapped[int] = mapped_column(server_default="0")
    vat_rate_bp: Mapped[int]
    line_excl_cents: Mapped[int]
    line_vat_cents: Mapped[int]
    line_incl_cents: Mapped[int]
    # The visit's record this line bills (see INVOICE_LINE_SOURCES), so a drafted invoice shows what it covers.
    source: Mapped[str | None] = mapped_column(choice(*INVOICE_LINE_SOURCES, name="invoice_line_source"))
    source_id: Mapped[int | None]
    # A billable item of the visit without a price in the practice's list: it stays on the draft at € 0 and
    # blocks issuing until someone prices or removes it, so it is never dropped unseen.
    needs_price: Mapped[bool] = mapped_column(server_default="false")


class InvoiceLineRemoval(Base):
    """A line taken off a draft, with the reason given: what was billable and why it was not billed."""

    __tablename__ = "invoice_line_removal"
    __table_args__ = (
        ForeignKeyConstraint(
            ["practice_id", "invoice_id"], ["invoice.practice_id", "invoice.id"], ondelete="CASCADE"
        ),
        CheckConstraint("length(btrim(reason)) > 0", name="reason"),
        Index("ix_invoice_line_removal_invoice", "practice_id", "invoice_id"),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    invoice_id: Mapped[int]
    product_id: Mapped[int | None]
    description: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[Decimal] = mapped_column(Numeric(10, 3))
    unit_price_cents: Mapped[int]
    source: Mapped[str | None] = mapped_column(
        choice(*INVOICE_LINE_SOURCES, name="invoice_line_removal_source")
    )
    source_id: Mapped[int | None]
    reason: Mapped[str] = mapped_column(String(200))
    removed_by: Mapped[int | None]
    removed_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class InvoiceSeries(Base):
    """The practice's invoice number series and its counter: ``{prefix}{year}-{seq}`` (per year) or
    ``{prefix}{seq}``, ``seq`` zero-padded to ``width``. Issuing locks this row, so the numbers of a series are
    unique and gapless however many issue at once (a rolled-back issue rolls the counter back too)."""

    __tablename__ = "invoice_series"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["tenant.id"]),
        CheckConstraint("width BETWEEN 1 AND 12", name="width"),
        CheckConstraint("last_number >= 0", name="last_number"),
        CheckConstraint("per_year = (year IS NOT NULL)", name="year"),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    prefix: Mapped[str] = mapped_column(String(20), server_default="")
    per_year: Mapped[bool]
    width: Mapped[int]
    year: Mapped[int | None]
    last_number: Mapped[int]
    origin: Mapped[str] = mapped_column(choice(*SERIES_ORIGINS, name="invoice_series_origin"))
    created_by: Mapped[int | None]
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class Payment(MirroredWrites, Base):
    __tablename__ = "payment"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id", "invoice_id"], ["invoice.practice_id", "invoice.id"]),
        ForeignKeyConstraint(["practice_id", "client_id"], ["client.practice_id", "client.id"]),
        UniqueConstraint("practice_id", "animana_id"),
        CheckConstraint("amount_cents <> 0", name="nonzero"),
        Index("ix_payment_invoice", "practice_id", "invoice_id"),
        Index("ix_payment_client", "practice_id", "client_id"),  # a merge's lookup (migration 0450)
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    animana_id: Mapped[str | None] = mapped_column(String(64))
    invoice_id: Mapped[int | None]
    client_id: Mapped[int]
    method: Mapped[str] = mapped_column(choice(*PAYMENT_METHODS, name="payment_method"))
    amount_cents: Mapped[int]
    paid_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    received_by: Mapped[int | None]
