"""What the mirror needs to hold Animana's work schedules and the practice's own reminders.

- ``staff_shift.animana_id``: the Animana shift a row mirrors (one dated shift per staff member per day). Set
  means synced, and the synced schedule wins: ``warehouse.scheduling.rosters`` plans no staff shifts in a practice that
  has one. NULL means VetConnect's own, as every existing row is.
- ``reminder.animana_id``: the Animana reminder a row mirrors; ``reminder.description``: Animana's free text
  (what a check-up or "other" reminder is about); ``reminder.channel``: how the client is reached (e-mail, text
  message, letter), the reminder templates' vocabulary. NULL for existing rows: VetConnect's own reminders go by
  their template's channel. Animana's kinds and statuses fit the existing ones (check-up is ``recall``, open is
  ``pending``), so those checks stay as they are.

Both ``animana_id``s are unique per practice where set (a unique constraint lets NULLs repeat), led by
``practice_id`` like every key of a practice table. No new table, so no new policy: both tables keep theirs.

Revision ID: 0370
Revises: 0360
Create Date: 2026-12-03
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0370"
down_revision: str | Sequence[str] | None = "0360"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.execute(
        """
        ALTER TABLE staff_shift ADD COLUMN animana_id varchar(64),
          ADD CONSTRAINT uq_staff_shift_practice_id_animana_id UNIQUE (practice_id, animana_id);
        ALTER TABLE reminder ADD COLUMN animana_id varchar(64), ADD COLUMN description text,
          ADD COLUMN channel varchar(32)
            CONSTRAINT ck_reminder_reminder_channel CHECK (channel IN ('email', 'sms', 'letter')),
          ADD CONSTRAINT uq_reminder_practice_id_animana_id UNIQUE (practice_id, animana_id);
        """
    )


def downgrade() -> None:
    op.execute(
        "ALTER TABLE reminder DROP CONSTRAINT uq_reminder_practice_id_animana_id, DROP COLUMN channel, "
        "DROP COLUMN description, DROP COLUMN animana_id"
    )
    op.execute(
        "ALTER TABLE staff_shift DROP CONSTRAINT uq_staff_shift_practice_id_animana_id, DROP COLUMN animana_id"
    )
