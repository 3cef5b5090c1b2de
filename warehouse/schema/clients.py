"""Owners (clients), their animals (patients), who owns whom, and weight history.

Client PII (email, phone, street address, IBAN) is stored only encrypted with the practice's data key;
``*_bidx`` columns hold a keyed hash for exact lookups (see warehouse.kernel.crypto).
"""

from __future__ import annotations

import datetime as dt

from sqlalchemy import (
    CheckConstraint,
    Date,
    ForeignKeyConstraint,
    Identity,
    Index,
    LargeBinary,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.schema.base import Base, MirroredWrites, Timestamps, practice_table
from warehouse.schema.tenancy import choice

SPECIES = (
    "dog", "cat", "rabbit", "guinea_pig", "hamster", "rat", "ferret", "bird", "reptile", "horse", "goat",
    "sheep", "pig", "cattle", "other",
)  # fmt: skip
SEXES = ("male", "female", "male_neutered", "female_neutered", "unknown")
CHANNELS = ("email", "sms", "phone", "post")  # how a client wants to be reached
# What a client consents to, and how the consent reached the practice (migration 0460; warehouse.privacy.consent).
CONSENT_PURPOSES = ("reminders_email", "reminders_sms", "referral_sharing", "analytics")
CONSENT_HOWS = ("in_person", "phone", "email", "paper", "web", "animana")


class Client(MirroredWrites, Timestamps, Base):
    __tablename__ = "client"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["tenant.id"]),
        ForeignKeyConstraint(["practice_id", "merged_into_id"], ["client.practice_id", "client.id"]),
        UniqueConstraint("practice_id", "animana_id"),
        Index("ix_client_email_bidx", "practice_id", "email_bidx"),
        Index("ix_client_phone_bidx", "practice_id", "phone_bidx"),
        Index(
            "ix_client_name_trgm",
            "last_name",
            postgresql_using="gin",
            postgresql_ops={"last_name": "gin_trgm_ops"},
        ),
        Index("ix_client_postcode", "practice_id", "postcode"),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    animana_id: Mapped[str | None] = mapped_column(String(64))
    title: Mapped[str | None] = mapped_column(String(20))
    initials: Mapped[str | None] = mapped_column(String(20))
    first_name: Mapped[str | None] = mapped_column(String(100))
    last_name: Mapped[str] = mapped_column(String(150))
    postcode: Mapped[str | None] = mapped_column(String(10))
    city: Mapped[str | None] = mapped_column(String(100))
    email_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    address_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    iban_enc: Mapped[bytes | None] = mapped_column(LargeBinary)
    email_bidx: Mapped[bytes | None] = mapped_column(LargeBinary)
    phone_bidx: Mapped[bytes | None] = mapped_column(LargeBinary)
    key_version: Mapped[int] = mapped_column(server_default="1")
    active: Mapped[bool] = mapped_column(server_default="true")
    deleted_at: Mapped[dt.datetime | None]
    merged_into_id: Mapped[int | None]  # a duplicate merged away: the client that survived it (0410)
    preferred_channel: Mapped[str | None] = mapped_column(choice(*CHANNELS, name="preferred_channel"))


class Patient(MirroredWrites, Timestamps, Base):
    __tablename__ = "patient"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["tenant.id"]),
        ForeignKeyConstraint(["practice_id", "merged_into_id"], ["patient.practice_id", "patient.id"]),
        UniqueConstraint("practice_id", "animana_id"),
        CheckConstraint("microchip ~ '^[0-9]{15}$'", name="microchip_15_digits"),
        CheckConstraint("NOT deceased OR deceased_on IS NULL OR deceased_on >= date_of_birth", name="dates"),
        # One live patient per chip in a practice (migration 0400); a merged-away duplicate keeps its chip.
        Index(
            "uq_patient_microchip",
            "practice_id",
            "microchip",
            unique=True,
            postgresql_where=text("deleted_at IS NULL"),
        ),
        Index(
            "ix_patient_name_trgm", "name", postgresql_using="gin", postgresql_ops={"name": "gin_trgm_ops"}
        ),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    animana_id: Mapped[str | None] = mapped_column(String(64))
    name: Mapped[str] = mapped_column(String(100))
    species: Mapped[str] = mapped_column(choice(*SPECIES, name="species"))
    breed: Mapped[str | None] = mapped_column(String(100))
    sex: Mapped[str] = mapped_column(choice(*SEXES, name="sex"), server_default="unknown")
    date_of_birth: Mapped[dt.date | None] = mapped_column(Date)
    # The date was worked out from the age the owner gave ("about three years"), not known (migration 0400).
    date_of_birth_estimated: Mapped[bool] = mapped_column(server_default="false")
    colour: Mapped[str | None] = mapped_column(String(100))
    microchip: Mapped[str | None] = mapped_column(String(15))
    deceased: Mapped[bool] = mapped_column(server_default="false")
    deceased_on: Mapped[dt.date | None] = mapped_column(Date)
    insured_with: Mapped[str | None] = mapped_column(String(100))
    deleted_at: Mapped[dt.datetime | None]
    merged_into_id: Mapped[int | None]  # a duplicate merged away: the patient that survived it (0410)


