"""Operational tables: the activity event log, sync cursors, the append-only audit log, shared-resource history."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import BigInteger, ForeignKeyConstraint, Identity, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import ARRAY, JSONB
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.schema.base import Base, franchise_table, practice_table


class Event(Base):
    """Who did what to which patient/appointment, when: raw material for next-action models and KPIs."""

    __tablename__ = "event"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["tenant.id"]),
        Index("ix_event_time", "practice_id", "occurred_at"),
        Index("ix_event_patient", "practice_id", "patient_id", "occurred_at"),
        # A merge's lookup (migration 0450).
        Index("ix_event_client", "practice_id", "client_id", postgresql_where=text("client_id IS NOT NULL")),
        {"info": practice_table(partitioned=True), "postgresql_partition_by": "LIST (practice_id)"},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    activity: Mapped[str] = mapped_column(String(64))
    actor_user_id: Mapped[int | None]
    actor_role: Mapped[str | None] = mapped_column(String(32))
    patient_id: Mapped[int | None]
    appointment_id: Mapped[int | None]
    client_id: Mapped[int | None]
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")


class SyncState(Base):
    """Incremental sync cursor per practice and source resource, committed with the rows it covers."""

    __tablename__ = "sync_state"
    __table_args__ = (ForeignKeyConstraint(["practice_id"], ["tenant.id"]), {"info": practice_table()})

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    source: Mapped[str] = mapped_column(String(32), primary_key=True)
    resource: Mapped[str] = mapped_column(String(64), primary_key=True)
    cursor: Mapped[str | None] = mapped_column(Text)
    last_incremental_at: Mapped[dt.datetime | None]
    last_full_at: Mapped[dt.datetime | None]


class AuditLog(Base):
    """Append-only and hash-chained per practice: ``hash = sha256(prev_hash || payload)``, computed by a
    trigger that serialises writers of one practice. The application role has INSERT and SELECT only."""

    __tablename__ = "audit_log"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["tenant.id"]),
        Index("ix_audit_entity", "practice_id", "entity", "occurred_at"),
        Index("ix_audit_actor", "practice_id", "actor_user_id", "seq"),
        {"info": practice_table(partitioned=True), "postgresql_partition_by": "LIST (practice_id)"},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(primary_key=True, autoincrement=False)
    occurred_at: Mapped[dt.datetime] = mapped_column(server_default=func.clock_timestamp())
    actor_user_id: Mapped[int | None]
    action: Mapped[str] = mapped_column(String(32))
    entity: Mapped[str] = mapped_column(String(64))
    entity_ids: Mapped[list[int] | None] = mapped_column(ARRAY(BigInteger))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))
    # The sign-in session (``user_session.id``) the entry was written from, from ``app.session_id``; NULL for
    # system jobs and for entries written before migration 0490.
    session_id: Mapped[int | None]


class AuditChainHead(Base):
    """Last (seq, hash) per practice, kept by the audit trigger, so deleting the newest rows is detectable."""

    __tablename__ = "audit_chain_head"
    __table_args__ = (ForeignKeyConstraint(["practice_id"], ["tenant.id"]), {"info": practice_table()})

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int]
    hash: Mapped[str] = mapped_column(String(64))


class SharedResourceChange(Base):
    """Version history of franchise-level shared resources and their practice overrides (who, when, old→new)."""

    __tablename__ = "shared_resource_change"
    __table_args__ = (
        ForeignKeyConstraint(["franchise_id"], ["tenant.id"]),
        Index("ix_shared_change_row", "franchise_id", "table_name", "changed_at"),
        {"info": franchise_table()},
    )

    franchise_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    practice_id: Mapped[int | None]
    table_name: Mapped[str] = mapped_column(String(64))
    operation: Mapped[str] = mapped_column(String(8))
    row_key: Mapped[dict[str, Any]] = mapped_column(JSONB)
    changed_by: Mapped[int | None]
    changed_at: Mapped[dt.datetime] = mapped_column(server_default=func.clock_timestamp())
    old: Mapped[dict[str, Any] | None] = mapped_column(JSONB)
    new: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class SystemAccess(Base):
    """Every use of the RLS bypass (system jobs, onboarding, sign-in look-ups): why, by whom, when.
    Append-only: the system role may insert, no role of ours may change or delete."""

    __tablename__ = "system_access"
    __table_args__ = {"info": {"tenancy": "global"}}

    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    occurred_at: Mapped[dt.datetime] = mapped_column(server_default=func.clock_timestamp())
    reason: Mapped[str] = mapped_column(Text)
    actor_user_id: Mapped[int | None]
    db_user: Mapped[str] = mapped_column(String(64), server_default=text("session_user"))
