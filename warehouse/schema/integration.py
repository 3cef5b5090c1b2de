"""Two-way Animana (migration 0380): the write-back outbox, incoming Animana changes held for settlement, and the
conflict queue. Rows are written by the ``writeback_capture`` / ``writeback_hold`` triggers and by
``warehouse.integration``; see ``warehouse/migrations/database_code.py`` for the triggers."""

from __future__ import annotations

import datetime as dt
import uuid
from typing import Any

from sqlalchemy import (
    CheckConstraint,
    ForeignKeyConstraint,
    Identity,
    Index,
    Integer,
    String,
    Text,
    Uuid,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column

from warehouse.schema.base import Base, practice_table

OUTBOX_STATES = ("pending", "done", "dead", "held", "superseded")
CONFLICT_STATES = ("open", "auto_resolved", "resolved")


class WritebackOutbox(Base):
    """A local change to a mirrored row, to be written to Animana: at least once, with its idempotency key.

    ``changes``: the changed columns' new values (an insert: the whole row); ``base``: their values before.
    ``state``: pending (due at ``next_attempt_at``), done, dead (a dead letter: ``last_error`` says why; a
    person retries it), held (waits on an open conflict of its row), superseded (a conflict's resolution
    replaced it)."""

    __tablename__ = "writeback_outbox"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["tenant.id"]),
        CheckConstraint("operation IN ('insert', 'update', 'delete')", name="operation"),
        CheckConstraint(f"state IN {OUTBOX_STATES}", name="state"),
        Index(
            "ix_writeback_outbox_due",
            "practice_id",
            "next_attempt_at",
            postgresql_where=text("state = 'pending'"),
        ),
        Index("ix_writeback_outbox_written_in", "written_in", postgresql_where=text("state = 'pending'")),
        Index("ix_writeback_outbox_row", "practice_id", "table_name", "row_id"),
        Index(
            "ix_writeback_outbox_open",
            "practice_id",
            "state",
            postgresql_where=text("state IN ('pending', 'dead', 'held')"),
        ),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    module: Mapped[str] = mapped_column(String(16))
    table_name: Mapped[str] = mapped_column(String(32))
    row_id: Mapped[int]
    operation: Mapped[str] = mapped_column(String(8))
    changes: Mapped[dict[str, Any]] = mapped_column(JSONB)
    base: Mapped[dict[str, Any]] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    idempotency_key: Mapped[uuid.UUID] = mapped_column(Uuid, server_default=func.gen_random_uuid())
    state: Mapped[str] = mapped_column(String(12), server_default="pending")
    attempts: Mapped[int] = mapped_column(Integer, server_default="0")
    next_attempt_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[dt.datetime] = mapped_column(server_default=func.clock_timestamp())
    sent_at: Mapped[dt.datetime | None]
    answered_version: Mapped[str | None] = mapped_column(Text)
    created_by: Mapped[int | None]
    # The top-level transaction that captured it (pg_current_xact_id): animana mode's write-through sends exactly
    # the entries of the transaction it is committing, savepoints included.
    written_in: Mapped[int] = mapped_column(server_default=text("(pg_current_xact_id())::text::bigint"))


class WritebackHanded(Base):
    """An outbox entry handed to Animana: committed before its write goes out, so that even a dispatcher killed
    mid-send leaves the trace that the write may have arrived. The settlement takes a value Animana holds for one of
    our own unacknowledged writes only from an entry handed over (`warehouse.integration.settle`); any other
    coincidence is an Animana user's edit. Removed when Animana acknowledges the entry."""

    __tablename__ = "writeback_handed"
    __table_args__ = (ForeignKeyConstraint(["practice_id"], ["tenant.id"]), {"info": practice_table()})

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    # No foreign key to the entry: the claim holds its row FOR UPDATE until it commits, and the key check's share
    # lock would wait for it.
    entry_id: Mapped[int] = mapped_column(primary_key=True)
    handed_at: Mapped[dt.datetime] = mapped_column(server_default=func.clock_timestamp())
    # The idempotency key it was handed over as; NULL once handed over as two different requests (migration 0600).
    request_key: Mapped[str | None] = mapped_column(Text)


class WritebackIncoming(Base):
    """An Animana change to a row with an unacknowledged local change, held (not applied) until settled."""

    __tablename__ = "writeback_incoming"
    __table_args__ = (ForeignKeyConstraint(["practice_id"], ["tenant.id"]), {"info": practice_table()})

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    table_name: Mapped[str] = mapped_column(String(32), primary_key=True)
    row_id: Mapped[int] = mapped_column(primary_key=True)
    incoming: Mapped[dict[str, Any]] = mapped_column(JSONB)
    animana_version: Mapped[str | None] = mapped_column(Text)
    received_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())


class WritebackConflict(Base):
    """Fields changed on both sides. ``fields``: {column: {local, animana, base, rule, decided}}. Auto-resolved
    ones (a rule decided every field) are kept too, so which rule decided, with both values, can be found."""

    __tablename__ = "writeback_conflict"
    __table_args__ = (
        ForeignKeyConstraint(["practice_id"], ["tenant.id"]),
        CheckConstraint(f"state IN {CONFLICT_STATES}", name="state"),
        Index("ix_writeback_conflict_row", "practice_id", "table_name", "row_id"),
        Index(
            "ix_writeback_conflict_open",
            "practice_id",
            "detected_at",
            postgresql_where=text("state = 'open'"),
        ),
        {"info": practice_table()},
    )

    practice_id: Mapped[int] = mapped_column(primary_key=True)
    id: Mapped[int] = mapped_column(Identity(), primary_key=True)
    module: Mapped[str] = mapped_column(String(16))
    table_name: Mapped[str] = mapped_column(String(32))
    row_id: Mapped[int]
    animana_id: Mapped[str | None] = mapped_column(String(64))
    state: Mapped[str] = mapped_column(String(16), server_default="open")
    fields: Mapped[dict[str, Any]] = mapped_column(JSONB)
    animana_version: Mapped[str | None] = mapped_column(Text)
    detected_at: Mapped[dt.datetime] = mapped_column(server_default=func.now())
    resolved_at: Mapped[dt.datetime | None]
    resolved_by: Mapped[int | None]