class ClientPatient(Base):
    """Ownership link: an animal can have several owners, one of them primary (the one invoiced)."""

    __tablename__ = "client_patient"
    __table_args__ = (
        ForeignKeyConstraint(
            ["practice_id", "client_id"], ["client.practice_id", "client.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["practice_id", "patient_id"], ["patient.practice_id", "patient.id"], ondelete="CASCADE"
        ),
        Index("ix_client_patient_patient", "practice_id", "patient_id"),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    client_id: Mapped[int] = mapped_column(primary_key=True)
    patient_id: Mapped[int] = mapped_column(primary_key=True)
    is_primary: Mapped[bool] = mapped_column(server_default="true")
    since: Mapped[dt.date] = mapped_column(Date, server_default=func.current_date())


class WeightMeasurement(Base):
    __tablename__ = "weight_measurement"
    __table_args__ = (
        ForeignKeyConstraint(
            ["practice_id", "patient_id"], ["patient.practice_id", "patient.id"], ondelete="CASCADE"
        ),
        CheckConstraint("weight_grams > 0 AND weight_grams < 2000000", name="plausible"),
        UniqueConstraint("practice_id", "animana_id"),
        Index("ix_weight_patient", "practice_id", "patient_id", "measured_at"),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    animana_id: Mapped[str | None] = mapped_column(String(64))
    patient_id: Mapped[int]
    measured_at: Mapped[dt.datetime]
    weight_grams: Mapped[int]
    recorded_by: Mapped[int | None]


class RecordMerge(Base):
    """One merge of a duplicate client or patient into the one that survives (``warehouse.clients.merge``):
    every row it moved (table, key, the values it had), the rows it removed because the survivor already had
    them, and the duplicate's values before — what an undo puts back, on the practice-local day of the merge."""

    __tablename__ = "record_merge"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["tenant.id"]),
        CheckConstraint("survivor_id <> duplicate_id", name="two_records"),
        Index("ix_record_merge_day", "practice_id", "merged_on"),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(choice("client", "patient", name="kind"))
    survivor_id: Mapped[int]
    duplicate_id: Mapped[int]
    merged_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    merged_on: Mapped[dt.date] = mapped_column(Date)  # the practice's local day of the merge
    merged_by: Mapped[int | None]
    moved: Mapped[list] = mapped_column(JSONB)
    removed: Mapped[list] = mapped_column(JSONB)
    duplicate_before: Mapped[dict] = mapped_column(JSONB)
    undone_at: Mapped[dt.datetime | None]
    undone_by: Mapped[int | None]


class Breed(Base):
    """The seeded breeds per species (migration 0400): reference data every practice reads, only migrations write."""

    __tablename__ = "breed"
    __table_args__ = ({"info": {"tenancy": "global"}},)

    species: Mapped[str] = mapped_column(choice(*SPECIES, name="species"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)


class PracticeBreed(Base):
    """A breed a practice added to its own list (a local cross, a rare breed); the other practices do not see it."""

    __tablename__ = "practice_breed"
    __table_args__ = (ForeignKeyConstraint(["practice_id"], ["tenant.id"]), {"info": practice_table()})

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    species: Mapped[str] = mapped_column(choice(*SPECIES, name="species"), primary_key=True)
    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    added_by: Mapped[int | None]
    added_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class ClientConsent(Base):
    """One grant or withdrawal of a purpose by a client (``warehouse.privacy.consent``): append-only, the newest row
    per purpose is the current consent. The application may only move a row's ``client_id`` (a merge)."""

    __tablename__ = "client_consent"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id", "client_id"], ["client.practice_id", "client.id"]),
        Index("ix_client_consent_current", "practice_id", "client_id", "purpose", "recorded_at", "id"),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    client_id: Mapped[int]
    purpose: Mapped[str] = mapped_column(choice(*CONSENT_PURPOSES, name="purpose"))
    granted: Mapped[bool]
    recorded_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    recorded_by: Mapped[int | None]
    how: Mapped[str] = mapped_column(choice(*CONSENT_HOWS, name="how"))
    note: Mapped[str | None] = mapped_column(Text)
