"""Model artefacts (franchise) and the suggestion log (practice), both under RLS.

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-24
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | Sequence[str] | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRACTICE_TABLES = ("suggestion_log",)
FRANCHISE_TABLES = ("model_artifact",)


# This revision's own copies of the tenancy building blocks: a migration keeps the SQL it ran (README.md).
def _protect_franchise_table(table: str) -> str:
    """Franchise-level shared resources: visible and writable for the franchises of the allowed practices."""
    return f"""
    ALTER TABLE "{table}" ENABLE ROW LEVEL SECURITY;
    ALTER TABLE "{table}" FORCE ROW LEVEL SECURITY;
    CREATE POLICY franchise_isolation ON "{table}"
      USING (franchise_id = ANY (app_franchise_ids()))
      WITH CHECK (franchise_id = ANY (app_franchise_ids()));
    GRANT SELECT, INSERT, UPDATE, DELETE ON "{table}" TO vetconnect_app;
    GRANT SELECT, INSERT, UPDATE, DELETE ON "{table}" TO vetconnect_system;
    """


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


def _choice(*values: str, name: str) -> sa.Enum:
    return sa.Enum(*values, name=name, native_enum=False, create_constraint=True, length=32)


def upgrade() -> None:
    op.create_table(
        "model_artifact",
        sa.Column("franchise_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column(
            "status",
            _choice("candidate", "promoted", "rejected", "retired", name="model_artifact_status"),
            nullable=False,
        ),
        sa.Column("data_from", sa.DateTime(timezone=True), nullable=True),
        sa.Column("data_to", sa.DateTime(timezone=True), nullable=True),
        sa.Column("metrics", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("manifest", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("code_version", sa.String(length=64), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("blob", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("decided_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("decision", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name=op.f("ck_model_artifact_sha256_hex")),
        sa.ForeignKeyConstraint(
            ["franchise_id"], ["tenant.id"], name=op.f("fk_model_artifact_franchise_id_tenant")
        ),
        sa.PrimaryKeyConstraint("franchise_id", "id", name=op.f("pk_model_artifact")),
        sa.UniqueConstraint(
            "franchise_id", "kind", "version", name=op.f("uq_model_artifact_franchise_id_kind_version")
        ),
        info={"tenancy": "franchise"},
    )
    op.create_index(
        "ux_model_artifact_promoted", "model_artifact", ["franchise_id", "kind"], unique=True,
        postgresql_where=sa.text("status = 'promoted'"),
    )  # fmt: skip
    op.create_table(
        "suggestion_log",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("shown_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("patient_id", sa.BigInteger(), nullable=True),
        sa.Column("appointment_id", sa.BigInteger(), nullable=True),
        sa.Column("model_artifact_id", sa.BigInteger(), nullable=True),
        sa.Column("activity", sa.String(length=64), nullable=False),
        sa.Column("action", sa.String(length=64), nullable=False),
        sa.Column("rank", sa.BigInteger(), nullable=False),
        sa.Column("score", sa.Float(), nullable=False),
        sa.Column(
            "outcome",
            _choice("shown", "accepted", "dismissed", name="suggestion_outcome"),
            server_default="shown",
            nullable=False,
        ),
        sa.Column("outcome_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("rank BETWEEN 1 AND 10", name=op.f("ck_suggestion_log_rank")),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["tenant.id"], name=op.f("fk_suggestion_log_practice_id_tenant")
        ),
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_suggestion_log")),
        info={"tenancy": "practice"},
    )
    op.create_index("ix_suggestion_log_shown", "suggestion_log", ["practice_id", "shown_at"], unique=False)
    for table in FRANCHISE_TABLES:
        op.execute(_protect_franchise_table(table))
    for table in PRACTICE_TABLES:
        op.execute(_protect_practice_table(table))


def downgrade() -> None:
    for table in (*PRACTICE_TABLES, *FRANCHISE_TABLES):
        op.execute(f'REVOKE ALL ON "{table}" FROM vetconnect_app, vetconnect_system')
    op.drop_index("ix_suggestion_log_shown", table_name="suggestion_log")
    op.drop_table("suggestion_log")
    op.drop_index("ux_model_artifact_promoted", table_name="model_artifact")
    op.drop_table("model_artifact")
