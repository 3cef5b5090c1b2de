"""Did a reminder work (issue 18): ``reminder.worked_at``, when the booking or the dose that followed its sending
within 30 days came (``warehouse.messaging.worked`` decides it, the marts' refresh writes it); reminder
compliance counts the reminders that worked. Indexes on the send times (the reminder's own, its messages') for
what the refresh looks back over.

Existing reminders get their answer at the next full marts rebuild (nightly, or ``make demo``'s), which looks at
every send.

Revision ID: 0550
Revises: 0540
Create Date: 2026-12-04
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0550"
down_revision: str | Sequence[str] | None = "0540"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute("ALTER TABLE reminder ADD COLUMN worked_at timestamptz")
    op.execute("CREATE INDEX ix_reminder_sent ON reminder (practice_id, sent_at) WHERE sent_at IS NOT NULL")
    op.execute(
        "CREATE INDEX ix_message_outbox_sent ON message_outbox (practice_id, sent_at) "
        "WHERE reminder_id IS NOT NULL AND sent_at IS NOT NULL"
    )


def downgrade() -> None:
    op.execute("DROP INDEX ix_message_outbox_sent")
    op.execute("DROP INDEX ix_reminder_sent")
    op.execute("ALTER TABLE reminder DROP COLUMN worked_at")
