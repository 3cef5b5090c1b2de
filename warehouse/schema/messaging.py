"""Messages to owners: the outbox the dispatcher sends from (migration 0540, ``warehouse.messaging``)."""

from __future__ import annotations

import datetime as dt
import uuid

from sqlalchemy import (
    CheckConstraint,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.schema.base import Base, practice_table

MESSAGE_KINDS = (
    "vaccination_reminder", "overdue_reminder", "appointment_confirmation", "appointment_day_before",
    "no_show_follow_up",
)  # fmt: skip
MESSAGE_CHANNELS = ("email", "sms")
MESSAGE_STATES = ("queued", "sending", "sent", "delivered", "bounced", "failed", "skipped")


class MessageOutbox(Base):
    """One message to a client about a reminder or an appointment, rendered once, sent at most once per its
    ``message_id`` (the gateways' idempotency key); ``skipped`` with the reason when it may not be sent."""

    __tablename__ = "message_outbox"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["tenant.id"]),
        ForeignKeyConstraint(["practice_id", "client_id"], ["client.practice_id", "client.id"]),
        ForeignKeyConstraint(["practice_id", "patient_id"], ["patient.practice_id", "patient.id"]),
        ForeignKeyConstraint(
            ["practice_id", "reminder_id"], ["reminder.practice_id", "reminder.id"], ondelete="CASCADE"
        ),
        ForeignKeyConstraint(
            ["practice_id", "appointment_id"],
            ["appointment.practice_id", "appointment.id"],
            ondelete="CASCADE",
        ),
        UniqueConstraint("practice_id", "message_id"),
        UniqueConstraint(
            "practice_id",
            "kind",
            "reminder_id",
            "appointment_id",
            "channel",
            name="uq_message_outbox_about",
            postgresql_nulls_not_distinct=True,
        ),  # fmt: skip
        CheckConstraint(f"kind IN {MESSAGE_KINDS}", name="kind"),
        CheckConstraint(f"channel IN {MESSAGE_CHANNELS}", name="channel"),
        CheckConstraint(f"state IN {MESSAGE_STATES}", name="state"),
        CheckConstraint("num_nonnulls(reminder_id, appointment_id) = 1", name="about"),
        CheckConstraint("state = 'skipped' OR channel IS NOT NULL", name="channel_unless_skipped"),
        Index(
            "ix_message_outbox_due",
            "practice_id",
            "next_attempt_at",
            postgresql_where=text("state IN ('queued', 'sending')"),
        ),
        Index("ix_message_outbox_client", "practice_id", "client_id"),
        Index("ix_message_outbox_patient", "practice_id", "patient_id"),
        # The reminders' sends the marts' "did it work" looks back over (migration 0550).
        Index(
            "ix_message_outbox_sent",
            "practice_id",
            "sent_at",
            postgresql_where=text("reminder_id IS NOT NULL AND sent_at IS NOT NULL"),
        ),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    message_id: Mapped[uuid.UUID] = mapped_column(UUID(as_uuid=True), server_default=func.gen_random_uuid())
    kind: Mapped[str] = mapped_column(String(32))
    client_id: Mapped[int]
    patient_id: Mapped[int | None]
    reminder_id: Mapped[int | None]
    appointment_id: Mapped[int | None]
    channel: Mapped[str | None] = mapped_column(String(8))
    subject: Mapped[str | None] = mapped_column(Text)
    body: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(16), server_default="queued")
    reason: Mapped[str | None] = mapped_column(Text)  # why skipped, bounced or failed: what a person reads
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    sent_at: Mapped[dt.datetime | None]
    finished_at: Mapped[dt.datetime | None]  # delivered, bounced or failed
