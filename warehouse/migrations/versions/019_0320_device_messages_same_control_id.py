"""Device messages note another message of their sender with the same control id and other content.

Duplicates are now told by content (``connectors.devices.fingerprint``): the same control id with other content
is a new message, loaded. That is worth a note a person can see - an analyser that reuses control ids, or a
lab that corrected a message without marking it - so ``same_control_id_as`` points at the first other message
of that format and sender with that control id. The index finds it at ingest (one range scan per message).

``dedup_key`` keeps its column and unique index; only what goes into it changed (format + content hash instead
of format + sender + control id). Keys stored before keep the old form and are never matched by the new one.

Revision ID: 0320
Revises: 0310
Create Date: 2026-11-25
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0320"
down_revision: str | Sequence[str] | None = "0310"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE device_message ADD COLUMN same_control_id_as bigint")
    op.execute(
        "CREATE INDEX ix_device_message_control_id ON device_message (practice_id, sender, control_id) "
        "WHERE control_id IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_device_message_control_id")
    op.execute("ALTER TABLE device_message DROP COLUMN same_control_id_as")
