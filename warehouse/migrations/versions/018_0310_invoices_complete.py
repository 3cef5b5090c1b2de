"""Invoices that bill the whole visit, number in the practice's own series, and carry what a Dutch invoice must.

- ``tenant``: the practice's address, postcode, VAT number (btw-nummer), Chamber of Commerce (KvK) number and
  IBAN; issuing an invoice refuses while one is missing.
- ``product.vaccine_protocol_id``: the item that prices a vaccination with that vaccine protocol (not named
  ``protocol_id``: the version history's row key of a shared resource is made of its ``*_id`` key columns).
- ``invoice_line.source``/``source_id``: the visit record a drafted line bills; ``needs_price``: a billable
  item without a price, kept on the draft (at € 0) until it is priced or removed, never dropped unseen.
- ``invoice_line_removal``: a line taken off a draft and the reason given (RLS, audited).
- ``invoice_series``: one row per practice, the number series and its counter. A row, not a sequence: a
  sequence never rolls back, so a failed issue would leave a gap; the row's lock serialises issuers of one
  practice only, and its counter rolls back with the issue (RLS, audited).

Revision ID: 0310
Revises: 0307
Create Date: 2026-12-01
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0310"
down_revision: str | Sequence[str] | None = "0307"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRACTICE_TABLES = ("invoice_line_removal", "invoice_series")
TENANT_COLUMNS = (
    ("address", 200), ("postcode", 10), ("vat_number", 14), ("kvk_number", 8), ("iban", 34),
)  # fmt: skip
_SOURCES = "('consult', 'vaccination', 'prescription', 'lab_order')"


# This revision's own copies of the tenancy building blocks: a migration keeps the SQL it ran (README.md).
def _audit_writes(table: str) -> str:
    """Statement-level triggers with transition tables: one audit entry per practice per statement."""
    events = (
        ("INSERT", "NEW TABLE AS changed_rows"),
        ("UPDATE", "NEW TABLE AS changed_rows"),
        ("DELETE", "OLD TABLE AS changed_rows"),
    )
    return "\n".join(
        f'CREATE TRIGGER audit_{event.lower()} AFTER {event} ON "{table}" REFERENCING {ref} '
        "FOR EACH STATEMENT EXECUTE FUNCTION audit_statement();"
        for event, ref in events
    )


def _protect_practice_table(table: str) -> str:
    """RLS enabled and forced; rows visible and writable only for practices in ``app.practice_ids``."""
    return f"""
    ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY;
    ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY;
    CREATE POLICY tenant_isolation ON "{table}"
      USING (practice_id = ANY (app_practice_ids()))
      WITH CHECK (practice_id = ANY (app_practice_ids()));
    GRANT SELECT, INSERT, UPDATE, DELETE ON "{table}" TO vetconnect_app;
    GRANT SELECT, INSERT, UPDATE, DELETE ON "{table}" TO vetconnect_system;
    """


def _source(name: str) -> list[sa.Column | sa.CheckConstraint]:
    return [
        sa.Column("source", sa.String(32), nullable=True),
        sa.Column("source_id", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(f"source IN {_SOURCES}", name=op.f(f"ck_{name}_{name}_source")),
    ]


def upgrade() -> None:
    for column, length in TENANT_COLUMNS:
        op.add_column("tenant", sa.Column(column, sa.String(length), nullable=True))
    op.add_column("product", sa.Column("vaccine_protocol_id", sa.BigInteger(), nullable=True))
    op.create_foreign_key(
        "fk_product_franchise_id_vaccine_protocol_id_vaccine_protocol", "product", "vaccine_protocol",
        ["franchise_id", "vaccine_protocol_id"], ["franchise_id", "id"],
    )  # fmt: skip
    op.add_column("invoice_line", sa.Column("source", sa.String(32), nullable=True))
    op.add_column("invoice_line", sa.Column("source_id", sa.BigInteger(), nullable=True))
    op.add_column(
        "invoice_line", sa.Column("needs_price", sa.Boolean(), server_default="false", nullable=False)
    )
    op.create_check_constraint("ck_invoice_line_invoice_line_source", "invoice_line", f"source IN {_SOURCES}")
    op.create_table(
        "invoice_line_removal",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(), nullable=False),
        sa.Column("invoice_id", sa.BigInteger(), nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=True),
        sa.Column("description", sa.String(200), nullable=False),
        sa.Column("quantity", sa.Numeric(10, 3), nullable=False),
        sa.Column("unit_price_cents", sa.BigInteger(), nullable=False),
        *_source("invoice_line_removal"),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("removed_by", sa.BigInteger(), nullable=True),
        sa.Column("removed_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("length(btrim(reason)) > 0", name=op.f("ck_invoice_line_removal_reason")),
        sa.ForeignKeyConstraint(
            ["practice_id", "invoice_id"],
            ["invoice.practice_id", "invoice.id"],
            ondelete="CASCADE",
            name=op.f("fk_invoice_line_removal_practice_id_invoice_id_invoice"),
        ),  # fmt: skip
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_invoice_line_removal")),
    )
    op.create_index("ix_invoice_line_removal_invoice", "invoice_line_removal", ["practice_id", "invoice_id"])
    op.create_table(
        "invoice_series",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("prefix", sa.String(20), server_default="", nullable=False),
        sa.Column("per_year", sa.Boolean(), nullable=False),
        sa.Column("width", sa.BigInteger(), nullable=False),
        sa.Column("year", sa.BigInteger(), nullable=True),
        sa.Column("last_number", sa.BigInteger(), nullable=False),
        sa.Column("origin", sa.String(32), nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.func.now(), nullable=False),
        sa.CheckConstraint("width BETWEEN 1 AND 12", name=op.f("ck_invoice_series_width")),
        sa.CheckConstraint("last_number >= 0", name=op.f("ck_invoice_series_last_number")),
        sa.CheckConstraint("per_year = (year IS NOT NULL)", name=op.f("ck_invoice_series_year")),
        sa.CheckConstraint(
            "origin IN ('detected', 'default', 'configured')",
            name=op.f("ck_invoice_series_invoice_series_origin"),
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["tenant.id"], name=op.f("fk_invoice_series_practice_id_tenant")
        ),
        sa.PrimaryKeyConstraint("practice_id", name=op.f("pk_invoice_series")),
    )
    for table in PRACTICE_TABLES:
        op.execute(_protect_practice_table(table))
        op.execute(_audit_writes(table))


def downgrade() -> None:
    for table in PRACTICE_TABLES:
        op.drop_table(table)  # with its policy, triggers and index
    op.drop_constraint("ck_invoice_line_invoice_line_source", "invoice_line", type_="check")
    for column in ("needs_price", "source_id", "source"):
        op.drop_column("invoice_line", column)
    op.drop_constraint(
        "fk_product_franchise_id_vaccine_protocol_id_vaccine_protocol", "product", type_="foreignkey"
    )
    op.drop_column("product", "vaccine_protocol_id")
    for column, _ in TENANT_COLUMNS:
        op.drop_column("tenant", column)
