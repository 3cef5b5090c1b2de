"""Clinical record: visits with SOAP notes, diagnoses, vaccinations, prescriptions, lab, documents, reminders."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.schema.base import Base, MirroredWrites, Timestamps, franchise_table, practice_table
from warehouse.schema.tenancy import choice

# Dutch dispensing categories (Diergeneesmiddelenbesluit): free sale, pharmacy/retail, vet-prescribed, vet-only.
DISPENSING_CATEGORIES = ("VRIJ", "URA", "UDA", "UDD")
OBSERVATION_STATUSES = ("preliminary", "final", "corrected", "cancelled")
REMINDER_CHANNELS = ("email", "sms", "letter")
DIAGNOSIS_STATUSES = ("provisional", "confirmed")
# Lab orders out (migration 0430): how an order placed in VetConnect travels to its lab.
DELIVERY_STATES = ("queued", "sent", "acknowledged", "refused", "timed_out")
ORDER_MESSAGE_TYPES = ("ORM^O01", "OML^O21")


def _patient_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(["practice_id", "patient_id"], ["patient.practice_id", "patient.id"])


def _visit_fk() -> ForeignKeyConstraint:
    return ForeignKeyConstraint(["practice_id", "visit_id"], ["visit.practice_id", "visit.id"])


class Visit(MirroredWrites, Base):
    """A consultation. SOAP: subjective (history), objective (exam), assessment, plan. Signed notes are final."""

    __tablename__ = "visit"
    __table_args__ = (
        _patient_fk(),
        ForeignKeyConstraint(
            ["practice_id", "appointment_id"], ["appointment.practice_id", "appointment.id"]
        ),
        UniqueConstraint("practice_id", "animana_id"),
        Index("ix_visit_patient", "practice_id", "patient_id", "started_at"),
        {"info": practice_table(partitioned=True), "postgresql_partition_by": "LIST (practice_id)"},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    animana_id: Mapped[str | None] = mapped_column(String(64))
    patient_id: Mapped[int]
    appointment_id: Mapped[int | None]
    vet_user_id: Mapped[int | None]
    department_id: Mapped[int | None]
    started_at: Mapped[dt.datetime]
    reason: Mapped[str | None] = mapped_column(Text)
    subjective: Mapped[str | None] = mapped_column(Text)
    objective: Mapped[str | None] = mapped_column(Text)
    assessment: Mapped[str | None] = mapped_column(Text)
    plan: Mapped[str | None] = mapped_column(Text)
    signed_at: Mapped[dt.datetime | None]
    signed_by: Mapped[int | None]
    updated_at: Mapped[dt.datetime] = mapped_column(server_default=func.now(), onupdate=func.now())


class Diagnosis(Base):
    __tablename__ = "diagnosis"
    __table_args__ = (
        _patient_fk(),
        _visit_fk(),
        UniqueConstraint("practice_id", "animana_id"),
        Index("ix_diagnosis_patient", "practice_id", "patient_id"),
        ForeignKeyConstraint(
            ["franchise_id", "diagnosis_code_id"], ["diagnosis_code.franchise_id", "diagnosis_code.id"]
        ),
        CheckConstraint("removed_at IS NULL OR removal_reason IS NOT NULL", name="removal_reason"),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    animana_id: Mapped[str | None] = mapped_column(String(64))
    visit_id: Mapped[int]
    patient_id: Mapped[int]
    venom_code: Mapped[str | None] = mapped_column(String(16))  # VeNom (Veterinary Nomenclature) concept id
    term: Mapped[str] = mapped_column(String(200))
    diagnosed_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    # A diagnosis picked from the franchise's coded list (migration 0420); Animana's have no list row.
    franchise_id: Mapped[int | None]
    diagnosis_code_id: Mapped[int | None]
    status: Mapped[str] = mapped_column(
        choice(*DIAGNOSIS_STATUSES, name="diagnosis_status"), server_default="confirmed"
    )
    diagnosed_by: Mapped[int | None]
    status_changed_at: Mapped[dt.datetime | None]
    status_changed_by: Mapped[int | None]
    removed_at: Mapped[dt.datetime | None]
    removed_by: Mapped[int | None]
    removal_reason: Mapped[str | None] = mapped_column(Text)


class VaccineProtocol(Timestamps, Base):
    __tablename__ = "vaccine_protocol"
    __table_args__ = (
        ForeignKeyConstraint(["franchise_id"], ["tenant.id"]),
        UniqueConstraint("franchise_id", "code"),
        CheckConstraint("booster_interval_days > 0", name="interval"),
        {"info": franchise_table()},
    )

    franchise_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(120))
    species: Mapped[str] = mapped_column(String(32))
    booster_interval_days: Mapped[int]
    active: Mapped[bool] = mapped_column(server_default="true")
    updated_by: Mapped[int | None]


class VaccineProtocolOverride(Timestamps, Base):
    __tablename__ = "vaccine_protocol_override"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["tenant.id"]),
        ForeignKeyConstraint(
            ["franchise_id", "protocol_id"], ["vaccine_protocol.franchise_id", "vaccine_protocol.id"]
        ),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    protocol_id: Mapped[int] = mapped_column(primary_key=True)
    franchise_id: Mapped[int]
    booster_interval_days: Mapped[int | None]
    active: Mapped[bool | None]
    updated_by: Mapped[int | None]


class Vaccination(MirroredWrites, Base):
    __tablename__ = "vaccination"
    __table_args__ = (
        _patient_fk(),
        ForeignKeyConstraint(["practice_id", "visit_id"], ["visit.practice_id", "visit.id"]),
        UniqueConstraint("practice_id", "animana_id"),
        Index("ix_vaccination_due", "practice_id", "due_on"),
        Index("ix_vaccination_patient", "practice_id", "patient_id"),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    animana_id: Mapped[str | None] = mapped_column(String(64))
    patient_id: Mapped[int]
    visit_id: Mapped[int | None]
    franchise_id: Mapped[int | None]
    protocol_id: Mapped[int | None]
    vaccine_name: Mapped[str] = mapped_column(String(120))
    batch_number: Mapped[str | None] = mapped_column(String(64))
    given_on: Mapped[dt.date] = mapped_column(Date)
    due_on: Mapped[dt.date | None] = mapped_column(Date)
    given_by: Mapped[int | None]


class Prescription(MirroredWrites, Base):
    __tablename__ = "prescription"
    __table_args__ = (
        _patient_fk(),
        ForeignKeyConstraint(["practice_id", "visit_id"], ["visit.practice_id", "visit.id"]),
        UniqueConstraint("practice_id", "animana_id"),
        CheckConstraint("quantity > 0", name="quantity"),
        Index("ix_prescription_patient", "practice_id", "patient_id"),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    animana_id: Mapped[str | None] = mapped_column(String(64))
    patient_id: Mapped[int]
    visit_id: Mapped[int | None]
    franchise_id: Mapped[int | None]
    product_id: Mapped[int | None]
    product_name: Mapped[str] = mapped_column(String(200))
    quantity: Mapped[Decimal] = mapped_column(Numeric(10, 3))
    dosage_instructions: Mapped[str | None] = mapped_column(Text)
    dispensing_category: Mapped[str] = mapped_column(
        choice(*DISPENSING_CATEGORIES, name="dispensing_category")
    )
    prescribed_by: Mapped[int | None]
    prescribed_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    # The prescriber confirmed a medicine registered for other species (the cascade). Migration 0330.
    other_species_confirmed: Mapped[bool] = mapped_column(server_default="false")


class LabOrder(Base):
    __tablename__ = "lab_order"
    __table_args__ = (
        _patient_fk(),
        ForeignKeyConstraint(["practice_id", "visit_id"], ["visit.practice_id", "visit.id"]),
        UniqueConstraint("practice_id", "accession_number"),
        UniqueConstraint("practice_id", "animana_id"),
        ForeignKeyConstraint(
            ["practice_id", "destination_id"], ["lab_destination.practice_id", "lab_destination.id"]
        ),
        CheckConstraint(f"delivery_state IN {DELIVERY_STATES}", name="delivery_state"),
        Index(
            "ix_lab_order_delivery",
            "practice_id",
            "delivery_state",
            postgresql_where=text("delivery_state IN ('queued', 'sent')"),
        ),
        Index("ix_lab_order_patient", "practice_id", "patient_id"),  # a merge's lookup (migration 0450)
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    animana_id: Mapped[str | None] = mapped_column(String(64))
    patient_id: Mapped[int]
    visit_id: Mapped[int | None]
    accession_number: Mapped[str] = mapped_column(String(64))
    test_code: Mapped[str | None] = mapped_column(String(64))
    test_name: Mapped[str | None] = mapped_column(String(200))
    lab: Mapped[str | None] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(
        choice("ordered", "partial", "resulted", "reviewed", "cancelled", name="lab_order_status"),
        server_default="ordered",
    )
    ordered_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    ordered_by: Mapped[int | None]
    reviewed_at: Mapped[dt.datetime | None]
    reviewed_by: Mapped[int | None]
    # Lab orders out (migration 0430): an order placed in VetConnect and sent to ``destination_id`` over MLLP.
    # None for orders that arrived with their result. ``status`` above stays the result's status.
    destination_id: Mapped[int | None]
    delivery_state: Mapped[str | None] = mapped_column(String(12))
    delivery_attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    delivery_error: Mapped[str | None] = mapped_column(Text)
    sent_at: Mapped[dt.datetime | None]
    acked_at: Mapped[dt.datetime | None]
    ack_code: Mapped[str | None] = mapped_column(String(2))
    ack_text: Mapped[str | None] = mapped_column(Text)
    message_control_id: Mapped[str | None] = mapped_column(String(64))


class LabObservation(Base):
    """One result value. A correction inserts a new row and points the old one at it (history is kept)."""

    __tablename__ = "lab_observation"
    __table_args__ = (
        _patient_fk(),
        ForeignKeyConstraint(["practice_id", "lab_order_id"], ["lab_order.practice_id", "lab_order.id"]),
        UniqueConstraint("practice_id", "animana_id"),
        CheckConstraint("ref_low IS NULL OR ref_high IS NULL OR ref_low <= ref_high", name="range"),
        Index("ix_lab_observation_patient", "practice_id", "patient_id", "observed_at"),
        {"info": practice_table(partitioned=True), "postgresql_partition_by": "LIST (practice_id)"},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    animana_id: Mapped[str | None] = mapped_column(String(64))
    patient_id: Mapped[int]
    lab_order_id: Mapped[int | None]
    device_message_id: Mapped[int | None]
    code: Mapped[str] = mapped_column(String(64))
    code_system: Mapped[str | None] = mapped_column(String(32))
    text: Mapped[str | None] = mapped_column(String(200))
    value_numeric: Mapped[Decimal | None] = mapped_column(Numeric(18, 6))
    value_text: Mapped[str | None] = mapped_column(Text)
    unit: Mapped[str | None] = mapped_column(String(32))
    ref_low: Mapped[Decimal | None] = mapped_column(Numeric(18, 6))
    ref_high: Mapped[Decimal | None] = mapped_column(Numeric(18, 6))
    ref_text: Mapped[str | None] = mapped_column(Text)
    # One or more HL7 OBX-8 / ASTM flags joined with "~" (e.g. "H", "HH~A").
    abnormal_flag: Mapped[str | None] = mapped_column(String(32))
    status: Mapped[str] = mapped_column(choice(*OBSERVATION_STATUSES, name="observation_status"))
    observed_at: Mapped[dt.datetime]
    superseded_by: Mapped[int | None]
    received_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class Document(Base):
    """Metadata of an attachment; the bytes live in encrypted document storage under ``storage_key``."""

    __tablename__ = "document"
    __table_args__ = (
        _patient_fk(),
        CheckConstraint("size_bytes >= 0", name="size"),
        Index("ix_document_patient", "practice_id", "patient_id"),
        Index(
            "ix_document_client", "practice_id", "client_id", postgresql_where=text("client_id IS NOT NULL")
        ),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    patient_id: Mapped[int]
    client_id: Mapped[int | None]
    title: Mapped[str] = mapped_column(String(200))
    filename: Mapped[str] = mapped_column(String(255))
    content_type: Mapped[str] = mapped_column(String(100))
    size_bytes: Mapped[int]
    sha256: Mapped[str] = mapped_column(String(64))
    storage_key: Mapped[str] = mapped_column(String(255))
    source: Mapped[str] = mapped_column(String(32), server_default="upload")
    uploaded_by: Mapped[int | None]
    uploaded_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class ReminderTemplate(Timestamps, Base):
    __tablename__ = "reminder_template"
    __table_args__ = (
        ForeignKeyConstraint(["franchise_id"], ["tenant.id"]),
        UniqueConstraint("franchise_id", "code"),
        {"info": franchise_table()},
    )

    franchise_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(32))
    channel: Mapped[str] = mapped_column(choice(*REMINDER_CHANNELS, name="reminder_channel"))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)
    days_before_due: Mapped[int] = mapped_column(server_default="14")
    updated_by: Mapped[int | None]
    # Switched off by the franchise (migration 0440), as the other shared resources can be.
    active: Mapped[bool] = mapped_column(server_default="true")


class ReminderTemplateOverride(Timestamps, Base):
    __tablename__ = "reminder_template_override"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["tenant.id"]),
        ForeignKeyConstraint(
            ["franchise_id", "template_id"], ["reminder_template.franchise_id", "reminder_template.id"]
        ),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    template_id: Mapped[int] = mapped_column(primary_key=True)
    franchise_id: Mapped[int]
    subject: Mapped[str | None] = mapped_column(String(200))
    body: Mapped[str | None] = mapped_column(Text)
    days_before_due: Mapped[int | None]
    updated_by: Mapped[int | None]


class Reminder(Base):
    """What is due for a patient. VetConnect's own (``records``, ``reminders``) or, with ``animana_id``, one the
    practice set in Animana: Animana's check-up is ``recall``, its free text ``description``, its open ``pending``
    (migration 0370)."""

    __tablename__ = "reminder"
    __table_args__ = (
        _patient_fk(),
        UniqueConstraint("practice_id", "animana_id"),
        Index("ix_reminder_due", "practice_id", "due_on", "status"),
        Index("ix_reminder_patient", "practice_id", "patient_id"),  # a merge's lookups (migration 0450)
        Index(
            "ix_reminder_client", "practice_id", "client_id", postgresql_where=text("client_id IS NOT NULL")
        ),
        # What the marts' "did it work" looks back over (migration 0550).
        Index("ix_reminder_sent", "practice_id", "sent_at", postgresql_where=text("sent_at IS NOT NULL")),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    patient_id: Mapped[int]
    client_id: Mapped[int | None]
    kind: Mapped[str] = mapped_column(
        choice("vaccination", "follow_up", "recall", "other", name="reminder_kind")
    )
    due_on: Mapped[dt.date] = mapped_column(Date)
    franchise_id: Mapped[int | None]
    template_id: Mapped[int | None]
    vaccination_id: Mapped[int | None]
    status: Mapped[str] = mapped_column(
        choice("pending", "sent", "done", "cancelled", name="reminder_status"), server_default="pending"
    )
    sent_at: Mapped[dt.datetime | None]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    # A vaccination reminder closed because a later dose was recorded: which dose, and when. Migration 0330.
    closed_by_vaccination_id: Mapped[int | None]
    closed_at: Mapped[dt.datetime | None]
    animana_id: Mapped[str | None] = mapped_column(String(64))
    description: Mapped[str | None] = mapped_column(Text)
    # How the client is reached; NULL: not recorded (VetConnect's own reminders go by their template's channel).
    channel: Mapped[str | None] = mapped_column(choice(*REMINDER_CHANNELS, name="reminder_channel"))
    # When it worked: the booking or the dose that followed its sending within 30 days (migration 0550,
    # ``warehouse.messaging.worked``); NULL: it did not, not yet, or it was never sent.
    worked_at: Mapped[dt.datetime | None]


class DiagnosisCode(Timestamps, Base):
    """The franchise's coded diagnosis list (migration 0420): the standard terms ``seed_diagnosis_codes`` adds
    and the franchise's own. ``venom_id`` is the VeNom concept id where it is known."""

    __tablename__ = "diagnosis_code"
    __table_args__ = (
        ForeignKeyConstraint(["franchise_id"], ["tenant.id"]),
        UniqueConstraint("franchise_id", "code"),
        CheckConstraint("venom_id ~ '^[0-9]+$'", name="venom_id"),
        {"info": franchise_table()},
    )

    franchise_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    code: Mapped[str] = mapped_column(String(16))
    venom_id: Mapped[str | None] = mapped_column(String(16))
    term: Mapped[str] = mapped_column(String(200))
    species: Mapped[str | None] = mapped_column(String(32))  # empty: a term for any species
    active: Mapped[bool] = mapped_column(server_default="true")
    created_by: Mapped[int | None]


class LabDestination(Base):
    """A lab or analyser the practice sends orders to over MLLP (migration 0430), with the tests it offers
    (``tests``: ``[{"code": ..., "name": ...}]``; an order may also name a code that is not listed)."""

    __tablename__ = "lab_destination"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["tenant.id"]),
        UniqueConstraint("practice_id", "name"),
        CheckConstraint("port BETWEEN 1 AND 65535", name="port"),
        CheckConstraint(f"message_type IN {ORDER_MESSAGE_TYPES}", name="message_type"),
        CheckConstraint("ack_timeout_seconds BETWEEN 1 AND 300", name="ack_timeout"),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    name: Mapped[str] = mapped_column(String(120))
    host: Mapped[str] = mapped_column(String(255))
    port: Mapped[int] = mapped_column(Integer)
    message_type: Mapped[str] = mapped_column(String(8))
    receiving_application: Mapped[str | None] = mapped_column(String(64))
    receiving_facility: Mapped[str | None] = mapped_column(String(64))
    ack_timeout_seconds: Mapped[int] = mapped_column(Integer, server_default="10")
    tests: Mapped[list[dict[str, str]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    active: Mapped[bool] = mapped_column(server_default="true")
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
