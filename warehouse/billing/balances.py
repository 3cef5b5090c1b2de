"""Outstanding balances: what each client owes (issued invoices and credit notes minus payments), for every
client of the visible practices or for one."""

from __future__ import annotations

from dataclasses import dataclass

import polars as pl
from sqlalchemy import func, select, text
from sqlalchemy.orm import Session

from warehouse.schema.billing import Invoice, Payment
from warehouse.schema.clients import Client

# Drafts and voided invoices are not owed; credit notes are invoices with negative totals.
OWED_STATUSES = ("issued", "paid", "credited")


def client_balances(session: Session, *, only_outstanding: bool = True) -> pl.DataFrame:
    """One row per client of the visible practices: invoiced, paid and outstanding amounts in cents."""
    invoiced = (
        select(Invoice.practice_id, Invoice.client_id, func.sum(Invoice.total_incl_cents).label("invoiced"))
        .where(Invoice.status.in_(OWED_STATUSES))
        .group_by(Invoice.practice_id, Invoice.client_id)
        .subquery()
    )
    paid = (
        select(Payment.practice_id, Payment.client_id, func.sum(Payment.amount_cents).label("paid"))
        .group_by(Payment.practice_id, Payment.client_id)
        .subquery()
    )
    outstanding = func.coalesce(invoiced.c.invoiced, 0) - func.coalesce(paid.c.paid, 0)
    query = (
        select(
            Client.practice_id,
            Client.id.label("client_id"),
            Client.last_name,
            func.coalesce(invoiced.c.invoiced, 0).label("invoiced_cents"),
            func.coalesce(paid.c.paid, 0).label("paid_cents"),
            outstanding.label("outstanding_cents"),
        )  # fmt: skip
        .outerjoin(
            invoiced, (invoiced.c.practice_id == Client.practice_id) & (invoiced.c.client_id == Client.id)
        )
        .outerjoin(paid, (paid.c.practice_id == Client.practice_id) & (paid.c.client_id == Client.id))
        .order_by(outstanding.desc(), Client.last_name)
    )
    if only_outstanding:
        query = query.where(outstanding != 0)
    rows = session.execute(query).all()
    schema = {"practice_id": pl.Int64, "client_id": pl.Int64, "last_name": pl.String, "invoiced_cents": pl.Int64,
              "paid_cents": pl.Int64, "outstanding_cents": pl.Int64}  # fmt: skip
    return pl.DataFrame([tuple(r) for r in rows], schema=schema, orient="row")


@dataclass(frozen=True)
class Balance:
    invoiced_cents: int
    paid_cents: int

    @property
    def outstanding_cents(self) -> int:
        return self.invoiced_cents - self.paid_cents


def client_balance(session: Session, practice_id: int, client_id: int) -> Balance:
    """What the client owes: the same rule as ``client_balances`` (issued, paid and credited invoices, credit
    notes negative, minus payments), for one client."""
    row = session.execute(
        text(
            """SELECT (SELECT coalesce(sum(total_incl_cents), 0) FROM invoice
                       WHERE practice_id = :p AND client_id = :c AND status = ANY(:owed)) AS invoiced,
                      (SELECT coalesce(sum(amount_cents), 0) FROM payment
                       WHERE practice_id = :p AND client_id = :c) AS paid"""
        ),
        {"p": practice_id, "c": client_id, "owed": list(OWED_STATUSES)},
    ).one()
    return Balance(int(row.invoiced), int(row.paid))


def client_outstanding(session: Session, practice_id: int, client_id: int) -> int:
    return client_balance(session, practice_id, client_id).outstanding_cents
