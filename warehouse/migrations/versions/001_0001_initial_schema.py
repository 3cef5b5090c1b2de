"""initial schema

Revision ID: 0001
Revises:
Create Date: 2026-11-23
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # btree_gist: exclusion constraints mixing "=" on ids with "&&" on time ranges; pg_trgm: fuzzy search.
    op.execute("CREATE EXTENSION IF NOT EXISTS btree_gist")
    op.execute("CREATE EXTENSION IF NOT EXISTS pg_trgm")
    op.create_table(
        "app_user",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("username", sa.String(length=64), nullable=False),
        sa.Column("full_name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=254), nullable=True),
        sa.Column("password_hash", sa.String(length=255), nullable=False),
        sa.Column("totp_secret_enc", sa.LargeBinary(), nullable=True),
        sa.Column("mfa_enabled", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("failed_logins", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_login_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column(
            "password_changed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.Column("is_active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_app_user")),
        sa.UniqueConstraint("username", name=op.f("uq_app_user_username")),
        info={"tenancy": "global"},
    )
    op.create_table(
        "system_access",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "occurred_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor_user_id", sa.BigInteger(), nullable=True),
        sa.Column("db_user", sa.String(length=64), server_default=sa.text("session_user"), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_system_access")),
        info={"tenancy": "global"},
    )
    op.create_table(
        "tenant",
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "franchise",
                "practice",
                "department",
                name="tenant_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("parent_id", sa.BigInteger(), nullable=True),
        sa.Column("franchise_id", sa.BigInteger(), nullable=False),
        sa.Column("practice_id", sa.BigInteger(), nullable=True),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("city", sa.String(length=100), nullable=True),
        sa.Column("timezone", sa.String(length=64), server_default="Europe/Amsterdam", nullable=False),
        sa.Column("animana_practice_id", sa.String(length=64), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("offboarded_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "(kind = 'franchise' AND parent_id IS NULL AND practice_id IS NULL AND franchise_id = id) OR (kind = 'practice' AND parent_id = franchise_id AND practice_id = id) OR (kind = 'department' AND parent_id = practice_id)",
            name=op.f("ck_tenant_hierarchy"),
        ),
        sa.ForeignKeyConstraint(["parent_id"], ["tenant.id"], name=op.f("fk_tenant_parent_id_tenant")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_tenant")),
        sa.UniqueConstraint("code", name=op.f("uq_tenant_code")),
        info={"tenancy": "global"},
    )
    op.create_index(op.f("ix_tenant_franchise_id"), "tenant", ["franchise_id"], unique=False)
    op.create_index(op.f("ix_tenant_practice_id"), "tenant", ["practice_id"], unique=False)
    op.create_table(
        "appointment_type",
        sa.Column("franchise_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("duration_minutes", sa.BigInteger(), nullable=False),
        sa.Column("colour", sa.String(length=7), server_default="#4C78A8", nullable=False),
        sa.Column("species", sa.ARRAY(sa.String(length=32)), nullable=True),
        sa.Column("requires_vet", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("updated_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("duration_minutes BETWEEN 5 AND 480", name=op.f("ck_appointment_type_duration")),
        sa.ForeignKeyConstraint(
            ["franchise_id"], ["tenant.id"], name=op.f("fk_appointment_type_franchise_id_tenant")
        ),
        sa.PrimaryKeyConstraint("franchise_id", "id", name=op.f("pk_appointment_type")),
        sa.UniqueConstraint("franchise_id", "code", name=op.f("uq_appointment_type_franchise_id_code")),
        info={"tenancy": "franchise"},
    )
    op.create_table(
        "audit_chain_head",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["tenant.id"], name=op.f("fk_audit_chain_head_practice_id_tenant")
        ),
        sa.PrimaryKeyConstraint("practice_id", name=op.f("pk_audit_chain_head")),
        info={"tenancy": "practice"},
    )
    op.create_table(
        "audit_log",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("seq", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column(
            "occurred_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.Column("actor_user_id", sa.BigInteger(), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("entity", sa.String(length=64), nullable=False),
        sa.Column("entity_ids", postgresql.ARRAY(sa.BigInteger()), nullable=True),
        sa.Column("detail", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.Column("prev_hash", sa.String(length=64), nullable=False),
        sa.Column("hash", sa.String(length=64), nullable=False),
        sa.ForeignKeyConstraint(["practice_id"], ["tenant.id"], name=op.f("fk_audit_log_practice_id_tenant")),
        sa.PrimaryKeyConstraint("practice_id", "seq", name=op.f("pk_audit_log")),
        info={"tenancy": "practice", "partitioned": True},
        postgresql_partition_by="LIST (practice_id)",
    )
    op.create_index("ix_audit_entity", "audit_log", ["practice_id", "entity", "occurred_at"], unique=False)
    op.create_table(
        "client",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("animana_id", sa.String(length=64), nullable=True),
        sa.Column("title", sa.String(length=20), nullable=True),
        sa.Column("initials", sa.String(length=20), nullable=True),
        sa.Column("first_name", sa.String(length=100), nullable=True),
        sa.Column("last_name", sa.String(length=150), nullable=False),
        sa.Column("postcode", sa.String(length=10), nullable=True),
        sa.Column("city", sa.String(length=100), nullable=True),
        sa.Column("email_enc", sa.LargeBinary(), nullable=True),
        sa.Column("phone_enc", sa.LargeBinary(), nullable=True),
        sa.Column("address_enc", sa.LargeBinary(), nullable=True),
        sa.Column("iban_enc", sa.LargeBinary(), nullable=True),
        sa.Column("email_bidx", sa.LargeBinary(), nullable=True),
        sa.Column("phone_bidx", sa.LargeBinary(), nullable=True),
        sa.Column("key_version", sa.BigInteger(), server_default="1", nullable=False),
        sa.Column("consent_reminders_email", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("consent_reminders_sms", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("consent_recorded_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["practice_id"], ["tenant.id"], name=op.f("fk_client_practice_id_tenant")),
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_client")),
        sa.UniqueConstraint("practice_id", "animana_id", name=op.f("uq_client_practice_id_animana_id")),
        info={"tenancy": "practice"},
    )
    op.create_index("ix_client_email_bidx", "client", ["practice_id", "email_bidx"], unique=False)
    op.create_index(
        "ix_client_name_trgm",
        "client",
        ["last_name"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"last_name": "gin_trgm_ops"},
    )
    op.create_index("ix_client_phone_bidx", "client", ["practice_id", "phone_bidx"], unique=False)
    op.create_table(
        "event",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("activity", sa.String(length=64), nullable=False),
        sa.Column("actor_user_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_role", sa.String(length=32), nullable=True),
        sa.Column("patient_id", sa.BigInteger(), nullable=True),
        sa.Column("appointment_id", sa.BigInteger(), nullable=True),
        sa.Column("client_id", sa.BigInteger(), nullable=True),
        sa.Column("attributes", postgresql.JSONB(astext_type=sa.Text()), server_default="{}", nullable=False),
        sa.ForeignKeyConstraint(["practice_id"], ["tenant.id"], name=op.f("fk_event_practice_id_tenant")),
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_event")),
        info={"tenancy": "practice", "partitioned": True},
        postgresql_partition_by="LIST (practice_id)",
    )
    op.create_index("ix_event_patient", "event", ["practice_id", "patient_id", "occurred_at"], unique=False)
    op.create_index("ix_event_time", "event", ["practice_id", "occurred_at"], unique=False)
    op.create_table(
        "membership",
        sa.Column("user_id", sa.BigInteger(), nullable=False),
        sa.Column("tenant_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "role",
            sa.Enum(
                "franchise_admin",
                "franchise_manager",
                "practice_manager",
                "veterinarian",
                "nurse",
                "receptionist",
                "analyst",
                name="role",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("granted_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenant.id"], name=op.f("fk_membership_tenant_id_tenant")),
        sa.ForeignKeyConstraint(
            ["user_id"], ["app_user.id"], name=op.f("fk_membership_user_id_app_user"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "tenant_id", "role", name=op.f("pk_membership")),
        info={"tenancy": "global"},
    )
    op.create_index("ix_membership_tenant", "membership", ["tenant_id"], unique=False)
    op.create_table(
        "patient",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("animana_id", sa.String(length=64), nullable=True),
        sa.Column("name", sa.String(length=100), nullable=False),
        sa.Column(
            "species",
            sa.Enum(
                "dog",
                "cat",
                "rabbit",
                "guinea_pig",
                "hamster",
                "rat",
                "ferret",
                "bird",
                "reptile",
                "horse",
                "goat",
                "sheep",
                "pig",
                "cattle",
                "other",
                name="species",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("breed", sa.String(length=100), nullable=True),
        sa.Column(
            "sex",
            sa.Enum(
                "male",
                "female",
                "male_neutered",
                "female_neutered",
                "unknown",
                name="sex",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="unknown",
            nullable=False,
        ),
        sa.Column("date_of_birth", sa.Date(), nullable=True),
        sa.Column("colour", sa.String(length=100), nullable=True),
        sa.Column("microchip", sa.String(length=15), nullable=True),
        sa.Column("deceased", sa.Boolean(), server_default="false", nullable=False),
        sa.Column("deceased_on", sa.Date(), nullable=True),
        sa.Column("insured_with", sa.String(length=100), nullable=True),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("microchip ~ '^[0-9]{15}$'", name=op.f("ck_patient_microchip_15_digits")),
        sa.CheckConstraint(
            "NOT deceased OR deceased_on IS NULL OR deceased_on >= date_of_birth",
            name=op.f("ck_patient_dates"),
        ),
        sa.ForeignKeyConstraint(["practice_id"], ["tenant.id"], name=op.f("fk_patient_practice_id_tenant")),
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_patient")),
        sa.UniqueConstraint("practice_id", "animana_id", name=op.f("uq_patient_practice_id_animana_id")),
        info={"tenancy": "practice"},
    )
    op.create_index("ix_patient_microchip", "patient", ["practice_id", "microchip"], unique=False)
    op.create_index(
        "ix_patient_name_trgm",
        "patient",
        ["name"],
        unique=False,
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.create_table(
        "practice_module_mode",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "module",
            sa.Enum(
                "clients",
                "agenda",
                "records",
                "invoices",
                name="module",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column(
            "mode",
            sa.Enum(
                "animana",
                "hybrid",
                "native",
                name="integration_mode",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="animana",
            nullable=False,
        ),
        sa.Column("changed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("changed_by", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["changed_by"], ["app_user.id"], name=op.f("fk_practice_module_mode_changed_by_app_user")
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["tenant.id"], name=op.f("fk_practice_module_mode_practice_id_tenant")
        ),
        sa.PrimaryKeyConstraint("practice_id", "module", name=op.f("pk_practice_module_mode")),
        info={"tenancy": "practice"},
    )
    op.create_table(
        "product",
        sa.Column("franchise_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column(
            "kind",
            sa.Enum(
                "service",
                "medicine",
                "food",
                "goods",
                "lab",
                name="product_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("price_cents", sa.BigInteger(), nullable=False),
        sa.Column("vat_rate_bp", sa.BigInteger(), nullable=False),
        sa.Column(
            "dispensing_category",
            sa.Enum(
                "VRIJ",
                "URA",
                "UDA",
                "UDD",
                name="product_dispensing_category",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=True,
        ),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("updated_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("price_cents >= 0", name=op.f("ck_product_price")),
        sa.CheckConstraint("vat_rate_bp IN (2100, 900, 0)", name=op.f("ck_product_vat_rate")),
        sa.ForeignKeyConstraint(["franchise_id"], ["tenant.id"], name=op.f("fk_product_franchise_id_tenant")),
        sa.PrimaryKeyConstraint("franchise_id", "id", name=op.f("pk_product")),
        sa.UniqueConstraint("franchise_id", "code", name=op.f("uq_product_franchise_id_code")),
        info={"tenancy": "franchise"},
    )
    op.create_table(
        "reminder_template",
        sa.Column("franchise_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column(
            "channel",
            sa.Enum(
                "email",
                "sms",
                "letter",
                name="reminder_channel",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("subject", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("days_before_due", sa.BigInteger(), server_default="14", nullable=False),
        sa.Column("updated_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["franchise_id"], ["tenant.id"], name=op.f("fk_reminder_template_franchise_id_tenant")
        ),
        sa.PrimaryKeyConstraint("franchise_id", "id", name=op.f("pk_reminder_template")),
        sa.UniqueConstraint("franchise_id", "code", name=op.f("uq_reminder_template_franchise_id_code")),
        info={"tenancy": "franchise"},
    )
    op.create_table(
        "resource",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("animana_id", sa.String(length=64), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "staff",
                "room",
                "equipment",
                name="resource_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("user_id", sa.BigInteger(), nullable=True),
        sa.Column("department_id", sa.BigInteger(), nullable=True),
        sa.Column("colour", sa.String(length=7), nullable=True),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.ForeignKeyConstraint(
            ["department_id"], ["tenant.id"], name=op.f("fk_resource_department_id_tenant")
        ),
        sa.ForeignKeyConstraint(["practice_id"], ["tenant.id"], name=op.f("fk_resource_practice_id_tenant")),
        sa.ForeignKeyConstraint(["user_id"], ["app_user.id"], name=op.f("fk_resource_user_id_app_user")),
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_resource")),
        sa.UniqueConstraint("practice_id", "animana_id", name=op.f("uq_resource_practice_id_animana_id")),
        info={"tenancy": "practice"},
    )
    op.create_table(
        "shared_resource_change",
        sa.Column("franchise_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("practice_id", sa.BigInteger(), nullable=True),
        sa.Column("table_name", sa.String(length=64), nullable=False),
        sa.Column("operation", sa.String(length=8), nullable=False),
        sa.Column("row_key", postgresql.JSONB(astext_type=sa.Text()), nullable=False),
        sa.Column("changed_by", sa.BigInteger(), nullable=True),
        sa.Column(
            "changed_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("clock_timestamp()"),
            nullable=False,
        ),
        sa.Column("old", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.Column("new", postgresql.JSONB(astext_type=sa.Text()), nullable=True),
        sa.ForeignKeyConstraint(
            ["franchise_id"], ["tenant.id"], name=op.f("fk_shared_resource_change_franchise_id_tenant")
        ),
        sa.PrimaryKeyConstraint("franchise_id", "id", name=op.f("pk_shared_resource_change")),
        info={"tenancy": "franchise"},
    )
    op.create_index(
        "ix_shared_change_row",
        "shared_resource_change",
        ["franchise_id", "table_name", "changed_at"],
        unique=False,
    )
    op.create_table(
        "sync_state",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("source", sa.String(length=32), nullable=False),
        sa.Column("resource", sa.String(length=64), nullable=False),
        sa.Column("cursor", sa.Text(), nullable=True),
        sa.Column("last_incremental_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_full_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["tenant.id"], name=op.f("fk_sync_state_practice_id_tenant")
        ),
        sa.PrimaryKeyConstraint("practice_id", "source", "resource", name=op.f("pk_sync_state")),
        info={"tenancy": "practice"},
    )
    op.create_table(
        "tenant_data_key",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("version", sa.BigInteger(), nullable=False),
        sa.Column("wrapped_key", sa.LargeBinary(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["tenant.id"], name=op.f("fk_tenant_data_key_practice_id_tenant")
        ),
        sa.PrimaryKeyConstraint("practice_id", "version", name=op.f("pk_tenant_data_key")),
        info={"tenancy": "practice"},
    )
    op.create_table(
        "vaccine_protocol",
        sa.Column("franchise_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("name", sa.String(length=120), nullable=False),
        sa.Column("species", sa.String(length=32), nullable=False),
        sa.Column("booster_interval_days", sa.BigInteger(), nullable=False),
        sa.Column("active", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("updated_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("booster_interval_days > 0", name=op.f("ck_vaccine_protocol_interval")),
        sa.ForeignKeyConstraint(
            ["franchise_id"], ["tenant.id"], name=op.f("fk_vaccine_protocol_franchise_id_tenant")
        ),
        sa.PrimaryKeyConstraint("franchise_id", "id", name=op.f("pk_vaccine_protocol")),
        sa.UniqueConstraint("franchise_id", "code", name=op.f("uq_vaccine_protocol_franchise_id_code")),
        info={"tenancy": "franchise"},
    )
    op.create_table(
        "appointment",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("animana_id", sa.String(length=64), nullable=True),
        sa.Column("resource_id", sa.BigInteger(), nullable=False),
        sa.Column("franchise_id", sa.BigInteger(), nullable=True),
        sa.Column("appointment_type_id", sa.BigInteger(), nullable=True),
        sa.Column("patient_id", sa.BigInteger(), nullable=True),
        sa.Column("client_id", sa.BigInteger(), nullable=True),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column(
            "status",
            sa.Enum(
                "booked",
                "checked_in",
                "in_consult",
                "done",
                "cancelled",
                "no_show",
                name="appointment_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("booked_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("booked_by", sa.BigInteger(), nullable=True),
        sa.Column("checked_in_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("consult_started_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("completed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancelled_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("cancel_reason", sa.Text(), nullable=True),
        sa.Column(
            "source",
            sa.Enum(
                "animana",
                "native",
                name="record_source",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="native",
            nullable=False,
        ),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        postgresql.ExcludeConstraint(
            (sa.column("practice_id"), "="),
            (sa.column("resource_id"), "="),
            (sa.text("tstzrange(starts_at, ends_at, '[)')"), "&&"),
            where=sa.text("status <> 'cancelled'"),
            using="gist",
            name="no_double_booking",
        ),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_appointment_positive_length")),
        sa.ForeignKeyConstraint(
            ["franchise_id", "appointment_type_id"],
            ["appointment_type.franchise_id", "appointment_type.id"],
            name=op.f("fk_appointment_franchise_id_appointment_type_id_appointment_type"),
        ),
        sa.ForeignKeyConstraint(
            ["practice_id", "client_id"],
            ["client.practice_id", "client.id"],
            name=op.f("fk_appointment_practice_id_client_id_client"),
        ),
        sa.ForeignKeyConstraint(
            ["practice_id", "patient_id"],
            ["patient.practice_id", "patient.id"],
            name=op.f("fk_appointment_practice_id_patient_id_patient"),
        ),
        sa.ForeignKeyConstraint(
            ["practice_id", "resource_id"],
            ["resource.practice_id", "resource.id"],
            name=op.f("fk_appointment_practice_id_resource_id_resource"),
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["tenant.id"], name=op.f("fk_appointment_practice_id_tenant")
        ),
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_appointment")),
        sa.UniqueConstraint("practice_id", "animana_id", name=op.f("uq_appointment_practice_id_animana_id")),
        info={"tenancy": "practice", "partitioned": True},
        postgresql_partition_by="LIST (practice_id)",
    )
    op.create_index("ix_appointment_day", "appointment", ["practice_id", "starts_at"], unique=False)
    op.create_index(
        "ix_appointment_patient", "appointment", ["practice_id", "patient_id", "starts_at"], unique=False
    )
    op.create_table(
        "appointment_type_override",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("appointment_type_id", sa.BigInteger(), nullable=False),
        sa.Column("franchise_id", sa.BigInteger(), nullable=False),
        sa.Column("duration_minutes", sa.BigInteger(), nullable=True),
        sa.Column("colour", sa.String(length=7), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=True),
        sa.Column("updated_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "duration_minutes IS NULL OR duration_minutes BETWEEN 5 AND 480",
            name=op.f("ck_appointment_type_override_duration"),
        ),
        sa.ForeignKeyConstraint(
            ["franchise_id", "appointment_type_id"],
            ["appointment_type.franchise_id", "appointment_type.id"],
            name=op.f("fk_appointment_type_override_franchise_id_appointment_type_id_appointment_type"),
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["tenant.id"], name=op.f("fk_appointment_type_override_practice_id_tenant")
        ),
        sa.PrimaryKeyConstraint(
            "practice_id", "appointment_type_id", name=op.f("pk_appointment_type_override")
        ),
        info={"tenancy": "practice"},
    )
    op.create_table(
        "client_patient",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("is_primary", sa.Boolean(), server_default="true", nullable=False),
        sa.Column("since", sa.Date(), server_default=sa.text("CURRENT_DATE"), nullable=False),
        sa.ForeignKeyConstraint(
            ["practice_id", "client_id"],
            ["client.practice_id", "client.id"],
            name=op.f("fk_client_patient_practice_id_client_id_client"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["practice_id", "patient_id"],
            ["patient.practice_id", "patient.id"],
            name=op.f("fk_client_patient_practice_id_patient_id_patient"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("practice_id", "client_id", "patient_id", name=op.f("pk_client_patient")),
        info={"tenancy": "practice"},
    )
    op.create_index(
        "ix_client_patient_patient", "client_patient", ["practice_id", "patient_id"], unique=False
    )
    op.create_table(
        "document",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=True),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("filename", sa.String(length=255), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("size_bytes", sa.BigInteger(), nullable=False),
        sa.Column("sha256", sa.String(length=64), nullable=False),
        sa.Column("storage_key", sa.String(length=255), nullable=False),
        sa.Column("source", sa.String(length=32), server_default="upload", nullable=False),
        sa.Column("uploaded_by", sa.BigInteger(), nullable=True),
        sa.Column("uploaded_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("size_bytes >= 0", name=op.f("ck_document_size")),
        sa.ForeignKeyConstraint(
            ["practice_id", "patient_id"],
            ["patient.practice_id", "patient.id"],
            name=op.f("fk_document_practice_id_patient_id_patient"),
        ),
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_document")),
        info={"tenancy": "practice"},
    )
    op.create_index("ix_document_patient", "document", ["practice_id", "patient_id"], unique=False)
    op.create_table(
        "product_price_override",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("product_id", sa.BigInteger(), nullable=False),
        sa.Column("franchise_id", sa.BigInteger(), nullable=False),
        sa.Column("price_cents", sa.BigInteger(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=True),
        sa.Column("updated_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "price_cents IS NULL OR price_cents >= 0", name=op.f("ck_product_price_override_price")
        ),
        sa.ForeignKeyConstraint(
            ["franchise_id", "product_id"],
            ["product.franchise_id", "product.id"],
            name=op.f("fk_product_price_override_franchise_id_product_id_product"),
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["tenant.id"], name=op.f("fk_product_price_override_practice_id_tenant")
        ),
        sa.PrimaryKeyConstraint("practice_id", "product_id", name=op.f("pk_product_price_override")),
        info={"tenancy": "practice"},
    )
    op.create_table(
        "reminder",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "kind",
            sa.Enum(
                "vaccination",
                "follow_up",
                "recall",
                "other",
                name="reminder_kind",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("due_on", sa.Date(), nullable=False),
        sa.Column("franchise_id", sa.BigInteger(), nullable=True),
        sa.Column("template_id", sa.BigInteger(), nullable=True),
        sa.Column("vaccination_id", sa.BigInteger(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "pending",
                "sent",
                "done",
                "cancelled",
                name="reminder_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="pending",
            nullable=False,
        ),
        sa.Column("sent_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["practice_id", "patient_id"],
            ["patient.practice_id", "patient.id"],
            name=op.f("fk_reminder_practice_id_patient_id_patient"),
        ),
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_reminder")),
        info={"tenancy": "practice"},
    )
    op.create_index("ix_reminder_due", "reminder", ["practice_id", "due_on", "status"], unique=False)
    op.create_table(
        "reminder_template_override",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("template_id", sa.BigInteger(), nullable=False),
        sa.Column("franchise_id", sa.BigInteger(), nullable=False),
        sa.Column("subject", sa.String(length=200), nullable=True),
        sa.Column("body", sa.Text(), nullable=True),
        sa.Column("days_before_due", sa.BigInteger(), nullable=True),
        sa.Column("updated_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["franchise_id", "template_id"],
            ["reminder_template.franchise_id", "reminder_template.id"],
            name=op.f("fk_reminder_template_override_franchise_id_template_id_reminder_template"),
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["tenant.id"], name=op.f("fk_reminder_template_override_practice_id_tenant")
        ),
        sa.PrimaryKeyConstraint("practice_id", "template_id", name=op.f("pk_reminder_template_override")),
        info={"tenancy": "practice"},
    )
    op.create_table(
        "staff_shift",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("resource_id", sa.BigInteger(), nullable=False),
        sa.Column("starts_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ends_at", sa.DateTime(timezone=True), nullable=False),
        postgresql.ExcludeConstraint(
            (sa.column("practice_id"), "="),
            (sa.column("resource_id"), "="),
            (sa.text("tstzrange(starts_at, ends_at, '[)')"), "&&"),
            using="gist",
            name="no_overlapping_shifts",
        ),
        sa.CheckConstraint("ends_at > starts_at", name=op.f("ck_staff_shift_positive_length")),
        sa.ForeignKeyConstraint(
            ["practice_id", "resource_id"],
            ["resource.practice_id", "resource.id"],
            name=op.f("fk_staff_shift_practice_id_resource_id_resource"),
        ),
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_staff_shift")),
        info={"tenancy": "practice"},
    )
    op.create_table(
        "vaccine_protocol_override",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("protocol_id", sa.BigInteger(), nullable=False),
        sa.Column("franchise_id", sa.BigInteger(), nullable=False),
        sa.Column("booster_interval_days", sa.BigInteger(), nullable=True),
        sa.Column("active", sa.Boolean(), nullable=True),
        sa.Column("updated_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["franchise_id", "protocol_id"],
            ["vaccine_protocol.franchise_id", "vaccine_protocol.id"],
            name=op.f("fk_vaccine_protocol_override_franchise_id_protocol_id_vaccine_protocol"),
        ),
        sa.ForeignKeyConstraint(
            ["practice_id"], ["tenant.id"], name=op.f("fk_vaccine_protocol_override_practice_id_tenant")
        ),
        sa.PrimaryKeyConstraint("practice_id", "protocol_id", name=op.f("pk_vaccine_protocol_override")),
        info={"tenancy": "practice"},
    )
    op.create_table(
        "weight_measurement",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("measured_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("weight_grams", sa.BigInteger(), nullable=False),
        sa.Column("recorded_by", sa.BigInteger(), nullable=True),
        sa.CheckConstraint(
            "weight_grams > 0 AND weight_grams < 2000000", name=op.f("ck_weight_measurement_plausible")
        ),
        sa.ForeignKeyConstraint(
            ["practice_id", "patient_id"],
            ["patient.practice_id", "patient.id"],
            name=op.f("fk_weight_measurement_practice_id_patient_id_patient"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_weight_measurement")),
        info={"tenancy": "practice"},
    )
    op.create_index(
        "ix_weight_patient", "weight_measurement", ["practice_id", "patient_id", "measured_at"], unique=False
    )
    op.create_table(
        "visit",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("animana_id", sa.String(length=64), nullable=True),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("appointment_id", sa.BigInteger(), nullable=True),
        sa.Column("vet_user_id", sa.BigInteger(), nullable=True),
        sa.Column("department_id", sa.BigInteger(), nullable=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("subjective", sa.Text(), nullable=True),
        sa.Column("objective", sa.Text(), nullable=True),
        sa.Column("assessment", sa.Text(), nullable=True),
        sa.Column("plan", sa.Text(), nullable=True),
        sa.Column("signed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("signed_by", sa.BigInteger(), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.ForeignKeyConstraint(
            ["practice_id", "appointment_id"],
            ["appointment.practice_id", "appointment.id"],
            name=op.f("fk_visit_practice_id_appointment_id_appointment"),
        ),
        sa.ForeignKeyConstraint(
            ["practice_id", "patient_id"],
            ["patient.practice_id", "patient.id"],
            name=op.f("fk_visit_practice_id_patient_id_patient"),
        ),
        sa.ForeignKeyConstraint(["practice_id"], ["tenant.id"], name=op.f("fk_visit_practice_id_tenant")),
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_visit")),
        sa.UniqueConstraint("practice_id", "animana_id", name=op.f("uq_visit_practice_id_animana_id")),
        info={"tenancy": "practice", "partitioned": True},
        postgresql_partition_by="LIST (practice_id)",
    )
    op.create_index("ix_visit_patient", "visit", ["practice_id", "patient_id", "started_at"], unique=False)
    op.create_table(
        "diagnosis",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("visit_id", sa.BigInteger(), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("venom_code", sa.String(length=16), nullable=True),
        sa.Column("term", sa.String(length=200), nullable=False),
        sa.Column(
            "diagnosed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.ForeignKeyConstraint(
            ["practice_id", "patient_id"],
            ["patient.practice_id", "patient.id"],
            name=op.f("fk_diagnosis_practice_id_patient_id_patient"),
        ),
        sa.ForeignKeyConstraint(
            ["practice_id", "visit_id"],
            ["visit.practice_id", "visit.id"],
            name=op.f("fk_diagnosis_practice_id_visit_id_visit"),
        ),
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_diagnosis")),
        info={"tenancy": "practice"},
    )
    op.create_index("ix_diagnosis_patient", "diagnosis", ["practice_id", "patient_id"], unique=False)
    op.create_table(
        "invoice",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("animana_id", sa.String(length=64), nullable=True),
        sa.Column("number", sa.String(length=32), nullable=False),
        sa.Column("client_id", sa.BigInteger(), nullable=False),
        sa.Column("visit_id", sa.BigInteger(), nullable=True),
        sa.Column("credit_of_id", sa.BigInteger(), nullable=True),
        sa.Column("issued_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "draft",
                "issued",
                "paid",
                "credited",
                "void",
                name="invoice_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("total_excl_cents", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("vat_cents", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("total_incl_cents", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("created_by", sa.BigInteger(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint("total_incl_cents = total_excl_cents + vat_cents", name=op.f("ck_invoice_totals")),
        sa.ForeignKeyConstraint(
            ["practice_id", "client_id"],
            ["client.practice_id", "client.id"],
            name=op.f("fk_invoice_practice_id_client_id_client"),
        ),
        sa.ForeignKeyConstraint(
            ["practice_id", "credit_of_id"],
            ["invoice.practice_id", "invoice.id"],
            name=op.f("fk_invoice_practice_id_credit_of_id_invoice"),
        ),
        sa.ForeignKeyConstraint(
            ["practice_id", "visit_id"],
            ["visit.practice_id", "visit.id"],
            name=op.f("fk_invoice_practice_id_visit_id_visit"),
        ),
        sa.ForeignKeyConstraint(["practice_id"], ["tenant.id"], name=op.f("fk_invoice_practice_id_tenant")),
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_invoice")),
        sa.UniqueConstraint("practice_id", "animana_id", name=op.f("uq_invoice_practice_id_animana_id")),
        sa.UniqueConstraint("practice_id", "number", name=op.f("uq_invoice_practice_id_number")),
        info={"tenancy": "practice"},
    )
    op.create_index("ix_invoice_client", "invoice", ["practice_id", "client_id"], unique=False)
    op.create_index("ix_invoice_issued", "invoice", ["practice_id", "issued_on"], unique=False)
    op.create_table(
        "lab_order",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("visit_id", sa.BigInteger(), nullable=True),
        sa.Column("accession_number", sa.String(length=64), nullable=False),
        sa.Column("test_code", sa.String(length=64), nullable=True),
        sa.Column("test_name", sa.String(length=200), nullable=True),
        sa.Column("lab", sa.String(length=120), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "ordered",
                "partial",
                "resulted",
                "reviewed",
                "cancelled",
                name="lab_order_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            server_default="ordered",
            nullable=False,
        ),
        sa.Column("ordered_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("ordered_by", sa.BigInteger(), nullable=True),
        sa.Column("reviewed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("reviewed_by", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["practice_id", "patient_id"],
            ["patient.practice_id", "patient.id"],
            name=op.f("fk_lab_order_practice_id_patient_id_patient"),
        ),
        sa.ForeignKeyConstraint(
            ["practice_id", "visit_id"],
            ["visit.practice_id", "visit.id"],
            name=op.f("fk_lab_order_practice_id_visit_id_visit"),
        ),
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_lab_order")),
        sa.UniqueConstraint(
            "practice_id", "accession_number", name=op.f("uq_lab_order_practice_id_accession_number")
        ),
        info={"tenancy": "practice"},
    )
    op.create_table(
        "prescription",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("animana_id", sa.String(length=64), nullable=True),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("visit_id", sa.BigInteger(), nullable=True),
        sa.Column("franchise_id", sa.BigInteger(), nullable=True),
        sa.Column("product_id", sa.BigInteger(), nullable=True),
        sa.Column("product_name", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=10, scale=3), nullable=False),
        sa.Column("dosage_instructions", sa.Text(), nullable=True),
        sa.Column(
            "dispensing_category",
            sa.Enum(
                "VRIJ",
                "URA",
                "UDA",
                "UDD",
                name="dispensing_category",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("prescribed_by", sa.BigInteger(), nullable=True),
        sa.Column(
            "prescribed_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False
        ),
        sa.CheckConstraint("quantity > 0", name=op.f("ck_prescription_quantity")),
        sa.ForeignKeyConstraint(
            ["practice_id", "patient_id"],
            ["patient.practice_id", "patient.id"],
            name=op.f("fk_prescription_practice_id_patient_id_patient"),
        ),
        sa.ForeignKeyConstraint(
            ["practice_id", "visit_id"],
            ["visit.practice_id", "visit.id"],
            name=op.f("fk_prescription_practice_id_visit_id_visit"),
        ),
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_prescription")),
        sa.UniqueConstraint("practice_id", "animana_id", name=op.f("uq_prescription_practice_id_animana_id")),
        info={"tenancy": "practice"},
    )
    op.create_index("ix_prescription_patient", "prescription", ["practice_id", "patient_id"], unique=False)
    op.create_table(
        "vaccination",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("animana_id", sa.String(length=64), nullable=True),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("visit_id", sa.BigInteger(), nullable=True),
        sa.Column("franchise_id", sa.BigInteger(), nullable=True),
        sa.Column("protocol_id", sa.BigInteger(), nullable=True),
        sa.Column("vaccine_name", sa.String(length=120), nullable=False),
        sa.Column("batch_number", sa.String(length=64), nullable=True),
        sa.Column("given_on", sa.Date(), nullable=False),
        sa.Column("due_on", sa.Date(), nullable=True),
        sa.Column("given_by", sa.BigInteger(), nullable=True),
        sa.ForeignKeyConstraint(
            ["practice_id", "patient_id"],
            ["patient.practice_id", "patient.id"],
            name=op.f("fk_vaccination_practice_id_patient_id_patient"),
        ),
        sa.ForeignKeyConstraint(
            ["practice_id", "visit_id"],
            ["visit.practice_id", "visit.id"],
            name=op.f("fk_vaccination_practice_id_visit_id_visit"),
        ),
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_vaccination")),
        sa.UniqueConstraint("practice_id", "animana_id", name=op.f("uq_vaccination_practice_id_animana_id")),
        info={"tenancy": "practice"},
    )
    op.create_index("ix_vaccination_due", "vaccination", ["practice_id", "due_on"], unique=False)
    op.create_index("ix_vaccination_patient", "vaccination", ["practice_id", "patient_id"], unique=False)
    op.create_table(
        "invoice_line",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("animana_id", sa.String(length=64), nullable=True),
        sa.Column("invoice_id", sa.BigInteger(), nullable=False),
        sa.Column("franchise_id", sa.BigInteger(), nullable=True),
        sa.Column("product_id", sa.BigInteger(), nullable=True),
        sa.Column("description", sa.String(length=200), nullable=False),
        sa.Column("quantity", sa.Numeric(precision=10, scale=3), nullable=False),
        sa.Column("unit_price_cents", sa.BigInteger(), nullable=False),
        sa.Column("discount_cents", sa.BigInteger(), server_default="0", nullable=False),
        sa.Column("vat_rate_bp", sa.BigInteger(), nullable=False),
        sa.Column("line_excl_cents", sa.BigInteger(), nullable=False),
        sa.Column("line_vat_cents", sa.BigInteger(), nullable=False),
        sa.Column("line_incl_cents", sa.BigInteger(), nullable=False),
        sa.CheckConstraint(
            "line_incl_cents = line_excl_cents + line_vat_cents", name=op.f("ck_invoice_line_totals")
        ),
        sa.CheckConstraint("vat_rate_bp IN (2100, 900, 0)", name=op.f("ck_invoice_line_vat_rate")),
        sa.ForeignKeyConstraint(
            ["practice_id", "invoice_id"],
            ["invoice.practice_id", "invoice.id"],
            name=op.f("fk_invoice_line_practice_id_invoice_id_invoice"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_invoice_line")),
        sa.UniqueConstraint("practice_id", "animana_id", name=op.f("uq_invoice_line_practice_id_animana_id")),
        info={"tenancy": "practice", "partitioned": True},
        postgresql_partition_by="LIST (practice_id)",
    )
    op.create_index("ix_invoice_line_invoice", "invoice_line", ["practice_id", "invoice_id"], unique=False)
    op.create_table(
        "lab_observation",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("animana_id", sa.String(length=64), nullable=True),
        sa.Column("patient_id", sa.BigInteger(), nullable=False),
        sa.Column("lab_order_id", sa.BigInteger(), nullable=True),
        sa.Column("device_message_id", sa.BigInteger(), nullable=True),
        sa.Column("code", sa.String(length=64), nullable=False),
        sa.Column("code_system", sa.String(length=32), nullable=True),
        sa.Column("text", sa.String(length=200), nullable=True),
        sa.Column("value_numeric", sa.Numeric(precision=18, scale=6), nullable=True),
        sa.Column("value_text", sa.Text(), nullable=True),
        sa.Column("unit", sa.String(length=32), nullable=True),
        sa.Column("ref_low", sa.Numeric(precision=18, scale=6), nullable=True),
        sa.Column("ref_high", sa.Numeric(precision=18, scale=6), nullable=True),
        sa.Column("ref_text", sa.String(length=64), nullable=True),
        sa.Column("abnormal_flag", sa.String(length=8), nullable=True),
        sa.Column(
            "status",
            sa.Enum(
                "preliminary",
                "final",
                "corrected",
                "cancelled",
                name="observation_status",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("observed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("superseded_by", sa.BigInteger(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(
            "ref_low IS NULL OR ref_high IS NULL OR ref_low <= ref_high",
            name=op.f("ck_lab_observation_range"),
        ),
        sa.ForeignKeyConstraint(
            ["practice_id", "lab_order_id"],
            ["lab_order.practice_id", "lab_order.id"],
            name=op.f("fk_lab_observation_practice_id_lab_order_id_lab_order"),
        ),
        sa.ForeignKeyConstraint(
            ["practice_id", "patient_id"],
            ["patient.practice_id", "patient.id"],
            name=op.f("fk_lab_observation_practice_id_patient_id_patient"),
        ),
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_lab_observation")),
        sa.UniqueConstraint(
            "practice_id", "animana_id", name=op.f("uq_lab_observation_practice_id_animana_id")
        ),
        info={"tenancy": "practice", "partitioned": True},
        postgresql_partition_by="LIST (practice_id)",
    )
    op.create_index(
        "ix_lab_observation_patient",
        "lab_observation",
        ["practice_id", "patient_id", "observed_at"],
        unique=False,
    )
    op.create_table(
        "payment",
        sa.Column("practice_id", sa.BigInteger(), nullable=False),
        sa.Column("id", sa.BigInteger(), sa.Identity(always=False), nullable=False),
        sa.Column("animana_id", sa.String(length=64), nullable=True),
        sa.Column("invoice_id", sa.BigInteger(), nullable=True),
        sa.Column("client_id", sa.BigInteger(), nullable=False),
        sa.Column(
            "method",
            sa.Enum(
                "cash",
                "pin",
                "transfer",
                "other",
                name="payment_method",
                native_enum=False,
                create_constraint=True,
                length=32,
            ),
            nullable=False,
        ),
        sa.Column("amount_cents", sa.BigInteger(), nullable=False),
        sa.Column("paid_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("received_by", sa.BigInteger(), nullable=True),
        sa.CheckConstraint("amount_cents <> 0", name=op.f("ck_payment_nonzero")),
        sa.ForeignKeyConstraint(
            ["practice_id", "client_id"],
            ["client.practice_id", "client.id"],
            name=op.f("fk_payment_practice_id_client_id_client"),
        ),
        sa.ForeignKeyConstraint(
            ["practice_id", "invoice_id"],
            ["invoice.practice_id", "invoice.id"],
            name=op.f("fk_payment_practice_id_invoice_id_invoice"),
        ),
        sa.PrimaryKeyConstraint("practice_id", "id", name=op.f("pk_payment")),
        sa.UniqueConstraint("practice_id", "animana_id", name=op.f("uq_payment_practice_id_animana_id")),
        info={"tenancy": "practice"},
    )
    op.create_index("ix_payment_invoice", "payment", ["practice_id", "invoice_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_payment_invoice", table_name="payment")
    op.drop_table("payment")
    op.drop_index("ix_lab_observation_patient", table_name="lab_observation")
    op.drop_table("lab_observation")
    op.drop_index("ix_invoice_line_invoice", table_name="invoice_line")
    op.drop_table("invoice_line")
    op.drop_index("ix_vaccination_patient", table_name="vaccination")
    op.drop_index("ix_vaccination_due", table_name="vaccination")
    op.drop_table("vaccination")
    op.drop_index("ix_prescription_patient", table_name="prescription")
    op.drop_table("prescription")
    op.drop_table("lab_order")
    op.drop_index("ix_invoice_issued", table_name="invoice")
    op.drop_index("ix_invoice_client", table_name="invoice")
    op.drop_table("invoice")
    op.drop_index("ix_diagnosis_patient", table_name="diagnosis")
    op.drop_table("diagnosis")
    op.drop_index("ix_visit_patient", table_name="visit")
    op.drop_table("visit")
    op.drop_index("ix_weight_patient", table_name="weight_measurement")
    op.drop_table("weight_measurement")
    op.drop_table("vaccine_protocol_override")
    op.drop_table("staff_shift")
    op.drop_table("reminder_template_override")
    op.drop_index("ix_reminder_due", table_name="reminder")
    op.drop_table("reminder")
    op.drop_table("product_price_override")
    op.drop_index("ix_document_patient", table_name="document")
    op.drop_table("document")
    op.drop_index("ix_client_patient_patient", table_name="client_patient")
    op.drop_table("client_patient")
    op.drop_table("appointment_type_override")
    op.drop_index("ix_appointment_patient", table_name="appointment")
    op.drop_index("ix_appointment_day", table_name="appointment")
    op.drop_table("appointment")
    op.drop_table("vaccine_protocol")
    op.drop_table("tenant_data_key")
    op.drop_table("sync_state")
    op.drop_index("ix_shared_change_row", table_name="shared_resource_change")
    op.drop_table("shared_resource_change")
    op.drop_table("resource")
    op.drop_table("reminder_template")
    op.drop_table("product")
    op.drop_table("practice_module_mode")
    op.drop_index(
        "ix_patient_name_trgm",
        table_name="patient",
        postgresql_using="gin",
        postgresql_ops={"name": "gin_trgm_ops"},
    )
    op.drop_index("ix_patient_microchip", table_name="patient")
    op.drop_table("patient")
    op.drop_index("ix_membership_tenant", table_name="membership")
    op.drop_table("membership")
    op.drop_index("ix_event_time", table_name="event")
    op.drop_index("ix_event_patient", table_name="event")
    op.drop_table("event")
    op.drop_index("ix_client_phone_bidx", table_name="client")
    op.drop_index(
        "ix_client_name_trgm",
        table_name="client",
        postgresql_using="gin",
        postgresql_ops={"last_name": "gin_trgm_ops"},
    )
    op.drop_index("ix_client_email_bidx", table_name="client")
    op.drop_table("client")
    op.drop_index("ix_audit_entity", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("audit_chain_head")
    op.drop_table("appointment_type")
    op.drop_index(op.f("ix_tenant_practice_id"), table_name="tenant")
    op.drop_index(op.f("ix_tenant_franchise_id"), table_name="tenant")
    op.drop_table("tenant")
    op.drop_table("app_user")
    op.drop_table("system_access")
    op.execute("DROP EXTENSION IF EXISTS pg_trgm")
    op.execute("DROP EXTENSION IF EXISTS btree_gist")
