"""Ingestion: raw device messages, imaging studies, encrypted document bytes, sync runs, quarantine.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0003"
down_revision: str | Sequence[str] | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PRACTICE_TABLES = ("device_message", "imaging_study", "document_content", "sync_run", "ingest_quarantine")
# Raw messages and sync bookkeeping are operational logs; the rows they produce are audited where they land.
NOT_AUDITED = ("device_message", "sync_run")


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


def upgrade() -> None:
    op.create_table(
        "device_message",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.Column("source", sa.String(length=200), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=True),
        sa.Column("detected_format", sa.String(length=16), nullable=True),
        sa.Column("sender", sa.String(length=200), nullable=True),
        sa.Column("control_id", sa.String(length=200), nullable=True),
        sa.Column("dedup_key", sa.String(length=420), nullable=True),
        sa.Column("duplicate_of", sa.BigInteger(), nullable=True),
        sa.Column("raw", sa.LargeBinary(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "received",
                "ingested",
                "inbox",
                "duplicate",
                "resolved",
                name="device_message_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("inbox_reason", sa.String(length=64), nullable=True),
        sa.Column("inbox_detail", sa.Text(), nullable=True),
        sa.Column("patient_id", sa.BigInteger(), nullable=True),
        sa.Column("observation_count", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("attempts", sa.BigInteger(), server_default="1", nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("resolved_by", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["tenant.id"], name=op.f("fk_device_message_practice_id_tenant")
        ),
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_device_message")),
        info={"tenancy": "practice", "partitioned": True},
        postgresql_partition_by="LIST (practice_id)",
    )
    op.create_index(
        "ix_device_message_status", "device_message", ["practice_id", "status", "received_at"], unique=False
    )
    op.create_index(
        "uq_device_message_dedup",
        "device_message",
        ["practice_id", "dedup_key"],
        unique=True,
        postgresql_where=sa.text("dedup_key IS NOT NULL"),
    )
    op.create_table(
        "ingest_quarantine",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("resource", sa.String(length=64), nullable=False),
        sa.Column("external_id", sa.String(length=64), nullable=True),
        sa.Column("raw", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("sync_run_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "received_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["tenant.id"], name=op.f("fk_ingest_quarantine_practice_id_tenant")
        ),
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_ingest_quarantine")),
        info={"tenancy": "practice"},
    )
    op.create_index(
        "ix_ingest_quarantine_open",
        "ingest_quarantine",
        ["practice_id", "source", "resource", "received_at"],
        unique=False,
    )
    op.create_table(
        "sync_run",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column(
            "mode",
            sa.Enum(
                "incremental", "full", name="sync_mode", native_enum=False, create_constraint=True, length=32
            ),
            nullable=False,
        ),
        sa.Column(
            "started_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.Column("finished_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "running",
                "succeeded",
                "failed",
                name="sync_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="running",
            nullable=False,
        ),
        sa.Column("counts", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("error", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["practice_id"], ["tenant.id"], name=op.f("fk_sync_run_practice_id_tenant")),
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_sync_run")),
        info={"tenancy": "practice"},
    )
    op.create_index("ix_sync_run_started", "sync_run", ["practice_id", "source", "started_at"], unique=False)
    op.create_table(
        "document_content",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("document_id", sa.BigInteger(), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary(), nullable=False),
        sa.Column("key_version", sa.BigInteger(), server_default="1", nullable=False),
        sa.ForeignKeyConstraint(
            ["practice_id", "document_id"],
            ["document.practice_id", "document.id"],
            name=op.f("fk_document_content_practice_id_document_id_document"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("practice_id", "document_id", name=op.f("pk_document_content")),
        info={"tenancy": "practice"},
    )
    op.create_table(
        "imaging_study",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=True),
        sa.Column("device_message_id", sa.BigInteger(), nullable=True),
        sa.Column("document_id", sa.BigInteger(), nullable=True),
        sa.Column("study_uid", sa.String(length=64), nullable=True),
        sa.Column("series_uid", sa.String(length=64), nullable=True),
        sa.Column("modality", sa.String(length=16), nullable=True),
        sa.Column("body_part", sa.String(length=64), nullable=True),
        sa.Column("study_date", sa.Date(), nullable=True),
        sa.Column("description", sa.String(length=200), nullable=True),
        sa.Column("animal_id_text", sa.String(length=64), nullable=True),
        sa.Column("animal_name", sa.String(length=100), nullable=True),
        sa.Column("species", sa.String(length=64), nullable=True),
        sa.Column("breed", sa.String(length=64), nullable=True),
        sa.Column("preview_png", sa.LargeBinary(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["practice_id", "document_id"],
            ["document.practice_id", "document.id"],
            name=op.f("fk_imaging_study_practice_id_document_id_document"),
        ),
        sa.ForeignKeyConstraint(
            ["practice_id", "patient_id"],
            ["patient.practice_id", "patient.id"],
            name=op.f("fk_imaging_study_practice_id_patient_id_patient"),
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["tenant.id"], name=op.f("fk_imaging_study_practice_id_tenant")
        ),
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_imaging_study")),
        info={"tenancy": "practice"},
    )
    op.create_index("ix_imaging_study_patient", "imaging_study", ["practice_id", "patient_id"], unique=False)
    op.create_index("ix_imaging_study_uid", "imaging_study", ["practice_id", "study_uid"], unique=False)
    op.add_column("diagnosis", sa.Column("animana_id", sa.String(length=64), nullable=True))
    op.create_unique_constraint(
        op.f("uq_diagnosis_practice_id_animana_id"), "diagnosis", ["practice_id", "animana_id"]
    )
    op.alter_column(
        "lab_observation",
        "ref_text",
        existing_type=sa.VARCHAR(length=64),
        type_=sa.Text(),
        existing_nullable=True,
    )
    op.alter_column(
        "lab_observation",
        "abnormal_flag",
        existing_type=sa.VARCHAR(length=8),
        type_=sa.String(length=32),
        existing_nullable=True,
    )
    op.add_column("lab_order", sa.Column("animana_id", sa.String(length=64), nullable=True))
    op.create_unique_constraint(
        op.f("uq_lab_order_practice_id_animana_id"), "lab_order", ["practice_id", "animana_id"]
    )
    op.add_column("weight_measurement", sa.Column("animana_id", sa.String(length=64), nullable=True))
    op.create_unique_constraint(
        op.f("uq_weight_measurement_practice_id_animana_id"),
        "weight_measurement",
        ["practice_id", "animana_id"],
    )

    for table in PRACTICE_TABLES:
        op.execute(_protect_practice_table(table))
        if table not in NOT_AUDITED:
            op.execute(_audit_writes(table))
    op.execute("GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO vetconnect_app, vetconnect_system")
    # Practices onboarded before this migration get their device_message partition now.
    op.execute("SELECT onboard_practice(id) FROM tenant WHERE kind = 'practice' AND offboarded_at IS NULL")


def downgrade() -> None:
    for table in PRACTICE_TABLES:
        op.execute(f'DROP TRIGGER IF EXISTS audit_insert ON "{table}"')
        op.execute(f'DROP TRIGGER IF EXISTS audit_update ON "{table}"')
        op.execute(f'DROP TRIGGER IF EXISTS audit_delete ON "{table}"')
    op.drop_constraint(
        op.f("uq_weight_measurement_practice_id_animana_id"), "weight_measurement", type_="unique"
    )
    op.drop_column("weight_measurement", "animana_id")
    op.drop_constraint(op.f("uq_lab_order_practice_id_animana_id"), "lab_order", type_="unique")
    op.drop_column("lab_order", "animana_id")
    op.alter_column(
        "lab_observation",
        "abnormal_flag",
        existing_type=sa.String(length=32),
        type_=sa.VARCHAR(length=8),
        existing_nullable=True,
    )
    op.alter_column(
        "lab_observation",
        "ref_text",
        existing_type=sa.Text(),
        type_=sa.VARCHAR(length=64),
        existing_nullable=True,
    )
    op.drop_constraint(op.f("uq_diagnosis_practice_id_animana_id"), "diagnosis", type_="unique")
    op.drop_column("diagnosis", "animana_id")
    op.drop_index("ix_imaging_study_uid", table_name="imaging_study")
    op.drop_index("ix_imaging_study_patient", table_name="imaging_study")
    op.drop_table("imaging_study")
    op.drop_table("document_content")
    op.drop_index("ix_sync_run_started", table_name="sync_run")
    op.drop_table("sync_run")
    op.drop_index("ix_ingest_quarantine_open", table_name="ingest_quarantine")
    op.drop_table("ingest_quarantine")
    op.drop_index(
        "uq_device_message_dedup",
        table_name="device_message",
        postgresql_where=sa.text("dedup_key IS NOT NULL"),
    )
    op.drop_index("ix_device_message_status", table_name="device_message")
    op.drop_table("device_message")
