"""Referrals between practices (migration 0480): the referring practice's referral of one patient to another
practice, and the findings the other practice sends back. Both rows belong to the referring practice (its
tenant key, its audit chain); the practice referred to reads them through its own policies and writes only
through the database functions named in the migration."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import CheckConstraint, ForeignKeyConstraint, Identity, Index, String, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.schema.base import Base, practice_table

REFERRAL_STATUSES = ("open", "accepted", "completed", "revoked", "expired")
ACTIVE_STATUSES = ("open", "accepted")
CONSENT_HOWS = ("in_person", "phone", "email", "paper", "web")


class Referral(Base):
    __tablename__ = "referral"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["tenant.id"]),
        ForeignKeyConstraint(["to_practice_id"], ["tenant.id"]),
        ForeignKeyConstraint(["practice_id", "patient_id"], ["patient.practice_id", "patient.id"]),
        CheckConstraint(f"status IN {REFERRAL_STATUSES}", name="status"),
        CheckConstraint(f"consent_how IN {CONSENT_HOWS}", name="consent_how"),
        CheckConstraint("to_practice_id <> practice_id", name="another_practice"),
        CheckConstraint("valid_until > valid_from", name="window"),
        CheckConstraint("(status = 'revoked') = (revoked_at IS NOT NULL)", name="revocation"),
        Index("ix_referral_patient", "practice_id", "patient_id"),
        # What the grant function (``referred_patients()``) reads on every statement of the referred practice.
        Index(
            "ix_referral_addressed",
            "to_practice_id",
            "valid_until",
            postgresql_where=text(
                "status IN ('open', 'accepted') AND revoked_at IS NULL AND consent_withdrawn_at IS NULL"
            ),
        ),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    patient_id: Mapped[int]
    to_practice_id: Mapped[int]
    reason: Mapped[str] = mapped_column(Text)
    referring_vet_id: Mapped[int]
    # As the letter names the vet: the practice referred to cannot read the referring practice's staff.
    referring_vet_name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(10), server_default="open")
    valid_from: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    valid_until: Mapped[dt.datetime] = mapped_column(server_default=text("(now() + '90 days'::interval)"))
    consent_recorded_at: Mapped[dt.datetime]
    consent_recorded_by: Mapped[int]
    consent_how: Mapped[str] = mapped_column(String(10))
    consent_withdrawn_at: Mapped[dt.datetime | None]
    consent_withdrawn_by: Mapped[int | None]
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    accepted_at: Mapped[dt.datetime | None]
    accepted_by: Mapped[int | None]
    completed_at: Mapped[dt.datetime | None]
    completed_by: Mapped[int | None]
    revoked_at: Mapped[dt.datetime | None]
    revoked_by: Mapped[int | None]
    revoked_reason: Mapped[str | None] = mapped_column(Text)


class ReferralReport(Base):
    """Findings sent back by the practice referred to: copied values (diagnoses as ``[{"term", "code"}]``, lab
    results as ``[{"code", "text", "value", "unit", "reference", "flag", "observed_at"}]``), never links into
    the other practice's record, which the referring practice cannot read."""

    __tablename__ = "referral_report"
    __table_args__ = (
        ForeignKeyConstraint(["from_practice_id"], ["tenant.id"]),
        ForeignKeyConstraint(["practice_id", "referral_id"], ["referral.practice_id", "referral.id"]),
        Index("ix_referral_report_referral", "practice_id", "referral_id"),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    referral_id: Mapped[int]
    from_practice_id: Mapped[int]
    findings: Mapped[str] = mapped_column(Text)
    diagnoses: Mapped[list[dict[str, str]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    lab_results: Mapped[list[dict[str, str]]] = mapped_column(JSONB, server_default=text("'[]'::jsonb"))
    letter: Mapped[str | None] = mapped_column(Text)
    written_by: Mapped[int | None]
    written_by_name: Mapped[str | None] = mapped_column(String(200))
    submitted_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
