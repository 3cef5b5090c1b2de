"""What arrives from outside before it becomes part of the record: raw device messages (kept first, always),
imaging studies, encrypted document bytes, quarantined API payloads and sync runs."""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import JSON, ForeignKeyConstraint, Identity, Index, LargeBinary, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.schema.base import Base, practice_table
from warehouse.schema.tenancy import choice

DEVICE_MESSAGE_STATUSES = ("received", "ingested", "inbox", "duplicate", "resolved")


class DeviceMessage(Base):
    """A message or file from a lab analyser or imaging device, stored raw before anything else happens.

    ``status`` says what became of it; ``inbox`` rows carry the reason a person must look at it. A duplicate
    (the same content: ``connectors.devices.fingerprint``) is stored too, pointing at the original, but never
    ingested twice: the partial unique index on ``dedup_key`` decides which copy wins, even under concurrency.
    The same control id with other content is a new message; ``same_control_id_as`` notes the first other
    message of that sender with that control id."""

    __tablename__ = "device_message"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["tenant.id"]),
        Index(
            "uq_device_message_dedup",
            "practice_id",
            "dedup_key",
            unique=True,
            postgresql_where=text("dedup_key IS NOT NULL"),
        ),  # fmt: skip
        Index("ix_device_message_status", "practice_id", "status", "received_at"),
        Index(
            "ix_device_message_control_id",
            "practice_id",
            "sender",
            "control_id",
            postgresql_where=text("control_id IS NOT NULL"),
        ),  # fmt: skip
        Index(
            "ix_device_message_patient",
            "practice_id",
            "patient_id",
            postgresql_where=text("patient_id IS NOT NULL"),
        ),
        {"info": practice_table(partitioned=True), "postgresql_partition_by": "LIST (practice_id)"},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    received_at: Mapped[dt.datetime] = mapped_column(server_default=func.clock_timestamp())
    source: Mapped[str] = mapped_column(String(200))  # "mllp:10.0.0.5:51234", "drop:/path", "cli"
    filename: Mapped[str | None] = mapped_column(String(255))
    detected_format: Mapped[str | None] = mapped_column(String(16))  # hl7v2 | astm | dicom | unknown
    sender: Mapped[str | None] = mapped_column(String(200))
    control_id: Mapped[str | None] = mapped_column(String(200))
    dedup_key: Mapped[str | None] = mapped_column(String(420))
    duplicate_of: Mapped[int | None]
    same_control_id_as: Mapped[int | None]
    raw: Mapped[bytes] = mapped_column(LargeBinary)
    sha256: Mapped[str] = mapped_column(String(64))
    size_bytes: Mapped[int]
    status: Mapped[str] = mapped_column(choice(*DEVICE_MESSAGE_STATUSES, name="device_message_status"))
    inbox_reason: Mapped[str | None] = mapped_column(String(64))
    inbox_detail: Mapped[str | None] = mapped_column(Text)
    # An inbox row's outcome as the parser read it, so that a person can resolve it without a parser at hand
    # (warehouse.ingest.devices.stored_outcome); None once the message is loaded.
    parsed_outcome: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    patient_id: Mapped[int | None]
    observation_count: Mapped[int] = mapped_column(server_default="0")
    attempts: Mapped[int] = mapped_column(server_default="1")
    processed_at: Mapped[dt.datetime | None]
    resolved_by: Mapped[int | None]


class ImagingStudy(Base):
    __tablename__ = "imaging_study"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["tenant.id"]),
        ForeignKeyConstraint(["practice_id", "patient_id"], ["patient.practice_id", "patient.id"]),
        ForeignKeyConstraint(["practice_id", "document_id"], ["document.practice_id", "document.id"]),
        Index("ix_imaging_study_patient", "practice_id", "patient_id"),
        Index("ix_imaging_study_uid", "practice_id", "study_uid"),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    patient_id: Mapped[int | None]
    device_message_id: Mapped[int | None]
    document_id: Mapped[int | None]
    study_uid: Mapped[str | None] = mapped_column(String(64))
    series_uid: Mapped[str | None] = mapped_column(String(64))
    modality: Mapped[str | None] = mapped_column(String(16))
    body_part: Mapped[str | None] = mapped_column(String(64))
    study_date: Mapped[dt.date | None]
    description: Mapped[str | None] = mapped_column(String(200))
    animal_id_text: Mapped[str | None] = mapped_column(String(64))
    animal_name: Mapped[str | None] = mapped_column(String(100))
    species: Mapped[str | None] = mapped_column(String(64))
    breed: Mapped[str | None] = mapped_column(String(64))
    preview_png: Mapped[bytes | None] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class DocumentContent(Base):
    """The bytes of a document, AES-GCM encrypted with the practice's data key (column ``document``)."""

    __tablename__ = "document_content"
    __table_args__ = (
        ForeignKeyConstraint(
            ["practice_id", "document_id"], ["document.practice_id", "document.id"], ondelete="CASCADE"
        ),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    document_id: Mapped[int] = mapped_column(primary_key=True)
    ciphertext: Mapped[bytes] = mapped_column(LargeBinary)
    key_version: Mapped[int] = mapped_column(server_default="1")


class SyncRun(Base):
    """One run of a sync (per practice and source): what it did, for the summary and for drift reports."""

    __tablename__ = "sync_run"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["tenant.id"]),
        Index("ix_sync_run_started", "practice_id", "source", "started_at"),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    mode: Mapped[str] = mapped_column(choice("incremental", "full", name="sync_mode"))
    started_at: Mapped[dt.datetime] = mapped_column(server_default=func.clock_timestamp())
    finished_at: Mapped[dt.datetime | None]
    status: Mapped[str] = mapped_column(
        choice("running", "succeeded", "failed", name="sync_status"), server_default="running"
    )
    counts: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    error: Mapped[str | None] = mapped_column(Text)


class IngestQuarantine(Base):
    """A payload that failed validation: kept verbatim with the reason, counted, never silently dropped."""

    __tablename__ = "ingest_quarantine"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["tenant.id"]),
        Index("ix_ingest_quarantine_open", "practice_id", "source", "resource", "received_at"),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    source: Mapped[str] = mapped_column(String(32))
    resource: Mapped[str] = mapped_column(String(64))
    external_id: Mapped[str | None] = mapped_column(String(64))
    raw: Mapped[str] = mapped_column(Text)
    reason: Mapped[str] = mapped_column(Text)
    sync_run_id: Mapped[int | None]
    received_at: Mapped[dt.datetime] = mapped_column(server_default=func.clock_timestamp())
    resolved_at: Mapped[dt.datetime | None]
