"""When each practice's marts were last recomputed (``mart_refresh``), so the dashboards can say "as of" and
know when the figures they keep in memory are out of date.

A refresh writes the stamp in the transaction that recomputes the marts, whoever runs it (the Dagster schedule
or a dashboard that finds the practice's change queue non-empty), so a reader comparing stamps sees exactly
when the marts changed.

Revision ID: 0340
Revises: 0330
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0340"
down_revision: str | Sequence[str] | None = "0330"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRACTICE_TABLES = ("mart_refresh",)


# This revision's own copies of the tenancy building blocks: a migration keeps the SQL it ran (README.md).
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


def upgrade() -> None:
    op.create_table(
        "mart_refresh",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "refreshed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["tenant.id"], name=op.f("fk_mart_refresh_practice_id_tenant")
        ),
        sa.PrimaryKeyConstraint("practice_id", name=op.f("pk_mart_refresh")),
        info={"tenancy": "practice"},
    )
    for table in PRACTICE_TABLES:
        op.execute(_protect_practice_table(table))


def downgrade() -> None:
    op.execute("REVOKE ALL ON mart_refresh FROM vetconnect_app, vetconnect_system")
    op.drop_table("mart_refresh")
