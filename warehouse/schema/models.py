"""Model artefacts (trained per franchise, versioned, hash-sealed) and the log of suggestions shown in the hub.

- ``model_artifact``: one row per trained model (kind ``next_action`` or ``no_show``) of a franchise: the skops
  bytes, the manifest (state, metadata: data window, metrics, code version), its SHA-256, and a status:
  ``candidate`` (just trained), ``promoted`` (the one in use; at most one per franchise and kind),
  ``rejected`` (failed the promotion check), ``retired`` (replaced).
- ``suggestion_log``: every next-action suggestion shown to a user, and whether it was taken — the
  acceptance rate is ``accepted / shown``.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    Float,
    ForeignKeyConstraint,
    Identity,
    Index,
    LargeBinary,
    String,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.schema.base import Base, franchise_table, practice_table
from warehouse.schema.tenancy import choice

ARTIFACT_STATUSES = ("candidate", "promoted", "rejected", "retired")
SUGGESTION_OUTCOMES = ("shown", "accepted", "dismissed")


class ModelArtifact(Base):
    __tablename__ = "model_artifact"
    __table_args__ = (
        ForeignKeyConstraint(["franchise_id"], ["tenant.id"]),
        UniqueConstraint("franchise_id", "kind", "version"),
        Index(
            "ux_model_artifact_promoted",
            "franchise_id",
            "kind",
            unique=True,
            postgresql_where=text("status = 'promoted'"),
        ),  # fmt: skip
        CheckConstraint("sha256 ~ '^[0-9a-f]{64}$'", name="sha256_hex"),
        {"info": franchise_table()},
    )

    franchise_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    kind: Mapped[str] = mapped_column(String(32))
    version: Mapped[int]
    status: Mapped[str] = mapped_column(choice(*ARTIFACT_STATUSES, name="model_artifact_status"))
    data_from: Mapped[dt.datetime | None]
    data_to: Mapped[dt.datetime | None]
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default="{}")
    manifest: Mapped[dict[str, Any]] = mapped_column(JSONB)
    code_version: Mapped[str] = mapped_column(String(64))
    sha256: Mapped[str] = mapped_column(String(64))
    blob: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    decided_at: Mapped[dt.datetime | None]
    decision: Mapped[dict[str, Any] | None] = mapped_column(JSONB)


class SuggestionLog(Base):
    __tablename__ = "suggestion_log"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["tenant.id"]),
        Index("ix_suggestion_log_shown", "practice_id", "shown_at"),
        CheckConstraint("rank BETWEEN 1 AND 10", name="rank"),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    shown_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    user_id: Mapped[int | None]
    patient_id: Mapped[int | None]
    appointment_id: Mapped[int | None]
    model_artifact_id: Mapped[int | None]
    activity: Mapped[str] = mapped_column(String(64))
    action: Mapped[str] = mapped_column(String(64))
    rank: Mapped[int]
    score: Mapped[float] = mapped_column(Float)
    outcome: Mapped[str] = mapped_column(
        choice(*SUGGESTION_OUTCOMES, name="suggestion_outcome"), server_default="shown"
    )
    outcome_at: Mapped[dt.datetime | None]
