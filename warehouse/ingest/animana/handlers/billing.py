"""Bespoke handlers for billing: invoices with their lines, and payments.

Why not a `plan.TableLoad`: an invoice replaces its lines (a child table keyed by the invoice) with every page,
and a line resolves its product by the franchise's code; a payment needs either its invoice or its client, and
takes the client from the invoice when Animana leaves it out.
"""

from __future__ import annotations

import psycopg
from psycopg import sql

from warehouse.ingest.animana.quarantine import quarantine_unresolved, unknown_parent
from warehouse.ingest.animana.rows import LoadTarget
from warehouse.ingest.animana.staging import Staging, stage
from warehouse.ingest.animana.statements import existing, missing, params, ref, version, write, write_batch

STG_INVOICE = Staging(
    "stg_invoice",
    (
        "animana_id text", "client_animana_id text", "number text", "issued_on date", "status text",
        "total_excl_cents bigint", "vat_cents bigint", "total_incl_cents bigint", "updated_at timestamptz",
    ),
)  # fmt: skip
STG_INVOICE_LINE = Staging(
    "stg_invoice_line",
    (
        "animana_id text", "invoice_animana_id text", "product_code text", "description text",
        "quantity numeric", "unit_price_cents bigint", "vat_rate_bp bigint", "line_excl_cents bigint",
        "line_vat_cents bigint", "line_incl_cents bigint",
    ),
)  # fmt: skip
STG_PAYMENT = Staging(
    "stg_payment",
    (
        "animana_id text", "invoice_animana_id text", "client_animana_id text", "method text",
        "amount_cents bigint", "paid_at timestamptz", "updated_at timestamptz",
    ),
)  # fmt: skip


def load_invoices(
    cur: psycopg.Cursor,
    target: LoadTarget,
    resource: str,
    rows: list[tuple],
    children: dict[str, list[tuple]],
) -> tuple[int, int, int]:
    stage(cur, STG_INVOICE, rows)
    known = existing(cur, "invoice", target, STG_INVOICE.name)
    quarantined = quarantine_unresolved(
        cur, target, resource, STG_INVOICE.name, missing("client", "s.client_animana_id"),
        unknown_parent("unknown relation", "client_animana_id"),
    )  # fmt: skip
    select = sql.SQL(
        "SELECT %(pid)s, s.animana_id, s.number, c.id, s.issued_on, s.status, s.total_excl_cents, "
        "s.vat_cents, s.total_incl_cents, {} FROM stg_invoice s {}"
    ).format(version("s.updated_at"), ref("client", "s.client_animana_id", "c", required=True))
    columns = [
        "number",
        "client_id",
        "issued_on",
        "status",
        "total_excl_cents",
        "vat_cents",
        "total_incl_cents",
        "animana_version",
    ]
    counts = write(cur, "invoice", columns, select, params(target), new=not known)
    lines = children.get("lines", [])
    stage(cur, STG_INVOICE_LINE, lines)
    values = params(target, parents=known, keep=[x[0] for x in lines])
    if known:
        cur.execute(
            "DELETE FROM invoice_line l USING invoice i WHERE l.practice_id = %(pid)s "
            "AND i.practice_id = %(pid)s AND i.animana_id = ANY(%(parents)s) AND l.invoice_id = i.id "
            "AND NOT (l.animana_id = ANY(%(keep)s))",
            values,
        )
    # A line is keyed by its invoice's id: new invoices have none yet.
    write(
        cur,
        "invoice_line",
        [
            "invoice_id",
            "franchise_id",
            "product_id",
            "description",
            "quantity",
            "unit_price_cents",
            "vat_rate_bp",
            "line_excl_cents",
            "line_vat_cents",
            "line_incl_cents",
        ],  # fmt: skip
        sql.SQL(
            "SELECT %(pid)s, x.animana_id, i.id, CASE WHEN pr.id IS NULL THEN NULL ELSE %(fid)s END, pr.id, "
            "x.description, x.quantity, x.unit_price_cents, x.vat_rate_bp, x.line_excl_cents, "
            "x.line_vat_cents, x.line_incl_cents FROM stg_invoice_line x {} "
            "LEFT JOIN product pr ON pr.franchise_id = %(fid)s AND pr.code = x.product_code"
        ).format(ref("invoice", "x.invoice_animana_id", "i", required=True)),
        values,
        new=not known,
    )
    return (*counts, quarantined)


def load_payments(
    cur: psycopg.Cursor,
    target: LoadTarget,
    resource: str,
    rows: list[tuple],
    children: dict[str, list[tuple]],
) -> tuple[int, int, int]:
    stage(cur, STG_PAYMENT, rows)
    quarantined = quarantine_unresolved(
        cur, target, resource, STG_PAYMENT.name,
        sql.SQL("{} AND {}").format(
            missing("client", "s.client_animana_id"), missing("invoice", "s.invoice_animana_id")
        ),
        sql.SQL(
            "'unknown relation and invoice ' || coalesce(s.client_animana_id, '-') || ' / ' "
            "|| coalesce(s.invoice_animana_id, '-')"
        ),
    )  # fmt: skip
    # The invoice's client_id is read too: a payment without its own relation takes the invoice's.
    select = sql.SQL(
        "SELECT %(pid)s, s.animana_id, i.id, coalesce(c.id, i.client_id), s.method, s.amount_cents, s.paid_at, "
        "{version} FROM stg_payment s {invoice} {client} WHERE coalesce(c.id, i.client_id) IS NOT NULL"
    ).format(
        invoice=ref("invoice", "s.invoice_animana_id", "i"),
        client=ref("client", "s.client_animana_id", "c"),
        version=version("s.updated_at"),
    )
    columns = ["invoice_id", "client_id", "method", "amount_cents", "paid_at", "animana_version"]
    return (*write_batch(cur, "payment", columns, select, target, STG_PAYMENT.name), quarantined)
