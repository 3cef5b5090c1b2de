"""Indexes on the columns a merge moves that had none of their own: a client's appointments, payments, reminders,
documents and events, a patient's reminders, lab orders and device messages.

A merge (``warehouse.clients.merge``) and the merge page's overview look a client's or patient's rows up by
``(practice_id, <column>)``; without an index each lookup read the whole practice's table through another index
with ``practice_id`` first. At the bench's shallow history (bench/workspaces.py: 1,500 appointments a practice)
that cost under a millisecond; with ten years of it (150,000 appointments, 60,000 payments, 40,000 reminders in
one practice) a client merge took 56-61 ms at p50 instead of 23-29 ms with these indexes, growing with every year.
Columns that are often NULL (a reminder's or a document's client, an event's client, a device message's patient
before it is matched) get a partial index over the rows that have one: the merge's ``column = id`` implies it.
On the partitioned tables (appointment, event, device_message) the index is created on every partition.

Revision ID: 0450
Revises: 0440
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0450"
down_revision: str | Sequence[str] | None = "0440"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (index, table, column, partial): partial ones cover only the rows where the column is set.
INDEXES = (
    ("ix_appointment_client", "appointment", "client_id", False),
    ("ix_payment_client", "payment", "client_id", False),
    ("ix_reminder_patient", "reminder", "patient_id", False),
    ("ix_reminder_client", "reminder", "client_id", True),
    ("ix_lab_order_patient", "lab_order", "patient_id", False),
    ("ix_document_client", "document", "client_id", True),
    ("ix_device_message_patient", "device_message", "patient_id", True),
    ("ix_event_client", "event", "client_id", True),
)


def upgrade() -> None:
    for name, table, column, partial in INDEXES:
        where = sa.text(f"{column} IS NOT NULL") if partial else None
        op.create_index(name, table, ["practice_id", column], postgresql_where=where)


def downgrade() -> None:
    for name, table, _, _ in reversed(INDEXES):
        op.drop_index(name, table_name=table)
