"""Client registration: the preferred channel, consent to data sharing and who recorded the consents; clients by
postcode.

- ``preferred_channel``: how the client wants to be reached (e-mail, SMS, phone, post); NULL when not asked.
- ``consent_data_sharing`` beside the two reminder consents, and ``consent_recorded_by`` (the user who recorded
  the consents; with ``consent_recorded_at`` the who and when of the latest record of them — every earlier
  change is in the audit log with its author and time).
- ``ix_client_postcode`` (practice, postcode): the duplicate check compares names only among the practice's
  clients at one postcode (a handful), instead of a name's trigram matches across every practice. A plain column,
  not ``replace(postcode, ' ', '')``: under RLS a condition with a function that is not leakproof is never an index
  condition (it may not run before the policy's), so the check asks for both spellings (``1234AB``, ``1234 AB``).

Nullable or with a constant default: catalogue-only changes in PostgreSQL 11+, no rewrite of the client table.
The columns are VetConnect's own (Animana's relations have no such fields), so the write-back sends nothing new.

Revision ID: 0390
Revises: 0380
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0390"
down_revision: str | Sequence[str] | None = "0380"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

CHANNELS = ("email", "sms", "phone", "post")


def upgrade() -> None:
    op.add_column("client", sa.Column("preferred_channel", sa.String(length=32), nullable=True))
    op.create_check_constraint(
        op.f("ck_client_preferred_channel"),
        "client",
        sa.column("preferred_channel").in_(CHANNELS),
    )
    op.add_column(
        "client", sa.Column("consent_data_sharing", sa.Boolean(), server_default="false", nullable=False)
    )
    op.add_column("client", sa.Column("consent_recorded_by", sa.BigInteger(), nullable=True))
    op.create_index("ix_client_postcode", "client", ["practice_id", "postcode"])


def downgrade() -> None:
    op.drop_index("ix_client_postcode", table_name="client")
    op.drop_column("client", "consent_recorded_by")
    op.drop_column("client", "consent_data_sharing")
    op.drop_constraint(op.f("ck_client_preferred_channel"), "client", type_="check")
    op.drop_column("client", "preferred_channel")
